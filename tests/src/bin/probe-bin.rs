//! The `probe` command (`probe/`), built as a binary of this package so integration tests get its path from
//! `CARGO_BIN_EXE_probe-bin` (a test cannot see another package's binaries). Same program.

fn main() -> std::process::ExitCode {
    probe::cli::main()
}
