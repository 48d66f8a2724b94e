//! `conformance` and `sim --scenario` are two front ends of one driver: the same scenario's world steps,
//! timed and event-triggered, apply at the same simulated times through both, with the reference agent
//! run by the harness in one and by "a person" (this test) in the other.

use std::path::PathBuf;
use std::time::Duration;

use scenarios::env::AgentEnv;
use scenarios::replica::{Replica, open_log};
use scenarios::world::{API_TOKEN, Overrides, World, replica_key};
use scenarios::{RunOptions, Scenario};
use sim_core::{Event, EventKind, Source};

const SCENARIO: &str = r#"
name = "one-driver"
summary = "World steps at fixed times and on events, through both front ends."
tier = "protocol"
seed = 5

# The clock waits for the agent's answers (it answers in milliseconds) rather than moving on after the
# usual 5 s budget: a machine that stalls the agent must not give the two front ends different times.
[harness]
answer_budget = "60s"

[action_type]
id = "Test/Custom/ApicaLoadtest/1"

[[backend.presets]]
name = "short"
duration = "5m"
outcome = "passed"

[[executions]]
id = "e-1"
configuration = { PresetName = "short", RunnableFile = "e.jmx" }

[[steps]]
at = "0s"
do = "start-agent"

[[steps]]
at = "+00:01:00"
do = "start-executions"
executions = [
  { id = "e-2", configuration = { PresetName = "short", RunnableFile = "e.jmx" } },
  { id = "e-3", configuration = { PresetName = "short", RunnableFile = "e.jmx" } },
]

# Counted from the world's start: e-1's first job, queued as the world starts, is not seen.
[[steps]]
on = "cp.job_queued"
do = "cp-faults"
operation = "GetJobDetails"
rate = 0.0

[[steps]]
on = "cp.job_queued"
nth = 2
do = "clear-cp-faults"

[[steps]]
on = "cp.result_applied"
after = "+00:03:00"
do = "backend-fault"
fault = { kind = "latency", for = "1m", latency = "1ms" }

[[steps]]
at = "4m"
do = "clear-cp-faults"

[expect]
violations = []
"*" = { outcome = "Succeeded" }
"#;

/// The world's steps (not the agent's) as `(simulated ms, what)`.
fn world_steps(events: &[Event]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e.source == Source::Runner && e.kind == EventKind::Step)
        .filter(|e| !e.detail.contains("agent replica"))
        .map(|e| (e.sim_ms, e.detail.clone()))
        .collect()
}

/// When each result was applied, for a failure's message: the steps on `cp.result_applied` follow them.
fn results(events: &[Event]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::ResultApplied)
        .map(|e| (e.sim_ms, e.detail.clone()))
        .collect()
}

/// The steps without their cause: which of several results at one instant came first is the agent's
/// scheduling, not the driver's.
fn without_cause(steps: &[(u64, String)]) -> Vec<(u64, String)> {
    steps
        .iter()
        .map(|(t, d)| (*t, d.split(" on cp.").next().unwrap_or(d).to_string()))
        .collect()
}

fn agent() -> String {
    format!("'{}'", env!("CARGO_BIN_EXE_reference-agent"))
}

fn out_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("one-driver")
}

async fn through_conformance(scenario: &Scenario) -> Vec<Event> {
    let opts = RunOptions {
        agent_cmd: agent(),
        out_root: out_root().join("conformance"),
        seed: None,
        overrides: Overrides::default(),
        poll_interval_ms: 1,
    };
    let run = scenarios::run::run(scenario, &opts).await.expect("runs");
    assert!(run.harness_error.is_none(), "{:?}", run.harness_error);
    let verdict = scenarios::verdict::judge(scenario, &run);
    assert!(verdict.passed, "{:?}", verdict.checks);
    run.events
}

async fn through_sim(scenario: &Scenario) -> Vec<Event> {
    let seed = scenario.seed;
    let mut world = World::start(scenario, seed, &Overrides::default())
        .await
        .expect("world starts");
    let events = world.sim.events.clone();
    let executions = scenario.execution_labels().len();
    // The person's agent, pointed at the world with the environment `sim` prints.
    let dir = out_root().join("sim");
    std::fs::create_dir_all(&dir).unwrap();
    let env = AgentEnv {
        cp_url: world.cp_url.clone(),
        apica_url: world.apica_url.clone(),
        api_token: API_TOKEN.into(),
        action_type: world.action_type.clone(),
        clients_file: dir.join("client-tokens.json"),
        query_param: world.query_param.clone(),
        poll_interval_ms: 1,
    };
    let (key, secret) = replica_key(1, seed);
    let log = open_log(&dir.join("agent.log")).unwrap();
    let mut replica = Replica::spawn("mine", &key, &agent(), &env.vars(&key, &secret), &log)
        .expect("the agent starts");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(async move {
        // Every execution ends; then the person presses Ctrl-C.
        let mut seen = 0;
        loop {
            let got = events
                .wait_since(seen, 10_000, Duration::from_secs(1))
                .await;
            seen = got.last().map_or(seen, |e| e.seq);
            let all = events.all();
            let done = all
                .iter()
                .filter(|e| e.kind == EventKind::ExecutionFinished)
                .count();
            if done >= executions {
                let _ = stop_tx.send(true);
                return all;
            }
        }
    });
    let played = tokio::time::timeout(
        Duration::from_secs(120),
        scenarios::driver::play(
            scenario,
            &mut world,
            seed,
            scenario.harness.answer_budget.get(),
            Duration::ZERO,
            stop_rx,
        ),
    )
    .await
    .expect("sim finishes the scenario within 2 minutes");
    played.expect("sim plays the scenario");
    let all = watcher.await.unwrap();
    replica.kill().await;
    world.stop();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_steps_apply_at_the_same_simulated_times_through_both_front_ends() {
    let scenario =
        Scenario::parse(SCENARIO, std::path::Path::new("one-driver.toml")).expect("loads");
    let conformance_events = through_conformance(&scenario).await;
    let sim_events = through_sim(&scenario).await;
    let (conformance, sim) = (world_steps(&conformance_events), world_steps(&sim_events));
    let times: Vec<u64> = conformance.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        times.len(),
        5,
        "every world step applied once: {conformance:#?}"
    );
    assert!(
        conformance.contains(&(60_000, "start 2 more execution(s)".into()))
            && conformance.contains(&(240_000, "CodePipeline faults cleared".into())),
        "timed steps at +00:01:00 and 4m: {conformance:#?}"
    );
    assert!(
        conformance[0].1.contains("job 2 of e-1") && conformance[1].1.contains("job 3 of e-1"),
        "event-triggered steps count the job_queued events after the world started: {conformance:#?}"
    );
    assert!(
        conformance
            .iter()
            .any(|(t, d)| *t >= 180_000 && d.contains("backend fault")),
        "the event-triggered backend fault waits for `after`: {conformance:#?}"
    );
    assert_eq!(
        without_cause(&conformance),
        without_cause(&sim),
        "conformance and sim apply the same steps at the same times; results applied:\n\
         conformance {:#?}\nsim {:#?}",
        results(&conformance_events),
        results(&sim_events)
    );
}
