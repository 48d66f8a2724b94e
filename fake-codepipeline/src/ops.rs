//! One function per operation: read the (already validated) input, call the engine, shape the output.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sim_core::{ClockMode, RequestGuard};

use crate::engine::{Core, FailureResult, SuccessResult};
use crate::error::ApiError;
use crate::stages::TransitionType;
use crate::types::{ActionTypeId, Owner, RetryMode};

/// The operations this fake implements.
pub const OPERATIONS: &[&str] = &[
    "PollForThirdPartyJobs",
    "GetThirdPartyJobDetails",
    "AcknowledgeThirdPartyJob",
    "PutThirdPartyJobSuccessResult",
    "PutThirdPartyJobFailureResult",
    "PollForJobs",
    "GetJobDetails",
    "AcknowledgeJob",
    "PutJobSuccessResult",
    "PutJobFailureResult",
    "CreateCustomActionType",
    "ListActionTypes",
    "CreatePipeline",
    "GetPipeline",
    "ListPipelines",
    "StartPipelineExecution",
    "GetPipelineExecution",
    "GetPipelineState",
    "ListActionExecutions",
    "StopPipelineExecution",
    "RetryStageExecution",
    "ListPipelineExecutions",
    "UpdatePipeline",
    "DeletePipeline",
    "DeleteCustomActionType",
    "EnableStageTransition",
    "DisableStageTransition",
];

/// Whether `op` is implemented.
pub fn is_supported(op: &str) -> bool {
    OPERATIONS.contains(&op)
}

/// The job-worker operations, custom and third-party, pair by pair.
const JOB_WORKER_PAIRS: [(&str, &str); 5] = [
    ("PollForJobs", "PollForThirdPartyJobs"),
    ("GetJobDetails", "GetThirdPartyJobDetails"),
    ("AcknowledgeJob", "AcknowledgeThirdPartyJob"),
    ("PutJobSuccessResult", "PutThirdPartyJobSuccessResult"),
    ("PutJobFailureResult", "PutThirdPartyJobFailureResult"),
];

/// `op` as a worker of `owner`'s action types calls it: a job-worker operation of the other family
/// becomes its counterpart (`PollForJobs` is `PollForThirdPartyJobs` for a third-party type, and back);
/// any other operation, and `*`, stays as it is.
pub fn job_worker_operation(op: &str, owner: crate::types::Owner) -> &str {
    for (custom, third_party) in JOB_WORKER_PAIRS {
        match owner {
            crate::types::Owner::ThirdParty if op == custom => return third_party,
            crate::types::Owner::Custom if op == third_party => return custom,
            _ => {}
        }
    }
    op
}

