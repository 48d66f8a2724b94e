//! Timelines of single-replica scenarios against the reference agent are snapshots: state changes only,
//! in simulated time, so they are identical run after run. A change here is a change in what a user
//! reads when a scenario runs.

use std::path::PathBuf;

use scenarios::world::Overrides;
use scenarios::{RunOptions, Scenario};

async fn timeline(name: &str) -> String {
    let scenario = Scenario::load(&scenarios::builtin_dir().join(format!("{name}.toml")))
        .expect("scenario loads");
    let out_root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("timelines");
    let opts = RunOptions {
        agent_cmd: format!("'{}'", env!("CARGO_BIN_EXE_reference-agent")),
        out_root: out_root.clone(),
        seed: None,
        overrides: Overrides::default(),
        poll_interval_ms: 1,
    };
    let report = scenarios::run_and_judge(&scenario, &opts, String::new()).await;
    assert!(
        report.passed,
        "{name} must pass against the reference agent: {:?}",
        report.failures()
    );
    std::fs::read_to_string(out_root.join(name).join("timeline.txt")).expect("timeline written")
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    // Loopback ports differ run to run.
    s.add_filter(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT");
    s.add_filter(
        r"exited \([^)]*\) \d+ ms after SIGTERM",
        "exited after SIGTERM",
    );
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_test_timeline() {
    let t = timeline("short-test").await;
    settings().bind(|| insta::assert_snapshot!(t));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_test_timeline() {
    let t = timeline("failing-test").await;
    settings().bind(|| insta::assert_snapshot!(t));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_first_answer_timeline_says_why_the_job_timed_out() {
    let t = timeline("crash-before-first-answer").await;
    assert!(
        t.contains("timed out at +01:00:00: acknowledged at +00:00:00 by AKIDREPLICA01, no result"),
        "the timeline explains the timeout:\n{t}"
    );
    settings().bind(|| insta::assert_snapshot!(t));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_timeline() {
    let t = timeline("bad-configuration").await;
    settings().bind(|| insta::assert_snapshot!(t));
}
