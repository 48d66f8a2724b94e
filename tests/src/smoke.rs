//! The SDK wire smoke scenario (`tests/tests/sdk_python.rs`, `tests/tests/sdk_js.rs`): running an SDK's
//! smoke script (`tests/sdk/boto3_smoke.py`, `tests/sdk/js_smoke.mjs`) against an in-process fake, and the
//! expectations both SDKs are held to.
//!
//! The scenario: a third-party execution and a custom execution on a fresh fake. The script's first run
//! answers the first third-party job with a continuation token and the Details link, runs the custom job to a
//! `JobFailed` failure and provokes one error of each kind; the test then moves the simulated clock past the
//! continuation delay and the script's second run finishes the continuation job with 100%. After each run
//! the test checks what the SDK parsed (the script's JSON on stdout) and the fake's own view.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::Command;

use crate::sdk::{run_checked, sdk_dir};
use crate::{CLIENT, CUSTOM, KEY1, KEY2, THIRD_PARTY, TestCp};

/// Real time one script run may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// How to run one SDK's smoke script: the program, its arguments and extra environment. The script also
/// gets `CP_PHASE` and the `CP_*` facts of the scenario, and an environment cleared of everything else
/// (no AWS profile, proxy or endpoint setting of the machine can interfere).
pub struct Script {
    /// `python3`, `node`.
    pub program: String,
    /// The script path and its arguments.
    pub args: Vec<String>,
    /// Extra variables (`PYTHONPATH`, `SDK_JS_NODE_MODULES`).
    pub env: Vec<(String, String)>,
    /// For messages: `boto3`, `JS v3`.
    pub sdk: String,
}

const TP_PRESET: &str = "smoke-tp";
const CUSTOM_PRESET: &str = "smoke-custom";
const TP_URL: &str = "http://apica.test/jobs/153245?preset=smoke-tp";

