//! The AWS CLI section of `fake-codepipeline/README.md`, run as it stands: the `fake-codepipeline` binary
//! started with the README's flags (on a free port instead of 8080), then the README's shell block with the
//! AWS CLI v1 pinned in `tests/sdk/requirements-cli.txt` (installed by this test into `<target>/sdk-cli/`,
//! once) and curl. The block registers an action type, starts an execution, polls, acknowledges, answers
//! with a continuation token, moves the manual clock and polls the continuation job; the test checks what
//! the CLI printed and the fake's own view of the execution.
//!
//! Needs `python3` (>= 3.9) with pip and PyPI, `bash` and `curl`; fails, never skips, without them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tests::sdk::{install_pip, require_tool, run_checked, target_dir, workspace_root};

const MISSING: &str = "the AWS CLI README test needs Python 3 (>= 3.9) with pip: install them (Debian/Ubuntu: apt-get install python3 python3-pip)";

/// The README's ```sh block under `heading`.
fn readme_block(readme: &str, heading: &str) -> String {
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("the README has no `{heading}` section"))
        .1;
    let block = section
        .split_once("```sh\n")
        .unwrap_or_else(|| panic!("no ```sh block under `{heading}`"))
        .1;
    block
        .split_once("```")
        .unwrap_or_else(|| panic!("the ```sh block under `{heading}` is not closed"))
        .0
        .to_string()
}

/// `bash -euo pipefail -c block` in `work` with the AWS CLI of `bin` first on the PATH: nothing of the
/// caller's AWS setup or proxies reaches the CLI, only what the README exports.
fn readme_bash(block: &str, work: &Path, bin: &Path) -> tokio::process::Command {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = tokio::process::Command::new("bash");
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_CODEPIPELINE",
        "AWS_ENDPOINT_URL_S3",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        bash.env_remove(var);
    }
    bash.args(["-euo", "pipefail", "-c", block])
        .current_dir(work)
        .env("PATH", path)
        .env("HOME", work)
        .env("AWS_CONFIG_FILE", work.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", work.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Loopback only: no proxy in between.
        .env("NO_PROXY", "*")
        .stdin(Stdio::null());
    bash
}

/// The binary, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with the README's flags on a free port and returns it with its address, read off its
/// own "listening" log line.
fn start_server() -> (Server, String) {
    start_server_with(&[])
}

/// The same, with `extra` flags.
fn start_server_with(extra: &[&str]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-codepipeline-bin"))
        .args(extra)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--clock",
            "manual",
            "--access-key",
            "AKIDEXAMPLE:secretexample",
            "--log-format",
            "json",
        ])
        // Its "listening" line is an info line, whatever the caller's RUST_LOG.
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fake-codepipeline");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    // Its log is read on a thread of its own (and drained to the end, so it never blocks on a full
    // pipe); the address comes back over a channel, with a bound.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if let Some(addr) = v["fields"]["addr"].as_str() {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("fake-codepipeline said where it listens within 30 s");
    (server, addr)
}

