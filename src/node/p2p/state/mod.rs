//! The peer-to-peer protocol as a state machine: [`P2pState::step`] takes one input (a peer
//! connected, a message, a peer gone, a timer, a command, a node event, the node's verdict on
//! something handed to it) and the time, and answers with outputs (send, disconnect, dial,
//! hand blocks or a transaction to the node, save the address book, publish the view). It
//! does no I/O, spawns nothing and reads no clock; it reads chain facts through a
//! [`ChainView`]. The reactor in `p2p/mod.rs` drives it with sockets and real time; a
//! simulator can drive it with a virtual network and virtual time.
//!
//! Its parts: handshakes and the peer table (`peers.rs`), headers-first sync (`sync.rs`, over
//! the download scheduler [`super::sched`]), relay (`relay.rs`), and the address book and bans
//! ([`super::book`]). This file holds the types, the dispatch of inputs and messages, the
//! timer and the view. Peers are kept in node-id order, so the same inputs give the same
//! outputs.

mod compact;
mod peers;
mod relay;
mod sync;

use super::book::{Book, Records};
use super::conn::Activity;
use super::sched::{MAX_WANTED, Scheduler};
use super::time::LocalTime;
use super::{CompactStats, P2pView, PeerInfo};
use crate::core::block::Block;
use crate::core::hash::{BlockHash, Txid};
use crate::core::pow::{CompactTarget, Target, Work};
use crate::core::tx::Transaction;
use crate::net::DisconnectReason;
use crate::net::compact::PartialBlock;
use crate::net::identity::{NodeId, PeerAddr};
use crate::net::wire::{Hello, MAX_ADDRS, Message};
use crate::node::{BatchOutcome, NodeError, NodeEvent};
use crate::storage::BlockMeta;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Blocks handed to the node at once during sync.
pub const SUBMIT_BATCH: usize = 500;
/// Known-inventory entries kept per peer before the set is reset.
const MAX_KNOWN: usize = 50_000;
/// Time between pings.
pub const PING_EVERY: Duration = Duration::from_secs(5);
/// Pings remembered per peer: a pong to any of them is late, not unrequested.
const PINGS_KEPT: usize = 16;
/// A peer that has answered none of this many pings in a row (a minute, on a live node) is
/// disconnected: its connection is up but it does not take part.
pub const PINGS_UNANSWERED: u32 = 12;
/// Transactions asked of one peer and not yet received, at most: what it announces beyond
/// this is not asked of it (another peer will announce it too).
pub const MAX_REQUESTED_TXS: usize = 5_000;
/// A transaction asked of a peer and not received in this long is no longer awaited.
pub const TX_REQUEST_EXPIRY: Duration = Duration::from_secs(60);
/// Announcements (our tip, new transactions) go out at most this often; what comes in
/// between is sent together.
pub const TRICKLE: Duration = Duration::from_millis(100);
/// An existing connection in the other direction older than this is not a crossing dial: a
/// new connection from the same node replaces it (the node restarted).
const CROSSING_DIAL: Duration = Duration::from_secs(5);
/// With outbound slots full, one extra outbound connection this often (see
/// [`P2pState::rotate`]).
pub const ROTATE_EVERY: Duration = Duration::from_secs(300);
/// How long an extra connection has to give us a block or a transaction to be kept.
pub const ROTATION_LOOK: Duration = Duration::from_secs(60);

/// The time an input happens at: the monotonic clock for timeouts, and the wall clock (Unix
/// seconds) for what is saved or shown (bans, "connected since").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    pub local: LocalTime,
    pub unix: u64,
}

/// The chain facts the protocol needs, read from wherever the chain is.
pub trait ChainView: Send {
    /// Our tip: its height, hash and cumulative work.
    fn tip(&self) -> (u64, BlockHash, Work);
    /// A stored block's index entry.
    fn block_meta(&self, hash: &BlockHash) -> Option<BlockMeta>;
    /// Whether the block is stored (when unsure, true: nothing is fetched twice).
    fn has_block(&self, hash: &BlockHash) -> bool;
    /// Whether the transaction is in the mempool or the chain (when unsure, true).
    fn has_tx(&self, txid: &Txid) -> bool;
    /// A locator from our tip back to genesis.
    fn locator(&self) -> Result<Vec<BlockHash>, String>;
    /// The mempool's transaction ids, parents first.
    fn mempool_txids(&self) -> Vec<Txid>;
    /// A mempool transaction.
    fn mempool_tx(&self, txid: &Txid) -> Option<Transaction>;
    /// A stored block.
    fn block(&self, hash: &BlockHash) -> Option<Block>;
    /// The compact target a block on `parent` must meet, if `parent` is our tip (`None`:
    /// it is not, or the target is not known). One read: the tip cannot move in between.
    fn next_bits(&self, parent: &BlockHash) -> Option<CompactTarget>;
}

