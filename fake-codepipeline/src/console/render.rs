//! The console's HTML, from the view model: maud templates, so every value is escaped unless it is
//! spliced in as `PreEscaped` (only the page's own style and script are).

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use sim_core::{Event, Rule, Severity, format_duration};

use super::advice::violation_advice;
use super::model::{ActionView, ClockView, ExecutionView, Model, Pace, PipelineView, flagged_rule};
use super::{JOBS_SHOWN, MIN_REFRESH_MS, WAIT_MANUAL_MS, WAIT_RUNNING_MS, format_speed};

/// The page's style: ids, stamps and tokens never wrap; a wide table scrolls sideways.
const STYLE: &str = include_str!("style.css");
/// The page's script: clock buttons, Run buttons, the live refresh loop (one long poll at a time, at most
/// one refresh per `data-refresh` ms) and, for a running clock, a ticking clock display.
const SCRIPT: &str = include_str!("script.js");
/// The speeds a scaled clock offers as buttons (simulated seconds per real second).
const SPEEDS: [f64; 5] = [1.0, 60.0, 600.0, 3600.0, 36_000.0];

/// The whole page.
pub fn render_page(model: &Model) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "codepipeline-job-sim console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (live(model))
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
    .into_string()
}

/// The live part of the page: everything but the shell, swapped in whole on each refresh.
pub fn render_live(model: &Model) -> String {
    live(model).into_string()
}

fn live(model: &Model) -> Markup {
    let clock = model.clock_view();
    let (wait, speed, paused) = match clock.pace {
        Pace::Manual => (WAIT_MANUAL_MS, 0.0, false),
        Pace::Scaled { speed, paused } => (WAIT_RUNNING_MS, speed, paused),
        Pace::Real => (WAIT_RUNNING_MS, 1.0, false),
    };
    html! {
        div #console data-seq=(model.seq) data-now=(clock.now_ms) data-wait=(wait)
            data-mode=(clock.kind()) data-speed=(speed) data-paused=(u8::from(paused))
            data-refresh=(MIN_REFRESH_MS) {
            (header(&clock))
            main {
                @for gap in &model.poll_gaps {
                    div.banner.warn.poll-gap {
                        @if gap.held_job.is_some() { "Job held without an answer: " } @else { "Poll gap: " }
                        (gap.describe())
                    }
                }
                (violations_banner(model))
                (pipelines(model))
                (violations(model))
                (callers(model))
                (timeline(model))
            }
        }
    }
}

fn header(clock: &ClockView) -> Markup {
    html! {
        header {
            h1 { "codepipeline-job-sim" }
            div {
                span.now #clock-elapsed data-elapsed-ms=(clock.elapsed_ms) { (clock.elapsed) }
                " "
                span.muted #clock-now { (clock.now) }
                " "
                span.muted #clock-mode { "clock: " (clock.describe()) }
            }
            @match &clock.next {
                Some(next) => div.muted #next-deadline {
                    "next: " (next.label) " at " (next.elapsed) " (in " (format_duration(next.due_in())) ")"
                },
                None => div.muted #next-deadline { "no timer pending" },
            }
            @match clock.pace {
                Pace::Manual => div.controls {
                    button #advance-1m data-clock=r#"{"by":"1m"}"# { "+1 m" } " "
                    button #advance-10m data-clock=r#"{"by":"10m"}"# { "+10 m" } " "
                    button #advance-1h data-clock=r#"{"by":"1h"}"# { "+1 h" } " "
                    button #advance-next data-clock=r#"{"next":true}"# { "next event" } " "
                    span.muted #clock-error {}
                },
                Pace::Scaled { speed, paused } => (pace_controls(speed, paused)),
                Pace::Real => div.muted {
                    "the clock is the wall clock (real); start with " code { "--clock scaled:N" }
                    " to pause it or change its speed, or " code { "--clock manual" } " to step by hand"
                },
            }
        }
    }
}

