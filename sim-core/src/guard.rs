//! The admin API's guard, shared by both fakes: what keeps a web page in the user's browser, or another
//! user of a shared host, from moving the clock, injecting faults or minting tokens.
//!
//! A request the guard covers (each fake says which: its `/_sim/` routes, and for the fake CodePipeline its
//! console) is refused when:
//!
//! 1. it carries an `Origin` that is not the server's own (a cross-site page): 403 `ForeignOrigin`;
//! 2. its `Host` is not a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or a host the server was told
//!    to accept (its listen address, `--allowed-host`): 403 `ForeignHost`. This stops DNS rebinding, where
//!    an attacker's name resolves to 127.0.0.1 and the browser sends that name. With an admin token the
//!    check is off: the token is what proves the caller;
//! 3. it changes something (not GET, HEAD or OPTIONS) and has a body that is not `application/json`:
//!    415 `UnsupportedMediaType`. A cross-site page can send `text/plain` or a form without asking the
//!    server; it cannot send JSON without a CORS preflight, which is never granted;
//! 4. an admin token is configured (`--admin-token`) and the request does not carry it, as
//!    `Authorization: Bearer TOKEN` or `X-Sim-Admin-Token: TOKEN`: 401 `MissingAdminToken`.
//!
//! Errors have the admin API's JSON shape `{code, message}`; so does every other error a covered route
//! answers, including the framework's own plain-text ones (a bad query string, a body over the limit).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::admin_error;

/// The header that carries the admin token when `Authorization` is taken.
pub const ADMIN_TOKEN_HEADER: &str = "x-sim-admin-token";

/// Why the guard refused a request; answers with the admin API's error shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// 401, 403 or 415.
    pub status: StatusCode,
    /// `ForeignOrigin`, `ForeignHost`, `UnsupportedMediaType` or `MissingAdminToken`.
    pub code: &'static str,
    /// What was wrong and what to do.
    pub message: String,
}

impl axum::response::IntoResponse for Refusal {
    fn into_response(self) -> Response {
        admin_error(self.status, self.code, self.message)
    }
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

/// The guard's settings; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct AdminGuard {
    token: Option<Arc<str>>,
    hosts: Arc<Vec<String>>,
}

impl AdminGuard {
    /// A guard that accepts loopback names only, and no token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `token` on every covered request (and turns the `Host` check off).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty()).map(Arc::from);
        self
    }

    /// Accepts `host` (a name or an address, without the port) besides the loopback names. An unspecified
    /// address (`0.0.0.0`, `::`) is not a host a browser sends and is ignored.
    pub fn allow_host(mut self, host: &str) -> Self {
        let host = bare_host(host).to_ascii_lowercase();
        if !host.is_empty() && host != "0.0.0.0" && host != "::" && !self.hosts.contains(&host) {
            Arc::make_mut(&mut self.hosts).push(host);
        }
        self
    }

    /// Whether an admin token is required.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Checks one request's method and headers; the refusal to send if it fails.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("null");
            let authority = origin
                .split_once("://")
                .map(|(_, rest)| rest.trim_end_matches('/'))
                .unwrap_or("");
            if authority.is_empty() || !authority.eq_ignore_ascii_case(host) {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    "ForeignOrigin",
                    format!(
                        "a request from the page at {origin} may not use this server's admin API (its origin is not http://{host})"
                    ),
                ));
            }
        }
        match &self.token {
            Some(token) => {
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .or_else(|| {
                        headers
                            .get(ADMIN_TOKEN_HEADER)
                            .and_then(|v| v.to_str().ok())
                    });
                let ok = given.is_some_and(|g| {
                    subtle::ConstantTimeEq::ct_eq(g.as_bytes(), token.as_bytes()).into()
                });
                if !ok {
                    return Err(refuse(
                        StatusCode::UNAUTHORIZED,
                        "MissingAdminToken",
                        "this server was started with --admin-token: send it as `Authorization: Bearer TOKEN` or `X-Sim-Admin-Token: TOKEN`",
                    ));
                }
            }
            None => {
                let name = bare_host(host).to_ascii_lowercase();
                if !host.is_empty() && !is_loopback_name(&name) && !self.hosts.contains(&name) {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "ForeignHost",
                        format!(
                            "Host `{host}` is not this server's: the admin API answers loopback names and the hosts given with --allowed-host (or any host with --admin-token)"
                        ),
                    ));
                }
            }
        }
        if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && has_body(headers) {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "the admin API takes JSON bodies only: send `Content-Type: application/json`",
                ));
            }
        }
        Ok(())
    }

    /// Wraps `router` so that every request `covers` selects goes through [`AdminGuard::check`].
    pub fn layer<S: Clone + Send + Sync + 'static>(
        self,
        router: axum::Router<S>,
        covers: fn(&Method, &str, &HeaderMap) -> bool,
    ) -> axum::Router<S> {
        router.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let guard = self.clone();
                async move {
                    if !covers(req.method(), req.uri().path(), req.headers()) {
                        return next.run(req).await;
                    }
                    if let Err(refused) = guard.check(req.method(), req.headers()) {
                        return axum::response::IntoResponse::into_response(refused);
                    }
                    as_json_error(next.run(req).await).await
                }
            },
        ))
    }
}

