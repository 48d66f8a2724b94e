//! The console's model, advice and rendering, on a fake driven through its engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sim_core::{ClockMode, Sim};

use super::*;
use crate::engine::{Core, SuccessResult};
use crate::settings::Settings;
use crate::types::Owner;
use crate::{ActionTypeSpec, ExecutionSpec, TimingOverrides};

const TYPE: &str = "Test/Custom/ApicaLoadtest/1";

/// A fake on `sim` with the custom type (`template` as its executionUrlTemplate, if any) and `timing`.
fn core_with_type(sim: Sim, template: Option<&str>, timing: TimingOverrides) -> Arc<Core> {
    let core = Core::new(sim, Settings::default());
    let props = crate::pipelines::parse_properties(Some(&json!([
        {"name": "PresetName", "required": true, "key": true, "secret": false},
    ])))
    .unwrap();
    core.register_action_type(ActionTypeSpec {
        id: Some(TYPE.parse().unwrap()),
        settings: template.map_or(json!({}), |t| json!({ "executionUrlTemplate": t })),
        properties: props,
        timing,
        ..Default::default()
    })
    .unwrap();
    core
}

fn start(core: &Core, label: &str, preset: &str) {
    let v = core
        .start_execution(ExecutionSpec {
            action_type: Some(TYPE.parse().unwrap()),
            configuration: [("PresetName".to_string(), preset.to_string())].into(),
            client_id: None,
            label: Some(label.into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v["executionId"], label);
}

fn core_with_execution() -> (Arc<Core>, String) {
    let core = core_with_type(
        Sim::manual(),
        Some("http://backend/jobs/{ExternalExecutionId}"),
        TimingOverrides::default(),
    );
    start(&core, "e-1", "<short>");
    (core, "e-1".into())
}

/// Polls one job and acknowledges it as `caller`, as the wire would (each call is a tracked request).
fn take_job(core: &Core, caller: &str) -> String {
    let id = TYPE.parse().unwrap();
    let job = {
        let _req = core.sim.activity.begin(Some(caller), "PollForJobs");
        core.poll(Some(caller), Owner::Custom, &id, 1, None)
            .unwrap()
            .pop()
            .expect("a job to poll")
    };
    let _req = core.sim.activity.begin(Some(caller), "AcknowledgeJob");
    core.acknowledge(Some(caller), Owner::Custom, &job.job_id, &job.nonce, None)
        .unwrap();
    job.job_id
}

fn answer(core: &Core, caller: &str, job: &str, token: Option<&str>, percent: i64) {
    let _req = core.sim.activity.begin(Some(caller), "PutJobSuccessResult");
    core.put_success(
        Some(caller),
        Owner::Custom,
        job,
        None,
        SuccessResult {
            continuation_token: token.map(str::to_string),
            external_id: Some("153245".into()),
            percent_complete: Some(percent),
            ..Default::default()
        },
    )
    .unwrap();
}

/// Waits (real time, at most 5 s) until `f` holds.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "waited 5 s for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_model_shows_the_run_its_action_and_its_first_job() {
    let (core, label) = core_with_execution();
    let m = Model::build(&core);
    let p = &m.pipelines[0];
    assert!(p.synthetic);
    // A synthetic pipeline starts with a Source stage, whose AWS-owned action has already succeeded.
    let source = &p.runs[0].stages[0];
    assert_eq!(source.name, "Source");
    let source_exec = source.actions[0].execution.as_ref().unwrap();
    assert_eq!(source_exec.status, "Succeeded");
    assert_ne!(source_exec.label, label, "the Source action took the label");
    let exec = p.runs[0].stages[1].actions[0].execution.as_ref().unwrap();
    assert_eq!(exec.label, label);
    assert_eq!(exec.status, "InProgress");
    assert_eq!(exec.jobs.len(), 1);
    assert_eq!(exec.jobs[0].status, "Queued");
    assert!(m.timeline.iter().any(|e| e.kind == "job_queued"));
}

#[test]
fn the_model_serialises_with_the_clock_document_as_is() {
    let (core, _) = core_with_execution();
    let v = serde_json::to_value(Model::build(&core)).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "clock",
            "seq",
            "pipelines",
            "violations",
            "timeline",
            "callers",
            "poll_gaps"
        ]
    );
    assert_eq!(v["clock"]["mode"], "manual");
    assert_eq!(
        v["pipelines"][0]["runs"][0]["stages"][1]["actions"][0]["execution"]["label"],
        "e-1"
    );
}

