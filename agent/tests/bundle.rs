//! The bundle build action end to end against the fake CodePipeline and its artifact store (S3 on the
//! fake's own address): a pipeline Source/S3 -> Build (Custom/Bundle, input SourceArtifact, output
//! BuildArtifact) -> Deploy/S3, worked by the real runtime in process or by the agent binary; plus the
//! action alone on a polled job, for the credential and failure paths.

mod support;

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::action::{Action, ActionError, JobArtifacts, JobContext, Step};
use agent::actions::bundle::MANIFEST;
use agent::actions::{BundleAction, BundleLimits};
use agent::{ArtifactCredentials, Metrics};
use aws_sdk_codepipeline::types::{
    Artifact, ArtifactLocation, ArtifactLocationType, S3ArtifactLocation,
};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use rand::{RngCore, SeedableRng};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{Agent, KEY1, TempDir, World};
use zip::write::SimpleFileOptions;

const BUILD: &str = "Build/Custom/Bundle/1";
const PIPELINE: &str = "bundle";
const BUCKET: &str = "bundle-artifacts";
const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/abc";

/// A zip of `files` (name, bytes), deflated unless `stored`.
fn zip_of(files: &[(&str, Vec<u8>)], stored: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let method = if stored {
        zip::CompressionMethod::Stored
    } else {
        zip::CompressionMethod::Deflated
    };
    for (name, data) in files {
        w.start_file(
            *name,
            SimpleFileOptions::default().compression_method(method),
        )
        .expect("start_file");
        w.write_all(data).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

/// Every entry of a zip, by name.
fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        out.insert(entry.name().expect("name").into_owned(), data);
    }
    out
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The manifest the bundle of `files` must carry.
fn expected_manifest(files: &[(&str, Vec<u8>)]) -> String {
    let mut lines: Vec<(String, String)> = files
        .iter()
        .map(|(n, d)| (n.to_string(), sha256_hex(d)))
        .collect();
    lines.sort();
    lines.iter().map(|(n, h)| format!("{h}  {n}\n")).collect()
}

/// The source files of the ordinary tests.
fn source_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "app/main.py",
            b"print('hello from the source artifact')\n".to_vec(),
        ),
        ("README.md", b"# app\n".to_vec()),
        ("app/data/table.csv", b"a,b\n1,2\n".repeat(100)),
    ]
}

/// The agent's AWS configuration as the standard chain would load it against the fake.
fn sdk_config(world: &World) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&world.cp_url)
        .build()
}

/// An S3 client with the worker's long-term keys (the fake lets them do anything in the store).
fn admin_s3(world: &World) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&world.cp_url)
            .credentials_provider(Credentials::new(KEY1.0, KEY1.1, None, None, "tests"))
            .build(),
    )
}

/// Registers the build type, uploads `source` as `s3://sources/app.zip` and creates the pipeline
/// Source -> Build -> Deploy (with the KMS key on its artifact store when `kms`).
fn pipeline(world: &World, source: Vec<u8>, kms: bool) {
    let core = world.cp.core();
    core.register_action_type(fake_codepipeline::ActionTypeSpec {
        id: Some(BUILD.parse().unwrap()),
        settings: json!({}),
        properties: vec![],
        input_artifacts: json!({"minimumCount": 1, "maximumCount": 1}),
        output_artifacts: json!({"minimumCount": 1, "maximumCount": 1}),
        clients: Default::default(),
        timing: Default::default(),
    })
    .expect("register the build type");
    core.store.create_bucket("sources");
    core.store.put(
        "sources",
        "app.zip",
        fake_codepipeline::store::Object::new(source.into(), world.sim.clock.now()),
    );
    let mut store = json!({"type": "S3", "location": BUCKET});
    if kms {
        store["encryptionKey"] = json!({"id": KMS_KEY, "type": "KMS"});
    }
    let aws = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
    core.create_pipeline(&json!({"pipeline": {
        "name": PIPELINE, "roleArn": "arn:aws:iam::123456789012:role/p",
        "artifactStore": store,
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "actionTypeId": aws("Source", "S3"),
                "configuration": {"S3Bucket": "sources", "S3ObjectKey": "app.zip"},
                "outputArtifacts": [{"name": "SourceArtifact"}]}]},
            {"name": "Build", "actions": [{"name": "Bundle",
                "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "Bundle", "version": "1"},
                "inputArtifacts": [{"name": "SourceArtifact"}], "outputArtifacts": [{"name": "BuildArtifact"}]}]},
            {"name": "Deploy", "actions": [{"name": "Deploy", "actionTypeId": aws("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "false", "ObjectKey": "b.zip"},
                "inputArtifacts": [{"name": "BuildArtifact"}]}]},
        ]}}))
    .expect("CreatePipeline");
}

