//! Continuation tokens signed and bound to their action execution, so that a token handed to another
//! execution (or altered, or forged with a `pending:<someone else's key>`) is refused instead of believed.
//!
//! A signed token is the plain token ([`crate::token`]) followed by the id of the key that signed it and an
//! HMAC-SHA256, in hex:
//!
//! ```text
//! <work>;f=<failed rounds>;k=<key id>;s=<64 hex digits>
//! ```
//!
//! The HMAC covers everything before `;s=` and the job's [`ExecutionBinding`] (its `actionExecutionId`), so
//! the same text is valid for one action execution only. The key id is the first 8 hex digits of the key's
//! SHA-256 (which key signed, for rotation and for an error that names it); `0` means "no key configured":
//! such a token is bound to its execution but anyone who knows this format can mint one.
//!
//! Tokens of the previous agent version carry no signature: they are accepted, with a warning, during the
//! grace period after start (`AGENT_UNSIGNED_TOKEN_GRACE`), so an upgrade does not fail the tests running.

use std::fmt;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::token::{ContinuationToken, MAX_TOKEN_LEN, TokenError};

/// The shortest key accepted, in bytes: 128 bits, the HMAC's security level with a random key.
pub const MIN_KEY_LEN: usize = 16;

/// Separates this MAC's inputs from any other use of the same key.
const DOMAIN: &[u8] = b"codepipeline-agent continuation token v1\0";
const KEY_ID_FIELD: &str = ";k=";
const SIGNATURE_FIELD: &str = ";s=";
/// The key id of tokens minted without a configured key.
const UNKEYED_ID: &str = "0";

/// What a token is bound to: the action execution its job belongs to, as the job data names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionBinding {
    /// `data.pipelineContext.action.actionExecutionId`: custom jobs carry it, and so do third-party jobs
    /// (the model leaves only `pipelineArn` and `pipelineExecutionId` out of their `pipelineContext`).
    ActionExecution(String),
    /// A third-party job without an `actionExecutionId`: the pipeline, stage and action names. Every
    /// execution of that action shares them, so this binds a token to the action, not to one execution.
    ActionSlot {
        /// `pipelineContext.pipelineName`.
        pipeline: String,
        /// `pipelineContext.stage.name`.
        stage: String,
        /// `pipelineContext.action.name`.
        action: String,
    },
    /// The job names no execution at all (CodePipeline always sends one; a stub might not).
    Unbound,
}

impl ExecutionBinding {
    /// The binding of a job with this pipeline context: its actionExecutionId, else its action's names.
    pub fn from_context(context: Option<&aws_sdk_codepipeline::types::PipelineContext>) -> Self {
        let Some(context) = context else {
            return Self::Unbound;
        };
        let action = context.action();
        if let Some(id) = action
            .and_then(|a| a.action_execution_id())
            .filter(|id| !id.is_empty())
        {
            return Self::ActionExecution(id.to_string());
        }
        let pipeline = context.pipeline_name().unwrap_or_default();
        let stage = context.stage().and_then(|s| s.name()).unwrap_or_default();
        let action = action.and_then(|a| a.name()).unwrap_or_default();
        if pipeline.is_empty() && stage.is_empty() && action.is_empty() {
            return Self::Unbound;
        }
        Self::ActionSlot {
            pipeline: pipeline.to_string(),
            stage: stage.to_string(),
            action: action.to_string(),
        }
    }

    /// The bytes the MAC covers; the variants cannot collide (names hold no newline).
    fn canonical(&self) -> String {
        match self {
            Self::ActionExecution(id) => format!("actionExecutionId\n{id}"),
            Self::ActionSlot {
                pipeline,
                stage,
                action,
            } => format!("action\n{pipeline}\n{stage}\n{action}"),
            Self::Unbound => "unbound".to_string(),
        }
    }
}

impl fmt::Display for ExecutionBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ActionExecution(id) => write!(f, "action execution {id}"),
            Self::ActionSlot {
                pipeline,
                stage,
                action,
            } => write!(f, "action {pipeline}/{stage}/{action}"),
            Self::Unbound => f.write_str("a job that names no action execution"),
        }
    }
}

/// A secret key for signing tokens, known by its id (the secret is never printed).
#[derive(Clone)]
pub struct TokenKey {
    id: String,
    secret: Vec<u8>,
}

impl TokenKey {
    /// A key from its secret text (at least 16 bytes; e.g. `openssl rand -hex 32`).
    pub fn new(secret: &str) -> Result<Self, String> {
        let secret = secret.trim();
        if secret.len() < MIN_KEY_LEN {
            return Err(format!(
                "a token key must be at least {MIN_KEY_LEN} bytes long, this one is {}: generate one with \
                 `openssl rand -hex 32`",
                secret.len()
            ));
        }
        let digest = Sha256::digest(secret.as_bytes());
        Ok(Self {
            id: hex(&digest[..4]),
            secret: secret.as_bytes().to_vec(),
        })
    }

