//! The API's errors: each one a status, a stable code and a message that names the problem.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything the `/v1` API can refuse a request with. The JSON body is `{code, message}` (plus
/// `field` when one field is to blame).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization` header.
    #[error("missing Authorization header: send `Authorization: Bearer <token>`")]
    MissingToken,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("the Authorization header must be `Bearer <token>`")]
    MalformedAuthorization,
    /// A bearer token the backend does not know.
    #[error(
        "the API token is not valid for this backend (check APICA_API_TOKEN or the action's ApiToken)"
    )]
    InvalidToken,
    /// The backend has no tokens at all, so nothing can authenticate.
    #[error(
        "this backend accepts no API token yet: start it with --token or POST one to /_sim/tokens"
    )]
    NoTokens,
    /// No such test (or the test was lost by a fault).
    #[error("no load test with jobId `{0}`")]
    UnknownTest(String),
    /// The create request names a preset the backend does not have.
    #[error("unknown preset `{name}`; known presets: {known}")]
    UnknownPreset {
        /// The name requested.
        name: String,
        /// The known names, comma separated (or a hint when there are none).
        known: String,
    },
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field is present but unusable.
    #[error("field `{field}` {problem}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The body is not JSON (or empty).
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    /// The body is over the limit.
    #[error("request body is over the {limit} byte limit")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// An idempotency key reused with different parameters.
    #[error(
        "idempotencyKey `{key}` already created test {job_id} with preset `{preset}` and runnableFile `{runnable_file}`; use a new key for a different test"
    )]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The test it created.
        job_id: u64,
        /// That test's preset.
        preset: String,
        /// That test's runnable file.
        runnable_file: String,
    },
    /// Abort of a test that has already passed or failed.
    #[error("test {job_id} already finished ({status}); only a running test can be aborted")]
    AlreadyFinished {
        /// The test.
        job_id: u64,
        /// Its final status.
        status: &'static str,
    },
    /// No route for the path.
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    /// A known path with the wrong method.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// An injected outage.
    #[error("the load-test service is unavailable (scripted outage until {until})")]
    Outage {
        /// When it ends, as a timeline stamp or `further notice`.
        until: String,
    },
    /// An injected rate limit.
    #[error("too many requests: at most {limit} per {per}; retry after {retry_after_secs} s")]
    RateLimited {
        /// Requests allowed per window.
        limit: u32,
        /// The window, in words.
        per: String,
        /// Seconds until the window resets.
        retry_after_secs: u64,
    },
    /// An injected random error.
    #[error("injected error (error_rate fault, status {0})")]
    Injected(u16),
    /// The token has created as many tests as the backend keeps for one token.
    #[error(
        "this token has created {limit} tests, the most the fake backend keeps for one token (--max-tests-per-token)"
    )]
    TestQuota {
        /// The most tests one token may create.
        limit: usize,
    },
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken
            | ApiError::MalformedAuthorization
            | ApiError::InvalidToken
            | ApiError::NoTokens => StatusCode::UNAUTHORIZED,
            ApiError::UnknownTest(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::UnknownPreset { .. }
            | ApiError::MissingField(_)
            | ApiError::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::IdempotencyConflict { .. } | ApiError::AlreadyFinished { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Outage { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } | ApiError::TestQuota { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Injected(status) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "MissingToken",
            ApiError::MalformedAuthorization => "MalformedAuthorization",
            ApiError::InvalidToken | ApiError::NoTokens => "InvalidToken",
            ApiError::UnknownTest(_) => "UnknownTest",
            ApiError::UnknownPreset { .. } => "UnknownPreset",
            ApiError::MissingField(_) => "MissingField",
            ApiError::InvalidField { .. } => "InvalidField",
            ApiError::MalformedJson(_) => "MalformedJson",
            ApiError::PayloadTooLarge { .. } => "PayloadTooLarge",
            ApiError::IdempotencyConflict { .. } => "IdempotencyKeyConflict",
            ApiError::AlreadyFinished { .. } => "TestAlreadyFinished",
            ApiError::NoRoute(_) => "NotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::Outage { .. } => "ServiceUnavailable",
            ApiError::RateLimited { .. } => "TooManyRequests",
            ApiError::Injected(_) => "InjectedError",
            ApiError::TestQuota { .. } => "TestQuotaExceeded",
        }
    }

    /// The field to blame, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::MissingField(f) | ApiError::InvalidField { field: f, .. } => Some(f),
            ApiError::UnknownPreset { .. } => Some("preset"),
            _ => None,
        }
    }

    /// Whether a scripted fault produced this answer (rather than the request itself).
    pub fn is_injected(&self) -> bool {
        matches!(
            self,
            ApiError::Outage { .. } | ApiError::RateLimited { .. } | ApiError::Injected(_)
        )
    }
}

/// How long a 429's `Retry-After` says to wait, rounded up to whole seconds (at least 1).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code(), "message": self.to_string()});
        if let (Some(field), Some(map)) = (self.field(), body.as_object_mut()) {
            map.insert("field".into(), field.into());
        }
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            e if e.status() == StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn missing_fields_are_named_in_the_body() {
        let e = ApiError::MissingField("runnableFile");
        assert_eq!(
            (e.status(), e.code(), e.field()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "MissingField",
                Some("runnableFile")
            )
        );
        assert_eq!(e.to_string(), "missing field `runnableFile`");
    }
}
