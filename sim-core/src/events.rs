//! The event log both fakes append to: a bounded ring buffer of JSON-serialisable events, stamped with
//! simulated and real time, with secrets redacted before they are stored.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::clock::SimClock;
use crate::kind::{EventKind, EventName, Source};
use crate::rule::Rule;
use crate::time::format_offset;

/// How bad an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something happened.
    Info,
    /// Allowed, but probably not what the agent meant.
    Warning,
    /// A rule was broken.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One entry of the log, in the schema of `docs/design.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log, from 1, never reused.
    pub seq: u64,
    /// Simulated milliseconds since the clock's origin.
    pub sim_ms: u64,
    /// Real milliseconds since the log was made.
    pub real_ms: u64,
    /// Who recorded it: `cp` (fake CodePipeline), `apica` (fake backend), `runner`, `sim`.
    pub source: Source,
    /// What happened, e.g. `job_queued`, `result_applied`, `test_created`.
    pub kind: EventKind,
    /// The action execution it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The job it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The replica (access key) that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The rule it concerns (`CP-TIMEOUT`, `AG-FINAL-TOKEN`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// How bad it is.
    pub severity: Severity,
    /// What happened, in words.
    pub detail: String,
    /// Structured facts for programs (progress, token, status, ...); never a secret.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

impl Event {
    /// `source.kind`, the name event-triggered steps match on (`cp.result_applied`).
    pub fn name(&self) -> EventName {
        EventName {
            source: self.source,
            kind: self.kind,
        }
    }

    /// The simulated offset as a timeline stamp (`+01:00:30`).
    pub fn stamp(&self) -> String {
        format_offset(Duration::from_millis(self.sim_ms))
    }
}

/// An event before the log stamps it.
#[derive(Clone, Debug)]
pub struct NewEvent {
    source: Source,
    kind: EventKind,
    execution: Option<String>,
    job: Option<String>,
    replica: Option<String>,
    rule: Option<Rule>,
    severity: Severity,
    detail: String,
    data: serde_json::Value,
}

impl NewEvent {
    /// An informational event from `source` of `kind`.
    pub fn new(source: Source, kind: EventKind) -> Self {
        NewEvent {
            source,
            kind,
            execution: None,
            job: None,
            replica: None,
            rule: None,
            severity: Severity::Info,
            detail: String::new(),
            data: serde_json::Value::Null,
        }
    }

    /// The action execution it concerns.
    pub fn execution(mut self, id: impl Into<String>) -> Self {
        self.execution = Some(id.into());
        self
    }

    /// The job it concerns.
    pub fn job(mut self, id: impl Into<String>) -> Self {
        self.job = Some(id.into());
        self
    }

    /// The replica (access key) that caused it.
    pub fn replica(mut self, key: impl Into<String>) -> Self {
        self.replica = Some(key.into());
        self
    }

    /// The replica, if known.
    pub fn replica_opt(mut self, key: Option<&str>) -> Self {
        self.replica = key.map(str::to_string);
        self
    }

    /// A broken rule: sets the rule id and the severity.
    pub fn rule(mut self, rule: Rule, severity: Severity) -> Self {
        self.rule = Some(rule);
        self.severity = severity;
        self
    }

    /// The severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// What happened, in words.
    pub fn detail(mut self, text: impl Into<String>) -> Self {
        self.detail = text.into();
        self
    }

    /// Structured facts for programs.
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

struct Ring {
    next_seq: u64,
    events: VecDeque<Event>,
}

/// The bounded, redacted event log shared by both fakes and the runner.
pub struct EventLog {
    clock: Arc<SimClock>,
    capacity: usize,
    real_origin: Instant,
    ring: Mutex<Ring>,
    secrets: RwLock<HashSet<String>>,
    listeners: RwLock<Vec<Listener>>,
    /// Held while listeners run: they see events one at a time, in `seq` order, even when two threads
    /// record at once.
    delivered: Mutex<u64>,
    turn: Condvar,
    appended: Notify,
}

/// A recording's turn to call the listeners; dropping it hands the turn to the next event.
struct Turn<'a> {
    delivered: MutexGuard<'a, u64>,
    seq: u64,
    turn: &'a Condvar,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.delivered = self.seq;
        self.turn.notify_all();
    }
}

/// Secrets shorter than this are not redacted: replacing every "a" would destroy the log.
const MIN_SECRET_LEN: usize = 4;
const REDACTED: &str = "***";

