//! What the probes run in: two custom action types of the run's own (a Source type the probe answers at
//! once, and the Test type it probes), a two-stage pipeline using them, one pipeline execution per probe,
//! and the cleanup that deletes all of it. Everything goes through the public CodePipeline API.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactDetails, ArtifactStore,
    ArtifactStoreType, ExecutionDetails, FailureDetails, FailureType, OutputArtifact,
    PipelineDeclaration, PipelineExecutionStatus, PipelineType, StageDeclaration,
};
use serde_json::{Value, json};

use crate::measure::{Stamp, stamped};
use crate::report::CleanupStep;

/// The provider name of the probe's custom action types (the IAM policy in `docs/probe.md` names it).
pub const PROVIDER: &str = "JobSimProbe";
/// The pipeline name's prefix (the IAM policy in `docs/probe.md` names it).
pub const PIPELINE_PREFIX: &str = "job-sim-probe-";

/// A refused call: the service error's code and message.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The error code, e.g. `InvalidJobStateException`.
    pub code: String,
    /// Its message.
    pub message: String,
}

/// The JSON form of a call's answer: `{"accepted": true, ...extra}` or
/// `{"accepted": false, "error": CODE, "message": ...}`.
pub fn answer_json(answer: &Result<Value, Refusal>) -> Value {
    match answer {
        Ok(extra) => {
            let mut v = json!({"accepted": true});
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            v
        }
        Err(r) => json!({"accepted": false, "error": r.code, "message": r.message}),
    }
}

/// One sentence for an answer: `accepted` or `refused: CODE: message`.
pub fn answer_text(answer: &Result<Value, Refusal>) -> String {
    match answer {
        Ok(_) => "accepted".to_string(),
        Err(r) => format!("refused with {}: {}", r.code, r.message),
    }
}

/// Splits a call's result into the service's answer (accepted, or refused with an error code) and a
/// failure to get an answer at all (timeout, connection, credentials), which is an error of the probe.
pub fn answered<T, E, R>(what: &str, r: Result<T, SdkError<E, R>>) -> Result<Result<T, Refusal>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(SdkError::ServiceError(e)) => {
            let err = e.err();
            Ok(Err(Refusal {
                code: err.code().unwrap_or("<no code>").to_string(),
                message: err.message().unwrap_or_default().to_string(),
            }))
        }
        Err(e) => Err(anyhow!("{what}: no answer: {}", DisplayErrorContext(&e))),
    }
}

/// A call that must succeed for the probe to go on.
fn must<T, E, R>(what: &str, r: Result<T, SdkError<E, R>>) -> Result<T>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match answered(what, r)? {
        Ok(v) => Ok(v),
        Err(r) => bail!("{what} was refused: {}: {}", r.code, r.message),
    }
}

/// A job of the probed type, as a poll handed it out.
#[derive(Clone, Debug)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// The nonce of this dispatch.
    pub nonce: String,
    /// `data.continuationToken`, if any.
    pub continuation_token: Option<String>,
}

/// One pipeline execution a probe drives.
#[derive(Clone, Debug)]
pub struct Run {
    /// Its pipelineExecutionId.
    pub id: String,
}

/// What waiting for a job saw: the job and the poll that returned it, and the last poll before that
/// which did not.
pub struct Seen {
    /// The job.
    pub job: Job,
    /// The poll that returned it.
    pub hit: Stamp,
    /// The last poll that returned no job of the run.
    pub last_miss: Option<Stamp>,
}

/// How the run is set up (from the command line).
#[derive(Clone, Debug)]
pub struct Setup {
    /// The pipeline's service role.
    pub role_arn: String,
    /// The pipeline's artifact bucket.
    pub artifact_bucket: String,
    /// Real time between polls.
    pub poll_interval: Duration,
    /// Real time to wait for a job to appear after starting a run or answering its source job.
    pub job_wait: Duration,
}

/// The action types, the pipeline and the runs of one probe session.
pub struct World {
    /// Sends every probing call once (retries off): a retry would change what is measured.
    pub client: Client,
    /// Setup and cleanup calls, with the SDK's standard retries.
    pub admin: Client,
    /// How the run is set up.
    pub setup: Setup,
    /// The version both action types are created under (fresh: a deleted custom type's version can
    /// never be used again).
    pub version: String,
    /// The pipeline's name.
    pub pipeline: String,
    created_types: Vec<ActionTypeId>,
    created_pipeline: bool,
    runs: Vec<String>,
}

