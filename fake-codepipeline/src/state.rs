//! The simulated service's data: action types, pipelines, action executions and jobs.
//!
//! Everything lives in one [`World`] behind one lock (see `engine.rs`); events produced while it is held
//! are queued in [`World::pending_events`] and recorded after the lock is released, so event listeners
//! (the scenario runner) may call back into the fake.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sim_core::{NewEvent, SimTime, TimerId};

use crate::settings::Timing;
use crate::types::{ActionTypeId, ExecutionMode, ExecutionStatus, JobStatus, PipelineType};

/// One configuration property of an action type.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigProperty {
    /// The property name.
    pub name: String,
    /// Whether every action must set it.
    pub required: bool,
    /// Whether it identifies the action's external resource.
    pub key: bool,
    /// Whether it is hidden from views (never placed in URLs).
    pub secret: bool,
    /// Whether a custom poll can filter on it.
    pub queryable: bool,
    /// Free text.
    pub description: Option<String>,
    /// String, Number or Boolean.
    pub kind: Option<String>,
}

/// A registered action type with its protocol settings.
#[derive(Clone, Debug)]
pub struct ActionType {
    /// Its identity.
    pub id: ActionTypeId,
    /// `ActionTypeSettings` as sent (URL templates).
    pub settings: Value,
    /// Configuration properties.
    pub properties: Vec<ConfigProperty>,
    /// `inputArtifactDetails` / `outputArtifactDetails` as sent.
    pub input_artifacts: Value,
    /// See `input_artifacts`.
    pub output_artifacts: Value,
    /// clientId -> clientToken pairs (third-party).
    pub clients: HashMap<String, String>,
    /// Protocol timings for this type.
    pub timing: Timing,
    /// Marked deleted by DeleteCustomActionType: polls for it fail, new pipelines cannot use it, and only
    /// an identical CreateCustomActionType restores it.
    pub deleted: bool,
}

impl ActionType {
    /// The `executionUrlTemplate`, if set.
    pub fn execution_url_template(&self) -> Option<&str> {
        self.settings
            .get("executionUrlTemplate")
            .and_then(Value::as_str)
    }

    /// The `entityUrlTemplate`, if set.
    pub fn entity_url_template(&self) -> Option<&str> {
        self.settings
            .get("entityUrlTemplate")
            .and_then(Value::as_str)
    }

    /// The queryable property, if the type has one.
    pub fn queryable_property(&self) -> Option<&ConfigProperty> {
        self.properties.iter().find(|p| p.queryable)
    }

    /// Fills `{Config:Name}` (required, non-secret properties only) and `{ExternalExecutionId}` (CP-DETAILS).
    pub fn fill_template(
        &self,
        template: &str,
        configuration: &BTreeMap<String, String>,
        external_id: Option<&str>,
    ) -> String {
        let mut out = template.to_string();
        for p in self.properties.iter().filter(|p| p.required && !p.secret) {
            if let Some(v) = configuration.get(&p.name) {
                out = out.replace(&format!("{{Config:{}}}", p.name), v);
            }
        }
        if let Some(id) = external_id {
            out = out.replace("{ExternalExecutionId}", id);
        }
        out
    }

    /// The wire form of `ActionType` (ListActionTypes, CreateCustomActionType).
    pub fn to_json(&self) -> Value {
        let props: Vec<Value> = self
            .properties
            .iter()
            .map(|p| {
                let mut v = json!({"name": p.name, "required": p.required, "key": p.key, "secret": p.secret});
                if p.queryable {
                    v["queryable"] = json!(true);
                }
                if let Some(d) = &p.description {
                    v["description"] = json!(d);
                }
                if let Some(t) = &p.kind {
                    v["type"] = json!(t);
                }
                v
            })
            .collect();
        json!({
            "id": self.id.to_json(),
            "settings": self.settings,
            "actionConfigurationProperties": props,
            "inputArtifactDetails": self.input_artifacts,
            "outputArtifactDetails": self.output_artifacts,
        })
    }
}

/// One action of a pipeline's stage, as declared.
#[derive(Clone, Debug)]
pub struct ActionDecl {
    /// The action name.
    pub name: String,
    /// Its type.
    pub action_type: ActionTypeId,
    /// Actions of a stage run in groups of equal runOrder, in order.
    pub run_order: i64,
    /// Its configuration.
    pub configuration: BTreeMap<String, String>,
    /// The names of the artifacts it reads (`inputArtifacts`), each made by an earlier action.
    pub input_artifacts: Vec<String>,
    /// The names of the artifacts it makes (`outputArtifacts`).
    pub output_artifacts: Vec<String>,
}

