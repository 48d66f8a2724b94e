//! The probes, each on a pipeline execution of its own, in the order they run. Each asks one question
//! AWS's documentation leaves open, answers it from what the public API returns, and ends its run so the
//! next probe's run gets the stages.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::measure::{Interval, real_of};
use crate::report::{ProbeResult, Probes, Status, secs};
use crate::world::{Run, World, answer_json, answer_text};

/// The questions, as the report states them.
pub mod question {
    /// `ack_window`.
    pub const ACK_WINDOW: &str =
        "After how long is a polled job that nobody acknowledges offered again?";
    /// `reoffer_nonce`.
    pub const REOFFER_NONCE: &str =
        "Does a re-offered job carry a new nonce, and is the old nonce still accepted?";
    /// `second_acknowledge`.
    pub const SECOND_ACK: &str = "What does a second AcknowledgeJob with the same nonce return?";
    /// `result_before_acknowledge`.
    pub const BEFORE_ACK: &str = "Is a result put before AcknowledgeJob refused?";
    /// `continuation_delay`.
    pub const CONTINUATION: &str = "After a success with a continuation token, how long until the continuation job can be polled?";
    /// `put_after_abandon`.
    pub const AFTER_ABANDON: &str =
        "What does a result put after StopPipelineExecution(abandon = true) return?";
    /// `retried_identical_put`.
    pub const RETRIED_PUT: &str = "What does the same PutJobSuccessResult sent twice return (an SDK retry after a lost response)?";
}

/// How the probes run (from the command line).
#[derive(Clone, Debug)]
pub struct Plan {
    /// Server seconds per real second.
    pub scale: f64,
    /// Run the long probes (the ack window and the re-offer nonce).
    pub long: bool,
    /// The longest the ack window probe waits for a re-offer, server time.
    pub ack_window_limit: Duration,
    /// The longest the continuation probe waits for the continuation job, server time.
    pub continuation_limit: Duration,
    /// Real time to wait for a job to appear (each run has a few such waits).
    pub job_wait: Duration,
}

impl Plan {
    /// The most real time the ack window probe (with the re-offer nonce) can take.
    pub fn ack_window_real(&self) -> Duration {
        real_of(self.ack_window_limit, self.scale) + self.job_wait * 2
    }

    /// The most real time the continuation probe can take.
    pub fn continuation_real(&self) -> Duration {
        real_of(self.continuation_limit, self.scale) + self.job_wait * 2
    }

    /// The most real time each short probe can take (a run: its Source job, then its Test job).
    pub fn short_real(&self) -> Duration {
        self.job_wait * 3
    }
}

/// What a probe body found.
struct Found {
    status: Status,
    measured: Option<Interval>,
    observed: Option<Value>,
    detail: String,
}

impl Found {
    fn observed(observed: Value, detail: String) -> Self {
        Found {
            status: Status::Observed,
            measured: None,
            observed: Some(observed),
            detail,
        }
    }
}

/// Runs one probe body under its real-time limit (plus a margin for the calls themselves), turning an
/// error or an overrun into a result that says so.
async fn timed(
    question: &'static str,
    limit: Duration,
    body: impl Future<Output = Result<Found>>,
) -> ProbeResult {
    let started = Instant::now();
    let bound = limit + Duration::from_secs(30);
    let found = match tokio::time::timeout(bound, body).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => Found {
            status: Status::Error,
            measured: None,
            observed: None,
            detail: format!("{e:#}"),
        },
        Err(_) => Found {
            status: Status::Error,
            measured: None,
            observed: None,
            detail: format!(
                "did not finish within {} of real time",
                humantime::format_duration(Duration::from_secs(bound.as_secs()))
            ),
        },
    };
    ProbeResult {
        question,
        status: found.status,
        measured: found.measured,
        observed: found.observed,
        detail: found.detail,
        real_seconds: secs(started.elapsed()),
        limit_real_seconds: secs(limit),
    }
}

fn fmt_s(s: f64) -> String {
    format!("{s:.3} s")
}

