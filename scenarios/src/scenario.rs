//! The scenario file format (`scenarios/*.toml`), parsed into types when the file loads: durations,
//! offsets, event names, rule ids, step and fault kinds are checked there, with the file, the line the
//! TOML parser gives and what was expected. Nothing is re-parsed later.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use fake_codepipeline::{ActionTypeId, FaultKind, FaultRule, FinalOn};
use serde::{Deserialize, Deserializer};
use sim_core::{EventName, Rule, SimDuration, SimOffset};

/// A scenario as written, with defaults applied.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name (the file's stem, by convention).
    pub name: String,
    /// One sentence: what it proves.
    #[serde(default)]
    pub summary: String,
    /// `apica` (needs an Apica-style agent) or `protocol` (any job agent).
    #[serde(default = "default_tier")]
    pub tier: Tier,
    /// Fixes job ids, nonces and every random choice.
    #[serde(default)]
    pub seed: u64,
    /// The fake CodePipeline's settings (simulated time).
    #[serde(default)]
    pub world: WorldSection,
    /// The runner's own settings (real time).
    #[serde(default)]
    pub harness: HarnessSection,
    /// The action type the agent polls for.
    #[serde(default)]
    pub action_type: ActionTypeSection,
    /// The load-test backend.
    #[serde(default)]
    pub backend: BackendSection,
    /// The source the pipelines' Source action reads (artifacts tier).
    #[serde(default)]
    pub source: SourceSection,
    /// Action executions started at t = 0.
    #[serde(default)]
    pub executions: Vec<ExecutionSection>,
    /// Timed or event-triggered steps.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// What must have happened for the run to test what the scenario is about.
    #[serde(default)]
    pub premise: Premise,
    /// What must hold at the end.
    #[serde(default)]
    pub expect: Expect,
}

/// `[premise]`: what a run must have exercised to say anything. Besides these keys, every step that is
/// not `optional` must run while an execution is still in progress. A run whose premise did not happen is
/// *inconclusive*, not passed: a worker whose work ends in three minutes has not been through a redeploy
/// at forty.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Premise {
    /// Every execution takes at least this many jobs (its work outlives the first job).
    #[serde(default)]
    pub min_jobs: Option<NonZeroUsize>,
    /// Every execution runs at least this long, in simulated time, from its start to its end.
    #[serde(default)]
    pub min_duration: Option<SimDuration>,
}

fn default_tier() -> Tier {
    Tier::Apica
}

/// Which agents a scenario applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Needs an agent that drives the Apica-style backend.
    Apica,
    /// Any job agent: CP-*, AG-LINK-EARLY, AG-REDEPLOY, AG-RACE, AG-START, AG-NO-TIMEOUT.
    Protocol,
    /// A build-type agent that reads its input artifact and writes its output artifact (AG-OUTPUT-ARTIFACT).
    Artifacts,
}

impl Tier {
    /// Its name in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Apica => "apica",
            Tier::Protocol => "protocol",
            Tier::Artifacts => "artifacts",
        }
    }
}

impl FromStr for Tier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Tier::Apica, Tier::Protocol, Tier::Artifacts]
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("`{s}` is not a tier: `apica`, `protocol` or `artifacts`"))
    }
}

/// `[source]`: what the Source action of the scenario's pipelines reads (when the action type takes an
/// input artifact). The runner zips the files and uploads the zip to `s3://sim-sources/source.zip`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// Path in the zip -> its text.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Also a file of this many pseudo-random bytes (seeded), `blob.bin`: a large artifact.
    #[serde(default)]
    pub blob_bytes: Option<u64>,
    /// Upload the zip (default). `false` leaves the Source action nothing to read: it fails.
    #[serde(default = "yes")]
    pub upload: bool,
}

fn yes() -> bool {
    true
}

impl Default for SourceSection {
    fn default() -> Self {
        SourceSection {
            files: BTreeMap::new(),
            blob_bytes: None,
            upload: true,
        }
    }
}

/// Deserialises any `T: FromStr` from its text, with `T`'s own message on error.
fn from_text<'de, D: Deserializer<'de>, T: FromStr<Err: Display>>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn secs(n: u64) -> SimDuration {
    SimDuration::new(Duration::from_secs(n))
}

/// `[world]`: the fake CodePipeline's protocol settings, durations as people write them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorldSection {
    /// CP-TIMEOUT.
    pub job_timeout: SimDuration,
    /// CP-LEASE; `0s` makes replicas race.
    pub ack_window: SimDuration,
    /// CP-CONTINUE (at least 1 s).
    pub continuation_delay: SimDuration,
    /// CP-ACTION-TIMEOUT.
    pub action_timeout: SimDuration,
    /// `progress-100` or `no-token` (CP-FINAL-100).
    #[serde(deserialize_with = "from_text")]
    pub final_on: FinalOn,
    /// `queued` or `acknowledged`: from when the job timeout counts (CP-TIMEOUT; inferred).
    #[serde(deserialize_with = "from_text")]
    pub job_timeout_from: fake_codepipeline::JobTimeoutFrom,
    /// `action-execution` or `job`: what the action timeout bounds (CP-ACTION-TIMEOUT; inferred).
    #[serde(deserialize_with = "from_text")]
    pub action_timeout_per: fake_codepipeline::ActionTimeoutPer,
    /// The KMS key id of the pipelines' artifact store: jobs carry it as `encryptionKey`, and uploads must
    /// ask for SSE-KMS (AG-ARTIFACT-KMS).
    pub encryption_key: Option<String>,
    /// Uploads must also name that key (AG-ARTIFACT-KMS; inferred).
    pub require_kms_key_id: bool,
}

