//! Proof that the harness can fail: each misbehaving mode of `bad-agent` is run through the scenario
//! runner and must be failed with its rule id; the same agent in `correct` mode passes.

use std::path::PathBuf;

use scenarios::world::Overrides;
use scenarios::{RunOptions, Scenario, ScenarioReport};

fn scenario(name: &str) -> Scenario {
    let path = scenarios::builtin_dir().join(format!("{name}.toml"));
    Scenario::load(&path).expect("built-in scenario loads")
}

async fn run_mode(mode: &str, scenario_name: &str) -> ScenarioReport {
    run_mode_with(mode, scenario(scenario_name)).await
}

async fn run_mode_with(mode: &str, s: Scenario) -> ScenarioReport {
    let out_root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("harness-catches")
        .join(mode);
    let opts = RunOptions {
        agent_cmd: format!("'{}' --mode {mode}", env!("CARGO_BIN_EXE_bad-agent")),
        out_root,
        seed: None,
        overrides: Overrides::default(),
        poll_interval_ms: 1,
    };
    scenarios::run_and_judge(&s, &opts, format!("bad-agent --mode {mode}")).await
}

fn rules(report: &ScenarioReport) -> Vec<String> {
    report
        .verdict
        .violations
        .iter()
        .map(|v| v.rule.id().to_string())
        .collect()
}

async fn assert_caught(mode: &str, scenario_name: &str, rule: &str) {
    assert_caught_in(mode, scenario(scenario_name), rule).await;
}

async fn assert_caught_in(mode: &str, s: Scenario, rule: &str) {
    let scenario_name = s.name.clone();
    let report = run_mode_with(mode, s).await;
    assert!(
        !report.passed,
        "{mode} passed {scenario_name}, but it must be failed with {rule}"
    );
    assert!(
        rules(&report).iter().any(|r| r == rule),
        "{mode} on {scenario_name} must be reported with {rule}; got {:?}; unmet: {:?}",
        rules(&report),
        report.failures()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_agent_passes_the_short_test() {
    let report = run_mode("correct", "short-test").await;
    assert!(
        report.passed,
        "unmet: {:?}; violations {:?}",
        report.failures(),
        rules(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_agent_holding_the_first_job_is_failed_with_cp_timeout_and_ag_no_timeout() {
    let report = run_mode("naive", "two-hour-test").await;
    assert!(!report.passed);
    for rule in ["CP-TIMEOUT", "AG-NO-TIMEOUT"] {
        assert!(
            rules(&report).iter().any(|r| r == rule),
            "naive on two-hour-test must be reported with {rule}; got {:?}",
            rules(&report)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_success_is_failed_with_ag_outcome() {
    assert_caught("early-success", "short-test", "AG-OUTCOME").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_test_on_every_job_is_failed_with_ag_one_test() {
    // Its action never ends (every job restarts the test), so a short action timeout ends the run.
    let mut s = scenario("short-test");
    s.world.action_timeout = "1h".parse().unwrap();
    assert_caught_in("restart-every-job", s, "AG-ONE-TEST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_acknowledging_is_failed_with_cp_ack() {
    // It holds every job it never acknowledges; a short answer budget keeps the twelve re-offers quick.
    let mut s = scenario("short-test");
    s.harness.answer_budget = "300ms".parse().unwrap();
    assert_caught_in("no-ack", s, "CP-ACK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_after_a_failure_is_failed_with_cp_terminal() {
    assert_caught("success-after-failure", "short-test", "CP-TERMINAL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_success_with_a_token_is_failed_with_ag_final_token() {
    assert_caught("final-with-token", "short-test", "AG-FINAL-TOKEN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignoring_sigterm_is_failed_with_ag_redeploy() {
    assert_caught("ignores-sigterm", "redeploy-mid-job", "AG-REDEPLOY").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_external_execution_id_is_failed_with_ag_link_early() {
    assert_caught("no-external-id", "short-test", "AG-LINK-EARLY").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_over_after_a_lost_answer_is_failed_with_ag_one_test() {
    assert_caught("restart-on-lost-answer", "lost-first-answer", "AG-ONE-TEST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lost_answer_mode_is_correct_when_nothing_is_lost() {
    // The mode differs from a correct agent only after a lost response: on a plain run it passes, so the
    // test above fails it for the lost answer alone.
    let report = run_mode("restart-on-lost-answer", "short-test").await;
    assert!(
        report.passed,
        "unmet: {:?}; violations {:?}",
        report.failures(),
        rules(&report)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammering_a_throttled_api_is_failed_with_ag_backoff() {
    assert_caught("no-backoff", "throttle-storm", "AG-BACKOFF").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_never_polls_is_failed_with_ag_start() {
    // The default grace is `docs/protocol.md`'s 30 s; two keep the test short, and the rule is the same.
    let mut s = scenario("short-test");
    s.harness.start_grace = "2s".parse().unwrap();
    assert_caught_in("never-polls", s, "AG-START").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_build_agent_passes_the_artifacts_tier() {
    for name in [
        "build-with-artifacts",
        "kms-artifacts",
        "credentials-expire",
        "missing-source",
    ] {
        let report = run_mode("correct", name).await;
        assert!(
            report.passed,
            "{name}: unmet: {:?}; violations {:?}",
            report.failures(),
            rules(&report)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_before_the_upload_is_failed_with_ag_output_artifact() {
    assert_caught(
        "success-before-upload",
        "build-with-artifacts",
        "AG-OUTPUT-ARTIFACT",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_without_sse_kms_is_failed_with_ag_artifact_kms() {
    assert_caught("ignores-kms", "kms-artifacts", "AG-ARTIFACT-KMS").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_artifact_credentials_fail_the_second_build() {
    let report = run_mode("caches-credentials", "credentials-expire").await;
    assert!(
        !report.passed,
        "caching the first job's credentials must fail"
    );
    let e2 = report
        .verdict
        .executions
        .iter()
        .find(|e| e.label == "e-2")
        .expect("e-2 ran");
    assert_eq!(e2.status, "Failed", "{e2:?}");
    assert!(
        e2.message
            .as_deref()
            .unwrap_or_default()
            .contains("ExpiredToken"),
        "the second build failed on the first job's expired credentials: {e2:?}"
    );
}
