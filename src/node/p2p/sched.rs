//! The block download scheduler of headers-first sync: which blocks are wanted (in chain
//! order), which peer was asked for which, what has arrived, and who stalls. I/O-free: it is
//! told the time and what peers there are, and answers with what to ask of whom; the caller
//! sends the messages and hands ready blocks to the node.
//!
//! A peer asked for blocks that delivers none for [`STALL_TIMEOUT`] loses those requests: they
//! go to any other peer that can give them, and the peer counts a stall. After [`MAX_STALLS`]
//! in a row the caller drops it, and bans it if it stalled on blocks whose headers it sent
//! itself (it announced work it does not deliver).

use super::time::LocalTime;
use crate::core::block::Block;
use crate::core::hash::BlockHash;
use crate::net::identity::NodeId;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

/// Blocks asked of one peer in one request.
pub const REQUEST_BLOCKS: usize = 64;
/// Blocks in flight per peer.
pub const MAX_IN_FLIGHT: usize = 512;
/// A peer with blocks asked of it that delivers none for this long loses those requests.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Stalls in a row after which a peer is dropped.
pub const MAX_STALLS: u32 = 3;
/// Blocks queued for download at most; more headers are asked for as the queue drains.
pub const MAX_WANTED: usize = 20_000;

/// A block waiting to be downloaded or connected.
struct Wanted {
    height: u64,
    prev: BlockHash,
    /// Peers that sent us its header.
    from: Vec<NodeId>,
    /// Peer asked and when.
    asked: Option<(NodeId, LocalTime)>,
    /// The block, once received, and who sent it.
    got: Option<(Block, NodeId)>,
    /// Peers that answered NotFound or stalled on it: not asked again for it.
    lacking: Vec<NodeId>,
}

/// A peer's downloads.
#[derive(Default)]
struct Downloads {
    /// Blocks asked of it and not yet received: a late one (after a stall gave it to another
    /// peer, or after the queue was dropped) is ignored, not unrequested. Counted: the same
    /// block may be asked again (after the queue was dropped) and then comes twice.
    requested: HashMap<BlockHash, u32>,
    in_flight: usize,
    stalls: u32,
    /// When it last delivered a block we asked for (or when it was first asked, if it has
    /// not yet): the stall clock.
    last_delivery: LocalTime,
}

impl Downloads {
    /// Count one block asked of this peer as answered; false if it was not asked.
    fn unrequest(&mut self, hash: &BlockHash) -> bool {
        match self.requested.get_mut(hash) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.requested.remove(hash);
                true
            }
            None => false,
        }
    }
}

/// What the scheduler needs to know of a connected peer.
pub struct PeerTip<'a> {
    pub id: NodeId,
    /// The height it is known to have.
    pub height: u64,
    /// Hashes it is known to have.
    pub known: &'a HashSet<[u8; 32]>,
}

impl PeerTip<'_> {
    /// Whether it can give `w`: a block whose header it sent, a block it announced, or any
    /// block at or below its height (only headers some peer sent are queued).
    fn can_give(&self, hash: &BlockHash, w: &Wanted) -> bool {
        !w.lacking.contains(&self.id)
            && (w.from.contains(&self.id)
                || self.known.contains(&hash.0)
                || w.height <= self.height)
    }
}

/// What a header offered to the queue came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Want {
    /// Already queued; the peer is noted as one that has it.
    Queued,
    /// Queued now.
    Added,
    /// The queue is full; ask again as it drains.
    Full,
}

/// What a block that arrived came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Not asked of this peer: a protocol violation.
    Unrequested,
    /// Asked, but no longer wanted or already here (it stalled and went elsewhere, or the
    /// queue was dropped): ignored.
    Late,
    /// Taken; it is at `height`.
    Taken { height: u64 },
}

/// A peer that stalled at [`Scheduler::check_stalls`].
#[derive(Debug, PartialEq, Eq)]
pub struct Stall {
    pub id: NodeId,
    /// Stalls in a row, this one included.
    pub stalls: u32,
    /// It stalled on a block whose header it sent itself.
    pub own: bool,
}

/// A received block whose ancestors in the queue were all handed over.
pub struct Ready {
    pub hash: BlockHash,
    pub block: Block,
    pub from: NodeId,
    pub height: u64,
}

