//! The pages a person opens: `GET /jobs/{jobId}` (the Details link target) and `GET /` (every test).
//! Plain server-rendered HTML; every value that came from a client is escaped.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sim_core::{ClockMode, SimTime, format_duration, format_offset};

use crate::backend::FakeApica;
use crate::loadtest::{TestStatus, TestView};

/// The page routes.
pub(crate) fn routes(apica: FakeApica) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/jobs", get(index))
        .route("/jobs/{job_id}", get(details))
        .with_state(apica)
}

/// Escapes text for HTML element content and quoted attribute values.
pub use sim_core::http::escape_html as escape;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:48rem;color:#222}\
table{border-collapse:collapse}th,td{text-align:left;padding:.3rem .8rem .3rem 0;vertical-align:top}\
.status{display:inline-block;padding:.2rem .6rem;border-radius:.3rem;font-weight:bold;color:#fff}\
.running{background:#1f6feb}.passed{background:#1a7f37}.failed{background:#cf222e}.aborted{background:#6e7781}\
progress{width:24rem;max-width:100%;vertical-align:middle}.muted{color:#666}";

fn page(title: &str, refresh: bool, body: &str) -> String {
    let refresh = if refresh {
        "<meta http-equiv=\"refresh\" content=\"10\">"
    } else {
        ""
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}<title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

impl FakeApica {
    /// A sim time as the pages show it: RFC 3339 and the timeline stamp.
    fn stamp(&self, t: SimTime) -> String {
        format!(
            "{} ({})",
            t.rfc3339(),
            format_offset(t.since(self.sim().clock.origin()))
        )
    }

    fn clock_line(&self) -> String {
        let clock = &self.sim().clock;
        let mode = match clock.mode() {
            ClockMode::Manual => "manual clock".to_string(),
            _ if clock.is_paused() => {
                format!("scaled:{} clock, paused", clock.speed().unwrap_or(0.0))
            }
            ClockMode::Scaled(_) => format!("scaled:{} clock", clock.speed().unwrap_or(0.0)),
            other => format!("{other} clock"),
        };
        format!(
            "<p class=\"muted\">Simulated time now: {} &middot; {mode}</p>",
            escape(&self.stamp(clock.now()))
        )
    }

    /// The details page of one test.
    pub fn render_details(&self, test: &TestView) -> String {
        let mut body = String::new();
        let status = test.status.as_str();
        let _ = write!(
            body,
            // One progress bar: the `progress` element (it is the page's progressbar for assistive technology too).
            "<h1>Load test {id}</h1>\n<p><span class=\"status {status}\" id=\"status\">{status}</span></p>\n\
             <p><progress value=\"{pc}\" max=\"100\">{pc}%</progress> <span id=\"percent\">{pc}% complete</span></p>\n\
             <p id=\"summary\">{summary}</p>\n<table>\n",
            id = test.job_id,
            pc = test.percent_complete,
            summary = escape(&test.summary),
        );
        let mut row = |name: &str, value: &str| {
            let _ = writeln!(body, "<tr><th>{name}</th><td>{value}</td></tr>");
        };
        row("Job id", &test.job_id.to_string());
        row(
            "Preset",
            &format!(
                "{} ({})",
                escape(&test.preset),
                format_duration(test.duration)
            ),
        );
        row("Runnable file", &escape(&test.runnable_file));
        row(
            "Idempotency key",
            &test
                .idempotency_key
                .as_deref()
                .map_or("<span class=\"muted\">none</span>".into(), escape),
        );
        row("Created", &escape(&self.stamp(test.created_at)));
        row(
            "Started",
            &test.started_at.map_or(
                "<span class=\"muted\">not yet (slow start)</span>".into(),
                |t| escape(&self.stamp(t)),
            ),
        );
        match test.finished_at {
            Some(t) => row("Finished", &escape(&self.stamp(t))),
            None => row("Ends", &escape(&self.stamp(test.ends_at))),
        }
        body.push_str("</table>\n");
        body.push_str(&self.clock_line());
        body.push_str("\n<p><a href=\"/\">All tests</a></p>");
        page(
            &format!("Load test {}: {status}", test.job_id),
            test.status == TestStatus::Running,
            &body,
        )
    }

    /// The page listing every visible test.
    pub fn render_index(&self) -> String {
        let mut body = String::from("<h1>Load tests</h1>\n");
        let tests: Vec<TestView> = self
            .tests()
            .into_iter()
            .filter(|t| self.is_visible(t.job_id))
            .collect();
        if tests.is_empty() {
            body.push_str("<p class=\"muted\">No load tests yet.</p>\n");
        } else {
            body.push_str("<table>\n<tr><th>Job id</th><th>Status</th><th>Progress</th><th>Preset</th><th>Runnable file</th></tr>\n");
            for t in &tests {
                let status = t.status.as_str();
                let _ = writeln!(
                    body,
                    "<tr><td><a href=\"/jobs/{id}\">{id}</a></td><td><span class=\"status {status}\">{status}</span></td><td>{pc}%</td><td>{preset}</td><td>{file}</td></tr>",
                    id = t.job_id,
                    pc = t.percent_complete,
                    preset = escape(&t.preset),
                    file = escape(&t.runnable_file),
                );
            }
            body.push_str("</table>\n");
        }
        body.push_str(&self.clock_line());
        page(
            "Load tests",
            tests.iter().any(|t| t.status == TestStatus::Running),
            &body,
        )
    }
}

fn not_found(apica: &FakeApica, what: &str) -> Response {
    let body = format!(
        "<h1>Load test not found</h1>\n<p>There is no load test <code>{}</code> on this backend.</p>\n{}\n<p><a href=\"/\">All tests</a></p>",
        escape(what),
        apica.clock_line()
    );
    (
        StatusCode::NOT_FOUND,
        Html(page("Load test not found", false, &body)),
    )
        .into_response()
}

async fn details(
    State(apica): State<FakeApica>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let _request = apica.sim().activity.begin(None, "apica.details_page");
    let Ok(Path(text)) = path else {
        return not_found(&apica, "(unreadable id)");
    };
    let Ok(job_id) = text.trim().parse::<u64>() else {
        return not_found(&apica, &text);
    };
    // The page shows what the API would: a lost test is not found here either.
    match apica.get_test(job_id) {
        Ok(test) => Html(apica.render_details(&test)).into_response(),
        Err(_) => not_found(&apica, &text),
    }
}

async fn index(State(apica): State<FakeApica>) -> Response {
    let _request = apica.sim().activity.begin(None, "apica.index_page");
    Html(apica.render_index()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_details_page_draws_one_progress_bar() {
        let apica = FakeApica::new(
            sim_core::Sim::manual(),
            crate::ApicaConfig::new(
                "t",
                ["half-hour=30m:passed".parse::<crate::Preset>().unwrap()],
            ),
        );
        let created = apica
            .create_test(&crate::request::CreateTest::new("half-hour", "a.jmx"))
            .unwrap();
        apica
            .sim()
            .clock
            .advance_by(std::time::Duration::from_secs(600))
            .unwrap();
        let html = apica.render_details(&apica.get_test(created.test.job_id).unwrap());
        assert_eq!(html.matches("<progress").count(), 1, "{html}");
        assert!(!html.contains("progressbar"), "{html}");
        assert!(
            html.contains(r#"<progress value="33" max="100">"#),
            "{html}"
        );
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
