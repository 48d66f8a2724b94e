//! Every error the admin API answers has its documented JSON shape `{code, message}`, the framework's
//! own rejections included: a bad query string, a body over the limit, JSON that does not parse.

use serde_json::Value;
use tests::TestCp;

async fn json_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(kind.contains("application/json"), "content-type {kind}");
    let body: Value = resp.json().await.expect("a JSON body");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

#[tokio::test]
async fn admin_errors_are_json_whatever_rejects_the_request() {
    let cp = TestCp::start().await;
    let http = reqwest::Client::new();
    let base = cp.url();
    let bad_query = http
        .get(format!("{base}/_sim/events?since=yesterday"))
        .send()
        .await
        .expect("GET");
    let body = json_error(bad_query, 400, "BadRequest").await;
    assert!(
        body["message"].as_str().unwrap_or("").contains("since"),
        "{body}"
    );
    let huge = format!("{{\"operation\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let too_big = http
        .post(format!("{base}/_sim/faults"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("POST");
    json_error(too_big, 413, "PayloadTooLarge").await;
    let broken = http
        .post(format!("{base}/_sim/executions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    assert!(broken.status().is_client_error());
    let body: Value = broken.json().await.expect("a JSON body");
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "{body}"
    );
}