impl EventLog {
    /// A log of at most `capacity` events (older ones are dropped first), stamped from `clock`.
    pub fn new(clock: Arc<SimClock>, capacity: usize) -> Arc<Self> {
        Arc::new(EventLog {
            clock,
            capacity: capacity.max(1),
            real_origin: Instant::now(),
            ring: Mutex::new(Ring {
                next_seq: 1,
                events: VecDeque::new(),
            }),
            secrets: RwLock::new(HashSet::new()),
            listeners: RwLock::new(Vec::new()),
            delivered: Mutex::new(0),
            turn: Condvar::new(),
            appended: Notify::new(),
        })
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock that stamps events.
    pub fn clock(&self) -> &Arc<SimClock> {
        &self.clock
    }

    /// Registers a secret (a client token, an API token, a secret key): from now on it never appears in
    /// the log, replaced by `***`.
    pub fn add_secret(&self, secret: &str) {
        if secret.len() >= MIN_SECRET_LEN {
            self.secrets
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(secret.to_string());
        }
    }

    /// Registers a listener called synchronously, in order, for every appended event, before the
    /// recording request continues: the runner uses it to act exactly between two actions of an agent.
    /// Listeners see events one at a time and in `seq` order, even when two threads record at once; so a
    /// listener must not record an event itself (it would wait for its own turn).
    pub fn add_listener(&self, listener: impl Fn(&Event) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
    }

    fn redact(&self, text: &mut String) {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        for s in secrets.iter() {
            if text.contains(s.as_str()) {
                *text = text.replace(s.as_str(), REDACTED);
            }
        }
        redact_credentials(text);
    }

    /// `text` with every registered secret (and credential-looking text) redacted.
    pub fn redact_text(&self, text: &str) -> String {
        let mut t = text.to_string();
        self.redact(&mut t);
        t
    }

    /// Redacts every registered secret (and credential-looking text) from `value`'s strings: for any
    /// document a fake shows outside the job APIs.
    pub fn redact_value(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => self.redact(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_value(v)),
            _ => {}
        }
    }

    /// Appends an event, stamped now; returns it as stored (redacted, and its detail one line: a CR, LF
    /// or other control character a client sent, in a runnable file or a failure reason, is escaped, so
    /// it cannot forge a line of a human-format log or a timeline).
    pub fn record(&self, new: NewEvent) -> Event {
        let mut event = Event {
            seq: 0,
            sim_ms: self.clock.elapsed().as_millis() as u64,
            real_ms: self.real_origin.elapsed().as_millis() as u64,
            source: new.source,
            kind: new.kind,
            execution: new.execution,
            job: new.job,
            replica: new.replica,
            rule: new.rule,
            severity: new.severity,
            detail: escape_controls(new.detail),
            data: new.data,
        };
        self.redact(&mut event.detail);
        self.redact_value(&mut event.data);
        {
            let mut ring = self.ring();
            event.seq = ring.next_seq;
            ring.next_seq += 1;
            if ring.events.len() == self.capacity {
                ring.events.pop_front();
            }
            ring.events.push_back(event.clone());
        }
        let level = event.severity;
        tracing::debug!(target: "sim_core::events", seq = event.seq, name = %event.name(), ?level, detail = %event.detail);
        // Listeners run for one event at a time, in `seq` order: each recording waits for its turn.
        let mut delivered = self.delivered.lock().unwrap_or_else(|e| e.into_inner());
        while *delivered + 1 < event.seq {
            delivered = self.turn.wait(delivered).unwrap_or_else(|e| e.into_inner());
        }
        // The turn passes on even if a listener panics.
        let _turn = Turn {
            delivered,
            seq: event.seq,
            turn: &self.turn,
        };
        let listeners: Vec<Listener> = self
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for l in listeners {
            l(&event);
        }
        drop(_turn);
        self.appended.notify_waiters();
        event
    }

    /// Events with `seq > since`, oldest first, at most `limit`.
    pub fn since(&self, since: u64, limit: usize) -> Vec<Event> {
        let ring = self.ring();
        // Sequence numbers in the ring are contiguous, so the first wanted event is found by arithmetic,
        // not by scanning up to 100,000 events on every long poll.
        let first = ring.events.front().map_or(0, |e| e.seq);
        let skip = since.saturating_add(1).saturating_sub(first) as usize;
        ring.events.iter().skip(skip).take(limit).cloned().collect()
    }

    /// Every event still in the ring.
    pub fn all(&self) -> Vec<Event> {
        self.ring().events.iter().cloned().collect()
    }

    /// The last sequence number handed out (0 before the first event).
    pub fn last_seq(&self) -> u64 {
        self.ring().next_seq - 1
    }

    /// Events after `since`, waiting up to `wait` (real time) for the first one if there are none yet.
    pub async fn wait_since(&self, since: u64, limit: usize, wait: Duration) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.appended.notified();
            let found = self.since(since, limit);
            if !found.is_empty() {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }
}

/// Masks the credential parts of anything that looks like an Authorization header or a bearer token.
fn redact_credentials(text: &mut String) {
    for marker in ["Bearer ", "Signature=", "X-Amz-Security-Token="] {
        let mut from = 0;
        while let Some(pos) = text[from..].find(marker) {
            let start = from + pos + marker.len();
            let end = text[start..]
                .find(|c: char| c.is_whitespace() || c == ',' || c == '"' || c == '&')
                .map_or(text.len(), |e| start + e);
            if end > start && &text[start..end] != REDACTED {
                text.replace_range(start..end, REDACTED);
            }
            from = start + REDACTED.len().min(text.len() - start);
        }
    }
}

