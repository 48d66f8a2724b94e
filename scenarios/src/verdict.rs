//! Verdicts: the fakes' rule violations (CP-*) and the agent expectations (AG-*) of `docs/protocol.md`,
//! one function per rule, read from the event log and the fakes' state, then checked against the
//! scenario's `[expect]`. The driver calls the ones it decides while the run goes on (AG-START and
//! AG-REDEPLOY); [`judge`] calls the rest when it has ended.

use std::collections::BTreeSet;
use std::time::Duration;

use fake_codepipeline::{JobStatus, WorldView};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sim_core::{Event, EventKind, Rule, Severity, Source};

use crate::run::RunOutcome;
use crate::scenario::{AllowedOutcome, ExecutionExpect, ExpectedOutcome, Scenario};
use crate::world::StartedExecution;

/// One broken rule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Violation {
    /// The rule (`CP-TIMEOUT`, `AG-ONE-TEST`, ...).
    pub rule: Rule,
    /// `error` or `warning`.
    pub severity: Severity,
    /// The execution, when it concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// Simulated time, as a timeline stamp.
    pub at: String,
    /// What happened, in words.
    pub detail: String,
}

/// One checked expectation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Check {
    /// What was expected.
    pub expected: String,
    /// Whether it held.
    pub passed: bool,
    /// What happened.
    pub actual: String,
}

/// The facts of one execution at the end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecutionFacts {
    /// Its label.
    pub label: String,
    /// Succeeded, Failed or InProgress.
    pub status: String,
    /// errorDetails.code.
    pub failure_type: Option<String>,
    /// errorDetails.message.
    pub message: Option<String>,
    /// Jobs it took.
    pub jobs: usize,
    /// Load tests started for it (by RunnableFile).
    pub load_tests_started: Option<usize>,
    /// When the Details link appeared, after the start (`+00:00:00`).
    pub details_link_after: Option<String>,
    /// The same, as a span.
    #[serde(skip)]
    pub details_link_delay: Option<Duration>,
    /// The backend test's final status.
    pub backend_status: Option<String>,
    /// When it ended, as a timeline stamp (`+00:03:00`); none while in progress.
    pub ended_at: Option<String>,
    /// Simulated time from its start to its end.
    #[serde(skip)]
    pub ran_for: Option<Duration>,
    /// When it ended, from the origin.
    #[serde(skip)]
    pub ended: Option<Duration>,
}

/// Everything decided about one run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verdict {
    /// Errors (they fail the scenario unless `[expect] violations` lists their rule).
    pub violations: Vec<Violation>,
    /// Warnings, reported apart.
    pub warnings: Vec<Violation>,
    /// Per-execution facts.
    pub executions: Vec<ExecutionFacts>,
    /// The expectations and whether they held.
    pub checks: Vec<Check>,
    /// Whether every expectation held.
    pub passed: bool,
    /// Why the run did not test what the scenario is about (its `[premise]`, its steps), one sentence
    /// each; a run that passed with reasons here is inconclusive.
    pub inconclusive: Vec<String>,
}

fn violation(e: &Event) -> Violation {
    Violation {
        rule: e.rule.unwrap_or(Rule::CpValidation),
        severity: e.severity,
        execution: e.execution.clone(),
        at: e.stamp(),
        detail: e.detail.clone(),
    }
}

/// AG-LINK-EARLY: the most simulated time between acknowledging an execution's first job and answering
/// it. The runner moves the clock under a held job only after the answer budget (5 s real), and then only
/// to the next timer: a correct agent answers at the instant it acknowledged.
pub const LINK_PROMPT: std::time::Duration = std::time::Duration::from_secs(60);

fn agent_violation(rule: Rule, execution: &str, at: String, detail: String) -> Violation {
    Violation {
        rule,
        severity: Severity::Error,
        execution: Some(execution.into()),
        at,
        detail,
    }
}

/// A rule broken while the run goes on, for the driver to record as an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// What happened, in words.
    pub detail: String,
}

