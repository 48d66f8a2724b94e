//! What the console tells a person to do: the banner for a caller that has gone quiet on a scaled clock,
//! and the fix for a violation. Advice names the cause the fake can see: a caller that holds a job
//! without answering is not helped by polling more often or a lower speed-up.

use std::time::Duration;

use serde::Serialize;
use sim_core::{ClockMode, Event, Rule, SimTime, format_duration, format_offset};

use crate::engine::Core;
use crate::state::{Job, World};
use crate::types::JobStatus;

/// A caller's real gap between requests, times the clock's speed-up, at or above this share of the job
/// timeout is reported: one more such gap and a job waiting for that caller times out.
pub const POLL_GAP_WARN_SHARE: f64 = 0.5;

/// How the continuation-token protocol keeps a long job alive, for advice that ends in it.
const ANSWER_AT_ONCE: &str = "answer each job at once: success with a continuationToken (and an \
externalExecutionId, for the Details link) while the work goes on, then answer each continuation job the \
same way, the last one without a token (or a failure)";

/// A caller whose real gap between requests, times the clock's speed-up, nears the job timeout: either
/// it polls too rarely for this speed (a timeout the scaling makes), or it holds a job without answering
/// it (a timeout the agent makes at any speed).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PollGap {
    /// The access key.
    pub caller: String,
    /// Real time since its last request.
    #[serde(serialize_with = "as_millis")]
    pub real_gap: Duration,
    /// The same gap in simulated time.
    #[serde(serialize_with = "as_millis")]
    pub simulated_gap: Duration,
    /// The shortest job timeout of the registered job-worker action types.
    #[serde(serialize_with = "as_millis")]
    pub job_timeout: Duration,
    /// The clock's speed-up factor.
    pub factor: f64,
    /// The job it went quiet with, unanswered (held now, or held until it timed out); `None` when it
    /// simply has not polled.
    pub held_job: Option<HeldJob>,
}

/// The job a quiet caller holds, or held until its deadline, without an answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HeldJob {
    /// The job id.
    pub id: String,
    /// Its action execution's label.
    pub execution: String,
    /// 1 for the first job of the execution, then 2, 3, ...
    pub number: usize,
    /// `Dispatched`, `InProgress` or `TimedOut`.
    pub status: String,
    /// Whether the caller acknowledged it.
    pub acknowledged: bool,
    /// When the caller took it: acknowledged, or else dispatched (`+00:10:00`).
    pub since: String,
    /// Its deadline (`+01:10:00`).
    pub deadline: Option<String>,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl PollGap {
    /// One line for a log or a banner: what the caller is doing and what fixes it.
    pub fn describe(&self) -> String {
        let quiet = format!(
            "{} (real) = {} simulated at {}x",
            format_duration(Duration::from_millis(
                self.real_gap.as_millis() as u64 / 100 * 100
            )),
            format_duration(Duration::from_secs(self.simulated_gap.as_secs())),
            super::format_speed(self.factor),
        );
        let Some(job) = &self.held_job else {
            // A whole job timeout at this speed, in real time: the gap that fails a job for certain.
            let fatal = Duration::from_millis(
                (self.job_timeout.as_secs_f64() / self.factor * 1000.0) as u64 / 100 * 100,
            );
            return format!(
                "{} made no request for {quiet}: a job queued meanwhile waits that long for its poll and times out after {}; poll more often (at this speed {} of real time is a whole job timeout) or lower the speed-up",
                self.caller,
                format_duration(self.job_timeout),
                format_duration(fatal),
            );
        };
        let took = if job.acknowledged {
            "acknowledged"
        } else {
            "was handed"
        };
        let deadline = job.deadline.as_deref().unwrap_or("?");
        let fate = if job.status == JobStatus::TimedOut.as_str() {
            format!("it timed out at {deadline}")
        } else {
            format!("it times out at {deadline}")
        };
        format!(
            "{} {took} job {} of {} at {} and holds it without an answer, making no request for {quiet}; {fate}. Polling more often or a lower speed-up does not help: {ANSWER_AT_ONCE}",
            self.caller, job.number, job.execution, job.since,
        )
    }
}

