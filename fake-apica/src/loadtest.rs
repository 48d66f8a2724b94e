//! One load test: when it was created, starts and ends in simulated time, and what it reports.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};
use sim_core::{SimTime, format_duration};

use crate::preset::{Outcome, Preset};

/// A test's status as the API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    /// Started (or starting late under a slow-start fault) and not yet over.
    Running,
    /// Ran its full duration and every threshold held.
    Passed,
    /// Ran its full duration and a threshold broke.
    Failed,
    /// Stopped by an abort request.
    Aborted,
}

impl TestStatus {
    /// The lowercase name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Running => "running",
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
            TestStatus::Aborted => "aborted",
        }
    }

    /// Whether the test is over.
    pub fn is_finished(self) -> bool {
        self != TestStatus::Running
    }
}

impl fmt::Display for TestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a finished test ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ending {
    /// Ran to its end with the preset's outcome.
    Completed,
    /// Aborted at an instant, at a progress.
    Aborted { percent: u8 },
}

/// A load test as the backend keeps it.
#[derive(Clone, Debug)]
pub(crate) struct LoadTest {
    pub job_id: u64,
    pub preset: Preset,
    pub runnable_file: String,
    pub idempotency_key: Option<String>,
    pub created_at: SimTime,
    /// Later than `created_at` under a slow-start fault.
    pub starts_at: SimTime,
    /// `starts_at` + the preset's duration.
    pub ends_at: SimTime,
    /// `Some` once finished: when, and how.
    pub ended: Option<(SimTime, Ending)>,
}

impl LoadTest {
    /// The status at `now`: the end is due exactly at `ends_at`, whether or not its timer has fired yet.
    pub fn status(&self, now: SimTime) -> TestStatus {
        match &self.ended {
            Some((_, Ending::Aborted { .. })) => TestStatus::Aborted,
            Some((_, Ending::Completed)) => self.outcome_status(),
            None if now >= self.ends_at => self.outcome_status(),
            None => TestStatus::Running,
        }
    }

    fn outcome_status(&self) -> TestStatus {
        match self.preset.outcome {
            Outcome::Passed => TestStatus::Passed,
            Outcome::Failed { .. } => TestStatus::Failed,
        }
    }

    /// floor(elapsed / duration x 100), 100 only once the test has run to its end.
    pub fn percent_complete(&self, now: SimTime) -> u8 {
        match &self.ended {
            Some((_, Ending::Aborted { percent })) => *percent,
            Some((_, Ending::Completed)) => 100,
            None if now >= self.ends_at => 100,
            None => {
                let total = self.ends_at.since(self.starts_at).as_millis();
                let done = now.since(self.starts_at).as_millis();
                // total > done here, so the quotient is below 100 (and total is not 0).
                (done * 100 / total.max(1)).min(99) as u8
            }
        }
    }

    /// When the test finished (or finishes, if the end is due but its timer has not fired yet).
    pub fn finished_at(&self, now: SimTime) -> Option<SimTime> {
        match &self.ended {
            Some((at, _)) => Some(*at),
            None if now >= self.ends_at => Some(self.ends_at),
            None => None,
        }
    }

    /// The one-line summary: progress while running, the failure reason for a failure.
    pub fn summary(&self, now: SimTime) -> String {
        let name = &self.preset.name;
        let length = format_duration(self.preset.duration);
        match self.status(now) {
            TestStatus::Running if now < self.starts_at => format!(
                "waiting for load generators: preset `{name}` ({length}) starts in {}",
                format_duration(self.starts_at.since(now))
            ),
            TestStatus::Running => format!(
                "running preset `{name}`: {}% of {length}, {} left",
                self.percent_complete(now),
                format_duration(round_to_seconds(self.ends_at.since(now)))
            ),
            TestStatus::Passed => {
                format!("passed: preset `{name}` ran {length}; every threshold held")
            }
            TestStatus::Failed => match &self.preset.outcome {
                Outcome::Failed { reason } => format!("failed: {reason}"),
                Outcome::Passed => "failed".to_string(),
            },
            TestStatus::Aborted => format!(
                "aborted at {}% of {length} (preset `{name}`)",
                self.percent_complete(now)
            ),
        }
    }

