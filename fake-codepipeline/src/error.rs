//! Errors as the awsJson1.1 wire carries them: a shape name, a message, an HTTP status, and the rule id
//! (`docs/protocol.md`) the refusal enforces.

use std::fmt;

use axum::http::StatusCode;

/// An error answered to a client: `{"__type": type_name, "message": message}` with the same name in
/// `X-Amzn-Errortype`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status (400 for every modeled CodePipeline error).
    pub status: StatusCode,
    /// The error shape name, e.g. `InvalidNonceException`.
    pub type_name: &'static str,
    /// What was wrong, with which value, and what to do.
    pub message: String,
    /// The rule this refusal enforces, when there is one.
    pub rule: Option<sim_core::Rule>,
}

impl ApiError {
    /// A 400 error of `type_name`.
    pub fn new(type_name: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            type_name,
            message: message.into(),
            rule: None,
        }
    }

    /// Names the rule in the error and in the message (`... (CP-NONCE)`), as `docs/protocol.md` asks.
    pub fn rule(mut self, rule: sim_core::Rule) -> Self {
        self.rule = Some(rule);
        self.message = format!("{} ({rule})", self.message);
        self
    }

    /// Another status than 400.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", message)
    }

    /// `JobNotFoundException` for `job_id`.
    pub fn job_not_found(job_id: &str) -> Self {
        Self::new(
            "JobNotFoundException",
            format!("Job {job_id} was not found"),
        )
    }

    /// `InvalidJobStateException`.
    pub fn invalid_job_state(message: impl Into<String>) -> Self {
        Self::new("InvalidJobStateException", message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for ApiError {}
