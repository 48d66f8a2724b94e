//! The job-worker calls of CodePipeline, one interface over the two flavours: third-party
//! (PollForThirdPartyJobs, GetThirdPartyJobDetails, clientToken on every call) and custom (PollForJobs,
//! whose answer already carries the nonce and the job data).

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, JobStatus};

use crate::action::{FailureKind, JobArtifacts};
use crate::action_type::{ActionTypeId, Owner};
use crate::config::QueryParam;
use crate::runtime::client_tokens::ClientTokens;
use crate::signing::ExecutionBinding;

/// A CodePipeline call that failed after the SDK's own retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct ApiError {
    /// The operation, e.g. `AcknowledgeThirdPartyJob`.
    pub operation: &'static str,
    /// The service's error code, e.g. `InvalidNonceException`, when it sent one.
    pub code: Option<String>,
    /// What went wrong, with the SDK's context.
    pub message: String,
    /// Whether trying again later may succeed: throttling, a server error (5xx), a timeout or a
    /// connection that failed or broke.
    pub transient: bool,
}

impl ApiError {
    fn from_sdk<E>(
        operation: &'static str,
        error: SdkError<E, aws_sdk_codepipeline::config::http::HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let server_error = error
            .raw_response()
            .is_some_and(|r| r.status().as_u16() >= 500);
        let transient = server_error
            || matches!(
                error,
                SdkError::DispatchFailure(_)
                    | SdkError::TimeoutError(_)
                    | SdkError::ResponseError(_)
            );
        let mut e = Self {
            operation,
            code: error.code().map(str::to_string),
            message: DisplayErrorContext(&error).to_string(),
            transient,
        };
        e.transient |= e.is_throttling();
        e
    }

    fn missing(operation: &'static str, what: &str) -> Self {
        Self {
            operation,
            code: None,
            message: format!("the answer has no {what}"),
            transient: false,
        }
    }

    /// Whether CodePipeline refused with a throttling error.
    pub fn is_throttling(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| c.contains("Throttl") || c == "TooManyRequestsException")
    }
}

/// A job a poll returned.
#[derive(Debug, Clone)]
pub struct PolledJob {
    /// The CodePipeline job id.
    pub job_id: String,
    kind: PolledKind,
}

#[derive(Debug, Clone)]
enum PolledKind {
    ThirdParty { client_id: String },
    Custom { details: Box<JobDetails> },
}

/// What the worker needs to acknowledge and work a job.
#[derive(Debug, Clone)]
pub struct JobDetails {
    /// The CodePipeline job id.
    pub job_id: String,
    /// The nonce to acknowledge with.
    pub nonce: String,
    /// The action's configuration properties (secrets included: never log them).
    pub configuration: HashMap<String, String>,
    /// The token of the previous answer, on a continuation job.
    pub continuation_token: Option<String>,
    /// The action execution the job belongs to, which its continuation token must be signed for.
    pub binding: ExecutionBinding,
    /// The action type the job data names, if it names one.
    pub action_type: Option<aws_sdk_codepipeline::types::ActionTypeId>,
    /// The job's artifacts, their temporary credentials (redacted in `Debug`) and the encryption key.
    pub artifacts: JobArtifacts,
    pub(crate) client_token: Option<String>,
}

/// How an acknowledgement went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// The job is ours (InProgress).
    InProgress,
    /// Another worker has it (InvalidNonceException).
    LostRace,
    /// CodePipeline answered another status: leave the job alone.
    Other(String),
}

/// The answer to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Success: with a token the action goes on, without one it is done.
    Success {
        /// The continuation token, or none for the final answer.
        continuation_token: Option<String>,
        /// The id that fills the Details link.
        external_execution_id: Option<String>,
        /// 0..100.
        percent_complete: Option<u8>,
        /// A line for the console.
        summary: String,
    },
    /// Failure: always final.
    Failure {
        /// The failure type.
        kind: FailureKind,
        /// What happened and what to do.
        message: String,
        /// The id that fills the Details link.
        external_execution_id: Option<String>,
    },
}

enum Flavor {
    ThirdParty(Arc<ClientTokens>),
    Custom(Option<QueryParam>),
}

/// CodePipeline's job API for one action type.
pub struct JobApi {
    client: Client,
    action_type: aws_sdk_codepipeline::types::ActionTypeId,
    flavor: Flavor,
}

/// Cuts `text` to at most `max` characters (CodePipeline's length limits count characters).
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}

