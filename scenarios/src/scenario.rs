//! The scenario file format (`scenarios/*.toml`), loaded and checked before anything starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    /// Action executions started at t = 0.
    #[serde(default)]
    pub executions: Vec<ExecutionSection>,
    /// Timed or event-triggered steps.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// What must hold at the end.
    #[serde(default)]
    pub expect: Expect,
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
}

/// `[world]`: the fake CodePipeline's protocol settings, durations as people write them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSection {
    /// CP-TIMEOUT.
    #[serde(default = "d_1h")]
    pub job_timeout: String,
    /// CP-LEASE; `0s` makes replicas race.
    #[serde(default = "d_5m")]
    pub ack_window: String,
    /// CP-CONTINUE.
    #[serde(default = "d_30s")]
    pub continuation_delay: String,
    /// CP-ACTION-TIMEOUT.
    #[serde(default = "d_24h")]
    pub action_timeout: String,
    /// `progress-100` or `no-token`.
    #[serde(default = "d_final_on")]
    pub final_on: String,
}

impl Default for WorldSection {
    fn default() -> Self {
        WorldSection {
            job_timeout: d_1h(),
            ack_window: d_5m(),
            continuation_delay: d_30s(),
            action_timeout: d_24h(),
            final_on: d_final_on(),
        }
    }
}

fn d_1h() -> String {
    "1h".into()
}
fn d_5m() -> String {
    "5m".into()
}
fn d_30s() -> String {
    "30s".into()
}
fn d_24h() -> String {
    "24h".into()
}
fn d_final_on() -> String {
    "progress-100".into()
}

/// `[harness]`: real-time bounds of the runner.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarnessSection {
    /// Real time a replica may hold a job before the clock moves on without it.
    #[serde(default = "d_5s")]
    pub answer_budget: String,
    /// Real time before a stuck run fails as HARNESS-STALL.
    #[serde(default = "d_120s")]
    pub watchdog: String,
    /// AG-BACKOFF: the most calls per second a replica may have refused by throttling, over any 5 s window.
    #[serde(default = "d_rate")]
    pub backoff_limit: f64,
    /// Simulated time after the last execution ends that the run goes on (to catch late mistakes).
    #[serde(default = "d_tail")]
    pub tail: String,
    /// AG-START: real time a started replica has to make its first request.
    #[serde(default = "d_30s")]
    pub start_grace: String,
}

impl Default for HarnessSection {
    fn default() -> Self {
        HarnessSection {
            answer_budget: d_5s(),
            watchdog: d_120s(),
            backoff_limit: d_rate(),
            tail: d_tail(),
            start_grace: d_30s(),
        }
    }
}

fn d_5s() -> String {
    "5s".into()
}
fn d_120s() -> String {
    "120s".into()
}
fn d_rate() -> f64 {
    20.0
}
fn d_tail() -> String {
    "1m".into()
}

/// `[action_type]`: what the agent under test polls for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionTypeSection {
    /// `Category/Owner/Provider/Version`.
    #[serde(default = "d_type")]
    pub id: String,
    /// `{backend}` is the fake backend's URL; `{ExternalExecutionId}` and `{Config:Name}` are AWS's.
    #[serde(default = "d_url")]
    pub execution_url_template: String,
    /// clientId -> clientToken (third-party).
    #[serde(default)]
    pub clients: BTreeMap<String, String>,
    /// Configuration properties; defaults to the Apica action's (PresetName, RunnableFile, ApiToken).
    #[serde(default)]
    pub properties: Option<Vec<PropertySection>>,
    /// The token the agent is told (JOB_CLIENT_TOKENS_FILE) for a clientId, when it differs from the real
    /// one (the `wrong-client-token` scenario).
    #[serde(default)]
    pub agent_clients: Option<BTreeMap<String, String>>,
}

impl Default for ActionTypeSection {
    fn default() -> Self {
        ActionTypeSection {
            id: d_type(),
            execution_url_template: d_url(),
            clients: BTreeMap::new(),
            properties: None,
            agent_clients: None,
        }
    }
}

fn d_type() -> String {
    "Test/ThirdParty/ApicaLoadtest/1".into()
}
fn d_url() -> String {
    "{backend}/jobs/{ExternalExecutionId}".into()
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
    pub faults: Vec<toml::Value>,
}

