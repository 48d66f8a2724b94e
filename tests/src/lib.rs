//! The support library of the workspace integration tests (`tests/tests/`, `tests/examples/`).
//!
//! This file: a fake CodePipeline on a loopback port with a manual clock, real `aws-sdk-codepipeline`
//! clients signed with per-replica keys, hand-made SigV4 headers, and the benchmarks' CPU and latency
//! readings. The modules:
//!
//! - [`sdk`]: installing and running the pinned SDKs and tools the wire tests drive (pip / npm installs
//!   into the cargo target dir, running a tool and failing with its output, the workspace's paths);
//! - [`smoke`]: the SDK wire smoke scenario, run through boto3 and the JavaScript SDK, and the
//!   expectations both are held to.
//!
//! The scripts and the pinned dependency lists those modules use stay in `tests/sdk/`.

pub mod sdk;
pub mod smoke;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::Region;
use aws_sdk_codepipeline::types::{ActionCategory, ActionOwner, ActionTypeId as SdkActionTypeId};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use fake_codepipeline::{FakeCodePipeline, Settings};
use serde_json::{Value, json};
use sim_core::Sim;
use tokio::sync::oneshot;

/// The first replica's access key and secret.
pub const KEY1: (&str, &str) = ("AKIDREPLICA1", "secret-one-0000");
/// The second replica's access key and secret.
pub const KEY2: (&str, &str) = ("AKIDREPLICA2", "secret-two-0000");
/// A third-party clientId and its token.
pub const CLIENT: (&str, &str) = ("6f1c2a9e-0000-4000-8000-000000000001", "client-token-one");
/// The third-party action type tests use.
pub const THIRD_PARTY: &str = "Test/ThirdParty/ApicaLoadtest/1";
/// The custom action type tests use.
pub const CUSTOM: &str = "Test/Custom/ApicaLoadtest/1";

/// The Apica action's configuration properties: PresetName (required, key; `queryable` as asked: a custom
/// poll must then name it in `queryParam`), RunnableFile (required), ApiToken (secret).
pub fn apica_properties(queryable: bool) -> Value {
    json!([
        {"name": "PresetName", "required": true, "key": true, "secret": false, "queryable": queryable},
        {"name": "RunnableFile", "required": true, "key": false, "secret": false},
        {"name": "ApiToken", "required": false, "key": false, "secret": true},
    ])
}