/// `text` with control characters escaped (`\n`, `\r`, `\t`, `\u{..}`); unchanged (no copy) when it has
/// none.
fn escape_controls(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(capacity: usize) -> Arc<EventLog> {
        EventLog::new(SimClock::manual(), capacity)
    }

    #[test]
    fn events_are_stamped_with_simulated_time_and_numbered() {
        let log = log(10);
        log.clock().advance_by(Duration::from_secs(3630)).unwrap();
        let e = log.record(
            NewEvent::new(Source::Cp, EventKind::JobQueued)
                .job("j-1")
                .execution("e-1")
                .detail("queued"),
        );
        assert_eq!(
            (e.seq, e.sim_ms, e.stamp().as_str()),
            (1, 3_630_000, "+01:00:30")
        );
        assert_eq!(e.name().to_string(), "cp.job_queued");
        let json = serde_json::to_value(&e).unwrap();
        for key in [
            "seq",
            "sim_ms",
            "real_ms",
            "source",
            "kind",
            "execution",
            "job",
            "severity",
            "detail",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["severity"], "info");
    }

    #[test]
    fn the_ring_is_bounded_and_keeps_the_newest() {
        let log = log(3);
        for i in 0..5 {
            log.record(NewEvent::new(Source::Cp, EventKind::JobCreated).detail(format!("{i}")));
        }
        let all = log.all();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(log.since(4, 10).len(), 1);
        assert_eq!(log.last_seq(), 5);
    }

    #[test]
    fn secrets_and_credentials_never_reach_the_log() {
        let log = log(10);
        log.add_secret("client-token-one");
        let e = log.record(
            NewEvent::new(Source::Cp, EventKind::JobCreated)
                .detail("token client-token-one; Authorization: Bearer abc123 x; AWS4 Signature=deadbeef")
                .data(serde_json::json!({"clientToken": "client-token-one"})),
        );
        assert!(!e.detail.contains("client-token-one"), "{}", e.detail);
        assert!(
            !e.detail.contains("abc123") && !e.detail.contains("deadbeef"),
            "{}",
            e.detail
        );
        assert_eq!(e.data["clientToken"], "***");
    }

    #[test]
    fn listeners_see_each_event_synchronously() {
        let log = log(10);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        log.add_listener(move |e| s.lock().unwrap().push(e.name().to_string()));
        log.record(NewEvent::new(Source::Apica, EventKind::TestCreated));
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["apica.test_created".to_string()]
        );
    }

    #[test]
    fn listeners_see_events_in_seq_order_when_threads_record_at_once() {
        // The runner keeps its copy of the log with a listener, and event-triggered steps count events:
        // an event delivered out of order was dropped from the copy, or counted before an earlier one.
        let log = log(100_000);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        log.add_listener(move |e| s.lock().unwrap().push(e.seq));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for _ in 0..2_000 {
                        log.record(NewEvent::new(Source::Cp, EventKind::JobCreated));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 8_000);
        let expected: Vec<u64> = (1..=8_000).collect();
        assert!(*seen == expected, "listeners saw events out of seq order");
    }

    #[test]
    fn a_panicking_listener_does_not_stop_later_events() {
        let log = log(10);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        log.add_listener(move |e| {
            s.lock().unwrap().push(e.seq);
            assert!(e.seq != 1, "a listener that panics on the first event");
        });
        let l2 = log.clone();
        let first = std::thread::spawn(move || {
            l2.record(NewEvent::new(Source::Cp, EventKind::JobCreated));
        })
        .join();
        assert!(first.is_err());
        log.record(NewEvent::new(Source::Cp, EventKind::JobCreated));
        assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    }

    #[tokio::test]
    async fn waiting_readers_wake_on_the_next_event() {
        let log = log(10);
        let l2 = log.clone();
        let reader =
            tokio::spawn(async move { l2.wait_since(0, 10, Duration::from_secs(10)).await });
        tokio::task::yield_now().await;
        log.record(NewEvent::new(Source::Cp, EventKind::JobCreated));
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);
        assert!(
            log.wait_since(1, 10, Duration::from_millis(10))
                .await
                .is_empty()
        );
    }

    #[test]
    fn a_detail_stays_one_line_whatever_a_client_sent() {
        let log = EventLog::new(SimClock::manual(), 16);
        let e = log
            .record(NewEvent::new(Source::Apica, EventKind::TestCreated).detail(
                "runnableFile `a.jmx\r\n2026-01-01T00:00:00Z  INFO forged line`\u{1b}[31m",
            ));
        assert!(
            !e.detail.contains('\n') && !e.detail.contains('\r') && !e.detail.contains('\u{1b}')
        );
        assert_eq!(
            e.detail,
            "runnableFile `a.jmx\\r\\n2026-01-01T00:00:00Z  INFO forged line`\\u{1b}[31m"
        );
    }
}
