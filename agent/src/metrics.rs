//! The agent's counters, rendered in the Prometheus text format for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::action::FailureKind;

/// How a job ended for this agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered success with a continuation token.
    Continued,
    /// Answered the final success.
    Succeeded,
    /// Answered a failure.
    Failed,
    /// Another worker acknowledged it first (InvalidNonceException).
    LostRace,
    /// Left alone: draining, not InProgress, no client token, or details could not be read.
    Skipped,
    /// The answer could not be delivered.
    AnswerError,
    /// The job no longer takes a result (`InvalidJobStateException`): an earlier attempt of this answer
    /// was applied and its response lost, or the job timed out or was abandoned. Nothing more to do.
    Closed,
}

const OUTCOMES: [(Outcome, &str); 7] = [
    (Outcome::Continued, "continued"),
    (Outcome::Succeeded, "succeeded"),
    (Outcome::Failed, "failed"),
    (Outcome::LostRace, "lost_race"),
    (Outcome::Skipped, "skipped"),
    (Outcome::AnswerError, "answer_error"),
    (Outcome::Closed, "closed"),
];

const FAILURES: [FailureKind; 4] = [
    FailureKind::JobFailed,
    FailureKind::ConfigurationError,
    FailureKind::PermissionError,
    FailureKind::SystemUnavailable,
];

/// Upper bounds of the result-latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Counters shared by the runtime and the HTTP endpoints.
#[derive(Debug, Default)]
pub struct Metrics {
    jobs: [AtomicU64; OUTCOMES.len()],
    failures: [AtomicU64; 4],
    in_flight: AtomicI64,
    polls: AtomicU64,
    poll_errors: AtomicU64,
    throttles: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    draining: AtomicBool,
}

/// Holds one in-flight slot until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    /// Counts a job's outcome.
    pub fn job(&self, outcome: Outcome) {
        let i = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        self.jobs[i].fetch_add(1, Relaxed);
    }

    /// Counts a failure answer by its type.
    pub fn failure(&self, kind: FailureKind) {
        let i = FAILURES.iter().position(|k| *k == kind).unwrap_or(0);
        self.failures[i].fetch_add(1, Relaxed);
    }

    /// Jobs with this outcome so far.
    pub fn jobs_with(&self, outcome: Outcome) -> u64 {
        let i = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        self.jobs[i].load(Relaxed)
    }

    /// Marks a job acknowledged and not yet answered, until the guard drops.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self)
    }

    /// Jobs acknowledged and not yet answered.
    pub fn in_flight_now(&self) -> i64 {
        self.in_flight.load(Relaxed)
    }

    /// Counts a poll.
    pub fn poll(&self) {
        self.polls.fetch_add(1, Relaxed);
    }

    /// Counts a poll that failed after the SDK's retries.
    pub fn poll_error(&self) {
        self.poll_errors.fetch_add(1, Relaxed);
    }

    /// Polls that failed so far.
    pub fn poll_errors(&self) -> u64 {
        self.poll_errors.load(Relaxed)
    }

    /// Counts a throttling response from CodePipeline (each attempt, retried or not).
    pub fn throttle(&self) {
        self.throttles.fetch_add(1, Relaxed);
    }

    /// Throttling responses so far.
    pub fn throttles(&self) -> u64 {
        self.throttles.load(Relaxed)
    }

    /// Records the time from a job's poll to its delivered answer.
    pub fn result_latency(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us
            .fetch_add(latency.as_micros() as u64, Relaxed);
    }

    /// Marks the agent as draining (health turns 503).
    pub fn set_draining(&self) {
        self.draining.store(true, Relaxed);
    }

    /// Whether the agent is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP agent_jobs_total Jobs handled, by outcome.\n# TYPE agent_jobs_total counter"
        );
        for ((_, name), n) in OUTCOMES.iter().zip(&self.jobs) {
            let _ = writeln!(
                out,
                "agent_jobs_total{{outcome=\"{name}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP agent_job_failures_total Failure answers, by failure type.\n# TYPE agent_job_failures_total counter"
        );
        for (kind, n) in FAILURES.iter().zip(&self.failures) {
            let _ = writeln!(
                out,
                "agent_job_failures_total{{type=\"{}\"}} {}",
                kind.as_str(),
                n.load(Relaxed)
            );
        }
        let gauges = [
            (
                "agent_jobs_in_flight",
                "gauge",
                "Jobs acknowledged and not yet answered.",
                self.in_flight.load(Relaxed),
            ),
            (
                "agent_polls_total",
                "counter",
                "Polls sent.",
                self.polls.load(Relaxed) as i64,
            ),
            (
                "agent_poll_errors_total",
                "counter",
                "Polls that failed after the SDK's retries.",
                self.poll_errors.load(Relaxed) as i64,
            ),
            (
                "agent_throttles_total",
                "counter",
                "Throttling responses from CodePipeline.",
                self.throttles.load(Relaxed) as i64,
            ),
            (
                "agent_draining",
                "gauge",
                "1 while the agent drains before exiting.",
                i64::from(self.is_draining()),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let name = "agent_result_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a job's poll to its delivered answer.\n# TYPE {name} histogram"
        );
        for (bucket, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        m.job(Outcome::Continued);
        m.job(Outcome::Failed);
        m.failure(FailureKind::ConfigurationError);
        m.result_latency(Duration::from_millis(20));
        let guard = m.in_flight();
        let text = m.render();
        assert!(text.contains("agent_jobs_total{outcome=\"continued\"} 1"));
        assert!(text.contains("agent_job_failures_total{type=\"ConfigurationError\"} 1"));
        assert!(text.contains("agent_jobs_in_flight 1"));
        assert!(text.contains("agent_result_latency_seconds_bucket{le=\"0.01\"} 0"));
        assert!(text.contains("agent_result_latency_seconds_bucket{le=\"0.025\"} 1"));
        drop(guard);
        assert_eq!(m.in_flight_now(), 0);
    }
}
