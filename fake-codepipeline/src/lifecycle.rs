//! The life of a pipeline execution after it starts: StopPipelineExecution (stop and wait, stop and
//! abandon), results put for jobs of abandoned actions, RetryStageExecution, and ListPipelineExecutions
//! (`docs/protocol.md`: CP-STOP, CP-ABANDONED, CP-RETRY, and "Operations").
//!
//! The scenario driver and tests use the same rules through [`Core::stop_execution`] and
//! [`Core::retry_stage`], which name a run by an action execution's label (`e-1`) or a
//! `pipelineExecutionId`.

use serde_json::{Value, json};
use sim_core::{NewEvent, Rule, Severity, SimTime};

use crate::engine::Core;
use crate::error::ApiError;
use crate::pipelines::{pipeline_not_found, stage_status};
use crate::state::{Job, PipelineExecution, StopRequest, World};
use crate::types::{AbandonedResults, ExecutionStatus, JobStatus, RetryMode};

/// The longest `reason` StopPipelineExecution takes (the model's `StopPipelineExecutionReason`).
pub const STOP_REASON_MAX: usize = 200;

/// The most summaries one ListPipelineExecutions page holds, and the default (the model's `MaxResults`:
/// 1..100, "Default value is 100").
pub const MAX_RESULTS: usize = 100;

/// What a retry started (see [`Core::retry_stage`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Retried {
    /// The pipeline.
    pub pipeline: String,
    /// The pipeline execution, InProgress again (the same id: a retry is no new run).
    pub pipeline_execution_id: String,
    /// The stage retried.
    pub stage: String,
    /// Labels of the new action executions started at once (for `ALL_ACTIONS`, those of the stage's first
    /// runOrder group; later groups start as the earlier ones succeed). Each has a new
    /// `actionExecutionId` and a first job without a continuation token.
    pub executions: Vec<String>,
}

/// A run named by the public API: its pipeline, its id, and the stage of the action execution it was
/// named by, if it was.
struct Run {
    pipeline: String,
    id: String,
    stage: Option<String>,
}

impl Core {
    fn resolve_run(w: &World, label_or_id: &str) -> Result<Run, ApiError> {
        if let Some(e) = w.executions.get(label_or_id) {
            return Ok(Run {
                pipeline: e.pipeline.clone(),
                id: e.pipeline_execution_id.clone(),
                stage: Some(e.stage.clone()),
            });
        }
        if let Some(pe) = w.pipeline_executions.get(label_or_id) {
            return Ok(Run {
                pipeline: pe.pipeline.clone(),
                id: pe.id.clone(),
                stage: None,
            });
        }
        Err(ApiError::validation(format!(
            "`{label_or_id}` is neither the label of an action execution (e-1) nor a pipelineExecutionId"
        )))
    }

    // ----- StopPipelineExecution (CP-STOP) -----

    /// StopPipelineExecution as the API takes it: stop `pipeline_execution_id` of `pipeline`, waiting for
    /// its in-progress actions to finish (`abandon` false: the run is Stopping, then Stopped) or
    /// abandoning them (`abandon` true: they become Abandoned, their open jobs end, and the run is
    /// Stopped at once). Answers `{"pipelineExecutionId"}`.
    pub fn stop_pipeline_execution(
        &self,
        caller: Option<&str>,
        pipeline: &str,
        pipeline_execution_id: &str,
        abandon: bool,
        reason: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.with_world(|w| {
            self.stop_in(w, caller, pipeline, pipeline_execution_id, abandon, reason)?;
            Ok(json!({"pipelineExecutionId": pipeline_execution_id}))
        })
    }

    /// Stops the pipeline execution that `label_or_id` names: an action execution's label (`e-1`, its
    /// run is stopped) or a `pipelineExecutionId`. The rules and errors are StopPipelineExecution's
    /// (CP-STOP); an unknown name is a `ValidationException` naming it. Returns the
    /// `pipelineExecutionId`.
    pub fn stop_execution(
        &self,
        label_or_id: &str,
        abandon: bool,
        reason: Option<&str>,
    ) -> Result<String, ApiError> {
        self.with_world(|w| {
            let run = Self::resolve_run(w, label_or_id)?;
            self.stop_in(w, None, &run.pipeline, &run.id, abandon, reason)?;
            Ok(run.id)
        })
    }