impl JobApi {
    /// The API for `action_type`; a third-party action needs its client tokens.
    pub fn new(
        client: Client,
        action_type: &ActionTypeId,
        client_tokens: Option<Arc<ClientTokens>>,
        query_param: Option<QueryParam>,
    ) -> Result<Self, crate::config::ConfigError> {
        let flavor = match action_type.owner {
            Owner::ThirdParty => Flavor::ThirdParty(client_tokens.ok_or_else(|| {
                crate::config::ConfigError::new(
                    "JOB_CLIENT_TOKENS_FILE (--client-tokens-file)",
                    format!("{action_type} is a ThirdParty action: give the file of clientId -> clientToken pairs"),
                )
            })?),
            Owner::Custom => Flavor::Custom(query_param),
        };
        Ok(Self {
            client,
            action_type: action_type.to_sdk(),
            flavor,
        })
    }

    /// Asks for up to `max` jobs.
    pub async fn poll(&self, max: u32) -> Result<Vec<PolledJob>, ApiError> {
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        match &self.flavor {
            Flavor::ThirdParty(_) => {
                const OP: &str = "PollForThirdPartyJobs";
                let out = self
                    .client
                    .poll_for_third_party_jobs()
                    .action_type_id(self.action_type.clone())
                    .max_batch_size(max)
                    .send()
                    .await
                    .map_err(|e| ApiError::from_sdk(OP, e))?;
                Ok(out
                    .jobs()
                    .iter()
                    .filter_map(|j| {
                        let (Some(job_id), Some(client_id)) = (j.job_id(), j.client_id()) else {
                            tracing::warn!(
                                "PollForThirdPartyJobs returned a job without jobId or clientId"
                            );
                            return None;
                        };
                        Some(PolledJob {
                            job_id: job_id.to_string(),
                            kind: PolledKind::ThirdParty {
                                client_id: client_id.to_string(),
                            },
                        })
                    })
                    .collect())
            }
            Flavor::Custom(query) => {
                const OP: &str = "PollForJobs";
                let mut request = self
                    .client
                    .poll_for_jobs()
                    .action_type_id(self.action_type.clone())
                    .max_batch_size(max);
                if let Some(q) = query {
                    request = request.query_param(&q.name, &q.value);
                }
                let out = request
                    .send()
                    .await
                    .map_err(|e| ApiError::from_sdk(OP, e))?;
                Ok(out
                    .jobs()
                    .iter()
                    .filter_map(|j| {
                        let (Some(job_id), Some(nonce)) = (j.id(), j.nonce()) else {
                            tracing::warn!("PollForJobs returned a job without id or nonce");
                            return None;
                        };
                        let data = j.data();
                        let details = JobDetails {
                            job_id: job_id.to_string(),
                            nonce: nonce.to_string(),
                            configuration: data
                                .and_then(|d| d.action_configuration())
                                .and_then(|c| c.configuration())
                                .cloned()
                                .unwrap_or_default(),
                            continuation_token: data
                                .and_then(|d| d.continuation_token())
                                .map(str::to_string),
                            binding: ExecutionBinding::from_context(
                                data.and_then(|d| d.pipeline_context()),
                            ),
                            action_type: data.and_then(|d| d.action_type_id()).cloned(),
                            artifacts: data.map(JobArtifacts::from_job_data).unwrap_or_default(),
                            client_token: None,
                        };
                        Some(PolledJob {
                            job_id: job_id.to_string(),
                            kind: PolledKind::Custom {
                                details: Box::new(details),
                            },
                        })
                    })
                    .collect())
            }
        }
    }

    /// The job's nonce and data: GetThirdPartyJobDetails for a partner job, the poll's answer for a custom one.
    pub async fn details(&self, job: PolledJob) -> Result<JobDetails, ApiError> {
        const OP: &str = "GetThirdPartyJobDetails";
        let client_id = match job.kind {
            PolledKind::Custom { details } => return Ok(*details),
            PolledKind::ThirdParty { client_id } => client_id,
        };
        let Flavor::ThirdParty(tokens) = &self.flavor else {
            return Err(ApiError::missing(OP, "flavour"));
        };
        let Some(client_token) = tokens.get(&client_id) else {
            return Err(ApiError {
                operation: OP,
                code: None,
                transient: false,
                message: format!(
                    "no clientToken for clientId {client_id} in JOB_CLIENT_TOKENS_FILE: add the pair the customer \
                     registered"
                ),
            });
        };
        let out = self
            .client
            .get_third_party_job_details()
            .job_id(&job.job_id)
            .client_token(&client_token)
            .send()
            .await
            .map_err(|e| ApiError::from_sdk(OP, e))?;
        let details = out
            .job_details()
            .ok_or_else(|| ApiError::missing(OP, "jobDetails"))?;
        let nonce = details
            .nonce()
            .ok_or_else(|| ApiError::missing(OP, "nonce"))?;
        let data = details.data();
        Ok(JobDetails {
            job_id: job.job_id,
            nonce: nonce.to_string(),
            configuration: data
                .and_then(|d| d.action_configuration())
                .and_then(|c| c.configuration())
                .cloned()
                .unwrap_or_default(),
            continuation_token: data
                .and_then(|d| d.continuation_token())
                .map(str::to_string),
            binding: ExecutionBinding::from_context(data.and_then(|d| d.pipeline_context())),
            action_type: data.and_then(|d| d.action_type_id()).cloned(),
            artifacts: data
                .map(JobArtifacts::from_third_party_job_data)
                .unwrap_or_default(),
            client_token: Some(client_token),
        })
    }

