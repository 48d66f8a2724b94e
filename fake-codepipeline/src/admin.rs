//! The admin API under `/_sim/` (JSON): register action types, start bare action executions, inject
//! faults, inspect state. `/_sim/clock` and `/_sim/events` come from `sim_core::http`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use sim_core::http::admin_error;

use crate::engine::Core;
use crate::error::ApiError;
use crate::pipelines::{ActionTypeSpec, ExecutionSpec, parse_properties};
use crate::settings::TimingOverrides;
use crate::state::FaultRule;
use crate::types::ActionTypeId;

/// The admin routes, with the core as state.
pub fn routes(core: Arc<Core>) -> Router {
    Router::new()
        .route("/_sim/state", get(state))
        .route("/_sim/activity", get(activity))
        .route(
            "/_sim/action-types",
            get(list_action_types).post(register_action_type),
        )
        .route(
            "/_sim/executions",
            get(list_executions).post(start_execution),
        )
        .route("/_sim/executions/{id}", get(get_execution))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .with_state(core)
}

fn api_error(e: ApiError) -> Response {
    let status = if e.type_name == "ActionTypeNotFoundException" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    admin_error(status, e.type_name, e.message)
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes, what: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(admin_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("{what}: {e}"),
        ))
    })
}

/// Either `"actionType": "Category/Owner/Provider/Version"` or `"actionTypeId": {...}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum TypeRef {
    Text(String),
    Object(Value),
}

impl TypeRef {
    fn parse(&self) -> Result<ActionTypeId, String> {
        match self {
            TypeRef::Text(t) => t.parse(),
            TypeRef::Object(v) => ActionTypeId::from_json(v),
        }
    }
}

/// The body of `POST /_sim/action-types`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ActionTypeBody {
    #[serde(alias = "actionType")]
    action_type_id: TypeRef,
    #[serde(default)]
    settings: Value,
    #[serde(default)]
    configuration_properties: Value,
    #[serde(default)]
    input_artifact_details: Value,
    #[serde(default)]
    output_artifact_details: Value,
    #[serde(default)]
    clients: HashMap<String, String>,
    #[serde(flatten)]
    timing: TimingOverrides,
}

async fn register_action_type(State(core): State<Arc<Core>>, body: Bytes) -> Response {
    let b: ActionTypeBody = match parse_body(&body, "action type") {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let id = match b.action_type_id.parse() {
        Ok(id) => id,
        Err(e) => return admin_error(StatusCode::UNPROCESSABLE_ENTITY, "BadActionType", e),
    };
    let props = match parse_properties(Some(&b.configuration_properties)) {
        Ok(p) => p,
        Err(e) => return api_error(e),
    };
    for client in b.clients.keys() {
        if uuid::Uuid::parse_str(client)
            .map(|u| u.to_string() != *client)
            .unwrap_or(true)
        {
            return admin_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "BadClientId",
                format!(
                    "clientId '{client}' must be a lowercase UUID (the model's ThirdPartyJob.clientId pattern)"
                ),
            );
        }
    }
    let spec = ActionTypeSpec {
        id: Some(id),
        settings: b.settings,
        properties: props,
        input_artifacts: b.input_artifact_details,
        output_artifacts: b.output_artifact_details,
        clients: b.clients,
        timing: b.timing,
    };
    match core.register_action_type(spec) {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => api_error(e),
    }
}

async fn list_action_types(State(core): State<Arc<Core>>) -> Json<Value> {
    Json(core.list_action_types(None))
}

/// The body of `POST /_sim/executions`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExecutionBody {
    #[serde(alias = "actionType")]
    action_type_id: TypeRef,
    #[serde(default)]
    configuration: BTreeMap<String, String>,
    client_id: Option<String>,
    #[serde(alias = "executionId")]
    id: Option<String>,
    /// A synthetic pipeline to share with other executions that name it (CP-STAGE-LOCK).
    pipeline: Option<String>,
    /// `SUPERSEDED`, `QUEUED` or `PARALLEL`, for the pipeline this execution makes.
    execution_mode: Option<String>,
    /// The KMS key id of the artifact store of the pipeline this execution makes.
    encryption_key: Option<String>,
}

async fn start_execution(State(core): State<Arc<Core>>, body: Bytes) -> Response {
    let b: ExecutionBody = match parse_body(&body, "execution") {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let id = match b.action_type_id.parse() {
        Ok(id) => id,
        Err(e) => return admin_error(StatusCode::UNPROCESSABLE_ENTITY, "BadActionType", e),
    };
    let execution_mode = match b.execution_mode.as_deref().map(str::parse) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            return admin_error(StatusCode::UNPROCESSABLE_ENTITY, "BadExecutionMode", e);
        }
    };
    let spec = ExecutionSpec {
        action_type: Some(id),
        configuration: b.configuration,
        client_id: b.client_id,
        label: b.id,
        pipeline: b.pipeline,
        execution_mode,
        encryption_key: b.encryption_key,
    };
    match core.start_execution(spec) {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => api_error(e),
    }
}

async fn list_executions(State(core): State<Arc<Core>>) -> Json<Value> {
    let list: Vec<Value> = core
        .execution_labels()
        .iter()
        .filter_map(|l| core.execution_view(l))
        .collect();
    Json(json!({"executions": list}))
}

async fn get_execution(State(core): State<Arc<Core>>, Path(id): Path<String>) -> Response {
    match core.execution_view(&id) {
        Some(v) => Json(v).into_response(),
        None => admin_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no action execution '{id}'"),
        ),
    }
}

async fn list_faults(State(core): State<Arc<Core>>) -> Json<Value> {
    Json(json!({"faults": core.with_world(|w| w.faults.clone())}))
}

async fn add_fault(State(core): State<Arc<Core>>, body: Bytes) -> Response {
    let rule: FaultRule = match parse_body(&body, "fault") {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if !(0.0..=1.0).contains(&rule.rate) {
        return admin_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BadFault",
            format!("rate {} must be between 0 and 1", rule.rate),
        );
    }
    if rule.operation != "*" && !crate::ops::is_supported(&rule.operation) {
        return admin_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BadFault",
            format!(
                "operation '{}' is not one this fake serves (or `*`)",
                rule.operation
            ),
        );
    }
    if rule.count == Some(0) {
        return admin_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BadFault",
            "count must be at least 1 (leave it out for no limit)",
        );
    }
    if let Some(s) = rule.status
        && !(500..=599).contains(&s)
    {
        return admin_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BadFault",
            format!("status {s} must be 5xx"),
        );
    }
    core.add_fault(rule);
    list_faults(State(core)).await.into_response()
}

async fn clear_faults(State(core): State<Arc<Core>>) -> Json<Value> {
    core.clear_faults();
    Json(json!({"faults": []}))
}

async fn activity(State(core): State<Arc<Core>>) -> Json<Value> {
    Json(serde_json::to_value(core.sim.activity.snapshot()).unwrap_or(Value::Null))
}

async fn state(State(core): State<Arc<Core>>) -> Json<Value> {
    let executions: Vec<Value> = core
        .execution_labels()
        .iter()
        .filter_map(|l| core.execution_view(l))
        .collect();
    Json(json!({
        "clock": sim_core::http::clock_document(&core.sim),
        "activity": core.sim.activity.snapshot(),
        "actionTypes": core.list_action_types(None)["actionTypes"],
        "pipelines": core.list_pipelines()["pipelines"],
        "executions": executions,
        "faults": core.with_world(|w| w.faults.clone()),
    }))
}
