//! Request bodies at the edge: the size limit and the JSON syntax, as JSON errors.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

use crate::error::ApiError;

/// The body, or 413 over `limit` bytes (axum's `DefaultBodyLimit` stops reading there), or 400 when it
/// could not be read at all.
pub(crate) fn bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    match body {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(rejection) => Err(ApiError::MalformedJson(format!(
            "could not read the body: {}",
            rejection.body_text()
        ))),
    }
}

/// How the admin API classifies a serde error: 400 for broken JSON, 422 for well-formed JSON with the
/// wrong shape (a missing or unknown field, a wrong type).
pub(crate) fn serde_status(e: &serde_json::Error) -> StatusCode {
    match e.classify() {
        serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}
