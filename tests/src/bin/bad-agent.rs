//! `bad-agent --mode MODE`: a job agent that gets one thing wrong on purpose, so the harness can prove it
//! catches it. It follows the harness contract (`docs/design.md`) like any agent; apart from its mode it behaves.
//!
//! | mode | what it gets wrong | the harness must report |
//! |---|---|---|
//! | `correct` | nothing | nothing |
//! | `naive` | holds the first job until the test ends | CP-TIMEOUT |
//! | `early-success` | answers the first job as final at once | AG-OUTCOME |
//! | `restart-every-job` | starts a new test on every job | AG-ONE-TEST |
//! | `no-ack` | never acknowledges | CP-ACK |
//! | `success-after-failure` | puts a success on a job it already failed | CP-TERMINAL |
//! | `final-with-token` | the final success still carries the token | AG-FINAL-TOKEN |
//! | `ignores-sigterm` | keeps running after SIGTERM | AG-REDEPLOY |
//! | `no-external-id` | never sends an externalExecutionId | AG-LINK-EARLY |
//! | `no-backoff` | no SDK retries and no pause after a refused call: a throttled API is hammered | AG-BACKOFF |
//! | `never-polls` | starts and then never makes a request | AG-START |
//! | `exits-after-first-job` | acknowledges the first job, then exits (status 3) as a crashing worker would | AG-EXITED |
//! | `restart-on-lost-answer` | when its first answer fails (its response lost; SDK retries off), takes it for not applied, starts a second test and answers with it | AG-ONE-TEST |
//!
//! A job with output artifacts (the artifacts tier) is a build: the agent writes its output artifact (the
//! input's bytes) with the job's `artifactCredentials` and SSE-KMS when the job has an `encryptionKey`, then
//! answers. These modes get the build wrong:
//!
//! | mode | what it gets wrong | the harness must report |
//! |---|---|---|
//! | `success-before-upload` | answers the final success, then uploads | AG-OUTPUT-ARTIFACT |
//! | `ignores-kms` | uploads without SSE-KMS to a KMS pipeline's bucket | AG-ARTIFACT-KMS |
//! | `caches-credentials` | keeps the first job's artifact credentials for every later job | the expected outcome: its second build fails on ExpiredToken |

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionOwner, ActionTypeId, ExecutionDetails, FailureDetails, FailureType,
};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Correct,
    Naive,
    EarlySuccess,
    RestartEveryJob,
    NoAck,
    SuccessAfterFailure,
    FinalWithToken,
    IgnoresSigterm,
    NoExternalId,
    NoBackoff,
    NeverPolls,
    ExitsAfterFirstJob,
    RestartOnLostAnswer,
    SuccessBeforeUpload,
    IgnoresKms,
    CachesCredentials,
}

impl Mode {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "correct" => Mode::Correct,
            "naive" => Mode::Naive,
            "early-success" => Mode::EarlySuccess,
            "restart-every-job" => Mode::RestartEveryJob,
            "no-ack" => Mode::NoAck,
            "success-after-failure" => Mode::SuccessAfterFailure,
            "final-with-token" => Mode::FinalWithToken,
            "ignores-sigterm" => Mode::IgnoresSigterm,
            "no-external-id" => Mode::NoExternalId,
            "no-backoff" => Mode::NoBackoff,
            "never-polls" => Mode::NeverPolls,
            "exits-after-first-job" => Mode::ExitsAfterFirstJob,
            "restart-on-lost-answer" => Mode::RestartOnLostAnswer,
            "success-before-upload" => Mode::SuccessBeforeUpload,
            "ignores-kms" => Mode::IgnoresKms,
            "caches-credentials" => Mode::CachesCredentials,
            other => bail!("unknown --mode `{other}`"),
        })
    }
}

/// One job, whichever family it came from.
struct Job {
    id: String,
    nonce: Option<String>,
    client_token: Option<String>,
    token: Option<String>,
    config: HashMap<String, String>,
    data: Option<aws_sdk_codepipeline::types::JobData>,
}

struct Agent {
    cp: Client,
    http: reqwest::Client,
    mode: Mode,
    third_party: bool,
    type_id: ActionTypeId,
    clients: HashMap<String, String>,
    apica: String,
    apica_token: String,
    counter: u64,
    sdk: aws_config::SdkConfig,
    // caches-credentials: the first job's artifact credentials, used for every later job.
    cached: Option<aws_sdk_codepipeline::types::AwsSessionCredentials>,
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set (the harness contract sets it)"))
}

