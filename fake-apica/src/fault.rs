//! Faults a scenario scripts into the backend, and their JSON form for the admin API.
//!
//! Every fault has an optional window in simulated time (`from`, `until`); outside it the fault does
//! nothing. Faults answer only the `/v1` API (the agent's side): the details page and `/_sim/` stay up.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
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

/// The admin API's JSON form of a fault (a scenario's `[[backend.faults]]` and `fault = {...}` write
/// the same keys in TOML). Windows are written as people write them:
/// `{"kind": "outage", "from": "+00:10:00", "for": "10m"}`, `"from": "now"`, `"until": "+01:00:00"`.
///
/// serde reads it: an unknown `kind` is refused naming it and the valid ones, a missing or mistyped
/// field naming the field. A key that is neither a window key nor one of the kind's own fields is
/// refused by [`FaultSpec::resolve`], naming it.
#[derive(Clone, Debug, Deserialize)]
pub struct FaultSpec {
    /// `now` (the default) or a time: an offset from the origin (`+00:10:00`, `10m`) or RFC 3339.
    pub from: Option<String>,
    /// How long the window stays open (`10m`); exclusive with `until`.
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// When the window closes, written like `from`; exclusive with `for`.
    pub until: Option<String>,
    /// `kind` and that kind's own fields.
    #[serde(flatten)]
    pub kind: FaultKindSpec,
}

/// Keys a fault's kind does not take. Collected, not refused with `deny_unknown_fields`, so that
/// the refusal names the kind they do not apply to (``field `delay` does not apply to a `lost_test`
/// fault``, as the admin API answers); `FaultSpec` itself cannot deny unknown fields anyway, since it
/// flattens the kind in.
pub type OtherFields = BTreeMap<String, IgnoredAny>;

/// A fault's `kind` and its fields as written (durations still text), one variant per kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum FaultKindSpec {
    /// `outage`: no fields.
    Outage {
        /// Keys it does not take.
        #[serde(flatten)]
        other: OtherFields,
    },
    /// `error_rate`.
    ErrorRate {
        /// Probability 0..=1.
        rate: f64,
        /// The status to answer (default 500).
        status: Option<u16>,
        /// Keys it does not take.
        #[serde(flatten)]
        other: OtherFields,
    },
    /// `latency`.
    Latency {
        /// Real time added to each request (`200ms`).
        latency: String,
        /// Keys it does not take.
        #[serde(flatten)]
        other: OtherFields,
    },
    /// `rate_limit`.
    RateLimit {
        /// Requests allowed per window.
        limit: u32,
        /// The window, real time (default `1s`).
        per: Option<String>,
        /// Keys it does not take.
        #[serde(flatten)]
        other: OtherFields,
    },
    /// `lost_test`: one test (`jobId`), a runnable file's tests (`runnableFile`), or neither: all.
    LostTest {
        /// The one test to lose.
        job_id: Option<u64>,
        /// Lose every test of this runnable file.
        runnable_file: Option<String>,
        /// Keys it does not take.
        #[serde(flatten)]
        other: OtherFields,
    },
    /// `slow_start`.
    SlowStart {
        /// How late tests start (simulated time).
        delay: String,
        /// Keys it does not take.
        #[serde(flatten)]
        other: OtherFields,
    },
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
        let kind = self.kind.resolve()?;
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
}