/// Callers whose real gap since their last request, times the clock's speed-up, is at least
/// [`POLL_GAP_WARN_SHARE`] of the shortest job timeout, each with the job it holds unanswered, if any.
/// Only for `scaled:N` clocks (a manual clock does not move with real time; a real one does not magnify
/// gaps). Callers with a request in flight or a parked poll are not waiting between requests and are
/// left out.
pub fn poll_gaps(core: &Core) -> Vec<PollGap> {
    // The current speed: a paused clock magnifies nothing.
    let (ClockMode::Scaled(_), Some(factor)) = (core.sim.clock.mode(), core.sim.clock.rate())
    else {
        return Vec::new();
    };
    if factor <= 0.0 {
        return Vec::new();
    }
    let callers = core.sim.activity.snapshot().callers;
    let origin = core.sim.clock.origin();
    core.with_world(|w| {
        let job_timeout = w
            .action_types
            .values()
            .filter(|t| t.id.owner.is_job_worker())
            .map(|t| t.timing.job_timeout)
            .min()
            .unwrap_or(core.settings.timing.job_timeout);
        callers
            .into_iter()
            .filter(|c| c.requests > 0 && c.in_flight == 0 && c.parked == 0)
            .filter_map(|c| {
                let real_gap = c.since_last_request?;
                let simulated_gap = real_gap.mul_f64(factor);
                if simulated_gap.as_secs_f64() < job_timeout.as_secs_f64() * POLL_GAP_WARN_SHARE {
                    return None;
                }
                Some(PollGap {
                    held_job: held_job(w, &c.caller, &c.last_operation, origin),
                    caller: c.caller,
                    real_gap,
                    simulated_gap,
                    job_timeout,
                    factor,
                })
            })
            .collect()
    })
}

/// The job `caller` went quiet with: the newest job dispatched to it, if it is still held (dispatched or
/// acknowledged), or timed out while held and the caller has not polled since (a poll after it means the
/// caller gave the job up and the quiet is a poll gap).
fn held_job(w: &World, caller: &str, last_operation: &str, origin: SimTime) -> Option<HeldJob> {
    let dispatched_at = |j: &Job| {
        j.history
            .iter()
            .rev()
            .find(|(_, s)| *s == JobStatus::Dispatched)
            .map(|(t, _)| *t)
    };
    let job = w
        .jobs
        .values()
        .filter(|j| j.dispatched_to.as_deref() == Some(caller))
        .filter_map(|j| Some((dispatched_at(j)?, j)))
        .max_by_key(|(t, j)| (*t, j.number))?
        .1;
    let held = match job.status {
        JobStatus::Dispatched | JobStatus::InProgress => true,
        JobStatus::TimedOut => {
            let before = job.history.iter().rev().nth(1).map(|(_, s)| *s);
            matches!(before, Some(JobStatus::Dispatched | JobStatus::InProgress))
                && !last_operation.starts_with("PollFor")
        }
        _ => false,
    };
    if !held {
        return None;
    }
    let stamp = |t: SimTime| format_offset(t.since(origin));
    let acknowledged = job.acknowledged.as_ref().map(|(t, _)| *t);
    Some(HeldJob {
        id: job.id.clone(),
        execution: job.execution.clone(),
        number: job.number,
        status: job.status.as_str().to_string(),
        acknowledged: acknowledged.is_some(),
        since: stamp(acknowledged.or_else(|| dispatched_at(job))?),
        deadline: job.deadline.map(stamp),
    })
}

/// What fixes a violation, where the event alone does not say: for CP-TIMEOUT, by what the job was
/// doing when its deadline came.
pub fn violation_advice(e: &Event) -> Option<String> {
    match super::flagged_rule(e)? {
        Rule::CpTimeout => Some(
            match e.data["status_before"].as_str().unwrap_or_default() {
                "InProgress" => format!(
                    "The job was acknowledged and held without an answer until its deadline: {ANSWER_AT_ONCE}."
                ),
                "Dispatched" => format!(
                    "A poll handed the job out but it was never acknowledged: acknowledge a polled job with its nonce, then {ANSWER_AT_ONCE}."
                ),
                _ => "No poll took the job before its deadline: check that an agent polls for this action type \
(JOB_ACTION_TYPE, and for a third-party type with this clientId's token), and on a scaled clock that it polls \
often enough for the speed-up."
                    .to_string(),
            },
        ),
        _ => None,
    }
}
