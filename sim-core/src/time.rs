//! Points and spans on the simulated time line.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in simulated time: milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(u64);

/// Where manual time starts, so runs are repeatable: 2025-01-01T00:00:00Z.
pub const DEFAULT_ORIGIN: SimTime = SimTime(1_735_689_600_000);

impl SimTime {
    /// A point `ms` milliseconds after the Unix epoch.
    pub const fn from_millis(ms: u64) -> Self {
        SimTime(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Seconds since the Unix epoch, as AWS JSON protocols send timestamps.
    pub fn epoch_seconds(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// The instant of a [`SystemTime`] (saturating at the epoch).
    pub fn from_system_time(t: SystemTime) -> Self {
        SimTime(
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        )
    }

    /// This point moved `d` later (saturating).
    pub fn plus(self, d: Duration) -> Self {
        SimTime(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: SimTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// RFC 3339 text, e.g. `2025-01-01T01:00:30Z`; past the year 9999, which RFC 3339 cannot write, the
    /// last instant it can.
    pub fn rfc3339(self) -> String {
        // 9999-12-31T23:59:59.999Z
        const LAST: u64 = 253_402_300_799_999;
        humantime::format_rfc3339_millis(SimTime(self.0.min(LAST)).to_system_time()).to_string()
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// Formats an offset from the clock's origin the way timelines show it: `+01:00:30`,
/// with milliseconds only when there are any (`+00:00:02.250`).
pub fn format_offset(offset: Duration) -> String {
    let ms = offset.as_millis();
    let (h, m, s, rest) = (
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000,
    );
    if rest == 0 {
        format!("+{h:02}:{m:02}:{s:02}")
    } else {
        format!("+{h:02}:{m:02}:{s:02}.{rest:03}")
    }
}

/// Parses a duration as people write it (`90m`, `2h`, `1h 30m`, `500ms`, `0s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write it like `90m`, `2h` or `30s`")
    })
}

/// Formats a duration compactly (`1h 30m`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_the_year_9999_are_written_as_its_last_instant_not_a_panic() {
        assert_eq!(
            SimTime::from_millis(u64::MAX).rfc3339(),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            DEFAULT_ORIGIN.plus(Duration::MAX),
            SimTime::from_millis(u64::MAX)
        );
    }

    #[test]
    fn offsets_are_formatted_as_timeline_stamps() {
        assert_eq!(format_offset(Duration::from_secs(3630)), "+01:00:30");
        assert_eq!(format_offset(Duration::from_millis(2250)), "+00:00:02.250");
        assert_eq!(format_offset(Duration::from_secs(6 * 3600)), "+06:00:00");
    }

    #[test]
    fn origin_is_new_year_2025() {
        assert_eq!(DEFAULT_ORIGIN.rfc3339(), "2025-01-01T00:00:00.000Z");
    }

    #[test]
    fn durations_parse_as_people_write_them() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("ninety").unwrap_err().contains("ninety"));
    }
}