/// An error response that is not JSON (an extractor's plain-text rejection) in the admin API's shape:
/// `{code, message}`, the code from the status (`BadRequest`, `PayloadTooLarge`, ...).
async fn as_json_error(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let code: String = status
        .canonical_reason()
        .unwrap_or("Error")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    admin_error(status, &code, message)
}

/// Whether a request has (or may have) a body: a non-zero length, a chunked body, or a declared type.
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0)
        || headers.contains_key(header::TRANSFER_ENCODING)
        || (length.is_none() && headers.contains_key(header::CONTENT_TYPE))
}

/// `host:port`, `[v6]:port` or a bare host, without the port and brackets.
fn bare_host(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        // One colon: a port. More: a bare IPv6 address.
        Some((h, _)) if !h.contains(':') => h,
        _ => host,
    }
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn code(r: Result<(), Refusal>) -> Option<u16> {
        r.err().map(|r| r.status.as_u16())
    }

    #[test]
    fn a_local_json_request_passes_and_a_cross_site_one_does_not() {
        let g = AdminGuard::new();
        let local = [
            ("host", "127.0.0.1:4566"),
            ("content-type", "application/json"),
            ("content-length", "12"),
        ];
        assert_eq!(code(g.check(&Method::POST, &headers(&local))), None);
        let mut same_origin = local.to_vec();
        same_origin.push(("origin", "http://127.0.0.1:4566"));
        assert_eq!(code(g.check(&Method::POST, &headers(&same_origin))), None);
        // A page elsewhere: its origin.
        let mut foreign = local.to_vec();
        foreign.push(("origin", "https://evil.example"));
        assert_eq!(code(g.check(&Method::POST, &headers(&foreign))), Some(403));
        assert_eq!(code(g.check(&Method::GET, &headers(&foreign))), Some(403));
        // A simple cross-site request without an Origin (or with one the browser hides): not JSON.
        let text = [
            ("host", "localhost:4566"),
            ("content-type", "text/plain"),
            ("content-length", "12"),
        ];
        assert_eq!(code(g.check(&Method::POST, &headers(&text))), Some(415));
        let form = [
            ("host", "localhost:4566"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "3"),
        ];
        assert_eq!(code(g.check(&Method::POST, &headers(&form))), Some(415));
        // A body without a type.
        let untyped = [("host", "localhost:4566"), ("content-length", "3")];
        assert_eq!(code(g.check(&Method::POST, &headers(&untyped))), Some(415));
        // No body at all (curl -X DELETE): nothing to refuse.
        assert_eq!(
            code(g.check(&Method::DELETE, &headers(&[("host", "[::1]:4566")]))),
            None
        );
    }

    #[test]
    fn a_rebound_name_is_refused_unless_allowed_or_a_token_is_required() {
        let rebound = [("host", "attacker.example:4566")];
        assert_eq!(
            code(AdminGuard::new().check(&Method::GET, &headers(&rebound))),
            Some(403)
        );
        let allowed = AdminGuard::new().allow_host("attacker.example");
        assert_eq!(code(allowed.check(&Method::GET, &headers(&rebound))), None);
        assert_eq!(
            code(
                AdminGuard::new()
                    .allow_host("0.0.0.0:4566")
                    .check(&Method::GET, &headers(&[("host", "0.0.0.0:4566")]))
            ),
            Some(403)
        );
        let tokened = AdminGuard::new().with_token(Some("s3cret".into()));
        assert_eq!(
            code(tokened.check(&Method::GET, &headers(&rebound))),
            Some(401)
        );
        let with = [
            ("host", "attacker.example:4566"),
            ("authorization", "Bearer s3cret"),
        ];
        assert_eq!(code(tokened.check(&Method::GET, &headers(&with))), None);
        let header = [("host", "box:4566"), ("x-sim-admin-token", "s3cret")];
        assert_eq!(code(tokened.check(&Method::GET, &headers(&header))), None);
        let wrong = [("host", "127.0.0.1:1"), ("x-sim-admin-token", "s3cre")];
        assert_eq!(
            code(tokened.check(&Method::GET, &headers(&wrong))),
            Some(401)
        );
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(bare_host("127.0.0.1:80"), "127.0.0.1");
        assert_eq!(bare_host("[::1]:80"), "::1");
        assert_eq!(bare_host("::1"), "::1");
        assert_eq!(bare_host("localhost"), "localhost");
        assert!(
            is_loopback_name("127.0.0.2")
                && is_loopback_name("::1")
                && !is_loopback_name("10.0.0.1")
        );
    }
}
