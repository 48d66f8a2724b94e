//! The console's view model: what the page shows, read from the fake under one lock, and served as is by
//! `GET /_sim/console.json`. Nothing here knows HTML.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sim_core::http::clock_document;
use sim_core::{Event, Severity, SimTime, format_offset};

use super::advice::{PollGap, poll_gaps};
use super::{RUNS_PER_PIPELINE, TIMELINE_EVENTS};
use crate::engine::Core;
use crate::state::{ActionExecution, Job, Pipeline, PipelineExecution, World};
use crate::types::ExecutionStatus;

/// Everything the console shows, as `GET /_sim/console.json` returns it.
#[derive(Clone, Debug, Serialize)]
pub struct Model {
    /// The clock document of `/_sim/clock`.
    pub clock: Value,
    /// The last event sequence number the model includes.
    pub seq: u64,
    /// Pipelines, the one with the newest run first; those not run yet last, by name.
    pub pipelines: Vec<PipelineView>,
    /// Every event in the log that names a rule with severity warning or error, oldest first.
    pub violations: Vec<Event>,
    /// The newest events, newest first.
    pub timeline: Vec<Event>,
    /// Callers (access keys) seen, with their activity.
    pub callers: Vec<CallerView>,
    /// Callers whose real gap between requests, scaled, nears the job timeout.
    pub poll_gaps: Vec<PollGap>,
}

/// One pipeline and its newest runs.
#[derive(Clone, Debug, Serialize)]
pub struct PipelineView {
    /// Its name.
    pub name: String,
    /// Made by the admin API for one bare action execution.
    pub synthetic: bool,
    /// Its stage names, in order.
    pub stages: Vec<String>,
    /// Its newest runs, newest first.
    pub runs: Vec<RunView>,
    /// How many runs it has in all.
    pub total_runs: usize,
}

/// One pipeline run.
#[derive(Clone, Debug, Serialize)]
pub struct RunView {
    /// `pipelineExecutionId`.
    pub id: String,
    /// `InProgress`, `Succeeded` or `Failed`.
    pub status: String,
    /// When it started (`+00:01:00`).
    pub started: String,
    /// Its stages, in order.
    pub stages: Vec<StageView>,
}

/// One stage of a run.
#[derive(Clone, Debug, Serialize)]
pub struct StageView {
    /// The stage name.
    pub name: String,
    /// Its status, once the run reached it.
    pub status: Option<String>,
    /// Its actions.
    pub actions: Vec<ActionView>,
}

/// One action of a stage in a run.
#[derive(Clone, Debug, Serialize)]
pub struct ActionView {
    /// The action name.
    pub name: String,
    /// `Category/Owner/Provider/Version`.
    pub action_type: String,
    /// Whether job workers run it (ThirdParty or Custom); AWS-owned actions succeed at once.
    pub job_worker: bool,
    /// Its execution in this run, once started.
    pub execution: Option<ExecutionView>,
}

/// One action execution with its jobs.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutionView {
    /// The label (`e-1`).
    pub label: String,
    /// Its status.
    pub status: String,
    /// Last reported percentComplete.
    pub percent_complete: Option<i64>,
    /// Last non-empty summary.
    pub summary: Option<String>,
    /// Last non-empty externalExecutionId.
    pub external_id: Option<String>,
    /// The Details link (the filled executionUrlTemplate).
    pub details_url: Option<String>,
    /// When the Details link first appeared.
    pub details_link_at: Option<String>,
    /// `errorDetails` code and message once failed.
    pub error: Option<(String, String)>,
    /// Its jobs, in order.
    pub jobs: Vec<JobView>,
    /// Rule events about this execution, oldest first.
    pub violations: Vec<Event>,
}

/// One job.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    /// 1 for the first job, then 2, 3, ...
    pub number: usize,
    /// The job id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// The token it carries, for a continuation job.
    pub continuation_token: Option<String>,
    /// Its deadline (`+01:00:30`), once queued.
    pub deadline: Option<String>,
    /// Its status changes: (stamp, status).
    pub history: Vec<(String, String)>,
    /// Who it was last dispatched to.
    pub dispatched_to: Option<String>,
}

/// One caller (access key) and what it is doing.
#[derive(Clone, Debug, Serialize)]
pub struct CallerView {
    /// The access key.
    pub caller: String,
    /// Requests seen.
    pub requests: u64,
    /// The operation of its last request.
    pub last_operation: String,
    /// Real milliseconds since its last request started.
    pub since_last_request_ms: Option<u64>,
    /// Requests in flight and parked polls now.
    pub in_flight: usize,
    /// Parked polls now.
    pub parked: usize,
    /// Jobs it holds.
    pub held_jobs: usize,
}

