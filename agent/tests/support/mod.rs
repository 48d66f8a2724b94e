//! A world for the runtime tests: the fake CodePipeline and the fake Apica backend on one manual
//! simulated clock, served on 127.0.0.1, and agent runtimes (in-process) or agent processes on real time.
//! Waits are on the fakes' event log (never a sleep standing in for a condition).

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use agent::action::Action;
use agent::actions::{ApicaAction, ApicaClient, ApicaClientConfig};
use agent::runtime::{ClientTokens, JobApi};
use agent::{ActionTypeId, Metrics, RunReport, Runtime, RuntimeConfig, Shutdown};
use fake_apica::{ApicaConfig, FakeApica, Preset};
use fake_codepipeline::{FakeCodePipeline, Settings};
use serde_json::{Value, json};
use sim_core::Sim;
use tokio::sync::oneshot;

/// Replica keys (the fake attributes each request to one).
pub const KEY1: (&str, &str) = ("AKIDAGENTONE", "agent-secret-one");
pub const KEY2: (&str, &str) = ("AKIDAGENTTWO", "agent-secret-two");
/// A third-party client id and its token.
pub const CLIENT: (&str, &str) = ("6f1c2a9e-0000-4000-8000-00000000a9e1", "client-token-a");
/// The backend's API token.
pub const APICA_TOKEN: &str = "apica-token-1";
/// The action types.
pub const THIRD_PARTY: &str = "Test/ThirdParty/ApicaLoadtest/1";
pub const CUSTOM: &str = "Test/Custom/ApicaLoadtest/1";
/// The fake's default continuation delay.
pub const CONTINUATION: Duration = Duration::from_secs(30);
/// How long a test waits for a condition, in real time.
const PATIENCE: Duration = Duration::from_secs(20);

/// The presets every world has.
pub fn presets() -> Vec<Preset> {
    vec![
        Preset::passed("short", Duration::from_secs(120)),
        Preset::passed("long", Duration::from_secs(3 * 3600)),
        Preset::failed(
            "broken",
            Duration::from_secs(60),
            "p95 latency 2300 ms over the 800 ms limit",
        ),
    ]
}

/// A continuation token's content: the text before its signature (`;k=<key id>;s=<HMAC>`).
pub fn content(token: &str) -> &str {
    token.split(";k=").next().unwrap_or(token)
}

/// The content of a token in a JSON view (empty if there is none).
pub fn content_of(token: &Value) -> String {
    content(token.as_str().unwrap_or_default()).to_string()
}

/// Both fakes on one manual clock.
pub struct World {
    pub sim: Sim,
    pub cp: FakeCodePipeline,
    pub apica: FakeApica,
    pub cp_url: String,
    pub apica_url: String,
    http: reqwest::Client,
    _stops: Vec<oneshot::Sender<()>>,
}

async fn serve<F, Fut>(serve: F) -> (String, oneshot::Sender<()>)
where
    F: FnOnce(tokio::net::TcpListener, oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = oneshot::channel();
    tokio::spawn(serve(listener, rx));
    (url, tx)
}

impl World {
    /// Starts both fakes; polls are parked up to 200 ms, as the harness does.
    pub async fn start() -> Self {
        let sim = Sim::manual();
        let mut settings = Settings::default()
            .with_key(KEY1.0, KEY1.1)
            .with_key(KEY2.0, KEY2.1);
        settings.park_polls = Some(Duration::from_millis(200));
        let cp = FakeCodePipeline::new(sim.clone(), settings);
        let apica = FakeApica::new(sim.clone(), ApicaConfig::new(APICA_TOKEN, presets()));
        let server = cp.clone();
        let (cp_url, cp_stop) = serve(move |l, rx| async move {
            let _ = server.serve(l, async move { drop(rx.await) }).await;
        })
        .await;
        let server = apica.clone();
        let (apica_url, apica_stop) = serve(move |l, rx| async move {
            let _ = server.serve(l, async move { drop(rx.await) }).await;
        })
        .await;
        World {
            sim,
            cp,
            apica,
            cp_url,
            apica_url,
            http: reqwest::Client::new(),
            _stops: vec![cp_stop, apica_stop],
        }
    }