impl FaultKindSpec {
    /// The kind with its durations parsed and its defaults filled in; a key of another kind (or of
    /// none), so a typo never silently does nothing, is refused.
    fn resolve(&self) -> Result<FaultKind, FaultSpecError> {
        let kind = match self {
            FaultKindSpec::Outage { .. } => FaultKind::Outage,
            FaultKindSpec::ErrorRate { rate, status, .. } => FaultKind::ErrorRate {
                rate: *rate,
                status: status.unwrap_or(500),
            },
            FaultKindSpec::Latency { latency, .. } => {
                FaultKind::Latency(duration("latency", latency)?)
            }
            FaultKindSpec::RateLimit { limit, per, .. } => FaultKind::RateLimit {
                limit: *limit,
                per: match per {
                    Some(p) => duration("per", p)?,
                    None => Duration::from_secs(1),
                },
            },
            FaultKindSpec::LostTest {
                job_id,
                runnable_file,
                ..
            } => FaultKind::LostTest(match (job_id, runnable_file) {
                (Some(_), Some(_)) => {
                    return Err(FaultSpecError::new(
                        "give `jobId` or `runnableFile`, not both",
                    ));
                }
                (Some(id), None) => LostTarget::JobId(*id),
                (None, Some(f)) => LostTarget::RunnableFile(f.clone()),
                (None, None) => LostTarget::All,
            }),
            FaultKindSpec::SlowStart { delay, .. } => {
                FaultKind::SlowStart(duration("delay", delay)?)
            }
        };
        let (FaultKindSpec::Outage { other }
        | FaultKindSpec::ErrorRate { other, .. }
        | FaultKindSpec::Latency { other, .. }
        | FaultKindSpec::RateLimit { other, .. }
        | FaultKindSpec::LostTest { other, .. }
        | FaultKindSpec::SlowStart { other, .. }) = self;
        if !other.is_empty() {
            let keys: Vec<String> = other.keys().map(|k| format!("`{k}`")).collect();
            let (noun, verb) = match keys.len() {
                1 => ("field", "does"),
                _ => ("fields", "do"),
            };
            return Err(FaultSpecError::new(format!(
                "{noun} {} {verb} not apply to a `{}` fault",
                keys.join(", "),
                kind.name()
            )));
        }
        Ok(kind)
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

    /// Reads and resolves a fault the way the admin API does, with any error as text.
    fn resolved(json: &str, clock: &SimClock) -> Result<Fault, String> {
        let value: Value = serde_json::from_str(json).unwrap();
        serde_json::from_value::<FaultSpec>(value)
            .map_err(|e| e.to_string())?
            .resolve(clock)
            .map_err(|e| e.0)
    }

    #[test]
    fn bad_specs_name_the_problem() {
        let clock = SimClock::manual();
        let err = |json: &str| resolved(json, &clock).unwrap_err();
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
    fn an_unknown_kind_is_named_with_the_valid_ones() {
        let clock = SimClock::manual();
        assert_eq!(
            resolved(r#"{"kind": "meteor", "for": "1m"}"#, &clock).unwrap_err(),
            "unknown variant `meteor`, expected one of `outage`, `error_rate`, `latency`, \
             `rate_limit`, `lost_test`, `slow_start`"
        );
        assert_eq!(
            resolved(r#"{"from": "now"}"#, &clock).unwrap_err(),
            "missing field `kind`"
        );
        // Kinds are written exactly: no other case, no padding.
        for bad in ["Outage", " outage", "lost-test"] {
            let json = format!(r#"{{"kind": "{bad}"}}"#);
            assert!(resolved(&json, &clock).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_and_other_kinds_keys_are_named() {
        let clock = SimClock::manual();
        let err = |json: &str| resolved(json, &clock).unwrap_err();
        assert_eq!(
            err(r#"{"kind": "outage", "colour": "red"}"#),
            "field `colour` does not apply to a `outage` fault"
        );
        assert_eq!(
            err(r#"{"kind": "lost_test", "delay": "5m", "jobId": 7}"#),
            "field `delay` does not apply to a `lost_test` fault"
        );
        assert_eq!(
            err(r#"{"kind": "slow_start", "delay": "5m", "rate": 1, "For": "1m"}"#),
            "fields `For`, `rate` do not apply to a `slow_start` fault"
        );
        // Fields are camelCase, as the API writes them.
        assert_eq!(
            err(r#"{"kind": "lost_test", "job_id": 7}"#),
            "field `job_id` does not apply to a `lost_test` fault"
        );
        // Wrong types and missing fields name the field or the value.
        assert!(err(r#"{"kind": "rate_limit"}"#).contains("missing field `limit`"));
        assert!(err(r#"{"kind": "rate_limit", "limit": -1}"#).contains("-1"));
        assert!(err(r#"{"kind": "latency", "latency": 5}"#).contains("invalid type"));
        assert!(
            err(r#"{"kind": "lost_test", "jobId": 1, "runnableFile": "a"}"#).contains("not both")
        );
    }

    #[test]
    fn every_kind_reads_with_its_defaults() {
        let clock = SimClock::manual();
        let kind = |json: &str| resolved(json, &clock).unwrap().kind;
        assert_eq!(kind(r#"{"kind": "outage"}"#), FaultKind::Outage);
        assert_eq!(
            kind(r#"{"kind": "error_rate", "rate": 1}"#),
            FaultKind::ErrorRate {
                rate: 1.0,
                status: 500
            }
        );
        assert_eq!(
            kind(r#"{"kind": "error_rate", "rate": 0.3, "status": 502}"#),
            FaultKind::ErrorRate {
                rate: 0.3,
                status: 502
            }
        );
        assert_eq!(
            kind(r#"{"latency": "200ms", "kind": "latency"}"#),
            FaultKind::Latency(Duration::from_millis(200))
        );
        assert_eq!(
            kind(r#"{"kind": "rate_limit", "limit": 5}"#),
            FaultKind::RateLimit {
                limit: 5,
                per: Duration::from_secs(1)
            }
        );
        assert_eq!(
            kind(r#"{"kind": "rate_limit", "limit": 0, "per": "1h"}"#),
            FaultKind::RateLimit {
                limit: 0,
                per: Duration::from_secs(3600)
            }
        );
        assert_eq!(
            kind(r#"{"kind": "lost_test"}"#),
            FaultKind::LostTest(LostTarget::All)
        );
        assert_eq!(
            kind(r#"{"kind": "lost_test", "jobId": 153245}"#),
            FaultKind::LostTest(LostTarget::JobId(153_245))
        );
        assert_eq!(
            kind(r#"{"kind": "slow_start", "delay": "5m"}"#),
            FaultKind::SlowStart(Duration::from_secs(300))
        );
        // JSON null is an absent optional field.
        assert_eq!(
            kind(r#"{"kind": "error_rate", "rate": 0.5, "status": null, "from": null}"#),
            FaultKind::ErrorRate {
                rate: 0.5,
                status: 500
            }
        );
    }

    #[test]
    fn scenario_toml_reads_like_the_json() {
        let clock = SimClock::manual();
        let o = clock.origin();
        // `[[backend.faults]]` tables and an inline `fault = { ... }`, as scenarios write them.
        let table: toml::Value =
            toml::from_str("kind = \"outage\"\nfrom = \"+00:05:00\"\nfor = \"10m\"\n").unwrap();
        let inline: toml::Table =
            toml::from_str(r#"fault = { kind = "outage", for = "10m" }"#).unwrap();
        let endless: toml::Value =
            toml::from_str("kind = \"outage\"\nfrom = \"+00:05:00\"\n").unwrap();
        let read = |v: &toml::Value| -> Fault {
            let spec: FaultSpec = v.clone().try_into().unwrap();
            spec.resolve(&clock).unwrap()
        };
        assert_eq!(
            read(&table),
            resolved(
                r#"{"kind": "outage", "from": "+00:05:00", "for": "10m"}"#,
                &clock
            )
            .unwrap()
        );
        assert_eq!(read(&table).until, Some(o.plus(Duration::from_secs(900))));
        assert_eq!(
            read(&inline["fault"]),
            Fault::outage(clock.now(), clock.now().plus(Duration::from_secs(600)))
        );
        assert_eq!(
            (read(&endless).from, read(&endless).until),
            (Some(o.plus(Duration::from_secs(300))), None)
        );
        let typo: toml::Value =
            toml::from_str("kind = \"lost_test\"\nrunnableFile = \"a.jmx\"\ndelay = \"5m\"\n")
                .unwrap();
        let spec: FaultSpec = typo.try_into().unwrap();
        assert!(
            spec.resolve(&clock)
                .unwrap_err()
                .0
                .contains("`delay` does not apply")
        );
        // Read straight from a document too, as a field of a step is.
        #[derive(Deserialize)]
        struct Step {
            fault: FaultSpec,
        }
        let step: Step =
            toml::from_str("fault = { kind = \"slow_start\", delay = \"5m\", until = \"1h\" }")
                .unwrap();
        assert_eq!(
            step.fault.resolve(&clock).unwrap(),
            Fault::slow_start(Duration::from_secs(300))
                .between(clock.now(), o.plus(Duration::from_secs(3600)))
        );
        let unknown: toml::Value = toml::from_str("kind = \"meteor\"\n").unwrap();
        assert!(
            unknown
                .try_into::<FaultSpec>()
                .unwrap_err()
                .to_string()
                .contains("meteor")
        );
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