fn s<'a>(input: &'a Value, key: &str) -> &'a str {
    input.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn opt_s(input: &Value, key: &str) -> Option<String> {
    input.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Runs one operation. `Ok(None)` is an empty success body (the four Put*Result operations, and the
/// operations without output: DeletePipeline, DeleteCustomActionType, Enable/DisableStageTransition).
pub async fn dispatch(
    core: &Core,
    guard: &mut RequestGuard,
    op: &str,
    caller: Option<&str>,
    input: &Value,
) -> Result<Option<Value>, ApiError> {
    let tp = Owner::ThirdParty;
    let cu = Owner::Custom;
    match op {
        "PollForThirdPartyJobs" | "PollForJobs" => {
            poll(core, guard, op, caller, input).await.map(Some)
        }
        "GetThirdPartyJobDetails" => core
            .details(caller, tp, s(input, "jobId"), Some(s(input, "clientToken")))
            .map(|d| Some(json!({"jobDetails": d}))),
        "GetJobDetails" => core
            .details(caller, cu, s(input, "jobId"), None)
            .map(|d| Some(json!({"jobDetails": d}))),
        "AcknowledgeThirdPartyJob" => core
            .acknowledge(
                caller,
                tp,
                s(input, "jobId"),
                s(input, "nonce"),
                Some(s(input, "clientToken")),
            )
            .map(|st| Some(json!({"status": st.as_str()}))),
        "AcknowledgeJob" => core
            .acknowledge(caller, cu, s(input, "jobId"), s(input, "nonce"), None)
            .map(|st| Some(json!({"status": st.as_str()}))),
        "PutThirdPartyJobSuccessResult" => core
            .put_success(
                caller,
                tp,
                s(input, "jobId"),
                Some(s(input, "clientToken")),
                success_of(input),
            )
            .map(|_| None),
        "PutJobSuccessResult" => core
            .put_success(caller, cu, s(input, "jobId"), None, success_of(input))
            .map(|_| None),
        "PutThirdPartyJobFailureResult" => core
            .put_failure(
                caller,
                tp,
                s(input, "jobId"),
                Some(s(input, "clientToken")),
                failure_of(input),
            )
            .map(|_| None),
        "PutJobFailureResult" => core
            .put_failure(caller, cu, s(input, "jobId"), None, failure_of(input))
            .map(|_| None),
        "CreateCustomActionType" => core.create_custom_action_type(input).map(Some),
        "ListActionTypes" => Ok(Some(
            core.list_action_types(input.get("actionOwnerFilter").and_then(Value::as_str)),
        )),
        "CreatePipeline" => core.create_pipeline(input).map(Some),
        "GetPipeline" => core
            .get_pipeline(
                s(input, "name"),
                input.get("version").and_then(Value::as_i64),
            )
            .map(Some),
        "ListPipelines" => Ok(Some(core.list_pipelines())),
        "StartPipelineExecution" => core.start_pipeline_execution(s(input, "name")).map(Some),
        "GetPipelineExecution" => core
            .get_pipeline_execution(s(input, "pipelineName"), s(input, "pipelineExecutionId"))
            .map(Some),
        "GetPipelineState" => core.get_pipeline_state(s(input, "name")).map(Some),
        "ListActionExecutions" => {
            let pe = input
                .get("filter")
                .and_then(|f| f.get("pipelineExecutionId"))
                .and_then(Value::as_str);
            core.list_action_executions(s(input, "pipelineName"), pe)
                .map(Some)
        }
        "StopPipelineExecution" => core
            .stop_pipeline_execution(
                caller,
                s(input, "pipelineName"),
                s(input, "pipelineExecutionId"),
                input
                    .get("abandon")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                input.get("reason").and_then(Value::as_str),
            )
            .map(Some),
        "RetryStageExecution" => {
            let mode: RetryMode = s(input, "retryMode")
                .parse()
                .map_err(ApiError::validation)?;
            core.retry_stage_execution(
                caller,
                s(input, "pipelineName"),
                s(input, "stageName"),
                s(input, "pipelineExecutionId"),
                mode,
            )
            .map(Some)
        }
        "ListPipelineExecutions" => core
            .list_pipeline_executions(
                s(input, "pipelineName"),
                input.get("maxResults").and_then(Value::as_i64),
                input.get("nextToken").and_then(Value::as_str),
                input
                    .get("filter")
                    .and_then(|f| f.get("succeededInStage"))
                    .and_then(|f| f.get("stageName"))
                    .and_then(Value::as_str),
            )
            .map(Some),
        "UpdatePipeline" => core.update_pipeline(input).map(Some),
        "DeletePipeline" => core.delete_pipeline(caller, s(input, "name")).map(|_| None),
        "DeleteCustomActionType" => core
            .delete_custom_action_type(
                caller,
                s(input, "category"),
                s(input, "provider"),
                s(input, "version"),
            )
            .map(|_| None),
        "EnableStageTransition" | "DisableStageTransition" => {
            let kind: TransitionType = s(input, "transitionType")
                .parse()
                .map_err(ApiError::validation)?;
            let (pipeline, stage) = (s(input, "pipelineName"), s(input, "stageName"));
            if op == "EnableStageTransition" {
                core.enable_stage_transition(caller, pipeline, stage, kind)
            } else {
                core.disable_stage_transition(caller, pipeline, stage, kind, s(input, "reason"))
            }
            .map(|_| None)
        }
        other => Err(ApiError::new(
            "UnknownOperationException",
            format!("Unknown operation {other}"),
        )),
    }
}

async fn poll(
    core: &Core,
    guard: &mut RequestGuard,
    op: &str,
    caller: Option<&str>,
    input: &Value,
) -> Result<Value, ApiError> {
    let owner = if op == "PollForJobs" {
        Owner::Custom
    } else {
        Owner::ThirdParty
    };
    let id = ActionTypeId::from_json(input.get("actionTypeId").unwrap_or(&Value::Null))
        .map_err(ApiError::validation)?;
    // The model's minimum is 1 and it sets no maximum; the fake caps a batch at 100 jobs.
    let max = input
        .get("maxBatchSize")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .clamp(1, 100) as usize;
    let query: Option<(String, String)> = input
        .get("queryParam")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()));
    let q = query.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
    // Register interest before the first look, so a job queued in between is not missed.
    let queued = core.job_queued();
    let mut jobs = core.poll(caller, owner, &id, max, q)?;
    if jobs.is_empty()
        && let Some(limit) = core.settings.park_polls
        && core.sim.clock.mode() == ClockMode::Manual
    {
        // Parked: the runner may move the clock; answered the moment a job is queued, or empty at the bound.
        guard.park();
        let _ = tokio::time::timeout(limit, queued).await;
        guard.unpark();
        jobs = core.poll(caller, owner, &id, max, q)?;
    }
    let list: Vec<Value> = if owner == Owner::ThirdParty {
        jobs.iter()
            .map(
                |d| json!({"clientId": d.client_id.clone().unwrap_or_default(), "jobId": d.job_id}),
            )
            .collect()
    } else {
        core.with_world(|w| {
            jobs.iter()
                .filter_map(|d| {
                    w.jobs
                        .get(&d.job_id)
                        .map(|j| core.job_view(w, j, Owner::Custom, Some(&d.nonce)))
                })
                .collect()
        })
    };
    Ok(json!({"jobs": list}))
}

