//! Live chain figures from a window of recent blocks: average block time, network hashrate and
//! the expected time to the next block. Integers only; the caller supplies "now".
//!
//! The figures must hold up on the chains people actually look at:
//! - the genesis block is never part of the window (its timestamp is from the network's launch,
//!   so one interval can be months long);
//! - each block counts with its own work, not the tip's (the difficulty changes inside the
//!   window);
//! - a timestamp is the miner's claim, not a clock reading: the span is measured between the
//!   medians of the first and last few timestamps, so one block stamped an hour off moves
//!   nothing;
//! - where the chain is stamped ahead of the clock (fast mining on regtest stamps each block one
//!   second after the median of the previous ones), timestamps say nothing about time, and the
//!   span is taken from the times this node first saw the blocks instead. "Ahead" means the tip
//!   is ahead of now, or a block was stamped ahead of the moment it was first seen (so the
//!   figure stays right after the clock has caught up);
//! - with too little history there is no estimate ([`None`]), never a wild one.

use super::pow::CompactTarget;
use ruint::aliases::U256;

/// Blocks in the window (the newest ones, genesis excluded).
pub const WINDOW: usize = 30;
/// The fewest blocks that give an estimate.
pub const MIN_BLOCKS: usize = 6;
/// Blocks at each end of the window whose median timestamp marks that end.
const MEDIAN_OF: usize = 5;
/// How far ahead of the clock (seconds) the tip may be stamped before timestamps are not
/// trusted as a measure of time.
const AHEAD_SLACK: u64 = 2;

/// One block of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowBlock {
    pub height: u64,
    /// The header's timestamp (seconds since the epoch).
    pub time: u64,
    pub bits: CompactTarget,
    /// When this node first saw the block (milliseconds since the epoch), if it recorded it.
    pub seen_ms: Option<u64>,
}

/// Which clock measured the window's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanSource {
    /// Medians of the blocks' timestamps.
    Timestamps,
    /// The times this node first saw the blocks (the chain is stamped ahead of the clock).
    SeenTimes,
}

/// Figures estimated from a window of recent blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainRates {
    /// Block intervals the estimate spans.
    pub intervals: u64,
    /// Time those intervals took (milliseconds).
    pub span_ms: u64,
    /// Average time between blocks (milliseconds).
    pub avg_block_ms: u64,
    /// Network hashrate (hashes per second): the work of the blocks over the span.
    pub hashrate: U256,
    pub source: SpanSource,
}

impl ChainRates {
    /// Expected seconds until a block of `bits` is found at this hashrate.
    pub fn secs_for(&self, bits: CompactTarget) -> Option<u64> {
        let work = bits.to_target().ok()?.work().0;
        if self.hashrate.is_zero() {
            return None;
        }
        Some(u64::try_from(work / self.hashrate).unwrap_or(u64::MAX))
    }
}