    pub async fn admin(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.cp_url))
            .json(&body)
            .send()
            .await
            .expect("admin call");
        let status = response.status();
        let value: Value = response.json().await.expect("admin JSON");
        assert!(status.is_success(), "POST {path} -> {status}: {value}");
        value
    }

    /// Registers the Apica action type (with the client pair, for a third-party one) plus `extra` settings.
    pub async fn register(&self, action_type: &str, extra: Value) {
        let mut body = json!({
            "actionType": action_type,
            "settings": {"executionUrlTemplate": format!("{}/jobs/{{ExternalExecutionId}}", self.apica_url)},
            "configurationProperties": [
                {"name": "PresetName", "required": true, "key": true, "secret": false},
                {"name": "RunnableFile", "required": true, "key": false, "secret": false},
                {"name": "ApiToken", "required": false, "key": false, "secret": true},
            ],
            "clients": {CLIENT.0: CLIENT.1},
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.admin("/_sim/action-types", body).await;
    }

    /// Registers the custom Apica action type with PresetName queryable.
    pub async fn admin_register_queryable(&self) {
        self.admin(
            "/_sim/action-types",
            json!({
                "actionType": CUSTOM,
                "configurationProperties": [
                    {"name": "PresetName", "required": true, "key": true, "secret": false, "queryable": true},
                    {"name": "RunnableFile", "required": true, "key": false, "secret": false},
                ],
            }),
        )
        .await;
    }

    /// Starts an action execution running `preset` on its own runnable file; returns its id.
    pub async fn start_execution(
        &self,
        action_type: &str,
        preset: &str,
        runnable_file: &str,
    ) -> String {
        let mut body = json!({
            "actionType": action_type,
            "configuration": {"PresetName": preset, "RunnableFile": runnable_file},
        });
        if action_type.contains("/ThirdParty/") {
            body["clientId"] = json!(CLIENT.0);
        }
        let v = self.admin("/_sim/executions", body).await;
        v["executionId"].as_str().expect("executionId").to_string()
    }

    /// Injects a CodePipeline fault (`POST /_sim/faults`).
    pub async fn cp_fault(&self, body: Value) {
        self.admin("/_sim/faults", body).await;
    }

    /// The admin view of an execution.
    pub fn execution(&self, id: &str) -> Value {
        self.cp.core().execution_view(id).expect("execution exists")
    }

    /// Moves the simulated clock.
    pub fn advance(&self, by: Duration) {
        self.sim.clock.advance_by(by).expect("manual clock");
    }

    /// Waits (on the event log, real time) until `check` gives a value.
    pub async fn until<T>(&self, what: &str, mut check: impl FnMut(&World) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seq = self.sim.events.last_seq();
            if let Some(v) = check(self) {
                return v;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let tail: Vec<String> = self
                    .sim
                    .events
                    .all()
                    .iter()
                    .rev()
                    .take(25)
                    .rev()
                    .map(|e| format!("{} {} {} {}", e.stamp(), e.source, e.kind, e.detail))
                    .collect();
                panic!(
                    "timed out waiting for {what}; last events:\n{}",
                    tail.join("\n")
                );
            }
            self.sim.events.wait_since(seq, 1, deadline - now).await;
        }
    }

    /// Waits until the execution's jobs number `n` and the last is in `status`.
    pub async fn job_in(&self, id: &str, n: usize, status: &str) -> Value {
        self.until(&format!("job {n} of {id} to be {status}"), |w| {
            let e = w.execution(id);
            let jobs = e["jobs"].as_array()?;
            (jobs.len() >= n && jobs[n - 1]["status"] == status).then(|| jobs[n - 1].clone())
        })
        .await
    }

    /// Waits until the execution is no longer InProgress; returns its view.
    pub async fn finished(&self, id: &str) -> Value {
        self.until(&format!("execution {id} to finish"), |w| {
            let e = w.execution(id);
            (e["status"] != "InProgress").then_some(e)
        })
        .await
    }

    /// Runs the follow-up rounds: moves the clock by the continuation delay each time the last job has been
    /// answered, until the execution finishes (at most `rounds`).
    pub async fn run_rounds(&self, id: &str, rounds: usize) -> Value {
        for _ in 0..rounds {
            let e = self
                .until(&format!("the last job of {id} to be answered"), |w| {
                    let e = w.execution(id);
                    let last = e["jobs"].as_array()?.last()?.clone();
                    let answered =
                        ["Succeeded", "Failed", "TimedOut"].contains(&last["status"].as_str()?);
                    let waiting = last["status"] == "Created";
                    (answered || waiting || e["status"] != "InProgress").then_some(e)
                })
                .await;
            if e["status"] != "InProgress" {
                return e;
            }
            self.advance(CONTINUATION);
        }
        self.finished(id).await
    }

    /// Backend tests created for `runnable_file`.
    pub fn tests_for(&self, runnable_file: &str) -> usize {
        self.apica.tests_for_runnable_file(runnable_file)
    }

    /// Events of `kind` from `source`.
    pub fn events(&self, source: &str, kind: &str) -> Vec<sim_core::Event> {
        self.sim
            .events
            .all()
            .into_iter()
            .filter(|e| e.source == source && e.kind == kind)
            .collect()
    }

    /// Error-severity events (violations).
    pub fn errors(&self) -> Vec<String> {
        self.sim
            .events
            .all()
            .into_iter()
            .filter(|e| e.severity == sim_core::Severity::Error)
            .map(|e| format!("{} {} {:?} {}", e.stamp(), e.kind, e.rule, e.detail))
            .collect()
    }
}

