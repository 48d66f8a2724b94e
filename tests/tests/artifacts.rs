//! The artifact store (`docs/artifacts.md`) through the real Rust SDK (`aws-sdk-s3`): S3 on the fake's
//! own address, the artifacts and temporary credentials a job carries, the AWS-owned Source and Deploy
//! actions that read and write them, and AG-OUTPUT-ARTIFACT (a final success before the upload).

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_codepipeline::types::ExecutionDetails;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use serde_json::{Value, json};
use tests::{KEY1, TestCp};

const BUILD: &str = "Build/Custom/Bundle/1";

fn s3(cp: &TestCp, key: &str, secret: &str, token: Option<&str>) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(cp.url())
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            key,
            secret,
            token.map(str::to_string),
            None,
            "tests",
        ))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<no code>").to_string()
}

async fn body(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

#[tokio::test]
async fn the_store_speaks_s3_to_the_rust_sdk() {
    let cp = TestCp::start().await;
    let c = s3(&cp, KEY1.0, KEY1.1, None);
    c.create_bucket()
        .bucket("tools")
        .send()
        .await
        .expect("CreateBucket");
    let again = c.create_bucket().bucket("tools").send().await.unwrap_err();
    assert_eq!(code(&again.into_service_error()), "BucketAlreadyOwnedByYou");
    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await
        .expect("ListBuckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    assert!(names.contains(&"tools".to_string()), "{names:?}");

    for (key, data) in [
        ("a/1.txt", "one"),
        ("a/2.txt", "two"),
        ("b/3.txt", "three"),
        ("top.txt", "top"),
    ] {
        c.put_object()
            .bucket("tools")
            .key(key)
            .body(ByteStream::from_static(data.as_bytes()))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
    }
    let got = c
        .get_object()
        .bucket("tools")
        .key("a/2.txt")
        .send()
        .await
        .expect("GetObject");
    assert_eq!(body(got).await, b"two");
    let ranged = c
        .get_object()
        .bucket("tools")
        .key("b/3.txt")
        .range("bytes=1-3")
        .send()
        .await
        .expect("ranged GetObject");
    assert_eq!(ranged.content_range(), Some("bytes 1-3/5"));
    assert_eq!(body(ranged).await, b"hre");
    let head = c
        .head_object()
        .bucket("tools")
        .key("top.txt")
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(head.content_length(), Some(3));

    let listed = c
        .list_objects_v2()
        .bucket("tools")
        .delimiter("/")
        .send()
        .await
        .expect("ListObjectsV2");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!((keys, prefixes), (vec!["top.txt"], vec!["a/", "b/"]));
    let page = c
        .list_objects_v2()
        .bucket("tools")
        .prefix("a/")
        .max_keys(1)
        .send()
        .await
        .expect("a page");
    assert_eq!(page.is_truncated(), Some(true));
    let next = c
        .list_objects_v2()
        .bucket("tools")
        .prefix("a/")
        .continuation_token(page.next_continuation_token().expect("a token"))
        .send()
        .await
        .expect("next page");
    assert_eq!(
        next.contents()
            .iter()
            .filter_map(|o| o.key())
            .collect::<Vec<_>>(),
        vec!["a/2.txt"]
    );

    // A checksum that does not match the body is refused, and nothing is written.
    let bad = c
        .put_object()
        .bucket("tools")
        .key("bad")
        .body(ByteStream::from_static(b"payload"))
        .checksum_crc32("AAAAAA==")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad.into_service_error()), "BadDigest");
    let missing = c.head_object().bucket("tools").key("bad").send().await;
    assert!(missing.is_err(), "a refused upload wrote nothing");

    // Multipart: a 5 MiB part and a last small one.
    let up = c
        .create_multipart_upload()
        .bucket("tools")
        .key("big.bin")
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = up.upload_id().expect("upload id").to_string();
    let part1 = vec![7u8; 5 * 1024 * 1024];
    let mut parts = Vec::new();
    for (n, data) in [(1, part1.clone()), (2, b"tail".to_vec())] {
        let out = c
            .upload_part()
            .bucket("tools")
            .key("big.bin")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(data))
            .send()
            .await
            .expect("UploadPart");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().expect("etag"))
                .build(),
        );
    }
    let done = c
        .complete_multipart_upload()
        .bucket("tools")
        .key("big.bin")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("CompleteMultipartUpload");
    assert!(
        done.e_tag().expect("etag").ends_with("-2\""),
        "{:?}",
        done.e_tag()
    );
    let big = body(
        c.get_object()
            .bucket("tools")
            .key("big.bin")
            .send()
            .await
            .expect("GetObject"),
    )
    .await;
    assert_eq!(big.len(), part1.len() + 4);
    assert_eq!(&big[big.len() - 4..], b"tail");

    // A presigned GET works without the SDK.
    let presigned = c
        .get_object()
        .bucket("tools")
        .key("a/1.txt")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .expect("presign");
    let text = reqwest::get(presigned.uri())
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert_eq!(text, "one");

    c.delete_object()
        .bucket("tools")
        .key("a/1.txt")
        .send()
        .await
        .expect("DeleteObject");
    let gone = c
        .get_object()
        .bucket("tools")
        .key("a/1.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&gone.into_service_error()), "NoSuchKey");

    // A wrong secret is a signature error; an unknown key is InvalidAccessKeyId.
    let wrong = s3(&cp, KEY1.0, "not-the-secret", None)
        .list_buckets()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&wrong.into_service_error()), "SignatureDoesNotMatch");
    let unknown = s3(&cp, "AKIDNOBODY", "x", None)
        .list_buckets()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&unknown.into_service_error()), "InvalidAccessKeyId");
    // S3 requests count as in flight only while they run.
    assert_eq!(cp.sim.activity.snapshot().in_flight, 0);
}

