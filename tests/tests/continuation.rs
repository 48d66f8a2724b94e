//! The whole continuation flow through the real SDK, third-party and custom, through to GetPipelineState
//! (CP-CONTINUE, CP-FINAL-100, CP-DETAILS).

use std::time::Duration;

use aws_sdk_codepipeline::types::{ExecutionDetails, JobStatus};
use tests::{CLIENT, CUSTOM, KEY1, THIRD_PARTY, TestCp, sdk_type};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_job_continues_with_a_token_until_progress_100() {
    let cp = TestCp::start().await;
    cp.register(THIRD_PARTY, serde_json::json!({}));
    let label = cp.start_execution(THIRD_PARTY, "soak-90m");
    let client = cp.client(KEY1);

    // First job: poll -> details (nonce) -> acknowledge -> success with a token and the Details link.
    let polled = client
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .max_batch_size(5)
        .send()
        .await
        .unwrap();
    let jobs = polled.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].client_id(), Some(CLIENT.0));
    let job_id = jobs[0].job_id().unwrap().to_string();
    let details = client
        .get_third_party_job_details()
        .job_id(&job_id)
        .client_token(CLIENT.1)
        .send()
        .await
        .unwrap();
    let d = details.job_details().unwrap();
    let data = d.data().unwrap();
    assert!(
        data.continuation_token().is_none(),
        "a first job carries no token"
    );
    let config = data
        .action_configuration()
        .unwrap()
        .configuration()
        .unwrap();
    assert_eq!(
        config.get("PresetName").map(String::as_str),
        Some("soak-90m")
    );
    let ack = client
        .acknowledge_third_party_job()
        .job_id(&job_id)
        .nonce(d.nonce().unwrap())
        .client_token(CLIENT.1)
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status(), Some(&JobStatus::InProgress));
    client
        .put_third_party_job_success_result()
        .job_id(&job_id)
        .client_token(CLIENT.1)
        .continuation_token("153245:0")
        .execution_details(
            ExecutionDetails::builder()
                .external_execution_id("153245")
                .summary("Load test started")
                .percent_complete(0)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // The Details link shows at once in the execution, before the test ends.
    let view = cp.execution(&label);
    assert_eq!(view["status"], "InProgress");
    assert_eq!(
        view["externalExecutionUrl"],
        "http://apica.test/jobs/153245?preset=soak-90m"
    );

    // The continuation job is queued after the 30 s delay, not before.
    let empty = client
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .send()
        .await
        .unwrap();
    assert!(
        empty.jobs().is_empty(),
        "no continuation job before the delay"
    );
    cp.advance(Duration::from_secs(29));
    let empty = client
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .send()
        .await
        .unwrap();
    assert!(empty.jobs().is_empty(), "no continuation job at 29 s");
    cp.advance(Duration::from_secs(1));

    // Follow-up jobs carry the token; progress, then final 100 without a token.
    for (pct, last) in [(50, false), (100, true)] {
        let polled = client
            .poll_for_third_party_jobs()
            .action_type_id(sdk_type(THIRD_PARTY))
            .send()
            .await
            .unwrap();
        assert_eq!(
            polled.jobs().len(),
            1,
            "continuation job queued after the delay"
        );
        let job_id = polled.jobs()[0].job_id().unwrap().to_string();
        let d = client
            .get_third_party_job_details()
            .job_id(&job_id)
            .client_token(CLIENT.1)
            .send()
            .await
            .unwrap();
        let d = d.job_details().unwrap();
        assert_eq!(d.data().unwrap().continuation_token(), Some("153245:0"));
        client
            .acknowledge_third_party_job()
            .job_id(&job_id)
            .nonce(d.nonce().unwrap())
            .client_token(CLIENT.1)
            .send()
            .await
            .unwrap();
        let mut put = client
            .put_third_party_job_success_result()
            .job_id(&job_id)
            .client_token(CLIENT.1)
            .execution_details(
                ExecutionDetails::builder()
                    .external_execution_id("153245")
                    .summary(format!("{pct}% done"))
                    .percent_complete(pct)
                    .build(),
            );
        if !last {
            put = put.continuation_token("153245:0");
        }
        put.send().await.unwrap();
        cp.advance(Duration::from_secs(30));
    }

    let view = cp.execution(&label);
    assert_eq!(view["status"], "Succeeded");
    assert_eq!(view["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(view["percentComplete"], 100);
    assert!(cp.events_with_rule("AG-FINAL-TOKEN").is_empty());

    // GetPipelineState on the synthetic pipeline shows the link, summary and progress.
    let pipeline = view["pipelineName"].as_str().unwrap();
    let state = client
        .get_pipeline_state()
        .name(pipeline)
        .send()
        .await
        .unwrap();
    // The action's stage is the last: a synthetic pipeline starts with a Source stage.
    let action = &state.stage_states().last().unwrap().action_states()[0];
    let latest = action.latest_execution().unwrap();
    assert_eq!(latest.status().map(|s| s.as_str()), Some("Succeeded"));
    assert_eq!(latest.external_execution_id(), Some("153245"));
    assert_eq!(
        latest.external_execution_url(),
        Some("http://apica.test/jobs/153245?preset=soak-90m")
    );
    assert_eq!(latest.summary(), Some("100% done"));
    assert_eq!(latest.percent_complete(), Some(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_action_runs_through_a_real_pipeline_with_continuation_jobs() {
    let cp = TestCp::start().await;
    let client = cp.client(KEY1);

    // The custom action type and a pipeline: a Source stage (AWS-owned, succeeds at once) then ours.
    use aws_sdk_codepipeline::types::*;
    client
        .create_custom_action_type()
        .category(ActionCategory::Test)
        .provider("ApicaLoadtest")
        .version("1")
        .settings(
            ActionTypeSettings::builder()
                .execution_url_template("http://apica.test/jobs/{ExternalExecutionId}")
                .build(),
        )
        .configuration_properties(
            ActionConfigurationProperty::builder()
                .name("PresetName")
                .required(true)
                .key(true)
                .secret(false)
                .queryable(true)
                .build()
                .unwrap(),
        )
        .input_artifact_details(
            ArtifactDetails::builder()
                .minimum_count(0)
                .maximum_count(1)
                .build(),
        )
        .output_artifact_details(
            ArtifactDetails::builder()
                .minimum_count(0)
                .maximum_count(1)
                .build(),
        )
        .send()
        .await
        .unwrap();
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
    let test = ActionDeclaration::builder()
        .name("LoadTest")
        .action_type_id(sdk_type(CUSTOM))
        .configuration("PresetName", "short")
        .build()
        .unwrap();
    client
        .create_pipeline()
        .pipeline(
            PipelineDeclaration::builder()
                .name("shop")
                .role_arn("arn:aws:iam::111111111111:role/pipeline")
                .artifact_store(
                    ArtifactStore::builder()
                        .r#type(ArtifactStoreType::S3)
                        .location("bucket")
                        .build()
                        .unwrap(),
                )
                .stages(
                    StageDeclaration::builder()
                        .name("Source")
                        .actions(source)
                        .build()
                        .unwrap(),
                )
                .stages(
                    StageDeclaration::builder()
                        .name("Test")
                        .actions(test)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let started = client
        .start_pipeline_execution()
        .name("shop")
        .send()
        .await
        .unwrap();
    let pe = started.pipeline_execution_id().unwrap().to_string();

    // A poll filtered on another preset sees nothing; the right one gets the job with its nonce.
    let other = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .query_param("PresetName", "other")
        .send()
        .await
        .unwrap();
    assert!(other.jobs().is_empty(), "queryParam filters jobs");
    let polled = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .query_param("PresetName", "short")
        .send()
        .await
        .unwrap();
    let job = &polled.jobs()[0];
    assert_eq!(job.account_id(), Some("111111111111"));
    let ctx = job.data().unwrap().pipeline_context().unwrap();
    assert_eq!(ctx.pipeline_name(), Some("shop"));
    assert_eq!(ctx.stage().unwrap().name(), Some("Test"));
    assert_eq!(ctx.pipeline_execution_id(), Some(pe.as_str()));
    let job_id = job.id().unwrap().to_string();
    client
        .acknowledge_job()
        .job_id(&job_id)
        .nonce(job.nonce().unwrap())
        .send()
        .await
        .unwrap();
    client
        .put_job_success_result()
        .job_id(&job_id)
        .continuation_token("77")
        .execution_details(
            ExecutionDetails::builder()
                .external_execution_id("77")
                .percent_complete(10)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let running = client
        .get_pipeline_execution()
        .pipeline_name("shop")
        .pipeline_execution_id(&pe)
        .send()
        .await
        .unwrap();
    assert_eq!(
        running
            .pipeline_execution()
            .unwrap()
            .status()
            .map(|s| s.as_str()),
        Some("InProgress")
    );

    cp.advance(Duration::from_secs(30));
    let polled = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .query_param("PresetName", "short")
        .send()
        .await
        .unwrap();
    let job = &polled.jobs()[0];
    assert_eq!(job.data().unwrap().continuation_token(), Some("77"));
    let job_id = job.id().unwrap().to_string();
    let details = client
        .get_job_details()
        .job_id(&job_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        details
            .job_details()
            .unwrap()
            .data()
            .unwrap()
            .continuation_token(),
        Some("77")
    );
    client
        .acknowledge_job()
        .job_id(&job_id)
        .nonce(job.nonce().unwrap())
        .send()
        .await
        .unwrap();
    client
        .put_job_success_result()
        .job_id(&job_id)
        .execution_details(
            ExecutionDetails::builder()
                .summary("passed")
                .percent_complete(100)
                .build(),
        )
        .output_variables("testId", "77")
        .send()
        .await
        .unwrap();

    let done = client
        .get_pipeline_execution()
        .pipeline_name("shop")
        .pipeline_execution_id(&pe)
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.pipeline_execution()
            .unwrap()
            .status()
            .map(|s| s.as_str()),
        Some("Succeeded")
    );
    let state = client
        .get_pipeline_state()
        .name("shop")
        .send()
        .await
        .unwrap();
    let stage = &state.stage_states()[1];
    let latest = stage.action_states()[0].latest_execution().unwrap();
    assert_eq!(
        latest.external_execution_url(),
        Some("http://apica.test/jobs/77")
    );
    assert_eq!(latest.summary(), Some("passed"));
    let list = client
        .list_action_executions()
        .pipeline_name("shop")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .action_execution_details()
        .iter()
        .filter_map(|d| d.action_name())
        .collect();
    assert_eq!(names, vec!["LoadTest", "Source"]);
    let types = client
        .list_action_types()
        .action_owner_filter(ActionOwner::Custom)
        .send()
        .await
        .unwrap();
    assert_eq!(types.action_types().len(), 1);
    let pipelines = client.list_pipelines().send().await.unwrap();
    assert_eq!(pipelines.pipelines()[0].name(), Some("shop"));
    let got = client.get_pipeline().name("shop").send().await.unwrap();
    assert_eq!(got.pipeline().unwrap().stages().len(), 2);
}
