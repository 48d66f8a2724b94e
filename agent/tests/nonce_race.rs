//! The agent's side of a race, made deterministic with a scripted CodePipeline (wiremock on 127.0.0.1):
//! an acknowledgement refused with InvalidNonceException means another worker has the job, so the agent
//! leaves it without a word and keeps polling.

mod mock_cp;

use std::time::Duration;

use agent::metrics::Outcome;
use agent::{RuntimeConfig, Shutdown};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TARGET: &str = "x-amz-target";

fn op(name: &str) -> wiremock::matchers::HeaderExactMatcher {
    header(TARGET, format!("CodePipeline_20150709.{name}").as_str())
}

fn calls(requests: &[Request], name: &str) -> usize {
    let target = format!("CodePipeline_20150709.{name}");
    requests
        .iter()
        .filter(|r| r.headers.get(TARGET).is_some_and(|v| v == target.as_str()))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_nonce_means_another_worker_has_the_job() {
    let cp = MockServer::start().await;
    let job = json!({
        "id": "0f6b2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b",
        "nonce": "17",
        "accountId": "111111111111",
        "data": {
            "actionTypeId": {"category": "Test", "owner": "Custom", "provider": "ApicaLoadtest", "version": "1"},
            "actionConfiguration": {"configuration": {"PresetName": "short", "RunnableFile": "race.jmx"}}
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
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-amzn-errortype", "InvalidNonceException")
                .set_body_json(json!({"__type": "InvalidNonceException", "message": "another worker claimed it"})),
        )
        .expect(1)
        .mount(&cp)
        .await;
    for answer in ["PutJobSuccessResult", "PutJobFailureResult"] {
        Mock::given(method("POST"))
            .and(op(answer))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&cp)
            .await;
    }

    let id: agent::ActionTypeId = "Test/Custom/ApicaLoadtest/1".parse().unwrap();
    let mut config = RuntimeConfig::new(id.clone());
    config.poll_interval = Duration::from_millis(20);
    config.poll_jitter = Duration::ZERO;
    // The backend is never reached: nothing is started for a job the agent does not hold.
    let (runtime, metrics) = mock_cp::runtime(&cp.uri(), &id, config);
    let shutdown = Shutdown::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));

    // Wait for the acknowledgement and two more polls after it: the loop went on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let requests = cp.received_requests().await.unwrap_or_default();
        let ack_at = requests.iter().position(|r| {
            r.headers
                .get(TARGET)
                .is_some_and(|v| v.as_bytes().ends_with(b"AcknowledgeJob"))
        });
        if let Some(at) = ack_at
            && calls(&requests[at..], "PollForJobs") >= 2
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent stopped polling after the lost race"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.trigger();
    assert_eq!(run.await.unwrap().unanswered, 0);
    assert_eq!(metrics.jobs_with(Outcome::LostRace), 1);
    assert_eq!(metrics.jobs_with(Outcome::AnswerError), 0);
    assert_eq!(metrics.poll_errors(), 0);
}
