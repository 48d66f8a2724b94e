//! The continuation token the agent hands CodePipeline and reads back on the next job.
//!
//! Format (plain text, at most 2048 characters, CodePipeline's limit):
//!
//! ```text
//! <work>;f=<failed rounds>
//! ```
//!
//! - `<work>` is what the action needs to find its work again. For the Apica action it is the backend's
//!   test id (`153245`), so the token starts with it; for the timed wait it is `wait:<start ms>:<deadline ms>`.
//!   Before any work exists (the backend was down on the first job) it is `pending:<idempotency key>`,
//!   the key being the first job's CodePipeline job id, so the next round starts the same work.
//! - `f=<n>` counts the consecutive rounds in which the backend could not be reached; a round that
//!   reaches it resets the count. After the configured number of failed rounds the agent fails the
//!   action with `SystemUnavailable`.
//!
//! A token without `;f=` (a bare `153245`) reads as zero failed rounds.
//!
//! This is the token's content. On the wire it is signed for its action execution (`;k=<key id>;s=<HMAC>`
//! after it, [`crate::signing`]); the unsigned form is what agents before token signing wrote.

use std::fmt;

/// CodePipeline's limit on a continuation token's length (the model says 1..2048).
pub const MAX_TOKEN_LEN: usize = 2048;

/// Room kept for the failed-round count and the signature ([`crate::signing`]): `;f=4294967295;k=<8>;s=<64>`
/// is 91 characters.
pub const SIGNED_RESERVE: usize = 128;

const PENDING_PREFIX: &str = "pending:";
const ROUNDS_SEPARATOR: &str = ";f=";

/// The work a continuation token points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// No work exists yet: the next round starts it with this idempotency key.
    Pending {
        /// The idempotency key: the CodePipeline job id of the action execution's first job.
        idempotency_key: String,
    },
    /// Work the action started, in the action's own words (e.g. the backend test id).
    Started(WorkRef),
}

/// An action's reference to its running work: non-empty, no `;`, does not start with `pending:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkRef(String);

impl WorkRef {
    /// Checks that `text` can travel inside a token.
    pub fn new(text: impl Into<String>) -> Result<Self, TokenError> {
        let text = text.into();
        if text.is_empty() {
            return Err(TokenError::EmptyWork);
        }
        if text.contains(';') || text.starts_with(PENDING_PREFIX) {
            return Err(TokenError::BadWork(text));
        }
        if text.len() > MAX_TOKEN_LEN - SIGNED_RESERVE {
            return Err(TokenError::TooLong(text.len()));
        }
        Ok(Self(text))
    }

    /// The reference as the action wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed continuation token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinuationToken {
    /// The work this action execution is about.
    pub work: Work,
    /// Consecutive rounds in which the backend could not be reached.
    pub failed_rounds: u32,
}

/// Why a token could not be built or read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// The work reference is empty.
    #[error("the work reference is empty")]
    EmptyWork,
    /// The work reference holds a character the token format reserves.
    #[error("the work reference {0:?} contains ';' or starts with 'pending:'")]
    BadWork(String),
    /// The token would exceed CodePipeline's limit.
    #[error("the token would be {0} characters long; CodePipeline accepts at most 2048")]
    TooLong(usize),
    /// The failed-round count is not a number.
    #[error("the failed-round count {0:?} in the continuation token is not a number")]
    BadRounds(String),
    /// A pending token without its idempotency key.
    #[error("the continuation token says 'pending:' but carries no idempotency key")]
    MissingKey,
    /// A signature without the id of the key that made it.
    #[error("the continuation token has a signature but names no key ('k=')")]
    MissingKeyId,
    /// A signature that is not 64 hex digits.
    #[error("the continuation token's signature {0:?} is not 64 hex digits")]
    BadSignature(String),
}

impl ContinuationToken {
    /// A token for work that has started, with no failed rounds.
    pub fn started(work: WorkRef) -> Self {
        Self {
            work: Work::Started(work),
            failed_rounds: 0,
        }
    }

