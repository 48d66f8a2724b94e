//! The probe (`probe/`, docs/probe.md) against the `fake-codepipeline` binary started with NON-default
//! settings on a scaled clock: the report must measure those settings (so the probes cannot be
//! hard-coded), and its profile, loaded with `fake-codepipeline --profile`, must give them back. Also: the
//! profile's precedence under explicit flags, bad profiles named by member, bad probe flags, and every
//! probe flag the README and docs/probe.md show exists in `probe --help`; the fake's flags for the inferred
//! timeout semantics.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tests::sdk::{target_dir, workspace_root};

const KEY: (&str, &str) = ("AKIDPROBE", "secret-probe-0000");
/// The fake's clock speed, and the probe's --time-scale: 2 simulated minutes take 2 real seconds.
const SCALE: &str = "60";

/// The fake, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the fake with `flags` on a free port; returns it with the fields of its "listening" log line
/// (its address and the settings it runs with).
fn start_fake(flags: &[&str]) -> (Server, Value) {
    let key = format!("{}:{}", KEY.0, KEY.1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-codepipeline-bin"))
        .args(flags)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--access-key",
            &key,
            "--log-format",
            "json",
        ])
        .env("RUST_LOG", "info")
        .env_remove("FAKE_CP_PROFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fake-codepipeline");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["fields"]["addr"].is_string() {
                let _ = tx.send(v["fields"].clone());
            }
        }
    });
    let fields = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("fake-codepipeline said where it listens within 30 s");
    (server, fields)
}

/// A fresh scratch directory under the target dir.
fn scratch(name: &str) -> PathBuf {
    let dir = target_dir().join("tmp").join("probe").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch dir");
    dir
}

/// The probe command with the fake's credentials and nothing of the caller's AWS setup.
fn probe_cmd() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_probe-bin"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ACCESS_KEY_ID", KEY.0)
        .env("AWS_SECRET_ACCESS_KEY", KEY.1)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/job-sim-probe/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/job-sim-probe/credentials",
        )
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c
}

