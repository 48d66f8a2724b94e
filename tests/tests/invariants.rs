//! State-machine invariants of the job lifecycle (`docs/protocol.md`, "Job lifecycle and time" and the CP-* rules),
//! checked after every step of random sequences of worker calls and clock moves against the engine in
//! process (no HTTP, for speed). Each call is also checked against what the rules say it must answer.
//! Both `final_on` modes, ack windows 0 and 5 min, job timeouts 10 min and 1 h, action timeouts 1 h, 3 h and
//! 24 h (1 h with a 1 h job timeout: both timers due at the same instant).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use fake_codepipeline::engine::{FailureResult, SuccessResult};
use fake_codepipeline::state::{ActionExecution, Job};
use fake_codepipeline::{
    ActionTypeId, ActionTypeSpec, ExecutionSpec, ExecutionStatus, FakeCodePipeline, FinalOn,
    JobStatus, Owner, Settings, Timing, TimingOverrides,
};
use proptest::prelude::*;
use serde_json::json;
use sim_core::{Sim, SimTime};

const KEYS: [(&str, &str); 3] = [
    ("AKIDREPLICA1", "s1"),
    ("AKIDREPLICA2", "s2"),
    ("AKIDREPLICA3", "s3"),
];
const CLIENT: (&str, &str) = ("6f1c2a9e-0000-4000-8000-000000000001", "client-token-one");
const CUSTOM: &str = "Test/Custom/Invariant/1";
const THIRD_PARTY: &str = "Test/ThirdParty/Invariant/1";
const PRESETS: [&str; 2] = ["alpha", "beta"];
const FAILURE_TYPES: [&str; 6] = [
    "JobFailed",
    "ConfigurationError",
    "PermissionError",
    "RevisionOutOfSync",
    "RevisionUnavailable",
    "SystemUnavailable",
];

/// Protocol settings of one run, applied to both action types.
#[derive(Clone, Debug)]
struct Config {
    final_on: &'static str,
    ack_window: &'static str,
    job_timeout: &'static str,
    action_timeout: &'static str,
    seed: u64,
}

#[derive(Clone, Copy, Debug)]
enum NonceKind {
    /// The last nonce a poll handed out for the job.
    Latest,
    /// The first nonce a poll handed out for the job (stale once it was offered again).
    First,
    /// A nonce no poll ever issued.
    Bogus,
}

#[derive(Clone, Copy, Debug)]
enum Pct {
    Absent,
    Hundred,
    Some(i64),
}

/// Which job a call is about. `Fitting`: one in the status the call is meant for (Dispatched for an ack,
/// InProgress for a result), else any open job, else any job; `Any`: any job at all (terminal, never
/// polled, ...); the index is taken modulo the number of candidates. `LastPolled`: the first job the last
/// poll handed out (how a worker goes on), else as `Fitting(0)`.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Fitting(usize),
    Any(usize),
    LastPolled,
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![3 => any::<usize>().prop_map(Pick::Fitting), 1 => any::<usize>().prop_map(Pick::Any)]
}

