//! The Apica Loadtest action: starts a load test on the first job and follows it on the continuation jobs.
//!
//! Configuration properties: `PresetName` (required), `RunnableFile` (required), `ApiToken` (secret,
//! optional: overrides the agent's `APICA_API_TOKEN`). The backend's test id is the externalExecutionId
//! and the start of the continuation token.

use crate::action::{Action, ActionError, BoxFuture, FailureKind, JobContext, Step};
use crate::actions::apica_client::{ApicaClient, ApicaError, CreatedTest, Refusal, TestStatus};
use crate::token::WorkRef;

/// The configuration property naming the backend preset.
pub const PRESET_NAME: &str = "PresetName";
/// The configuration property naming the file the test runs.
pub const RUNNABLE_FILE: &str = "RunnableFile";
/// The secret configuration property that overrides the agent's API token.
pub const API_TOKEN: &str = "ApiToken";

/// The Apica Loadtest action.
#[derive(Debug, Clone)]
pub struct ApicaAction {
    client: ApicaClient,
    default_token: Option<String>,
}

impl ApicaAction {
    /// An action that talks to `client`, with the agent's own token for jobs that bring none.
    pub fn new(client: ApicaClient, default_token: Option<String>) -> Self {
        Self {
            client,
            default_token: default_token.filter(|t| !t.trim().is_empty()),
        }
    }

    fn token<'a>(&'a self, job: &'a JobContext) -> Result<&'a str, ActionError> {
        job.optional(API_TOKEN)
            .or(self.default_token.as_deref())
            .ok_or_else(|| ActionError::Configuration {
                property: API_TOKEN.to_string(),
                message: "No API token for the Apica backend: set the action's ApiToken property, \
                      or APICA_API_TOKEN where the agent runs."
                    .to_string(),
            })
    }

    fn unauthorized(&self, refusal: &Refusal) -> ActionError {
        ActionError::Permission(format!(
            "The Apica backend at {} refused the API token ({refusal}). Check the action's ApiToken \
             property, or APICA_API_TOKEN where the agent runs.",
            self.client.base_url()
        ))
    }

    fn unavailable(&self, error: &ApicaError) -> ActionError {
        ActionError::Unavailable(format!(
            "The Apica backend at {} could not be reached: {error}",
            self.client.base_url()
        ))
    }

    fn too_large(&self, error: &ApicaError) -> ActionError {
        ActionError::Failed(format!(
            "The Apica backend at {} sent an answer the agent refuses to read: {error}. Check APICA_API_URL \
             points at the load-test API, or raise AGENT_APICA_MAX_RESPONSE_BYTES if its answers are this long.",
            self.client.base_url()
        ))
    }

    async fn start_test(
        &self,
        job: &JobContext,
        idempotency_key: &str,
    ) -> Result<Step, ActionError> {
        let preset = job.required(PRESET_NAME, "the name of a preset on the Apica backend")?;
        let runnable = job.required(RUNNABLE_FILE, "the runnable file the load test runs")?;
        let token = self.token(job)?;
        let created = self.client.create_test(token, preset, runnable, idempotency_key).await.map_err(|e| match e {
            ApicaError::Unauthorized(r) => self.unauthorized(&r),
            ApicaError::Rejected(r) => rejected_configuration(&r, preset, runnable),
            ApicaError::NotFound(r) => ActionError::Failed(format!(
                "The Apica backend at {} has no load-test API ({r}). Check APICA_API_URL where the agent runs.",
                self.client.base_url()
            )),
            e @ ApicaError::TooLarge { .. } => self.too_large(&e),
            e @ (ApicaError::Unavailable { .. } | ApicaError::Malformed { .. }) => self.unavailable(&e),
        })?;
        // The backend may answer with a test it already had under this key: it must be this job's.
        belongs_to_job(
            created.job_id,
            Some(idempotency_key),
            created.idempotency_key.as_deref(),
            runnable,
            created.runnable_file.as_deref(),
        )?;
        tracing::info!(job_id = %job.job_id, test_id = created.job_id, preset, "load test started");
        Ok(step_after_create(&created, preset))
    }

