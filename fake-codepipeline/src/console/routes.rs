//! The console's HTTP handlers: the page, its live part, the model as JSON and the Run button.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sim_core::ClockMode;
use sim_core::http::admin_error;

use super::render::{render_live, render_page};
use super::{Model, WAIT_MANUAL_MS, WAIT_RUNNING_MS};
use crate::engine::Core;
use crate::wire::{self, Wire};

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
    uncached(render_page(&Model::build(&wire.core)))
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// HTML that is always fetched anew: it shows the world now.
fn uncached(html: String) -> Response {
    let mut resp = Html(html).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

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
    let manual = core.sim.clock.mode() == ClockMode::Manual;
    let limit = if manual {
        WAIT_MANUAL_MS
    } else {
        WAIT_RUNNING_MS
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(q.wait.min(limit));
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
    uncached(render_live(&Model::build(&core)))
}

async fn start_pipeline(State(core): State<Arc<Core>>, Path(name): Path<String>) -> Response {
    match core.start_pipeline_execution(&name) {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => admin_error(StatusCode::NOT_FOUND, e.type_name, e.message),
    }
}
