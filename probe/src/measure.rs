//! Measuring protocol time from the outside: every call is stamped with the real instants it was sent
//! and answered, and a delay between two server-side events is bracketed by those stamps, then scaled to
//! the server's time (`--time-scale`: 1 against AWS, N against a fake on `--clock scaled:N`).

use std::time::{Duration, Instant};

use serde::Serialize;

/// When a call was sent and when its answer came back (real time). The server acted somewhere in between.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// Just before the request was sent.
    pub sent: Instant,
    /// Just after the answer arrived.
    pub got: Instant,
}

/// Runs `call` and stamps it.
pub async fn stamped<T>(call: impl std::future::Future<Output = T>) -> (T, Stamp) {
    let sent = Instant::now();
    let out = call.await;
    (
        out,
        Stamp {
            sent,
            got: Instant::now(),
        },
    )
}

/// A delay measured between a cause (a call whose handling started the delay) and the first call that saw
/// its effect, with the last call before that which did not see it.
///
/// The server handled `cause` at some instant C in `[cause.sent, cause.got]`, the call that saw the effect at
/// some H in `[hit.sent, hit.got]` with H >= C + delay, and the last call that did not see it at some M in
/// `[miss.sent, miss.got]` with M < C + delay. So `miss.sent - cause.got < delay <= hit.got - cause.sent`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    /// The estimate: the middle of the bounds, in the server's seconds.
    pub seconds: f64,
    /// Lower bound (exclusive), server seconds.
    pub lower_s: f64,
    /// Upper bound (inclusive), server seconds.
    pub upper_s: f64,
    /// `upper_s - lower_s`: how finely this run could tell.
    pub resolution_s: f64,
}

impl Interval {
    /// Brackets the delay from `cause` to `hit` (see the type's doc), `miss` being the last call in between
    /// that did not see the effect (none: the lower bound is 0). `scale` converts real seconds to the
    /// server's seconds.
    pub fn bracket(cause: Stamp, miss: Option<Stamp>, hit: Stamp, scale: f64) -> Interval {
        let secs = |later: Instant, earlier: Instant| {
            later.saturating_duration_since(earlier).as_secs_f64() * scale
        };
        let lower = miss.map_or(0.0, |m| secs(m.sent, cause.got));
        let upper = secs(hit.got, cause.sent).max(lower);
        Interval {
            seconds: round_ms((lower + upper) / 2.0),
            lower_s: round_ms(lower),
            upper_s: round_ms(upper),
            resolution_s: round_ms(upper - lower),
        }
    }

    /// The roundest duration inside the bounds (a whole hour, ten minutes, ... a millisecond): what the
    /// report's `profile` gives the fake. Any value inside the bounds fits the observation equally well.
    pub fn roundest(&self) -> Duration {
        const STEPS_MS: [u64; 12] = [
            3_600_000, 600_000, 300_000, 60_000, 30_000, 10_000, 5_000, 1_000, 500, 100, 10, 1,
        ];
        let lo = (self.lower_s * 1000.0).max(0.0);
        let hi = self.upper_s * 1000.0;
        for step in STEPS_MS {
            let k = (lo / step as f64).ceil();
            if k * step as f64 <= hi {
                return Duration::from_millis(k as u64 * step);
            }
        }
        Duration::from_millis((self.seconds.max(0.0) * 1000.0).round() as u64)
    }
}

/// A span of the server's time as the real time it takes at `scale`.
pub fn real_of(server: Duration, scale: f64) -> Duration {
    Duration::from_secs_f64(server.as_secs_f64() / scale)
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn bounds_bracket_the_delay_and_scale_to_server_time() {
        let t = Instant::now();
        let cause = Stamp {
            sent: at(t, 0),
            got: at(t, 10),
        };
        let miss = Stamp {
            sent: at(t, 1_990),
            got: at(t, 2_000),
        };
        let hit = Stamp {
            sent: at(t, 2_010),
            got: at(t, 2_020),
        };
        let i = Interval::bracket(cause, Some(miss), hit, 60.0);
        assert_eq!(i.lower_s, 118.8);
        assert_eq!(i.upper_s, 121.2);
        assert_eq!(i.seconds, 120.0);
        assert_eq!(i.roundest(), Duration::from_secs(120));
        let none = Interval::bracket(cause, None, hit, 1.0);
        assert_eq!(none.lower_s, 0.0);
        assert_eq!(none.roundest(), Duration::ZERO);
    }

    #[test]
    fn the_roundest_value_is_the_coarsest_step_inside_the_bounds() {
        let i = |lower_s, upper_s| Interval {
            seconds: (lower_s + upper_s) / 2.0,
            lower_s,
            upper_s,
            resolution_s: upper_s - lower_s,
        };
        assert_eq!(i(44.2, 45.9).roundest(), Duration::from_secs(45));
        assert_eq!(i(29.9, 31.0).roundest(), Duration::from_secs(30));
        assert_eq!(i(297.0, 302.0).roundest(), Duration::from_secs(300));
        assert_eq!(i(1.23, 1.24).roundest(), Duration::from_millis(1_230));
    }
}
