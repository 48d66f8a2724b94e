//! The shared simulated clock and its timer queue.
//!
//! Every duration in the fakes (job timeout, ack window, continuation delay, load-test length, fault
//! windows) is a timer on one [`SimClock`]. In `manual` mode time moves only when told
//! ([`SimClock::advance_to`]), firing each due timer in order at its own timestamp; in `scaled:N` and `real`
//! modes a driver task ([`SimClock::spawn_driver`]) fires timers as real time passes. A `scaled` clock can
//! be paused, resumed and given another speed while it runs ([`SimClock::pause`], [`SimClock::set_speed`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::Notify;

use crate::time::{DEFAULT_ORIGIN, SimTime};

/// The slowest a scaled clock may run: a thousandth of real time.
pub const MIN_SPEED: f64 = 0.001;
/// The fastest a scaled clock may run: a million times real time (a real day is 2,700 simulated years;
/// faster, the simulated calendar would run out within days).
pub const MAX_SPEED: f64 = 1_000_000.0;

/// Whether `speed` is a speed-up factor a scaled clock accepts.
fn speed_ok(speed: f64) -> bool {
    speed.is_finite() && (MIN_SPEED..=MAX_SPEED).contains(&speed)
}

/// How simulated time relates to real time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClockMode {
    /// Time moves only when told (the scenario runner, tests).
    Manual,
    /// Runs N times faster than real time, from `origin`; can be paused and re-speeded while it runs.
    Scaled(f64),
    /// Simulated time is the wall clock.
    Real,
}

impl FromStr for ClockMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "manual" => Ok(ClockMode::Manual),
            "real" => Ok(ClockMode::Real),
            other => {
                let factor = other.strip_prefix("scaled:").ok_or_else(|| {
                    format!("unknown clock mode `{other}`: use `manual`, `real` or `scaled:N` (e.g. `scaled:60`)")
                })?;
                match factor.parse::<f64>() {
                    Ok(n) if speed_ok(n) => Ok(ClockMode::Scaled(n)),
                    _ => Err(format!(
                        "`{factor}` in `{other}` is not a speed-up factor from {MIN_SPEED} to {MAX_SPEED} (e.g. `scaled:60`)"
                    )),
                }
            }
        }
    }
}

impl fmt::Display for ClockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockMode::Manual => f.write_str("manual"),
            ClockMode::Scaled(n) => write!(f, "scaled:{n}"),
            ClockMode::Real => f.write_str("real"),
        }
    }
}

/// Names a scheduled timer so it can be cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

/// What a timer runs when it fires; it gets the timer's own deadline as "now".
pub type TimerCallback = Box<dyn FnOnce(SimTime) + Send + 'static>;

struct Timer {
    label: String,
    callback: TimerCallback,
}

struct Inner {
    manual_now: SimTime,
    next_id: u64,
    timers: BTreeMap<(SimTime, TimerId), Timer>,
    deadlines: HashMap<TimerId, SimTime>,
}

/// Errors from moving the clock.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClockError {
    /// Only a manual clock can be moved by hand.
    #[error(
        "the clock runs in `{0}` mode; only a `manual` clock (`--clock manual`) is moved by hand{hint}",
        hint = if matches!(.0, ClockMode::Scaled(_)) { "; a scaled one can be paused or given another speed instead" } else { "" }
    )]
    NotManual(ClockMode),
    /// Time never moves backwards.
    #[error("cannot move the clock back from {now} to {target}")]
    Backwards { now: SimTime, target: SimTime },
    /// Only a scaled clock can be paused or given another speed.
    #[error(
        "the clock runs in `{0}` mode; only a `scaled:N` clock (`--clock scaled:N`) can be paused or given another speed{hint}",
        hint = if *.0 == ClockMode::Manual { " (a manual clock stands still until it is moved by hand)" } else { "" }
    )]
    NotScaled(ClockMode),
    /// A speed-up factor must be a number from [`MIN_SPEED`] to [`MAX_SPEED`].
    #[error("`{0}` is not a speed-up factor from 0.001 to 1000000 (e.g. 60)")]
    BadSpeed(f64),
}

