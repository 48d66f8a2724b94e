//! The simulated world both fakes and the scenario runner share: one [`SimClock`] with its timer queue,
//! one [`Activity`] tracker and one [`EventLog`]. See `docs/design.md`, "Simulated time" and "The event log".

pub mod activity;
pub mod clock;
pub mod events;
pub mod guard;
pub mod http;
pub mod kind;
pub mod rule;
pub mod serve;
pub mod signal;
pub mod time;

use std::sync::Arc;

pub use activity::{Activity, ActivitySnapshot, CallerActivity, RequestGuard};
pub use clock::{ClockError, ClockMode, Deadline, MAX_SPEED, MIN_SPEED, SimClock, TimerId};
pub use events::{Event, EventLog, NewEvent, Severity};
pub use guard::AdminGuard;
pub use kind::{EventKind, EventName, Source};
pub use rule::Rule;
pub use signal::shutdown_signal;
pub use time::{
    DEFAULT_ORIGIN, MAX_SPAN, SimDuration, SimOffset, SimTime, format_duration, format_offset,
    parse_duration,
};

/// Default number of events the log keeps.
pub const DEFAULT_EVENT_CAPACITY: usize = 100_000;

/// The three shared pieces, cheap to clone: hand one to each fake.
#[derive(Clone)]
pub struct Sim {
    /// The simulated clock.
    pub clock: Arc<SimClock>,
    /// Requests in flight, parked polls, held jobs.
    pub activity: Arc<Activity>,
    /// The event log.
    pub events: Arc<EventLog>,
}

impl Sim {
    /// A world on a clock in `mode`, with an event log of the default capacity.
    pub fn new(mode: ClockMode) -> Self {
        Self::with_clock(SimClock::new(mode))
    }

    /// A world on a manual clock at the fixed origin.
    pub fn manual() -> Self {
        Self::new(ClockMode::Manual)
    }

    /// A world on an existing clock.
    pub fn with_clock(clock: Arc<SimClock>) -> Self {
        Sim {
            events: EventLog::new(clock.clone(), DEFAULT_EVENT_CAPACITY),
            activity: Activity::new(),
            clock,
        }
    }
}
