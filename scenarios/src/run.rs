//! Running one scenario: the fakes, the agent replicas, the steps, and the clock stepping rule of
//! DESIGN.md ("Stepping in manual mode").

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use nix::sys::signal::Signal;
use sim_core::{Event, NewEvent, Severity, SimTime, format_offset};

use crate::replica::{AgentLog, Replica, open_log};
use crate::scenario::{Scenario, Step, StepAction, duration};
use crate::world::{API_TOKEN, MAX_REPLICAS, Overrides, World, add_backend_fault, replica_key};

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

/// How long a replica may take to exit after SIGTERM (AG-REDEPLOY).
pub const REDEPLOY_GRACE: Duration = Duration::from_secs(10);

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
}

/// A live replica and what the runner knows of it.
struct Live {
    replica: Replica,
    // Real time of the first request, once seen.
    first_request: Option<Instant>,
    // Since when it has been seen neither parked in a poll nor holding a job (busy elsewhere, e.g. a
    // naive agent waiting on the backend): after the answer budget the clock moves on without it.
    busy_since: Option<Instant>,
}

struct Runner<'a> {
    scenario: &'a Scenario,
    opts: &'a RunOptions,
    world: World,
    seed: u64,
    log: AgentLog,
    clients_file: PathBuf,
    live: Vec<Live>,
    next_replica: usize,
    // Process groups of live replicas, for the synchronous crash in the event listener.
    pgids: Arc<Mutex<Vec<(String, i32)>>>,
    triggered: mpsc::Receiver<(usize, Event)>,
    timed: Vec<(SimTime, Step)>,
    budget: Duration,
    started: Instant,
    watchdog: Duration,
    // AG-START: how long a started replica may take to make its first request.
    start_grace: Duration,
}

fn record(
    world: &World,
    kind: &str,
    severity: Severity,
    rule: Option<&str>,
    replica: Option<&str>,
    detail: String,
) {
    let mut e = NewEvent::new("runner", kind)
        .severity(severity)
        .detail(detail)
        .replica_opt(replica);
    if let Some(r) = rule {
        e = e.rule(r, severity);
    }
    world.sim.events.record(e);
}

