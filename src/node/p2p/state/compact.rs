//! Compact block relay (protocol version 2, see [`crate::net::compact`]): a new tip goes to
//! version-2 peers as a compact block; one received is rebuilt from the mempool, the
//! transactions it lacks are asked of its sender, and the block then takes the same road as
//! a downloaded one (the scheduler counts it as asked of the sender, so a sender that does
//! not answer stalls and the block is fetched whole from another peer).
//!
//! Rebuilding costs a pass over the mempool, so only a block a peer proved worth it is
//! rebuilt: one on our tip, with the difficulty a block there must have, meeting it. Any
//! other compact block is taken as an announcement (headers first, as for a hash). Each peer
//! has at most one block being rebuilt; the transactions filled in may not exceed a block's
//! limit.

use super::{Now, P2pState};
use crate::core::block::Block;
use crate::core::hash::{BlockHash, sha256d_parts};
use crate::core::tx::Transaction;
use crate::net::compact::{CompactBlock, PartialBlock};
use crate::net::identity::NodeId;
use crate::net::wire::Message;
use crate::node::p2p::sched::Want;

/// Blocks per peer whose transactions were asked for, remembered so a late answer is not
/// taken for an unrequested one.
const ASKED_KEPT: usize = 8;

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
        if self.have_block(&hash) || self.sched.is_wanted(&hash) {
            return Ok(());
        }
        // Only a block on our tip is rebuilt; anything else is an announcement.
        let (tip_height, tip, _) = self.chain.tip();
        if prev != tip || self.submission.is_some() {
            self.on_inv_blocks(id, &[hash]);
            return Ok(());
        }
        match self.chain.next_bits(&prev) {
            // The tip moved meanwhile, or its target is not known: an announcement.
            None => {
                self.on_inv_blocks(id, &[hash]);
                return Ok(());
            }
            Some(bits) if cb.header.bits != bits => {
                return Err(format!(
                    "compact block {} on our tip without the difficulty it must have",
                    hash.short()
                ));
            }
            Some(_) => {}
        }
        let height = tip_height + 1;
        if let Some(p) = self.peers.get_mut(&id) {
            p.activity.note_best(height, hash, None);
            if height > p.info.height {
                p.info.height = height;
                p.info.tip = hash;
            }
        }
        if self.sched.want(hash, prev, height, id) == Want::Full
            || !self.sched.ask(&id, &hash, now.local)
        {
            return Ok(());
        }
        self.compact_stats.received += 1;
        let chain = &self.chain;
        let partial = match PartialBlock::new(
            &cb,
            chain.mempool_txids(),
            |t| chain.mempool_tx(t),
            self.settings.max_block_bytes,
        ) {
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
        let Some(p) = self.peers.get_mut(&id) else {
            return Ok(());
        };
        // One block rebuilt per peer: one it left unanswered goes back to the queue, for
        // any peer that has it.
        let dropped = p.partial.replace(partial).map(|old| old.hash());
        if p.asked_txs_of.len() >= ASKED_KEPT {
            p.asked_txs_of.pop_front();
        }
        p.asked_txs_of.push_back(hash);
        if let Some(old) = dropped
            && self.sched.give_up(&id, &old)
        {
            self.schedule(now);
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
        // One answer per request.
        let Some(i) = p.asked_txs_of.iter().position(|h| *h == block) else {
            return Err(format!(
                "unrequested transactions of block {}",
                block.short()
            ));
        };
        p.asked_txs_of.remove(i);
        let Some(mut partial) = p.partial.take_if(|b| b.hash() == block) else {
            // Asked for, and given up on since (a newer compact block took its place).
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

    /// A compact block with every transaction: the block, if it matches its header. If not
    /// (a short id matched the wrong transaction, or the sender's short ids were not its
    /// block's), the block is asked of another peer that has it, or whole of the sender if
    /// none has.
    fn rebuilt(&mut self, id: NodeId, partial: PartialBlock, now: Now) -> Result<(), String> {
        let hash = partial.hash();
        match partial.finish() {
            Ok(block) => self.on_block(id, block, now),
            Err(e) => {
                // Late (given to another peer since, or here already): nothing to do.
                if self.sched.asked_of(&hash) != Some(id) {
                    return Ok(());
                }
                tracing::debug!("compact block {}: {e}; asking for it whole", hash.short());
                self.compact_stats.fetched_whole += 1;
                self.sched.give_up(&id, &hash);
                self.schedule(now);
                if self.sched.asked_of(&hash).is_none()
                    && self.sched.ask_again(&id, &hash, now.local)
                {
                    self.send(&id, Message::GetBlocks(vec![hash]));
                }
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
