//! Each fault kind, scripted through the admin API (JSON) or the library.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, assert_error, start, start_with};
use fake_apica::{ApicaConfig, Fault, FaultId, LostTarget};
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

async fn add_fault(h: &Harness, fault: Value) -> u64 {
    let response = h.admin("/_sim/faults", fault).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["ids"][0]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn an_outage_answers_503_for_its_window_only() {
    let h = start().await;
    let id = h.create_ok("two-hours", "e-1.jmx", None).await;
    add_fault(
        &h,
        json!({"kind": "outage", "from": "+00:10:00", "for": "10m"}),
    )
    .await;
    // The window's edges are clock timers, so the runner steps to them.
    assert_eq!(
        h.sim.clock.next_deadline().unwrap().label,
        "apica fault 1 (outage) starts"
    );
    h.advance_to(10 * MINUTE - Duration::from_secs(1));
    h.get_ok(id).await;
    h.advance_to(10 * MINUTE);
    assert_error(h.get(id).await, 503, "ServiceUnavailable", "+00:20:00").await;
    assert_error(
        h.create("soak", "e-2.jmx", Some("k")).await,
        503,
        "ServiceUnavailable",
        "outage",
    )
    .await;
    h.advance_to(20 * MINUTE);
    h.get_ok(id).await;
    // Refused before any state changed: the create made nothing, and a retry now works.
    assert_eq!(h.apica.tests_for_runnable_file("e-2.jmx"), 0);
    h.create_ok("soak", "e-2.jmx", Some("k")).await;
    let injected = h.events("fault_injected");
    assert_eq!(injected.len(), 2);
    assert_eq!(
        (
            injected[0].data["status"].clone(),
            injected[0].data["operation"].clone()
        ),
        (json!(503), json!("get"))
    );
    let edges: Vec<String> = h
        .sim
        .events
        .all()
        .iter()
        .filter(|e| e.kind.as_str().starts_with("fault_"))
        .map(|e| format!("{} {}", e.stamp(), e.kind))
        .collect();
    assert_eq!(
        edges[..3],
        [
            "+00:00:00 fault_added",
            "+00:10:00 fault_started",
            "+00:10:00 fault_injected"
        ]
    );
    assert!(
        edges.contains(&"+00:20:00 fault_ended".to_string()),
        "{edges:?}"
    );
}

#[tokio::test]
async fn an_outage_from_the_library_and_its_removal() {
    let h = start().await;
    let now = h.sim.clock.now();
    let fault = h
        .apica
        .add_fault(Fault::outage(now, now.plus(MINUTE)))
        .unwrap();
    assert_error(h.get(1).await, 503, "ServiceUnavailable", "unavailable").await;
    assert!(h.apica.remove_fault(fault));
    assert!(!h.apica.remove_fault(fault));
    assert_error(h.get(1).await, 404, "UnknownTest", "1").await;
    // Its pending end timer went with it.
    assert!(h.sim.clock.next_deadline().is_none());
}

#[tokio::test]
async fn an_error_rate_is_seeded_so_runs_repeat() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let h =
            start_with(ApicaConfig::new(common::TOKEN, common::presets()).with_seed(seed)).await;
        add_fault(
            &h,
            json!({"kind": "error_rate", "rate": 0.5, "status": 502}),
        )
        .await;
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(h.get(1).await.status().as_u16());
        }
        out
    }
    let (a, b, other) = (statuses(11).await, statuses(11).await, statuses(12).await);
    assert_eq!(a, b, "the same seed gives the same failures");
    assert_ne!(a, other, "another seed gives others");
    let failed = a.iter().filter(|s| **s == 502).count();
    assert!(
        (8..=32).contains(&failed),
        "about half of 40 fail: {failed}"
    );
    assert!(a.iter().all(|s| *s == 502 || *s == 404), "{a:?}");
}

