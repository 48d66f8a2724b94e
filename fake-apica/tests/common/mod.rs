//! A backend on 127.0.0.1:0 with a manual clock, and a client for it.
#![allow(dead_code)] // each test file uses a different part

use std::time::Duration;

use fake_apica::{ApicaConfig, FakeApica, Preset};
use serde_json::{Value, json};
use sim_core::Sim;

pub const TOKEN: &str = "test-token-one";
pub const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

pub struct Harness {
    pub apica: FakeApica,
    pub sim: Sim,
    pub base: String,
    pub client: reqwest::Client,
    // Dropping the sender stops the server.
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The usual presets: a two-hour pass, a ten-minute failure, a six-hour soak.
pub fn presets() -> Vec<Preset> {
    vec![
        Preset::passed("two-hours", TWO_HOURS),
        Preset::failed(
            "spike",
            Duration::from_secs(600),
            "p95 response time 2300 ms > 2000 ms",
        ),
        Preset::passed("soak", Duration::from_secs(6 * 3600)),
    ]
}

pub async fn start() -> Harness {
    start_with(ApicaConfig::new(TOKEN, presets()).with_seed(7)).await
}

pub async fn start_with(config: ApicaConfig) -> Harness {
    let sim = Sim::manual();
    let apica = FakeApica::new(sim.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = apica.clone();
    tokio::spawn(async move {
        let _ = server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    Harness {
        apica,
        sim,
        base,
        client: reqwest::Client::new(),
        _stop: stop,
    }
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Moves the manual clock to `offset` after the origin.
    pub fn advance_to(&self, offset: Duration) {
        self.sim
            .clock
            .advance_to(self.sim.clock.origin().plus(offset))
            .expect("advance the manual clock");
    }

    pub fn advance_by(&self, by: Duration) {
        self.sim
            .clock
            .advance_by(by)
            .expect("advance the manual clock");
    }

    pub async fn create(&self, preset: &str, file: &str, key: Option<&str>) -> reqwest::Response {
        let mut body = json!({"preset": preset, "runnableFile": file});
        if let Some(key) = key {
            body["idempotencyKey"] = json!(key);
        }
        self.client
            .post(self.url("/v1/loadtests"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("create request")
    }

    /// Creates a test and returns its job id, asserting 201.
    pub async fn create_ok(&self, preset: &str, file: &str, key: Option<&str>) -> u64 {
        let response = self.create(preset, file, key).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("create answer is JSON");
        body["jobId"].as_u64().expect("jobId is an integer")
    }

    pub async fn get(&self, job_id: u64) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/loadtests/{job_id}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get request")
    }

    /// Reads a test, asserting 200.
    pub async fn get_ok(&self, job_id: u64) -> Value {
        let response = self.get(job_id).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("get answer is JSON")
    }

    pub async fn abort(&self, job_id: u64) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/loadtests/{job_id}/abort")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("abort request")
    }

    /// POSTs JSON to an admin endpoint.
    pub async fn admin(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("admin request")
    }

    /// Events of `kind` from this backend, in order.
    pub fn events(&self, kind: &str) -> Vec<sim_core::Event> {
        self.sim
            .events
            .all()
            .into_iter()
            .filter(|e| e.source == "apica" && e.kind == kind)
            .collect()
    }
}

/// Asserts an error answer: its status, its code, and that its message mentions `needle`.
pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
    needle: &str,
) -> Value {
    assert_eq!(response.status(), status, "status");
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "message `{message}` should mention `{needle}`"
    );
    body
}