/// `[[executions]]`: action executions started at t = 0.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionSection {
    /// Its label (`e-1`); with `count`, a prefix (`m` gives `m-1`..`m-N`).
    pub id: String,
    /// Start this many alike (presets taken round-robin from `presets`).
    #[serde(default)]
    pub count: Option<usize>,
    /// With `count`: the presets to cycle through.
    #[serde(default)]
    pub presets: Vec<String>,
    /// The third-party clientId (defaults to the only one).
    #[serde(default)]
    pub client: Option<String>,
    /// The action configuration; `RunnableFile` is made unique per execution.
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
}

/// `[[steps]]`: something the runner does at a simulated time or on an event.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A simulated time (`40m`, `+01:00:00`).
    #[serde(default)]
    pub at: Option<String>,
    /// An event name (`apica.test_created`, `cp.result_applied`).
    #[serde(default)]
    pub on: Option<String>,
    /// With `on`: only events at or after this simulated time.
    #[serde(default)]
    pub after: Option<String>,
    /// With `on`: the n-th matching event (from 1; default 1).
    #[serde(default)]
    pub nth: Option<usize>,
    /// What to do.
    #[serde(rename = "do")]
    pub action: StepAction,
    /// `start-agent`: how many replicas (default 1).
    #[serde(default)]
    pub replicas: Option<usize>,
    /// `crash`: restart after this much simulated time (none: stay down).
    #[serde(default)]
    pub restart_after: Option<String>,
    /// `cp-faults`: the operation (`*` for all).
    #[serde(default)]
    pub operation: Option<String>,
    /// `cp-faults`: the share refused (0..1); `backend-fault` error rate.
    #[serde(default)]
    pub rate: Option<f64>,
    /// `cp-faults`: `throttle` (default) or `server-error`.
    #[serde(default)]
    pub kind: Option<String>,
    /// `backend-fault`: the fault, as the backend's admin API writes it.
    #[serde(default)]
    pub fault: Option<toml::Value>,
    /// `start-executions`: which executions (by the ids of `[[executions]]` with `start = "step"`).
    #[serde(default)]
    pub executions: Vec<ExecutionSection>,
}

impl Step {
    /// The CodePipeline fault a `cp-faults` step injects: `rate` of `kind` (`throttle`, the default, or
    /// `server-error`) on `operation` (`*` by default).
    pub fn cp_fault_rule(&self) -> fake_codepipeline::FaultRule {
        fake_codepipeline::FaultRule {
            operation: self.operation.clone().unwrap_or_else(|| "*".into()),
            kind: match self.kind.as_deref() {
                Some("server-error") => fake_codepipeline::FaultKind::ServerError,
                _ => fake_codepipeline::FaultKind::Throttle,
            },
            rate: self.rate.unwrap_or(0.0),
            status: None,
        }
    }
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepAction {
    /// Start the agent (`replicas` of it).
    StartAgent,
    /// SIGTERM every replica, wait for it (10 s real at most, then SIGKILL and AG-REDEPLOY), start anew.
    Redeploy,
    /// SIGKILL every replica; restart after `restart_after` if given.
    Crash,
    /// Inject CodePipeline faults (`rate` of `kind` on `operation`).
    CpFaults,
    /// Remove every CodePipeline fault.
    ClearCpFaults,
    /// Add a backend fault (`fault = { kind = "outage", for = "10m" }`).
    BackendFault,
    /// Start more executions (`executions = [...]`).
    StartExecutions,
}

/// `[expect]`: what must hold at the end.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Expect {
    /// The error rule ids that must appear, exactly (`[]`: none).
    #[serde(default)]
    pub violations: Option<Vec<String>>,
    /// The Details link of every execution must appear within this simulated time of its start.
    #[serde(default)]
    pub details_link_within: Option<String>,
    /// Per-execution expectations, keyed by label (`"e-1" = { outcome = "Succeeded" }`), or `"*"` for all.
    #[serde(flatten)]
    pub executions: BTreeMap<String, ExecutionExpect>,
}

/// What must hold for one execution.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionExpect {
    /// `Succeeded` or `Failed`; `from-preset` follows the backend preset's outcome.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The failure type (`JobFailed`, `SystemUnavailable`, `ConfigurationError`, `JobTimedOut`).
    #[serde(default)]
    pub failure_type: Option<String>,
    /// Text the failure message must contain.
    #[serde(default)]
    pub message_contains: Option<String>,
    /// How many load tests the execution may start (counted by its RunnableFile).
    #[serde(default)]
    pub load_tests_started: Option<usize>,
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
    /// The TOML is malformed or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, from the TOML parser (with line and column).
        message: String,
    },
    /// A value is wrong.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key and value.
        message: String,
    },
}

