//! Bearer-token authentication of the `/v1` API.

mod common;

use common::{TOKEN, assert_error, start, start_with};
use fake_apica::ApicaConfig;
use serde_json::json;

#[tokio::test]
async fn a_request_without_a_token_is_refused_with_401() {
    let h = start().await;
    let response = h
        .client
        .post(h.url("/v1/loadtests"))
        .json(&json!({"preset": "soak", "runnableFile": "a.jmx"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    assert_error(response, 401, "MissingToken", "Authorization").await;
    let response = h
        .client
        .get(h.url("/v1/loadtests/153245"))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "MissingToken", "Bearer").await;
    assert_eq!(h.apica.tests_for_runnable_file("a.jmx"), 0);
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_401_and_never_logged() {
    let h = start().await;
    let response = h
        .client
        .post(h.url("/v1/loadtests"))
        .bearer_auth("not-the-token")
        .json(&json!({"preset": "soak", "runnableFile": "a.jmx"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "InvalidToken", "not valid").await;
    let rejected = h.events("request_rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].data["status"], 401);
    let log = serde_json::to_string(&h.sim.events.all()).unwrap();
    assert!(
        !log.contains("not-the-token") && !log.contains(TOKEN),
        "{log}"
    );
}

#[tokio::test]
async fn another_scheme_or_an_empty_token_is_malformed() {
    let h = start().await;
    for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", TOKEN] {
        let response = h
            .client
            .get(h.url("/v1/loadtests/153245"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "MalformedAuthorization", "Bearer <token>").await;
    }
}

#[tokio::test]
async fn the_right_token_is_accepted_whatever_the_scheme_case() {
    let h = start().await;
    let id = h.create_ok("soak", "a.jmx", None).await;
    let response = h
        .client
        .get(h.url(&format!("/v1/loadtests/{id}")))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn more_tokens_can_be_added_through_the_admin_api_and_the_library() {
    let h = start().await;
    let get = |token: &'static str| {
        h.client
            .get(h.url("/_sim/tokens"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        get("x")
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()["count"],
        1
    );
    let added = h
        .admin("/_sim/tokens", json!({"token": "action-api-token"}))
        .await;
    assert_eq!(added.status(), 201);
    h.apica.add_token("library-token");
    for token in [TOKEN, "action-api-token", "library-token"] {
        let response = h
            .client
            .get(h.url("/v1/loadtests/1"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        // Past authentication: the test is unknown, not the token.
        assert_error(response, 404, "UnknownTest", "`1`").await;
    }
    let listing = get("x").await.unwrap().text().await.unwrap();
    assert!(
        !listing.contains("action-api-token"),
        "tokens are never listed: {listing}"
    );
    assert_error(
        h.admin("/_sim/tokens", json!({"token": " "})).await,
        422,
        "InvalidField",
        "token",
    )
    .await;
    assert_error(
        h.admin("/_sim/tokens", json!({"tok": "x"})).await,
        422,
        "InvalidField",
        "token",
    )
    .await;
}

#[tokio::test]
async fn a_backend_without_tokens_says_how_to_add_one() {
    let h = start_with(ApicaConfig::default()).await;
    let response = h
        .client
        .get(h.url("/v1/loadtests/1"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "InvalidToken", "--token").await;
}
