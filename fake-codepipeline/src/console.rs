//! The console: a page for people at `GET /` showing pipelines, their runs with stage and action status,
//! progress, the Details link, every job's state history and continuation token, rule violations, the
//! timeline, the agents seen, and clock controls. Plain server-rendered HTML; a small inline script
//! swaps in a fresh rendering whenever the event log or the clock moves (one long poll at a time).
//!
//! Routes: `GET /` (the page, for requests that accept HTML; anything else goes to the API handler, so an
//! SDK's stray GET still gets an awsJson error), `GET /_sim/console/view?since=SEQ&now=MS&wait=MS` (the
//! page's live part, answered when something changed or `wait` passed), `GET /_sim/console.json` (the
//! same data as JSON) and `POST /_sim/console/pipelines/{name}/start` (the Run button).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sim_core::http::{admin_error, clock_document};
use sim_core::{ClockMode, Event, Severity, SimTime, format_duration, format_offset};

use crate::engine::Core;
use crate::state::World;
use crate::types::ExecutionStatus;
use crate::wire::{self, Wire};

/// How many events the timeline shows (newest first).
pub const TIMELINE_EVENTS: usize = 200;
/// How many runs of each pipeline the page shows (newest first).
pub const RUNS_PER_PIPELINE: usize = 3;
/// How many of an execution's newest jobs the page lists (after the first).
pub const JOBS_SHOWN: usize = 4;
/// A caller's real gap between requests, times the clock's speed-up, at or above this share of the job
/// timeout is reported: one more such gap and a job waiting for that caller times out.
pub const POLL_GAP_WARN_SHARE: f64 = 0.5;
/// The longest a view request waits for a change, for a manual clock (nothing moves unless told).
const WAIT_MANUAL_MS: u64 = 25_000;
/// The longest a view request waits for a change, for a running clock (deadlines and gaps move).
const WAIT_RUNNING_MS: u64 = 5_000;
/// The shortest real time between two refreshes of the page, bounding its cost while busy.
const MIN_REFRESH_MS: u64 = 500;

/// The console's routes (besides `GET /`, which [`page`] serves on the API's path).
pub fn routes(core: Arc<Core>) -> Router {
    Router::new()
        .route("/_sim/console.json", get(console_json))
        .route("/_sim/console/view", get(view))
        .route("/_sim/console/pipelines/{name}/start", post(start_pipeline))
        .with_state(core)
}

/// `GET /`: the page for a browser; any other client gets the API's answer to a GET.
pub async fn page(State(wire): State<Arc<Wire>>, req: Request) -> Response {
    if !accepts_html(req.headers()) {
        return wire::handle(State(wire), req).await;
    }
    let model = Model::build(&wire.core);
    let mut resp = Html(render_page(&model)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    resp
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

// ----- the data the page shows -----

/// Everything the console shows, as `GET /_sim/console.json` returns it.
#[derive(Clone, Debug, Serialize)]
pub struct Model {
    /// The clock document of `/_sim/clock`.
    pub clock: Value,
    /// The last event sequence number the model includes.
    pub seq: u64,
    /// Pipelines: declared ones by name, then the admin API's one-action pipelines in start order.
    pub pipelines: Vec<PipelineView>,
    /// Every event in the log that names a rule with severity warning or error, oldest first.
    pub violations: Vec<Event>,
    /// The newest events, newest first.
    pub timeline: Vec<Event>,
    /// Callers (access keys) seen, with their activity.
    pub callers: Vec<CallerView>,
    /// Callers whose real gap between requests, scaled, nears the job timeout.
    pub poll_gaps: Vec<PollGap>,
}

/// One pipeline and its newest runs.
#[derive(Clone, Debug, Serialize)]
pub struct PipelineView {
    /// Its name.
    pub name: String,
    /// Made by the admin API for one bare action execution.
    pub synthetic: bool,
    /// Its stage names, in order.
    pub stages: Vec<String>,
    /// Its newest runs, newest first.
    pub runs: Vec<RunView>,
    /// How many runs it has in all.
    pub total_runs: usize,
}

/// One pipeline run.
#[derive(Clone, Debug, Serialize)]
pub struct RunView {
    /// `pipelineExecutionId`.
    pub id: String,
    /// `InProgress`, `Succeeded` or `Failed`.
    pub status: String,
    /// When it started (`+00:01:00`).
    pub started: String,
    /// Its stages, in order.
    pub stages: Vec<StageView>,
}

/// One stage of a run.
#[derive(Clone, Debug, Serialize)]
pub struct StageView {
    /// The stage name.
    pub name: String,
    /// Its status, once the run reached it.
    pub status: Option<String>,
    /// Its actions.
    pub actions: Vec<ActionView>,
}

/// One action of a stage in a run.
#[derive(Clone, Debug, Serialize)]
pub struct ActionView {
    /// The action name.
    pub name: String,
    /// `Category/Owner/Provider/Version`.
    pub action_type: String,
    /// Whether job workers run it (ThirdParty or Custom); AWS-owned actions succeed at once.
    pub job_worker: bool,
    /// Its execution in this run, once started.
    pub execution: Option<ExecutionView>,
}

/// One action execution with its jobs.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutionView {
    /// The label (`e-1`).
    pub label: String,
    /// Its status.
    pub status: String,
    /// Last reported percentComplete.
    pub percent_complete: Option<i64>,
    /// Last non-empty summary.
    pub summary: Option<String>,
    /// Last non-empty externalExecutionId.
    pub external_id: Option<String>,
    /// The Details link (the filled executionUrlTemplate).
    pub details_url: Option<String>,
    /// When the Details link first appeared.
    pub details_link_at: Option<String>,
    /// `errorDetails` code and message once failed.
    pub error: Option<(String, String)>,
    /// Its jobs, in order.
    pub jobs: Vec<JobView>,
    /// Rule events about this execution, oldest first.
    pub violations: Vec<Event>,
}

/// One job.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    /// 1 for the first job, then 2, 3, ...
    pub number: usize,
    /// The job id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// The token it carries, for a continuation job.
    pub continuation_token: Option<String>,
    /// Its deadline (`+01:00:30`), once queued.
    pub deadline: Option<String>,
    /// Its status changes: (stamp, status).
    pub history: Vec<(String, String)>,
    /// Who it was last dispatched to.
    pub dispatched_to: Option<String>,
}