    /// The key's id: the first 8 hex digits of its SHA-256, as tokens name it.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKey({})", self.id)
    }
}

/// The configured keys: the current one signs, it and the previous ones verify (rotation).
#[derive(Debug, Clone, Default)]
pub struct TokenKeys {
    current: Option<TokenKey>,
    previous: Vec<TokenKey>,
}

impl TokenKeys {
    /// Keys for signing with `current` and accepting tokens of `current` or any of `previous`. Without a
    /// current key tokens are bound to their execution but not authenticated.
    pub fn new(current: Option<TokenKey>, previous: Vec<TokenKey>) -> Self {
        Self { current, previous }
    }

    /// The key that signs, if one is configured.
    pub fn current(&self) -> Option<&TokenKey> {
        self.current.as_ref()
    }

    /// The keys still accepted but no longer used to sign.
    pub fn previous(&self) -> &[TokenKey] {
        &self.previous
    }

    fn find(&self, id: &str) -> Option<&TokenKey> {
        self.current
            .iter()
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

/// How far a token that was accepted can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Signed with a configured key for this action execution.
    Signed,
    /// Bound to this action execution by an agent that had no key: anyone could have minted it.
    Unkeyed,
    /// Written by the previous agent version (no signature), accepted during the grace period.
    Unsigned,
}

/// A token read back and accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// What the token says.
    pub token: ContinuationToken,
    /// Why it was accepted.
    pub trust: Trust,
}

/// Why a continuation token was refused; each message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a token this agent writes.
    #[error("the continuation token is not one this agent wrote ({0})")]
    Malformed(TokenError),
    /// The signature is not this execution's under the key it names.
    #[error(
        "the continuation token was not minted for this job's {0}: it belongs to another action execution or \
         was altered, and the agent does not report another execution's work as this one's"
    )]
    NotThisExecution(ExecutionBinding),
    /// Signed with a key the agent does not hold.
    #[error(
        "the continuation token is signed with token key {0}, which this agent does not hold (AGENT_TOKEN_KEY, \
         AGENT_TOKEN_PREVIOUS_KEYS): if that key was rotated out while executions still used it, add it back as \
         a previous key"
    )]
    UnknownKey(String),
    /// A token without a secret-key signature, after the grace period.
    #[error(
        "the continuation token is not signed with a secret key (an agent without AGENT_TOKEN_KEY, or one from \
         before token signing, wrote it) and the grace period for such tokens (AGENT_UNSIGNED_TOKEN_GRACE) is \
         over"
    )]
    UnsignedAfterGrace,
}

/// Signs tokens for their execution and checks the ones CodePipeline hands back.
#[derive(Debug, Clone)]
pub struct TokenSealer {
    keys: TokenKeys,
    unsigned_until: Option<Instant>,
}

impl TokenSealer {
    /// A sealer that accepts tokens without a secret-key signature for `grace` from now.
    pub fn new(keys: TokenKeys, grace: Duration) -> Self {
        Self {
            keys,
            // Past what an Instant can hold: for good.
            unsigned_until: Instant::now().checked_add(grace),
        }
    }

    /// The configured keys.
    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    fn in_grace(&self) -> bool {
        self.unsigned_until
            .is_none_or(|until| Instant::now() < until)
    }

    /// The token as text for CodePipeline, signed for `binding`; fails only past 2048 characters.
    pub fn seal(
        &self,
        token: &ContinuationToken,
        binding: &ExecutionBinding,
    ) -> Result<String, TokenError> {
        let (id, secret) = match &self.keys.current {
            Some(key) => (key.id.as_str(), key.secret.as_slice()),
            None => (UNKEYED_ID, &[][..]),
        };
        let signed = format!("{token}{KEY_ID_FIELD}{id}");
        let text = format!(
            "{signed}{SIGNATURE_FIELD}{}",
            hex(&mac(secret, binding, &signed).finalize().into_bytes())
        );
        if text.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong(text.len()));
        }
        Ok(text)
    }

    /// Reads a token for a job of `binding`: accepted if signed for it with a key held here, or, during the
    /// grace period, if it has no secret-key signature.
    pub fn open(&self, text: &str, binding: &ExecutionBinding) -> Result<Opened, Refusal> {
        let Some((signed, signature)) = text.rsplit_once(SIGNATURE_FIELD) else {
            // The previous version's format: no signature at all.
            let token = ContinuationToken::parse(text).map_err(Refusal::Malformed)?;
            return if self.in_grace() {
                Ok(Opened {
                    token,
                    trust: Trust::Unsigned,
                })
            } else {
                Err(Refusal::UnsignedAfterGrace)
            };
        };
        let Some((content, id)) = signed.rsplit_once(KEY_ID_FIELD) else {
            return Err(Refusal::Malformed(TokenError::MissingKeyId));
        };
        let token = ContinuationToken::parse(content).map_err(Refusal::Malformed)?;
        let tag = unhex(signature).ok_or_else(|| {
            Refusal::Malformed(TokenError::BadSignature(
                signature.chars().take(80).collect(),
            ))
        })?;
        let (secret, trust) = if id == UNKEYED_ID {
            (&[][..], Trust::Unkeyed)
        } else {
            let key = self
                .keys
                .find(id)
                .ok_or_else(|| Refusal::UnknownKey(id.to_string()))?;
            (key.secret.as_slice(), Trust::Signed)
        };
        // Constant-time comparison (hmac's verify).
        mac(secret, binding, signed)
            .verify_slice(&tag)
            .map_err(|_| Refusal::NotThisExecution(binding.clone()))?;
        if trust == Trust::Unkeyed && self.keys.current.is_some() && !self.in_grace() {
            return Err(Refusal::UnsignedAfterGrace);
        }
        Ok(Opened { token, trust })
    }
}

