//! Who records events and what kinds they record: one list, shared by the fakes that record them, the
//! verdicts and timeline that read them, and the scenario files whose steps wait for them
//! (`on = "cp.result_applied"`). They serialise to the strings of the event log's JSON lines.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! string_enum {
    ($(#[$tdoc:meta])* $name:ident, $what:literal { $( $(#[$doc:meta])* $variant:ident = $text:literal, )* }) => {
        $(#[$tdoc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$doc])* $variant, )*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// As written in the event log.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| {
                    format!(
                        "`{s}` is not {}; one of {}",
                        $what,
                        $name::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                    )
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

string_enum! {
    /// Who recorded an event.
    Source, "an event source" {
        /// The fake CodePipeline.
        Cp = "cp",
        /// The fake Apica backend.
        Apica = "apica",
        /// The scenario driver (steps, replicas, its own verdicts).
        Runner = "runner",
        /// The simulator around the fakes (clock pacing, poll gaps).
        Sim = "sim",
    }
}

string_enum! {
    /// What happened. [`EventKind::sources`] says who records each.
    EventKind, "an event kind" {
        // The fake CodePipeline.
        /// An action type was registered (CreateCustomActionType or the admin API).
        ActionTypeRegistered = "action_type_registered",
        /// A pipeline was created.
        PipelineCreated = "pipeline_created",
        /// A pipeline execution started.
        PipelineExecutionStarted = "pipeline_execution_started",
        /// A pipeline execution ended.
        PipelineExecutionFinished = "pipeline_execution_finished",
        /// An action execution started.
        ExecutionStarted = "execution_started",
        /// A job was created (a continuation job waits for its delay).
        JobCreated = "job_created",
        /// A job became pollable.
        JobQueued = "job_queued",
        /// A poll handed a job out.
        JobDispatched = "job_dispatched",
        /// A dispatched job was not acknowledged in time and is offered again.
        LeaseExpired = "lease_expired",
        /// A job was acknowledged.
        JobAcknowledged = "job_acknowledged",
        /// A success or failure result was applied.
        ResultApplied = "result_applied",
        /// A final success still carried a continuation token.
        FinalWithToken = "final_with_token",
        /// A final success did not say 100.
        FinalWithout100 = "final_without_100",
        /// The Details link appeared or changed.
        DetailsLink = "details_link",
        /// A job missed its deadline.
        JobTimedOut = "job_timed_out",
        /// An action execution ran past the action timeout.
        ActionTimedOut = "action_timed_out",
        /// An action execution ended.
        ExecutionFinished = "execution_finished",
        /// A call was refused by a protocol rule.
        CallRefused = "call_refused",
        /// StopPipelineExecution was accepted: the pipeline execution is Stopping (stop and wait) or its
        /// in-progress actions are being abandoned (stop and abandon).
        StopRequested = "stop_requested",
        /// A result put for a job of an abandoned action was accepted and discarded
        /// (`abandoned_results = accept`).
        ResultDiscarded = "result_discarded",
        /// A result identical to the one the job already took came again (a client retrying after a lost
        /// response): answered by the `repeated_results` setting, never a violation (CP-REPEAT).
        ResultRepeated = "result_repeated",
        /// RetryStageExecution started the failed (or all) actions of a stage again.
        StageRetried = "stage_retried",
        /// A pipeline execution waits at a stage boundary: the stage holds another execution, or its
        /// inbound transition is disabled.
        ExecutionWaiting = "execution_waiting",
        /// A waiting pipeline execution was superseded by a newer one (`SUPERSEDED` mode).
        ExecutionSuperseded = "execution_superseded",
        /// A stage's inbound transition was disabled or enabled.
        TransitionChanged = "transition_changed",
        /// UpdatePipeline stored a new version of a pipeline.
        PipelineUpdated = "pipeline_updated",
        /// DeletePipeline removed a pipeline.
        PipelineDeleted = "pipeline_deleted",
        /// DeleteCustomActionType marked a custom action type deleted.
        ActionTypeDeleted = "action_type_deleted",
        /// A request failed SigV4 verification.
        AuthRefused = "auth_refused",
        /// A request failed validation or the wire rules.
        ValidationRefused = "validation_refused",
        /// A scripted fault refused a request (both fakes).
        FaultInjected = "fault_injected",
        /// A `lost-response` fault: the fake handled a request, then closed its connection instead of
        /// answering.
        ResponseLost = "response_lost",
        /// A CodePipeline fault rule was set.
        FaultSet = "fault_set",
        /// Every CodePipeline fault rule was removed.
        FaultsCleared = "faults_cleared",
        ArtifactMissing = "artifact_missing",
        ArtifactRefused = "artifact_refused",
        AwsActionFinished = "aws_action_finished",
        // The fake backend.
        /// A load test was created.
        TestCreated = "test_created",
        /// A load test started running.
        TestStarted = "test_started",
        /// A load test ended.
        TestFinished = "test_finished",
        /// A load test was aborted.
        TestAborted = "test_aborted",
        /// The backend refused a request (bad token, unknown test, bad input).
        RequestRejected = "request_rejected",
        /// A backend fault was added.
        FaultAdded = "fault_added",
        /// A backend fault's window began.
        FaultStarted = "fault_started",
        /// A backend fault's window ended.
        FaultEnded = "fault_ended",
        /// A backend fault was removed.
        FaultRemoved = "fault_removed",
        // The driver.
        /// A scenario step was applied.
        Step = "step",
        /// An agent replica was started.
        ReplicaStarted = "replica_started",
        /// A replica exited after SIGTERM.
        ReplicaStopped = "replica_stopped",
        /// A replica did not exit after SIGTERM and was killed.
        ReplicaKilled = "replica_killed",
        /// A replica was killed by a crash step.
        ReplicaCrashed = "replica_crashed",
        /// A replica exited on its own.
        ReplicaExited = "replica_exited",
        /// A replica made no request within its start grace.
        ReplicaNeverPolled = "replica_never_polled",
        /// A replica stopped gracefully with jobs it had acknowledged and not answered.
        JobsAbandoned = "jobs_abandoned",
        /// The driver gave up.
        HarnessError = "harness_error",
        // The simulator.
        /// A scaled clock was paused, resumed or sped up.
        ClockPaced = "clock_paced",
        /// A caller's real gap between polls, scaled, nears the job timeout.
        PollGap = "poll_gap",
    }
}

impl EventKind {
    /// Who records events of this kind.
    pub fn sources(self) -> &'static [Source] {
        use EventKind::*;
        match self {
            FaultInjected => &[Source::Cp, Source::Apica],
            TestCreated | TestStarted | TestFinished | TestAborted | RequestRejected
            | FaultAdded | FaultStarted | FaultEnded | FaultRemoved => &[Source::Apica],
            Step | ReplicaStarted | ReplicaStopped | ReplicaKilled | ReplicaCrashed
            | ReplicaExited | ReplicaNeverPolled | JobsAbandoned | HarnessError => {
                &[Source::Runner]
            }
            ClockPaced | PollGap => &[Source::Sim],
            _ => &[Source::Cp],
        }
    }
}

/// An event's name as steps wait for it: `source.kind` (`cp.result_applied`), checked against who records
/// what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventName {
    /// Who records it.
    pub source: Source,
    /// What it is.
    pub kind: EventKind,
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.source, self.kind)
    }
}