/// How a running (`scaled`/`real`) clock maps real time to simulated time: simulated time was `sim` at the
/// real instant `real` and has run `speed` times faster since, unless paused.
#[derive(Clone, Copy, Debug)]
struct Pace {
    real: Instant,
    sim: SimTime,
    speed: f64,
    paused: bool,
}

impl Pace {
    fn now(&self) -> SimTime {
        if self.paused {
            return self.sim;
        }
        let sim = self.real.elapsed().as_secs_f64() * self.speed;
        self.sim
            .plus(Duration::try_from_secs_f64(sim).unwrap_or(Duration::MAX))
    }
}

/// The next timer due, for the runner's stepping and the console.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Deadline {
    /// When it fires.
    pub at: SimTime,
    /// What it is (e.g. `job 3 deadline`).
    pub label: String,
}

/// The simulated clock shared by both fakes and the runner.
pub struct SimClock {
    mode: ClockMode,
    origin: SimTime,
    pace: Mutex<Pace>,
    inner: Mutex<Inner>,
    // Serialises advances so timers fire in order even when two callers move the clock.
    advancing: Mutex<()>,
    changed: Notify,
}

impl fmt::Debug for SimClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimClock")
            .field("mode", &self.mode)
            .field("now", &self.now())
            .finish()
    }
}

impl SimClock {
    /// A clock in `mode` starting at the fixed origin (2025-01-01T00:00:00Z); a `real` clock starts at
    /// the wall clock's now.
    pub fn new(mode: ClockMode) -> Arc<Self> {
        let origin = match mode {
            ClockMode::Real => SimTime::from_system_time(SystemTime::now()),
            _ => DEFAULT_ORIGIN,
        };
        Self::with_origin(mode, origin)
    }

    /// A clock in `mode` whose time starts at `origin`.
    pub fn with_origin(mode: ClockMode, origin: SimTime) -> Arc<Self> {
        let speed = match mode {
            ClockMode::Scaled(n) => n,
            _ => 1.0,
        };
        Arc::new(SimClock {
            mode,
            origin,
            pace: Mutex::new(Pace {
                real: Instant::now(),
                sim: origin,
                speed,
                paused: false,
            }),
            inner: Mutex::new(Inner {
                manual_now: origin,
                next_id: 0,
                timers: BTreeMap::new(),
                deadlines: HashMap::new(),
            }),
            advancing: Mutex::new(()),
            changed: Notify::new(),
        })
    }

    /// A manual clock at the fixed origin: the usual choice for tests.
    pub fn manual() -> Arc<Self> {
        Self::new(ClockMode::Manual)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking timer callback must not wedge the clock for everybody else.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pace(&self) -> MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The clock's mode, as it was started (a scaled clock's current speed is [`SimClock::speed`]).
    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// The speed a running clock is set to (simulated seconds per real second), paused or not; `None`
    /// for a manual clock.
    pub fn speed(&self) -> Option<f64> {
        match self.mode {
            ClockMode::Manual => None,
            _ => Some(self.pace().speed),
        }
    }

    /// How many simulated seconds pass per real second right now: the speed, `0` while paused, `None`
    /// for a manual clock.
    pub fn rate(&self) -> Option<f64> {
        match self.mode {
            ClockMode::Manual => None,
            _ => {
                let pace = self.pace();
                Some(if pace.paused { 0.0 } else { pace.speed })
            }
        }
    }

    /// Whether a scaled clock is paused.
    pub fn is_paused(&self) -> bool {
        self.mode != ClockMode::Manual && self.pace().paused
    }

