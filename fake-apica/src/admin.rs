//! The admin API under `/_sim/` (JSON) that scenarios and people use to script the backend: presets,
//! faults, tokens and the tests with their counts. No token needed; it is never exposed to agents.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};
use sim_core::http::admin_error;

use crate::backend::FakeApica;
use crate::body;
use crate::error::ApiError;
use crate::fault::{FaultId, FaultSpec};
use crate::preset::{Preset, PresetSpec};

/// The `/_sim/` routes of this backend (the clock and events routes come from `sim-core`).
pub(crate) fn routes(apica: FakeApica) -> Router {
    Router::new()
        .route("/_sim/presets", get(list_presets).post(add_presets))
        .route("/_sim/presets/{name}", delete(remove_preset))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/_sim/faults/{id}", delete(remove_fault))
        .route("/_sim/tests", get(list_tests))
        .route("/_sim/tests/{job_id}", get(one_test))
        .route("/_sim/tokens", get(token_count).post(add_token))
        .with_state(apica)
}

/// Reads a JSON body as a value: 413 over the limit, 400 for broken JSON.
fn json_body(apica: &FakeApica, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body::bytes(body, apica.shared.max_body_bytes)?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

/// One item or a list of them.
fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        one => vec![one],
    }
}

fn unprocessable(code: &str, message: impl Into<String>) -> Response {
    admin_error(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn presets_doc(apica: &FakeApica) -> Value {
    json!({"presets": apica.presets().iter().map(Preset::to_spec).collect::<Vec<_>>()})
}

async fn list_presets(State(apica): State<FakeApica>) -> Json<Value> {
    Json(presets_doc(&apica))
}

/// `POST /_sim/presets`: `{"name", "duration", "outcome", "reason"?}`, the command-line form as a JSON
/// string (`"soak=6h:passed"`), or a list of either. All or nothing.
async fn add_presets(
    State(apica): State<FakeApica>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let value = match json_body(&apica, body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut presets = Vec::new();
    for item in items(value) {
        let parsed = match item {
            Value::String(text) => text.parse::<Preset>().map_err(|e| e.to_string()),
            other => serde_json::from_value::<PresetSpec>(other)
                .map_err(|e| format!("{e}; a preset is {{\"name\", \"duration\", \"outcome\": \"passed\"|\"failed\", \"reason\"?}}"))
                .and_then(|spec| Preset::from_spec(spec).map_err(|e| e.to_string())),
        };
        match parsed {
            Ok(p) => presets.push(p),
            Err(message) => return unprocessable("InvalidPreset", message),
        }
    }
    for p in presets {
        apica.add_preset(p);
    }
    (StatusCode::CREATED, Json(presets_doc(&apica))).into_response()
}

async fn remove_preset(State(apica): State<FakeApica>, Path(name): Path<String>) -> Response {
    if apica.remove_preset(&name) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        admin_error(
            StatusCode::NOT_FOUND,
            "UnknownPreset",
            format!("no preset named `{name}`"),
        )
    }
}

async fn list_faults(State(apica): State<FakeApica>) -> Json<Value> {
    Json(json!({"faults": apica.faults_json()}))
}

/// `POST /_sim/faults`: one fault or a list (see [`FaultSpec`]); all are checked before any is added.
async fn add_faults(
    State(apica): State<FakeApica>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let value = match json_body(&apica, body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let mut faults = Vec::new();
    for (i, item) in items(value).into_iter().enumerate() {
        let spec: FaultSpec = match serde_json::from_value(item) {
            Ok(s) => s,
            Err(e) => {
                return admin_error(
                    body::serde_status(&e),
                    "InvalidFault",
                    format!("fault {i}: {e}"),
                );
            }
        };
        match spec.resolve(&apica.sim().clock) {
            Ok(f) => faults.push(f),
            Err(e) => return unprocessable("InvalidFault", format!("fault {i}: {e}")),
        }
    }
    let mut ids = Vec::new();
    for f in faults {
        match apica.add_fault(f) {
            Ok(id) => ids.push(id.0),
            Err(e) => return unprocessable("InvalidFault", e.to_string()),
        }
    }
    (
        StatusCode::CREATED,
        Json(json!({"ids": ids, "faults": apica.faults_json()})),
    )
        .into_response()
}

async fn clear_faults(State(apica): State<FakeApica>) -> Json<Value> {
    Json(json!({"removed": apica.clear_faults()}))
}

async fn remove_fault(State(apica): State<FakeApica>, Path(id): Path<String>) -> Response {
    match id
        .parse::<u64>()
        .ok()
        .filter(|n| apica.remove_fault(FaultId(*n)))
    {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => admin_error(
            StatusCode::NOT_FOUND,
            "UnknownFault",
            format!("no fault with id `{id}`"),
        ),
    }
}

async fn list_tests(State(apica): State<FakeApica>) -> Json<Value> {
    Json(json!({"tests": apica.tests(), "counts": apica.counts()}))
}

async fn one_test(State(apica): State<FakeApica>, Path(id): Path<String>) -> Response {
    match id
        .parse::<u64>()
        .ok()
        .and_then(|n| apica.test(n).map(|t| (n, t)))
    {
        Some((n, test)) => {
            let mut doc = json!(test);
            if let Some(map) = doc.as_object_mut() {
                map.insert("lost".into(), json!(!apica.is_visible(n)));
            }
            Json(doc).into_response()
        }
        None => admin_error(
            StatusCode::NOT_FOUND,
            "UnknownTest",
            format!("no load test with jobId `{id}`"),
        ),
    }
}

async fn token_count(State(apica): State<FakeApica>) -> Json<Value> {
    // Never the tokens themselves: this endpoint needs no authentication.
    Json(json!({"count": apica.token_count()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    token: String,
}

async fn add_token(
    State(apica): State<FakeApica>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let value = match json_body(&apica, body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match serde_json::from_value::<NewToken>(value) {
        Ok(t) if !t.token.trim().is_empty() => {
            apica.add_token(t.token.trim());
            (
                StatusCode::CREATED,
                Json(json!({"count": apica.token_count()})),
            )
                .into_response()
        }
        Ok(_) => unprocessable("InvalidField", "field `token` must not be empty"),
        Err(e) => unprocessable("InvalidField", format!("{e}; send {{\"token\": \"...\"}}")),
    }
}