/// Pause/resume and speed buttons for a running `scaled:N` clock.
fn pace_controls(speed: f64, paused: bool) -> Markup {
    html! {
        div.controls {
            @if paused {
                button #clock-resume data-clock=r#"{"pause":false}"# { "resume" }
            } @else {
                button #clock-pause data-clock=r#"{"pause":true}"# { "pause" }
            }
            " "
            span.muted #clock-speed {
                @if paused { "paused," } @else { "running" } " at " (format_speed(speed)) "\u{d7}"
            }
            " "
            @for s in SPEEDS {
                @let current = (s - speed).abs() < 1e-9;
                button id=(format!("speed-{s}")) class=[current.then_some("current")] disabled[current]
                    data-clock=(format!(r#"{{"speed":{s}}}"#)) { (format_speed(s)) "\u{d7}" }
                " "
            }
            span.muted #clock-error {}
        }
    }
}

fn violations_banner(model: &Model) -> Markup {
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    for e in model
        .violations
        .iter()
        .filter(|e| e.severity == Severity::Error)
    {
        *rules.entry(e.rule.map_or("?", Rule::id)).or_default() += 1;
    }
    let errors: usize = rules.values().sum();
    let list = rules
        .iter()
        .map(|(r, n)| format!("{r} x{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    html! {
        @if errors > 0 {
            div.banner.err.violations-banner { (errors) " rule violation(s): " (list) }
        }
    }
}

fn severity_class(severity: Severity) -> Option<&'static str> {
    match severity {
        Severity::Error => Some("error"),
        Severity::Warning => Some("warning"),
        Severity::Info => None,
    }
}

fn status_class(status: &str) -> &'static str {
    match status {
        "Succeeded" => "st-ok",
        "Failed" | "TimedOut" => "st-bad",
        "InProgress" | "Dispatched" | "Queued" => "st-run",
        _ => "st-idle",
    }
}

fn badge(status: &str) -> Markup {
    html! { span class={ "badge " (status_class(status)) } { (status) } }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn pipelines(model: &Model) -> Markup {
    let idle: Vec<&PipelineView> = model
        .pipelines
        .iter()
        .filter(|p| p.runs.is_empty())
        .collect();
    html! {
        @if model.pipelines.is_empty() {
            section {
                h2 { "Pipelines" }
                p.muted {
                    "No pipeline yet: create one with CreatePipeline, or start a bare action execution with "
                    code { "POST /_sim/executions" } "."
                }
            }
        }
        @if !idle.is_empty() {
            section #idle-pipelines {
                h2 { "Not run yet" }
                @for p in idle {
                    span.pipeline data-pipeline=(p.name) {
                        b { (p.name) } " "
                        span.muted { (p.stages.join(" \u{2192} ")) } " "
                        button data-start=(p.name) { "Run" }
                    }
                    " \u{a0} "
                }
            }
        }
        @for p in model.pipelines.iter().filter(|p| !p.runs.is_empty()) {
            section.pipeline data-pipeline=(p.name) {
                h2 {
                    @if p.synthetic { "Admin execution " } @else { "Pipeline " }
                    (p.name)
                    @if !p.synthetic { " " button data-start=(p.name) { "Run" } }
                    " " span.muted { (p.total_runs) " run(s)" }
                }
                @for run in &p.runs {
                    div.pipeline-run data-run=(run.id) {
                        div.run-head {
                            "run " span.mono title=(run.id) { (short(&run.id)) } " " (badge(&run.status))
                            " " span.muted { "started " (run.started) }
                        }
                        div.stages {
                            @for st in &run.stages {
                                div.stage {
                                    h3 { (st.name) " " @if let Some(s) = &st.status { (badge(s)) } }
                                    @for a in &st.actions { (action(a)) }
                                }
                            }
                        }
                        @for e in run.stages.iter().flat_map(|s| &s.actions).filter_map(|a| a.execution.as_ref()) {
                            @if !e.jobs.is_empty() { (jobs(e)) }
                        }
                    }
                }
            }
        }
    }
}

fn action(a: &ActionView) -> Markup {
    html! {
        div.action {
            b { (a.name) } " " span.muted { (a.action_type) }
            @match &a.execution {
                None => { " " span.muted { "not started" } },
                Some(e) if !a.job_worker => div { (badge(&e.status)) " " span.muted { "AWS-owned: succeeds at once" } },
                Some(e) => (execution(e)),
            }
        }
    }
}

fn execution(e: &ExecutionView) -> Markup {
    let pct = e.percent_complete.unwrap_or(0).clamp(0, 100);
    html! {
        div.execution data-execution=(e.label) {
            (badge(&e.status)) " " span.mono { (e.label) }
            div {
                progress max="100" value=(pct) data-execution=(e.label) {} " "
                span.percent {
                    @match e.percent_complete { Some(p) => { (p) "%" }, None => { "no progress yet" } }
                }
            }
            @if let Some(s) = &e.summary { div.summary { (s) } }
            @match (&e.details_url, &e.external_id) {
                // Only a web address becomes a link: a worker's `javascript:` would run in this page.
                (Some(url), _) if !is_web_url(url) => div.no-details {
                    "Details " span.mono { (url) } " "
                    span.muted { "(not an http or https address: shown, not linked)" }
                },
                (Some(url), id) => div {
                    a.details href=(url) { "Details: " (id.as_deref().unwrap_or_default()) } " "
                    span.muted { "since " (e.details_link_at.as_deref().unwrap_or("?")) }
                },
                (None, Some(id)) => div.no-details {
                    "external id " span.mono { (id) } " "
                    span.muted { "(no Details link: the action type has no executionUrlTemplate)" }
                },
                (None, None) => div.muted.no-details { "no Details link yet" },
            }
            @if let Some((code, message)) = &e.error { div.err-text { (code) ": " (message) } }
            @for v in &e.violations {
                div.err-text { (v.stamp()) " " (v.rule.map_or("", Rule::id)) ": " (v.detail) }
                @if let Some(advice) = violation_advice(v) { div.advice { (advice) } }
            }
        }
    }
}

