//! Rate limits on what a peer sends, I/O-free: a token bucket told the time, and which
//! messages count against a peer's budget of unrequested messages. A live node's connection
//! tasks use them with the monotonic clock; the simulator uses them in virtual time.

use super::time::LocalTime;
use crate::net::wire::Message;
use std::time::Duration;

/// A token bucket: `per_sec` tokens a second, at most `burst` saved.
#[derive(Clone, Debug)]
pub struct Bucket {
    tokens: u64,
    burst: u64,
    per_sec: u64,
    last: LocalTime,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn new(per_sec: u64, burst: u64, now: LocalTime) -> Bucket {
        Bucket {
            tokens: burst,
            burst,
            per_sec,
            last: now,
        }
    }

    fn refill(&mut self, now: LocalTime) {
        let ms = u64::try_from(now.duration_since(self.last).as_millis()).unwrap_or(u64::MAX);
        let add = ms.saturating_mul(self.per_sec) / 1000;
        if add > 0 {
            self.tokens = self.tokens.saturating_add(add).min(self.burst);
            self.last = now;
        }
    }

    /// Take a token at `now` if there is one.
    pub fn take(&mut self, now: LocalTime) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// About how long until the next token.
    pub fn wait(&self) -> Duration {
        Duration::from_millis(1000 / self.per_sec.max(1) + 1)
    }
}

/// Whether `msg` counts against a peer's budget of unrequested messages: everything but the
/// answers to what we asked (blocks, transactions, block transactions: the protocol refuses
/// any it did not ask for) and `GetHeaders` (which has a rate of its own).
pub fn counts_as_unsolicited(msg: &Message) -> bool {
    !matches!(
        msg,
        Message::Block(_) | Message::Tx(_) | Message::BlockTxs { .. } | Message::GetHeaders { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t = |ms| LocalTime::from_millis(ms);
        let mut b = Bucket::new(10, 20, t(0));
        assert_eq!((0..25).filter(|_| b.take(t(0))).count(), 20);
        // A tenth of a second gives one token.
        assert!(!b.take(t(50)));
        assert!(b.take(t(100)));
        assert!(!b.take(t(100)));
        // Never more than the burst, however long the wait.
        assert_eq!((0..100).filter(|_| b.take(t(1_000_000))).count(), 20);
    }
}
