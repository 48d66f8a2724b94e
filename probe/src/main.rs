fn main() -> std::process::ExitCode {
    probe::cli::main()
}
