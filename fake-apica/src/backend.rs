//! The backend itself, apart from HTTP: its tests on the simulated clock, presets, tokens and counts.
//!
//! Lock discipline: the state lock is never held while recording an event, because event-log
//! listeners (the scenario runner) may call back into this backend synchronously.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde_json::json;
use sim_core::{NewEvent, Sim, SimTime, TimerId, format_duration, format_offset};

use crate::config::ApicaConfig;
use crate::error::ApiError;
use crate::injection::Faults;
use crate::loadtest::{Ending, LoadTest, TestStatus, TestView};
use crate::preset::Preset;
use crate::request::CreateTest;

/// The event source name of everything this backend records.
pub const SOURCE: sim_core::Source = sim_core::Source::Apica;

/// The fake load-test backend. Cheap to clone: clones share one backend.
#[derive(Clone)]
pub struct FakeApica {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub sim: Sim,
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub max_tests_per_token: usize,
    pub admin: sim_core::AdminGuard,
    state: Mutex<State>,
}

struct TestEntry {
    test: LoadTest,
    /// The start (slow start only) and end timers, cancelled on abort.
    timers: Vec<TimerId>,
}

pub(crate) struct State {
    tokens: HashSet<String>,
    presets: BTreeMap<String, Preset>,
    tests: BTreeMap<u64, TestEntry>,
    by_key: HashMap<String, u64>,
    key_requests: BTreeMap<String, u64>,
    per_file: BTreeMap<String, usize>,
    executions: HashMap<String, String>,
    requests: BTreeMap<&'static str, u64>,
    next_job_id: u64,
    pub faults: Faults,
    // Tests created per API token (the quota).
    per_token: HashMap<String, usize>,
}

/// The answer to a create request.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    /// The test (new, or the one the idempotency key created before).
    pub test: TestView,
    /// `true` when the idempotency key returned an existing test.
    pub replayed: bool,
}

/// Tests started, per runnable file and per idempotency key: how a harness tells how many tests an
/// action execution started (AG-ONE-TEST).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestCounts {
    /// Tests created in all.
    pub total: usize,
    /// Tests created per runnable file.
    pub by_runnable_file: BTreeMap<String, usize>,
    /// Per idempotency key: tests created (0 or 1) and create requests seen.
    pub by_idempotency_key: BTreeMap<String, KeyCount>,
    /// API requests seen per operation (`create`, `get`, `abort`), faulted ones included.
    pub requests: BTreeMap<String, u64>,
}

/// What one idempotency key did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyCount {
    /// Tests it created: 1 once created, never more.
    pub tests: usize,
    /// Create requests that carried it.
    pub requests: u64,
}

impl FakeApica {
    /// A backend in `sim`'s world with `config`'s tokens and presets.
    pub fn new(sim: Sim, config: ApicaConfig) -> Self {
        for token in &config.tokens {
            sim.events.add_secret(token);
        }
        let state = State {
            tokens: config.tokens.iter().cloned().collect(),
            presets: config
                .presets
                .iter()
                .map(|p| (p.name.clone(), p.clone()))
                .collect(),
            tests: BTreeMap::new(),
            by_key: HashMap::new(),
            key_requests: BTreeMap::new(),
            per_file: BTreeMap::new(),
            executions: HashMap::new(),
            requests: BTreeMap::new(),
            next_job_id: config.first_job_id,
            faults: Faults::new(config.seed),
            per_token: HashMap::new(),
        };
        FakeApica {
            shared: Arc::new(Shared {
                sim,
                public_url: config
                    .public_url
                    .map(|u| u.trim_end_matches('/').to_string()),
                max_body_bytes: config.max_body_bytes,
                max_tests_per_token: config.max_tests_per_token,
                admin: config.admin,
                state: Mutex::new(state),
            }),
        }
    }

