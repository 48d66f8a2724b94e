//! The fake's settings: protocol timings (globally and per action type) and server behaviour.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::types::{AbandonedResults, ActionTimeoutPer, FinalOn, JobTimeoutFrom, RepeatedResults};

/// Protocol timings, all in simulated time (`docs/protocol.md`, "Job lifecycle and time").
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// How long a queued job has to get its result (CP-TIMEOUT). Default 1 h.
    pub job_timeout: Duration,
    /// How long a dispatched job waits for an acknowledgement before it is offered again (CP-LEASE).
    /// Zero: offered to every poller until one acknowledges. Default 5 min.
    pub ack_window: Duration,
    /// Delay between a continuing success and the next job being queued (CP-CONTINUE). Default 30 s:
    /// AWS documents 30 seconds only for the Lambda integration model; for job workers it is inferred
    /// (`cargo xtask probe` measures it on an account).
    pub continuation_delay: Duration,
    /// The longest an action execution may run, over all its jobs (CP-ACTION-TIMEOUT). Default 24 h.
    pub action_timeout: Duration,
    /// Which successes end an action execution (CP-FINAL-100).
    pub final_on: FinalOn,
    /// From when the job timeout counts: queueing (default) or acknowledgement (CP-TIMEOUT; inferred).
    pub job_timeout_from: JobTimeoutFrom,
    /// What the action timeout bounds: an action execution (default) or each job alone
    /// (CP-ACTION-TIMEOUT; inferred).
    pub action_timeout_per: ActionTimeoutPer,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            job_timeout: Duration::from_secs(3600),
            ack_window: Duration::from_secs(300),
            continuation_delay: Duration::from_secs(30),
            action_timeout: Duration::from_secs(24 * 3600),
            final_on: FinalOn::Progress100,
            job_timeout_from: JobTimeoutFrom::Queued,
            action_timeout_per: ActionTimeoutPer::ActionExecution,
        }
    }
}

/// Per-action-type changes to [`Timing`], as the admin API and scenario files write them
/// (`"jobTimeout": "1h"`); absent members keep the global value.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimingOverrides {
    /// See [`Timing::job_timeout`].
    pub job_timeout: Option<String>,
    /// See [`Timing::ack_window`].
    pub ack_window: Option<String>,
    /// See [`Timing::continuation_delay`].
    pub continuation_delay: Option<String>,
    /// See [`Timing::action_timeout`].
    pub action_timeout: Option<String>,
    /// See [`Timing::final_on`].
    pub final_on: Option<String>,
    /// See [`Timing::job_timeout_from`].
    pub job_timeout_from: Option<String>,
    /// See [`Timing::action_timeout_per`].
    pub action_timeout_per: Option<String>,
}

impl TimingOverrides {
    /// `base` with these overrides applied and checked.
    pub fn apply(&self, base: &Timing) -> Result<Timing, String> {
        let dur = |v: &Option<String>, name: &str, default: Duration| -> Result<Duration, String> {
            match v {
                Some(text) => sim_core::parse_duration(text).map_err(|e| format!("{name}: {e}")),
                None => Ok(default),
            }
        };
        let timing = Timing {
            job_timeout: dur(&self.job_timeout, "jobTimeout", base.job_timeout)?,
            ack_window: dur(&self.ack_window, "ackWindow", base.ack_window)?,
            continuation_delay: dur(
                &self.continuation_delay,
                "continuationDelay",
                base.continuation_delay,
            )?,
            action_timeout: dur(&self.action_timeout, "actionTimeout", base.action_timeout)?,
            final_on: match &self.final_on {
                Some(f) => f.parse().map_err(|e| format!("finalOn: {e}"))?,
                None => base.final_on,
            },
            job_timeout_from: match &self.job_timeout_from {
                Some(f) => f.parse().map_err(|e| format!("jobTimeoutFrom: {e}"))?,
                None => base.job_timeout_from,
            },
            action_timeout_per: match &self.action_timeout_per {
                Some(f) => f.parse().map_err(|e| format!("actionTimeoutPer: {e}"))?,
                None => base.action_timeout_per,
            },
        };
        timing.check()?;
        Ok(timing)
    }
}