/// A fake CodePipeline served on 127.0.0.1 with a manual clock.
pub struct TestCp {
    /// The fake.
    pub fake: FakeCodePipeline,
    /// The world it runs on (advance `sim.clock` to move time).
    pub sim: Sim,
    /// Where it listens.
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl TestCp {
    /// Starts a fake with both test keys and default settings.
    pub async fn start() -> Self {
        Self::start_with(Settings::default()).await
    }

    /// Starts a fake with `settings` plus both test keys.
    pub async fn start_with(settings: Settings) -> Self {
        let sim = Sim::manual();
        let settings = settings.with_key(KEY1.0, KEY1.1).with_key(KEY2.0, KEY2.1);
        let fake = FakeCodePipeline::new(sim.clone(), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let server = fake.clone();
        tokio::spawn(async move {
            let _ = server
                .serve(listener, async move {
                    let _ = rx.await;
                })
                .await;
        });
        TestCp {
            fake,
            sim,
            addr,
            _stop: tx,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A real SDK client signing with `key`, retries off (errors surface at once).
    pub fn client(&self, key: (&str, &str)) -> Client {
        self.client_with(key, RetryConfig::disabled())
    }

    /// A real SDK client signing with `key` and the given retry policy.
    pub fn client_with(&self, key: (&str, &str), retry: RetryConfig) -> Client {
        let conf = aws_sdk_codepipeline::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.url())
            .credentials_provider(Credentials::new(key.0, key.1, None, None, "tests"))
            .retry_config(retry)
            .build();
        Client::from_conf(conf)
    }

    /// Registers an action type through the library (what `POST /_sim/action-types` does), with the Apica
    /// properties ([`apica_properties`], PresetName not queryable: a poll then needs no `queryParam`).
    /// `extra` replaces members, e.g. `{"configurationProperties": apica_properties(true)}`.
    pub fn register(&self, action_type: &str, extra: Value) {
        let mut body = json!({
            "actionType": action_type,
            "settings": {"executionUrlTemplate": "http://apica.test/jobs/{ExternalExecutionId}?preset={Config:PresetName}"},
            "configurationProperties": apica_properties(false),
            "clients": {CLIENT.0: CLIENT.1},
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        let spec = admin_action_type(&body);
        self.fake
            .core()
            .register_action_type(spec)
            .expect("register action type");
    }

    /// Starts a bare action execution with `configuration`; returns its label.
    pub fn start_execution(&self, action_type: &str, preset: &str) -> String {
        let spec = fake_codepipeline::ExecutionSpec {
            action_type: Some(action_type.parse().expect("action type")),
            configuration: [
                ("PresetName".to_string(), preset.to_string()),
                ("RunnableFile".to_string(), format!("{preset}.jmx")),
            ]
            .into_iter()
            .collect(),
            client_id: None,
            label: None,
            ..Default::default()
        };
        let v = self
            .fake
            .core()
            .start_execution(spec)
            .expect("start execution");
        v["executionId"].as_str().expect("label").to_string()
    }

    /// The admin view of an execution.
    pub fn execution(&self, label: &str) -> Value {
        self.fake
            .core()
            .execution_view(label)
            .expect("execution exists")
    }

    /// Moves the manual clock forward.
    pub fn advance(&self, by: Duration) {
        self.sim.clock.advance_by(by).expect("manual clock");
    }

    /// Events whose rule is `rule`.
    pub fn events_with_rule(&self, rule: &str) -> Vec<sim_core::Event> {
        self.sim
            .events
            .all()
            .into_iter()
            .filter(|e| e.rule.is_some_and(|r| r == rule))
            .collect()
    }
}

/// Builds the library spec from an admin-API-shaped body (keeps the tests close to the HTTP form).
fn admin_action_type(body: &Value) -> fake_codepipeline::ActionTypeSpec {
    let id = body["actionType"]
        .as_str()
        .expect("actionType")
        .parse()
        .expect("parse action type");
    let dur = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    fake_codepipeline::ActionTypeSpec {
        id: Some(id),
        settings: body["settings"].clone(),
        properties: fake_codepipeline::pipelines::parse_properties(
            body.get("configurationProperties"),
        )
        .expect("properties"),
        input_artifacts: Value::Null,
        output_artifacts: Value::Null,
        clients: serde_json::from_value(body["clients"].clone()).unwrap_or_default(),
        timing: fake_codepipeline::TimingOverrides {
            job_timeout: dur("jobTimeout"),
            ack_window: dur("ackWindow"),
            continuation_delay: dur("continuationDelay"),
            action_timeout: dur("actionTimeout"),
            final_on: dur("finalOn"),
            job_timeout_from: dur("jobTimeoutFrom"),
            action_timeout_per: dur("actionTimeoutPer"),
        },
    }
}

/// The SDK form of a `Category/Owner/Provider/Version` action type.
pub fn sdk_type(action_type: &str) -> SdkActionTypeId {
    let parts: Vec<&str> = action_type.split('/').collect();
    SdkActionTypeId::builder()
        .category(ActionCategory::from(parts[0]))
        .owner(ActionOwner::from(parts[1]))
        .provider(parts[2])
        .version(parts[3])
        .build()
        .expect("complete action type id")
}

/// The error code of an SDK error (`InvalidNonceException`, ...), or a description of a non-service error.
pub fn error_code<E, R>(err: &aws_sdk_codepipeline::error::SdkError<E, R>) -> String
where
    E: aws_sdk_codepipeline::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) => e.code().unwrap_or("<no code>").to_string(),
        None => format!("<not a service error: {err:?}>"),
    }
}

/// The error message of an SDK service error.
pub fn error_message<E, R>(err: &aws_sdk_codepipeline::error::SdkError<E, R>) -> String
where
    E: aws_sdk_codepipeline::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.message())
        .unwrap_or_default()
        .to_string()
}