#[test]
fn the_page_escapes_what_clients_sent_and_offers_manual_clock_controls() {
    let (core, _) = core_with_execution();
    let html = render_page(&Model::build(&core));
    assert!(!html.contains("<short>"), "configuration must be escaped");
    assert!(html.contains("id=\"advance-10m\""));
    assert!(html.contains("<progress max=\"100\" value=\"0\" data-execution=\"e-1\">"));
    assert!(html.contains("no Details link yet"));
    assert!(html.contains("id=\"clock-mode\">clock: manual<"), "{html}");
}

#[test]
fn the_newest_run_is_listed_first() {
    let (core, _) = core_with_execution();
    start(&core, "e-2", "short");
    let m = Model::build(&core);
    let order: Vec<&str> = m.pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(order.len(), 2);
    let newest = m.pipelines[0].runs[0].stages[1].actions[0]
        .execution
        .as_ref()
        .unwrap();
    assert_eq!(
        newest.label, "e-2",
        "the run started last comes first: {order:?}"
    );
}

#[test]
fn poll_gaps_are_reported_only_for_scaled_clocks() {
    let (core, _) = core_with_execution();
    let _req = core.sim.activity.begin(Some("AKID1"), "PollForJobs");
    assert!(poll_gaps(&core).is_empty());
    let scaled = Core::new(
        Sim::new(ClockMode::Scaled(1_000_000.0)),
        Settings::default(),
    );
    drop(scaled.sim.activity.begin(Some("AKID1"), "PollForJobs"));
    // A million-fold speed-up makes any real gap (even microseconds) more than half an hour.
    let gaps = eventually("a poll gap", || {
        Some(poll_gaps(&scaled)).filter(|g| !g.is_empty())
    });
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].held_job.is_none());
    let text = gaps[0].describe();
    assert!(
        text.contains("AKID1") && text.contains("poll more often"),
        "{text}"
    );
}

/// Item 1 of issue 10: a caller that holds a job is told to answer it with a continuation token, not to
/// poll more often; once it polls again after the timeout, its quiet is a poll gap again.
#[test]
fn a_caller_holding_a_job_is_told_to_answer_it_with_a_continuation_token() {
    // At 3,600x a ten-minute job timeout is a sixth of a real second.
    let core = core_with_type(
        Sim::new(ClockMode::Scaled(3600.0)),
        None,
        TimingOverrides {
            job_timeout: Some("10m".into()),
            action_timeout: Some("30d".into()),
            ..Default::default()
        },
    );
    start(&core, "e-1", "short");
    let job = take_job(&core, "AKID1");

    let gap = eventually("a gap of the holding caller", || poll_gaps(&core).pop());
    let held = gap.held_job.as_ref().expect("the caller holds a job");
    assert_eq!(
        (held.id.as_str(), held.status.as_str(), held.number),
        (job.as_str(), "InProgress", 1)
    );
    let text = gap.describe();
    assert!(text.contains("acknowledged job 1 of e-1"), "{text}");
    assert!(
        text.contains("without an answer") && text.contains("it times out at"),
        "{text}"
    );
    assert!(
        text.contains("continuationToken") && text.contains("continuation job"),
        "{text}"
    );
    assert!(
        text.contains("Polling more often or a lower speed-up does not help"),
        "{text}"
    );
    let html = render_live(&Model::build(&core));
    assert!(html.contains("Job held without an answer: AKID1"), "{html}");

    // Past its deadline the job times out; the caller, still quiet, is still holding it.
    eventually("the deadline to pass", || {
        core.sim.clock.fire_due();
        core.with_world(|w| w.jobs[&job].status.is_terminal())
            .then_some(())
    });
    let gap = eventually("the gap after the timeout", || poll_gaps(&core).pop());
    let held = gap
        .held_job
        .as_ref()
        .expect("it held the job until it timed out");
    assert_eq!(held.status, "TimedOut");
    assert!(
        gap.describe().contains("it timed out at"),
        "{}",
        gap.describe()
    );
    // The violation says the same.
    let m = Model::build(&core);
    let timeout = m
        .violations
        .iter()
        .find(|e| e.rule == Some(sim_core::Rule::CpTimeout))
        .unwrap();
    let advice = violation_advice(timeout).expect("advice for a held job's timeout");
    assert!(
        advice.contains("held without an answer") && advice.contains("continuationToken"),
        "{advice}"
    );
    assert!(render_live(&m).contains("held without an answer until its deadline"));

    // A poll after the timeout: the caller gave the job up, and a long quiet is a poll gap.
    drop(core.sim.activity.begin(Some("AKID1"), "PollForJobs"));
    let gap = eventually("a plain poll gap", || poll_gaps(&core).pop());
    assert!(gap.held_job.is_none(), "{gap:?}");
    assert!(gap.describe().contains("poll more often"));
}

