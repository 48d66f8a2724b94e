//! The one scenario driver, behind both `conformance` and `sim --scenario`: the clock policy (manual
//! stepping by the quiescence rule of `docs/design.md`), the scenario's steps (timed and event-triggered),
//! and the agent's replicas. The front ends choose who runs the agent and when the run ends; everything
//! else happens here, once.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use nix::sys::signal::Signal;
use sim_core::{Event, EventKind, NewEvent, Rule, Severity, SimTime, Source, format_offset};
use tokio::sync::watch;

use crate::env::AgentEnv;
use crate::replica::{AgentLog, GroupCpu, Replica, groups_cpu};
use crate::scenario::{Action, Scenario, Step, When};
use crate::verdict;
use crate::world::{Overrides, World, add_backend_fault, replica_key};

/// How long a replica may take to exit after SIGTERM (AG-REDEPLOY).
pub const REDEPLOY_GRACE: Duration = Duration::from_secs(10);

/// How long a managed replica must be seen idle (no job held, nothing in flight, not parked, no request
/// made and no CPU used by its process group) before the clock may move without it, while no job is
/// waiting to be polled (`docs/design.md`, "Stepping the clock").
pub const IDLE_LOOK: Duration = Duration::from_millis(50);

/// Who runs the agent.
pub enum Agents {
    /// The driver starts, stops and crashes replicas of this command (`conformance`).
    Managed {
        /// The agent command line (run with `sh -c`).
        command: String,
        /// Where the replicas' output goes.
        log: AgentLog,
        /// The contract environment, without the per-replica keys.
        env: Box<AgentEnv>,
    },
    /// A person runs their own agent (`sim`): agent steps are skipped, and every caller the fake has seen
    /// counts as a replica.
    External,
}

/// When the run ends.
pub enum Until {
    /// `tail` of simulated time after every execution has ended; a run stuck for `watchdog` (real) fails
    /// as HARNESS-STALL.
    Finished {
        /// Simulated time after the end.
        tail: Duration,
        /// Real time the whole run may take.
        watchdog: Duration,
    },
    /// When the receiver says so (Ctrl-C); the clock stands still once every execution has ended.
    Stopped(watch::Receiver<bool>),
}

/// How the driver runs.
pub struct DriverConfig {
    /// Who runs the agent.
    pub agents: Agents,
    /// When the run ends.
    pub until: Until,
    /// Real time a replica may hold a job (or be busy elsewhere) before the clock moves on without it.
    pub answer_budget: Duration,
    /// AG-START: real time a started replica has to make its first request.
    pub start_grace: Duration,
    /// Real time between two clock moves, so a person can follow (0 for conformance).
    pub step_delay: Duration,
    /// Protocol-tier overrides for executions started by steps.
    pub overrides: Overrides,
    /// The seed (replica keys derive from it).
    pub seed: u64,
}

/// A scenario step as it ran: which one, when, and whether an execution was still running then (a step
/// after every execution has ended tests nothing: the scenario is inconclusive).
#[derive(Clone, Debug, PartialEq)]
pub struct FiredStep {
    /// Its index in the scenario's `steps`; `None` for the restart a crash step scheduled.
    pub index: Option<usize>,
    /// When it ran.
    pub at: SimTime,
    /// Whether an execution was unfinished when it ran.
    pub work_outstanding: bool,
}

/// A live replica and what the driver knows of it.
struct Live {
    replica: Replica,
    // Real time of the first request, once seen.
    first_request: Option<Instant>,
    // While it is neither parked, holding a job nor in flight: the first look since which it has made no
    // request and its process group has used no CPU.
    idle_look: Option<IdleLook>,
}

/// A look at a replica that is neither parked, holding a job nor in flight.
struct IdleLook {
    at: Instant,
    requests: u64,
    cpu: GroupCpu,
}

