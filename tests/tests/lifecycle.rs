//! The life of a pipeline execution after it starts, through the real Rust SDK and through boto3:
//! StopPipelineExecution (stop and wait, stop and abandon; CP-STOP), results for jobs of abandoned actions
//! (CP-ABANDONED), RetryStageExecution (CP-RETRY) and ListPipelineExecutions, and what
//! GetPipelineExecution, GetPipelineState and ListActionExecutions show of them.

use std::time::Duration;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::types::{
    ActionExecutionFilter, ActionExecutionStatus, ExecutionDetails, FailureDetails, FailureType,
    PipelineExecutionStatus, StageExecutionStatus, StageRetryMode,
};
use serde_json::json;
use tests::sdk::run_boto3_script;
use tests::{CUSTOM, KEY1, TestCp, error_code, error_message, sdk_type, take_custom};

/// A bare custom action execution: its label, synthetic pipeline and pipelineExecutionId.
struct Run {
    label: String,
    pipeline: String,
    id: String,
}

fn start(cp: &TestCp, preset: &str) -> Run {
    let label = cp.start_execution(CUSTOM, preset);
    let v = cp.execution(&label);
    Run {
        pipeline: v["pipelineName"].as_str().unwrap().to_string(),
        id: v["pipelineExecutionId"].as_str().unwrap().to_string(),
        label,
    }
}

async fn world() -> (TestCp, Client) {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let client = cp.client(KEY1);
    (cp, client)
}

async fn status(client: &Client, run: &Run) -> PipelineExecutionStatus {
    client
        .get_pipeline_execution()
        .pipeline_name(&run.pipeline)
        .pipeline_execution_id(&run.id)
        .send()
        .await
        .expect("GetPipelineExecution")
        .pipeline_execution()
        .and_then(|p| p.status())
        .cloned()
        .expect("a status")
}

/// GetPipelineState's action stage (the last; a Source stage comes first): its status and its action's latest execution (id, status).
async fn stage(
    client: &Client,
    run: &Run,
) -> (Option<StageExecutionStatus>, String, ActionExecutionStatus) {
    let state = client
        .get_pipeline_state()
        .name(&run.pipeline)
        .send()
        .await
        .expect("GetPipelineState");
    let st = state.stage_states().last().expect("stages");
    let latest = st.action_states()[0]
        .latest_execution()
        .expect("the action ran");
    (
        st.latest_execution().map(|e| e.status().clone()),
        latest.action_execution_id().unwrap_or_default().to_string(),
        latest.status().cloned().expect("a status"),
    )
}

/// ListActionExecutions of the run's job-worker action: (actionExecutionId, status), newest first.
async fn action_executions(client: &Client, run: &Run) -> Vec<(String, ActionExecutionStatus)> {
    client
        .list_action_executions()
        .pipeline_name(&run.pipeline)
        .filter(
            ActionExecutionFilter::builder()
                .pipeline_execution_id(&run.id)
                .build(),
        )
        .send()
        .await
        .expect("ListActionExecutions")
        .action_execution_details()
        .iter()
        // The synthetic pipeline's Source action is listed too; these tests follow the job worker's.
        .filter(|d| d.stage_name() != Some("Source"))
        .map(|d| {
            (
                d.action_execution_id().unwrap_or_default().to_string(),
                d.status().cloned().expect("a status"),
            )
        })
        .collect()
}

