//! Property tests over every parser that reads outside input: thousands of arbitrary and mutated inputs,
//! no panic, and every error in its documented shape. (`cargo fuzz` needs a nightly toolchain; these run
//! in CI on stable.)
//!
//! - sim-core: durations, offsets and clock targets (`POST /_sim/clock`, scenario files, fault windows);
//! - scenario files (`Scenario::parse`), arbitrary text and built-in scenarios with a part replaced;
//! - the agent's continuation tokens (`ContinuationToken::parse`, `TokenSealer::open`);
//! - the fake backend's request bodies (`CreateTest::from_json`);
//! - the fake CodePipeline's awsJson request path, bytes to operation, over HTTP: any target, any body,
//!   answers JSON with a `__type` on error.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text shaped like what people write for times, and anything else.
fn time_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[+-]?[0-9eE.]{0,30}(:[0-9eE.+-]{0,20}){0,3}",
        "[0-9]{1,25}(ns|us|ms|s|m|h|d|w|y|months|years)",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{0,15}Z?",
        Just("+1e300:00:00".to_string()),
        Just("18446744073709551615s".to_string()),
    ]
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn time_parsers_never_panic(text in time_like()) {
        let _ = sim_core::parse_duration(&text);
        let _ = text.parse::<sim_core::SimOffset>();
        let _ = text.parse::<sim_core::SimDuration>();
        let origin = sim_core::SimClock::manual().origin();
        let _ = sim_core::http::parse_target(&text, origin);
    }

    #[test]
    fn continuation_tokens_never_panic(text in prop_oneof![
        any::<String>(),
        "(pending:)?[a-z0-9:-]{0,40}(;f=[0-9a-z]{0,12})?(;k=[0-9a-f]{0,10})?(;s=[0-9a-fA-F]{0,70})?",
    ]) {
        let _ = agent::ContinuationToken::parse(&text);
        let sealer = agent::signing::TokenSealer::new(
            agent::signing::TokenKeys::new(None, Vec::new()),
            Duration::from_secs(60),
        );
        let binding = agent::signing::ExecutionBinding::ActionExecution("x".into());
        let _ = sealer.open(&text, &binding);
    }

    #[test]
    fn backend_request_bodies_are_refused_in_shape(body in prop_oneof![
        any::<Vec<u8>>(),
        any::<String>().prop_map(String::into_bytes),
        (any::<String>(), any::<String>(), prop::option::of(any::<String>())).prop_map(|(p, r, k)| {
            serde_json::json!({"preset": p, "runnableFile": r, "idempotencyKey": k}).to_string().into_bytes()
        }),
    ]) {
        if let Err(e) = fake_apica::request::CreateTest::from_json(&body) {
            let status = e.status().as_u16();
            prop_assert!((400..500).contains(&status), "{status} {e}");
            prop_assert!(!e.code().is_empty());
        }
    }
}

/// The built-in scenarios' text, to mutate.
fn builtin_texts() -> Vec<String> {
    scenarios::builtin()
        .iter()
        .map(|(_, t)| t.to_string())
        .collect()
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn scenario_files_load_or_say_why(
        pick in 0usize..64,
        at in 0usize..8192,
        cut in 0usize..64,
        insert in prop_oneof![any::<String>(), "[a-z_=\" \\[\\].0-9+:-]{0,20}"],
        raw in any::<String>(),
    ) {
        let texts = builtin_texts();
        let base = &texts[pick % texts.len()];
        let mut chars: Vec<char> = base.chars().collect();
        let start = at % (chars.len() + 1);
        let end = (start + cut).min(chars.len());
        chars.splice(start..end, insert.chars());
        let mutated: String = chars.into_iter().collect();
        for text in [mutated.as_str(), raw.as_str()] {
            if let Err(e) = scenarios::Scenario::parse(text, Path::new("fuzz.toml")) {
                let message = e.to_string();
                prop_assert!(message.starts_with("fuzz.toml: "), "{message}");
            }
        }
    }
}

/// The awsJson path over HTTP, with signatures off so that every body reaches the parser and the model.
#[test]
fn the_codepipeline_wire_answers_any_request_in_shape() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let settings = fake_codepipeline::Settings {
        verify_signatures: false,
        ..Default::default()
    };
    let cp = runtime.block_on(tests::TestCp::start_with(settings));
    cp.register(tests::CUSTOM, serde_json::json!({}));
    let http = reqwest::Client::new();
    let url = cp.url();
    let operations = [
        "PollForJobs",
        "PollForThirdPartyJobs",
        "AcknowledgeJob",
        "AcknowledgeThirdPartyJob",
        "GetJobDetails",
        "GetThirdPartyJobDetails",
        "PutJobSuccessResult",
        "PutJobFailureResult",
        "PutThirdPartyJobSuccessResult",
        "PutThirdPartyJobFailureResult",
        "CreateCustomActionType",
        "CreatePipeline",
        "GetPipelineState",
        "StartPipelineExecution",
        "ListActionTypes",
        "NoSuchOperation",
        "",
    ];
    let body = prop_oneof![
        any::<Vec<u8>>(),
        any::<String>().prop_map(String::into_bytes),
        // JSON of the right family with wrong or extreme members.
        (
            prop::sample::select(vec![
                "jobId",
                "nonce",
                "actionTypeId",
                "maxBatchSize",
                "queryParam",
                "continuationToken",
                "executionDetails",
                "failureDetails",
                "clientToken",
                "pipeline",
                "name",
            ]),
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
                Just(serde_json::json!({"category": "Test", "owner": "Custom", "provider": "ApicaLoadtest", "version": "1"})),
                Just(serde_json::json!([null, {}, []])),
            ],
        )
            .prop_map(|(k, v)| serde_json::json!({ k: v }).to_string().into_bytes()),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(config(600));
    runner
        .run(
            &(prop::sample::select(operations.to_vec()), body),
            |(operation, body)| {
                let (status, text) = runtime.block_on(async {
                    let resp = http
                        .post(&url)
                        .header("content-type", "application/x-amz-json-1.1")
                        .header("x-amz-target", format!("CodePipeline_20150709.{operation}"))
                        .body(body)
                        .send()
                        .await
                        .expect("the fake answers");
                    let status = resp.status().as_u16();
                    (status, resp.text().await.unwrap_or_default())
                });
                prop_assert!(status < 500, "{operation}: {status} {text}");
                if status >= 400 {
                    let v: Value = serde_json::from_str(&text).map_err(|e| {
                        TestCaseError::fail(format!("{operation}: not JSON ({e}): {text}"))
                    })?;
                    prop_assert!(v["__type"].is_string(), "{operation}: {text}");
                }
                Ok(())
            },
        )
        .expect("every request answered in shape");
}
