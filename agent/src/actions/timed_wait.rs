//! The timed-wait action: waits across continuation jobs, with no backend. It is the smoke test for a real
//! AWS account: it proves polling, acknowledging, continuation and the final answer without anything but
//! CodePipeline.
//!
//! Configuration, one of:
//! - `Duration`: a real-time wait as people write it (`90s`, `10m`, `2h`; at most 7 days). The token
//!   carries the start and the deadline in Unix milliseconds: `wait:<start>:<deadline>`.
//! - `Rounds`: N continuation rounds (1 to 100,000), independent of real time: the first job answers with a
//!   token, each continuation job advances one round, the N-th continuation job succeeds. This is how an
//!   agent makes long work on simulated time, where it cannot see the clock: the harness's protocol tier
//!   runs it (`--config Rounds=300` outlasts the two-hour scenario at the default 30 s continuation delay).
//!   The token: `rounds:<start>:<done>:<total>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::action::{Action, ActionError, BoxFuture, JobContext, Step};
use crate::token::WorkRef;

/// The configuration property with the wait's length.
pub const DURATION: &str = "Duration";

/// The configuration property with the number of continuation rounds.
pub const ROUNDS: &str = "Rounds";

const MAX_ROUNDS: u64 = 100_000;

const MAX_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The timed-wait action.
#[derive(Debug, Clone, Default)]
pub struct TimedWaitAction;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn parse_work(work: &WorkRef) -> Option<(u64, u64)> {
    let rest = work.as_str().strip_prefix("wait:")?;
    let (start, deadline) = rest.split_once(':')?;
    Some((start.parse().ok()?, deadline.parse().ok()?))
}

/// `rounds:<start>:<done>:<total>`.
fn parse_rounds(work: &WorkRef) -> Option<(u64, u64, u64)> {
    let mut parts = work.as_str().strip_prefix("rounds:")?.split(':');
    let start = parts.next()?.parse().ok()?;
    let done = parts.next()?.parse().ok()?;
    let total: u64 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && done <= total && (1..=MAX_ROUNDS).contains(&total))
        .then_some((start, done, total))
}

/// Where a wait of `total` rounds stands after `done`.
fn round_step(start: u64, done: u64, total: u64) -> Step {
    let external_execution_id = format!("wait-{start}");
    if done >= total {
        return Step::Succeeded {
            external_execution_id,
            summary: format!("Waited {total} rounds"),
        };
    }
    Step::Running {
        work: WorkRef::new(format!("rounds:{start}:{done}:{total}"))
            .expect("digits and colons are a valid work reference"),
        external_execution_id,
        percent_complete: (done * 100 / total).min(99) as u8,
        summary: format!("Round {done} of {total}"),
    }
}

/// Where a wait from `start` to `deadline` stands at `now`; the start time names it (`wait-<start>`).
fn step_at(start: u64, deadline: u64, now: u64) -> Step {
    let external_execution_id = format!("wait-{start}");
    if now >= deadline {
        return Step::Succeeded {
            external_execution_id,
            summary: format!(
                "Waited {}",
                humantime::format_duration(Duration::from_millis(deadline - start))
            ),
        };
    }
    let total = deadline.saturating_sub(start).max(1);
    let percent = (now.saturating_sub(start) * 100 / total).min(99) as u8;
    let left = Duration::from_secs((deadline - now).div_ceil(1000));
    Step::Running {
        work: WorkRef::new(format!("wait:{start}:{deadline}"))
            .expect("digits and colons are a valid work reference"),
        external_execution_id,
        percent_complete: percent,
        summary: format!("Waiting: {} left", humantime::format_duration(left)),
    }
}

