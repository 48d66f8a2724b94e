//! Exploration: scenarios generated from a seed, judged by the invariants every correct agent keeps, and a
//! failure shrunk to a small scenario file that replays it (`conformance --explore N`).
//!
//! The generator draws from what a scenario can say (test lengths from a minute to eight hours, outcomes,
//! 1-3 replicas, ack windows including 0, continuation delays, CodePipeline throttling, server errors and
//! lost responses, backend outages, error rates, latency, lost tests and slow starts, redeploys and crashes
//! at random times or on random events, executions started during the run, stops and retries) with the weights of [`Weights`]. What it writes
//! is an ordinary scenario file: `[expect] invariants = true` and, per execution, the ends it may reach
//! (`outcome_in`), computed here by the rules of `docs/design.md` ("Exploration").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::scenario::{Scenario, Tier};

/// A backend outage no longer than this (while the agent watches the test) must be ridden out: the
/// execution ends as its test does. A longer one may also end in `Failed:SystemUnavailable`.
pub const RIDE_OUT: u64 = 5 * 60;

/// The share of each choice, in percent, as the generator draws them. Documented in `docs/design.md`.
pub struct Weights;

impl Weights {
    /// Executions at the start: 1, 2 or 3.
    pub const EXECUTIONS: [(u64, u32); 3] = [(1, 55), (2, 30), (3, 15)];
    /// Test lengths: 1-30 min, 30 min-3 h, 3-8 h (uniform within, whole minutes).
    pub const LENGTHS: [((u64, u64), u32); 3] = [
        ((60, 1_800), 50),
        ((1_800, 10_800), 35),
        ((10_800, 28_800), 15),
    ];
    /// A test passes (the rest fail with a reason), in the apica tier.
    pub const PASSED: u32 = 75;
    /// One or two more executions started by a step during the run.
    pub const LATE_EXECUTIONS: u32 = 20;
    /// Replicas: 1, 2 or 3.
    pub const REPLICAS: [(u64, u32); 3] = [(1, 60), (2, 30), (3, 10)];
    /// Ack window (seconds) with two or more replicas: 5 min, 0 (replicas race), 1 min.
    pub const ACK_WINDOW: [(u64, u32); 3] = [(300, 70), (0, 20), (60, 10)];
    /// Continuation delay (seconds); 10 s only when every test is an hour or shorter.
    pub const CONTINUATION_DELAY: [(u64, u32); 3] = [(30, 65), (60, 20), (10, 15)];
    /// A window of CodePipeline faults (throttling or server errors, 10-35 % of calls, 30 s-4 min).
    pub const CP_FAULTS: u32 = 30;
    /// Of the CodePipeline fault windows, a throttling storm: every poll refused for 30 s-2 min.
    pub const STORM: u32 = 30;
    /// A backend outage (1-20 min; one in five permanent).
    pub const OUTAGE: u32 = 25;
    /// A backend error rate (10-30 % of calls, 1-20 min).
    pub const ERROR_RATE: u32 = 15;
    /// Backend latency (1-20 ms real, 1-30 min).
    pub const LATENCY: u32 = 10;
    /// One execution's test lost by the backend (1-10 min; one in five for good).
    pub const LOST_TEST: u32 = 7;
    /// Tests start late (10 s-5 min).
    pub const SLOW_START: u32 = 10;
    /// A redeploy (SIGTERM, then a new replica), once or twice.
    pub const REDEPLOY: u32 = 30;
    /// A crash (SIGKILL), restarted after 10 s-10 min.
    pub const CRASH: u32 = 20;
    /// An agent step on an event rather than at a time.
    pub const ON_EVENT: u32 = 40;
    /// Lost responses: the next 1-4 calls of one job-worker operation are applied and their responses
    /// lost, from an acknowledge (the 1st-3rd) or a time on.
    pub const LOST_RESPONSES: u32 = 20;
    /// A stop of one execution's pipeline execution while its test runs (half of them with abandon).
    pub const STOP: u32 = 10;
    /// A retry of a failed execution's stage once it has ended (apica tier).
    pub const RETRY: u32 = 15;
    /// Which operation loses its responses.
    pub const LOST_OPERATIONS: [(&'static str, u32); 4] = [
        ("PutJobSuccessResult", 60),
        ("AcknowledgeJob", 15),
        ("PollForJobs", 15),
        ("PutJobFailureResult", 10),
    ];
}

/// One execution of a generated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct GenExecution {
    /// Its label, also its preset's name.
    pub label: String,
    /// Its test's length, seconds.
    pub duration: u64,
    /// Whether its test passes.
    pub passed: bool,
    /// When it starts, seconds (0: with the world; else a `start-executions` step).
    pub start: u64,
}

/// A CodePipeline fault rule of a generated window.
#[derive(Clone, Debug, PartialEq)]
pub struct GenCpRule {
    /// The operation (or `*`).
    pub operation: String,
    /// `throttle` or `server-error`.
    pub kind: &'static str,
    /// The share of calls refused.
    pub rate: f64,
}

/// A window of CodePipeline faults: set at `from`, cleared `len` later.
#[derive(Clone, Debug, PartialEq)]
pub struct GenCpWindow {
    /// The rules.
    pub rules: Vec<GenCpRule>,
    /// Start, seconds.
    pub from: u64,
    /// Length, seconds.
    pub len: u64,
}