/// Runs `scenario` to its end and returns what happened.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome> {
    let seed = opts.seed.unwrap_or(scenario.seed);
    let out_dir = opts.out_root.join(&scenario.name);
    std::fs::create_dir_all(&out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let world = World::start(scenario, seed, &opts.overrides).await?;
    // The runner keeps every event of the run: the shared log is a bounded ring for HTTP readers, and a
    // big scenario must not lose its early events before the verdicts read them.
    let recorded: Arc<Mutex<Vec<Event>>> = Arc::new(Mutex::new(world.sim.events.all()));
    {
        let recorded = recorded.clone();
        world.sim.events.add_listener(move |e| {
            let mut all = recorded.lock().unwrap_or_else(|p| p.into_inner());
            if all.last().is_none_or(|last| last.seq < e.seq) {
                all.push(e.clone());
            }
        });
    }
    let log = open_log(&out_dir.join("agent.log")).context("open agent.log")?;
    let clients_file = out_dir.join("client-tokens.json");
    std::fs::write(
        &clients_file,
        serde_json::to_string_pretty(&world.agent_clients)?,
    )?;

    let origin = world.sim.clock.origin();
    let mut timed = Vec::new();
    let (tx, rx) = mpsc::channel();
    let pgids: Arc<Mutex<Vec<(String, i32)>>> = Arc::new(Mutex::new(Vec::new()));
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Some(at) = &step.at {
            let t = sim_core::http::parse_target(at, origin)
                .map_err(|e| anyhow!("steps[{}].at: {e}", i + 1))?;
            timed.push((t, step.clone()));
        } else if let Some(on) = step.on.clone() {
            let after = step
                .after
                .as_deref()
                .map(|a| duration("after", a))
                .transpose()
                .map_err(|e| anyhow!(e))?;
            let nth = step.nth.unwrap_or(1).max(1);
            let seen = Arc::new(Mutex::new(0usize));
            let tx = tx.clone();
            let pg = pgids.clone();
            let crash = step.action == StepAction::Crash;
            world.sim.events.add_listener(move |e| {
                if e.name() != on || after.is_some_and(|a| Duration::from_millis(e.sim_ms) < a) {
                    return;
                }
                let mut n = seen.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                if *n != nth {
                    return;
                }
                if crash {
                    // Exactly between two actions of the agent: the recording request has not answered yet.
                    // The groups leave the live list first, so their exit is the crash step's to report.
                    let groups: Vec<(String, i32)> =
                        std::mem::take(&mut *pg.lock().unwrap_or_else(|p| p.into_inner()));
                    for (_, g) in &groups {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(*g),
                            Signal::SIGKILL,
                        );
                    }
                }
                let _ = tx.send((i, e.clone()));
            });
        }
    }
    timed.sort_by_key(|(t, _)| *t);
    let budget =
        duration("answer_budget", &scenario.harness.answer_budget).map_err(|e| anyhow!(e))?;
    let watchdog = duration("watchdog", &scenario.harness.watchdog).map_err(|e| anyhow!(e))?;
    let start_grace =
        duration("start_grace", &scenario.harness.start_grace).map_err(|e| anyhow!(e))?;
    let mut runner = Runner {
        scenario,
        opts,
        world,
        seed,
        log,
        clients_file,
        live: Vec::new(),
        next_replica: 1,
        pgids,
        triggered: rx,
        timed,
        budget,
        started: Instant::now(),
        watchdog,
        start_grace,
    };
    let harness_error = runner.drive().await.err().map(|e| e.to_string());
    if let Some(e) = &harness_error {
        record(
            &runner.world,
            "harness_error",
            Severity::Error,
            Some("HARNESS-STALL"),
            None,
            e.clone(),
        );
    }
    runner.shutdown().await;
    runner.world.stop();
    let events = std::mem::take(&mut *recorded.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(RunOutcome {
        events,
        real: runner.started.elapsed(),
        seed,
        out_dir,
        harness_error,
        apica_checks: opts.overrides.action_type.is_none(),
        world: runner.world,
    })
}