/// An in-process agent runtime on real time.
pub struct Agent {
    pub shutdown: Shutdown,
    pub metrics: Arc<Metrics>,
    handle: tokio::task::JoinHandle<RunReport>,
}

impl Agent {
    /// Starts a runtime running the Apica action for `action_type` signing with `key`; `tweak` adjusts the
    /// settings.
    pub fn start(
        world: &World,
        action_type: &str,
        key: (&str, &str),
        tweak: impl FnOnce(&mut RuntimeConfig),
    ) -> Agent {
        let mut apica = ApicaClientConfig::new(&world.apica_url);
        apica.retry_budget = Duration::from_millis(600);
        apica.initial_backoff = Duration::from_millis(20);
        let action: Arc<dyn Action> = Arc::new(ApicaAction::new(
            ApicaClient::new(apica).expect("client"),
            Some(APICA_TOKEN.into()),
        ));
        Self::start_with(world, action_type, key, action, tweak)
    }

    /// Starts a runtime running `action` for `action_type` signing with `key`.
    pub fn start_with(
        world: &World,
        action_type: &str,
        key: (&str, &str),
        action: Arc<dyn Action>,
        tweak: impl FnOnce(&mut RuntimeConfig),
    ) -> Agent {
        let id: ActionTypeId = action_type.parse().expect("action type");
        let mut config = RuntimeConfig::new(id.clone());
        config.poll_interval = Duration::from_millis(5);
        config.poll_jitter = Duration::ZERO;
        config.max_failed_rounds = 3;
        tweak(&mut config);
        let metrics = Arc::new(Metrics::default());
        let client =
            agent::aws::static_client(&world.cp_url, key.0, key.1, "us-east-1", metrics.clone());
        let tokens = Arc::new(ClientTokens::from_map(HashMap::from([(
            CLIENT.0.to_string(),
            CLIENT.1.to_string(),
        )])));
        let api =
            JobApi::new(client, &id, Some(tokens), config.query_param.clone()).expect("job api");
        let runtime = Runtime::new(config, api, action, metrics.clone()).expect("runtime");
        let shutdown = Shutdown::new();
        let handle = tokio::spawn(runtime.run(shutdown.clone()));
        Agent {
            shutdown,
            metrics,
            handle,
        }
    }

    /// Drains and stops; returns how it ended.
    pub async fn stop(self) -> RunReport {
        self.shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("stops in time")
            .expect("no panic")
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh directory under the system's temp dir.
    pub fn new(name: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("agent-test-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free port on 127.0.0.1 (bound, noted, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The agent binary with the harness's environment (`docs/design.md`, "The contract between the harness and an
/// agent under test") and nothing else from ours; its stderr goes to `dir/<log>`.
pub fn agent_command(
    world: &World,
    dir: &TempDir,
    key: (&str, &str),
    action_type: &str,
    log: &str,
) -> tokio::process::Command {
    let tokens = dir.0.join("client-tokens.json");
    std::fs::write(&tokens, json!({CLIENT.0: CLIENT.1}).to_string()).expect("tokens file");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_agent"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &dir.0)
        .env("AWS_ENDPOINT_URL_CODEPIPELINE", &world.cp_url)
        .env("AWS_ENDPOINT_URL", &world.cp_url)
        .env("AWS_ACCESS_KEY_ID", key.0)
        .env("AWS_SECRET_ACCESS_KEY", key.1)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("JOB_ACTION_TYPE", action_type)
        .env("JOB_CLIENT_TOKENS_FILE", &tokens)
        .env("JOB_POLL_INTERVAL_MS", "0")
        .env("APICA_API_URL", &world.apica_url)
        .env("APICA_API_TOKEN", APICA_TOKEN)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.0.join(log)).expect("log file"))
        .kill_on_drop(true);
    cmd
}

/// Sends `signal` (e.g. `TERM`) to a process.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Waits for a process to exit, at most `within`; returns its exit code (None: killed by a signal).
pub async fn exit_code(
    child: &mut tokio::process::Child,
    within: Duration,
    log: &std::path::Path,
) -> Option<i32> {
    match tokio::time::timeout(within, child.wait()).await {
        Ok(status) => status.expect("wait").code(),
        Err(_) => panic!(
            "the agent did not exit within {within:?}; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        ),
    }
}
