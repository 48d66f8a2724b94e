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

/// The longest span anything on the simulated clock may be given (a duration, an offset from the origin):
/// 100 years. Bigger numbers are typing mistakes, and refusing them here keeps time arithmetic far from
/// overflow everywhere else.
pub const MAX_SPAN: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Parses a duration as people write it (`90m`, `2h`, `1h 30m`, `500ms`, `0s`), at most [`MAX_SPAN`].
/// Every duration that comes from outside (scenario files, flags, the admin APIs) goes through here.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write it like `90m`, `2h` or `30s`")
    })?;
    if d > MAX_SPAN {
        return Err(format!(
            "`{text}` is longer than the longest span the simulator takes (100 years)"
        ));
    }
    Ok(d)
}

/// A span of simulated (or, for the harness's own bounds, real) time as people write it (`90m`), at most
/// [`MAX_SPAN`]. Deserialises from that text, naming the value when it is wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(Duration);

impl SimDuration {
    /// A span (capped at [`MAX_SPAN`]).
    pub fn new(d: Duration) -> Self {
        SimDuration(d.min(MAX_SPAN))
    }

    /// The span.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<SimDuration> for Duration {
    fn from(d: SimDuration) -> Duration {
        d.0
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl std::str::FromStr for SimDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(SimDuration)
    }
}

/// An offset from the clock's origin: a timeline stamp (`+01:00:00`, `+00:00:02.250`, hours:minutes:seconds)
/// or a duration (`90m`), at most [`MAX_SPAN`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimOffset(Duration);

impl SimOffset {
    /// An offset (capped at [`MAX_SPAN`]).
    pub fn new(d: Duration) -> Self {
        SimOffset(d.min(MAX_SPAN))
    }

    /// The span since the origin.
    pub fn get(self) -> Duration {
        self.0
    }

    /// The point it names on a clock whose origin is `origin`.
    pub fn from_origin(self, origin: SimTime) -> SimTime {
        origin.plus(self.0)
    }
}

impl fmt::Display for SimOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_offset(self.0))
    }
}

impl std::str::FromStr for SimOffset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let body = t.strip_prefix('+').unwrap_or(t);
        if !body.contains(':') {
            return parse_duration(body).map(SimOffset).map_err(|_| {
                format!("`{text}` is not an offset: write it like `+01:00:00` or `90m`")
            });
        }
        let bad = || {
            format!(
                "`{text}` is not an offset: write it like `+01:00:00` (hours:minutes:seconds) or `90m`"
            )
        };
        let parts: Vec<&str> = body.split(':').collect();
        let [h, m, s] = parts.as_slice() else {
            return Err(bad());
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
        if !digits(h) || !digits(m) || !digits(sec) || !(frac.is_empty() || digits(frac)) {
            return Err(bad());
        }
        let too_long = || format!("`{text}` is further than the simulator goes (100 years)");
        let num = |p: &str| p.parse::<u64>().map_err(|_| too_long());
        let mut ms = num(h)?
            .checked_mul(3_600_000)
            .and_then(|x| x.checked_add(num(m).ok()?.checked_mul(60_000)?))
            .and_then(|x| x.checked_add(num(sec).ok()?.checked_mul(1000)?))
            .ok_or_else(too_long)?;
        if !frac.is_empty() {
            // Milliseconds: the first three digits of the fraction.
            let padded = format!("{:0<3}", &frac[..frac.len().min(3)]);
            ms = ms.saturating_add(padded.parse::<u64>().map_err(|_| bad())?);
        }
        let d = Duration::from_millis(ms);
        if d > MAX_SPAN {
            return Err(too_long());
        }
        Ok(SimOffset(d))
    }
}

/// Serde as the text people write (`90m`, `+01:00:00`), through `FromStr` and `Display`, so a wrong value
/// is named in the parser's message.
macro_rules! serde_as_text {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}

serde_as_text!(SimDuration, SimOffset);

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
    fn offsets_parse_as_stamps_or_durations_and_are_bounded() {
        let o = |t: &str| t.parse::<SimOffset>().map(SimOffset::get);
        assert_eq!(o("+01:00:00").unwrap(), Duration::from_secs(3600));
        assert_eq!(o("01:30:00").unwrap(), Duration::from_secs(5400));
        assert_eq!(o("+00:00:02.25").unwrap(), Duration::from_millis(2250));
        assert_eq!(o("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            "+01:00:30".parse::<SimOffset>().unwrap().to_string(),
            "+01:00:30"
        );
        for bad in [
            "+1e300:00:00",
            "+99999999999999999999:00:00",
            "+1:2",
            "-01:00:00",
            "+a:00:00",
        ] {
            assert!(o(bad).unwrap_err().contains(bad), "{bad}");
        }
        assert!(o("+900000:00:00").unwrap_err().contains("100 years"));
        assert!(
            parse_duration("1000000h")
                .unwrap_err()
                .contains("100 years")
        );
    }

    #[test]
    fn durations_parse_as_people_write_them() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("ninety").unwrap_err().contains("ninety"));
    }
}