    /// Changes a scaled clock's speed from now on (simulated time does not jump); a paused clock stays
    /// paused and runs at the new speed when resumed.
    pub fn set_speed(&self, speed: f64) -> Result<(), ClockError> {
        if !matches!(self.mode, ClockMode::Scaled(_)) {
            return Err(ClockError::NotScaled(self.mode));
        }
        if !speed_ok(speed) {
            return Err(ClockError::BadSpeed(speed));
        }
        {
            let mut pace = self.pace();
            let now = pace.now();
            *pace = Pace {
                real: Instant::now(),
                sim: now,
                speed,
                paused: pace.paused,
            };
        }
        self.changed.notify_waiters();
        Ok(())
    }

    /// Stops a scaled clock where it is: no time passes and no timer fires until [`SimClock::resume`].
    pub fn pause(&self) -> Result<(), ClockError> {
        self.set_paused(true)
    }

    /// Lets a paused scaled clock run again from where it stopped.
    pub fn resume(&self) -> Result<(), ClockError> {
        self.set_paused(false)
    }

    fn set_paused(&self, paused: bool) -> Result<(), ClockError> {
        if !matches!(self.mode, ClockMode::Scaled(_)) {
            return Err(ClockError::NotScaled(self.mode));
        }
        {
            let mut pace = self.pace();
            if pace.paused != paused {
                let now = pace.now();
                *pace = Pace {
                    real: Instant::now(),
                    sim: now,
                    speed: pace.speed,
                    paused,
                };
            }
        }
        self.changed.notify_waiters();
        Ok(())
    }

    /// Where this clock's time started; timelines show offsets from here.
    pub fn origin(&self) -> SimTime {
        self.origin
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        match self.mode {
            ClockMode::Manual => self.lock().manual_now,
            ClockMode::Scaled(_) | ClockMode::Real => self.pace().now(),
        }
    }

    /// Simulated time elapsed since the origin.
    pub fn elapsed(&self) -> Duration {
        self.now().since(self.origin)
    }

    /// Schedules `callback` to run when simulated time reaches `at` (at once on the next advance or
    /// driver tick if `at` is already past). Timers at the same instant fire in scheduling order.
    pub fn schedule(
        &self,
        at: SimTime,
        label: impl Into<String>,
        callback: impl FnOnce(SimTime) + Send + 'static,
    ) -> TimerId {
        let id = {
            let mut inner = self.lock();
            let id = TimerId(inner.next_id);
            inner.next_id += 1;
            inner.timers.insert(
                (at, id),
                Timer {
                    label: label.into(),
                    callback: Box::new(callback),
                },
            );
            inner.deadlines.insert(id, at);
            id
        };
        self.changed.notify_waiters();
        id
    }

    /// Schedules `callback` `after` from now.
    pub fn schedule_in(
        &self,
        after: Duration,
        label: impl Into<String>,
        callback: impl FnOnce(SimTime) + Send + 'static,
    ) -> TimerId {
        self.schedule(self.now().plus(after), label, callback)
    }

    /// Cancels a timer; `false` if it already fired or was cancelled.
    pub fn cancel(&self, id: TimerId) -> bool {
        let removed = {
            let mut inner = self.lock();
            match inner.deadlines.remove(&id) {
                Some(at) => inner.timers.remove(&(at, id)).is_some(),
                None => false,
            }
        };
        if removed {
            self.changed.notify_waiters();
        }
        removed
    }

    /// The earliest pending timer.
    pub fn next_deadline(&self) -> Option<Deadline> {
        let inner = self.lock();
        inner.timers.iter().next().map(|((at, _), t)| Deadline {
            at: *at,
            label: t.label.clone(),
        })
    }

    /// How many timers are pending.
    pub fn pending_timers(&self) -> usize {
        self.lock().timers.len()
    }

    /// Pops the earliest timer due at or before `limit`, moving manual time up to its deadline.
    fn pop_due(&self, limit: SimTime) -> Option<(SimTime, Timer)> {
        let mut inner = self.lock();
        let key = *inner.timers.keys().next()?;
        if key.0 > limit {
            return None;
        }
        let timer = inner.timers.remove(&key)?;
        inner.deadlines.remove(&key.1);
        if self.mode == ClockMode::Manual && key.0 > inner.manual_now {
            inner.manual_now = key.0;
        }
        Some((key.0, timer))
    }