/// Lost responses: from `when` on, the next `count` calls of `operation` are applied and their responses
/// lost (a `lost-response` CodePipeline fault; the runner applies the operation to the family of the
/// action type in effect).
#[derive(Clone, Debug, PartialEq)]
pub struct GenLost {
    /// The custom form of a job-worker operation.
    pub operation: &'static str,
    /// How many calls lose their response.
    pub count: u64,
    /// From when.
    pub when: Trigger,
}

/// A change to a pipeline execution from outside the agent.
#[derive(Clone, Debug, PartialEq)]
pub enum GenLifecycle {
    /// StopPipelineExecution for `execution`'s run at `at` seconds.
    Stop {
        /// The execution's label.
        execution: String,
        /// When, seconds.
        at: u64,
        /// Abandon its action, or stop and wait.
        abandon: bool,
    },
    /// RetryStageExecution for `execution`'s stage when it ends (`at` is when that is at the latest, for
    /// the allowed ends): a new action execution `<execution>-retry-1` runs the same test again.
    Retry {
        /// The execution's label.
        execution: String,
        /// When, seconds.
        at: u64,
    },
}

impl GenLifecycle {
    /// The execution it is about.
    pub fn execution(&self) -> &str {
        match self {
            GenLifecycle::Stop { execution, .. } | GenLifecycle::Retry { execution, .. } => {
                execution
            }
        }
    }
}

/// A backend fault's kind.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendKind {
    /// 503 on every call.
    Outage,
    /// A share of calls answered 500.
    ErrorRate(f64),
    /// Real milliseconds added to each call.
    Latency(u64),
    /// This execution's test is unknown to the API.
    LostTest(String),
    /// Tests start this many seconds late.
    SlowStart(u64),
}

/// A backend fault window.
#[derive(Clone, Debug, PartialEq)]
pub struct GenBackendFault {
    /// What it does.
    pub kind: BackendKind,
    /// Start, seconds.
    pub from: u64,
    /// Length, seconds; none: for good.
    pub len: Option<u64>,
}

/// When an agent step happens.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// At this many seconds.
    At(u64),
    /// On the `nth` event of this name.
    On(&'static str, u32),
}

/// An agent step.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentStep {
    /// SIGTERM and a new replica.
    Redeploy(Trigger),
    /// SIGKILL; restarted after this many seconds.
    Crash(Trigger, u64),
}

/// A generated scenario, before it is written as a file. Shrinking edits this.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The seed it came from (its name and its `seed`).
    pub seed: u64,
    /// `apica` or `protocol`.
    pub tier: Tier,
    /// `[world] ack_window`, seconds.
    pub ack_window: u64,
    /// `[world] continuation_delay`, seconds.
    pub continuation_delay: u64,
    /// Replicas started at 0.
    pub replicas: u64,
    /// The executions.
    pub executions: Vec<GenExecution>,
    /// CodePipeline faults.
    pub cp_faults: Option<GenCpWindow>,
    /// Backend faults (apica tier).
    pub backend_faults: Vec<GenBackendFault>,
    /// Redeploys and crashes.
    pub agent_steps: Vec<AgentStep>,
    /// Lost responses.
    pub lost: Option<GenLost>,
    /// Stops and retries.
    pub lifecycle: Vec<GenLifecycle>,
}

