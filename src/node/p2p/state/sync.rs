//! Headers-first sync: asking for headers from a locator, checking and queueing them, asking
//! for blocks (through the [`crate::node::p2p::sched`] scheduler), handing received blocks to
//! the node in chain order without waiting for its verdict, and what stalls.

use super::{Now, Output, P2pState, Peer, SUBMIT_BATCH, Submission};
use crate::core::block::{Block, BlockHeader};
use crate::core::hash::BlockHash;
use crate::net::DisconnectReason;
use crate::net::identity::NodeId;
use crate::net::wire::{self, MAX_HEADERS, Message};
use crate::node::p2p::sched::{Delivery, MAX_STALLS, MAX_WANTED, PeerTip, STALL_TIMEOUT, Want};
use crate::node::{BatchOutcome, NodeError};
use std::collections::{BTreeMap, HashMap};

impl P2pState {
    /// A peer announces blocks: that is its height now, for the ones we have; any we do not
    /// know of, we ask it for headers.
    pub(super) fn on_inv_blocks(&mut self, id: NodeId, hashes: &[BlockHash]) {
        let mut unknown = false;
        for h in hashes {
            let meta = self.chain.block_meta(h);
            if let Some(p) = self.peers.get_mut(&id) {
                p.know(h.0);
                // It announces a block we have: that is its height now.
                if let Some(m) = &meta {
                    p.activity.note_meta(m);
                }
            }
            if meta.is_none() && !self.sched.is_wanted(h) && !self.have_block(h) {
                unknown = true;
            }
        }
        if unknown {
            self.ask_headers(&id);
        }
    }