/// Starts a run of the pipeline; its id.
fn start_run(world: &World) -> String {
    let out = world
        .cp
        .core()
        .start_pipeline_execution(PIPELINE)
        .expect("StartPipelineExecution");
    out["pipelineExecutionId"].as_str().unwrap().to_string()
}

/// Waits for the run to end; its status.
async fn run_end(world: &World, run: &str) -> String {
    world
        .until(&format!("run {run} to end"), |w| {
            let v = w.cp.core().get_pipeline_execution(PIPELINE, run).ok()?;
            let status = v["pipelineExecution"]["status"].as_str()?.to_string();
            (status != "InProgress").then_some(status)
        })
        .await
}

/// The admin view of the Build action's execution.
fn build_execution(world: &World) -> Value {
    let core = world.cp.core();
    core.execution_labels()
        .iter()
        .filter_map(|l| core.execution_view(l))
        .find(|v| v["actionName"] == "Bundle")
        .expect("the Build action ran")
}

/// The bundle written to the BuildArtifact key, and the stored object.
async fn output(world: &World) -> fake_codepipeline::store::Object {
    let listed = admin_s3(world)
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("bundle/BuildArtif/")
        .send()
        .await
        .expect("ListObjectsV2");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 1, "one output object: {keys:?}");
    world
        .cp
        .core()
        .store
        .get(BUCKET, keys[0])
        .expect("the output object")
}