    /// A snapshot of everything the API and the details page show.
    pub fn view(&self, now: SimTime) -> TestView {
        // A test aborted during a slow start never started, however late it is now.
        let horizon = self.ended.as_ref().map_or(now, |(at, _)| (*at).min(now));
        TestView {
            job_id: self.job_id,
            status: self.status(now),
            percent_complete: self.percent_complete(now),
            summary: self.summary(now),
            preset: self.preset.name.clone(),
            runnable_file: self.runnable_file.clone(),
            idempotency_key: self.idempotency_key.clone(),
            created_at: self.created_at,
            started_at: (self.starts_at <= horizon).then_some(self.starts_at),
            finished_at: self.finished_at(now),
            ends_at: self.ends_at,
            duration: self.preset.duration,
        }
    }
}

fn round_to_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// What the API reports for a test at one instant (times are simulated, RFC 3339 in JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestView {
    /// The backend's id for the test.
    pub job_id: u64,
    /// `running`, `passed`, `failed` or `aborted`.
    pub status: TestStatus,
    /// 0..=100, floor of the elapsed share of the duration; 100 only once finished.
    pub percent_complete: u8,
    /// Progress in words, or the failure reason.
    pub summary: String,
    /// The preset's name.
    pub preset: String,
    /// The runnable file the test was created for.
    pub runnable_file: String,
    /// The idempotency key it was created with, if any.
    pub idempotency_key: Option<String>,
    /// When the create request arrived.
    #[serde(serialize_with = "rfc3339")]
    pub created_at: SimTime,
    /// When load started (`None` while a slow start holds it).
    #[serde(serialize_with = "rfc3339_opt")]
    pub started_at: Option<SimTime>,
    /// When it finished.
    #[serde(serialize_with = "rfc3339_opt")]
    pub finished_at: Option<SimTime>,
    /// When it ends (or ended) unless aborted.
    #[serde(serialize_with = "rfc3339")]
    pub ends_at: SimTime,
    /// The preset's duration.
    #[serde(serialize_with = "human_duration")]
    pub duration: Duration,
}

fn rfc3339<S: Serializer>(t: &SimTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.rfc3339())
}

fn rfc3339_opt<S: Serializer>(t: &Option<SimTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.rfc3339()),
        None => s.serialize_none(),
    }
}

fn human_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::DEFAULT_ORIGIN;

    fn test(preset: Preset, delay: Duration) -> LoadTest {
        let starts_at = DEFAULT_ORIGIN.plus(delay);
        LoadTest {
            job_id: 1,
            ends_at: starts_at.plus(preset.duration),
            preset,
            runnable_file: "a.jmx".into(),
            idempotency_key: None,
            created_at: DEFAULT_ORIGIN,
            starts_at,
            ended: None,
        }
    }

    #[test]
    fn progress_is_the_floor_of_the_elapsed_share_and_100_only_at_the_end() {
        let t = test(
            Preset::passed("p", Duration::from_secs(7200)),
            Duration::ZERO,
        );
        let at = |s: u64| DEFAULT_ORIGIN.plus(Duration::from_secs(s));
        assert_eq!(t.percent_complete(at(0)), 0);
        assert_eq!(t.percent_complete(at(3600)), 50);
        assert_eq!(t.percent_complete(at(7199)), 99);
        assert_eq!(
            (t.status(at(7199)), t.status(at(7200))),
            (TestStatus::Running, TestStatus::Passed)
        );
        assert_eq!(t.percent_complete(at(7200)), 100);
    }

    #[test]
    fn a_slow_start_holds_progress_at_zero_and_counts_the_duration_from_the_start() {
        let t = test(
            Preset::failed("p", Duration::from_secs(600), "p95 > 2 s"),
            Duration::from_secs(300),
        );
        let at = |s: u64| DEFAULT_ORIGIN.plus(Duration::from_secs(s));
        let v = t.view(at(200));
        assert_eq!((v.percent_complete, v.started_at), (0, None));
        assert!(v.summary.contains("waiting"), "{}", v.summary);
        assert_eq!(t.view(at(600)).percent_complete, 50);
        assert_eq!(t.view(at(600)).started_at, Some(at(300)));
        let done = t.view(at(900));
        assert_eq!(
            (done.status, done.summary.as_str()),
            (TestStatus::Failed, "failed: p95 > 2 s")
        );
    }
}
