//! What makes an action pluggable: the [`Action`] trait the runtime drives, and the answers it gives.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_codepipeline::types::{
    Artifact, AwsSessionCredentials, EncryptionKey, EncryptionKeyType, JobData, ThirdPartyJobData,
};

use crate::token::WorkRef;

/// A boxed future, so that `Arc<dyn Action>` works.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the runtime knows about a job when it asks the action to work on it.
#[derive(Debug, Clone, Default)]
pub struct JobContext {
    /// This job's CodePipeline id (a continuation job has a new one).
    pub job_id: String,
    /// The action's configuration properties, secrets included (never log them).
    pub configuration: HashMap<String, String>,
    /// The job's artifacts, the temporary credentials that reach them and the pipeline's encryption key.
    pub artifacts: JobArtifacts,
}

/// The artifact part of a job's data (`inputArtifacts`, `outputArtifacts`, `artifactCredentials`,
/// `encryptionKey`), as the SDK delivers it. Each job carries its own credentials: a continuation job's
/// are new, and the previous job's expire once it has its answer.
#[derive(Debug, Clone, Default)]
pub struct JobArtifacts {
    /// The artifacts the action reads, each at its S3 location.
    pub input_artifacts: Vec<Artifact>,
    /// The artifacts the action must write, each at a key made for this action execution.
    pub output_artifacts: Vec<Artifact>,
    /// The temporary credentials for the pipeline's artifact bucket, when the job carries them.
    pub credentials: Option<ArtifactCredentials>,
    /// The pipeline's artifact encryption key (`{id, type: KMS}`), when it has one.
    pub encryption_key: Option<EncryptionKey>,
}

impl JobArtifacts {
    /// The artifact part of a custom action's job data.
    pub fn from_job_data(data: &JobData) -> Self {
        Self {
            input_artifacts: data.input_artifacts().to_vec(),
            output_artifacts: data.output_artifacts().to_vec(),
            credentials: data
                .artifact_credentials()
                .cloned()
                .map(ArtifactCredentials),
            encryption_key: data.encryption_key().cloned(),
        }
    }

    /// The artifact part of a third-party action's job data.
    pub fn from_third_party_job_data(data: &ThirdPartyJobData) -> Self {
        Self {
            input_artifacts: data.input_artifacts().to_vec(),
            output_artifacts: data.output_artifacts().to_vec(),
            credentials: data
                .artifact_credentials()
                .cloned()
                .map(ArtifactCredentials),
            encryption_key: data.encryption_key().cloned(),
        }
    }

    /// The KMS key id that uploads must name, when the pipeline encrypts its artifacts with one.
    pub fn kms_key_id(&self) -> Option<&str> {
        let key = self.encryption_key.as_ref()?;
        (*key.r#type() == EncryptionKeyType::Kms && !key.id().is_empty()).then(|| key.id())
    }
}

/// A job's temporary artifact credentials (access key id, secret access key, session token). A secret:
/// its `Debug` shows nothing of it, and nothing logs it.
#[derive(Clone, PartialEq)]
pub struct ArtifactCredentials(pub AwsSessionCredentials);

impl ArtifactCredentials {
    /// Credentials of the three parts.
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: &str) -> Self {
        Self(
            AwsSessionCredentials::builder()
                .access_key_id(access_key_id)
                .secret_access_key(secret_access_key)
                .session_token(session_token)
                .build()
                .expect("every required field is set"),
        )
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        self.0.access_key_id()
    }

    /// The secret access key (never log it).
    pub fn secret_access_key(&self) -> &str {
        self.0.secret_access_key()
    }

    /// The session token (never log it).
    pub fn session_token(&self) -> &str {
        self.0.session_token()
    }
}

impl std::fmt::Debug for ArtifactCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactCredentials(<redacted>)")
    }
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