/// A connection as the state knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// Unique per connection (see `Connection::serial`).
    pub serial: u64,
    /// The peer's proven identity.
    pub id: NodeId,
    /// Where the connection comes from (or goes to).
    pub remote: SocketAddr,
}

/// A command from the node's owner; answered with [`Output::Answer`] where it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Dial a peer now (and keep it in the book); answered once the dial settles.
    Connect(PeerAddr),
    /// Lift a ban on a node id or address; answered whether there was one.
    Unban(String),
    /// Ask every peer for headers beyond our tip.
    SyncNow,
    /// Keep only these peers (`None`: any).
    Restrict(Option<HashSet<NodeId>>),
    /// Say goodbye to every peer and save the book.
    Shutdown,
}

/// What a command came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Connected to this node, or why not.
    Connected(Result<NodeId, String>),
    /// Whether a ban was lifted.
    Unbanned(bool),
    /// Done.
    Done,
}

/// One input to [`P2pState::step`].
pub enum Input {
    /// A connection finished its handshake. `dialed`: the address we dialed (`None`: it
    /// dialed us).
    Connected {
        conn: ConnInfo,
        hello: Hello,
        dialed: Option<SocketAddr>,
        activity: Arc<Activity>,
    },
    /// A message on a connection.
    Message {
        serial: u64,
        id: NodeId,
        msg: Message,
    },
    /// A connection ended (`serial`: `None` if it ended in its handshake).
    Gone {
        id: NodeId,
        serial: Option<u64>,
        remote: Option<SocketAddr>,
        reason: String,
        misbehaviour: bool,
    },
    /// A dial failed before or during its handshake.
    DialFailed(SocketAddr, String),
    /// A connection's send queue overflowed (`queued` bytes): it does not read.
    NotReading { serial: u64, queued: usize },
    /// The one-second timer.
    Tick,
    /// The [`TRICKLE`] timer.
    Trickle,
    /// A command, answered (where it asks) with the same `req`.
    Command { req: u64, cmd: Command },
    /// Something happened in the node.
    Node(NodeEvent),
    /// Node events were missed.
    NodeLagged,
    /// The node's answer to [`Output::SubmitBlocks`].
    BlocksDone(Result<BatchOutcome, NodeError>),
    /// The node's answer to [`Output::SubmitTx`].
    TxDone {
        from: NodeId,
        /// The address of the connection it came on.
        remote: SocketAddr,
        txid: Txid,
        result: Result<Txid, NodeError>,
    },
}

/// One thing for the reactor to do.
#[derive(Debug)]
pub enum Output {
    Send {
        serial: u64,
        msg: Message,
    },
    Disconnect {
        serial: u64,
        reason: DisconnectReason,
        detail: String,
    },
    Dial(PeerAddr),
    /// Hand these blocks (in chain order) to the node; answer with [`Input::BlocksDone`].
    /// `more`: more blocks are queued for download (the node may flush later).
    SubmitBlocks {
        blocks: Vec<Block>,
        more: bool,
    },
    /// Hand a peer's transaction to the node; answer with [`Input::TxDone`]. Transactions
    /// must reach the node in the order they are given (a child may follow its parent).
    SubmitTx {
        from: NodeId,
        remote: SocketAddr,
        tx: Transaction,
    },
    /// Save the address book and bans.
    SaveRecords(Records),
    /// The view changed.
    View(P2pView),
    Answer {
        req: u64,
        answer: Answer,
    },
}

/// How the protocol is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    pub id: NodeId,
    pub listen: Option<SocketAddr>,
    pub max_outbound: usize,
    pub max_inbound: usize,
    pub ban_time: Duration,
    /// The easiest target a header may have.
    pub pow_limit: Target,
    /// The most bytes a block may have (what a compact block may take to rebuild).
    pub max_block_bytes: usize,
    /// Time between pings of each peer ([`PING_EVERY`] on a real node).
    pub ping_every: Duration,
    /// Whether to make [`Output::View`]s (a simulated node has nobody to show them to).
    pub views: bool,
}