    /// Fires, in order, every timer due at or before `limit`, with the clock lock released while each
    /// callback runs (callbacks take the fakes' locks and schedule new timers). Returns how many fired.
    fn fire_until(&self, limit: SimTime) -> usize {
        let mut fired = 0;
        while let Some((at, timer)) = self.pop_due(limit) {
            tracing::trace!(target: "sim_core::clock", label = %timer.label, at = %at, "timer fired");
            (timer.callback)(at);
            fired += 1;
        }
        fired
    }

    /// Fires every timer that is due now. In `scaled`/`real` mode the fakes call this before handling a
    /// request, so timers due at an instant fire before requests handled at that instant.
    pub fn fire_due(&self) -> usize {
        let _guard = self.advancing.lock().unwrap_or_else(|e| e.into_inner());
        let fired = self.fire_until(self.now());
        if fired > 0 {
            self.changed.notify_waiters();
        }
        fired
    }

    /// Moves a manual clock to `target`, firing each due timer at its own timestamp on the way.
    pub fn advance_to(&self, target: SimTime) -> Result<SimTime, ClockError> {
        if self.mode != ClockMode::Manual {
            return Err(ClockError::NotManual(self.mode));
        }
        let _guard = self.advancing.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.now();
        if target < now {
            return Err(ClockError::Backwards { now, target });
        }
        self.fire_until(target);
        {
            let mut inner = self.lock();
            if target > inner.manual_now {
                inner.manual_now = target;
            }
        }
        self.changed.notify_waiters();
        Ok(target)
    }

    /// Moves a manual clock forward by `by`.
    pub fn advance_by(&self, by: Duration) -> Result<SimTime, ClockError> {
        self.advance_to(self.now().plus(by))
    }

    /// Moves a manual clock to the next timer and fires every timer due at that instant. Returns the new
    /// time, or `None` when no timer is pending (time does not move).
    pub fn advance_to_next(&self) -> Result<Option<SimTime>, ClockError> {
        if self.mode != ClockMode::Manual {
            return Err(ClockError::NotManual(self.mode));
        }
        match self.next_deadline() {
            Some(d) => self.advance_to(d.at.max(self.now())).map(Some),
            None => Ok(None),
        }
    }

    /// Resolves the next time the clock moves or its timer queue changes.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// Real time until simulated time reaches `at` in `scaled`/`real` mode (`None` for a manual or a
    /// paused clock: time does not move by itself).
    pub fn real_time_until(&self, at: SimTime) -> Option<Duration> {
        let sim = at.since(self.now());
        match self.rate() {
            Some(rate) if rate > 0.0 => {
                Some(Duration::try_from_secs_f64(sim.as_secs_f64() / rate).unwrap_or(Duration::MAX))
            }
            _ => None,
        }
    }

    /// In `scaled`/`real` mode, starts a task that fires timers as real time reaches them. A manual
    /// clock needs no driver; the call then returns `None`.
    pub fn spawn_driver(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.mode == ClockMode::Manual {
            return None;
        }
        let clock = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                let Some(c) = clock.upgrade() else { return };
                c.fire_due();
                // Listen before looking: a timer scheduled, or a pause, resume or new speed, between the
                // look and the wait wakes the driver at once.
                let changed = c.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let wait = c
                    .next_deadline()
                    .and_then(|d| c.real_time_until(d.at))
                    .unwrap_or(Duration::from_secs(1))
                    .clamp(Duration::from_millis(1), Duration::from_secs(1));
                // Holding the clock for at most one wait (<= 1 s) is harmless.
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = changed => {}
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    #[test]
    fn manual_clock_fires_timers_in_order_at_their_own_time() {
        let clock = SimClock::manual();
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let origin = clock.now();
        for (label, secs) in [("b", 20), ("a", 10), ("c", 30)] {
            let seen = seen.clone();
            let clock2 = clock.clone();
            clock.schedule(origin.plus(Duration::from_secs(secs)), label, move |at| {
                seen.lock().unwrap().push((
                    label,
                    at.since(origin).as_secs(),
                    clock2.now().since(origin).as_secs(),
                ));
            });
        }
        clock.advance_by(Duration::from_secs(25)).unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![("a", 10, 10), ("b", 20, 20)]);
        assert_eq!(clock.elapsed(), Duration::from_secs(25));
        assert_eq!(clock.next_deadline().unwrap().label, "c");
    }

