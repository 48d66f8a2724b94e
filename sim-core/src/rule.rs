//! The rule ids of `docs/protocol.md`: what the fakes record on an event and what the verdicts judge.
//! They serialise to the ids users read in reports (`CP-TIMEOUT`), so reports and `events.jsonl` keep their
//! format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, )*) => {
        /// A rule of the job-worker protocol (`CP-*`), an expectation of a conforming agent (`AG-*`), or the
        /// harness's own failure (`HARNESS-*`). Each is defined in `docs/protocol.md`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $( $(#[$doc])* $variant, )*
        }

        impl Rule {
            /// Every rule, in the order `docs/protocol.md` lists them.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// The id as written in reports and in `docs/protocol.md`.
            pub const fn id(self) -> &'static str {
                match self {
                    $(Rule::$variant => $id,)*
                }
            }
        }
    };
}

rules! {
    /// A poll leases Queued jobs; a Dispatched job not acknowledged within the ack window is offered again.
    CpLease = "CP-LEASE",
    /// Acknowledge with a nonce that is not the job's current one.
    CpNonce = "CP-NONCE",
    /// A third-party call whose client token does not match the job's clientId.
    CpClient = "CP-CLIENT",
    /// A result for a job that was never acknowledged.
    CpAck = "CP-ACK",
    /// A result for a job that has already ended.
    CpTerminal = "CP-TERMINAL",
    /// A repeat of the result a job already took (a client retrying after a lost response).
    CpRepeat = "CP-REPEAT",
    /// A job missed its deadline.
    CpTimeout = "CP-TIMEOUT",
    /// An action execution ran past the action timeout.
    CpActionTimeout = "CP-ACTION-TIMEOUT",
    /// A success with a continuation token: a continuation job follows.
    CpContinue = "CP-CONTINUE",
    /// A final success.
    CpFinal100 = "CP-FINAL-100",
    /// A failure result, always final.
    CpFailFinal = "CP-FAIL-FINAL",
    /// The Details link from an `externalExecutionId`.
    CpDetails = "CP-DETAILS",
    /// Output variables misused or too large.
    CpOutputVars = "CP-OUTPUT-VARS",
    /// StopPipelineExecution: stop and wait, or stop and abandon.
    CpStop = "CP-STOP",
    /// A result for a job of an abandoned action execution.
    CpAbandoned = "CP-ABANDONED",
    /// RetryStageExecution: failed (or all) actions of a stage run again as new action executions.
    CpRetry = "CP-RETRY",
    /// A stage holds one pipeline execution at a time: later ones wait at its boundary (and, in
    /// `SUPERSEDED` mode, a newer one supersedes a waiting one).
    CpStageLock = "CP-STAGE-LOCK",
    /// A request refused by the wire rules or the model's validation.
    CpValidation = "CP-VALIDATION",
    /// A final success that still carries a token, or lacks 100.
    AgFinalToken = "AG-FINAL-TOKEN",
    /// One backend test per action execution.
    AgOneTest = "AG-ONE-TEST",
    /// The first job is answered promptly with an `externalExecutionId`.
    AgLinkEarly = "AG-LINK-EARLY",
    /// The final answer matches the backend's outcome.
    AgOutcome = "AG-OUTCOME",
    /// No job of a healthy run times out.
    AgNoTimeout = "AG-NO-TIMEOUT",
    /// A graceful stop answers every acknowledged job and exits in time.
    AgRedeploy = "AG-REDEPLOY",
    /// A throttled replica slows down.
    AgBackoff = "AG-BACKOFF",
    /// Replicas on one queue handle each job once.
    AgRace = "AG-RACE",
    /// A started replica polls in time.
    AgStart = "AG-START",
    /// The agent keeps running while work is outstanding.
    AgExited = "AG-EXITED",
    /// A final success on an action with output artifacts comes after every one of them is in the store.
    AgOutputArtifact = "AG-OUTPUT-ARTIFACT",
    /// An upload to a KMS pipeline's artifact bucket asks for SSE-KMS (with the pipeline's key, when the
    /// setting says so).
    AgArtifactKms = "AG-ARTIFACT-KMS",
    /// The runner gave up: its watchdog fired, or nothing was left to happen with executions unfinished.
    HarnessStall = "HARNESS-STALL",
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.id())
    }
}

/// A rule id that `docs/protocol.md` does not define.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a rule id; the rules are {ids}", ids = Rule::ALL.iter().map(|r| r.id()).collect::<Vec<_>>().join(", "))]
pub struct UnknownRule(pub String);

impl FromStr for Rule {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.id() == s)
            .ok_or_else(|| UnknownRule(s.to_string()))
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<str> for Rule {
    fn eq(&self, other: &str) -> bool {
        self.id() == other
    }
}

impl PartialEq<&str> for Rule {
    fn eq(&self, other: &&str) -> bool {
        self.id() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ones_are_named() {
        for r in Rule::ALL {
            assert_eq!(r.id().parse::<Rule>().unwrap(), *r);
            assert_eq!(serde_json::to_value(r).unwrap(), r.id());
        }
        let e = "CP-TIMOUT".parse::<Rule>().unwrap_err().to_string();
        assert!(e.contains("CP-TIMOUT") && e.contains("CP-TIMEOUT"), "{e}");
    }
}
