//! An answer that CodePipeline refuses with transient errors for longer than the SDK retries is delivered
//! later, not dropped: a dropped answer leaves the job to time out and fails an action whose work went
//! well (exploration found it: a put throttled three times in a row). A scripted CodePipeline: wiremock.

mod mock_cp;

use std::time::Duration;

use agent::metrics::Outcome;
use agent::{RuntimeConfig, Shutdown};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn op(name: &str) -> wiremock::matchers::HeaderExactMatcher {
    header(
        "x-amz-target",
        format!("CodePipeline_20150709.{name}").as_str(),
    )
}

async fn calls(cp: &MockServer, name: &str) -> usize {
    let target = format!("CodePipeline_20150709.{name}");
    cp.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|v| v.to_str().is_ok_and(|v| v == target))
        })
        .count()
}

/// How many answers were sent, and how many jobs ended `closed` (the job no longer takes a result).
async fn answered_after(refusal: ResponseTemplate, refusals: u64) -> (usize, u64) {
    let cp = MockServer::start().await;
    // One job whose configuration lacks RunnableFile: the answer is a ConfigurationError at once, without
    // the backend.
    let job = json!({
        "id": "0f6b2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b",
        "nonce": "17",
        "accountId": "111111111111",
        "data": {
            "actionTypeId": {"category": "Test", "owner": "Custom", "provider": "ApicaLoadtest", "version": "1"},
            "actionConfiguration": {"configuration": {"PresetName": "short"}},
            "pipelineContext": {"action": {"name": "A", "actionExecutionId": "aex-1"}}
        }
    });
    Mock::given(method("POST"))
        .and(op("PollForJobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"jobs": [job]})))
        .up_to_n_times(1)
        .mount(&cp)
        .await;
    Mock::given(method("POST"))
        .and(op("PollForJobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"jobs": []})))
        .mount(&cp)
        .await;
    Mock::given(method("POST"))
        .and(op("AcknowledgeJob"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "InProgress"})))
        .mount(&cp)
        .await;
    Mock::given(method("POST"))
        .and(op("PutJobFailureResult"))
        .respond_with(refusal)
        .up_to_n_times(refusals)
        .with_priority(1)
        .mount(&cp)
        .await;
    Mock::given(method("POST"))
        .and(op("PutJobFailureResult"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .with_priority(2)
        .mount(&cp)
        .await;

    let id: agent::ActionTypeId = "Test/Custom/ApicaLoadtest/1".parse().unwrap();
    let mut config = RuntimeConfig::new(id.clone());
    config.poll_interval = Duration::from_millis(20);
    config.poll_jitter = Duration::ZERO;
    let (runtime, metrics) = mock_cp::runtime(&cp.uri(), &id, config);
    let shutdown = Shutdown::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    let wanted = refusals as usize + 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // Until the answer got through, or the runtime gave up on it.
    while calls(&cp, "PutJobFailureResult").await < wanted
        && metrics.jobs_with(Outcome::AnswerError) + metrics.jobs_with(Outcome::Closed) == 0
    {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.trigger();
    run.await.unwrap();
    (
        calls(&cp, "PutJobFailureResult").await,
        metrics.jobs_with(Outcome::Closed),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_throttled_past_the_sdk_retries_is_delivered_later() {
    let throttled = ResponseTemplate::new(400).set_body_json(json!({
        "__type": "ThrottlingException", "message": "Rate exceeded"
    }));
    // The SDK makes three attempts per call: five refusals need the runtime to call again.
    assert_eq!(answered_after(throttled, 5).await, (6, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_refused_with_server_errors_is_delivered_later() {
    let failing = ResponseTemplate::new(500).set_body_json(json!({
        "__type": "InternalFailure", "message": "Injected server error"
    }));
    assert_eq!(answered_after(failing, 4).await, (5, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_cannot_change_is_not_repeated() {
    // A job that no longer takes a result (timed out, or answered by an earlier attempt whose response was
    // lost): calling again cannot help, and the job is done with.
    let gone = ResponseTemplate::new(400).set_body_json(json!({
        "__type": "InvalidJobStateException", "message": "the job is TimedOut"
    }));
    assert_eq!(answered_after(gone, 1).await, (1, 1));
}
