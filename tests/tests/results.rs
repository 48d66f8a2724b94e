//! What a result does to a job and its action execution (CP-FAIL-FINAL, CP-FINAL-100, AG-FINAL-TOKEN,
//! CP-ACK, CP-TERMINAL, CP-CLIENT).

use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};
use serde_json::json;
use sim_core::Severity;
use tests::{
    CLIENT, CUSTOM, KEY1, THIRD_PARTY, TestCp, error_code, error_message, sdk_type, take_custom,
};

fn pct(p: i32) -> ExecutionDetails {
    ExecutionDetails::builder()
        .percent_complete(p)
        .external_execution_id("42")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_final_and_creates_no_further_job() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let job = take_custom(&a).await;
    a.put_job_failure_result()
        .job_id(&job)
        .failure_details(
            FailureDetails::builder()
                .r#type(FailureType::JobFailed)
                .message("p95 latency 2300 ms over the 2000 ms threshold")
                .external_execution_id("42")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    cp.advance(std::time::Duration::from_secs(3600));
    let view = cp.execution(&label);
    assert_eq!(view["status"], "Failed");
    assert_eq!(
        view["jobs"].as_array().unwrap().len(),
        1,
        "no continuation job after a failure"
    );
    assert_eq!(view["errorDetails"]["code"], "JobFailed");
    assert_eq!(
        view["errorDetails"]["message"],
        "p95 latency 2300 ms over the 2000 ms threshold"
    );
    assert_eq!(
        view["externalExecutionUrl"], "http://apica.test/jobs/42?preset=short",
        "a failure's id fills the link too"
    );

    // A success on a job already failed is refused (CP-TERMINAL) and recorded as an error.
    let err = a
        .put_job_success_result()
        .job_id(&job)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidJobStateException");
    assert!(error_message(&err).contains("CP-TERMINAL"));
    let terminal = cp.events_with_rule("CP-TERMINAL");
    assert_eq!(terminal.len(), 1);
    assert_eq!(terminal[0].severity, Severity::Error);
    assert_eq!(cp.execution(&label)["status"], "Failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_100_is_final_even_without_final_on_no_token() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let job = take_custom(&a).await;
    a.put_job_success_result()
        .job_id(&job)
        .execution_details(pct(100))
        .send()
        .await
        .unwrap();
    let view = cp.execution(&label);
    assert_eq!(view["status"], "Succeeded");
    assert!(
        cp.events_with_rule("AG-FINAL-TOKEN").is_empty(),
        "100 and no token is the correct final answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_success_that_still_carries_a_token_is_final_and_recorded_as_ag_final_token() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let job = take_custom(&a).await;
    a.put_job_success_result()
        .job_id(&job)
        .continuation_token("42")
        .execution_details(pct(100))
        .send()
        .await
        .unwrap();
    cp.advance(std::time::Duration::from_secs(60));
    let view = cp.execution(&label);
    assert_eq!(
        view["status"], "Succeeded",
        "with final_on = progress-100, 100 ends the action"
    );
    assert_eq!(view["jobs"].as_array().unwrap().len(), 1);
    let ev = cp.events_with_rule("AG-FINAL-TOKEN");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].severity, Severity::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_final_on_no_token_a_token_always_continues() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({"finalOn": "no-token"}));
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let job = take_custom(&a).await;
    a.put_job_success_result()
        .job_id(&job)
        .continuation_token("42")
        .execution_details(pct(100))
        .send()
        .await
        .unwrap();
    cp.advance(std::time::Duration::from_secs(30));
    let view = cp.execution(&label);
    assert_eq!(
        view["status"], "InProgress",
        "AWS's reading: a token keeps the action running"
    );
    assert_eq!(view["jobs"][1]["status"], "Queued");
    assert_eq!(view["jobs"][1]["continuationToken"], "42");
    assert_eq!(
        cp.events_with_rule("AG-FINAL-TOKEN").len(),
        1,
        "recorded whichever final_on is set"
    );

    // A success without a token ends it, with a warning when it does not say 100.
    let job = take_custom(&a).await;
    a.put_job_success_result()
        .job_id(&job)
        .execution_details(pct(90))
        .send()
        .await
        .unwrap();
    assert_eq!(cp.execution(&label)["status"], "Succeeded");
    let warnings: Vec<_> = cp
        .events_with_rule("AG-FINAL-TOKEN")
        .into_iter()
        .filter(|e| e.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_for_a_job_never_acknowledged_is_refused_with_cp_ack() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, json!({}));
    let label = cp.start_execution(CUSTOM, "short");
    let a = cp.client(KEY1);
    let out = a
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .send()
        .await
        .unwrap();
    let job = out.jobs()[0].id().unwrap().to_string();
    let err = a
        .put_job_success_result()
        .job_id(&job)
        .continuation_token("1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidJobStateException");
    assert!(error_message(&err).contains("CP-ACK"));
    let view = cp.execution(&label);
    assert_eq!(
        view["jobs"][0]["status"], "Dispatched",
        "the refused result changed nothing"
    );
    assert_eq!(cp.events_with_rule("CP-ACK").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_call_with_the_wrong_client_token_is_refused_with_cp_client() {
    let cp = TestCp::start().await;
    cp.register(THIRD_PARTY, json!({}));
    let label = cp.start_execution(THIRD_PARTY, "short");
    let a = cp.client(KEY1);
    let out = a
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .send()
        .await
        .unwrap();
    let job = out.jobs()[0].job_id().unwrap().to_string();
    let err = a
        .get_third_party_job_details()
        .job_id(&job)
        .client_token("not-the-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidClientTokenException");
    assert!(error_message(&err).contains("CP-CLIENT"));
    let details = a
        .get_third_party_job_details()
        .job_id(&job)
        .client_token(CLIENT.1)
        .send()
        .await
        .unwrap();
    let nonce = details.job_details().unwrap().nonce().unwrap().to_string();
    let err = a
        .acknowledge_third_party_job()
        .job_id(&job)
        .nonce(&nonce)
        .client_token("not-the-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidClientTokenException");
    assert_eq!(cp.execution(&label)["jobs"][0]["status"], "Dispatched");
    let ev = cp.events_with_rule("CP-CLIENT");
    assert_eq!(ev.len(), 2);
    assert!(
        ev.iter().all(|e| !e.detail.contains(CLIENT.1)),
        "client tokens never reach the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_calls_cannot_reach_third_party_jobs() {
    let cp = TestCp::start().await;
    cp.register(THIRD_PARTY, json!({}));
    cp.start_execution(THIRD_PARTY, "short");
    let a = cp.client(KEY1);
    let out = a
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .send()
        .await
        .unwrap();
    let job = out.jobs()[0].job_id().unwrap().to_string();
    let err = a.get_job_details().job_id(&job).send().await.unwrap_err();
    assert_eq!(error_code(&err), "JobNotFoundException");
}
