//! Fee estimates: what the mempool's queue asks now ([`super::mempool::fee_to_confirm_within`])
//! and what recent blocks took ([`fee_from_blocks`]). The node's answer is the higher of the
//! two: the queue says what must be outbid now, the blocks what it has cost lately (a queue that
//! just emptied into a block says nothing of the competition it held).

use super::{NodeError, NodeHandle};
use crate::core::amount::Amount;
use crate::core::fee::FeeRate;
use crate::core::hash::BlockHash;
use std::sync::Mutex;

/// Active-chain blocks the estimate from blocks reads, newest first.
pub const FEE_WINDOW: usize = 24;

/// A block counts as full when its transactions take this share of its room (19/20): what did
/// not fit was then left out for want of space, not of fee.
const FULL: (u128, u128) = (19, 20);

/// What one block says about fees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockFees {
    /// Bytes of its transactions (the coinbase not counted), and the room a block has for them.
    pub used: usize,
    pub room: usize,
    /// The lowest fee rate among its transactions (`None`: it held only its coinbase).
    pub lowest: Option<FeeRate>,
}

impl BlockFees {
    pub fn full(&self) -> bool {
        (self.used as u128) * FULL.1 >= (self.room as u128) * FULL.0
    }

    /// The rate that got a transaction into this block: the lowest it took when it was full;
    /// the minimum relay rate when it had room (anything relayed would have fit).
    pub fn clearing(&self) -> FeeRate {
        match self.lowest {
            Some(r) if self.full() => r.max(FeeRate::MIN_RELAY),
            _ => FeeRate::MIN_RELAY,
        }
    }
}

/// The estimate from recent blocks for a transaction to be mined within `blocks` blocks: the
/// lowest rate that would have entered enough of the `recent` blocks (newest first; at most
/// [`FEE_WINDOW`] are read) to be mined within `blocks` blocks 19 times in 20, if the coming
/// blocks are like those. A rate that entered k of w blocks misses one with chance (w−k)/w, and
/// `blocks` in a row with that chance to the power `blocks`: it must be at most 1/20. `None`
/// with no block to read.
pub fn fee_from_blocks(recent: &[BlockFees], blocks: u64) -> Option<FeeRate> {
    let recent = &recent[..recent.len().min(FEE_WINDOW)];
    let mut candidates: Vec<FeeRate> = recent.iter().map(BlockFees::clearing).collect();
    candidates.sort();
    candidates.dedup();
    let w = recent.len() as u128;
    candidates.into_iter().find(|r| {
        let k = recent.iter().filter(|b| b.clearing() <= *r).count() as u128;
        misses_rarely(w, k, blocks)
    })
}

/// Whether ((w−k)/w)^n ≤ 1/20, in integers: the chance as a fraction of 10^18, multiplied
/// in a step at a time (each step rounds down, by less than 10^-18).
fn misses_rarely(w: u128, k: u128, n: u64) -> bool {
    const ONE: u128 = 1_000_000_000_000_000_000;
    if w == 0 {
        return false;
    }
    let mut chance = ONE;
    for _ in 0..n.max(1) {
        chance = chance * (w - k.min(w)) / w;
        if chance * 20 <= ONE {
            return true;
        }
    }
    false
}

/// The figures of recent blocks, worked out once per tip.
#[derive(Default)]
pub(super) struct FeeCache(Mutex<Option<(BlockHash, Vec<BlockFees>)>>);