impl Timing {
    /// Checks the limits `docs/protocol.md` sets: job timeout 60..43200 s, continuation delay at least 1 s.
    pub fn check(&self) -> Result<(), String> {
        let jt = self.job_timeout.as_secs_f64();
        if !(60.0..=43_200.0).contains(&jt) {
            return Err(format!(
                "jobTimeout {} is outside 1m..12h (60..43200 s, the model's JobTimeout range)",
                sim_core::format_duration(self.job_timeout)
            ));
        }
        if self.continuation_delay < Duration::from_secs(1) {
            return Err(format!(
                "continuationDelay {} is under 1s; CodePipeline never queues a continuation job at once",
                sim_core::format_duration(self.continuation_delay)
            ));
        }
        if self.action_timeout < self.job_timeout {
            return Err(format!(
                "actionTimeout {} is shorter than jobTimeout {}",
                sim_core::format_duration(self.action_timeout),
                sim_core::format_duration(self.job_timeout)
            ));
        }
        Ok(())
    }
}

/// Everything the fake is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Default protocol timings.
    pub timing: Timing,
    /// Access key id -> secret key the fake accepts.
    pub access_keys: HashMap<String, String>,
    /// Verify SigV4 signatures (on by default; off only for manual exploration).
    pub verify_signatures: bool,
    /// Allowed difference between a request's `X-Amz-Date` and real time.
    pub signature_skew: Duration,
    /// Hold an empty poll open up to this long (real time) until a job is queued. `None`: answer at once.
    pub park_polls: Option<Duration>,
    /// Seed for job ids, nonces and injected faults.
    pub seed: u64,
    /// The 12-digit account id jobs report.
    pub account_id: String,
    /// The region used in ARNs.
    pub region: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Who may use the admin API (`/_sim/`) and the console (see `sim_core::guard`).
    pub admin: sim_core::AdminGuard,
    /// What a result put for a job of an abandoned action execution gets (CP-ABANDONED; inferred,
    /// default `Refuse`).
    pub abandoned_results: AbandonedResults,
    /// What a result identical to the one its job already took gets (CP-REPEAT; inferred, default
    /// `Refuse`).
    pub repeated_results: RepeatedResults,
    /// The most custom action types CreateCustomActionType lets exist at once (the Quotas page: 50 per
    /// Region). Types registered through the admin API do not count against it.
    pub max_custom_action_types: usize,
    /// An upload to the artifact bucket of a pipeline with an `encryptionKey` must also name that key
    /// (`x-amz-server-side-encryption-aws-kms-key-id`), not only ask for `aws:kms` (AG-ARTIFACT-KMS;
    /// inferred, default off: AWS's documented bucket policy checks only the algorithm).
    pub require_kms_key_id: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timing: Timing::default(),
            access_keys: HashMap::new(),
            verify_signatures: true,
            signature_skew: Duration::from_secs(300),
            park_polls: None,
            seed: 0,
            account_id: "111111111111".to_string(),
            region: "us-east-1".to_string(),
            max_body_bytes: 1024 * 1024,
            admin: sim_core::AdminGuard::new(),
            abandoned_results: AbandonedResults::Refuse,
            repeated_results: RepeatedResults::Refuse,
            max_custom_action_types: 50,
            require_kms_key_id: false,
        }
    }
}

impl Settings {
    /// Adds an accepted access key.
    pub fn with_key(mut self, access_key: &str, secret: &str) -> Self {
        self.access_keys
            .insert(access_key.to_string(), secret.to_string());
        self
    }
}

/// The settings a probe report measured on a real account (`docs/probe.md`): its `profile` object,
/// e.g. `{"ackWindow": "2m", "continuationDelay": "45s", "abandonedResults": "accept"}`. A setting the
/// report does not give keeps its default. `fake-codepipeline --profile REPORT` applies it under the
/// explicit flags (defaults < profile < flags).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// See [`Timing::ack_window`].
    pub ack_window: Option<Duration>,
    /// See [`Timing::continuation_delay`].
    pub continuation_delay: Option<Duration>,
    /// See [`Settings::abandoned_results`].
    pub abandoned_results: Option<AbandonedResults>,
    /// See [`Settings::repeated_results`].
    pub repeated_results: Option<RepeatedResults>,
}

/// The report format a profile comes from (the probe's `format`).
pub const PROFILE_FORMAT: &str = "job-sim-probe/1";