impl Default for WorldSection {
    fn default() -> Self {
        WorldSection {
            job_timeout: secs(3600),
            ack_window: secs(300),
            continuation_delay: secs(30),
            action_timeout: secs(86_400),
            final_on: FinalOn::Progress100,
            job_timeout_from: Default::default(),
            action_timeout_per: Default::default(),
            encryption_key: None,
            require_kms_key_id: false,
        }
    }
}

/// `[harness]`: real-time bounds of the runner.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HarnessSection {
    /// Real time a replica may hold a job before the clock moves on without it.
    pub answer_budget: SimDuration,
    /// Real time before a stuck run fails as HARNESS-STALL.
    pub watchdog: SimDuration,
    /// AG-BACKOFF: the most calls per second a replica may have refused by throttling, over any 5 s window.
    pub backoff_limit: f64,
    /// Simulated time after the last execution ends that the run goes on (to catch late mistakes).
    pub tail: SimDuration,
    /// AG-START: real time a started replica has to make its first request.
    pub start_grace: SimDuration,
}

impl Default for HarnessSection {
    fn default() -> Self {
        HarnessSection {
            answer_budget: secs(5),
            watchdog: secs(120),
            backoff_limit: 20.0,
            tail: secs(60),
            start_grace: secs(30),
        }
    }
}

/// `[action_type]`: what the agent under test polls for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionTypeSection {
    /// `Category/Owner/Provider/Version`.
    #[serde(deserialize_with = "from_text")]
    pub id: ActionTypeId,
    /// `{backend}` is the fake backend's URL; `{ExternalExecutionId}` and `{Config:Name}` are AWS's.
    pub execution_url_template: String,
    /// clientId -> clientToken (third-party).
    pub clients: BTreeMap<String, String>,
    /// Configuration properties; defaults to the Apica action's (PresetName, RunnableFile, ApiToken).
    pub properties: Option<Vec<PropertySection>>,
    /// The token the agent is told (JOB_CLIENT_TOKENS_FILE) for a clientId, when it differs from the real
    /// one (the `wrong-client-token` scenario).
    pub agent_clients: Option<BTreeMap<String, String>>,
    /// Input artifacts each action reads: 0 or 1 (the Source stage's artifact).
    pub input_artifacts: u8,
    /// Output artifacts each action must write: 0 or 1 (read by a Deploy stage).
    pub output_artifacts: u8,
}

impl Default for ActionTypeSection {
    fn default() -> Self {
        ActionTypeSection {
            id: ActionTypeId {
                category: "Test".into(),
                owner: fake_codepipeline::Owner::ThirdParty,
                provider: "ApicaLoadtest".into(),
                version: "1".into(),
            },
            execution_url_template: "{backend}/jobs/{ExternalExecutionId}".into(),
            clients: BTreeMap::new(),
            properties: None,
            agent_clients: None,
            input_artifacts: 0,
            output_artifacts: 0,
        }
    }
}

/// One configuration property of the action type.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PropertySection {
    /// Its name.
    pub name: String,
    /// Required in every action.
    #[serde(default)]
    pub required: bool,
    /// Identifies the external resource.
    #[serde(default)]
    pub key: bool,
    /// Hidden.
    #[serde(default)]
    pub secret: bool,
    /// Custom polls may filter on it.
    #[serde(default)]
    pub queryable: bool,
}

/// `[backend]`: presets and faults of the fake Apica backend.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    /// Presets the executions use.
    #[serde(default)]
    pub presets: Vec<fake_apica::PresetSpec>,
    /// Faults active from the start (windows written as offsets: `from = "+00:10:00"`, `for = "10m"`).
    #[serde(default)]
    pub faults: Vec<fake_apica::FaultSpec>,
}

/// `[[executions]]`: action executions started at t = 0 (or by a `start-executions` step).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionSection {
    /// Its label (`e-1`); with `count`, a prefix (`m` gives `m-1`..`m-N`).
    pub id: String,
    /// Start this many alike (presets taken round-robin from `presets`).
    #[serde(default)]
    pub count: Option<NonZeroUsize>,
    /// With `count`: the presets to cycle through.
    #[serde(default)]
    pub presets: Vec<String>,
    /// The third-party clientId (defaults to the only one).
    #[serde(default)]
    pub client: Option<String>,
    /// The action configuration; `RunnableFile` is made unique per execution.
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    /// A pipeline shared with the other executions that name it: each execution is a new run of it, and
    /// its stage holds one run at a time as its execution mode says (CP-STAGE-LOCK). Without it each
    /// execution has a pipeline of its own.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// The shared pipeline's execution mode: `SUPERSEDED` (the default), `QUEUED` or `PARALLEL`.
    #[serde(default, deserialize_with = "execution_mode")]
    pub execution_mode: Option<fake_codepipeline::ExecutionMode>,
}