    fn stop_in(
        &self,
        w: &mut World,
        caller: Option<&str>,
        pipeline: &str,
        pe_id: &str,
        abandon: bool,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        if !w.pipelines.contains_key(pipeline) {
            return Err(pipeline_not_found(pipeline));
        }
        if let Some(r) = reason
            && r.chars().count() > STOP_REASON_MAX
        {
            return Err(ApiError::validation(format!(
                "reason is {} characters long; StopPipelineExecution takes at most {STOP_REASON_MAX}",
                r.chars().count()
            )));
        }
        // The model gives StopPipelineExecution no PipelineExecutionNotFoundException: an unknown run is
        // one that cannot be stopped.
        let pe = w
            .pipeline_executions
            .get(pe_id)
            .filter(|pe| pe.pipeline == pipeline)
            .ok_or_else(|| {
                ApiError::new(
                    "PipelineExecutionNotStoppableException",
                    format!(
                        "Pipeline execution {pe_id} of pipeline {pipeline} was not found, so it cannot be stopped"
                    ),
                )
                .rule(Rule::CpStop)
            })?;
        let escalation = match (pe.status, &pe.stop) {
            (ExecutionStatus::InProgress, _) => false,
            (ExecutionStatus::Stopping, Some(stop)) if !stop.abandon && abandon => true,
            (ExecutionStatus::Stopping, Some(stop)) => {
                let how = if stop.abandon {
                    "stop and abandon"
                } else {
                    "stop and wait"
                };
                return Err(ApiError::new(
                    "DuplicatedStopRequestException",
                    format!(
                        "Pipeline execution {pe_id} of pipeline {pipeline} is already Stopping ({how} requested at {}); \
                         the request cannot be made again{}",
                        self.stamp(stop.at),
                        if stop.abandon { "" } else { ", but it can be stopped with abandon" }
                    ),
                )
                .rule(Rule::CpStop));
            }
            (status, _) => {
                return Err(ApiError::new(
                    "PipelineExecutionNotStoppableException",
                    format!(
                        "Pipeline execution {pe_id} of pipeline {pipeline} is {status}: only an execution in progress can be stopped"
                    ),
                )
                .rule(Rule::CpStop));
            }
        };
        let now = self.now();
        let running: Vec<String> = pe
            .actions
            .values()
            .filter(|l| {
                w.executions
                    .get(*l)
                    .is_some_and(|e| e.status == ExecutionStatus::InProgress)
            })
            .cloned()
            .collect();
        let pe = w.pipeline_executions.get_mut(pe_id).expect("found above");
        pe.status = ExecutionStatus::Stopping;
        pe.updated = now;
        pe.stop = Some(StopRequest {
            abandon,
            reason: reason.map(str::to_string),
            at: now,
        });
        let how = match (abandon, escalation) {
            (false, _) => "stop and wait",
            (true, false) => "stop and abandon",
            (true, true) => "stop and abandon (after stop and wait)",
        };
        let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        let what = match (abandon, running.is_empty()) {
            (_, true) => "no action in progress; Stopped".to_string(),
            (false, false) => format!("Stopping until {} finishes", running.join(", ")),
            (true, false) => format!("abandoning {}", running.join(", ")),
        };
        let mut event = NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::StopRequested)
            .replica_opt(caller)
            .rule(Rule::CpStop, Severity::Info)
            .detail(format!(
                "pipeline {pipeline} execution {pe_id}: {how}{why}: {what}"
            ))
            .data(json!({
                "pipeline": pipeline,
                "pipelineExecutionId": pe_id,
                "abandon": abandon,
                "reason": reason,
                "inProgress": running,
            }));
        if let Some(first) = running.first() {
            event = event.execution(first);
        }
        w.emit(event);
        if abandon {
            for label in &running {
                self.abandon_action(w, label, now);
            }
        }
        // Ends the run as Stopped once nothing of it is in progress (at once for an abandon).
        self.advance_pipeline(w, pe_id);
        Ok(())
    }

    /// Stop and abandon: the action execution is Abandoned and each of its open jobs ends (Failed, marked
    /// abandoned), leaving the queue, its timers and the worker holding it; no job follows.
    pub(crate) fn abandon_action(&self, w: &mut World, label: &str, at: SimTime) {
        let Some(exec) = w.executions.get(label) else {
            return;
        };
        if exec.status != ExecutionStatus::InProgress {
            return;
        }
        for id in exec.jobs.clone() {
            let Some(job) = w.jobs.get_mut(&id) else {
                continue;
            };
            if job.status.is_terminal() {
                continue;
            }
            job.set_status(JobStatus::Failed, at);
            job.abandoned = Some(at);
            for t in [job.deadline_timer.take(), job.lease_timer.take()]
                .into_iter()
                .flatten()
            {
                self.sim.clock.cancel(t);
            }
            w.unqueue(&id);
            self.sim.activity.release_job(&id);
        }
        self.finish_execution(w, label, ExecutionStatus::Abandoned, None);
    }

    /// A result put for a job of an abandoned action execution (CP-ABANDONED): `None` when the job was
    /// not abandoned; otherwise the answer the `abandoned_results` setting gives.
    pub(crate) fn abandoned_result(
        &self,
        job: &Job,
        caller: Option<&str>,
        operation: &str,
    ) -> Option<Result<(), ApiError>> {
        let at = job.abandoned?;
        match self.settings.abandoned_results {
            AbandonedResults::Refuse => {
                let err = ApiError::invalid_job_state(format!(
                    "Job {} belongs to action execution {}, which was abandoned at {} when its pipeline execution \
                     was stopped with abandon; a result is no longer accepted",
                    job.id,
                    job.execution,
                    self.stamp(at)
                ))
                .rule(Rule::CpAbandoned);
                // The worker could not know: a warning, not a violation.
                self.record_refusal(job, caller, operation, &err, Severity::Warning);
                Some(Err(err))
            }
            AbandonedResults::Accept => {
                self.defer(
                    NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ResultDiscarded)
                        .execution(&job.execution)
                        .job(&job.id)
                        .replica_opt(caller)
                        .rule(Rule::CpAbandoned, Severity::Info)
                        .detail(format!(
                            "{operation} on job {} of {} accepted and discarded: the action execution was abandoned at {}",
                            job.number,
                            job.execution,
                            self.stamp(at)
                        ))
                        .data(json!({"operation": operation, "number": job.number})),
                );
                Some(Ok(()))
            }
        }
    }

    // ----- RetryStageExecution (CP-RETRY) -----

    /// RetryStageExecution as the API takes it. Answers `{"pipelineExecutionId"}`.
    pub fn retry_stage_execution(
        &self,
        caller: Option<&str>,
        pipeline: &str,
        stage: &str,
        pipeline_execution_id: &str,
        mode: RetryMode,
    ) -> Result<Value, ApiError> {
        self.with_world(|w| self.retry_in(w, caller, pipeline, stage, pipeline_execution_id, mode))
            .map(|r| json!({"pipelineExecutionId": r.pipeline_execution_id}))
    }

    /// Retries a stage of the pipeline execution that `label_or_id` names: an action execution's label
    /// (`e-1`: its run, and by default its stage) or a `pipelineExecutionId` (by default the stage the run
    /// ended in). `stage` names another stage. Each action retried runs again as a new action execution
    /// (a new label `e-1-retry-1`, a new `actionExecutionId`, a first job without a continuation token)
    /// in the same pipeline execution, which is InProgress again. The rules and errors are
    /// RetryStageExecution's (CP-RETRY); an unknown name is a `ValidationException` naming it.
    pub fn retry_stage(
        &self,
        label_or_id: &str,
        stage: Option<&str>,
        mode: RetryMode,
    ) -> Result<Retried, ApiError> {
        self.with_world(|w| {
            let run = Self::resolve_run(w, label_or_id)?;
            let stage = match stage.map(str::to_string).or(run.stage) {
                Some(s) => s,
                None => {
                    let pe = &w.pipeline_executions[&run.id];
                    pe.stages
                        .get(pe.stage)
                        .map(|s| s.name.clone())
                        .ok_or_else(|| {
                            ApiError::new(
                                "StageNotRetryableException",
                                format!(
                                    "Pipeline execution {} of pipeline {} is not in any stage ({})",
                                    run.id, run.pipeline, pe.status
                                ),
                            )
                            .rule(Rule::CpRetry)
                        })?
                }
            };
            self.retry_in(w, None, &run.pipeline, &stage, &run.id, mode)
        })
    }

    fn retry_in(
        &self,
        w: &mut World,
        caller: Option<&str>,
        pipeline: &str,
        stage: &str,
        pe_id: &str,
        mode: RetryMode,
    ) -> Result<Retried, ApiError> {
        // The run's own version of the pipeline (an update does not change a run).
        let stages = w
            .pipeline_executions
            .get(pe_id)
            .filter(|pe| pe.pipeline == pipeline)
            .map(|pe| pe.stages.clone())
            .or_else(|| w.pipelines.get(pipeline).map(|p| p.stages.clone()))
            .ok_or_else(|| pipeline_not_found(pipeline))?;
        let stage_index = stages.iter().position(|s| s.name == stage).ok_or_else(|| {
            ApiError::new(
                "StageNotFoundException",
                format!(
                    "Pipeline {pipeline} has no stage named '{stage}'; its stages are {}",
                    stages
                        .iter()
                        .map(|s| format!("'{}'", s.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let not_retryable =
            |m: String| ApiError::new("StageNotRetryableException", m).rule(Rule::CpRetry);
        // The model gives RetryStageExecution no PipelineExecutionNotFoundException.
        let pe = w
            .pipeline_executions
            .get(pe_id)
            .filter(|pe| pe.pipeline == pipeline)
            .ok_or_else(|| {
                not_retryable(format!(
                    "Pipeline execution {pe_id} of pipeline {pipeline} was not found"
                ))
            })?;
        let runs = w.runs_of(pipeline);
        let position = runs.iter().position(|id| id == pe_id);
        if let Some(later) = position.and_then(|pos| {
            runs[pos + 1..]
                .iter()
                .filter_map(|id| w.pipeline_executions.get(id))
                .find(|l| l.actions.keys().any(|(s, _)| s == stage))
        }) {
            return Err(ApiError::new(
                "NotLatestPipelineExecutionException",
                format!(
                    "Stage '{stage}' of pipeline {pipeline} ran in a later pipeline execution, {}; {pe_id} is out of date",
                    later.id
                ),
            )
            .rule(Rule::CpRetry));
        }
        match pe.status {
            ExecutionStatus::Failed | ExecutionStatus::Stopped => {}
            status => {
                return Err(not_retryable(format!(
                    "Pipeline execution {pe_id} of pipeline {pipeline} is {status}: only a Failed or Stopped execution can be retried"
                )));
            }
        }
        if pe.stage != stage_index {
            let ended = stages.get(pe.stage).map_or("-", |s| s.name.as_str());
            return Err(not_retryable(format!(
                "Pipeline execution {pe_id} ended in stage '{ended}', not '{stage}': only the stage where it failed or stopped can be retried"
            )));
        }
        let st = &stages[stage_index];
        // The stage's actions that ran in this run, with their latest execution.
        let current: Vec<(String, String, ExecutionStatus)> = st
            .actions
            .iter()
            .filter_map(|a| {
                let label = pe.actions.get(&(stage.to_string(), a.name.clone()))?;
                let e = w.executions.get(label)?;
                Some((a.name.clone(), label.clone(), e.status))
            })
            .collect();
        let targets: Vec<(String, String)> = match mode {
            RetryMode::FailedActions => {
                let t: Vec<(String, String)> = current
                    .iter()
                    .filter(|(_, _, s)| {
                        matches!(s, ExecutionStatus::Failed | ExecutionStatus::Abandoned)
                    })
                    .map(|(a, l, _)| (a.clone(), l.clone()))
                    .collect();
                if t.is_empty() {
                    return Err(not_retryable(format!(
                        "Stage '{stage}' of pipeline execution {pe_id} contains no failed or abandoned actions; \
                         ALL_ACTIONS runs it again from its first action"
                    )));
                }
                t
            }
            RetryMode::AllActions => {
                let running: Vec<&str> = current
                    .iter()
                    .filter(|(_, _, s)| *s == ExecutionStatus::InProgress)
                    .map(|(_, l, _)| l.as_str())
                    .collect();
                if !running.is_empty() {
                    return Err(not_retryable(format!(
                        "Stage '{stage}' of pipeline execution {pe_id} still has actions in progress ({}); \
                         ALL_ACTIONS needs none (FAILED_ACTIONS lets them go on)",
                        running.join(", ")
                    )));
                }
                current
                    .iter()
                    .map(|(a, l, _)| (a.clone(), l.clone()))
                    .collect()
            }
        };
        let before: Vec<String> = current.iter().map(|(_, l, _)| l.clone()).collect();
        let now = self.now();
        let pe = w.pipeline_executions.get_mut(pe_id).expect("found above");
        let was = pe.status;
        for (action, label) in &targets {
            let key = (stage.to_string(), action.clone());
            pe.actions.remove(&key);
            pe.previous.entry(key).or_default().push(label.clone());
        }
        pe.status = ExecutionStatus::InProgress;
        pe.stop = None;
        pe.updated = now;
        if mode == RetryMode::AllActions {
            pe.run_order = None;
        }
        let retried: Vec<&str> = targets.iter().map(|(_, l)| l.as_str()).collect();
        let mut event = NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::StageRetried)
            .replica_opt(caller)
            .rule(Rule::CpRetry, Severity::Info)
            .detail(format!(
                "pipeline {pipeline} execution {pe_id} ({was}): stage {stage} retried ({mode}): {} run again",
                retried.join(", ")
            ))
            .data(json!({
                "pipeline": pipeline,
                "pipelineExecutionId": pe_id,
                "stage": stage,
                "retryMode": mode.as_str(),
                "statusBefore": was.as_str(),
                "retried": retried,
            }));
        if let Some((_, first)) = targets.first() {
            event = event.execution(first);
        }
        w.emit(event);
        if mode == RetryMode::FailedActions {
            for (action, _) in &targets {
                if let Some(decl) = st.actions.iter().find(|d| d.name == *action).cloned() {
                    self.start_declared_action(w, pe_id, pipeline, stage, decl);
                }
            }
        }
        self.advance_pipeline(w, pe_id);
        let executions: Vec<String> = w
            .pipeline_executions
            .get(pe_id)
            .map(|pe| {
                st.actions
                    .iter()
                    .filter_map(|a| pe.actions.get(&(stage.to_string(), a.name.clone())))
                    .filter(|l| !before.contains(l))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Retried {
            pipeline: pipeline.to_string(),
            pipeline_execution_id: pe_id.to_string(),
            stage: stage.to_string(),
            executions,
        })
    }

    // ----- ListPipelineExecutions -----

    /// ListPipelineExecutions: the runs of `pipeline`, newest first, `max_results` (1..100, default 100)
    /// at a time. `next_token` continues from the page that returned it; a token this call never gave for
    /// this pipeline is `InvalidNextTokenException`. `succeeded_in_stage` keeps only runs in which that
    /// stage succeeded.
    pub fn list_pipeline_executions(
        &self,
        pipeline: &str,
        max_results: Option<i64>,
        next_token: Option<&str>,
        succeeded_in_stage: Option<&str>,
    ) -> Result<Value, ApiError> {
        if let Some(m) = max_results
            && !(1..=MAX_RESULTS as i64).contains(&m)
        {
            return Err(ApiError::validation(format!(
                "maxResults {m} is outside 1..{MAX_RESULTS}"
            )));
        }
        let max = max_results.map_or(MAX_RESULTS, |m| m as usize);
        self.with_world(|w| {
            if !w.pipelines.contains_key(pipeline) {
                return Err(pipeline_not_found(pipeline));
            }
            let len = w.pipeline_execution_order.len();
            let end = match next_token {
                None => len,
                Some(t) => decode_token(pipeline, t)
                    .filter(|end| *end <= len)
                    .ok_or_else(|| {
                        ApiError::new(
                            "InvalidNextTokenException",
                            format!(
                                "nextToken '{t}' was not returned by ListPipelineExecutions for pipeline {pipeline}"
                            ),
                        )
                    })?,
            };
            let mut summaries = Vec::new();
            let mut next = None;
            for i in (0..end).rev() {
                let Some(pe) = w
                    .pipeline_executions
                    .get(&w.pipeline_execution_order[i])
                    .filter(|pe| pe.pipeline == pipeline)
                else {
                    continue;
                };
                if let Some(name) = succeeded_in_stage {
                    // By the run's own version of the pipeline.
                    let index = pe.stages.iter().position(|s| s.name == name);
                    let succeeded = index.is_some_and(|i| {
                        i <= pe.stage
                            && stage_status(w, pe, &pe.stages[i], i == pe.stage) == "Succeeded"
                    });
                    if !succeeded {
                        continue;
                    }
                }
                if summaries.len() == max {
                    next = Some(encode_token(pipeline, i + 1));
                    break;
                }
                summaries.push(execution_summary(pe));
            }
            let mut out = json!({"pipelineExecutionSummaries": summaries});
            if let Some(t) = next {
                out["nextToken"] = json!(t);
            }
            Ok(out)
        })
    }
}

/// One `PipelineExecutionSummary`.
fn execution_summary(pe: &PipelineExecution) -> Value {
    let mut v = json!({
        "pipelineExecutionId": pe.id,
        "status": pe.status.as_str(),
        "startTime": pe.started.epoch_seconds(),
        "lastUpdateTime": pe.updated.epoch_seconds(),
        "sourceRevisions": [],
        "trigger": {"triggerType": "StartPipelineExecution"},
        "executionMode": pe.mode.as_str(),
        "executionType": "STANDARD",
    });
    if let Some(stop) = &pe.stop {
        v["stopTrigger"] = match &stop.reason {
            Some(r) => json!({"reason": r}),
            None => json!({}),
        };
    }
    v
}

/// FNV-1a of the pipeline's name and a position: ties a token to the listing that made it.
fn token_check(pipeline: &str, end: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pipeline.bytes().chain([0xff]).chain(end.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A `nextToken`: where the next page starts (the runs started before position `end`, newest first),
/// with a check so that a made-up or another pipeline's token is refused.
fn encode_token(pipeline: &str, end: usize) -> String {
    format!("{end}.{:016x}", token_check(pipeline, end))
}

fn decode_token(pipeline: &str, token: &str) -> Option<usize> {
    let (end, check) = token.split_once('.')?;
    let end: usize = end.parse().ok()?;
    (check == format!("{:016x}", token_check(pipeline, end))).then_some(end)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::engine::{FailureResult, SuccessResult};
    use crate::pipelines::ActionTypeSpec;
    use crate::settings::Settings;
    use crate::types::{ActionTypeId, Owner};

    const KEY: &str = "AKIDUNIT";

    fn custom() -> ActionTypeId {
        "Build/Custom/Unit/1".parse().unwrap()
    }

    /// A fake with the custom type and a pipeline `p`: stage Build (the custom action) then stage Deploy
    /// (a second custom action).
    fn world(settings: Settings) -> Arc<Core> {
        let core = Core::new(sim_core::Sim::manual(), settings);
        core.register_action_type(ActionTypeSpec {
            id: Some(custom()),
            ..Default::default()
        })
        .unwrap();
        let action = |name: &str| json!({"name": name, "actionTypeId": custom().to_json(), "runOrder": 1, "configuration": {}});
        core.create_pipeline(&json!({"pipeline": {"name": "p", "stages": [
            {"name": "Build", "actions": [action("Make")]},
            {"name": "Deploy", "actions": [action("Ship")]},
        ]}}))
        .unwrap();
        core
    }

    fn start(core: &Core) -> String {
        core.start_pipeline_execution("p").unwrap()["pipelineExecutionId"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Polls and acknowledges the next job; its id and token.
    fn take(core: &Core) -> Option<(String, Option<String>)> {
        let d = core
            .poll(Some(KEY), Owner::Custom, &custom(), 1, None)
            .unwrap()
            .pop()?;
        core.acknowledge(Some(KEY), Owner::Custom, &d.job_id, &d.nonce, None)
            .unwrap();
        let token = core.inspect(|w| w.job(&d.job_id).unwrap().continuation_token.clone());
        Some((d.job_id, token))
    }

    fn success(core: &Core, job: &str, token: Option<&str>) -> Result<(), ApiError> {
        core.put_success(
            Some(KEY),
            Owner::Custom,
            job,
            None,
            SuccessResult {
                continuation_token: token.map(str::to_string),
                percent_complete: Some(if token.is_some() { 10 } else { 100 }),
                ..Default::default()
            },
        )
    }

    fn failure(core: &Core, job: &str) {
        core.put_failure(
            Some(KEY),
            Owner::Custom,
            job,
            None,
            FailureResult {
                failure_type: "JobFailed".into(),
                message: "broken".into(),
                external_id: None,
            },
        )
        .unwrap();
    }

    fn status(core: &Core, pe: &str) -> String {
        core.get_pipeline_execution("p", pe).unwrap()["pipelineExecution"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn label_of(core: &Core, job: &str) -> String {
        core.inspect(|w| w.job(job).unwrap().execution.clone())
    }

    fn stage_state(core: &Core, stage: usize) -> Value {
        core.get_pipeline_state("p").unwrap()["stageStates"][stage].clone()
    }

    #[test]
    fn stop_and_wait_lets_the_action_finish_over_its_continuations_then_stops() {
        let core = world(Settings::default());
        let pe = start(&core);
        let (job, _) = take(&core).unwrap();
        let label = label_of(&core, &job);
        core.stop_execution(&label, false, Some("freeze")).unwrap();
        assert_eq!(status(&core, &pe), "Stopping");
        assert_eq!(
            stage_state(&core, 0)["latestExecution"]["status"],
            "Stopping"
        );
        assert_eq!(
            core.execution_status(&label),
            Some(ExecutionStatus::InProgress)
        );
        let again = core.stop_execution(&pe, false, None).unwrap_err();
        assert_eq!(again.type_name, "DuplicatedStopRequestException");
        // The running action goes on: a continuing success gets its continuation job.
        success(&core, &job, Some("t-1")).unwrap();
        core.sim.clock.advance_by(Duration::from_secs(30)).unwrap();
        let (job2, token) = take(&core).expect("the continuation job is offered");
        assert_eq!(token.as_deref(), Some("t-1"));
        success(&core, &job2, None).unwrap();
        assert_eq!(
            core.execution_status(&label),
            Some(ExecutionStatus::Succeeded)
        );
        assert_eq!(status(&core, &pe), "Stopped");
        assert_eq!(
            stage_state(&core, 0)["latestExecution"]["status"],
            "Stopped"
        );
        // Nothing after it starts.
        assert!(take(&core).is_none());
        assert!(stage_state(&core, 1).get("latestExecution").is_none());
        let late = core.stop_execution(&pe, true, None).unwrap_err();
        assert_eq!(late.type_name, "PipelineExecutionNotStoppableException");
        let list = core
            .list_pipeline_executions("p", None, None, None)
            .unwrap();
        assert_eq!(
            list["pipelineExecutionSummaries"][0]["stopTrigger"]["reason"],
            "freeze"
        );
    }

    #[test]
    fn stop_and_abandon_ends_the_jobs_and_refuses_their_results() {
        let core = world(Settings::default());
        let pe = start(&core);
        let (job, _) = take(&core).unwrap();
        success(&core, &job, Some("t-1")).unwrap();
        core.sim.clock.advance_by(Duration::from_secs(30)).unwrap();
        let (job2, _) = take(&core).unwrap();
        let label = label_of(&core, &job2);
        core.stop_pipeline_execution(None, "p", &pe, true, None)
            .unwrap();
        assert_eq!(status(&core, &pe), "Stopped");
        assert_eq!(
            core.execution_status(&label),
            Some(ExecutionStatus::Abandoned)
        );
        let state = stage_state(&core, 0);
        assert_eq!(state["latestExecution"]["status"], "Stopped");
        assert_eq!(
            state["actionStates"][0]["latestExecution"]["status"],
            "Abandoned"
        );
        let err = success(&core, &job2, Some("t-2")).unwrap_err();
        assert_eq!(err.type_name, "InvalidJobStateException");
        assert!(
            err.message.contains("abandoned") && err.message.ends_with("(CP-ABANDONED)"),
            "{}",
            err.message
        );
        core.sim
            .clock
            .advance_by(Duration::from_secs(3600))
            .unwrap();
        assert!(take(&core).is_none(), "no job follows an abandoned action");
        let refused: Vec<_> = core
            .sim
            .events
            .all()
            .into_iter()
            .filter(|e| e.rule.is_some_and(|r| r == "CP-ABANDONED"))
            .collect();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].severity, Severity::Warning);
        assert!(
            core.sim
                .events
                .all()
                .iter()
                .all(|e| e.kind != sim_core::EventKind::JobTimedOut)
        );
    }

    #[test]
    fn abandon_while_a_continuation_waits_for_its_delay_queues_nothing() {
        let core = world(Settings {
            abandoned_results: AbandonedResults::Accept,
            ..Settings::default()
        });
        let pe = start(&core);
        let (job, _) = take(&core).unwrap();
        core.stop_execution(&pe, false, None).unwrap();
        success(&core, &job, Some("t-1")).unwrap();
        // Stop and wait, then abandon: allowed while Stopping.
        core.stop_execution(&pe, true, Some("now")).unwrap();
        assert_eq!(status(&core, &pe), "Stopped");
        core.sim.clock.advance_by(Duration::from_secs(60)).unwrap();
        assert!(take(&core).is_none());
        // `accept`: a late result is answered as accepted and changes nothing.
        let label = label_of(&core, &job);
        let continuation = core.inspect(|w| w.execution(&label).unwrap().jobs[1].clone());
        let jobs = core.inspect(|w| w.execution(&label).unwrap().jobs.len());
        success(&core, &continuation, None).unwrap();
        assert_eq!(
            core.execution_status(&label),
            Some(ExecutionStatus::Abandoned)
        );
        assert_eq!(
            core.inspect(|w| w.execution(&label).unwrap().jobs.len()),
            jobs
        );
        assert!(
            core.sim
                .events
                .all()
                .iter()
                .any(|e| e.kind == sim_core::EventKind::ResultDiscarded)
        );
        let again = core.stop_execution(&pe, true, None).unwrap_err();
        assert_eq!(again.type_name, "PipelineExecutionNotStoppableException");
    }

    #[test]
    fn stop_refuses_unknown_pipelines_runs_and_names() {
        let core = world(Settings::default());
        let pe = start(&core);
        let e = core
            .stop_pipeline_execution(None, "nope", &pe, false, None)
            .unwrap_err();
        assert_eq!(e.type_name, "PipelineNotFoundException");
        let e = core
            .stop_pipeline_execution(
                None,
                "p",
                "00000000-0000-4000-8000-000000000000",
                false,
                None,
            )
            .unwrap_err();
        assert_eq!(e.type_name, "PipelineExecutionNotStoppableException");
        let e = core.stop_execution("e-99", false, None).unwrap_err();
        assert!(e.message.contains("e-99"), "{}", e.message);
        let long = "x".repeat(201);
        let e = core.stop_execution(&pe, false, Some(&long)).unwrap_err();
        assert_eq!(e.type_name, "ValidationException");
    }

    #[test]
    fn retry_failed_actions_runs_a_new_action_execution_in_the_same_run() {
        let core = world(Settings::default());
        let pe = start(&core);
        let (job, _) = take(&core).unwrap();
        let label = label_of(&core, &job);
        let first_id = core.inspect(|w| w.execution(&label).unwrap().aws_id.clone());
        let e = core
            .retry_stage(&label, None, RetryMode::FailedActions)
            .unwrap_err();
        assert_eq!(e.type_name, "StageNotRetryableException");
        failure(&core, &job);
        assert_eq!(status(&core, &pe), "Failed");
        let e = core
            .retry_stage_execution(None, "p", "Nope", &pe, RetryMode::FailedActions)
            .unwrap_err();
        assert_eq!(e.type_name, "StageNotFoundException");
        let e = core
            .retry_stage_execution(None, "p", "Deploy", &pe, RetryMode::FailedActions)
            .unwrap_err();
        assert_eq!(e.type_name, "StageNotRetryableException");
        let r = core
            .retry_stage(&pe, None, RetryMode::FailedActions)
            .unwrap();
        assert_eq!(r.stage, "Build");
        assert_eq!(r.executions, vec![format!("{label}-retry-1")]);
        assert_eq!(status(&core, &pe), "InProgress");
        let new = &r.executions[0];
        let (new_id, attempt, retry_of) = core.inspect(|w| {
            let e = w.execution(new).unwrap();
            (e.aws_id.clone(), e.attempt, e.retry_of.clone())
        });
        assert_ne!(new_id, first_id);
        assert_eq!((attempt, retry_of.as_deref()), (2, Some(label.as_str())));
        let (job2, token) = take(&core).unwrap();
        assert_eq!(label_of(&core, &job2), *new);
        assert_eq!(
            token, None,
            "the retry's first job carries no continuation token"
        );
        let state = stage_state(&core, 0);
        assert_eq!(
            state["actionStates"][0]["latestExecution"]["actionExecutionId"],
            json!(new_id)
        );
        let listed = core.list_action_executions("p", Some(&pe)).unwrap();
        let ids: Vec<&str> = listed["actionExecutionDetails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["actionExecutionId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![new_id.as_str(), first_id.as_str()]);
        success(&core, &job2, None).unwrap();
        // The run goes on to the next stage.
        let (job3, _) = take(&core).unwrap();
        let label3 = label_of(&core, &job3);
        assert_eq!(
            core.inspect(|w| w.execution(&label3).unwrap().stage.clone()),
            "Deploy"
        );
    }

    #[test]
    fn retry_after_abandon_and_all_actions_and_not_latest() {
        let core = world(Settings::default());
        let pe = start(&core);
        let (job, _) = take(&core).unwrap();
        let label = label_of(&core, &job);
        core.stop_execution(&pe, true, None).unwrap();
        let r = core
            .retry_stage(&label, None, RetryMode::FailedActions)
            .unwrap();
        assert_eq!(r.executions.len(), 1);
        let (job2, _) = take(&core).unwrap();
        failure(&core, &job2);
        let r = core
            .retry_stage(&pe, Some("Build"), RetryMode::AllActions)
            .unwrap();
        assert_eq!(r.executions, vec![format!("{label}-retry-2")]);
        let (job3, _) = take(&core).unwrap();
        failure(&core, &job3);
        let later = start(&core);
        let e = core
            .retry_stage(&pe, None, RetryMode::FailedActions)
            .unwrap_err();
        assert_eq!(e.type_name, "NotLatestPipelineExecutionException");
        assert!(e.message.contains(&later), "{}", e.message);
    }

    #[test]
    fn list_pipeline_executions_pages_newest_first() {
        let core = world(Settings::default());
        let runs: Vec<String> = (0..5).map(|_| start(&core)).collect();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = core
                .list_pipeline_executions("p", Some(2), token.as_deref(), None)
                .unwrap();
            pages += 1;
            for s in page["pipelineExecutionSummaries"].as_array().unwrap() {
                seen.push(s["pipelineExecutionId"].as_str().unwrap().to_string());
            }
            match page.get("nextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let newest_first: Vec<String> = runs.iter().rev().cloned().collect();
        assert_eq!(seen, newest_first);
        let e = core
            .list_pipeline_executions("p", None, Some("garbage"), None)
            .unwrap_err();
        assert_eq!(e.type_name, "InvalidNextTokenException");
        let e = core
            .list_pipeline_executions("nope", None, None, None)
            .unwrap_err();
        assert_eq!(e.type_name, "PipelineNotFoundException");
        let e = core
            .list_pipeline_executions("p", Some(0), None, None)
            .unwrap_err();
        assert_eq!(e.type_name, "ValidationException");
        // Only the first run's Build stage has succeeded.
        let (job, _) = take(&core).unwrap();
        success(&core, &job, None).unwrap();
        let only = core
            .list_pipeline_executions("p", None, None, Some("Build"))
            .unwrap();
        assert_eq!(
            only["pipelineExecutionSummaries"].as_array().unwrap().len(),
            1
        );
        assert_eq!(
            only["pipelineExecutionSummaries"][0]["pipelineExecutionId"],
            json!(runs[0])
        );
    }

    #[test]
    fn tokens_round_trip_and_are_tied_to_their_pipeline() {
        let t = encode_token("p", 7);
        assert_eq!(decode_token("p", &t), Some(7));
        assert_eq!(decode_token("q", &t), None);
        assert_eq!(decode_token("p", "7.0000000000000000"), None);
        assert_eq!(decode_token("p", "nonsense"), None);
        assert_eq!(decode_token("p", ""), None);
    }
}
