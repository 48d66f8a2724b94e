//! The HTTP client for the Apica-style load-test backend (`docs/design.md`, "The Apica-style backend"), with
//! timeouts and a short, bounded retry on 429, 5xx, timeouts and refused connections.
//!
//! The retry budget is small on purpose: a job must be answered within seconds, and a backend that is
//! still down after it costs a round (the runtime counts it in the continuation token), not a hang.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Timeouts and retries for the backend client.
#[derive(Debug, Clone)]
pub struct ApicaClientConfig {
    /// The backend's base URL, e.g. `https://api.loadtest.example` (the `/v1/...` paths go below it).
    pub base_url: String,
    /// Longest wait for one request.
    pub request_timeout: Duration,
    /// Longest wait for one call, all attempts and pauses included.
    pub retry_budget: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The first pause between attempts; it doubles, with jitter.
    pub initial_backoff: Duration,
    /// The largest response body read from the backend; a longer one fails the call (it is read in chunks
    /// and dropped at the limit, never buffered whole).
    pub max_response_bytes: usize,
}

/// The default bound on a backend response body: 1 MiB (a test's status is a few hundred bytes).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

impl ApicaClientConfig {
    /// The defaults: 1 s per request, 3 attempts within 1.5 s, pauses from 25 ms, bodies up to 1 MiB.
    ///
    /// The pauses are short on purpose: they only ride out a blip (a reset connection, one 503). A longer
    /// outage is waited out across jobs: the job is answered with progress and the next continuation job
    /// asks again, so time spent pausing inside one job only holds the job.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            request_timeout: Duration::from_millis(1000),
            retry_budget: Duration::from_millis(1500),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(25),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// The answer to `POST /v1/loadtests`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTest {
    /// The backend's test id (the agent's externalExecutionId).
    pub job_id: u64,
    /// The test's status right after creation.
    #[serde(default)]
    pub status: Option<String>,
    /// The page for people.
    #[serde(default)]
    pub details_url: Option<String>,
    /// The runnable file the test runs, when the backend reports it.
    #[serde(default)]
    pub runnable_file: Option<String>,
    /// The idempotency key the test was created with, when the backend reports it.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The answer to `GET /v1/loadtests/{jobId}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestStatus {
    /// The backend's test id.
    pub job_id: u64,
    /// `running`, `passed`, `failed` or `aborted`.
    pub status: String,
    /// 0..100, when the backend knows.
    #[serde(default)]
    pub percent_complete: Option<f64>,
    /// The backend's words on the outcome (its failure reason included).
    #[serde(default)]
    pub summary: Option<String>,
    /// When the test started (as the backend writes it).
    #[serde(default)]
    pub started_at: Option<serde_json::Value>,
    /// When it finished.
    #[serde(default)]
    pub finished_at: Option<serde_json::Value>,
    /// The runnable file the test runs, when the backend reports it.
    #[serde(default)]
    pub runnable_file: Option<String>,
    /// The idempotency key the test was created with, when the backend reports it.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateTest<'a> {
    preset: &'a str,
    runnable_file: &'a str,
    idempotency_key: &'a str,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    field: Option<String>,
}

/// The backend's refusal, as it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The backend's error code, if it sent one.
    pub code: Option<String>,
    /// The backend's message (or the start of its body).
    pub message: String,
    /// The request field the backend blames, if it names one.
    pub field: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) => write!(f, "HTTP {} {}: {}", self.status, code, self.message),
            None => write!(f, "HTTP {}: {}", self.status, self.message),
        }
    }
}

/// Why a backend call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApicaError {
    /// 401 or 403: the API token is wrong.
    #[error("the backend refused the API token ({0})")]
    Unauthorized(Refusal),
    /// 404: no such test.
    #[error("the backend does not know this test ({0})")]
    NotFound(Refusal),
    /// 422 or another 4xx: the request itself is wrong.
    #[error("the backend rejected the request ({0})")]
    Rejected(Refusal),
    /// 429, 5xx, a timeout or no connection, still so after the retries.
    #[error(
        "the backend is unavailable after {attempts} attempt(s) in {elapsed_ms} ms (last: {last})"
    )]
    Unavailable {
        /// Attempts made.
        attempts: u32,
        /// Time spent, pauses included.
        elapsed_ms: u128,
        /// The last failure.
        last: String,
    },
    /// The response body is longer than the configured bound (`max_response_bytes`).
    #[error(
        "the backend's answer (HTTP {status}) is longer than the {limit}-byte limit on a response body \
         (AGENT_APICA_MAX_RESPONSE_BYTES); the agent stopped reading it"
    )]
    TooLarge {
        /// The HTTP status.
        status: u16,
        /// The limit in bytes.
        limit: usize,
    },
    /// A success status with a body that is not the JSON the API promises.
    #[error(
        "the backend answered HTTP {status} with a body that is not the expected JSON ({detail})"
    )]
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What did not parse.
        detail: String,
    },
}

