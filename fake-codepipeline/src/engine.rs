//! The job state machine on the simulated clock: queueing, leases, acknowledgements, results,
//! continuation jobs and timeouts (`docs/protocol.md`, "Job lifecycle and time" and the CP-* rules).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use sim_core::{NewEvent, Rule, Severity, Sim, SimTime, format_offset};
use tokio::sync::Notify;

use crate::error::ApiError;
use crate::settings::Settings;
use crate::state::{ActionExecution, FaultRule, Job, World};
use crate::types::{
    ActionTimeoutPer, ActionTypeId, ExecutionStatus, FinalOn, JobStatus, JobTimeoutFrom, Owner,
};

/// Largest total size of a final success's output variables (CP-OUTPUT-VARS).
pub const OUTPUT_VARIABLES_LIMIT: usize = 122_880;

/// The shared core of one fake: settings, the simulated world and the lock around its state.
pub struct Core {
    /// Clock, activity tracker and event log.
    pub sim: Sim,
    /// Global settings.
    pub settings: Settings,
    world: Mutex<World>,
    // Events noted while the world is borrowed immutably; recorded with the others after unlock.
    deferred: Mutex<Vec<NewEvent>>,
    job_queued: Notify,
    me: Weak<Core>,
    /// The artifact store (served by [`crate::s3`] on the same address).
    pub store: Arc<crate::store::Store>,
    // Signs the artifact credentials minted per job (random per process).
    artifact_key: [u8; 32],
}

/// A job as a poll hands it out.
#[derive(Clone, Debug)]
pub struct Dispatched {
    /// The job id.
    pub job_id: String,
    /// The nonce of this dispatch.
    pub nonce: String,
    /// The third-party clientId, if any.
    pub client_id: Option<String>,
}

/// What a success result says.
#[derive(Clone, Debug, Default)]
pub struct SuccessResult {
    /// `continuationToken`.
    pub continuation_token: Option<String>,
    /// `executionDetails.summary`.
    pub summary: Option<String>,
    /// `executionDetails.externalExecutionId`.
    pub external_id: Option<String>,
    /// `executionDetails.percentComplete`.
    pub percent_complete: Option<i64>,
    /// `outputVariables` (custom only).
    pub output_variables: Option<BTreeMap<String, String>>,
}

/// What a failure result says.
#[derive(Clone, Debug)]
pub struct FailureResult {
    /// `failureDetails.type`.
    pub failure_type: String,
    /// `failureDetails.message`.
    pub message: String,
    /// `failureDetails.externalExecutionId`.
    pub external_id: Option<String>,
}

impl Core {
    /// A core on `sim` with `settings`.
    pub fn new(sim: Sim, settings: Settings) -> Arc<Self> {
        for secret in settings.access_keys.values() {
            sim.events.add_secret(secret);
        }
        let seed = settings.seed;
        let sim_for_store = sim.clone();
        Arc::new_cyclic(|me| Core {
            sim,
            settings,
            world: Mutex::new(World::new(seed)),
            deferred: Mutex::new(Vec::new()),
            job_queued: Notify::new(),
            me: me.clone(),
            store: Arc::new(crate::store::Store::new(sim_for_store)),
            artifact_key: rand::random(),
        })
    }

