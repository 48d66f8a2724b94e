//! awsJson1.1 framing: `POST /` routed on `X-Amz-Target`, SigV4, body limits, validation against the
//! model, and the success and error encodings every SDK reads (`docs/protocol.md`, "Wire").

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sim_core::{ClockMode, NewEvent, Severity};

use crate::engine::{Core, Injected};
use crate::error::ApiError;
use crate::model::Model;
use crate::ops;
use crate::sigv4::Verifier;
use crate::validate::InputError;

/// The awsJson1.1 content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The target prefix: the service shape's name.
pub const TARGET_PREFIX: &str = "CodePipeline_20150709.";

/// What the wire handler needs.
pub struct Wire {
    /// The engine.
    pub core: Arc<Core>,
    /// The SigV4 verifier.
    pub verifier: Verifier,
}

/// Encodes an error as every SDK reads it: 4xx/5xx, `{"__type", "message"}` and `X-Amzn-Errortype`.
pub fn error_response(err: &ApiError) -> Response {
    let body = json!({"__type": err.type_name, "message": err.message}).to_string();
    let mut resp = (err.status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(err.type_name) {
        h.insert("x-amzn-errortype", v);
    }
    stamp_headers(h);
    resp
}

/// `x-amzn-RequestId` and a real-time `Date` (SDKs correct clock skew from it; never simulated time).
fn stamp_headers(h: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
        h.insert(header::DATE, v);
    }
}

fn success(body: Option<Value>) -> Response {
    let text = body.map(|v| v.to_string()).unwrap_or_default();
    let mut resp = (StatusCode::OK, text).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    stamp_headers(h);
    resp
}

/// The access key named in an Authorization header, without checking the signature (for attribution
/// when verification is off).
fn claimed_access_key(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.trim().to_string()).filter(|k| !k.is_empty())
}

/// The handler for `POST /`.
pub async fn handle(State(wire): State<Arc<Wire>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let core = &wire.core;
    if parts.method != Method::POST {
        return error_response(
            &ApiError::new(
                "UnknownOperationException",
                format!("{} / is not an operation; send POST /", parts.method),
            )
            .status(StatusCode::METHOD_NOT_ALLOWED),
        );
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let operation = match target.strip_prefix(TARGET_PREFIX) {
        Some(op) if ops::is_supported(op) => op.to_string(),
        Some(op) if Model::get().has_operation(op) => {
            return error_response(&ApiError::new(
                "UnknownOperationException",
                format!(
                    "Operation {op} is in the CodePipeline model but this fake does not implement it"
                ),
            ));
        }
        _ => {
            return error_response(&ApiError::new(
                "UnknownOperationException",
                if target.is_empty() {
                    "Missing X-Amz-Target header: expected CodePipeline_20150709.<Operation>"
                        .to_string()
                } else {
                    format!("Unknown operation {target}")
                },
            ));
        }
    };

    let refuse = |e: crate::sigv4::AuthError| {
        let err = ApiError::new(e.error_type(), e.to_string());
        core.sim.events.record(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::AuthRefused)
                .replica_opt(claimed_access_key(&parts.headers).as_deref())
                .severity(Severity::Warning)
                .detail(format!(
                    "{operation} refused: {}: {}",
                    err.type_name, err.message
                )),
        );
        error_response(&err)
    };
    // An unknown key or a malformed Authorization header is refused before the body is read.
    if core.settings.verify_signatures
        && let Err(e) = wire
            .verifier
            .precheck(&parts.headers, &core.settings.access_keys)
    {
        return refuse(e);
    }
    let limit = core.settings.max_body_bytes;
    let body: Bytes = match axum::body::to_bytes(Body::new(body), limit).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(
                &ApiError::new(
                    "RequestEntityTooLargeException",
                    format!("Request body is larger than the {limit}-byte limit"),
                )
                .status(StatusCode::PAYLOAD_TOO_LARGE),
            );
        }
    };
    let caller = if core.settings.verify_signatures {
        match wire.verifier.verify(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &body,
            &core.settings.access_keys,
            SystemTime::now(),
        ) {
            Ok(c) => Some(c.access_key),
            Err(e) => return refuse(e),
        }
    } else {
        claimed_access_key(&parts.headers)
    };
    let mut guard = core.sim.activity.begin(caller.as_deref(), &operation);
    if core.sim.clock.mode() != ClockMode::Manual {
        core.sim.clock.fire_due();
    }
    let lose_response = match core.injected_fault(&operation, caller.as_deref()) {
        Some(Injected::Refuse(err)) => return error_response(&err),
        Some(Injected::LoseResponse) => true,
        None => false,
    };
    let mut response = apply(core, &mut guard, &operation, caller.as_deref(), &body).await;
    if lose_response {
        core.record_lost_response(&operation, caller.as_deref(), response.status().as_u16());
        response
            .extensions_mut()
            .insert(sim_core::serve::DropConnection);
    }
    response
}

/// Parses, validates and dispatches a request that passed the wire checks.
async fn apply(
    core: &Arc<Core>,
    guard: &mut sim_core::RequestGuard,
    operation: &str,
    caller: Option<&str>,
    body: &Bytes,
) -> Response {
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return error_response(&ApiError::new(
                    "SerializationException",
                    format!("Request body is not valid JSON: {e}"),
                ));
            }
        }
    };
    if let Err(e) = Model::get().validate_input(operation, &input) {
        let err = match e {
            InputError::Serialization(m) => ApiError::new("SerializationException", m),
            InputError::Validation(m) => ApiError::validation(m),
        };
        core.sim.events.record(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ValidationRefused)
                .replica_opt(caller)
                .severity(Severity::Warning)
                .detail(format!(
                    "{operation} refused: {}: {}",
                    err.type_name, err.message
                )),
        );
        return error_response(&err);
    }
    match ops::dispatch(core, guard, operation, caller, &input).await {
        Ok(body) => success(body),
        Err(err) => error_response(&err),
    }
}