impl Agent {
    async fn poll(&self) -> Result<Vec<Job>> {
        let mut out = Vec::new();
        if self.third_party {
            let polled = self
                .cp
                .poll_for_third_party_jobs()
                .action_type_id(self.type_id.clone())
                .max_batch_size(1)
                .send()
                .await?;
            for j in polled.jobs() {
                let id = j.job_id().unwrap_or_default().to_string();
                let token = self
                    .clients
                    .get(j.client_id().unwrap_or_default())
                    .cloned()
                    .unwrap_or_default();
                let d = self
                    .cp
                    .get_third_party_job_details()
                    .job_id(&id)
                    .client_token(&token)
                    .send()
                    .await?;
                let d = d.job_details().context("no job details")?;
                let data = d.data().context("no data")?;
                out.push(Job {
                    data: None,
                    id,
                    nonce: d.nonce().map(str::to_string),
                    client_token: Some(token),
                    token: data.continuation_token().map(str::to_string),
                    config: data
                        .action_configuration()
                        .and_then(|c| c.configuration())
                        .cloned()
                        .unwrap_or_default(),
                });
            }
        } else {
            let polled = self
                .cp
                .poll_for_jobs()
                .action_type_id(self.type_id.clone())
                .max_batch_size(1)
                .send()
                .await?;
            for j in polled.jobs() {
                let data = j.data().context("no data")?;
                out.push(Job {
                    data: Some(data.clone()),
                    id: j.id().unwrap_or_default().to_string(),
                    nonce: j.nonce().map(str::to_string),
                    client_token: None,
                    token: data.continuation_token().map(str::to_string),
                    config: data
                        .action_configuration()
                        .and_then(|c| c.configuration())
                        .cloned()
                        .unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    async fn ack(&self, job: &Job) -> Result<()> {
        let nonce = job.nonce.clone().unwrap_or_default();
        if self.third_party {
            self.cp
                .acknowledge_third_party_job()
                .job_id(&job.id)
                .nonce(nonce)
                .client_token(job.client_token.clone().unwrap_or_default())
                .send()
                .await?;
        } else {
            self.cp
                .acknowledge_job()
                .job_id(&job.id)
                .nonce(nonce)
                .send()
                .await?;
        }
        Ok(())
    }

    async fn success(
        &self,
        job: &Job,
        token: Option<String>,
        pct: i32,
        external: Option<String>,
    ) -> Result<()> {
        let external = if self.mode == Mode::NoExternalId {
            None
        } else {
            external
        };
        let details = ExecutionDetails::builder()
            .percent_complete(pct)
            .set_external_execution_id(external)
            .summary(format!("{pct}%"))
            .build();
        if self.third_party {
            self.cp
                .put_third_party_job_success_result()
                .job_id(&job.id)
                .client_token(job.client_token.clone().unwrap_or_default())
                .set_continuation_token(token)
                .execution_details(details)
                .send()
                .await?;
        } else {
            self.cp
                .put_job_success_result()
                .job_id(&job.id)
                .set_continuation_token(token)
                .execution_details(details)
                .send()
                .await?;
        }
        Ok(())
    }

    async fn failure(&self, job: &Job, kind: FailureType, message: String) -> Result<()> {
        let f = FailureDetails::builder()
            .r#type(kind)
            .message(message)
            .build()?;
        if self.third_party {
            self.cp
                .put_third_party_job_failure_result()
                .job_id(&job.id)
                .client_token(job.client_token.clone().unwrap_or_default())
                .failure_details(f)
                .send()
                .await?;
        } else {
            self.cp
                .put_job_failure_result()
                .job_id(&job.id)
                .failure_details(f)
                .send()
                .await?;
        }
        Ok(())
    }

    /// Starts a backend test for `job`, keyed by the job id (a new key each time when `restart`).
    async fn create_test(&mut self, job: &Job, restart: bool) -> Result<Result<u64, String>> {
        let key = if restart || self.mode == Mode::RestartEveryJob {
            self.counter += 1;
            format!("{}-{}", job.id, self.counter)
        } else {
            job.id.clone()
        };
        let body = json!({
            "preset": job.config.get("PresetName").cloned().unwrap_or_default(),
            "runnableFile": job.config.get("RunnableFile").cloned().unwrap_or_default(),
            "idempotencyKey": key,
        });
        let resp = self
            .http
            .post(format!("{}/v1/loadtests", self.apica))
            .bearer_auth(&self.apica_token)
            .json(&body)
            .send()
            .await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(Ok(v["jobId"].as_u64().unwrap_or(0)))
        } else {
            Ok(Err(v["message"]
                .as_str()
                .unwrap_or("backend error")
                .to_string()))
        }
    }

    async fn test_status(&self, id: u64) -> Result<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/loadtests/{id}", self.apica))
            .bearer_auth(&self.apica_token)
            .send()
            .await?;
        Ok(resp.json().await?)
    }

    /// Writes the job's output artifacts (the input's bytes) with its artifact credentials (or, in
    /// `caches-credentials`, the first job's), SSE-KMS when the job has a key (not in `ignores-kms`).
    async fn upload(&mut self, data: &aws_sdk_codepipeline::types::JobData) -> Result<()> {
        let own = data
            .artifact_credentials()
            .context("no artifactCredentials")?
            .clone();
        let creds = match (self.mode, &self.cached) {
            (Mode::CachesCredentials, Some(first)) => first.clone(),
            (Mode::CachesCredentials, None) => {
                self.cached = Some(own.clone());
                own
            }
            _ => own,
        };
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk)
                .credentials_provider(aws_credential_types::Credentials::new(
                    creds.access_key_id(),
                    creds.secret_access_key(),
                    Some(creds.session_token().to_string()),
                    None,
                    "job",
                ))
                .force_path_style(true)
                .build(),
        );
        let loc = |a: &aws_sdk_codepipeline::types::Artifact| {
            a.location()
                .and_then(|l| l.s3_location())
                .map(|s| (s.bucket_name().to_string(), s.object_key().to_string()))
        };
        let mut bytes = Vec::new();
        for a in data.input_artifacts() {
            let (b, k) = loc(a).context("an input artifact without an S3 location")?;
            let got = s3
                .get_object()
                .bucket(&b)
                .key(&k)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "GetObject s3://{b}/{k}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                })?;
            bytes.extend(got.body.collect().await?.into_bytes());
        }
        for a in data.output_artifacts() {
            let (b, k) = loc(a).context("an output artifact without an S3 location")?;
            let mut put = s3
                .put_object()
                .bucket(&b)
                .key(&k)
                .body(bytes.clone().into());
            if let (Some(key), false) = (data.encryption_key(), self.mode == Mode::IgnoresKms) {
                put = put
                    .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
                    .ssekms_key_id(key.id());
            }
            put.send().await.map_err(|e| {
                anyhow::anyhow!(
                    "PutObject s3://{b}/{k}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })?;
        }
        Ok(())
    }

    /// A build job: upload, then answer (in `success-before-upload`, the other way round).
    async fn build(
        &mut self,
        job: &Job,
        data: &aws_sdk_codepipeline::types::JobData,
    ) -> Result<()> {
        self.counter += 1;
        let ext = Some(format!("build-{}", self.counter));
        if self.mode == Mode::SuccessBeforeUpload {
            self.success(job, None, 100, ext).await?;
            if let Err(e) = self.upload(data).await {
                eprintln!("bad-agent: the upload after the answer failed: {e:#}");
            }
            return Ok(());
        }
        match self.upload(data).await {
            Ok(()) => self.success(job, None, 100, ext).await,
            Err(e) => {
                eprintln!("bad-agent: build failed: {e:#}");
                self.failure(job, FailureType::JobFailed, format!("{e:#}"))
                    .await
            }
        }
    }

    async fn handle(&mut self, job: Job) -> Result<()> {
        if self.mode != Mode::NoAck {
            self.ack(&job).await?;
        }
        if let Some(data) = job
            .data
            .clone()
            .filter(|d| !d.output_artifacts().is_empty())
        {
            return self.build(&job, &data).await;
        }
        let test_id = match &job.token {
            Some(t) if self.mode != Mode::RestartEveryJob => t.parse::<u64>().unwrap_or(0),
            _ => match self.create_test(&job, false).await? {
                Ok(id) => id,
                Err(message) => {
                    return self
                        .failure(&job, FailureType::ConfigurationError, message)
                        .await;
                }
            },
        };
        let ext = Some(test_id.to_string());
        if job.token.is_none() {
            match self.mode {
                Mode::EarlySuccess => return self.success(&job, None, 100, ext).await,
                Mode::SuccessAfterFailure => {
                    self.failure(&job, FailureType::JobFailed, "failing on purpose".into())
                        .await?;
                    return self.success(&job, None, 100, ext).await;
                }
                Mode::Naive => loop {
                    let s = self.test_status(test_id).await?;
                    match s["status"].as_str() {
                        Some("running") => tokio::time::sleep(Duration::from_millis(20)).await,
                        Some("passed") => return self.success(&job, None, 100, ext).await,
                        _ => {
                            return self
                                .failure(&job, FailureType::JobFailed, s["summary"].to_string())
                                .await;
                        }
                    }
                },
                Mode::RestartOnLostAnswer => {
                    let first = self.success(&job, Some(test_id.to_string()), 0, ext).await;
                    let Err(e) = first else { return Ok(()) };
                    // Wrong: the call may have been applied (its response lost). Taking the error for
                    // "not started" starts a second test for the same action execution.
                    eprintln!("bad-agent: the first answer failed ({e:#}); starting over");
                    return match self.create_test(&job, true).await? {
                        Ok(id) => {
                            self.success(&job, Some(id.to_string()), 0, Some(id.to_string()))
                                .await
                        }
                        Err(message) => {
                            self.failure(&job, FailureType::ConfigurationError, message)
                                .await
                        }
                    };
                }
                _ => return self.success(&job, Some(test_id.to_string()), 0, ext).await,
            }
        }
        let s = self.test_status(test_id).await?;
        let pct = s["percentComplete"].as_i64().unwrap_or(0) as i32;
        match s["status"].as_str() {
            Some("running") => {
                self.success(&job, Some(test_id.to_string()), pct.min(99), ext)
                    .await
            }
            Some("passed") => {
                let token = (self.mode == Mode::FinalWithToken).then(|| test_id.to_string());
                self.success(&job, token, 100, ext).await
            }
            _ => {
                self.failure(
                    &job,
                    FailureType::JobFailed,
                    s["summary"].as_str().unwrap_or("failed").to_string(),
                )
                .await
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mode = match args
        .iter()
        .position(|a| a == "--mode")
        .and_then(|i| args.get(i + 1))
    {
        Some(m) => Mode::parse(m)?,
        None => bail!("usage: bad-agent --mode MODE (see the doc comment for the modes)"),
    };
    let action_type = env("JOB_ACTION_TYPE")?;
    let parts: Vec<&str> = action_type.split('/').collect();
    if parts.len() != 4 {
        bail!("JOB_ACTION_TYPE `{action_type}` must be Category/Owner/Provider/Version");
    }
    let type_id = ActionTypeId::builder()
        .category(ActionCategory::from(parts[0]))
        .owner(ActionOwner::from(parts[1]))
        .provider(parts[2])
        .version(parts[3])
        .build()?;
    let clients: HashMap<String, String> = match std::env::var("JOB_CLIENT_TOKENS_FILE") {
        Ok(path) => serde_json::from_str(
            &std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?,
        )?,
        Err(_) => HashMap::new(),
    };
    let mut conf = aws_config::defaults(aws_config::BehaviorVersion::latest());
    // no-backoff: no SDK retries and no pause. restart-on-lost-answer: no SDK retries either, so that a
    // lost response reaches the agent's own (wrong) handling at once, on the simulated instant it was
    // lost, rather than after a real-time SDK backoff during which other replicas move the clock.
    if matches!(mode, Mode::NoBackoff | Mode::RestartOnLostAnswer) {
        conf = conf.retry_config(aws_config::retry::RetryConfig::disabled());
    }
    let conf = conf.load().await;
    let mut agent = Agent {
        cp: Client::new(&conf),
        http: reqwest::Client::new(),
        mode,
        third_party: parts[1] == "ThirdParty",
        type_id,
        clients,
        apica: env("APICA_API_URL")?,
        apica_token: env("APICA_API_TOKEN")?,
        counter: 0,
        sdk: conf.clone(),
        cached: None,
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let interval = Duration::from_millis(
        std::env::var("JOB_POLL_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    );
    if mode == Mode::NeverPolls {
        eprintln!("bad-agent: started, and will never poll");
        term.recv().await;
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = term.recv() => {
                if mode == Mode::IgnoresSigterm {
                    eprintln!("bad-agent: ignoring SIGTERM");
                    continue;
                }
                return Ok(());
            }
            polled = agent.poll() => {
                match polled {
                    Ok(jobs) => {
                        for job in jobs {
                            if mode == Mode::ExitsAfterFirstJob {
                                agent.ack(&job).await?;
                                eprintln!("bad-agent: fatal: cannot parse the configuration of job {}", job.id);
                                std::process::exit(3);
                            }
                            if let Err(e) = agent.handle(job).await {
                                eprintln!("bad-agent: {e:#}");
                            }
                        }
                    }
                    Err(e) if mode == Mode::NoBackoff => {
                        // Straight back at it: no pause after a refused call.
                        eprintln!("bad-agent: poll: {e:#}; again at once");
                        continue;
                    }
                    Err(e) => eprintln!("bad-agent: poll: {e:#}"),
                }
                tokio::time::sleep(interval).await;
            }
        }
    }
}