impl NodeHandle {
    /// What the last [`FEE_WINDOW`] blocks of the active chain say about fees, newest first:
    /// each transaction's fee from the coins its inputs spent (the block's undo data).
    pub fn recent_block_fees(&self) -> Result<Vec<BlockFees>, NodeError> {
        let r = self.read()?;
        let tip = r.tip().hash();
        if let Ok(c) = self.fees.0.lock()
            && let Some((at, fees)) = c.as_ref()
            && *at == tip
        {
            return Ok(fees.clone());
        }
        let room = self
            .params()
            .max_block_size
            .saturating_sub(super::COINBASE_RESERVE);
        let mut out = Vec::new();
        let mut height = r.tip().height;
        while out.len() < FEE_WINDOW && height > 0 {
            let corrupt = |what: &str| {
                NodeError::Store(crate::storage::StoreError::Corrupt(format!(
                    "the {what} of the active chain's block {height} is missing"
                )))
            };
            let hash = r.hash_at(height)?.ok_or_else(|| corrupt("index entry"))?;
            let block = r.block(&hash)?.ok_or_else(|| corrupt("body"))?;
            let undo = r.undo(&hash)?.ok_or_else(|| corrupt("undo data"))?;
            let mut spent = undo.spent.iter().map(|(_, coin)| coin.output.amount);
            let (mut used, mut lowest) = (0usize, None::<FeeRate>);
            for tx in block.txs.iter().skip(1) {
                let mut paid_in = Amount::ZERO;
                for _ in &tx.inputs {
                    let a = spent.next().ok_or_else(|| corrupt("undo data"))?;
                    paid_in = paid_in.checked_add(a).ok_or_else(|| corrupt("undo data"))?;
                }
                let fee = tx
                    .output_total()
                    .and_then(|out| paid_in.checked_sub(out))
                    .ok_or_else(|| corrupt("undo data"))?;
                let size = tx.size();
                used = used.saturating_add(size);
                let rate = FeeRate::of(fee, size);
                lowest = Some(lowest.map_or(rate, |l| l.min(rate)));
            }
            out.push(BlockFees { used, room, lowest });
            height -= 1;
        }
        if let Ok(mut c) = self.fees.0.lock() {
            *c = Some((tip, out.clone()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_byte: u64) -> FeeRate {
        FeeRate::per_kb(per_byte * 1000)
    }
    fn full(lowest: u64) -> BlockFees {
        BlockFees {
            used: 990_000,
            room: 998_000,
            lowest: Some(rate(lowest)),
        }
    }
    fn roomy(lowest: u64) -> BlockFees {
        BlockFees {
            used: 10_000,
            room: 998_000,
            lowest: Some(rate(lowest)),
        }
    }

    #[test]
    fn blocks_with_room_ask_only_the_relay_minimum() {
        assert_eq!(fee_from_blocks(&[], 1), None);
        let recent = vec![roomy(50); 24];
        assert_eq!(fee_from_blocks(&recent, 1), Some(FeeRate::MIN_RELAY));
        let empty = BlockFees {
            used: 0,
            room: 998_000,
            lowest: None,
        };
        assert_eq!(fee_from_blocks(&[empty], 1), Some(FeeRate::MIN_RELAY));
    }

    #[test]
    fn full_blocks_ask_what_cleared_them_and_a_longer_wait_asks_less() {
        // Every block full, cleared at 10 to 33 per byte.
        let recent: Vec<BlockFees> = (10..34).map(full).collect();
        // Within 1 block 19 times in 20: a rate that entered 23 of the 24 blocks (misses 1/24).
        assert_eq!(fee_from_blocks(&recent, 1), Some(rate(32)));
        // Within 2: (k misses of 24)^2 ≤ 1/20 → k ≤ 5: enters 19, the one that cleared at 28.
        assert_eq!(fee_from_blocks(&recent, 2), Some(rate(28)));
        // Within 10: (m/24)^10 ≤ 1/20 → m ≤ 17: enters 7, the one that cleared at 16.
        assert_eq!(fee_from_blocks(&recent, 10), Some(rate(16)));
        // Half full at 40 per byte, half with room: within 1 block needs 40; within 5 blocks
        // (1/2)^5 ≤ 1/20 lets the relay minimum do.
        let mixed: Vec<BlockFees> = (0..24)
            .map(|i| if i % 2 == 0 { full(40) } else { roomy(40) })
            .collect();
        assert_eq!(fee_from_blocks(&mixed, 1), Some(rate(40)));
        assert_eq!(fee_from_blocks(&mixed, 5), Some(FeeRate::MIN_RELAY));
        // Only the newest FEE_WINDOW count.
        let mut long = vec![roomy(1); 24];
        long.extend(vec![full(99); 10]);
        assert_eq!(fee_from_blocks(&long, 1), Some(FeeRate::MIN_RELAY));
    }

    #[test]
    fn the_miss_chance_is_checked_in_integers() {
        assert!(misses_rarely(24, 24, 1));
        assert!(misses_rarely(24, 23, 1)); // 1/24
        assert!(!misses_rarely(24, 22, 1)); // 1/12
        assert!(misses_rarely(20, 19, 1)); // exactly 1/20
        assert!(misses_rarely(2, 1, 5)); // 1/32
        assert!(!misses_rarely(2, 1, 4)); // 1/16
        assert!(!misses_rarely(0, 0, 3));
        assert!(!misses_rarely(5, 0, 100)); // never enters
    }
}