impl FromStr for EventName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some((source, kind)) = s.split_once('.') else {
            return Err(format!(
                "`{s}` is not an event name: write it as source.kind, e.g. cp.result_applied or apica.test_created"
            ));
        };
        let source: Source = source.parse()?;
        let kind: EventKind = kind.parse()?;
        if !kind.sources().contains(&source) {
            let known: Vec<String> = EventKind::ALL
                .iter()
                .filter(|k| k.sources().contains(&source))
                .map(|k| format!("{source}.{k}"))
                .collect();
            return Err(format!(
                "`{s}`: {source} never records {kind}; it records {}",
                known.join(", ")
            ));
        }
        Ok(EventName { source, kind })
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for EventName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_only_for_what_a_source_records() {
        let n: EventName = "cp.result_applied".parse().unwrap();
        assert_eq!((n.source, n.kind), (Source::Cp, EventKind::ResultApplied));
        assert_eq!(n.to_string(), "cp.result_applied");
        assert!("apica.fault_injected".parse::<EventName>().is_ok());
        let e = "cp.test_created".parse::<EventName>().unwrap_err();
        assert!(e.contains("cp never records test_created"), "{e}");
        let e = "cp.result_aplied".parse::<EventName>().unwrap_err();
        assert!(
            e.contains("result_aplied") && e.contains("result_applied"),
            "{e}"
        );
        assert!(
            "result_applied"
                .parse::<EventName>()
                .unwrap_err()
                .contains("source.kind")
        );
    }
}
