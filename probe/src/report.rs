//! The JSON report (`docs/probe.md`, "Report format") and the `profile` the fake loads from it
//! (`fake-codepipeline --profile report.json`).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::measure::Interval;

/// The report's `format`: the fake refuses a profile of another format.
pub const FORMAT: &str = "job-sim-probe/1";

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// A duration was bracketed (`measured` holds it).
    Measured,
    /// A behaviour was seen (`observed` holds what the endpoint answered).
    Observed,
    /// The probe ran to its limit without seeing the effect (`detail` says what bound that gives).
    NotSeen,
    /// Not run (a long probe without `--long`, or one that needs another probe's result).
    Skipped,
    /// The probe could not finish (a call failed, or it met its limit before its question was asked).
    Error,
}

/// One probe's result.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    /// The question it answers.
    pub question: &'static str,
    /// How it ended.
    pub status: Status,
    /// The measured duration, in the server's seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<Interval>,
    /// What the endpoint answered, for the behaviour probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Value>,
    /// One sentence for a person.
    pub detail: String,
    /// Real time the probe took, seconds.
    pub real_seconds: f64,
    /// The longest it may take in real time, seconds (its limit, plus waiting for jobs to appear).
    pub limit_real_seconds: f64,
}

impl ProbeResult {
    /// A probe not run.
    pub fn skipped(question: &'static str, detail: impl Into<String>, limit: Duration) -> Self {
        ProbeResult {
            question,
            status: Status::Skipped,
            measured: None,
            observed: None,
            detail: detail.into(),
            real_seconds: 0.0,
            limit_real_seconds: secs(limit),
        }
    }
}

/// The fixed set of probes, in the order they run.
#[derive(Clone, Debug, Serialize)]
pub struct Probes {
    /// After how long an unacknowledged polled job is offered again.
    pub ack_window: ProbeResult,
    /// Whether a re-offered job carries a new nonce, and what the old nonce gets.
    pub reoffer_nonce: ProbeResult,
    /// What a second AcknowledgeJob with the same nonce returns.
    pub second_acknowledge: ProbeResult,
    /// Whether a result before AcknowledgeJob is refused.
    pub result_before_acknowledge: ProbeResult,
    /// After a success with a continuation token, how long until the continuation job is pollable.
    pub continuation_delay: ProbeResult,
    /// What a result put after StopPipelineExecution(abandon = true) returns.
    pub put_after_abandon: ProbeResult,
    /// What the same PutJobSuccessResult sent twice returns (an SDK retry after a lost response).
    pub retried_identical_put: ProbeResult,
}

/// One cleanup step: what was deleted (or not).
#[derive(Clone, Debug, Serialize)]
pub struct CleanupStep {
    /// What it removes, e.g. `DeletePipeline job-sim-probe-abc`.
    pub what: String,
    /// `deleted`, `not-supported` (the endpoint lacks the operation), `failed`.
    pub outcome: &'static str,
    /// The error, when not deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The settings the fake takes from this report (`fake-codepipeline --profile`), in its admin API's
/// spelling; a setting is absent when its probe measured nothing.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// `--ack-window`: the roundest value inside the measured bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_window: Option<String>,
    /// `--continuation-delay`: the roundest value inside the measured bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_delay: Option<String>,
    /// `--abandoned-results`: `refuse` or `accept`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abandoned_results: Option<String>,
    /// `--repeated-results`: `refuse` (the repeat got `InvalidJobStateException`) or `accept`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeated_results: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: &'static str,
    /// The endpoint probed (`default` for the SDK's own endpoint of the region).
    pub endpoint: String,
    /// The region.
    pub region: String,
    /// Server seconds per real second the durations were converted with (`--time-scale`).
    pub time_scale: f64,
    /// The poll interval, in server seconds (the finest resolution a duration can have).
    pub poll_interval_s: f64,
    /// Real time the run started, RFC 3339.
    pub started_at: String,
    /// Real time the whole run took, seconds (setup, probes, cleanup).
    pub real_seconds: f64,
    /// The custom action types the run created, `Category/Owner/Provider/Version`.
    pub action_types: Vec<String>,
    /// The pipeline the run created.
    pub pipeline: String,
    /// The results.
    pub probes: Probes,
    /// What the fake takes from this report.
    pub profile: Profile,
    /// What the run deleted at its end.
    pub cleanup: Vec<CleanupStep>,
}

impl Probes {
    /// The profile these results give (see [`Profile`]).
    pub fn profile(&self) -> Profile {
        let duration = |r: &ProbeResult| {
            (r.status == Status::Measured)
                .then_some(r.measured)
                .flatten()
                .map(|m| humantime::format_duration(m.roundest()).to_string())
        };
        Profile {
            ack_window: duration(&self.ack_window),
            continuation_delay: duration(&self.continuation_delay),
            abandoned_results: (self.put_after_abandon.status == Status::Observed)
                .then(|| {
                    self.put_after_abandon
                        .observed
                        .as_ref()
                        .and_then(|o| o["accepted"].as_bool())
                })
                .flatten()
                .map(|accepted| if accepted { "accept" } else { "refuse" }.to_string()),
            repeated_results: (self.retried_identical_put.status == Status::Observed)
                .then(|| {
                    let second = &self.retried_identical_put.observed.as_ref()?["second"];
                    match (second["accepted"].as_bool(), second["error"].as_str()) {
                        (Some(true), _) => Some("accept"),
                        (Some(false), Some("InvalidJobStateException")) => Some("refuse"),
                        _ => None,
                    }
                })
                .flatten()
                .map(str::to_string),
        }
    }
}

/// Seconds as a JSON-friendly number, to the millisecond.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
