//! The timeline: one line per meaningful event, in simulated time, with violations explained in words.
//! State changes only (no poll counts, no retries), so a single-replica timeline is the same run after run.

use sim_core::{Event, EventKind, Severity};

/// Event kinds that change the state a person follows.
const SHOWN: &[EventKind] = &[
    EventKind::ExecutionStarted,
    EventKind::JobQueued,
    EventKind::JobAcknowledged,
    EventKind::ResultApplied,
    EventKind::DetailsLink,
    EventKind::JobTimedOut,
    EventKind::ActionTimedOut,
    EventKind::ExecutionFinished,
    EventKind::FinalWithToken,
    EventKind::FinalWithout100,
    EventKind::CallRefused,
    EventKind::TestCreated,
    EventKind::TestFinished,
    EventKind::TestAborted,
    EventKind::Step,
    EventKind::ReplicaStarted,
    EventKind::ReplicaStopped,
    EventKind::ReplicaKilled,
    EventKind::ReplicaCrashed,
    EventKind::ReplicaExited,
    EventKind::ReplicaNeverPolled,
    EventKind::JobsAbandoned,
    EventKind::HarnessError,
    EventKind::FaultAdded,
    EventKind::StopRequested,
    EventKind::StageRetried,
    EventKind::ExecutionWaiting,
    EventKind::ExecutionSuperseded,
    EventKind::ResultDiscarded,
    EventKind::ResultRepeated,
    EventKind::ResponseLost,
];

/// Whether an event belongs on the timeline.
pub fn shown(e: &Event) -> bool {
    if e.kind == EventKind::CallRefused && e.severity != Severity::Error {
        return false;
    }
    SHOWN.contains(&e.kind) || (e.severity == Severity::Error && e.rule.is_some())
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
            // A long label (`e-1-retry-1`) still gets a space before the detail.
            format!("{} ", e.execution.as_deref().unwrap_or("-")),
            e.detail,
            mark
        ));
    }
    out
}
