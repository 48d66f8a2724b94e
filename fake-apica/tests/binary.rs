//! The `fake-apica` binary: flags, a manual clock moved over HTTP, graceful shutdown on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_fake-apica");

/// Starts the binary on a free port and returns it with its base URL, read from its first log line.
async fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("APICA_API_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start fake-apica");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let find = async {
        while let Some(line) = lines.next_line().await.expect("read the log") {
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_string();
            }
        }
        panic!("fake-apica exited without listening");
    };
    // Bounded only so a broken binary fails the test instead of hanging it.
    let base = tokio::time::timeout(Duration::from_secs(30), find)
        .await
        .expect("fake-apica starts listening");
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

#[tokio::test]
async fn the_binary_serves_presets_from_flags_and_a_file_on_a_manual_clock_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("fake-apica-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("presets.toml");
    std::fs::write(&file, "[[presets]]\nname = \"from-file\"\nduration = \"30m\"\noutcome = \"failed\"\nreason = \"errors > 1%\"\n").unwrap();
    let (mut child, base) = spawn(&[
        "--clock",
        "manual",
        "--token",
        "tok-a",
        "--token",
        "tok-b",
        "--preset",
        "soak=6h:passed",
        "--presets-file",
        file.to_str().unwrap(),
        "--first-job-id",
        "500",
    ])
    .await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/v1/loadtests"))
        .bearer_auth("tok-b")
        .json(&json!({"preset": "from-file", "runnableFile": "a.jmx"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["jobId"], 500);
    // The Details link is the server's own address, whatever Host a client sends.
    let spoofed: Value = client
        .get(format!("{base}/v1/loadtests/500"))
        .bearer_auth("tok-a")
        .header("host", "phishing.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        spoofed["detailsUrl"].as_str(),
        Some(format!("{base}/jobs/500").as_str()),
        "{spoofed}"
    );
    let clock: Value = client
        .post(format!("{base}/_sim/clock"))
        .json(&json!({"by": "30m"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(clock["elapsed"], "+00:30:00");
    let test: Value = client
        .get(format!("{base}/v1/loadtests/500"))
        .bearer_auth("tok-a")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (test["status"].clone(), test["summary"].clone()),
        (json!("failed"), json!("failed: errors > 1%"))
    );
    let presets: Value = client
        .get(format!("{base}/_sim/presets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(presets["presets"].as_array().unwrap().len(), 2);

    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits within 10 s")
        .unwrap();
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn bad_flags_are_refused_with_a_message() {
    let out = Command::new(BIN)
        .args(["--token", "t", "--preset", "soak=6h:maybe"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("maybe") && err.contains("passed"), "{err}");
    let out = Command::new(BIN)
        .args(["--token", "t", "--clock", "fast"])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("scaled:N"));
    let out = Command::new(BIN)
        .env_remove("APICA_API_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
    let help = Command::new(BIN).arg("--help").output().await.unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--clock",
        "--token",
        "--preset",
        "--presets-file",
        "--seed",
        "--log-format",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}