/// A custom build type that reads one artifact and makes one, and a pipeline Source -> Build -> Deploy
/// whose source object is uploaded (`with_source`) or not; its run's id.
async fn pipeline(cp: &TestCp, with_source: bool) -> String {
    pipeline_with(
        cp,
        with_source,
        json!({"type": "S3", "location": "bundle-artifacts"}),
    )
    .await
}

/// [`pipeline`] with the artifact store `store`.
async fn pipeline_with(cp: &TestCp, with_source: bool, store: Value) -> String {
    cp.fake
        .core()
        .register_action_type(fake_codepipeline::ActionTypeSpec {
            id: Some(BUILD.parse().unwrap()),
            settings: json!({}),
            properties: vec![],
            input_artifacts: json!({"minimumCount": 1, "maximumCount": 1}),
            output_artifacts: json!({"minimumCount": 1, "maximumCount": 1}),
            clients: Default::default(),
            timing: Default::default(),
        })
        .expect("register");
    let admin = s3(cp, KEY1.0, KEY1.1, None);
    admin
        .create_bucket()
        .bucket("sources")
        .send()
        .await
        .expect("CreateBucket");
    if with_source {
        admin
            .put_object()
            .bucket("sources")
            .key("app.zip")
            .body(ByteStream::from_static(b"PK-source"))
            .send()
            .await
            .expect("upload the source");
    }
    let aws = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
    cp.fake
        .core()
        .create_pipeline(&json!({"pipeline": {
            "name": "bundle", "roleArn": "arn:aws:iam::123456789012:role/p",
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
    let out = cp
        .client(KEY1)
        .start_pipeline_execution()
        .name("bundle")
        .send()
        .await
        .expect("start");
    out.pipeline_execution_id().unwrap().to_string()
}

async fn run_status(cp: &TestCp, id: &str) -> String {
    let out = cp
        .client(KEY1)
        .get_pipeline_execution()
        .pipeline_name("bundle")
        .pipeline_execution_id(id)
        .send()
        .await
        .expect("GetPipelineExecution");
    out.pipeline_execution()
        .and_then(|p| p.status())
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

async fn poll_build(cp: &TestCp) -> (String, Value) {
    let client = cp.client(KEY1);
    let out = client
        .poll_for_jobs()
        .action_type_id(tests::sdk_type(BUILD))
        .send()
        .await
        .expect("poll");
    let job = out.jobs().first().expect("a build job").clone();
    client
        .acknowledge_job()
        .job_id(job.id().unwrap())
        .nonce(job.nonce().unwrap())
        .send()
        .await
        .expect("ack");
    let id = job.id().unwrap().to_string();
    let data = cp
        .fake
        .core()
        .details(Some(KEY1.0), fake_codepipeline::Owner::Custom, &id, None)
        .expect("details");
    (id, data["data"].clone())
}

fn location(v: &Value) -> (String, String) {
    let s3 = &v["location"]["s3Location"];
    (
        s3["bucketName"].as_str().unwrap().into(),
        s3["objectKey"].as_str().unwrap().into(),
    )
}

fn job_s3(cp: &TestCp, data: &Value) -> aws_sdk_s3::Client {
    let c = &data["artifactCredentials"];
    s3(
        cp,
        c["accessKeyId"].as_str().unwrap(),
        c["secretAccessKey"].as_str().unwrap(),
        c["sessionToken"].as_str(),
    )
}

#[tokio::test]
async fn a_job_reads_and_writes_its_artifacts_with_its_own_temporary_credentials() {
    let cp = TestCp::start().await;
    let run = pipeline(&cp, true).await;
    let (job, data) = poll_build(&cp).await;
    let (in_bucket, in_key) = location(&data["inputArtifacts"][0]);
    let (out_bucket, out_key) = location(&data["outputArtifacts"][0]);
    assert_eq!(
        (in_bucket.as_str(), out_bucket.as_str()),
        ("bundle-artifacts", "bundle-artifacts")
    );
    assert!(in_key.starts_with("bundle/SourceArti/"), "{in_key}");
    assert!(out_key.starts_with("bundle/BuildArtif/"), "{out_key}");
    assert!(
        data["artifactCredentials"]["accessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIA")
    );
    assert!(data.get("encryptionKey").is_none());

    let mine = job_s3(&cp, &data);
    let source = mine
        .get_object()
        .bucket(&in_bucket)
        .key(&in_key)
        .send()
        .await
        .expect("read the input");
    assert_eq!(body(source).await, b"PK-source");
    // Only the pipeline's artifact bucket, and only with the session token.
    let elsewhere = mine
        .get_object()
        .bucket("sources")
        .key("app.zip")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&elsewhere.into_service_error()), "AccessDenied");
    let c = &data["artifactCredentials"];
    let tokenless = s3(
        &cp,
        c["accessKeyId"].as_str().unwrap(),
        c["secretAccessKey"].as_str().unwrap(),
        None,
    );
    let refused = tokenless
        .head_object()
        .bucket(&in_bucket)
        .key(&in_key)
        .send()
        .await;
    assert!(refused.is_err(), "no session token, no access");

    mine.put_object()
        .bucket(&out_bucket)
        .key(&out_key)
        .body(ByteStream::from_static(b"PK-bundle"))
        .send()
        .await
        .expect("upload the output");
    cp.client(KEY1)
        .put_job_success_result()
        .job_id(&job)
        .execution_details(
            ExecutionDetails::builder()
                .percent_complete(100)
                .summary("bundled")
                .build(),
        )
        .send()
        .await
        .expect("success");
    assert!(cp.events_with_rule("AG-OUTPUT-ARTIFACT").is_empty());
    assert_eq!(run_status(&cp, &run).await, "Succeeded");

    // The job is over: its credentials are too.
    let late = mine
        .get_object()
        .bucket(&out_bucket)
        .key(&out_key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&late.into_service_error()), "ExpiredToken");
}

#[tokio::test]
async fn success_before_the_upload_is_ag_output_artifact_and_the_deploy_fails() {
    let cp = TestCp::start().await;
    let run = pipeline(&cp, true).await;
    let (job, data) = poll_build(&cp).await;
    let (out_bucket, out_key) = location(&data["outputArtifacts"][0]);
    cp.client(KEY1)
        .put_job_success_result()
        .job_id(&job)
        .execution_details(ExecutionDetails::builder().percent_complete(100).build())
        .send()
        .await
        .expect("success");
    let violations = cp.events_with_rule("AG-OUTPUT-ARTIFACT");
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].detail.contains("BuildArtifact"),
        "{}",
        violations[0].detail
    );
    assert_eq!(run_status(&cp, &run).await, "Failed");
    // The upload after the answer is too late: the job's credentials expired with it.
    let late = job_s3(&cp, &data)
        .put_object()
        .bucket(&out_bucket)
        .key(&out_key)
        .body(ByteStream::from_static(b"late"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&late.into_service_error()), "ExpiredToken");
}

