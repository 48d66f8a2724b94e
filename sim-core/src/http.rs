//! The `/_sim/clock` and `/_sim/events` endpoints every fake mounts.
//!
//! - `GET /_sim/clock` -> `{mode, speed, paused, now, now_ms, elapsed_ms, elapsed, next_deadline?}`
//!   (`speed`: simulated seconds per real second while running, paused or not; `null` for a manual clock)
//! - `POST /_sim/clock` with `{"by": "10m"}`, `{"to": "+01:00:00" | "2025-01-01T02:00:00Z"}` or
//!   `{"next": true}` (manual clocks), or `{"pause": true|false}` and/or `{"speed": 60}` (scaled clocks)
//!   -> the same document after the change
//! - `GET /_sim/events?since=SEQ&wait=MS&limit=N` -> JSON lines, one event per line

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::{ClockError, NewEvent, Sim, SimTime, format_offset, parse_duration};

/// The routes, with the world as state; merge them into a fake's router.
pub fn routes(sim: Sim) -> Router {
    Router::new()
        .route("/_sim/clock", get(get_clock).post(post_clock))
        .route("/_sim/events", get(get_events))
        .with_state(sim)
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON error body `{code, message}` with a status, the admin API's error shape.
pub fn admin_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"code": code, "message": message.into()})),
    )
        .into_response()
}

/// The clock as the admin API shows it.
pub fn clock_document(sim: &Sim) -> serde_json::Value {
    let clock = &sim.clock;
    let now = clock.now();
    let elapsed = clock.elapsed();
    let next = clock.next_deadline().map(|d| {
        json!({
            "at": d.at.rfc3339(),
            "at_ms": d.at.as_millis(),
            "in_ms": d.at.since(now).as_millis() as u64,
            "elapsed": format_offset(d.at.since(clock.origin())),
            "label": d.label,
        })
    });
    json!({
        "mode": clock.mode().to_string(),
        "speed": clock.speed(),
        "paused": clock.is_paused(),
        "now": now.rfc3339(),
        "now_ms": now.as_millis(),
        "origin": clock.origin().rfc3339(),
        "elapsed_ms": elapsed.as_millis() as u64,
        "elapsed": format_offset(elapsed),
        "pending_timers": clock.pending_timers(),
        "next_deadline": next,
    })
}

async fn get_clock(State(sim): State<Sim>) -> Json<serde_json::Value> {
    Json(clock_document(&sim))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    by: Option<String>,
    to: Option<String>,
    #[serde(default)]
    next: bool,
    pause: Option<bool>,
    speed: Option<f64>,
}

const CLOCK_REQUEST_SHAPES: &str = "{\"by\": \"10m\"}, {\"to\": \"+01:00:00\"} or {\"next\": true} for a manual clock; \
{\"pause\": true|false} or {\"speed\": 60} for a scaled one";

async fn post_clock(State(sim): State<Sim>, body: axum::body::Bytes) -> Response {
    let req: ClockRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return admin_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("clock request must be {CLOCK_REQUEST_SHAPES}: {e}"),
            );
        }
    };
    let clock = sim.clock.clone();
    let moves =
        usize::from(req.by.is_some()) + usize::from(req.to.is_some()) + usize::from(req.next);
    let paces = usize::from(req.pause.is_some()) + usize::from(req.speed.is_some());
    if moves + paces == 0 || moves > 1 || (moves == 1 && paces > 0) {
        return admin_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "BadRequest",
            format!(
                "give exactly one of `by`, `to` or `next: true`, or `pause` and/or `speed`: {CLOCK_REQUEST_SHAPES}"
            ),
        );
    }
    if paces > 0 {
        // Pause, resume and speed: the clock refuses them unless it is a scaled one.
        let paced = req
            .speed
            .map_or(Ok(()), |speed| clock.set_speed(speed))
            .and_then(|()| match req.pause {
                Some(true) => clock.pause(),
                Some(false) => clock.resume(),
                None => Ok(()),
            });
        if let Err(e) = paced {
            return clock_error(e);
        }
        // On the timeline, and a change every open console sees at once.
        let speed = clock.speed().unwrap_or(0.0);
        sim.events.record(
            NewEvent::new(crate::Source::Sim, crate::EventKind::ClockPaced).detail(
                if clock.is_paused() {
                    format!("clock paused (runs at {speed}x when resumed)")
                } else {
                    format!("clock running at {speed}x")
                },
            ),
        );
        return Json(clock_document(&sim)).into_response();
    }
    // By hand: the clock refuses unless it is a manual one.
    let result = match (req.by, req.to) {
        (Some(by), _) => match parse_duration(&by) {
            Ok(d) => clock.advance_by(d).map(|_| ()),
            Err(e) => {
                return admin_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "BadDuration",
                    format!("by: {e}"),
                );
            }
        },
        (None, Some(to)) => match parse_target(&to, clock.origin()) {
            Ok(t) => clock.advance_to(t).map(|_| ()),
            Err(e) => {
                return admin_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "BadTime",
                    format!("to: {e}"),
                );
            }
        },
        (None, None) => clock.advance_to_next().map(|_| ()),
    };
    match result {
        Ok(()) => Json(clock_document(&sim)).into_response(),
        Err(e) => clock_error(e),
    }
}

/// A refused clock change as the admin API answers it.
fn clock_error(e: ClockError) -> Response {
    let (status, code) = match e {
        ClockError::NotManual(_) => (StatusCode::CONFLICT, "NotManual"),
        ClockError::NotScaled(_) => (StatusCode::CONFLICT, "NotScaled"),
        ClockError::BadSpeed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "BadSpeed"),
        ClockError::Backwards { .. } => (StatusCode::CONFLICT, "ClockError"),
    };
    admin_error(status, code, e.to_string())
}

