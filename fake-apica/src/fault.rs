//! Faults a scenario scripts into the backend, and their JSON form for the admin API.
//!
//! Every fault has an optional window in simulated time (`from`, `until`); outside it the fault does
//! nothing. Faults answer only the `/v1` API (the agent's side): the details page and `/_sim/` stay up.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sim_core::http::parse_target;
use sim_core::{SimClock, SimTime, format_duration, format_offset, parse_duration};

/// Names a fault so it can be listed and removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultId(pub u64);

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which tests a [`FaultKind::LostTest`] hides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LostTarget {
    /// Every test (the backend lost its database).
    All,
    /// One test, by job id.
    JobId(u64),
    /// Every test of one runnable file (already created or created later).
    RunnableFile(String),
}

/// What a fault does while its window is open.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Every API request gets 503 `ServiceUnavailable`.
    Outage,
    /// Each API request fails with `status` with probability `rate` (seeded, so runs repeat).
    ErrorRate {
        /// Probability in 0..=1.
        rate: f64,
        /// The HTTP status of the injected error (400..=599).
        status: u16,
    },
    /// Each API request is answered this much later, in real time (the clock does not move meanwhile).
    Latency(Duration),
    /// At most `limit` API requests per `per` of real time are served; the rest get 429 with
    /// `Retry-After`. Real time, because an agent's request rate is real (AG-BACKOFF).
    RateLimit {
        /// Requests allowed per window (0 refuses everything).
        limit: u32,
        /// The window length, real time.
        per: Duration,
    },
    /// Tests answer 404 `UnknownTest` after they were created, as if the backend forgot them.
    LostTest(LostTarget),
    /// Tests created while the window is open start `delay` of simulated time late: they report
    /// `running` with `percentComplete` 0 and no `startedAt` until then, and their duration counts
    /// from the real start.
    SlowStart(Duration),
}

impl FaultKind {
    /// The kind's name in the JSON form (`outage`, `error_rate`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Outage => "outage",
            FaultKind::ErrorRate { .. } => "error_rate",
            FaultKind::Latency(_) => "latency",
            FaultKind::RateLimit { .. } => "rate_limit",
            FaultKind::LostTest(_) => "lost_test",
            FaultKind::SlowStart(_) => "slow_start",
        }
    }
}

/// A fault and the window of simulated time in which it acts.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// What it does.
    pub kind: FaultKind,
    /// When it starts acting (`None`: at once).
    pub from: Option<SimTime>,
    /// When it stops acting, exclusive (`None`: until removed).
    pub until: Option<SimTime>,
}