fn details(pct: i32) -> ExecutionDetails {
    ExecutionDetails::builder()
        .summary("working")
        .external_execution_id("153245")
        .percent_complete(pct)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_wait_accepts_the_running_jobs_result_then_the_execution_is_stopped() {
    let (cp, client) = world().await;
    let run = start(&cp, "wait");
    let job = take_custom(&client).await;
    let out = client
        .stop_pipeline_execution()
        .pipeline_name(&run.pipeline)
        .pipeline_execution_id(&run.id)
        .reason("release freeze")
        .send()
        .await
        .expect("StopPipelineExecution");
    assert_eq!(out.pipeline_execution_id(), Some(run.id.as_str()));
    assert_eq!(
        status(&client, &run).await,
        PipelineExecutionStatus::Stopping
    );
    let (stage_status, _, action) = stage(&client, &run).await;
    assert_eq!(stage_status, Some(StageExecutionStatus::Stopping));
    assert_eq!(action, ActionExecutionStatus::InProgress);

    // Stop and wait cannot be asked twice.
    let err = client
        .stop_pipeline_execution()
        .pipeline_name(&run.pipeline)
        .pipeline_execution_id(&run.id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "DuplicatedStopRequestException");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_duplicated_stop_request_exception())
    );

    // The running job's result is accepted; the execution is then Stopped.
    client
        .put_job_success_result()
        .job_id(&job)
        .execution_details(details(100))
        .send()
        .await
        .expect("the running job's result is accepted while Stopping");
    assert_eq!(
        status(&client, &run).await,
        PipelineExecutionStatus::Stopped
    );
    let (stage_status, _, action) = stage(&client, &run).await;
    assert_eq!(stage_status, Some(StageExecutionStatus::Stopped));
    assert_eq!(action, ActionExecutionStatus::Succeeded);
    let listed = action_executions(&client, &run).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, ActionExecutionStatus::Succeeded);

    let err = client
        .stop_pipeline_execution()
        .pipeline_name(&run.pipeline)
        .pipeline_execution_id(&run.id)
        .abandon(true)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_pipeline_execution_not_stoppable_exception()),
        "{err:?}"
    );
    let err = client
        .stop_pipeline_execution()
        .pipeline_name("no-such-pipeline")
        .pipeline_execution_id(&run.id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "PipelineNotFoundException");
    assert_eq!(cp.execution(&run.label)["status"], "Succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_abandon_offers_no_continuation_and_refuses_the_put() {
    let (cp, client) = world().await;
    let run = start(&cp, "abandon");
    let job = take_custom(&client).await;
    client
        .stop_pipeline_execution()
        .pipeline_name(&run.pipeline)
        .pipeline_execution_id(&run.id)
        .abandon(true)
        .reason("wrong build")
        .send()
        .await
        .expect("StopPipelineExecution with abandon");
    assert_eq!(
        status(&client, &run).await,
        PipelineExecutionStatus::Stopped
    );
    let (stage_status, _, action) = stage(&client, &run).await;
    assert_eq!(stage_status, Some(StageExecutionStatus::Stopped));
    assert_eq!(action, ActionExecutionStatus::Abandoned);
    assert_eq!(
        action_executions(&client, &run).await[0].1,
        ActionExecutionStatus::Abandoned
    );

    // The worker did not know and answers "still running": refused, naming the rule.
    let err = client
        .put_job_success_result()
        .job_id(&job)
        .continuation_token("153245")
        .execution_details(details(10))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidJobStateException");
    let message = error_message(&err);
    assert!(
        message.contains("abandoned") && message.ends_with("(CP-ABANDONED)"),
        "{message}"
    );
    let err = client
        .put_job_failure_result()
        .job_id(&job)
        .failure_details(
            FailureDetails::builder()
                .r#type(FailureType::JobFailed)
                .message("gave up")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidJobStateException");

    // No continuation job, however long one waits.
    cp.advance(Duration::from_secs(3600));
    let polled = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .max_batch_size(10)
        .send()
        .await
        .unwrap();
    assert!(polled.jobs().is_empty(), "{:?}", polled.jobs());
    let view = cp.execution(&run.label);
    assert_eq!(view["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(view["jobs"][0]["status"], "Failed");
    assert_eq!(view["jobs"][0]["abandoned"], "+00:00:00");
    assert!(
        cp.events_with_rule("CP-TIMEOUT").is_empty(),
        "an abandoned job never times out"
    );
    let refusals = cp.events_with_rule("CP-ABANDONED");
    assert_eq!(refusals.len(), 2);
    assert!(
        refusals
            .iter()
            .all(|e| e.severity == sim_core::Severity::Warning)
    );
    let stops = cp.events_with_rule("CP-STOP");
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].data["reason"], "wrong build");

    // ListPipelineExecutions shows why it stopped.
    let list = client
        .list_pipeline_executions()
        .pipeline_name(&run.pipeline)
        .send()
        .await
        .unwrap();
    let summary = &list.pipeline_execution_summaries()[0];
    assert_eq!(summary.status(), Some(&PipelineExecutionStatus::Stopped));
    assert_eq!(
        summary.stop_trigger().and_then(|t| t.reason()),
        Some("wrong build")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_wait_then_abandon_while_stopping() {
    let (cp, client) = world().await;
    let run = start(&cp, "escalate");
    let job = take_custom(&client).await;
    client
        .put_job_success_result()
        .job_id(&job)
        .continuation_token("153245")
        .execution_details(details(5))
        .send()
        .await
        .unwrap();
    for abandon in [false, true] {
        client
            .stop_pipeline_execution()
            .pipeline_name(&run.pipeline)
            .pipeline_execution_id(&run.id)
            .abandon(abandon)
            .send()
            .await
            .unwrap_or_else(|e| panic!("stop (abandon {abandon}): {e:?}"));
    }
    assert_eq!(
        status(&client, &run).await,
        PipelineExecutionStatus::Stopped
    );
    // The continuation job that was waiting for its delay is never queued.
    cp.advance(Duration::from_secs(60));
    assert!(tests::poll_custom(&client).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_gives_a_new_action_execution_whose_first_job_has_no_token() {
    let (cp, client) = world().await;
    let run = start(&cp, "retry");
    let stage_name = cp.execution(&run.label)["stageName"]
        .as_str()
        .unwrap()
        .to_string();
    let retry = |mode: StageRetryMode, stage: &str| {
        client
            .retry_stage_execution()
            .pipeline_name(&run.pipeline)
            .stage_name(stage)
            .pipeline_execution_id(&run.id)
            .retry_mode(mode)
            .send()
    };
    // A running stage cannot be retried.
    let err = retry(StageRetryMode::FailedActions, &stage_name)
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_stage_not_retryable_exception()),
        "{err:?}"
    );

    // First attempt: a continuation, then a failure.
    let job = take_custom(&client).await;
    client
        .put_job_success_result()
        .job_id(&job)
        .continuation_token("153245")
        .execution_details(details(10))
        .send()
        .await
        .unwrap();
    cp.advance(Duration::from_secs(30));
    let job = take_custom(&client).await;
    client
        .put_job_failure_result()
        .job_id(&job)
        .failure_details(
            FailureDetails::builder()
                .r#type(FailureType::JobFailed)
                .message("test failed")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(status(&client, &run).await, PipelineExecutionStatus::Failed);
    let (_, first_id, _) = stage(&client, &run).await;

    let err = retry(StageRetryMode::FailedActions, "NoSuchStage")
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "StageNotFoundException");
    let out = retry(StageRetryMode::FailedActions, &stage_name)
        .await
        .expect("RetryStageExecution FAILED_ACTIONS");
    assert_eq!(out.pipeline_execution_id(), Some(run.id.as_str()));
    assert_eq!(
        status(&client, &run).await,
        PipelineExecutionStatus::InProgress
    );

    // The retry's first job: a new actionExecutionId, no continuation token, the same run.
    let polled = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .send()
        .await
        .unwrap();
    let job = &polled.jobs()[0];
    let data = job.data().unwrap();
    assert!(
        data.continuation_token().is_none(),
        "a retry starts with a first job"
    );
    let ctx = data.pipeline_context().unwrap();
    let new_id = ctx
        .action()
        .and_then(|a| a.action_execution_id())
        .unwrap()
        .to_string();
    assert_ne!(new_id, first_id);
    assert_eq!(ctx.pipeline_execution_id(), Some(run.id.as_str()));
    let (stage_status, latest, action) = stage(&client, &run).await;
    assert_eq!(stage_status, Some(StageExecutionStatus::InProgress));
    assert_eq!(
        (latest.as_str(), action),
        (new_id.as_str(), ActionExecutionStatus::InProgress)
    );
    assert_eq!(
        action_executions(&client, &run).await,
        vec![
            (new_id.clone(), ActionExecutionStatus::InProgress),
            (first_id.clone(), ActionExecutionStatus::Failed)
        ]
    );
    assert_eq!(cp.events_with_rule("CP-RETRY").len(), 1);

    // It fails again; ALL_ACTIONS runs the stage once more, and a success ends the run.
    client
        .acknowledge_job()
        .job_id(job.id().unwrap())
        .nonce(job.nonce().unwrap())
        .send()
        .await
        .unwrap();
    client
        .put_job_failure_result()
        .job_id(job.id().unwrap())
        .failure_details(
            FailureDetails::builder()
                .r#type(FailureType::JobFailed)
                .message("again")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    retry(StageRetryMode::AllActions, &stage_name)
        .await
        .expect("RetryStageExecution ALL_ACTIONS");
    let job = take_custom(&client).await;
    client
        .put_job_success_result()
        .job_id(&job)
        .execution_details(details(100))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(&client, &run).await,
        PipelineExecutionStatus::Succeeded
    );
    let listed = action_executions(&client, &run).await;
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].1, ActionExecutionStatus::Succeeded);

    // A later run of the pipeline that reached the stage makes this one out of date.
    client
        .start_pipeline_execution()
        .name(&run.pipeline)
        .send()
        .await
        .unwrap();
    let err = retry(StageRetryMode::AllActions, &stage_name)
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "NotLatestPipelineExecutionException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pipeline_executions_pages_newest_first() {
    let (cp, client) = world().await;
    let run = start(&cp, "list");
    let mut ids = vec![run.id.clone()];
    for _ in 0..4 {
        ids.push(
            client
                .start_pipeline_execution()
                .name(&run.pipeline)
                .send()
                .await
                .unwrap()
                .pipeline_execution_id()
                .unwrap()
                .to_string(),
        );
    }
    ids.reverse();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_pipeline_executions()
            .pipeline_name(&run.pipeline)
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("ListPipelineExecutions");
        pages.push(
            page.pipeline_execution_summaries()
                .iter()
                .map(|s| s.pipeline_execution_id().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(
        pages,
        vec![ids[0..2].to_vec(), ids[2..4].to_vec(), ids[4..5].to_vec()]
    );
    // The SDK's paginator walks the same pages.
    let all: Vec<String> = client
        .list_pipeline_executions()
        .pipeline_name(&run.pipeline)
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .iter()
        .map(|s| s.pipeline_execution_id().unwrap().to_string())
        .collect();
    assert_eq!(all, ids);
    // Without maxResults, one page of up to 100.
    let one = client
        .list_pipeline_executions()
        .pipeline_name(&run.pipeline)
        .send()
        .await
        .unwrap();
    assert_eq!(one.pipeline_execution_summaries().len(), 5);
    assert!(one.next_token().is_none());

    let err = client
        .list_pipeline_executions()
        .pipeline_name(&run.pipeline)
        .next_token("made-up")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidNextTokenException");
    let err = client
        .list_pipeline_executions()
        .pipeline_name(&run.pipeline)
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    let err = client
        .list_pipeline_executions()
        .pipeline_name("no-such-pipeline")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "PipelineNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_stops_retries_lists_and_changes_pipelines() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let v = run_boto3_script(
        "boto3_lifecycle.py",
        &cp.url(),
        &[
            ("CP_KEY_ID", KEY1.0),
            ("CP_KEY_SECRET", KEY1.1),
            ("CP_CUSTOM", CUSTOM),
        ],
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(
        v["wait"],
        json!({"status": "Stopped", "action": "Succeeded"})
    );
    assert_eq!(v["abandon"]["put"], "InvalidJobStateException");
    assert_eq!(v["abandon"]["polled_after"], 0);
    assert_ne!(v["retry"]["first"], v["retry"]["new"]);
    assert_eq!(v["list"]["pages"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        v["pipelines"],
        json!({"version": 2, "masked": "****", "deleted": "PipelineNotFoundException"})
    );
    // What boto3 did is what the fake recorded.
    assert_eq!(cp.events_with_rule("CP-STOP").len(), 2);
    assert_eq!(cp.events_with_rule("CP-RETRY").len(), 1);
    assert_eq!(cp.events_with_rule("CP-ABANDONED").len(), 1);
    // One wait before Test (the second run) and one before the closed Deploy, one transition closed and
    // opened, and the waits of the runs ListPipelineExecutions started back to back.
    let locks = cp.events_with_rule("CP-STAGE-LOCK");
    assert!(
        locks
            .iter()
            .filter(|e| e.kind == sim_core::EventKind::TransitionChanged)
            .count()
            == 2,
        "{locks:?}"
    );
}
