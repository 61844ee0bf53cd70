//! Compact block relay (protocol version 2, see [`crate::net::compact`]): a new tip goes to
//! version-2 peers as a compact block; one received is rebuilt from the mempool, the
//! transactions it lacks are asked of its sender, and the block then takes the same road as
//! a downloaded one (the scheduler counts it as asked of the sender, so a sender that does
//! not answer stalls and the block is fetched whole from another peer).

use super::{Now, P2pState};
use crate::core::block::Block;
use crate::core::hash::{BlockHash, sha256d_parts};
use crate::core::tx::Transaction;
use crate::net::compact::{CompactBlock, PartialBlock};
use crate::net::identity::NodeId;
use crate::net::wire::Message;
use crate::node::p2p::sched::Want;

/// Compact blocks per peer whose missing transactions may be awaited at once.
const PARTIALS_KEPT: usize = 4;
/// Blocks per peer whose transactions were asked for, remembered so a late answer is not
/// taken for an unrequested one.
const ASKED_KEPT: usize = 16;

impl P2pState {
    /// A compact block arrived: rebuild it, ask for what is missing, or fall back.
    pub(super) fn on_compact_block(
        &mut self,
        id: NodeId,
        cb: CompactBlock,
        now: Now,
    ) -> Result<(), String> {
        let hash = cb.hash();
        let prev = cb.header.prev;
        self.check_pow(&cb.header)?;
        if let Some(p) = self.peers.get_mut(&id) {
            p.know(hash.0);
            p.know(prev.0);
        }
        // A block whose parent we do not know: headers find where it attaches.
        let Some(parent) = self.height_of(&prev) else {
            self.on_inv_blocks(id, &[hash]);
            return Ok(());
        };
        let height = parent + 1;
        if let Some(p) = self.peers.get_mut(&id) {
            p.activity.note_best(height, hash, None);
            if height > p.info.height {
                p.info.height = height;
                p.info.tip = hash;
            }
        }
        if self.have_block(&hash) || self.sched.is_wanted(&hash) {
            return Ok(());
        }
        if self.sched.want(hash, prev, height, id) == Want::Full
            || !self.sched.ask(&id, &hash, now.local)
        {
            return Ok(());
        }
        self.compact_stats.received += 1;
        let chain = &self.chain;
        let partial = match PartialBlock::new(&cb, chain.mempool_txids(), |t| chain.mempool_tx(t)) {
            Ok(p) => p,
            Err(e) if e.is_misbehaviour() => return Err(e.to_string()),
            Err(e) => {
                tracing::debug!("compact block {}: {e}; asking for it whole", hash.short());
                self.compact_stats.fetched_whole += 1;
                self.send(&id, Message::GetBlocks(vec![hash]));
                return Ok(());
            }
        };
        let missing = partial.missing();
        if missing.is_empty() {
            self.compact_stats.rebuilt_at_once += 1;
            return self.rebuilt(id, partial, now);
        }
        self.compact_stats.txs_asked += missing.len() as u64;
        tracing::debug!(
            "compact block {}: {} of {} transactions missing",
            hash.short(),
            missing.len(),
            cb.tx_count()
        );
        self.send(
            &id,
            Message::GetBlockTxs {
                block: hash,
                indexes: missing,
            },
        );
        if let Some(p) = self.peers.get_mut(&id) {
            if p.partial.len() >= PARTIALS_KEPT {
                p.partial.pop_front();
            }
            p.partial.push_back(partial);
            if p.asked_txs_of.len() >= ASKED_KEPT {
                p.asked_txs_of.pop_front();
            }
            p.asked_txs_of.push_back(hash);
        }
        Ok(())
    }

    /// The transactions of a compact block we asked for. None (the sender does not have the
    /// block) counts as a `NotFound`.
    pub(super) fn on_block_txs(
        &mut self,
        id: NodeId,
        block: BlockHash,
        txs: Vec<Transaction>,
        now: Now,
    ) -> Result<(), String> {
        let Some(p) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        if !p.asked_txs_of.contains(&block) {
            return Err(format!(
                "unrequested transactions of block {}",
                block.short()
            ));
        }
        let Some(i) = p.partial.iter().position(|b| b.hash() == block) else {
            // Asked for, and given up on since (a newer compact block took its place).
            return Ok(());
        };
        p.asked_txs_of.retain(|h| *h != block);
        let Some(mut partial) = p.partial.remove(i) else {
            return Ok(());
        };
        if txs.is_empty() {
            self.sched.not_found(&id, &block)?;
            self.schedule(now);
            return Ok(());
        }
        partial.fill(txs).map_err(|e| e.to_string())?;
        self.rebuilt(id, partial, now)
    }

    /// A compact block with every transaction: the block, if it matches its header; if not
    /// (a short id matched the wrong transaction), it is asked for whole.
    fn rebuilt(&mut self, id: NodeId, partial: PartialBlock, now: Now) -> Result<(), String> {
        let hash = partial.hash();
        match partial.finish() {
            Ok(block) => self.on_block(id, block, now),
            Err(e) => {
                tracing::debug!("compact block {}: {e}; asking for it whole", hash.short());
                self.compact_stats.fetched_whole += 1;
                self.send(&id, Message::GetBlocks(vec![hash]));
                Ok(())
            }
        }
    }

    /// How compact block relay went so far.
    pub fn compact_stats(&self) -> crate::node::p2p::CompactStats {
        self.compact_stats
    }

    /// Our tip as a compact block, keyed with a nonce of our own (another sender's short
    /// ids collide elsewhere); `None` for a block too large to send compactly.
    pub(super) fn compact_tip(&self, tip: &BlockHash) -> Option<CompactBlock> {
        let block: Block = self.chain.block(tip)?;
        let seed = sha256d_parts(&[&self.settings.id.0, &tip.0]);
        let mut n = [0u8; 8];
        n.copy_from_slice(&seed[..8]);
        CompactBlock::from_block(&block, u64::from_le_bytes(n))
    }
}