impl TimedWaitAction {
    async fn begin(&self, job: &JobContext, idempotency_key: &str) -> Result<Step, ActionError> {
        if let Some(text) = job
            .configuration
            .get(ROUNDS)
            .filter(|t| !t.trim().is_empty())
        {
            let total = text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_ROUNDS).contains(n))
                .ok_or_else(|| ActionError::Configuration {
                    property: ROUNDS.to_string(),
                    message: format!(
                        "Rounds {text:?} is not a number of rounds from 1 to {MAX_ROUNDS}."
                    ),
                })?;
            let start = now_ms();
            tracing::info!(job_id = %job.job_id, idempotency_key, rounds = total, "timed wait started");
            return Ok(round_step(start, 0, total));
        }
        let text = job.required(DURATION, "how long to wait, e.g. 90s or 10m (or Rounds)")?;
        let wait = humantime::parse_duration(text).map_err(|e| ActionError::Configuration {
            property: DURATION.to_string(),
            message: format!(
                "Duration {text:?} is not a duration ({e}): write it like 90s, 10m or 2h."
            ),
        })?;
        if wait > MAX_WAIT {
            return Err(ActionError::Configuration {
                property: DURATION.to_string(),
                message: format!(
                    "Duration {text:?} is longer than the 7 days the timed wait allows."
                ),
            });
        }
        let start = now_ms();
        tracing::info!(job_id = %job.job_id, idempotency_key, wait = %humantime::format_duration(wait), "timed wait started");
        Ok(step_at(start, start + wait.as_millis() as u64, start))
    }

    async fn follow(&self, work: &WorkRef) -> Result<Step, ActionError> {
        if let Some((start, done, total)) = parse_rounds(work) {
            return Ok(round_step(start, done + 1, total));
        }
        let Some((start, deadline)) = parse_work(work) else {
            return Err(ActionError::Failed(format!(
                "The continuation token names {:?}, which is not a timed wait. Re-run the action.",
                work.as_str()
            )));
        };
        Ok(step_at(start, deadline, now_ms()))
    }
}

impl Action for TimedWaitAction {
    fn name(&self) -> &'static str {
        "timed-wait"
    }

    fn start<'a>(
        &'a self,
        job: &'a JobContext,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Step, ActionError>> {
        Box::pin(self.begin(job, idempotency_key))
    }

    fn check<'a>(
        &'a self,
        job: &'a JobContext,
        work: &'a WorkRef,
    ) -> BoxFuture<'a, Result<Step, ActionError>> {
        let _ = job;
        Box::pin(self.follow(work))
    }

    fn external_execution_id(&self, work: &WorkRef) -> String {
        match (parse_work(work), parse_rounds(work)) {
            (Some((start, _)), _) | (_, Some((start, _, _))) => format!("wait-{start}"),
            _ => work.as_str().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn job(duration: Option<&str>) -> JobContext {
        let mut configuration = HashMap::new();
        if let Some(d) = duration {
            configuration.insert(DURATION.to_string(), d.to_string());
        }
        JobContext {
            job_id: "j1".into(),
            configuration,
            ..JobContext::default()
        }
    }

    #[test]
    fn progress_then_success() {
        let Step::Running {
            work,
            percent_complete,
            ..
        } = step_at(1_000, 11_000, 6_000)
        else {
            panic!()
        };
        assert_eq!(work.as_str(), "wait:1000:11000");
        assert_eq!(percent_complete, 50);
        assert!(matches!(
            step_at(1_000, 11_000, 11_000),
            Step::Succeeded { .. }
        ));
    }

    #[tokio::test]
    async fn rounds_take_that_many_continuation_jobs_whatever_the_time() {
        let mut job = job(None);
        job.configuration.insert(ROUNDS.into(), "3".into());
        let mut step = TimedWaitAction.start(&job, "k").await.unwrap();
        let mut continuations = 0;
        while let Step::Running { work, .. } = &step {
            continuations += 1;
            step = TimedWaitAction.check(&job, work).await.unwrap();
        }
        assert_eq!(continuations, 3, "{step:?}");
        assert!(
            matches!(step, Step::Succeeded { ref summary, .. } if summary == "Waited 3 rounds")
        );
        for bad in ["0", "many", "100001"] {
            job.configuration.insert(ROUNDS.into(), bad.into());
            let err = TimedWaitAction.start(&job, "k").await.unwrap_err();
            assert!(
                matches!(err, ActionError::Configuration { ref property, .. } if property == ROUNDS),
                "{bad}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn bad_duration_names_the_property() {
        for bad in [None, Some("soon"), Some("30d")] {
            let err = TimedWaitAction.start(&job(bad), "k").await.unwrap_err();
            assert!(
                matches!(err, ActionError::Configuration { ref property, .. } if property == DURATION),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_zero_wait_is_still_answered_with_a_token_first() {
        let step = TimedWaitAction.start(&job(Some("0s")), "k").await.unwrap();
        assert!(matches!(step, Step::Succeeded { .. }) || matches!(step, Step::Running { .. }));
        let step = TimedWaitAction.start(&job(Some("1h")), "k").await.unwrap();
        let Step::Running { work, .. } = step else {
            panic!()
        };
        assert!(matches!(
            TimedWaitAction.check(&job(None), &work).await.unwrap(),
            Step::Running { .. }
        ));
    }
}