impl Model {
    /// A consistent view of the fake now (the world is read under one lock).
    pub fn build(core: &Core) -> Model {
        let seq = core.sim.events.last_seq();
        let all = core.sim.events.since(0, usize::MAX);
        let violations: Vec<Event> = all
            .iter()
            .filter(|e| flagged_rule(e).is_some())
            .cloned()
            .collect();
        let timeline: Vec<Event> = all.iter().rev().take(TIMELINE_EVENTS).cloned().collect();
        let mut by_execution: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for e in &violations {
            if let Some(x) = &e.execution {
                by_execution.entry(x.clone()).or_default().push(e.clone());
            }
        }
        let pipelines = core.with_world(|w| {
            let reader = Reader {
                core,
                world: w,
                origin: core.sim.clock.origin(),
                violations: &by_execution,
            };
            reader.pipelines()
        });
        let callers = core
            .sim
            .activity
            .snapshot()
            .callers
            .into_iter()
            .map(|c| CallerView {
                caller: c.caller,
                requests: c.requests,
                last_operation: c.last_operation,
                since_last_request_ms: c.since_last_request.map(|d| d.as_millis() as u64),
                in_flight: c.in_flight,
                parked: c.parked,
                held_jobs: c.held_jobs,
            })
            .collect();
        Model {
            clock: clock_document(&core.sim),
            seq,
            pipelines,
            violations,
            timeline,
            callers,
            poll_gaps: poll_gaps(core),
        }
    }

    /// The clock, typed, from [`Model::clock`].
    pub fn clock_view(&self) -> ClockView {
        ClockView::from_document(&self.clock)
    }
}

/// The rule an event violates or warns about, if any: an info-severity rule is a record (a result applied,
/// a continuation queued, a Details link), not a finding.
pub fn flagged_rule(e: &Event) -> Option<sim_core::Rule> {
    e.rule.filter(|_| e.severity >= Severity::Warning)
}

/// How the clock runs now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Moves only when told.
    Manual,
    /// Runs `speed` times real time, or stands still at that speed while paused.
    Scaled {
        /// Simulated seconds per real second while running (kept while paused).
        speed: f64,
        /// Paused now.
        paused: bool,
    },
    /// The wall clock.
    Real,
}

/// The clock as the page shows it, read from the clock document (whose `mode` names the mode the clock was
/// started with: `scaled:60` stays `scaled:60` after the speed is changed to 3,600).
#[derive(Clone, Debug, PartialEq)]
pub struct ClockView {
    /// The mode and current speed.
    pub pace: Pace,
    /// Simulated ms since the epoch.
    pub now_ms: u64,
    /// RFC 3339.
    pub now: String,
    /// Simulated ms since the origin.
    pub elapsed_ms: u64,
    /// `+01:00:30`.
    pub elapsed: String,
    /// The next timer, if any.
    pub next: Option<NextTimer>,
}

/// The clock's next timer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct NextTimer {
    /// What it is.
    #[serde(default)]
    pub label: String,
    /// When (`+01:00:30`).
    #[serde(default)]
    pub elapsed: String,
    /// Simulated ms from now.
    #[serde(default)]
    pub in_ms: u64,
}

impl NextTimer {
    /// How long until it fires, in whole simulated seconds.
    pub fn due_in(&self) -> Duration {
        Duration::from_secs(self.in_ms / 1000)
    }
}

impl ClockView {
    /// Reads `/_sim/clock`'s document.
    pub fn from_document(doc: &Value) -> ClockView {
        let mode = doc["mode"].as_str().unwrap_or("manual");
        let speed = doc["speed"].as_f64().unwrap_or(0.0);
        let pace = if mode == "manual" {
            Pace::Manual
        } else if mode.starts_with("scaled:") {
            Pace::Scaled {
                speed,
                paused: doc["paused"].as_bool().unwrap_or(false),
            }
        } else {
            Pace::Real
        };
        ClockView {
            pace,
            now_ms: doc["now_ms"].as_u64().unwrap_or(0),
            now: doc["now"].as_str().unwrap_or_default().to_string(),
            elapsed_ms: doc["elapsed_ms"].as_u64().unwrap_or(0),
            elapsed: doc["elapsed"].as_str().unwrap_or_default().to_string(),
            next: doc
                .get("next_deadline")
                .filter(|d| !d.is_null())
                .and_then(|d| NextTimer::deserialize(d).ok()),
        }
    }

    /// `manual`, `scaled` or `real`: the page's `data-mode`.
    pub fn kind(&self) -> &'static str {
        match self.pace {
            Pace::Manual => "manual",
            Pace::Scaled { .. } => "scaled",
            Pace::Real => "real",
        }
    }

    /// The mode and the speed it runs at now: `manual`, `scaled, 3,600x real time`,
    /// `scaled, paused (3,600x when resumed)`, `real (the wall clock)`.
    pub fn describe(&self) -> String {
        match self.pace {
            Pace::Manual => "manual".into(),
            Pace::Scaled {
                speed,
                paused: false,
            } => format!("scaled, {}\u{d7} real time", format_speed(speed)),
            Pace::Scaled {
                speed,
                paused: true,
            } => {
                format!(
                    "scaled, paused ({}\u{d7} when resumed)",
                    format_speed(speed)
                )
            }
            Pace::Real => "real (the wall clock)".into(),
        }
    }
}