struct Peer {
    serial: u64,
    activity: Arc<Activity>,
    info: PeerInfo,
    /// Hashes (blocks and txids) this peer is known to have.
    known: HashSet<[u8; 32]>,
    /// Transactions asked of it and not yet received, with when (they expire: a peer may
    /// no longer have what it announced, and says nothing).
    requested_txs: HashMap<Txid, LocalTime>,
    /// When its last message reached the state (liveness, with the pings).
    last_heard: LocalTime,
    /// Unix seconds when it last gave us a block or a transaction we did not have.
    last_useful: u64,
    /// Pings sent and not yet answered, oldest first.
    pings: VecDeque<(u64, LocalTime)>,
    last_ping: LocalTime,
    connected_at: LocalTime,
    /// Transactions to announce at the next trickle.
    tx_inv: Vec<Txid>,
    /// Its send queue overflowed: it does not read, and goes at the next tick.
    overflow: Option<usize>,
    /// Address it listens on (from its Hello), for the book.
    listen: Option<SocketAddr>,
    /// The protocol version settled on with it (2 and up: compact blocks).
    protocol: u32,
    /// A block it sent compactly whose missing transactions we asked it for.
    partial: Option<PartialBlock>,
    /// The blocks whose transactions we last asked it for: an answer for one no longer in
    /// `partial` is late, not unrequested.
    asked_txs_of: VecDeque<BlockHash>,
}

impl Peer {
    fn know(&mut self, h: [u8; 32]) {
        if self.known.len() >= MAX_KNOWN {
            self.known.clear();
        }
        self.known.insert(h);
    }
}

/// A batch handed to the node and not yet answered for.
struct Submission {
    /// Each block's height, hash and timestamp, and who sent it.
    blocks: Vec<(u64, BlockHash, u64)>,
    senders: Vec<NodeId>,
    heights: HashMap<BlockHash, u64>,
}

/// See the module documentation.
pub struct P2pState {
    settings: Settings,
    chain: Box<dyn ChainView>,
    peers: BTreeMap<NodeId, Peer>,
    /// Headers-first block downloads.
    sched: Scheduler,
    /// Addresses and bans.
    book: Book,
    dialing: HashSet<SocketAddr>,
    /// Connect commands waiting for a dial of an address to settle (with the id they pinned).
    waiting: HashMap<SocketAddr, Vec<(Option<NodeId>, u64)>>,
    last_announced: Option<BlockHash>,
    /// How compact block relay went.
    compact_stats: CompactStats,
    /// When announcements last went out (see [`TRICKLE`]).
    last_trickle: LocalTime,
    /// Set by [`Command::Restrict`]: the only node ids we stay connected to.
    allowed: Option<HashSet<NodeId>>,
    /// The batch with the node, if any.
    submission: Option<Submission>,
    /// The extra outbound connection being tried, if any (see [`P2pState::rotate`]).
    rotation: Option<Rotation>,
    last_rotation: LocalTime,
    /// When each address was last the extra connection (bounded by the book's size).
    rotated: HashMap<SocketAddr, LocalTime>,
    out: Vec<Output>,
}

/// The extra outbound connection of [`P2pState::rotate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rotation {
    Dialing(SocketAddr),
    /// The peer, on this connection.
    Connected(NodeId, u64),
}

impl P2pState {
    /// A state with the saved `records` loaded and the peers to keep (`connect`) in its book.
    pub fn new(
        settings: Settings,
        chain: Box<dyn ChainView>,
        records: Records,
        connect: &[PeerAddr],
        now: Now,
    ) -> P2pState {
        let mut book = Book::new(settings.listen, settings.ban_time);
        book.load(records, now.unix);
        for p in connect {
            book.add(p.addr, p.id, true);
        }
        P2pState {
            settings,
            chain,
            peers: BTreeMap::new(),
            sched: Scheduler::new(),
            book,
            dialing: HashSet::new(),
            waiting: HashMap::new(),
            last_announced: None,
            compact_stats: CompactStats::default(),
            last_trickle: now.local,
            allowed: None,
            submission: None,
            rotation: None,
            last_rotation: now.local,
            rotated: HashMap::new(),
            out: Vec::new(),
        }
    }

    /// The bans in force at `now` (unix seconds), with their reasons.
    pub fn bans(&self, now: u64) -> Vec<crate::node::p2p::BanInfo> {
        self.book.bans(now)
    }