fn jobs(e: &ExecutionView) -> Markup {
    // The first job (the Details link's) and the newest ones; a long test has a job per round.
    let hidden = e.jobs.len().saturating_sub(1 + JOBS_SHOWN);
    html! {
        div.scroll {
            table.jobs data-execution=(e.label) {
                tr {
                    th { (e.label) " job" } th { "id" } th { "status" } th { "history" }
                    th { "continuation token" } th { "deadline" } th { "dispatched to" }
                }
                @for (i, j) in e.jobs.iter().enumerate() {
                    @if i == 1 && hidden > 0 {
                        tr { td.muted colspan="7" {
                            "\u{2026} " (hidden) " more job(s) (all in /_sim/executions/" (e.label) ")"
                        } }
                    }
                    @if i == 0 || i > hidden {
                        tr class=[matches!(j.status.as_str(), "TimedOut" | "Failed").then_some("error")] {
                            td.nowrap { "#" (j.number) }
                            td.mono title=(j.id) { (short(&j.id)) }
                            td { (badge(&j.status)) }
                            td {
                                @for (n, (t, s)) in j.history.iter().enumerate() {
                                    @if n > 0 { " \u{2192} " }
                                    span.nowrap { (t) " " (s) }
                                }
                            }
                            td.mono { (j.continuation_token.as_deref().unwrap_or_default()) }
                            td.mono { (j.deadline.as_deref().unwrap_or_default()) }
                            td.mono { (j.dispatched_to.as_deref().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

/// Events as a table: the rule column names a rule only where the event violates or warns about it.
fn events_table(events: &[Event]) -> Markup {
    html! {
        div.scroll {
            table {
                tr { th { "at" } th { "event" } th { "execution" } th { "job" } th { "rule" } th { "detail" } }
                @for e in events {
                    tr class=[severity_class(e.severity)] {
                        td.mono { (e.stamp()) }
                        td.nowrap { (e.name().to_string()) }
                        td.mono { (e.execution.as_deref().unwrap_or_default()) }
                        td.mono title=(e.job.as_deref().unwrap_or_default()) {
                            (e.job.as_deref().map(short).unwrap_or_default())
                        }
                        td.rule { b { (flagged_rule(e).map_or("", Rule::id)) } }
                        td.detail {
                            (e.detail)
                            @if let Some(advice) = violation_advice(e) { div.advice { (advice) } }
                        }
                    }
                }
            }
        }
    }
}

fn violations(model: &Model) -> Markup {
    html! {
        section #violations {
            h2 { "Rule violations " span.muted { (model.violations.len()) } }
            @if model.violations.is_empty() {
                p.muted { "None so far." }
            } @else {
                (events_table(&model.violations))
            }
        }
    }
}

fn callers(model: &Model) -> Markup {
    html! {
        section #callers {
            h2 { "Agents (by access key)" }
            @if model.callers.is_empty() {
                p.muted {
                    "No signed request yet: start your agent with the environment " code { "sim" } " printed."
                }
            } @else {
                div.scroll { table {
                    tr {
                        th { "access key" } th { "requests" } th { "last operation" } th { "last request" }
                        th { "in flight" } th { "parked polls" } th { "jobs held" }
                    }
                    @for c in &model.callers {
                        tr {
                            td.mono { (c.caller) }
                            td { (c.requests) }
                            td { (c.last_operation) }
                            td.nowrap {
                                @if let Some(ms) = c.since_last_request_ms {
                                    (format!("{:.1} s ago (real)", ms as f64 / 1000.0))
                                }
                            }
                            td { (c.in_flight) }
                            td { (c.parked) }
                            td { (c.held_jobs) }
                        }
                    }
                } }
            }
        }
    }
}

fn timeline(model: &Model) -> Markup {
    html! {
        section #timeline {
            h2 {
                "Timeline " span.muted {
                    "newest first, last " (model.timeline.len()) " of " (model.seq) " events"
                }
            }
            (events_table(&model.timeline))
        }
    }
}

/// Whether `url` is an `http://` or `https://` address (the only ones the console links to).
fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}