/// AG-START: a started replica made no request within its start grace.
pub fn ag_start(replica: &str, grace: Duration) -> Finding {
    Finding {
        rule: Rule::AgStart,
        detail: format!(
            "{replica} made no request within {} of starting",
            sim_core::format_duration(grace)
        ),
    }
}

/// AG-REDEPLOY: a replica did not exit within `grace` of SIGTERM.
pub fn ag_redeploy_slow(replica: &str, grace: Duration) -> Finding {
    Finding {
        rule: Rule::AgRedeploy,
        detail: format!(
            "{replica} did not exit within {} of SIGTERM; killed",
            sim_core::format_duration(grace)
        ),
    }
}

/// AG-REDEPLOY: after a graceful stop, no job the replica (signing with `key`) acknowledged is left
/// without a result.
pub fn ag_redeploy_abandoned(w: WorldView<'_>, key: &str, replica: &str) -> Option<Finding> {
    let mut abandoned: Vec<(usize, String)> = w
        .jobs()
        .filter(|j| j.status == JobStatus::InProgress)
        .filter(|j| j.acknowledged.as_ref().and_then(|(_, who)| who.as_deref()) == Some(key))
        .map(|j| (j.number, format!("job {} of {}", j.number, j.execution)))
        .collect();
    abandoned.sort();
    (!abandoned.is_empty()).then(|| Finding {
        rule: Rule::AgRedeploy,
        detail: format!(
            "{replica} exited without answering {} it had acknowledged",
            abandoned
                .into_iter()
                .map(|(_, j)| j)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The rule the fakes or the driver recorded on an event (CP-*, AG-FINAL-TOKEN, AG-START, AG-REDEPLOY,
/// HARNESS-STALL), when it counts: errors fail a scenario unless expected, warnings are reported apart.
pub fn recorded(e: &Event) -> Option<Violation> {
    let rule = e.rule?;
    if e.severity == Severity::Info {
        return None;
    }
    // Losing a nonce race is normal for replicas on one queue (AG-RACE): not even a warning.
    if rule == Rule::CpNonce && e.severity == Severity::Warning {
        return None;
    }
    // An unacknowledged job offered again is the fake working as designed (CP-LEASE).
    if rule == Rule::CpLease {
        return None;
    }
    Some(violation(e))
}

/// AG-NO-TIMEOUT: in a healthy run (one whose scenario expects no violation at all) no job times out,
/// whatever the test's length.
pub fn ag_no_timeout(healthy: bool, e: &Event) -> Option<Violation> {
    (healthy && e.source == Source::Cp && e.kind == EventKind::JobTimedOut).then(|| Violation {
        rule: Rule::AgNoTimeout,
        severity: Severity::Error,
        execution: e.execution.clone(),
        at: e.stamp(),
        detail: format!(
            "a job timed out in a healthy run: the agent must answer every job within the job timeout, however long the test ({})",
            e.detail
        ),
    })
}

/// AG-ONE-TEST: exactly one backend test per execution (counted by its own RunnableFile).
pub fn ag_one_test(started: &StartedExecution, tests_started: Option<usize>) -> Option<Violation> {
    let n = tests_started.filter(|n| *n > 1)?;
    let label = &started.label;
    Some(agent_violation(
        Rule::AgOneTest,
        label,
        "end".into(),
        format!(
            "execution {label} started {n} load tests for {}; one is the most it may start",
            started.runnable_file.clone().unwrap_or_default()
        ),
    ))
}

/// AG-LINK-EARLY: the first job is answered promptly (the driver holds the clock while a job is held, so
/// a correct agent answers at the simulated instant it acknowledged), and a first success carries an
/// `externalExecutionId`.
pub fn ag_link_early(label: &str, exec_events: &[&Event]) -> Vec<Violation> {
    let mut out = Vec::new();
    let first_result = exec_events
        .iter()
        .find(|e| e.kind == EventKind::ResultApplied);
    let first_ack = exec_events
        .iter()
        .find(|e| e.kind == EventKind::JobAcknowledged);
    if let (Some(first), Some(ack)) = (first_result, first_ack)
        && first.job == ack.job
        && first.sim_ms.saturating_sub(ack.sim_ms) > LINK_PROMPT.as_millis() as u64
    {
        out.push(agent_violation(
            Rule::AgLinkEarly,
            label,
            first.stamp(),
            format!(
                "the first job of {label} was answered {} after it was acknowledged (at most {} is prompt), so the Details link came late",
                sim_core::format_duration(Duration::from_millis(first.sim_ms - ack.sim_ms)),
                sim_core::format_duration(LINK_PROMPT)
            ),
        ));
    }
    if let Some(first) = first_result
        && first.data["result"] == "success"
        && first.data["externalExecutionId"].is_null()
    {
        out.push(agent_violation(
            Rule::AgLinkEarly,
            label,
            first.stamp(),
            format!(
                "the first answer for {label} (job {}) has no externalExecutionId, so the user sees no Details link while the test runs",
                first.data["number"]
            ),
        ));
    }
    out
}

/// AG-RACE: a job is answered by the replica that acknowledged it.
pub fn ag_race(label: &str, exec_events: &[&Event]) -> Vec<Violation> {
    let mut out = Vec::new();
    for e in exec_events
        .iter()
        .filter(|e| e.kind == EventKind::ResultApplied)
    {
        let acker = exec_events
            .iter()
            .find(|a| a.kind == EventKind::JobAcknowledged && a.job == e.job)
            .and_then(|a| a.replica.clone());
        if let (Some(a), Some(r)) = (acker, e.replica.clone())
            && a != r
        {
            out.push(agent_violation(
                Rule::AgRace,
                label,
                e.stamp(),
                format!(
                    "job {} of {label} was acknowledged by {a} but answered by {r}",
                    e.data["number"]
                ),
            ));
        }
    }
    out
}

/// AG-OUTCOME (apica tier): the final answer matches the backend test.
pub fn ag_outcome(
    label: &str,
    test: &fake_apica::TestView,
    exec_events: &[&Event],
    origin: sim_core::SimTime,
) -> Option<Violation> {
    let fin = exec_events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::ResultApplied && e.data["final"] == true)?;
    let finished_ms = test.finished_at.map(|f| f.since(origin).as_millis() as u64);
    let status = test.status.to_string();
    let problem = match (status.as_str(), fin.data["result"].as_str()) {
        (_, Some("success")) if finished_ms.is_none_or(|f| f > fin.sim_ms) => Some(format!(
            "{label} was answered as a final success at {} while backend test {} was still {status}",
            fin.stamp(),
            test.job_id
        )),
        ("failed", Some("success")) => Some(format!(
            "{label} succeeded but backend test {} failed: {}",
            test.job_id, test.summary
        )),
        ("passed", Some("failure")) => Some(format!(
            "{label} failed ({}) but backend test {} passed",
            fin.data["failureType"].as_str().unwrap_or(""),
            test.job_id
        )),
        ("failed", Some("failure"))
            if fin.data["failureType"] != "JobFailed"
                || !fin.data["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(test.summary.as_str()) =>
        {
            Some(format!(
                "{label} failed with {} \"{}\"; expected JobFailed with the backend's reason \"{}\"",
                fin.data["failureType"].as_str().unwrap_or(""),
                fin.data["message"].as_str().unwrap_or(""),
                test.summary
            ))
        }
        (_, Some("success")) if fin.data["percentComplete"] != 100 => Some(format!(
            "{label}'s final success says percentComplete {} instead of 100",
            fin.data["percentComplete"]
        )),
        _ => None,
    };
    problem.map(|p| agent_violation(Rule::AgOutcome, label, fin.stamp(), p))
}

/// AG-BACKOFF: how hard each replica kept hitting refused calls while throttled.
pub fn ag_backoff(scenario: &Scenario, events: &[Event]) -> Vec<Violation> {
    throttled_rates(events)
        .into_iter()
        .filter(|(_, rate)| *rate > scenario.harness.backoff_limit)
        .map(|(key, rate)| Violation {
            rule: Rule::AgBackoff,
            severity: Severity::Error,
            execution: None,
            at: "-".into(),
            detail: format!(
                "{key} had {rate:.1} calls/s refused by throttling over a 5 s window (limit {}): it does not back off",
                scenario.harness.backoff_limit
            ),
        })
        .collect()
}

/// Judges a finished run.
pub fn judge(scenario: &Scenario, run: &RunOutcome) -> Verdict {
    let mut violations = Vec::new();
    let mut warnings = Vec::new();
    // A healthy run is one whose scenario expects no violation at all; one that crashes its agent or
    // misconfigures it expects CP-TIMEOUT.
    let invariants = scenario.expect.invariants;
    let healthy = invariants
        || scenario
            .expect
            .violations
            .as_ref()
            .is_some_and(|v| v.is_empty());
    let lost_to_crashes = if invariants {
        jobs_lost_to_crashes(&run.events)
    } else {
        BTreeSet::new()
    };
    for e in &run.events {
        if e.kind == EventKind::JobTimedOut
            && e.job.as_ref().is_some_and(|j| lost_to_crashes.contains(j))
        {
            continue;
        }
        match recorded(e) {
            Some(v) if v.severity == Severity::Error => violations.push(v),
            Some(v) => warnings.push(v),
            None => {}
        }
        violations.extend(ag_no_timeout(healthy, e));
    }

    let tests = run.world.apica.tests();
    let origin = run.world.sim.clock.origin();
    let mut facts = Vec::new();
    // One pass over the log, not one per execution (many-pipelines has tens of thousands of events).
    let mut by_execution: std::collections::HashMap<&str, Vec<&Event>> = Default::default();
    for e in &run.events {
        if let Some(x) = e.execution.as_deref() {
            by_execution.entry(x).or_default().push(e);
        }
    }
    for started in &run.world.executions {
        let label = &started.label;
        let core = run.world.cp.core();
        let Some((status, error, jobs)) = core
            .inspect(|w| {
                w.execution(label)
                    .map(|e| (e.status, e.error.clone(), e.jobs.len()))
            })
            .or_else(|| {
                // Its pipeline run ended before its action started (superseded while it waited at the
                // stage boundary, or stopped there): no action execution, no job.
                // Or an earlier action of its run failed (a Source action without its object).
                core.execution_status(label)
                    .filter(|s| *s != fake_codepipeline::ExecutionStatus::InProgress)
                    .map(|s| {
                        let earlier =
                            core.earlier_failure(label)
                                .map(|(action, (code, message))| {
                                    (
                                        code,
                                        format!(
                                            "{action} failed before {label} started: {message}"
                                        ),
                                    )
                                });
                        (s, earlier, 0)
                    })
            })
        else {
            continue;
        };
        let exec_events: &[&Event] = by_execution.get(label.as_str()).map_or(&[], Vec::as_slice);
        // A retried action keeps its RunnableFile: each attempt owns the tests created from its start to
        // the next attempt's (the driver notes how many existed when each attempt started).
        let next_attempt = run
            .world
            .executions
            .iter()
            .skip_while(|e| !std::ptr::eq(*e, started))
            .skip(1)
            .find(|e| e.runnable_file.is_some() && e.runnable_file == started.runnable_file)
            .map(|e| e.tests_before);
        let test_count = started.runnable_file.as_ref().map(|f| {
            next_attempt
                .unwrap_or_else(|| run.world.apica.tests_for_runnable_file(f))
                .saturating_sub(started.tests_before)
        });
        let test = started.runnable_file.as_ref().and_then(|f| {
            let mut own: Vec<_> = tests.iter().filter(|t| &t.runnable_file == f).collect();
            own.sort_by_key(|t| t.job_id);
            own.into_iter().nth(started.tests_before)
        });
        let started_ms = exec_events
            .iter()
            .find(|e| e.kind == EventKind::ExecutionStarted)
            .map(|e| e.sim_ms)
            .unwrap_or(0);
        let link = exec_events
            .iter()
            .find(|e| e.kind == EventKind::DetailsLink)
            .map(|e| e.sim_ms);
        let ended_ms = exec_events
            .iter()
            .find(|e| e.kind == EventKind::ExecutionFinished)
            .map(|e| e.sim_ms);

        if run.apica_checks {
            violations.extend(ag_one_test(started, test_count));
        }
        violations.extend(ag_link_early(label, exec_events));
        violations.extend(ag_race(label, exec_events));
        if run.apica_checks
            && let Some(t) = test
        {
            violations.extend(ag_outcome(label, t, exec_events, origin));
        }

        facts.push(ExecutionFacts {
            label: label.clone(),
            status: status.as_str().to_string(),
            failure_type: error.as_ref().map(|(code, _)| code.clone()),
            message: error.map(|(_, message)| message),
            jobs,
            load_tests_started: test_count,
            details_link_after: link.map(|l| {
                sim_core::format_offset(Duration::from_millis(l.saturating_sub(started_ms)))
            }),
            details_link_delay: link.map(|l| Duration::from_millis(l.saturating_sub(started_ms))),
            backend_status: test.map(|t| t.status.to_string()),
            ended_at: ended_ms.map(|m| sim_core::format_offset(Duration::from_millis(m))),
            ran_for: ended_ms.map(|m| Duration::from_millis(m.saturating_sub(started_ms))),
            ended: ended_ms.map(Duration::from_millis),
        });
    }
    violations.extend(ag_backoff(scenario, &run.events));
    if invariants {
        violations.retain(|v| !outcome_allowed_instead(scenario, v, &facts));
    }

    let checks = match &run.agent_failure {
        // What would follow an agent that died (timeouts, missing outcomes) is not about the protocol.
        Some(why) => vec![Check {
            expected: "the agent keeps running while work is outstanding".into(),
            passed: false,
            actual: why.clone(),
        }],
        None => check_expectations(scenario, run, &violations, &facts),
    };
    let passed = checks.iter().all(|c| c.passed);
    let inconclusive = if run.agent_failure.is_some() {
        Vec::new()
    } else {
        premise(scenario, run, &facts)
    };
    Verdict {
        violations,
        warnings,
        executions: facts,
        checks,
        passed,
        inconclusive,
    }
}

/// Invariants: the jobs a `crash` step lost. A job acknowledged by a replica that was then killed can only
/// time out (no poll returns an acknowledged job again); its timeout is the crash's doing, not the agent's.
pub fn jobs_lost_to_crashes(events: &[Event]) -> BTreeSet<String> {
    let mut acked_by: std::collections::HashMap<&str, (&str, u64)> = Default::default();
    let mut lost = BTreeSet::new();
    for e in events {
        match e.kind {
            EventKind::JobAcknowledged => {
                if let (Some(job), Some(r)) = (&e.job, &e.replica) {
                    acked_by.insert(job, (r, e.seq));
                }
            }
            EventKind::ReplicaCrashed => {
                if let Some(r) = &e.replica {
                    lost.extend(
                        acked_by
                            .iter()
                            .filter(|(_, (by, seq))| by == r && *seq < e.seq)
                            .map(|(job, _)| job.to_string()),
                    );
                }
            }
            _ => {}
        }
    }
    lost
}

/// Invariants: an AG-OUTCOME violation that an allowed end explains. A failure other than the backend
/// test's own (`SystemUnavailable` after a long outage, any failure for a lost test) compares with a
/// test that passed later, and is what the scenario allows.
fn outcome_allowed_instead(scenario: &Scenario, v: &Violation, facts: &[ExecutionFacts]) -> bool {
    if v.rule != Rule::AgOutcome {
        return false;
    }
    let Some(f) = v
        .execution
        .as_ref()
        .and_then(|x| facts.iter().find(|f| &f.label == x))
    else {
        return false;
    };
    let Some(exp) = scenario.expect.for_execution(&f.label) else {
        return false;
    };
    f.status == "Failed"
        && exp.outcome_in.iter().any(|o| {
            o.matches(&f.status, f.failure_type.as_deref())
                && !matches!(o, AllowedOutcome::Failed(Some(t)) if t == "JobFailed")
        })
}

/// Why the run did not test what the scenario is about: a step that never ran, or ran after every
/// execution had ended; an execution shorter (in jobs or simulated time) than `[premise]` asks; an
/// expectation about an execution that never started.
pub fn premise(scenario: &Scenario, run: &RunOutcome, facts: &[ExecutionFacts]) -> Vec<String> {
    let mut why = Vec::new();
    // "the agent finished e-1 at +00:03:00": the last execution to end, for the messages below.
    let last_end = facts
        .iter()
        .filter_map(|f| Some((f.ended?, &f.label)))
        .max_by_key(|(at, _)| *at);
    let ended = |what: &str| match (last_end, facts.len()) {
        (Some((at, label)), 1) => format!(
            "the agent finished {label} at {}, {what}",
            sim_core::format_offset(at)
        ),
        (Some((at, label)), _) => format!(
            "the agent finished the last execution ({label}) at {}, {what}",
            sim_core::format_offset(at)
        ),
        (None, _) => format!("no execution was running, {what}"),
    };
    for (i, step) in scenario.steps.iter().enumerate() {
        if step.optional {
            continue;
        }
        let described = step.describe();
        match run.fired.iter().find(|f| f.index == Some(i)) {
            None => why.push(ended(&format!("before {described}, which never ran"))),
            Some(f) if !f.work_outstanding => why.push(ended(&format!(
                "before {described} ran (at {})",
                sim_core::format_offset(f.at.since(run.world.sim.clock.origin()))
            ))),
            Some(_) => {}
        }
    }
    for f in facts {
        if let Some(min) = scenario.premise.min_jobs
            && f.jobs < min.get()
        {
            why.push(format!(
                "{} ended after {} job(s); the scenario is about work that takes at least {min} ([premise] min_jobs)",
                f.label, f.jobs
            ));
        }
        if let Some(min) = scenario.premise.min_duration
            && let Some(ran) = f.ran_for
            && ran < min.get()
        {
            why.push(format!(
                "{} ran for {} of simulated time; the scenario is about work that lasts at least {min} ([premise] min_duration): make the agent's work longer (more rounds)",
                f.label,
                sim_core::format_duration(ran)
            ));
        }
    }
    for label in scenario.expect.executions.keys() {
        if label != "*" && !facts.iter().any(|f| &f.label == label) {
            why.push(format!(
                "the expectations for {label} were never exercised: {label} never started"
            ));
        }
    }
    why
}

fn check_expectations(
    scenario: &Scenario,
    run: &RunOutcome,
    violations: &[Violation],
    facts: &[ExecutionFacts],
) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(h) = &run.harness_error {
        checks.push(Check {
            expected: "the run completes".into(),
            passed: false,
            actual: h.clone(),
        });
    }
    let expected: BTreeSet<Rule> = scenario
        .expect
        .violations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let actual: BTreeSet<Rule> = violations.iter().map(|v| v.rule).collect();
    if scenario.expect.violations.is_some() || !actual.is_empty() {
        let unexpected: Vec<&Violation> = violations
            .iter()
            .filter(|v| !expected.contains(&v.rule))
            .collect();
        let missing: Vec<&Rule> = expected.iter().filter(|r| !actual.contains(*r)).collect();
        checks.push(Check {
            expected: if expected.is_empty() {
                "no violations".into()
            } else {
                format!(
                    "violations exactly {}",
                    expected
                        .iter()
                        .map(|r| r.id())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            passed: unexpected.is_empty() && missing.is_empty(),
            actual: if unexpected.is_empty() && missing.is_empty() {
                if actual.is_empty() {
                    "none".into()
                } else {
                    actual.iter().map(|r| r.id()).collect::<Vec<_>>().join(", ")
                }
            } else {
                let mut parts: Vec<String> = unexpected
                    .iter()
                    .map(|v| format!("{} at {}: {}", v.rule, v.at, v.detail))
                    .collect();
                parts.extend(missing.iter().map(|r| format!("{r} never happened")));
                parts.join("; ")
            },
        });
    }
    if let Some(within) = scenario.expect.details_link_within {
        for f in facts {
            let ok = f.details_link_delay.is_some_and(|d| d <= within.get());
            checks.push(Check {
                expected: format!("{}: Details link within {within}", f.label),
                passed: ok,
                actual: f
                    .details_link_after
                    .clone()
                    .map_or("no Details link".into(), |a| format!("after {a}")),
            });
        }
    }
    if scenario.expect.invariants {
        let mut ends: std::collections::HashMap<&str, usize> = Default::default();
        for e in &run.events {
            if e.kind == EventKind::ExecutionFinished
                && let Some(x) = &e.execution
            {
                *ends.entry(x.as_str()).or_default() += 1;
            }
        }
        for f in facts {
            let n = ends.get(f.label.as_str()).copied().unwrap_or(0);
            checks.push(Check {
                expected: format!("{}: ends exactly once", f.label),
                passed: n == 1,
                actual: match n {
                    0 => format!("never ended (still {})", f.status),
                    1 => format!("ended once ({})", f.status),
                    n => format!("ended {n} times"),
                },
            });
        }
    }
    for f in facts {
        let Some(exp) = scenario.expect.for_execution(&f.label) else {
            continue;
        };
        check_execution(run, f, exp, &mut checks);
    }
    checks
}

fn check_execution(
    run: &RunOutcome,
    f: &ExecutionFacts,
    exp: &ExecutionExpect,
    checks: &mut Vec<Check>,
) {
    let mut outcome = exp.outcome.map(|o| match o {
        ExpectedOutcome::Succeeded => "Succeeded",
        ExpectedOutcome::Failed => "Failed",
        ExpectedOutcome::FromPreset => "from-preset",
        ExpectedOutcome::Abandoned => "Abandoned",
        ExpectedOutcome::Superseded => "Superseded",
    });
    let mut failure_type = exp.failure_type.clone();
    let mut message = exp.message_contains.clone();
    if !exp.message_contains_any.is_empty() {
        checks.push(message_contains_any(
            &f.label,
            f.message.as_deref(),
            &exp.message_contains_any,
        ));
    }
    if exp.outcome == Some(ExpectedOutcome::FromPreset) {
        let preset = run
            .world
            .executions
            .iter()
            .find(|e| e.label == f.label)
            .and_then(|e| e.preset.clone());
        let spec = preset.and_then(|p| run.world.apica.presets().into_iter().find(|x| x.name == p));
        match spec.map(|s| s.outcome) {
            Some(fake_apica::Outcome::Passed) => outcome = Some("Succeeded"),
            Some(fake_apica::Outcome::Failed { reason }) => {
                outcome = Some("Failed");
                failure_type.get_or_insert_with(|| "JobFailed".into());
                message.get_or_insert(reason);
            }
            None => outcome = None,
        }
    }
    if let Some(o) = outcome {
        checks.push(Check {
            expected: format!("{}: {o}", f.label),
            passed: f.status == o,
            actual: match (&f.failure_type, &f.message) {
                (Some(t), Some(m)) => format!("{} ({t}: {m})", f.status),
                _ => f.status.clone(),
            },
        });
    }
    if let Some(t) = failure_type {
        checks.push(Check {
            expected: format!("{}: failure type {t}", f.label),
            passed: f.failure_type.as_deref() == Some(t.as_str()),
            actual: f
                .failure_type
                .clone()
                .unwrap_or_else(|| "no failure".into()),
        });
    }
    if let Some(m) = message {
        checks.push(Check {
            expected: format!("{}: message contains \"{m}\"", f.label),
            passed: f.message.as_deref().is_some_and(|x| x.contains(m.as_str())),
            actual: f.message.clone().unwrap_or_else(|| "no message".into()),
        });
    }
    if !exp.outcome_in.is_empty() {
        let ok = exp
            .outcome_in
            .iter()
            .any(|o| o.matches(&f.status, f.failure_type.as_deref()));
        checks.push(Check {
            expected: format!(
                "{}: one of {}",
                f.label,
                exp.outcome_in
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            passed: ok,
            actual: match (&f.failure_type, &f.message) {
                (Some(t), Some(m)) => format!("{}:{t} ({m})", f.status),
                _ => f.status.clone(),
            },
        });
    }
    if let Some(n) = exp.load_tests_started
        && run.apica_checks
    {
        checks.push(Check {
            expected: format!("{}: {n} load test(s) started", f.label),
            passed: f.load_tests_started == Some(n),
            actual: f
                .load_tests_started
                .map_or("not counted".into(), |c| c.to_string()),
        });
    }
}

/// `message_contains_any`: the failure message names at least one of `any` (the property, the bad value:
/// agents word their messages differently, and a verdict judges behaviour, not wording).
pub fn message_contains_any(label: &str, message: Option<&str>, any: &[String]) -> Check {
    Check {
        expected: format!(
            "{label}: message contains one of {}",
            any.iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        passed: message.is_some_and(|x| any.iter().any(|m| x.contains(m.as_str()))),
        actual: message.unwrap_or("no message").to_string(),
    }
}

/// The value of a JSON field as text, for messages.
pub fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// Per replica, the most calls per second refused by injected faults (throttling) over any 5 s window of
/// real time. Simulated time runs thousands of times faster than real time, so a healthy agent's plain
/// request rate is high; what AG-BACKOFF judges is whether it keeps hammering a throttled API.
pub fn throttled_rates(events: &[Event]) -> std::collections::BTreeMap<String, f64> {
    let mut by_replica: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for e in events
        .iter()
        .filter(|e| e.source == Source::Cp && e.kind == EventKind::FaultInjected)
    {
        if let Some(r) = &e.replica {
            by_replica.entry(r.clone()).or_default().push(e.real_ms);
        }
    }
    by_replica
        .into_iter()
        .map(|(k, times)| {
            let mut max = 0usize;
            let mut start = 0;
            for (end, t) in times.iter().enumerate() {
                while times[start] + 5_000 <= *t {
                    start += 1;
                }
                max = max.max(end - start + 1);
            }
            (k, max as f64 / 5.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    fn event(seq: u64, kind: EventKind, job: Option<&str>, replica: &str) -> Event {
        Event {
            seq,
            sim_ms: seq * 1_000,
            real_ms: 0,
            source: Source::Cp,
            kind,
            execution: Some("e-1".into()),
            job: job.map(str::to_string),
            replica: Some(replica.into()),
            rule: None,
            severity: Severity::Info,
            detail: String::new(),
            data: Value::Null,
        }
    }

    #[test]
    fn only_jobs_a_crashed_replica_had_acknowledged_are_lost_to_the_crash() {
        let events = [
            event(1, EventKind::JobAcknowledged, Some("j-1"), "AKID1"),
            event(2, EventKind::JobAcknowledged, Some("j-2"), "AKID2"),
            event(3, EventKind::ReplicaCrashed, None, "AKID1"),
            // Acknowledged by the restarted replica's key after the crash: its own to answer.
            event(4, EventKind::JobAcknowledged, Some("j-3"), "AKID1"),
        ];
        let lost = jobs_lost_to_crashes(&events);
        assert_eq!(
            lost.into_iter().collect::<Vec<_>>(),
            vec!["j-1".to_string()]
        );
    }

    use super::*;

    #[test]
    fn a_message_that_names_the_property_or_the_bad_value_passes() {
        let any = ["PresetName".to_string(), "no-such-preset".to_string()];
        for ok in [
            "Unknown PresetName: no preset is called that",
            "unknown preset `no-such-preset`",
        ] {
            assert!(message_contains_any("e-1", Some(ok), &any).passed, "{ok}");
        }
        let bad = message_contains_any("e-1", Some("something went wrong"), &any);
        assert!(!bad.passed);
        assert_eq!(
            bad.expected,
            "e-1: message contains one of \"PresetName\", \"no-such-preset\""
        );
        assert!(!message_contains_any("e-1", None, &any).passed);
    }
}
