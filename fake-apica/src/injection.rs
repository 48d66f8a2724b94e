//! Scripted faults at work: which are active, what each request gets, and the clock timers that mark
//! every window's edges (so the runner steps to them and the timeline shows them).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sim_core::{NewEvent, SimTime, TimerId, format_duration, format_offset};

use crate::backend::{FakeApica, SOURCE};
use crate::error::{ApiError, retry_after_secs};
use crate::fault::{Fault, FaultId, FaultKind, FaultSpecError, LostTarget, MAX_LATENCY};
use crate::loadtest::LoadTest;

/// A rate limit's current fixed window of real time.
struct RateWindow {
    started: Instant,
    served: u32,
}

struct Entry {
    fault: Fault,
    timers: Vec<TimerId>,
    window: Option<RateWindow>,
}

/// The faults in force, and the seeded randomness of `error_rate`.
pub(crate) struct Faults {
    entries: BTreeMap<FaultId, Entry>,
    next_id: u64,
    rng: StdRng,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            entries: BTreeMap::new(),
            next_id: 1,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn active(&self, now: SimTime) -> impl Iterator<Item = (&FaultId, &Fault)> {
        self.entries
            .iter()
            .map(|(id, e)| (id, &e.fault))
            .filter(move |(_, f)| f.is_active(now))
    }

