//! The activity tracker: what the fakes are doing right now, per caller.
//!
//! The scenario runner moves a manual clock only when nothing is in flight, every live replica is parked
//! in a poll or has held its oldest job longer than the answer budget, and no replica is starting. The
//! fakes report those facts here: a [`RequestGuard`] per request (turned into a parked poll while an empty
//! poll waits), and the jobs each caller holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

#[derive(Default)]
struct Caller {
    in_flight: usize,
    parked: usize,
    requests: u64,
    last_request: Option<Instant>,
    last_operation: String,
    held: HashMap<String, Instant>,
}

#[derive(Default)]
struct Inner {
    in_flight: usize,
    parked: usize,
    callers: HashMap<String, Caller>,
    // Which caller holds each job, so a release needs only the job.
    holders: HashMap<String, String>,
}

/// Requests in flight, parked polls and held jobs, per caller (access key).
#[derive(Default)]
pub struct Activity {
    inner: Mutex<Inner>,
    changed: Notify,
}

/// One caller's state in an [`ActivitySnapshot`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CallerActivity {
    /// The access key the caller signs with.
    pub caller: String,
    /// Requests being handled now (parked polls excluded).
    pub in_flight: usize,
    /// Empty polls held open now.
    pub parked: usize,
    /// Requests seen in all.
    pub requests: u64,
    /// Real time since the caller's last request.
    #[serde(with = "millis_opt")]
    pub since_last_request: Option<Duration>,
    /// The operation of the last request.
    pub last_operation: String,
    /// Jobs the caller holds (dispatched or acknowledged, without a result yet).
    pub held_jobs: usize,
    /// Real time the oldest held job has been held.
    #[serde(with = "millis_opt")]
    pub oldest_hold: Option<Duration>,
}

/// A consistent view of the tracker.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ActivitySnapshot {
    /// Requests being handled across all callers (parked polls excluded).
    pub in_flight: usize,
    /// Parked polls across all callers.
    pub parked: usize,
    /// Per-caller detail, sorted by caller.
    pub callers: Vec<CallerActivity>,
}

impl ActivitySnapshot {
    /// The entry for `caller`, if it ever made a request or held a job.
    pub fn caller(&self, caller: &str) -> Option<&CallerActivity> {
        self.callers.iter().find(|c| c.caller == caller)
    }
}

mod millis_opt {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
}

impl Activity {
    /// A new, empty tracker.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        self.changed.notify_waiters();
    }

    /// Marks a request as started. `caller` is the access key (`None` for unsigned or admin requests,
    /// which count as in flight but belong to nobody). The request ends when the guard drops.
    pub fn begin(self: &Arc<Self>, caller: Option<&str>, operation: &str) -> RequestGuard {
        {
            let mut inner = self.lock();
            inner.in_flight += 1;
            if let Some(key) = caller {
                let c = inner.callers.entry(key.to_string()).or_default();
                c.in_flight += 1;
                c.requests += 1;
                c.last_request = Some(Instant::now());
                c.last_operation = operation.to_string();
            }
        }
        self.touch();
        RequestGuard {
            activity: self.clone(),
            caller: caller.map(str::to_string),
            parked: false,
        }
    }

    /// Records that `caller` holds `job` from now (dispatched to it or acknowledged by it).
    pub fn hold_job(&self, caller: &str, job: &str) {
        {
            let mut inner = self.lock();
            if let Some(prev) = inner.holders.insert(job.to_string(), caller.to_string())
                && let Some(c) = inner.callers.get_mut(&prev)
            {
                c.held.remove(job);
            }
            inner
                .callers
                .entry(caller.to_string())
                .or_default()
                .held
                .entry(job.to_string())
                .or_insert_with(Instant::now);
        }
        self.touch();
    }

    /// Records that `job` is held by nobody (it got a result, timed out or was offered again).
    pub fn release_job(&self, job: &str) {
        let released = {
            let mut inner = self.lock();
            match inner.holders.remove(job) {
                Some(caller) => {
                    if let Some(c) = inner.callers.get_mut(&caller) {
                        c.held.remove(job);
                    }
                    true
                }
                None => false,
            }
        };
        if released {
            self.touch();
        }
    }

    /// Forgets everything about `caller` (a replica that was stopped or killed).
    pub fn forget_caller(&self, caller: &str) {
        {
            let mut inner = self.lock();
            if let Some(c) = inner.callers.remove(caller) {
                for job in c.held.keys() {
                    inner.holders.remove(job);
                }
                // Requests still in flight keep their global count until their guards drop.
                inner.callers.insert(
                    caller.to_string(),
                    Caller {
                        in_flight: c.in_flight,
                        parked: c.parked,
                        ..Default::default()
                    },
                );
            }
        }
        self.touch();
    }

    /// A consistent view of everything tracked.
    pub fn snapshot(&self) -> ActivitySnapshot {
        let inner = self.lock();
        let now = Instant::now();
        let mut callers: Vec<CallerActivity> = inner
            .callers
            .iter()
            .map(|(key, c)| CallerActivity {
                caller: key.clone(),
                in_flight: c.in_flight,
                parked: c.parked,
                requests: c.requests,
                since_last_request: c.last_request.map(|t| now.duration_since(t)),
                last_operation: c.last_operation.clone(),
                held_jobs: c.held.len(),
                oldest_hold: c.held.values().min().map(|t| now.duration_since(*t)),
            })
            .collect();
        callers.sort_by(|a, b| a.caller.cmp(&b.caller));
        ActivitySnapshot {
            in_flight: inner.in_flight,
            parked: inner.parked,
            callers,
        }
    }

    /// Resolves at the next change (a request starts, ends, parks, or a job is held or released).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// A future that resolves at the next change; create it before checking a condition so no change
    /// between the check and the wait is missed.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

