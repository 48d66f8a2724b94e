//! The runtime against the two fakes (in process, on loopback): the agent on real time, the world on a
//! manual simulated clock that the test moves one continuation delay at a time.

mod support;

use std::time::Duration;

use agent::metrics::Outcome;
use fake_apica::Fault;
use serde_json::json;
use support::{Agent, CONTINUATION, CUSTOM, KEY1, KEY2, THIRD_PARTY, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_job_is_answered_with_a_token_within_one_poll_round() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let agent = Agent::start(&world, THIRD_PARTY, KEY1, |_| {});
    let id = world
        .start_execution(THIRD_PARTY, "short", "first.jmx")
        .await;
    let first = world.job_in(&id, 1, "Succeeded").await;
    // Answered without the clock moving: the Details link is there at once.
    assert_eq!(world.sim.clock.elapsed(), Duration::ZERO);
    let e = world.execution(&id);
    let test_id = e["externalExecutionId"]
        .as_str()
        .expect("externalExecutionId")
        .to_string();
    assert!(
        e["externalExecutionUrl"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/jobs/{test_id}"))
    );
    let token = world.execution(&id)["jobs"][1]["continuationToken"]
        .as_str()
        .map(str::to_string);
    assert_eq!(
        token.as_deref().map(support::content),
        Some(format!("{test_id};f=0").as_str()),
        "first job: {first}"
    );
    assert_eq!(world.tests_for("first.jmx"), 1);
    assert_eq!(agent.stop().await.unanswered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_report_progress_and_the_final_answer_has_100_and_no_token() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let agent = Agent::start(&world, THIRD_PARTY, KEY1, |_| {});
    let id = world
        .start_execution(THIRD_PARTY, "short", "progress.jmx")
        .await;
    world.job_in(&id, 1, "Succeeded").await;
    let mut seen = Vec::new();
    for round in 2..=4 {
        world.advance(CONTINUATION);
        world.job_in(&id, round, "Succeeded").await;
        let e = world.execution(&id);
        seen.push(e["percentComplete"].as_i64().expect("progress"));
        assert_eq!(e["status"], "InProgress");
    }
    assert_eq!(seen, vec![25, 50, 75], "progress per round");
    world.advance(CONTINUATION);
    let e = world.finished(&id).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    assert_eq!(e["percentComplete"], 100);
    let jobs = e["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 5, "one job per round, no more: {e}");
    // The final success carried no token: no AG-FINAL-TOKEN and nothing else recorded as an error.
    assert!(world.errors().is_empty(), "{:?}", world.errors());
    assert_eq!(world.tests_for("progress.jmx"), 1);
    // Counted when the answer's response arrives: read them after the drain.
    let metrics = agent.metrics.clone();
    agent.stop().await;
    assert_eq!(metrics.jobs_with(Outcome::Continued), 4);
    assert_eq!(metrics.jobs_with(Outcome::Succeeded), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_fails_the_action_with_the_backend_reason() {
    let world = World::start().await;
    world.register(CUSTOM, json!({})).await;
    let agent = Agent::start(&world, CUSTOM, KEY1, |_| {});
    let id = world.start_execution(CUSTOM, "broken", "broken.jmx").await;
    let e = world.run_rounds(&id, 5).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert_eq!(e["errorDetails"]["code"], "JobFailed");
    let message = e["errorDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("p95 latency 2300 ms over the 800 ms limit"),
        "{message}"
    );
    assert!(world.errors().is_empty(), "{:?}", world.errors());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_preset_is_a_configuration_error_naming_preset_name() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let agent = Agent::start(&world, THIRD_PARTY, KEY1, |_| {});
    let id = world
        .start_execution(THIRD_PARTY, "no-such-preset", "bad.jmx")
        .await;
    let e = world.finished(&id).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert_eq!(e["errorDetails"]["code"], "ConfigurationError");
    let message = e["errorDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("PresetName") && message.contains("no-such-preset"),
        "{message}"
    );
    assert_eq!(world.tests_for("bad.jmx"), 0);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shorter_than_the_round_budget_is_ridden_out() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let agent = Agent::start(&world, THIRD_PARTY, KEY1, |c| c.max_failed_rounds = 3);
    let id = world
        .start_execution(THIRD_PARTY, "short", "blip.jmx")
        .await;
    world.job_in(&id, 1, "Succeeded").await;
    let test_id = world.execution(&id)["externalExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    // Down for the next two rounds (+30 s and +60 s), back for the third.
    let now = world.sim.clock.now();
    world
        .apica
        .add_fault(Fault::outage(now, now.plus(Duration::from_secs(61))))
        .unwrap();
    world.advance(CONTINUATION);
    world.job_in(&id, 2, "Succeeded").await;
    assert_eq!(
        support::content_of(&world.execution(&id)["jobs"][2]["continuationToken"]),
        format!("{test_id};f=1")
    );
    world.advance(CONTINUATION);
    world.job_in(&id, 3, "Succeeded").await;
    assert_eq!(
        support::content_of(&world.execution(&id)["jobs"][3]["continuationToken"]),
        format!("{test_id};f=2")
    );
    // The link stays while the backend is down.
    assert_eq!(
        world.execution(&id)["externalExecutionId"],
        test_id.as_str()
    );
    world.advance(CONTINUATION);
    world.job_in(&id, 4, "Succeeded").await;
    assert_eq!(
        support::content_of(&world.execution(&id)["jobs"][4]["continuationToken"]),
        format!("{test_id};f=0"),
        "a good round resets"
    );
    let e = world.run_rounds(&id, 6).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    assert_eq!(world.tests_for("blip.jmx"), 1);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_round_budget_fails_with_system_unavailable() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let agent = Agent::start(&world, THIRD_PARTY, KEY1, |c| c.max_failed_rounds = 3);
    let id = world.start_execution(THIRD_PARTY, "long", "down.jmx").await;
    world.job_in(&id, 1, "Succeeded").await;
    let now = world.sim.clock.now();
    world
        .apica
        .add_fault(Fault::outage(now, now.plus(Duration::from_secs(3600))))
        .unwrap();
    let e = world.run_rounds(&id, 10).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert_eq!(e["errorDetails"]["code"], "SystemUnavailable");
    assert!(
        e["errorDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("3 round(s)"),
        "{e}"
    );
    assert_eq!(
        e["jobs"].as_array().unwrap().len(),
        4,
        "first job, two failed rounds, then the failure"
    );
    assert!(world.events("cp", "job_timed_out").is_empty());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_down_on_the_first_job_starts_the_test_later_with_the_first_job_id() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let now = world.sim.clock.now();
    world
        .apica
        .add_fault(Fault::outage(now, now.plus(Duration::from_secs(1))))
        .unwrap();
    let agent = Agent::start(&world, THIRD_PARTY, KEY1, |_| {});
    let id = world
        .start_execution(THIRD_PARTY, "short", "late.jmx")
        .await;
    let first_job = world.job_in(&id, 1, "Succeeded").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        support::content_of(&world.execution(&id)["jobs"][1]["continuationToken"]),
        format!("pending:{first_job};f=1")
    );
    assert_eq!(world.tests_for("late.jmx"), 0);
    world.advance(CONTINUATION);
    world.job_in(&id, 2, "Succeeded").await;
    assert_eq!(world.tests_for("late.jmx"), 1);
    assert_eq!(
        world.apica.tests_for_idempotency_key(&first_job),
        1,
        "keyed by the first job's id"
    );
    let e = world.run_rounds(&id, 8).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    agent.stop().await;
}

/// Two runtimes on one queue with an ack window of 0: every poll is offered every unacknowledged job, so
/// the runtimes race, and one runtime may be offered a job it is already handling (it handles it once). The
/// agent's side of the race (InvalidNonceException means skip quietly) is proven deterministically in
/// `tests/nonce_race.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_racing_for_custom_jobs_handle_each_once() {
    race(CUSTOM).await;
}

/// The same race for third-party jobs, whose nonce comes from GetThirdPartyJobDetails: the fake gives each
/// caller the nonce of the dispatch it received, and refuses an acknowledgement of a job another worker
/// has acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runtimes_racing_for_third_party_jobs_handle_each_once() {
    race(THIRD_PARTY).await;
}

async fn race(action_type: &str) {
    let world = World::start().await;
    // Ack window 0: a dispatched job is offered to every poller until one acknowledges, so they race.
    world
        .register(action_type, json!({"ackWindow": "0s"}))
        .await;
    let a = Agent::start(&world, action_type, KEY1, |_| {});
    let b = Agent::start(&world, action_type, KEY2, |_| {});
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            world
                .start_execution(action_type, "short", &format!("race-{i}.jmx"))
                .await,
        );
    }
    for round in 0..8 {
        let all_done = world
            .until("every execution's last job answered", |w| {
                let mut done = true;
                for id in &ids {
                    let e = w.execution(id);
                    let last = e["jobs"].as_array()?.last()?.clone();
                    if e["status"] == "InProgress"
                        && !["Succeeded", "Created"].contains(&last["status"].as_str()?)
                    {
                        return None;
                    }
                    done &= e["status"] != "InProgress";
                }
                Some(done)
            })
            .await;
        if all_done {
            break;
        }
        assert!(round < 7, "executions still running");
        world.advance(CONTINUATION);
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(world.execution(id)["status"], "Succeeded");
        assert_eq!(world.tests_for(&format!("race-{i}.jmx")), 1, "AG-ONE-TEST");
    }
    assert!(world.errors().is_empty(), "{:?}", world.errors());
    // Counted when the answer's response arrives: read them after the drain.
    let (ma, mb) = (a.metrics.clone(), b.metrics.clone());
    a.stop().await;
    b.stop().await;
    let handled = |m: &agent::Metrics| {
        m.jobs_with(Outcome::Continued)
            + m.jobs_with(Outcome::Succeeded)
            + m.jobs_with(Outcome::Failed)
    };
    assert_eq!(
        handled(&ma) + handled(&mb),
        8 * 5,
        "each job answered exactly once"
    );
    let lost = ma.jobs_with(Outcome::LostRace) + mb.jobs_with(Outcome::LostRace);
    assert!(
        lost > 0,
        "the race never happened: no InvalidNonceException was met"
    );
    assert_eq!(
        ma.jobs_with(Outcome::AnswerError) + mb.jobs_with(Outcome::AnswerError),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_polls_are_retried_and_never_stop_the_loop() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    world
        .cp_fault(json!({"operation": "PollForThirdPartyJobs", "kind": "throttle", "rate": 0.6}))
        .await;
    let agent = Agent::start(&world, THIRD_PARTY, KEY1, |_| {});
    let id = world
        .start_execution(THIRD_PARTY, "short", "throttled.jmx")
        .await;
    let e = world.run_rounds(&id, 8).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    assert!(agent.metrics.throttles() > 0, "no throttling seen");
    assert_eq!(world.tests_for("throttled.jmx"), 1);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_action_polls_by_its_queryable_property() {
    let world = World::start().await;
    world.admin_register_queryable().await;
    let agent = Agent::start(&world, CUSTOM, KEY1, |c| {
        c.query_param = Some("PresetName=short".parse().unwrap())
    });
    let mine = world.start_execution(CUSTOM, "short", "mine.jmx").await;
    let other = world.start_execution(CUSTOM, "broken", "other.jmx").await;
    world.job_in(&mine, 1, "Succeeded").await;
    assert_eq!(
        world.execution(&other)["jobs"][0]["status"],
        "Queued",
        "not this worker's job"
    );
    agent.stop().await;
}

/// The timed wait (the real-account smoke test's action) through the runtime: the first job answers at
/// once with a token and a Details id, continuation jobs report how much of the wait has passed, and the
/// first job after the deadline succeeds with 100 and no token. The wait is in real time, so the test
/// waits out its 2 s; the fake's clock moves one continuation delay per round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_wait_runs_over_continuation_jobs_and_succeeds_after_its_duration() {
    const TIMED_WAIT: &str = "Test/Custom/TimedWait/1";
    let world = World::start().await;
    world
        .admin(
            "/_sim/action-types",
            json!({
                "actionType": TIMED_WAIT,
                "configurationProperties": [
                    {"name": "Duration", "required": true, "key": false, "secret": false},
                ],
            }),
        )
        .await;
    let agent = Agent::start_with(
        &world,
        TIMED_WAIT,
        KEY1,
        std::sync::Arc::new(agent::actions::TimedWaitAction),
        |_| {},
    );
    let started = std::time::Instant::now();
    let start = |duration: &'static str| {
        let world = &world;
        async move {
            let v = world
                .admin(
                    "/_sim/executions",
                    json!({"actionType": TIMED_WAIT, "configuration": {"Duration": duration}}),
                )
                .await;
            v["executionId"].as_str().expect("executionId").to_string()
        }
    };
    // A 2 s wait, run to its end, and an hour's, which is certainly still waiting after one round.
    let id = start("2s").await;
    let long = start("1h").await;
    world.job_in(&id, 1, "Succeeded").await;
    world.job_in(&long, 1, "Succeeded").await;
    let e = world.execution(&id);
    assert!(
        e["externalExecutionId"]
            .as_str()
            .is_some_and(|x| x.starts_with("wait-")),
        "the first answer names the wait: {e}"
    );
    assert!(
        e["jobs"][1]["continuationToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("wait:")),
        "and carries it on in a token: {e}"
    );
    // One round: the hour's wait goes on, with a token and a progress below 100.
    world.advance(CONTINUATION);
    world.job_in(&long, 2, "Succeeded").await;
    let e = world.execution(&long);
    assert_eq!(e["status"], "InProgress", "{e}");
    assert!(e["percentComplete"].as_i64().unwrap_or(100) < 100, "{e}");
    assert!(
        e["jobs"][2]["continuationToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("wait:")),
        "a wait still running carries its token on: {e}"
    );
    // The wait is real time, from the first answer (not from the test's start: on a loaded machine that
    // answer comes late): let it pass, as its token says, then the next job is the last.
    let token = world.execution(&id)["jobs"][1]["continuationToken"]
        .as_str()
        .expect("a token")
        .to_string();
    let ends_ms: u64 = token
        .trim_start_matches("wait:")
        .split([':', ';'])
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("`{token}` names when the wait ends"));
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    assert!(
        ends_ms.saturating_sub(now_ms) <= 2_000 && started.elapsed() < Duration::from_secs(60),
        "the wait ends 2 s after it began: {token}"
    );
    tokio::time::sleep(Duration::from_millis(ends_ms.saturating_sub(now_ms) + 50)).await;
    let e = world.run_rounds(&id, 3).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    assert_eq!(e["percentComplete"], 100);
    assert!(world.errors().is_empty(), "{:?}", world.errors());
    assert_eq!(agent.stop().await.unanswered, 0);
}