    pub(super) fn ask_headers(&mut self, id: &NodeId) {
        let locator = match self.download_locator() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot build a locator: {e}");
                return;
            }
        };
        self.send(
            id,
            Message::GetHeaders {
                locator,
                stop: BlockHash::ZERO,
            },
        );
    }

    /// A locator that starts at the last header queued for download, so a long sync asks for
    /// the next headers rather than the ones it already has.
    pub(super) fn download_locator(&self) -> Result<Vec<BlockHash>, String> {
        let mut loc = Vec::new();
        if let Some(last) = self.sched.last_queued() {
            loc.push(last);
        }
        loc.extend(self.chain.locator()?);
        loc.truncate(wire::MAX_LOCATOR);
        Ok(loc)
    }

    pub(super) fn on_headers(
        &mut self,
        id: NodeId,
        headers: Vec<BlockHeader>,
        now: Now,
    ) -> Result<(), String> {
        if headers.is_empty() {
            return Ok(());
        }
        if !wire::headers_connect(&headers) {
            return Err("headers do not form a chain".into());
        }
        for h in &headers {
            self.check_pow(h)?;
        }
        // Where the headers attach: a stored block, one with the node, or the last header
        // already queued.
        let Some(base_height) = self.height_of(&headers[0].prev) else {
            // Not connected to anything we know: ask again from our own locator.
            self.ask_headers(&id);
            return Ok(());
        };
        let full = headers.len() == MAX_HEADERS;
        let mut last = None;
        for (i, h) in headers.into_iter().enumerate() {
            let hash = h.hash();
            last = Some(hash);
            let height = base_height + 1 + i as u64;
            if let Some(p) = self.peers.get_mut(&id) {
                p.know(hash.0);
                if height > p.info.height {
                    p.info.height = height;
                    p.info.tip = hash;
                }
            }
            if !self.sched.is_wanted(&hash) && self.have_block(&hash) {
                continue;
            }
            if self.sched.want(hash, h.prev, height, id) == Want::Full {
                // Enough queued; the tick asks for more as the queue drains.
                return Ok(());
            }
        }
        if full
            && self.sched.wanted() < MAX_WANTED
            && let Some(last) = last
        {
            self.send(
                &id,
                Message::GetHeaders {
                    locator: vec![last],
                    stop: BlockHash::ZERO,
                },
            );
        }
        self.schedule(now);
        Ok(())
    }

    /// Whether `h` meets its own target, and that target is within the network's limit:
    /// the cheap check that makes a fake header cost its sender real work.
    pub(super) fn check_pow(&self, h: &BlockHeader) -> Result<(), String> {
        let target = h
            .bits
            .to_target()
            .map_err(|e| format!("header with a bad target: {e}"))?;
        if !target.is_met_by(&h.hash().0) || target > self.settings.pow_limit {
            return Err(format!(
                "header {} has too little proof of work",
                h.hash().short()
            ));
        }
        Ok(())
    }

    /// The height of a block stored, with the node, or queued for download.
    pub(super) fn height_of(&self, hash: &BlockHash) -> Option<u64> {
        match self.chain.block_meta(hash) {
            Some(m) => Some(m.height),
            None => self
                .submission
                .as_ref()
                .and_then(|s| s.heights.get(hash).copied())
                .or_else(|| self.sched.height_of(hash)),
        }
    }

    /// Whether the node has `hash`, or has it on its way in (a batch being validated).
    pub(super) fn have_block(&self, hash: &BlockHash) -> bool {
        self.submission
            .as_ref()
            .is_some_and(|s| s.heights.contains_key(hash))
            || self.chain.has_block(hash)
    }

    /// Ask peers for queued blocks they can give, a few at a time each.
    pub(super) fn schedule(&mut self, now: Now) {
        let tips = peer_tips(&self.peers);
        let asks = self.sched.schedule(&tips, now.local);
        for (id, batch) in asks {
            self.send(&id, Message::GetBlocks(batch));
        }
    }

    pub(super) fn on_block(&mut self, id: NodeId, block: Block, now: Now) -> Result<(), String> {
        let hash = block.hash();
        let height = match self.sched.delivered(&id, hash, block, now.local) {
            Delivery::Unrequested => return Err(format!("unrequested block {}", hash.short())),
            // Given to another peer since (stall), already received, or dropped with the
            // queue (a bad block before it): just late.
            Delivery::Late => None,
            Delivery::Taken { height } => Some(height),
        };
        if let Some(p) = self.peers.get_mut(&id) {
            p.know(hash.0);
            if let Some(h) = height {
                p.activity.note_best(h, hash, None);
                p.last_useful = now.unix;
            }
        }
        if height.is_none() {
            return Ok(());
        }
        // Hand blocks over in runs, not one by one (each handover ends with a flush): when a
        // full batch is ready at the front, or when nothing more is on its way.
        if self.sched.nothing_in_flight() || self.sched.ready_run() >= SUBMIT_BATCH {
            self.submit_ready();
        }
        self.schedule(now);
        Ok(())
    }

    /// Hand the node the received blocks whose ancestors in the queue are all received, in
    /// queue (chain) order, as one batch; its verdict comes back as [`Input::BlocksDone`],
    /// and peers are served meanwhile. One batch at a time (the next may build on this one);
    /// what is ready by the verdict goes next. A block nobody delivers holds back only its
    /// own descendants, never another branch.
    pub(super) fn submit_ready(&mut self) {
        if self.submission.is_some() {
            return;
        }
        let ready = self.sched.take_ready(SUBMIT_BATCH);
        if ready.is_empty() {
            return;
        }
        let mut sub = Submission {
            blocks: Vec::with_capacity(ready.len()),
            senders: Vec::with_capacity(ready.len()),
            heights: HashMap::with_capacity(ready.len()),
        };
        let mut batch = Vec::with_capacity(ready.len());
        for r in ready {
            sub.heights.insert(r.hash, r.height);
            sub.blocks.push((r.height, r.hash, r.block.header.time));
            sub.senders.push(r.from);
            batch.push(r.block);
        }
        self.submission = Some(sub);
        let more = self.sched.wanted() > 0;
        self.out.push(Output::SubmitBlocks {
            blocks: batch,
            more,
        });
    }

    pub(super) fn blocks_done(&mut self, outcome: Result<BatchOutcome, NodeError>, now: Now) {
        let Some(sub) = self.submission.take() else {
            return;
        };
        match outcome {
            Ok(outcome) => {
                let took = outcome.failure.as_ref().map_or(sub.blocks.len(), |f| f.0);
                log_received(&sub.blocks[..took], &sub.senders[..took], now.unix);
                if let Some((i, reason, invalid)) = outcome.failure {
                    tracing::warn!("block {} of a batch refused: {reason}", i + 1);
                    // The rest of the queue built on it: drop it all and re-ask.
                    self.sched.reset();
                    if invalid && let Some(from) = sub.senders.get(i) {
                        // The reason names the block and says it is invalid.
                        self.ban(*from, &reason, now);
                    }
                    // Re-ask: the other peers' branches were dropped with the queue.
                    let ids: Vec<NodeId> = self.peers.keys().copied().collect();
                    for id in ids {
                        self.ask_headers(&id);
                    }
                    return;
                }
            }
            Err(e) => {
                tracing::error!("submitting blocks: {e}");
                return;
            }
        }
        self.submit_ready();
        self.schedule(now);
        // Caught up: what is now our tip is news to peers.
        self.announce_tip();
    }

    /// Peers that stalled (see [`super::sched`]) lose their requests; after [`MAX_STALLS`]
    /// in a row one goes, banned if it stalled on blocks whose headers it sent us itself.
    pub(super) fn check_stalls(&mut self, now: Now) {
        for stall in self.sched.check_stalls(now.local) {
            let id = stall.id;
            tracing::info!(
                "peer {} delivered no block for {} s: its requests go elsewhere",
                id.short(),
                STALL_TIMEOUT.as_secs()
            );
            if stall.stalls >= MAX_STALLS {
                if stall.own {
                    self.ban(
                        id,
                        &format!("announced blocks and did not deliver them ({MAX_STALLS} stalls)"),
                        now,
                    );
                } else {
                    tracing::info!("dropping peer {}: stalled block downloads", id.short());
                    self.disconnect(&id, DisconnectReason::Normal, "stalled", now);
                }
            }
        }
    }

    /// Drop queued blocks that no connected peer can give, with their descendants.
    pub(super) fn drop_undeliverable(&mut self) {
        let tips = peer_tips(&self.peers);
        let dropped = self.sched.drop_undeliverable(&tips);
        if dropped > 0 {
            tracing::info!("dropping {dropped} queued block(s) that no peer delivers");
        }
    }
}