/// A request being handled; dropping it ends the request.
pub struct RequestGuard {
    activity: Arc<Activity>,
    caller: Option<String>,
    parked: bool,
}

impl RequestGuard {
    /// Marks the request as a parked poll (not "in flight") until [`RequestGuard::unpark`] or drop.
    pub fn park(&mut self) {
        if self.parked {
            return;
        }
        self.parked = true;
        self.shift(true);
    }

    /// Marks a parked poll as being handled again.
    pub fn unpark(&mut self) {
        if !self.parked {
            return;
        }
        self.parked = false;
        self.shift(false);
    }

    fn shift(&self, to_parked: bool) {
        {
            let mut inner = self.activity.lock();
            let (from, to) = if to_parked { (-1, 1) } else { (1, -1) };
            inner.in_flight = inner.in_flight.saturating_add_signed(from);
            inner.parked = inner.parked.saturating_add_signed(to);
            if let Some(c) = self.caller.as_ref().and_then(|k| inner.callers.get_mut(k)) {
                c.in_flight = c.in_flight.saturating_add_signed(from);
                c.parked = c.parked.saturating_add_signed(to);
            }
        }
        self.activity.touch();
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        {
            let mut inner = self.activity.lock();
            if self.parked {
                inner.parked = inner.parked.saturating_sub(1);
            } else {
                inner.in_flight = inner.in_flight.saturating_sub(1);
            }
            if let Some(c) = self.caller.as_ref().and_then(|k| inner.callers.get_mut(k)) {
                if self.parked {
                    c.parked = c.parked.saturating_sub(1);
                } else {
                    c.in_flight = c.in_flight.saturating_sub(1);
                }
            }
        }
        self.activity.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_parked_polls_are_counted_per_caller() {
        let a = Activity::new();
        let mut poll = a.begin(Some("AKID1"), "PollForJobs");
        let _ack = a.begin(Some("AKID2"), "AcknowledgeJob");
        assert_eq!(a.snapshot().in_flight, 2);
        poll.park();
        let s = a.snapshot();
        assert_eq!((s.in_flight, s.parked), (1, 1));
        assert_eq!(s.caller("AKID1").unwrap().parked, 1);
        assert_eq!(s.caller("AKID1").unwrap().last_operation, "PollForJobs");
        drop(poll);
        let s = a.snapshot();
        assert_eq!((s.in_flight, s.parked), (1, 0));
        assert_eq!(s.caller("AKID1").unwrap().requests, 1);
    }

    #[test]
    fn held_jobs_move_between_callers_and_are_released() {
        let a = Activity::new();
        a.hold_job("AKID1", "job-1");
        a.hold_job("AKID1", "job-2");
        assert_eq!(a.snapshot().caller("AKID1").unwrap().held_jobs, 2);
        a.hold_job("AKID2", "job-1");
        assert_eq!(a.snapshot().caller("AKID1").unwrap().held_jobs, 1);
        assert_eq!(a.snapshot().caller("AKID2").unwrap().held_jobs, 1);
        a.release_job("job-1");
        a.release_job("job-2");
        let s = a.snapshot();
        assert!(
            s.callers
                .iter()
                .all(|c| c.held_jobs == 0 && c.oldest_hold.is_none())
        );
    }

    #[test]
    fn forgetting_a_caller_drops_its_jobs_but_keeps_in_flight_counts_consistent() {
        let a = Activity::new();
        let req = a.begin(Some("AKID1"), "PollForJobs");
        a.hold_job("AKID1", "job-1");
        a.forget_caller("AKID1");
        assert_eq!(a.snapshot().caller("AKID1").unwrap().held_jobs, 0);
        drop(req);
        assert_eq!(a.snapshot().in_flight, 0);
    }
}