/// One worker call or clock move.
#[derive(Clone, Debug)]
enum Op {
    Start {
        third_party: bool,
        preset: usize,
    },
    Poll {
        third_party: bool,
        replica: usize,
        max: usize,
        query: Option<usize>,
    },
    Details {
        job: Pick,
    },
    Ack {
        job: Pick,
        nonce: NonceKind,
        replica: usize,
    },
    Success {
        job: Pick,
        token: bool,
        pct: Pct,
    },
    Failure {
        job: Pick,
        kind: usize,
    },
    WrongClientToken {
        job: Pick,
        call: usize,
    },
    Advance {
        secs: u64,
    },
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![Just("progress-100"), Just("no-token")],
        prop_oneof![Just("0s"), Just("5m")],
        prop_oneof![Just("10m"), Just("1h")],
        prop_oneof![Just("1h"), Just("3h"), Just("24h")],
        any::<u64>(),
    )
        .prop_map(
            |(final_on, ack_window, job_timeout, action_timeout, seed)| Config {
                final_on,
                ack_window,
                job_timeout,
                action_timeout,
                seed,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    let nonce = prop_oneof![3 => Just(NonceKind::Latest), 1 => Just(NonceKind::First), 1 => Just(NonceKind::Bogus)];
    let pct = prop_oneof![
        Just(Pct::Absent),
        Just(Pct::Hundred),
        (0i64..=100).prop_map(Pct::Some)
    ];
    prop_oneof![
        2 => (any::<bool>(), 0..PRESETS.len()).prop_map(|(third_party, preset)| Op::Start { third_party, preset }),
        4 => (any::<bool>(), 0..KEYS.len(), 1usize..=3, proptest::option::of(0..PRESETS.len()))
            .prop_map(|(third_party, replica, max, query)| Op::Poll { third_party, replica, max, query }),
        1 => pick().prop_map(|job| Op::Details { job }),
        4 => (pick(), nonce, 0..KEYS.len()).prop_map(|(job, nonce, replica)| Op::Ack { job, nonce, replica }),
        3 => (pick(), any::<bool>(), pct).prop_map(|(job, token, pct)| Op::Success { job, token, pct }),
        1 => (pick(), 0..FAILURE_TYPES.len()).prop_map(|(job, kind)| Op::Failure { job, kind }),
        1 => (pick(), 0usize..4).prop_map(|(job, call)| Op::WrongClientToken { job, call }),
        2 => prop_oneof![0u64..=600, 0u64..=7200].prop_map(|secs| Op::Advance { secs }),
    ]
}

/// A worker's whole turn: poll one job, acknowledge it with the nonce it got, answer it.
fn flow() -> impl Strategy<Value = Vec<Op>> {
    let pct = prop_oneof![
        Just(Pct::Absent),
        Just(Pct::Hundred),
        (0i64..=100).prop_map(Pct::Some)
    ];
    (
        any::<bool>(),
        0..KEYS.len(),
        any::<bool>(),
        pct,
        prop_oneof![4 => Just(None), 1 => (0..FAILURE_TYPES.len()).prop_map(Some)],
    )
        .prop_map(|(third_party, replica, token, pct, failure)| {
            let answer = match failure {
                Some(kind) => Op::Failure {
                    job: Pick::LastPolled,
                    kind,
                },
                None => Op::Success {
                    job: Pick::LastPolled,
                    token,
                    pct,
                },
            };
            vec![
                Op::Poll {
                    third_party,
                    replica,
                    max: 1,
                    query: None,
                },
                Op::Ack {
                    job: Pick::LastPolled,
                    nonce: NonceKind::Latest,
                    replica,
                },
                answer,
            ]
        })
}

/// Up to 40 steps: single calls and clock moves mixed with whole worker turns.
fn steps() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![3 => op().prop_map(|o| vec![o]), 1 => flow()],
        1..30,
    )
    .prop_map(|chunks| {
        let mut ops: Vec<Op> = chunks.into_iter().flatten().collect();
        ops.truncate(40);
        ops
    })
}

/// Everything the invariants look at, copied out of the engine's lock.
struct Snapshot {
    now: SimTime,
    jobs: BTreeMap<String, Job>,
    executions: BTreeMap<String, ActionExecution>,
    timing: BTreeMap<ActionTypeId, Timing>,
}

impl Snapshot {
    /// A fingerprint of all job and execution state (to prove that a refused call changed nothing).
    fn fingerprint(&self) -> String {
        format!("{:?}\n{:?}", self.jobs, self.executions)
    }

    /// The job `p` picks for a call meant for jobs in status `fits`, optionally of one owner family only.
    fn pick(
        &self,
        p: Pick,
        fits: Option<JobStatus>,
        owner: Option<Owner>,
        last_polled: Option<&str>,
    ) -> Option<Job> {
        let all: Vec<&Job> = self
            .ordered_jobs()
            .into_iter()
            .filter(|j| owner.is_none_or(|o| j.action_type.owner == o))
            .collect();
        let fitting: Vec<&Job> = all
            .iter()
            .copied()
            .filter(|j| fits.is_none_or(|f| j.status == f))
            .collect();
        let open: Vec<&Job> = all
            .iter()
            .copied()
            .filter(|j| !j.status.is_terminal())
            .collect();
        let (from, index) = match p {
            Pick::LastPolled => match last_polled.and_then(|id| self.jobs.get(id)) {
                Some(job) => return Some(job.clone()),
                None => (fitting, 0),
            },
            Pick::Fitting(i) if !fitting.is_empty() => (fitting, i),
            Pick::Fitting(i) if !open.is_empty() => (open, i),
            Pick::Fitting(i) | Pick::Any(i) => (all, i),
        };
        (!from.is_empty()).then(|| from[index % from.len()].clone())
    }