    /// Runs `f` with the world locked, then records the events it produced.
    pub(crate) fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let (result, events, queued) = {
            let mut world = self.lock();
            let before = world.pollable.values().map(|q| q.len()).sum::<usize>();
            let result = f(&mut world);
            let after = world.pollable.values().map(|q| q.len()).sum::<usize>();
            let mut events =
                std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|e| e.into_inner()));
            events.append(&mut world.pending_events);
            (result, events, after > before)
        };
        for e in events {
            self.sim.events.record(e);
        }
        if queued {
            self.job_queued.notify_waiters();
        }
        result
    }

    /// Queues an event while the world is borrowed immutably; recorded with the others after unlock.
    pub(crate) fn defer(&self, event: NewEvent) {
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when a job becomes pollable (for poll parking).
    pub fn job_queued(&self) -> tokio::sync::futures::Notified<'_> {
        self.job_queued.notified()
    }

    pub(crate) fn now(&self) -> SimTime {
        self.sim.clock.now()
    }

    pub(crate) fn stamp(&self, t: SimTime) -> String {
        format_offset(t.since(self.sim.clock.origin()))
    }

    fn schedule(
        &self,
        at: SimTime,
        label: String,
        f: impl FnOnce(&Core, SimTime) + Send + 'static,
    ) -> sim_core::TimerId {
        let me = self.me.clone();
        self.sim.clock.schedule(at, label, move |now| {
            if let Some(core) = me.upgrade() {
                f(&core, now);
            }
        })
    }

    // ----- action executions and their jobs -----

    /// Starts an action execution: records it and queues its first job at once.
    pub(crate) fn start_action(&self, world: &mut World, mut exec: ActionExecution) -> String {
        let now = self.now();
        let timing = world
            .action_types
            .get(&exec.action_type)
            .map(|t| t.timing.clone())
            .unwrap_or_default();
        let label = exec.label.clone();
        // A property the type marks secret is a secret: the event log redacts it from now on, and the
        // admin views mask it (only the job APIs hand it out, as AWS does).
        if let Some(t) = world.action_types.get(&exec.action_type) {
            for p in t.properties.iter().filter(|p| p.secret) {
                if let Some(v) = exec.configuration.get(&p.name) {
                    self.sim.events.add_secret(v);
                }
            }
        }
        exec.started = now;
        exec.updated = now;
        if timing.action_timeout_per == ActionTimeoutPer::ActionExecution {
            let timer_label = format!("action timeout of {label}");
            let l2 = label.clone();
            exec.action_timer = Some(self.schedule(
                now.plus(timing.action_timeout),
                timer_label,
                move |core, at| {
                    core.with_world(|w| core.action_timed_out(w, &l2, at));
                },
            ));
        }
        world.emit(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ExecutionStarted)
                .execution(&label)
                .detail(format!(
                    "action execution {label} of {} started ({} / {} / {}){}",
                    exec.action_type,
                    exec.pipeline,
                    exec.stage,
                    exec.action,
                    match &exec.retry_of {
                        Some(first) => format!(", attempt {} (a retry of {first})", exec.attempt),
                        None => String::new(),
                    }
                ))
                .data(json!({
                    "actionType": exec.action_type.to_string(),
                    "actionExecutionId": exec.aws_id,
                    "pipeline": exec.pipeline,
                    "pipelineExecutionId": exec.pipeline_execution_id,
                    "configuration": exec.configuration,
                    "attempt": exec.attempt,
                    "retryOf": exec.retry_of,
                })),
        );
        world.executions.insert(label.clone(), exec);
        self.create_job(world, &label, None, Duration::ZERO);
        label
    }

    /// Creates the next job of `label`, queued after `delay` (zero: at once).
    fn create_job(&self, world: &mut World, label: &str, token: Option<String>, delay: Duration) {
        let now = self.now();
        let id = world.new_uuid();
        if !world.executions.contains_key(label) {
            return;
        }
        let artifact_credentials = world.mint_artifact_credentials(&self.artifact_key, &id);
        let Some(exec) = world.executions.get_mut(label) else {
            return;
        };
        exec.jobs.push(id.clone());
        let number = exec.jobs.len();
        let job = Job {
            id: id.clone(),
            number,
            execution: label.to_string(),
            action_type: exec.action_type.clone(),
            status: JobStatus::Created,
            continuation_token: token,
            nonce: None,
            created: now,
            queued: None,
            deadline: None,
            dispatched_to: None,
            dispatch_nonces: HashMap::new(),
            acknowledged: None,
            history: vec![(now, JobStatus::Created)],
            queue_seq: None,
            deadline_timer: None,
            lease_timer: None,
            abandoned: None,
            answer: None,
            artifact_credentials,
        };
        world.jobs.insert(id.clone(), job);
        world.emit(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::JobCreated)
                .execution(label)
                .job(&id)
                .detail(format!("job {number} of {label} created"))
                .data(json!({"number": number})),
        );
        if delay.is_zero() {
            self.queue_job(world, &id);
        } else {
            let id2 = id.clone();
            self.schedule(
                now.plus(delay),
                format!("continuation job {number} of {label} queued"),
                move |core, _| {
                    core.with_world(|w| core.queue_job(w, &id2));
                },
            );
        }
    }

    /// Gives a job its deadline (CP-TIMEOUT) and the timer that ends it there; returns the deadline.
    fn set_deadline(&self, world: &mut World, job_id: &str, deadline: SimTime) -> SimTime {
        let Some(job) = world.jobs.get_mut(job_id) else {
            return deadline;
        };
        let (label, number) = (job.execution.clone(), job.number);
        let id = job_id.to_string();
        let timer = self.schedule(
            deadline,
            format!("deadline of job {number} of {label}"),
            move |core, at| {
                core.with_world(|w| core.job_timed_out(w, &id, at));
            },
        );
        job.deadline = Some(deadline);
        job.deadline_timer = Some(timer);
        deadline
    }

    /// Created -> Queued; the deadline counts from here, unless the job timeout counts from the
    /// acknowledgement (`job_timeout_from`).
    fn queue_job(&self, world: &mut World, job_id: &str) {
        let now = self.now();
        let Some(job) = world.jobs.get(job_id) else {
            return;
        };
        if job.status != JobStatus::Created {
            return;
        }
        let Some(timing) = world
            .action_types
            .get(&job.action_type)
            .map(|t| t.timing.clone())
        else {
            return;
        };
        let (label, number) = (job.execution.clone(), job.number);
        let deadline = (timing.job_timeout_from == JobTimeoutFrom::Queued)
            .then(|| self.set_deadline(world, job_id, now.plus(timing.job_timeout)));
        let job = world
            .jobs
            .get_mut(job_id)
            .expect("job exists: checked above");
        job.set_status(JobStatus::Queued, now);
        job.queued = Some(now);
        world.enqueue(job_id);
        let (detail, data) = match deadline {
            Some(d) => (
                format!("job {number} of {label} queued; deadline {}", self.stamp(d)),
                json!({"number": number, "deadline_ms": d.since(self.sim.clock.origin()).as_millis() as u64}),
            ),
            None => (
                format!(
                    "job {number} of {label} queued; its deadline counts from its acknowledgement"
                ),
                json!({"number": number}),
            ),
        };
        world.emit(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::JobQueued)
                .execution(&label)
                .job(job_id)
                .detail(detail)
                .data(data),
        );
    }

    /// The deadline timer: a job without a result is TimedOut and its action execution fails (CP-TIMEOUT).
    fn job_timed_out(&self, world: &mut World, job_id: &str, at: SimTime) {
        let Some(job) = world.jobs.get_mut(job_id) else {
            return;
        };
        if job.status.is_terminal() {
            return;
        }
        let before = job.status;
        let ack = job.acknowledged.clone();
        job.set_status(JobStatus::TimedOut, at);
        job.deadline_timer = None;
        if let Some(t) = job.lease_timer.take() {
            self.sim.clock.cancel(t);
        }
        let (label, number, queued) = (job.execution.clone(), job.number, job.queued);
        world.unqueue(job_id);
        self.sim.activity.release_job(job_id);
        let why = match (before, ack) {
            (JobStatus::InProgress, Some((t, who))) => format!(
                "acknowledged at {}{}, no result",
                self.stamp(t),
                who.map(|w| format!(" by {w}")).unwrap_or_default()
            ),
            (JobStatus::Dispatched, _) => "dispatched but never acknowledged".to_string(),
            _ => "never picked up by a poll".to_string(),
        };
        let timeout = queued.map(|q| at.since(q)).unwrap_or_default();
        let detail = format!(
            "job {number} of execution {label} timed out at {}: {why} (job timeout {})",
            self.stamp(at),
            sim_core::format_duration(timeout)
        );
        world.emit(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::JobTimedOut)
                .execution(&label)
                .job(job_id)
                .rule(Rule::CpTimeout, Severity::Error)
                .detail(detail.clone())
                .data(json!({"number": number, "status_before": before.as_str()})),
        );
        self.finish_execution(
            world,
            &label,
            ExecutionStatus::Failed,
            Some(("JobTimedOut".to_string(), detail)),
        );
    }

    /// The action timeout: the whole execution ran too long (CP-ACTION-TIMEOUT).
    fn action_timed_out(&self, world: &mut World, label: &str, at: SimTime) {
        let Some(exec) = world.executions.get_mut(label) else {
            return;
        };
        if exec.status != ExecutionStatus::InProgress {
            return;
        }
        exec.action_timer = None;
        let open: Vec<String> = exec.jobs.clone();
        let started = exec.started;
        for id in open {
            if let Some(job) = world.jobs.get_mut(&id)
                && !job.status.is_terminal()
            {
                job.set_status(JobStatus::TimedOut, at);
                if let Some(t) = job.deadline_timer.take() {
                    self.sim.clock.cancel(t);
                }
                if let Some(t) = job.lease_timer.take() {
                    self.sim.clock.cancel(t);
                }
                world.unqueue(&id);
                self.sim.activity.release_job(&id);
            }
        }
        let detail = format!(
            "action execution {label} exceeded the action timeout at {} (ran {})",
            self.stamp(at),
            sim_core::format_duration(at.since(started))
        );
        world.emit(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ActionTimedOut)
                .execution(label)
                .rule(Rule::CpActionTimeout, Severity::Error)
                .detail(detail.clone()),
        );
        self.finish_execution(
            world,
            label,
            ExecutionStatus::Failed,
            Some(("JobTimedOut".to_string(), detail)),
        );
    }

    /// Ends an action execution once, and moves its pipeline run on.
    pub(crate) fn finish_execution(
        &self,
        world: &mut World,
        label: &str,
        status: ExecutionStatus,
        error: Option<(String, String)>,
    ) {
        let now = self.now();
        let Some(exec) = world.executions.get_mut(label) else {
            return;
        };
        if exec.status != ExecutionStatus::InProgress {
            return;
        }
        exec.status = status;
        exec.updated = now;
        if let Some((code, message)) = &error {
            exec.error = Some((code.clone(), message.clone()));
        }
        if let Some(t) = exec.action_timer.take() {
            self.sim.clock.cancel(t);
        }
        let pe = exec.pipeline_execution_id.clone();
        let mut event = NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ExecutionFinished)
            .execution(label)
            .detail(match &error {
                Some((code, message)) => {
                    format!("action execution {label} {status}: {code}: {message}")
                }
                None => format!("action execution {label} {status}"),
            })
            .data(json!({
                "status": status.as_str(),
                "errorCode": error.as_ref().map(|e| e.0.clone()),
                "errorMessage": error.as_ref().map(|e| e.1.clone()),
            }));
        if status == ExecutionStatus::Failed {
            event = event.severity(Severity::Info);
        }
        world.emit(event);
        self.advance_pipeline(world, &pe);
    }

    // ----- the worker calls -----

    /// Finds the registered job-worker action type for a poll, checking the owner the call requires.
    fn pollable_type(
        &self,
        world: &World,
        id: &ActionTypeId,
        owner: Owner,
    ) -> Result<(), ApiError> {
        if id.owner != owner {
            return Err(ApiError::validation(format!(
                "ActionType with owner '{}' is not supported by this call; use owner '{}'",
                id.owner.as_str(),
                owner.as_str()
            )));
        }
        match world.action_types.get(id) {
            None => {
                return Err(ApiError::new(
                    "ActionTypeNotFoundException",
                    format!("{} is not available", id.describe()),
                ));
            }
            Some(t) if t.deleted => {
                return Err(ApiError::new(
                    "ActionTypeNotFoundException",
                    format!(
                        "{} is not available: it was deleted with DeleteCustomActionType",
                        id.describe()
                    ),
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// PollForJobs / PollForThirdPartyJobs: up to `max` offered jobs, each dispatched with a fresh nonce
    /// (CP-LEASE). `query` filters custom jobs on the queryable property.
    pub fn poll(
        &self,
        caller: Option<&str>,
        owner: Owner,
        id: &ActionTypeId,
        max: usize,
        query: Option<(&str, &str)>,
    ) -> Result<Vec<Dispatched>, ApiError> {
        self.with_world(|world| {
            self.pollable_type(world, id, owner)?;
            let at = world.action_types.get(id).expect("checked above");
            if query.is_none()
                && let Some(p) = at.queryable_property()
            {
                return Err(ApiError::validation(format!(
                    "{id} has the queryable property '{}', so PollForJobs must name it in queryParam ({{\"{}\": value}})",
                    p.name, p.name
                )));
            }
            if let Some((name, _)) = query {
                match at.queryable_property() {
                    Some(p) if p.name == name => {}
                    Some(p) => {
                        return Err(ApiError::validation(format!(
                            "queryParam key '{name}' is not the queryable property of {id}; use '{}'",
                            p.name
                        )));
                    }
                    None => {
                        return Err(ApiError::validation(format!(
                            "{id} has no queryable property, so queryParam must be empty (got key '{name}')"
                        )));
                    }
                }
            }
            let ack_window = at.timing.ack_window;
            // The queue is walked only until `max` matching jobs are found (O(max) without a query
            // parameter); nothing is collected for the rest.
            let matches = |job_id: &String| {
                let exec = world.jobs.get(job_id).and_then(|j| world.executions.get(&j.execution));
                match query {
                    Some((name, value)) => {
                        exec.and_then(|e| e.configuration.get(name)).map(String::as_str) == Some(value)
                    }
                    None => exec.is_some(),
                }
            };
            let chosen: Vec<String> = world
                .pollable
                .get(id)
                .map(|q| q.values().filter(|j| matches(j)).take(max).cloned().collect())
                .unwrap_or_default();
            let now = self.now();
            let mut out = Vec::new();
            for job_id in chosen {
                let Some(job) = world.jobs.get(&job_id) else { continue };
                let client_id = world.executions.get(&job.execution).and_then(|e| e.client_id.clone());
                let nonce = world.new_nonce();
                let job = world.jobs.get_mut(&job_id).expect("listed in the queue");
                let redispatch = job.status == JobStatus::Dispatched;
                if job.status != JobStatus::Dispatched {
                    job.set_status(JobStatus::Dispatched, now);
                }
                job.nonce = Some(nonce.clone());
                job.dispatched_to = caller.map(str::to_string);
                if let Some(c) = caller {
                    job.dispatch_nonces.insert(c.to_string(), nonce.clone());
                }
                if let Some(t) = job.lease_timer.take() {
                    self.sim.clock.cancel(t);
                }
                let (label, number) = (job.execution.clone(), job.number);
                if ack_window.is_zero() {
                    // Offered to every poller until one acknowledges: stays in the queue; each poll renews the nonce.
                } else {
                    world.unqueue(&job_id);
                    let (id2, n2) = (job_id.clone(), nonce.clone());
                    let timer = self.schedule(
                        now.plus(ack_window),
                        format!("ack window of job {number} of {label}"),
                        move |core, _| core.with_world(|w| core.lease_expired(w, &id2, &n2)),
                    );
                    if let Some(job) = world.jobs.get_mut(&job_id) {
                        job.lease_timer = Some(timer);
                    }
                }
                if let Some(c) = caller {
                    self.sim.activity.hold_job(c, &job_id);
                }
                world.emit(
                    NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::JobDispatched)
                        .execution(&label)
                        .job(&job_id)
                        .replica_opt(caller)
                        .detail(format!(
                            "job {number} of {label} {} to {}",
                            if redispatch { "offered again" } else { "dispatched" },
                            caller.unwrap_or("an unsigned caller")
                        ))
                        .data(json!({"number": number, "redispatch": redispatch})),
                );
                out.push(Dispatched {
                    job_id,
                    nonce,
                    client_id,
                });
            }
            Ok(out)
        })
    }

    /// The ack window passed without an acknowledgement: the job is offered again (CP-LEASE).
    fn lease_expired(&self, world: &mut World, job_id: &str, nonce: &str) {
        let now = self.now();
        let Some(job) = world.jobs.get_mut(job_id) else {
            return;
        };
        if job.status != JobStatus::Dispatched || job.nonce.as_deref() != Some(nonce) {
            return;
        }
        job.lease_timer = None;
        job.nonce = None;
        job.set_status(JobStatus::Queued, now);
        let (label, number, to) = (job.execution.clone(), job.number, job.dispatched_to.clone());
        world.enqueue(job_id);
        self.sim.activity.release_job(job_id);
        world.emit(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::LeaseExpired)
                .execution(&label)
                .job(job_id)
                .replica_opt(to.as_deref())
                .rule(Rule::CpLease, Severity::Warning)
                .detail(format!(
                    "job {number} of {label} was not acknowledged within the ack window; offered again with a new nonce"
                )),
        );
    }

    /// Looks a job up for a worker call, checking the owner family and (third-party) the client token.
    fn job_for_call<'w>(
        &self,
        world: &'w World,
        caller: Option<&str>,
        owner: Owner,
        job_id: &str,
        client_token: Option<&str>,
        operation: &str,
    ) -> Result<&'w Job, ApiError> {
        let job = world
            .jobs
            .get(job_id)
            .filter(|j| j.action_type.owner == owner)
            .ok_or_else(|| ApiError::job_not_found(job_id))?;
        if owner == Owner::ThirdParty {
            let exec = world.executions.get(&job.execution);
            let expected = exec.and_then(|e| e.client_id.as_ref()).and_then(|cid| {
                world
                    .action_types
                    .get(&job.action_type)
                    .and_then(|t| t.clients.get(cid))
            });
            if expected.map(String::as_str) != client_token {
                let err = ApiError::new(
                    "InvalidClientTokenException",
                    format!(
                        "The client token does not match the clientId {} of job {job_id}",
                        exec.and_then(|e| e.client_id.clone()).unwrap_or_default()
                    ),
                )
                .rule(Rule::CpClient);
                self.record_refusal(job, caller, operation, &err, Severity::Error);
                return Err(err);
            }
        }
        Ok(job)
    }

    pub(crate) fn record_refusal(
        &self,
        job: &Job,
        caller: Option<&str>,
        operation: &str,
        err: &ApiError,
        severity: Severity,
    ) {
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::CallRefused)
                .execution(&job.execution)
                .job(&job.id)
                .replica_opt(caller)
                .rule(err.rule.unwrap_or(Rule::CpValidation), severity)
                .detail(format!(
                    "{operation} on job {} of {}: {}: {}",
                    job.number, job.execution, err.type_name, err.message
                ))
                .data(
                    json!({"operation": operation, "error": err.type_name, "number": job.number}),
                ),
        );
    }

    /// GetJobDetails / GetThirdPartyJobDetails.
    pub fn details(
        &self,
        caller: Option<&str>,
        owner: Owner,
        job_id: &str,
        client_token: Option<&str>,
    ) -> Result<Value, ApiError> {
        let op = if owner == Owner::ThirdParty {
            "GetThirdPartyJobDetails"
        } else {
            "GetJobDetails"
        };
        self.with_world(|world| {
            let job = self.job_for_call(world, caller, owner, job_id, client_token, op)?;
            // A third-party worker learns the nonce here: the one of the dispatch it received.
            let nonce = match owner {
                Owner::ThirdParty => caller
                    .and_then(|c| job.dispatch_nonces.get(c))
                    .or(job.nonce.as_ref())
                    .map(String::as_str),
                _ => None,
            };
            Ok(self.job_view(world, job, owner, nonce))
        })
    }

    /// The wire form of a job: `Job` (custom poll, with nonce), `JobDetails` (custom, no nonce) or
    /// `ThirdPartyJobDetails` (with nonce).
    pub(crate) fn job_view(
        &self,
        world: &World,
        job: &Job,
        owner: Owner,
        nonce: Option<&str>,
    ) -> Value {
        let exec = world.executions.get(&job.execution);
        let mut context = json!({
            "pipelineName": exec.map(|e| e.pipeline.clone()),
            "stage": {"name": exec.map(|e| e.stage.clone())},
            "action": {"name": exec.map(|e| e.action.clone()), "actionExecutionId": exec.map(|e| e.aws_id.clone())},
        });
        if owner == Owner::Custom {
            context["pipelineArn"] = json!(format!(
                "arn:aws:codepipeline:{}:{}:{}",
                self.settings.region,
                self.settings.account_id,
                exec.map(|e| e.pipeline.as_str()).unwrap_or("")
            ));
            context["pipelineExecutionId"] = json!(exec.map(|e| e.pipeline_execution_id.clone()));
        }
        let mut data = json!({
            "actionTypeId": job.action_type.to_json(),
            "actionConfiguration": {"configuration": exec.map(|e| e.configuration.clone()).unwrap_or_default()},
            "pipelineContext": context,
        });
        self.artifact_members(exec, job, &mut data);
        if let Some(t) = &job.continuation_token {
            data["continuationToken"] = json!(t);
        }
        let mut v = json!({"id": job.id, "data": data});
        if owner == Owner::Custom {
            v["accountId"] = json!(self.settings.account_id);
        }
        if let Some(n) = nonce {
            v["nonce"] = json!(n);
        }
        v
    }

    /// AcknowledgeJob / AcknowledgeThirdPartyJob (CP-NONCE).
    pub fn acknowledge(
        &self,
        caller: Option<&str>,
        owner: Owner,
        job_id: &str,
        nonce: &str,
        client_token: Option<&str>,
    ) -> Result<JobStatus, ApiError> {
        let op = if owner == Owner::ThirdParty {
            "AcknowledgeThirdPartyJob"
        } else {
            "AcknowledgeJob"
        };
        self.with_world(|world| {
            let job = self.job_for_call(world, caller, owner, job_id, client_token, op)?;
            let acked_by_other = matches!(
                (&job.acknowledged, caller),
                (Some((_, Some(who))), Some(c)) if who != c
            );
            if job.nonce.as_deref() != Some(nonce) || acked_by_other {
                let why = if acked_by_other {
                    "another worker has already acknowledged it"
                } else {
                    "another worker may have claimed it"
                };
                let err = ApiError::new(
                    "InvalidNonceException",
                    format!("Nonce '{nonce}' is not the current nonce of job {job_id}; {why}"),
                )
                .rule(Rule::CpNonce);
                // Losing a race is normal for competing replicas (AG-RACE): a warning, not a violation.
                self.record_refusal(job, caller, op, &err, Severity::Warning);
                return Err(err);
            }
            let now = self.now();
            let job = world.jobs.get_mut(job_id).expect("found above");
            if job.status == JobStatus::Dispatched {
                job.set_status(JobStatus::InProgress, now);
                job.acknowledged = Some((now, caller.map(str::to_string)));
                if let Some(t) = job.lease_timer.take() {
                    self.sim.clock.cancel(t);
                }
                let (label, number) = (job.execution.clone(), job.number);
                let timing = world
                    .action_types
                    .get(&job.action_type)
                    .map(|t| t.timing.clone())
                    .unwrap_or_default();
                world.unqueue(job_id);
                if timing.job_timeout_from == JobTimeoutFrom::Acknowledged {
                    self.set_deadline(world, job_id, now.plus(timing.job_timeout));
                }
                if let Some(c) = caller {
                    self.sim.activity.hold_job(c, job_id);
                }
                world.emit(
                    NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::JobAcknowledged)
                        .execution(&label)
                        .job(job_id)
                        .replica_opt(caller)
                        .detail(format!(
                            "job {number} of {label} acknowledged by {}",
                            caller.unwrap_or("an unsigned caller")
                        ))
                        .data(json!({"number": number})),
                );
            }
            // A repeated acknowledge with the current nonce answers the current status: an SDK retry is safe.
            Ok(world.jobs[job_id].status)
        })
    }

    /// Checks that a job can take a result now (CP-ACK, CP-TERMINAL, CP-TIMEOUT).
    fn check_resultable(&self, job: &Job) -> Result<(), ApiError> {
        match job.status {
            JobStatus::InProgress => Ok(()),
            JobStatus::TimedOut => {
                // Ended before its own deadline: its action execution ran past the action timeout.
                let ended = job
                    .history
                    .iter()
                    .rev()
                    .find(|(_, s)| *s == JobStatus::TimedOut)
                    .map(|(t, _)| *t);
                match (ended, job.deadline) {
                    (Some(at), deadline) if deadline.is_none_or(|d| at < d) => {
                        Err(ApiError::invalid_job_state(format!(
                            "Job {} is TimedOut: its action execution {} exceeded the action timeout at {}; a result is no longer accepted",
                            job.id,
                            job.execution,
                            self.stamp(at)
                        ))
                        .rule(Rule::CpActionTimeout))
                    }
                    _ => Err(ApiError::invalid_job_state(format!(
                        "Job {} is TimedOut: its deadline passed at {}; a result is no longer accepted",
                        job.id,
                        job.deadline.map(|d| self.stamp(d)).unwrap_or_default()
                    ))
                    .rule(Rule::CpTimeout)),
                }
            }
            s if s.is_terminal() => Err(ApiError::invalid_job_state(format!(
                "Job {} is already {s}; a job takes exactly one result",
                job.id
            ))
            .rule(Rule::CpTerminal)),
            s => Err(ApiError::invalid_job_state(format!(
                "Job {} is {s}: acknowledge it before putting a result",
                job.id
            ))
            .rule(Rule::CpAck)),
        }
    }

    /// Put*SuccessResult (CP-CONTINUE, CP-FINAL-100, AG-FINAL-TOKEN, CP-DETAILS, CP-OUTPUT-VARS).
    pub fn put_success(
        &self,
        caller: Option<&str>,
        owner: Owner,
        job_id: &str,
        client_token: Option<&str>,
        result: SuccessResult,
    ) -> Result<(), ApiError> {
        let op = if owner == Owner::ThirdParty {
            "PutThirdPartyJobSuccessResult"
        } else {
            "PutJobSuccessResult"
        };
        self.with_world(|world| {
            let job = self.job_for_call(world, caller, owner, job_id, client_token, op)?;
            if let Some(answer) = self.abandoned_result(job, caller, op) {
                return answer;
            }
            let fingerprint = result.fingerprint();
            if let Some(answer) = self.repeated_result(world, job_id, caller, op, &fingerprint) {
                return answer;
            }
            let job = &world.jobs[job_id];
            if let Err(e) = self.check_resultable(job) {
                self.record_refusal(job, caller, op, &e, Severity::Error);
                return Err(e);
            }
            if let Some(vars) = &result.output_variables {
                let refuse = |e: ApiError| {
                    self.record_refusal(job, caller, op, &e, Severity::Error);
                    Err(e)
                };
                if result.continuation_token.is_some() && !vars.is_empty() {
                    return refuse(
                        ApiError::validation(
                            "outputVariables can be included only when there is no continuation token on the request",
                        )
                        .rule(Rule::CpOutputVars),
                    );
                }
                let size: usize = vars.iter().map(|(k, v)| k.len() + v.len()).sum();
                if size > OUTPUT_VARIABLES_LIMIT {
                    return refuse(
                        ApiError::new(
                            "OutputVariablesSizeExceededException",
                            format!(
                                "Exceeded the total size limit for all variables in the pipeline: {size} bytes > {OUTPUT_VARIABLES_LIMIT}"
                            ),
                        )
                        .rule(Rule::CpOutputVars),
                    );
                }
            }
            let now = self.now();
            let label = job.execution.clone();
            let number = job.number;
            let timing = world.action_types.get(&job.action_type).map(|t| t.timing.clone()).unwrap_or_default();
            self.close_job(world, job_id, JobStatus::Succeeded, now);
            if let Some(job) = world.jobs.get_mut(job_id) {
                job.answer = Some(fingerprint);
            }
            self.apply_details(world, &label, result.summary.as_deref(), result.external_id.as_deref(), result.percent_complete);
            let token = result.continuation_token.clone();
            let pct = result.percent_complete;
            let is_final = match timing.final_on {
                FinalOn::Progress100 => token.is_none() || pct == Some(100),
                FinalOn::NoToken => token.is_none(),
            };
            let data = json!({
                "number": number,
                "result": "success",
                "continuationToken": token,
                "percentComplete": pct,
                "externalExecutionId": result.external_id,
                "summary": result.summary,
                "final": is_final,
            });
            let what = match (&token, pct) {
                (Some(t), Some(p)) => format!("success, {p}% with token {t}"),
                (Some(t), None) => format!("success with token {t}"),
                (None, Some(p)) => format!("success, {p}%, no token"),
                (None, None) => "success, no token".to_string(),
            };
            world.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ResultApplied)
                    .execution(&label)
                    .job(job_id)
                    .replica_opt(caller)
                    .rule(if is_final { Rule::CpFinal100 } else { Rule::CpContinue }, Severity::Info)
                    .detail(format!("job {number} of {label}: {what}{}", if is_final { " (final)" } else { "" }))
                    .data(data),
            );
            if token.is_some() && pct == Some(100) {
                world.emit(
                    NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::FinalWithToken)
                        .execution(&label)
                        .job(job_id)
                        .replica_opt(caller)
                        .rule(Rule::AgFinalToken, Severity::Error)
                        .detail(format!(
                            "job {number} of {label} answered success with percentComplete 100 and a continuation token: \
                             on AWS a token keeps the action running; a final answer carries no token"
                        )),
                );
            } else if is_final && pct != Some(100) {
                world.emit(
                    NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::FinalWithout100)
                        .execution(&label)
                        .job(job_id)
                        .replica_opt(caller)
                        .rule(Rule::AgFinalToken, Severity::Warning)
                        .detail(format!(
                            "job {number} of {label} ended the action with a success that does not say percentComplete 100"
                        )),
                );
            }
            if is_final {
                if let (Some(vars), Some(exec)) = (result.output_variables, world.executions.get_mut(&label)) {
                    exec.output_variables = vars;
                }
                self.check_output_artifacts(world, &label, job_id, caller);
                self.finish_execution(world, &label, ExecutionStatus::Succeeded, None);
            } else {
                self.create_job(world, &label, token, timing.continuation_delay);
            }
            Ok(())
        })
    }

    /// Put*FailureResult: always final (CP-FAIL-FINAL).
    pub fn put_failure(
        &self,
        caller: Option<&str>,
        owner: Owner,
        job_id: &str,
        client_token: Option<&str>,
        failure: FailureResult,
    ) -> Result<(), ApiError> {
        let op = if owner == Owner::ThirdParty {
            "PutThirdPartyJobFailureResult"
        } else {
            "PutJobFailureResult"
        };
        self.with_world(|world| {
            let job = self.job_for_call(world, caller, owner, job_id, client_token, op)?;
            if let Some(answer) = self.abandoned_result(job, caller, op) {
                return answer;
            }
            let fingerprint = failure.fingerprint();
            if let Some(answer) = self.repeated_result(world, job_id, caller, op, &fingerprint) {
                return answer;
            }
            let job = &world.jobs[job_id];
            if let Err(e) = self.check_resultable(job) {
                self.record_refusal(job, caller, op, &e, Severity::Error);
                return Err(e);
            }
            let now = self.now();
            let (label, number) = (job.execution.clone(), job.number);
            self.close_job(world, job_id, JobStatus::Failed, now);
            if let Some(job) = world.jobs.get_mut(job_id) {
                job.answer = Some(fingerprint);
            }
            self.apply_details(world, &label, None, failure.external_id.as_deref(), None);
            world.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ResultApplied)
                    .execution(&label)
                    .job(job_id)
                    .replica_opt(caller)
                    .rule(Rule::CpFailFinal, Severity::Info)
                    .detail(format!(
                        "job {number} of {label}: failure {}: {}",
                        failure.failure_type, failure.message
                    ))
                    .data(json!({
                        "number": number,
                        "result": "failure",
                        "failureType": failure.failure_type,
                        "message": failure.message,
                        "externalExecutionId": failure.external_id,
                        "final": true,
                    })),
            );
            self.finish_execution(
                world,
                &label,
                ExecutionStatus::Failed,
                Some((failure.failure_type, failure.message)),
            );
            Ok(())
        })
    }

    fn close_job(&self, world: &mut World, job_id: &str, status: JobStatus, now: SimTime) {
        if let Some(job) = world.jobs.get_mut(job_id) {
            job.set_status(status, now);
            for t in [job.deadline_timer.take(), job.lease_timer.take()]
                .into_iter()
                .flatten()
            {
                self.sim.clock.cancel(t);
            }
        }
        world.unqueue(job_id);
        self.sim.activity.release_job(job_id);
    }

    /// Keeps the last non-empty summary, externalExecutionId and progress (CP-DETAILS).
    fn apply_details(
        &self,
        world: &mut World,
        label: &str,
        summary: Option<&str>,
        external: Option<&str>,
        pct: Option<i64>,
    ) {
        let now = self.now();
        let Some(exec) = world.executions.get_mut(label) else {
            return;
        };
        exec.updated = now;
        if let Some(s) = summary.filter(|s| !s.is_empty()) {
            exec.summary = Some(s.to_string());
        }
        if let Some(p) = pct {
            exec.percent_complete = Some(p);
        }
        if let Some(x) = external.filter(|x| !x.is_empty()) {
            let first = exec.external_id.is_none();
            exec.external_id = Some(x.to_string());
            if first {
                exec.external_id_at = Some(now);
                let url = world.action_types.get(&exec.action_type).and_then(|t| {
                    t.execution_url_template()
                        .map(|tpl| t.fill_template(tpl, &exec.configuration, Some(x)))
                });
                let elapsed = now.since(exec.started);
                world.emit(
                    NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::DetailsLink)
                        .execution(label)
                        .rule(Rule::CpDetails, Severity::Info)
                        .detail(format!(
                            "Details link of {label} available {} after the start: {}",
                            sim_core::format_duration(elapsed),
                            url.clone().unwrap_or_else(|| format!("externalExecutionId {x} (no executionUrlTemplate)"))
                        ))
                        .data(json!({"externalExecutionId": x, "url": url, "after_ms": elapsed.as_millis() as u64})),
                );
            }
        }
    }

    /// The filled Details link of an execution, if it has an externalExecutionId and its type a template.
    pub(crate) fn external_url(&self, world: &World, exec: &ActionExecution) -> Option<String> {
        let id = exec.external_id.as_deref()?;
        let t = world.action_types.get(&exec.action_type)?;
        Some(t.fill_template(t.execution_url_template()?, &exec.configuration, Some(id)))
    }

    /// The injected fault that hits a request, if one does: a refusal (decided before any state change)
    /// or a lost response (the caller applies the request, then drops its response; see
    /// [`Core::record_lost_response`]).
    pub fn injected_fault(&self, operation: &str, caller: Option<&str>) -> Option<Injected> {
        self.with_world(|world| {
            let rule = world.fault_for(operation)?;
            let err = match rule.kind {
                crate::state::FaultKind::LostResponse => return Some(Injected::LoseResponse),
                crate::state::FaultKind::Throttle => {
                    ApiError::new("ThrottlingException", "Rate exceeded")
                }
                crate::state::FaultKind::ServerError => {
                    let status = rule.status.unwrap_or(500);
                    let code = axum::http::StatusCode::from_u16(status)
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
                    let name = if status == 503 {
                        "ServiceUnavailableException"
                    } else {
                        "InternalFailure"
                    };
                    ApiError::new(name, "Injected server error").status(code)
                }
            };
            world.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::FaultInjected)
                    .replica_opt(caller)
                    .detail(format!(
                        "{operation} refused by an injected fault: {}",
                        err.type_name
                    ))
                    .data(json!({"operation": operation, "error": err.type_name})),
            );
            Some(Injected::Refuse(err))
        })
    }

    /// Records that the response to a request the fake handled was dropped by a `lost-response` fault.
    pub fn record_lost_response(&self, operation: &str, caller: Option<&str>, status: u16) {
        self.sim.events.record(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ResponseLost)
                .replica_opt(caller)
                .detail(format!(
                    "{operation} handled (HTTP {status}), then its response lost by an injected fault: the connection was closed"
                ))
                .data(json!({"operation": operation, "status": status})),
        );
    }

    /// Real-time wait for a job to be queued (poll parking), bounded by `limit`.
    pub async fn wait_for_job(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.job_queued()).await;
    }
}