fn work_of(bits: CompactTarget) -> U256 {
    bits.to_target().map(|t| t.work().0).unwrap_or(U256::ZERO)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Estimate from `window` (newest first, as read from the tip down; any genesis block in it is
/// skipped) at `now_ms`. `None` when there are fewer than [`MIN_BLOCKS`] blocks after genesis
/// or the span cannot be measured.
pub fn estimate(window: &[WindowBlock], now_ms: u64) -> Option<ChainRates> {
    // Oldest first, genesis excluded, at most WINDOW blocks.
    let mut blocks: Vec<WindowBlock> = window
        .iter()
        .filter(|b| b.height > 0)
        .take(WINDOW)
        .copied()
        .collect();
    blocks.reverse();
    let n = blocks.len();
    if n < MIN_BLOCKS {
        return None;
    }
    let tip = blocks[n - 1];
    // Stamped ahead of the clock now, or ahead of the moment this node first saw it.
    let ahead = tip.time > now_ms / 1000 + AHEAD_SLACK
        || blocks.iter().any(|b| {
            b.seen_ms
                .is_some_and(|seen| b.time > seen / 1000 + AHEAD_SLACK)
        });
    if ahead {
        // Timestamps are not a clock here: use the times blocks were first seen, end to end.
        let first = blocks[0].seen_ms?;
        let last = tip.seen_ms?;
        let span_ms = last.checked_sub(first).filter(|s| *s > 0)?;
        let work = blocks[1..]
            .iter()
            .fold(U256::ZERO, |w, b| w.saturating_add(work_of(b.bits)));
        return Some(rates(n as u64 - 1, span_ms, work, SpanSource::SeenTimes));
    }
    // Median of the first k and of the last k timestamps; the span runs between the middle
    // blocks of those two groups.
    let k = MEDIAN_OF.min(n / 3).max(1) | 1;
    let c0 = k / 2;
    let c1 = n - 1 - k / 2;
    let start = median(blocks[..k].iter().map(|b| b.time).collect());
    let end = median(blocks[n - k..].iter().map(|b| b.time).collect());
    let span_s = end.checked_sub(start).filter(|s| *s > 0)?;
    let work = blocks[c0 + 1..=c1]
        .iter()
        .fold(U256::ZERO, |w, b| w.saturating_add(work_of(b.bits)));
    Some(rates(
        (c1 - c0) as u64,
        span_s.saturating_mul(1000),
        work,
        SpanSource::Timestamps,
    ))
}

fn rates(intervals: u64, span_ms: u64, work: U256, source: SpanSource) -> ChainRates {
    ChainRates {
        intervals,
        span_ms,
        avg_block_ms: span_ms / intervals.max(1),
        hashrate: work.saturating_mul(U256::from(1000u64)) / U256::from(span_ms.max(1)),
        source,
    }
}

/// How a block's timestamp relates to `now` (both seconds since the epoch): positive is in the
/// past ("12s ago"), negative is in the future ("in 10m").
pub fn age_secs(time: u64, now: u64) -> i64 {
    if now >= time {
        i64::try_from(now - time).unwrap_or(i64::MAX)
    } else {
        -i64::try_from(time - now).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::params::Network;
    use crate::core::pow::Target;

    /// Bits whose work is about `work` hashes.
    fn bits_for_work(work: u64) -> CompactTarget {
        // work ≈ 2^256 / (target + 1)  →  target ≈ 2^256 / work
        let t = U256::MAX / U256::from(work);
        Target(t).to_compact()
    }

    /// A chain of `n` blocks after genesis (genesis `genesis_age` seconds before the first),
    /// mined at `rate` H/s with each block `work` hashes, so one every work/rate seconds; newest
    /// first, as a node reads it.
    fn chain(n: u64, start: u64, rate: u64, work: u64, genesis_age: u64) -> Vec<WindowBlock> {
        let bits = bits_for_work(work);
        let interval = work / rate;
        let mut v = vec![WindowBlock {
            height: 0,
            time: start - genesis_age,
            bits: Network::Devnet.params().genesis.header.bits,
            seen_ms: None,
        }];
        for h in 1..=n {
            let t = start + h * interval;
            v.push(WindowBlock {
                height: h,
                time: t,
                bits,
                seen_ms: Some(t * 1000),
            });
        }
        v.reverse();
        v
    }

    const NOW: u64 = 1_800_000_000;

    fn within_factor(got: U256, want: u64, f: u64) -> bool {
        let w = U256::from(want);
        got * U256::from(f) >= w && got <= w * U256::from(f)
    }

    #[test]
    fn too_little_history_gives_no_figure() {
        // Genesis plus 5 blocks: genesis is not counted, 5 < MIN_BLOCKS.
        let c = chain(5, NOW - 100, 1000, 10_000, 333 * 86_400);
        assert_eq!(estimate(&c, NOW * 1000), None);
        assert!(estimate(&chain(6, NOW - 100, 1000, 10_000, 0), NOW * 1000).is_some());
    }

    #[test]
    fn genesis_far_in_the_past_is_not_in_the_window() {
        // The reported case: genesis 333 days back, then blocks every 10 s at 1 MH/s.
        let c = chain(20, NOW - 300, 1_000_000, 10_000_000, 333 * 86_400);
        let r = estimate(&c, NOW * 1000).unwrap();
        assert_eq!(r.avg_block_ms, 10_000, "{r:?}");
        assert!(within_factor(r.hashrate, 1_000_000, 2), "{r:?}");
        assert_eq!(r.source, SpanSource::Timestamps);
        // Before the fix the same chain read 3.6 million seconds a block.
        let old_style = (c[0].time - c[c.len() - 1].time) / (c.len() as u64 - 1);
        assert!(old_style > 1_000_000);
    }

    #[test]
    fn one_wild_timestamp_moves_nothing() {
        let mut c = chain(20, NOW - 300, 1_000_000, 10_000_000, 0);
        c[0].time += 7200; // the tip claims two hours later (still far from "now" below)
        c[10].time -= 3600;
        for b in &mut c {
            b.seen_ms = None; // received, say, in a sync: timestamps are all there is
        }
        let r = estimate(&c, (NOW + 10_000) * 1000).unwrap();
        assert_eq!(r.source, SpanSource::Timestamps);
        assert!(
            (9_000..=11_500).contains(&r.avg_block_ms),
            "avg {} ms",
            r.avg_block_ms
        );
    }

    #[test]
    fn future_dated_chain_uses_the_times_blocks_were_seen() {
        // Regtest-style: 700 blocks a second really, stamped one second apart into the future.
        let bits = bits_for_work(2);
        let mut c = Vec::new();
        for h in 1..=30u64 {
            c.push(WindowBlock {
                height: h,
                time: NOW + h, // up to 30 s ahead of the clock
                bits,
                seen_ms: Some(NOW * 1000 + h * 10), // one every 10 ms
            });
        }
        c.reverse();
        let r = estimate(&c, NOW * 1000 + 300).unwrap();
        assert_eq!(r.source, SpanSource::SeenTimes);
        assert_eq!(r.avg_block_ms, 10);
        // 2 hashes a block, 100 blocks a second: about 200 H/s.
        assert!(within_factor(r.hashrate, 200, 2), "{r:?}");
        // Ten minutes later the clock has passed the stamps; the blocks were still stamped
        // ahead of when they were seen.
        let later = estimate(&c, (NOW + 600) * 1000).unwrap();
        assert_eq!(later, r);
        // Without seen times there is no honest figure.
        for b in &mut c {
            b.seen_ms = None;
        }
        assert_eq!(estimate(&c, NOW * 1000 + 300), None);
    }

    #[test]
    fn each_block_counts_with_its_own_work() {
        // 15 blocks at 1 MH/s then 15 at 10 MH/s with ten times the work each (difficulty
        // followed the jump), all 10 s apart: the hashrate is between, nearer the new rate.
        let slow = bits_for_work(10_000_000);
        let fast = bits_for_work(100_000_000);
        let mut c = Vec::new();
        for h in 1..=30u64 {
            let t = NOW - 400 + h * 10;
            c.push(WindowBlock {
                height: h,
                time: t,
                bits: if h <= 15 { slow } else { fast },
                seen_ms: Some(t * 1000),
            });
        }
        c.reverse();
        let r = estimate(&c, NOW * 1000).unwrap();
        let mh = U256::from(1_000_000u64);
        assert!(
            r.hashrate > mh * U256::from(4u64) && r.hashrate < mh * U256::from(7u64),
            "{r:?}"
        );
        // Weighting every block by the tip's work (the old way) says 10 MH/s.
        let tip_weighted = U256::from(100_000_000u64) / U256::from(10u64);
        assert!(r.hashrate < tip_weighted);
    }

    #[test]
    fn a_hashrate_jump_shows_within_a_window() {
        // 1 MH/s at 10 s blocks, then ten times the hashrate at the same difficulty: blocks
        // come every second. After a full window of fast blocks the estimate is the new rate.
        let bits = bits_for_work(10_000_000);
        let mut c = Vec::new();
        let mut t = NOW - 1000;
        for h in 1..=60u64 {
            t += if h <= 30 { 10 } else { 1 };
            c.push(WindowBlock {
                height: h,
                time: t,
                bits,
                seen_ms: Some(t * 1000),
            });
        }
        c.reverse();
        let r = estimate(&c, t * 1000).unwrap();
        assert!(within_factor(r.hashrate, 10_000_000, 2), "{r:?}");
        assert_eq!(r.avg_block_ms, 1000);
    }

    #[test]
    fn next_block_time_is_its_work_over_the_rate() {
        let c = chain(20, NOW - 300, 1_000_000, 10_000_000, 0);
        let r = estimate(&c, NOW * 1000).unwrap();
        let secs = r.secs_for(bits_for_work(10_000_000)).unwrap();
        assert!((5..=20).contains(&secs), "{secs}");
    }

    #[test]
    fn ages_in_the_past_and_the_future() {
        assert_eq!(age_secs(100, 112), 12);
        assert_eq!(age_secs(700, 100), -600);
    }
}
