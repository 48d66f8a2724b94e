//! A configuration property its action type marks secret reaches the worker (PollForJobs hands it out,
//! as AWS does) and nothing else: no admin endpoint under `/_sim/`, no console page or JSON, no event.
//! A secret is planted in an execution that runs through its first job, and every such output is read
//! and searched for it.

use serde_json::Value;
use tests::{CUSTOM, KEY1, TestCp, sdk_type};

const PLANTED: &str = "planted-s3cret-7f3a91";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_property_reaches_the_worker_and_no_admin_output() {
    let cp = TestCp::start().await;
    cp.register(CUSTOM, serde_json::json!({}));
    let spec = fake_codepipeline::ExecutionSpec {
        action_type: Some(CUSTOM.parse().expect("action type")),
        configuration: [
            ("PresetName".to_string(), "short".to_string()),
            ("RunnableFile".to_string(), "secret.jmx".to_string()),
            ("ApiToken".to_string(), PLANTED.to_string()),
        ]
        .into_iter()
        .collect(),
        client_id: None,
        label: None,
        ..Default::default()
    };
    let label = cp.fake.core().start_execution(spec).expect("start")["executionId"]
        .as_str()
        .expect("label")
        .to_string();

    // The worker gets it, and answers (its summary even repeats it, as a careless worker might).
    let client = cp.client(KEY1);
    let polled = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .send()
        .await
        .expect("PollForJobs");
    let job = &polled.jobs()[0];
    let config = job
        .data()
        .and_then(|d| d.action_configuration())
        .and_then(|c| c.configuration())
        .expect("configuration");
    assert_eq!(config.get("ApiToken").map(String::as_str), Some(PLANTED));
    client
        .acknowledge_job()
        .job_id(job.id().unwrap())
        .nonce(job.nonce().unwrap())
        .send()
        .await
        .expect("ack");
    client
        .put_job_success_result()
        .job_id(job.id().unwrap())
        .continuation_token("t-1")
        .execution_details(
            aws_sdk_codepipeline::types::ExecutionDetails::builder()
                .summary(format!("started with token {PLANTED}"))
                .external_execution_id("x-1")
                .build(),
        )
        .send()
        .await
        .expect("success");

    let http = reqwest::Client::new();
    let base = cp.url();
    let mut seen = Vec::new();
    for path in [
        "/_sim/events?since=0".to_string(),
        "/_sim/state".to_string(),
        "/_sim/executions".to_string(),
        format!("/_sim/executions/{label}"),
        "/_sim/activity".to_string(),
        "/_sim/console.json".to_string(),
        "/_sim/console/view".to_string(),
    ] {
        let body = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        assert!(!body.is_empty(), "{path} answered nothing");
        assert!(!body.contains(PLANTED), "{path} shows the secret:\n{body}");
        seen.push(path);
    }
    let page = http
        .get(format!("{base}/"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET /")
        .text()
        .await
        .expect("page");
    assert!(
        page.contains("<html") || page.contains("<!DOCTYPE"),
        "{page}"
    );
    assert!(!page.contains(PLANTED), "the console page shows the secret");
    // The admin view still says there is one.
    let view: Value = cp.execution(&label);
    assert_eq!(view["configuration"]["ApiToken"], "****", "{view}");
    assert_eq!(view["configuration"]["PresetName"], "short", "{view}");
    assert_eq!(seen.len(), 7);
}
