//! [`ChainRead`]: one consistent view of the stored chain. Everything it answers — the tip,
//! blocks, coins, address histories, where a transaction is — comes from one store snapshot,
//! so a view built from several reads never mixes two heights (confirmations counted against a
//! tip that moved, a coin from a block the tip does not yet include). Blocks that arrive while
//! it is held are not in it. Hold it only while building a view: it keeps the store's file
//! open, and a node's shutdown waits for it.

use super::NodeError;
use crate::core::address::Address;
use crate::core::block::Block;
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::Params;
use crate::core::rules::Coin;
use crate::core::tx::OutPoint;
use crate::storage::{BlockMeta, HistoryEntry, Reader, StoreError, TxLocation};

/// One store snapshot with its tip (see the module doc).
pub struct ChainRead {
    r: Reader,
    tip: BlockMeta,
    params: &'static Params,
}

impl ChainRead {
    pub(super) fn new(r: Reader, params: &'static Params) -> Result<ChainRead, NodeError> {
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
}
