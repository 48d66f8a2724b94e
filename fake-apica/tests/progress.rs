//! Progress over simulated time, the outcome exactly at the end, and abort.

mod common;

use std::time::Duration;

use common::{TWO_HOURS, assert_error, start};
use serde_json::{Value, json};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_two_hour_test_is_running_at_1_59_59_and_passed_at_2_00_00() {
    let h = start().await;
    let id = h.create_ok("two-hours", "e-1.jmx", Some("k")).await;
    let t = h.get_ok(id).await;
    assert_eq!(
        (t["status"].clone(), t["percentComplete"].clone()),
        (json!("running"), json!(0))
    );
    assert_eq!(t["startedAt"], "2025-01-01T00:00:00.000Z");
    assert_eq!(t["finishedAt"], Value::Null);

    h.advance_to(Duration::from_secs(30 * 60));
    assert_eq!(h.get_ok(id).await["percentComplete"], 25);
    h.advance_to(TWO_HOURS - SECOND);
    let t = h.get_ok(id).await;
    assert_eq!(
        (t["status"].clone(), t["percentComplete"].clone()),
        (json!("running"), json!(99))
    );
    assert!(h.events("test_finished").is_empty());

    h.advance_to(TWO_HOURS);
    let t = h.get_ok(id).await;
    assert_eq!(
        (t["status"].clone(), t["percentComplete"].clone()),
        (json!("passed"), json!(100))
    );
    assert_eq!(t["finishedAt"], "2025-01-01T02:00:00.000Z");
    assert!(t["summary"].as_str().unwrap().contains("passed"), "{t}");
}

#[tokio::test]
async fn the_end_is_recorded_at_its_own_sim_time_even_if_nobody_polls() {
    let h = start().await;
    let id = h.create_ok("two-hours", "e-1.jmx", None).await;
    assert_eq!(
        h.sim.clock.next_deadline().unwrap().label,
        format!("apica test {id} ends")
    );
    // One big jump: the timer fires at +02:00:00 on the way to +05:00:00.
    h.advance_to(Duration::from_secs(5 * 3600));
    let finished = h.events("test_finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(
        (finished[0].sim_ms, finished[0].stamp().as_str()),
        (7_200_000, "+02:00:00")
    );
    assert_eq!(finished[0].data["status"], "passed");
    assert_eq!(finished[0].data["jobId"], id);
    // Reading it afterwards records nothing more.
    h.get_ok(id).await;
    assert_eq!(h.events("test_finished").len(), 1);
}

#[tokio::test]
async fn a_failing_preset_fails_at_its_end_with_the_reason_as_summary() {
    let h = start().await;
    let id = h.create_ok("spike", "e-2.jmx", None).await;
    h.advance_to(Duration::from_secs(599));
    assert_eq!(h.get_ok(id).await["status"], "running");
    h.advance_to(Duration::from_secs(600));
    let t = h.get_ok(id).await;
    assert_eq!(t["status"], "failed");
    assert_eq!(t["percentComplete"], 100);
    assert_eq!(t["summary"], "failed: p95 response time 2300 ms > 2000 ms");
    assert_eq!(h.events("test_finished")[0].data["summary"], t["summary"]);
}

#[tokio::test]
async fn a_six_hour_soak_ends_after_six_simulated_hours_not_before() {
    let h = start().await;
    let id = h.create_ok("soak", "soak.jmx", None).await;
    h.advance_to(Duration::from_secs(3 * 3600));
    assert_eq!(h.get_ok(id).await["percentComplete"], 50);
    assert_eq!(
        h.sim.clock.advance_to_next().unwrap(),
        Some(h.sim.clock.origin().plus(Duration::from_secs(6 * 3600)))
    );
    assert_eq!(h.get_ok(id).await["status"], "passed");
}

