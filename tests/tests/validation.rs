//! Validation is the server's job (`docs/protocol.md`, "Wire"): the real Rust SDK sends out-of-range values as
//! they are, and the fake answers `ValidationException` naming the member and the value, or the modeled
//! error (`ActionTypeNotFoundException`, `JobNotFoundException`, `OutputVariablesSizeExceededException`).
//! Every refusal leaves the job and its execution exactly as they were.

use std::sync::{Arc, Mutex};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::{Value, json};
use tests::{CLIENT, CUSTOM, KEY1, THIRD_PARTY, TestCp, error_code, error_message, sdk_type};

const UNKNOWN_UUID: &str = "0badc0de-0000-4000-8000-000000000000";
/// CP-OUTPUT-VARS: the total size of a final success's output variables.
const OUTPUT_VARIABLES_LIMIT: usize = 122_880;

/// Records the JSON body of every request the SDK sends, to show what the client put on the wire.
#[derive(Clone, Debug, Default)]
struct SentBodies(Arc<Mutex<Vec<Value>>>);

impl SentBodies {
    fn last(&self) -> Value {
        self.0
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request was sent")
    }
}

impl Intercept for SentBodies {
    fn name(&self) -> &'static str {
        "SentBodies"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let bytes = context.request().body().bytes().unwrap_or_default();
        let body = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        self.0.lock().unwrap().push(body);
        Ok(())
    }
}

/// A fake with both test action types and a client for the first replica.
async fn setup() -> (TestCp, Client) {
    let cp = TestCp::start().await;
    // PresetName queryable: custom polls name it in queryParam.
    cp.register(
        CUSTOM,
        json!({"configurationProperties": tests::apica_properties(true)}),
    );
    cp.register(THIRD_PARTY, json!({}));
    let client = cp.client(KEY1);
    (cp, client)
}

/// Starts a custom execution and takes its first job to InProgress through the SDK: (label, job id).
async fn acked_custom(cp: &TestCp, client: &Client, preset: &str) -> (String, String) {
    let label = cp.start_execution(CUSTOM, preset);
    let polled = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .query_param("PresetName", preset)
        .send()
        .await
        .unwrap();
    let job = &polled.jobs()[0];
    let id = job.id().unwrap().to_string();
    client
        .acknowledge_job()
        .job_id(&id)
        .nonce(job.nonce().unwrap())
        .send()
        .await
        .unwrap();
    (label, id)
}

/// Starts a third-party execution and takes its first job to InProgress through the SDK: (label, job id).
async fn acked_third_party(cp: &TestCp, client: &Client, preset: &str) -> (String, String) {
    let label = cp.start_execution(THIRD_PARTY, preset);
    let polled = client
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .send()
        .await
        .unwrap();
    let id = polled.jobs()[0].job_id().unwrap().to_string();
    let details = client
        .get_third_party_job_details()
        .job_id(&id)
        .client_token(CLIENT.1)
        .send()
        .await
        .unwrap();
    let nonce = details.job_details().unwrap().nonce().unwrap().to_string();
    client
        .acknowledge_third_party_job()
        .job_id(&id)
        .nonce(nonce)
        .client_token(CLIENT.1)
        .send()
        .await
        .unwrap();
    (label, id)
}

