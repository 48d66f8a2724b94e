//! `agent`: runs the job worker (no subcommand, configured by the environment alone) or registers a
//! Custom action type (`agent register-action-type`). The program itself is `agent::entry::main`.

fn main() -> std::process::ExitCode {
    agent::entry::main()
}
