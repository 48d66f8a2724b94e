//! The reference agent, built as a binary of this package so integration tests get its path from
//! `CARGO_BIN_EXE_reference-agent` (a test cannot see another package's binaries). Same program as
//! `agent`.

fn main() -> std::process::ExitCode {
    agent::entry::main()
}
