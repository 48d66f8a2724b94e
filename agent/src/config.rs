//! The runtime's settings, validated: whatever the source (flags, environment, a test), a bad value
//! stops the agent at start with a message that names the setting.

use std::time::Duration;

use crate::action_type::ActionTypeId;
use crate::signing::TokenKeys;

/// A setting with a bad value, named as the operator would set it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct ConfigError {
    /// The setting, e.g. `JOB_ACTION_TYPE (--action-type)`.
    pub setting: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl ConfigError {
    /// An error about `setting`.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// A custom action's queryable property and the value to poll for (`JOB_QUERY_PARAM=Name=value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    /// The queryable property's name.
    pub name: String,
    /// The value jobs must have: 1..50 characters of `[A-Za-z0-9_-]`.
    pub value: String,
}

impl std::str::FromStr for QueryParam {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((name, value)) = text.split_once('=') else {
            return Err(format!(
                "{text:?} is not Name=value (e.g. ProjectName=checkout)"
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || name.len() > 50 {
            return Err(format!(
                "the property name {name:?} must be 1..50 characters"
            ));
        }
        let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if value.is_empty() || value.len() > 50 || !value.bytes().all(valid) {
            return Err(format!(
                "the value {value:?} must be 1..50 characters of A-Z a-z 0-9 _ -"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

/// Everything the job-worker runtime needs besides the CodePipeline client and the action.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The action type to poll for.
    pub action_type: ActionTypeId,
    /// The pause after a poll that did not fill the batch.
    pub poll_interval: Duration,
    /// A random extra pause of up to this much, so replicas spread out.
    pub poll_jitter: Duration,
    /// `maxBatchSize` of each poll.
    pub batch_size: u32,
    /// Jobs handled at once; the poll asks for no more than the free slots.
    pub max_in_flight: usize,
    /// Consecutive rounds the backend may be unreachable before the action fails with SystemUnavailable.
    pub max_failed_rounds: u32,
    /// How long a shutdown waits for acknowledged jobs to be answered.
    pub drain_deadline: Duration,
    /// For a custom action with a queryable property: poll only for jobs with this value.
    pub query_param: Option<QueryParam>,
    /// The keys that sign continuation tokens (the current one) and verify them (it and the previous ones).
    pub token_keys: TokenKeys,
    /// How long after start a token without a secret-key signature (an older agent's) is still accepted.
    pub unsigned_token_grace: Duration,
}

/// The default grace for unsigned continuation tokens after an upgrade: 3 days, longer than an action
/// execution runs (CodePipeline's action timeout for custom actions is 24 hours).
pub const DEFAULT_UNSIGNED_TOKEN_GRACE: Duration = Duration::from_secs(3 * 24 * 3600);

impl RuntimeConfig {
    /// Settings with the defaults for `action_type`: a 1 s poll interval, batches of 10, 64 jobs at once,
    /// 40 failed rounds, a 5 s drain deadline, no token key, a 3-day grace for unsigned tokens.
    pub fn new(action_type: ActionTypeId) -> Self {
        Self {
            action_type,
            poll_interval: Duration::from_secs(1),
            poll_jitter: Duration::from_millis(100),
            batch_size: 10,
            max_in_flight: 64,
            max_failed_rounds: 40,
            drain_deadline: Duration::from_secs(5),
            query_param: None,
            token_keys: TokenKeys::default(),
            unsigned_token_grace: DEFAULT_UNSIGNED_TOKEN_GRACE,
        }
    }

    /// Checks the settings against each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.batch_size == 0 {
            return Err(ConfigError::new(
                "AGENT_BATCH_SIZE (--batch-size)",
                "must be at least 1",
            ));
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::new(
                "AGENT_MAX_IN_FLIGHT (--max-in-flight)",
                "must be at least 1",
            ));
        }
        if self.max_failed_rounds == 0 {
            return Err(ConfigError::new(
                "AGENT_MAX_FAILED_ROUNDS (--max-failed-rounds)",
                "must be at least 1",
            ));
        }
        if self.query_param.is_some() && self.action_type.owner != crate::action_type::Owner::Custom
        {
            return Err(ConfigError::new(
                "JOB_QUERY_PARAM (--query-param)",
                format!(
                    "only a Custom action can poll by a queryable property; {} is not Custom",
                    self.action_type
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_param_parses_and_checks_the_value() {
        let q: QueryParam = "ProjectName=checkout-1".parse().unwrap();
        assert_eq!(
            (q.name.as_str(), q.value.as_str()),
            ("ProjectName", "checkout-1")
        );
        assert!("ProjectName".parse::<QueryParam>().is_err());
        assert!("ProjectName=a b".parse::<QueryParam>().is_err());
        assert!("=x".parse::<QueryParam>().is_err());
    }

    #[test]
    fn validation_names_the_setting() {
        let mut c = RuntimeConfig::new("Test/ThirdParty/ApicaLoadtest/1".parse().unwrap());
        c.batch_size = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("AGENT_BATCH_SIZE")
        );
        c.batch_size = 1;
        c.query_param = Some("A=b".parse().unwrap());
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("JOB_QUERY_PARAM")
        );
    }
}