/// See the module documentation.
#[derive(Default)]
pub struct Scheduler {
    /// Blocks wanted, in chain order.
    queue: VecDeque<BlockHash>,
    wanted: HashMap<BlockHash, Wanted>,
    peers: BTreeMap<NodeId, Downloads>,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// A peer connected: nothing asked of it yet.
    pub fn add_peer(&mut self, id: NodeId, now: LocalTime) {
        self.peers.insert(
            id,
            Downloads {
                last_delivery: now,
                ..Downloads::default()
            },
        );
    }

    /// A peer left (or its connection was replaced): what was asked of it goes back to the
    /// queue.
    pub fn remove_peer(&mut self, id: &NodeId) {
        self.peers.remove(id);
        for w in self.wanted.values_mut() {
            if matches!(w.asked, Some((p, _)) if p == *id) && w.got.is_none() {
                w.asked = None;
            }
        }
    }

    /// Headers `id` sent count for nothing any more (it was banned): blocks only it announced
    /// are dropped at the next [`Scheduler::drop_undeliverable`] unless another peer has them.
    pub fn forget_sender(&mut self, id: &NodeId) {
        for w in self.wanted.values_mut() {
            w.from.retain(|p| p != id);
        }
    }

    /// Blocks wanted (queued, asked or received and not yet handed over).
    pub fn wanted(&self) -> usize {
        self.wanted.len()
    }

    /// Blocks in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The height of a wanted block.
    pub fn height_of(&self, hash: &BlockHash) -> Option<u64> {
        self.wanted.get(hash).map(|w| w.height)
    }

    pub fn is_wanted(&self, hash: &BlockHash) -> bool {
        self.wanted.contains_key(hash)
    }

    /// The last block queued: where the next headers should start.
    pub fn last_queued(&self) -> Option<BlockHash> {
        self.queue.back().copied()
    }

    /// Whether a download is under way (something asked or received).
    pub fn busy(&self) -> bool {
        self.wanted
            .values()
            .any(|w| w.asked.is_some() || w.got.is_some())
    }

    /// Whether no peer has blocks asked of it.
    pub fn nothing_in_flight(&self) -> bool {
        self.peers.values().all(|d| d.in_flight == 0)
    }

    /// Queue block `hash` at `height` (its header came from `from`), unless it is queued.
    pub fn want(&mut self, hash: BlockHash, prev: BlockHash, height: u64, from: NodeId) -> Want {
        if let Some(w) = self.wanted.get_mut(&hash) {
            if !w.from.contains(&from) {
                w.from.push(from);
            }
            return Want::Queued;
        }
        if self.wanted.len() >= MAX_WANTED {
            return Want::Full;
        }
        self.wanted.insert(
            hash,
            Wanted {
                height,
                prev,
                from: vec![from],
                asked: None,
                got: None,
                lacking: Vec::new(),
            },
        );
        self.queue.push_back(hash);
        Want::Added
    }