/// A target time: RFC 3339 (`2025-01-01T02:00:00Z`) or an offset from the origin (`+01:00:00`, `90m`),
/// bounded as [`crate::time::SimOffset`] is.
pub fn parse_target(text: &str, origin: SimTime) -> Result<SimTime, String> {
    let t = text.trim();
    if let Ok(at) = humantime::parse_rfc3339_weak(t) {
        return Ok(SimTime::from_system_time(at));
    }
    t.parse::<crate::time::SimOffset>()
        .map(|o| o.from_origin(origin))
        .map_err(|e| format!("{e}; an RFC 3339 time (`2025-01-01T01:00:00Z`) is also accepted"))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    since: u64,
    #[serde(default)]
    wait: u64,
    limit: Option<usize>,
}

async fn get_events(State(sim): State<Sim>, Query(q): Query<EventsQuery>) -> Response {
    let limit = q.limit.unwrap_or(10_000).clamp(1, 100_000);
    // Long polls are bounded so a forgotten reader never pins a connection for ever.
    let wait = Duration::from_millis(q.wait.min(30_000));
    let events = if wait.is_zero() {
        sim.events.since(q.since, limit)
    } else {
        sim.events.wait_since(q.since, limit, wait).await
    };
    let mut body = String::new();
    for e in events {
        // Serialising our own plain struct cannot fail.
        body.push_str(&serde_json::to_string(&e).unwrap_or_default());
        body.push('\n');
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClockMode;
    use crate::DEFAULT_ORIGIN;

    #[test]
    fn html_is_escaped_for_content_and_attributes() {
        assert_eq!(
            escape_html(r#"<a href="x">O'Neil & co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }

    #[test]
    fn targets_parse_as_offsets_or_times() {
        let h = Duration::from_secs(3600);
        assert_eq!(
            parse_target("+01:00:00", DEFAULT_ORIGIN).unwrap(),
            DEFAULT_ORIGIN.plus(h)
        );
        assert_eq!(
            parse_target("60m", DEFAULT_ORIGIN).unwrap(),
            DEFAULT_ORIGIN.plus(h)
        );
        assert_eq!(
            parse_target("2025-01-01T01:00:00Z", DEFAULT_ORIGIN).unwrap(),
            DEFAULT_ORIGIN.plus(h)
        );
        assert!(parse_target("soon", DEFAULT_ORIGIN).is_err());
    }

    async fn post(sim: &Sim, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let resp = routes(sim.clone())
            .oneshot(
                axum::http::Request::post("/_sim/clock")
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_scaled_clock_pauses_resumes_and_changes_speed_over_http() {
        let sim = Sim::new(ClockMode::Scaled(60.0));
        let (status, doc) = post(&sim, json!({"pause": true})).await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        assert_eq!(
            (doc["paused"].clone(), doc["speed"].clone()),
            (json!(true), json!(60.0))
        );
        let (status, doc) = post(&sim, json!({"speed": 3600, "pause": false})).await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        assert_eq!(
            (doc["paused"].clone(), doc["speed"].clone()),
            (json!(false), json!(3600.0))
        );
        assert_eq!(doc["mode"], "scaled:60");

        let (status, doc) = post(&sim, json!({"speed": -2})).await;
        assert_eq!(
            (status, doc["code"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("BadSpeed"))
        );
        let (status, doc) = post(&sim, json!({"by": "10m"})).await;
        assert_eq!(
            (status, doc["code"].clone()),
            (StatusCode::CONFLICT, json!("NotManual"))
        );
        assert!(doc["message"].as_str().unwrap().contains("pause"), "{doc}");
        let (status, doc) = post(&sim, json!({"by": "10m", "pause": true})).await;
        assert_eq!(
            (status, doc["code"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("BadRequest"))
        );
        assert!(!sim.clock.is_paused(), "a refused request changes nothing");
        let paced: Vec<String> = sim
            .events
            .since(0, 100)
            .into_iter()
            .filter(|e| e.kind == "clock_paced")
            .map(|e| e.detail)
            .collect();
        assert_eq!(
            paced,
            [
                "clock paused (runs at 60x when resumed)",
                "clock running at 3600x"
            ]
        );
    }

    #[tokio::test]
    async fn a_manual_clock_refuses_pause_and_speed_and_says_how_it_moves() {
        let sim = Sim::manual();
        let (status, doc) = post(&sim, json!({"pause": true})).await;
        assert_eq!(
            (status, doc["code"].clone()),
            (StatusCode::CONFLICT, json!("NotScaled"))
        );
        assert!(
            doc["message"].as_str().unwrap().contains("stands still"),
            "{doc}"
        );
        let (status, doc) = post(&sim, json!({"by": "10m"})).await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        assert_eq!(
            (doc["elapsed"].clone(), doc["speed"].clone()),
            (json!("+00:10:00"), json!(null))
        );
        // Far past anything the clock holds: refused by name, never a panic.
        for to in ["+1e300:00:00", "+99999999999999:00:00"] {
            let (status, doc) = post(&sim, json!({ "to": to })).await;
            assert_eq!(
                (status, doc["code"].clone()),
                (StatusCode::UNPROCESSABLE_ENTITY, json!("BadTime"))
            );
            assert!(doc["message"].as_str().unwrap().contains(to), "{doc}");
        }
        let (status, doc) = post(&sim, json!({"by": "99999999h"})).await;
        assert_eq!(
            (status, doc["code"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("BadDuration"))
        );
        let (status, doc) = post(&sim, json!({"faster": true})).await;
        assert_eq!(
            (status, doc["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("BadRequest"))
        );
        assert!(doc["message"].as_str().unwrap().contains("faster"), "{doc}");
    }
}