    /// Start: dial what is due and publish the view.
    pub fn start(&mut self, now: Now) -> Vec<Output> {
        self.dial_due(now);
        self.publish(now);
        std::mem::take(&mut self.out)
    }

    /// Take `input` at `now`; what to do.
    pub fn step(&mut self, input: Input, now: Now) -> Vec<Output> {
        match input {
            Input::Connected {
                conn,
                hello,
                dialed,
                activity,
            } => {
                let result = self.connected(conn, hello, dialed, activity, now);
                if let Some(a) = dialed {
                    for (pinned, req) in self.waiting.remove(&a).unwrap_or_default() {
                        let answer = match (&result, pinned) {
                            (Ok(id), Some(p)) if *id != p => {
                                Err(format!("{a} is node {id}, not {p}"))
                            }
                            _ => result.clone(),
                        };
                        self.answer(req, Answer::Connected(answer));
                    }
                }
            }
            Input::Message { serial, id, msg } => {
                // Only the current connection's: a replaced duplicate's late messages answer
                // what was asked on it.
                // The view is published on the timer and on bans, not per message.
                if let Some(p) = self.peers.get_mut(&id).filter(|p| p.serial == serial) {
                    p.last_heard = now.local;
                    if let Err(reason) = self.handle(id, msg, now) {
                        self.ban(id, &reason, now);
                    }
                }
            }
            Input::Gone {
                id,
                serial,
                remote,
                reason,
                misbehaviour,
            } => self.gone(id, serial, remote, &reason, misbehaviour, now),
            Input::DialFailed(addr, reason) => {
                tracing::info!("dial {addr} failed: {reason}");
                self.dialing.remove(&addr);
                if self.rotation == Some(Rotation::Dialing(addr)) {
                    self.rotation = None;
                }
                for (_, req) in self.waiting.remove(&addr).unwrap_or_default() {
                    self.answer(req, Answer::Connected(Err(reason.clone())));
                }
                self.book.dial_failed(&addr, now.unix);
            }
            Input::NotReading { serial, queued } => {
                if let Some(p) = self.peers.values_mut().find(|p| p.serial == serial) {
                    if p.overflow.is_none() {
                        tracing::info!(
                            "send queue to {} is full ({queued} bytes)",
                            p.info.id.short()
                        );
                    }
                    p.overflow = Some(queued);
                }
            }
            Input::Tick => {
                self.tick(now);
                // Whatever is ready and has waited for a fuller batch.
                self.submit_ready();
            }
            Input::Trickle => self.trickle(now),
            Input::Command { req, cmd } => self.command(req, cmd, now),
            Input::Node(ev) => self.node_event(ev, now),
            Input::NodeLagged => self.announce_tip(),
            Input::BlocksDone(outcome) => self.blocks_done(outcome, now),
            Input::TxDone {
                from,
                remote,
                txid,
                result,
            } => match result {
                Ok(_) => {
                    if let Some(p) = self.peers.get_mut(&from) {
                        p.last_useful = now.unix;
                    }
                }
                // Races between honest peers are normal; an invalid transaction is not. The
                // verdict may come after the peer left or reconnected: the ban takes the
                // address the transaction came from, and the identity goes wherever it is.
                Err(NodeError::Mempool(e)) if e.is_peer_fault() => {
                    let reason = format!("invalid transaction {}: {e}", txid.short());
                    self.drop_peer(&from, DisconnectReason::Misbehaviour, &reason);
                    self.ban_as(from, Some(remote), &reason, now);
                }
                Err(NodeError::Mempool(_)) => {}
                Err(e) => tracing::error!("submitting a peer transaction: {e}"),
            },
        }
        std::mem::take(&mut self.out)
    }

    fn answer(&mut self, req: u64, answer: Answer) {
        self.out.push(Output::Answer { req, answer });
    }

    fn send(&mut self, id: &NodeId, msg: Message) {
        if let Some(p) = self.peers.get(id) {
            self.out.push(Output::Send {
                serial: p.serial,
                msg,
            });
        }
    }

    fn close(&mut self, serial: u64, reason: DisconnectReason, detail: &str) {
        self.out.push(Output::Disconnect {
            serial,
            reason,
            detail: detail.to_string(),
        });
    }

    fn save_records(&mut self) {
        self.out.push(Output::SaveRecords(self.book.records()));
    }

