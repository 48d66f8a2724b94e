//! Bearer-token authentication of the `/v1` API.

use axum::http::{HeaderMap, header};

use crate::backend::FakeApica;
use crate::error::ApiError;

/// Checks `Authorization: Bearer TOKEN` against the backend's tokens: 401 without it, with another
/// scheme, or with a token the backend does not know.
pub(crate) fn authorize(apica: &FakeApica, headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::MissingToken)?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::MalformedAuthorization)?
        .trim();
    let (scheme, token) = text
        .split_once(' ')
        .ok_or(ApiError::MalformedAuthorization)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::MalformedAuthorization);
    }
    apica.check_token(token)?;
    Ok(token.to_string())
}