#[tokio::test]
async fn the_admin_clock_endpoint_moves_a_manual_backend() {
    let h = start().await;
    let id = h.create_ok("two-hours", "e-1.jmx", None).await;
    let moved: Value = h
        .admin("/_sim/clock", json!({"by": "1h"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved["elapsed"], "+01:00:00");
    assert_eq!(h.get_ok(id).await["percentComplete"], 50);
    let moved: Value = h
        .admin("/_sim/clock", json!({"next": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(moved["elapsed"], "+02:00:00");
    assert_eq!(h.get_ok(id).await["status"], "passed");
}

#[tokio::test]
async fn an_abort_stops_the_test_where_it_was() {
    let h = start().await;
    let id = h.create_ok("two-hours", "e-1.jmx", None).await;
    h.advance_to(Duration::from_secs(45 * 60));
    let aborted = h.abort(id).await;
    assert_eq!(aborted.status(), 200);
    let t: Value = aborted.json().await.unwrap();
    assert_eq!(
        (t["status"].clone(), t["percentComplete"].clone()),
        (json!("aborted"), json!(37))
    );
    assert_eq!(t["finishedAt"], "2025-01-01T00:45:00.000Z");
    // Its end timer is gone: nothing finishes it later.
    assert!(h.sim.clock.next_deadline().is_none());
    h.advance_to(Duration::from_secs(3 * 3600));
    let t = h.get_ok(id).await;
    assert_eq!(
        (t["status"].clone(), t["percentComplete"].clone()),
        (json!("aborted"), json!(37))
    );
    assert!(h.events("test_finished").is_empty());
    let aborted = h.events("test_aborted");
    assert_eq!(
        (aborted.len(), aborted[0].stamp().as_str()),
        (1, "+00:45:00")
    );
    // Aborting again answers the same; aborting a finished test is a conflict.
    assert_eq!(h.abort(id).await.status(), 200);
    assert_eq!(h.events("test_aborted").len(), 1);
    let done = h.create_ok("spike", "e-2.jmx", None).await;
    h.advance_by(Duration::from_secs(600));
    assert_error(h.abort(done).await, 409, "TestAlreadyFinished", "failed").await;
    assert_error(h.abort(1).await, 404, "UnknownTest", "`1`").await;
}

#[tokio::test]
async fn no_request_is_left_counted_as_in_flight() {
    let h = start().await;
    let id = h.create_ok("two-hours", "e-1.jmx", None).await;
    h.get_ok(id).await;
    h.abort(id).await;
    h.client
        .get(h.url(&format!("/jobs/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(h.sim.activity.snapshot().in_flight, 0);
}

#[tokio::test]
async fn events_carry_the_execution_the_runner_mapped() {
    let h = start().await;
    h.apica.set_execution("e-7.jmx", "e-7");
    h.create_ok("spike", "e-7.jmx", Some("cp-job-7")).await;
    let created = &h.events("test_created")[0];
    assert_eq!(created.execution.as_deref(), Some("e-7"));
    assert_eq!(created.data["idempotencyKey"], "cp-job-7");
    assert_eq!(created.data["preset"], "spike");
    assert_eq!(created.data["runnableFile"], "e-7.jmx");
}

#[tokio::test]
async fn an_event_listener_may_call_back_into_the_backend() {
    // The runner acts on events synchronously (e.g. a crash right after `apica.test_created`); the
    // backend must not hold its lock while recording, or this would deadlock.
    let h = start().await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (apica, s) = (h.apica.clone(), seen.clone());
    h.sim.events.add_listener(move |e| {
        if e.source == "apica" {
            let count = apica.tests_for_runnable_file("e-1.jmx");
            let status = e.data["jobId"]
                .as_u64()
                .and_then(|id| apica.test(id))
                .map(|t| t.status.to_string());
            s.lock().unwrap().push((e.kind.to_string(), count, status));
        }
    });
    let id = h.create_ok("spike", "e-1.jmx", None).await;
    h.advance_to(Duration::from_secs(600));
    h.apica.clear_faults();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("test_created".to_string(), 1, Some("running".to_string())),
            ("test_finished".to_string(), 1, Some("failed".to_string())),
        ],
        "job {id}"
    );
}