/// Where an artifact of a pipeline run is: its name in the declaration and its object in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactRef {
    /// The artifact's name (`SourceArtifact`).
    pub name: String,
    /// The pipeline's artifact bucket.
    pub bucket: String,
    /// Unique per action execution: `{pipeline}/{artifact}/{random}`, as AWS names them.
    pub key: String,
}

/// A pipeline's `artifactStore`: its bucket, and its KMS key when it has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArtifactStoreDecl {
    /// `location`.
    pub bucket: String,
    /// `encryptionKey.id`.
    pub encryption_key: Option<String>,
}

/// The temporary credentials a job carries for its pipeline's artifact bucket (`artifactCredentials`):
/// the store takes them only for that bucket and only while the job can still be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactCredentials {
    /// `ASIA...`.
    pub access_key: String,
    /// The secret access key.
    pub secret: String,
    /// The session token (`x-amz-security-token`).
    pub session_token: String,
}

/// A stage of a pipeline.
#[derive(Clone, Debug)]
pub struct StageDecl {
    /// The stage name.
    pub name: String,
    /// Its actions.
    pub actions: Vec<ActionDecl>,
}

/// A pipeline: its declaration as sent, and the parsed stages.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The name.
    pub name: String,
    /// Bumped on update.
    pub version: i64,
    /// The declaration as sent (returned by GetPipeline, with secrets masked).
    pub declaration: Value,
    /// The declarations of the earlier versions, by version (GetPipeline with `version`).
    pub earlier: BTreeMap<i64, Value>,
    /// Parsed stages of the current version (a run keeps the stages of the version it started with).
    pub stages: Arc<Vec<StageDecl>>,
    /// How the current version handles several runs (CP-STAGE-LOCK).
    pub mode: ExecutionMode,
    /// `V1` or `V2`.
    pub pipeline_type: PipelineType,
    /// When it was created.
    pub created: SimTime,
    /// When it was last updated (UpdatePipeline).
    pub updated: SimTime,
    /// Made by the admin API for a bare action execution.
    pub synthetic: bool,
    /// Stage name -> its inbound transition, while disabled (EnableStageTransition removes it).
    pub disabled_transitions: BTreeMap<String, DisabledTransition>,
    /// Its `artifactStore` (of the current version).
    pub artifact_store: ArtifactStoreDecl,
}

/// A disabled inbound transition of a stage (DisableStageTransition).
#[derive(Clone, Debug, PartialEq)]
pub struct DisabledTransition {
    /// The caller's reason (`disabledReason`).
    pub reason: String,
    /// Who disabled it (the access key, when signed).
    pub by: Option<String>,
    /// When.
    pub at: SimTime,
}

/// One run of a pipeline.
#[derive(Clone, Debug)]
pub struct PipelineExecution {
    /// `pipelineExecutionId` (a UUID).
    pub id: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The pipeline version it runs.
    pub version: i64,
    /// The stages of that version (an update does not change a run in progress).
    pub stages: Arc<Vec<StageDecl>>,
    /// The execution mode of that version (CP-STAGE-LOCK).
    pub mode: ExecutionMode,
    /// Whether the run has entered `stage` (holds it); false while it waits at the stage's boundary.
    pub entered: bool,
    /// Whether it waits at the boundary of `stage` (and has said so in the event log).
    pub waiting: bool,
    /// Overall status.
    pub status: ExecutionStatus,
    /// When it started.
    pub started: SimTime,
    /// Last status change.
    pub updated: SimTime,
    /// The stage now running (index into the pipeline's stages).
    pub stage: usize,
    /// The runOrder group now running within the stage.
    pub run_order: Option<i64>,
    /// (stage, action) -> label of the action's latest execution in this run (a retry replaces it).
    pub actions: BTreeMap<(String, String), String>,
    /// (stage, action) -> labels of the action's earlier executions in this run, oldest first: the ones a
    /// retry replaced (CP-RETRY).
    pub previous: BTreeMap<(String, String), Vec<String>>,
    /// The last StopPipelineExecution accepted for this run (cleared by a retry).
    pub stop: Option<StopRequest>,
    /// The bare execution (admin API) this run of a synthetic pipeline is for.
    pub bare: Option<BareRun>,
    /// The artifact store of the version it runs.
    pub artifact_store: ArtifactStoreDecl,
    /// Artifact name -> where the action that makes it writes it (known from that action's start).
    pub artifacts: BTreeMap<String, ArtifactRef>,
}