#[tokio::test]
async fn an_error_rate_of_one_fails_everything_with_a_json_error() {
    let h = start().await;
    add_fault(&h, json!({"kind": "error_rate", "rate": 1.0})).await;
    assert_error(
        h.create("soak", "a.jmx", None).await,
        500,
        "InjectedError",
        "error_rate",
    )
    .await;
    assert_eq!(h.apica.tests().len(), 0);
}

#[tokio::test]
async fn latency_delays_answers_in_real_time_while_the_request_counts_as_in_flight() {
    let h = start().await;
    add_fault(&h, json!({"kind": "latency", "latency": "300ms"})).await;
    let started = Instant::now();
    let (client, url) = (h.client.clone(), h.url("/v1/loadtests/1"));
    let request = tokio::spawn(async move {
        client
            .get(url)
            .bearer_auth(common::TOKEN)
            .send()
            .await
            .unwrap()
            .status()
    });
    // The backend counts itself busy while the request waits, so the runner does not move the clock.
    let activity = h.sim.activity.clone();
    loop {
        let changed = activity.notified();
        if activity.snapshot().in_flight == 1 {
            break;
        }
        changed.await;
    }
    assert_eq!(request.await.unwrap(), 404);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(h.sim.activity.snapshot().in_flight, 0);
    assert_eq!(
        h.sim.clock.elapsed(),
        Duration::ZERO,
        "latency is real time, not simulated"
    );
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after() {
    let h = start().await;
    add_fault(&h, json!({"kind": "rate_limit", "limit": 2, "per": "1h"})).await;
    assert_eq!(h.get(1).await.status(), 404);
    assert_eq!(h.get(1).await.status(), 404);
    let limited = h.get(1).await;
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    assert_error(limited, 429, "TooManyRequests", "at most 2 per 1h").await;
    h.apica.clear_faults();
    assert_eq!(h.get(1).await.status(), 404);
}

#[tokio::test]
async fn a_lost_test_answers_404_after_creation() {
    let h = start().await;
    let lost = h.create_ok("two-hours", "e-1.jmx", None).await;
    let kept = h.create_ok("two-hours", "e-2.jmx", None).await;
    add_fault(&h, json!({"kind": "lost_test", "jobId": lost})).await;
    assert_error(h.get(lost).await, 404, "UnknownTest", &lost.to_string()).await;
    assert_error(h.abort(lost).await, 404, "UnknownTest", &lost.to_string()).await;
    h.get_ok(kept).await;
    let page = h
        .client
        .get(h.url(&format!("/jobs/{lost}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    // The harness still sees it, marked lost, and it still counts as started.
    let admin: Value = h
        .client
        .get(h.url(&format!("/_sim/tests/{lost}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin["lost"], true);
    assert_eq!(h.apica.tests_for_runnable_file("e-1.jmx"), 1);
    let injected = h.events("fault_injected");
    assert_eq!(injected.len(), 2);
    assert_eq!(injected[0].data["code"], "UnknownTest");
    assert!(
        h.events("request_rejected").is_empty(),
        "a lost test is a fault, not a bad request"
    );
}

#[tokio::test]
async fn a_lost_runnable_file_hides_tests_created_later_too() {
    let h = start().await;
    h.apica
        .add_fault(Fault::lost_test(LostTarget::RunnableFile("e-9.jmx".into())))
        .unwrap();
    let id = h.create_ok("soak", "e-9.jmx", Some("k9")).await;
    assert_error(h.get(id).await, 404, "UnknownTest", &id.to_string()).await;
    h.apica.clear_faults();
    h.get_ok(id).await;
}

#[tokio::test]
async fn a_slow_start_holds_progress_at_zero_then_counts_the_duration_from_the_start() {
    let h = start().await;
    add_fault(&h, json!({"kind": "slow_start", "delay": "5m"})).await;
    let id = h.create_ok("spike", "e-1.jmx", None).await;
    let t = h.get_ok(id).await;
    assert_eq!(
        (
            t["status"].clone(),
            t["percentComplete"].clone(),
            t["startedAt"].clone()
        ),
        (json!("running"), json!(0), Value::Null)
    );
    assert!(t["summary"].as_str().unwrap().contains("waiting"), "{t}");
    h.advance_to(4 * MINUTE);
    assert_eq!(h.get_ok(id).await["percentComplete"], 0);
    h.advance_to(10 * MINUTE);
    let t = h.get_ok(id).await;
    assert_eq!(
        (t["percentComplete"].clone(), t["startedAt"].clone()),
        (json!(50), json!("2025-01-01T00:05:00.000Z"))
    );
    h.advance_to(15 * MINUTE - Duration::from_secs(1));
    assert_eq!(h.get_ok(id).await["status"], "running");
    h.advance_to(15 * MINUTE);
    assert_eq!(h.get_ok(id).await["status"], "failed");
    let started = h.events("test_started");
    assert_eq!(
        (started.len(), started[0].stamp().as_str()),
        (1, "+00:05:00")
    );
    assert_eq!(h.events("test_finished")[0].stamp(), "+00:15:00");
}

#[tokio::test]
async fn faults_are_listed_and_cleared_through_the_admin_api() {
    let h = start().await;
    let response = h
        .admin("/_sim/faults", json!([{"kind": "latency", "latency": "1ms"}, {"kind": "lost_test", "runnableFile": "x.jmx", "until": "+01:00:00"}]))
        .await;
    assert_eq!(response.status(), 201);
    let listed: Value = h
        .client
        .get(h.url("/_sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let faults = listed["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2);
    assert_eq!(faults[1]["until"], "+01:00:00");
    assert_eq!(faults[1]["runnableFile"], "x.jmx");
    let gone = h
        .client
        .delete(h.url("/_sim/faults/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert_eq!(
        h.client
            .delete(h.url("/_sim/faults/2"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let cleared: Value = h
        .client
        .delete(h.url("/_sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["removed"], 1);
    assert!(h.apica.faults().is_empty());
    assert_eq!(
        h.apica
            .add_fault(Fault::latency(Duration::from_millis(1)))
            .unwrap(),
        FaultId(3)
    );
}

#[tokio::test]
async fn bad_fault_definitions_are_refused_naming_the_problem() {
    let h = start().await;
    let cases = [
        (json!({"kind": "meteor"}), 422, "meteor"),
        (json!({"kind": "outage", "colour": "red"}), 422, "colour"),
        (
            json!({"kind": "error_rate", "rate": 1.5}),
            422,
            "between 0 and 1",
        ),
        (
            json!({"kind": "error_rate", "rate": 0.5, "status": 200}),
            422,
            "400..=599",
        ),
        (json!({"kind": "slow_start"}), 422, "delay"),
        (
            json!({"kind": "outage", "from": "+01:00:00", "until": "+00:30:00"}),
            422,
            "before",
        ),
        (
            json!({"kind": "outage", "from": "whenever"}),
            422,
            "whenever",
        ),
        (
            json!({"kind": "lost_test", "delay": "5m"}),
            422,
            "`delay` does not apply",
        ),
    ];
    for (body, status, needle) in cases {
        assert_error(
            h.admin("/_sim/faults", body.clone()).await,
            status,
            "InvalidFault",
            needle,
        )
        .await;
    }
    // All or nothing: one bad fault in a list adds none.
    let mixed = h
        .admin(
            "/_sim/faults",
            json!([{"kind": "outage"}, {"kind": "meteor"}]),
        )
        .await;
    assert_eq!(mixed.status(), 422);
    assert!(h.apica.faults().is_empty());
    let broken = h
        .client
        .post(h.url("/_sim/faults"))
        .header("content-type", "application/json")
        .body("{kind: outage")
        .send()
        .await
        .unwrap();
    assert_error(broken, 400, "MalformedJson", "key must be a string").await;
}
