//! The console: a page for people at `GET /` showing pipelines, their runs with stage and action status,
//! progress, the Details link, every job's state history and continuation token, rule violations, the
//! timeline, the agents seen, and clock controls. Server-rendered HTML (maud templates, which escape every
//! value); a small inline script swaps in a fresh rendering whenever the event log or the clock moves (one
//! long poll at a time).
//!
//! Three rooms: [`model`] reads the fake into the view model that `GET /_sim/console.json` serves as is,
//! `routes` holds the axum handlers, `render` turns the model into HTML; `advice` says what to fix.
//!
//! Routes: `GET /` (the page, for requests that accept HTML; anything else goes to the API handler, so an
//! SDK's stray GET still gets an awsJson error), `GET /_sim/console/view?since=SEQ&now=MS&wait=MS` (the
//! page's live part, answered when something changed or `wait` passed), `GET /_sim/console.json` (the
//! same data as JSON) and `POST /_sim/console/pipelines/{name}/start` (the Run button).

mod advice;
mod model;
mod render;
mod routes;

pub use advice::{HeldJob, POLL_GAP_WARN_SHARE, PollGap, poll_gaps, violation_advice};
pub use model::{
    ActionView, CallerView, ClockView, ExecutionView, JobView, Model, NextTimer, Pace,
    PipelineView, RunView, StageView, flagged_rule, format_speed,
};
pub use render::{render_live, render_page};
pub use routes::{page, routes};

/// How many events the timeline shows (newest first).
pub const TIMELINE_EVENTS: usize = 200;
/// How many runs of each pipeline the page shows (newest first).
pub const RUNS_PER_PIPELINE: usize = 3;
/// How many of an execution's newest jobs the page lists (after the first).
pub const JOBS_SHOWN: usize = 4;
/// The longest a view request waits for a change, for a manual clock (nothing moves unless told).
const WAIT_MANUAL_MS: u64 = 25_000;
/// The longest a view request waits for a change, for a running clock (deadlines and gaps move).
const WAIT_RUNNING_MS: u64 = 5_000;
/// The shortest real time between two refreshes of the page, bounding its cost while busy.
const MIN_REFRESH_MS: u64 = 500;

#[cfg(test)]
mod tests;
