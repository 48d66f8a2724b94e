//! The backend test the agent reports must be its job's: the id asked for is the id returned, and the runnable
//! file and idempotency key the backend reports are the job's. Otherwise the job fails (JobFailed) saying why,
//! instead of reporting someone else's test as its own (a scripted backend: wiremock on 127.0.0.1).

use std::collections::HashMap;
use std::time::Duration;

use agent::action::{Action, ActionError, JobContext, Step};
use agent::actions::{ApicaAction, ApicaClient, ApicaClientConfig};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "0b5c7c8e-1a2b-4c3d-8e9f-0a1b2c3d4e5f";

fn action(server: &MockServer) -> ApicaAction {
    let mut config = ApicaClientConfig::new(server.uri());
    config.initial_backoff = Duration::from_millis(10);
    ApicaAction::new(ApicaClient::new(config).unwrap(), Some("t".into()))
}

fn job() -> JobContext {
    JobContext {
        job_id: KEY.into(),
        configuration: HashMap::from([
            ("PresetName".to_string(), "smoke".to_string()),
            ("RunnableFile".to_string(), "mine.jmx".to_string()),
        ]),
        ..JobContext::default()
    }
}

async fn check_answered_with(body: Value) -> Result<Step, ActionError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/loadtests/153245"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let work = agent::WorkRef::new("153245").unwrap();
    action(&server).check(&job(), &work).await
}

async fn create_answered_with(body: Value) -> Result<Step, ActionError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/loadtests"))
        .respond_with(ResponseTemplate::new(201).set_body_json(body))
        .mount(&server)
        .await;
    action(&server).start(&job(), KEY).await
}

fn failure(result: Result<Step, ActionError>) -> String {
    match result {
        Err(ActionError::Failed(message)) => message,
        other => panic!("expected the job to fail (JobFailed), got {other:?}"),
    }
}

#[tokio::test]
async fn a_backend_answering_with_another_test_id_is_not_believed() {
    let message = failure(
        check_answered_with(json!({"jobId": 999, "status": "passed", "summary": "all good"})).await,
    );
    assert!(
        message.contains("153245") && message.contains("999"),
        "{message}"
    );
}

#[tokio::test]
async fn a_test_of_another_runnable_file_is_not_this_jobs() {
    let message = failure(
        check_answered_with(json!({
            "jobId": 153245, "status": "passed", "runnableFile": "someone-else.jmx", "idempotencyKey": "k2"
        }))
        .await,
    );
    assert!(
        message.contains("someone-else.jmx") && message.contains("mine.jmx"),
        "{message}"
    );
}

#[tokio::test]
async fn a_created_test_under_another_idempotency_key_is_not_this_jobs() {
    let message = failure(
        create_answered_with(json!({
            "jobId": 153245, "status": "running", "runnableFile": "mine.jmx", "idempotencyKey": "another-key"
        }))
        .await,
    );
    assert!(
        message.contains("another-key") && message.contains(KEY),
        "{message}"
    );
}

#[tokio::test]
async fn a_created_test_of_another_runnable_file_is_not_this_jobs() {
    let message = failure(
        create_answered_with(json!({
            "jobId": 153245, "status": "running", "runnableFile": "someone-else.jmx", "idempotencyKey": KEY
        }))
        .await,
    );
    assert!(message.contains("someone-else.jmx"), "{message}");
}

#[tokio::test]
async fn a_test_that_matches_or_reports_nothing_to_compare_is_followed() {
    let matching = check_answered_with(json!({
        "jobId": 153245, "status": "running", "percentComplete": 40, "runnableFile": "mine.jmx", "idempotencyKey": KEY
    }))
    .await;
    assert!(matches!(matching, Ok(Step::Running { .. })), "{matching:?}");
    // The documented API promises only jobId and status: nothing else to hold against the job.
    let bare = check_answered_with(json!({"jobId": 153245, "status": "running"})).await;
    assert!(matches!(bare, Ok(Step::Running { .. })), "{bare:?}");
    let created = create_answered_with(json!({"jobId": 153245, "status": "running"})).await;
    assert!(matches!(created, Ok(Step::Running { .. })), "{created:?}");
}