/// Runs every probe in order; `progress` hears of each result as it comes.
pub async fn run_all(
    world: &mut World,
    plan: &Plan,
    progress: &dyn Fn(&str, &ProbeResult),
) -> Probes {
    let (ack_window, reoffer_nonce) = if plan.long {
        let limit = plan.ack_window_real();
        let mut reoffer = None;
        let ack = timed(question::ACK_WINDOW, limit, async {
            let (found, nonce) = ack_window(world, plan).await?;
            reoffer = Some(nonce);
            Ok(found)
        })
        .await;
        let reoffer = match reoffer {
            Some(found) => ProbeResult {
                question: question::REOFFER_NONCE,
                status: found.status,
                measured: None,
                observed: found.observed,
                detail: found.detail,
                real_seconds: 0.0,
                limit_real_seconds: 0.0,
            },
            None => ProbeResult::skipped(
                question::REOFFER_NONCE,
                "the ack window probe did not finish, so no job was offered again",
                Duration::ZERO,
            ),
        };
        (ack, reoffer)
    } else {
        let why = format!(
            "a long probe: pass --long to run it (it waits up to {} of real time for a re-offer: --ack-window-limit {} at --time-scale {})",
            humantime::format_duration(Duration::from_secs(plan.ack_window_real().as_secs())),
            humantime::format_duration(plan.ack_window_limit),
            plan.scale
        );
        (
            ProbeResult::skipped(question::ACK_WINDOW, why.clone(), plan.ack_window_real()),
            ProbeResult::skipped(question::REOFFER_NONCE, why, plan.ack_window_real()),
        )
    };
    progress("ack_window", &ack_window);
    progress("reoffer_nonce", &reoffer_nonce);
    let second_acknowledge = timed(
        question::SECOND_ACK,
        plan.short_real(),
        on_run(world, second_acknowledge),
    )
    .await;
    progress("second_acknowledge", &second_acknowledge);
    let result_before_acknowledge = timed(
        question::BEFORE_ACK,
        plan.short_real(),
        on_run(world, result_before_acknowledge),
    )
    .await;
    progress("result_before_acknowledge", &result_before_acknowledge);
    let continuation_delay = timed(
        question::CONTINUATION,
        plan.continuation_real(),
        continuation_delay(world, plan),
    )
    .await;
    progress("continuation_delay", &continuation_delay);
    let put_after_abandon = timed(
        question::AFTER_ABANDON,
        plan.short_real(),
        on_run(world, put_after_abandon),
    )
    .await;
    progress("put_after_abandon", &put_after_abandon);
    let retried_identical_put = timed(
        question::RETRIED_PUT,
        plan.short_real(),
        on_run(world, retried_identical_put),
    )
    .await;
    progress("retried_identical_put", &retried_identical_put);
    Probes {
        ack_window,
        reoffer_nonce,
        second_acknowledge,
        result_before_acknowledge,
        continuation_delay,
        put_after_abandon,
        retried_identical_put,
    }
}