    /// Jobs in a stable order: by execution start order, then number.
    fn ordered_jobs(&self) -> Vec<&Job> {
        let mut jobs: Vec<&Job> = self.jobs.values().collect();
        jobs.sort_by_key(|j| (self.executions.get(&j.execution).map(|e| e.order), j.number));
        jobs
    }
}

/// One run: the fake, its world, and what the test remembers across steps.
struct Run {
    fake: FakeCodePipeline,
    sim: Sim,
    config: Config,
    custom: ActionTypeId,
    third_party: ActionTypeId,
    /// Every nonce a poll handed out, per job, in order.
    nonces: HashMap<String, Vec<String>>,
    /// Terminal statuses seen: a job must keep it for ever.
    terminal: HashMap<String, JobStatus>,
    /// Final execution statuses seen: an execution must keep it for ever.
    finished: HashMap<String, ExecutionStatus>,
    /// Deadlines seen: a job's deadline never moves.
    deadlines: HashMap<String, SimTime>,
    /// The first job the last poll handed out.
    last_polled: Option<String>,
}

impl Run {
    fn new(config: Config) -> Run {
        let sim = Sim::manual();
        let mut settings = Settings {
            seed: config.seed,
            ..Settings::default()
        };
        for (k, s) in KEYS {
            settings = settings.with_key(k, s);
        }
        let fake = FakeCodePipeline::new(sim.clone(), settings);
        let custom: ActionTypeId = CUSTOM.parse().expect("custom type");
        let third_party: ActionTypeId = THIRD_PARTY.parse().expect("third-party type");
        for id in [&custom, &third_party] {
            let props = json!([
                {"name": "PresetName", "required": true, "key": true, "secret": false, "queryable": id.owner == Owner::Custom},
                {"name": "RunnableFile", "required": true, "key": false, "secret": false},
            ]);
            let spec = ActionTypeSpec {
                id: Some(id.clone()),
                settings: json!({"executionUrlTemplate": "http://apica.test/jobs/{ExternalExecutionId}"}),
                properties: fake_codepipeline::pipelines::parse_properties(Some(&props))
                    .expect("properties"),
                input_artifacts: serde_json::Value::Null,
                output_artifacts: serde_json::Value::Null,
                clients: [(CLIENT.0.to_string(), CLIENT.1.to_string())]
                    .into_iter()
                    .collect(),
                timing: TimingOverrides {
                    job_timeout: Some(config.job_timeout.into()),
                    ack_window: Some(config.ack_window.into()),
                    continuation_delay: None,
                    action_timeout: Some(config.action_timeout.into()),
                    final_on: Some(config.final_on.into()),
                    ..Default::default()
                },
            };
            fake.core()
                .register_action_type(spec)
                .expect("register action type");
        }
        Run {
            fake,
            sim,
            config,
            custom,
            third_party,
            nonces: HashMap::new(),
            terminal: HashMap::new(),
            finished: HashMap::new(),
            deadlines: HashMap::new(),
            last_polled: None,
        }
    }

    fn snapshot(&self) -> Snapshot {
        let now = self.sim.clock.now();
        self.fake.core().inspect(|w| Snapshot {
            now,
            jobs: w.jobs().map(|j| (j.id.clone(), j.clone())).collect(),
            executions: w
                .executions()
                .map(|e| (e.label.clone(), e.clone()))
                .collect(),
            timing: w
                .action_types()
                .map(|t| (t.id.clone(), t.timing.clone()))
                .collect(),
        })
    }

    fn type_of(&self, third_party: bool) -> (&ActionTypeId, Owner) {
        if third_party {
            (&self.third_party, Owner::ThirdParty)
        } else {
            (&self.custom, Owner::Custom)
        }
    }

    fn final_on(&self) -> FinalOn {
        self.config.final_on.parse().expect("final_on")
    }

