//! Simplified pipelines: action types, declarations, runs that move stage by stage, and the views
//! (GetPipelineState, ListActionExecutions) that show the Details link and progress to real clients.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};
use sim_core::{NewEvent, SimTime};

use crate::engine::Core;
use crate::error::ApiError;
use crate::settings::TimingOverrides;
use crate::state::{
    ActionDecl, ActionExecution, ActionType, ArtifactStoreDecl, BareRun, ConfigProperty, Pipeline,
    PipelineExecution, StageDecl, World,
};
use crate::types::{ActionTypeId, ExecutionMode, ExecutionStatus, Owner, PipelineType};

/// How an action type is registered (the admin API's body, or CreateCustomActionType's input).
#[derive(Clone, Debug, Default)]
pub struct ActionTypeSpec {
    /// Its identity.
    pub id: Option<ActionTypeId>,
    /// `ActionTypeSettings` (URL templates).
    pub settings: Value,
    /// Configuration properties.
    pub properties: Vec<ConfigProperty>,
    /// Artifact details as sent.
    pub input_artifacts: Value,
    /// See `input_artifacts`.
    pub output_artifacts: Value,
    /// clientId -> clientToken (third-party).
    pub clients: HashMap<String, String>,
    /// Timing overrides.
    pub timing: TimingOverrides,
}

/// How a bare action execution is started through the admin API.
#[derive(Clone, Debug, Default)]
pub struct ExecutionSpec {
    /// Its action type (registered).
    pub action_type: Option<ActionTypeId>,
    /// Its configuration.
    pub configuration: BTreeMap<String, String>,
    /// The clientId its third-party jobs carry (defaults to the type's only client).
    pub client_id: Option<String>,
    /// A label of the caller's choosing (`e-1`); generated when absent.
    pub label: Option<String>,
    /// The synthetic pipeline to run on: made on first use, and a new run of it for each later execution
    /// that names it, so that executions share its stage lock (CP-STAGE-LOCK). `None`: a pipeline of its
    /// own, `sim-<label>`.
    pub pipeline: Option<String>,
    /// The execution mode of a pipeline this execution makes (default `SUPERSEDED`); an execution that
    /// joins a pipeline must name its mode or none.
    pub execution_mode: Option<ExecutionMode>,
    /// The KMS key of the artifact store of a pipeline this execution makes (`encryptionKey.id`): its
    /// jobs carry it and its bucket takes only SSE-KMS uploads (AG-ARTIFACT-KMS).
    pub encryption_key: Option<String>,
}

/// Parses `configurationProperties` (wire form) into properties, with the model's rules checked.
pub fn parse_properties(v: Option<&Value>) -> Result<Vec<ConfigProperty>, ApiError> {
    let Some(list) = v.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for p in list {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let flag = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(false);
        out.push(ConfigProperty {
            name,
            required: flag("required"),
            key: flag("key"),
            secret: flag("secret"),
            queryable: flag("queryable"),
            description: p
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            kind: p.get("type").and_then(Value::as_str).map(str::to_string),
        });
    }
    let queryable: Vec<&ConfigProperty> = out.iter().filter(|p| p.queryable).collect();
    if queryable.len() > 1 {
        return Err(ApiError::validation(
            "An action type can have at most one queryable property",
        ));
    }
    if let Some(q) = queryable.first()
        && (!q.required || q.secret)
    {
        return Err(ApiError::validation(format!(
            "Queryable property '{}' must be required and not secret",
            q.name
        )));
    }
    Ok(out)
}

/// The fewest stages a pipeline created or updated through the API may have (the user guide's pipeline
/// structure reference: "A pipeline must contain at least two stages").
pub const MIN_STAGES: usize = 2;

/// The artifact bucket of the admin API's synthetic pipelines.
pub const SYNTHETIC_ARTIFACT_BUCKET: &str = "sim-artifacts";
/// Where a synthetic pipeline's Source action reads its source (when its action type takes input
/// artifacts): the scenario runner uploads the scenario's `[source]` there.
pub const SYNTHETIC_SOURCE: (&str, &str) = ("sim-sources", "source.zip");
/// The artifact a synthetic pipeline's Source action makes.
pub const SYNTHETIC_SOURCE_ARTIFACT: &str = "SourceArtifact";
/// The artifact a synthetic pipeline's job-worker action makes (when its type has output artifacts).
pub const SYNTHETIC_OUTPUT_ARTIFACT: &str = "BuildArtifact";
/// The bucket a synthetic pipeline's Deploy action deploys to.
pub const SYNTHETIC_DEPLOY_BUCKET: &str = "sim-deploy";

/// How GetPipeline, GetPipelineState and ListActionExecutions show the value of a property its action
/// type marks secret (as AWS shows a GitHub OAuthToken).
pub const SECRET_MASK: &str = "****";

/// The longest value of a queryable property in a pipeline's action configuration (the model's
/// `ActionConfigurationProperty.queryable`: "less than or equal to twenty (20) characters").
pub const QUERYABLE_VALUE_MAX: usize = 20;

/// Whether a configuration value sent to UpdatePipeline is the mask of a secret rather than a new value:
/// only asterisks (and spaces: the model's documentation writes the mask `* * * * *`).
pub fn is_secret_mask(v: &str) -> bool {
    v.contains('*') && v.chars().all(|c| c == '*' || c == ' ')
}

/// A pipeline declaration parsed for CreatePipeline or UpdatePipeline.
#[derive(Clone, Debug)]
pub(crate) struct Declared {
    name: String,
    stages: Vec<StageDecl>,
    mode: ExecutionMode,
    pipeline_type: PipelineType,
    artifact_store: ArtifactStoreDecl,
    /// As sent, with `executionMode` and `pipelineType` filled in.
    raw: Value,
}