/// Starts a run, runs `body` on it, and ends the run whatever `body` did.
async fn on_run<'w, F, Fut>(world: &'w mut World, body: F) -> Result<Found>
where
    F: FnOnce(&'w World, Run) -> Fut,
    Fut: Future<Output = Result<Found>>,
{
    let run = world.start_run().await?;
    let world: &'w World = world;
    let found = body(world, run.clone()).await;
    world.end_run(&run).await;
    found
}

/// The ack window and, from the same job, the re-offer nonce.
async fn ack_window(world: &mut World, plan: &Plan) -> Result<(Found, Found)> {
    let run = world.start_run().await?;
    let out = ack_window_on(world, plan, &run).await;
    world.end_run(&run).await;
    out
}

async fn ack_window_on(world: &World, plan: &Plan, run: &Run) -> Result<(Found, Found)> {
    let first = world.test_job(run).await?;
    let limit = real_of(plan.ack_window_limit, plan.scale);
    // Poll without acknowledging until the same job comes again.
    let again = world.wait_job(&world.test_type()?, run, limit).await?;
    let Some(again) = again.filter(|s| s.job.id == first.job.id) else {
        let waited = plan.ack_window_limit;
        let _ = world.acknowledge(&first.job.id, &first.job.nonce).await?;
        let _ = world.put_failure(&world.client, &first.job.id).await?;
        return Ok((
            Found {
                status: Status::NotSeen,
                measured: None,
                observed: Some(json!({"not_offered_again_within_s": secs(waited)})),
                detail: format!(
                    "the job was not offered again within {} (server time, --ack-window-limit): the ack window is longer, or a polled job is never offered again",
                    humantime::format_duration(Duration::from_secs(waited.as_secs()))
                ),
            },
            Found {
                status: Status::Skipped,
                measured: None,
                observed: None,
                detail: "no job was offered again within the ack window probe's limit".into(),
            },
        ));
    };
    let measured = Interval::bracket(first.hit, again.last_miss, again.hit, plan.scale);
    let ack = Found {
        status: Status::Measured,
        measured: Some(measured),
        observed: None,
        detail: format!(
            "offered again after {} (between {} and {}, server time)",
            fmt_s(measured.seconds),
            fmt_s(measured.lower_s),
            fmt_s(measured.upper_s)
        ),
    };
    let new_nonce = again.job.nonce != first.job.nonce;
    let old = world.acknowledge(&first.job.id, &first.job.nonce).await?;
    let new = world.acknowledge(&again.job.id, &again.job.nonce).await?;
    let _ = world.put_failure(&world.client, &first.job.id).await?;
    let reoffer = Found::observed(
        json!({
            "new_nonce": new_nonce,
            "acknowledge_with_old_nonce": answer_json(&old),
            "acknowledge_with_new_nonce": answer_json(&new),
        }),
        format!(
            "the re-offered job carries {} nonce; AcknowledgeJob with the first nonce: {}; with the new one: {}",
            if new_nonce { "a new" } else { "the same" },
            answer_text(&old),
            answer_text(&new)
        ),
    );
    Ok((ack, reoffer))
}

async fn second_acknowledge(world: &World, run: Run) -> Result<Found> {
    let job = world.test_job(&run).await?.job;
    let first = world.acknowledge(&job.id, &job.nonce).await?;
    if let Err(r) = &first {
        bail!(
            "the first AcknowledgeJob was refused ({}: {}), so a second one asks nothing",
            r.code,
            r.message
        );
    }
    let second = world.acknowledge(&job.id, &job.nonce).await?;
    world
        .put_final(&job.id, "probe: second acknowledge")
        .await?;
    Ok(Found::observed(
        json!({"first": answer_json(&first), "second": answer_json(&second)}),
        format!(
            "the second AcknowledgeJob with the same nonce: {}",
            describe_ack(&second)
        ),
    ))
}

fn describe_ack(a: &Result<Value, crate::world::Refusal>) -> String {
    match a {
        Ok(v) => format!(
            "accepted, status {}",
            v["status"].as_str().unwrap_or("(none)")
        ),
        Err(_) => answer_text(a),
    }
}

async fn result_before_acknowledge(world: &World, run: Run) -> Result<Found> {
    let job = world.test_job(&run).await?.job;
    let put = world
        .put_success(&job.id, None, 100, "probe: result before acknowledge")
        .await?;
    if put.is_err() {
        // Refused as expected: finish the job properly.
        if world.acknowledge(&job.id, &job.nonce).await?.is_ok() {
            world.put_final(&job.id, "probe: after acknowledge").await?;
        }
    }
    Ok(Found::observed(
        json!({"refused": put.is_err(), "put": answer_json(&put)}),
        format!(
            "PutJobSuccessResult before AcknowledgeJob: {}",
            answer_text(&put)
        ),
    ))
}

const TOKEN: &str = "job-sim-probe-continue-1";

async fn continuation_delay(world: &mut World, plan: &Plan) -> Result<Found> {
    let run = world.start_run().await?;
    let out = continuation_on(world, plan, &run).await;
    world.end_run(&run).await;
    out
}

async fn continuation_on(world: &World, plan: &Plan, run: &Run) -> Result<Found> {
    let job = world.test_job(run).await?.job;
    if let Err(r) = world.acknowledge(&job.id, &job.nonce).await? {
        bail!("AcknowledgeJob was refused: {}: {}", r.code, r.message);
    }
    let (put, cause) =
        crate::measure::stamped(world.put_success(&job.id, Some(TOKEN), 50, "probe: continuing"))
            .await;
    if let Err(r) = put? {
        bail!(
            "PutJobSuccessResult with a continuation token was refused: {}: {}",
            r.code,
            r.message
        );
    }
    let limit = real_of(plan.continuation_limit, plan.scale);
    let Some(next) = world.wait_job(&world.test_type()?, run, limit).await? else {
        return Ok(Found {
            status: Status::NotSeen,
            measured: None,
            observed: Some(json!({"not_seen_within_s": secs(plan.continuation_limit)})),
            detail: format!(
                "no continuation job within {} (server time, --continuation-limit)",
                humantime::format_duration(plan.continuation_limit)
            ),
        });
    };
    let measured = Interval::bracket(cause, next.last_miss, next.hit, plan.scale);
    let carried = next.job.continuation_token.as_deref() == Some(TOKEN);
    if world
        .acknowledge(&next.job.id, &next.job.nonce)
        .await?
        .is_ok()
    {
        world.put_final(&next.job.id, "probe: done").await?;
    }
    Ok(Found {
        status: Status::Measured,
        measured: Some(measured),
        observed: Some(json!({
            "new_job": next.job.id != job.id,
            "token_carried": carried,
        })),
        detail: format!(
            "the continuation job could be polled {} after the success (between {} and {}, server time); it {} the token",
            fmt_s(measured.seconds),
            fmt_s(measured.lower_s),
            fmt_s(measured.upper_s),
            if carried { "carries" } else { "does not carry" }
        ),
    })
}

async fn put_after_abandon(world: &World, run: Run) -> Result<Found> {
    let job = world.test_job(&run).await?.job;
    if let Err(r) = world.acknowledge(&job.id, &job.nonce).await? {
        bail!("AcknowledgeJob was refused: {}: {}", r.code, r.message);
    }
    if let Err(r) = world.stop(&run, true).await? {
        bail!(
            "StopPipelineExecution(abandon = true) was refused: {}: {}",
            r.code,
            r.message
        );
    }
    // AWS stops asynchronously: put once the execution no longer says InProgress or Stopping.
    let deadline = Instant::now() + world.setup.job_wait;
    let status = loop {
        let s = world.status(&run).await?;
        let settled = !matches!(
            s,
            Some(
                aws_sdk_codepipeline::types::PipelineExecutionStatus::InProgress
                    | aws_sdk_codepipeline::types::PipelineExecutionStatus::Stopping
            )
        );
        if settled || Instant::now() >= deadline {
            break s;
        }
        tokio::time::sleep(world.setup.poll_interval).await;
    };
    let put = world
        .put_success(&job.id, None, 100, "probe: after abandon")
        .await?;
    let status = status.map(|s| s.as_str().to_string());
    Ok(Found::observed(
        json!({"accepted": put.is_ok(), "execution_status": status, "put": answer_json(&put)}),
        format!(
            "PutJobSuccessResult on the job of an abandoned action (execution {}): {}",
            status.as_deref().unwrap_or("(no status)"),
            answer_text(&put)
        ),
    ))
}

async fn retried_identical_put(world: &World, run: Run) -> Result<Found> {
    let job = world.test_job(&run).await?.job;
    if let Err(r) = world.acknowledge(&job.id, &job.nonce).await? {
        bail!("AcknowledgeJob was refused: {}: {}", r.code, r.message);
    }
    let summary = "probe: the same final success twice";
    let first = world.put_success(&job.id, None, 100, summary).await?;
    if let Err(r) = &first {
        bail!(
            "the first PutJobSuccessResult was refused ({}: {}), so a retry asks nothing",
            r.code,
            r.message
        );
    }
    let second = world.put_success(&job.id, None, 100, summary).await?;
    Ok(Found::observed(
        json!({"first": answer_json(&first), "second": answer_json(&second)}),
        format!(
            "the same final PutJobSuccessResult again: {}",
            answer_text(&second)
        ),
    ))
}