#[test]
fn a_timeout_nobody_polled_for_says_to_check_the_poller() {
    let (core, _) = core_with_execution();
    core.sim
        .clock
        .advance_by(Duration::from_secs(2 * 3600))
        .unwrap();
    let m = Model::build(&core);
    let timeout = m
        .violations
        .iter()
        .find(|e| e.rule == Some(sim_core::Rule::CpTimeout))
        .unwrap();
    let advice = violation_advice(timeout).unwrap();
    assert!(advice.contains("No poll took the job"), "{advice}");
}

/// Item 2 of issue 10: the header shows the speed the clock runs at now, not the one it started with.
#[test]
fn the_header_shows_the_clocks_current_speed() {
    let core = Core::new(Sim::new(ClockMode::Scaled(60.0)), Settings::default());
    let html = render_page(&Model::build(&core));
    assert!(
        html.contains("id=\"clock-mode\">clock: scaled, 60\u{d7} real time<"),
        "{html}"
    );
    core.sim.clock.set_speed(3600.0).unwrap();
    let m = Model::build(&core);
    assert_eq!(
        m.clock["mode"], "scaled:60",
        "the JSON keeps /_sim/clock's document"
    );
    let html = render_page(&m);
    assert!(
        html.contains("clock: scaled, 3,600\u{d7} real time"),
        "{html}"
    );
    assert!(!html.contains("scaled:60"), "{html}");
    core.sim.clock.pause().unwrap();
    let html = render_page(&Model::build(&core));
    assert!(
        html.contains("clock: scaled, paused (3,600\u{d7} when resumed)"),
        "{html}"
    );
    assert!(html.contains("data-mode=\"scaled\""));
}

/// Item 5 of issue 10: an info-severity rule (a continuation, a final result) is a record, not a finding.
#[test]
fn the_rule_column_names_only_violated_or_warned_rules() {
    let (core, label) = core_with_execution();
    let job = take_job(&core, "AKID1");
    answer(&core, "AKID1", &job, Some("153245"), 10);
    core.sim.clock.advance_by(Duration::from_secs(60)).unwrap();
    let job = take_job(&core, "AKID1");
    answer(&core, "AKID1", &job, None, 100);
    start(&core, "e-2", "short");
    take_job(&core, "AKID1");
    core.sim
        .clock
        .advance_by(Duration::from_secs(2 * 3600))
        .unwrap();

    let m = Model::build(&core);
    let infos: Vec<_> = m
        .timeline
        .iter()
        .filter_map(|e| e.rule)
        .map(|r| r.id())
        .collect();
    assert!(
        infos.contains(&"CP-CONTINUE") && infos.contains(&"CP-FINAL-100"),
        "{infos:?}"
    );
    let html = render_live(&m);
    for fine in ["CP-CONTINUE", "CP-FINAL-100", "CP-DETAILS"] {
        assert!(
            !html.contains(&format!("<b>{fine}</b>")),
            "{fine} is shown as a rule:\n{html}"
        );
    }
    assert!(
        html.contains("<td class=\"rule\"><b>CP-TIMEOUT</b></td>"),
        "{html}"
    );
    assert!(
        html.contains("<tr class=\"error\">"),
        "an error row is marked: {html}"
    );
    assert!(m.violations.iter().all(|e| flagged_rule(e).is_some()));
    assert!(
        m.violations
            .iter()
            .all(|e| e.execution.as_deref() != Some(label.as_str())),
        "e-1 was fine"
    );
}