/// One caller (access key) and what it is doing.
#[derive(Clone, Debug, Serialize)]
pub struct CallerView {
    /// The access key.
    pub caller: String,
    /// Requests seen.
    pub requests: u64,
    /// The operation of its last request.
    pub last_operation: String,
    /// Real milliseconds since its last request started.
    pub since_last_request_ms: Option<u64>,
    /// Requests in flight and parked polls now.
    pub in_flight: usize,
    /// Parked polls now.
    pub parked: usize,
    /// Jobs it holds.
    pub held_jobs: usize,
}

/// A caller whose real gap between requests, times the clock's speed-up, nears the job timeout: a
/// timeout the scaling would make, not the agent.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PollGap {
    /// The access key.
    pub caller: String,
    /// Real time since its last request.
    #[serde(serialize_with = "as_millis")]
    pub real_gap: Duration,
    /// The same gap in simulated time.
    #[serde(serialize_with = "as_millis")]
    pub simulated_gap: Duration,
    /// The shortest job timeout of the registered job-worker action types.
    #[serde(serialize_with = "as_millis")]
    pub job_timeout: Duration,
    /// The clock's speed-up factor.
    pub factor: f64,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl PollGap {
    /// One line for a log or a banner.
    pub fn describe(&self) -> String {
        format!(
            "{} made no request for {} (real) = {} simulated at x{}: a job waiting that long for it times out after {}; poll more often or lower the speed-up",
            self.caller,
            format_duration(Duration::from_millis(
                self.real_gap.as_millis() as u64 / 100 * 100
            )),
            format_duration(Duration::from_secs(self.simulated_gap.as_secs())),
            self.factor,
            format_duration(self.job_timeout),
        )
    }
}

/// Callers whose real gap since their last request, times the clock's speed-up, is at least
/// [`POLL_GAP_WARN_SHARE`] of the shortest job timeout. Only for `scaled:N` clocks (a manual clock does
/// not move with real time; a real one does not magnify gaps). Callers with a request in flight or a
/// parked poll are not waiting between requests and are left out.
pub fn poll_gaps(core: &Core) -> Vec<PollGap> {
    // The current speed: a paused clock magnifies nothing.
    let (ClockMode::Scaled(_), Some(factor)) = (core.sim.clock.mode(), core.sim.clock.rate())
    else {
        return Vec::new();
    };
    if factor <= 0.0 {
        return Vec::new();
    }
    let job_timeout = core.with_world(|w| {
        w.action_types
            .values()
            .filter(|t| t.id.owner.is_job_worker())
            .map(|t| t.timing.job_timeout)
            .min()
            .unwrap_or(core.settings.timing.job_timeout)
    });
    core.sim
        .activity
        .snapshot()
        .callers
        .into_iter()
        .filter(|c| c.requests > 0 && c.in_flight == 0 && c.parked == 0)
        .filter_map(|c| {
            let real_gap = c.since_last_request?;
            let simulated_gap = real_gap.mul_f64(factor);
            (simulated_gap.as_secs_f64() >= job_timeout.as_secs_f64() * POLL_GAP_WARN_SHARE)
                .then_some(PollGap {
                    caller: c.caller,
                    real_gap,
                    simulated_gap,
                    job_timeout,
                    factor,
                })
        })
        .collect()
}

