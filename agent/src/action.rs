//! What makes an action pluggable: the [`Action`] trait the runtime drives, and the answers it gives.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use crate::token::WorkRef;

/// A boxed future, so that `Arc<dyn Action>` works.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the runtime knows about a job when it asks the action to work on it.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// This job's CodePipeline id (a continuation job has a new one).
    pub job_id: String,
    /// The action's configuration properties, secrets included (never log them).
    pub configuration: HashMap<String, String>,
}

impl JobContext {
    /// A required configuration property, or the ConfigurationError that names it.
    pub fn required(&self, name: &str, hint: &str) -> Result<&str, ActionError> {
        match self.configuration.get(name).map(|v| v.trim()) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ActionError::Configuration {
                property: name.to_string(),
                message: format!("The action configuration has no {name}: set {name} to {hint}."),
            }),
        }
    }

    /// An optional configuration property (empty counts as absent).
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.configuration
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Where the work stands, as the action sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Still running: answer success with a continuation token for `work`.
    Running {
        /// The reference that goes into the token.
        work: WorkRef,
        /// The id that fills the Details link.
        external_execution_id: String,
        /// 0..99 (the runtime keeps 100 for the final answer).
        percent_complete: u8,
        /// A line for the pipeline's console.
        summary: String,
    },
    /// Done and passed: answer success with 100 and no token.
    Succeeded {
        /// The id that fills the Details link.
        external_execution_id: String,
        /// A line for the pipeline's console.
        summary: String,
    },
    /// Done and failed: answer a failure.
    Failed {
        /// The failure type CodePipeline shows.
        kind: FailureKind,
        /// What happened and what to do, the backend's own reason included.
        message: String,
        /// The id that fills the Details link, when the work exists.
        external_execution_id: Option<String>,
    },
}

/// The failure types an action can report (a subset of CodePipeline's `FailureType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The work ran and failed.
    JobFailed,
    /// The action's configuration is wrong.
    ConfigurationError,
    /// The backend refused the credentials.
    PermissionError,
    /// The backend could not be reached for too long.
    SystemUnavailable,
}

impl FailureKind {
    /// The SDK's enum value.
    pub fn to_sdk(self) -> aws_sdk_codepipeline::types::FailureType {
        use aws_sdk_codepipeline::types::FailureType;
        match self {
            FailureKind::JobFailed => FailureType::JobFailed,
            FailureKind::ConfigurationError => FailureType::ConfigurationError,
            FailureKind::PermissionError => FailureType::PermissionError,
            FailureKind::SystemUnavailable => FailureType::SystemUnavailable,
        }
    }

    /// The name CodePipeline uses, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::JobFailed => "JobFailed",
            FailureKind::ConfigurationError => "ConfigurationError",
            FailureKind::PermissionError => "PermissionError",
            FailureKind::SystemUnavailable => "SystemUnavailable",
        }
    }
}

/// Why an action could not take a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The backend could not be reached (after the action's own short retries): the runtime counts a
    /// failed round and answers "still running".
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// A configuration property is wrong or missing.
    #[error("{message}")]
    Configuration {
        /// The property to fix.
        property: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The backend refused the credentials.
    #[error("{0}")]
    Permission(String),
    /// The work cannot go on (e.g. the backend lost it).
    #[error("{0}")]
    Failed(String),
}

impl ActionError {
    /// The final answer for an error that is not worth another round.
    pub fn into_failure(self, external_execution_id: Option<String>) -> Step {
        let (kind, message) = match self {
            ActionError::Unavailable(message) => (FailureKind::SystemUnavailable, message),
            ActionError::Configuration { message, .. } => {
                (FailureKind::ConfigurationError, message)
            }
            ActionError::Permission(message) => (FailureKind::PermissionError, message),
            ActionError::Failed(message) => (FailureKind::JobFailed, message),
        };
        Step::Failed {
            kind,
            message,
            external_execution_id,
        }
    }
}

/// A kind of work the runtime can drive with continuation tokens.
///
/// Both methods must be idempotent over retries and redeploys: `start` with the same key must find the
/// same work, and `check` must not change the work.
pub trait Action: Send + Sync + 'static {
    /// A short name for logs (`apica`, `timed-wait`).
    fn name(&self) -> &'static str;

    /// Starts the work for an action execution, keyed by `idempotency_key` (the first job's id).
    fn start<'a>(
        &'a self,
        job: &'a JobContext,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Step, ActionError>>;

    /// Checks work started earlier.
    fn check<'a>(
        &'a self,
        job: &'a JobContext,
        work: &'a WorkRef,
    ) -> BoxFuture<'a, Result<Step, ActionError>>;

    /// The externalExecutionId of started work, for answers given without reaching the backend.
    fn external_execution_id(&self, work: &WorkRef) -> String {
        work.as_str().to_string()
    }
}