    /// Whether the job is of the action type this API polls for (a job that names none is taken to be).
    pub fn serves(&self, job: &JobDetails) -> bool {
        job.action_type
            .as_ref()
            .is_none_or(|t| t == &self.action_type)
    }

    /// Acknowledges the job with its nonce.
    pub async fn acknowledge(&self, job: &JobDetails) -> Result<Ack, ApiError> {
        let result = match &job.client_token {
            Some(token) => self
                .client
                .acknowledge_third_party_job()
                .job_id(&job.job_id)
                .nonce(&job.nonce)
                .client_token(token)
                .send()
                .await
                .map(|o| o.status().cloned())
                .map_err(|e| ApiError::from_sdk("AcknowledgeThirdPartyJob", e)),
            None => self
                .client
                .acknowledge_job()
                .job_id(&job.job_id)
                .nonce(&job.nonce)
                .send()
                .await
                .map(|o| o.status().cloned())
                .map_err(|e| ApiError::from_sdk("AcknowledgeJob", e)),
        };
        match result {
            Ok(Some(JobStatus::InProgress)) => Ok(Ack::InProgress),
            Ok(other) => Ok(Ack::Other(
                other
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "none".into()),
            )),
            Err(e) if e.code.as_deref() == Some("InvalidNonceException") => Ok(Ack::LostRace),
            Err(e) => Err(e),
        }
    }

    /// Delivers the answer.
    pub async fn answer(&self, job: &JobDetails, answer: &Answer) -> Result<(), ApiError> {
        match answer {
            Answer::Success {
                continuation_token,
                external_execution_id,
                percent_complete,
                summary,
            } => {
                let details = ExecutionDetails::builder()
                    .summary(clip(summary, 2048))
                    .set_external_execution_id(
                        external_execution_id.as_deref().map(|s| clip(s, 1500)),
                    )
                    .set_percent_complete(percent_complete.map(|p| i32::from(p.min(100))))
                    .build();
                match &job.client_token {
                    Some(token) => self
                        .client
                        .put_third_party_job_success_result()
                        .job_id(&job.job_id)
                        .client_token(token)
                        .set_continuation_token(continuation_token.clone())
                        .execution_details(details)
                        .send()
                        .await
                        .map(drop)
                        .map_err(|e| ApiError::from_sdk("PutThirdPartyJobSuccessResult", e)),
                    None => self
                        .client
                        .put_job_success_result()
                        .job_id(&job.job_id)
                        .set_continuation_token(continuation_token.clone())
                        .execution_details(details)
                        .send()
                        .await
                        .map(drop)
                        .map_err(|e| ApiError::from_sdk("PutJobSuccessResult", e)),
                }
            }
            Answer::Failure {
                kind,
                message,
                external_execution_id,
            } => {
                let details = FailureDetails::builder()
                    .r#type(kind.to_sdk())
                    .message(clip(message, 5000))
                    .set_external_execution_id(
                        external_execution_id.as_deref().map(|s| clip(s, 1500)),
                    )
                    .build()
                    .map_err(|e| ApiError {
                        operation: "FailureDetails",
                        code: None,
                        transient: false,
                        message: e.to_string(),
                    })?;
                match &job.client_token {
                    Some(token) => self
                        .client
                        .put_third_party_job_failure_result()
                        .job_id(&job.job_id)
                        .client_token(token)
                        .failure_details(details)
                        .send()
                        .await
                        .map(drop)
                        .map_err(|e| ApiError::from_sdk("PutThirdPartyJobFailureResult", e)),
                    None => self
                        .client
                        .put_job_failure_result()
                        .job_id(&job.job_id)
                        .failure_details(details)
                        .send()
                        .await
                        .map(drop)
                        .map_err(|e| ApiError::from_sdk("PutJobFailureResult", e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("abc", 10), "abc");
    }
}
