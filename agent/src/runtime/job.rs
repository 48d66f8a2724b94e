//! One job, start to answer: details, acknowledge, dispatch on the continuation token, answer.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::action::{Action, ActionError, JobContext, Step};
use crate::metrics::{Metrics, Outcome};
use crate::runtime::api::{Ack, Answer, JobApi, JobDetails, PolledJob};
use crate::signing::{ExecutionBinding, TokenSealer, Trust};
use crate::token::{ContinuationToken, Work};

/// What every job task shares.
pub(crate) struct Shared {
    pub api: JobApi,
    pub action: Arc<dyn Action>,
    pub metrics: Arc<Metrics>,
    pub max_failed_rounds: u32,
    pub sealer: TokenSealer,
    pub draining: tokio::sync::watch::Receiver<bool>,
    /// Jobs of another action type already logged (CodePipeline offers them again and again).
    pub foreign_jobs: Mutex<HashSet<String>>,
}

/// Jobs of another action type remembered for logging once; past this many the memory starts over.
const FOREIGN_JOBS_REMEMBERED: usize = 10_000;

/// Tells the poll loop whether the job became this runtime's (acknowledged InProgress); a job dropped for
/// any other reason reports `false`. The channel has room for one report per job of the poll.
pub(crate) struct Claim(Option<tokio::sync::mpsc::Sender<bool>>);

impl Claim {
    /// A claim reported on `tx`.
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<bool>) -> Self {
        Self(Some(tx))
    }

    fn won(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.try_send(true);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.try_send(false);
        }
    }
}

/// Handles one polled job to its answer (or leaves it, when it is not ours to answer).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    polled: PolledJob,
    polled_at: Instant,
    mut claim: Claim,
) {
    let job_id = polled.job_id.clone();
    let details = match shared.api.details(polled).await {
        Ok(details) => details,
        Err(e) => {
            tracing::warn!(%job_id, error = %e, "cannot read the job's details; leaving it to be offered again");
            shared.metrics.job(Outcome::Skipped);
            return;
        }
    };
    if !shared.api.serves(&details) {
        // Another worker's job (CodePipeline should not offer it): leave it unacknowledged, say so once.
        let mut seen = shared
            .foreign_jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if seen.len() >= FOREIGN_JOBS_REMEMBERED {
            seen.clear();
        }
        if seen.insert(job_id.clone()) {
            let of = details
                .action_type
                .as_ref()
                .map(|t| {
                    format!(
                        "{}/{}/{}/{}",
                        t.category().as_str(),
                        t.owner().as_str(),
                        t.provider(),
                        t.version()
                    )
                })
                .unwrap_or_default();
            tracing::warn!(%job_id, action_type = %of, "a job of another action type than this agent serves; leaving it unacknowledged for its own worker");
        }
        shared.metrics.job(Outcome::Skipped);
        return;
    }
    // Checked as late as possible: once draining, nothing new is acknowledged.
    if *shared.draining.borrow() {
        tracing::info!(%job_id, "draining: leaving the job unacknowledged for another worker");
        shared.metrics.job(Outcome::Skipped);
        return;
    }
    tracing::debug!(%job_id, nonce = %details.nonce, "acknowledging");
    // An acknowledge whose response was lost may have been applied: the job is then InProgress and nobody
    // else will be offered it. Trying again (same nonce) tells: InProgress, or InvalidNonceException once
    // the job was offered again to somebody else.
    let ack = retry_transient(
        ACK_RETRY_WINDOW,
        Instant::now(),
        &job_id,
        "the acknowledge",
        || shared.api.acknowledge(&details),
    );
    match ack.await {
        Ok(Ack::InProgress) => claim.won(),
        Ok(Ack::LostRace) => {
            tracing::debug!(%job_id, "another worker acknowledged the job first");
            shared.metrics.job(Outcome::LostRace);
            return;
        }
        Ok(Ack::Other(status)) => {
            tracing::warn!(%job_id, %status, "acknowledged, but the job is not InProgress; leaving it");
            shared.metrics.job(Outcome::Skipped);
            return;
        }
        Err(e) => {
            tracing::warn!(%job_id, error = %e, "cannot acknowledge the job; leaving it to be offered again");
            shared.metrics.job(Outcome::Skipped);
            return;
        }
    }
    let acknowledged_at = Instant::now();
    let _in_flight = shared.metrics.in_flight();
    let answer = decide(
        shared.action.as_ref(),
        &details,
        shared.max_failed_rounds,
        &shared.sealer,
    )
    .await;
    match deliver(&shared.api, &details, &answer, acknowledged_at).await {
        Ok(()) => {
            shared.metrics.result_latency(polled_at.elapsed());
            match &answer {
                Answer::Success {
                    continuation_token: Some(token),
                    percent_complete,
                    ..
                } => {
                    tracing::info!(%job_id, %token, percent = ?percent_complete, "answered: still running");
                    shared.metrics.job(Outcome::Continued);
                }
                Answer::Success { .. } => {
                    tracing::info!(%job_id, "answered: succeeded");
                    shared.metrics.job(Outcome::Succeeded);
                }
                Answer::Failure { kind, message, .. } => {
                    tracing::info!(%job_id, failure = kind.as_str(), %message, "answered: failed");
                    shared.metrics.job(Outcome::Failed);
                    shared.metrics.failure(*kind);
                }
            }
        }
        Err(e) if e.code.as_deref() == Some("InvalidJobStateException") => {
            // Either the job is over (timed out, abandoned), or an earlier attempt of this very answer was
            // applied and its response lost, so that the SDK's retry found the job answered. In both cases
            // the job is done with: answering again, failing it or starting the work anew would be wrong.
            tracing::warn!(%job_id, error = %e, "the job no longer takes a result: an earlier attempt of this answer may have been applied (its response lost), or the job ended; nothing more to do");
            shared.metrics.job(Outcome::Closed);
        }
        Err(e) => {
            tracing::error!(%job_id, error = %e, "could not deliver the answer");
            shared.metrics.job(Outcome::AnswerError);
        }
    }
}