/// A bin/ folder with an `aws` that runs the installed CLI with `site` on its path.
fn aws_on_path(site: &str, dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("create the bin dir");
    let aws = bin.join("aws");
    std::fs::write(
        &aws,
        format!(
            "#!/bin/sh\nPYTHONPATH='{site}' PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 exec python3 -s '{site}/bin/aws' \"$@\"\n"
        ),
    )
    .expect("write the aws wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&aws, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_aws_cli_walkthrough_works_against_the_binary() {
    require_tool(
        "curl",
        &["--version"],
        "the README walkthrough uses curl: apt-get install curl",
    )
    .await;
    require_tool(
        "bash",
        &["--version"],
        "the README walkthrough is a bash block",
    )
    .await;
    let site = install_pip(
        "python3",
        "requirements-cli.txt",
        "sdk-cli",
        "awscli",
        MISSING,
    )
    .await;
    let work = target_dir().join("tmp").join("awscli-readme");
    let _ = std::fs::remove_dir_all(&work);
    let bin = aws_on_path(&site, &work);

    let readme =
        std::fs::read_to_string(workspace_root().join("fake-codepipeline").join("README.md"))
            .expect("fake-codepipeline/README.md");
    let start = readme_block(&readme, "# fake-codepipeline");
    assert!(
        start.contains("--clock manual --access-key AKIDEXAMPLE:secretexample"),
        "the README starts the server with other flags than this test: {start}"
    );
    let (_server, addr) = start_server();
    let block = readme_block(&readme, "## Talking to it with the AWS CLI")
        .replace("localhost:8080", &addr)
        .replace("127.0.0.1:8080", &addr);

    let out = run_checked(
        &mut readme_bash(&block, &work, &bin),
        "the README's AWS CLI block",
        Duration::from_secs(180),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines.last().copied(),
        Some("153245"),
        "the last poll should print the continuation job's token; the block printed:\n{stdout}"
    );
    let acknowledged = lines
        .iter()
        .any(|l| l.contains("\"status\": \"InProgress\""));
    assert!(
        acknowledged,
        "acknowledge-job should print status InProgress:\n{stdout}"
    );

    // The fake's own view: job 1 succeeded with the token and the Details link, job 2 was handed out.
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let executions: Value = http
        .get(format!("http://{addr}/_sim/executions"))
        .send()
        .await
        .expect("GET /_sim/executions")
        .json()
        .await
        .expect("JSON");
    let text = executions.to_string();
    assert!(
        text.contains("153245") && text.contains("http://127.0.0.1:8081/jobs/153245"),
        "the execution should carry the token and its Details link: {executions:#}"
    );
    let events: String = http
        .get(format!("http://{addr}/_sim/events"))
        .send()
        .await
        .expect("GET /_sim/events")
        .text()
        .await
        .expect("events");
    let events: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event line {l:?}: {e}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["job_acknowledged", "result_applied", "job_queued"] {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }
    let errors: Vec<&Value> = events.iter().filter(|e| e["severity"] == "error").collect();
    assert!(
        errors.is_empty(),
        "the walkthrough breaks no rule: {errors:#?}"
    );
}

/// The README's `aws s3` block: buckets, a small upload, a multipart upload of 12 MB (the CLI's checksums
/// verified by the store), a download compared byte for byte, a listing and a download to stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_aws_s3_block_works_against_the_artifact_store() {
    require_tool("bash", &["--version"], "the README block is a bash block").await;
    let site = install_pip(
        "python3",
        "requirements-cli.txt",
        "sdk-cli",
        "awscli",
        MISSING,
    )
    .await;
    let work = target_dir().join("tmp").join("awscli-s3-readme");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let bin = aws_on_path(&site, &work);
    let readme =
        std::fs::read_to_string(workspace_root().join("fake-codepipeline").join("README.md"))
            .expect("fake-codepipeline/README.md");
    let (_server, addr) = start_server();
    let block = readme_block(&readme, "## The artifact store with `aws s3`")
        .replace("127.0.0.1:8080", &addr);
    let out = run_checked(
        &mut readme_bash(&block, &work, &bin),
        "the README's aws s3 block",
        Duration::from_secs(180),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains("big.bin came back whole"),
        "the 12 MB multipart upload came back identical:\n{stdout}"
    );
    assert!(
        stdout.contains("main.py"),
        "aws s3 ls lists the upload:\n{stdout}"
    );
    assert_eq!(
        stdout.lines().last().map(str::trim),
        Some("print(\"hello\")"),
        "the last download prints the file:\n{stdout}"
    );
}