impl Fault {
    /// A fault of `kind` acting from now until removed.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            from: None,
            until: None,
        }
    }

    /// 503 for every API request in `from..until` (simulated time).
    pub fn outage(from: SimTime, until: SimTime) -> Self {
        Fault::new(FaultKind::Outage).between(from, until)
    }

    /// Each API request fails with `status` with probability `rate`.
    pub fn error_rate(rate: f64, status: u16) -> Self {
        Fault::new(FaultKind::ErrorRate { rate, status })
    }

    /// Every API request is delayed by `latency` of real time.
    pub fn latency(latency: Duration) -> Self {
        Fault::new(FaultKind::Latency(latency))
    }

    /// At most `limit` API requests per `per` of real time; the rest get 429.
    pub fn rate_limit(limit: u32, per: Duration) -> Self {
        Fault::new(FaultKind::RateLimit { limit, per })
    }

    /// The tests `target` names answer 404 after creation.
    pub fn lost_test(target: LostTarget) -> Self {
        Fault::new(FaultKind::LostTest(target))
    }

    /// Tests created while the fault acts start `delay` late.
    pub fn slow_start(delay: Duration) -> Self {
        Fault::new(FaultKind::SlowStart(delay))
    }

    /// The same fault acting only in `from..until`.
    pub fn between(mut self, from: SimTime, until: SimTime) -> Self {
        self.from = Some(from);
        self.until = Some(until);
        self
    }

    /// The same fault acting from `from` on.
    pub fn starting(mut self, from: SimTime) -> Self {
        self.from = Some(from);
        self
    }

    /// The same fault acting until `until` (exclusive).
    pub fn ending(mut self, until: SimTime) -> Self {
        self.until = Some(until);
        self
    }

    /// Whether the fault acts at `now`.
    pub fn is_active(&self, now: SimTime) -> bool {
        self.from.is_none_or(|f| now >= f) && self.until.is_none_or(|u| now < u)
    }

    /// Checks the fault's own numbers (rate, status, window order).
    pub fn validate(&self) -> Result<(), FaultSpecError> {
        if let (Some(from), Some(until)) = (self.from, self.until)
            && until <= from
        {
            return Err(FaultSpecError::new(format!(
                "the window ends ({until}) before or when it starts ({from})"
            )));
        }
        match &self.kind {
            FaultKind::ErrorRate { rate, status } => {
                if !(0.0..=1.0).contains(rate) {
                    return Err(FaultSpecError::new(format!(
                        "`rate` must be between 0 and 1, got {rate}"
                    )));
                }
                if !(400..=599).contains(status) {
                    return Err(FaultSpecError::new(format!(
                        "`status` must be an error status 400..=599, got {status}"
                    )));
                }
            }
            FaultKind::RateLimit { per, .. } if per.is_zero() => {
                return Err(FaultSpecError::new("`per` must be longer than 0s"));
            }
            FaultKind::Latency(d) if *d > MAX_LATENCY => {
                return Err(FaultSpecError::new(format!(
                    "`latency` {} is over the {} cap (a fault must not hang the backend)",
                    format_duration(*d),
                    format_duration(MAX_LATENCY)
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// The JSON form the admin API lists, with `from`/`until` as offsets from the clock's origin.
    pub fn to_json(&self, id: FaultId, clock: &SimClock) -> Value {
        let origin = clock.origin();
        let at = |t: Option<SimTime>| t.map(|t| format_offset(t.since(origin)));
        let mut doc = json!({
            "id": id.0,
            "kind": self.kind.name(),
            "from": at(self.from),
            "until": at(self.until),
            "active": self.is_active(clock.now()),
        });
        let extra = match &self.kind {
            FaultKind::Outage => json!({"status": 503}),
            FaultKind::ErrorRate { rate, status } => json!({"rate": rate, "status": status}),
            FaultKind::Latency(d) => json!({"latency": format_duration(*d)}),
            FaultKind::RateLimit { limit, per } => {
                json!({"limit": limit, "per": format_duration(*per)})
            }
            FaultKind::LostTest(LostTarget::All) => json!({}),
            FaultKind::LostTest(LostTarget::JobId(id)) => json!({"jobId": id}),
            FaultKind::LostTest(LostTarget::RunnableFile(f)) => json!({"runnableFile": f}),
            FaultKind::SlowStart(d) => json!({"delay": format_duration(*d)}),
        };
        if let (Some(doc), Value::Object(extra)) = (doc.as_object_mut(), extra) {
            doc.extend(extra);
        }
        doc
    }
}

/// Added latency above this would look like a hang to the harness's watchdog.
pub const MAX_LATENCY: Duration = Duration::from_secs(60);

/// The admin API's JSON form of a fault. Windows are written as people write them:
/// `{"kind": "outage", "from": "+00:10:00", "for": "10m"}`, `"from": "now"`, `"until": "+01:00:00"`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultSpec {
    /// `outage`, `error_rate`, `latency`, `rate_limit`, `lost_test` or `slow_start`.
    pub kind: String,
    /// `now` (the default) or a time: an offset from the origin (`+00:10:00`, `10m`) or RFC 3339.
    pub from: Option<String>,
    /// How long the window stays open (`10m`); exclusive with `until`.
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// When the window closes, written like `from`; exclusive with `for`.
    pub until: Option<String>,
    /// `error_rate`: probability 0..=1.
    pub rate: Option<f64>,
    /// `error_rate`: the status to answer (default 500).
    pub status: Option<u16>,
    /// `latency`: real time added to each request (`200ms`).
    pub latency: Option<String>,
    /// `rate_limit`: requests allowed per window.
    pub limit: Option<u32>,
    /// `rate_limit`: the window, real time (default `1s`).
    pub per: Option<String>,
    /// `lost_test`: the one test to lose.
    pub job_id: Option<u64>,
    /// `lost_test`: lose every test of this runnable file.
    pub runnable_file: Option<String>,
    /// `slow_start`: how late tests start (simulated time).
    pub delay: Option<String>,
}

/// What is wrong with a fault definition.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct FaultSpecError(pub String);

impl FaultSpecError {
    fn new(message: impl Into<String>) -> Self {
        FaultSpecError(message.into())
    }
}

impl FaultSpec {
    /// Resolves the written form against `clock` (`now` and offsets become instants) and checks it.
    pub fn resolve(&self, clock: &SimClock) -> Result<Fault, FaultSpecError> {
        let kind = self.kind()?;
        let from = match self.from.as_deref().map(str::trim) {
            None | Some("now") => clock.now(),
            Some(text) => parse_target(text, clock.origin())
                .map_err(|e| FaultSpecError::new(format!("from: {e}")))?,
        };
        let until = match (&self.for_, &self.until) {
            (Some(_), Some(_)) => {
                return Err(FaultSpecError::new("give `for` or `until`, not both"));
            }
            (Some(d), None) => Some(from.plus(duration("for", d)?)),
            (None, Some(t)) => Some(
                parse_target(t, clock.origin())
                    .map_err(|e| FaultSpecError::new(format!("until: {e}")))?,
            ),
            (None, None) => None,
        };
        let fault = Fault {
            kind,
            from: Some(from),
            until,
        };
        fault.validate()?;
        Ok(fault)
    }

    fn kind(&self) -> Result<FaultKind, FaultSpecError> {
        let kind = self.kind.trim();
        // Fields that belong to another kind are refused, so a typo never silently does nothing.
        let allowed: &[&str] = match kind {
            "outage" => &[],
            "error_rate" => &["rate", "status"],
            "latency" => &["latency"],
            "rate_limit" => &["limit", "per"],
            "lost_test" => &["jobId", "runnableFile"],
            "slow_start" => &["delay"],
            other => {
                return Err(FaultSpecError::new(format!(
                    "unknown fault kind `{other}`: use outage, error_rate, latency, rate_limit, lost_test or slow_start"
                )));
            }
        };
        let present = [
            ("rate", self.rate.is_some()),
            ("status", self.status.is_some()),
            ("latency", self.latency.is_some()),
            ("limit", self.limit.is_some()),
            ("per", self.per.is_some()),
            ("jobId", self.job_id.is_some()),
            ("runnableFile", self.runnable_file.is_some()),
            ("delay", self.delay.is_some()),
        ];
        if let Some((field, _)) = present.iter().find(|(f, set)| *set && !allowed.contains(f)) {
            return Err(FaultSpecError::new(format!(
                "field `{field}` does not apply to a `{kind}` fault"
            )));
        }
        let required =
            |field: &str| FaultSpecError::new(format!("a `{kind}` fault needs `{field}`"));
        Ok(match kind {
            "outage" => FaultKind::Outage,
            "error_rate" => FaultKind::ErrorRate {
                rate: self.rate.ok_or_else(|| required("rate"))?,
                status: self.status.unwrap_or(500),
            },
            "latency" => FaultKind::Latency(duration(
                "latency",
                self.latency.as_deref().ok_or_else(|| required("latency"))?,
            )?),
            "rate_limit" => FaultKind::RateLimit {
                limit: self.limit.ok_or_else(|| required("limit"))?,
                per: match &self.per {
                    Some(p) => duration("per", p)?,
                    None => Duration::from_secs(1),
                },
            },
            "lost_test" => FaultKind::LostTest(match (self.job_id, &self.runnable_file) {
                (Some(_), Some(_)) => {
                    return Err(FaultSpecError::new(
                        "give `jobId` or `runnableFile`, not both",
                    ));
                }
                (Some(id), None) => LostTarget::JobId(id),
                (None, Some(f)) => LostTarget::RunnableFile(f.clone()),
                (None, None) => LostTarget::All,
            }),
            _ => FaultKind::SlowStart(duration(
                "delay",
                self.delay.as_deref().ok_or_else(|| required("delay"))?,
            )?),
        })
    }
}

fn duration(field: &str, text: &str) -> Result<Duration, FaultSpecError> {
    parse_duration(text).map_err(|e| FaultSpecError::new(format!("{field}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn windows_resolve_from_offsets_and_now() {
        let clock = SimClock::manual();
        clock.advance_by(Duration::from_secs(60)).unwrap();
        let o = clock.origin();
        let f = spec(r#"{"kind": "outage", "from": "+00:10:00", "for": "10m"}"#)
            .resolve(&clock)
            .unwrap();
        assert_eq!(
            (f.from, f.until),
            (
                Some(o.plus(Duration::from_secs(600))),
                Some(o.plus(Duration::from_secs(1200)))
            )
        );
        let f = spec(r#"{"kind": "outage", "until": "+00:05:00"}"#)
            .resolve(&clock)
            .unwrap();
        assert_eq!(f.from, Some(clock.now()));
        assert!(f.is_active(clock.now()) && !f.is_active(o.plus(Duration::from_secs(300))));
    }

    #[test]
    fn bad_specs_name_the_problem() {
        let clock = SimClock::manual();
        let err = |json: &str| spec(json).resolve(&clock).unwrap_err().0;
        assert!(err(r#"{"kind": "flood"}"#).contains("flood"));
        assert!(err(r#"{"kind": "error_rate"}"#).contains("rate"));
        assert!(err(r#"{"kind": "error_rate", "rate": 2}"#).contains("between 0 and 1"));
        assert!(err(r#"{"kind": "outage", "rate": 0.5}"#).contains("`rate` does not apply"));
        assert!(err(r#"{"kind": "outage", "for": "soon"}"#).contains("for"));
        assert!(
            err(r#"{"kind": "outage", "for": "1m", "until": "+01:00:00"}"#).contains("not both")
        );
        assert!(err(r#"{"kind": "latency", "latency": "2h"}"#).contains("cap"));
    }

    #[test]
    fn the_json_form_round_trips_the_kind_fields() {
        let clock = SimClock::manual();
        let f = spec(r#"{"kind": "lost_test", "runnableFile": "e-1.jmx"}"#)
            .resolve(&clock)
            .unwrap();
        assert_eq!(
            f.kind,
            FaultKind::LostTest(LostTarget::RunnableFile("e-1.jmx".into()))
        );
        let doc = f.to_json(FaultId(3), &clock);
        assert_eq!(
            (
                doc["id"].clone(),
                doc["kind"].clone(),
                doc["runnableFile"].clone()
            ),
            (json!(3), json!("lost_test"), json!("e-1.jmx"))
        );
        assert_eq!(doc["from"], "+00:00:00");
    }
}