    async fn check_test(&self, job: &JobContext, work: &WorkRef) -> Result<Step, ActionError> {
        let Ok(test_id) = work.as_str().parse::<u64>() else {
            return Err(ActionError::Failed(format!(
                "The continuation token names {:?}, which is not an Apica load-test id. Re-run the action to \
                 start a new test.",
                work.as_str()
            )));
        };
        let token = self.token(job)?;
        let status = self.client.get_test(token, test_id).await.map_err(|e| match e {
            ApicaError::Unauthorized(r) => self.unauthorized(&r),
            ApicaError::NotFound(r) => ActionError::Failed(format!(
                "The Apica backend no longer knows load test {test_id} ({r}). Re-run the action to start a new test."
            )),
            ApicaError::Rejected(r) => {
                ActionError::Failed(format!("The Apica backend refused to report on load test {test_id} ({r})."))
            }
            e @ ApicaError::TooLarge { .. } => self.too_large(&e),
            e @ (ApicaError::Unavailable { .. } | ApicaError::Malformed { .. }) => self.unavailable(&e),
        })?;
        if status.job_id != test_id {
            return Err(ActionError::Failed(format!(
                "Asked the Apica backend at {} for load test {test_id}, it answered with load test {}. The agent \
                 reports only the test it asked for; check APICA_API_URL points at the load-test API, then re-run \
                 the action.",
                self.client.base_url(),
                status.job_id
            )));
        }
        // On a follow-up the key is not at hand (the token names the test); the runnable file is.
        if let Some(runnable) = job.optional(RUNNABLE_FILE) {
            belongs_to_job(
                test_id,
                None,
                status.idempotency_key.as_deref(),
                runnable,
                status.runnable_file.as_deref(),
            )?;
        }
        Ok(step_from_status(&status))
    }
}

/// Checks that a backend test is this job's: the runnable file it reports, and the idempotency key it reports
/// when the agent knows the key, are the job's. A backend that reports neither cannot be checked (the API
/// promises only `jobId` and `status`), so only what it reports is held against the job.
fn belongs_to_job(
    test_id: u64,
    expected_key: Option<&str>,
    reported_key: Option<&str>,
    runnable: &str,
    reported_runnable: Option<&str>,
) -> Result<(), ActionError> {
    if let (Some(expected), Some(reported)) = (expected_key, reported_key)
        && expected != reported
    {
        return Err(ActionError::Failed(format!(
            "Load test {test_id} belongs to idempotency key {reported:?}, not to this action execution's \
             {expected:?}: the agent does not report another execution's test. Re-run the action."
        )));
    }
    if let Some(reported) = reported_runnable
        && reported != runnable
    {
        return Err(ActionError::Failed(format!(
            "Load test {test_id} runs RunnableFile {reported:?}, but this action runs {runnable:?}: it is not this \
             action execution's test, and the agent does not report another execution's test as its own. Re-run \
             the action."
        )));
    }
    Ok(())
}

impl Action for ApicaAction {
    fn name(&self) -> &'static str {
        "apica"
    }

    fn start<'a>(
        &'a self,
        job: &'a JobContext,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Step, ActionError>> {
        Box::pin(self.start_test(job, idempotency_key))
    }

    fn check<'a>(
        &'a self,
        job: &'a JobContext,
        work: &'a WorkRef,
    ) -> BoxFuture<'a, Result<Step, ActionError>> {
        Box::pin(self.check_test(job, work))
    }
}

/// A 422 names the property to fix: the runnable file when the backend says so, else the preset.
fn rejected_configuration(refusal: &Refusal, preset: &str, runnable: &str) -> ActionError {
    let said = format!(
        "{} {}",
        refusal.code.as_deref().unwrap_or(""),
        refusal.message
    )
    .to_lowercase();
    // The backend names the field to blame when it can; else its words decide.
    let blames_runnable = match refusal.field.as_deref() {
        Some(field) => field.to_lowercase().contains("runnable"),
        None => said.contains("runnable") && !said.contains("preset"),
    };
    if blames_runnable {
        ActionError::Configuration {
            property: RUNNABLE_FILE.to_string(),
            message: format!(
                "RunnableFile {runnable:?} was rejected by the Apica backend ({refusal}). Set RunnableFile to a \
                 file the backend can run."
            ),
        }
    } else {
        ActionError::Configuration {
            property: PRESET_NAME.to_string(),
            message: format!(
                "PresetName {preset:?} was rejected by the Apica backend ({refusal}). Set PresetName to a preset \
                 the backend knows."
            ),
        }
    }
}