/// Polls the custom test type once: the first job's id and the nonce of this dispatch, if any.
pub async fn poll_custom(client: &Client) -> Option<(String, String)> {
    let out = client
        .poll_for_jobs()
        .action_type_id(sdk_type(CUSTOM))
        .send()
        .await
        .expect("PollForJobs");
    out.jobs().first().map(|j| {
        (
            j.id().expect("job id").to_string(),
            j.nonce().expect("nonce").to_string(),
        )
    })
}

/// Polls and acknowledges the next custom job; its id.
pub async fn take_custom(client: &Client) -> String {
    let (id, nonce) = poll_custom(client).await.expect("a custom job is queued");
    client
        .acknowledge_job()
        .job_id(&id)
        .nonce(nonce)
        .send()
        .await
        .expect("AcknowledgeJob");
    id
}

/// The headers the signer adds (`x-amz-date`, `authorization`) to a `POST /` in us-east-1 that signs
/// exactly `headers` plus `x-amz-date`, with `key`, as if the client's clock read `at`.
pub fn sigv4_headers(
    key: (&str, &str),
    at: SystemTime,
    headers: &[(String, String)],
    body: &[u8],
) -> Vec<(String, String)> {
    let identity: Identity = Credentials::new(key.0, key.1, None, None, "tests").into();
    let mut settings = SigningSettings::default();
    // Sign every header handed in and nothing else; the request carries no user-agent or
    // transfer-encoding the default exclusions would matter for, and content-length is not passed.
    settings.excluded_headers = None;
    let params = SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("codepipeline")
        .time(at)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let request = SignableRequest::new(
        "POST",
        "/",
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _signature) = sign(request, &params).expect("sign").into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect()
}

/// CPU seconds (user + system) this process's threads named `name` have used so far, read from
/// /proc/self/task/*/stat (1/100 s ticks): the benchmarks run the fake on a runtime of its own with named
/// threads and read the server's share apart from their clients'.
pub fn cpu_seconds_of_threads(name: &str) -> f64 {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Some((comm, fields)) = proc_stat(&task.path()) else {
            continue;
        };
        if comm != name {
            continue;
        }
        // utime and stime: the 14th and 15th fields of the line.
        for i in [11, 12] {
            ticks += fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ticks as f64 / 100.0
}

/// The `stat` file of a /proc process or task folder (`/proc/PID`, `/proc/self/task/TID`): its command
/// name and the fields after it, the state first (field 3 of the line), then the parent's pid, ...
/// The name may hold spaces and parentheses, so it is cut at the last `)`.
pub fn proc_stat(dir: &std::path::Path) -> Option<(String, Vec<String>)> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields = stat
        .get(close + 1..)?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Some((stat.get(open + 1..close)?.to_string(), fields))
}

/// The name of the threads [`server_runtime`] runs the fake on.
pub const SERVER_THREADS: &str = "cp-server";

/// A fake CodePipeline ([`TestCp::start`]) on a multi-thread runtime of its own, one worker per core, its
/// threads named [`SERVER_THREADS`]; keep the runtime alive as long as the fake is used.
pub fn server_runtime() -> (tokio::runtime::Runtime, TestCp) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name(SERVER_THREADS)
        .enable_all()
        .build()
        .expect("server runtime");
    let cp = runtime.block_on(TestCp::start());
    (runtime, cp)
}

/// What a benchmark's clients saw: how many calls, and the p50 and p99 of their latencies; `None` when no
/// call completed.
pub fn latency_summary(mut latencies: Vec<Duration>) -> Option<(usize, Duration, Duration)> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Some((latencies.len(), pct(0.50), pct(0.99)))
}