    fn command(&mut self, req: u64, cmd: Command, now: Now) {
        match cmd {
            Command::Connect(addr) => {
                self.book.add(addr.addr, addr.id, true);
                self.book.try_now(&addr.addr);
                if let Some(p) = self.peers.values().find(|p| p.info.addr == addr.addr) {
                    let id = p.info.id;
                    self.answer(req, Answer::Connected(Ok(id)));
                    return;
                }
                // Answer when the dial settles (Connected or DialFailed for this address);
                // an address already being dialed is not dialed twice.
                self.waiting
                    .entry(addr.addr)
                    .or_default()
                    .push((addr.id, req));
                if self.dialing.insert(addr.addr) {
                    self.out.push(Output::Dial(addr));
                }
            }
            Command::Unban(who) => {
                let lifted = self.book.unban(&who);
                if lifted {
                    self.save_records();
                    self.publish(now);
                }
                self.answer(req, Answer::Unbanned(lifted));
            }
            Command::SyncNow => {
                let ids: Vec<NodeId> = self.peers.keys().copied().collect();
                for id in ids {
                    self.ask_headers(&id);
                }
                self.answer(req, Answer::Done);
            }
            Command::Restrict(allowed) => {
                let refused: Vec<NodeId> = match &allowed {
                    Some(a) => self
                        .peers
                        .keys()
                        .filter(|id| !a.contains(id))
                        .copied()
                        .collect(),
                    None => Vec::new(),
                };
                self.allowed = allowed;
                for id in refused {
                    tracing::info!("peer {} is no longer allowed: disconnecting", id.short());
                    self.drop_peer(&id, DisconnectReason::Normal, "link cut");
                }
                self.dial_due(now);
                self.publish(now);
                self.answer(req, Answer::Done);
            }
            Command::Shutdown => {
                let serials: Vec<u64> = self.peers.values().map(|p| p.serial).collect();
                for s in serials {
                    self.close(s, DisconnectReason::Normal, "shutting down");
                }
                self.save_records();
                self.answer(req, Answer::Done);
            }
        }
    }

