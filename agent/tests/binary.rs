//! The `agent` binary as a real process: configured by the environment alone, `--help`, bad
//! configuration, the SIGTERM drain and redeploy, the second signal, and registering a Custom action type.

mod support;

use std::time::{Duration, Instant};

use fake_apica::Fault;
use serde_json::json;
use support::{
    CONTINUATION, CUSTOM, KEY1, KEY2, THIRD_PARTY, TempDir, World, agent_command, exit_code,
    free_port, signal,
};

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agent"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run agent")
}

#[test]
fn help_documents_every_setting() {
    let out = run(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--action-type",
        "JOB_ACTION_TYPE",
        "--client-tokens-file",
        "JOB_CLIENT_TOKENS_FILE",
        "--query-param",
        "JOB_QUERY_PARAM",
        "--poll-interval-ms",
        "JOB_POLL_INTERVAL_MS",
        "--batch-size",
        "--max-in-flight",
        "--max-failed-rounds",
        "--drain-deadline",
        "--listen",
        "--action",
        "timed-wait",
        "bundle",
        "--apica-url",
        "APICA_API_URL",
        "--apica-token",
        "APICA_API_TOKEN",
        "--apica-max-response-bytes",
        "AGENT_APICA_MAX_RESPONSE_BYTES",
        "--token-key",
        "AGENT_TOKEN_KEY",
        "--token-key-file",
        "AGENT_TOKEN_KEY_FILE",
        "--token-previous-keys",
        "AGENT_TOKEN_PREVIOUS_KEYS",
        "--unsigned-token-grace",
        "AGENT_UNSIGNED_TOKEN_GRACE",
        "--region",
        "--endpoint-url",
        "--access-key-id",
        "--secret-access-key",
        "--ec2-metadata-disabled",
        "--log-format",
        "register-action-type",
    ] {
        assert!(
            help.contains(needle),
            "--help does not mention {needle}:\n{help}"
        );
    }
    let out = run(&["register-action-type", "--help"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--execution-url-template"));
}

#[test]
fn bad_configuration_stops_it_at_start_naming_the_setting() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[], "JOB_ACTION_TYPE"),
        (
            &[("JOB_ACTION_TYPE", "Test/ThirdParty/ApicaLoadtest")],
            "JOB_ACTION_TYPE",
        ),
        (
            &[("JOB_ACTION_TYPE", THIRD_PARTY)],
            "JOB_CLIENT_TOKENS_FILE",
        ),
        (&[("JOB_ACTION_TYPE", CUSTOM)], "APICA_API_URL"),
        (
            &[
                ("JOB_ACTION_TYPE", CUSTOM),
                ("APICA_API_URL", "http://127.0.0.1:1"),
                ("AGENT_DRAIN_DEADLINE", "soon"),
            ],
            "AGENT_DRAIN_DEADLINE",
        ),
    ];
    for (env, setting) in cases {
        let started = Instant::now();
        let out = run(&[], env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(
            stderr.contains(setting),
            "{env:?}: the message does not name {setting}: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let dir = TempDir::new("badtokens");
    let tokens = dir.0.join("tokens.json");
    std::fs::write(&tokens, "[1, 2]").unwrap();
    let out = run(
        &[],
        &[
            ("JOB_ACTION_TYPE", THIRD_PARTY),
            ("JOB_CLIENT_TOKENS_FILE", tokens.to_str().unwrap()),
            ("APICA_API_URL", "http://127.0.0.1:1"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("HOME", dir.0.to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JOB_CLIENT_TOKENS_FILE"));
}

async fn health(port: u16) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .ok()?;
    Some((response.status().as_u16(), response.text().await.ok()?))
}

/// Waits until `/healthz` answers 503 `draining` (checked every 10 ms, at most 5 s).
async fn wait_draining(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some((503, body)) = health(port).await {
            assert_eq!(body.trim(), "draining");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never reported draining"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_held_job_and_the_next_version_carries_on() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let dir = TempDir::new("drain");
    // A slow backend: the first job is still being handled when SIGTERM arrives.
    world
        .apica
        .add_fault(Fault::latency(Duration::from_millis(1500)))
        .unwrap();
    let port = free_port();
    let mut first = agent_command(&world, &dir, KEY1, THIRD_PARTY, "v1.log")
        .env("AGENT_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENT_APICA_REQUEST_TIMEOUT", "3s")
        .env("AGENT_APICA_RETRY_BUDGET", "4s")
        .spawn()
        .expect("spawn agent");
    let id = world
        .start_execution(THIRD_PARTY, "short", "redeploy.jmx")
        .await;
    world
        .until("the first job acknowledged", |w| {
            (!w.events("cp", "job_acknowledged").is_empty()).then_some(())
        })
        .await;
    assert_eq!(
        health(port).await.map(|h| h.0),
        Some(200),
        "ready before the signal"
    );
    signal(first.id().expect("pid"), "TERM");
    let signalled = Instant::now();
    // Draining: the health endpoint says so while the held job is answered.
    world
        .until("the health endpoint to say draining", |_| Some(()))
        .await;
    let code = exit_code(&mut first, Duration::from_secs(10), &dir.0.join("v1.log")).await;
    assert_eq!(
        code,
        Some(0),
        "log:\n{}",
        std::fs::read_to_string(dir.0.join("v1.log")).unwrap()
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exited after {:?}",
        signalled.elapsed()
    );
    let e = world.execution(&id);
    assert_eq!(
        e["jobs"][0]["status"], "Succeeded",
        "the held job was answered: {e}"
    );
    assert!(e["externalExecutionId"].is_string());
    assert!(world.events("cp", "job_timed_out").is_empty());

    // The next version picks up the continuation job.
    world.apica.clear_faults();
    let mut second = agent_command(&world, &dir, KEY2, THIRD_PARTY, "v2.log")
        .spawn()
        .expect("spawn agent");
    world.advance(CONTINUATION);
    let e = world.run_rounds(&id, 8).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    assert_eq!(
        world.tests_for("redeploy.jmx"),
        1,
        "AG-ONE-TEST across the redeploy"
    );
    signal(second.id().expect("pid"), "TERM");
    assert_eq!(
        exit_code(&mut second, Duration::from_secs(10), &dir.0.join("v2.log")).await,
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let dir = TempDir::new("twice");
    world
        .apica
        .add_fault(Fault::latency(Duration::from_secs(8)))
        .unwrap();
    let port = free_port();
    let mut agent = agent_command(&world, &dir, KEY1, THIRD_PARTY, "agent.log")
        .env("AGENT_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENT_APICA_REQUEST_TIMEOUT", "10s")
        .env("AGENT_APICA_RETRY_BUDGET", "10s")
        .env("AGENT_DRAIN_DEADLINE", "20s")
        .spawn()
        .expect("spawn agent");
    world
        .start_execution(THIRD_PARTY, "short", "twice.jmx")
        .await;
    world
        .until("the first job acknowledged", |w| {
            (!w.events("cp", "job_acknowledged").is_empty()).then_some(())
        })
        .await;
    let pid = agent.id().expect("pid");
    signal(pid, "TERM");
    // The first signal has been taken once the health endpoint says draining.
    wait_draining(port).await;
    let signalled = Instant::now();
    signal(pid, "INT");
    let code = exit_code(&mut agent, Duration::from_secs(5), &dir.0.join("agent.log")).await;
    assert_eq!(code, Some(130));
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "took {:?}",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_action_type_is_idempotent() {
    let world = World::start().await;
    let dir = TempDir::new("register");
    let register = || {
        let mut cmd = agent_command(
            &world,
            &dir,
            KEY1,
            "Test/Custom/ApicaLoadtest/7",
            "register.log",
        );
        // Only the service-specific endpoint: aws-config's chain must find it by itself.
        cmd.env_remove("AWS_ENDPOINT_URL");
        cmd.arg("register-action-type")
            .stdout(std::process::Stdio::piped());
        cmd
    };
    let out = register().output().await.expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        std::fs::read_to_string(dir.0.join("register.log")).unwrap()
    );
    assert!(
        stdout.contains("registered Test/Custom/ApicaLoadtest/7"),
        "{stdout}"
    );
    let out = register().output().await.expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already registered"));
    let types = world.cp.core().list_action_types(Some("Custom"));
    let text = types.to_string();
    assert!(
        text.contains("PresetName") && text.contains("RunnableFile") && text.contains("ApiToken"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}/jobs/{{ExternalExecutionId}}", world.apica_url)),
        "{text}"
    );
}

/// The README's systemd unit, as written there.
fn readme_unit() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("agent/README.md");
    let start = readme
        .find("# /etc/systemd/system/codepipeline-agent.service")
        .expect("the README has a unit");
    let unit = &readme[start..];
    unit[..unit.find("```").expect("the unit's block ends")].to_string()
}

#[test]
fn the_readme_systemd_unit_is_valid_as_written() {
    let unit = readme_unit();
    let dir = TempDir::new("unit");
    let path = dir.0.join("codepipeline-agent.service");
    // Only the binary's place differs from a host's.
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/agent", env!("CARGO_BIN_EXE_agent")),
    )
    .expect("write the unit");
    let out = match std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!(
                "systemd-analyze is not installed ({e}); the unit's keys are not verified here"
            );
            return;
        }
    };
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    for key in [
        "DynamicUser=yes",
        "ProtectHome=yes",
        "Environment=AWS_SHARED_CREDENTIALS_FILE=%d/aws-credentials",
        "Environment=JOB_CLIENT_TOKENS_FILE=%d/client-tokens.json",
        "Environment=AGENT_TOKEN_KEY_FILE=%d/token-key",
    ] {
        assert!(unit.contains(key), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unit_credential_layout_works_and_the_log_file_has_no_colour_codes() {
    let world = World::start().await;
    world.register(THIRD_PARTY, json!({})).await;
    let dir = TempDir::new("systemd-credentials");
    // As systemd lays them out for the unit: $CREDENTIALS_DIRECTORY holds copies of the root-only files,
    // and no home directory can be read.
    let creds = dir.0.join("credentials");
    std::fs::create_dir_all(&creds).expect("credentials dir");
    std::fs::write(
        creds.join("aws-credentials"),
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            KEY1.0, KEY1.1
        ),
    )
    .expect("credentials file");
    std::fs::copy(
        {
            // agent_command writes the client tokens file; take its content.
            let _ = agent_command(&world, &dir, KEY1, THIRD_PARTY, "unused.log");
            dir.0.join("client-tokens.json")
        },
        creds.join("client-tokens.json"),
    )
    .expect("client tokens");
    // The token key, and a previous one after it, as `openssl rand -hex 32` writes them.
    std::fs::write(
        creds.join("token-key"),
        "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0\n\
         a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978879\n",
    )
    .expect("token key");
    let mut agent = agent_command(&world, &dir, KEY1, THIRD_PARTY, "journal.log");
    agent
        .env("AGENT_TOKEN_KEY_FILE", creds.join("token-key"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("HOME", "/nonexistent")
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env("AWS_SHARED_CREDENTIALS_FILE", creds.join("aws-credentials"))
        .env("JOB_CLIENT_TOKENS_FILE", creds.join("client-tokens.json"));
    let mut agent = agent.spawn().expect("spawn agent");
    let id = world
        .start_execution(THIRD_PARTY, "short", "systemd.jmx")
        .await;
    // Answered: the fake verified signatures made with the key of the credentials file.
    world
        .until("the first job answered", |w| {
            (!w.events("cp", "details_link").is_empty()).then_some(())
        })
        .await;
    let e = world.execution(&id);
    assert!(e["externalExecutionId"].is_string(), "{e}");
    signal(agent.id().expect("pid"), "TERM");
    let log = dir.0.join("journal.log");
    assert_eq!(
        exit_code(&mut agent, Duration::from_secs(10), &log).await,
        Some(0)
    );
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(text.contains("INFO"), "{text}");
    // The key file was read: tokens are signed, and the key itself is not in the log.
    assert!(
        text.contains("continuation tokens are signed") && text.contains("previous_keys=1"),
        "{text}"
    );
    assert!(!text.contains("0f1e2d3c4b5a6978"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file:\n{text}"
    );
}