/// A client for one backend URL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApicaClient {
    http: reqwest::Client,
    config: ApicaClientConfig,
    base: String,
}

enum Attempt {
    Done(u16, bytes::Bytes),
    Retry(String, Option<Duration>),
}

impl ApicaClient {
    /// Builds the client (rustls, connection pool, timeouts).
    pub fn new(config: ApicaClientConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.request_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!(
                "codepipeline-reference-agent/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        let base = config.base_url.trim_end_matches('/').to_string();
        Ok(Self { http, config, base })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /v1/loadtests`: starts a test, or finds the one started earlier with the same key.
    pub async fn create_test(
        &self,
        token: &str,
        preset: &str,
        runnable_file: &str,
        idempotency_key: &str,
    ) -> Result<CreatedTest, ApicaError> {
        let body = CreateTest {
            preset,
            runnable_file,
            idempotency_key,
        };
        let url = format!("{}/v1/loadtests", self.base);
        let (status, bytes) = self
            .call(|| self.http.post(&url).bearer_auth(token).json(&body))
            .await?;
        parse(status, &bytes)
    }

    /// `GET /v1/loadtests/{jobId}`.
    pub async fn get_test(&self, token: &str, job_id: u64) -> Result<TestStatus, ApicaError> {
        let url = format!("{}/v1/loadtests/{job_id}", self.base);
        let (status, bytes) = self.call(|| self.http.get(&url).bearer_auth(token)).await?;
        parse(status, &bytes)
    }

    /// `POST /v1/loadtests/{jobId}/abort`.
    pub async fn abort_test(&self, token: &str, job_id: u64) -> Result<(), ApicaError> {
        let url = format!("{}/v1/loadtests/{job_id}/abort", self.base);
        self.call(|| self.http.post(&url).bearer_auth(token))
            .await?;
        Ok(())
    }

    /// Sends a request with retries; returns a 2xx status and body, or the error.
    async fn call(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(u16, bytes::Bytes), ApicaError> {
        let started = Instant::now();
        let deadline = started + self.config.retry_budget;
        let mut backoff = self.config.initial_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = remaining
                .min(self.config.request_timeout)
                .max(Duration::from_millis(1));
            let (last, retry_after) = match self.attempt(request().timeout(timeout)).await? {
                Attempt::Done(status, body) => return Ok((status, body)),
                Attempt::Retry(last, retry_after) => (last, retry_after),
            };
            let jitter = rand::rng().random_range(0.5..1.5);
            let pause = retry_after
                .unwrap_or(Duration::ZERO)
                .max(backoff.mul_f64(jitter));
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A pause that would leave no time for the next attempt is not worth taking.
            if attempts >= self.config.max_attempts
                || pause + Duration::from_millis(50) >= remaining
            {
                return Err(ApicaError::Unavailable {
                    attempts,
                    elapsed_ms: started.elapsed().as_millis(),
                    last,
                });
            }
            tracing::debug!(attempt = attempts, pause_ms = pause.as_millis() as u64, %last, "retrying backend call");
            tokio::time::sleep(pause).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    async fn attempt(&self, request: reqwest::RequestBuilder) -> Result<Attempt, ApicaError> {
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Ok(Attempt::Retry(describe_transport_error(&e), None)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match read_bounded(&mut response, self.config.max_response_bytes).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                return Err(ApicaError::TooLarge {
                    status: status.as_u16(),
                    limit: self.config.max_response_bytes,
                });
            }
            Err(e) => return Ok(Attempt::Retry(describe_transport_error(&e), None)),
        };
        if status.is_success() {
            return Ok(Attempt::Done(status.as_u16(), body));
        }
        let refusal = refusal(status, &body);
        match status {
            StatusCode::TOO_MANY_REQUESTS => Ok(Attempt::Retry(refusal.to_string(), retry_after)),
            s if s.is_server_error() => Ok(Attempt::Retry(refusal.to_string(), retry_after)),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(ApicaError::Unauthorized(refusal))
            }
            StatusCode::NOT_FOUND => Err(ApicaError::NotFound(refusal)),
            _ => Err(ApicaError::Rejected(refusal)),
        }
    }
}

/// Reads the body chunk by chunk up to `limit` bytes; `None` when it is longer (the rest is never read).
async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|announced| announced > limit as u64)
    {
        return Ok(None);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        // The URL is ours and carries no secret; the token travels in a header.
        format!("request failed: {e}")
    }
}

fn refusal(status: StatusCode, body: &[u8]) -> Refusal {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.code.map(|c| match c {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    let message = parsed.message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("no message")
                .to_string()
        } else {
            text.chars().take(200).collect()
        }
    });
    Refusal {
        status: status.as_u16(),
        code,
        message,
        field: parsed.field,
    }
}

fn parse<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, ApicaError> {
    serde_json::from_slice(body).map_err(|e| ApicaError::Malformed {
        status,
        detail: e.to_string(),
    })
}