/// How long after acknowledging a job the runtime keeps trying to deliver its answer through transient
/// errors (throttling, server errors, broken connections) that outlast the SDK's own retries. CodePipeline
/// gives a job an hour from when it was queued; past this the job is as good as timed out.
pub(crate) const ANSWER_RETRY_WINDOW: Duration = Duration::from_secs(50 * 60);

/// How long the runtime keeps trying an acknowledge through transient errors that outlast the SDK's own
/// retries. A lost acknowledge that was applied leaves the job InProgress for this worker alone; one that
/// was not is offered again once the ack window ends (5 minutes on the fake by default), and the old nonce
/// is then refused.
pub(crate) const ACK_RETRY_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The pause before the n-th extra delivery attempt: 250 ms doubling up to 15 s.
fn answer_backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(15))
}

/// Delivers an answer. The SDK retries a throttled or failed call a few times; an answer that still did
/// not get through is tried again (with [`answer_backoff`]) while the error is transient and the job is
/// younger than [`ANSWER_RETRY_WINDOW`]: a dropped answer would leave the job to time out, and fail an
/// action whose work went well.
async fn deliver(
    api: &JobApi,
    details: &JobDetails,
    answer: &Answer,
    acknowledged_at: Instant,
) -> Result<(), crate::runtime::api::ApiError> {
    retry_transient(
        ANSWER_RETRY_WINDOW,
        acknowledged_at,
        &details.job_id,
        "the answer",
        || api.answer(details, answer),
    )
    .await
}