/// The names in an action's `inputArtifacts` or `outputArtifacts`.
fn artifact_names(a: &Value, member: &str) -> Vec<String> {
    a.get(member)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| x.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// A declaration's `artifactStore` (or, for a multi-region pipeline, the first of its `artifactStores`).
fn artifact_store_of(decl: &Value) -> ArtifactStoreDecl {
    let store = decl.get("artifactStore").or_else(|| {
        decl.get("artifactStores")
            .and_then(Value::as_object)
            .and_then(|m| m.values().next())
    });
    ArtifactStoreDecl {
        bucket: store
            .and_then(|s| s.get("location"))
            .and_then(Value::as_str)
            .unwrap_or(SYNTHETIC_ARTIFACT_BUCKET)
            .to_string(),
        encryption_key: store
            .and_then(|s| s.get("encryptionKey"))
            .and_then(|k| k.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// Every input artifact is the output of an action that runs before (an earlier stage, or a lower
/// runOrder of the same stage), and no two actions make an artifact of the same name.
fn check_artifact_flow(name: &str, stages: &[StageDecl]) -> Result<(), ApiError> {
    let mut made: Vec<(usize, i64, &str)> = Vec::new();
    for (si, st) in stages.iter().enumerate() {
        for a in &st.actions {
            for o in &a.output_artifacts {
                if made.iter().any(|(_, _, m)| m == o) {
                    return Err(ApiError::new(
                        "InvalidStructureException",
                        format!(
                            "Pipeline {name}: two actions make an output artifact named '{o}'; artifact names must be unique in a pipeline"
                        ),
                    ));
                }
                made.push((si, a.run_order, o));
            }
        }
    }
    for (si, st) in stages.iter().enumerate() {
        for a in &st.actions {
            for i in &a.input_artifacts {
                let before = made.iter().any(|(msi, mro, m)| {
                    m == i && (*msi < si || (*msi == si && *mro < a.run_order))
                });
                if !before {
                    return Err(ApiError::new(
                        "InvalidStructureException",
                        format!(
                            "Pipeline {name}: action '{}' in stage '{}' reads input artifact '{i}', which no action before it makes",
                            a.name, st.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Parses the `pipeline` member of CreatePipeline or UpdatePipeline (already validated against the model)
/// and checks what the model cannot: at least [`MIN_STAGES`] stages, at least one action per stage, and the
/// execution mode against the pipeline type.
pub(crate) fn parse_declaration(decl: &Value) -> Result<Declared, ApiError> {
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let name = text(decl, "name");
    let mut stages = Vec::new();
    for st in decl
        .get("stages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let sname = text(st, "name");
        if stages.iter().any(|s: &StageDecl| s.name == sname) {
            return Err(ApiError::new(
                "InvalidStructureException",
                format!(
                    "Pipeline {name} has two stages named '{sname}'; stage names must be unique"
                ),
            ));
        }
        let mut actions: Vec<ActionDecl> = Vec::new();
        for a in st
            .get("actions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let aname = text(a, "name");
            if actions.iter().any(|x| x.name == aname) {
                return Err(ApiError::new(
                    "InvalidActionDeclarationException",
                    format!(
                        "Stage '{sname}' has two actions named '{aname}'; action names must be unique in a stage"
                    ),
                ));
            }
            let at = a
                .get("actionTypeId")
                .map(ActionTypeId::from_json)
                .transpose()
                .map_err(ApiError::validation)?
                .ok_or_else(|| {
                    ApiError::validation(format!("action '{aname}' has no actionTypeId"))
                })?;
            actions.push(ActionDecl {
                name: aname,
                action_type: at,
                run_order: a.get("runOrder").and_then(Value::as_i64).unwrap_or(1),
                configuration: configuration_of(a.get("configuration")),
                input_artifacts: artifact_names(a, "inputArtifacts"),
                output_artifacts: artifact_names(a, "outputArtifacts"),
            });
        }
        if actions.is_empty() {
            return Err(ApiError::new(
                "InvalidStageDeclarationException",
                format!("Stage '{sname}' must have at least one action"),
            ));
        }
        stages.push(StageDecl {
            name: sname,
            actions,
        });
    }
    if stages.len() < MIN_STAGES {
        return Err(ApiError::new(
            "InvalidStructureException",
            format!(
                "Pipeline {name} has {} stage{}; a pipeline must have at least {MIN_STAGES} stages (for example a Source stage and the stage that runs the action)",
                stages.len(),
                if stages.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    let pipeline_type: PipelineType = match decl.get("pipelineType").and_then(Value::as_str) {
        Some(t) => t.parse().map_err(ApiError::validation)?,
        None => PipelineType::V1,
    };
    let mode: ExecutionMode = match decl.get("executionMode").and_then(Value::as_str) {
        Some(m) => m.parse().map_err(ApiError::validation)?,
        None => ExecutionMode::Superseded,
    };
    if mode != ExecutionMode::Superseded && pipeline_type != PipelineType::V2 {
        return Err(ApiError::validation(format!(
            "Pipeline {name}: executionMode {} requires pipelineType V2 (it is {}); only SUPERSEDED runs on a V1 pipeline",
            mode.as_str(),
            pipeline_type.as_str()
        )));
    }
    check_artifact_flow(&name, &stages)?;
    let mut raw = decl.clone();
    raw["executionMode"] = json!(mode.as_str());
    raw["pipelineType"] = json!(pipeline_type.as_str());
    Ok(Declared {
        name,
        stages,
        mode,
        pipeline_type,
        artifact_store: artifact_store_of(decl),
        raw,
    })
}

/// A queryable property's value in a pipeline's action configuration must follow the CreatePipeline rule:
/// at most [`QUERYABLE_VALUE_MAX`] characters, only letters, digits, `_` and `-`.
fn check_queryable_value(w: &World, a: &ActionDecl) -> Result<(), ApiError> {
    let Some(p) = w
        .action_types
        .get(&a.action_type)
        .and_then(|t| t.queryable_property())
    else {
        return Ok(());
    };
    let Some(v) = a.configuration.get(&p.name) else {
        return Ok(());
    };
    let chars_ok = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if v.chars().count() > QUERYABLE_VALUE_MAX || !chars_ok {
        return Err(ApiError::new(
            "InvalidActionDeclarationException",
            format!(
                "Action '{}': the value '{v}' of queryable property '{}' must be at most {QUERYABLE_VALUE_MAX} characters of letters, digits, '_' and '-'",
                a.name, p.name
            ),
        ));
    }
    Ok(())
}

/// The names of the properties `id` marks secret.
fn secret_names<'w>(w: &'w World, id: &ActionTypeId) -> Vec<&'w str> {
    w.action_types
        .get(id)
        .map(|t| {
            t.properties
                .iter()
                .filter(|p| p.secret)
                .map(|p| p.name.as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// A stored declaration as the AWS operations show it: each secret property's value is [`SECRET_MASK`].
pub(crate) fn masked_declaration(w: &World, decl: &Value) -> Value {
    let mut out = decl.clone();
    for st in out
        .get_mut("stages")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for a in st
            .get_mut("actions")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(id) = a
                .get("actionTypeId")
                .and_then(|v| ActionTypeId::from_json(v).ok())
            else {
                continue;
            };
            let secret = secret_names(w, &id);
            if let Some(conf) = a.get_mut("configuration").and_then(Value::as_object_mut) {
                for (k, v) in conf.iter_mut() {
                    if secret.contains(&k.as_str()) {
                        *v = json!(SECRET_MASK);
                    }
                }
            }
        }
    }
    out
}

/// UpdatePipeline: a secret sent back masked keeps the value the same action (same stage, name and type)
/// has in the current version; a mask with no such value to keep is refused.
fn keep_masked_secrets(w: &World, old: &Pipeline, d: &mut Declared) -> Result<(), ApiError> {
    for (si, st) in d.stages.iter_mut().enumerate() {
        for (ai, a) in st.actions.iter_mut().enumerate() {
            let secret = secret_names(w, &a.action_type);
            let masked: Vec<String> = a
                .configuration
                .iter()
                .filter(|(k, v)| secret.contains(&k.as_str()) && is_secret_mask(v))
                .map(|(k, _)| k.clone())
                .collect();
            for key in masked {
                let kept = old
                    .stages
                    .iter()
                    .find(|s| s.name == st.name)
                    .and_then(|s| s.actions.iter().find(|x| x.name == a.name && x.action_type == a.action_type))
                    .and_then(|x| x.configuration.get(&key))
                    .cloned()
                    .ok_or_else(|| {
                        ApiError::new(
                            "InvalidActionDeclarationException",
                            format!(
                                "Action '{}' of stage '{}': secret property '{key}' is masked, but pipeline {} has no earlier value for it to keep; send the secret itself",
                                a.name, st.name, old.name
                            ),
                        )
                    })?;
                d.raw["stages"][si]["actions"][ai]["configuration"][&key] = json!(kept.clone());
                a.configuration.insert(key, kept);
            }
        }
    }
    Ok(())
}

fn custom_limit(limit: usize) -> ApiError {
    ApiError::new(
        "LimitExceededException",
        format!(
            "The account already has {limit} custom action types in this Region, the quota; delete one with DeleteCustomActionType first"
        ),
    )
}

/// A member as registered: `Null` (absent) becomes `default`.
fn json_or_default(v: &Value, default: Value) -> Value {
    if v.is_null() { default } else { v.clone() }
}

/// The declaration of a synthetic pipeline (the admin API's), as GetPipeline shows it: a Source stage
/// and the action's stage, with the configuration of the first execution that made it.
fn synthetic_declaration(p: &Pipeline, account: &str) -> Value {
    let stages: Vec<Value> = p
        .stages
        .iter()
        .map(|st| {
            let actions: Vec<Value> = st
                .actions
                .iter()
                .map(|a| {
                    let names = |v: &[String]| v.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
                    json!({
                        "name": a.name, "actionTypeId": a.action_type.to_json(), "runOrder": a.run_order,
                        "configuration": a.configuration,
                        "inputArtifacts": names(&a.input_artifacts),
                        "outputArtifacts": names(&a.output_artifacts),
                    })
                })
                .collect();
            json!({"name": st.name, "actions": actions})
        })
        .collect();
    let mut declaration = json!({
        "name": p.name, "roleArn": format!("arn:aws:iam::{account}:role/sim"),
        "artifactStore": {"type": "S3", "location": p.artifact_store.bucket},
        "stages": stages,
        "version": p.version,
    });
    if p.pipeline_type == PipelineType::V2 {
        declaration["pipelineType"] = json!("V2");
        declaration["executionMode"] = json!(p.mode.as_str());
    }
    declaration
}

fn synthetic_pipeline(name: &str) -> ApiError {
    ApiError::validation(format!(
        "Pipeline {name} was made by the admin API for a bare action execution; it cannot be updated or deleted"
    ))
}

fn configuration_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Core {
    /// Registers (or replaces) an action type. Custom types come from CreateCustomActionType or the admin
    /// API; third-party types only from the admin API (partners are registered by AWS).
    pub fn register_action_type(&self, spec: ActionTypeSpec) -> Result<Value, ApiError> {
        let id = spec
            .id
            .clone()
            .ok_or_else(|| ApiError::validation("actionTypeId is required"))?;
        if id.owner == Owner::Aws {
            return Err(ApiError::validation(
                "AWS-owned action types are built in; register ThirdParty or Custom",
            ));
        }
        let timing = spec
            .timing
            .apply(&self.settings.timing)
            .map_err(ApiError::validation)?;
        for token in spec.clients.values() {
            self.sim.events.add_secret(token);
        }
        let at = ActionType {
            id: id.clone(),
            settings: if spec.settings.is_null() {
                json!({})
            } else {
                spec.settings
            },
            properties: spec.properties,
            input_artifacts: if spec.input_artifacts.is_null() {
                json!({"minimumCount": 0, "maximumCount": 5})
            } else {
                spec.input_artifacts
            },
            output_artifacts: if spec.output_artifacts.is_null() {
                json!({"minimumCount": 0, "maximumCount": 5})
            } else {
                spec.output_artifacts
            },
            clients: spec.clients,
            timing,
            deleted: false,
        };
        let view = at.to_json();
        self.with_world(|w| {
            w.emit(
                NewEvent::new(
                    sim_core::Source::Cp,
                    sim_core::EventKind::ActionTypeRegistered,
                )
                .detail(format!("action type {id} registered"))
                .data(json!({
                    "actionType": id.to_string(),
                    "jobTimeout_ms": at.timing.job_timeout.as_millis() as u64,
                    "ackWindow_ms": at.timing.ack_window.as_millis() as u64,
                    "continuationDelay_ms": at.timing.continuation_delay.as_millis() as u64,
                    "finalOn": at.timing.final_on.to_string(),
                    "jobTimeoutFrom": at.timing.job_timeout_from.to_string(),
                    "actionTimeoutPer": at.timing.action_timeout_per.to_string(),
                })),
            );
            w.action_types.insert(id, at);
        });
        Ok(view)
    }

    /// CreateCustomActionType: idempotent for the same category/provider/version. A type that
    /// DeleteCustomActionType deleted is restored only by an identical declaration; any other is refused
    /// (its version must be one never used before). At most `max_custom_action_types` custom types may
    /// exist (LimitExceededException).
    pub fn create_custom_action_type(&self, input: &Value) -> Result<Value, ApiError> {
        let s = |k: &str| {
            input
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let id = ActionTypeId {
            category: s("category"),
            owner: Owner::Custom,
            provider: s("provider"),
            version: s("version"),
        };
        let spec = ActionTypeSpec {
            id: Some(id.clone()),
            settings: input.get("settings").cloned().unwrap_or(Value::Null),
            properties: parse_properties(input.get("configurationProperties"))?,
            input_artifacts: input
                .get("inputArtifactDetails")
                .cloned()
                .unwrap_or(Value::Null),
            output_artifacts: input
                .get("outputArtifactDetails")
                .cloned()
                .unwrap_or(Value::Null),
            clients: HashMap::new(),
            timing: TimingOverrides::default(),
        };
        let limit = self.settings.max_custom_action_types;
        let existing = self.with_world(|w| {
            let live = w
                .action_types
                .values()
                .filter(|t| t.id.owner == Owner::Custom && !t.deleted)
                .count();
            match w.action_types.get_mut(&id) {
                Some(t) if !t.deleted => Ok(Some(t.to_json())),
                Some(t) => {
                    let same = t.properties == spec.properties
                        && json_or_default(&spec.settings, json!({})) == t.settings
                        && json_or_default(&spec.input_artifacts, json!({"minimumCount": 0, "maximumCount": 5}))
                            == t.input_artifacts
                        && json_or_default(&spec.output_artifacts, json!({"minimumCount": 0, "maximumCount": 5}))
                            == t.output_artifacts;
                    if !same {
                        return Err(ApiError::validation(format!(
                            "{} was deleted; re-create it under a version never used before, or restore it with a declaration identical to the deleted one",
                            id.describe()
                        )));
                    }
                    if live >= limit {
                        return Err(custom_limit(limit));
                    }
                    t.deleted = false;
                    let view = t.to_json();
                    w.emit(
                        NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ActionTypeRegistered)
                            .detail(format!("action type {id} restored"))
                            .data(json!({"actionType": id.to_string(), "restored": true})),
                    );
                    Ok(Some(view))
                }
                None if live >= limit => Err(custom_limit(limit)),
                None => Ok(None),
            }
        })?;
        if let Some(view) = existing {
            return Ok(json!({"actionType": view}));
        }
        Ok(json!({"actionType": self.register_action_type(spec)?}))
    }

    /// DeleteCustomActionType: marks the custom type deleted. Polls for it then fail
    /// (`ActionTypeNotFoundException`), ListActionTypes leaves it out and new pipelines cannot use it;
    /// jobs already created go on. Deleting a type that does not exist, or again, succeeds (the model
    /// gives the operation no not-found error).
    pub fn delete_custom_action_type(
        &self,
        caller: Option<&str>,
        category: &str,
        provider: &str,
        version: &str,
    ) -> Result<(), ApiError> {
        let id = ActionTypeId {
            category: category.to_string(),
            owner: Owner::Custom,
            provider: provider.to_string(),
            version: version.to_string(),
        };
        self.with_world(|w| {
            if let Some(t) = w.action_types.get_mut(&id)
                && !t.deleted
            {
                t.deleted = true;
                w.emit(
                    NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ActionTypeDeleted)
                        .replica_opt(caller)
                        .detail(format!("action type {id} marked deleted"))
                        .data(json!({"actionType": id.to_string()})),
                );
            }
            Ok(())
        })
    }

    /// ListActionTypes, optionally filtered by owner.
    pub fn list_action_types(&self, owner: Option<&str>) -> Value {
        self.with_world(|w| {
            let list: Vec<Value> = w
                .action_types
                .values()
                .filter(|t| !t.deleted)
                .filter(|t| owner.is_none_or(|o| t.id.owner.as_str() == o))
                .map(ActionType::to_json)
                .collect();
            json!({"actionTypes": list})
        })
    }

    /// CreatePipeline: at least two stages ([`MIN_STAGES`]), each action of an available type with its
    /// required properties, queryable values within the CreatePipeline rule; `QUEUED` and `PARALLEL` need
    /// `pipelineType` `V2`. The answer masks secret values.
    pub fn create_pipeline(&self, input: &Value) -> Result<Value, ApiError> {
        let declared = parse_declaration(input.get("pipeline").unwrap_or(&Value::Null))?;
        let now = self.sim.clock.now();
        self.with_world(|w| {
            let name = declared.name.clone();
            if w.pipelines.contains_key(&name) {
                return Err(ApiError::new(
                    "PipelineNameInUseException",
                    format!("A pipeline named '{name}' already exists"),
                ));
            }
            self.check_declared(w, &declared)?;
            let mut stored = declared.raw.clone();
            stored["version"] = json!(1);
            w.pipelines.insert(
                name.clone(),
                Pipeline {
                    name: name.clone(),
                    version: 1,
                    declaration: stored.clone(),
                    earlier: BTreeMap::new(),
                    stages: Arc::new(declared.stages),
                    mode: declared.mode,
                    pipeline_type: declared.pipeline_type,
                    created: now,
                    updated: now,
                    synthetic: false,
                    disabled_transitions: BTreeMap::new(),
                    artifact_store: declared.artifact_store.clone(),
                },
            );
            self.ensure_artifact_bucket(&name, &declared.artifact_store);
            w.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::PipelineCreated)
                    .detail(format!("pipeline {name} created")),
            );
            Ok(json!({"pipeline": masked_declaration(w, &stored)}))
        })
    }

    /// UpdatePipeline: the declaration replaces the pipeline's, checked as CreatePipeline checks it, and
    /// the version goes up by one. Runs in progress keep the stages of the version they started with; the
    /// next StartPipelineExecution uses the new one. A secret property sent back masked (`****`, as
    /// GetPipeline shows it) keeps the value the same action had.
    pub fn update_pipeline(&self, input: &Value) -> Result<Value, ApiError> {
        let mut declared = parse_declaration(input.get("pipeline").unwrap_or(&Value::Null))?;
        let now = self.sim.clock.now();
        self.with_world(|w| {
            let name = declared.name.clone();
            // The model gives UpdatePipeline no PipelineNotFoundException.
            let Some(old) = w.pipelines.get(&name) else {
                return Err(ApiError::validation(format!(
                    "Account does not have a pipeline with name '{name}' to update; create it with CreatePipeline"
                )));
            };
            if old.synthetic {
                return Err(synthetic_pipeline(&name));
            }
            keep_masked_secrets(w, old, &mut declared)?;
            self.check_declared(w, &declared)?;
            let version = old.version + 1;
            let mut stored = declared.raw.clone();
            stored["version"] = json!(version);
            let p = w.pipelines.get_mut(&name).expect("found above");
            let previous = std::mem::replace(&mut p.declaration, stored.clone());
            p.earlier.insert(p.version, previous);
            p.version = version;
            p.stages = Arc::new(declared.stages);
            p.mode = declared.mode;
            p.pipeline_type = declared.pipeline_type;
            p.updated = now;
            p.artifact_store = declared.artifact_store.clone();
            self.ensure_artifact_bucket(&name, &declared.artifact_store);
            w.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::PipelineUpdated)
                    .detail(format!("pipeline {name} updated to version {version}"))
                    .data(json!({"pipeline": name, "version": version})),
            );
            Ok(json!({"pipeline": masked_declaration(w, &stored)}))
        })
    }

    /// DeletePipeline: the pipeline and its runs are gone; the in-progress actions of its runs are
    /// abandoned (their jobs end, a result for them is CP-ABANDONED). Deleting a pipeline that does not
    /// exist succeeds (the model gives DeletePipeline no PipelineNotFoundException).
    pub fn delete_pipeline(&self, caller: Option<&str>, name: &str) -> Result<(), ApiError> {
        self.with_world(|w| {
            match w.pipelines.get(name) {
                None => return Ok(()),
                Some(p) if p.synthetic => return Err(synthetic_pipeline(name)),
                Some(_) => {}
            }
            let runs: Vec<String> = w.runs_of(name).to_vec();
            let now = self.now();
            let mut abandoned = Vec::new();
            // Every run ends first, so that abandoning actions starts nothing after them.
            let mut labels = Vec::new();
            for id in &runs {
                if let Some(pe) = w.pipeline_executions.get_mut(id) {
                    if !pe.status.is_finished() {
                        pe.status = ExecutionStatus::Stopped;
                        pe.updated = now;
                    }
                    labels.extend(pe.actions.values().cloned());
                }
            }
            for label in labels {
                if w.executions
                    .get(&label)
                    .is_some_and(|e| e.status == ExecutionStatus::InProgress)
                {
                    self.abandon_action(w, &label, now);
                    abandoned.push(label);
                }
            }
            // Their ids stay in `pipeline_execution_order` (skipped from now on), so that the positions
            // other pipelines' ListPipelineExecutions tokens name do not move.
            w.pipeline_executions.retain(|_, pe| pe.pipeline != name);
            w.runs_by_pipeline.remove(name);
            w.pipelines.remove(name);
            w.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::PipelineDeleted)
                    .replica_opt(caller)
                    .detail(format!(
                        "pipeline {name} deleted with {} runs{}",
                        runs.len(),
                        if abandoned.is_empty() {
                            String::new()
                        } else {
                            format!("; abandoned {}", abandoned.join(", "))
                        }
                    ))
                    .data(json!({"pipeline": name, "runs": runs.len(), "abandoned": abandoned})),
            );
            Ok(())
        })
    }

    /// Checks a parsed declaration against the registered action types.
    fn check_declared(&self, w: &World, d: &Declared) -> Result<(), ApiError> {
        for st in d.stages.iter() {
            for a in &st.actions {
                self.check_action(w, a)?;
                check_queryable_value(w, a)?;
            }
        }
        Ok(())
    }

    fn check_action(&self, w: &World, a: &ActionDecl) -> Result<(), ApiError> {
        if !a.action_type.owner.is_job_worker() {
            return Ok(());
        }
        let Some(t) = w.action_types.get(&a.action_type).filter(|t| !t.deleted) else {
            return Err(ApiError::new(
                "InvalidActionDeclarationException",
                format!(
                    "Action '{}': {} is not available",
                    a.name,
                    a.action_type.describe()
                ),
            ));
        };
        for p in t.properties.iter().filter(|p| p.required) {
            if !a.configuration.contains_key(&p.name) {
                return Err(ApiError::new(
                    "InvalidActionDeclarationException",
                    format!(
                        "Action '{}' is missing the required configuration property '{}'",
                        a.name, p.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// GetPipeline: the current declaration, or that of an earlier `version`, secrets masked.
    pub fn get_pipeline(&self, name: &str, version: Option<i64>) -> Result<Value, ApiError> {
        let (region, account) = (
            self.settings.region.clone(),
            self.settings.account_id.clone(),
        );
        self.with_world(|w| {
            let p = w
                .pipelines
                .get(name)
                .ok_or_else(|| pipeline_not_found(name))?;
            let built;
            let current = if p.synthetic {
                built = synthetic_declaration(p, &account);
                &built
            } else {
                &p.declaration
            };
            let declaration = match version {
                None => current,
                Some(v) if v == p.version => current,
                Some(v) => p.earlier.get(&v).ok_or_else(|| {
                    ApiError::new(
                        "PipelineVersionNotFoundException",
                        format!(
                            "Pipeline {name} has no version {v}; its versions are 1 to {}",
                            p.version
                        ),
                    )
                })?,
            };
            Ok(json!({
                "pipeline": masked_declaration(w, declaration),
                "metadata": {
                    "pipelineArn": format!("arn:aws:codepipeline:{region}:{account}:{}", p.name),
                    "created": p.created.epoch_seconds(),
                    "updated": p.updated.epoch_seconds(),
                }
            }))
        })
    }

    /// ListPipelines.
    pub fn list_pipelines(&self) -> Value {
        self.with_world(|w| {
            let list: Vec<Value> = w
                .pipelines
                .values()
                .map(|p| {
                    json!({"name": p.name, "version": p.version, "created": p.created.epoch_seconds(),
                           "updated": p.updated.epoch_seconds(), "pipelineType": p.pipeline_type.as_str(),
                           "executionMode": p.mode.as_str()})
                })
                .collect();
            json!({"pipelines": list})
        })
    }

    /// StartPipelineExecution.
    pub fn start_pipeline_execution(&self, name: &str) -> Result<Value, ApiError> {
        self.with_world(|w| {
            if !w.pipelines.contains_key(name) {
                return Err(pipeline_not_found(name));
            }
            let id = self.begin_pipeline_execution(w, name, None);
            Ok(json!({"pipelineExecutionId": id}))
        })
    }

    fn begin_pipeline_execution(&self, w: &mut World, name: &str, bare: Option<BareRun>) -> String {
        let now = self.sim.clock.now();
        let id = w.new_uuid();
        let Some(p) = w.pipelines.get(name) else {
            return id;
        };
        let (version, stages, mode) = (p.version, p.stages.clone(), p.mode);
        let artifact_store = p.artifact_store.clone();
        w.pipeline_executions.insert(
            id.clone(),
            PipelineExecution {
                id: id.clone(),
                pipeline: name.to_string(),
                version,
                stages,
                mode,
                entered: false,
                waiting: false,
                status: ExecutionStatus::InProgress,
                started: now,
                updated: now,
                stage: 0,
                run_order: None,
                actions: BTreeMap::new(),
                previous: BTreeMap::new(),
                stop: None,
                bare,
                artifact_store,
                artifacts: BTreeMap::new(),
            },
        );
        w.pipeline_execution_order.push(id.clone());
        w.runs_by_pipeline
            .entry(name.to_string())
            .or_default()
            .push(id.clone());
        w.emit(
            NewEvent::new(
                sim_core::Source::Cp,
                sim_core::EventKind::PipelineExecutionStarted,
            )
            .detail(format!("pipeline {name} execution {id} started"))
            .data(json!({"pipeline": name, "pipelineExecutionId": id})),
        );
        self.advance_pipeline(w, &id);
        id
    }

    /// Starts a bare action execution on a synthetic pipeline (the admin API's way): a Source stage, then
    /// a stage with the one action.
    pub fn start_execution(&self, spec: ExecutionSpec) -> Result<Value, ApiError> {
        let at = spec
            .action_type
            .clone()
            .ok_or_else(|| ApiError::validation("actionTypeId is required"))?;
        self.with_world(|w| {
            let t = w.action_types.get(&at).ok_or_else(|| {
                ApiError::new("ActionTypeNotFoundException", format!("{} is not available", at.describe()))
            })?;
            let client_id = match (at.owner, &spec.client_id) {
                (Owner::ThirdParty, Some(c)) if !t.clients.contains_key(c) => {
                    return Err(ApiError::validation(format!("clientId '{c}' is not registered for {at}")));
                }
                (Owner::ThirdParty, Some(c)) => Some(c.clone()),
                (Owner::ThirdParty, None) if t.clients.len() == 1 => t.clients.keys().next().cloned(),
                (Owner::ThirdParty, None) => {
                    return Err(ApiError::validation(format!(
                        "{at} has {} clients; say which clientId this execution uses",
                        t.clients.len()
                    )));
                }
                _ => None,
            };
            // Its artifacts follow the action type's: a source artifact to read if it needs input
            // artifacts (`minimumCount` at least 1), an output artifact to write (read by a Deploy stage)
            // if it must make one.
            let takes = |v: &Value| v.get("minimumCount").and_then(Value::as_i64).unwrap_or(0) > 0;
            let (reads, writes) = (takes(&t.input_artifacts), takes(&t.output_artifacts));
            let label = match spec.label.clone() {
                Some(l) => l,
                None => w.next_execution_label(),
            };
            let decl = ActionDecl {
                name: at.provider.clone(),
                action_type: at.clone(),
                run_order: 1,
                configuration: spec.configuration.clone(),
                input_artifacts: if reads { vec![SYNTHETIC_SOURCE_ARTIFACT.into()] } else { vec![] },
                output_artifacts: if writes { vec![SYNTHETIC_OUTPUT_ARTIFACT.into()] } else { vec![] },
            };
            self.check_action(w, &decl)?;
            // Like a pipeline made through the API (at least two stages), it starts with a Source
            // stage, whose AWS-owned action succeeds at once.
            let source = ActionDecl {
                name: "Source".into(),
                action_type: ActionTypeId {
                    category: "Source".into(),
                    owner: Owner::Aws,
                    provider: "S3".into(),
                    version: "1".into(),
                },
                run_order: 1,
                configuration: if reads {
                    BTreeMap::from([
                        ("S3Bucket".to_string(), SYNTHETIC_SOURCE.0.to_string()),
                        ("S3ObjectKey".to_string(), SYNTHETIC_SOURCE.1.to_string()),
                    ])
                } else {
                    BTreeMap::new()
                },
                input_artifacts: vec![],
                output_artifacts: if reads { vec![SYNTHETIC_SOURCE_ARTIFACT.into()] } else { vec![] },
            };
            let deploy = writes.then(|| ActionDecl {
                name: "Deploy".into(),
                action_type: ActionTypeId {
                    category: "Deploy".into(),
                    owner: Owner::Aws,
                    provider: "S3".into(),
                    version: "1".into(),
                },
                run_order: 1,
                configuration: BTreeMap::from([
                    ("BucketName".to_string(), SYNTHETIC_DEPLOY_BUCKET.to_string()),
                    ("Extract".to_string(), "false".to_string()),
                    ("ObjectKey".to_string(), format!("{label}.zip")),
                ]),
                input_artifacts: vec![SYNTHETIC_OUTPUT_ARTIFACT.into()],
                output_artifacts: vec![],
            });
            let pipeline = spec.pipeline.clone().unwrap_or_else(|| format!("sim-{label}"));
            let now = self.sim.clock.now();
            match w.pipelines.get(&pipeline) {
                Some(p) if !p.synthetic => {
                    return Err(ApiError::validation(format!(
                        "pipeline {pipeline} was made through the API; a bare execution runs on a pipeline of the admin API's own"
                    )));
                }
                Some(p) => {
                    let declared = p.stages.get(1).and_then(|s| s.actions.first());
                    if declared.map(|a| &a.action_type) != Some(&at) {
                        return Err(ApiError::validation(format!(
                            "pipeline {pipeline} runs {}, not {at}",
                            declared.map_or("nothing".to_string(), |a| a.action_type.to_string())
                        )));
                    }
                    if let Some(m) = spec.execution_mode.filter(|m| *m != p.mode) {
                        return Err(ApiError::validation(format!(
                            "pipeline {pipeline} has execution mode {}, not {}",
                            p.mode.as_str(),
                            m.as_str()
                        )));
                    }
                    if spec.encryption_key.is_some()
                        && spec.encryption_key != p.artifact_store.encryption_key
                    {
                        return Err(ApiError::validation(format!(
                            "pipeline {pipeline} has the encryption key {}, not {}",
                            p.artifact_store.encryption_key.as_deref().unwrap_or("(none)"),
                            spec.encryption_key.as_deref().unwrap_or_default()
                        )));
                    }
                }
                None => {
                    // A KMS pipeline gets a bucket of its own: the rule is the bucket's.
                    let artifact_store = ArtifactStoreDecl {
                        bucket: if spec.encryption_key.is_some() {
                            format!("{SYNTHETIC_ARTIFACT_BUCKET}-kms")
                        } else {
                            SYNTHETIC_ARTIFACT_BUCKET.into()
                        },
                        encryption_key: spec.encryption_key.clone(),
                    };
                    let mode = spec.execution_mode.unwrap_or(ExecutionMode::Superseded);
                    let pipeline_type = if mode == ExecutionMode::Superseded {
                        PipelineType::V1
                    } else {
                        PipelineType::V2
                    };
                    w.pipelines.insert(
                        pipeline.clone(),
                        Pipeline {
                            name: pipeline.clone(),
                            version: 1,
                            // Built when GetPipeline asks (`synthetic_declaration`): thousands of
                            // bare executions need not each hold a JSON tree.
                            declaration: Value::Null,
                            earlier: BTreeMap::new(),
                            stages: Arc::new(
                                [
                                    Some(StageDecl {
                                        name: "Source".into(),
                                        actions: vec![source],
                                    }),
                                    Some(StageDecl {
                                        name: at.category.clone(),
                                        actions: vec![decl],
                                    }),
                                    deploy.map(|d| StageDecl {
                                        name: "Deploy".into(),
                                        actions: vec![d],
                                    }),
                                ]
                                .into_iter()
                                .flatten()
                                .collect(),
                            ),
                            mode,
                            pipeline_type,
                            created: now,
                            updated: now,
                            synthetic: true,
                            disabled_transitions: BTreeMap::new(),
                            artifact_store: artifact_store.clone(),
                        },
                    );
                    self.ensure_artifact_bucket(&pipeline, &artifact_store);
                }
            }
            if w.executions.contains_key(&label) || w.bare_labels.contains_key(&label) {
                return Err(ApiError::validation(format!("an execution labelled '{label}' already exists")));
            }
            let bare = BareRun {
                label: label.clone(),
                client_id,
                configuration: spec.configuration.clone(),
                started: false,
            };
            let pe = self.begin_pipeline_execution(w, &pipeline, Some(bare));
            w.bare_labels.insert(label.clone(), pe.clone());
            Ok(json!({"executionId": label, "pipelineName": pipeline, "pipelineExecutionId": pe}))
        })
    }

    /// Moves one pipeline run on: enters its stage if it may (CP-STAGE-LOCK), starts the next runOrder
    /// group or stage, or ends the run. [`Core::advance_pipeline`] also moves on the runs this frees.
    pub(crate) fn advance_run(&self, w: &mut World, pe_id: &str) {
        loop {
            let Some(pe) = w.pipeline_executions.get(pe_id) else {
                return;
            };
            match pe.status {
                ExecutionStatus::InProgress => {}
                ExecutionStatus::Stopping => {
                    // Stop and wait (CP-STOP): nothing new starts; the run is Stopped once no action of
                    // it is in progress any more.
                    let running = pe.actions.values().any(|l| {
                        w.executions
                            .get(l)
                            .is_some_and(|e| e.status == ExecutionStatus::InProgress)
                    });
                    if !running {
                        self.end_pipeline(w, pe_id, ExecutionStatus::Stopped);
                    }
                    return;
                }
                _ => return,
            }
            let stages = pe.stages.clone();
            let pipeline = pe.pipeline.clone();
            let Some(stage) = stages.get(pe.stage) else {
                self.end_pipeline(w, pe_id, ExecutionStatus::Succeeded);
                return;
            };
            if !pe.entered && !self.try_enter(w, pe_id) {
                return;
            }
            let Some(pe) = w.pipeline_executions.get(pe_id) else {
                return;
            };
            // The state of the current group, if one is running.
            if let Some(order) = pe.run_order {
                let statuses: Vec<ExecutionStatus> = stage
                    .actions
                    .iter()
                    .filter(|a| a.run_order == order)
                    .filter_map(|a| pe.actions.get(&(stage.name.clone(), a.name.clone())))
                    .filter_map(|l| w.executions.get(l).map(|e| e.status))
                    .collect();
                if statuses.contains(&ExecutionStatus::Failed) {
                    self.end_pipeline(w, pe_id, ExecutionStatus::Failed);
                    return;
                }
                if statuses.contains(&ExecutionStatus::InProgress) {
                    return;
                }
            }
            let next_order = stage
                .actions
                .iter()
                .map(|a| a.run_order)
                .filter(|o| pe.run_order.is_none_or(|cur| *o > cur))
                .min();
            let pe = w.pipeline_executions.get_mut(pe_id).expect("checked above");
            match next_order {
                None => {
                    // The stage is done: the run leaves it and comes to the next stage's boundary.
                    pe.stage += 1;
                    pe.run_order = None;
                    pe.entered = false;
                    continue;
                }
                Some(order) => {
                    pe.run_order = Some(order);
                    let group: Vec<ActionDecl> = stage
                        .actions
                        .iter()
                        .filter(|a| a.run_order == order)
                        .cloned()
                        .collect();
                    for a in group {
                        self.start_declared_action(w, pe_id, &pipeline, &stage.name, a);
                    }
                    // Loop: a group of AWS-owned actions has already finished.
                }
            }
        }
    }

    pub(crate) fn start_declared_action(
        &self,
        w: &mut World,
        pe_id: &str,
        pipeline: &str,
        stage: &str,
        a: ActionDecl,
    ) {
        let now = self.sim.clock.now();
        // An action that already ran in this pipeline run is being retried (CP-RETRY): a new action
        // execution, labelled after the first attempt (`e-1-retry-1`), with the same clientId.
        let earlier: Option<(String, u32, Option<String>)> = w
            .pipeline_executions
            .get(pe_id)
            .and_then(|pe| pe.previous.get(&(stage.to_string(), a.name.clone())))
            .and_then(|labels| {
                let first = labels.first()?.clone();
                let client = labels
                    .last()
                    .and_then(|l| w.executions.get(l))
                    .and_then(|e| e.client_id.clone());
                Some((first, labels.len() as u32 + 1, client))
            });
        let retry = earlier
            .as_ref()
            .map(|(first, attempt, _)| (first.clone(), *attempt));
        // A bare execution's run (the admin API's) gives its one job-worker action the label, clientId
        // and configuration the execution asked for (handed over, not copied); a retry takes the
        // configuration of the attempt before it.
        let bare = w
            .pipeline_executions
            .get_mut(pe_id)
            .and_then(|pe| pe.bare.as_mut())
            .filter(|_| a.action_type.owner.is_job_worker());
        let is_bare = bare.is_some();
        let unstarted = bare.filter(|b| !b.started).map(|b| {
            b.started = true;
            (
                (b.label.clone(), b.client_id.clone()),
                std::mem::take(&mut b.configuration),
            )
        });
        let (unstarted, configuration) = match (unstarted, &earlier) {
            (Some((who, configuration)), _) => (Some(who), configuration),
            (None, Some((first, _, _))) if is_bare => (
                None,
                w.pipeline_executions
                    .get(pe_id)
                    .and_then(|pe| pe.previous.get(&(stage.to_string(), a.name.clone())))
                    .and_then(|labels| labels.last())
                    .or(Some(first))
                    .and_then(|l| w.executions.get(l))
                    .map(|e| e.configuration.clone())
                    .unwrap_or_default(),
            ),
            (None, _) => (None, a.configuration.clone()),
        };
        let (label, client_id) = match (earlier, unstarted) {
            (Some((first, attempt, client)), _) => (w.retry_label(&first, attempt), client),
            (None, _) if !a.action_type.owner.is_job_worker() => {
                // An AWS-owned action (a Source stage) is no job worker's business: it takes none of
                // the `e-N` numbers.
                (
                    format!("{pipeline}/{stage}/{}#{}", a.name, w.next_seq()),
                    None,
                )
            }
            (None, Some(x)) => x,
            (None, None) => {
                let client = w
                    .action_types
                    .get(&a.action_type)
                    .and_then(|t| t.clients.keys().min().cloned());
                (w.next_execution_label(), client)
            }
        };
        let aws_id = w.new_uuid();
        let order = w.next_seq();
        let (input_artifacts, output_artifacts, encryption_key) =
            self.assign_artifacts(w, pe_id, &a, &aws_id);
        let mut exec = ActionExecution {
            label: label.clone(),
            aws_id,
            order,
            action_type: a.action_type.clone(),
            configuration,
            client_id,
            pipeline: pipeline.to_string(),
            stage: stage.to_string(),
            action: a.name.clone(),
            pipeline_execution_id: pe_id.to_string(),
            status: if a.action_type.owner.is_job_worker() {
                ExecutionStatus::InProgress
            } else {
                ExecutionStatus::Succeeded
            },
            started: now,
            updated: now,
            summary: None,
            percent_complete: None,
            external_id: None,
            external_id_at: None,
            error: None,
            output_variables: BTreeMap::new(),
            jobs: Vec::new(),
            action_timer: None,
            attempt: retry.as_ref().map_or(1, |r| r.1),
            retry_of: retry.map(|r| r.0),
            input_artifacts,
            output_artifacts,
            encryption_key,
        };
        if let Some(pe) = w.pipeline_executions.get_mut(pe_id) {
            pe.actions
                .insert((stage.to_string(), a.name.clone()), label.clone());
        }
        if a.action_type.owner.is_job_worker() {
            self.start_action(w, exec);
        } else {
            // An AWS-owned action runs at once: it reads and writes its artifacts, and succeeds or fails.
            // Only one that touched artifacts, or failed, is worth an event: a synthetic pipeline's bare
            // Source stage (thousands of them in a big run) is not.
            let outcome = self.run_aws_action(&exec);
            let noteworthy = outcome.is_err()
                || !exec.input_artifacts.is_empty()
                || !exec.output_artifacts.is_empty();
            let detail = match &outcome {
                Ok(()) => format!("{label} ({}) succeeded", a.action_type),
                Err((code, message)) => {
                    format!("{label} ({}) failed: {code}: {message}", a.action_type)
                }
            };
            if let Err(e) = outcome {
                exec.status = ExecutionStatus::Failed;
                exec.error = Some(e);
            }
            let status = exec.status;
            w.executions.insert(label.clone(), exec);
            if noteworthy {
                w.emit(
                    NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::AwsActionFinished)
                        .detail(detail)
                        .data(json!({"label": label, "pipeline": pipeline, "stage": stage, "action": a.name, "status": status.as_str()})),
                );
            }
        }
    }

    pub(crate) fn end_pipeline(&self, w: &mut World, pe_id: &str, status: ExecutionStatus) {
        let now = self.sim.clock.now();
        if let Some(pe) = w.pipeline_executions.get_mut(pe_id) {
            pe.status = status;
            pe.updated = now;
            let name = pe.pipeline.clone();
            w.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::PipelineExecutionFinished)
                    .detail(format!("pipeline {name} execution {pe_id} {status}"))
                    .data(json!({"pipeline": name, "pipelineExecutionId": pe_id, "status": status.as_str()})),
            );
        }
    }

    /// GetPipelineExecution.
    pub fn get_pipeline_execution(&self, name: &str, id: &str) -> Result<Value, ApiError> {
        self.with_world(|w| {
            if !w.pipelines.contains_key(name) {
                return Err(pipeline_not_found(name));
            }
            let pe = w.pipeline_executions.get(id).filter(|pe| pe.pipeline == name).ok_or_else(|| {
                ApiError::new(
                    "PipelineExecutionNotFoundException",
                    format!("Pipeline execution {id} of pipeline {name} was not found"),
                )
            })?;
            Ok(json!({"pipelineExecution": {
                "pipelineName": name, "pipelineVersion": pe.version, "pipelineExecutionId": pe.id,
                "status": pe.status.as_str(), "artifactRevisions": [], "executionMode": pe.mode.as_str(),
                "executionType": "STANDARD", "trigger": {"triggerType": "StartPipelineExecution"},
            }}))
        })
    }

    /// GetPipelineState: per stage, the latest run that entered it (a run waiting at its boundary has
    /// not) with the stage's status, the inbound transition's state, and per action its latest execution
    /// with status, summary, percentComplete, externalExecutionId, the filled Details link and errorDetails.
    pub fn get_pipeline_state(&self, name: &str) -> Result<Value, ApiError> {
        self.with_world(|w| {
            let p = w
                .pipelines
                .get(name)
                .ok_or_else(|| pipeline_not_found(name))?;
            let runs: Vec<&PipelineExecution> = w
                .runs_of(name)
                .iter()
                .rev()
                .filter_map(|id| w.pipeline_executions.get(id))
                .collect();
            let mut stages = Vec::new();
            for (index, st) in p.stages.iter().enumerate() {
                let mut actions = Vec::new();
                for a in &st.actions {
                    let mut state = json!({"actionName": a.name});
                    // The latest run that reached this action.
                    let exec = runs
                        .iter()
                        .find_map(|pe| pe.actions.get(&(st.name.clone(), a.name.clone())))
                        .and_then(|l| w.executions.get(l));
                    if let Some(t) = w.action_types.get(&a.action_type)
                        && let Some(tpl) = t.entity_url_template()
                    {
                        state["entityUrl"] = json!(t.fill_template(tpl, &a.configuration, None));
                    }
                    if let Some(e) = exec {
                        state["latestExecution"] = self.action_execution_view(w, e);
                    }
                    actions.push(state);
                }
                let mut stage = json!({"stageName": st.name, "actionStates": actions});
                if let Some(t) =
                    crate::stages::inbound_transition_state(self, w, name, index, &st.name)
                {
                    stage["inboundTransitionState"] = t;
                }
                // The latest run that entered this stage, by the run's own version of the pipeline.
                let entered = runs.iter().find_map(|pe| {
                    let i = pe.stages.iter().position(|s| s.name == st.name)?;
                    (i < pe.stage || (i == pe.stage && pe.entered)).then_some((pe, i))
                });
                if let Some((pe, i)) = entered {
                    let status = stage_status(w, pe, &pe.stages[i], i == pe.stage);
                    stage["latestExecution"] =
                        json!({"pipelineExecutionId": pe.id, "status": status});
                }
                stages.push(stage);
            }
            Ok(json!({
                "pipelineName": name,
                "pipelineVersion": p.version,
                "stageStates": stages,
                "created": p.created.epoch_seconds(),
                "updated": p.updated.epoch_seconds(),
            }))
        })
    }

    fn action_execution_view(&self, w: &World, e: &ActionExecution) -> Value {
        let mut v = json!({
            "actionExecutionId": e.aws_id,
            "status": e.status.as_str(),
            "lastStatusChange": e.updated.epoch_seconds(),
        });
        if let Some(s) = &e.summary {
            v["summary"] = json!(s);
        }
        if let Some(p) = e.percent_complete {
            v["percentComplete"] = json!(p);
        }
        if let Some(x) = &e.external_id {
            v["externalExecutionId"] = json!(x);
        }
        if let Some(u) = self.external_url(w, e) {
            v["externalExecutionUrl"] = json!(u);
        }
        if let Some((code, message)) = &e.error {
            v["errorDetails"] = json!({"code": code, "message": message});
        }
        v
    }

    /// ListActionExecutions, newest first, optionally for one pipeline run.
    pub fn list_action_executions(
        &self,
        name: &str,
        pipeline_execution_id: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.with_world(|w| {
            if !w.pipelines.contains_key(name) {
                return Err(pipeline_not_found(name));
            }
            // Runs of a deleted pipeline are gone, even if a pipeline of the same name was created since.
            let mut list: Vec<&ActionExecution> = w
                .executions
                .values()
                .filter(|e| e.pipeline == name)
                .filter(|e| w.pipeline_executions.contains_key(&e.pipeline_execution_id))
                .filter(|e| pipeline_execution_id.is_none_or(|id| e.pipeline_execution_id == id))
                .collect();
            list.sort_by_key(|e| std::cmp::Reverse(e.order));
            let details: Vec<Value> = list
                .into_iter()
                .map(|e| {
                    let mut result = json!({});
                    if let Some(x) = &e.external_id {
                        result["externalExecutionId"] = json!(x);
                    }
                    if let Some(s) = &e.summary {
                        result["externalExecutionSummary"] = json!(s);
                    }
                    if let Some(u) = self.external_url(w, e) {
                        result["externalExecutionUrl"] = json!(u);
                    }
                    if let Some((code, message)) = &e.error {
                        result["errorDetails"] = json!({"code": code, "message": message});
                    }
                    json!({
                        "pipelineExecutionId": e.pipeline_execution_id,
                        "actionExecutionId": e.aws_id,
                        "pipelineVersion": w.pipeline_executions.get(&e.pipeline_execution_id).map_or(1, |pe| pe.version),
                        "stageName": e.stage,
                        "actionName": e.action,
                        "startTime": e.started.epoch_seconds(),
                        "lastUpdateTime": e.updated.epoch_seconds(),
                        "status": e.status.as_str(),
                        "input": {"actionTypeId": e.action_type.to_json(), "configuration": masked_configuration(w, e)},
                        "output": {"executionResult": result, "outputVariables": e.output_variables},
                    })
                })
                .collect();
            Ok(json!({"actionExecutionDetails": details}))
        })
    }

    /// The admin view of one action execution, with its jobs and their history.
    pub fn execution_view(&self, label: &str) -> Option<Value> {
        let origin = self.sim.clock.origin();
        let stamp = move |t: SimTime| sim_core::format_offset(t.since(origin));
        // What workers wrote (a summary, a failure message) may repeat a secret: redact it here too.
        let mut view = self.with_world(|w| {
            let e = w.executions.get(label)?;
            let jobs: Vec<Value> = e
                .jobs
                .iter()
                .filter_map(|id| w.jobs.get(id))
                .map(|j| {
                    json!({
                        "id": j.id, "number": j.number, "status": j.status.as_str(),
                        "continuationToken": j.continuation_token,
                        "deadline": j.deadline.map(stamp),
                        "abandoned": j.abandoned.map(stamp),
                        "history": j.history.iter().map(|(t, s)| json!({"at": stamp(*t), "status": s.as_str()})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            Some(json!({
                "executionId": e.label,
                "actionExecutionId": e.aws_id,
                "actionType": e.action_type.to_string(),
                "pipelineName": e.pipeline,
                "pipelineExecutionId": e.pipeline_execution_id,
                "stageName": e.stage,
                "actionName": e.action,
                "configuration": masked_configuration(w, e),
                "status": e.status.as_str(),
                "started": stamp(e.started),
                "updated": stamp(e.updated),
                "summary": e.summary,
                "percentComplete": e.percent_complete,
                "externalExecutionId": e.external_id,
                "externalExecutionUrl": self.external_url(w, e),
                "detailsLinkAt": e.external_id_at.map(stamp),
                "errorDetails": e.error.as_ref().map(|(c, m)| json!({"code": c, "message": m})),
                "outputVariables": e.output_variables,
                "attempt": e.attempt,
                "retryOf": e.retry_of,
                "jobs": jobs,
            }))
        })?;
        self.sim.events.redact_value(&mut view);
        Some(view)
    }

    /// The status of an action execution (cheap: no view is built).
    ///
    /// A bare execution whose action has not started yet (its run waits at a stage boundary) is
    /// `InProgress`, and one whose run ended before it started (`Superseded`, `Stopped`) has the run's
    /// status.
    pub fn execution_status(&self, label: &str) -> Option<ExecutionStatus> {
        self.with_world(|w| {
            w.executions.get(label).map(|e| e.status).or_else(|| {
                w.bare_labels
                    .get(label)
                    .and_then(|pe| w.pipeline_executions.get(pe))
                    .map(|pe| match pe.status {
                        ExecutionStatus::Stopping => ExecutionStatus::InProgress,
                        s => s,
                    })
            })
        })
    }

    /// For a bare execution whose action never started because an earlier action of its run failed (a
    /// Source action without its object): that action's label and error `(code, message)`.
    pub fn earlier_failure(&self, label: &str) -> Option<(String, (String, String))> {
        self.with_world(|w| {
            let pe = w.pipeline_executions.get(w.bare_labels.get(label)?)?;
            pe.actions.values().find_map(|l| {
                let e = w.executions.get(l)?;
                (e.status == ExecutionStatus::Failed)
                    .then(|| Some((l.clone(), e.error.clone()?)))
                    .flatten()
            })
        })
    }

    /// Labels of every action execution, in label order.
    pub fn execution_labels(&self) -> Vec<String> {
        self.with_world(|w| w.executions.keys().cloned().collect())
    }
}

/// The status of stage `st` in run `pe` (the model's `StageExecutionStatus`); `current` says whether it
/// is the stage the run is in (or ended in), which a stop marks Stopping or Stopped (CP-STOP).
pub(crate) fn stage_status(
    w: &World,
    pe: &PipelineExecution,
    st: &StageDecl,
    current: bool,
) -> &'static str {
    if current {
        match pe.status {
            ExecutionStatus::Stopping => return "Stopping",
            ExecutionStatus::Stopped => return "Stopped",
            _ => {}
        }
    }
    let statuses: Vec<ExecutionStatus> = st
        .actions
        .iter()
        .filter_map(|a| pe.actions.get(&(st.name.clone(), a.name.clone())))
        .filter_map(|l| w.executions.get(l).map(|e| e.status))
        .collect();
    if statuses.contains(&ExecutionStatus::Failed) {
        "Failed"
    } else if statuses.contains(&ExecutionStatus::InProgress) || statuses.len() < st.actions.len() {
        "InProgress"
    } else {
        "Succeeded"
    }
}

pub(crate) fn pipeline_not_found(name: &str) -> ApiError {
    ApiError::new(
        "PipelineNotFoundException",
        format!("Account does not have a pipeline with name '{name}'"),
    )
}

/// What the admin views show of an execution's configuration: a property its type marks secret is
/// `****`, whatever its length (the event log redacts it too).
pub(crate) fn masked_configuration(
    w: &crate::state::World,
    e: &crate::state::ActionExecution,
) -> std::collections::BTreeMap<String, String> {
    let secret: Vec<&str> = w
        .action_types
        .get(&e.action_type)
        .map(|t| {
            t.properties
                .iter()
                .filter(|p| p.secret)
                .map(|p| p.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    e.configuration
        .iter()
        .map(|(k, v)| {
            let shown = if secret.contains(&k.as_str()) {
                "****".to_string()
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::engine::{Core, SuccessResult};
    use crate::settings::Settings;

    const KEY: &str = "AKIDUNIT";

    fn custom() -> ActionTypeId {
        "Build/Custom/Unit/1".parse().unwrap()
    }

    /// CreateCustomActionType's input for `version` with a secret `Token` and a queryable `Queue`.
    fn type_input(version: &str) -> Value {
        json!({"category": "Build", "provider": "Unit", "version": version,
        "configurationProperties": [
            {"name": "Queue", "required": true, "key": true, "secret": false, "queryable": true},
            {"name": "Token", "required": false, "key": false, "secret": true},
        ]})
    }

    fn action(name: &str, queue: &str, token: &str) -> Value {
        json!({"name": name, "actionTypeId": custom().to_json(), "runOrder": 1,
               "configuration": {"Queue": queue, "Token": token}})
    }

    fn source() -> Value {
        json!({"name": "Source", "actions": [{"name": "S", "actionTypeId":
            {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}, "configuration": {}}]})
    }

    fn decl(build: Value) -> Value {
        json!({"pipeline": {"name": "p", "stages": [source(), {"name": "Build", "actions": [build]}]}})
    }

    fn world() -> Arc<Core> {
        let core = Core::new(sim_core::Sim::manual(), Settings::default());
        core.create_custom_action_type(&type_input("1")).unwrap();
        core.create_pipeline(&decl(action("Make", "q1", "s3cret")))
            .unwrap();
        core
    }

    fn poll(core: &Core, queue: Option<&str>) -> Result<Vec<crate::engine::Dispatched>, ApiError> {
        core.poll(
            Some(KEY),
            Owner::Custom,
            &custom(),
            10,
            queue.map(|q| ("Queue", q)),
        )
    }

    #[test]
    fn a_pipeline_needs_two_stages_and_unique_names() {
        let core = world();
        let one = json!({"pipeline": {"name": "one", "stages": [{"name": "Build", "actions": [action("A", "q", "t")]}]}});
        let e = core.create_pipeline(&one).unwrap_err();
        assert_eq!(e.type_name, "InvalidStructureException");
        assert!(e.message.contains("at least 2 stages"), "{}", e.message);
        let twice = json!({"pipeline": {"name": "two", "stages": [source(), source()]}});
        assert_eq!(
            core.create_pipeline(&twice).unwrap_err().type_name,
            "InvalidStructureException"
        );
    }

    #[test]
    fn secrets_are_masked_except_in_the_job_calls_and_an_update_with_the_mask_keeps_them() {
        let core = world();
        let got = core.get_pipeline("p", None).unwrap();
        let conf = &got["pipeline"]["stages"][1]["actions"][0]["configuration"];
        assert_eq!(conf["Token"], SECRET_MASK);
        assert_eq!(conf["Queue"], "q1");
        assert_eq!(got["pipeline"]["executionMode"], "SUPERSEDED");
        assert_eq!(got["pipeline"]["pipelineType"], "V1");
        let pe = core.start_pipeline_execution("p").unwrap()["pipelineExecutionId"]
            .as_str()
            .unwrap()
            .to_string();
        let listed = core.list_action_executions("p", Some(&pe)).unwrap();
        assert_eq!(
            listed["actionExecutionDetails"][0]["input"]["configuration"]["Token"],
            SECRET_MASK
        );
        let state = core.get_pipeline_state("p").unwrap().to_string();
        assert!(!state.contains("s3cret"), "{state}");
        // The job calls hand the secret out in clear.
        let d = poll(&core, Some("q1")).unwrap().pop().unwrap();
        let job = core
            .with_world(|w| core.job_view(w, w.jobs.get(&d.job_id).unwrap(), Owner::Custom, None));
        assert_eq!(
            job["data"]["actionConfiguration"]["configuration"]["Token"],
            "s3cret"
        );
        // GetPipeline -> edit -> UpdatePipeline with the mask: the secret stays, the edit applies.
        let mut edited = got["pipeline"].clone();
        edited["stages"][1]["actions"][0]["configuration"]["Queue"] = json!("q2");
        let out = core.update_pipeline(&json!({"pipeline": edited})).unwrap();
        assert_eq!(out["pipeline"]["version"], 2);
        assert_eq!(
            out["pipeline"]["stages"][1]["actions"][0]["configuration"]["Token"],
            SECRET_MASK
        );
        let kept = core.with_world(|w| w.pipelines["p"].stages[1].actions[0].configuration.clone());
        assert_eq!(kept["Token"], "s3cret");
        assert_eq!(kept["Queue"], "q2");
        // A mask for an action that had no secret before is refused.
        let mut renamed = got["pipeline"].clone();
        renamed["stages"][1]["actions"][0]["name"] = json!("Other");
        let e = core
            .update_pipeline(&json!({"pipeline": renamed}))
            .unwrap_err();
        assert_eq!(e.type_name, "InvalidActionDeclarationException");
    }

    #[test]
    fn an_update_changes_the_next_run_not_the_running_one() {
        let core = world();
        let first = core.start_pipeline_execution("p").unwrap()["pipelineExecutionId"]
            .as_str()
            .unwrap()
            .to_string();
        let d = poll(&core, Some("q1")).unwrap().pop().unwrap();
        core.acknowledge(Some(KEY), Owner::Custom, &d.job_id, &d.nonce, None)
            .unwrap();
        core.update_pipeline(&decl(action("Make", "q2", "new")))
            .unwrap();
        assert_eq!(core.get_pipeline_state("p").unwrap()["pipelineVersion"], 2);
        // The running one keeps version 1: its action finishes with it.
        core.put_success(
            Some(KEY),
            Owner::Custom,
            &d.job_id,
            None,
            SuccessResult {
                percent_complete: Some(100),
                ..Default::default()
            },
        )
        .unwrap();
        let pe = core.get_pipeline_execution("p", &first).unwrap();
        assert_eq!(pe["pipelineExecution"]["pipelineVersion"], 1);
        assert_eq!(pe["pipelineExecution"]["status"], "Succeeded");
        core.start_pipeline_execution("p").unwrap();
        assert!(poll(&core, Some("q1")).unwrap().is_empty());
        assert_eq!(poll(&core, Some("q2")).unwrap().len(), 1);
        let e = core
            .update_pipeline(&json!({"pipeline": {"name": "nope", "stages": [source(), {"name": "Build", "actions": [action("Make", "q", "t")]}]}}))
            .unwrap_err();
        assert_eq!(e.type_name, "ValidationException");
    }

    #[test]
    fn delete_pipeline_abandons_its_runs_and_forgets_them() {
        let core = world();
        core.start_pipeline_execution("p").unwrap();
        let d = poll(&core, Some("q1")).unwrap().pop().unwrap();
        core.acknowledge(Some(KEY), Owner::Custom, &d.job_id, &d.nonce, None)
            .unwrap();
        core.delete_pipeline(None, "p").unwrap();
        assert_eq!(
            core.get_pipeline("p", None).unwrap_err().type_name,
            "PipelineNotFoundException"
        );
        let e = core
            .put_success(
                Some(KEY),
                Owner::Custom,
                &d.job_id,
                None,
                SuccessResult::default(),
            )
            .unwrap_err();
        assert_eq!(e.type_name, "InvalidJobStateException");
        // Again, or a pipeline that never existed: nothing to do.
        core.delete_pipeline(None, "p").unwrap();
        // A new pipeline of the same name starts with no history.
        core.create_pipeline(&decl(action("Make", "q1", "t")))
            .unwrap();
        let listed = core.list_action_executions("p", None).unwrap();
        assert_eq!(listed["actionExecutionDetails"], json!([]));
        let runs = core
            .list_pipeline_executions("p", None, None, None)
            .unwrap();
        assert_eq!(runs["pipelineExecutionSummaries"], json!([]));
    }

    #[test]
    fn a_deleted_custom_type_cannot_be_polled_nor_recreated_with_its_version() {
        let core = world();
        core.delete_custom_action_type(None, "Build", "Unit", "1")
            .unwrap();
        let e = poll(&core, Some("q1")).unwrap_err();
        assert_eq!(e.type_name, "ActionTypeNotFoundException");
        assert!(e.message.contains("deleted"), "{}", e.message);
        assert_eq!(core.list_action_types(None)["actionTypes"], json!([]));
        let e = core
            .create_pipeline(&json!({"pipeline": {"name": "q", "stages": [source(), {"name": "B", "actions": [action("A", "q", "t")]}]}}))
            .unwrap_err();
        assert_eq!(e.type_name, "InvalidActionDeclarationException");
        let mut changed = type_input("1");
        changed["configurationProperties"][1]["secret"] = json!(false);
        let e = core.create_custom_action_type(&changed).unwrap_err();
        assert_eq!(e.type_name, "ValidationException");
        assert!(e.message.contains("never used before"), "{}", e.message);
        // An identical declaration restores it.
        core.create_custom_action_type(&type_input("1")).unwrap();
        assert!(poll(&core, Some("q1")).is_ok());
        // Deleting what does not exist succeeds.
        core.delete_custom_action_type(None, "Build", "Nope", "9")
            .unwrap();
    }

    #[test]
    fn custom_action_types_are_limited_per_region() {
        let core = Core::new(
            sim_core::Sim::manual(),
            Settings {
                max_custom_action_types: 2,
                ..Settings::default()
            },
        );
        core.create_custom_action_type(&type_input("1")).unwrap();
        core.create_custom_action_type(&type_input("2")).unwrap();
        // The same type again is no new type.
        core.create_custom_action_type(&type_input("2")).unwrap();
        let e = core
            .create_custom_action_type(&type_input("3"))
            .unwrap_err();
        assert_eq!(e.type_name, "LimitExceededException");
        core.delete_custom_action_type(None, "Build", "Unit", "1")
            .unwrap();
        core.create_custom_action_type(&type_input("3")).unwrap();
    }

    #[test]
    fn query_param_is_required_and_queryable_values_follow_the_create_pipeline_rule() {
        let core = world();
        let e = poll(&core, None).unwrap_err();
        assert_eq!(e.type_name, "ValidationException");
        assert!(e.message.contains("Queue"), "{}", e.message);
        for bad in [
            "q".repeat(21),
            "has space".to_string(),
            "dot.ted".to_string(),
        ] {
            let e = core
                .update_pipeline(&decl(action("Make", &bad, "t")))
                .unwrap_err();
            assert_eq!(e.type_name, "InvalidActionDeclarationException", "{bad}");
            assert!(e.message.contains("Queue"), "{}", e.message);
        }
        core.update_pipeline(&decl(action("Make", &"q".repeat(20), "t")))
            .unwrap();
        core.update_pipeline(&decl(action("Make", "a_b-C9", "t")))
            .unwrap();
    }
}