fn step_after_create(created: &CreatedTest, preset: &str) -> Step {
    let status = TestStatus {
        job_id: created.job_id,
        status: created
            .status
            .clone()
            .unwrap_or_else(|| "running".to_string()),
        percent_complete: Some(0.0),
        summary: None,
        started_at: None,
        finished_at: None,
        runnable_file: None,
        idempotency_key: None,
    };
    match step_from_status(&status) {
        Step::Running {
            work,
            external_execution_id,
            percent_complete,
            ..
        } => {
            let link = created
                .details_url
                .as_deref()
                .map(|u| format!(": {u}"))
                .unwrap_or_default();
            Step::Running {
                work,
                external_execution_id,
                percent_complete,
                summary: format!(
                    "Load test {} started with preset {preset}{link}",
                    created.job_id
                ),
            }
        }
        done => done,
    }
}

/// Maps the backend's status to the runtime's step.
pub fn step_from_status(status: &TestStatus) -> Step {
    let id = status.job_id.to_string();
    let reason = status
        .summary
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match status.status.as_str() {
        "passed" => Step::Succeeded {
            summary: match reason {
                Some(r) => format!("Load test {id} passed: {r}"),
                None => format!("Load test {id} passed"),
            },
            external_execution_id: id,
        },
        "failed" => Step::Failed {
            kind: FailureKind::JobFailed,
            message: format!(
                "Load test {id} failed: {}. See the test's Details page.",
                reason.unwrap_or("the backend gave no reason")
            ),
            external_execution_id: Some(id),
        },
        "aborted" => Step::Failed {
            kind: FailureKind::JobFailed,
            message: format!(
                "Load test {id} was aborted{}. Re-run the action to test again.",
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            ),
            external_execution_id: Some(id),
        },
        "running" | "queued" | "starting" | "created" | "pending" => {
            // 100 is kept for the final answer.
            let percent = status.percent_complete.unwrap_or(0.0).clamp(0.0, 99.0) as u8;
            Step::Running {
                work: WorkRef::new(id.clone()).expect("a number is a valid work reference"),
                summary: format!("Load test {id} running: {percent}% complete"),
                external_execution_id: id,
                percent_complete: percent,
            }
        }
        other => Step::Failed {
            kind: FailureKind::JobFailed,
            message: format!(
                "The Apica backend reports load test {id} in a status the agent does not know: {other:?}."
            ),
            external_execution_id: Some(id),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: &str, pc: Option<f64>, summary: Option<&str>) -> TestStatus {
        TestStatus {
            job_id: 153245,
            status: s.into(),
            percent_complete: pc,
            summary: summary.map(Into::into),
            started_at: None,
            finished_at: None,
            runnable_file: None,
            idempotency_key: None,
        }
    }

    #[test]
    fn running_keeps_100_for_the_end() {
        let Step::Running {
            percent_complete,
            work,
            ..
        } = step_from_status(&status("running", Some(100.0), None))
        else {
            panic!("expected running")
        };
        assert_eq!(percent_complete, 99);
        assert_eq!(work.as_str(), "153245");
    }

    #[test]
    fn failed_carries_the_backend_reason() {
        let Step::Failed { kind, message, .. } =
            step_from_status(&status("failed", None, Some("p95 over 800 ms")))
        else {
            panic!("expected failed")
        };
        assert_eq!(kind, FailureKind::JobFailed);
        assert!(message.contains("p95 over 800 ms"), "{message}");
    }

    fn refusal(code: &str, message: &str, field: Option<&str>) -> Refusal {
        Refusal {
            status: 422,
            code: Some(code.into()),
            message: message.into(),
            field: field.map(Into::into),
        }
    }

    fn blamed(r: &Refusal) -> String {
        match rejected_configuration(r, "x", "f") {
            ActionError::Configuration { property, .. } => property,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn a_422_names_the_property() {
        assert_eq!(
            blamed(&refusal(
                "UnknownPreset",
                "unknown preset `x`",
                Some("preset")
            )),
            PRESET_NAME
        );
        assert_eq!(
            blamed(&refusal(
                "MissingField",
                "missing field",
                Some("runnableFile")
            )),
            RUNNABLE_FILE
        );
        assert_eq!(
            blamed(&refusal("bad_input", "runnableFile is empty", None)),
            RUNNABLE_FILE
        );
        assert_eq!(
            blamed(&refusal("bad_input", "no such preset", None)),
            PRESET_NAME
        );
    }
}