/// A bare action execution started through the admin API, carried by its pipeline run until the run's
/// job-worker action starts: a run that waits at a stage boundary may be superseded before then.
#[derive(Clone, Debug, PartialEq)]
pub struct BareRun {
    /// The label its action execution gets (`e-1`).
    pub label: String,
    /// The clientId its third-party jobs carry.
    pub client_id: Option<String>,
    /// Its action configuration: each run of a shared synthetic pipeline has its own, as variables
    /// resolved per run would give it. Handed to the action execution when it starts (empty after).
    pub configuration: BTreeMap<String, String>,
    /// Whether its action execution has started (under `label`).
    pub started: bool,
}

/// A StopPipelineExecution request that was accepted (CP-STOP).
#[derive(Clone, Debug, PartialEq)]
pub struct StopRequest {
    /// Stop and abandon (true) or stop and wait (false).
    pub abandon: bool,
    /// The caller's reason, if given (`stopTrigger.reason`).
    pub reason: Option<String>,
    /// When it was accepted.
    pub at: SimTime,
}

/// One action execution: all the jobs of one action in one pipeline run.
#[derive(Clone, Debug)]
pub struct ActionExecution {
    /// The label events and the admin API use (`e-1`).
    pub label: String,
    /// `actionExecutionId` (a UUID).
    pub aws_id: String,
    /// Creation order across all executions.
    pub order: u64,
    /// Its action type.
    pub action_type: ActionTypeId,
    /// The action's configuration.
    pub configuration: BTreeMap<String, String>,
    /// The clientId its third-party jobs carry.
    pub client_id: Option<String>,
    /// Pipeline, stage and action names.
    pub pipeline: String,
    /// See `pipeline`.
    pub stage: String,
    /// See `pipeline`.
    pub action: String,
    /// The pipeline run it belongs to.
    pub pipeline_execution_id: String,
    /// Its status.
    pub status: ExecutionStatus,
    /// When it started.
    pub started: SimTime,
    /// Last change of anything shown in GetPipelineState.
    pub updated: SimTime,
    /// Last non-empty summary.
    pub summary: Option<String>,
    /// Last reported progress.
    pub percent_complete: Option<i64>,
    /// Last non-empty externalExecutionId.
    pub external_id: Option<String>,
    /// When the first externalExecutionId arrived (for AG-LINK-EARLY).
    pub external_id_at: Option<SimTime>,
    /// `errorDetails` {code, message} once failed.
    pub error: Option<(String, String)>,
    /// Output variables of the final success.
    pub output_variables: BTreeMap<String, String>,
    /// Its jobs, in order.
    pub jobs: Vec<String>,
    /// The action-timeout timer.
    pub action_timer: Option<TimerId>,
    /// 1 for an action's first execution in a pipeline run, 2 for its first retry, ... (CP-RETRY).
    pub attempt: u32,
    /// For a retry: the label of the action's first execution in the run.
    pub retry_of: Option<String>,
    /// The artifacts it reads, where they are.
    pub input_artifacts: Vec<ArtifactRef>,
    /// The artifacts it must write, where.
    pub output_artifacts: Vec<ArtifactRef>,
    /// The pipeline's KMS key, handed to its jobs as `encryptionKey`.
    pub encryption_key: Option<String>,
}