    /// A token for work that could not be started yet.
    pub fn pending(idempotency_key: impl Into<String>, failed_rounds: u32) -> Self {
        Self {
            work: Work::Pending {
                idempotency_key: idempotency_key.into(),
            },
            failed_rounds,
        }
    }

    /// Reads a token that CodePipeline handed back.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let (work_text, failed_rounds) = match text.rsplit_once(ROUNDS_SEPARATOR) {
            Some((work, rounds)) => {
                let n = rounds
                    .parse::<u32>()
                    .map_err(|_| TokenError::BadRounds(rounds.to_string()))?;
                (work, n)
            }
            None => (text, 0),
        };
        let work = match work_text.strip_prefix(PENDING_PREFIX) {
            Some("") => return Err(TokenError::MissingKey),
            Some(key) => Work::Pending {
                idempotency_key: key.to_string(),
            },
            None => Work::Started(WorkRef::new(work_text)?),
        };
        Ok(Self {
            work,
            failed_rounds,
        })
    }

    /// The same work with one more failed round.
    pub fn with_failed_round(&self) -> Self {
        Self {
            work: self.work.clone(),
            failed_rounds: self.failed_rounds.saturating_add(1),
        }
    }

    /// The unsigned text (what agents before token signing wrote, and what a signature covers); fails only
    /// past 2048 characters. Tokens for CodePipeline go through [`crate::signing::TokenSealer::seal`].
    pub fn encode(&self) -> Result<String, TokenError> {
        let text = self.to_string();
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong(text.len()));
        }
        Ok(text)
    }
}

impl fmt::Display for ContinuationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.work {
            Work::Pending { idempotency_key } => write!(f, "{PENDING_PREFIX}{idempotency_key}")?,
            Work::Started(work) => write!(f, "{work}")?,
        }
        write!(f, "{ROUNDS_SEPARATOR}{}", self.failed_rounds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_token_starts_with_the_backend_id() {
        let token = ContinuationToken::started(WorkRef::new("153245").unwrap());
        assert_eq!(token.encode().unwrap(), "153245;f=0");
        assert_eq!(ContinuationToken::parse("153245;f=0").unwrap(), token);
    }

    #[test]
    fn failed_rounds_round_trip() {
        let token = ContinuationToken::started(WorkRef::new("153245").unwrap())
            .with_failed_round()
            .with_failed_round();
        assert_eq!(token.to_string(), "153245;f=2");
        assert_eq!(
            ContinuationToken::parse("153245;f=2")
                .unwrap()
                .failed_rounds,
            2
        );
    }

    #[test]
    fn a_pending_token_carries_the_idempotency_key() {
        let token = ContinuationToken::pending("0b5c7c8e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", 1);
        let text = token.encode().unwrap();
        assert_eq!(text, "pending:0b5c7c8e-1a2b-4c3d-8e9f-0a1b2c3d4e5f;f=1");
        assert_eq!(ContinuationToken::parse(&text).unwrap(), token);
    }

    #[test]
    fn a_bare_token_reads_as_zero_failed_rounds() {
        let token = ContinuationToken::parse("153245").unwrap();
        assert_eq!(token.failed_rounds, 0);
        assert_eq!(token.work, Work::Started(WorkRef::new("153245").unwrap()));
    }

    #[test]
    fn bad_tokens_are_errors_not_panics() {
        assert_eq!(
            ContinuationToken::parse("153245;f=x"),
            Err(TokenError::BadRounds("x".into()))
        );
        assert_eq!(
            ContinuationToken::parse("pending:;f=1"),
            Err(TokenError::MissingKey)
        );
        assert_eq!(ContinuationToken::parse(""), Err(TokenError::EmptyWork));
        assert!(WorkRef::new("a;b").is_err());
        assert!(WorkRef::new("pending:x").is_err());
        assert!(WorkRef::new("x".repeat(3000)).is_err());
    }
}