fn execution_mode<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<fake_codepipeline::ExecutionMode>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

impl ExecutionSection {
    /// The labels this section starts (`e-1`, or `m-1`..`m-N` with `count`).
    pub fn labels(&self) -> Vec<String> {
        match self.count {
            None => vec![self.id.clone()],
            Some(n) => (1..=n.get()).map(|i| format!("{}-{i}", self.id)).collect(),
        }
    }
}

/// `[[steps]]`: something the driver does at a simulated time or on an event.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    /// When it happens.
    pub when: When,
    /// What it does.
    pub action: Action,
    /// Whether the run may end without it (by default a step must run while an execution is still in
    /// progress, or the run is inconclusive).
    pub optional: bool,
}

/// When a step happens.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    /// At a simulated offset from the origin (`at = "40m"`, `at = "+01:00:00"`).
    At(SimOffset),
    /// On the `nth` event named `on`, counting only events at or after `after`.
    On {
        /// `source.kind`.
        event: EventName,
        /// Events before this offset are not counted.
        after: Option<SimOffset>,
        /// The n-th matching event (from 1).
        nth: NonZeroUsize,
    },
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum Action {
    /// Start the agent (`replicas` of it).
    StartAgent {
        /// How many replicas.
        replicas: NonZeroUsize,
    },
    /// SIGTERM every replica, wait for it (10 s real at most, then SIGKILL and AG-REDEPLOY), start anew.
    Redeploy,
    /// SIGKILL every replica; restart as many after `restart_after` (simulated) if given.
    Crash {
        /// When to start them again.
        restart_after: Option<SimDuration>,
    },
    /// Inject a CodePipeline fault.
    CpFaults(FaultRule),
    /// Remove every CodePipeline fault.
    ClearCpFaults,
    /// Add a backend fault.
    BackendFault(fake_apica::FaultSpec),
    /// Start more executions.
    StartExecutions(Vec<ExecutionSection>),
    /// StopPipelineExecution for the pipeline execution that runs `execution` (CP-STOP).
    StopExecution {
        /// The execution's label.
        execution: String,
        /// Abandon its in-progress action (`true`) or let it finish (`false`, stop and wait).
        abandon: bool,
        /// The reason given.
        reason: Option<String>,
    },
    /// RetryStageExecution for the stage of `execution` (CP-RETRY): each action retried runs again as a
    /// new action execution labelled `<execution>-retry-<n>`.
    RetryStage {
        /// The execution's label.
        execution: String,
        /// `FAILED_ACTIONS` (default) or `ALL_ACTIONS`.
        mode: fake_codepipeline::RetryMode,
    },
}

impl Step {
    /// The step in words, for messages: `the redeploy at +00:40:00`, `the crash on cp.result_applied
    /// (after +00:30:00)`.
    pub fn describe(&self) -> String {
        let kind = self.action.kind().name();
        match &self.when {
            When::At(at) => format!("the {kind} at {}", sim_core::format_offset(at.get())),
            When::On { event, after, nth } => {
                let nth = if nth.get() == 1 {
                    String::new()
                } else {
                    format!(" #{nth}")
                };
                let after = after
                    .map(|a| format!(" after {}", sim_core::format_offset(a.get())))
                    .unwrap_or_default();
                format!("the {kind} on {event}{nth}{after}")
            }
        }
    }
}

impl Action {
    /// The step kind as written in `do`.
    pub fn kind(&self) -> StepKind {
        match self {
            Action::StartAgent { .. } => StepKind::StartAgent,
            Action::Redeploy => StepKind::Redeploy,
            Action::Crash { .. } => StepKind::Crash,
            Action::CpFaults(_) => StepKind::CpFaults,
            Action::ClearCpFaults => StepKind::ClearCpFaults,
            Action::BackendFault(_) => StepKind::BackendFault,
            Action::StartExecutions(_) => StepKind::StartExecutions,
            Action::StopExecution { .. } => StepKind::StopExecution,
            Action::RetryStage { .. } => StepKind::RetryStage,
        }
    }

    /// Whether it acts on the agent's processes (the agent's side), rather than on the world.
    pub fn is_agent_step(&self) -> bool {
        matches!(
            self,
            Action::StartAgent { .. } | Action::Redeploy | Action::Crash { .. }
        )
    }
}

/// The step kinds, as `do` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// `start-agent`.
    StartAgent,
    /// `redeploy`.
    Redeploy,
    /// `crash`.
    Crash,
    /// `cp-faults`.
    CpFaults,
    /// `clear-cp-faults`.
    ClearCpFaults,
    /// `backend-fault`.
    BackendFault,
    /// `start-executions`.
    StartExecutions,
    /// `stop-execution`.
    StopExecution,
    /// `retry-stage`.
    RetryStage,
}

