//! `--agent-cmd` runs as the README says, with `sh -c`: a command that changes directory, sets a variable
//! or exports one first works, and a redeploy waits for the agent itself, not only for the shell that
//! started it (the shell dies at SIGTERM at once while the agent drains its jobs).

use std::path::{Path, PathBuf};

use scenarios::world::Overrides;
use scenarios::{RunOptions, Scenario};

/// Runs `redeploy-mid-job` with `agent_cmd`; returns the agent's log.
async fn redeploy_with(form: &str, agent_cmd: String) -> String {
    let scenario = Scenario::load(&scenarios::builtin_dir().join("redeploy-mid-job.toml"))
        .expect("scenario loads");
    let opts = RunOptions {
        agent_cmd,
        out_root: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("agent-cmd-{form}")),
        seed: None,
        overrides: Overrides::default(),
        poll_interval_ms: 1,
    };
    let report = scenarios::run_and_judge(&scenario, &opts, String::new()).await;
    assert!(
        report.passed,
        "redeploy-mid-job with the `{form}` form of --agent-cmd ({}): {:?}",
        opts.agent_cmd,
        report.failures()
    );
    std::fs::read_to_string(opts.out_root.join("redeploy-mid-job").join("agent.log"))
        .expect("agent.log")
}

/// The variable reached the agent: it logs JSON lines instead of text.
fn logs_json(log: &str) {
    assert!(
        log.lines().any(|l| l.starts_with("[replica-1] {\"")),
        "the agent did not log JSON, so AGENT_LOG_FORMAT did not reach it:\n{log}"
    );
}

fn agent() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_reference-agent"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_changes_directory_first() {
    let dir = agent().parent().expect("a folder").display().to_string();
    let name = agent().file_name().expect("a name").to_string_lossy();
    redeploy_with("cd", format!("cd '{dir}' && ./{name}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_sets_a_variable_first() {
    logs_json(
        &redeploy_with(
            "var",
            format!("AGENT_LOG_FORMAT=json '{}'", agent().display()),
        )
        .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_exports_a_variable_first() {
    logs_json(
        &redeploy_with(
            "export",
            format!("export AGENT_LOG_FORMAT=json; '{}'", agent().display()),
        )
        .await,
    );
}