fn mac(secret: &[u8], binding: &ExecutionBinding, signed: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(DOMAIN);
    mac.update(binding.canonical().as_bytes());
    mac.update(b"\0");
    mac.update(signed.as_bytes());
    mac
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Work, WorkRef};

    const GRACE: Duration = Duration::from_secs(3600);

    fn key(text: &str) -> TokenKey {
        TokenKey::new(text).unwrap()
    }

    fn keyed(current: &str, previous: &[&str], grace: Duration) -> TokenSealer {
        TokenSealer::new(
            TokenKeys::new(
                Some(key(current)),
                previous.iter().map(|k| key(k)).collect(),
            ),
            grace,
        )
    }

    fn exec(id: &str) -> ExecutionBinding {
        ExecutionBinding::ActionExecution(id.to_string())
    }

    fn started(id: &str) -> ContinuationToken {
        ContinuationToken::started(WorkRef::new(id).unwrap())
    }

    #[test]
    fn a_signed_token_opens_for_its_own_execution_only() {
        let sealer = keyed("k1-0123456789abcdef", &[], GRACE);
        let text = sealer.seal(&started("153245"), &exec("aex-1")).unwrap();
        let id = key("k1-0123456789abcdef").id().to_string();
        assert!(text.starts_with(&format!("153245;f=0;k={id};s=")), "{text}");
        assert_eq!(text.len(), "153245;f=0;k=;s=".len() + 8 + 64);
        assert_eq!(
            sealer.open(&text, &exec("aex-1")).unwrap(),
            Opened {
                token: started("153245"),
                trust: Trust::Signed
            }
        );
        let err = sealer.open(&text, &exec("aex-2")).unwrap_err();
        assert_eq!(err, Refusal::NotThisExecution(exec("aex-2")));
        assert!(err.to_string().contains("aex-2"), "{err}");
    }

    #[test]
    fn an_altered_token_is_refused() {
        let sealer = keyed("k1-0123456789abcdef", &[], GRACE);
        let text = sealer
            .seal(&started("153245").with_failed_round(), &exec("aex-1"))
            .unwrap();
        // Another test id, or a reset failed-round count, under the same signature.
        for forged in [
            text.replacen("153245", "153246", 1),
            text.replacen(";f=1", ";f=0", 1),
        ] {
            assert_eq!(
                sealer.open(&forged, &exec("aex-1")),
                Err(Refusal::NotThisExecution(exec("aex-1"))),
                "{forged}"
            );
        }
    }

    #[test]
    fn a_pending_token_for_a_foreign_key_cannot_be_forged() {
        let sealer = keyed("k1-0123456789abcdef", &[], GRACE);
        let mine = sealer
            .seal(
                &ContinuationToken::pending("my-first-job", 1),
                &exec("aex-1"),
            )
            .unwrap();
        let forged = mine.replacen("my-first-job", "their-first-job", 1);
        assert!(matches!(
            sealer.open(&forged, &exec("aex-1")),
            Err(Refusal::NotThisExecution(_))
        ));
    }

    #[test]
    fn rotation_previous_keys_verify_and_only_the_current_one_signs() {
        let old = keyed("old-key-0123456789", &[], GRACE);
        let text = old.seal(&started("7"), &exec("aex-1")).unwrap();
        let rotated = keyed("new-key-0123456789", &["old-key-0123456789"], GRACE);
        assert_eq!(
            rotated.open(&text, &exec("aex-1")).unwrap().trust,
            Trust::Signed
        );
        let new_text = rotated.seal(&started("7"), &exec("aex-1")).unwrap();
        assert!(new_text.contains(&format!(";k={};", key("new-key-0123456789").id())));
        // Once the old key is dropped its tokens are refused, naming the key.
        let dropped = keyed("new-key-0123456789", &[], GRACE);
        let err = dropped.open(&text, &exec("aex-1")).unwrap_err();
        assert_eq!(
            err,
            Refusal::UnknownKey(key("old-key-0123456789").id().to_string())
        );
        assert!(
            err.to_string().contains("AGENT_TOKEN_PREVIOUS_KEYS"),
            "{err}"
        );
    }

    #[test]
    fn unsigned_tokens_of_the_previous_version_are_accepted_during_the_grace_only() {
        let during = keyed("k1-0123456789abcdef", &[], GRACE);
        assert_eq!(
            during.open("153245;f=2", &exec("aex-1")).unwrap(),
            Opened {
                token: started("153245").with_failed_round().with_failed_round(),
                trust: Trust::Unsigned
            }
        );
        assert_eq!(
            during.open("153245", &exec("aex-1")).unwrap().trust,
            Trust::Unsigned
        );
        let after = keyed("k1-0123456789abcdef", &[], Duration::ZERO);
        let err = after.open("153245;f=2", &exec("aex-1")).unwrap_err();
        assert_eq!(err, Refusal::UnsignedAfterGrace);
        assert!(err.to_string().contains("AGENT_UNSIGNED_TOKEN_GRACE"));
    }

    #[test]
    fn without_a_key_tokens_are_still_bound_to_their_execution() {
        let unkeyed = TokenSealer::new(TokenKeys::default(), Duration::ZERO);
        let text = unkeyed.seal(&started("153245"), &exec("aex-1")).unwrap();
        assert!(text.starts_with("153245;f=0;k=0;s="), "{text}");
        assert_eq!(
            unkeyed.open(&text, &exec("aex-1")).unwrap().trust,
            Trust::Unkeyed
        );
        assert!(matches!(
            unkeyed.open(&text, &exec("aex-2")),
            Err(Refusal::NotThisExecution(_))
        ));
        // Adding a key later: the keyless tokens still running are honoured during the grace, then refused.
        let during = keyed("k1-0123456789abcdef", &[], GRACE);
        assert_eq!(
            during.open(&text, &exec("aex-1")).unwrap().trust,
            Trust::Unkeyed
        );
        let after = keyed("k1-0123456789abcdef", &[], Duration::ZERO);
        assert_eq!(
            after.open(&text, &exec("aex-1")),
            Err(Refusal::UnsignedAfterGrace)
        );
    }

    #[test]
    fn a_signed_token_stays_within_codepipelines_limit() {
        let sealer = keyed("k1-0123456789abcdef", &[], GRACE);
        let longest =
            WorkRef::new("x".repeat(MAX_TOKEN_LEN - crate::token::SIGNED_RESERVE)).unwrap();
        let token = ContinuationToken {
            work: Work::Started(longest),
            failed_rounds: u32::MAX,
        };
        let text = sealer.seal(&token, &exec("aex-1")).unwrap();
        assert!(text.len() <= MAX_TOKEN_LEN, "{}", text.len());
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let sealer = keyed("k1-0123456789abcdef", &[], GRACE);
        for text in [
            "",
            ";s=",
            "1;f=0;s=00",
            "1;f=0;k=0;s=zz",
            "1;f=0;k=0;s=é",
            &format!("1;f=0;k=0;s={}", "é".repeat(32)),
            "1;f=x;k=0;s=",
        ] {
            assert!(sealer.open(text, &exec("a")).is_err(), "{text:?}");
        }
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        assert!(TokenKey::new("short").unwrap_err().contains("openssl rand"));
        let k = key("a-secret-that-is-long-enough");
        assert!(!format!("{k:?}").contains("secret"));
        assert_eq!(k.id().len(), 8);
    }

    #[test]
    fn the_binding_comes_from_the_pipeline_context() {
        use aws_sdk_codepipeline::types::{ActionContext, PipelineContext, StageContext};
        let with_id = PipelineContext::builder()
            .action(
                ActionContext::builder()
                    .name("Load")
                    .action_execution_id("aex-9")
                    .build(),
            )
            .build();
        assert_eq!(
            ExecutionBinding::from_context(Some(&with_id)),
            exec("aex-9")
        );
        let names_only = PipelineContext::builder()
            .pipeline_name("shop")
            .stage(StageContext::builder().name("Test").build())
            .action(ActionContext::builder().name("Load").build())
            .build();
        assert_eq!(
            ExecutionBinding::from_context(Some(&names_only)),
            ExecutionBinding::ActionSlot {
                pipeline: "shop".into(),
                stage: "Test".into(),
                action: "Load".into()
            }
        );
        assert_eq!(
            ExecutionBinding::from_context(None),
            ExecutionBinding::Unbound
        );
    }
}