/// A version never used before: base-36 of the Unix time in seconds plus two base-36 digits of its
/// sub-second part (8 characters; the model allows 9).
pub fn fresh_version(now: SystemTime) -> String {
    let d = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let mut v = base36(d.as_secs(), 6);
    v.push_str(&base36(u64::from(d.subsec_millis()) * 1296 / 1000, 2));
    v
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 || out.len() < width {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn type_id(category: ActionCategory, version: &str) -> Result<ActionTypeId> {
    ActionTypeId::builder()
        .category(category)
        .owner(ActionOwner::Custom)
        .provider(PROVIDER)
        .version(version)
        .build()
        .context("action type id")
}

/// `Category/Owner/Provider/Version`.
pub fn describe(t: &ActionTypeId) -> String {
    format!(
        "{}/{}/{}/{}",
        t.category().as_str(),
        t.owner().as_str(),
        t.provider(),
        t.version()
    )
}

impl World {
    /// A world for `version` (nothing is created yet: see [`World::create`]).
    pub fn new(client: Client, admin: Client, setup: Setup, version: String) -> Self {
        World {
            client,
            admin,
            setup,
            pipeline: format!("{PIPELINE_PREFIX}{version}"),
            version,
            created_types: Vec::new(),
            created_pipeline: false,
            runs: Vec::new(),
        }
    }

    /// The Source type the probe answers at once.
    pub fn source_type(&self) -> Result<ActionTypeId> {
        type_id(ActionCategory::Source, &self.version)
    }

    /// The Test type the probes are about.
    pub fn test_type(&self) -> Result<ActionTypeId> {
        type_id(ActionCategory::Test, &self.version)
    }

    /// Creates both custom action types and the pipeline.
    pub async fn create(&mut self) -> Result<()> {
        for (t, outputs) in [(self.source_type()?, 1), (self.test_type()?, 0)] {
            let r = self
                .admin
                .create_custom_action_type()
                .category(t.category().clone())
                .provider(PROVIDER)
                .version(&self.version)
                .input_artifact_details(
                    ArtifactDetails::builder()
                        .minimum_count(0)
                        .maximum_count(0)
                        .build(),
                )
                .output_artifact_details(
                    ArtifactDetails::builder()
                        .minimum_count(outputs)
                        .maximum_count(outputs)
                        .build(),
                )
                .send()
                .await;
            must(&format!("CreateCustomActionType {}", describe(&t)), r)?;
            self.created_types.push(t);
        }
        let action = |name: &str, t: ActionTypeId, output: Option<&str>| {
            let mut a = ActionDeclaration::builder()
                .name(name)
                .action_type_id(t)
                .run_order(1);
            if let Some(o) = output {
                a = a.output_artifacts(OutputArtifact::builder().name(o).build()?);
            }
            a.build()
        };
        let stage = |name: &str, a: ActionDeclaration| {
            StageDeclaration::builder().name(name).actions(a).build()
        };
        let declaration = PipelineDeclaration::builder()
            .name(&self.pipeline)
            .role_arn(&self.setup.role_arn)
            .pipeline_type(PipelineType::V1)
            .artifact_store(
                ArtifactStore::builder()
                    .r#type(ArtifactStoreType::S3)
                    .location(&self.setup.artifact_bucket)
                    .build()?,
            )
            .stages(stage(
                "Source",
                action(
                    "ProbeSource",
                    self.source_type()?,
                    Some("ProbeSourceOutput"),
                )?,
            )?)
            .stages(stage(
                "Probe",
                action("ProbeTest", self.test_type()?, None)?,
            )?)
            .build()
            .context("pipeline declaration")?;
        let r = self
            .admin
            .create_pipeline()
            .pipeline(declaration)
            .send()
            .await;
        must(&format!("CreatePipeline {}", self.pipeline), r)?;
        self.created_pipeline = true;
        Ok(())
    }

    /// Starts a pipeline execution and answers its Source job (success, final), so that its Test job comes.
    pub async fn start_run(&mut self) -> Result<Run> {
        let r = self
            .client
            .start_pipeline_execution()
            .name(&self.pipeline)
            .send()
            .await;
        let out = must(&format!("StartPipelineExecution {}", self.pipeline), r)?;
        let id = out
            .pipeline_execution_id()
            .ok_or_else(|| anyhow!("StartPipelineExecution answered no pipelineExecutionId"))?
            .to_string();
        self.runs.push(id.clone());
        let run = Run { id };
        let source = self.source_type()?;
        let seen = self
            .wait_job(&source, &run, self.setup.job_wait)
            .await?
            .ok_or_else(|| {
                anyhow!(
                    "no Source job for pipeline execution {} within {} (real time, --job-wait)",
                    run.id,
                    humantime::format_duration(self.setup.job_wait)
                )
            })?;
        let job = seen.job;
        let r = self
            .client
            .acknowledge_job()
            .job_id(&job.id)
            .nonce(&job.nonce)
            .send()
            .await;
        must("AcknowledgeJob (Source)", r)?;
        self.put_final(&job.id, "source").await?;
        Ok(run)
    }

    /// One poll of `t`: the job of `run` it returned, if any. Jobs of other executions (the execution
    /// AWS starts when a pipeline is created, a run a failed probe left) are acknowledged and failed, so
    /// that they leave the stages free.
    pub async fn poll(&self, t: &ActionTypeId, run: &Run) -> Result<(Option<Job>, Stamp)> {
        let (r, stamp) = stamped(
            self.client
                .poll_for_jobs()
                .action_type_id(t.clone())
                .max_batch_size(10)
                .send(),
        )
        .await;
        let out = match answered("PollForJobs", r)? {
            Ok(out) => out,
            // Throttled: as good as an empty poll; the next one is an interval away.
            Err(r) if r.code.contains("Throttl") => return Ok((None, stamp)),
            Err(r) => bail!("PollForJobs was refused: {}: {}", r.code, r.message),
        };
        let mut mine = None;
        for j in out.jobs() {
            let (Some(id), Some(nonce)) = (j.id(), j.nonce()) else {
                continue;
            };
            let data = j.data();
            let execution = data
                .and_then(|d| d.pipeline_context())
                .and_then(|c| c.pipeline_execution_id());
            if execution == Some(run.id.as_str()) && mine.is_none() {
                mine = Some(Job {
                    id: id.to_string(),
                    nonce: nonce.to_string(),
                    continuation_token: data
                        .and_then(|d| d.continuation_token())
                        .map(str::to_string),
                });
            } else {
                self.dispose(id, nonce).await;
            }
        }
        Ok((mine, stamp))
    }

    /// Acknowledges and fails a stray job (best effort).
    async fn dispose(&self, id: &str, nonce: &str) {
        let _ = self
            .admin
            .acknowledge_job()
            .job_id(id)
            .nonce(nonce)
            .send()
            .await;
        let _ = self.put_failure(&self.admin, id).await;
    }

    /// Polls `t` every poll interval until a job of `run` comes or `limit` (real time) passes.
    pub async fn wait_job(
        &self,
        t: &ActionTypeId,
        run: &Run,
        limit: Duration,
    ) -> Result<Option<Seen>> {
        let deadline = Instant::now() + limit;
        let mut last_miss = None;
        loop {
            let (job, stamp) = self.poll(t, run).await?;
            if let Some(job) = job {
                return Ok(Some(Seen {
                    job,
                    hit: stamp,
                    last_miss,
                }));
            }
            last_miss = Some(stamp);
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(self.setup.poll_interval.min(deadline - Instant::now())).await;
        }
    }

    /// Waits for the Test job of `run` (within `--job-wait`), or fails saying so.
    pub async fn test_job(&self, run: &Run) -> Result<Seen> {
        self.wait_job(&self.test_type()?, run, self.setup.job_wait)
            .await?
            .ok_or_else(|| {
                anyhow!(
                    "no Test job for pipeline execution {} within {} (real time, --job-wait)",
                    run.id,
                    humantime::format_duration(self.setup.job_wait)
                )
            })
    }

    /// AcknowledgeJob, once: the status it answered or the refusal.
    pub async fn acknowledge(&self, job_id: &str, nonce: &str) -> Result<Result<Value, Refusal>> {
        let r = self
            .client
            .acknowledge_job()
            .job_id(job_id)
            .nonce(nonce)
            .send()
            .await;
        Ok(answered("AcknowledgeJob", r)?
            .map(|o| json!({"status": o.status().map(|s| s.as_str().to_string())})))
    }

    /// PutJobSuccessResult, once.
    pub async fn put_success(
        &self,
        job_id: &str,
        continuation_token: Option<&str>,
        percent: i32,
        summary: &str,
    ) -> Result<Result<Value, Refusal>> {
        let r = self
            .client
            .put_job_success_result()
            .job_id(job_id)
            .set_continuation_token(continuation_token.map(str::to_string))
            .execution_details(
                ExecutionDetails::builder()
                    .summary(summary)
                    .external_execution_id(format!("probe-{job_id}"))
                    .percent_complete(percent)
                    .build(),
            )
            .send()
            .await;
        Ok(answered("PutJobSuccessResult", r)?.map(|_| json!({})))
    }

    /// A final success that must be accepted.
    pub async fn put_final(&self, job_id: &str, summary: &str) -> Result<()> {
        match self.put_success(job_id, None, 100, summary).await? {
            Ok(_) => Ok(()),
            Err(r) => bail!(
                "PutJobSuccessResult (final) was refused: {}: {}",
                r.code,
                r.message
            ),
        }
    }

    /// PutJobFailureResult with `client`, once.
    pub async fn put_failure(&self, client: &Client, job_id: &str) -> Result<Result<(), Refusal>> {
        let r = client
            .put_job_failure_result()
            .job_id(job_id)
            .failure_details(
                FailureDetails::builder()
                    .r#type(FailureType::JobFailed)
                    .message(
                        "job-sim probe: this job was not part of a probe, or its probe is over",
                    )
                    .build()
                    .context("failure details")?,
            )
            .send()
            .await;
        Ok(answered("PutJobFailureResult", r)?.map(|_| ()))
    }

    /// StopPipelineExecution with `abandon`, once.
    pub async fn stop(&self, run: &Run, abandon: bool) -> Result<Result<Value, Refusal>> {
        let r = self
            .client
            .stop_pipeline_execution()
            .pipeline_name(&self.pipeline)
            .pipeline_execution_id(&run.id)
            .abandon(abandon)
            .reason("job-sim probe")
            .send()
            .await;
        Ok(answered("StopPipelineExecution", r)?.map(|_| json!({})))
    }

    /// The execution's status (GetPipelineExecution).
    pub async fn status(&self, run: &Run) -> Result<Option<PipelineExecutionStatus>> {
        let r = self
            .admin
            .get_pipeline_execution()
            .pipeline_name(&self.pipeline)
            .pipeline_execution_id(&run.id)
            .send()
            .await;
        Ok(must("GetPipelineExecution", r)?
            .pipeline_execution()
            .and_then(|p| p.status())
            .cloned())
    }

    /// Ends `run` if it is still going (stop and abandon), so that the next probe's run gets the stages
    /// (best effort: a probe that failed half-way leaves its run here).
    pub async fn end_run(&self, run: &Run) {
        let going = matches!(
            self.status(run).await,
            Ok(Some(
                PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
            ))
        );
        if going {
            let _ = self
                .admin
                .stop_pipeline_execution()
                .pipeline_name(&self.pipeline)
                .pipeline_execution_id(&run.id)
                .abandon(true)
                .reason("job-sim probe: cleanup")
                .send()
                .await;
        }
    }

    /// Deletes what [`World::create`] made: the runs still going are stopped, then the pipeline and the
    /// action types are deleted. Every step is tried; an endpoint without the operation is reported as
    /// `not-supported`, not as a failure of the probe.
    pub async fn cleanup(&mut self) -> Vec<CleanupStep> {
        let mut steps = Vec::new();
        for id in std::mem::take(&mut self.runs) {
            self.end_run(&Run { id }).await;
        }
        if std::mem::take(&mut self.created_pipeline) {
            let r = self
                .admin
                .delete_pipeline()
                .name(&self.pipeline)
                .send()
                .await;
            steps.push(step(format!("DeletePipeline {}", self.pipeline), r));
        }
        for t in std::mem::take(&mut self.created_types).into_iter().rev() {
            let r = self
                .admin
                .delete_custom_action_type()
                .category(t.category().clone())
                .provider(t.provider())
                .version(t.version())
                .send()
                .await;
            steps.push(step(format!("DeleteCustomActionType {}", describe(&t)), r));
        }
        steps
    }
}

fn step<T, E, R>(what: String, r: Result<T, SdkError<E, R>>) -> CleanupStep
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match answered(&what, r) {
        Ok(Ok(_)) => CleanupStep {
            what,
            outcome: "deleted",
            error: None,
        },
        Ok(Err(r)) if r.code == "UnknownOperationException" => CleanupStep {
            what,
            outcome: "not-supported",
            error: Some(format!("{}: {}", r.code, r.message)),
        },
        Ok(Err(r)) => CleanupStep {
            what,
            outcome: "failed",
            error: Some(format!("{}: {}", r.code, r.message)),
        },
        Err(e) => CleanupStep {
            what,
            outcome: "failed",
            error: Some(format!("{e:#}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_versions_fit_the_model_and_differ_by_the_millisecond() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_000_000_123);
        let a = fresh_version(t);
        let b = fresh_version(t + Duration::from_millis(10));
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
        assert!(a < fresh_version(t + Duration::from_secs(1)));
    }
}