/// One job.
#[derive(Clone, Debug)]
pub struct Job {
    /// Job id (a lowercase UUID).
    pub id: String,
    /// 1 for the first job of its execution, then 2, 3, ...
    pub number: usize,
    /// Label of its action execution.
    pub execution: String,
    /// Its action type.
    pub action_type: ActionTypeId,
    /// Its status.
    pub status: JobStatus,
    /// The token it carries (`data.continuationToken`), for a continuation job.
    pub continuation_token: Option<String>,
    /// The current nonce, once dispatched.
    pub nonce: Option<String>,
    /// When it was created.
    pub created: SimTime,
    /// When it was queued (its deadline counts from here).
    pub queued: Option<SimTime>,
    /// `queued + job timeout`.
    pub deadline: Option<SimTime>,
    /// Access key of the last poller it was dispatched to.
    pub dispatched_to: Option<String>,
    /// The nonce of each poller's latest dispatch: GetThirdPartyJobDetails tells a worker the nonce of
    /// the dispatch it received, so of two racing workers only the latest can acknowledge.
    pub dispatch_nonces: HashMap<String, String>,
    /// When and by whom it was acknowledged.
    pub acknowledged: Option<(SimTime, Option<String>)>,
    /// Its status changes.
    pub history: Vec<(SimTime, JobStatus)>,
    /// Position in the pollable queue while offered.
    pub queue_seq: Option<u64>,
    /// The deadline timer.
    pub deadline_timer: Option<TimerId>,
    /// The ack-window timer of the current dispatch.
    pub lease_timer: Option<TimerId>,
    /// When its action execution was abandoned by a stop, if it was (CP-STOP, CP-ABANDONED). The job
    /// is then Failed: the model's `JobStatus` has no Abandoned.
    pub abandoned: Option<SimTime>,
    /// The result it took, as compared with a repeat of it (CP-REPEAT).
    pub answer: Option<Value>,
    /// Its temporary credentials for the artifact bucket.
    pub artifact_credentials: ArtifactCredentials,
}

impl Job {
    /// Moves to `status` at `now`, keeping the history.
    pub fn set_status(&mut self, status: JobStatus, now: SimTime) {
        self.status = status;
        self.history.push((now, status));
    }
}

/// An injected fault for one operation (or all): a share of the matching requests is refused before any
/// state change (`throttle`, `server-error`), or applied and then answered with a dropped connection
/// (`lost-response`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// The operation it applies to (`PollForJobs`), or `*` for every operation.
    #[serde(default = "any_operation")]
    pub operation: String,
    /// `throttle` (400 ThrottlingException), `server-error` (HTTP `status`, default 500) or
    /// `lost-response` (the call is applied; its connection is closed before the response).
    pub kind: FaultKind,
    /// Share of matching requests refused, 0..1.
    pub rate: f64,
    /// HTTP status for `server-error` (500, 502, 503 or 504).
    #[serde(default)]
    pub status: Option<u16>,
    /// The most requests it hits; then it is spent and removed. `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

fn any_operation() -> String {
    "*".to_string()
}

/// What an injected fault answers.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// 400 `ThrottlingException` (the SDKs retry it with backoff).
    Throttle,
    /// 5xx `InternalFailure` / `ServiceUnavailable`.
    ServerError,
    /// The request is applied, then its connection is closed before any byte of the response: the client
    /// cannot know whether it was applied (its SDK retries it).
    LostResponse,
}

/// Everything the fake knows. Private to the fake: others read it through [`crate::view::WorldView`].
pub(crate) struct World {
    /// Seeded randomness: job ids, nonces, faults.
    pub rng: StdRng,
    /// Registered action types.
    pub action_types: BTreeMap<ActionTypeId, ActionType>,
    /// Pipelines by name.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Pipeline runs by id.
    pub pipeline_executions: HashMap<String, PipelineExecution>,
    /// Pipeline run ids in start order.
    pub pipeline_execution_order: Vec<String>,
    /// Pipeline name -> its runs' ids, oldest first (what the stage locks look at: per pipeline, so that
    /// starting a run does not scan every run of every pipeline).
    pub runs_by_pipeline: HashMap<String, Vec<String>>,
    /// Action executions by label.
    pub executions: BTreeMap<String, ActionExecution>,
    /// Jobs by id.
    pub jobs: HashMap<String, Job>,
    /// Jobs offered to polls, per action type, in queue order.
    pub pollable: BTreeMap<ActionTypeId, BTreeMap<u64, String>>,
    /// Injected faults.
    pub faults: Vec<FaultRule>,
    /// Events to record once the lock is released.
    pub pending_events: Vec<NewEvent>,
    /// Label of every bare execution -> the pipeline run it belongs to (labels are unique among these and
    /// the action executions, including a run's whose action has not started).
    pub bare_labels: HashMap<String, String>,
    /// A job's temporary artifact access key -> the job's id.
    pub artifact_keys: HashMap<String, String>,
    next_seq: u64,
    next_execution: u64,
}

