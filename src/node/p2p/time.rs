//! Time as the peer-to-peer state sees it: milliseconds on a monotonic clock that the caller
//! gives, never read here. The reactor counts from when it started; a simulator counts
//! virtual time. So every timeout (stalls, pings, backoff) can be tested without waiting.

use std::ops::Add;
use std::time::{Duration, Instant};

/// A point on the caller's monotonic clock, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(u64);

impl LocalTime {
    pub const fn from_millis(ms: u64) -> LocalTime {
        LocalTime(ms)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Now, as milliseconds since `start` (the reactor's clock).
    pub fn since(start: Instant) -> LocalTime {
        LocalTime(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// Time from `earlier` to this point; zero if `earlier` is later.
    pub fn duration_since(self, earlier: LocalTime) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for LocalTime {
    type Output = LocalTime;
    fn add(self, d: Duration) -> LocalTime {
        LocalTime(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_subtracts_without_wrapping() {
        let t = LocalTime::from_millis(1_500);
        assert_eq!((t + Duration::from_secs(2)).as_millis(), 3_500);
        assert_eq!(
            (t + Duration::from_secs(2)).duration_since(t),
            Duration::from_secs(2)
        );
        assert_eq!(t.duration_since(t + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(
            LocalTime::from_millis(u64::MAX) + Duration::from_secs(1),
            LocalTime::from_millis(u64::MAX)
        );
    }
}
