//! Stage locking and execution modes (CP-STAGE-LOCK), stage transitions, and the operations that change
//! or remove what was created (UpdatePipeline, DeletePipeline, DeleteCustomActionType), with secrets
//! masked and quotas enforced, through the real Rust SDK.

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionConfigurationProperty, ActionDeclaration, ActionOwner, ActionTypeId,
    ArtifactDetails, ArtifactStore, ArtifactStoreType, ExecutionDetails, ExecutionMode,
    PipelineDeclaration, PipelineExecutionStatus, PipelineType, StageDeclaration,
    StageTransitionType,
};
use tests::{KEY1, TestCp, error_code, error_message};

const PROVIDER: &str = "StageProbe";

fn custom_type(version: &str) -> ActionTypeId {
    ActionTypeId::builder()
        .category(ActionCategory::Test)
        .owner(ActionOwner::Custom)
        .provider(PROVIDER)
        .version(version)
        .build()
        .unwrap()
}

/// CreateCustomActionType: `Target` (required) and `Token` (secret), or `Target` queryable.
async fn create_type(client: &Client, version: &str, queryable: bool) {
    let artifacts = || {
        ArtifactDetails::builder()
            .minimum_count(0)
            .maximum_count(1)
            .build()
    };
    client
        .create_custom_action_type()
        .category(ActionCategory::Test)
        .provider(PROVIDER)
        .version(version)
        .configuration_properties(
            ActionConfigurationProperty::builder()
                .name("Target")
                .required(true)
                .key(true)
                .secret(false)
                .queryable(queryable)
                .build()
                .unwrap(),
        )
        .configuration_properties(
            ActionConfigurationProperty::builder()
                .name("Token")
                .required(false)
                .key(false)
                .secret(true)
                .build()
                .unwrap(),
        )
        .input_artifact_details(artifacts())
        .output_artifact_details(artifacts())
        .send()
        .await
        .expect("CreateCustomActionType");
}

/// A pipeline `name`: stage Source (AWS-owned, succeeds at once), then stages `Test` and `Deploy`, each
/// one custom action with `Target` = `target` and `Token` = `token`.
fn declaration(
    name: &str,
    target: &str,
    token: &str,
    mode: Option<ExecutionMode>,
) -> PipelineDeclaration {
    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(
            ActionTypeId::builder()
                .category(ActionCategory::Source)
                .owner(ActionOwner::Aws)
                .provider("S3")
                .version("1")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let ours = |action: &str| {
        ActionDeclaration::builder()
            .name(action)
            .action_type_id(custom_type("1"))
            .configuration("Target", target)
            .configuration("Token", token)
            .build()
            .unwrap()
    };
    let stage = |name: &str, action: ActionDeclaration| {
        StageDeclaration::builder()
            .name(name)
            .actions(action)
            .build()
            .unwrap()
    };
    let mut b = PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::111111111111:role/pipeline")
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location("bucket")
                .build()
                .unwrap(),
        )
        .stages(stage("Source", source))
        .stages(stage("Test", ours("Probe")))
        .stages(stage("Deploy", ours("Ship")));
    if let Some(m) = mode {
        b = b.execution_mode(m).pipeline_type(PipelineType::V2);
    }
    b.build().unwrap()
}

async fn world(mode: Option<ExecutionMode>) -> (TestCp, Client) {
    let cp = TestCp::start().await;
    let client = cp.client(KEY1);
    create_type(&client, "1", false).await;
    client
        .create_pipeline()
        .pipeline(declaration("shop", "web", "s3cret", mode))
        .send()
        .await
        .expect("CreatePipeline");
    (cp, client)
}

async fn start(client: &Client) -> String {
    client
        .start_pipeline_execution()
        .name("shop")
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id()
        .unwrap()
        .to_string()
}

async fn status(client: &Client, id: &str) -> PipelineExecutionStatus {
    client
        .get_pipeline_execution()
        .pipeline_name("shop")
        .pipeline_execution_id(id)
        .send()
        .await
        .expect("GetPipelineExecution")
        .pipeline_execution()
        .and_then(|p| p.status().cloned())
        .expect("a status")
}