    #[test]
    fn timers_scheduled_while_firing_fire_in_the_same_advance() {
        let clock = SimClock::manual();
        let fired = Arc::new(StdMutex::new(Vec::new()));
        let (c, f) = (clock.clone(), fired.clone());
        clock.schedule_in(Duration::from_secs(1), "first", move |at| {
            f.lock().unwrap().push(at);
            let f2 = f.clone();
            c.schedule(at.plus(Duration::from_secs(1)), "second", move |at| {
                f2.lock().unwrap().push(at)
            });
        });
        clock.advance_by(Duration::from_secs(10)).unwrap();
        let o = clock.origin();
        assert_eq!(
            *fired.lock().unwrap(),
            vec![
                o.plus(Duration::from_secs(1)),
                o.plus(Duration::from_secs(2))
            ]
        );
    }

    #[test]
    fn cancelled_timers_never_fire_and_next_moves_to_the_next_timer() {
        let clock = SimClock::manual();
        let id = clock.schedule_in(Duration::from_secs(5), "x", |_| {
            panic!("cancelled timer fired")
        });
        clock.schedule_in(Duration::from_secs(7), "y", |_| {});
        assert!(clock.cancel(id));
        assert!(!clock.cancel(id));
        assert_eq!(
            clock.advance_to_next().unwrap(),
            Some(clock.origin().plus(Duration::from_secs(7)))
        );
        assert_eq!(clock.advance_to_next().unwrap(), None);
    }

    #[test]
    fn time_never_moves_back_and_only_manual_clocks_advance() {
        let clock = SimClock::manual();
        clock.advance_by(Duration::from_secs(5)).unwrap();
        assert!(matches!(
            clock.advance_to(clock.origin()),
            Err(ClockError::Backwards { .. })
        ));
        let scaled = SimClock::new(ClockMode::Scaled(100.0));
        assert_eq!(
            scaled.advance_by(Duration::from_secs(1)),
            Err(ClockError::NotManual(ClockMode::Scaled(100.0)))
        );
    }

    #[test]
    fn modes_parse_with_clear_errors() {
        assert_eq!("manual".parse::<ClockMode>().unwrap(), ClockMode::Manual);
        assert_eq!(
            "scaled:60".parse::<ClockMode>().unwrap(),
            ClockMode::Scaled(60.0)
        );
        assert!("scaled:-1".parse::<ClockMode>().unwrap_err().contains("-1"));
        assert!("fast".parse::<ClockMode>().unwrap_err().contains("fast"));
    }