impl Model {
    /// A consistent view of the fake now (the world is read under one lock).
    pub fn build(core: &Core) -> Model {
        let seq = core.sim.events.last_seq();
        let all = core.sim.events.since(0, usize::MAX);
        let violations: Vec<Event> = all
            .iter()
            .filter(|e| e.rule.is_some() && e.severity >= Severity::Warning)
            .cloned()
            .collect();
        let timeline: Vec<Event> = all.iter().rev().take(TIMELINE_EVENTS).cloned().collect();
        let mut by_execution: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for e in &violations {
            if let Some(x) = &e.execution {
                by_execution.entry(x.clone()).or_default().push(e.clone());
            }
        }
        let origin = core.sim.clock.origin();
        let pipelines = core.with_world(|w| pipelines(core, w, origin, &by_execution));
        let callers = core
            .sim
            .activity
            .snapshot()
            .callers
            .into_iter()
            .map(|c| CallerView {
                caller: c.caller,
                requests: c.requests,
                last_operation: c.last_operation,
                since_last_request_ms: c.since_last_request.map(|d| d.as_millis() as u64),
                in_flight: c.in_flight,
                parked: c.parked,
                held_jobs: c.held_jobs,
            })
            .collect();
        Model {
            clock: clock_document(&core.sim),
            seq,
            pipelines,
            violations,
            timeline,
            callers,
            poll_gaps: poll_gaps(core),
        }
    }
}

fn pipelines(
    core: &Core,
    w: &World,
    origin: SimTime,
    violations: &BTreeMap<String, Vec<Event>>,
) -> Vec<PipelineView> {
    let stamp = |t: SimTime| format_offset(t.since(origin));
    // Runs per pipeline, newest first, and where each pipeline's first run sits in start order.
    let mut runs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut first_run: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, id) in w.pipeline_execution_order.iter().enumerate() {
        if let Some(pe) = w.pipeline_executions.get(id) {
            runs.entry(pe.pipeline.as_str()).or_default().push(id);
            first_run.entry(pe.pipeline.as_str()).or_insert(i);
        }
    }
    let mut list: Vec<_> = w.pipelines.values().collect();
    list.sort_by_key(|p| {
        (
            p.synthetic,
            if p.synthetic {
                first_run
                    .get(p.name.as_str())
                    .copied()
                    .unwrap_or(usize::MAX)
            } else {
                0
            },
            p.name.clone(),
        )
    });
    list.into_iter()
        .map(|p| {
            let ids = runs.get(p.name.as_str()).cloned().unwrap_or_default();
            let run_views = ids
                .iter()
                .rev()
                .take(RUNS_PER_PIPELINE)
                .filter_map(|id| w.pipeline_executions.get(*id))
                .map(|pe| {
                    let stages = p
                        .stages
                        .iter()
                        .enumerate()
                        .map(|(i, st)| {
                            let labels: Vec<Option<&String>> = st
                                .actions
                                .iter()
                                .map(|a| pe.actions.get(&(st.name.clone(), a.name.clone())))
                                .collect();
                            let statuses: Vec<ExecutionStatus> = labels
                                .iter()
                                .flatten()
                                .filter_map(|l| w.executions.get(*l).map(|e| e.status))
                                .collect();
                            let status = (i <= pe.stage).then(|| {
                                if statuses.contains(&ExecutionStatus::Failed) {
                                    "Failed"
                                } else if statuses.contains(&ExecutionStatus::InProgress)
                                    || statuses.len() < st.actions.len()
                                {
                                    "InProgress"
                                } else {
                                    "Succeeded"
                                }
                                .to_string()
                            });
                            let actions = st
                                .actions
                                .iter()
                                .zip(labels)
                                .map(|(a, label)| ActionView {
                                    name: a.name.clone(),
                                    action_type: a.action_type.to_string(),
                                    job_worker: a.action_type.owner.is_job_worker(),
                                    execution: label.and_then(|l| w.executions.get(l)).map(|e| {
                                        ExecutionView {
                                            label: e.label.clone(),
                                            status: e.status.as_str().to_string(),
                                            percent_complete: e.percent_complete,
                                            summary: e.summary.clone(),
                                            external_id: e.external_id.clone(),
                                            details_url: core.external_url(w, e),
                                            details_link_at: e.external_id_at.map(stamp),
                                            error: e.error.clone(),
                                            jobs: e
                                                .jobs
                                                .iter()
                                                .filter_map(|id| w.jobs.get(id))
                                                .map(|j| JobView {
                                                    number: j.number,
                                                    id: j.id.clone(),
                                                    status: j.status.as_str().to_string(),
                                                    continuation_token: j
                                                        .continuation_token
                                                        .clone(),
                                                    deadline: j.deadline.map(stamp),
                                                    history: j
                                                        .history
                                                        .iter()
                                                        .map(|(t, s)| {
                                                            (stamp(*t), s.as_str().to_string())
                                                        })
                                                        .collect(),
                                                    dispatched_to: j.dispatched_to.clone(),
                                                })
                                                .collect(),
                                            violations: violations
                                                .get(&e.label)
                                                .cloned()
                                                .unwrap_or_default(),
                                        }
                                    }),
                                })
                                .collect();
                            StageView {
                                name: st.name.clone(),
                                status,
                                actions,
                            }
                        })
                        .collect();
                    RunView {
                        id: pe.id.clone(),
                        status: pe.status.as_str().to_string(),
                        started: stamp(pe.started),
                        stages,
                    }
                })
                .collect();
            PipelineView {
                name: p.name.clone(),
                synthetic: p.synthetic,
                stages: p.stages.iter().map(|s| s.name.clone()).collect(),
                runs: run_views,
                total_runs: ids.len(),
            }
        })
        .collect()
}

// ----- handlers -----

async fn console_json(State(core): State<Arc<Core>>) -> Json<Model> {
    Json(Model::build(&core))
}