impl StepKind {
    /// The name `do` gives it.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::StartAgent => "start-agent",
            StepKind::Redeploy => "redeploy",
            StepKind::Crash => "crash",
            StepKind::CpFaults => "cp-faults",
            StepKind::ClearCpFaults => "clear-cp-faults",
            StepKind::BackendFault => "backend-fault",
            StepKind::StartExecutions => "start-executions",
            StepKind::StopExecution => "stop-execution",
            StepKind::RetryStage => "retry-stage",
        }
    }
}

/// A step as written: every key typed, then checked as a whole by `TryFrom`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    at: Option<SimOffset>,
    on: Option<EventName>,
    after: Option<SimOffset>,
    nth: Option<NonZeroUsize>,
    #[serde(rename = "do")]
    kind: StepKind,
    replicas: Option<NonZeroUsize>,
    restart_after: Option<SimDuration>,
    operation: Option<String>,
    rate: Option<f64>,
    #[serde(rename = "kind")]
    fault_kind: Option<FaultKind>,
    count: Option<std::num::NonZeroU64>,
    fault: Option<fake_apica::FaultSpec>,
    executions: Option<Vec<ExecutionSection>>,
    execution: Option<String>,
    abandon: Option<bool>,
    reason: Option<String>,
    mode: Option<fake_codepipeline::RetryMode>,
    #[serde(default)]
    optional: bool,
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(r: RawStep) -> Result<Self, String> {
        let kind = r.kind.name();
        let when = match (r.at, r.on) {
            (Some(at), None) => {
                if r.after.is_some() || r.nth.is_some() {
                    return Err(format!(
                        "step `{kind}`: `after` and `nth` go with `on`, not with `at`"
                    ));
                }
                When::At(at)
            }
            (None, Some(event)) => When::On {
                event,
                after: r.after,
                nth: r.nth.unwrap_or(NonZeroUsize::MIN),
            },
            _ => {
                return Err(format!(
                    "step `{kind}` needs exactly one of `at` (a simulated time) or `on` (an event name)"
                ));
            }
        };
        // Keys that belong to another kind of step are mistakes, not options.
        let given = [
            ("replicas", r.replicas.is_some(), StepKind::StartAgent),
            ("restart_after", r.restart_after.is_some(), StepKind::Crash),
            ("operation", r.operation.is_some(), StepKind::CpFaults),
            ("rate", r.rate.is_some(), StepKind::CpFaults),
            ("kind", r.fault_kind.is_some(), StepKind::CpFaults),
            ("count", r.count.is_some(), StepKind::CpFaults),
            ("fault", r.fault.is_some(), StepKind::BackendFault),
            (
                "executions",
                r.executions.is_some(),
                StepKind::StartExecutions,
            ),
            ("abandon", r.abandon.is_some(), StepKind::StopExecution),
            ("reason", r.reason.is_some(), StepKind::StopExecution),
            ("mode", r.mode.is_some(), StepKind::RetryStage),
        ];
        if r.execution.is_some()
            && !matches!(r.kind, StepKind::StopExecution | StepKind::RetryStage)
        {
            return Err(format!(
                "step `{kind}` has `execution`, which only a `stop-execution` or `retry-stage` step takes"
            ));
        }
        for (key, present, owner) in given {
            if present && owner != r.kind {
                return Err(format!(
                    "step `{kind}` has `{key}`, which only a `{}` step takes",
                    owner.name()
                ));
            }
        }
        let action = match r.kind {
            StepKind::StartAgent => Action::StartAgent {
                replicas: r.replicas.unwrap_or(NonZeroUsize::MIN),
            },
            StepKind::Redeploy => Action::Redeploy,
            StepKind::Crash => Action::Crash {
                restart_after: r.restart_after,
            },
            StepKind::CpFaults => {
                let rate = r
                    .rate
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| {
                        format!(
                            "step `cp-faults` needs `rate` between 0 and 1 (the share of calls refused){}",
                            r.rate.map(|x| format!(", not {x}")).unwrap_or_default()
                        )
                    })?;
                Action::CpFaults(FaultRule {
                    operation: r.operation.unwrap_or_else(|| "*".into()),
                    kind: r.fault_kind.unwrap_or(FaultKind::Throttle),
                    rate,
                    status: None,
                    count: r.count.map(std::num::NonZeroU64::get),
                })
            }
            StepKind::ClearCpFaults => Action::ClearCpFaults,
            StepKind::BackendFault => Action::BackendFault(r.fault.ok_or(
                "step `backend-fault` needs `fault = { kind = ... }` (as the backend's fault API writes it)",
            )?),
            StepKind::StartExecutions => {
                let executions = r.executions.unwrap_or_default();
                if executions.is_empty() {
                    return Err(
                        "step `start-executions` needs `executions = [{ id = ..., configuration = {...} }]`"
                            .into(),
                    );
                }
                Action::StartExecutions(executions)
            }
            StepKind::StopExecution => Action::StopExecution {
                execution: r.execution.ok_or(
                    "step `stop-execution` needs `execution` (the label of the execution whose pipeline execution stops)",
                )?,
                abandon: r.abandon.unwrap_or(false),
                reason: r.reason,
            },
            StepKind::RetryStage => Action::RetryStage {
                execution: r.execution.ok_or(
                    "step `retry-stage` needs `execution` (the label of the execution whose stage is retried)",
                )?,
                mode: r.mode.unwrap_or(fake_codepipeline::RetryMode::FailedActions),
            },
        };
        Ok(Step {
            when,
            action,
            optional: r.optional,
        })
    }
}