/// Calls `call` until it succeeds or fails for good, pausing [`answer_backoff`] after each transient
/// error, while less than `window` has passed since `since`.
async fn retry_transient<T, F, Fut>(
    window: Duration,
    since: Instant,
    job_id: &str,
    what: &str,
    mut call: F,
) -> Result<T, crate::runtime::api::ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::runtime::api::ApiError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if e.transient && since.elapsed() < window => {
                let pause = answer_backoff(attempt);
                tracing::warn!(%job_id, error = %e, retry_in = ?pause, "{what} did not get through; trying again");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Works out the answer to an acknowledged job.
pub(crate) async fn decide(
    action: &dyn Action,
    details: &JobDetails,
    max_failed_rounds: u32,
    sealer: &TokenSealer,
) -> Answer {
    let job = JobContext {
        job_id: details.job_id.clone(),
        configuration: details.configuration.clone(),
        artifacts: details.artifacts.clone(),
    };
    let binding = &details.binding;
    let token = match details.continuation_token.as_deref() {
        None => None,
        Some(text) => match sealer.open(text, binding) {
            Ok(opened) => Some(trusted_work(opened.token, opened.trust, details, sealer)),
            Err(refusal) => {
                tracing::warn!(job_id = %details.job_id, %binding, %refusal, "continuation token refused");
                return Answer::Failure {
                    kind: crate::action::FailureKind::JobFailed,
                    message: format!(
                        "Refused the job's continuation token: {refusal}. Re-run the action to start again."
                    ),
                    external_execution_id: None,
                };
            }
        },
    };
    if token.is_none() && *binding == ExecutionBinding::Unbound {
        tracing::warn!(job_id = %details.job_id, "the job names no action execution: its continuation token cannot be bound to one");
    }
    // The token this round would carry on if the backend cannot be reached.
    let current = token
        .clone()
        .unwrap_or_else(|| ContinuationToken::pending(&details.job_id, 0));
    let result = match &current.work {
        Work::Pending { idempotency_key } => action.start(&job, idempotency_key).await,
        Work::Started(work) => action.check(&job, work).await,
    };
    let known_id = match &current.work {
        Work::Started(work) => Some(action.external_execution_id(work)),
        Work::Pending { .. } => None,
    };
    match result {
        Ok(step) => answer_for(step, sealer, binding),
        Err(ActionError::Unavailable(reason)) => {
            let next = current.with_failed_round();
            if next.failed_rounds >= max_failed_rounds {
                return Answer::Failure {
                    kind: crate::action::FailureKind::SystemUnavailable,
                    message: format!(
                        "{reason}. Gave up after {} round(s) in a row without reaching it. Check the backend's \
                         status, then retry the pipeline stage.",
                        next.failed_rounds
                    ),
                    external_execution_id: known_id,
                };
            }
            tracing::warn!(job_id = %details.job_id, failed_rounds = next.failed_rounds, %reason, "backend unavailable: answering still running");
            match sealer.seal(&next, binding) {
                Ok(text) => Answer::Success {
                    continuation_token: Some(text),
                    external_execution_id: known_id,
                    percent_complete: None,
                    summary: format!(
                        "Backend unavailable (round {} of {max_failed_rounds}); will check again: {reason}",
                        next.failed_rounds
                    ),
                },
                Err(e) => Answer::Failure {
                    kind: crate::action::FailureKind::JobFailed,
                    message: format!("The continuation token cannot be written: {e}"),
                    external_execution_id: known_id,
                },
            }
        }
        Err(other) => answer_for(other.into_failure(known_id), sealer, binding),
    }
}

/// The token to work from, once accepted. A token the configured key did not sign cannot vouch for the
/// idempotency key of a `pending:` token (it may be someone else's): that work starts under this job's id.
fn trusted_work(
    token: ContinuationToken,
    trust: Trust,
    details: &JobDetails,
    sealer: &TokenSealer,
) -> ContinuationToken {
    let job_id = &details.job_id;
    let keyed = sealer.keys().current().is_some();
    match trust {
        Trust::Signed => return token,
        // No key configured: nothing is authenticated, and keeping the key keeps one test per execution.
        Trust::Unkeyed if !keyed => return token,
        Trust::Unkeyed => {
            tracing::warn!(%job_id, "accepted a continuation token signed without a key (by an agent without AGENT_TOKEN_KEY) during AGENT_UNSIGNED_TOKEN_GRACE")
        }
        Trust::Unsigned => {
            tracing::warn!(%job_id, "accepted an unsigned continuation token (written before token signing) during AGENT_UNSIGNED_TOKEN_GRACE")
        }
    }
    match token.work {
        Work::Pending { idempotency_key } if idempotency_key != *job_id => {
            tracing::warn!(%job_id, token_key = %idempotency_key, "the pending token's idempotency key is not vouched for: starting the work under this job's id");
            ContinuationToken::pending(job_id, token.failed_rounds)
        }
        work => ContinuationToken {
            work,
            failed_rounds: token.failed_rounds,
        },
    }
}

fn answer_for(step: Step, sealer: &TokenSealer, binding: &ExecutionBinding) -> Answer {
    match step {
        Step::Running {
            work,
            external_execution_id,
            percent_complete,
            summary,
        } => match sealer.seal(&ContinuationToken::started(work), binding) {
            Ok(token) => Answer::Success {
                continuation_token: Some(token),
                external_execution_id: Some(external_execution_id),
                percent_complete: Some(percent_complete.min(99)),
                summary,
            },
            Err(e) => Answer::Failure {
                kind: crate::action::FailureKind::JobFailed,
                message: format!("The continuation token cannot be written: {e}"),
                external_execution_id: Some(external_execution_id),
            },
        },
        Step::Succeeded {
            external_execution_id,
            summary,
        } => Answer::Success {
            continuation_token: None,
            external_execution_id: Some(external_execution_id),
            percent_complete: Some(100),
            summary,
        },
        Step::Failed {
            kind,
            message,
            external_execution_id,
        } => Answer::Failure {
            kind,
            message,
            external_execution_id,
        },
    }
}