/// A job polled and acknowledged: (job id, stage, pipelineExecutionId, the configuration it carries).
struct Taken {
    id: String,
    stage: String,
    run: String,
    token: Option<String>,
}

/// Polls every offered job of the type and acknowledges each.
async fn take_all(client: &Client) -> Vec<Taken> {
    let polled = client
        .poll_for_jobs()
        .action_type_id(custom_type("1"))
        .max_batch_size(10)
        .send()
        .await
        .expect("PollForJobs");
    let mut out = Vec::new();
    for job in polled.jobs() {
        client
            .acknowledge_job()
            .job_id(job.id().unwrap())
            .nonce(job.nonce().unwrap())
            .send()
            .await
            .expect("AcknowledgeJob");
        let data = job.data().unwrap();
        let ctx = data.pipeline_context().unwrap();
        out.push(Taken {
            id: job.id().unwrap().to_string(),
            stage: ctx.stage().and_then(|s| s.name()).unwrap().to_string(),
            run: ctx.pipeline_execution_id().unwrap().to_string(),
            token: data
                .action_configuration()
                .and_then(|c| c.configuration())
                .and_then(|c| c.get("Token"))
                .cloned(),
        });
    }
    out
}

async fn finish(client: &Client, job: &str) {
    client
        .put_job_success_result()
        .job_id(job)
        .execution_details(ExecutionDetails::builder().percent_complete(100).build())
        .send()
        .await
        .expect("PutJobSuccessResult");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_starts_put_one_job_in_a_stage_and_a_waiting_run_is_superseded() {
    let (cp, client) = world(None).await;
    let first = start(&client).await;
    let second = start(&client).await;
    let jobs = take_all(&client).await;
    assert_eq!(jobs.len(), 1, "one run in stage Test");
    assert_eq!(
        (jobs[0].stage.as_str(), jobs[0].run.as_str()),
        ("Test", first.as_str())
    );
    assert_eq!(
        status(&client, &second).await,
        PipelineExecutionStatus::InProgress
    );
    let third = start(&client).await;
    assert_eq!(
        status(&client, &second).await,
        PipelineExecutionStatus::Superseded
    );
    assert!(take_all(&client).await.is_empty());

    // The first run moves on to Deploy; the newest enters Test.
    finish(&client, &jobs[0].id).await;
    let mut jobs = take_all(&client).await;
    jobs.sort_by(|a, b| a.stage.cmp(&b.stage));
    let seen: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| (j.stage.as_str(), j.run.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![("Deploy", first.as_str()), ("Test", third.as_str())]
    );

    let listed = client
        .list_pipeline_executions()
        .pipeline_name("shop")
        .send()
        .await
        .unwrap();
    let statuses: Vec<_> = listed
        .pipeline_execution_summaries()
        .iter()
        .map(|s| s.status().cloned().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec![
            PipelineExecutionStatus::InProgress,
            PipelineExecutionStatus::Superseded,
            PipelineExecutionStatus::InProgress
        ]
    );
    let state = client
        .get_pipeline_state()
        .name("shop")
        .send()
        .await
        .unwrap();
    let test = &state.stage_states()[1];
    assert_eq!(
        test.latest_execution().map(|e| e.pipeline_execution_id()),
        Some(third.as_str())
    );
    assert_eq!(
        cp.events_with_rule("CP-STAGE-LOCK").len(),
        3,
        "two waits and one supersede"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_runs_enter_one_by_one_in_order_and_parallel_runs_do_not_wait() {
    let (_cp, client) = world(Some(ExecutionMode::Queued)).await;
    let runs = vec![start(&client).await, start(&client).await];
    let mut order = Vec::new();
    for _ in 0..3 {
        for job in take_all(&client).await {
            if job.stage == "Test" {
                order.push(job.run.clone());
            }
            finish(&client, &job.id).await;
        }
    }
    assert_eq!(order, runs);
    for r in &runs {
        assert_eq!(status(&client, r).await, PipelineExecutionStatus::Succeeded);
    }

    let (_cp, client) = world(Some(ExecutionMode::Parallel)).await;
    let a = start(&client).await;
    let b = start(&client).await;
    let mut seen: Vec<String> = take_all(&client).await.into_iter().map(|j| j.run).collect();
    seen.sort();
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(seen, both, "PARALLEL: both runs in Test at once");
    let got = client.get_pipeline().name("shop").send().await.unwrap();
    assert_eq!(
        got.pipeline().and_then(|p| p.execution_mode()),
        Some(&ExecutionMode::Parallel)
    );

    // QUEUED needs a V2 pipeline.
    let mut v1 = declaration("v1", "web", "t", None);
    v1.execution_mode = Some(ExecutionMode::Queued);
    let err = client
        .create_pipeline()
        .pipeline(v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_transition_holds_runs_until_it_is_enabled() {
    let (_cp, client) = world(None).await;
    client
        .disable_stage_transition()
        .pipeline_name("shop")
        .stage_name("Deploy")
        .transition_type(StageTransitionType::Inbound)
        .reason("release freeze")
        .send()
        .await
        .expect("DisableStageTransition");
    let state = client
        .get_pipeline_state()
        .name("shop")
        .send()
        .await
        .unwrap();
    let deploy = state.stage_states()[2].inbound_transition_state().unwrap();
    assert!(!deploy.enabled());
    assert_eq!(deploy.disabled_reason(), Some("release freeze"));
    assert!(
        state.stage_states()[1]
            .inbound_transition_state()
            .unwrap()
            .enabled()
    );

    let run = start(&client).await;
    let job = take_all(&client).await.pop().unwrap();
    finish(&client, &job.id).await;
    assert!(take_all(&client).await.is_empty(), "Deploy is closed");
    assert_eq!(
        status(&client, &run).await,
        PipelineExecutionStatus::InProgress
    );

    // Outbound of Test is the same transition.
    client
        .enable_stage_transition()
        .pipeline_name("shop")
        .stage_name("Test")
        .transition_type(StageTransitionType::Outbound)
        .send()
        .await
        .expect("EnableStageTransition");
    let jobs = take_all(&client).await;
    assert_eq!(
        (jobs[0].stage.as_str(), jobs[0].run.as_str()),
        ("Deploy", run.as_str())
    );

    let err = client
        .enable_stage_transition()
        .pipeline_name("shop")
        .stage_name("Nope")
        .transition_type(StageTransitionType::Inbound)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_stage_not_found_exception()),
        "{err:?}"
    );
    let err = client
        .disable_stage_transition()
        .pipeline_name("nope")
        .stage_name("Deploy")
        .transition_type(StageTransitionType::Inbound)
        .reason("x")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_pipeline_not_found_exception()),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_pipeline_bumps_the_version_masks_secrets_and_keeps_a_masked_one() {
    let (_cp, client) = world(None).await;
    let got = client.get_pipeline().name("shop").send().await.unwrap();
    let decl = got.pipeline().unwrap().clone();
    let conf = decl.stages()[1].actions()[0].configuration().unwrap();
    assert_eq!(conf.get("Token").map(String::as_str), Some("****"));
    assert_eq!(conf.get("Target").map(String::as_str), Some("web"));

    let running = start(&client).await;
    let job = take_all(&client).await.pop().unwrap();
    assert_eq!(
        job.token.as_deref(),
        Some("s3cret"),
        "the job calls hand the secret out"
    );
    let listed = client
        .list_action_executions()
        .pipeline_name("shop")
        .send()
        .await
        .unwrap();
    let input = listed.action_execution_details()[0].input().unwrap();
    assert_eq!(
        input
            .configuration()
            .and_then(|c| c.get("Token"))
            .map(String::as_str),
        Some("****")
    );

    // GetPipeline -> edit Target -> UpdatePipeline, the Token sent back masked.
    let mut edited = decl.clone();
    for st in edited.stages.iter_mut().skip(1) {
        for a in st.actions.iter_mut() {
            a.configuration
                .as_mut()
                .unwrap()
                .insert("Target".into(), "api".into());
        }
    }
    let out = client
        .update_pipeline()
        .pipeline(edited)
        .send()
        .await
        .expect("UpdatePipeline");
    assert_eq!(out.pipeline().and_then(|p| p.version()), Some(2));
    // GetPipeline gives the current version, or an earlier one by number; a version never made is
    // PipelineVersionNotFoundException.
    let target = |got: &aws_sdk_codepipeline::operation::get_pipeline::GetPipelineOutput| {
        got.pipeline().unwrap().stages()[1].actions()[0]
            .configuration()
            .and_then(|c| c.get("Target").cloned())
    };
    let current = client.get_pipeline().name("shop").send().await.unwrap();
    assert_eq!(target(&current).as_deref(), Some("api"));
    let first = client
        .get_pipeline()
        .name("shop")
        .version(1)
        .send()
        .await
        .unwrap();
    assert_eq!(first.pipeline().and_then(|p| p.version()), Some(1));
    assert_eq!(target(&first).as_deref(), Some("web"));
    let err = client
        .get_pipeline()
        .name("shop")
        .version(3)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_pipeline_version_not_found_exception()),
        "{err:?}"
    );
    // The running run keeps version 1.
    finish(&client, &job.id).await;
    let pe = client
        .get_pipeline_execution()
        .pipeline_name("shop")
        .pipeline_execution_id(&running)
        .send()
        .await
        .unwrap();
    assert_eq!(
        pe.pipeline_execution().and_then(|p| p.pipeline_version()),
        Some(1)
    );
    let deploy = take_all(&client).await.pop().unwrap();
    finish(&client, &deploy.id).await;
    // The next run uses version 2, with the kept secret.
    start(&client).await;
    let job = take_all(&client).await.pop().unwrap();
    assert_eq!(job.token.as_deref(), Some("s3cret"));
    let state = client
        .get_pipeline_state()
        .name("shop")
        .send()
        .await
        .unwrap();
    assert_eq!(state.pipeline_version(), Some(2));

    // A pipeline needs two stages.
    let one = PipelineDeclaration::builder()
        .name("one")
        .role_arn("arn:aws:iam::111111111111:role/pipeline")
        .stages(decl.stages()[1].clone())
        .build()
        .unwrap();
    let err = client
        .create_pipeline()
        .pipeline(one)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidStructureException");
    assert!(error_message(&err).contains("at least 2 stages"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_pipelines_and_custom_action_types_are_gone() {
    let (_cp, client) = world(None).await;
    start(&client).await;
    let job = take_all(&client).await.pop().unwrap();
    client
        .delete_pipeline()
        .name("shop")
        .send()
        .await
        .expect("DeletePipeline");
    let err = client.get_pipeline().name("shop").send().await.unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_pipeline_not_found_exception()),
        "{err:?}"
    );
    let err = client
        .put_job_success_result()
        .job_id(&job.id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidJobStateException");
    let names: Vec<String> = client
        .list_pipelines()
        .send()
        .await
        .unwrap()
        .pipelines()
        .iter()
        .filter_map(|p| p.name().map(str::to_string))
        .collect();
    assert!(!names.contains(&"shop".to_string()), "{names:?}");

    client
        .delete_custom_action_type()
        .category(ActionCategory::Test)
        .provider(PROVIDER)
        .version("1")
        .send()
        .await
        .expect("DeleteCustomActionType");
    let err = client
        .poll_for_jobs()
        .action_type_id(custom_type("1"))
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_action_type_not_found_exception()),
        "{err:?}"
    );
    // Re-created under the same version, but different: refused; under a new version: fine.
    let err = client
        .create_custom_action_type()
        .category(ActionCategory::Test)
        .provider(PROVIDER)
        .version("1")
        .input_artifact_details(
            ArtifactDetails::builder()
                .minimum_count(0)
                .maximum_count(0)
                .build(),
        )
        .output_artifact_details(
            ArtifactDetails::builder()
                .minimum_count(0)
                .maximum_count(0)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    create_type(&client, "2", true).await;
    // A queryable property: a poll must name it.
    let err = client
        .poll_for_jobs()
        .action_type_id(custom_type("2"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");
    assert!(
        error_message(&err).contains("Target"),
        "{}",
        error_message(&err)
    );
    client
        .poll_for_jobs()
        .action_type_id(custom_type("2"))
        .query_param("Target", "web")
        .send()
        .await
        .expect("a poll naming the queryable property");
}
