//! A poll whose jobs all went to other replicas (InvalidNonceException on acknowledge) is paced like an
//! empty poll, not followed by another at once (97 polls in 8 s at a 1 s interval before). A scripted
//! CodePipeline: wiremock on 127.0.0.1.

mod mock_cp;

use std::time::Duration;

use agent::metrics::Outcome;
use agent::{RuntimeConfig, Shutdown};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TARGET: &str = "x-amz-target";

fn op(name: &str) -> wiremock::matchers::HeaderExactMatcher {
    header(TARGET, format!("CodePipeline_20150709.{name}").as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_lost_to_other_replicas_is_paced_like_an_empty_poll() {
    let cp = MockServer::start().await;
    let job = |n: u32| {
        json!({
            "id": format!("0f6b2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5{n}"),
            "nonce": "17",
            "accountId": "111111111111",
            "data": {
                "actionTypeId": {"category": "Test", "owner": "Custom", "provider": "ApicaLoadtest", "version": "1"},
                "actionConfiguration": {"configuration": {"PresetName": "short", "RunnableFile": "race.jmx"}}
            }
        })
    };
    // Every poll fills the batch of two, and another replica wins every job.
    Mock::given(method("POST"))
        .and(op("PollForJobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"jobs": [job(1), job(2)]})))
        .mount(&cp)
        .await;
    Mock::given(method("POST"))
        .and(op("AcknowledgeJob"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-amzn-errortype", "InvalidNonceException")
                .set_body_json(json!({"__type": "InvalidNonceException", "message": "another worker claimed it"})),
        )
        .mount(&cp)
        .await;

    let id: agent::ActionTypeId = "Test/Custom/ApicaLoadtest/1".parse().unwrap();
    let mut config = RuntimeConfig::new(id.clone());
    config.poll_interval = Duration::from_millis(300);
    config.poll_jitter = Duration::ZERO;
    config.batch_size = 2;
    let (runtime, metrics) = mock_cp::runtime(&cp.uri(), &id, config);
    let shutdown = Shutdown::new();
    let started = tokio::time::Instant::now();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    shutdown.trigger();
    assert_eq!(run.await.unwrap().unanswered, 0);
    let elapsed = started.elapsed();
    let polls = cp
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| {
            r.headers
                .get(TARGET)
                .is_some_and(|v| v.as_bytes().ends_with(b"PollForJobs"))
        })
        .count() as u64;
    // One poll per interval, give or take the first and the one in flight at the end.
    let most = (elapsed.as_millis() / 300) as u64 + 2;
    assert!(
        polls <= most,
        "{polls} polls in {elapsed:?} at a 300 ms interval (at most {most} expected)"
    );
    assert!(polls >= 2, "it kept polling: {polls}");
    assert!(metrics.jobs_with(Outcome::LostRace) >= 2);
}