fn success_of(input: &Value) -> SuccessResult {
    let details = input.get("executionDetails");
    let d = |k: &str| details.and_then(|x| x.get(k));
    SuccessResult {
        continuation_token: opt_s(input, "continuationToken"),
        summary: d("summary").and_then(Value::as_str).map(str::to_string),
        external_id: d("externalExecutionId")
            .and_then(Value::as_str)
            .map(str::to_string),
        percent_complete: d("percentComplete").and_then(Value::as_i64),
        output_variables: input
            .get("outputVariables")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect::<BTreeMap<_, _>>()
            }),
    }
}

fn failure_of(input: &Value) -> FailureResult {
    let f = input.get("failureDetails").cloned().unwrap_or(Value::Null);
    FailureResult {
        failure_type: s(&f, "type").to_string(),
        message: s(&f, "message").to_string(),
        external_id: opt_s(&f, "externalExecutionId"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Owner;

    #[test]
    fn job_worker_operations_follow_the_family_of_the_action_type() {
        assert_eq!(
            job_worker_operation("PollForJobs", Owner::ThirdParty),
            "PollForThirdPartyJobs"
        );
        assert_eq!(
            job_worker_operation("PutThirdPartyJobSuccessResult", Owner::Custom),
            "PutJobSuccessResult"
        );
        assert_eq!(
            job_worker_operation("AcknowledgeJob", Owner::Custom),
            "AcknowledgeJob"
        );
        assert_eq!(job_worker_operation("*", Owner::ThirdParty), "*");
        assert_eq!(
            job_worker_operation("GetPipelineState", Owner::ThirdParty),
            "GetPipelineState"
        );
        for (custom, third) in JOB_WORKER_PAIRS {
            assert!(is_supported(custom) && is_supported(third));
        }
    }
}