/// What an injected fault does to a request (see [`Core::injected_fault`]).
#[derive(Debug)]
pub enum Injected {
    /// Refused before any state change, with this error.
    Refuse(ApiError),
    /// Applied as usual, then answered with a closed connection instead of the response.
    LoseResponse,
}

impl SuccessResult {
    /// What a repeat of this result is compared on (CP-REPEAT).
    fn fingerprint(&self) -> Value {
        json!({
            "result": "success",
            "continuationToken": self.continuation_token,
            "summary": self.summary,
            "externalExecutionId": self.external_id,
            "percentComplete": self.percent_complete,
            "outputVariables": self.output_variables,
        })
    }
}

impl FailureResult {
    /// What a repeat of this result is compared on (CP-REPEAT).
    fn fingerprint(&self) -> Value {
        json!({
            "result": "failure",
            "type": self.failure_type,
            "message": self.message,
            "externalExecutionId": self.external_id,
        })
    }
}

impl Core {
    /// A result identical to the one `job` already took (CP-REPEAT): `None` when it is not one; otherwise
    /// the answer the `repeated_results` setting gives. Never a violation: the client cannot know that
    /// its first call was applied when the response was lost.
    fn repeated_result(
        &self,
        world: &mut World,
        job_id: &str,
        caller: Option<&str>,
        operation: &str,
        fingerprint: &Value,
    ) -> Option<Result<(), ApiError>> {
        let job = world.jobs.get(job_id)?;
        if job.answer.as_ref() != Some(fingerprint) || !job.status.is_terminal() {
            return None;
        }
        let refuse = self.settings.repeated_results == crate::types::RepeatedResults::Refuse;
        let (label, number, status) = (job.execution.clone(), job.number, job.status);
        world.emit(
            NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::ResultRepeated)
                .execution(&label)
                .job(job_id)
                .replica_opt(caller)
                .rule(Rule::CpRepeat, Severity::Info)
                .detail(format!(
                    "{operation} on job {number} of {label} repeats the result the job already took ({status}): {}",
                    if refuse {
                        "refused with InvalidJobStateException (repeated_results = refuse)"
                    } else {
                        "answered 200, nothing changes (repeated_results = accept)"
                    }
                ))
                .data(json!({"operation": operation, "number": number, "refused": refuse})),
        );
        Some(if refuse {
            Err(ApiError::invalid_job_state(format!(
                "Job {job_id} is already {status}: this {operation} repeats the result it took"
            ))
            .rule(Rule::CpRepeat))
        } else {
            Ok(())
        })
    }

    /// Adds an injected fault rule (CP faults are refused before any state change).
    pub fn add_fault(&self, rule: FaultRule) {
        self.with_world(|w| {
            w.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::FaultSet)
                    .detail(format!(
                        "fault: {:?} on {} at rate {}",
                        rule.kind, rule.operation, rule.rate
                    ))
                    .data(serde_json::to_value(&rule).unwrap_or(Value::Null)),
            );
            w.faults.push(rule);
        });
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.with_world(|w| {
            w.faults.clear();
            w.emit(
                NewEvent::new(sim_core::Source::Cp, sim_core::EventKind::FaultsCleared)
                    .detail("faults cleared"),
            );
        });
    }
}