    /// Ask peers for queued blocks they can give, up to [`REQUEST_BLOCKS`] per request and
    /// [`MAX_IN_FLIGHT`] per peer, in the order `peers` are given: the requests to send.
    pub fn schedule(
        &mut self,
        peers: &[PeerTip<'_>],
        now: LocalTime,
    ) -> Vec<(NodeId, Vec<BlockHash>)> {
        let mut out = Vec::new();
        for peer in peers {
            let Some(d) = self.peers.get(&peer.id) else {
                continue;
            };
            let mut room = MAX_IN_FLIGHT.saturating_sub(d.in_flight);
            let mut batch = Vec::new();
            for hash in &self.queue {
                if room == 0 || batch.len() >= REQUEST_BLOCKS {
                    break;
                }
                let Some(w) = self.wanted.get(hash) else {
                    continue;
                };
                if w.asked.is_some() || w.got.is_some() || !peer.can_give(hash, w) {
                    continue;
                }
                batch.push(*hash);
                room -= 1;
            }
            if batch.is_empty() {
                continue;
            }
            for h in &batch {
                if let Some(w) = self.wanted.get_mut(h) {
                    w.asked = Some((peer.id, now));
                }
            }
            if let Some(d) = self.peers.get_mut(&peer.id) {
                if d.in_flight == 0 {
                    // The stall clock starts with the first request of an idle peer.
                    d.last_delivery = now;
                }
                d.in_flight += batch.len();
                for h in &batch {
                    *d.requested.entry(*h).or_default() += 1;
                }
            }
            out.push((peer.id, batch));
        }
        out
    }

    /// Count the queued block `hash` as asked of `id` (a request the caller makes itself,
    /// such as the transactions of a compact block `id` sent); false if it is not queued, is
    /// asked of a peer already, or has arrived.
    pub fn ask(&mut self, id: &NodeId, hash: &BlockHash, now: LocalTime) -> bool {
        let Some(d) = self.peers.get_mut(id) else {
            return false;
        };
        let Some(w) = self.wanted.get_mut(hash) else {
            return false;
        };
        if w.asked.is_some() || w.got.is_some() {
            return false;
        }
        w.asked = Some((*id, now));
        if d.in_flight == 0 {
            d.last_delivery = now;
        }
        d.in_flight += 1;
        *d.requested.entry(*hash).or_default() += 1;
        true
    }

    /// Block `hash` arrived from `id`.
    pub fn delivered(
        &mut self,
        id: &NodeId,
        hash: BlockHash,
        block: Block,
        now: LocalTime,
    ) -> Delivery {
        let Some(d) = self.peers.get_mut(id) else {
            return Delivery::Unrequested;
        };
        if !d.unrequest(&hash) {
            return Delivery::Unrequested;
        }
        d.stalls = 0;
        d.last_delivery = now;
        let Some(w) = self.wanted.get_mut(&hash) else {
            return Delivery::Late;
        };
        if w.got.is_some() {
            return Delivery::Late;
        }
        // Whoever it was asked of last has one fewer on its way (a stall may have given it to
        // another peer since; this one's copy still counts).
        if let Some((asked, _)) = w.asked.take()
            && let Some(d) = self.peers.get_mut(&asked)
        {
            d.in_flight = d.in_flight.saturating_sub(1);
        }
        w.got = Some((block, *id));
        Delivery::Taken { height: w.height }
    }

    /// Who `hash` is asked of now, if anyone.
    pub fn asked_of(&self, hash: &BlockHash) -> Option<NodeId> {
        self.wanted.get(hash)?.asked.map(|(id, _)| id)
    }

    /// Stop waiting for `hash` from `id` (what it gave for it was not the block): the block
    /// goes back to the queue, not to be asked of `id` again, and a late copy from `id` is
    /// late, not unrequested. False if it was not asked of `id`.
    pub fn give_up(&mut self, id: &NodeId, hash: &BlockHash) -> bool {
        let Some(w) = self.wanted.get_mut(hash) else {
            return false;
        };
        if !matches!(w.asked, Some((p, _)) if p == *id) || w.got.is_some() {
            return false;
        }
        w.asked = None;
        w.lacking.push(*id);
        if let Some(d) = self.peers.get_mut(id) {
            d.in_flight = d.in_flight.saturating_sub(1);
        }
        true
    }

    /// Ask `id` again for `hash` after [`Scheduler::give_up`] (no other peer has it): its
    /// earlier request still counts, so none is added.
    pub fn ask_again(&mut self, id: &NodeId, hash: &BlockHash, now: LocalTime) -> bool {
        let Some(w) = self.wanted.get_mut(hash) else {
            return false;
        };
        if w.asked.is_some() || w.got.is_some() {
            return false;
        }
        let Some(d) = self.peers.get_mut(id) else {
            return false;
        };
        if !d.requested.contains_key(hash) {
            return false;
        }
        w.lacking.retain(|p| p != id);
        w.asked = Some((*id, now));
        if d.in_flight == 0 {
            d.last_delivery = now;
        }
        d.in_flight += 1;
        true
    }

    /// `id` says it does not have `hash`. `Err` if it sent that block's header itself: it
    /// announced work it cannot give.
    pub fn not_found(&mut self, id: &NodeId, hash: &BlockHash) -> Result<(), String> {
        if let Some(d) = self.peers.get_mut(id) {
            d.unrequest(hash);
        }
        let Some(w) = self.wanted.get_mut(hash) else {
            return Ok(());
        };
        if !matches!(w.asked, Some((p, _)) if p == *id) {
            return Ok(());
        }
        if w.from.contains(id) {
            return Err(format!(
                "announced block {} and cannot deliver it",
                hash.short()
            ));
        }
        w.asked = None;
        w.lacking.push(*id);
        if let Some(d) = self.peers.get_mut(id) {
            d.in_flight = d.in_flight.saturating_sub(1);
        }
        Ok(())
    }

    /// Peers with blocks asked of them that delivered none for [`STALL_TIMEOUT`]: their
    /// requests go back to the queue (not to be asked of them again) and each counts a stall.
    pub fn check_stalls(&mut self, now: LocalTime) -> Vec<Stall> {
        let stalled: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, d)| d.in_flight > 0 && now.duration_since(d.last_delivery) > STALL_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        for id in stalled {
            let mut own = false;
            for w in self.wanted.values_mut() {
                if matches!(w.asked, Some((p, _)) if p == id) && w.got.is_none() {
                    w.asked = None;
                    w.lacking.push(id);
                    own |= w.from.contains(&id);
                }
            }
            if let Some(d) = self.peers.get_mut(&id) {
                d.in_flight = 0;
                d.stalls += 1;
                d.last_delivery = now;
                out.push(Stall {
                    id,
                    stalls: d.stalls,
                    own,
                });
            }
        }
        out
    }

