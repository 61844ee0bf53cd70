//! [`ChainRead`]: one consistent view of the stored chain. Everything it answers — the tip,
//! blocks, coins, address histories, where a transaction is — comes from one store snapshot,
//! so a view built from several reads never mixes two heights (confirmations counted against a
//! tip that moved, a coin from a block the tip does not yet include). Blocks that arrive while
//! it is held are not in it. Hold it only while building a view: it keeps the store's file
//! open, and a node's shutdown waits for it.

use super::NodeError;
use crate::core::address::Address;
use crate::core::block::{Block, BlockHeader};
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::Params;
use crate::core::rules::Coin;
use crate::core::tx::OutPoint;
use crate::storage::{BlockMeta, BlockStatus, HistoryEntry, Reader, StoreError, TxLocation};

/// One store snapshot with its tip (see the module doc).
pub struct ChainRead {
    r: Reader,
    tip: BlockMeta,
    params: &'static Params,
}

impl ChainRead {
    pub(crate) fn new(r: Reader, params: &'static Params) -> Result<ChainRead, NodeError> {
        let tip = r.tip()?;
        Ok(ChainRead { r, tip, params })
    }

    /// The active chain's tip in this snapshot.
    pub fn tip(&self) -> &BlockMeta {
        &self.tip
    }
    pub fn params(&self) -> &'static Params {
        self.params
    }

    /// A block locator: active-chain hashes from the tip back, spacing doubling after ten,
    /// ending at genesis.
    pub fn locator(&self) -> Result<Vec<BlockHash>, NodeError> {
        let mut out = Vec::new();
        let mut h = self.tip.height;
        let mut step = 1u64;
        loop {
            if let Some(hash) = self.r.hash_at(h)? {
                out.push(hash);
            }
            if h == 0 {
                break;
            }
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            h = h.saturating_sub(step);
        }
        Ok(out)
    }

    /// Active-chain headers after the first locator hash on the active chain (genesis if
    /// none), up to `stop` or `max` headers.
    pub fn headers_after(
        &self,
        locator: &[BlockHash],
        stop: &BlockHash,
        max: usize,
    ) -> Result<Vec<BlockHeader>, NodeError> {
        let r = &self.r;
        let mut start = 0;
        for hash in locator {
            if let Some(m) = r.meta(hash)?
                && r.hash_at(m.height)? == Some(*hash)
            {
                start = m.height;
                break;
            }
        }
        let mut out = Vec::new();
        let mut h = start + 1;
        while out.len() < max {
            let Some(hash) = r.hash_at(h)? else { break };
            let Some(m) = r.meta(&hash)? else { break };
            out.push(m.header);
            if hash == *stop {
                break;
            }
            h += 1;
        }
        Ok(out)
    }

    /// Confirmations of something confirmed at `height` on the active chain: 1 in the tip.
    /// A height above the tip cannot come from this snapshot: the store is damaged.
    pub fn confirmations(&self, height: u64) -> Result<u64, NodeError> {
        (self.tip.height + 1)
            .checked_sub(height)
            .filter(|c| *c > 0)
            .ok_or_else(|| {
                NodeError::Store(StoreError::Corrupt(format!(
                    "an entry at height {height} is above the tip at {}",
                    self.tip.height
                )))
            })
    }

    pub fn block_meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, NodeError> {
        Ok(self.r.meta(hash)?)
    }
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, NodeError> {
        Ok(self.r.block(hash)?)
    }
    pub fn hash_at(&self, height: u64) -> Result<Option<BlockHash>, NodeError> {
        Ok(self.r.hash_at(height)?)
    }
    /// The coins a block of the active chain spent, in the order of its inputs.
    pub fn undo(
        &self,
        hash: &BlockHash,
    ) -> Result<Option<crate::core::rules::BlockUndo>, NodeError> {
        Ok(self.r.undo_of(hash)?)
    }
    /// When this node first stored the block (milliseconds since the epoch), if recorded.
    pub fn seen_ms(&self, hash: &BlockHash) -> Result<Option<u64>, NodeError> {
        Ok(self.r.seen_ms(hash)?)
    }
    /// Whether the block is on the active chain.
    pub fn is_active(&self, meta: &BlockMeta) -> Result<bool, NodeError> {
        Ok(self.r.hash_at(meta.height)? == Some(meta.hash()))
    }
    /// Confirmations of a block: 0 off the active chain.
    pub fn block_confirmations(&self, meta: &BlockMeta) -> Result<u64, NodeError> {
        if self.is_active(meta)? {
            self.confirmations(meta.height)
        } else {
            Ok(0)
        }
    }
    /// Blocks of the active chain from height `from` (inclusive), at most `limit`.
    pub fn blocks_from(&self, from: u64, limit: u64) -> Result<Vec<Block>, NodeError> {
        let mut out = Vec::new();
        for h in from..from.saturating_add(limit) {
            let Some(hash) = self.r.hash_at(h)? else {
                break;
            };
            if let Some(b) = self.r.block(&hash)? {
                out.push(b);
            }
        }
        Ok(out)
    }
    /// The unspent output `o`, if it is one.
    pub fn coin(&self, o: &OutPoint) -> Result<Option<Coin>, NodeError> {
        Ok(self.r.coin(o)?)
    }
    /// Where a confirmed transaction is.
    pub fn tx_location(&self, txid: &Txid) -> Result<Option<TxLocation>, NodeError> {
        Ok(self.r.tx_location(txid)?)
    }
    /// Unspent coins of `addr`.
    pub fn address_coins(&self, addr: &Address) -> Result<Vec<(OutPoint, Coin)>, NodeError> {
        Ok(self.r.address_coins(addr)?)
    }
    /// Confirmed history of `addr`, oldest first.
    pub fn address_history(&self, addr: &Address) -> Result<Vec<HistoryEntry>, NodeError> {
        Ok(self.r.address_history(addr)?)
    }
    /// Whether a coinbase coin confirmed at `height` is still immature.
    pub fn immature(&self, coin: &Coin) -> Result<bool, NodeError> {
        Ok(coin.coinbase && self.confirmations(coin.height)? < self.params.coinbase_maturity)
    }

    /// Every tip of the block tree (a block no stored block builds on), the active one first,
    /// then the highest: how far each branch is from the active chain and what is known of it.
    pub fn tips(&self) -> Result<Vec<ChainTip>, NodeError> {
        let mut leaves = self.r.leaves()?;
        if !leaves.contains(&self.tip.hash()) {
            leaves.push(self.tip.hash());
        }
        let mut tips = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            let Some(meta) = self.r.meta(&leaf)? else {
                continue;
            };
            tips.push(self.tip_of(meta)?);
        }
        tips.sort_by_key(|t| (t.status != TipStatus::Active, std::cmp::Reverse(t.height)));
        Ok(tips)
    }

    /// Walks from `leaf` back to the active chain.
    fn tip_of(&self, leaf: BlockMeta) -> Result<ChainTip, NodeError> {
        let (mut m, mut branch_len) = (leaf, 0u64);
        let (mut invalid, mut all_valid) = (false, true);
        while self.r.hash_at(m.height)? != Some(m.hash()) {
            invalid |= m.status == BlockStatus::Invalid;
            all_valid &= m.status == BlockStatus::Valid;
            branch_len += 1;
            match self.r.meta(&m.header.prev)? {
                Some(parent) => m = parent,
                None => break,
            }
        }
        let status = if leaf.hash() == self.tip.hash() {
            TipStatus::Active
        } else if invalid {
            TipStatus::Invalid
        } else if all_valid {
            TipStatus::ValidFork
        } else {
            TipStatus::Stored
        };
        Ok(ChainTip {
            hash: leaf.hash(),
            height: leaf.height,
            branch_len,
            status,
        })
    }
}

/// One tip of the block tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTip {
    pub hash: BlockHash,
    pub height: u64,
    /// Blocks between it and the active chain (0 for the active tip).
    pub branch_len: u64,
    pub status: TipStatus,
}

/// What is known of a tip's branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum TipStatus {
    /// The active chain's tip.
    Active,
    /// A branch that was once connected (the chain reorganised away from it).
    ValidFork,
    /// Stored but never connected: it has less work than the active chain.
    Stored,
    /// It, or a block under it, failed validation.
    Invalid,
}