impl Profile {
    /// Reads the profile of a probe report; `origin` names the file in errors. Every error names the
    /// member that is wrong (`profile.ackWindow: ...`).
    pub fn from_report(text: &str, origin: &str) -> Result<Profile, String> {
        let report: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            format!("{origin} is not JSON ({e}); give a report written by `cargo xtask probe`")
        })?;
        match report.get("format").and_then(serde_json::Value::as_str) {
            Some(PROFILE_FORMAT) => {}
            Some(other) => {
                return Err(format!(
                    "{origin}: format `{other}` is not `{PROFILE_FORMAT}`, the probe report this fake reads"
                ));
            }
            None => {
                return Err(format!(
                    "{origin} has no `format` member: is it a report written by `cargo xtask probe`?"
                ));
            }
        }
        let Some(profile) = report.get("profile").and_then(serde_json::Value::as_object) else {
            return Err(format!("{origin} has no `profile` object"));
        };
        let text_of = |key: &str| -> Result<Option<&str>, String> {
            match profile.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(v) => Err(format!("{origin}: profile.{key} is {v}, not a string")),
            }
        };
        const KNOWN: [&str; 4] = [
            "ackWindow",
            "continuationDelay",
            "abandonedResults",
            "repeatedResults",
        ];
        if let Some(unknown) = profile.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!(
                "{origin}: profile.{unknown} is not a setting this fake takes (it takes {})",
                KNOWN.join(", ")
            ));
        }
        let duration = |key: &str| -> Result<Option<Duration>, String> {
            text_of(key)?
                .map(|t| {
                    sim_core::parse_duration(t).map_err(|e| format!("{origin}: profile.{key}: {e}"))
                })
                .transpose()
        };
        Ok(Profile {
            ack_window: duration("ackWindow")?,
            continuation_delay: duration("continuationDelay")?,
            abandoned_results: text_of("abandonedResults")?
                .map(|t| {
                    t.parse()
                        .map_err(|e| format!("{origin}: profile.abandonedResults: {e}"))
                })
                .transpose()?,
            repeated_results: text_of("repeatedResults")?
                .map(|t| {
                    t.parse()
                        .map_err(|e| format!("{origin}: profile.repeatedResults: {e}"))
                })
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_are_checked() {
        let o = TimingOverrides {
            job_timeout: Some("2h".into()),
            final_on: Some("no-token".into()),
            ..Default::default()
        };
        let t = o.apply(&Timing::default()).unwrap();
        assert_eq!(t.job_timeout, Duration::from_secs(7200));
        assert_eq!(t.final_on, FinalOn::NoToken);
        let bad = TimingOverrides {
            continuation_delay: Some("0s".into()),
            ..Default::default()
        };
        assert!(
            bad.apply(&Timing::default())
                .unwrap_err()
                .contains("continuationDelay")
        );
        let bad = TimingOverrides {
            job_timeout: Some("13h".into()),
            ..Default::default()
        };
        assert!(
            bad.apply(&Timing::default())
                .unwrap_err()
                .contains("jobTimeout")
        );
    }

    fn report(profile: &str) -> String {
        format!(r#"{{"format": "job-sim-probe/1", "probes": {{}}, "profile": {profile}}}"#)
    }

    #[test]
    fn a_profile_reads_the_measured_settings_and_leaves_the_rest_unset() {
        let p = Profile::from_report(
            &report(
                r#"{"ackWindow": "2m", "continuationDelay": "45s", "abandonedResults": "accept"}"#,
            ),
            "observed.json",
        )
        .unwrap();
        assert_eq!(p.ack_window, Some(Duration::from_secs(120)));
        assert_eq!(p.continuation_delay, Some(Duration::from_secs(45)));
        assert_eq!(p.abandoned_results, Some(AbandonedResults::Accept));
        let empty = Profile::from_report(&report("{}"), "observed.json").unwrap();
        assert_eq!(empty, Profile::default());
    }

    #[test]
    fn a_bad_profile_names_the_file_and_the_member() {
        let err = |text: &str| Profile::from_report(text, "observed.json").unwrap_err();
        let e = err(&report(r#"{"ackWindow": "soon"}"#));
        assert!(
            e.contains("observed.json: profile.ackWindow") && e.contains("soon"),
            "{e}"
        );
        let e = err(&report(r#"{"abandonedResults": "maybe"}"#));
        assert!(
            e.contains("profile.abandonedResults") && e.contains("maybe"),
            "{e}"
        );
        let e = err(&report(r#"{"ackWindowz": "2m"}"#));
        assert!(e.contains("profile.ackWindowz is not a setting"), "{e}");
        let e = err(&report(r#"{"ackWindow": 120}"#));
        assert!(e.contains("profile.ackWindow is 120, not a string"), "{e}");
        let e = err("{not json");
        assert!(e.contains("observed.json is not JSON"), "{e}");
        let e = err(r#"{"format": "job-sim-probe/1"}"#);
        assert!(e.contains("no `profile` object"), "{e}");
        let e = err(r#"{"format": "other/9", "profile": {}}"#);
        assert!(e.contains("format `other/9`"), "{e}");
        let e = err(r#"{"profile": {}}"#);
        assert!(e.contains("no `format` member"), "{e}");
    }
}