#[derive(Deserialize)]
struct ViewQuery {
    /// The last event sequence number the caller has seen.
    since: Option<u64>,
    /// The simulated time (ms since the epoch) the caller shows.
    now: Option<u64>,
    /// How long to wait for a change (real ms).
    #[serde(default)]
    wait: u64,
}

/// The page's live part: waits (up to `wait`) until an event after `since` is logged or a manual
/// clock no longer shows `now`, then renders. A pause, resume or new speed of a running clock is an
/// event (`sim.clock_paced`), so it answers at once too.
async fn view(State(core): State<Arc<Core>>, Query(q): Query<ViewQuery>) -> Response {
    let limit = if core.sim.clock.mode() == ClockMode::Manual {
        WAIT_MANUAL_MS
    } else {
        WAIT_RUNNING_MS
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(q.wait.min(limit));
    let manual = core.sim.clock.mode() == ClockMode::Manual;
    loop {
        let changed = q.since.is_none_or(|s| core.sim.events.last_seq() > s)
            || (manual && q.now.is_none_or(|n| core.sim.clock.now().as_millis() != n));
        let now = tokio::time::Instant::now();
        if changed || now >= deadline {
            break;
        }
        // Re-check at least every second, so a change between the check and the wait is never lost
        // for longer than that.
        let step = (deadline - now).min(Duration::from_secs(1));
        let since = q.since.unwrap_or(0);
        tokio::select! {
            _ = core.sim.events.wait_since(since, 1, step) => {}
            _ = core.sim.clock.changed() => {}
            _ = tokio::time::sleep(step) => {}
        }
    }
    let model = Model::build(&core);
    let mut resp = Html(render_live(&model)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    resp
}

async fn start_pipeline(State(core): State<Arc<Core>>, Path(name): Path<String>) -> Response {
    match core.start_pipeline_execution(&name) {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => admin_error(StatusCode::NOT_FOUND, e.type_name, e.message),
    }
}

// ----- rendering -----

/// Escapes text for HTML element content and quoted attribute values.
pub use sim_core::http::escape_html as escape;

fn status_class(status: &str) -> &'static str {
    match status {
        "Succeeded" => "st-ok",
        "Failed" | "TimedOut" => "st-bad",
        "InProgress" | "Dispatched" | "Queued" => "st-run",
        _ => "st-idle",
    }
}

fn badge(status: &str) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        status_class(status),
        escape(status)
    )
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}\
header{background:#24292f;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.5rem;align-items:center;flex-wrap:wrap}\
header h1{font-size:1.1rem;margin:0}header .now{font:1.2rem ui-monospace,monospace}\
header button{font:inherit;padding:.25rem .7rem;border-radius:.3rem;border:1px solid #57606a;background:#32383f;color:#fff;cursor:pointer}\
header button:hover{background:#444c56}header button.current{background:#0969da;border-color:#0969da;cursor:default}.muted{color:#656d76}header .muted{color:#afb8c1}\
main{padding:1rem 1.2rem;display:grid;gap:1rem}\
section{background:#fff;border:1px solid #d0d7de;border-radius:.4rem;padding:.6rem 1rem}\
h2{font-size:1rem;margin:.2rem 0 .6rem}h3{font-size:.9rem;margin:.4rem 0}\
.banner{padding:.5rem 1rem;border-radius:.4rem;border:1px solid}\
.banner.warn{background:#fff8c5;border-color:#d4a72c}.banner.err{background:#ffebe9;border-color:#ff8182}\
.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:.8rem;font-weight:600;color:#fff}\
.st-ok{background:#1a7f37}.st-bad{background:#cf222e}.st-run{background:#0969da}.st-idle{background:#8c959f}\
.stages{display:flex;gap:.6rem;flex-wrap:wrap;align-items:flex-start}\
.stage{border:1px solid #d0d7de;border-radius:.4rem;padding:.4rem .6rem;min-width:12rem}\
.action{margin:.3rem 0}.action progress{width:12rem;vertical-align:middle}\
table{border-collapse:collapse;font-size:.85rem}th,td{text-align:left;padding:.15rem .6rem .15rem 0;vertical-align:top}\
td.mono,span.mono{font-family:ui-monospace,monospace}td.rule{white-space:nowrap}\
td.mono{word-break:break-all}\
tr.error td{background:#ffebe9}tr.warning td{background:#fff8c5}\
.timeline{max-height:24rem;overflow:auto}.run-head{margin:.4rem 0}\
a.details{font-weight:600}.err-text{color:#cf222e}";

/// The whole page.
pub fn render_page(model: &Model) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>codepipeline-job-sim console</title><style>{STYLE}</style></head>\n<body>\n{}\n<script>{SCRIPT}</script>\n</body></html>\n",
        render_live(model)
    )
}

/// The live part of the page: everything but the shell, swapped in whole on each refresh.
pub fn render_live(model: &Model) -> String {
    let clock = &model.clock;
    let mode = clock["mode"].as_str().unwrap_or("manual");
    let manual = mode == "manual";
    let wait = if manual {
        WAIT_MANUAL_MS
    } else {
        WAIT_RUNNING_MS
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<div id=\"console\" data-seq=\"{}\" data-now=\"{}\" data-wait=\"{wait}\" data-mode=\"{}\" data-speed=\"{}\" data-paused=\"{}\" data-refresh=\"{MIN_REFRESH_MS}\">",
        model.seq,
        clock["now_ms"].as_u64().unwrap_or(0),
        escape(mode),
        clock["speed"].as_f64().unwrap_or(0.0),
        u8::from(clock["paused"].as_bool().unwrap_or(false)),
    );
    render_header(&mut h, model, manual);
    h.push_str("<main>");
    for gap in &model.poll_gaps {
        let _ = write!(
            h,
            "<div class=\"banner warn poll-gap\">Poll gap: {}</div>",
            escape(&gap.describe())
        );
    }
    let errors = model
        .violations
        .iter()
        .filter(|e| e.severity == Severity::Error)
        .count();
    if errors > 0 {
        let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
        for e in model
            .violations
            .iter()
            .filter(|e| e.severity == Severity::Error)
        {
            *rules
                .entry(e.rule.map_or("?", sim_core::Rule::id))
                .or_default() += 1;
        }
        let list: Vec<String> = rules
            .iter()
            .map(|(r, n)| format!("{} x{n}", escape(r)))
            .collect();
        let _ = write!(
            h,
            "<div class=\"banner err violations-banner\">{errors} rule violation(s): {}</div>",
            list.join(", ")
        );
    }
    render_pipelines(&mut h, model);
    render_violations(&mut h, model);
    render_callers(&mut h, model);
    render_timeline(&mut h, model);
    h.push_str("</main></div>");
    h
}

fn render_header(h: &mut String, model: &Model, manual: bool) {
    let clock = &model.clock;
    let _ = write!(
        h,
        "<header><h1>codepipeline-job-sim</h1><div><span class=\"now\" id=\"clock-elapsed\" data-elapsed-ms=\"{}\">{}</span> \
<span class=\"muted\" id=\"clock-now\">{}</span> <span class=\"muted\">clock {}</span></div>",
        clock["elapsed_ms"].as_u64().unwrap_or(0),
        escape(clock["elapsed"].as_str().unwrap_or("")),
        escape(clock["now"].as_str().unwrap_or("")),
        escape(clock["mode"].as_str().unwrap_or("")),
    );
    match clock.get("next_deadline").filter(|d| !d.is_null()) {
        Some(d) => {
            let _ = write!(
                h,
                "<div class=\"muted\" id=\"next-deadline\">next: {} at {} (in {})</div>",
                escape(d["label"].as_str().unwrap_or("")),
                escape(d["elapsed"].as_str().unwrap_or("")),
                escape(&format_duration(Duration::from_secs(
                    d["in_ms"].as_u64().unwrap_or(0) / 1000
                ))),
            );
        }
        None => h.push_str("<div class=\"muted\" id=\"next-deadline\">no timer pending</div>"),
    }
    if manual {
        h.push_str(
            "<div class=\"controls\">\
<button data-clock='{\"by\":\"1m\"}' id=\"advance-1m\">+1 m</button> \
<button data-clock='{\"by\":\"10m\"}' id=\"advance-10m\">+10 m</button> \
<button data-clock='{\"by\":\"1h\"}' id=\"advance-1h\">+1 h</button> \
<button data-clock='{\"next\":true}' id=\"advance-next\">next event</button> \
<span class=\"muted\" id=\"clock-error\"></span></div>",
        );
    } else if clock["mode"].as_str().unwrap_or("").starts_with("scaled:") {
        render_pace_controls(h, clock);
    } else {
        h.push_str(
            "<div class=\"muted\">the clock is the wall clock (real); start with <code>--clock scaled:N</code> to pause it or change its speed, or <code>--clock manual</code> to step by hand</div>",
        );
    }
    h.push_str("</header>");
}

/// The speeds a scaled clock offers as buttons (simulated seconds per real second).
const SPEEDS: [f64; 5] = [1.0, 60.0, 600.0, 3600.0, 36_000.0];

/// Pause/resume and speed buttons for a running `scaled:N` clock.
fn render_pace_controls(h: &mut String, clock: &serde_json::Value) {
    let paused = clock["paused"].as_bool().unwrap_or(false);
    // The speed it runs at, or will run at when resumed.
    let speed = clock["speed"].as_f64().unwrap_or(0.0);
    h.push_str("<div class=\"controls\">");
    if paused {
        h.push_str("<button data-clock='{\"pause\":false}' id=\"clock-resume\">resume</button> ");
    } else {
        h.push_str("<button data-clock='{\"pause\":true}' id=\"clock-pause\">pause</button> ");
    }
    let _ = write!(
        h,
        "<span class=\"muted\" id=\"clock-speed\">{} at {}&times;</span> ",
        if paused { "paused," } else { "running" },
        format_speed(speed)
    );
    for s in SPEEDS {
        let current = (s - speed).abs() < 1e-9;
        let _ = write!(
            h,
            "<button data-clock='{{\"speed\":{s}}}' id=\"speed-{s}\"{}>{}&times;</button> ",
            if current {
                " class=\"current\" disabled"
            } else {
                ""
            },
            format_speed(s)
        );
    }
    h.push_str("<span class=\"muted\" id=\"clock-error\"></span></div>");
}

/// A speed-up factor as people write it: `60`, `0.5`, `36,000`.
fn format_speed(speed: f64) -> String {
    if speed.fract() != 0.0 || speed < 1.0 {
        return format!("{speed}");
    }
    let digits = format!("{}", speed as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render_pipelines(h: &mut String, model: &Model) {
    if model.pipelines.is_empty() {
        h.push_str("<section><h2>Pipelines</h2><p class=\"muted\">No pipeline yet: create one with CreatePipeline, or start a bare action execution with <code>POST /_sim/executions</code>.</p></section>");
        return;
    }
    let idle: Vec<&PipelineView> = model
        .pipelines
        .iter()
        .filter(|p| p.runs.is_empty())
        .collect();
    if !idle.is_empty() {
        h.push_str("<section id=\"idle-pipelines\"><h2>Not run yet</h2>");
        for p in idle {
            let _ = write!(
                h,
                "<span class=\"pipeline\" data-pipeline=\"{0}\"><b>{0}</b> <span class=\"muted\">{1}</span> <button data-start=\"{0}\">Run</button></span> &nbsp; ",
                escape(&p.name),
                p.stages
                    .iter()
                    .map(|s| escape(s))
                    .collect::<Vec<_>>()
                    .join(" &rarr; "),
            );
        }
        h.push_str("</section>");
    }
    for p in model.pipelines.iter().filter(|p| !p.runs.is_empty()) {
        let _ = write!(
            h,
            "<section class=\"pipeline\" data-pipeline=\"{}\"><h2>{} {}",
            escape(&p.name),
            if p.synthetic {
                "Admin execution"
            } else {
                "Pipeline"
            },
            escape(&p.name),
        );
        if !p.synthetic {
            let _ = write!(
                h,
                " <button data-start=\"{}\">Run</button>",
                escape(&p.name)
            );
        }
        let _ = write!(
            h,
            " <span class=\"muted\">{} run(s)</span></h2>",
            p.total_runs
        );
        for run in &p.runs {
            let _ = write!(
                h,
                "<div class=\"pipeline-run\" data-run=\"{}\"><div class=\"run-head\">run <span class=\"mono\">{}</span> {} <span class=\"muted\">started {}</span></div><div class=\"stages\">",
                escape(&run.id),
                escape(short(&run.id)),
                badge(&run.status),
                escape(&run.started),
            );
            for st in &run.stages {
                let _ = write!(
                    h,
                    "<div class=\"stage\"><h3>{} {}</h3>",
                    escape(&st.name),
                    st.status.as_deref().map(badge).unwrap_or_default()
                );
                for a in &st.actions {
                    render_action(h, a);
                }
                h.push_str("</div>");
            }
            h.push_str("</div>");
            for a in run.stages.iter().flat_map(|s| &s.actions) {
                if let Some(e) = &a.execution
                    && !e.jobs.is_empty()
                {
                    render_jobs(h, e);
                }
            }
            h.push_str("</div>");
        }
        h.push_str("</section>");
    }
}

fn render_action(h: &mut String, a: &ActionView) {
    let _ = write!(
        h,
        "<div class=\"action\"><b>{}</b> <span class=\"muted\">{}</span>",
        escape(&a.name),
        escape(&a.action_type)
    );
    let Some(e) = &a.execution else {
        h.push_str(" <span class=\"muted\">not started</span></div>");
        return;
    };
    if !a.job_worker {
        let _ = write!(
            h,
            "<div>{} <span class=\"muted\">AWS-owned: succeeds at once</span></div></div>",
            badge(&e.status)
        );
        return;
    }
    let _ = write!(
        h,
        "<div class=\"execution\" data-execution=\"{}\">{} <span class=\"mono\">{}</span>",
        escape(&e.label),
        badge(&e.status),
        escape(&e.label)
    );
    let pct = e.percent_complete.unwrap_or(0).clamp(0, 100);
    let _ = write!(
        h,
        "<div><progress max=\"100\" value=\"{pct}\" data-execution=\"{}\"></progress> <span class=\"percent\">{}</span></div>",
        escape(&e.label),
        e.percent_complete
            .map(|p| format!("{p}%"))
            .unwrap_or_else(|| "no progress yet".into())
    );
    if let Some(s) = &e.summary {
        let _ = write!(h, "<div class=\"summary\">{}</div>", escape(s));
    }
    match &e.details_url {
        Some(url) => {
            let _ = write!(
                h,
                "<div><a class=\"details\" href=\"{}\">Details: {}</a> <span class=\"muted\">since {}</span></div>",
                escape(url),
                escape(e.external_id.as_deref().unwrap_or("")),
                escape(e.details_link_at.as_deref().unwrap_or("?")),
            );
        }
        None if e.external_id.is_some() => {
            let _ = write!(
                h,
                "<div>external id {} <span class=\"muted\">(the action type has no executionUrlTemplate)</span></div>",
                escape(e.external_id.as_deref().unwrap_or(""))
            );
        }
        None => h.push_str("<div class=\"muted no-details\">no Details link yet</div>"),
    }
    if let Some((code, message)) = &e.error {
        let _ = write!(
            h,
            "<div class=\"err-text\">{}: {}</div>",
            escape(code),
            escape(message)
        );
    }
    for v in &e.violations {
        let _ = write!(
            h,
            "<div class=\"err-text\">{} {}: {}</div>",
            escape(&v.stamp()),
            escape(v.rule.map_or("", sim_core::Rule::id)),
            escape(&v.detail)
        );
    }
    h.push_str("</div></div>");
}

fn render_jobs(h: &mut String, e: &ExecutionView) {
    let _ = write!(
        h,
        "<table class=\"jobs\" data-execution=\"{}\"><tr><th>{} job</th><th>id</th><th>status</th><th>history</th><th>continuation token</th><th>deadline</th><th>dispatched to</th></tr>",
        escape(&e.label),
        escape(&e.label)
    );
    // The first job (the Details link's) and the newest ones; a long test has a job per round.
    let hidden = e.jobs.len().saturating_sub(1 + JOBS_SHOWN);
    for (i, j) in e.jobs.iter().enumerate() {
        if i >= 1 && i < 1 + hidden {
            if i == 1 {
                let _ = write!(
                    h,
                    "<tr><td colspan=\"7\" class=\"muted\">&hellip; {hidden} more job(s) (all in /_sim/executions/{})</td></tr>",
                    escape(&e.label)
                );
            }
            continue;
        }
        let history: Vec<String> = j
            .history
            .iter()
            .map(|(t, s)| format!("{} {}", escape(t), escape(s)))
            .collect();
        let row = match j.status.as_str() {
            "TimedOut" | "Failed" => " class=\"error\"",
            _ => "",
        };
        let _ = write!(
            h,
            "<tr{row}><td>#{}</td><td class=\"mono\" title=\"{}\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
            j.number,
            escape(&j.id),
            escape(short(&j.id)),
            badge(&j.status),
            history.join(" &rarr; "),
            escape(j.continuation_token.as_deref().unwrap_or("")),
            escape(j.deadline.as_deref().unwrap_or("")),
            escape(j.dispatched_to.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>");
}

fn event_row(h: &mut String, e: &Event) {
    let class = match e.severity {
        Severity::Error => " class=\"error\"",
        Severity::Warning => " class=\"warning\"",
        Severity::Info => "",
    };
    let _ = write!(
        h,
        "<tr{class}><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"rule\"><b>{}</b></td><td>{}</td></tr>",
        escape(&e.stamp()),
        escape(&e.name().to_string()),
        escape(e.execution.as_deref().unwrap_or("")),
        escape(e.job.as_deref().map(short).unwrap_or("")),
        escape(e.rule.map_or("", sim_core::Rule::id)),
        escape(&e.detail),
    );
}

fn render_violations(h: &mut String, model: &Model) {
    let _ = write!(
        h,
        "<section id=\"violations\"><h2>Rule violations <span class=\"muted\">{}</span></h2>",
        model.violations.len()
    );
    if model.violations.is_empty() {
        h.push_str("<p class=\"muted\">None so far.</p>");
    } else {
        h.push_str("<table><tr><th>at</th><th>event</th><th>execution</th><th>job</th><th>rule</th><th>detail</th></tr>");
        for e in &model.violations {
            event_row(h, e);
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
}

fn render_callers(h: &mut String, model: &Model) {
    h.push_str("<section id=\"callers\"><h2>Agents (by access key)</h2>");
    if model.callers.is_empty() {
        h.push_str("<p class=\"muted\">No signed request yet: start your agent with the environment <code>sim</code> printed.</p></section>");
        return;
    }
    h.push_str("<table><tr><th>access key</th><th>requests</th><th>last operation</th><th>last request</th><th>in flight</th><th>parked polls</th><th>jobs held</th></tr>");
    for c in &model.callers {
        let _ = write!(
            h,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.caller),
            c.requests,
            escape(&c.last_operation),
            c.since_last_request_ms
                .map(|ms| format!("{:.1} s ago (real)", ms as f64 / 1000.0))
                .unwrap_or_default(),
            c.in_flight,
            c.parked,
            c.held_jobs
        );
    }
    h.push_str("</table></section>");
}

fn render_timeline(h: &mut String, model: &Model) {
    let _ = write!(
        h,
        "<section id=\"timeline\"><h2>Timeline <span class=\"muted\">newest first, last {} of {} events</span></h2><div class=\"timeline\"><table><tr><th>at</th><th>event</th><th>execution</th><th>job</th><th>rule</th><th>detail</th></tr>",
        model.timeline.len(),
        model.seq
    );
    for e in &model.timeline {
        event_row(h, e);
    }
    h.push_str("</table></div></section>");
}

/// The page's script: clock buttons, Run buttons, the live refresh loop (one long poll at a time, at most
/// one refresh per `data-refresh` ms) and, for a running clock, a ticking clock display.
const SCRIPT: &str = r#"
(function () {
  "use strict";
  const root = () => document.getElementById("console");
  const pause = (ms) => new Promise((r) => setTimeout(r, ms));
  const say = (text) => { const e = document.getElementById("clock-error"); if (e) e.textContent = text; };
  document.addEventListener("click", async (ev) => {
    const clock = ev.target.closest("[data-clock]");
    const start = ev.target.closest("[data-start]");
    if (!clock && !start) return;
    ev.preventDefault();
    try {
      const resp = clock
        ? await fetch("/_sim/clock", { method: "POST", headers: { "content-type": "application/json" }, body: clock.dataset.clock })
        : await fetch("/_sim/console/pipelines/" + encodeURIComponent(start.dataset.start) + "/start", { method: "POST" });
      if (!resp.ok) { const body = await resp.json().catch(() => ({})); say(body.message || ("HTTP " + resp.status)); }
    } catch (e) { say(String(e)); }
  });
  let ticked = performance.now();
  setInterval(() => {
    const r = root(), el = document.getElementById("clock-elapsed");
    const speed = r.dataset.paused === "1" ? 0 : Number(r.dataset.speed) || 0;
    if (speed <= 0 || !el) return;
    const ms = Number(el.dataset.elapsedMs) + speed * (performance.now() - ticked);
    const s = Math.floor(ms / 1000), p = (n) => String(n).padStart(2, "0");
    el.textContent = "+" + p(Math.floor(s / 3600)) + ":" + p(Math.floor(s / 60) % 60) + ":" + p(s % 60);
  }, 250);
  (async function live() {
    for (;;) {
      const r = root();
      const q = "since=" + r.dataset.seq + "&now=" + r.dataset.now + "&wait=" + r.dataset.wait;
      try {
        const resp = await fetch("/_sim/console/view?" + q, { cache: "no-store" });
        if (resp.ok) { const html = await resp.text(); r.outerHTML = html; ticked = performance.now(); }
        else await pause(2000);
      } catch (e) { await pause(2000); }
      await pause(Number(root().dataset.refresh) || 500);
    }
  })();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use crate::{ActionTypeSpec, ExecutionSpec};
    use serde_json::json;
    use sim_core::Sim;

    fn core_with_execution() -> (Arc<Core>, String) {
        let core = Core::new(Sim::manual(), Settings::default());
        let props = crate::pipelines::parse_properties(Some(&json!([
            {"name": "PresetName", "required": true, "key": true, "secret": false},
        ])))
        .unwrap();
        core.register_action_type(ActionTypeSpec {
            id: Some("Test/Custom/ApicaLoadtest/1".parse().unwrap()),
            settings: json!({"executionUrlTemplate": "http://backend/jobs/{ExternalExecutionId}"}),
            properties: props,
            ..Default::default()
        })
        .unwrap();
        let v = core
            .start_execution(ExecutionSpec {
                action_type: Some("Test/Custom/ApicaLoadtest/1".parse().unwrap()),
                configuration: [("PresetName".to_string(), "<short>".to_string())].into(),
                client_id: None,
                label: Some("e-1".into()),
            })
            .unwrap();
        assert_eq!(v["executionId"], "e-1");
        (core, "e-1".into())
    }

    #[test]
    fn the_model_shows_the_run_its_action_and_its_first_job() {
        let (core, label) = core_with_execution();
        let m = Model::build(&core);
        let p = &m.pipelines[0];
        assert!(p.synthetic);
        let exec = p.runs[0].stages[0].actions[0].execution.as_ref().unwrap();
        assert_eq!(exec.label, label);
        assert_eq!(exec.status, "InProgress");
        assert_eq!(exec.jobs.len(), 1);
        assert_eq!(exec.jobs[0].status, "Queued");
        assert!(m.timeline.iter().any(|e| e.kind == "job_queued"));
    }

    #[test]
    fn the_page_escapes_what_clients_sent_and_offers_manual_clock_controls() {
        let (core, _) = core_with_execution();
        let html = render_page(&Model::build(&core));
        assert!(!html.contains("<short>"), "configuration must be escaped");
        assert!(html.contains("id=\"advance-10m\""));
        assert!(html.contains("<progress max=\"100\" value=\"0\" data-execution=\"e-1\">"));
        assert!(html.contains("no Details link yet"));
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
        let wait_until = std::time::Instant::now() + Duration::from_secs(5);
        let gaps = loop {
            let g = poll_gaps(&scaled);
            if !g.is_empty() || std::time::Instant::now() > wait_until {
                break g;
            }
            std::thread::yield_now();
        };
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0].describe().contains("AKID1"));
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
        assert!(html.contains("data-clock='{\"speed\":3600}'"));

        core.sim.clock.pause().unwrap();
        let html = render_page(&Model::build(&core));
        assert!(html.contains("id=\"clock-resume\""));
        assert!(
            html.contains("data-speed=\"60\" data-paused=\"1\""),
            "a paused page does not tick, and keeps the speed it resumes at"
        );
        assert!(html.contains("paused, at 60&times;"));
        drop(core.sim.activity.begin(Some("AKID1"), "PollForJobs"));
        assert!(
            poll_gaps(&core).is_empty(),
            "a paused clock magnifies no gap"
        );

        assert_eq!(format_speed(36_000.0), "36,000");
        assert_eq!(format_speed(0.5), "0.5");
        assert_eq!(format_speed(600.0), "600");
    }
}
