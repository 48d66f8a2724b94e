//! `fake-codepipeline`: the fake CodePipeline job-worker API as a standalone server (see `cli.rs`).

fn main() -> std::process::ExitCode {
    fake_codepipeline::cli::main()
}
