//! Protocol types: parsed and checked at the edge, so the engine never sees an invalid one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who owns an action type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Owner {
    /// Built into CodePipeline: succeeds at once in the simulation.
    #[serde(rename = "AWS")]
    Aws,
    /// A partner's action, polled with the third-party calls and a client token.
    ThirdParty,
    /// A self-service action any account can create.
    Custom,
}

impl Owner {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Aws => "AWS",
            Owner::ThirdParty => "ThirdParty",
            Owner::Custom => "Custom",
        }
    }

    /// Whether jobs of this owner are handed to job workers.
    pub fn is_job_worker(self) -> bool {
        self != Owner::Aws
    }
}

impl FromStr for Owner {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "AWS" => Ok(Owner::Aws),
            "ThirdParty" => Ok(Owner::ThirdParty),
            "Custom" => Ok(Owner::Custom),
            other => Err(format!(
                "owner `{other}` is not one of AWS, ThirdParty, Custom"
            )),
        }
    }
}

/// `{category, owner, provider, version}`, the identity of an action type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActionTypeId {
    /// Source, Build, Deploy, Test, Invoke, Approval or Compute.
    pub category: String,
    /// Who owns it.
    pub owner: Owner,
    /// The provider name.
    pub provider: String,
    /// The version.
    pub version: String,
}

impl ActionTypeId {
    /// The JSON form used on the wire.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "category": self.category,
            "owner": self.owner.as_str(),
            "provider": self.provider,
            "version": self.version,
        })
    }

    /// Reads the wire form (already validated against the model, so members are present).
    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        let field = |name: &str| {
            v.get(name)
                .and_then(|x| x.as_str())
                .map(str::to_string)
                .ok_or_else(|| format!("actionTypeId.{name} is missing"))
        };
        Ok(ActionTypeId {
            category: field("category")?,
            owner: field("owner")?.parse()?,
            provider: field("provider")?,
            version: field("version")?,
        })
    }

    /// AWS's way of naming a missing action type.
    pub fn describe(&self) -> String {
        format!(
            "ActionType (Category: '{}', Owner: '{}', Provider: '{}', Version: '{}')",
            self.category,
            self.owner.as_str(),
            self.provider,
            self.version
        )
    }
}

impl fmt::Display for ActionTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.category,
            self.owner.as_str(),
            self.provider,
            self.version
        )
    }
}

impl FromStr for ActionTypeId {
    type Err = String;

    /// `Category/Owner/Provider/Version`, the form of `JOB_ACTION_TYPE`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let [category, owner, provider, version] = parts.as_slice() else {
            return Err(format!(
                "action type `{s}` must be Category/Owner/Provider/Version, e.g. Test/ThirdParty/ApicaLoadtest/1"
            ));
        };
        if [category, provider, version].iter().any(|p| p.is_empty()) {
            return Err(format!("action type `{s}` has an empty part"));
        }
        Ok(ActionTypeId {
            category: category.to_string(),
            owner: owner.parse()?,
            provider: provider.to_string(),
            version: version.to_string(),
        })
    }
}

/// The status of one job (the model's `JobStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    /// Made, waiting for its continuation delay.
    Created,
    /// Waiting for a poll.
    Queued,
    /// Handed to a worker by a poll, not yet acknowledged.
    Dispatched,
    /// Acknowledged; a result is due before the deadline.
    InProgress,
    /// No result before the deadline.
    TimedOut,
    /// A success result was applied.
    Succeeded,
    /// A failure result was applied.
    Failed,
}

impl JobStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "Created",
            JobStatus::Queued => "Queued",
            JobStatus::Dispatched => "Dispatched",
            JobStatus::InProgress => "InProgress",
            JobStatus::TimedOut => "TimedOut",
            JobStatus::Succeeded => "Succeeded",
            JobStatus::Failed => "Failed",
        }
    }

    /// Whether the job can never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::TimedOut | JobStatus::Succeeded | JobStatus::Failed
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of an action execution (the model's `ActionExecutionStatus`: InProgress, Abandoned,
/// Succeeded, Failed) and of a pipeline execution (`PipelineExecutionStatus`: InProgress, Stopping,
/// Stopped, Succeeded, Failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExecutionStatus {
    /// Running.
    InProgress,
    /// Finished well.
    Succeeded,
    /// Finished badly.
    Failed,
    /// A pipeline execution asked to stop and wait: its in-progress actions are finishing (CP-STOP).
    Stopping,
    /// A pipeline execution that was stopped (CP-STOP).
    Stopped,
    /// An action execution whose pipeline execution was stopped with `abandon` (CP-STOP).
    Abandoned,
    /// A pipeline execution that waited at a stage boundary and was replaced by a newer one
    /// (CP-STAGE-LOCK, `SUPERSEDED` mode).
    Superseded,
}