impl World {
    /// An empty world with randomness from `seed`.
    pub fn new(seed: u64) -> Self {
        World {
            rng: StdRng::seed_from_u64(seed),
            action_types: BTreeMap::new(),
            pipelines: BTreeMap::new(),
            pipeline_executions: HashMap::new(),
            pipeline_execution_order: Vec::new(),
            runs_by_pipeline: HashMap::new(),
            executions: BTreeMap::new(),
            jobs: HashMap::new(),
            pollable: BTreeMap::new(),
            faults: Vec::new(),
            pending_events: Vec::new(),
            bare_labels: HashMap::new(),
            artifact_keys: HashMap::new(),
            next_seq: 0,
            next_execution: 0,
        }
    }

    /// Queues an event for recording after the lock is released.
    pub fn emit(&mut self, event: NewEvent) {
        self.pending_events.push(event);
    }

    /// A lowercase UUID from the seeded generator.
    pub fn new_uuid(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// Mints a job's artifact credentials: HMACs of its id under `key` (the fake's own random key), so
    /// they take nothing from the seeded randomness and cannot be guessed from the id.
    pub fn mint_artifact_credentials(
        &mut self,
        key: &[u8; 32],
        job_id: &str,
    ) -> ArtifactCredentials {
        use hmac::{KeyInit, Mac};
        let mac = |what: &str| {
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
            m.update(what.as_bytes());
            m.update(job_id.as_bytes());
            m.finalize().into_bytes()
        };
        const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let access: String = mac("access:")
            .iter()
            .take(16)
            .map(|b| B32[(*b % 32) as usize] as char)
            .collect();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let c = ArtifactCredentials {
            access_key: format!("ASIA{access}"),
            secret: hex(&mac("secret:")[..20]),
            session_token: format!("sim-session-{}", hex(&mac("token:"))),
        };
        self.artifact_keys
            .insert(c.access_key.clone(), job_id.to_string());
        c
    }

    /// A fresh nonce: a seeded random number as text, as AWS's examples show (`"3"`).
    pub fn new_nonce(&mut self) -> String {
        self.rng.random_range(1..1_000_000_000u64).to_string()
    }

    /// The next queue position.
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The ids of `pipeline`'s runs, oldest first.
    pub fn runs_of(&self, pipeline: &str) -> &[String] {
        self.runs_by_pipeline
            .get(pipeline)
            .map_or(&[], Vec::as_slice)
    }

    /// The next free execution label (`e-1`, `e-2`, ...).
    pub fn next_execution_label(&mut self) -> String {
        loop {
            self.next_execution += 1;
            let label = format!("e-{}", self.next_execution);
            if !self.executions.contains_key(&label) && !self.bare_labels.contains_key(&label) {
                return label;
            }
        }
    }

    /// A free label for attempt `attempt` (2 or more) of the action execution first labelled `first`:
    /// `e-1-retry-1` for the second attempt of `e-1`, ...
    pub fn retry_label(&self, first: &str, attempt: u32) -> String {
        let mut n = attempt.saturating_sub(1).max(1);
        loop {
            let label = format!("{first}-retry-{n}");
            if !self.executions.contains_key(&label) {
                return label;
            }
            n += 1;
        }
    }

    /// Removes a job from the pollable queue, if it is there.
    pub fn unqueue(&mut self, job_id: &str) {
        let Some(job) = self.jobs.get_mut(job_id) else {
            return;
        };
        if let Some(seq) = job.queue_seq.take()
            && let Some(q) = self.pollable.get_mut(&job.action_type)
        {
            q.remove(&seq);
        }
    }

    /// Puts a job at the back of its type's pollable queue.
    pub fn enqueue(&mut self, job_id: &str) {
        let seq = self.next_seq();
        let Some(job) = self.jobs.get_mut(job_id) else {
            return;
        };
        if let Some(old) = job.queue_seq.replace(seq)
            && let Some(q) = self.pollable.get_mut(&job.action_type)
        {
            q.remove(&old);
        }
        self.pollable
            .entry(job.action_type.clone())
            .or_default()
            .insert(seq, job_id.to_string());
    }

    /// The injected fault that hits a request for `operation`, if one does (the first rule that matches
    /// it draws; a rule with a `count` is removed once it has hit that many requests).
    pub fn fault_for(&mut self, operation: &str) -> Option<FaultRule> {
        let at = self
            .faults
            .iter()
            .position(|f| f.operation == "*" || f.operation == operation)?;
        if self.rng.random::<f64>() >= self.faults[at].rate {
            return None;
        }
        let rule = self.faults[at].clone();
        if let Some(left) = self.faults[at].count.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.faults.remove(at);
            }
        }
        Some(rule)
    }
}