/// Checks a bundle against its source files; the manifest's text.
fn assert_bundle_of(bundle: &[u8], files: &[(&str, Vec<u8>)]) -> String {
    let entries = unzip(bundle);
    for (name, data) in files {
        assert_eq!(entries.get(*name), Some(data), "{name} copied unchanged");
    }
    assert_eq!(entries.len(), files.len() + 1, "{:?}", entries.keys());
    let manifest = String::from_utf8(entries[MANIFEST].clone()).expect("UTF-8");
    assert_eq!(manifest, expected_manifest(files));
    manifest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_run_bundles_its_source_with_a_manifest_and_succeeds() {
    let world = World::start().await;
    let files = source_files();
    pipeline(&world, zip_of(&files, false), false);
    let action: Arc<dyn Action> = Arc::new(BundleAction::new(&sdk_config(&world)));
    let agent = Agent::start_with(&world, BUILD, KEY1, action, |_| {});
    let run = start_run(&world);
    assert_eq!(run_end(&world, &run).await, "Succeeded");

    let object = output(&world).await;
    let manifest = assert_bundle_of(&object.data, &files);
    assert_eq!(object.sse, None, "no encryptionKey, no SSE");
    let e = build_execution(&world);
    assert_eq!(e["status"], "Succeeded", "{e}");
    let digest = sha256_hex(manifest.as_bytes());
    assert_eq!(
        e["externalExecutionId"],
        format!("bundle-{}", &digest[..12]),
        "{e}"
    );
    let summary = e["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Bundled 3 files (") && summary.ends_with(&digest),
        "{summary}"
    );
    // One job, no continuation; nothing the fake counts as a violation.
    assert_eq!(e["jobs"].as_array().unwrap().len(), 1, "{e}");
    assert!(world.errors().is_empty(), "{:?}", world.errors());
    assert!(world.events("cp", "cp.artifact_refused").is_empty());
    assert_eq!(agent.stop().await.unanswered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_that_is_not_a_zip_fails_the_job_naming_the_artifact() {
    let world = World::start().await;
    pipeline(&world, b"PK-not-a-zip".to_vec(), false);
    let action: Arc<dyn Action> = Arc::new(BundleAction::new(&sdk_config(&world)));
    let agent = Agent::start_with(&world, BUILD, KEY1, action, |_| {});
    let run = start_run(&world);
    assert_eq!(run_end(&world, &run).await, "Failed");
    let e = build_execution(&world);
    assert_eq!(e["status"], "Failed", "{e}");
    assert_eq!(e["errorDetails"]["code"], "JobFailed", "{e}");
    let message = e["errorDetails"]["message"].as_str().unwrap();
    assert!(
        message.contains("input artifact SourceArtifact (s3://bundle-artifacts/bundle/SourceArti/")
            && message.contains("is not a zip archive"),
        "{message}"
    );
    assert_eq!(agent.stop().await.unanswered, 0);
}

/// Polls and acknowledges the build job with the worker's client, as the runtime does; its id and context.
async fn polled_job(world: &World) -> (String, JobContext) {
    let client = agent::aws::static_client(
        &world.cp_url,
        KEY1.0,
        KEY1.1,
        "us-east-1",
        Arc::new(Metrics::default()),
    );
    let id: agent::ActionTypeId = BUILD.parse().unwrap();
    let out = client
        .poll_for_jobs()
        .action_type_id(id.to_sdk())
        .send()
        .await
        .expect("PollForJobs");
    let job = out.jobs().first().expect("a build job");
    let data = job.data().expect("job data");
    let job_id = job.id().unwrap().to_string();
    client
        .acknowledge_job()
        .job_id(&job_id)
        .nonce(job.nonce().unwrap())
        .send()
        .await
        .expect("AcknowledgeJob");
    let context = JobContext {
        job_id: job_id.clone(),
        configuration: Default::default(),
        artifacts: JobArtifacts::from_job_data(data),
    };
    (job_id, context)
}

fn failed(result: Result<Step, ActionError>) -> String {
    match result {
        Err(ActionError::Failed(message)) => message,
        other => panic!("expected a job failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_signs_with_the_jobs_credentials_and_names_s3_refusals() {
    let world = World::start().await;
    let files = source_files();
    pipeline(&world, zip_of(&files, false), true);
    let run = start_run(&world);
    let (job_id, job) = polled_job(&world).await;
    let action = BundleAction::new(&sdk_config(&world));
    let real = job.artifacts.credentials.clone().expect("credentials");
    assert!(real.access_key_id().starts_with("ASIA"));
    assert_eq!(job.artifacts.kms_key_id(), Some(KMS_KEY));

    // Tampered credentials are refused by the store: the action used them, not the worker's own keys.
    let mut tampered = job.clone();
    tampered.artifacts.credentials = Some(ArtifactCredentials::new(
        real.access_key_id(),
        "not-the-secret",
        real.session_token(),
    ));
    let message = failed(action.start(&tampered, &job_id).await);
    assert!(
        message.contains("input artifact SourceArtifact (s3://bundle-artifacts/bundle/SourceArti/")
            && message.contains("S3 error SignatureDoesNotMatch"),
        "{message}"
    );
    // No credentials at all, no artifact lists: clear failures before any request.
    let mut bare = job.clone();
    bare.artifacts.credentials = None;
    assert!(failed(action.start(&bare, &job_id).await).contains("no artifactCredentials"));
    let mut bare = job.clone();
    bare.artifacts.input_artifacts.clear();
    assert!(failed(action.start(&bare, &job_id).await).contains("no input artifacts"));
    let mut bare = job.clone();
    bare.artifacts.output_artifacts.clear();
    assert!(failed(action.start(&bare, &job_id).await).contains("no output artifacts"));

    // With the job's own credentials it bundles, and encrypts the upload with the pipeline's key.
    let step = action.start(&job, &job_id).await.expect("bundled");
    assert!(matches!(step, Step::Succeeded { .. }), "{step:?}");
    let object = output(&world).await;
    assert_bundle_of(&object.data, &files);
    assert_eq!(object.sse.as_deref(), Some("aws:kms"));
    assert_eq!(object.kms_key_id.as_deref(), Some(KMS_KEY));

    // A missing input object: NoSuchKey, naming the artifact and where it was looked for.
    let mut missing = job.clone();
    let input = &mut missing.artifacts.input_artifacts[0];
    let bucket = input
        .location()
        .and_then(|l| l.s3_location())
        .map(|s3| s3.bucket_name().to_string())
        .unwrap();
    *input = Artifact::builder()
        .name("SourceArtifact")
        .location(
            ArtifactLocation::builder()
                .r#type(ArtifactLocationType::S3)
                .s3_location(
                    S3ArtifactLocation::builder()
                        .bucket_name(bucket)
                        .object_key("bundle/SourceArti/nothing")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build();
    let message = failed(action.start(&missing, &job_id).await);
    assert!(
        message.contains(
            "input artifact SourceArtifact (s3://bundle-artifacts/bundle/SourceArti/nothing)"
        ) && message.contains("S3 error NoSuchKey"),
        "{message}"
    );

    // Once the job has its answer its credentials have expired: ExpiredToken, not the worker's keys.
    agent::aws::static_client(
        &world.cp_url,
        KEY1.0,
        KEY1.1,
        "us-east-1",
        Arc::new(Metrics::default()),
    )
    .put_job_failure_result()
    .job_id(&job_id)
    .failure_details(
        aws_sdk_codepipeline::types::FailureDetails::builder()
            .r#type(aws_sdk_codepipeline::types::FailureType::JobFailed)
            .message("answered by the test")
            .build()
            .unwrap(),
    )
    .send()
    .await
    .expect("answer the job");
    let message = failed(action.start(&job, &job_id).await);
    assert!(message.contains("S3 error ExpiredToken"), "{message}");
    assert_eq!(run_end(&world, &run).await, "Failed");
}

/// A source of about `mb` MB, most of it incompressible (stored), a little text (deflated).
fn big_source(mb: usize) -> (Vec<(&'static str, Vec<u8>)>, Vec<u8>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let names = [
        "blob/0.bin",
        "blob/1.bin",
        "blob/2.bin",
        "blob/3.bin",
        "blob/4.bin",
    ];
    let mut files: Vec<(&str, Vec<u8>)> = names
        .iter()
        .map(|n| {
            let mut data = vec![0u8; mb * 1_000_000 / names.len()];
            rng.fill_bytes(&mut data);
            (*n, data)
        })
        .collect();
    let zip = zip_of(&files, true);
    files.sort();
    (files, zip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_artifact_is_bundled_well_within_the_answer_budget() {
    let world = World::start().await;
    let (files, zip) = big_source(50);
    let size = zip.len();
    pipeline(&world, zip, false);
    start_run(&world);
    let (job_id, job) = polled_job(&world).await;
    let action = BundleAction::new(&sdk_config(&world));
    let started = Instant::now();
    let step = action.start(&job, &job_id).await.expect("bundled");
    let took = started.elapsed();
    eprintln!("bundled a {size}-byte artifact in {took:?}");
    assert!(matches!(step, Step::Succeeded { .. }), "{step:?}");
    // The harness gives an answer 5 s of real time; download, hashing, copying and upload stay under it.
    assert!(
        took < Duration::from_secs(5),
        "a {size}-byte artifact took {took:?}"
    );
    let object = output(&world).await;
    assert_bundle_of(&object.data, &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_fail_the_job_with_a_clear_message() {
    let world = World::start().await;
    pipeline(&world, zip_of(&source_files(), false), false);
    start_run(&world);
    let (job_id, job) = polled_job(&world).await;
    let base = BundleAction::new(&sdk_config(&world));
    let message = failed(
        base.clone()
            .with_limits(BundleLimits {
                max_entries: 2,
                ..BundleLimits::default()
            })
            .start(&job, &job_id)
            .await,
    );
    assert!(
        message.contains("input artifact SourceArtifact") && message.contains("(2)"),
        "{message}"
    );
    let message = failed(
        base.clone()
            .with_limits(BundleLimits {
                max_artifact_bytes: 100,
                ..BundleLimits::default()
            })
            .start(&job, &job_id)
            .await,
    );
    assert!(
        message.contains("Input artifact SourceArtifact") && message.contains("100 B"),
        "{message}"
    );
    // Nothing is left behind in the temporary directory, on failure or success.
    let dir = TempDir::new("bundle-temp");
    let in_dir = base.with_temp_dir(&dir.0);
    failed(
        in_dir
            .clone()
            .with_limits(BundleLimits {
                max_uncompressed_bytes: 10,
                ..BundleLimits::default()
            })
            .start(&job, &job_id)
            .await,
    );
    in_dir.start(&job, &job_id).await.expect("bundled");
    let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number");
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_binary_bundles_a_30_mb_artifact_for_a_kms_pipeline_without_holding_it_twice() {
    let world = World::start().await;
    let (files, zip) = big_source(30);
    pipeline(&world, zip, true);
    let dir = TempDir::new("bundle-binary");
    let mut cmd = support::agent_command(&world, &dir, KEY1, BUILD, "agent.log");
    // The harness's contract: S3 on the fake's address, and the action picked by the type's category.
    cmd.env("AWS_ENDPOINT_URL_S3", &world.cp_url)
        .env_remove("APICA_API_URL")
        .env("TMPDIR", &dir.0);
    let mut child = cmd.spawn().expect("start the agent");
    let pid = child.id().expect("pid");
    let run = start_run(&world);
    let status = run_end(&world, &run).await;
    let log = dir.0.join("agent.log");
    assert_eq!(
        status,
        "Succeeded",
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let peak = peak_rss(pid);
    let object = output(&world).await;
    assert_bundle_of(&object.data, &files);
    assert_eq!(object.sse.as_deref(), Some("aws:kms"));
    assert_eq!(object.kms_key_id.as_deref(), Some(KMS_KEY));
    support::signal(pid, "TERM");
    assert_eq!(
        support::exit_code(&mut child, Duration::from_secs(10), &log).await,
        Some(0)
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("action=\"bundle\"") || text.contains("action=bundle"),
        "{text}"
    );
    // Streamed: the peak is well under two copies of the 30 MB artifact.
    eprintln!("agent peak RSS {} MB", peak / 1_000_000);
    assert!(peak < 60_000_000, "peak RSS {peak} bytes\n{text}");
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("agent-bundle-") || n.starts_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_action_type_registers_the_bundle_with_its_artifacts() {
    let world = World::start().await;
    let dir = TempDir::new("bundle-register");
    let mut cmd = support::agent_command(&world, &dir, KEY1, BUILD, "register.log");
    cmd.arg("register-action-type")
        .stdout(std::process::Stdio::piped());
    let out = cmd.output().await.expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("registered Build/Custom/Bundle/1"),
        "{stdout} {}",
        std::fs::read_to_string(dir.0.join("register.log")).unwrap_or_default()
    );
    let types = world.cp.core().list_action_types(Some("Custom"));
    let bundle = types["actionTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"]["provider"] == "Bundle")
        .expect("the bundle type")
        .clone();
    assert_eq!(
        bundle["inputArtifactDetails"],
        json!({"minimumCount": 1, "maximumCount": 5}),
        "{bundle}"
    );
    assert_eq!(
        bundle["outputArtifactDetails"],
        json!({"minimumCount": 1, "maximumCount": 1}),
        "{bundle}"
    );
    assert_eq!(
        bundle["actionConfigurationProperties"],
        json!([]),
        "{bundle}"
    );
}