fn pick<T: Copy>(rng: &mut StdRng, choices: &[(T, u32)]) -> T {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (v, w) in choices {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    choices[0].0
}

fn chance(rng: &mut StdRng, percent: u32) -> bool {
    rng.random_range(0..100) < percent
}

/// Whole minutes in `lo..=hi` seconds.
fn minutes(rng: &mut StdRng, lo: u64, hi: u64) -> u64 {
    rng.random_range(lo / 60..=hi.max(lo + 60) / 60) * 60
}

/// Whole tens of seconds in `lo..=hi`.
fn tens(rng: &mut StdRng, lo: u64, hi: u64) -> u64 {
    rng.random_range(lo / 10..=hi / 10) * 10
}

/// A share in `lo..=hi` rounded to 0.05.
fn share(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    let x = rng.random_range(lo..=hi);
    (x * 20.0).round() / 20.0
}

impl Generated {
    /// The scenario seed `seed` gives in `tier`. The same seed gives the same scenario (with this build).
    pub fn generate(seed: u64, tier: Tier) -> Generated {
        let mut rng = StdRng::seed_from_u64(seed);
        let apica = tier == Tier::Apica;
        let mut executions = Vec::new();
        let test = |rng: &mut StdRng, label: String, start: u64| {
            let (lo, hi) = pick(rng, &Weights::LENGTHS);
            GenExecution {
                label,
                duration: minutes(rng, lo, hi),
                passed: !apica || chance(rng, Weights::PASSED),
                start,
            }
        };
        for i in 1..=pick(&mut rng, &Weights::EXECUTIONS) {
            executions.push(test(&mut rng, format!("e-{i}"), 0));
        }
        if chance(&mut rng, Weights::LATE_EXECUTIONS) {
            // While the shortest first test still runs, so that the step happens while work is outstanding.
            let shortest = executions.iter().map(|e| e.duration).min().unwrap_or(60);
            let at = tens(&mut rng, 10, (shortest / 2).clamp(10, 1_200));
            for i in 1..=rng.random_range(1..=2) {
                executions.push(test(&mut rng, format!("late-{i}"), at));
            }
        }
        let horizon = executions
            .iter()
            .map(|e| e.start + e.duration)
            .max()
            .unwrap_or(60);
        let replicas = pick(&mut rng, &Weights::REPLICAS);
        let ack_window = if replicas > 1 {
            pick(&mut rng, &Weights::ACK_WINDOW)
        } else {
            300
        };
        let mut continuation_delay = pick(&mut rng, &Weights::CONTINUATION_DELAY);
        if continuation_delay == 10 && horizon > 3_600 {
            continuation_delay = 30;
        }
        let cp_faults = chance(&mut rng, Weights::CP_FAULTS).then(|| {
            let ops: [(&str, u32); 4] = if apica {
                [
                    ("PollForThirdPartyJobs", 50),
                    ("*", 20),
                    ("AcknowledgeThirdPartyJob", 15),
                    ("PutThirdPartyJobSuccessResult", 15),
                ]
            } else {
                [
                    ("PollForJobs", 50),
                    ("*", 20),
                    ("AcknowledgeJob", 15),
                    ("PutJobSuccessResult", 15),
                ]
            };
            if chance(&mut rng, Weights::STORM) {
                // Every poll refused for a while: what shows whether an agent backs off.
                return GenCpWindow {
                    rules: vec![GenCpRule {
                        operation: ops[0].0.to_string(),
                        kind: "throttle",
                        rate: 1.0,
                    }],
                    from: tens(&mut rng, 0, horizon / 2),
                    len: tens(&mut rng, 30, 120),
                };
            }
            let mut rules: Vec<GenCpRule> = Vec::new();
            for _ in 0..rng.random_range(1..=2) {
                let operation = pick(&mut rng, &ops).to_string();
                if rules.iter().any(|r| r.operation == operation) {
                    continue;
                }
                rules.push(GenCpRule {
                    operation,
                    kind: if chance(&mut rng, 70) {
                        "throttle"
                    } else {
                        "server-error"
                    },
                    rate: share(&mut rng, 0.1, 0.35),
                });
            }
            GenCpWindow {
                rules,
                from: tens(&mut rng, 0, horizon / 2),
                len: tens(&mut rng, 30, 240),
            }
        });
        let mut backend_faults = Vec::new();
        if apica {
            if chance(&mut rng, Weights::OUTAGE) {
                let len = (!chance(&mut rng, 20)).then(|| minutes(&mut rng, 60, 1_200));
                backend_faults.push(GenBackendFault {
                    kind: BackendKind::Outage,
                    from: minutes(&mut rng, 60, horizon),
                    len,
                });
            }
            if chance(&mut rng, Weights::ERROR_RATE) {
                let rate = share(&mut rng, 0.1, 0.3);
                backend_faults.push(GenBackendFault {
                    kind: BackendKind::ErrorRate(rate),
                    from: minutes(&mut rng, 0, horizon),
                    len: Some(minutes(&mut rng, 60, 1_200)),
                });
            }
            if chance(&mut rng, Weights::LATENCY) {
                let ms = rng.random_range(1..=20);
                backend_faults.push(GenBackendFault {
                    kind: BackendKind::Latency(ms),
                    from: minutes(&mut rng, 0, horizon),
                    len: Some(minutes(&mut rng, 60, 1_800)),
                });
            }
            if chance(&mut rng, Weights::LOST_TEST) {
                let victim = executions[rng.random_range(0..executions.len())]
                    .label
                    .clone();
                let len = (!chance(&mut rng, 20)).then(|| minutes(&mut rng, 60, 600));
                backend_faults.push(GenBackendFault {
                    kind: BackendKind::LostTest(victim),
                    from: minutes(&mut rng, 60, horizon),
                    len,
                });
            }
            if chance(&mut rng, Weights::SLOW_START) {
                let delay = tens(&mut rng, 10, 300);
                backend_faults.push(GenBackendFault {
                    kind: BackendKind::SlowStart(delay),
                    from: 0,
                    len: Some(horizon.max(60)),
                });
            }
        }
        let mut agent_steps = Vec::new();
        let trigger = |rng: &mut StdRng| {
            if chance(rng, Weights::ON_EVENT) {
                let events: &[(&'static str, u32)] = if apica {
                    &[
                        ("cp.result_applied", 40),
                        ("cp.job_acknowledged", 25),
                        ("cp.job_queued", 20),
                        ("apica.test_created", 15),
                    ]
                } else {
                    &[
                        ("cp.result_applied", 45),
                        ("cp.job_acknowledged", 30),
                        ("cp.job_queued", 25),
                    ]
                };
                Trigger::On(pick(rng, events), rng.random_range(1..=5))
            } else {
                Trigger::At(tens(rng, 10, (horizon * 9 / 10).max(10)))
            }
        };
        if chance(&mut rng, Weights::REDEPLOY) {
            for _ in 0..rng.random_range(1..=2) {
                agent_steps.push(AgentStep::Redeploy(trigger(&mut rng)));
            }
        }
        if chance(&mut rng, Weights::CRASH) {
            let when = trigger(&mut rng);
            agent_steps.push(AgentStep::Crash(when, tens(&mut rng, 10, 600)));
        }
        // Drawn last, so that what a seed drew before lost responses existed stays as it was.
        let lost = chance(&mut rng, Weights::LOST_RESPONSES).then(|| GenLost {
            operation: pick(&mut rng, &Weights::LOST_OPERATIONS),
            count: rng.random_range(1..=4),
            when: if chance(&mut rng, 50) {
                Trigger::On("cp.job_acknowledged", rng.random_range(1..=3))
            } else {
                Trigger::At(tens(&mut rng, 0, (horizon * 9 / 10).max(10)))
            },
        });
        let mut g = Generated {
            seed,
            tier,
            ack_window,
            continuation_delay,
            replicas,
            executions,
            cp_faults,
            backend_faults,
            agent_steps,
            lost,
            lifecycle: Vec::new(),
        };
        // Drawn last too, for the same reason.
        let n = g.executions.len();
        if chance(&mut rng, Weights::STOP) {
            let e = &g.executions[rng.random_range(0..n)];
            let at = e.start + tens(&mut rng, 10, (e.duration * 9 / 10).max(10));
            g.lifecycle.push(GenLifecycle::Stop {
                execution: e.label.clone(),
                at,
                abandon: chance(&mut rng, 50),
            });
        }
        if chance(&mut rng, Weights::RETRY) {
            let stopped = |l: &str| {
                g.lifecycle
                    .iter()
                    .any(|x| matches!(x, GenLifecycle::Stop { execution, .. } if execution == l))
            };
            let failing: Vec<&GenExecution> = g
                .executions
                .iter()
                .filter(|e| !e.passed && !stopped(&e.label))
                .collect();
            if !failing.is_empty() {
                let e = failing[rng.random_range(0..failing.len())];
                let at = g.seen_by(e).div_ceil(10) * 10;
                let retry = GenLifecycle::Retry {
                    execution: e.label.clone(),
                    at,
                };
                g.lifecycle.push(retry);
            }
        }
        g
    }

    /// A rough guess of the real time its run takes, for scheduling the longest first: one unit per job
    /// round (an execution's test length over the continuation delay), plus the rounds inside a window of
    /// CodePipeline faults many times over (a refused call costs an SDK's real-time backoff).
    pub fn cost(&self) -> u64 {
        let delay = self.continuation_delay.max(1);
        let rounds: u64 = self.executions.iter().map(|e| e.duration / delay + 1).sum();
        let faulted = self.cp_faults.as_ref().map_or(0, |w| {
            let share = w.rules.iter().map(|r| r.rate).fold(0.0, f64::max);
            (w.len / delay + 1) * self.executions.len() as u64 * (50.0 * share) as u64
        });
        rounds + faulted
    }

    /// The action executions that retries start, as executions of their own: the same test, started when
    /// the execution ends, which is between its start and `at`. For the ends allowed, the retry is taken
    /// to watch its test over that whole span and its own length: every fault that may overlap it does.
    pub fn retries(&self) -> Vec<GenExecution> {
        self.lifecycle
            .iter()
            .filter_map(|l| match l {
                GenLifecycle::Retry { execution, at } => {
                    let e = self.executions.iter().find(|e| &e.label == execution)?;
                    Some(GenExecution {
                        label: format!("{execution}-retry-1"),
                        start: e.start,
                        duration: at.saturating_sub(e.start) + e.duration,
                        passed: e.passed,
                    })
                }
                GenLifecycle::Stop { .. } => None,
            })
            .collect()
    }

    /// The scenario's name: `explore-SEED`.
    pub fn name(&self) -> String {
        format!("explore-{}", self.seed)
    }

    /// When an execution's end can be seen at the latest, seconds: its test's end (late if tests start
    /// late), two continuation rounds, every crash's restart, and a minute.
    fn seen_by(&self, e: &GenExecution) -> u64 {
        let slow: u64 = self
            .backend_faults
            .iter()
            .filter_map(|f| match f.kind {
                BackendKind::SlowStart(d) if covers(f, e.start) => Some(d),
                _ => None,
            })
            .sum();
        let restarts: u64 = self
            .agent_steps
            .iter()
            .map(|s| match s {
                AgentStep::Crash(_, r) => *r,
                AgentStep::Redeploy(_) => 0,
            })
            .sum();
        e.start + slow + e.duration + 2 * self.continuation_delay + restarts + 60
    }

    /// The ends an execution may reach, by the rules of `docs/design.md` ("Exploration").
    pub fn allowed(&self, e: &GenExecution) -> Vec<String> {
        let own = if e.passed {
            "Succeeded"
        } else {
            "Failed:JobFailed"
        };
        let (watch_from, watch_to) = (e.start, self.seen_by(e));
        let test_end = watch_to;
        let mut own_possible = true;
        let mut also = Vec::new();
        for f in &self.backend_faults {
            let end = f.len.map_or(u64::MAX, |l| f.from + l);
            // A fault that begins while the agent watches the test lasts, for the agent, until it ends:
            // the test's end cannot be seen through it.
            let overlap = if f.from < watch_to && end > watch_from {
                end - f.from.max(watch_from)
            } else {
                0
            };
            match &f.kind {
                BackendKind::Outage if overlap > 0 => {
                    // For good, from before the test's end can be seen: the end is never seen.
                    if f.len.is_none() && f.from < test_end {
                        own_possible = false;
                    }
                    if overlap > RIDE_OUT || f.from <= e.start || f.len.is_none() {
                        also.push("Failed:SystemUnavailable");
                    }
                }
                BackendKind::LostTest(victim) if victim == &e.label && overlap > 0 => {
                    if f.len.is_none() && f.from < test_end {
                        own_possible = false;
                    }
                    also.push("Failed");
                }
                _ => {}
            }
        }
        if self
            .agent_steps
            .iter()
            .any(|s| matches!(s, AgentStep::Crash(..)))
        {
            // A job held by a killed replica can only time out.
            also.push("Failed:JobTimedOut");
        }
        if self.lifecycle.iter().any(
            |l| matches!(l, GenLifecycle::Stop { execution, abandon: true, .. } if execution == &e.label),
        ) {
            also.push("Abandoned");
        }
        let mut out: Vec<String> = Vec::new();
        if own_possible || also.is_empty() {
            out.push(own.into());
        }
        for a in also {
            if !out.iter().any(|o| o == a) {
                out.push(a.into());
            }
        }
        out
    }

    /// One line: what the scenario is.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = vec![format!(
            "{} execution(s) ({})",
            self.executions.len(),
            self.executions
                .iter()
                .map(|e| format!(
                    "{} {}",
                    sim_core::format_duration(Duration::from_secs(e.duration)),
                    if e.passed { "passed" } else { "failed" }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )];
        parts.push(format!("{} replica(s)", self.replicas));
        if let Some(w) = &self.cp_faults {
            parts.push(format!(
                "CodePipeline {}",
                w.rules
                    .iter()
                    .map(|r| format!("{} {}", r.kind, r.operation))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
        for f in &self.backend_faults {
            parts.push(
                match &f.kind {
                    BackendKind::Outage => "backend outage",
                    BackendKind::ErrorRate(_) => "backend errors",
                    BackendKind::Latency(_) => "backend latency",
                    BackendKind::LostTest(_) => "a lost test",
                    BackendKind::SlowStart(_) => "slow test starts",
                }
                .into(),
            );
        }
        for s in &self.agent_steps {
            parts.push(
                match s {
                    AgentStep::Redeploy(_) => "a redeploy",
                    AgentStep::Crash(..) => "a crash",
                }
                .into(),
            );
        }
        if let Some(l) = &self.lost {
            parts.push(format!("{} lost response(s) to {}", l.count, l.operation));
        }
        for l in &self.lifecycle {
            parts.push(match l {
                GenLifecycle::Stop {
                    execution, abandon, ..
                } => format!(
                    "a stop of {execution} ({})",
                    if *abandon { "abandon" } else { "stop and wait" }
                ),
                GenLifecycle::Retry { execution, .. } => format!("a retry of {execution}"),
            });
        }
        format!("Generated: {}.", parts.join(", "))
    }

    /// The scenario file.
    pub fn render(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "# Generated by `conformance --explore` from seed {} (docs/design.md, \"Exploration\").\n\
             # Judged by the invariants every correct agent keeps: [expect] invariants = true.",
            self.seed
        );
        let _ = writeln!(t, "name = \"{}\"", self.name());
        let _ = writeln!(t, "summary = \"{}\"", self.summary());
        let _ = writeln!(t, "tier = \"{}\"\nseed = {}\n", self.tier.name(), self.seed);
        let _ = writeln!(
            t,
            "[world]\nack_window = \"{}s\"\ncontinuation_delay = \"{}s\"\n",
            self.ack_window, self.continuation_delay
        );
        if self.tier == Tier::Protocol {
            let _ = writeln!(t, "[action_type]\nid = \"Test/Custom/ApicaLoadtest/1\"\n");
        }
        for e in &self.executions {
            let _ = writeln!(
                t,
                "[[backend.presets]]\nname = \"{}\"\nduration = \"{}\"\noutcome = \"{}\"",
                e.label,
                duration(e.duration),
                if e.passed { "passed" } else { "failed" }
            );
            if !e.passed {
                let _ = writeln!(t, "reason = \"error rate above threshold in {}\"", e.label);
            }
            t.push('\n');
        }
        for f in &self.backend_faults {
            t.push_str("[[backend.faults]]\n");
            match &f.kind {
                BackendKind::Outage => t.push_str("kind = \"outage\"\n"),
                BackendKind::ErrorRate(r) => {
                    let _ = writeln!(t, "kind = \"error_rate\"\nrate = {r}");
                }
                BackendKind::Latency(ms) => {
                    let _ = writeln!(t, "kind = \"latency\"\nlatency = \"{ms}ms\"");
                }
                BackendKind::LostTest(label) => {
                    let _ = writeln!(t, "kind = \"lost_test\"\nrunnableFile = \"{label}.jmx\"");
                }
                BackendKind::SlowStart(d) => {
                    let _ = writeln!(t, "kind = \"slow_start\"\ndelay = \"{}\"", duration(*d));
                }
            }
            let _ = writeln!(t, "from = \"{}\"", offset(f.from));
            if let Some(l) = f.len {
                let _ = writeln!(t, "for = \"{}\"", duration(l));
            }
            t.push('\n');
        }
        let config = |e: &GenExecution| {
            format!(
                "{{ PresetName = \"{0}\", RunnableFile = \"{0}.jmx\" }}",
                e.label
            )
        };
        for e in self.executions.iter().filter(|e| e.start == 0) {
            let _ = writeln!(
                t,
                "[[executions]]\nid = \"{}\"\nconfiguration = {}\n",
                e.label,
                config(e)
            );
        }
        let _ = writeln!(
            t,
            "[[steps]]\nat = \"0s\"\ndo = \"start-agent\"\nreplicas = {}\n",
            self.replicas
        );
        let late: Vec<&GenExecution> = self.executions.iter().filter(|e| e.start > 0).collect();
        if let Some(first) = late.first() {
            let list: Vec<String> = late
                .iter()
                .map(|e| format!("{{ id = \"{}\", configuration = {} }}", e.label, config(e)))
                .collect();
            let _ = writeln!(
                t,
                "[[steps]]\nat = \"{}\"\ndo = \"start-executions\"\nexecutions = [{}]\n",
                offset(first.start),
                list.join(", ")
            );
        }
        // The faults and the agent's troubles may come after the work is done: they are optional.
        if let Some(w) = &self.cp_faults {
            for r in &w.rules {
                let _ = writeln!(
                    t,
                    "[[steps]]\nat = \"{}\"\ndo = \"cp-faults\"\noperation = \"{}\"\nkind = \"{}\"\nrate = {}\noptional = true\n",
                    offset(w.from),
                    r.operation,
                    r.kind,
                    r.rate
                );
            }
            let _ = writeln!(
                t,
                "[[steps]]\nat = \"{}\"\ndo = \"clear-cp-faults\"\noptional = true\n",
                offset(w.from + w.len)
            );
        }
        let when = |w: &Trigger| match w {
            Trigger::At(s) => format!("at = \"{}\"", offset(*s)),
            Trigger::On(e, n) => format!("on = \"{e}\"\nnth = {n}"),
        };
        if let Some(l) = &self.lost {
            let _ = writeln!(
                t,
                "[[steps]]\n{}\ndo = \"cp-faults\"\noperation = \"{}\"\nkind = \"lost-response\"\nrate = 1.0\ncount = {}\noptional = true\n",
                when(&l.when),
                l.operation,
                l.count
            );
        }
        for l in &self.lifecycle {
            let _ = match l {
                GenLifecycle::Stop {
                    execution,
                    at,
                    abandon,
                } => writeln!(
                    t,
                    "[[steps]]\nat = \"{}\"\ndo = \"stop-execution\"\nexecution = \"{execution}\"\nabandon = {abandon}\noptional = true\n",
                    offset(*at)
                ),
                GenLifecycle::Retry { execution, .. } => writeln!(
                    t,
                    "[[steps]]\non = \"cp.execution_finished\"\ndo = \"retry-stage\"\nexecution = \"{execution}\"\noptional = true\n"
                ),
            };
        }
        for s in &self.agent_steps {
            let (w, what) = match s {
                AgentStep::Redeploy(w) => (w, "do = \"redeploy\"".to_string()),
                AgentStep::Crash(w, r) => (
                    w,
                    format!("do = \"crash\"\nrestart_after = \"{}\"", duration(*r)),
                ),
            };
            let _ = writeln!(t, "[[steps]]\n{}\n{what}\noptional = true\n", when(w));
        }
        t.push_str("[expect]\ninvariants = true\n");
        for e in self.executions.iter().chain(&self.retries()) {
            let allowed: Vec<String> = self.allowed(e).iter().map(|a| format!("\"{a}\"")).collect();
            let _ = writeln!(
                t,
                "\"{}\" = {{ outcome_in = [{}] }}",
                e.label,
                allowed.join(", ")
            );
        }
        t
    }

    /// The scenario, parsed as any file is (`path` names it in errors).
    pub fn scenario(&self, path: &Path) -> anyhow::Result<Scenario> {
        Scenario::parse(&self.render(), path).map_err(|e| {
            anyhow::anyhow!(
                "the generator wrote an invalid scenario (a bug of the harness): {e}\n{}",
                self.render()
            )
        })
    }

    /// Smaller versions of this scenario, most reducing first: fewer executions, steps, faults and
    /// replicas, shorter tests, default world settings.
    pub fn shrink_candidates(&self) -> Vec<Generated> {
        let mut out = Vec::new();
        let mut with = |f: &dyn Fn(&mut Generated)| {
            let mut g = self.clone();
            f(&mut g);
            if &g != self {
                out.push(g);
            }
        };
        for i in 0..self.agent_steps.len() {
            with(&|g| {
                g.agent_steps.remove(i);
            });
        }
        if self.executions.len() > 1 {
            for i in 0..self.executions.len() {
                with(&|g| {
                    let gone = g.executions.remove(i);
                    g.backend_faults
                        .retain(|f| f.kind != BackendKind::LostTest(gone.label.clone()));
                    g.lifecycle.retain(|l| l.execution() != gone.label);
                });
            }
        }
        for i in 0..self.backend_faults.len() {
            with(&|g| {
                g.backend_faults.remove(i);
            });
        }
        with(&|g| g.cp_faults = None);
        with(&|g| g.lost = None);
        for i in 0..self.lifecycle.len() {
            with(&|g| {
                g.lifecycle.remove(i);
            });
            with(&|g| {
                if let GenLifecycle::Stop { abandon, .. } = &mut g.lifecycle[i] {
                    *abandon = false;
                }
            });
        }
        with(&|g| {
            if let Some(l) = &mut g.lost {
                l.count = 1;
            }
        });
        with(&|g| {
            if let Some(GenLost {
                when: Trigger::On(_, n),
                ..
            }) = &mut g.lost
            {
                *n = 1;
            }
        });
        if let Some(w) = &self.cp_faults
            && w.rules.len() > 1
        {
            for i in 0..w.rules.len() {
                with(&|g| {
                    if let Some(w) = &mut g.cp_faults {
                        w.rules.remove(i);
                    }
                });
            }
        }
        with(&|g| g.replicas = 1);
        with(&|g| g.ack_window = 300);
        with(&|g| g.continuation_delay = 30);
        for i in 0..self.executions.len() {
            with(&|g| {
                let e = &mut g.executions[i];
                e.duration = (e.duration / 2 / 60).max(1) * 60;
            });
            with(&|g| {
                g.executions[i].passed = true;
                // Only a failed action can be retried.
                let label = g.executions[i].label.clone();
                g.lifecycle.retain(
                    |l| !matches!(l, GenLifecycle::Retry { execution, .. } if *execution == label),
                );
            });
            with(&|g| g.executions[i].start = 0);
        }
        for i in 0..self.agent_steps.len() {
            with(&|g| {
                if let AgentStep::Crash(w, _) = &g.agent_steps[i] {
                    g.agent_steps[i] = AgentStep::Redeploy(w.clone());
                }
            });
            with(&|g| match &mut g.agent_steps[i] {
                AgentStep::Redeploy(Trigger::At(s)) | AgentStep::Crash(Trigger::At(s), _) => {
                    *s = (*s / 2 / 10).max(1) * 10
                }
                AgentStep::Redeploy(Trigger::On(_, n)) | AgentStep::Crash(Trigger::On(_, n), _) => {
                    *n = 1
                }
            });
        }
        out
    }
}

fn covers(f: &GenBackendFault, at: u64) -> bool {
    f.from <= at && f.len.is_none_or(|l| at < f.from + l)
}

fn duration(secs: u64) -> String {
    match secs {
        s if s % 3_600 == 0 && s > 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn offset(secs: u64) -> String {
    sim_core::format_offset(Duration::from_secs(secs))
}

/// What a failure is about, for shrinking: its rule ids (timeouts last: they are more often a
/// consequence than a cause), then the invariants it broke.
pub fn failure_keys(r: &crate::ScenarioReport) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let consequence = |rule: sim_core::Rule| {
        matches!(
            rule,
            sim_core::Rule::CpTimeout
                | sim_core::Rule::CpActionTimeout
                | sim_core::Rule::AgNoTimeout
        )
    };
    let mut rules: Vec<sim_core::Rule> = r.verdict.violations.iter().map(|v| v.rule).collect();
    rules.sort_by_key(|r| consequence(*r));
    for rule in rules {
        let id = rule.id().to_string();
        if !keys.contains(&id) {
            keys.push(id);
        }
    }
    for c in r.verdict.checks.iter().filter(|c| !c.passed) {
        let key = if c.expected.ends_with("ends exactly once") {
            "ends-exactly-once"
        } else if c.expected.contains(": one of ") {
            "outcome"
        } else if c.expected == "the run completes" || c.expected == "the scenario runs" {
            "harness"
        } else if c.expected.starts_with("the agent keeps running") {
            "agent-died"
        } else {
            continue;
        };
        if !keys.iter().any(|k| k == key) {
            keys.push(key.into());
        }
    }
    keys
}

/// Shrinks a failing generated scenario while `key` (one of [`failure_keys`]) keeps failing: runs at most
/// `budget` smaller versions, `width` at a time, each in its own directory under `OUT/explore/shrinking/`;
/// the first (in order) that still fails is kept, so the result does not depend on which finished first.
/// Returns the smallest and the runs spent.
pub async fn shrink(
    generated: &Generated,
    key: &str,
    opts: &crate::RunOptions,
    budget: usize,
    width: usize,
) -> anyhow::Result<(Generated, usize)> {
    let mut best = generated.clone();
    let mut runs = 0;
    'smaller: while runs < budget {
        let candidates = best.shrink_candidates();
        for chunk in candidates.chunks(width.max(1)) {
            let chunk = &chunk[..chunk.len().min(budget - runs)];
            if chunk.is_empty() {
                break 'smaller;
            }
            runs += chunk.len();
            let mut running = Vec::new();
            for (slot, candidate) in chunk.iter().enumerate() {
                let scenario = candidate.scenario(Path::new("shrinking.toml"))?;
                let scratch = crate::RunOptions {
                    out_root: opts
                        .out_root
                        .join("explore")
                        .join("shrinking")
                        .join(slot.to_string()),
                    ..opts.clone()
                };
                running.push(tokio::spawn(async move {
                    crate::run_and_judge(&scenario, &scratch, String::new()).await
                }));
            }
            let mut kept = None;
            for (candidate, task) in chunk.iter().zip(running) {
                let report = task
                    .await
                    .map_err(|e| anyhow::anyhow!("a shrinking run panicked: {e}"))?;
                if kept.is_none() && failure_keys(&report).iter().any(|k| k == key) {
                    kept = Some(candidate.clone());
                }
            }
            if let Some(c) = kept {
                best = c;
                continue 'smaller;
            }
        }
        break;
    }
    Ok((best, runs))
}

/// `--shard I/N`: the I-th of N parts (from 1), as nextest's `--partition count:I/N` splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This part, from 1.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard `{s}` must be I/N with 1 <= I <= N (e.g. 2/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether the item at `position` (from 0, in the run's fixed order) is this shard's.
    pub fn includes(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

/// Where a shrunk failure is written: `OUT/explore/SEED.toml`.
pub fn failure_file(out_root: &Path, seed: u64) -> PathBuf {
    out_root.join("explore").join(format!("{seed}.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_scenario_is_valid_and_the_same_seed_gives_the_same_file() {
        for tier in [Tier::Apica, Tier::Protocol] {
            for seed in 0..2_000 {
                let g = Generated::generate(seed, tier);
                let s = g
                    .scenario(Path::new("gen.toml"))
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                assert!(s.expect.invariants);
                assert_eq!(s.execution_labels().len(), g.executions.len());
                assert_eq!(g.render(), Generated::generate(seed, tier).render());
                for c in g.shrink_candidates() {
                    c.scenario(Path::new("shrunk.toml"))
                        .unwrap_or_else(|e| panic!("seed {seed}, shrunk: {e}"));
                }
            }
        }
    }

    #[test]
    fn the_generator_draws_every_kind_of_trouble() {
        let all: Vec<Generated> = (0..300)
            .map(|s| Generated::generate(s, Tier::Apica))
            .collect();
        let any = |f: &dyn Fn(&Generated) -> bool| all.iter().any(f);
        assert!(any(&|g| g
            .executions
            .iter()
            .any(|e| e.duration > 3 * 3_600)));
        assert!(any(&|g| g.executions.iter().any(|e| e.duration <= 5 * 60)));
        assert!(any(&|g| g.executions.iter().any(|e| !e.passed)));
        assert!(any(&|g| g.executions.iter().any(|e| e.start > 0)));
        assert!(any(&|g| g.replicas == 3 && g.ack_window == 0));
        assert!(any(&|g| g.cp_faults.is_some()));
        assert!(any(&|g| g
            .cp_faults
            .as_ref()
            .is_some_and(|w| w.rules.iter().any(|r| r.rate == 1.0))));
        assert!(any(&|g| g
            .agent_steps
            .iter()
            .any(|s| matches!(s, AgentStep::Crash(Trigger::On(..), _)))));
        assert!(any(&|g| g
            .agent_steps
            .iter()
            .any(|s| matches!(s, AgentStep::Redeploy(Trigger::At(_))))));
        assert!(any(&|g| g
            .lifecycle
            .iter()
            .any(|l| matches!(l, GenLifecycle::Stop { abandon: true, .. }))));
        assert!(any(&|g| g
            .lifecycle
            .iter()
            .any(|l| matches!(l, GenLifecycle::Retry { .. }))));
        for (op, _) in Weights::LOST_OPERATIONS {
            assert!(any(&|g| g.lost.as_ref().is_some_and(|l| l.operation == op)));
        }
        assert!(any(&|g| g.lost.as_ref().is_some_and(
            |l| l.count == 4 && matches!(l.when, Trigger::On("cp.job_acknowledged", 1))
        )));
        for kind in [
            |k: &BackendKind| matches!(k, BackendKind::Outage),
            |k: &BackendKind| matches!(k, BackendKind::ErrorRate(_)),
            |k: &BackendKind| matches!(k, BackendKind::Latency(_)),
            |k: &BackendKind| matches!(k, BackendKind::LostTest(_)),
            |k: &BackendKind| matches!(k, BackendKind::SlowStart(_)),
        ] {
            assert!(any(&|g| g.backend_faults.iter().any(|f| kind(&f.kind))));
        }
        // The protocol tier has no backend faults and no failing tests: its agent may not use the backend.
        for s in 0..300 {
            let g = Generated::generate(s, Tier::Protocol);
            assert!(g.backend_faults.is_empty() && g.executions.iter().all(|e| e.passed));
        }
    }

    fn one(duration: u64, faults: Vec<GenBackendFault>, steps: Vec<AgentStep>) -> Generated {
        Generated {
            seed: 1,
            tier: Tier::Apica,
            ack_window: 300,
            continuation_delay: 30,
            replicas: 1,
            executions: vec![GenExecution {
                label: "e-1".into(),
                duration,
                passed: true,
                start: 0,
            }],
            cp_faults: None,
            backend_faults: faults,
            agent_steps: steps,
            lost: None,
            lifecycle: Vec::new(),
        }
    }

    #[test]
    fn the_allowed_ends_follow_the_documented_band() {
        let outage = |from, len| GenBackendFault {
            kind: BackendKind::Outage,
            from,
            len,
        };
        let allowed = |g: Generated| g.allowed(&g.executions[0].clone());
        // No trouble: the test's own end.
        assert_eq!(allowed(one(3_600, vec![], vec![])), ["Succeeded"]);
        // An outage of at most RIDE_OUT while the test runs must be ridden out.
        assert_eq!(
            allowed(one(3_600, vec![outage(600, Some(RIDE_OUT))], vec![])),
            ["Succeeded"]
        );
        // A longer one may end in SystemUnavailable.
        assert_eq!(
            allowed(one(3_600, vec![outage(600, Some(RIDE_OUT + 60))], vec![])),
            ["Succeeded", "Failed:SystemUnavailable"]
        );
        // For good, from before the end: nothing but SystemUnavailable.
        assert_eq!(
            allowed(one(3_600, vec![outage(600, None)], vec![])),
            ["Failed:SystemUnavailable"]
        );
        // One that begins in the last minutes and lasts: the end is only seen after it.
        assert_eq!(
            allowed(one(1_920, vec![outage(1_860, Some(1_740))], vec![])),
            ["Succeeded", "Failed:SystemUnavailable"]
        );
        // Long after the test's end is seen: no effect.
        assert_eq!(
            allowed(one(600, vec![outage(7_200, None)], vec![])),
            ["Succeeded"]
        );
        // A crash may lose a held job.
        assert_eq!(
            allowed(one(
                600,
                vec![],
                vec![AgentStep::Crash(Trigger::At(60), 60)]
            )),
            ["Succeeded", "Failed:JobTimedOut"]
        );
    }

    #[test]
    fn shards_split_a_run_into_disjoint_parts_that_cover_it() {
        let shards: Vec<Shard> = (1..=3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for p in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.includes(p)).count(), 1);
        }
        for bad in ["0/3", "4/3", "1/0", "x", "1-3", "2/"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(bad) && e.contains("I/N"), "{e}");
        }
    }
}