    /// Applies `op`, checking its answer against the rules. `Err` describes a broken rule.
    fn step(&mut self, op: &Op) -> Result<(), String> {
        let before = self.snapshot();
        let core = self.fake.core().clone();
        let last_polled = self.last_polled.clone();
        let pick = |p: Pick, fits: JobStatus| -> Option<Job> {
            before.pick(p, Some(fits), None, last_polled.as_deref())
        };
        let token_for =
            |job: &Job| (job.action_type.owner == Owner::ThirdParty).then_some(CLIENT.1);
        match op {
            Op::Start {
                third_party,
                preset,
            } => {
                let (id, _) = self.type_of(*third_party);
                let spec = ExecutionSpec {
                    action_type: Some(id.clone()),
                    configuration: [
                        ("PresetName".to_string(), PRESETS[*preset].to_string()),
                        (
                            "RunnableFile".to_string(),
                            format!("{}.jmx", PRESETS[*preset]),
                        ),
                    ]
                    .into_iter()
                    .collect(),
                    client_id: None,
                    label: None,
                    ..Default::default()
                };
                let v = core
                    .start_execution(spec)
                    .map_err(|e| format!("start refused: {e}"))?;
                let label = v["executionId"].as_str().unwrap_or_default().to_string();
                let after = self.snapshot();
                let exec = after
                    .executions
                    .get(&label)
                    .ok_or("started execution missing")?;
                check(
                    exec.status == ExecutionStatus::InProgress,
                    "a new execution is InProgress",
                )?;
                check(exec.jobs.len() == 1, "a new execution has one job")?;
                check(
                    after.jobs[&exec.jobs[0]].status == JobStatus::Queued,
                    "the first job is queued at once",
                )?;
            }
            Op::Poll {
                third_party,
                replica,
                max,
                query,
            } => {
                let (id, owner) = self.type_of(*third_party);
                let id = id.clone();
                let query = if *third_party {
                    None
                } else {
                    query.map(|q| ("PresetName", PRESETS[q]))
                };
                if !*third_party && query.is_none() {
                    // The custom type has a queryable property: a poll must name it.
                    let err = core
                        .poll(Some(KEYS[*replica].0), owner, &id, *max, None)
                        .err()
                        .ok_or("a custom poll without queryParam was accepted")?;
                    check(
                        err.type_name == "ValidationException",
                        &format!("a poll without queryParam got {}", err.type_name),
                    )?;
                    return Ok(());
                }
                let ack_zero = before.timing[&id].ack_window.is_zero();
                // CP-LEASE: Queued jobs, and (ack window 0) Dispatched ones, of this type matching the query.
                let eligible = before
                    .jobs
                    .values()
                    .filter(|j| j.action_type == id)
                    .filter(|j| {
                        j.status == JobStatus::Queued
                            || (ack_zero && j.status == JobStatus::Dispatched)
                    })
                    .filter(|j| match query {
                        Some((k, v)) => {
                            before.executions[&j.execution]
                                .configuration
                                .get(k)
                                .map(String::as_str)
                                == Some(v)
                        }
                        None => true,
                    })
                    .count();
                let got = core
                    .poll(Some(KEYS[*replica].0), owner, &id, *max, query)
                    .map_err(|e| format!("valid poll refused: {e}"))?;
                check(
                    got.len() == eligible.min(*max),
                    &format!(
                        "poll returned {} of {eligible} offered jobs (max {max})",
                        got.len()
                    ),
                )?;
                self.last_polled = got.first().map(|d| d.job_id.clone());
                let after = self.snapshot();
                let mut seen = std::collections::HashSet::new();
                for d in &got {
                    check(
                        seen.insert(d.job_id.clone()),
                        "a poll hands out a job at most once",
                    )?;
                    let job = &after.jobs[&d.job_id];
                    check(
                        job.status == JobStatus::Dispatched,
                        &format!("polled job {} is {}", d.job_id, job.status),
                    )?;
                    check(
                        job.nonce.as_deref() == Some(d.nonce.as_str()),
                        "the poll's nonce is the job's current nonce",
                    )?;
                    let previous = self.nonces.entry(d.job_id.clone()).or_default();
                    check(
                        !previous.contains(&d.nonce),
                        "each dispatch issues a fresh nonce",
                    )?;
                    previous.push(d.nonce.clone());
                    if owner == Owner::ThirdParty {
                        check(
                            d.client_id.as_deref() == Some(CLIENT.0),
                            "a third-party job carries its clientId",
                        )?;
                    }
                }
            }
            Op::Details { job } => {
                let Some(job) = before.pick(*job, None, None, None) else {
                    return Ok(());
                };
                core.details(
                    Some(KEYS[0].0),
                    job.action_type.owner,
                    &job.id,
                    token_for(&job),
                )
                .map_err(|e| format!("details of a known job refused: {e}"))?;
                check(
                    self.snapshot().fingerprint() == before.fingerprint(),
                    "GetJobDetails changes nothing",
                )?;
            }
            Op::Ack {
                job,
                nonce,
                replica,
            } => {
                let Some(job) = pick(*job, JobStatus::Dispatched) else {
                    return Ok(());
                };
                let issued = self.nonces.get(&job.id);
                let nonce = match nonce {
                    NonceKind::Latest => issued.and_then(|n| n.last().cloned()),
                    NonceKind::First => issued.and_then(|n| n.first().cloned()),
                    NonceKind::Bogus => None,
                }
                .unwrap_or_else(|| "never-issued".to_string());
                let got = core.acknowledge(
                    Some(KEYS[*replica].0),
                    job.action_type.owner,
                    &job.id,
                    &nonce,
                    token_for(&job),
                );
                let after = self.snapshot();
                // A job acknowledged by one replica is not another's, even with the current nonce.
                let acked_by_other = job
                    .acknowledged
                    .as_ref()
                    .and_then(|(_, who)| who.as_deref())
                    .is_some_and(|who| who != KEYS[*replica].0);
                if job.nonce.as_deref() != Some(nonce.as_str()) || acked_by_other {
                    // CP-NONCE.
                    check(
                        error_type(&got) == Some("InvalidNonceException"),
                        &format!("ack with a stale nonce answered {got:?}"),
                    )?;
                    check(
                        after.fingerprint() == before.fingerprint(),
                        "a refused ack changes nothing",
                    )?;
                } else if job.status == JobStatus::Dispatched {
                    check(
                        got == Ok(JobStatus::InProgress),
                        &format!("ack of a Dispatched job answered {got:?}"),
                    )?;
                    check(
                        after.jobs[&job.id].status == JobStatus::InProgress,
                        "an acknowledged job is InProgress",
                    )?;
                } else {
                    check(
                        got == Ok(job.status),
                        &format!("repeated ack of a {} job answered {got:?}", job.status),
                    )?;
                    check(
                        after.fingerprint() == before.fingerprint(),
                        "a repeated ack changes nothing",
                    )?;
                }
            }
            Op::Success { job, token, pct } => {
                let Some(job) = pick(*job, JobStatus::InProgress) else {
                    return Ok(());
                };
                let token = token.then(|| format!("tok-{}", job.number));
                let pct = match pct {
                    Pct::Absent => None,
                    Pct::Hundred => Some(100),
                    Pct::Some(p) => Some(*p),
                };
                let result = SuccessResult {
                    continuation_token: token.clone(),
                    summary: Some(format!("job {}", job.number)),
                    external_id: Some("ext-1".to_string()),
                    percent_complete: pct,
                    output_variables: None,
                };
                let got = core.put_success(
                    Some(KEYS[0].0),
                    job.action_type.owner,
                    &job.id,
                    token_for(&job),
                    result,
                );
                let after = self.snapshot();
                if job.status != JobStatus::InProgress {
                    // CP-ACK / CP-TERMINAL / CP-TIMEOUT.
                    check(
                        error_type(&got) == Some("InvalidJobStateException"),
                        &format!("success on a {} job answered {got:?}", job.status),
                    )?;
                    check(
                        after.fingerprint() == before.fingerprint(),
                        "a refused success changes nothing",
                    )?;
                } else {
                    got.map_err(|e| format!("success on an InProgress job refused: {e}"))?;
                    check(
                        after.jobs[&job.id].status == JobStatus::Succeeded,
                        "the job is Succeeded",
                    )?;
                    let is_final = match self.final_on() {
                        FinalOn::Progress100 => token.is_none() || pct == Some(100),
                        FinalOn::NoToken => token.is_none(),
                    };
                    let exec = &after.executions[&job.execution];
                    if is_final {
                        check(
                            exec.status == ExecutionStatus::Succeeded,
                            "a final success ends the execution (CP-FINAL-100)",
                        )?;
                        check(
                            exec.jobs.len() == job.number,
                            "no job after a final success",
                        )?;
                    } else {
                        check(
                            exec.status == ExecutionStatus::InProgress,
                            "a continuing success keeps the action running (CP-CONTINUE)",
                        )?;
                        let next = exec
                            .jobs
                            .get(job.number)
                            .and_then(|id| after.jobs.get(id))
                            .ok_or("no continuation job")?;
                        check(
                            next.status == JobStatus::Created,
                            "the continuation job waits for the delay",
                        )?;
                        check(
                            next.continuation_token == token,
                            "the continuation job carries the token",
                        )?;
                    }
                }
            }
            Op::Failure { job, kind } => {
                let Some(job) = pick(*job, JobStatus::InProgress) else {
                    return Ok(());
                };
                let failure = FailureResult {
                    failure_type: FAILURE_TYPES[*kind].to_string(),
                    message: "it broke".to_string(),
                    external_id: None,
                };
                let got = core.put_failure(
                    Some(KEYS[0].0),
                    job.action_type.owner,
                    &job.id,
                    token_for(&job),
                    failure,
                );
                let after = self.snapshot();
                if job.status != JobStatus::InProgress {
                    check(
                        error_type(&got) == Some("InvalidJobStateException"),
                        &format!("failure on a {} job answered {got:?}", job.status),
                    )?;
                    check(
                        after.fingerprint() == before.fingerprint(),
                        "a refused failure changes nothing",
                    )?;
                } else {
                    got.map_err(|e| format!("failure on an InProgress job refused: {e}"))?;
                    check(
                        after.jobs[&job.id].status == JobStatus::Failed,
                        "the job is Failed",
                    )?;
                    let exec = &after.executions[&job.execution];
                    check(
                        exec.status == ExecutionStatus::Failed,
                        "a failure is final (CP-FAIL-FINAL)",
                    )?;
                    check(exec.jobs.len() == job.number, "no job after a failure")?;
                    check(
                        exec.error.as_ref().map(|e| e.0.as_str()) == Some(FAILURE_TYPES[*kind]),
                        "the execution's error code is the failure type",
                    )?;
                }
            }
            Op::WrongClientToken { job, call } => {
                let Some(job) = before.pick(*job, None, Some(Owner::ThirdParty), None) else {
                    return Ok(());
                };
                let wrong = Some("not-the-client-token");
                let tp = Owner::ThirdParty;
                let nonce = job.nonce.clone().unwrap_or_default();
                let got = match call {
                    0 => core
                        .details(Some(KEYS[0].0), tp, &job.id, wrong)
                        .map(|_| ()),
                    1 => core
                        .acknowledge(Some(KEYS[0].0), tp, &job.id, &nonce, wrong)
                        .map(|_| ()),
                    2 => core.put_success(
                        Some(KEYS[0].0),
                        tp,
                        &job.id,
                        wrong,
                        SuccessResult::default(),
                    ),
                    _ => core.put_failure(
                        Some(KEYS[0].0),
                        tp,
                        &job.id,
                        wrong,
                        FailureResult {
                            failure_type: "JobFailed".into(),
                            message: "m".into(),
                            external_id: None,
                        },
                    ),
                };
                check(
                    error_type(&got) == Some("InvalidClientTokenException"),
                    &format!("wrong client token answered {got:?} (CP-CLIENT)"),
                )?;
                check(
                    self.snapshot().fingerprint() == before.fingerprint(),
                    "a wrong client token changes nothing",
                )?;
            }
            Op::Advance { secs } => {
                self.sim
                    .clock
                    .advance_by(Duration::from_secs(*secs))
                    .map_err(|e| format!("advance: {e}"))?;
            }
        }
        self.check_invariants()
    }

