//! `conformance`: runs scenario files against an agent command (see `scenarios::cli`).

fn main() -> std::process::ExitCode {
    scenarios::cli::main()
}