    /// The world this backend lives in.
    pub fn sim(&self) -> &Sim {
        &self.shared.sim
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge the backend for every later request.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn now(&self) -> SimTime {
        self.shared.sim.clock.now()
    }

    pub(crate) fn weak(&self) -> Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    pub(crate) fn from_weak(weak: &Weak<Shared>) -> Option<Self> {
        weak.upgrade().map(|shared| FakeApica { shared })
    }

    pub(crate) fn record(&self, events: Vec<NewEvent>) {
        for e in events {
            let e = self.shared.sim.events.record(e);
            match e.kind.as_str() {
                "request_rejected" | "fault_injected" => {
                    tracing::debug!(kind = %e.kind, "{}", e.detail)
                }
                _ => tracing::info!(kind = %e.kind, at = %e.stamp(), "{}", e.detail),
            }
        }
    }

    // ----- presets and tokens -----

    /// Adds a preset, replacing one of the same name.
    pub fn add_preset(&self, preset: Preset) {
        self.lock().presets.insert(preset.name.clone(), preset);
    }

    /// Removes a preset; `false` if there was none of that name. Tests already created keep theirs.
    pub fn remove_preset(&self, name: &str) -> bool {
        self.lock().presets.remove(name).is_some()
    }

    /// The presets, by name.
    pub fn presets(&self) -> Vec<Preset> {
        self.lock().presets.values().cloned().collect()
    }

    /// Accepts one more bearer token (e.g. an action's `ApiToken`); it is redacted from the event log.
    pub fn add_token(&self, token: &str) {
        self.shared.sim.events.add_secret(token);
        self.lock().tokens.insert(token.to_string());
    }

    /// How many tokens the backend accepts.
    pub fn token_count(&self) -> usize {
        self.lock().tokens.len()
    }

    /// Checks a bearer token.
    pub fn check_token(&self, token: &str) -> Result<(), ApiError> {
        let state = self.lock();
        if state.tokens.is_empty() {
            Err(ApiError::NoTokens)
        } else if state.tokens.contains(token) {
            Ok(())
        } else {
            Err(ApiError::InvalidToken)
        }
    }

    /// Tags the events of tests for `runnable_file` with `execution`, so timelines show which action
    /// execution a test belongs to (the runner knows; the backend cannot).
    pub fn set_execution(&self, runnable_file: &str, execution: &str) {
        self.lock()
            .executions
            .insert(runnable_file.to_string(), execution.to_string());
    }

    pub(crate) fn count_request(&self, operation: &'static str) {
        *self.lock().requests.entry(operation).or_default() += 1;
    }

    // ----- tests -----

    /// Creates a test, or returns the one its idempotency key already created. Faults other than
    /// slow start are not applied here: they answer at the HTTP edge.
    pub fn create_test(&self, req: &CreateTest) -> Result<Created, ApiError> {
        self.create_test_for(None, req)
    }

    /// [`FakeApica::create_test`] for a request authorized by `token`: a new test counts towards the
    /// token's quota (`max_tests_per_token`); a replay does not.
    pub fn create_test_as(&self, token: &str, req: &CreateTest) -> Result<Created, ApiError> {
        self.create_test_for(Some(token), req)
    }

    fn create_test_for(&self, token: Option<&str>, req: &CreateTest) -> Result<Created, ApiError> {
        let now = self.now();
        let (created, event) = {
            let mut st = self.lock();
            if let Some(key) = &req.idempotency_key {
                *st.key_requests.entry(key.clone()).or_default() += 1;
                if let Some(entry) = st.by_key.get(key).and_then(|id| st.tests.get(id)) {
                    let t = &entry.test;
                    if t.preset.name != req.preset || t.runnable_file != req.runnable_file {
                        return Err(ApiError::IdempotencyConflict {
                            key: key.clone(),
                            job_id: t.job_id,
                            preset: t.preset.name.clone(),
                            runnable_file: t.runnable_file.clone(),
                        });
                    }
                    let view = t.view(now);
                    return Ok(Created {
                        test: view,
                        replayed: true,
                    });
                }
            }
            let Some(preset) = st.presets.get(&req.preset).cloned() else {
                let known: Vec<&str> = st.presets.keys().map(String::as_str).collect();
                return Err(ApiError::UnknownPreset {
                    name: req.preset.clone(),
                    known: if known.is_empty() {
                        "none yet (add one with --preset NAME=DURATION:passed or POST /_sim/presets)".into()
                    } else {
                        known.join(", ")
                    },
                });
            };
            if let Some(token) = token {
                let limit = self.shared.max_tests_per_token;
                let made = st.per_token.entry(token.to_string()).or_default();
                if *made >= limit {
                    return Err(ApiError::TestQuota { limit });
                }
                *made += 1;
            }
            let delay = st.faults.slow_start_delay(now);
            let job_id = st.next_job_id;
            st.next_job_id += 1;
            let starts_at = now.plus(delay);
            let test = LoadTest {
                job_id,
                ends_at: starts_at.plus(preset.duration),
                preset,
                runnable_file: req.runnable_file.clone(),
                idempotency_key: req.idempotency_key.clone(),
                created_at: now,
                starts_at,
                ended: None,
            };
            let timers = self.schedule_test_timers(&test, now);
            let event = st
                .tag(
                    NewEvent::new(SOURCE, sim_core::EventKind::TestCreated),
                    &test,
                )
                .detail(format!(
                    "test {job_id} created: preset `{}` ({}), runnableFile `{}`{}",
                    test.preset.name,
                    format_duration(test.preset.duration),
                    test.runnable_file,
                    if delay.is_zero() {
                        String::new()
                    } else {
                        format!(", starting {} late (slow start)", format_duration(delay))
                    }
                ))
                .data(json!({
                    "jobId": job_id,
                    "preset": test.preset.name,
                    "runnableFile": test.runnable_file,
                    "idempotencyKey": test.idempotency_key,
                    "startsAt": format_offset(starts_at.since(self.shared.sim.clock.origin())),
                    "endsAt": format_offset(test.ends_at.since(self.shared.sim.clock.origin())),
                }));
            let view = test.view(now);
            *st.per_file.entry(test.runnable_file.clone()).or_default() += 1;
            if let Some(key) = &test.idempotency_key {
                st.by_key.insert(key.clone(), job_id);
            }
            st.tests.insert(job_id, TestEntry { test, timers });
            (
                Created {
                    test: view,
                    replayed: false,
                },
                event,
            )
        };
        self.record(vec![event]);
        Ok(created)
    }

    fn schedule_test_timers(&self, test: &LoadTest, now: SimTime) -> Vec<TimerId> {
        let clock = &self.shared.sim.clock;
        let job_id = test.job_id;
        let mut timers = Vec::new();
        if test.starts_at > now {
            let weak = self.weak();
            timers.push(clock.schedule(
                test.starts_at,
                format!("apica test {job_id} starts"),
                move |at| {
                    if let Some(apica) = FakeApica::from_weak(&weak) {
                        apica.on_started(job_id, at);
                    }
                },
            ));
        }
        let weak = self.weak();
        timers.push(clock.schedule(
            test.ends_at,
            format!("apica test {job_id} ends"),
            move |at| {
                if let Some(apica) = FakeApica::from_weak(&weak) {
                    apica.on_ended(job_id, at);
                }
            },
        ));
        timers
    }

    fn on_started(&self, job_id: u64, at: SimTime) {
        let event = {
            let st = self.lock();
            let Some(entry) = st.tests.get(&job_id) else {
                return;
            };
            if entry.test.ended.is_some() {
                return;
            }
            st.tag(
                NewEvent::new(SOURCE, sim_core::EventKind::TestStarted),
                &entry.test,
            )
            .detail(format!("test {job_id} started after its slow start"))
            .data(json!({"jobId": job_id, "startedAt": at.rfc3339()}))
        };
        self.record(vec![event]);
    }

    fn on_ended(&self, job_id: u64, at: SimTime) {
        let events = {
            let mut st = self.lock();
            st.settle(job_id, at)
        };
        self.record(events);
    }

    /// Reads a test as the API does: a lost test (fault) is unknown.
    pub fn get_test(&self, job_id: u64) -> Result<TestView, ApiError> {
        let now = self.now();
        let (view, events) = {
            let mut st = self.lock();
            let events = st.settle(job_id, now);
            let entry = st.visible(job_id, now)?;
            (entry.test.view(now), events)
        };
        self.record(events);
        Ok(view)
    }

    /// Aborts a running test. Aborting an aborted test answers it again; a passed or failed test
    /// cannot be aborted.
    pub fn abort_test(&self, job_id: u64) -> Result<TestView, ApiError> {
        let now = self.now();
        let (view, events) = {
            let mut st = self.lock();
            let mut events = st.settle(job_id, now);
            st.visible(job_id, now)?;
            let Some(entry) = st.tests.get_mut(&job_id) else {
                return Err(ApiError::UnknownTest(job_id.to_string()));
            };
            match entry.test.status(now) {
                TestStatus::Running => {
                    let percent = entry.test.percent_complete(now);
                    entry.test.ended = Some((now, Ending::Aborted { percent }));
                    for timer in entry.timers.drain(..) {
                        self.shared.sim.clock.cancel(timer);
                    }
                    let test = entry.test.clone();
                    let view = test.view(now);
                    let event = st
                        .tag(NewEvent::new(SOURCE, sim_core::EventKind::TestAborted), &test)
                        .detail(format!("test {job_id} aborted at {percent}%"))
                        .data(json!({"jobId": job_id, "percentComplete": percent, "summary": view.summary}));
                    events.push(event);
                    (view, events)
                }
                TestStatus::Aborted => (entry.test.view(now), events),
                status => {
                    return Err(ApiError::AlreadyFinished {
                        job_id,
                        status: status.as_str(),
                    });
                }
            }
        };
        self.record(events);
        Ok(view)
    }

    /// A test's current view, lost or not (for the harness, not the API).
    pub fn test(&self, job_id: u64) -> Option<TestView> {
        let now = self.now();
        self.lock().tests.get(&job_id).map(|e| e.test.view(now))
    }

    /// Every test's current view, by job id, lost ones included.
    pub fn tests(&self) -> Vec<TestView> {
        let now = self.now();
        self.lock()
            .tests
            .values()
            .map(|e| e.test.view(now))
            .collect()
    }

    /// How many tests were created for `file`.
    pub fn tests_for_runnable_file(&self, file: &str) -> usize {
        self.lock().per_file.get(file).copied().unwrap_or(0)
    }

    /// How many tests `key` created: 0 or 1, by construction.
    pub fn tests_for_idempotency_key(&self, key: &str) -> usize {
        usize::from(self.lock().by_key.contains_key(key))
    }

    /// How many create requests carried `key`.
    pub fn create_requests_for_idempotency_key(&self, key: &str) -> u64 {
        self.lock().key_requests.get(key).copied().unwrap_or(0)
    }

    /// All the counts at once.
    pub fn counts(&self) -> TestCounts {
        let st = self.lock();
        TestCounts {
            total: st.tests.len(),
            by_runnable_file: st.per_file.clone(),
            by_idempotency_key: st
                .key_requests
                .iter()
                .map(|(k, n)| {
                    let count = KeyCount {
                        tests: usize::from(st.by_key.contains_key(k)),
                        requests: *n,
                    };
                    (k.clone(), count)
                })
                .collect(),
            requests: st
                .requests
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }

    /// Whether the API would show this test now (it exists and no lost-test fault hides it).
    pub(crate) fn is_visible(&self, job_id: u64) -> bool {
        let now = self.now();
        self.lock().visible(job_id, now).is_ok()
    }
}

impl State {
    /// Finishes a test whose end is due at or before `now` (its timer may not have fired yet) and
    /// returns the event to record; a no-op otherwise.
    fn settle(&mut self, job_id: u64, now: SimTime) -> Vec<NewEvent> {
        let Some(entry) = self.tests.get_mut(&job_id) else {
            return Vec::new();
        };
        if entry.test.ended.is_some() || now < entry.test.ends_at {
            return Vec::new();
        }
        let ends_at = entry.test.ends_at;
        entry.test.ended = Some((ends_at, Ending::Completed));
        let test = entry.test.clone();
        let status = test.status(ends_at);
        let summary = test.summary(ends_at);
        let event = self
            .tag(
                NewEvent::new(SOURCE, sim_core::EventKind::TestFinished),
                &test,
            )
            .detail(format!("test {job_id} {summary}"))
            .data(json!({
                "jobId": job_id,
                "status": status,
                "summary": summary,
                "finishedAt": ends_at.rfc3339(),
            }));
        vec![event]
    }

    /// The test if the API may show it at `now`.
    fn visible(&self, job_id: u64, now: SimTime) -> Result<&TestEntry, ApiError> {
        match self.tests.get(&job_id) {
            Some(entry) if !self.faults.is_lost(&entry.test, now) => Ok(entry),
            _ => Err(ApiError::UnknownTest(job_id.to_string())),
        }
    }

    /// Adds the execution (when the runner mapped the test's file to one) to an event.
    fn tag(&self, event: NewEvent, test: &LoadTest) -> NewEvent {
        match self.executions.get(&test.runnable_file) {
            Some(execution) => event.execution(execution.clone()),
            None => event,
        }
    }
}