impl Script {
    async fn run(&self, phase: &str, facts: &[(&str, String)]) -> Value {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).env_clear().current_dir(sdk_dir());
        for var in ["PATH", "HOME", "SYSTEMROOT", "TMPDIR"] {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        cmd.env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("CP_PHASE", phase);
        for (k, v) in facts {
            cmd.env(k, v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let out = run_checked(
            &mut cmd,
            &format!("{} smoke script, phase {phase}", self.sdk),
            SCRIPT_TIMEOUT,
        )
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "{} phase {phase}: stdout is not one JSON object ({e})\n--- stdout\n{stdout}\n--- stderr\n{}",
                self.sdk,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        eprintln!(
            "{} phase {phase} ({:.1?}): {v}",
            self.sdk,
            started.elapsed()
        );
        v
    }
}

/// Asserts `v[pointer] == want`, naming the SDK and showing everything the script printed.
#[track_caller]
fn expect(sdk: &str, v: &Value, pointer: &str, want: Value) {
    let got = v.pointer(pointer).cloned().unwrap_or(Value::Null);
    assert_eq!(
        got, want,
        "{sdk}: {pointer} is {got}, want {want}\nscript output: {v:#}"
    );
}

/// Asserts `v[pointer]` is a non-empty string.
#[track_caller]
fn expect_nonempty(sdk: &str, v: &Value, pointer: &str) -> String {
    let got = v
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        !got.is_empty(),
        "{sdk}: {pointer} is empty or missing\nscript output: {v:#}"
    );
    got.to_string()
}

/// Asserts the SDK raised `code` as a 400 with a message.
#[track_caller]
fn expect_error(sdk: &str, v: &Value, name: &str, code: &str) {
    expect(sdk, v, &format!("/errors/{name}/code"), json!(code));
    expect(sdk, v, &format!("/errors/{name}/status"), json!(400));
    expect_nonempty(sdk, v, &format!("/errors/{name}/message"));
}

/// Asserts the script's parsed `lastStatusChange` (epoch seconds) is the simulated `now`.
#[track_caller]
fn expect_time(sdk: &str, v: &Value, pointer: &str, now: f64) {
    let got = v.pointer(pointer).and_then(Value::as_f64);
    assert!(
        got.is_some_and(|t| (t - now).abs() < 0.001),
        "{sdk}: {pointer} is {got:?}, want the simulated now {now}\nscript output: {v:#}"
    );
}

/// The whole smoke scenario for one SDK.
pub async fn smoke(script: Script) {
    let sdk = script.sdk.clone();
    let cp = TestCp::start().await;
    cp.register(THIRD_PARTY, json!({}));
    // PresetName queryable: custom polls name it in queryParam.
    cp.register(
        CUSTOM,
        json!({"configurationProperties": crate::apica_properties(true)}),
    );
    let tp = cp.start_execution(THIRD_PARTY, TP_PRESET);
    let custom = cp.start_execution(CUSTOM, CUSTOM_PRESET);
    let pipeline = cp.execution(&tp)["pipelineName"]
        .as_str()
        .expect("pipelineName")
        .to_string();
    let facts = [
        ("CP_ENDPOINT", cp.url()),
        ("CP_KEY1_ID", KEY1.0.to_string()),
        ("CP_KEY1_SECRET", KEY1.1.to_string()),
        ("CP_KEY2_ID", KEY2.0.to_string()),
        ("CP_KEY2_SECRET", KEY2.1.to_string()),
        ("CP_CLIENT_ID", CLIENT.0.to_string()),
        ("CP_CLIENT_TOKEN", CLIENT.1.to_string()),
        ("CP_THIRD_PARTY", THIRD_PARTY.to_string()),
        ("CP_CUSTOM", CUSTOM.to_string()),
        ("CP_TP_PRESET", TP_PRESET.to_string()),
        ("CP_CUSTOM_PRESET", CUSTOM_PRESET.to_string()),
        ("CP_TP_PIPELINE", pipeline.clone()),
    ];

    // Phase 1: the first third-party job, the custom flow, the errors.
    let v = script.run("first", &facts).await;
    let s = sdk.as_str();
    expect(s, &v, "/third_party/polled", json!(1));
    expect_nonempty(s, &v, "/third_party/request_id");
    expect(s, &v, "/third_party/client_id", json!(CLIENT.0));
    let tp_job = expect_nonempty(s, &v, "/third_party/job_id");
    expect(s, &v, "/third_party/details_job_id", json!(tp_job));
    expect(s, &v, "/third_party/continuation_token", Value::Null);
    expect(s, &v, "/third_party/preset", json!(TP_PRESET));
    expect(s, &v, "/third_party/action_type_owner", json!("ThirdParty"));
    expect(s, &v, "/third_party/ack_status", json!("InProgress"));
    expect(s, &v, "/third_party/put_status", json!(200));

    let now = cp.sim.clock.now().epoch_seconds();
    expect(s, &v, "/state/pipeline", json!(pipeline));
    expect(s, &v, "/state/status", json!("InProgress"));
    expect(s, &v, "/state/external_execution_id", json!("153245"));
    expect(s, &v, "/state/external_execution_url", json!(TP_URL));
    expect(s, &v, "/state/summary", json!("Load test started"));
    expect(s, &v, "/state/percent_complete", json!(0));
    expect(s, &v, "/state/last_status_change_type", json!("datetime"));
    expect_time(s, &v, "/state/last_status_change", now);

    expect(s, &v, "/custom/polled_other_preset", json!(0));
    expect(s, &v, "/custom/polled", json!(1));
    let custom_job = expect_nonempty(s, &v, "/custom/job_id");
    expect(s, &v, "/custom/preset", json!(CUSTOM_PRESET));
    expect(s, &v, "/custom/ack_status", json!("InProgress"));
    expect(s, &v, "/custom/put_status", json!(200));

    expect_error(s, &v, "wrong_client_token", "InvalidClientTokenException");
    expect_error(s, &v, "wrong_nonce_third_party", "InvalidNonceException");
    expect_error(s, &v, "wrong_nonce_custom", "InvalidNonceException");
    expect_error(s, &v, "percent_150", "ValidationException");
    let msg = v
        .pointer("/errors/percent_150/message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        msg.contains("percentComplete"),
        "{s}: the ValidationException names the member: {msg}"
    );
    expect_error(s, &v, "bad_secret", "InvalidSignatureException");
    expect_error(s, &v, "unknown_key", "UnrecognizedClientException");

    // The fake's side: the third-party action runs on with its Details link; the custom one failed.
    let view = cp.execution(&tp);
    assert_eq!(view["status"], "InProgress", "{s}: {view:#}");
    assert_eq!(view["externalExecutionUrl"], TP_URL, "{s}: {view:#}");
    assert_eq!(
        view["jobs"].as_array().map(Vec::len),
        Some(2),
        "{s}: {view:#}"
    );
    assert_eq!(view["jobs"][0]["id"], json!(tp_job), "{s}: {view:#}");
    assert_eq!(view["jobs"][0]["status"], "Succeeded", "{s}: {view:#}");
    // The continuation job exists but waits out the continuation delay before it can be polled.
    assert_eq!(view["jobs"][1]["status"], "Created", "{s}: {view:#}");
    assert_eq!(
        view["jobs"][1]["continuationToken"], "153245:0",
        "{s}: {view:#}"
    );
    let view = cp.execution(&custom);
    assert_eq!(view["status"], "Failed", "{s}: {view:#}");
    assert_eq!(view["jobs"][0]["id"], json!(custom_job), "{s}: {view:#}");
    assert_eq!(view["jobs"][0]["status"], "Failed", "{s}: {view:#}");
    assert_eq!(view["errorDetails"]["code"], "JobFailed", "{s}: {view:#}");
    assert_eq!(
        view["errorDetails"]["message"], "Load test failed: p95 over budget",
        "{s}: {view:#}"
    );
    assert_eq!(
        view["percentComplete"],
        Value::Null,
        "{s}: the refused 150% left no trace: {view:#}"
    );

    // Phase 2: past the continuation delay, the continuation job carries the token and ends the action.
    cp.advance(Duration::from_secs(30));
    let v = script.run("second", &facts).await;
    expect(s, &v, "/third_party/polled", json!(1));
    expect_nonempty(s, &v, "/third_party/request_id");
    let next_job = expect_nonempty(s, &v, "/third_party/job_id");
    assert_ne!(next_job, tp_job, "{s}: the continuation job is a new job");
    expect(s, &v, "/third_party/continuation_token", json!("153245:0"));
    expect(s, &v, "/third_party/ack_status", json!("InProgress"));
    expect(s, &v, "/third_party/put_status", json!(200));

    let now = cp.sim.clock.now().epoch_seconds();
    expect(s, &v, "/state/status", json!("Succeeded"));
    expect(s, &v, "/state/external_execution_id", json!("153245"));
    expect(s, &v, "/state/external_execution_url", json!(TP_URL));
    expect(s, &v, "/state/summary", json!("Load test passed"));
    expect(s, &v, "/state/percent_complete", json!(100));
    expect_time(s, &v, "/state/last_status_change", now);

    let view = cp.execution(&tp);
    assert_eq!(view["status"], "Succeeded", "{s}: {view:#}");
    assert_eq!(view["percentComplete"], 100, "{s}: {view:#}");
    assert_eq!(view["externalExecutionUrl"], TP_URL, "{s}: {view:#}");
    let jobs = view["jobs"].as_array().cloned().unwrap_or_default();
    assert_eq!(jobs.len(), 2, "{s}: {view:#}");
    assert_eq!(jobs[1]["id"], json!(next_job), "{s}: {view:#}");
    assert_eq!(jobs[1]["continuationToken"], "153245:0", "{s}: {view:#}");
    assert_eq!(jobs[1]["status"], "Succeeded", "{s}: {view:#}");
    assert!(
        cp.events_with_rule("AG-FINAL-TOKEN").is_empty(),
        "{s}: no final success carried a token"
    );
}