    /// Drop queued blocks that none of `peers` can give (every peer that could lacks them, or
    /// the ones that sent their headers left or were banned), with their descendants:
    /// headers-only branches nobody delivers must not hold up anything else. How many went.
    pub fn drop_undeliverable(&mut self, peers: &[PeerTip<'_>]) -> usize {
        let mut dropped: HashSet<BlockHash> = HashSet::new();
        for h in &self.queue {
            let Some(w) = self.wanted.get(h) else {
                continue;
            };
            if dropped.contains(&w.prev) {
                dropped.insert(*h);
                continue;
            }
            if w.got.is_some() || w.asked.is_some() {
                continue;
            }
            if !peers.iter().any(|p| p.can_give(h, w)) {
                dropped.insert(*h);
            }
        }
        if dropped.is_empty() {
            return 0;
        }
        self.queue.retain(|h| !dropped.contains(h));
        for h in &dropped {
            if let Some(Wanted {
                asked: Some((p, _)),
                got: None,
                ..
            }) = self.wanted.remove(h)
                && let Some(d) = self.peers.get_mut(&p)
            {
                d.in_flight = d.in_flight.saturating_sub(1);
            }
        }
        dropped.len()
    }

    /// Received blocks at the front of the queue, ready to hand over in order.
    pub fn ready_run(&self) -> usize {
        self.queue
            .iter()
            .take_while(|h| self.wanted.get(h).is_some_and(|w| w.got.is_some()))
            .count()
    }

    /// Up to `max` received blocks whose ancestors in the queue are all received, in queue
    /// (chain) order, taken out of the queue. A block nobody delivers holds back only its own
    /// descendants, never another branch.
    pub fn take_ready(&mut self, max: usize) -> Vec<Ready> {
        let mut waiting: HashSet<BlockHash> = HashSet::new();
        let mut order = Vec::new();
        for h in &self.queue {
            if order.len() >= max {
                break;
            }
            let Some(w) = self.wanted.get(h) else {
                continue;
            };
            if w.got.is_some() && !waiting.contains(&w.prev) {
                order.push(*h);
            } else {
                waiting.insert(*h);
            }
        }
        let chosen: HashSet<BlockHash> = order.iter().copied().collect();
        self.queue.retain(|h| !chosen.contains(h));
        order
            .into_iter()
            .filter_map(|hash| match self.wanted.remove(&hash) {
                Some(Wanted {
                    got: Some((block, from)),
                    height,
                    ..
                }) => Some(Ready {
                    hash,
                    block,
                    from,
                    height,
                }),
                _ => None,
            })
            .collect()
    }

    /// Drop the whole queue (a block in it was refused, so what was queued after it built on
    /// it). Requests still out stay counted per peer, so their blocks arrive as late, not as
    /// unrequested.
    pub fn reset(&mut self) {
        self.queue.clear();
        self.wanted.clear();
        for d in self.peers.values_mut() {
            d.in_flight = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::block::BlockHeader;

    fn id(n: u8) -> NodeId {
        NodeId([n; 32])
    }

    /// A chain of `n` blocks (headers only matter here) on top of `BlockHash::ZERO`.
    fn chain(n: usize) -> Vec<Block> {
        let mut prev = BlockHash::ZERO;
        (0..n)
            .map(|i| {
                let b = Block {
                    header: BlockHeader {
                        version: 1,
                        prev,
                        merkle_root: crate::core::hash::MerkleRoot([0; 32]),
                        time: i as u64,
                        bits: crate::core::pow::CompactTarget(0x207fffff),
                        nonce: i as u64,
                    },
                    txs: Vec::new(),
                };
                prev = b.hash();
                b
            })
            .collect()
    }

    fn tip(id: NodeId, height: u64, known: &HashSet<[u8; 32]>) -> PeerTip<'_> {
        PeerTip { id, height, known }
    }

    fn at(secs: u64) -> LocalTime {
        LocalTime::from_millis(secs * 1000)
    }

    /// A scheduler with `ids` connected since time 0.
    fn with_peers(ids: &[NodeId]) -> Scheduler {
        let mut s = Scheduler::new();
        for id in ids {
            s.add_peer(*id, at(0));
        }
        s
    }

    /// Queue `blocks` with headers from `from`.
    fn queue(s: &mut Scheduler, blocks: &[Block], from: NodeId) {
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(
                s.want(b.hash(), b.header.prev, i as u64 + 1, from),
                Want::Added
            );
        }
    }

    #[test]
    fn a_stalled_request_goes_to_another_peer_and_the_staller_is_not_asked_again() {
        let blocks = chain(10);
        let (a, b) = (id(1), id(2));
        let known = HashSet::new();
        let mut s = with_peers(&[a, b]);
        queue(&mut s, &blocks, a);
        // Only a can give them (b is at height 0 and sent no header): all go to a.
        let tips = [tip(a, 10, &known), tip(b, 0, &known)];
        let asked = s.schedule(&tips, at(1));
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].0, a);
        assert_eq!(asked[0].1.len(), 10);
        // b catches up: nothing is asked of it while a's requests are out.
        let tips = [tip(a, 10, &known), tip(b, 10, &known)];
        assert!(s.schedule(&tips, at(2)).is_empty());
        // Exactly at the timeout it is no stall yet; just past it, it is.
        assert!(s.check_stalls(at(1) + STALL_TIMEOUT).is_empty());
        let stalls = s.check_stalls(at(1) + STALL_TIMEOUT + Duration::from_millis(1));
        assert_eq!(
            stalls,
            vec![Stall {
                id: a,
                stalls: 1,
                own: true
            }]
        );
        let asked = s.schedule(&tips, at(5));
        assert_eq!(asked, vec![(b, blocks.iter().map(Block::hash).collect())]);
        // a's copy arriving now is late, not unrequested; b's is taken.
        let first = blocks[0].clone();
        assert_eq!(
            s.delivered(&b, first.hash(), first.clone(), at(5)),
            Delivery::Taken { height: 1 }
        );
        assert_eq!(
            s.delivered(&a, first.hash(), first.clone(), at(5)),
            Delivery::Late
        );
        // A block never asked of it is a violation.
        assert_eq!(
            s.delivered(&b, first.hash(), first, at(5)),
            Delivery::Unrequested
        );
    }

    #[test]
    fn three_stalls_in_a_row_are_counted_and_a_delivery_resets_the_count() {
        let blocks = chain(3);
        let (a, b) = (id(1), id(2));
        let known = HashSet::new();
        let mut s = with_peers(&[a, b]);
        let only_a = |h| [tip(a, h, &known)];
        let mut t = 0;
        for round in 1..=3u32 {
            // A fresh block each round, its header from b (a stalled one is not asked of a
            // again); a is at its height, so it can be asked.
            let i = round as usize - 1;
            s.want(blocks[i].hash(), blocks[i].header.prev, round.into(), b);
            let asked = s.schedule(&only_a(10), at(t));
            assert_eq!(asked, vec![(a, vec![blocks[i].hash()])], "round {round}");
            t += 4;
            assert_eq!(
                s.check_stalls(at(t)),
                vec![Stall {
                    id: a,
                    stalls: round,
                    own: false
                }]
            );
        }
        // Nothing left that a may be asked for.
        assert!(s.schedule(&only_a(10), at(t)).is_empty());

        // Another peer: one stall, then a delivery, then a stall again counts 1.
        let c = id(3);
        let more = chain(5);
        let mut s = with_peers(&[c]);
        queue(&mut s, &more, c);
        let tips = [tip(c, 5, &known)];
        assert_eq!(s.schedule(&tips, at(0))[0].1.len(), 5);
        assert_eq!(s.check_stalls(at(4))[0].stalls, 1);
        // Its requests went back but are not asked of it again: queue new ones from another
        // sender so it has something to deliver.
        let d = id(4);
        s.add_peer(d, at(4));
        let asked = s.schedule(&[tip(d, 5, &known)], at(4));
        assert_eq!(asked[0].1.len(), 5);
        // c delivers a block it was asked before (late, but a delivery): its count resets.
        assert_eq!(
            s.delivered(&c, more[0].hash(), more[0].clone(), at(5)),
            Delivery::Taken { height: 1 }
        );
        assert!(s.check_stalls(at(20)).iter().all(|st| st.id != c));
    }

    #[test]
    fn not_found_from_the_header_sender_is_a_violation_and_from_another_peer_is_not() {
        let blocks = chain(2);
        let (a, b) = (id(1), id(2));
        let known = HashSet::new();
        let mut s = with_peers(&[a, b]);
        queue(&mut s, &blocks, a);
        let tips = [tip(b, 2, &known)];
        let asked = s.schedule(&tips, at(0));
        assert_eq!(asked[0].0, b);
        // b never sent the headers: it may lack the block, and is not asked for it again.
        assert_eq!(s.not_found(&b, &blocks[0].hash()), Ok(()));
        assert!(s.schedule(&tips, at(1)).is_empty());
        let tips = [tip(a, 2, &known)];
        let asked = s.schedule(&tips, at(1));
        assert_eq!(asked[0].1, vec![blocks[0].hash()]);
        let why = s.not_found(&a, &blocks[0].hash()).unwrap_err();
        assert!(why.contains("cannot deliver"), "{why}");
    }

    #[test]
    fn ready_blocks_come_out_in_chain_order_and_a_missing_one_holds_back_only_its_descendants() {
        let main = chain(3);
        let a = id(1);
        let known = HashSet::new();
        let mut s = with_peers(&[a]);
        queue(&mut s, &main, a);
        let tips = [tip(a, 3, &known)];
        s.schedule(&tips, at(0));
        // Blocks 3 and 1 arrive; 2 does not.
        for i in [2, 0] {
            let b = main[i].clone();
            assert!(matches!(
                s.delivered(&a, b.hash(), b, at(1)),
                Delivery::Taken { .. }
            ));
        }
        assert_eq!(s.ready_run(), 1);
        let ready = s.take_ready(500);
        assert_eq!(ready.iter().map(|r| r.height).collect::<Vec<_>>(), vec![1]);
        assert!(s.take_ready(500).is_empty());
        let b = main[1].clone();
        s.delivered(&a, b.hash(), b, at(2));
        let ready = s.take_ready(500);
        assert_eq!(
            ready.iter().map(|r| r.height).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert_eq!(s.queued(), 0);
        assert!(s.nothing_in_flight());
    }

    #[test]
    fn blocks_no_peer_can_give_are_dropped_with_their_descendants() {
        let blocks = chain(4);
        let (a, b) = (id(1), id(2));
        let known = HashSet::new();
        let mut s = with_peers(&[b]);
        queue(&mut s, &blocks, a);
        // a sent the headers and was banned: b is at height 1 only.
        s.forget_sender(&a);
        let tips = [tip(b, 1, &known)];
        assert_eq!(s.drop_undeliverable(&tips), 3);
        assert_eq!(s.queued(), 1);
        assert_eq!(s.last_queued(), Some(blocks[0].hash()));
    }

    #[test]
    fn after_a_reset_requests_still_out_arrive_as_late() {
        let blocks = chain(2);
        let a = id(1);
        let known = HashSet::new();
        let mut s = with_peers(&[a]);
        queue(&mut s, &blocks, a);
        s.schedule(&[tip(a, 2, &known)], at(0));
        s.reset();
        assert!(s.nothing_in_flight());
        assert_eq!(s.wanted(), 0);
        let b = blocks[1].clone();
        assert_eq!(s.delivered(&a, b.hash(), b, at(1)), Delivery::Late);
        // Nothing in flight: no stall either.
        assert!(s.check_stalls(at(60)).is_empty());
    }
}
