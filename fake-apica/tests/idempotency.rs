//! One idempotency key, one test; counts per runnable file and per key.

mod common;

use common::{assert_error, start, start_with};
use fake_apica::{ApicaConfig, CreateTest, DEFAULT_FIRST_JOB_ID};
use serde_json::Value;

#[tokio::test]
async fn the_same_key_returns_the_same_test_and_never_a_second_one() {
    let h = start().await;
    let first = h.create("soak", "e-1.jmx", Some("cp-job-1")).await;
    assert_eq!(first.status(), 201);
    assert_eq!(first.headers().get("idempotent-replayed").unwrap(), "false");
    let first: Value = first.json().await.unwrap();
    h.advance_by(std::time::Duration::from_secs(600));
    let again = h.create("soak", "e-1.jmx", Some("cp-job-1")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["jobId"], first["jobId"]);
    assert_eq!(again["createdAt"], first["createdAt"]);
    assert_eq!(h.apica.tests_for_idempotency_key("cp-job-1"), 1);
    assert_eq!(h.apica.create_requests_for_idempotency_key("cp-job-1"), 2);
    assert_eq!(h.apica.tests_for_runnable_file("e-1.jmx"), 1);
    assert_eq!(h.events("test_created").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_key_make_one_test() {
    let h = start().await;
    let mut handles = Vec::new();
    for _ in 0..16 {
        let (client, url) = (h.client.clone(), h.url("/v1/loadtests"));
        handles.push(tokio::spawn(async move {
            let body = serde_json::json!({"preset": "soak", "runnableFile": "race.jmx", "idempotencyKey": "k"});
            let r = client.post(url).bearer_auth(common::TOKEN).json(&body).send().await.unwrap();
            r.json::<Value>().await.unwrap()["jobId"].as_u64().unwrap()
        }));
    }
    let mut ids = Vec::new();
    for handle in handles {
        ids.push(handle.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(h.apica.tests_for_runnable_file("race.jmx"), 1);
    assert_eq!(h.apica.create_requests_for_idempotency_key("k"), 16);
}

#[tokio::test]
async fn without_a_key_every_create_is_a_new_test_with_the_next_id() {
    let h = start().await;
    let a = h.create_ok("soak", "e-2.jmx", None).await;
    let b = h.create_ok("soak", "e-2.jmx", None).await;
    assert_eq!((a, b), (DEFAULT_FIRST_JOB_ID, DEFAULT_FIRST_JOB_ID + 1));
    assert_eq!(h.apica.tests_for_runnable_file("e-2.jmx"), 2);
    assert_eq!(h.apica.tests_for_runnable_file("never.jmx"), 0);
}

#[tokio::test]
async fn job_ids_start_at_the_configured_base() {
    let h = start_with(ApicaConfig {
        first_job_id: 9000,
        ..ApicaConfig::new(common::TOKEN, common::presets())
    })
    .await;
    assert_eq!(h.create_ok("soak", "a.jmx", None).await, 9000);
    assert_eq!(h.create_ok("soak", "a.jmx", None).await, 9001);
}

#[tokio::test]
async fn a_key_reused_for_another_test_is_a_conflict_that_creates_nothing() {
    let h = start().await;
    let id = h.create_ok("soak", "e-3.jmx", Some("cp-job-3")).await;
    let body = assert_error(
        h.create("spike", "e-3.jmx", Some("cp-job-3")).await,
        409,
        "IdempotencyKeyConflict",
        &id.to_string(),
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("soak"), "{body}");
    assert_eq!(h.apica.tests().len(), 1);
}

#[tokio::test]
async fn the_admin_listing_counts_tests_per_file_and_per_key() {
    let h = start().await;
    h.create_ok("soak", "e-1.jmx", Some("k1")).await;
    h.create_ok("soak", "e-1.jmx", Some("k1")).await;
    h.create_ok("spike", "e-2.jmx", Some("k2")).await;
    h.create_ok("spike", "e-2.jmx", None).await;
    let doc: Value = h
        .client
        .get(h.url("/_sim/tests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counts = &doc["counts"];
    assert_eq!(counts["total"], 3);
    assert_eq!(counts["byRunnableFile"]["e-1.jmx"], 1);
    assert_eq!(counts["byRunnableFile"]["e-2.jmx"], 2);
    assert_eq!(
        counts["byIdempotencyKey"]["k1"],
        serde_json::json!({"tests": 1, "requests": 2})
    );
    assert_eq!(counts["requests"]["create"], 4);
    assert_eq!(doc["tests"].as_array().unwrap().len(), 3);
    // The same counts in process, for the runner.
    assert_eq!(h.apica.counts().by_runnable_file["e-2.jmx"], 2);
}

#[tokio::test]
async fn the_library_creates_with_the_same_rules() {
    let h = start().await;
    let first = h
        .apica
        .create_test(&CreateTest::new("soak", "lib.jmx").with_key("k"))
        .unwrap();
    let again = h
        .apica
        .create_test(&CreateTest::new("soak", "lib.jmx").with_key("k"))
        .unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(first.test.job_id, again.test.job_id);
}