impl ExecutionStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::InProgress => "InProgress",
            ExecutionStatus::Succeeded => "Succeeded",
            ExecutionStatus::Failed => "Failed",
            ExecutionStatus::Stopping => "Stopping",
            ExecutionStatus::Stopped => "Stopped",
            ExecutionStatus::Abandoned => "Abandoned",
            ExecutionStatus::Superseded => "Superseded",
        }
    }

    /// Whether an action execution (or a pipeline execution) has ended: neither InProgress nor Stopping.
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            ExecutionStatus::InProgress | ExecutionStatus::Stopping
        )
    }
}

/// Which actions RetryStageExecution runs again (the model's `StageRetryMode`, CP-RETRY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RetryMode {
    /// `FAILED_ACTIONS`: the stage's failed (and abandoned) actions, in the runOrder group where the
    /// execution ended; actions still in progress go on.
    #[serde(rename = "FAILED_ACTIONS")]
    FailedActions,
    /// `ALL_ACTIONS`: every action of the stage, from its first runOrder group.
    #[serde(rename = "ALL_ACTIONS")]
    AllActions,
}

impl RetryMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryMode::FailedActions => "FAILED_ACTIONS",
            RetryMode::AllActions => "ALL_ACTIONS",
        }
    }
}

impl FromStr for RetryMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "FAILED_ACTIONS" => Ok(RetryMode::FailedActions),
            "ALL_ACTIONS" => Ok(RetryMode::AllActions),
            other => Err(format!(
                "retryMode `{other}` is not FAILED_ACTIONS or ALL_ACTIONS"
            )),
        }
    }
}

impl fmt::Display for RetryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a pipeline handles several executions (the model's `ExecutionMode`, CP-STAGE-LOCK).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ExecutionMode {
    /// A stage holds one execution; a later one waits at the stage boundary, and a waiting one is
    /// superseded by a newer one arriving there. The default.
    #[default]
    #[serde(rename = "SUPERSEDED")]
    Superseded,
    /// A stage holds one execution; the others wait and enter in order (V2 pipelines only).
    #[serde(rename = "QUEUED")]
    Queued,
    /// Executions run independently; no stage is locked (V2 pipelines only).
    #[serde(rename = "PARALLEL")]
    Parallel,
}

impl ExecutionMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Superseded => "SUPERSEDED",
            ExecutionMode::Queued => "QUEUED",
            ExecutionMode::Parallel => "PARALLEL",
        }
    }
}

impl FromStr for ExecutionMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "SUPERSEDED" => Ok(ExecutionMode::Superseded),
            "QUEUED" => Ok(ExecutionMode::Queued),
            "PARALLEL" => Ok(ExecutionMode::Parallel),
            other => Err(format!(
                "executionMode `{other}` is not SUPERSEDED, QUEUED or PARALLEL"
            )),
        }
    }
}

/// The model's `PipelineType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PipelineType {
    /// The default when a declaration names none.
    #[default]
    V1,
    /// Needed for the `QUEUED` and `PARALLEL` execution modes.
    V2,
}

impl PipelineType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineType::V1 => "V1",
            PipelineType::V2 => "V2",
        }
    }
}

impl FromStr for PipelineType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "V1" => Ok(PipelineType::V1),
            "V2" => Ok(PipelineType::V2),
            other => Err(format!("pipelineType `{other}` is not V1 or V2")),
        }
    }
}

/// What a result put for a job of an abandoned action execution gets (CP-ABANDONED). AWS does not
/// document it; `Refuse` is the fake's inferred default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbandonedResults {
    /// `InvalidJobStateException`, naming CP-ABANDONED (recorded as a warning).
    #[default]
    Refuse,
    /// An empty 200, as for any accepted result; the result changes nothing and no job follows.
    Accept,
}

impl FromStr for AbandonedResults {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refuse" => Ok(AbandonedResults::Refuse),
            "accept" => Ok(AbandonedResults::Accept),
            other => Err(format!(
                "abandoned_results `{other}` is not `refuse` or `accept`"
            )),
        }
    }
}