    /// Handle one message; `Err(reason)` when the peer misbehaved.
    fn handle(&mut self, id: NodeId, msg: Message, now: Now) -> Result<(), String> {
        if let Some(p) = self.peers.get(&id)
            && msg.min_protocol() > p.protocol
        {
            return Err(format!(
                "sent {} on a protocol {} connection",
                msg.kind(),
                p.protocol
            ));
        }
        match msg {
            Message::Hello(_) => return Err("second hello".into()),
            Message::Pong(n) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    // A pong to any ping still remembered is an answer, however late; the
                    // pings before it were not answered and are forgotten.
                    match p.pings.iter().position(|(sent, _)| *sent == n) {
                        Some(i) => {
                            let (_, at) = p.pings[i];
                            p.info.rtt = Some(now.local.duration_since(at));
                            p.pings.drain(..=i);
                        }
                        None => return Err("unrequested pong".into()),
                    }
                }
            }
            // Answered by the connection's own task; never reach the state.
            Message::Ping(_)
            | Message::GetHeaders { .. }
            | Message::GetBlocks(_)
            | Message::GetTxs(_)
            | Message::GetBlockTxs { .. } => {}
            Message::CompactBlock(cb) => self.on_compact_block(id, cb, now)?,
            Message::BlockTxs { block, txs } => self.on_block_txs(id, block, txs, now)?,
            Message::Headers(headers) => self.on_headers(id, headers, now)?,
            Message::Block(block) => self.on_block(id, block, now)?,
            Message::NotFound(hashes) => {
                for h in hashes {
                    self.sched.not_found(&id, &h)?;
                }
                self.schedule(now);
            }
            Message::InvBlocks(hashes) => self.on_inv_blocks(id, &hashes),
            Message::InvTxs(txids) => self.on_inv_txs(id, txids, now),
            Message::Tx(tx) => self.on_tx(id, tx)?,
            Message::GetAddrs => {
                let mut addrs: Vec<SocketAddr> =
                    self.peers.values().filter_map(|p| p.listen).collect();
                addrs.extend(self.book.addrs());
                addrs.sort();
                addrs.dedup();
                addrs.truncate(MAX_ADDRS);
                self.send(&id, Message::Addrs(addrs));
            }
            Message::Addrs(addrs) => {
                for a in addrs {
                    self.book.add(a, None, false);
                }
                self.dial_due(now);
            }
        }
        Ok(())
    }

    fn tick(&mut self, now: Now) {
        self.check_stalls(now);
        // Peers that do not read what we send go.
        let deaf: Vec<(NodeId, usize)> = self
            .peers
            .values()
            .filter_map(|p| p.overflow.map(|n| (p.info.id, n)))
            .collect();
        for (id, n) in deaf {
            tracing::info!(
                "disconnecting {}: it does not read ({n} bytes queued)",
                id.short()
            );
            self.disconnect(&id, DisconnectReason::NotReading, "does not read", now);
        }
        // Peers that answer no ping and send nothing else go (a peer busy sending us blocks
        // may answer a ping late: its answers queue behind them).
        let timeout = self.settings.ping_every * PINGS_UNANSWERED;
        let silent: Vec<NodeId> = self
            .peers
            .values()
            .filter(|p| {
                now.local.duration_since(p.last_heard) >= timeout
                    && p.pings
                        .front()
                        .is_some_and(|(_, at)| now.local.duration_since(*at) >= timeout)
            })
            .map(|p| p.info.id)
            .collect();
        // Requested transactions that never came are no longer awaited.
        for p in self.peers.values_mut() {
            p.requested_txs
                .retain(|_, at| now.local.duration_since(*at) < TX_REQUEST_EXPIRY);
        }
        for id in silent {
            tracing::info!(
                "disconnecting {}: no pong in {} s",
                id.short(),
                timeout.as_secs()
            );
            self.disconnect(&id, DisconnectReason::Normal, "answers no ping", now);
        }
        // Pings.
        let mut pings = Vec::new();
        for p in self.peers.values_mut() {
            if now.local.duration_since(p.last_ping) >= self.settings.ping_every {
                let n = now.unix ^ p.serial.rotate_left(32) ^ now.local.as_millis().rotate_left(16);
                if p.pings.len() >= PINGS_KEPT {
                    p.pings.pop_front();
                }
                p.pings.push_back((n, now.local));
                p.last_ping = now.local;
                pings.push((p.serial, n));
            }
        }
        for (serial, n) in pings {
            self.out.push(Output::Send {
                serial,
                msg: Message::Ping(n),
            });
        }
        if self.book.expire(now.unix) {
            self.save_records();
        }
        self.drop_undeliverable();
        // Headers beyond the queue from the peer with the most work, while the queue is short
        // (also covers a missed announcement).
        if self.sched.wanted() < MAX_WANTED / 2 {
            let (_, _, ours) = self.chain.tip();
            let best = self
                .peers
                .values()
                .filter(|p| p.info.work > ours)
                .max_by_key(|p| p.info.work)
                .map(|p| p.info.id);
            if let Some(id) = best {
                self.ask_headers(&id);
            }
        }
        self.schedule(now);
        self.announce_tip();
        self.dial_due(now);
        self.rotate(now);
        self.publish(now);
    }

    fn publish(&mut self, now: Now) {
        if !self.settings.views {
            return;
        }
        let mut peers: Vec<PeerInfo> = self
            .peers
            .values()
            .map(|p| {
                let mut info = p.info.clone();
                info.bytes_in = p.activity.bytes_in.load(Ordering::Relaxed);
                info.bytes_out = p.activity.bytes_out.load(Ordering::Relaxed);
                info.last_message = p.activity.last_recv.load(Ordering::Relaxed);
                // Its best block from everything we learned: handshake, headers it sent,
                // blocks it sent or announced, blocks it asked us for, its locator.
                if let Some(b) = p.activity.best()
                    && b.height >= info.height
                {
                    info.height = b.height;
                    info.tip = b.tip;
                    // Its work: known with the block, or from our index once we have it.
                    let work = b.work.or_else(|| {
                        let m = self.chain.block_meta(&b.tip)?;
                        p.activity.note_meta(&m);
                        Some(m.chainwork)
                    });
                    if let Some(w) = work {
                        info.work = w;
                    }
                }
                info
            })
            .collect();
        peers.sort_by_key(|p| p.addr);
        let view = P2pView {
            id: Some(self.settings.id),
            listen: self.settings.listen,
            peers,
            bans: self.book.bans(now.unix),
            known_addrs: self.book.len(),
            downloading: self.sched.queued(),
            compact: self.compact_stats,
        };
        self.out.push(Output::View(view));
    }
}
