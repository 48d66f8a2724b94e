//! The `conformance` command line, built in this package so that its tests can run it
//! (`CARGO_BIN_EXE_conformance-cli`) beside the reference agent.

fn main() -> std::process::ExitCode {
    scenarios::cli::main()
}