/// The driver of one scenario run.
pub struct Driver<'a> {
    scenario: &'a Scenario,
    world: &'a mut World,
    config: DriverConfig,
    live: Vec<Live>,
    next_replica: usize,
    // Per caller: since when it has been seen neither parked in a poll nor holding a job (busy elsewhere,
    // e.g. a naive agent waiting on the backend): after the answer budget the clock moves on without it.
    busy_since: HashMap<String, Instant>,
    // Process groups of live replicas, for the synchronous crash in the event listener.
    pgids: Arc<Mutex<Vec<(String, i32)>>>,
    triggered: mpsc::Receiver<(usize, Event)>,
    timed: Vec<(SimTime, Option<usize>, Action)>,
    fired: Vec<FiredStep>,
    // Set when the agent died (AG-START, AG-EXITED): the run ends there.
    agent_failure: Option<String>,
    // The largest peak memory (VmHWM, KiB) seen of a replica's process before it was stopped.
    peak_rss_kib: Option<u64>,
    started: Instant,
    finished_at: Option<SimTime>,
    // When the clock last moved (real), and when each job waiting to be polled was first seen so: the clock
    // passes such a job's deadline only after the answer budget since the later of the two.
    last_move: Instant,
    pollable_since: HashMap<String, Instant>,
}

fn record(
    world: &World,
    kind: EventKind,
    severity: Severity,
    rule: Option<Rule>,
    replica: Option<&str>,
    detail: String,
) {
    let mut e = NewEvent::new(Source::Runner, kind)
        .severity(severity)
        .detail(detail)
        .replica_opt(replica);
    if let Some(r) = rule {
        e = e.rule(r, severity);
    }
    world.sim.events.record(e);
}