impl fmt::Display for AbandonedResults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AbandonedResults::Refuse => "refuse",
            AbandonedResults::Accept => "accept",
        })
    }
}

/// What a result gets when it repeats, identically, the result its job already took: a client's retry after
/// the first call's response was lost (CP-REPEAT). AWS does not document it; `Refuse` is the fake's inferred
/// default, since the job is no longer InProgress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RepeatedResults {
    /// `InvalidJobStateException` naming CP-REPEAT, recorded as information, not a violation.
    #[default]
    Refuse,
    /// An empty 200, as if the result were applied now; nothing changes.
    Accept,
}

impl FromStr for RepeatedResults {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refuse" => Ok(RepeatedResults::Refuse),
            "accept" => Ok(RepeatedResults::Accept),
            other => Err(format!(
                "repeated_results `{other}` is not `refuse` or `accept`"
            )),
        }
    }
}

impl fmt::Display for RepeatedResults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RepeatedResults::Refuse => "refuse",
            RepeatedResults::Accept => "accept",
        })
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a success result ends the action execution (`docs/protocol.md`, CP-FINAL-100).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FinalOn {
    /// A success with percentComplete 100, or with no token, is final (the seed's rule).
    #[default]
    Progress100,
    /// Only a success without a continuation token is final (AWS's documented reading).
    NoToken,
}

impl FromStr for FinalOn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "progress-100" => Ok(FinalOn::Progress100),
            "no-token" => Ok(FinalOn::NoToken),
            other => Err(format!(
                "final_on `{other}` is not `progress-100` or `no-token`"
            )),
        }
    }
}

impl fmt::Display for FinalOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FinalOn::Progress100 => "progress-100",
            FinalOn::NoToken => "no-token",
        })
    }
}

/// From when a job's timeout counts (`docs/protocol.md`, CP-TIMEOUT). AWS does not document it: inferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobTimeoutFrom {
    /// From the moment the job is queued: time spent waiting for a poll counts (the default).
    #[default]
    Queued,
    /// From its acknowledgement: a job waiting for a poll has no deadline of its own, only its action
    /// execution's action timeout.
    Acknowledged,
}

impl FromStr for JobTimeoutFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "queued" => Ok(JobTimeoutFrom::Queued),
            "acknowledged" => Ok(JobTimeoutFrom::Acknowledged),
            other => Err(format!(
                "job_timeout_from `{other}` is not `queued` or `acknowledged`"
            )),
        }
    }
}

impl fmt::Display for JobTimeoutFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobTimeoutFrom::Queued => "queued",
            JobTimeoutFrom::Acknowledged => "acknowledged",
        })
    }
}

/// What the action timeout bounds (`docs/protocol.md`, CP-ACTION-TIMEOUT). AWS documents 24 hours for
/// custom actions without saying whether per job or per action execution: inferred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionTimeoutPer {
    /// One action execution over all its jobs; a retry is a new action execution with a new one (the
    /// default).
    #[default]
    ActionExecution,
    /// Each job alone: no bound over a chain of continuation jobs. (A job's own job timeout, never longer
    /// than the action timeout, still ends it.)
    Job,
}

impl FromStr for ActionTimeoutPer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "action-execution" => Ok(ActionTimeoutPer::ActionExecution),
            "job" => Ok(ActionTimeoutPer::Job),
            other => Err(format!(
                "action_timeout_per `{other}` is not `action-execution` or `job`"
            )),
        }
    }
}

impl fmt::Display for ActionTimeoutPer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionTimeoutPer::ActionExecution => "action-execution",
            ActionTimeoutPer::Job => "job",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_type_ids_parse_from_the_contract_form() {
        let id: ActionTypeId = "Test/ThirdParty/ApicaLoadtest/1".parse().unwrap();
        assert_eq!(id.owner, Owner::ThirdParty);
        assert_eq!(id.to_string(), "Test/ThirdParty/ApicaLoadtest/1");
        assert!(
            "Test/Banana/X/1"
                .parse::<ActionTypeId>()
                .unwrap_err()
                .contains("Banana")
        );
        assert!("Test/Custom/X".parse::<ActionTypeId>().is_err());
    }

    #[test]
    fn terminal_statuses_are_exactly_the_three_ends() {
        use JobStatus::*;
        let terminal: Vec<_> = [
            Created, Queued, Dispatched, InProgress, TimedOut, Succeeded, Failed,
        ]
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
        assert_eq!(terminal, vec![TimedOut, Succeeded, Failed]);
    }
}
