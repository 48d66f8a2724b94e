//! Every bad input gets its status and a JSON message that names the problem; nothing panics or hangs.

mod common;

use common::{TOKEN, assert_error, start};
use serde_json::json;

async fn post_raw(h: &common::Harness, body: impl Into<reqwest::Body>) -> reqwest::Response {
    h.client
        .post(h.url("/v1/loadtests"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unknown_test_is_404_naming_the_id() {
    let h = start().await;
    assert_error(h.get(999).await, 404, "UnknownTest", "`999`").await;
    for id in [
        "abc",
        "-1",
        "99999999999999999999999",
        "1.5",
        "%F0%9F%92%A5",
    ] {
        let response = h
            .client
            .get(h.url(&format!("/v1/loadtests/{id}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_error(response, 404, "UnknownTest", "no load test").await;
    }
}

#[tokio::test]
async fn an_unknown_preset_is_422_listing_the_known_ones() {
    let h = start().await;
    let body = assert_error(
        h.create("nope", "a.jmx", None).await,
        422,
        "UnknownPreset",
        "`nope`",
    )
    .await;
    assert_eq!(body["field"], "preset");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("soak, spike, two-hours"),
        "{body}"
    );
}

#[tokio::test]
async fn a_missing_field_is_422_naming_it() {
    let h = start().await;
    let body = assert_error(
        post_raw(&h, r#"{"runnableFile": "a.jmx"}"#).await,
        422,
        "MissingField",
        "`preset`",
    )
    .await;
    assert_eq!(body["field"], "preset");
    let body = assert_error(
        post_raw(&h, r#"{"preset": "soak"}"#).await,
        422,
        "MissingField",
        "`runnableFile`",
    )
    .await;
    assert_eq!(body["field"], "runnableFile");
    assert_error(
        post_raw(&h, r#"{"preset": null, "runnableFile": "a"}"#).await,
        422,
        "MissingField",
        "`preset`",
    )
    .await;
}

#[tokio::test]
async fn a_field_of_the_wrong_type_or_empty_is_422_naming_it() {
    let h = start().await;
    let cases = [
        (
            json!({"preset": 1, "runnableFile": "a"}),
            "`preset` must be a string, got a number",
        ),
        (
            json!({"preset": "soak", "runnableFile": ["a"]}),
            "`runnableFile` must be a string, got an array",
        ),
        (
            json!({"preset": "soak", "runnableFile": "a", "idempotencyKey": true}),
            "`idempotencyKey` must be a string",
        ),
        (
            json!({"preset": "", "runnableFile": "a"}),
            "`preset` must not be empty",
        ),
        (
            json!({"preset": "soak", "runnableFile": "a".repeat(2000)}),
            "longer than 1024",
        ),
    ];
    for (body, needle) in cases {
        assert_error(
            post_raw(&h, body.to_string()).await,
            422,
            "InvalidField",
            needle,
        )
        .await;
    }
}

#[tokio::test]
async fn malformed_json_is_400_naming_the_problem() {
    let h = start().await;
    assert_error(
        post_raw(&h, "{\"preset\": ").await,
        400,
        "MalformedJson",
        "EOF",
    )
    .await;
    assert_error(
        post_raw(&h, "preset=soak").await,
        400,
        "MalformedJson",
        "line 1",
    )
    .await;
    assert_error(post_raw(&h, "").await, 400, "MalformedJson", "empty").await;
    assert_error(
        post_raw(&h, "[1, 2]").await,
        400,
        "MalformedJson",
        "JSON object",
    )
    .await;
    assert_error(
        post_raw(&h, vec![0xff, 0xfe, 0x00]).await,
        400,
        "MalformedJson",
        "malformed",
    )
    .await;
    assert_eq!(h.apica.tests().len(), 0);
}

#[tokio::test]
async fn a_body_over_one_mib_is_413() {
    let h = start().await;
    let padding = "x".repeat(1024 * 1024);
    let body = format!(r#"{{"preset": "soak", "runnableFile": "a.jmx", "padding": "{padding}"}}"#);
    assert_error(post_raw(&h, body).await, 413, "PayloadTooLarge", "1048576").await;
    // The admin API has the same limit.
    let admin = h
        .client
        .post(h.url("/_sim/faults"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_error(admin, 413, "PayloadTooLarge", "limit").await;
    // Just under the limit is fine.
    let fits = format!(
        r#"{{"preset": "soak", "runnableFile": "a.jmx", "padding": "{}"}}"#,
        "x".repeat(1024 * 1000)
    );
    assert_eq!(post_raw(&h, fits).await.status(), 201);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let h = start().await;
    assert_error(
        h.client.get(h.url("/v2/everything")).send().await.unwrap(),
        404,
        "NotFound",
        "/v2/everything",
    )
    .await;
    assert_error(
        h.client
            .delete(h.url("/v1/loadtests"))
            .send()
            .await
            .unwrap(),
        405,
        "MethodNotAllowed",
        "DELETE",
    )
    .await;
}

#[tokio::test]
async fn rejected_requests_are_recorded_as_warnings_with_their_code() {
    let h = start().await;
    h.create("nope", "a.jmx", None).await;
    post_raw(&h, "{").await;
    let rejected = h.events("request_rejected");
    let codes: Vec<&str> = rejected
        .iter()
        .map(|e| e.data["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["UnknownPreset", "MalformedJson"]);
    assert_eq!(rejected[0].severity, sim_core::Severity::Warning);
}

#[tokio::test]
async fn bad_presets_through_the_admin_api_are_refused_naming_the_problem() {
    let h = start().await;
    let cases = [
        (
            json!({"name": "x", "duration": "forever", "outcome": "passed"}),
            "forever",
        ),
        (
            json!({"name": "x", "duration": "1h", "outcome": "failed"}),
            "needs a reason",
        ),
        (json!({"name": "x", "duration": "1h"}), "outcome"),
        (json!("x=1h:maybe"), "maybe"),
    ];
    for (body, needle) in cases {
        assert_error(
            h.admin("/_sim/presets", body).await,
            422,
            "InvalidPreset",
            needle,
        )
        .await;
    }
    let added = h.admin("/_sim/presets", json!(["quick=1m:passed", {"name": "slow", "duration": "3h", "outcome": "failed", "reason": "errors > 1%"}])).await;
    assert_eq!(added.status(), 201);
    let doc: serde_json::Value = added.json().await.unwrap();
    let names: Vec<&str> = doc["presets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quick", "slow", "soak", "spike", "two-hours"]);
    assert_eq!(h.create("quick", "q.jmx", None).await.status(), 201);
    assert_eq!(
        h.client
            .delete(h.url("/_sim/presets/quick"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_error(
        h.create("quick", "q.jmx", None).await,
        422,
        "UnknownPreset",
        "quick",
    )
    .await;
}

/// A page in the user's browser cannot use the admin API: it cannot mint a token with a form or
/// `text/plain`, nor from another origin, nor through a rebound host name.
#[tokio::test]
async fn the_admin_api_refuses_what_a_web_page_can_send() {
    let h = start().await;
    let before = h.apica.token_count();
    let mint = |content_type: &'static str, extra: Option<(&'static str, &'static str)>| {
        let mut req = h
            .client
            .post(h.url("/_sim/tokens"))
            .header("content-type", content_type)
            .body(r#"{"token": "minted-by-a-page"}"#);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send()
    };
    assert_error(
        mint("text/plain", None).await.unwrap(),
        415,
        "UnsupportedMediaType",
        "application/json",
    )
    .await;
    assert_error(
        mint("application/x-www-form-urlencoded", None)
            .await
            .unwrap(),
        415,
        "UnsupportedMediaType",
        "JSON",
    )
    .await;
    assert_error(
        mint("application/json", Some(("origin", "https://evil.example")))
            .await
            .unwrap(),
        403,
        "ForeignOrigin",
        "evil.example",
    )
    .await;
    assert_error(
        mint("application/json", Some(("host", "rebound.evil.example")))
            .await
            .unwrap(),
        403,
        "ForeignHost",
        "rebound.evil.example",
    )
    .await;
    assert_eq!(h.apica.token_count(), before, "no token was minted");
    // The same request as JSON, from this machine, works.
    assert_eq!(mint("application/json", None).await.unwrap().status(), 201);
    assert_eq!(h.apica.token_count(), before + 1);
}

/// Test creation is bounded per token (every test is kept): past the quota, a clear 429; a replay of an
/// existing test is not a new one and still answers.
#[tokio::test]
async fn a_token_past_its_test_quota_gets_a_429_that_says_so() {
    let mut config = fake_apica::ApicaConfig::new(TOKEN, common::presets()).with_seed(7);
    config.max_tests_per_token = 3;
    let h = common::start_with(config).await;
    let create = |key: &'static str| {
        h.client
            .post(h.url("/v1/loadtests"))
            .bearer_auth(TOKEN)
            .json(&json!({"preset": "soak", "runnableFile": "q.jmx", "idempotencyKey": key}))
            .send()
    };
    for key in ["a", "b", "c"] {
        assert_eq!(create(key).await.unwrap().status(), 201, "{key}");
    }
    assert_error(
        create("d").await.unwrap(),
        429,
        "TestQuotaExceeded",
        "--max-tests-per-token",
    )
    .await;
    assert_eq!(
        create("a").await.unwrap().status(),
        201,
        "a replay still answers"
    );
    assert_eq!(h.apica.tests().len(), 3);
}