/// Runs `c` to its end within `limit`: (exit code, stderr).
async fn finish(mut c: tokio::process::Command, limit: Duration) -> (Option<i32>, String) {
    let out = tokio::time::timeout(limit, c.output())
        .await
        .unwrap_or_else(|_| panic!("{c:?} did not finish within {limit:?}"))
        .expect("run the command");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `text` as a number of seconds (`2m` -> 120).
fn seconds(text: &str) -> f64 {
    humantime_secs(text).unwrap_or_else(|| panic!("`{text}` is not a duration"))
}

fn humantime_secs(text: &str) -> Option<f64> {
    sim_core::parse_duration(text).ok().map(|d| d.as_secs_f64())
}

/// Checks that `probe` bracketed `expected` seconds: the bounds hold it (the lower one with 5 % for the
/// scaled clock's timer latency) and are no wider than 10 % of it.
fn assert_measured(probes: &Value, name: &str, expected: f64) {
    let p = &probes[name];
    assert_eq!(p["status"], "measured", "{name}: {p:#}");
    let m = &p["measured"];
    let (lo, hi) = (
        m["lower_s"].as_f64().unwrap(),
        m["upper_s"].as_f64().unwrap(),
    );
    assert!(
        lo <= expected * 1.05 && hi >= expected,
        "{name}: the bounds [{lo}, {hi}] do not hold the fake's {expected} s: {p:#}"
    );
    assert!(
        hi - lo <= expected * 0.10,
        "{name}: the bounds [{lo}, {hi}] are too loose for {expected} s: {p:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_measures_the_fakes_non_default_settings_and_the_profile_gives_them_back() {
    let clock = format!("scaled:{SCALE}");
    let (_fake, fields) = start_fake(&[
        "--clock",
        &clock,
        "--ack-window",
        "2m",
        "--continuation-delay",
        "45s",
        "--abandoned-results",
        "accept",
        "--repeated-results",
        "accept",
    ]);
    let url = format!("http://{}", fields["addr"].as_str().unwrap());
    let dir = scratch("measure");
    let report_path = dir.join("report.json");
    let mut c = probe_cmd();
    c.args(["--endpoint", &url, "--time-scale", SCALE, "--long"])
        .args(["--ack-window-limit", "10m", "--continuation-limit", "5m"])
        .args(["--job-wait", "20s", "--out"])
        .arg(&report_path);
    let (code, stderr) = finish(c, Duration::from_secs(120)).await;
    assert_eq!(code, Some(0), "the probe failed:\n{stderr}");
    let text = std::fs::read_to_string(&report_path).expect("the report");
    println!("{text}");
    let report: Value = serde_json::from_str(&text).expect("the report is JSON");
    assert_eq!(report["format"], "job-sim-probe/1");
    assert_eq!(report["time_scale"], 60.0);
    let probes = &report["probes"];

    assert_measured(probes, "ack_window", 120.0);
    assert_measured(probes, "continuation_delay", 45.0);
    assert_eq!(
        probes["continuation_delay"]["observed"]["token_carried"],
        true
    );

    let reoffer = &probes["reoffer_nonce"];
    assert_eq!(reoffer["status"], "observed", "{reoffer:#}");
    assert_eq!(reoffer["observed"]["new_nonce"], true);
    let old = &reoffer["observed"]["acknowledge_with_old_nonce"];
    assert_eq!(old["accepted"], false, "{old:#}");
    assert_eq!(old["error"], "InvalidNonceException");
    assert_eq!(
        reoffer["observed"]["acknowledge_with_new_nonce"]["status"],
        "InProgress"
    );

    let second = &probes["second_acknowledge"]["observed"]["second"];
    assert_eq!(second["accepted"], true, "{second:#}");
    assert_eq!(second["status"], "InProgress");

    let before = &probes["result_before_acknowledge"]["observed"];
    assert_eq!(before["refused"], true, "{before:#}");
    assert_eq!(before["put"]["error"], "InvalidJobStateException");

    // --abandoned-results accept: the put after an abandoning stop is accepted (the default refuses it).
    let abandon = &probes["put_after_abandon"];
    assert_eq!(abandon["status"], "observed", "{abandon:#}");
    assert_eq!(abandon["observed"]["accepted"], true, "{abandon:#}");
    assert_eq!(abandon["observed"]["execution_status"], "Stopped");

    let retried = &probes["retried_identical_put"];
    assert_eq!(retried["status"], "observed", "{retried:#}");
    assert_eq!(retried["observed"]["first"]["accepted"], true);
    // --repeated-results accept: the identical repeat of an applied result gets a 200 (the default refuses
    // it with InvalidJobStateException, CP-REPEAT).
    assert_eq!(
        retried["observed"]["second"]["accepted"], true,
        "{retried:#}"
    );

    let profile = &report["profile"];
    let ack = seconds(profile["ackWindow"].as_str().expect("profile.ackWindow"));
    let cont = seconds(
        profile["continuationDelay"]
            .as_str()
            .expect("profile.continuationDelay"),
    );
    assert!(
        (ack - 120.0).abs() <= 6.0,
        "profile.ackWindow {ack} s: {profile}"
    );
    assert!(
        (cont - 45.0).abs() <= 2.25,
        "profile.continuationDelay {cont} s: {profile}"
    );
    assert_eq!(profile["abandonedResults"], "accept");
    assert_eq!(profile["repeatedResults"], "accept");

    for step in report["cleanup"].as_array().expect("cleanup") {
        assert!(
            step["outcome"] == "deleted" || step["outcome"] == "not-supported",
            "cleanup step failed: {step}"
        );
    }
    assert_eq!(report["cleanup"].as_array().unwrap().len(), 3, "{report:#}");

    // The fake started from this report runs with what it measured.
    let (_again, loaded) = start_fake(&["--clock", "manual", "--profile", path(&report_path)]);
    assert_eq!(seconds(loaded["ack_window"].as_str().unwrap()), ack);
    assert_eq!(
        seconds(loaded["continuation_delay"].as_str().unwrap()),
        cont
    );
    assert_eq!(loaded["abandoned_results"], "accept");
    assert_eq!(loaded["repeated_results"], "accept");
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn write_report(dir: &Path, profile: &str) -> PathBuf {
    let p = dir.join("observed.json");
    std::fs::write(
        &p,
        format!(r#"{{"format": "job-sim-probe/1", "probes": {{}}, "profile": {profile}}}"#),
    )
    .expect("write the report");
    p
}

#[test]
fn explicit_flags_win_over_the_profile_and_the_profile_over_the_defaults() {
    let dir = scratch("precedence");
    let report = write_report(
        &dir,
        r#"{"ackWindow": "3m", "continuationDelay": "50s", "abandonedResults": "accept"}"#,
    );
    let (_fake, fields) = start_fake(&[
        "--clock",
        "manual",
        "--profile",
        path(&report),
        "--continuation-delay",
        "40s",
    ]);
    assert_eq!(fields["ack_window"], "3m", "{fields}");
    assert_eq!(fields["continuation_delay"], "40s", "{fields}");
    assert_eq!(fields["abandoned_results"], "accept", "{fields}");
    // Without a profile: the defaults.
    let (_plain, fields) = start_fake(&["--clock", "manual"]);
    assert_eq!(fields["ack_window"], "5m", "{fields}");
    assert_eq!(fields["continuation_delay"], "30s", "{fields}");
    assert_eq!(fields["abandoned_results"], "refuse", "{fields}");
}

#[tokio::test]
async fn a_bad_profile_is_refused_with_the_member_named() {
    let dir = scratch("bad-profile");
    let cases = [
        (r#"{"ackWindow": "soon"}"#, "profile.ackWindow"),
        (
            r#"{"continuationDelay": "500ms"}"#,
            "continuationDelay 500ms is under 1s",
        ),
        (
            r#"{"abandonedResults": "maybe"}"#,
            "profile.abandonedResults",
        ),
        (r#"{"ackWindw": "2m"}"#, "profile.ackWindw is not a setting"),
    ];
    for (profile, expected) in cases {
        let report = write_report(&dir, profile);
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-codepipeline-bin"));
        c.args([
            "--listen",
            "127.0.0.1:0",
            "--access-key",
            "A:b",
            "--profile",
        ])
        .arg(&report)
        .kill_on_drop(true);
        let (code, stderr) = finish(c, Duration::from_secs(30)).await;
        assert_eq!(code, Some(1), "{profile}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{profile}: `{expected}` not in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let missing = dir.join("missing.json");
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-codepipeline-bin"));
    c.args([
        "--listen",
        "127.0.0.1:0",
        "--access-key",
        "A:b",
        "--profile",
    ])
    .arg(&missing)
    .kill_on_drop(true);
    let (code, stderr) = finish(c, Duration::from_secs(30)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("missing.json: cannot read it"), "{stderr}");
}

#[tokio::test]
async fn bad_probe_flags_are_refused_by_name() {
    let mut c = probe_cmd();
    c.args(["--endpoint", "http://127.0.0.1:9", "--time-scale", "0"]);
    let (code, stderr) = finish(c, Duration::from_secs(30)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--time-scale 0"), "{stderr}");
    // Against AWS the pipeline needs a role and a bucket: said before anything is created.
    let (code, stderr) = finish(probe_cmd(), Duration::from_secs(30)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--role-arn") && stderr.contains("--artifact-bucket"),
        "{stderr}"
    );
    let mut c = probe_cmd();
    c.args([
        "--endpoint",
        "http://127.0.0.1:9",
        "--poll-interval",
        "often",
    ]);
    let (code, stderr) = finish(c, Duration::from_secs(30)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--poll-interval") && stderr.contains("often"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_is_an_error_not_a_hang() {
    // Port 9 (discard) on loopback: nothing listens, so every call fails to connect.
    let dir = scratch("no-endpoint");
    let mut c = probe_cmd();
    c.args([
        "--endpoint",
        "http://127.0.0.1:9",
        "--job-wait",
        "5s",
        "--out",
    ])
    .arg(dir.join("report.json"));
    let (code, stderr) = finish(c, Duration::from_secs(120)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("CreateCustomActionType"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Every `--flag` on a `cargo xtask probe` line of `text`.
fn probe_flags(text: &str) -> Vec<String> {
    let mut flags = Vec::new();
    let mut in_probe = false;
    for line in text.lines() {
        // A shell comment after the command is not the probe's.
        let l = line.split(" #").next().unwrap_or(line).trim();
        if l.contains("cargo xtask probe") {
            in_probe = true;
        }
        if in_probe {
            for word in l.split(|c: char| c.is_whitespace() || c == '`' || c == '=') {
                if word.starts_with("--") && word.len() > 2 {
                    flags.push(
                        word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                            .to_string(),
                    );
                }
            }
            // A command continues on the next line after a trailing backslash.
            in_probe = l.ends_with('\\');
        }
    }
    flags
}

#[tokio::test]
async fn every_probe_flag_the_readme_and_docs_show_is_in_its_help() {
    let mut c = probe_cmd();
    c.arg("--help");
    let out = tokio::time::timeout(Duration::from_secs(30), c.output())
        .await
        .expect("probe --help in time")
        .expect("probe --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for doc in ["README.md", "docs/probe.md"] {
        let text = std::fs::read_to_string(workspace_root().join(doc)).expect(doc);
        let flags = probe_flags(&text);
        assert!(
            !flags.is_empty(),
            "{doc} shows no `cargo xtask probe` line with flags"
        );
        for flag in flags {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "{doc} shows `{flag}` for `cargo xtask probe`, but `probe --help` has no such flag:\n{help}"
            );
        }
    }
}

/// The inferred timeout semantics are flags too (docs/protocol.md, CP-TIMEOUT and CP-ACTION-TIMEOUT): the
/// fake says it runs with them, and a value it does not know is refused with the ones it does.
#[test]
fn the_timeout_semantics_flags_are_taken_and_a_bad_value_is_named() {
    let (_fake, fields) = start_fake(&[
        "--job-timeout-from",
        "acknowledged",
        "--action-timeout-per",
        "job",
    ]);
    assert_eq!(fields["job_timeout_from"], "acknowledged", "{fields}");
    assert_eq!(fields["action_timeout_per"], "job", "{fields}");
    let out = Command::new(env!("CARGO_BIN_EXE_fake-codepipeline-bin"))
        .args(["--job-timeout-from", "polled"])
        .output()
        .expect("run fake-codepipeline");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("polled") && stderr.contains("`queued` or `acknowledged`"),
        "{stderr}"
    );
}