/// Asserts a refused SDK call: its code, and that its message contains every one of `mentions`.
fn assert_refused<E, R>(
    result: Result<impl std::fmt::Debug, aws_sdk_codepipeline::error::SdkError<E, R>>,
    code: &str,
    mentions: &[&str],
) where
    E: aws_sdk_codepipeline::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    let err = result.expect_err("the call must be refused");
    assert_eq!(error_code(&err), code, "{}", error_message(&err));
    let message = error_message(&err);
    for m in mentions {
        assert!(
            message.contains(m),
            "message {message:?} should mention {m:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_complete_over_100_is_refused_naming_member_and_value() {
    let (cp, client) = setup().await;
    let (label, job) = acked_custom(&cp, &client, "p1").await;
    let (tp_label, tp_job) = acked_third_party(&cp, &client, "p2").await;
    let before = (cp.execution(&label), cp.execution(&tp_label));

    let r = client
        .put_job_success_result()
        .job_id(&job)
        .execution_details(ExecutionDetails::builder().percent_complete(150).build())
        .send()
        .await;
    assert_refused(
        r,
        "ValidationException",
        &["executionDetails.percentComplete", "'150'", "100"],
    );
    let r = client
        .put_third_party_job_success_result()
        .job_id(&tp_job)
        .client_token(CLIENT.1)
        .execution_details(ExecutionDetails::builder().percent_complete(-1).build())
        .send()
        .await;
    assert_refused(
        r,
        "ValidationException",
        &["executionDetails.percentComplete", "'-1'"],
    );

    assert_eq!(
        (cp.execution(&label), cp.execution(&tp_label)),
        before,
        "refused results change nothing"
    );
    // The job still takes a valid result.
    client
        .put_job_success_result()
        .job_id(&job)
        .execution_details(ExecutionDetails::builder().percent_complete(100).build())
        .send()
        .await
        .unwrap();
    assert_eq!(cp.execution(&label)["status"], "Succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_batch_size_zero_is_sent_by_the_sdk_and_refused() {
    let (cp, client) = setup().await;
    let label = cp.start_execution(CUSTOM, "p1");
    let tp_label = cp.start_execution(THIRD_PARTY, "p2");
    let before = (cp.execution(&label), cp.execution(&tp_label));
    let sent = SentBodies::default();

    let r = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .max_batch_size(0)
        .customize()
        .interceptor(sent.clone())
        .send()
        .await;
    assert_eq!(
        sent.last()["maxBatchSize"],
        json!(0),
        "the Rust SDK sends 0 as it is: {}",
        sent.last()
    );
    assert_refused(
        r,
        "ValidationException",
        &["maxBatchSize", "'0'", "greater than or equal to 1"],
    );
    let r = client
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .max_batch_size(-5)
        .customize()
        .interceptor(sent.clone())
        .send()
        .await;
    assert_eq!(sent.last()["maxBatchSize"], json!(-5));
    assert_refused(r, "ValidationException", &["maxBatchSize", "'-5'"]);

    assert_eq!(
        (cp.execution(&label), cp.execution(&tp_label)),
        before,
        "a refused poll dispatches nothing"
    );
    let polled = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .query_param("PresetName", "p1")
        .max_batch_size(1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        polled.jobs().len(),
        1,
        "the job is still there for a valid poll"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_token_of_2049_chars_is_refused_and_2048_accepted() {
    let (cp, client) = setup().await;
    let (label, job) = acked_custom(&cp, &client, "p1").await;
    let (tp_label, tp_job) = acked_third_party(&cp, &client, "p2").await;
    let before = (cp.execution(&label), cp.execution(&tp_label));

    let long = "t".repeat(2049);
    let r = client
        .put_job_success_result()
        .job_id(&job)
        .continuation_token(&long)
        .send()
        .await;
    // The value is shown shortened: its first 50 characters, then `...`.
    let shown = format!("'{}...'", "t".repeat(50));
    assert_refused(
        r,
        "ValidationException",
        &[
            "at 'continuationToken'",
            &shown,
            "less than or equal to 2048",
        ],
    );
    let r = client
        .put_third_party_job_success_result()
        .job_id(&tp_job)
        .client_token(CLIENT.1)
        .continuation_token(&long)
        .send()
        .await;
    assert_refused(r, "ValidationException", &["continuationToken", "2048"]);
    assert_eq!(
        (cp.execution(&label), cp.execution(&tp_label)),
        before,
        "refused results change nothing"
    );

    let exact = "t".repeat(2048);
    client
        .put_job_success_result()
        .job_id(&job)
        .continuation_token(&exact)
        .send()
        .await
        .unwrap();
    client
        .put_third_party_job_success_result()
        .job_id(&tp_job)
        .client_token(CLIENT.1)
        .continuation_token(&exact)
        .send()
        .await
        .unwrap();
    for l in [&label, &tp_label] {
        let view = cp.execution(l);
        assert_eq!(view["status"], "InProgress", "a token continues the action");
        assert_eq!(
            view["jobs"][1]["continuationToken"],
            json!(exact),
            "the next job carries the whole token"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_param_with_two_entries_is_refused() {
    let (cp, client) = setup().await;
    let label = cp.start_execution(CUSTOM, "p1");
    let before = cp.execution(&label);
    let r = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .query_param("PresetName", "p1")
        .query_param("RunnableFile", "p1.jmx")
        .send()
        .await;
    assert_refused(
        r,
        "ValidationException",
        &["at 'queryParam'", "less than or equal to 1"],
    );
    assert_eq!(cp.execution(&label), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_poll_with_a_query_param_key_that_is_not_queryable_is_refused() {
    let (cp, client) = setup().await;
    let label = cp.start_execution(CUSTOM, "p1");
    let before = cp.execution(&label);
    let r = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .query_param("RunnableFile", "p1")
        .send()
        .await;
    assert_refused(
        r,
        "ValidationException",
        &["RunnableFile", "not the queryable property", "PresetName"],
    );
    assert_eq!(cp.execution(&label), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_for_jobs_with_owner_third_party_is_refused() {
    let (cp, client) = setup().await;
    let label = cp.start_execution(THIRD_PARTY, "p1");
    let before = cp.execution(&label);
    let r = client
        .poll_for_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .send()
        .await;
    assert_refused(r, "ValidationException", &["ThirdParty", "Custom"]);
    assert_eq!(
        cp.execution(&label),
        before,
        "the third-party job was not handed to a custom poll"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_for_third_party_jobs_with_owner_custom_is_refused() {
    let (cp, client) = setup().await;
    let label = cp.start_execution(CUSTOM, "p1");
    let before = cp.execution(&label);
    let r = client
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .send()
        .await;
    assert_refused(r, "ValidationException", &["Custom", "ThirdParty"]);
    assert_eq!(
        cp.execution(&label),
        before,
        "the custom job was not handed to a third-party poll"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_action_type_is_action_type_not_found() {
    let (_cp, client) = setup().await;
    let r = client
        .poll_for_jobs()
        .action_type_id(sdk_type("Test/Custom/NoSuchProvider/1"))
        .send()
        .await;
    assert_refused(r, "ActionTypeNotFoundException", &["NoSuchProvider"]);
    let r = client
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type("Test/ThirdParty/ApicaLoadtest/2"))
        .send()
        .await;
    assert_refused(r, "ActionTypeNotFoundException", &["ApicaLoadtest"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_type_outside_the_enum_is_refused() {
    let (cp, client) = setup().await;
    let (label, job) = acked_custom(&cp, &client, "p1").await;
    let (tp_label, tp_job) = acked_third_party(&cp, &client, "p2").await;
    let before = (cp.execution(&label), cp.execution(&tp_label));
    let details = |t: &str| {
        FailureDetails::builder()
            .r#type(FailureType::from(t))
            .message("it broke")
            .build()
            .expect("failure details")
    };
    let r = client
        .put_job_failure_result()
        .job_id(&job)
        .failure_details(details("Oops"))
        .send()
        .await;
    assert_refused(
        r,
        "ValidationException",
        &["failureDetails.type", "'Oops'", "JobFailed"],
    );
    // Enum values are case-sensitive.
    let r = client
        .put_third_party_job_failure_result()
        .job_id(&tp_job)
        .client_token(CLIENT.1)
        .failure_details(details("jobfailed"))
        .send()
        .await;
    assert_refused(
        r,
        "ValidationException",
        &["failureDetails.type", "'jobfailed'"],
    );
    assert_eq!(
        (cp.execution(&label), cp.execution(&tp_label)),
        before,
        "a refused failure does not fail the action"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_job_id_that_is_not_a_uuid_is_refused() {
    let (_cp, client) = setup().await;
    let r = client
        .acknowledge_job()
        .job_id("not-a-uuid")
        .nonce("1")
        .send()
        .await;
    assert_refused(
        r,
        "ValidationException",
        &["at 'jobId'", "'not-a-uuid'", "regular expression"],
    );
    let r = client
        .get_job_details()
        .job_id(UNKNOWN_UUID.to_uppercase())
        .send()
        .await;
    assert_refused(r, "ValidationException", &["at 'jobId'"]);
    let r = client.put_job_success_result().job_id("42").send().await;
    assert_refused(r, "ValidationException", &["'42'"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_job_id_is_job_not_found() {
    let (cp, client) = setup().await;
    let r = client.get_job_details().job_id(UNKNOWN_UUID).send().await;
    assert_refused(r, "JobNotFoundException", &[UNKNOWN_UUID]);
    let r = client
        .acknowledge_job()
        .job_id(UNKNOWN_UUID)
        .nonce("1")
        .send()
        .await;
    assert_refused(r, "JobNotFoundException", &[UNKNOWN_UUID]);
    let r = client
        .put_job_success_result()
        .job_id(UNKNOWN_UUID)
        .send()
        .await;
    assert_refused(r, "JobNotFoundException", &[UNKNOWN_UUID]);
    let r = client
        .put_job_failure_result()
        .job_id(UNKNOWN_UUID)
        .failure_details(
            FailureDetails::builder()
                .r#type(FailureType::JobFailed)
                .message("m")
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_refused(r, "JobNotFoundException", &[UNKNOWN_UUID]);
    let r = client
        .get_third_party_job_details()
        .job_id("no-such-job")
        .client_token(CLIENT.1)
        .send()
        .await;
    assert_refused(r, "JobNotFoundException", &["no-such-job"]);

    // A job of the other family is not found either: custom calls see only custom jobs.
    let (tp_label, tp_job) = acked_third_party(&cp, &client, "p1").await;
    let before = cp.execution(&tp_label);
    let r = client.put_job_success_result().job_id(&tp_job).send().await;
    assert_refused(r, "JobNotFoundException", &[tp_job.as_str()]);
    assert_eq!(cp.execution(&tp_label), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_variables_with_a_continuation_token_are_refused_naming_cp_output_vars() {
    let (cp, client) = setup().await;
    let (label, job) = acked_custom(&cp, &client, "p1").await;
    let before = cp.execution(&label);
    let r = client
        .put_job_success_result()
        .job_id(&job)
        .continuation_token("next")
        .output_variables("testId", "77")
        .send()
        .await;
    assert_refused(
        r,
        "ValidationException",
        &["CP-OUTPUT-VARS", "continuation token"],
    );
    assert_eq!(
        cp.execution(&label),
        before,
        "the job did not succeed and no continuation job was created"
    );
    let refusals = cp.events_with_rule("CP-OUTPUT-VARS");
    assert_eq!(
        refusals.len(),
        1,
        "the refusal is recorded under its rule: {refusals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_variables_over_122880_bytes_are_refused_and_the_limit_accepted() {
    let (cp, client) = setup().await;
    let (label, job) = acked_custom(&cp, &client, "p1").await;
    let before = cp.execution(&label);
    // Key "k" + value: one byte over the limit.
    let over = "v".repeat(OUTPUT_VARIABLES_LIMIT);
    let r = client
        .put_job_success_result()
        .job_id(&job)
        .execution_details(ExecutionDetails::builder().percent_complete(100).build())
        .output_variables("k", &over)
        .send()
        .await;
    assert_refused(
        r,
        "OutputVariablesSizeExceededException",
        &["122881", "122880"],
    );
    // Spread over many variables, the total still counts.
    let mut many = client
        .put_job_success_result()
        .job_id(&job)
        .execution_details(ExecutionDetails::builder().percent_complete(100).build());
    for i in 0..100 {
        many = many.output_variables(format!("v{i:03}"), "x".repeat(1225));
    }
    assert_refused(
        many.send().await,
        "OutputVariablesSizeExceededException",
        &["122900"],
    );
    assert_eq!(
        cp.execution(&label),
        before,
        "the refused results change nothing"
    );

    let exact = "v".repeat(OUTPUT_VARIABLES_LIMIT - 1);
    client
        .put_job_success_result()
        .job_id(&job)
        .execution_details(ExecutionDetails::builder().percent_complete(100).build())
        .output_variables("k", &exact)
        .send()
        .await
        .unwrap();
    let view = cp.execution(&label);
    assert_eq!(view["status"], "Succeeded");
    assert_eq!(
        view["outputVariables"]["k"].as_str().map(str::len),
        Some(OUTPUT_VARIABLES_LIMIT - 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_change_no_state() {
    // One InProgress job and one Queued job of each family; every kind of refusal, then both views are
    // unchanged, no job was dispatched or closed, and each job still completes normally.
    let (cp, client) = setup().await;
    let (running, job) = acked_custom(&cp, &client, "run").await;
    let (tp_running, tp_job) = acked_third_party(&cp, &client, "tprun").await;
    let queued = cp.start_execution(CUSTOM, "queued");
    let tp_queued = cp.start_execution(THIRD_PARTY, "tpqueued");
    let labels = [&running, &tp_running, &queued, &tp_queued];
    let snapshot = || labels.map(|l| cp.execution(l));
    let before = snapshot();
    let events_before = cp
        .sim
        .events
        .all()
        .iter()
        .filter(|e| e.kind != "call_refused" && e.kind != "validation_refused")
        .count();

    let ok = |code: &str, mentions: &[&str]| {
        (
            code.to_string(),
            mentions.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    let mut expected = Vec::new();
    let mut got = Vec::new();
    macro_rules! refused {
        ($call:expr, $code:expr, $mentions:expr) => {{
            let err = $call.send().await.expect_err("refused");
            got.push((error_code(&err), error_message(&err)));
            expected.push(ok($code, $mentions));
        }};
    }
    refused!(
        client
            .poll_for_jobs()
            .action_type_id(sdk_type(CUSTOM))
            .max_batch_size(0),
        "ValidationException",
        &["maxBatchSize"]
    );
    refused!(
        client
            .poll_for_jobs()
            .action_type_id(sdk_type(CUSTOM))
            .query_param("PresetName", "queued")
            .query_param("RunnableFile", "x"),
        "ValidationException",
        &["queryParam"]
    );
    refused!(
        client
            .poll_for_jobs()
            .action_type_id(sdk_type(CUSTOM))
            .query_param("RunnableFile", "queued"),
        "ValidationException",
        &["RunnableFile", "queryable"]
    );
    refused!(
        client.poll_for_jobs().action_type_id(sdk_type(THIRD_PARTY)),
        "ValidationException",
        &["ThirdParty"]
    );
    refused!(
        client
            .poll_for_third_party_jobs()
            .action_type_id(sdk_type(CUSTOM)),
        "ValidationException",
        &["Custom"]
    );
    refused!(
        client
            .put_job_success_result()
            .job_id(&job)
            .execution_details(ExecutionDetails::builder().percent_complete(101).build()),
        "ValidationException",
        &["percentComplete", "'101'"]
    );
    refused!(
        client
            .put_job_success_result()
            .job_id(&job)
            .continuation_token("t".repeat(2049)),
        "ValidationException",
        &["continuationToken"]
    );
    refused!(
        client
            .put_job_success_result()
            .job_id(&job)
            .continuation_token("t")
            .output_variables("a", "b"),
        "ValidationException",
        &["CP-OUTPUT-VARS"]
    );
    refused!(
        client
            .put_job_success_result()
            .job_id(&job)
            .output_variables("k", "v".repeat(OUTPUT_VARIABLES_LIMIT)),
        "OutputVariablesSizeExceededException",
        &["122881"]
    );
    refused!(
        client
            .put_job_failure_result()
            .job_id(&job)
            .failure_details(
                FailureDetails::builder()
                    .r#type(FailureType::from("Oops"))
                    .message("m")
                    .build()
                    .unwrap()
            ),
        "ValidationException",
        &["'Oops'"]
    );
    refused!(
        client
            .put_third_party_job_success_result()
            .job_id(&tp_job)
            .client_token(CLIENT.1)
            .execution_details(ExecutionDetails::builder().percent_complete(150).build()),
        "ValidationException",
        &["'150'"]
    );
    refused!(
        client.acknowledge_job().job_id("nope").nonce("1"),
        "ValidationException",
        &["'nope'"]
    );
    refused!(
        client.acknowledge_job().job_id(UNKNOWN_UUID).nonce("1"),
        "JobNotFoundException",
        &[UNKNOWN_UUID]
    );

    for ((code, message), (want, mentions)) in got.iter().zip(&expected) {
        assert_eq!(code, want, "{message}");
        for m in mentions {
            assert!(
                message.contains(m.as_str()),
                "{message:?} should mention {m:?}"
            );
        }
    }
    assert_eq!(snapshot(), before, "refused calls changed an execution");
    let events_after = cp
        .sim
        .events
        .all()
        .iter()
        .filter(|e| e.kind != "call_refused" && e.kind != "validation_refused")
        .count();
    assert_eq!(
        events_after, events_before,
        "refused calls produced only refusal events"
    );

    // Everything still works: the running jobs take results, the queued ones are polled.
    client
        .put_job_success_result()
        .job_id(&job)
        .execution_details(ExecutionDetails::builder().percent_complete(100).build())
        .send()
        .await
        .unwrap();
    client
        .put_third_party_job_success_result()
        .job_id(&tp_job)
        .client_token(CLIENT.1)
        .execution_details(ExecutionDetails::builder().percent_complete(100).build())
        .send()
        .await
        .unwrap();
    let polled = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .query_param("PresetName", "queued")
        .send()
        .await
        .unwrap();
    assert_eq!(polled.jobs().len(), 1);
    let polled = client
        .poll_for_third_party_jobs()
        .action_type_id(sdk_type(THIRD_PARTY))
        .send()
        .await
        .unwrap();
    assert_eq!(polled.jobs().len(), 1);
    assert_eq!(cp.execution(&running)["status"], "Succeeded");
    assert_eq!(cp.execution(&tp_running)["status"], "Succeeded");
}
