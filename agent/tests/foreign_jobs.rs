//! A job of another action type than the one configured is another worker's: the agent leaves it
//! unacknowledged and logs it once, however often CodePipeline offers it (a scripted CodePipeline: wiremock).

mod mock_cp;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::{RuntimeConfig, Shutdown};
use serde_json::json;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TARGET: &str = "x-amz-target";

fn op(name: &str) -> wiremock::matchers::HeaderExactMatcher {
    header(TARGET, format!("CodePipeline_20150709.{name}").as_str())
}

/// The log, captured for the whole test binary (one test here).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_another_action_type_is_left_unacknowledged_and_logged_once() {
    let log = Log::default();
    let writer = log.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();
    let cp = MockServer::start().await;
    let foreign = json!({
        "id": "0f6b2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b",
        "nonce": "17",
        "accountId": "111111111111",
        "data": {
            "actionTypeId": {"category": "Deploy", "owner": "Custom", "provider": "SomeoneElse", "version": "3"},
            "actionConfiguration": {"configuration": {"PresetName": "short", "RunnableFile": "x.jmx"}},
            "pipelineContext": {"action": {"name": "A", "actionExecutionId": "aex-1"}}
        }
    });
    Mock::given(method("POST"))
        .and(op("PollForJobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"jobs": [foreign]})))
        .mount(&cp)
        .await;
    for never in [
        "AcknowledgeJob",
        "PutJobSuccessResult",
        "PutJobFailureResult",
    ] {
        Mock::given(method("POST"))
            .and(op(never))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "InProgress"})))
            .expect(0)
            .mount(&cp)
            .await;
    }

    let id: agent::ActionTypeId = "Test/Custom/ApicaLoadtest/1".parse().unwrap();
    let mut config = RuntimeConfig::new(id.clone());
    config.poll_interval = Duration::from_millis(20);
    config.poll_jitter = Duration::ZERO;
    let (runtime, _metrics) = mock_cp::runtime(&cp.uri(), &id, config);
    let shutdown = Shutdown::new();
    let run = tokio::spawn(runtime.run(shutdown.clone()));
    // Offered again and again: wait for five polls.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cp.received_requests().await.unwrap_or_default().len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent stopped polling"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.trigger();
    assert_eq!(run.await.unwrap().unanswered, 0);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let said = text
        .lines()
        .filter(|l| l.contains("another action type"))
        .collect::<Vec<_>>();
    assert_eq!(said.len(), 1, "logged once:\n{text}");
    assert!(
        said[0].contains("Deploy/Custom/SomeoneElse/3"),
        "{}",
        said[0]
    );
}
