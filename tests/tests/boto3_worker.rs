//! A correct job worker written elsewhere passes: `tests/sdk/boto3_worker.py`, a custom-action worker on
//! boto3 with its default retries, knowing only the harness contract, runs protocol-tier scenarios through
//! the conformance front end. It needs `AWS_DEFAULT_REGION` (boto3 reads no other) and, under throttling,
//! sleeps in botocore's backoff: the clock must not pass the deadline of a job waiting to be polled while
//! the worker has not had its answer budget since the job became pollable or the clock last moved.

use std::collections::BTreeMap;
use std::path::PathBuf;

use scenarios::world::Overrides;
use scenarios::{RunOptions, Scenario};
use tests::sdk::{install_pip, sdk_dir};

const MISSING: &str = "the boto3 worker test needs Python 3 (>= 3.9) with pip: install them (Debian/Ubuntu: apt-get install python3 python3-pip)";

async fn worker_cmd() -> String {
    let site = install_pip("python3", "requirements.txt", "sdk-py", "boto3", MISSING).await;
    format!(
        "PYTHONPATH='{site}' exec python3 '{}'",
        sdk_dir().join("boto3_worker.py").display()
    )
}

/// Runs the built-in `name` with `worker` as the agent, as `action_type`, with `config`; its files go
/// under `tag` (tests that run the same scenario at once must not share an agent.log).
async fn report(
    tag: &str,
    name: &str,
    seed: Option<u64>,
    worker: String,
    action_type: &str,
    config: BTreeMap<String, String>,
) -> (scenarios::ScenarioReport, String) {
    let scenario = Scenario::load(&scenarios::builtin_dir().join(format!("{name}.toml")))
        .expect("scenario loads");
    let opts = RunOptions {
        agent_cmd: worker,
        out_root: PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("boto3-worker")
            .join(tag),
        seed,
        overrides: Overrides {
            action_type: Some(action_type.into()),
            config,
        },
        poll_interval_ms: 1,
    };
    let report = scenarios::run_and_judge(&scenario, &opts, String::new()).await;
    let log =
        std::fs::read_to_string(opts.out_root.join(name).join("agent.log")).unwrap_or_default();
    (report, log)
}

/// Runs `name` with the worker's work taking `rounds` jobs.
async fn run(name: &str, seed: Option<u64>, rounds: usize) {
    let scenario = Scenario::load(&scenarios::builtin_dir().join(format!("{name}.toml")))
        .expect("scenario loads");
    let opts = RunOptions {
        agent_cmd: worker_cmd().await,
        out_root: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boto3-worker"),
        seed,
        overrides: Overrides {
            action_type: Some("Test/Custom/Boto3Worker/1".into()),
            config: BTreeMap::from([("Rounds".to_string(), rounds.to_string())]),
        },
        poll_interval_ms: 1,
    };
    let report = scenarios::run_and_judge(&scenario, &opts, String::new()).await;
    let log =
        std::fs::read_to_string(opts.out_root.join(name).join("agent.log")).unwrap_or_default();
    assert!(
        report.passed,
        "{name} (seed {:?}) must pass with a correct boto3 worker: {:?}\nagent.log:\n{log}",
        seed,
        report.failures()
    );
    assert!(
        report.verdict.executions.iter().all(|e| e.jobs >= rounds),
        "the worker's rounds were all played: {:?}",
        report.verdict.executions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boto3_worker_passes_throttled_polls_without_a_false_timeout() {
    for seed in [9, 10] {
        run("throttled-polls", Some(seed), 12).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boto3_worker_passes_a_redeploy() {
    // 100 rounds of 30 s: the work is still running at the redeploy, 40 minutes in (with fewer the run
    // is inconclusive, not passed).
    run("redeploy-mid-job", None, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boto3_build_worker_passes_the_artifacts_tier() {
    const TAG: &str = "build";
    // Its artifacts are read and written with each job's own credentials, over two rounds: the upload
    // is made with the credentials of the job it answers, not the first job's.
    let config = BTreeMap::from([("Rounds".to_string(), "2".to_string())]);
    let (report, log) = report(
        TAG,
        "build-with-artifacts",
        None,
        worker_cmd().await,
        "Build/Custom/Boto3Build/1",
        config,
    )
    .await;
    assert!(
        report.passed,
        "a correct boto3 build worker passes: {:?}\nagent.log:\n{log}",
        report.failures()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boto3_worker_answering_before_its_upload_fails_with_ag_output_artifact() {
    const TAG: &str = "success-before-upload";
    let worker = format!("WORKER_SUCCESS_BEFORE_UPLOAD=1 {}", worker_cmd().await);
    let config = BTreeMap::from([("Rounds".to_string(), "1".to_string())]);
    let (report, log) = report(
        TAG,
        "build-with-artifacts",
        None,
        worker,
        "Build/Custom/Boto3Build/1",
        config,
    )
    .await;
    assert!(!report.passed, "success before the upload must fail");
    let rules: Vec<String> = report
        .verdict
        .violations
        .iter()
        .map(|v| v.rule.to_string())
        .collect();
    assert_eq!(
        rules,
        ["AG-OUTPUT-ARTIFACT"],
        "the one violation is AG-OUTPUT-ARTIFACT: {:?}",
        report.failures()
    );
    assert!(
        log.contains("ExpiredToken"),
        "the late upload was refused because the job's credentials ended with it:\n{log}"
    );
}