/// `[expect]`: what must hold at the end.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Expect {
    /// The error rule ids that must appear, exactly (`[]`: none).
    #[serde(default)]
    pub violations: Option<Vec<Rule>>,
    /// The Details link of every execution must appear within this simulated time of its start.
    #[serde(default)]
    pub details_link_within: Option<SimDuration>,
    /// Judge the run by the invariants every correct agent keeps (`docs/design.md`, "Exploration"), as
    /// generated scenarios are: no violation at all, except a job timeout of a job whose replica a `crash`
    /// step killed; each execution ends exactly once; each ends with one of its `outcome_in`.
    #[serde(default)]
    pub invariants: bool,
    /// Per-execution expectations, keyed by label (`"e-1" = { outcome = "Succeeded" }`), or `"*"` for all.
    #[serde(flatten)]
    pub executions: BTreeMap<String, ExecutionExpect>,
}

impl Expect {
    /// The expectations for execution `label`: its own entry, else `"*"`'s.
    pub fn for_execution(&self, label: &str) -> Option<&ExecutionExpect> {
        self.executions
            .get(label)
            .or_else(|| self.executions.get("*"))
    }
}

/// What must hold for one execution.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionExpect {
    /// `Succeeded` or `Failed`; `from-preset` follows the backend preset's outcome.
    #[serde(default)]
    pub outcome: Option<ExpectedOutcome>,
    /// The failure type (`JobFailed`, `SystemUnavailable`, `ConfigurationError`, `JobTimedOut`).
    #[serde(default)]
    pub failure_type: Option<String>,
    /// Text the failure message must contain.
    #[serde(default)]
    pub message_contains: Option<String>,
    /// The failure message must contain at least one of these (for example the property's name or its
    /// bad value: agents word their messages differently).
    #[serde(default)]
    pub message_contains_any: Vec<String>,
    /// How many load tests the execution may start (counted by its RunnableFile).
    #[serde(default)]
    pub load_tests_started: Option<usize>,
    /// The ends it may reach, any of them: `Succeeded`, `Failed` (any failure type) or
    /// `Failed:TYPE` (`Failed:SystemUnavailable`).
    #[serde(default)]
    pub outcome_in: Vec<AllowedOutcome>,
}

/// One end an execution may reach (`outcome_in`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AllowedOutcome {
    /// `Succeeded`.
    Succeeded,
    /// `Abandoned`: its pipeline execution was stopped with abandon while it ran.
    Abandoned,
    /// `Superseded`: its pipeline run waited at the stage boundary and a newer run replaced it, so its
    /// action never started (CP-STAGE-LOCK).
    Superseded,
    /// `Failed` (any type) or `Failed:TYPE`.
    Failed(Option<String>),
}

/// The failure types CodePipeline knows (`FailureType` in the service model).
pub const FAILURE_TYPES: [&str; 6] = [
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
];

impl AllowedOutcome {
    /// Whether an execution that ended with `status` (and `failure_type`) reached this end.
    pub fn matches(&self, status: &str, failure_type: Option<&str>) -> bool {
        match self {
            AllowedOutcome::Succeeded => status == "Succeeded",
            AllowedOutcome::Abandoned => status == "Abandoned",
            AllowedOutcome::Superseded => status == "Superseded",
            AllowedOutcome::Failed(None) => status == "Failed",
            AllowedOutcome::Failed(Some(t)) => status == "Failed" && failure_type == Some(t),
        }
    }
}

impl std::fmt::Display for AllowedOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowedOutcome::Succeeded => f.write_str("Succeeded"),
            AllowedOutcome::Abandoned => f.write_str("Abandoned"),
            AllowedOutcome::Superseded => f.write_str("Superseded"),
            AllowedOutcome::Failed(None) => f.write_str("Failed"),
            AllowedOutcome::Failed(Some(t)) => write!(f, "Failed:{t}"),
        }
    }
}

impl FromStr for AllowedOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // `JobTimedOut` is what CodePipeline writes when a job's deadline passed.
        match s.split_once(':') {
            None if s == "Succeeded" => Ok(AllowedOutcome::Succeeded),
            None if s == "Abandoned" => Ok(AllowedOutcome::Abandoned),
            None if s == "Superseded" => Ok(AllowedOutcome::Superseded),
            None if s == "Failed" => Ok(AllowedOutcome::Failed(None)),
            Some(("Failed", t)) if FAILURE_TYPES.contains(&t) || t == "JobTimedOut" => {
                Ok(AllowedOutcome::Failed(Some(t.to_string())))
            }
            _ => Err(format!(
                "`{s}` is not an outcome: write `Succeeded`, `Abandoned`, `Superseded`, `Failed` or `Failed:TYPE` with TYPE one of {}, JobTimedOut",
                FAILURE_TYPES.join(", ")
            )),
        }
    }
}

impl<'de> Deserialize<'de> for AllowedOutcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_text(d)
    }
}