/// A speed-up factor as people write it: `60`, `0.5`, `36,000`.
pub fn format_speed(speed: f64) -> String {
    if speed.fract() != 0.0 || speed < 1.0 {
        return format!("{speed}");
    }
    let digits = format!("{}", speed as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Reads the world into views, under the lock [`Core::with_world`] holds.
struct Reader<'a> {
    core: &'a Core,
    world: &'a World,
    origin: SimTime,
    violations: &'a BTreeMap<String, Vec<Event>>,
}

impl Reader<'_> {
    fn stamp(&self, t: SimTime) -> String {
        format_offset(t.since(self.origin))
    }

    /// Every pipeline: the one whose newest run started last first, then those not run yet by name.
    fn pipelines(&self) -> Vec<PipelineView> {
        let w = self.world;
        // Each pipeline's runs in start order, and the position of its newest run in that order.
        let mut runs: BTreeMap<&str, Vec<&PipelineExecution>> = BTreeMap::new();
        let mut newest: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, id) in w.pipeline_execution_order.iter().enumerate() {
            if let Some(pe) = w.pipeline_executions.get(id) {
                runs.entry(pe.pipeline.as_str()).or_default().push(pe);
                newest.insert(pe.pipeline.as_str(), i);
            }
        }
        let mut list: Vec<&Pipeline> = w.pipelines.values().collect();
        list.sort_by(|a, b| {
            let (na, nb) = (newest.get(a.name.as_str()), newest.get(b.name.as_str()));
            nb.cmp(&na).then_with(|| a.name.cmp(&b.name))
        });
        list.into_iter()
            .map(|p| {
                let all = runs
                    .get(p.name.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                PipelineView {
                    name: p.name.clone(),
                    synthetic: p.synthetic,
                    stages: p.stages.iter().map(|s| s.name.clone()).collect(),
                    runs: all
                        .iter()
                        .rev()
                        .take(RUNS_PER_PIPELINE)
                        .map(|pe| self.run(p, pe))
                        .collect(),
                    total_runs: all.len(),
                }
            })
            .collect()
    }

    fn run(&self, p: &Pipeline, pe: &PipelineExecution) -> RunView {
        let w = self.world;
        let stages = p
            .stages
            .iter()
            .enumerate()
            .map(|(i, st)| {
                let executions: Vec<Option<&ActionExecution>> = st
                    .actions
                    .iter()
                    .map(|a| {
                        pe.actions
                            .get(&(st.name.clone(), a.name.clone()))
                            .and_then(|label| w.executions.get(label))
                    })
                    .collect();
                let statuses: Vec<ExecutionStatus> =
                    executions.iter().flatten().map(|e| e.status).collect();
                // A stage has a status once the run has reached it.
                let status = (i <= pe.stage).then(|| {
                    if statuses.contains(&ExecutionStatus::Failed) {
                        "Failed"
                    } else if statuses.contains(&ExecutionStatus::InProgress)
                        || statuses.len() < st.actions.len()
                    {
                        "InProgress"
                    } else {
                        "Succeeded"
                    }
                    .to_string()
                });
                let actions = st
                    .actions
                    .iter()
                    .zip(executions)
                    .map(|(a, e)| ActionView {
                        name: a.name.clone(),
                        action_type: a.action_type.to_string(),
                        job_worker: a.action_type.owner.is_job_worker(),
                        execution: e.map(|e| self.execution(e)),
                    })
                    .collect();
                StageView {
                    name: st.name.clone(),
                    status,
                    actions,
                }
            })
            .collect();
        RunView {
            id: pe.id.clone(),
            status: pe.status.as_str().to_string(),
            started: self.stamp(pe.started),
            stages,
        }
    }

    fn execution(&self, e: &ActionExecution) -> ExecutionView {
        ExecutionView {
            label: e.label.clone(),
            status: e.status.as_str().to_string(),
            percent_complete: e.percent_complete,
            // What workers wrote may repeat a secret.
            summary: e
                .summary
                .as_deref()
                .map(|s| self.core.sim.events.redact_text(s)),
            external_id: e.external_id.clone(),
            details_url: self.core.external_url(self.world, e),
            details_link_at: e.external_id_at.map(|t| self.stamp(t)),
            error: e
                .error
                .as_ref()
                .map(|(code, message)| (code.clone(), self.core.sim.events.redact_text(message))),
            jobs: e
                .jobs
                .iter()
                .filter_map(|id| self.world.jobs.get(id))
                .map(|j| self.job(j))
                .collect(),
            violations: self.violations.get(&e.label).cloned().unwrap_or_default(),
        }
    }

    fn job(&self, j: &Job) -> JobView {
        JobView {
            number: j.number,
            id: j.id.clone(),
            status: j.status.as_str().to_string(),
            continuation_token: j.continuation_token.clone(),
            deadline: j.deadline.map(|t| self.stamp(t)),
            history: j
                .history
                .iter()
                .map(|(t, s)| (self.stamp(*t), s.as_str().to_string()))
                .collect(),
            dispatched_to: j.dispatched_to.clone(),
        }
    }
}
