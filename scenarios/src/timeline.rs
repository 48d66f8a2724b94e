//! The timeline: one line per meaningful event, in simulated time, with violations explained in words.
//! State changes only (no poll counts, no retries), so a single-replica timeline is the same run after run.

use sim_core::{Event, Severity};

/// Event kinds that change the state a person follows.
const SHOWN: &[&str] = &[
    "execution_started",
    "job_queued",
    "job_acknowledged",
    "result_applied",
    "details_link",
    "job_timed_out",
    "action_timed_out",
    "execution_finished",
    "final_with_token",
    "final_without_100",
    "call_refused",
    "test_created",
    "test_finished",
    "test_aborted",
    "step",
    "replica_started",
    "replica_stopped",
    "replica_killed",
    "replica_crashed",
    "replica_exited",
    "replica_never_polled",
    "jobs_abandoned",
    "harness_error",
    "fault_added",
];

/// Whether an event belongs on the timeline.
pub fn shown(e: &Event) -> bool {
    if e.kind == "call_refused" && e.severity != Severity::Error {
        return false;
    }
    SHOWN.contains(&e.kind.as_str()) || (e.severity == Severity::Error && e.rule.is_some())
}

/// Renders the timeline: `+01:00:00  cp      e-1   job 1 of execution e-1 timed out ... [CP-TIMEOUT]`.
pub fn render(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events.iter().filter(|e| shown(e)) {
        let mark = match (e.severity, &e.rule) {
            (Severity::Error, Some(r)) => format!("  [VIOLATION {r}]"),
            (Severity::Warning, Some(r)) => format!("  [warning {r}]"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<14}{:<8}{:<8}{}{}\n",
            e.stamp(),
            e.source,
            e.execution.as_deref().unwrap_or("-"),
            e.detail,
            mark
        ));
    }
    out
}