impl Runner<'_> {
    fn now(&self) -> SimTime {
        self.world.sim.clock.now()
    }

    async fn drive(&mut self) -> Result<()> {
        let tail = duration("tail", &self.scenario.harness.tail).map_err(|e| anyhow!(e))?;
        let mut finished_at: Option<SimTime> = None;
        loop {
            self.check_watchdog()?;
            self.handle_triggered().await?;
            self.run_due_steps().await?;
            self.reap_exited();
            if finished_at.is_none() && self.world.all_finished() {
                finished_at = Some(self.now());
            }
            self.wait_quiescent().await?;
            self.handle_triggered().await?;
            if finished_at.is_none() && self.world.all_finished() {
                finished_at = Some(self.now());
            }
            if let Some(f) = finished_at
                && self.now() >= f.plus(tail)
            {
                return Ok(());
            }
            // Step to the next thing that happens: a timer, a scenario step, or the end of the tail.
            let mut next = self.world.sim.clock.next_deadline().map(|d| d.at);
            if let Some((t, _)) = self.timed.first() {
                next = Some(next.map_or(*t, |n| n.min(*t)));
            }
            if let Some(f) = finished_at {
                let end = f.plus(tail);
                next = Some(next.map_or(end, |n| n.min(end)));
            }
            let Some(target) = next else {
                return Err(anyhow!(
                    "HARNESS-STALL: nothing left to happen at {} but executions are unfinished",
                    format_offset(self.now().since(self.world.sim.clock.origin()))
                ));
            };
            let target = target.max(self.now());
            self.world
                .sim
                .clock
                .advance_to(target)
                .map_err(|e| anyhow!("clock: {e}"))?;
        }
    }

    fn check_watchdog(&self) -> Result<()> {
        if self.started.elapsed() > self.watchdog {
            return Err(anyhow!(
                "HARNESS-STALL: the run took more than the {} watchdog (real time) at simulated {}",
                sim_core::format_duration(self.watchdog),
                format_offset(self.now().since(self.world.sim.clock.origin()))
            ));
        }
        Ok(())
    }

    /// DESIGN.md's rule: (a) no request in flight; (b) every live replica parked in a poll (holding
    /// nothing), or holding its oldest job longer than the answer budget; (c) no replica starting.
    fn quiescent(&mut self) -> Result<bool> {
        let snap = self.world.sim.activity.snapshot();
        if snap.in_flight > 0 {
            return Ok(false);
        }
        let mut any_parked = false;
        for live in &mut self.live {
            let c = snap.caller(&live.replica.access_key);
            let requests = c.map_or(0, |c| c.requests);
            if requests == 0 {
                if live.replica.started.elapsed() > self.start_grace {
                    let name = live.replica.name.clone();
                    record(
                        &self.world,
                        "replica_never_polled",
                        Severity::Error,
                        Some("AG-START"),
                        Some(&live.replica.access_key),
                        format!(
                            "{name} made no request within {} of starting",
                            sim_core::format_duration(self.start_grace)
                        ),
                    );
                    live.first_request = Some(Instant::now());
                    continue;
                }
                if live.first_request.is_none() {
                    return Ok(false);
                }
            } else if live.first_request.is_none() {
                live.first_request = Some(Instant::now());
            }
            let Some(c) = c else { continue };
            let held_too_long = c.oldest_hold.is_some_and(|h| h >= self.budget);
            let parked_idle = c.parked > 0 && c.held_jobs == 0;
            any_parked |= c.parked > 0;
            if c.parked > 0 || c.held_jobs > 0 {
                live.busy_since = None;
            }
            let busy_too_long = c.parked == 0
                && c.held_jobs == 0
                && live.busy_since.get_or_insert_with(Instant::now).elapsed() >= self.budget;
            if !(parked_idle || held_too_long || busy_too_long) {
                return Ok(false);
            }
        }
        // A job queued while a poll is parked is about to be handed out: wait for it.
        if any_parked && self.has_offered_job() {
            return Ok(false);
        }
        Ok(true)
    }

    fn has_offered_job(&self) -> bool {
        let ty = self.world.action_type.clone();
        self.world.cp.core().with_world(|w| {
            w.pollable.get(&ty).is_some_and(|q| {
                q.values().any(|id| {
                    w.jobs
                        .get(id)
                        .is_some_and(|j| j.status == fake_codepipeline::JobStatus::Queued)
                })
            })
        })
    }

    async fn wait_quiescent(&mut self) -> Result<()> {
        loop {
            let activity = self.world.sim.activity.clone();
            let changed = activity.notified();
            // A crash on an event must be handled at once, not after its victim's answer budget.
            self.handle_triggered().await?;
            if self.quiescent()? {
                return Ok(());
            }
            self.check_watchdog()?;
            self.reap_exited();
            let _ = tokio::time::timeout(Duration::from_millis(25), changed).await;
        }
    }

    async fn run_due_steps(&mut self) -> Result<()> {
        while let Some((t, _)) = self.timed.first() {
            if *t > self.now() {
                break;
            }
            let (_, step) = self.timed.remove(0);
            self.execute(&step, None).await?;
        }
        Ok(())
    }

    async fn handle_triggered(&mut self) -> Result<()> {
        while let Ok((i, event)) = self.triggered.try_recv() {
            let step = self.scenario.steps[i].clone();
            self.execute(&step, Some(&event)).await?;
        }
        Ok(())
    }

    async fn execute(&mut self, step: &Step, cause: Option<&Event>) -> Result<()> {
        // A scenario step changes the world (a fault cleared, an outage over): a replica that was neither
        // parked nor holding a job, say sleeping in a retry backoff, gets a fresh answer budget to notice.
        for live in &mut self.live {
            live.busy_since = None;
        }
        let why = match cause {
            Some(e) => format!(" on {} ({})", e.name(), e.detail),
            None => String::new(),
        };
        match step.action {
            StepAction::StartAgent => {
                let n = step.replicas.unwrap_or(1);
                record(
                    &self.world,
                    "step",
                    Severity::Info,
                    None,
                    None,
                    format!("start {n} agent replica(s){why}"),
                );
                for _ in 0..n {
                    self.start_replica()?;
                }
            }
            StepAction::Redeploy => {
                record(
                    &self.world,
                    "step",
                    Severity::Info,
                    None,
                    None,
                    format!("redeploy: SIGTERM to every replica{why}"),
                );
                let count = self.live.len().max(1);
                let old: Vec<Live> = self.live.drain(..).collect();
                for l in &old {
                    l.replica.signal(Signal::SIGTERM);
                }
                for mut l in old {
                    let key = l.replica.access_key.clone();
                    let t0 = Instant::now();
                    match l.replica.wait_exit(REDEPLOY_GRACE).await {
                        Some(status) => record(
                            &self.world,
                            "replica_stopped",
                            Severity::Info,
                            None,
                            Some(&key),
                            format!(
                                "{} exited ({status}) {} ms after SIGTERM",
                                l.replica.name,
                                t0.elapsed().as_millis()
                            ),
                        ),
                        None => {
                            l.replica.kill().await;
                            record(
                                &self.world,
                                "replica_killed",
                                Severity::Error,
                                Some("AG-REDEPLOY"),
                                Some(&key),
                                format!(
                                    "{} did not exit within {} of SIGTERM; killed",
                                    l.replica.name,
                                    sim_core::format_duration(REDEPLOY_GRACE)
                                ),
                            );
                        }
                    }
                    self.check_abandoned(&key, &l.replica.name);
                    self.forget(&key);
                }
                for _ in 0..count {
                    self.start_replica()?;
                }
            }
            StepAction::Crash => {
                record(
                    &self.world,
                    "step",
                    Severity::Info,
                    None,
                    None,
                    format!("crash: SIGKILL to every replica{why}"),
                );
                let old: Vec<Live> = self.live.drain(..).collect();
                let count = old.len().max(1);
                for mut l in old {
                    l.replica.kill().await;
                    let key = l.replica.access_key.clone();
                    record(
                        &self.world,
                        "replica_crashed",
                        Severity::Info,
                        None,
                        Some(&key),
                        format!("{} killed", l.replica.name),
                    );
                    self.forget(&key);
                }
                if let Some(r) = &step.restart_after {
                    let d = duration("restart_after", r).map_err(|e| anyhow!(e))?;
                    let mut restart = step.clone();
                    restart.action = StepAction::StartAgent;
                    restart.replicas = Some(count);
                    restart.on = None;
                    let at = self.now().plus(d);
                    self.timed.push((at, restart));
                    self.timed.sort_by_key(|(t, _)| *t);
                }
            }
            StepAction::CpFaults => {
                let rule = step.cp_fault_rule();
                record(
                    &self.world,
                    "step",
                    Severity::Info,
                    None,
                    None,
                    format!(
                        "CodePipeline faults: {:?} at rate {}{why}",
                        rule.kind, rule.rate
                    ),
                );
                self.world.cp.core().add_fault(rule);
            }
            StepAction::ClearCpFaults => {
                record(
                    &self.world,
                    "step",
                    Severity::Info,
                    None,
                    None,
                    format!("CodePipeline faults cleared{why}"),
                );
                self.world.cp.core().clear_faults();
            }
            StepAction::BackendFault => {
                let fault = step
                    .fault
                    .clone()
                    .unwrap_or(toml::Value::Table(Default::default()));
                record(
                    &self.world,
                    "step",
                    Severity::Info,
                    None,
                    None,
                    format!("backend fault {fault}{why}"),
                );
                add_backend_fault(&self.world.apica, &fault)?;
            }
            StepAction::StartExecutions => {
                record(
                    &self.world,
                    "step",
                    Severity::Info,
                    None,
                    None,
                    format!("start {} more execution(s){why}", step.executions.len()),
                );
                let overrides = self.opts.overrides.clone();
                self.world.start_executions(&step.executions, &overrides)?;
            }
        }
        Ok(())
    }

    fn start_replica(&mut self) -> Result<()> {
        let n = self.next_replica;
        if n > MAX_REPLICAS {
            return Err(anyhow!(
                "the scenario starts more than {MAX_REPLICAS} replicas"
            ));
        }
        self.next_replica += 1;
        let (key, secret) = replica_key(n, self.seed);
        let mut env: Vec<(String, String)> = vec![
            (
                "AWS_ENDPOINT_URL_CODEPIPELINE".into(),
                self.world.cp_url.clone(),
            ),
            ("AWS_ENDPOINT_URL".into(), self.world.cp_url.clone()),
            ("AWS_ACCESS_KEY_ID".into(), key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), secret),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("JOB_ACTION_TYPE".into(), self.world.action_type.to_string()),
            (
                "JOB_POLL_INTERVAL_MS".into(),
                self.opts.poll_interval_ms.to_string(),
            ),
            ("APICA_API_URL".into(), self.world.apica_url.clone()),
            ("APICA_API_TOKEN".into(), API_TOKEN.into()),
        ];
        if self.world.action_type.owner == fake_codepipeline::Owner::ThirdParty {
            env.push((
                "JOB_CLIENT_TOKENS_FILE".into(),
                self.clients_file.display().to_string(),
            ));
        }
        if let Some(q) = &self.world.query_param {
            env.push(("JOB_QUERY_PARAM".into(), q.clone()));
        }
        let name = format!("replica-{n}");
        let replica = Replica::spawn(&name, &key, &self.opts.agent_cmd, &env, &self.log)
            .with_context(|| format!("start the agent `{}`", self.opts.agent_cmd))?;
        if let Some(pg) = replica.pgid() {
            self.pgids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((key.clone(), pg));
        }
        record(
            &self.world,
            "replica_started",
            Severity::Info,
            None,
            Some(&key),
            format!("{name} started"),
        );
        self.live.push(Live {
            replica,
            first_request: None,
            busy_since: None,
        });
        Ok(())
    }

    fn forget(&mut self, key: &str) {
        self.pgids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, _)| k != key);
        self.world.sim.activity.forget_caller(key);
    }

    /// AG-REDEPLOY: after a graceful stop, no job the replica acknowledged is left without a result.
    fn check_abandoned(&self, key: &str, name: &str) {
        let abandoned: Vec<String> = self.world.cp.core().with_world(|w| {
            w.jobs
                .values()
                .filter(|j| j.status == fake_codepipeline::JobStatus::InProgress)
                .filter(|j| {
                    j.acknowledged.as_ref().and_then(|(_, who)| who.as_deref()) == Some(key)
                })
                .map(|j| format!("job {} of {}", j.number, j.execution))
                .collect()
        });
        if !abandoned.is_empty() {
            record(
                &self.world,
                "jobs_abandoned",
                Severity::Error,
                Some("AG-REDEPLOY"),
                Some(key),
                format!(
                    "{name} exited without answering {} it had acknowledged",
                    abandoned.join(", ")
                ),
            );
        }
    }

    fn reap_exited(&mut self) {
        let crashing: Vec<i32> = {
            let live_groups = self.pgids.lock().unwrap_or_else(|p| p.into_inner());
            self.live
                .iter()
                .filter_map(|l| l.replica.pgid())
                .filter(|g| !live_groups.iter().any(|(_, x)| x == g))
                .collect()
        };
        let mut gone = Vec::new();
        for (i, l) in self.live.iter_mut().enumerate() {
            // Killed by an event-triggered crash whose step is not handled yet: that step reports it.
            if l.replica.pgid().is_some_and(|g| crashing.contains(&g)) {
                continue;
            }
            if let Some(status) = l.replica.has_exited() {
                gone.push((
                    i,
                    l.replica.name.clone(),
                    l.replica.access_key.clone(),
                    status,
                ));
            }
        }
        for (i, name, key, status) in gone.into_iter().rev() {
            self.live.remove(i);
            record(
                &self.world,
                "replica_exited",
                Severity::Warning,
                None,
                Some(&key),
                format!("{name} exited on its own ({status})"),
            );
            self.forget(&key);
        }
    }

    async fn shutdown(&mut self) {
        for l in &self.live {
            l.replica.signal(Signal::SIGTERM);
        }
        for mut l in self.live.drain(..) {
            if l.replica.wait_exit(Duration::from_secs(3)).await.is_none() {
                l.replica.kill().await;
            }
        }
    }
}
