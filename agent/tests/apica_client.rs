//! The Apica client and action against a scripted backend (wiremock on 127.0.0.1): what each kind of
//! backend answer becomes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agent::action::{Action, ActionError, FailureKind, JobContext, Step};
use agent::actions::{ApicaAction, ApicaClient, ApicaClientConfig, ApicaError};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "secret-token";

fn client(server: &MockServer) -> ApicaClient {
    let mut config = ApicaClientConfig::new(server.uri());
    config.request_timeout = Duration::from_millis(300);
    config.retry_budget = Duration::from_millis(1000);
    config.initial_backoff = Duration::from_millis(20);
    ApicaClient::new(config).unwrap()
}

fn job(config: &[(&str, &str)]) -> JobContext {
    JobContext {
        job_id: "11111111-2222-3333-4444-555555555555".into(),
        configuration: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        ..JobContext::default()
    }
}

fn created() -> serde_json::Value {
    json!({"jobId": 153245, "status": "running", "detailsUrl": "http://backend/jobs/153245"})
}

#[tokio::test]
async fn success_creates_the_test_with_the_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/loadtests"))
        .and(header("authorization", "Bearer secret-token"))
        .and(body_json(
            json!({"preset": "smoke", "runnableFile": "run.zip", "idempotencyKey": "job-1"}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(created()))
        .expect(1)
        .mount(&server)
        .await;
    let test = client(&server)
        .create_test(TOKEN, "smoke", "run.zip", "job-1")
        .await
        .unwrap();
    assert_eq!(test.job_id, 153245);
    assert_eq!(
        test.details_url.as_deref(),
        Some("http://backend/jobs/153245")
    );
}

#[tokio::test]
async fn a_5xx_then_success_is_retried_within_the_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/loadtests/153245"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"code": "ServiceUnavailable", "message": "down"})),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/loadtests/153245"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"jobId": 153245, "status": "running", "percentComplete": 40, "summary": "ok"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let status = client(&server).get_test(TOKEN, 153245).await.unwrap();
    assert_eq!(status.status, "running");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_lasting_429_gives_up_after_the_attempts_as_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"code": "TooManyRequests", "message": "slow down"})),
        )
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server).get_test(TOKEN, 1).await.unwrap_err();
    let ApicaError::Unavailable { attempts, last, .. } = &err else {
        panic!("expected unavailable, got {err:?}")
    };
    assert_eq!(*attempts, 3);
    assert!(last.contains("429") && last.contains("slow down"), "{last}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_not_waited_for() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_json(json!({"code": "TooManyRequests", "message": "retry after 30 s"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(&server).get_test(TOKEN, 1).await.unwrap_err();
    assert!(
        matches!(err, ApicaError::Unavailable { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn a_timeout_is_bounded_by_the_retry_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(created())
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = client(&server).get_test(TOKEN, 153245).await.unwrap_err();
    let elapsed = started.elapsed();
    let ApicaError::Unavailable { last, .. } = &err else {
        panic!("expected unavailable, got {err:?}")
    };
    assert_eq!(last, "timed out");
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
}

#[tokio::test]
async fn malformed_json_is_reported_not_panicked_on() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>proxy error</html>"))
        .expect(2) // the client, then the action
        .mount(&server)
        .await;
    let err = client(&server).get_test(TOKEN, 153245).await.unwrap_err();
    assert!(
        matches!(err, ApicaError::Malformed { status: 200, .. }),
        "{err:?}"
    );
    // Through the action it costs a round rather than failing the pipeline.
    let action = ApicaAction::new(client(&server), Some(TOKEN.into()));
    let work = agent::WorkRef::new("153245").unwrap();
    assert!(matches!(
        action.check(&job(&[]), &work).await,
        Err(ActionError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_401_is_a_permission_error_without_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"code": "InvalidToken", "message": "bad token"})),
        )
        .expect(2) // the client, then the action: one request each, no retry
        .mount(&server)
        .await;
    let err = client(&server)
        .create_test("wrong", "smoke", "run.zip", "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApicaError::Unauthorized(r) if r.status == 401 && r.message == "bad token"),
        "{err:?}"
    );
    let action = ApicaAction::new(client(&server), Some("wrong".into()));
    let err = action
        .start(
            &job(&[("PresetName", "smoke"), ("RunnableFile", "run.zip")]),
            "k",
        )
        .await
        .unwrap_err();
    let ActionError::Permission(message) = err else {
        panic!("expected a permission error")
    };
    assert!(
        message.contains("ApiToken") && message.contains("bad token"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_preset_is_a_configuration_error_naming_preset_name() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"code": "UnknownPreset", "message": "unknown preset `nope`; known presets: smoke", "field": "preset"}),
        ))
        .mount(&server)
        .await;
    let action = ApicaAction::new(client(&server), Some(TOKEN.into()));
    let err = action
        .start(
            &job(&[("PresetName", "nope"), ("RunnableFile", "run.zip")]),
            "k",
        )
        .await
        .unwrap_err();
    let step = err.clone().into_failure(None);
    assert!(
        matches!(&err, ActionError::Configuration { property, .. } if property == "PresetName"),
        "{err:?}"
    );
    let Step::Failed { kind, message, .. } = step else {
        panic!()
    };
    assert_eq!(kind, FailureKind::ConfigurationError);
    assert!(
        message.contains("PresetName") && message.contains("known presets: smoke"),
        "{message}"
    );
}

#[tokio::test]
async fn missing_properties_are_named_before_the_backend_is_called() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created()))
        .expect(0)
        .mount(&server)
        .await;
    let action = ApicaAction::new(client(&server), Some(TOKEN.into()));
    let err = action
        .start(&job(&[("RunnableFile", "run.zip")]), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActionError::Configuration { property, .. } if property == "PresetName")
    );
    let err = action
        .start(&job(&[("PresetName", "smoke")]), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActionError::Configuration { property, .. } if property == "RunnableFile")
    );
    let no_token = ApicaAction::new(client(&server), None);
    let err = no_token
        .start(&job(&[("PresetName", "smoke"), ("RunnableFile", "r")]), "k")
        .await
        .unwrap_err();
    assert!(matches!(&err, ActionError::Configuration { property, .. } if property == "ApiToken"));
}

#[tokio::test]
async fn the_job_api_token_overrides_the_agent_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer from-the-job"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created()))
        .expect(1)
        .mount(&server)
        .await;
    let action = ApicaAction::new(client(&server), Some(TOKEN.into()));
    let step = action
        .start(
            &job(&[
                ("PresetName", "smoke"),
                ("RunnableFile", "r"),
                ("ApiToken", "from-the-job"),
            ]),
            "k",
        )
        .await
        .unwrap();
    let Step::Running {
        work,
        external_execution_id,
        ..
    } = step
    else {
        panic!("expected running: {step:?}")
    };
    assert_eq!(
        (work.as_str(), external_execution_id.as_str()),
        ("153245", "153245")
    );
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = ApicaClientConfig::new(format!("http://127.0.0.1:{port}"));
    config.initial_backoff = Duration::from_millis(10);
    let err = ApicaClient::new(config)
        .unwrap()
        .get_test(TOKEN, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApicaError::Unavailable { attempts: 3, .. }),
        "{err:?}"
    );
}