    /// The invariants that hold between any two steps.
    fn check_invariants(&mut self) -> Result<(), String> {
        let s = self.snapshot();
        let finished_events: Vec<String> = self
            .sim
            .events
            .all()
            .into_iter()
            .filter(|e| e.source == "cp" && e.kind == "execution_finished")
            .filter_map(|e| e.execution)
            .collect();
        for job in s.jobs.values() {
            let what = format!("job {} ({} #{})", job.id, job.execution, job.number);
            let timing = &s.timing[&job.action_type];
            // History: starts Created, ends with the current status, nothing after a terminal status.
            check(
                job.history.first().map(|h| h.1) == Some(JobStatus::Created),
                &format!("{what}: history starts Created"),
            )?;
            check(
                job.history.last().map(|h| h.1) == Some(job.status),
                &format!("{what}: history ends with its status"),
            )?;
            if let Some(i) = job.history.iter().position(|h| h.1.is_terminal()) {
                check(
                    i == job.history.len() - 1,
                    &format!("{what}: changed after a terminal status: {:?}", job.history),
                )?;
            }
            check(
                job.history.windows(2).all(|w| w[0].0 <= w[1].0),
                &format!("{what}: history goes back in time"),
            )?;
            // A terminal job never changes status again.
            if let Some(t) = self.terminal.get(&job.id) {
                check(
                    *t == job.status,
                    &format!("{what}: was {t}, now {}", job.status),
                )?;
            } else if job.status.is_terminal() {
                self.terminal.insert(job.id.clone(), job.status);
            }
            // Deadline = the moment it was queued + the job timeout, and it never moves.
            let first_queued = job
                .history
                .iter()
                .find(|h| h.1 == JobStatus::Queued)
                .map(|h| h.0);
            check(
                job.queued == first_queued,
                &format!(
                    "{what}: queued {:?} but first Queued at {first_queued:?}",
                    job.queued
                ),
            )?;
            match job.queued {
                Some(q) => check(
                    job.deadline == Some(q.plus(timing.job_timeout)),
                    &format!(
                        "{what}: deadline {:?} is not queued {q:?} + {:?}",
                        job.deadline, timing.job_timeout
                    ),
                )?,
                None => {
                    check(
                        job.deadline.is_none(),
                        &format!("{what}: a deadline before being queued"),
                    )?;
                    let statuses: Vec<JobStatus> = job.history.iter().map(|h| h.1).collect();
                    check(
                        statuses == [JobStatus::Created]
                            || statuses == [JobStatus::Created, JobStatus::TimedOut],
                        &format!("{what}: never queued but went {statuses:?}"),
                    )?;
                }
            }
            if let Some(d) = job.deadline {
                let seen = *self.deadlines.entry(job.id.clone()).or_insert(d);
                check(
                    seen == d,
                    &format!("{what}: deadline moved from {seen:?} to {d:?}"),
                )?;
                // Timers due at an instant fire first: an open job is always before its deadline.
                if !job.status.is_terminal() {
                    check(
                        s.now < d,
                        &format!(
                            "{what}: still {} at {:?}, deadline {d:?}",
                            job.status, s.now
                        ),
                    )?;
                }
            }
            let exec = s
                .executions
                .get(&job.execution)
                .ok_or_else(|| format!("{what}: no execution"))?;
            match job.status {
                // A TimedOut job's execution is Failed; it timed out at its deadline or the action timeout.
                JobStatus::TimedOut => {
                    check(
                        exec.status == ExecutionStatus::Failed,
                        &format!("{what}: TimedOut but execution {}", exec.status),
                    )?;
                    let at = job.history.last().map(|h| h.0);
                    let action_deadline = exec.started.plus(timing.action_timeout);
                    check(
                        at == job.deadline || at == Some(action_deadline),
                        &format!(
                            "{what}: TimedOut at {at:?}, deadline {:?}, action deadline {action_deadline:?}",
                            job.deadline
                        ),
                    )?;
                }
                // A result at or after the deadline is refused.
                JobStatus::Succeeded | JobStatus::Failed => {
                    let at = job.history.last().map(|h| h.0);
                    check(
                        at < job.deadline,
                        &format!("{what}: result at {at:?}, deadline {:?}", job.deadline),
                    )?;
                }
                _ => {}
            }
        }
        // The AWS-owned Source action of a synthetic pipeline succeeds at once, without jobs or events.
        for exec in s
            .executions
            .values()
            .filter(|e| e.action_type.owner.is_job_worker())
        {
            let what = format!("execution {}", exec.label);
            let open = exec
                .jobs
                .iter()
                .filter(|id| s.jobs.get(*id).is_some_and(|j| !j.status.is_terminal()))
                .count();
            check(open <= 1, &format!("{what}: {open} jobs not terminal"))?;
            match exec.status {
                ExecutionStatus::InProgress => {
                    check(open == 1, &format!("{what}: InProgress with no open job"))?;
                    check(
                        s.now
                            < exec
                                .started
                                .plus(s.timing[&exec.action_type].action_timeout),
                        &format!("{what}: past its action timeout"),
                    )?;
                }
                status => {
                    check(open == 0, &format!("{what}: {status} with an open job"))?;
                    let seen = *self.finished.entry(exec.label.clone()).or_insert(status);
                    check(seen == status, &format!("{what}: was {seen}, now {status}"))?;
                }
            }
            let events = finished_events.iter().filter(|l| **l == exec.label).count();
            let expected = usize::from(exec.status != ExecutionStatus::InProgress);
            check(
                events == expected,
                &format!(
                    "{what}: {events} execution_finished events while {}",
                    exec.status
                ),
            )?;
            for (n, id) in exec.jobs.iter().enumerate() {
                check(
                    s.jobs
                        .get(id)
                        .is_some_and(|j| j.number == n + 1 && j.execution == exec.label),
                    &format!("{what}: job list"),
                )?;
            }
        }
        for label in self.finished.keys() {
            check(
                s.executions.contains_key(label),
                &format!("execution {label} vanished"),
            )?;
        }
        Ok(())
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

fn error_type<T>(r: &Result<T, fake_codepipeline::ApiError>) -> Option<&'static str> {
    r.as_ref().err().map(|e| e.type_name)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn job_lifecycle_invariants_hold_under_random_calls_and_clock_moves(
        config in config(),
        ops in steps(),
    ) {
        let mut run = Run::new(config);
        for (i, op) in ops.iter().enumerate() {
            if let Err(broken) = run.step(op) {
                prop_assert!(false, "step {i} {op:?}: {broken}");
            }
        }
    }
}

/// A fixed sequence through every status, so the properties above are known to see each of them.
#[test]
fn the_operations_reach_every_job_status() {
    let mut run = Run::new(Config {
        final_on: "progress-100",
        ack_window: "5m",
        job_timeout: "10m",
        action_timeout: "3h",
        seed: 7,
    });
    let steps = [
        Op::Start {
            third_party: false,
            preset: 0,
        },
        Op::Poll {
            third_party: false,
            replica: 0,
            max: 1,
            query: Some(0),
        },
        Op::Ack {
            job: Pick::Any(0),
            nonce: NonceKind::Latest,
            replica: 0,
        },
        Op::Success {
            job: Pick::Any(0),
            token: true,
            pct: Pct::Some(10),
        },
        Op::Advance { secs: 30 },
        Op::Poll {
            third_party: false,
            replica: 1,
            max: 1,
            query: Some(0),
        },
        Op::Advance { secs: 300 },
        Op::Poll {
            third_party: false,
            replica: 0,
            max: 1,
            query: Some(0),
        },
        Op::Ack {
            job: Pick::Any(1),
            nonce: NonceKind::First,
            replica: 0,
        },
        Op::Ack {
            job: Pick::Any(1),
            nonce: NonceKind::Latest,
            replica: 0,
        },
        Op::Failure {
            job: Pick::Any(1),
            kind: 0,
        },
        Op::Start {
            third_party: true,
            preset: 1,
        },
        Op::WrongClientToken {
            job: Pick::Any(0),
            call: 2,
        },
        Op::Advance { secs: 600 },
    ];
    for (i, op) in steps.iter().enumerate() {
        run.step(op)
            .unwrap_or_else(|e| panic!("step {i} {op:?}: {e}"));
    }
    let mut seen: Vec<JobStatus> = run
        .snapshot()
        .jobs
        .values()
        .flat_map(|j| j.history.iter().map(|h| h.1))
        .collect();
    seen.sort_by_key(|s| s.as_str());
    seen.dedup();
    assert_eq!(
        seen,
        [
            JobStatus::Created,
            JobStatus::Dispatched,
            JobStatus::Failed,
            JobStatus::InProgress,
            JobStatus::Queued,
            JobStatus::Succeeded,
            JobStatus::TimedOut
        ]
    );
}
