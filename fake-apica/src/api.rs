//! The `/v1` API the agent drives: create, read and abort load tests.
//!
//! Every request is counted in the activity tracker for as long as it is handled, and goes through
//! the same gate: due timers fire, scripted faults answer, then the token is checked.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::json;
use sim_core::{ClockMode, NewEvent, Severity};

use crate::auth::authorize;
use crate::backend::{FakeApica, SOURCE};
use crate::body;
use crate::error::ApiError;
use crate::loadtest::TestView;
use crate::request::CreateTest;

/// The `/v1` routes.
pub(crate) fn routes(apica: FakeApica) -> Router {
    Router::new()
        .route("/v1/loadtests", post(create))
        .route("/v1/loadtests/{job_id}", get(read))
        .route("/v1/loadtests/{job_id}/abort", post(abort))
        .with_state(apica)
}

/// A test as the API answers it: the view plus the link a person opens.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TestResponse {
    #[serde(flatten)]
    test: TestView,
    details_url: String,
}

impl FakeApica {
    /// What every API request goes through before its own work; faults refuse it before any state
    /// changes, so a client's retry is always safe.
    async fn admit(&self, operation: &'static str) -> Result<(), ApiError> {
        // In scaled/real mode the driver may lag: timers due by now fire before this request is handled.
        if self.sim().clock.mode() != ClockMode::Manual {
            self.sim().clock.fire_due();
        }
        self.count_request(operation);
        let latency = self.injected_latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match self.injected_failure(operation) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Turns an error into its response, recording it: a scripted fault as `fault_injected` (already
    /// recorded for all but lost tests), any other 4xx as `request_rejected`.
    fn reject(&self, operation: &str, error: ApiError) -> Response {
        if let ApiError::UnknownTest(id) = &error
            && let Some(job_id) = id.parse::<u64>().ok().filter(|id| self.test(*id).is_some())
        {
            self.record_lost(operation, job_id);
        } else if !error.is_injected() && error.status().is_client_error() {
            self.record(vec![
                NewEvent::new(SOURCE, sim_core::EventKind::RequestRejected)
                    .severity(Severity::Warning)
                    // The code, not the message, for auth errors: the log's redaction would mangle
                    // the `Bearer` hint in their message.
                    .detail(match error.status() {
                        StatusCode::UNAUTHORIZED => {
                            format!("{operation} refused with 401 {}", error.code())
                        }
                        status => format!("{operation} refused with {}: {error}", status.as_u16()),
                    })
                    .data(json!({
                        "operation": operation,
                        "status": error.status().as_u16(),
                        "code": error.code(),
                    })),
            ]);
        }
        tracing::debug!(operation, status = error.status().as_u16(), %error, "request refused");
        error.into_response()
    }

    /// Where the details page of `job_id` lives, seen from the client that asked.
    fn details_url(&self, headers: &HeaderMap, job_id: u64) -> String {
        let base = match &self.shared.public_url {
            Some(url) => url.clone(),
            None => headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                // A Host header is the client's to choose: only a plain host[:port] becomes a link.
                .filter(|h| {
                    !h.is_empty()
                        && h.chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
                })
                .map(|h| format!("http://{h}"))
                .unwrap_or_default(),
        };
        format!("{base}/jobs/{job_id}")
    }

    fn respond(&self, status: StatusCode, headers: &HeaderMap, test: TestView) -> Response {
        let details_url = self.details_url(headers, test.job_id);
        (status, Json(TestResponse { test, details_url })).into_response()
    }
}

fn job_id(path: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let Path(text) = path.map_err(|_| ApiError::UnknownTest("(unreadable)".into()))?;
    text.trim()
        .parse::<u64>()
        .map_err(|_| ApiError::UnknownTest(text))
}

async fn create(
    State(apica): State<FakeApica>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let _request = apica.sim().activity.begin(None, "apica.create_test");
    let result = async {
        apica.admit("create").await?;
        let token = authorize(&apica, &headers)?;
        let body = body::bytes(body, apica.shared.max_body_bytes)?;
        let request = CreateTest::from_json(&body)?;
        apica.create_test_as(&token, &request)
    }
    .await;
    match result {
        Ok(created) => {
            let location = format!("/v1/loadtests/{}", created.test.job_id);
            let mut response = apica.respond(StatusCode::CREATED, &headers, created.test);
            let h = response.headers_mut();
            // Stripe's convention: a replay answers like the original, and says it is one.
            h.insert(
                "idempotent-replayed",
                HeaderValue::from_static(if created.replayed { "true" } else { "false" }),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            response
        }
        Err(e) => apica.reject("create", e),
    }
}

async fn read(
    State(apica): State<FakeApica>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let _request = apica.sim().activity.begin(None, "apica.get_test");
    let result = async {
        apica.admit("get").await?;
        authorize(&apica, &headers)?;
        apica.get_test(job_id(path)?)
    }
    .await;
    match result {
        Ok(test) => apica.respond(StatusCode::OK, &headers, test),
        Err(e) => apica.reject("get", e),
    }
}

async fn abort(
    State(apica): State<FakeApica>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let _request = apica.sim().activity.begin(None, "apica.abort_test");
    let result = async {
        apica.admit("abort").await?;
        authorize(&apica, &headers)?;
        apica.abort_test(job_id(path)?)
    }
    .await;
    match result {
        Ok(test) => apica.respond(StatusCode::OK, &headers, test),
        Err(e) => apica.reject("abort", e),
    }
}