/// Parses a duration field, naming the key in the error.
pub fn duration(key: &str, text: &str) -> Result<Duration, String> {
    sim_core::parse_duration(text).map_err(|e| format!("{key}: {e}"))
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

    fn check(&self) -> Result<(), String> {
        for (k, v) in [
            ("world.job_timeout", &self.world.job_timeout),
            ("world.ack_window", &self.world.ack_window),
            ("world.continuation_delay", &self.world.continuation_delay),
            ("world.action_timeout", &self.world.action_timeout),
            ("harness.answer_budget", &self.harness.answer_budget),
            ("harness.watchdog", &self.harness.watchdog),
            ("harness.tail", &self.harness.tail),
            ("harness.start_grace", &self.harness.start_grace),
        ] {
            duration(k, v)?;
        }
        if !["progress-100", "no-token"].contains(&self.world.final_on.as_str()) {
            return Err(format!(
                "world.final_on `{}` must be `progress-100` or `no-token`",
                self.world.final_on
            ));
        }
        if duration("", &self.world.continuation_delay)? < Duration::from_secs(1) {
            return Err("world.continuation_delay must be at least 1s".into());
        }
        self.action_type
            .id
            .parse::<fake_codepipeline::ActionTypeId>()
            .map_err(|e| format!("action_type.id: {e}"))?;
        for (i, step) in self.steps.iter().enumerate() {
            let n = i + 1;
            match (&step.at, &step.on) {
                (Some(at), None) => {
                    sim_core::http::parse_target(at, sim_core::DEFAULT_ORIGIN)
                        .map_err(|e| format!("steps[{n}].at: {e}"))?;
                }
                (None, Some(on)) => {
                    if !on.contains('.') {
                        return Err(format!(
                            "steps[{n}].on `{on}` must name an event as source.kind, e.g. cp.result_applied"
                        ));
                    }
                }
                _ => return Err(format!("steps[{n}] needs exactly one of `at` or `on`")),
            }
            if let Some(r) = &step.restart_after {
                duration(&format!("steps[{n}].restart_after"), r)?;
            }
            if let Some(a) = &step.after {
                duration(&format!("steps[{n}].after"), a)?;
            }
            if step.action == StepAction::CpFaults
                && step.rate.is_none_or(|r| !(0.0..=1.0).contains(&r))
            {
                return Err(format!(
                    "steps[{n}]: cp-faults needs `rate` between 0 and 1"
                ));
            }
            if step.action == StepAction::BackendFault && step.fault.is_none() {
                return Err(format!(
                    "steps[{n}]: backend-fault needs `fault = {{ kind = ... }}`"
                ));
            }
        }
        if !self
            .steps
            .iter()
            .any(|s| s.action == StepAction::StartAgent)
        {
            return Err("no step starts the agent (`do = \"start-agent\"`)".into());
        }
        for (label, e) in &self.expect.executions {
            if let Some(o) = &e.outcome
                && !["Succeeded", "Failed", "from-preset"].contains(&o.as_str())
            {
                return Err(format!(
                    "expect.\"{label}\".outcome `{o}` must be Succeeded, Failed or from-preset"
                ));
            }
        }
        if let Some(d) = &self.expect.details_link_within {
            duration("expect.details_link_within", d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            at = "0s"
            do = "start-agent"
            [expect]
            violations = []
            details_link_within = "1m"
            "e-1" = { outcome = "Succeeded", load_tests_started = 1 }
        "#;
        let s = Scenario::parse(text, Path::new("x.toml")).unwrap();
        assert_eq!(s.expect.executions["e-1"].load_tests_started, Some(1));
        assert_eq!(s.expect.violations, Some(vec![]));
    }

    #[test]
    fn bad_values_are_named() {
        let text = "name = \"x\"\n[[steps]]\nat = \"soon\"\ndo = \"start-agent\"\n";
        let e = Scenario::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("steps[1].at") && e.contains("soon"), "{e}");
        let text = "name = \"x\"\n[[steps]]\nat = \"0s\"\ndo = \"dance\"\n";
        let e = Scenario::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dance"), "{e}");
        let text = "name = \"x\"\n[world]\njob_timeout = \"1 hour-ish\"\n[[steps]]\nat = \"0s\"\ndo = \"start-agent\"\n";
        let e = Scenario::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("world.job_timeout"), "{e}");
    }
}
