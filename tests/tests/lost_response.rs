//! Lost responses (the `lost-response` CodePipeline fault, CP-REPEAT): the fake applies a call, then
//! closes the connection before the response, so the client cannot know it was applied and its SDK
//! retries. An identical retry of a result the job took is answered by the `repeated_results` setting and
//! never recorded as a violation; a different result stays CP-TERMINAL. Through the real Rust SDK and
//! through boto3.

use std::time::Duration;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::retry::RetryConfig;
use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};
use fake_codepipeline::{FaultKind, FaultRule, RepeatedResults, Settings};
use serde_json::json;
use sim_core::{EventKind, Severity};
use tests::sdk::run_boto3_script;
use tests::{CUSTOM, KEY1, TestCp, error_code, error_message, poll_custom, take_custom};

fn lost(operation: &str, count: u64) -> FaultRule {
    FaultRule {
        operation: operation.to_string(),
        kind: FaultKind::LostResponse,
        rate: 1.0,
        status: None,
        count: Some(count),
    }
}

/// The SDK's standard retries (3 attempts) with short pauses.
fn retrying(cp: &TestCp) -> Client {
    cp.client_with(
        KEY1,
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(5)),
    )
}

async fn world(settings: Settings) -> (TestCp, String) {
    let cp = TestCp::start_with(settings).await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "smoke");
    (cp, label)
}

fn running(pct: i32) -> ExecutionDetails {
    ExecutionDetails::builder()
        .percent_complete(pct)
        .external_execution_id("4242")
        .summary("running")
        .build()
}

type PutSuccessError = aws_sdk_codepipeline::error::SdkError<
    aws_sdk_codepipeline::operation::put_job_success_result::PutJobSuccessResultError,
>;

/// The first answer: still running, with `token` and the Details link.
async fn answer_running(client: &Client, job: &str, token: &str) -> Result<(), PutSuccessError> {
    client
        .put_job_success_result()
        .job_id(job)
        .continuation_token(token)
        .execution_details(running(0))
        .send()
        .await
        .map(|_| ())
}

