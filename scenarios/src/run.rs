//! The conformance front end: one scenario run with the agent under test as managed replicas, on the one
//! [`crate::driver`], to the end of its tail; what happened is kept for the verdicts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sim_core::Event;

use crate::driver::{Agents, Driver, DriverConfig, FiredStep, Until};
use crate::env::AgentEnv;
use crate::replica::open_log;
use crate::scenario::Scenario;
use crate::world::{API_TOKEN, Overrides, World};

/// How a run is configured beyond the scenario file.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The agent command line (run with `sh -c`).
    pub agent_cmd: String,
    /// Where `target/conformance/<scenario>/` goes.
    pub out_root: PathBuf,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Protocol-tier overrides.
    pub overrides: Overrides,
    /// `JOB_POLL_INTERVAL_MS` given to the agent.
    pub poll_interval_ms: u64,
}

/// What a run leaves for the verdicts.
pub struct RunOutcome {
    /// The hosted world, stopped.
    pub world: World,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Real time the run took.
    pub real: Duration,
    /// The seed used.
    pub seed: u64,
    /// Where its files are.
    pub out_dir: PathBuf,
    /// Set when the runner itself gave up (HARNESS-STALL) or could not run.
    pub harness_error: Option<String>,
    /// Whether the agent drives the Apica backend (no protocol-tier override): AG-ONE-TEST and
    /// AG-OUTCOME apply.
    pub apica_checks: bool,
    /// The scenario steps that ran, in order.
    pub fired: Vec<FiredStep>,
    /// Set when the run ended early because the agent died (AG-START, AG-EXITED): why.
    pub agent_failure: Option<String>,
    /// The agent's peak memory at the end (`VmHWM` of its largest process, KiB), when it was running.
    pub agent_peak_rss_kib: Option<u64>,
}

/// Runs `scenario` to its end and returns what happened.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome> {
    let started = Instant::now();
    let seed = opts.seed.unwrap_or(scenario.seed);
    let out_dir = opts.out_root.join(&scenario.name);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let mut world = World::start(scenario, seed, &opts.overrides).await?;
    // The runner keeps every event of the run: the shared log is a bounded ring for HTTP readers, and a
    // big scenario must not lose its early events before the verdicts read them.
    // The listener comes first, then the events so far: an event recorded in between is in both, and
    // the copy is put in `seq` order without duplicates at the end.
    let recorded: Arc<Mutex<Vec<Event>>> = Arc::new(Mutex::new(Vec::new()));
    {
        let recorded = recorded.clone();
        world.sim.events.add_listener(move |e| {
            recorded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.clone());
        });
    }
    let earlier = world.sim.events.all();
    let log = open_log(&out_dir.join("agent.log")).context("open agent.log")?;
    let clients_file = crate::driver::clients_file(&out_dir);
    std::fs::write(
        &clients_file,
        serde_json::to_string_pretty(&world.agent_clients)?,
    )?;
    let env = AgentEnv {
        cp_url: world.cp_url.clone(),
        apica_url: world.apica_url.clone(),
        api_token: API_TOKEN.into(),
        action_type: world.action_type.clone(),
        clients_file,
        query_param: world.query_param.clone(),
        poll_interval_ms: opts.poll_interval_ms,
    };
    let h = &scenario.harness;
    let config = DriverConfig {
        agents: Agents::Managed {
            command: opts.agent_cmd.clone(),
            log,
            env: Box::new(env),
        },
        until: Until::Finished {
            tail: h.tail.get(),
            watchdog: h.watchdog.get(),
        },
        answer_budget: h.answer_budget.get(),
        start_grace: h.start_grace.get(),
        step_delay: Duration::ZERO,
        overrides: opts.overrides.clone(),
        seed,
    };
    let mut driver = Driver::new(scenario, &mut world, config);
    let harness_error = driver.drive().await.err().map(|e| e.to_string());
    let fired = driver.fired().to_vec();
    let agent_failure = driver.agent_failure().map(str::to_string);
    let agent_peak_rss_kib = driver.agent_peak_rss_kib();
    drop(driver);
    world.stop();
    let mut events = earlier;
    events.append(&mut recorded.lock().unwrap_or_else(|p| p.into_inner()));
    events.sort_by_key(|e| e.seq);
    events.dedup_by_key(|e| e.seq);
    Ok(RunOutcome {
        events,
        real: started.elapsed(),
        seed,
        out_dir,
        harness_error,
        // A build-type agent of the artifacts tier starts no load test.
        apica_checks: opts.overrides.action_type.is_none()
            && scenario.tier != crate::scenario::Tier::Artifacts,
        fired,
        agent_failure,
        agent_peak_rss_kib,
        world,
    })
}
