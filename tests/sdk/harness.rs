//! Shared by the SDK wire smoke tests (`tests/tests/sdk_python.rs`, `tests/tests/sdk_js.rs`, which include
//! this file with `#[path]`): installing a pinned SDK once into the cargo target dir, running a smoke script
//! against an in-process fake, and the expectations both SDKs are held to.
//!
//! The scenario: a third-party execution and a custom execution on a fresh fake. The script's first run
//! answers the first third-party job with a continuation token and the Details link, runs the custom job to a
//! `JobFailed` failure and provokes one error of each kind; the test then moves the simulated clock past the
//! continuation delay and the script's second run finishes the continuation job with 100%. After each run
//! the test checks what the SDK parsed (the script's JSON on stdout) and the fake's own view.

// Included by several test crates, each of which uses a part.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tests::{CLIENT, CUSTOM, KEY1, KEY2, THIRD_PARTY, TestCp};
use tokio::process::Command;

/// Real time an install (pip / npm) may take before the test gives up.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Real time one script run may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Written into an install folder once it is complete (before it is renamed into place).
const MARKER: &str = ".installed";

/// The workspace root (`tests/` is one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `tests/sdk/`: the scripts and the pinned dependency lists.
pub fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk")
}

/// The cargo target dir: `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// FNV-1a over `parts`: a stable cache key for an install (changes when a pin changes).
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Runs `program args` to check a tool is there and returns its trimmed stdout; fails the test with
/// `missing` (what to install) if it cannot be started or fails.
pub async fn require_tool(program: &str, args: &[&str], missing: &str) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => panic!(
            "`{program} {}` failed ({}): {missing}\nstderr: {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run `{program}` ({e}): {missing}"),
    }
}

/// Runs `cmd` to completion within `timeout`; fails the test (with its output) if it fails.
pub async fn run_checked(cmd: &mut Command, what: &str, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("{what}: cannot start {cmd:?}: {e}"),
        Err(_) => panic!("{what}: {cmd:?} did not finish within {timeout:?}"),
    };
    if !out.status.success() {
        panic!(
            "{what}: {cmd:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Removes a staging folder if an install panics half-way.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `base/key`, installed by `install` (given an empty staging folder) unless a complete install is already
/// there. The install happens in a private staging folder that is renamed into place only when complete, so
/// concurrent test processes never see (or corrupt) a half-made one; a process that loses the race drops its
/// own copy and uses the winner's.
pub async fn install_once<F, Fut>(base: &Path, key: &str, what: &str, install: F) -> PathBuf
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    let final_dir = base.join(key);
    let marker = final_dir.join(MARKER);
    if marker.exists() {
        eprintln!("{what}: already installed in {}", final_dir.display());
        return final_dir;
    }
    std::fs::create_dir_all(base).unwrap_or_else(|e| panic!("create {}: {e}", base.display()));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let staging = base.join(format!(".staging-{key}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&staging)
        .unwrap_or_else(|e| panic!("create {}: {e}", staging.display()));
    let guard = RemoveOnDrop(staging.clone());
    let started = Instant::now();
    install(staging.clone()).await;
    std::fs::write(staging.join(MARKER), format!("{key}\n")).expect("write install marker");
    match std::fs::rename(&staging, &final_dir) {
        Ok(()) => {}
        Err(_) if marker.exists() => {
            eprintln!(
                "{what}: another test process installed it first; using {}",
                final_dir.display()
            );
            return final_dir; // `guard` removes our copy.
        }
        Err(e) => panic!(
            "{what}: cannot move {} to {}: {e} (remove {} and retry)",
            staging.display(),
            final_dir.display(),
            final_dir.display()
        ),
    }
    drop(guard);
    eprintln!(
        "{what}: installed in {} in {:.1?}",
        final_dir.display(),
        started.elapsed()
    );
    final_dir
}

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
    cp.register(CUSTOM, json!({}));
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

/// Installs the Python packages pinned in `tests/sdk/<requirements>` (if not yet there) into
/// `<target>/<subdir>/` with `python -m pip install --target`, and returns the folder to put on
/// `PYTHONPATH` (its `bin/` holds the packages' scripts). Needs Python >= 3.9 with pip, else fails with
/// `missing`.
pub async fn install_pip(
    python: &str,
    requirements: &str,
    subdir: &str,
    what: &str,
    missing: &str,
) -> String {
    let version = require_tool(
        python,
        &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        missing,
    )
    .await;
    let (major, minor) = version.split_once('.').expect("python version");
    let (major, minor): (u32, u32) = (major.parse().expect("major"), minor.parse().expect("minor"));
    assert!(
        (major, minor) >= (3, 9),
        "{python} is Python {version}: {missing}"
    );
    require_tool(python, &["-m", "pip", "--version"], missing).await;

    let requirements = sdk_dir().join(requirements);
    let pins =
        std::fs::read(&requirements).unwrap_or_else(|e| panic!("{}: {e}", requirements.display()));
    let key = format!("py{version}-{}", fingerprint(&[&pins, version.as_bytes()]));
    let dir = install_once(
        &target_dir().join(subdir),
        &key,
        what,
        |staging| async move {
            let mut pip = tokio::process::Command::new(python);
            pip.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-input",
                "--disable-pip-version-check",
            ])
            .args([
                "--no-warn-conflicts",
                "--no-warn-script-location",
                "--target",
            ])
            .arg(&staging)
            .arg("-r")
            .arg(&requirements);
            run_checked(
                &mut pip,
                &format!("pip install {what} (PyPI must be reachable)"),
                INSTALL_TIMEOUT,
            )
            .await;
        },
    )
    .await;
    dir.to_string_lossy().into_owned()
}