/// Item 6 of issue 10: the Details link is the action type's template filled with the externalExecutionId
/// the job reported; a type without a template shows the id and no link.
#[test]
fn the_details_link_is_what_the_type_and_the_job_make_of_it_or_none() {
    let (core, _) = core_with_execution();
    let job = take_job(&core, "AKID1");
    answer(&core, "AKID1", &job, Some("153245"), 0);
    let m = Model::build(&core);
    let e = m.pipelines[0].runs[0].stages[1].actions[0]
        .execution
        .clone()
        .unwrap();
    assert_eq!(e.details_url.as_deref(), Some("http://backend/jobs/153245"));
    assert!(render_live(&m).contains("<a class=\"details\" href=\"http://backend/jobs/153245\">"));

    let bare = core_with_type(Sim::manual(), None, TimingOverrides::default());
    start(&bare, "e-1", "short");
    let job = take_job(&bare, "AKID1");
    answer(&bare, "AKID1", &job, Some("153245"), 0);
    let m = Model::build(&bare);
    let e = m.pipelines[0].runs[0].stages[1].actions[0]
        .execution
        .clone()
        .unwrap();
    assert_eq!(
        (e.details_url, e.external_id.as_deref()),
        (None, Some("153245"))
    );
    let html = render_live(&m);
    assert!(!html.contains("class=\"details\""), "{html}");
    assert!(html.contains("no Details link: the action type has no executionUrlTemplate"));
}

#[test]
fn a_scaled_clock_offers_pause_resume_and_speeds_and_a_paused_one_reports_no_gaps() {
    let core = Core::new(Sim::new(ClockMode::Scaled(60.0)), Settings::default());
    let html = render_page(&Model::build(&core));
    assert!(
        html.contains("id=\"clock-pause\""),
        "a running clock can be paused"
    );
    assert!(
        !html.contains("id=\"advance-10m\""),
        "only a manual clock is stepped by hand"
    );
    assert!(html.contains("data-speed=\"60\""));
    assert!(
        html.contains("id=\"speed-60\" class=\"current\" disabled"),
        "{html}"
    );
    assert!(
        html.contains("data-clock=\"{&quot;speed&quot;:3600}\""),
        "{html}"
    );

    core.sim.clock.pause().unwrap();
    let html = render_page(&Model::build(&core));
    assert!(html.contains("id=\"clock-resume\""));
    assert!(
        html.contains("data-speed=\"60\" data-paused=\"1\""),
        "a paused page does not tick, and keeps the speed it resumes at"
    );
    assert!(html.contains("paused, at 60\u{d7}"));
    drop(core.sim.activity.begin(Some("AKID1"), "PollForJobs"));
    assert!(
        poll_gaps(&core).is_empty(),
        "a paused clock magnifies no gap"
    );

    assert_eq!(format_speed(36_000.0), "36,000");
    assert_eq!(format_speed(0.5), "0.5");
    assert_eq!(format_speed(600.0), "600");
}

#[test]
fn a_details_address_that_is_not_http_is_shown_not_linked() {
    let core = core_with_type(
        Sim::manual(),
        Some("{ExternalExecutionId}"),
        TimingOverrides::default(),
    );
    start(&core, "e-1", "short");
    let job = take_job(&core, "AKID1");
    let _req = core
        .sim
        .activity
        .begin(Some("AKID1"), "PutJobSuccessResult");
    core.put_success(
        Some("AKID1"),
        Owner::Custom,
        &job,
        None,
        SuccessResult {
            continuation_token: Some("t".into()),
            external_id: Some("javascript:alert(document.domain)".into()),
            percent_complete: Some(0),
            ..Default::default()
        },
    )
    .unwrap();
    let html = render_live(&Model::build(&core));
    assert!(!html.contains("href=\"javascript:"), "{html}");
    assert!(html.contains("not an http or https address"), "{html}");
}
