//! Every backend response body is bounded: a longer one is dropped at the limit, unread, and fails the job
//! with a message that names the limit and the setting (one 150 MB reply once peaked at 173 MB RSS).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agent::action::{Action, ActionError, JobContext};
use agent::actions::{ApicaAction, ApicaClient, ApicaClientConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "secret-token";
const MIB: usize = 1024 * 1024;

fn job() -> JobContext {
    JobContext {
        job_id: "11111111-2222-3333-4444-555555555555".into(),
        configuration: HashMap::from([
            ("PresetName".to_string(), "smoke".to_string()),
            ("RunnableFile".to_string(), "run.zip".to_string()),
        ]),
        ..JobContext::default()
    }
}

#[tokio::test]
async fn a_body_over_the_default_limit_fails_the_job_naming_the_limit_without_retrying() {
    let server = MockServer::start().await;
    // Valid JSON the old client parsed happily: a status padded to 2 MiB.
    let padded = json!({"jobId": 153245, "status": "running", "summary": "x".repeat(2 * MIB)});
    Mock::given(method("GET"))
        .and(path("/v1/loadtests/153245"))
        .respond_with(ResponseTemplate::new(200).set_body_json(padded))
        .expect(1) // refused at once, not retried
        .mount(&server)
        .await;
    let config = ApicaClientConfig::new(server.uri());
    assert_eq!(config.max_response_bytes, MIB, "the documented default");
    let action = ApicaAction::new(ApicaClient::new(config).unwrap(), Some(TOKEN.into()));
    let work = agent::WorkRef::new("153245").unwrap();
    let result = action.check(&job(), &work).await;
    let Err(ActionError::Failed(message)) = &result else {
        panic!("expected the job to fail, got {result:?}")
    };
    for needle in ["1048576-byte limit", "AGENT_APICA_MAX_RESPONSE_BYTES"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
}

#[tokio::test]
async fn a_body_that_never_ends_is_cut_at_the_limit_not_buffered_until_the_timeout() {
    // A backend that streams a chunked body forever: only a reader that stops at the limit returns early.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
                while socket.write_all(chunk.as_bytes()).await.is_ok() {}
            });
        }
    });
    let mut config = ApicaClientConfig::new(url);
    config.request_timeout = Duration::from_secs(10);
    config.retry_budget = Duration::from_secs(10);
    config.max_response_bytes = 256 * 1024;
    let started = Instant::now();
    let err = ApicaClient::new(config)
        .unwrap()
        .get_test(TOKEN, 153245)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("262144-byte limit"),
        "expected the limit to stop the read: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the read stopped at the limit, not at the timeout: {:?}",
        started.elapsed()
    );
}