fn count(cp: &TestCp, kind: EventKind) -> usize {
    cp.sim
        .events
        .all()
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

fn violations(cp: &TestCp) -> Vec<String> {
    cp.sim
        .events
        .all()
        .iter()
        .filter(|e| e.severity == Severity::Error)
        .map(|e| e.detail.clone())
        .collect()
}

#[tokio::test]
async fn the_sdk_retry_of_a_lost_answer_is_refused_as_a_repeat_not_as_a_violation() {
    let (cp, label) = world(Settings::default()).await;
    let client = retrying(&cp);
    let job = take_custom(&client).await;
    cp.fake.core().add_fault(lost("PutJobSuccessResult", 1));
    let err = answer_running(&client, &job, "4242")
        .await
        .expect_err("the retry of an applied result is refused by default");
    assert_eq!(error_code(&err), "InvalidJobStateException");
    assert!(
        error_message(&err).contains("(CP-REPEAT)"),
        "{}",
        error_message(&err)
    );
    // The first attempt was applied, once, and its response lost; one continuation job follows, the fault
    // is spent.
    assert_eq!(count(&cp, EventKind::ResponseLost), 1);
    assert_eq!(count(&cp, EventKind::ResultApplied), 1);
    assert_eq!(count(&cp, EventKind::ResultRepeated), 1);
    assert_eq!(cp.events_with_rule("CP-REPEAT").len(), 1);
    assert!(violations(&cp).is_empty(), "{:?}", violations(&cp));
    assert_eq!(cp.execution(&label)["externalExecutionId"], "4242");
    cp.advance(Duration::from_secs(30));
    let next = take_custom(&client).await;
    assert_ne!(next, job);
    assert!(
        poll_custom(&client).await.is_none(),
        "exactly one continuation job"
    );
    client
        .put_job_success_result()
        .job_id(&next)
        .execution_details(running(100))
        .send()
        .await
        .expect("the fault is spent: the final answer gets its response");
    assert_eq!(cp.execution(&label)["status"], "Succeeded");
}

#[tokio::test]
async fn with_repeated_results_accept_the_retry_gets_an_empty_200_and_changes_nothing() {
    let settings = Settings {
        repeated_results: RepeatedResults::Accept,
        ..Settings::default()
    };
    let (cp, label) = world(settings).await;
    let client = retrying(&cp);
    let job = take_custom(&client).await;
    cp.fake.core().add_fault(lost("PutJobFailureResult", 1));
    client
        .put_job_failure_result()
        .job_id(&job)
        .failure_details(
            FailureDetails::builder()
                .r#type(FailureType::JobFailed)
                .message("the test failed")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("the repeat is accepted");
    assert_eq!(count(&cp, EventKind::ResultApplied), 1);
    assert_eq!(count(&cp, EventKind::ResultRepeated), 1);
    assert!(violations(&cp).is_empty(), "{:?}", violations(&cp));
    assert_eq!(cp.execution(&label)["status"], "Failed");
}

#[tokio::test]
async fn a_different_result_after_a_lost_response_is_cp_terminal() {
    let (cp, label) = world(Settings::default()).await;
    let client = cp.client(KEY1); // no retries: the lost response surfaces
    let job = take_custom(&client).await;
    cp.fake.core().add_fault(lost("PutJobSuccessResult", 1));
    let err = answer_running(&client, &job, "4242")
        .await
        .expect_err("the response is lost");
    assert!(
        matches!(
            err,
            aws_sdk_codepipeline::error::SdkError::DispatchFailure(_)
        ),
        "a closed connection, not a response: {err:?}"
    );
    // An agent that takes the lost response for "not applied" and answers differently (a new test).
    let err = answer_running(&client, &job, "4343")
        .await
        .expect_err("a job takes one result");
    assert_eq!(error_code(&err), "InvalidJobStateException");
    assert!(
        error_message(&err).contains("(CP-TERMINAL)"),
        "{}",
        error_message(&err)
    );
    assert_eq!(cp.events_with_rule("CP-TERMINAL").len(), 1);
    assert_eq!(count(&cp, EventKind::ResultRepeated), 0);
    // The first answer stands.
    assert_eq!(cp.execution(&label)["externalExecutionId"], "4242");
}

#[tokio::test]
async fn a_lost_poll_response_leases_the_job_until_the_ack_window_ends() {
    let (cp, _label) = world(Settings::default()).await;
    let client = cp.client(KEY1);
    cp.fake.core().add_fault(lost("PollForJobs", 1));
    let err = client
        .poll_for_jobs()
        .action_type_id(tests::sdk_type(CUSTOM))
        .send()
        .await
        .expect_err("the response is lost");
    assert!(
        matches!(
            err,
            aws_sdk_codepipeline::error::SdkError::DispatchFailure(_)
        ),
        "{err:?}"
    );
    // The job went to a poller that never saw it: not offered again before the ack window ends.
    assert!(poll_custom(&client).await.is_none());
    cp.advance(Duration::from_secs(5 * 60));
    assert!(
        poll_custom(&client).await.is_some(),
        "offered again after the ack window"
    );
    assert_eq!(cp.events_with_rule("CP-LEASE").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_retries_a_lost_answer_and_sees_the_repeat_refused() {
    let (cp, label) = world(Settings::default()).await;
    let client = cp.client(KEY1);
    let job = take_custom(&client).await;
    cp.fake.core().add_fault(lost("PutJobSuccessResult", 1));
    let v = run_boto3_script(
        "boto3_lost_response.py",
        &cp.url(),
        &[
            ("CP_KEY_ID", KEY1.0),
            ("CP_KEY_SECRET", KEY1.1),
            ("CP_JOB_ID", &job),
        ],
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(v["error"], "InvalidJobStateException", "{v}");
    assert!(
        v["attempts"].as_u64().unwrap_or(0) >= 2,
        "boto3 retried: {v}"
    );
    assert_eq!(count(&cp, EventKind::ResultApplied), 1);
    assert_eq!(count(&cp, EventKind::ResultRepeated), 1);
    assert!(violations(&cp).is_empty(), "{:?}", violations(&cp));
    assert_eq!(cp.execution(&label)["status"], "Succeeded");
}