#[tokio::test]
async fn a_missing_source_object_fails_the_source_action_and_makes_no_job() {
    let cp = TestCp::start().await;
    let run = pipeline(&cp, false).await;
    assert_eq!(run_status(&cp, &run).await, "Failed");
    let polled = cp
        .client(KEY1)
        .poll_for_jobs()
        .action_type_id(tests::sdk_type(BUILD))
        .send()
        .await
        .expect("poll");
    assert!(polled.jobs().is_empty());
}

#[tokio::test]
async fn a_kms_pipeline_hands_out_its_key_and_its_bucket_takes_only_sse_kms_uploads() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/abc";
    let cp = TestCp::start_with(fake_codepipeline::Settings {
        require_kms_key_id: true,
        ..Default::default()
    })
    .await;
    pipeline_with(
        &cp,
        true,
        json!({"type": "S3", "location": "secure-artifacts", "encryptionKey": {"id": key, "type": "KMS"}}),
    )
    .await;
    let (_job, data) = poll_build(&cp).await;
    assert_eq!(data["encryptionKey"], json!({"id": key, "type": "KMS"}));
    let (bucket, out) = location(&data["outputArtifacts"][0]);
    let (_, input) = location(&data["inputArtifacts"][0]);
    let mine = job_s3(&cp, &data);
    // The Source action's copy is recorded as encrypted with the pipeline's key.
    let head = mine
        .head_object()
        .bucket(&bucket)
        .key(&input)
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
    assert_eq!(head.ssekms_key_id(), Some(key));

    let plain = mine
        .put_object()
        .bucket(&bucket)
        .key(&out)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&plain.into_service_error()), "AccessDenied");
    let other_key = mine
        .put_object()
        .bucket(&bucket)
        .key(&out)
        .body(ByteStream::from_static(b"x"))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id("arn:aws:kms:us-east-1:123456789012:key/other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&other_key.into_service_error()), "AccessDenied");
    let refused = cp.events_with_rule("AG-ARTIFACT-KMS");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().all(|e| e.execution.is_some()),
        "attributed to the job's execution: {refused:?}"
    );
    assert!(
        cp.fake.core().store.get(&bucket, &out).is_none(),
        "a refused upload wrote nothing"
    );

    mine.put_object()
        .bucket(&bucket)
        .key(&out)
        .body(ByteStream::from_static(b"PK-bundle"))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(key)
        .send()
        .await
        .expect("an SSE-KMS upload with the pipeline's key");
    let got = mine
        .get_object()
        .bucket(&bucket)
        .key(&out)
        .send()
        .await
        .expect("GetObject");
    assert_eq!(
        got.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms")
    );
    assert_eq!(body(got).await, b"PK-bundle");
}