impl<'a> Driver<'a> {
    /// A driver for `scenario` on a started `world`. Event-triggered steps count the events from now on.
    pub fn new(scenario: &'a Scenario, world: &'a mut World, config: DriverConfig) -> Self {
        let origin = world.sim.clock.origin();
        let mut timed = Vec::new();
        let (tx, rx) = mpsc::channel();
        let pgids: Arc<Mutex<Vec<(String, i32)>>> = Arc::new(Mutex::new(Vec::new()));
        let managed = matches!(config.agents, Agents::Managed { .. });
        for (i, step) in scenario.steps.iter().enumerate() {
            if !managed && step.action.is_agent_step() {
                tracing::info!(
                    "scenario step `{:?}` skipped: your agent is started, redeployed and crashed by you",
                    step.action.kind()
                );
                continue;
            }
            match step.when {
                When::At(at) => timed.push((at.from_origin(origin), Some(i), step.action.clone())),
                When::On { event, after, nth } => {
                    let seen = Arc::new(Mutex::new(0usize));
                    let tx = tx.clone();
                    let pg = pgids.clone();
                    let crash = matches!(step.action, Action::Crash { .. });
                    // A step about one execution counts that execution's events only.
                    let only = match &step.action {
                        Action::StopExecution { execution, .. }
                        | Action::RetryStage { execution, .. } => Some(execution.clone()),
                        _ => None,
                    };
                    world.sim.events.add_listener(move |e| {
                        if e.name() != event
                            || after.is_some_and(|a| Duration::from_millis(e.sim_ms) < a.get())
                            || only
                                .as_ref()
                                .is_some_and(|x| e.execution.as_ref() != Some(x))
                        {
                            return;
                        }
                        let mut n = seen.lock().unwrap_or_else(|p| p.into_inner());
                        *n += 1;
                        if *n != nth.get() {
                            return;
                        }
                        if crash {
                            // Exactly between two actions of the agent: the recording request has not
                            // answered yet. The groups leave the live list first, so their exit is the crash
                            // step's to report.
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
        }
        timed.sort_by_key(|(t, i, _)| (*t, *i));
        Driver {
            scenario,
            world,
            config,
            live: Vec::new(),
            next_replica: 1,
            busy_since: HashMap::new(),
            pgids,
            triggered: rx,
            timed,
            fired: Vec::new(),
            agent_failure: None,
            peak_rss_kib: None,
            started: Instant::now(),
            finished_at: None,
            last_move: Instant::now(),
            pollable_since: HashMap::new(),
        }
    }

    /// The steps that ran, in order.
    pub fn fired(&self) -> &[FiredStep] {
        &self.fired
    }

    /// Why the run ended early because of the agent (AG-START, AG-EXITED), if it did.
    pub fn agent_failure(&self) -> Option<&str> {
        self.agent_failure.as_deref()
    }

    /// The agent's peak memory (`VmHWM` of its largest process, KiB), as read just before its replicas
    /// were stopped (by a redeploy or at the end), and of the replicas alive now.
    pub fn agent_peak_rss_kib(&self) -> Option<u64> {
        self.peak_rss_kib.max(self.live_peak_rss_kib())
    }

    fn live_peak_rss_kib(&self) -> Option<u64> {
        let pgids: Vec<i32> = self.live.iter().filter_map(|l| l.replica.pgid()).collect();
        crate::replica::peak_rss_kib(&pgids)
    }

    fn note_peak_rss(&mut self) {
        self.peak_rss_kib = self.peak_rss_kib.max(self.live_peak_rss_kib());
    }

    fn now(&self) -> SimTime {
        self.world.sim.clock.now()
    }

    fn stamp(&self) -> String {
        format_offset(self.now().since(self.world.sim.clock.origin()))
    }

    fn stopped(&self) -> bool {
        matches!(&self.config.until, Until::Stopped(rx) if *rx.borrow())
    }

    /// Runs the scenario to its end (see [`Until`]); then stops every replica it started.
    pub async fn drive(&mut self) -> Result<()> {
        let result = self.drive_inner().await;
        if let Err(e) = &result {
            record(
                self.world,
                EventKind::HarnessError,
                Severity::Error,
                Some(Rule::HarnessStall),
                None,
                e.to_string(),
            );
        }
        self.shutdown().await;
        result
    }

    async fn drive_inner(&mut self) -> Result<()> {
        loop {
            self.check_watchdog()?;
            self.handle_triggered().await?;
            self.run_due_steps().await?;
            self.reap_exited().await;
            if self.agent_failure.is_some() {
                return Ok(());
            }
            self.note_finished();
            if !self.wait_quiescent().await? {
                return Ok(());
            }
            self.handle_triggered().await?;
            self.note_finished();
            let end = match &self.config.until {
                Until::Finished { tail, .. } => self.finished_at.map(|f| f.plus(*tail)),
                Until::Stopped(_) => None,
            };
            if end.is_some_and(|e| self.now() >= e) {
                return Ok(());
            }
            // Step to the next thing that happens: a timer, a scenario step, or the end of the tail.
            let next = [
                self.world.sim.clock.next_deadline().map(|d| d.at),
                self.timed.first().map(|(t, _, _)| *t),
                end,
            ]
            .into_iter()
            .flatten()
            .min();
            let target = match (next, &self.config.until) {
                (Some(t), Until::Finished { .. }) => t,
                (Some(t), Until::Stopped(_)) if self.finished_at.is_none() => t,
                (_, Until::Stopped(_)) => {
                    // A person's world: nothing moves until they stop it (or move the clock themselves).
                    if !self.idle().await {
                        return Ok(());
                    }
                    continue;
                }
                (None, Until::Finished { .. }) => {
                    return Err(anyhow!(
                        "HARNESS-STALL: nothing left to happen at {} but executions are unfinished",
                        self.stamp()
                    ));
                }
            };
            let target = target.max(self.now());
            if self.would_expire_a_waiting_job(target) {
                // A replica asleep in a retry backoff gets its budget to poll it first.
                if !self.idle().await {
                    return Ok(());
                }
                continue;
            }
            if !self.config.step_delay.is_zero() && !self.sleep(self.config.step_delay).await {
                return Ok(());
            }
            self.world
                .sim
                .clock
                .advance_to(target)
                .map_err(|e| anyhow!("clock: {e}"))?;
            self.last_move = Instant::now();
        }
    }

    /// The rule of `docs/design.md`: the clock never passes the deadline of a job that is waiting to be
    /// polled (or, with an ack window of 0, handed out and not yet acknowledged) until every live replica has had a full answer budget since that job became pollable or since
    /// the clock last moved, whichever is later. (A replica that sleeps in an SDK's retry backoff is neither
    /// parked nor holding a job; without this the step after the one that queued a job could be its
    /// deadline.)
    fn would_expire_a_waiting_job(&mut self, target: SimTime) -> bool {
        let now = Instant::now();
        let ty = &self.world.action_type;
        // With an ack window of 0 a handed-out job stays in the queue until acknowledged: a replica's
        // poll can return it between the activity snapshot and this look, so it counts as waiting too.
        let queued: Vec<(String, Option<SimTime>)> = self.world.cp.core().inspect(|w| {
            w.unacknowledged(ty)
                .into_iter()
                .map(|j| (j.id.clone(), j.deadline))
                .collect()
        });
        self.pollable_since
            .retain(|id, _| queued.iter().any(|(q, _)| q == id));
        let mut hold = false;
        for (id, deadline) in queued {
            let since = *self.pollable_since.entry(id).or_insert(now);
            if deadline.is_some_and(|d| d <= target)
                && since.max(self.last_move).elapsed() < self.config.answer_budget
            {
                hold = true;
            }
        }
        hold
    }

    fn note_finished(&mut self) {
        if self.finished_at.is_none() && self.world.all_finished() {
            self.finished_at = Some(self.now());
            if matches!(self.config.until, Until::Stopped(_)) {
                tracing::info!(
                    "scenario finished at {}; the world stays up until Ctrl-C",
                    self.stamp()
                );
            }
        }
    }

    /// Sleeps `d` (real); false if the run was stopped meanwhile.
    async fn sleep(&mut self, d: Duration) -> bool {
        match &mut self.config.until {
            Until::Stopped(rx) => {
                tokio::select! {
                    _ = rx.wait_for(|s| *s) => false,
                    _ = tokio::time::sleep(d) => true,
                }
            }
            Until::Finished { .. } => {
                tokio::time::sleep(d).await;
                true
            }
        }
    }

    /// Waits for activity or a while; false if the run was stopped.
    async fn idle(&mut self) -> bool {
        let activity = self.world.sim.activity.clone();
        let changed = activity.notified();
        match &mut self.config.until {
            Until::Stopped(rx) => {
                tokio::select! {
                    _ = rx.wait_for(|s| *s) => false,
                    _ = changed => true,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => true,
                }
            }
            Until::Finished { .. } => {
                let _ = tokio::time::timeout(Duration::from_millis(25), changed).await;
                true
            }
        }
    }

    fn check_watchdog(&self) -> Result<()> {
        if let Until::Finished { watchdog, .. } = self.config.until
            && self.started.elapsed() > watchdog
        {
            return Err(anyhow!(
                "HARNESS-STALL: the run took more than the {} watchdog (real time) at simulated {}",
                sim_core::format_duration(watchdog),
                self.stamp()
            ));
        }
        Ok(())
    }

    /// The stepping rule of `docs/design.md`: (a) no request in flight; (b) every live replica parked in a
    /// poll (holding nothing), or holding its oldest job longer than the answer budget, or busy elsewhere
    /// for the answer budget, or (a managed replica, while no job is waiting to be polled) idle: holding
    /// nothing, not parked, nothing in flight, and neither a request nor CPU used by its process group for
    /// [`IDLE_LOOK`]; (c) no replica starting. With an agent a person runs, the replicas are the callers the
    /// fake has seen, and the clock waits for the first.
    fn quiescent(&mut self) -> bool {
        let snap = self.world.sim.activity.snapshot();
        if snap.in_flight > 0 {
            return false;
        }
        let callers: Vec<String> = match self.config.agents {
            Agents::Managed { .. } => {
                if !self.replicas_started(&snap) {
                    return false;
                }
                self.live
                    .iter()
                    .map(|l| l.replica.access_key.clone())
                    .collect()
            }
            Agents::External => {
                let seen: Vec<String> = snap
                    .callers
                    .iter()
                    .filter(|c| c.requests > 0)
                    .map(|c| c.caller.clone())
                    .collect();
                if seen.is_empty() {
                    return false;
                }
                seen
            }
        };
        let ty = &self.world.action_type;
        let (queued, waiting) = self
            .world
            .cp
            .core()
            .inspect(|w| (w.queued_jobs(ty), w.unacknowledged(ty).len()));
        // Only while no job is waiting to be polled does an idle replica count as waiting: one that is
        // asleep (in a retry backoff, say) while a job waits keeps its full budget to come and poll it.
        let idle = if waiting == 0 {
            self.idle_replicas(&snap)
        } else {
            Vec::new()
        };
        let mut any_parked = false;
        for key in callers {
            let Some(c) = snap.caller(&key) else {
                continue;
            };
            let held_too_long = c
                .oldest_hold
                .is_some_and(|h| h >= self.config.answer_budget);
            let parked_idle = c.parked > 0 && c.held_jobs == 0;
            any_parked |= c.parked > 0;
            let busy_too_long = if c.parked > 0 || c.held_jobs > 0 {
                self.busy_since.remove(&key);
                false
            } else {
                self.busy_since
                    .entry(key.clone())
                    .or_insert_with(Instant::now)
                    .elapsed()
                    >= self.config.answer_budget
            };
            if !(parked_idle || held_too_long || busy_too_long || idle.contains(&key)) {
                return false;
            }
        }
        // A job queued while a poll is parked is about to be handed out: wait for it.
        !(any_parked && queued > 0)
    }

    /// Looks at the managed replicas that are neither parked, holding a job nor in flight (one pass over
    /// `/proc` for their process groups) and returns the access keys of those that have made no request
    /// and whose process group has used no CPU for at least [`IDLE_LOOK`]. Any other replica's look starts
    /// over.
    fn idle_replicas(&mut self, snap: &sim_core::ActivitySnapshot) -> Vec<String> {
        let candidate = |l: &Live| {
            snap.caller(&l.replica.access_key)
                .is_some_and(|c| c.parked == 0 && c.held_jobs == 0 && c.in_flight == 0)
        };
        let now = Instant::now();
        let mut pgids = Vec::new();
        for l in &mut self.live {
            match l.replica.pgid() {
                Some(g) if candidate(l) => {
                    // A look begun less than IDLE_LOOK ago, with no request since, cannot end yet: no
                    // pass over /proc for it (each pass reads every process's stat file).
                    let requests = snap.caller(&l.replica.access_key).map(|c| c.requests);
                    let pending = l.idle_look.as_ref().is_some_and(|look| {
                        Some(look.requests) == requests && now.duration_since(look.at) < IDLE_LOOK
                    });
                    if !pending {
                        pgids.push(g);
                    }
                }
                _ => l.idle_look = None,
            }
        }
        if pgids.is_empty() {
            return Vec::new();
        }
        let cpu = groups_cpu(&pgids);
        let mut idle = Vec::new();
        for l in &mut self.live {
            let Some(g) = l.replica.pgid().filter(|g| pgids.contains(g)) else {
                continue;
            };
            let (Some(cpu), Some(c)) = (cpu.get(&g), snap.caller(&l.replica.access_key)) else {
                // Its group is gone (it is exiting) or /proc cannot be read: never idle.
                l.idle_look = None;
                continue;
            };
            match &l.idle_look {
                Some(look) if look.requests == c.requests && look.cpu == *cpu => {
                    if now.duration_since(look.at) >= IDLE_LOOK {
                        idle.push(l.replica.access_key.clone());
                    }
                }
                _ => {
                    l.idle_look = Some(IdleLook {
                        at: now,
                        requests: c.requests,
                        cpu: cpu.clone(),
                    })
                }
            }
        }
        idle
    }

    /// (c): every managed replica has made its first request, or is past its start grace (AG-START).
    fn replicas_started(&mut self, snap: &sim_core::ActivitySnapshot) -> bool {
        for live in &mut self.live {
            if live.first_request.is_some() {
                continue;
            }
            if snap
                .caller(&live.replica.access_key)
                .is_some_and(|c| c.requests > 0)
            {
                live.first_request = Some(Instant::now());
                continue;
            }
            if live.replica.started.elapsed() <= self.config.start_grace {
                return false;
            }
            let v = verdict::ag_start(&live.replica.name, self.config.start_grace);
            record(
                self.world,
                EventKind::ReplicaNeverPolled,
                Severity::Error,
                Some(v.rule),
                Some(&live.replica.access_key),
                v.detail,
            );
            live.first_request = Some(Instant::now());
        }
        true
    }

    /// Waits until the clock may move; false if the run was stopped.
    async fn wait_quiescent(&mut self) -> Result<bool> {
        loop {
            if self.stopped() {
                return Ok(false);
            }
            let activity = self.world.sim.activity.clone();
            let changed = activity.notified();
            // A crash on an event must be handled at once, not after its victim's answer budget.
            self.handle_triggered().await?;
            if self.quiescent() {
                return Ok(true);
            }
            self.check_watchdog()?;
            self.reap_exited().await;
            if self.agent_failure.is_some() {
                return Ok(false);
            }
            let wait = match self.config.until {
                Until::Finished { .. } => Duration::from_millis(25),
                // Re-check now and then: a job's budget runs out without any activity.
                Until::Stopped(_) => Duration::from_millis(100),
            };
            if let Until::Stopped(rx) = &mut self.config.until {
                tokio::select! {
                    _ = rx.wait_for(|s| *s) => return Ok(false),
                    _ = changed => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            } else {
                let _ = tokio::time::timeout(wait, changed).await;
            }
        }
    }

    async fn run_due_steps(&mut self) -> Result<()> {
        while let Some((t, _, _)) = self.timed.first() {
            if *t > self.now() {
                break;
            }
            let (_, index, action) = self.timed.remove(0);
            self.execute(index, &action, None).await?;
        }
        Ok(())
    }

    async fn handle_triggered(&mut self) -> Result<()> {
        while let Ok((i, event)) = self.triggered.try_recv() {
            let step: &Step = &self.scenario.steps[i];
            self.execute(Some(i), &step.action.clone(), Some(&event))
                .await?;
        }
        Ok(())
    }

    fn step_event(&self, detail: String) {
        tracing::info!("scenario step: {detail}");
        record(
            self.world,
            EventKind::Step,
            Severity::Info,
            None,
            None,
            detail,
        );
    }

    async fn execute(
        &mut self,
        index: Option<usize>,
        action: &Action,
        cause: Option<&Event>,
    ) -> Result<()> {
        self.fired.push(FiredStep {
            index,
            at: self.now(),
            work_outstanding: !self.world.all_finished(),
        });
        // A scenario step changes the world (a fault cleared, an outage over): a replica that was neither
        // parked nor holding a job, say sleeping in a retry backoff, gets a fresh answer budget to notice.
        self.busy_since.clear();
        let why = match cause {
            Some(e) => format!(" on {} ({})", e.name(), e.detail),
            None => String::new(),
        };
        match action {
            Action::StartAgent { replicas } => {
                self.step_event(format!("start {replicas} agent replica(s){why}"));
                for _ in 0..replicas.get() {
                    self.start_replica()?;
                }
            }
            Action::Redeploy => {
                self.step_event(format!("redeploy: SIGTERM to every replica{why}"));
                let count = self.live.len().max(1);
                self.note_peak_rss();
                let old: Vec<Live> = self.live.drain(..).collect();
                for l in &old {
                    l.replica.signal(Signal::SIGTERM);
                }
                for mut l in old {
                    let key = l.replica.access_key.clone();
                    let t0 = Instant::now();
                    match l.replica.wait_exit(REDEPLOY_GRACE).await {
                        Some(status) => record(
                            self.world,
                            EventKind::ReplicaStopped,
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
                            let v = verdict::ag_redeploy_slow(&l.replica.name, REDEPLOY_GRACE);
                            record(
                                self.world,
                                EventKind::ReplicaKilled,
                                Severity::Error,
                                Some(v.rule),
                                Some(&key),
                                v.detail,
                            );
                        }
                    }
                    let abandoned = self
                        .world
                        .cp
                        .core()
                        .inspect(|w| verdict::ag_redeploy_abandoned(w, &key, &l.replica.name));
                    if let Some(v) = abandoned {
                        record(
                            self.world,
                            EventKind::JobsAbandoned,
                            Severity::Error,
                            Some(v.rule),
                            Some(&key),
                            v.detail,
                        );
                    }
                    self.forget(&key);
                }
                for _ in 0..count {
                    self.start_replica()?;
                }
            }
            Action::Crash { restart_after } => {
                self.step_event(format!("crash: SIGKILL to every replica{why}"));
                let old: Vec<Live> = self.live.drain(..).collect();
                let count = old.len().max(1);
                for mut l in old {
                    l.replica.kill().await;
                    let key = l.replica.access_key.clone();
                    record(
                        self.world,
                        EventKind::ReplicaCrashed,
                        Severity::Info,
                        None,
                        Some(&key),
                        format!("{} killed", l.replica.name),
                    );
                    self.forget(&key);
                }
                if let Some(d) = restart_after {
                    let at = self.now().plus(d.get());
                    let replicas = NonZeroUsize::new(count).unwrap_or(NonZeroUsize::MIN);
                    self.timed.push((at, None, Action::StartAgent { replicas }));
                    self.timed.sort_by_key(|(t, i, _)| (*t, *i));
                }
            }
            Action::CpFaults(rule) => {
                // A job-worker operation applies to the family of the action type in effect, so that a
                // scenario written for custom types also tests a third-party agent (and back).
                let mut rule = rule.clone();
                rule.operation = fake_codepipeline::ops::job_worker_operation(
                    &rule.operation,
                    self.world.action_type.owner,
                )
                .to_string();
                self.step_event(format!(
                    "CodePipeline faults: {:?} on {} at rate {}{}{why}",
                    rule.kind,
                    rule.operation,
                    rule.rate,
                    rule.count
                        .map(|n| format!(", the next {n} call(s)"))
                        .unwrap_or_default()
                ));
                self.world.cp.core().add_fault(rule);
            }
            Action::ClearCpFaults => {
                self.step_event(format!("CodePipeline faults cleared{why}"));
                self.world.cp.core().clear_faults();
            }
            Action::BackendFault(fault) => {
                let doc = add_backend_fault(&self.world.apica, fault)?;
                self.step_event(format!("backend fault {doc}{why}"));
            }
            Action::StopExecution {
                execution,
                abandon,
                reason,
            } => {
                let how = if *abandon { "abandon" } else { "stop and wait" };
                let stopped =
                    self.world
                        .cp
                        .core()
                        .stop_execution(execution, *abandon, reason.as_deref());
                match stopped {
                    Ok(run) => self.step_event(format!(
                        "stop {execution}'s pipeline execution {run} ({how}){why}"
                    )),
                    // The execution may have ended already: the step says so, the run goes on.
                    Err(e) => self.step_event(format!(
                        "stop {execution}'s pipeline execution ({how}) refused: {}{why}",
                        e.message
                    )),
                }
            }
            Action::RetryStage { execution, mode } => {
                match self.world.cp.core().retry_stage(execution, None, *mode) {
                    Ok(retried) => {
                        // A retry comes after its execution ended, by nature: it tested its premise
                        // when it started the action again.
                        if let Some(f) = self.fired.last_mut() {
                            f.work_outstanding = !retried.executions.is_empty();
                        }
                        self.step_event(format!(
                            "retry {execution}'s stage {} ({}): {}{why}",
                            retried.stage,
                            mode.as_str(),
                            retried.executions.join(", ")
                        ));
                        let first = self
                            .world
                            .executions
                            .iter()
                            .find(|e| &e.label == execution)
                            .cloned();
                        for label in retried.executions {
                            let (runnable_file, preset) = first
                                .as_ref()
                                .map(|e| (e.runnable_file.clone(), e.preset.clone()))
                                .unwrap_or_default();
                            let tests_before = runnable_file
                                .as_deref()
                                .map_or(0, |f| self.world.apica.tests_for_runnable_file(f));
                            self.world.executions.push(crate::world::StartedExecution {
                                label,
                                runnable_file,
                                preset,
                                tests_before,
                            });
                        }
                    }
                    // The execution may not be retryable (still running, or not the latest): the step
                    // says so, the run goes on.
                    Err(e) => self.step_event(format!(
                        "retry {execution}'s stage ({}) refused: {}{why}",
                        mode.as_str(),
                        e.message
                    )),
                }
            }
            Action::StartExecutions(executions) => {
                self.step_event(format!("start {} more execution(s){why}", executions.len()));
                let overrides = self.config.overrides.clone();
                self.world.start_executions(executions, &overrides)?;
            }
        }
        Ok(())
    }

    fn start_replica(&mut self) -> Result<()> {
        let Agents::Managed { command, log, env } = &self.config.agents else {
            return Ok(());
        };
        let n = self.next_replica;
        if n > crate::world::MAX_REPLICAS {
            return Err(anyhow!(
                "the scenario starts more than {} replicas",
                crate::world::MAX_REPLICAS
            ));
        }
        self.next_replica += 1;
        let (key, secret) = replica_key(n, self.config.seed);
        let name = format!("replica-{n}");
        let replica = Replica::spawn(&name, &key, command, &env.vars(&key, &secret), log)
            .with_context(|| format!("start the agent `{command}`"))?;
        if let Some(pg) = replica.pgid() {
            self.pgids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((key.clone(), pg));
        }
        record(
            self.world,
            EventKind::ReplicaStarted,
            Severity::Info,
            None,
            Some(&key),
            format!("{name} started"),
        );
        self.live.push(Live {
            replica,
            first_request: None,
            idle_look: None,
        });
        Ok(())
    }

    fn forget(&mut self, key: &str) {
        self.pgids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, _)| k != key);
        self.busy_since.remove(key);
        self.world.sim.activity.forget_caller(key);
    }

    /// Notes the replicas that exited on their own. One that exits before its first request breaks
    /// AG-START; the last one exiting while work is outstanding (and no step is due to start the agent
    /// again) breaks AG-EXITED. Either ends the run: what would follow (timeouts, missing outcomes) is not
    /// about the protocol.
    async fn reap_exited(&mut self) {
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
                gone.push((i, status));
            }
        }
        if gone.is_empty() {
            return;
        }
        let snap = self.world.sim.activity.snapshot();
        let mut exits = Vec::new();
        for (i, status) in gone.into_iter().rev() {
            let mut l = self.live.remove(i);
            let key = l.replica.access_key.clone();
            let polled =
                l.first_request.is_some() || snap.caller(&key).is_some_and(|c| c.requests > 0);
            let tail = quote_tail(&l.replica.last_lines().await);
            let name = l.replica.name.clone();
            if polled {
                record(
                    self.world,
                    EventKind::ReplicaExited,
                    Severity::Warning,
                    None,
                    Some(&key),
                    format!("{name} exited on its own ({status})"),
                );
                exits.push((key.clone(), format!("{name} exited ({status}){tail}")));
            } else {
                let detail = format!(
                    "{name} exited ({status}) before its first request: the agent did not start{tail}"
                );
                record(
                    self.world,
                    EventKind::ReplicaExited,
                    Severity::Error,
                    Some(Rule::AgStart),
                    Some(&key),
                    detail.clone(),
                );
                self.agent_failure
                    .get_or_insert(format!("AG-START: {detail}"));
            }
            self.forget(&key);
        }
        let restart_due = self
            .timed
            .iter()
            .any(|(_, _, a)| matches!(a, Action::StartAgent { .. }));
        if self.agent_failure.is_none()
            && self.live.is_empty()
            && !restart_due
            && !exits.is_empty()
            && !self.world.all_finished()
        {
            let unfinished = self.world.unfinished_labels();
            let detail = format!(
                "every replica has exited while work was outstanding ({} unfinished at {}): {}",
                unfinished.join(", "),
                self.stamp(),
                exits
                    .iter()
                    .map(|(_, e)| e.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            record(
                self.world,
                EventKind::ReplicaExited,
                Severity::Error,
                Some(Rule::AgExited),
                exits.last().map(|(k, _)| k.as_str()),
                detail.clone(),
            );
            self.agent_failure = Some(format!("AG-EXITED: {detail}"));
        }
    }

    async fn shutdown(&mut self) {
        self.note_peak_rss();
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

/// A replica's last lines of output, quoted on one line for an event's detail.
fn quote_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return "; it wrote nothing to agent.log".into();
    }
    format!("; the end of its agent.log: {}", lines.join(" | "))
}

/// Where a managed run writes the files its agent reads.
pub fn clients_file(out_dir: &std::path::Path) -> PathBuf {
    out_dir.join("client-tokens.json")
}

/// The `sim --scenario` front end: plays `scenario`'s world steps on `world` for an agent that someone
/// else runs (its agent steps are skipped), moving the manual clock by the same rule as `conformance`,
/// until `stop` says so.
pub async fn play(
    scenario: &Scenario,
    world: &mut World,
    seed: u64,
    answer_budget: Duration,
    step_delay: Duration,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let config = DriverConfig {
        agents: Agents::External,
        until: Until::Stopped(stop),
        answer_budget,
        start_grace: scenario.harness.start_grace.get(),
        step_delay,
        overrides: Overrides::default(),
        seed,
    };
    Driver::new(scenario, world, config).drive().await
}