/// Connected peers as the scheduler sees them, in id order.
fn peer_tips(peers: &BTreeMap<NodeId, Peer>) -> Vec<PeerTip<'_>> {
    peers
        .values()
        .map(|p| PeerTip {
            id: p.info.id,
            height: p.info.height,
            known: &p.known,
        })
        .collect()
}

/// One log line for blocks received from peers and accepted: each block on its own while they
/// come one at a time (with how long after its timestamp it arrived), a range during a sync.
fn log_received(blocks: &[(u64, BlockHash, u64)], from: &[NodeId], now: u64) {
    let after = |t: u64| match now.checked_sub(t) {
        Some(d) => format!("{d} s after its timestamp"),
        None => format!("{} s before its timestamp", t - now),
    };
    match (blocks, from) {
        ([], _) => {}
        (one, ids) if one.len() <= 2 => {
            for ((h, hash, t), id) in one.iter().zip(ids) {
                tracing::info!(
                    "block {h} {} from peer {}, received {}",
                    hash.short(),
                    id.short(),
                    after(*t)
                );
            }
        }
        (many, ids) => {
            let first = many[0].0;
            let (last, hash, t) = many[many.len() - 1];
            let mut peers: Vec<String> = ids.iter().map(|i| i.short()).collect();
            peers.sort();
            peers.dedup();
            tracing::info!(
                "blocks {first}–{last} ({} blocks) from peer {}; block {last} {} received {}",
                many.len(),
                peers.join(", "),
                hash.short(),
                after(t)
            );
        }
    }
}