    #[tokio::test]
    async fn scaled_driver_fires_timers_in_real_time() {
        let clock = SimClock::new(ClockMode::Scaled(10_000.0));
        let _driver = clock.spawn_driver();
        let (tx, rx) = tokio::sync::oneshot::channel();
        clock.schedule_in(Duration::from_secs(10), "ten sim seconds", move |_| {
            let _ = tx.send(());
        });
        // 10 s simulated at 10,000x is 1 ms real; the bound only guards against a hang.
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_paused_clock_stands_still_fires_nothing_and_resumes_where_it_stopped() {
        let clock = SimClock::new(ClockMode::Scaled(10_000.0));
        let _driver = clock.spawn_driver();
        clock.pause().unwrap();
        assert!(clock.is_paused());
        assert_eq!((clock.rate(), clock.speed()), (Some(0.0), Some(10_000.0)));
        let stopped = clock.now();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        clock.schedule(
            stopped.plus(Duration::from_secs(1)),
            "one sim second",
            move |_| {
                let _ = tx.send(());
            },
        );
        // 50 ms of real time is 500 simulated seconds at this speed, were the clock running.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            clock.now(),
            stopped,
            "no simulated time passes while paused"
        );
        assert_eq!(clock.fire_due(), 0);
        assert!(rx.try_recv().is_err(), "no timer fires while paused");
        assert_eq!(
            clock.real_time_until(stopped.plus(Duration::from_secs(1))),
            None
        );

        let resumed = Instant::now();
        clock.resume().unwrap();
        let now = clock.now();
        // However long this thread was held up: no more than the real time since the resume, sped up.
        let bound = Duration::from_secs_f64(resumed.elapsed().as_secs_f64() * 10_000.0);
        assert!(!clock.is_paused());
        assert!(now >= stopped, "time resumes from where it stopped");
        assert!(
            now.since(stopped) <= bound + Duration::from_millis(1),
            "time does not jump by the paused interval: {:?} after resuming, at most {bound:?}",
            now.since(stopped)
        );
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn a_new_speed_applies_from_now_without_a_jump() {
        let clock = SimClock::new(ClockMode::Scaled(1.0));
        let started = Instant::now();
        let before = clock.now();
        clock.set_speed(3600.0).unwrap();
        assert_eq!(clock.speed(), Some(3600.0));
        assert_eq!(
            clock.mode(),
            ClockMode::Scaled(1.0),
            "the mode says how it started"
        );
        let at = clock.now();
        let hour = clock
            .real_time_until(at.plus(Duration::from_secs(3600)))
            .unwrap();
        let real = started.elapsed();
        // Changing speed moves no time: at most the real time spent here, at the new speed.
        let most = Duration::from_secs_f64(real.as_secs_f64() * 3600.0) + Duration::from_millis(1);
        assert!(
            at.since(before) <= most,
            "{:?} passed in {real:?}",
            at.since(before)
        );
        // At 3600x an hour of simulated time is a real second away, less what passed since `at`.
        assert!(hour <= Duration::from_secs(1), "{hour:?}");
        assert!(
            hour + real + Duration::from_millis(2) >= Duration::from_secs(1),
            "{hour:?} after {real:?}"
        );
        // A paused clock keeps its new speed for when it resumes.
        clock.pause().unwrap();
        clock.set_speed(60.0).unwrap();
        assert_eq!((clock.rate(), clock.speed()), (Some(0.0), Some(60.0)));
        clock.resume().unwrap();
        assert_eq!(clock.rate(), Some(60.0));
    }

    #[test]
    fn only_scaled_clocks_pause_or_change_speed() {
        for mode in [ClockMode::Manual, ClockMode::Real] {
            let clock = SimClock::new(mode);
            assert_eq!(clock.pause(), Err(ClockError::NotScaled(mode)));
            assert_eq!(clock.set_speed(2.0), Err(ClockError::NotScaled(mode)));
            assert!(!clock.is_paused());
        }
        assert_eq!(
            (SimClock::manual().speed(), SimClock::manual().rate()),
            (None, None)
        );
        assert_eq!(SimClock::new(ClockMode::Real).speed(), Some(1.0));
        let scaled = SimClock::new(ClockMode::Scaled(60.0));
        for bad in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            1e-15,
            1e9,
            MAX_SPEED * 2.0,
        ] {
            assert!(
                matches!(scaled.set_speed(bad), Err(ClockError::BadSpeed(_))),
                "{bad}"
            );
            assert!(
                format!("scaled:{bad}").parse::<ClockMode>().is_err(),
                "{bad}"
            );
        }
        scaled.set_speed(MAX_SPEED).unwrap();
        scaled.set_speed(MIN_SPEED).unwrap();
        assert_eq!(scaled.speed(), Some(MIN_SPEED));
        assert!(
            ClockError::NotScaled(ClockMode::Manual)
                .to_string()
                .contains("only a `scaled:N` clock")
        );
    }
}