impl serde::Serialize for AllowedOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The end an execution must reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum ExpectedOutcome {
    /// The action execution succeeded.
    Succeeded,
    /// It failed.
    Failed,
    /// Whatever the backend preset's outcome says.
    #[serde(rename = "from-preset")]
    FromPreset,
    /// The action was abandoned by a stop (`stop-execution` with `abandon = true`).
    Abandoned,
    /// Its pipeline run was superseded at the stage boundary before its action started.
    Superseded,
}

/// A problem with a scenario file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has unknown keys, or a value of the wrong kind.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, from the TOML parser (with line and column).
        message: String,
    },
    /// The parts do not fit together.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key and value.
        message: String,
    },
}

impl Scenario {
    /// Loads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks scenario text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        scenario.check().map_err(|message| ScenarioError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(scenario)
    }

    /// Every execution label the scenario can start: `[[executions]]` and `start-executions` steps.
    pub fn execution_labels(&self) -> Vec<String> {
        self.execution_sections()
            .flat_map(ExecutionSection::labels)
            .collect()
    }

    /// Every `[[executions]]` entry, then those of the `start-executions` steps, in step order.
    fn execution_sections(&self) -> impl Iterator<Item = &ExecutionSection> {
        let stepped = self.steps.iter().filter_map(|s| match &s.action {
            Action::StartExecutions(e) => Some(e.iter()),
            _ => None,
        });
        self.executions.iter().chain(stepped.flatten())
    }

    /// The labels the `retry-stage` steps give the action executions they start: `e-1-retry-1`,
    /// `e-1-retry-2`, ... per execution retried (one per step; an execution's stage holds one action).
    pub fn retry_labels(&self) -> Vec<String> {
        let mut n: std::collections::BTreeMap<&str, u32> = Default::default();
        let mut out = Vec::new();
        for step in &self.steps {
            if let Action::RetryStage { execution, .. } = &step.action {
                let k = n.entry(execution).or_default();
                *k += 1;
                out.push(format!("{execution}-retry-{k}"));
            }
        }
        out
    }

    /// What a valid file can still get wrong: the parts must fit together.
    fn check(&self) -> Result<(), String> {
        for (what, n) in [
            ("input_artifacts", self.action_type.input_artifacts),
            ("output_artifacts", self.action_type.output_artifacts),
        ] {
            if n > 1 {
                return Err(format!(
                    "action_type.{what} = {n}: a scenario's pipeline gives its action 0 or 1"
                ));
            }
        }
        if (!self.source.files.is_empty() || self.source.blob_bytes.is_some())
            && self.action_type.input_artifacts == 0
        {
            return Err(
                "[source] is read only by an action with an input artifact: set action_type.input_artifacts = 1"
                    .into(),
            );
        }
        if self.world.continuation_delay.get() < Duration::from_secs(1) {
            return Err(format!(
                "world.continuation_delay `{}` must be at least 1s",
                self.world.continuation_delay
            ));
        }
        for p in &self.backend.presets {
            fake_apica::Preset::from_spec(p.clone())
                .map_err(|e| format!("backend.presets `{}`: {e}", p.name))?;
        }
        // Faults are checked against a clock at the origin, as the run will resolve them.
        let clock = sim_core::SimClock::manual();
        for f in &self.backend.faults {
            f.resolve(&clock)
                .map_err(|e| format!("backend.faults: {e}"))?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            if let Action::BackendFault(f) = &step.action {
                f.resolve(&clock)
                    .map_err(|e| format!("steps[{}] backend-fault: {e}", i + 1))?;
            }
        }
        if !self
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::StartAgent { .. }))
        {
            return Err("no step starts the agent (`do = \"start-agent\"`)".into());
        }
        // Executions that share a pipeline share its execution mode: the first that names one sets it.
        let mut modes: std::collections::BTreeMap<&str, (&str, fake_codepipeline::ExecutionMode)> =
            Default::default();
        for e in self.execution_sections() {
            if e.execution_mode.is_some() && e.pipeline.is_none() {
                return Err(format!(
                    "execution `{}` has an execution_mode but no pipeline; the mode is a shared pipeline's",
                    e.id
                ));
            }
            if let (Some(p), Some(m)) = (&e.pipeline, e.execution_mode) {
                match modes.get(p.as_str()) {
                    Some((first, was)) if *was != m => {
                        return Err(format!(
                            "executions `{first}` and `{}` share pipeline `{p}` with different execution modes ({} and {})",
                            e.id,
                            was.as_str(),
                            m.as_str()
                        ));
                    }
                    Some(_) => {}
                    None => {
                        modes.insert(p, (&e.id, m));
                    }
                }
            }
        }
        let labels = self.execution_labels();
        let mut seen = BTreeSet::new();
        for l in &labels {
            if !seen.insert(l) {
                return Err(format!("execution `{l}` is defined twice"));
            }
        }
        for step in &self.steps {
            if let Action::StopExecution { execution, .. } | Action::RetryStage { execution, .. } =
                &step.action
                && !seen.contains(execution)
            {
                return Err(format!(
                    "step `{}` names execution `{execution}`, which this scenario does not start; its executions are {}",
                    step.action.kind().name(),
                    labels.join(", ")
                ));
            }
        }
        let retries = self.retry_labels();
        for label in self.expect.executions.keys() {
            if label != "*" && !seen.contains(label) && !retries.contains(label) {
                return Err(format!(
                    "expect.\"{label}\" names no execution of this scenario; its executions are {}",
                    if labels.is_empty() {
                        "none".to_string()
                    } else {
                        labels.join(", ")
                    }
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "name = \"x\"\n[[executions]]\nid = \"e-1\"\n[[steps]]\nat = \"0s\"\ndo = \"start-agent\"\n";

    fn error(text: &str) -> String {
        Scenario::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_sketch_form_parses() {
        let text = r#"
            name = "x"
            [[backend.presets]]
            name = "soak-90m"
            duration = "90m"
            outcome = "passed"
            [[executions]]
            id = "e-1"
            configuration = { PresetName = "soak-90m" }
            [[steps]]
            at = "+00:00:00"
            do = "start-agent"
            [[steps]]
            on = "cp.result_applied"
            nth = 2
            do = "crash"
            restart_after = "1m"
            [expect]
            violations = []
            details_link_within = "1m"
            "e-1" = { outcome = "Succeeded", load_tests_started = 1 }
        "#;
        let s = Scenario::parse(text, Path::new("x.toml")).unwrap();
        assert_eq!(s.expect.executions["e-1"].load_tests_started, Some(1));
        assert_eq!(s.expect.violations, Some(vec![]));
        assert_eq!(s.steps[0].when, When::At(SimOffset::new(Duration::ZERO)));
        assert!(matches!(
            s.steps[1].when,
            When::On { nth, .. } if nth.get() == 2
        ));
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        let e = error("name = \"x\"\n[[steps]]\nat = \"soon\"\ndo = \"start-agent\"\n");
        assert!(e.contains("soon") && e.contains("line 3"), "{e}");
        let e = error("name = \"x\"\n[[steps]]\nat = \"0s\"\ndo = \"dance\"\n");
        assert!(e.contains("dance") && e.contains("start-agent"), "{e}");
        let e = error(&format!("{HEAD}[world]\njob_timeout = \"1 hour-ish\"\n"));
        assert!(e.contains("job_timeout") || e.contains("1 hour-ish"), "{e}");
        assert!(e.contains("line 8"), "{e}");
    }

    #[test]
    fn the_broken_scenarios_of_the_review_are_refused_at_load() {
        // A fault kind typo is not a throttle.
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"cp-faults\"\nkind = \"server_error\"\nrate = 0.5\n"
        ));
        assert!(
            e.contains("server_error") && e.contains("server-error"),
            "{e}"
        );
        // An expectation for an execution that does not exist.
        let e = error(&format!(
            "{HEAD}[expect]\n\"e1\" = {{ outcome = \"Succeeded\" }}\n"
        ));
        assert!(e.contains("\"e1\"") && e.contains("e-1"), "{e}");
        // A preset duration that cannot be read.
        let e = error(&format!(
            "{HEAD}[[backend.presets]]\nname = \"p\"\nduration = \"1 day 2\"\noutcome = \"passed\"\n"
        ));
        assert!(e.contains("1 day 2"), "{e}");
        // An offset far past anything the clock can hold: an error, not a panic.
        let e = error("name = \"x\"\n[[steps]]\nat = \"+1e300:00:00\"\ndo = \"start-agent\"\n");
        assert!(e.contains("+1e300:00:00"), "{e}");
        let e =
            error("name = \"x\"\n[[steps]]\nat = \"+99999999999:00:00\"\ndo = \"start-agent\"\n");
        assert!(e.contains("100 years"), "{e}");
        // An unknown rule id, an unknown event, keys of another step kind, an outcome typo.
        let e = error(&format!("{HEAD}[expect]\nviolations = [\"CP-TIMOUT\"]\n"));
        assert!(e.contains("CP-TIMOUT") && e.contains("CP-TIMEOUT"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\non = \"cp.test_created\"\ndo = \"redeploy\"\n"
        ));
        assert!(e.contains("cp never records test_created"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"redeploy\"\nrate = 0.5\n"
        ));
        assert!(e.contains("`rate`") && e.contains("cp-faults"), "{e}");
        let e = error(&format!(
            "{HEAD}[expect]\n\"e-1\" = {{ outcome = \"Succeded\" }}\n"
        ));
        assert!(e.contains("Succeded"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"backend-fault\"\nfault = {{ kind = \"outtage\" }}\n"
        ));
        assert!(e.contains("outtage"), "{e}");
        let e = error(&format!("{HEAD}[world]\ncontinuation_delay = \"500ms\"\n"));
        assert!(e.contains("continuation_delay"), "{e}");
        let e = error(&format!("{HEAD}[world]\njob_timeout_from = \"polled\"\n"));
        assert!(e.contains("polled") && e.contains("acknowledged"), "{e}");
        let e = error(&format!("{HEAD}[world]\naction_timeout_per = \"run\"\n"));
        assert!(e.contains("`run`") && e.contains("action-execution"), "{e}");
        let e = error(&format!("{HEAD}[[executions]]\nid = \"e-1\"\n"));
        assert!(e.contains("`e-1` is defined twice"), "{e}");
        // A shared pipeline: a mode CodePipeline does not have, two modes for one pipeline, a mode alone.
        let e = error(&format!(
            "{HEAD}[[executions]]\nid = \"e-2\"\npipeline = \"p\"\nexecution_mode = \"QUEUD\"\n"
        ));
        assert!(
            e.contains("QUEUD") && e.contains("SUPERSEDED, QUEUED or PARALLEL"),
            "{e}"
        );
        let e = error(&format!(
            "{HEAD}[[executions]]\nid = \"e-2\"\npipeline = \"p\"\nexecution_mode = \"QUEUED\"\n\
             [[executions]]\nid = \"e-3\"\npipeline = \"p\"\nexecution_mode = \"PARALLEL\"\n"
        ));
        assert!(e.contains("`e-2` and `e-3` share pipeline `p`"), "{e}");
        let e = error(&format!(
            "{HEAD}[[executions]]\nid = \"e-2\"\nexecution_mode = \"QUEUED\"\n"
        ));
        assert!(
            e.contains("`e-2` has an execution_mode but no pipeline"),
            "{e}"
        );
    }

    #[test]
    fn a_stop_names_an_execution_of_the_scenario() {
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"stop-execution\"\nexecution = \"e-9\"\n"
        ));
        assert!(e.contains("`e-9`") && e.contains("e-1"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"stop-execution\"\n"
        ));
        assert!(e.contains("needs `execution`"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"redeploy\"\nabandon = true\n"
        ));
        assert!(
            e.contains("`abandon`") && e.contains("stop-execution"),
            "{e}"
        );
        let s = Scenario::parse(
            &format!("{HEAD}[[steps]]\nat = \"1m\"\ndo = \"stop-execution\"\nexecution = \"e-1\"\nabandon = true\n[expect]\n\"e-1\" = {{ outcome = \"Abandoned\" }}\n"),
            Path::new("x.toml"),
        )
        .unwrap();
        assert!(matches!(
            &s.steps[1].action,
            Action::StopExecution { execution, abandon: true, reason: None } if execution == "e-1"
        ));
    }

    #[test]
    fn a_retry_names_an_execution_and_gives_its_attempts_labels_expect_may_name() {
        let retry = "[[steps]]\non = \"cp.execution_finished\"\ndo = \"retry-stage\"\nexecution = \"e-1\"\n";
        let s = Scenario::parse(
            &format!("{HEAD}{retry}[expect]\n\"e-1-retry-1\" = {{ outcome = \"Succeeded\" }}\n"),
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(s.retry_labels(), ["e-1-retry-1"]);
        assert!(matches!(
            &s.steps[1].action,
            Action::RetryStage { execution, mode: fake_codepipeline::RetryMode::FailedActions } if execution == "e-1"
        ));
        // One retry step makes one attempt: a second is not there to expect.
        let e = error(&format!(
            "{HEAD}{retry}[expect]\n\"e-1-retry-2\" = {{ outcome = \"Succeeded\" }}\n"
        ));
        assert!(e.contains("e-1-retry-2"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"retry-stage\"\nexecution = \"e-1\"\nmode = \"SOME_ACTIONS\"\n"
        ));
        assert!(e.contains("SOME_ACTIONS"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"retry-stage\"\nexecution = \"e-7\"\n"
        ));
        assert!(e.contains("retry-stage") && e.contains("`e-7`"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"crash\"\nexecution = \"e-1\"\n"
        ));
        assert!(
            e.contains("`execution`") && e.contains("retry-stage"),
            "{e}"
        );
    }

    #[test]
    fn a_cp_fault_takes_a_count_of_at_least_one() {
        let step =
            "[[steps]]\nat = \"1m\"\ndo = \"cp-faults\"\nkind = \"lost-response\"\nrate = 1.0\n";
        let s = Scenario::parse(&format!("{HEAD}{step}count = 2\n"), Path::new("x.toml")).unwrap();
        assert!(matches!(
            &s.steps[1].action,
            Action::CpFaults(r) if r.count == Some(2) && r.kind == FaultKind::LostResponse
        ));
        let e = error(&format!("{HEAD}{step}count = 0\n"));
        assert!(e.contains("count"), "{e}");
        let e = error(&format!(
            "{HEAD}[[steps]]\nat = \"1m\"\ndo = \"redeploy\"\ncount = 1\n"
        ));
        assert!(e.contains("`count`") && e.contains("cp-faults"), "{e}");
    }

    #[test]
    fn the_readme_example_loads() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
                .unwrap();
        let section = &readme[readme.find("### Writing a scenario").expect("the section")..];
        let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let block = &section[start..start + section[start..].find("```").unwrap()];
        let s = Scenario::parse(block, Path::new("README.md")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "redeploy-mid-job");
        assert_eq!(s.steps.len(), 3);
    }

    #[test]
    fn every_builtin_scenario_loads() {
        for entry in std::fs::read_dir(crate::builtin_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "toml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}