    /// The longest slow start in force: how late a test created now starts.
    pub fn slow_start_delay(&self, now: SimTime) -> Duration {
        self.active(now)
            .filter_map(|(_, f)| match f.kind {
                FaultKind::SlowStart(d) => Some(d),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }

    /// Whether a lost-test fault hides `test` at `now`.
    pub fn is_lost(&self, test: &LoadTest, now: SimTime) -> bool {
        self.active(now).any(|(_, f)| match &f.kind {
            FaultKind::LostTest(LostTarget::All) => true,
            FaultKind::LostTest(LostTarget::JobId(id)) => *id == test.job_id,
            FaultKind::LostTest(LostTarget::RunnableFile(file)) => *file == test.runnable_file,
            _ => false,
        })
    }

    /// Real time every API request waits now (latency faults add up, to at most [`MAX_LATENCY`]).
    fn latency(&self, now: SimTime) -> Duration {
        self.active(now)
            .filter_map(|(_, f)| match f.kind {
                FaultKind::Latency(d) => Some(d),
                _ => None,
            })
            .sum::<Duration>()
            // Several latency faults add up, but never past the cap one fault may have.
            .min(MAX_LATENCY)
    }

    /// The fault that refuses a request arriving now, if any: outages first, then rate limits (which
    /// count only requests they let through), then error rates.
    fn refuse(&mut self, now: SimTime, origin: SimTime) -> Option<(FaultId, ApiError)> {
        let active: Vec<FaultId> = self.active(now).map(|(id, _)| *id).collect();
        for id in &active {
            if let Some(Entry { fault, .. }) = self.entries.get(id)
                && fault.kind == FaultKind::Outage
            {
                let until = fault.until.map_or_else(
                    || "further notice".to_string(),
                    |u| format_offset(u.since(origin)),
                );
                return Some((*id, ApiError::Outage { until }));
            }
        }
        let real_now = Instant::now();
        for id in &active {
            let Some(entry) = self.entries.get_mut(id) else {
                continue;
            };
            let FaultKind::RateLimit { limit, per } = entry.fault.kind else {
                continue;
            };
            let window = entry.window.get_or_insert(RateWindow {
                started: real_now,
                served: 0,
            });
            if real_now.duration_since(window.started) >= per {
                *window = RateWindow {
                    started: real_now,
                    served: 0,
                };
            }
            if window.served >= limit {
                let wait = per.saturating_sub(real_now.duration_since(window.started));
                return Some((
                    *id,
                    ApiError::RateLimited {
                        limit,
                        per: format_duration(per),
                        retry_after_secs: retry_after_secs(wait),
                    },
                ));
            }
            window.served += 1;
        }
        for id in &active {
            let Some(Entry { fault, .. }) = self.entries.get(id) else {
                continue;
            };
            if let FaultKind::ErrorRate { rate, status } = fault.kind {
                // One draw per request per error-rate fault, so a seed replays the same failures.
                let draw: f64 = self.rng.random();
                if draw < rate {
                    return Some((*id, ApiError::Injected(status)));
                }
            }
        }
        None
    }
}

impl FakeApica {
    /// Adds a fault and schedules its window's edges on the clock. Refuses a fault whose numbers make
    /// no sense (a rate above 1, a window that ends before it starts, ...).
    pub fn add_fault(&self, fault: Fault) -> Result<FaultId, FaultSpecError> {
        fault.validate()?;
        let clock = &self.shared.sim.clock;
        let now = clock.now();
        let (id, event) = {
            let mut st = self.lock();
            let id = FaultId(st.faults.next_id);
            st.faults.next_id += 1;
            let mut timers = Vec::new();
            for (edge, at) in [("started", fault.from), ("ended", fault.until)] {
                let Some(at) = at.filter(|at| *at > now) else {
                    continue;
                };
                let weak = self.weak();
                let kind = fault.kind.name();
                let label = format!(
                    "apica fault {id} ({kind}) {}",
                    if edge == "started" { "starts" } else { "ends" }
                );
                timers.push(clock.schedule(at, label, move |_| {
                    if let Some(apica) = FakeApica::from_weak(&weak) {
                        apica.on_fault_edge(id, edge);
                    }
                }));
            }
            let doc = fault.to_json(id, clock);
            st.faults.entries.insert(
                id,
                Entry {
                    fault,
                    timers,
                    window: None,
                },
            );
            let event = NewEvent::new(SOURCE, sim_core::EventKind::FaultAdded)
                .detail(format!("fault {id} added: {doc}"))
                .data(doc);
            (id, event)
        };
        self.record(vec![event]);
        Ok(id)
    }

    fn on_fault_edge(&self, id: FaultId, edge: &'static str) {
        let doc = {
            let st = self.lock();
            match st.faults.entries.get(&id) {
                Some(e) => e.fault.to_json(id, &self.shared.sim.clock),
                None => return,
            }
        };
        let kind = doc["kind"].as_str().unwrap_or("fault").to_string();
        self.record(vec![
            NewEvent::new(
                SOURCE,
                if edge == "started" {
                    sim_core::EventKind::FaultStarted
                } else {
                    sim_core::EventKind::FaultEnded
                },
            )
            .detail(format!("fault {id} ({kind}) {edge}"))
            .data(doc),
        ]);
    }

    /// Removes one fault (and its pending window timers); `false` if there was none with that id.
    pub fn remove_fault(&self, id: FaultId) -> bool {
        let removed = self.lock().faults.entries.remove(&id);
        match removed {
            Some(entry) => {
                for t in entry.timers {
                    self.shared.sim.clock.cancel(t);
                }
                self.record(vec![
                    NewEvent::new(SOURCE, sim_core::EventKind::FaultRemoved)
                        .detail(format!("fault {id} ({}) removed", entry.fault.kind.name()))
                        .data(json!({"id": id.0})),
                ]);
                true
            }
            None => false,
        }
    }

    /// Removes every fault; returns how many there were.
    pub fn clear_faults(&self) -> usize {
        let ids: Vec<FaultId> = self.lock().faults.entries.keys().copied().collect();
        ids.into_iter().filter(|id| self.remove_fault(*id)).count()
    }

    /// The faults in force (active or waiting for their window), by id.
    pub fn faults(&self) -> Vec<(FaultId, Fault)> {
        self.lock()
            .faults
            .entries
            .iter()
            .map(|(id, e)| (*id, e.fault.clone()))
            .collect()
    }

    /// The faults in their admin JSON form.
    pub fn faults_json(&self) -> Vec<serde_json::Value> {
        let clock = &self.shared.sim.clock;
        self.faults()
            .iter()
            .map(|(id, f)| f.to_json(*id, clock))
            .collect()
    }

    /// Real time a request arriving now must wait (latency faults).
    pub(crate) fn injected_latency(&self) -> Duration {
        let now = self.now();
        self.lock().faults.latency(now)
    }

    /// The error a fault answers a request of `operation` with, if one does; records `fault_injected`.
    pub(crate) fn injected_failure(&self, operation: &str) -> Option<ApiError> {
        let clock = &self.shared.sim.clock;
        let (id, error) = self.lock().faults.refuse(clock.now(), clock.origin())?;
        self.record(vec![
            NewEvent::new(SOURCE, sim_core::EventKind::FaultInjected)
                .detail(format!(
                    "{operation} answered {} by fault {id}: {error}",
                    error.status().as_u16()
                ))
                .data(json!({
                    "faultId": id.0,
                    "operation": operation,
                    "status": error.status().as_u16(),
                    "code": error.code(),
                })),
        ]);
        Some(error)
    }

    /// Records that a lost-test fault answered 404 for `job_id`.
    pub(crate) fn record_lost(&self, operation: &str, job_id: u64) {
        self.record(vec![
            NewEvent::new(SOURCE, sim_core::EventKind::FaultInjected)
                .detail(format!("{operation} answered 404 for test {job_id}: lost by a lost_test fault"))
                .data(json!({"operation": operation, "status": 404, "code": "UnknownTest", "jobId": job_id})),
        ]);
    }
}
