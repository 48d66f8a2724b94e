//! The stepping rule's guarantee (`docs/design.md`, "Stepping the clock"): the clock never passes the
//! deadline of a job that is waiting to be polled until every live replica has had a full answer budget
//! since that job became pollable or since the clock last moved, whichever is later. An agent that is
//! neither parked in a poll nor holding a job (asleep in an SDK's retry backoff) may count as waiting once
//! its budget has run out; before this rule, the step after the one that queued its next job went straight
//! to that job's deadline.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::{BehaviorVersion, Region};
use aws_sdk_codepipeline::types::ExecutionDetails;
use scenarios::Scenario;
use scenarios::world::{Overrides, World, replica_key};
use sim_core::{Event, EventKind};

const SCENARIO: &str = r#"
name = "asleep-in-a-backoff"
tier = "protocol"
seed = 3

[action_type]
id = "Test/Custom/Sleepy/1"
properties = [{ name = "Work", required = true }]

[[executions]]
id = "e-1"
configuration = { Work = "x" }

[[steps]]
at = "0s"
do = "start-agent"
"#;

/// Real time the budget gives; the agent below never polls again after its first answer.
const BUDGET: Duration = Duration::from_millis(600);

fn find(events: &[Event], kind: EventKind, job_number: u64) -> Option<&Event> {
    events
        .iter()
        .find(|e| e.kind == kind && e.data["number"] == job_number)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_waits_a_full_budget_after_queueing_a_job_before_passing_its_deadline() {
    let scenario = Scenario::parse(SCENARIO, std::path::Path::new("sleepy.toml")).expect("loads");
    let mut world = World::start(&scenario, scenario.seed, &Overrides::default())
        .await
        .expect("world");
    let events = world.sim.events.clone();
    let (key, secret) = replica_key(1, scenario.seed);
    let client = Client::from_conf(
        aws_sdk_codepipeline::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&world.cp_url)
            .credentials_provider(Credentials::new(&key, &secret, None, None, "test"))
            .build(),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let driver = tokio::spawn(async move {
        let r = scenarios::driver::play(&scenario, &mut world, 3, BUDGET, Duration::ZERO, stop_rx)
            .await;
        world.stop();
        r
    });

    // The agent: takes job 1, answers it with a token, then sleeps (it never polls again).
    let jobs = client
        .poll_for_jobs()
        .action_type_id(tests::sdk_type("Test/Custom/Sleepy/1"))
        .max_batch_size(1)
        .send()
        .await
        .expect("poll");
    let job = &jobs.jobs()[0];
    client
        .acknowledge_job()
        .job_id(job.id().unwrap())
        .nonce(job.nonce().unwrap())
        .send()
        .await
        .expect("acknowledge");
    client
        .put_job_success_result()
        .job_id(job.id().unwrap())
        .continuation_token("1")
        .execution_details(
            ExecutionDetails::builder()
                .external_execution_id("x")
                .build(),
        )
        .send()
        .await
        .expect("answer");

    // Job 2 is queued when the clock moves past the continuation delay, then times out: how long after?
    let mut seen = 0;
    let all = loop {
        let got = events
            .wait_since(seen, 10_000, Duration::from_secs(30))
            .await;
        assert!(!got.is_empty(), "job 2 never timed out");
        seen = got.last().map_or(seen, |e| e.seq);
        let all = events.all();
        if find(&all, EventKind::JobTimedOut, 2).is_some() {
            break all;
        }
    };
    let _ = stop_tx.send(true);
    driver.await.unwrap().expect("the driver");
    let queued = find(&all, EventKind::JobQueued, 2).expect("job 2 queued");
    let timed_out = find(&all, EventKind::JobTimedOut, 2).expect("job 2 timed out");
    assert_eq!(
        timed_out.sim_ms - queued.sim_ms,
        3_600_000,
        "job 2 waited its hour of simulated time"
    );
    let real = Duration::from_millis(timed_out.real_ms - queued.real_ms);
    assert!(
        real >= BUDGET,
        "the clock passed job 2's deadline {real:?} (real) after queueing it, within the {BUDGET:?} answer budget"
    );
}