/// The admin API's flags for a shared host: `--admin-token` (required on every `/_sim/` request, as the
/// README says) and `--allowed-host` (a name the admin API answers besides loopback names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_and_allowed_host_flags_guard_the_admin_api() {
    let http = reqwest::Client::new();
    let (_server, addr) = start_server_with(&["--admin-token", "s3cret-admin"]);
    let clock = format!("http://{addr}/_sim/clock");
    let without = http.get(&clock).send().await.expect("GET");
    assert_eq!(without.status(), 401);
    let body: Value = without.json().await.expect("JSON error");
    assert_eq!(body["code"], "MissingAdminToken", "{body}");
    let moved = http
        .post(&clock)
        .bearer_auth("s3cret-admin")
        .json(&serde_json::json!({"by": "1m"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(moved.status(), 200);
    let header = http
        .get(&clock)
        .header("x-sim-admin-token", "s3cret-admin")
        .send()
        .await
        .expect("GET");
    let doc: Value = header.json().await.expect("the clock");
    assert_eq!(doc["elapsed"], "+00:01:00", "{doc}");

    let (_server, addr) = start_server_with(&["--allowed-host", "sim.internal"]);
    let clock = format!("http://{addr}/_sim/clock");
    for (host, status) in [
        ("sim.internal", 200),
        ("localhost", 200),
        ("rebound.example", 403),
    ] {
        let r = http
            .get(&clock)
            .header(
                "host",
                format!("{host}:{}", addr.rsplit(':').next().unwrap_or("")),
            )
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), status, "Host {host}");
    }
    // What a page in the browser can send: a text/plain body, or JSON from another origin.
    let plain = http
        .post(&clock)
        .header("content-type", "text/plain")
        .body(r#"{"by": "1h"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(plain.status(), 415);
    let foreign = http
        .post(&clock)
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({"by": "1h"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(foreign.status(), 403);
    let doc: Value = http
        .get(&clock)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["elapsed"], "+00:00:00", "the clock did not move: {doc}");
}

/// `--require-kms-key-id` (docs/protocol.md, AG-ARTIFACT-KMS) on the binary: a bare execution made with
/// the admin API's `encryptionKey` hands the key to its job, and the store then refuses an SSE-KMS upload
/// that names another key, and takes one with the pipeline's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_kms_key_id_refuses_an_upload_under_another_key() {
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::ServerSideEncryption;
    const KMS: &str = "arn:aws:kms:us-east-1:111111111111:key/pipeline-key";
    let (_server, addr) = start_server_with(&["--require-kms-key-id"]);
    let url = format!("http://{addr}");
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let admin = |path: &'static str, body: Value| {
        let req = http.post(format!("{url}{path}")).json(&body);
        async move {
            let r = req.send().await.expect("admin API");
            assert!(
                r.status().is_success(),
                "{path}: {}",
                r.text().await.unwrap_or_default()
            );
        }
    };
    admin(
        "/_sim/action-types",
        serde_json::json!({"actionType": "Build/Custom/Bundle/1", "configurationProperties": [],
            "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 1, "maximumCount": 1}}),
    )
    .await;
    let s3 = |key: &str, secret: &str, token: Option<&str>| {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .endpoint_url(&url)
                .force_path_style(true)
                .credentials_provider(aws_credential_types::Credentials::new(
                    key,
                    secret,
                    token.map(str::to_string),
                    None,
                    "test",
                ))
                .build(),
        )
    };
    let mine = s3("AKIDEXAMPLE", "secretexample", None);
    mine.create_bucket()
        .bucket("sim-sources")
        .send()
        .await
        .expect("CreateBucket");
    mine.put_object()
        .bucket("sim-sources")
        .key("source.zip")
        .body(ByteStream::from_static(b"PK"))
        .send()
        .await
        .expect("upload the source");
    admin(
        "/_sim/executions",
        serde_json::json!({"actionType": "Build/Custom/Bundle/1", "encryptionKey": KMS}),
    )
    .await;
    let cp = aws_sdk_codepipeline::Client::from_conf(
        aws_sdk_codepipeline::Config::builder()
            .behavior_version(aws_sdk_codepipeline::config::BehaviorVersion::latest())
            .region(aws_sdk_codepipeline::config::Region::new("us-east-1"))
            .endpoint_url(&url)
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDEXAMPLE",
                "secretexample",
                None,
                None,
                "test",
            ))
            .build(),
    );
    let polled = cp
        .poll_for_jobs()
        .action_type_id(tests::sdk_type("Build/Custom/Bundle/1"))
        .send()
        .await
        .expect("PollForJobs");
    let job = polled.jobs().first().expect("the build's job").clone();
    let data = job.data().expect("job data");
    assert_eq!(data.encryption_key().map(|k| k.id()), Some(KMS));
    let creds = data.artifact_credentials().expect("artifact credentials");
    let out = data.output_artifacts()[0]
        .location()
        .and_then(|l| l.s3_location())
        .expect("an S3 location");
    let theirs = s3(
        creds.access_key_id(),
        creds.secret_access_key(),
        Some(creds.session_token()),
    );
    let put = |key_id: &'static str| {
        theirs
            .put_object()
            .bucket(out.bucket_name())
            .key(out.object_key())
            .body(ByteStream::from_static(b"PK-build"))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(key_id)
            .send()
    };
    let refused = put("arn:aws:kms:us-east-1:111111111111:key/another")
        .await
        .expect_err("another key is refused under --require-kms-key-id");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&refused.into_service_error()),
        Some("AccessDenied")
    );
    put(KMS).await.expect("the pipeline's key is taken");
}
