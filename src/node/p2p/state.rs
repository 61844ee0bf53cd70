//! The peer-to-peer protocol as a state machine: [`P2pState::step`] takes one input (a peer
//! connected, a message, a peer gone, a timer, a command, a node event, the node's verdict on
//! something handed to it) and the time, and answers with outputs (send, disconnect, dial,
//! hand blocks or a transaction to the node, save the address book, publish the view). It
//! does no I/O, spawns nothing and reads no clock; it reads chain facts through a
//! [`ChainView`]. The reactor in `p2p/mod.rs` drives it with sockets and real time; a
//! simulator can drive it with a virtual network and virtual time.
//!
//! Its parts: the download scheduler ([`super::sched`]) and the address book and bans
//! ([`super::book`]). Peers are kept in node-id order, so the same inputs give the same
//! outputs.

use super::book::{Book, DialFilter, Records};
use super::conn::Activity;
use super::sched::{Delivery, MAX_STALLS, MAX_WANTED, PeerTip, STALL_TIMEOUT, Scheduler, Want};
use super::time::LocalTime;
use super::{P2pView, PeerInfo};
use crate::core::block::{Block, BlockHeader};
use crate::core::hash::{BlockHash, Txid};
use crate::core::pow::{Target, Work};
use crate::core::tx::Transaction;
use crate::net::DisconnectReason;
use crate::net::identity::{NodeId, PeerAddr};
use crate::net::wire::{self, Hello, MAX_ADDRS, MAX_HEADERS, MAX_INV, Message};
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
/// Announcements (our tip, new transactions) go out at most this often; what comes in
/// between is sent together.
pub const TRICKLE: Duration = Duration::from_millis(100);
/// An existing connection in the other direction older than this is not a crossing dial: a
/// new connection from the same node replaces it (the node restarted).
const CROSSING_DIAL: Duration = Duration::from_secs(5);

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
    SubmitBlocks(Vec<Block>),
    /// Hand a peer's transaction to the node; answer with [`Input::TxDone`].
    SubmitTx {
        from: NodeId,
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
    requested_txs: HashSet<Txid>,
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
    /// When announcements last went out (see [`TRICKLE`]).
    last_trickle: LocalTime,
    /// Set by [`Command::Restrict`]: the only node ids we stay connected to.
    allowed: Option<HashSet<NodeId>>,
    /// The batch with the node, if any.
    submission: Option<Submission>,
    out: Vec<Output>,
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
            last_trickle: now.local,
            allowed: None,
            submission: None,
            out: Vec::new(),
        }
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
                if self.peers.get(&id).is_some_and(|p| p.serial == serial) {
                    if let Err(reason) = self.handle(id, msg, now) {
                        self.ban(id, &reason, now);
                    }
                    self.publish(now);
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
            Input::TxDone { from, txid, result } => match result {
                Ok(_) => {
                    if let Some(p) = self.peers.get_mut(&from) {
                        p.last_useful = now.unix;
                    }
                }
                // Races between honest peers are normal; an invalid transaction is not.
                Err(NodeError::Mempool(e)) if e.is_peer_fault() => {
                    self.ban(
                        from,
                        &format!("invalid transaction {}: {e}", txid.short()),
                        now,
                    );
                    self.publish(now);
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

    /// Ban `id` for misbehaviour: its identity, and the address its connection came from
    /// (never an address it merely claims to listen on: that may be another node's).
    /// The peer leaves the view in the same publish that lists its ban.
    fn ban(&mut self, id: NodeId, reason: &str, now: Now) {
        let addr = self.peers.get(&id).map(|p| p.info.addr);
        self.drop_peer(&id, DisconnectReason::Misbehaviour, reason);
        self.ban_as(id, addr, reason, now);
    }

    fn ban_as(&mut self, id: NodeId, addr: Option<SocketAddr>, reason: &str, now: Now) {
        tracing::warn!("banning peer {} ({addr:?}): {reason}", id.short());
        self.book.ban(id, addr, reason, now.unix);
        // Headers it sent count for nothing now; blocks only it announced are dropped at the
        // next tick unless another peer can give them.
        self.sched.forget_sender(&id);
        self.save_records();
        self.publish(now);
    }

    fn disconnect(&mut self, id: &NodeId, code: DisconnectReason, reason: &str, now: Now) {
        if self.drop_peer(id, code, reason) {
            self.publish(now);
        }
    }

    /// Closes `id`'s connection and forgets the peer, without publishing; false if it was not
    /// connected.
    fn drop_peer(&mut self, id: &NodeId, code: DisconnectReason, reason: &str) -> bool {
        let Some(p) = self.peers.remove(id) else {
            return false;
        };
        self.close(p.serial, code, reason);
        self.sched.remove_peer(id);
        true
    }

    fn gone(
        &mut self,
        id: NodeId,
        serial: Option<u64>,
        remote: Option<SocketAddr>,
        reason: &str,
        misbehaviour: bool,
        now: Now,
    ) {
        // Only the connection that ended: a newer one to the same node stays.
        let current = match (serial, self.peers.get(&id)) {
            (Some(s), Some(p)) => p.serial == s,
            _ => false,
        };
        if misbehaviour {
            if current {
                self.ban(id, reason, now);
            } else {
                // Misbehaved during the handshake: ban the identity and the address it came
                // from.
                self.ban_as(id, remote, reason, now);
            }
        } else if current {
            tracing::info!("peer {} left: {reason}", id.short());
            self.peers.remove(&id);
            self.sched.remove_peer(&id);
        } else {
            tracing::debug!("connection to {} ended: {reason}", id.short());
        }
        self.publish(now);
    }

    /// The inbound peer to drop for a newcomer when inbound slots are full: protected are
    /// the peers that recently gave us blocks or transactions, that recently fetched blocks
    /// or headers from us, and the lowest-latency ones; of the rest, the one useful longest
    /// ago, youngest first. None if every inbound peer is protected.
    fn eviction_candidate(&self) -> Option<NodeId> {
        let mut candidates: Vec<&Peer> = self.peers.values().filter(|p| p.info.inbound).collect();
        let protect = |c: &mut Vec<&Peer>, n: usize, key: &dyn Fn(&Peer) -> u64| {
            // Keep the `n` with the highest key (only those with a key above zero).
            c.sort_by_key(|p| std::cmp::Reverse(key(p)));
            let keep = c.iter().take(n).filter(|p| key(p) > 0).count();
            c.drain(..keep);
        };
        protect(&mut candidates, 4, &|p| p.last_useful);
        protect(&mut candidates, 4, &|p| {
            p.activity.last_served.load(Ordering::Relaxed)
        });
        protect(&mut candidates, 4, &|p| {
            p.info.rtt.map_or(0, |r| {
                u64::MAX - r.as_micros().min(u64::MAX as u128 - 1) as u64
            })
        });
        candidates
            .into_iter()
            .min_by_key(|p| {
                let useful = p
                    .last_useful
                    .max(p.activity.last_served.load(Ordering::Relaxed));
                (useful, std::cmp::Reverse(p.connected_at))
            })
            .map(|p| p.info.id)
    }

    fn connected(
        &mut self,
        conn: ConnInfo,
        hello: Hello,
        dialed: Option<SocketAddr>,
        activity: Arc<Activity>,
        now: Now,
    ) -> Result<NodeId, String> {
        let id = conn.id;
        if let Some(a) = dialed {
            self.dialing.remove(&a);
        }
        let addr = conn.remote;
        if let Some(b) = self.book.is_banned(
            &id,
            &addr,
            dialed.is_none(),
            self.allowed.as_ref(),
            now.unix,
        ) {
            let reason = if b.id == Some(id) {
                format!("banned: {}", b.reason)
            } else {
                format!("address {} has a banned peer: {}", addr.ip(), b.reason)
            };
            self.close(conn.serial, DisconnectReason::Banned, &reason);
            return Err(reason);
        }
        if self.allowed.as_ref().is_some_and(|a| !a.contains(&id)) {
            self.close(conn.serial, DisconnectReason::NotAllowed, "link cut");
            return Err(format!("node {} is not an allowed peer", id.short()));
        }
        if let Some(old) = self.peers.get(&id) {
            // Both sides dialed each other at once: keep the connection made by the node
            // with the smaller id, so both ends keep the same one. A second connection in the
            // same direction, or one next to an older connection, is no crossing dial: the
            // node restarted (or lost the old one), and the new one wins at once.
            let crossing = old.info.inbound != dialed.is_none()
                && now.local.duration_since(old.connected_at) < CROSSING_DIAL;
            let keep_new = !crossing || (dialed.is_some() == (self.settings.id < id));
            if !keep_new {
                self.close(
                    conn.serial,
                    DisconnectReason::Duplicate,
                    "duplicate connection",
                );
                return Ok(id);
            }
            // Blocks asked on the old connection are asked again on the new one.
            self.drop_peer(&id, DisconnectReason::Duplicate, "duplicate connection");
        }
        if dialed.is_none() {
            let inbound = self.peers.values().filter(|p| p.info.inbound).count();
            if inbound >= self.settings.max_inbound {
                match self.eviction_candidate() {
                    Some(victim) => {
                        tracing::info!(
                            "inbound slots full: evicting {} for {}",
                            victim.short(),
                            id.short()
                        );
                        self.disconnect(
                            &victim,
                            DisconnectReason::Evicted,
                            "evicted: inbound slots full",
                            now,
                        );
                    }
                    None => {
                        self.close(conn.serial, DisconnectReason::Evicted, "inbound slots full");
                        return Err("inbound slots full".into());
                    }
                }
            }
        }
        if let Some(listen) = hello.listen {
            if dialed.is_some() {
                // We reached it at this address and it proved its identity there.
                self.book.dial_succeeded(addr, id);
            } else {
                // Only claimed: worth a dial, bound to no identity until that dial proves one.
                self.book.add(listen, None, false);
            }
        }
        self.book.note_seen(id);
        let work = Work::from_be_bytes(hello.work);
        let mut peer = Peer {
            serial: conn.serial,
            activity,
            info: PeerInfo {
                id,
                addr,
                inbound: dialed.is_none(),
                height: hello.height,
                tip: hello.tip,
                work,
                rtt: None,
                bytes_in: 0,
                bytes_out: 0,
                user_agent: hello.user_agent.clone(),
                connected_since: now.unix,
                last_message: now.unix,
            },
            known: HashSet::new(),
            requested_txs: HashSet::new(),
            last_useful: 0,
            pings: VecDeque::new(),
            last_ping: now.local,
            connected_at: now.local,
            tx_inv: Vec::new(),
            overflow: None,
            listen: hello.listen,
        };
        peer.know(hello.tip.0);
        tracing::info!(
            "peer {} connected ({}, {}), height {}",
            id.short(),
            addr,
            if dialed.is_some() {
                "outbound"
            } else {
                "inbound"
            },
            hello.height
        );
        self.peers.insert(id, peer);
        self.sched.add_peer(id, now.local);
        // The Hello we sent was made when the connection started: our tip may have moved since
        // (and been announced before this peer was in the table), so announce it now.
        let (_, tip, ours) = self.chain.tip();
        self.send(&id, Message::GetAddrs);
        if let Some(p) = self.peers.get_mut(&id)
            && !p.known.contains(&tip.0)
        {
            p.know(tip.0);
            self.send(&id, Message::InvBlocks(vec![tip]));
        }
        if work > ours {
            self.ask_headers(&id);
        }
        // Share our mempool: peers fetch what they lack.
        let txids = self.chain.mempool_txids();
        for chunk in txids.chunks(MAX_INV) {
            if let Some(p) = self.peers.get_mut(&id) {
                for t in chunk {
                    p.know(t.0);
                }
            }
            self.send(&id, Message::InvTxs(chunk.to_vec()));
        }
        self.publish(now);
        Ok(id)
    }

    fn ask_headers(&mut self, id: &NodeId) {
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
    fn download_locator(&self) -> Result<Vec<BlockHash>, String> {
        let mut loc = Vec::new();
        if let Some(last) = self.sched.last_queued() {
            loc.push(last);
        }
        loc.extend(self.chain.locator()?);
        loc.truncate(wire::MAX_LOCATOR);
        Ok(loc)
    }

    /// Handle one message; `Err(reason)` when the peer misbehaved.
    fn handle(&mut self, id: NodeId, msg: Message, now: Now) -> Result<(), String> {
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
            | Message::GetTxs(_) => {}
            Message::Headers(headers) => self.on_headers(id, headers, now)?,
            Message::Block(block) => self.on_block(id, block, now)?,
            Message::NotFound(hashes) => {
                for h in hashes {
                    self.sched.not_found(&id, &h)?;
                }
                self.schedule(now);
            }
            Message::InvBlocks(hashes) => {
                let mut unknown = false;
                for h in &hashes {
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
            Message::InvTxs(txids) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    for t in &txids {
                        p.know(t.0);
                    }
                }
                let want: Vec<Txid> = txids
                    .into_iter()
                    .filter(|t| !self.chain.has_tx(t))
                    .collect();
                if !want.is_empty()
                    && let Some(p) = self.peers.get_mut(&id)
                {
                    p.requested_txs.extend(want.iter().copied());
                    self.send(&id, Message::GetTxs(want));
                }
            }
            Message::Tx(tx) => {
                let txid = tx.txid();
                let asked = self
                    .peers
                    .get_mut(&id)
                    .is_some_and(|p| p.requested_txs.remove(&txid));
                if !asked {
                    return Err(format!("unrequested transaction {}", txid.short()));
                }
                if let Some(p) = self.peers.get_mut(&id) {
                    p.know(txid.0);
                }
                // The node's verdict comes back as `Input::TxDone`.
                self.out.push(Output::SubmitTx { from: id, tx });
            }
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

    fn on_headers(
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
        }
        // Where the headers attach: a stored block, one with the node, or the last header
        // already queued.
        let first_prev = headers[0].prev;
        let base_height = match self.chain.block_meta(&first_prev) {
            Some(m) => m.height,
            None => match self
                .submission
                .as_ref()
                .and_then(|s| s.heights.get(&first_prev).copied())
                .or_else(|| self.sched.height_of(&first_prev))
            {
                Some(h) => h,
                None => {
                    // Not connected to anything we know: ask again from our own locator.
                    self.ask_headers(&id);
                    return Ok(());
                }
            },
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

    /// Whether the node has `hash`, or has it on its way in (a batch being validated).
    fn have_block(&self, hash: &BlockHash) -> bool {
        self.submission
            .as_ref()
            .is_some_and(|s| s.heights.contains_key(hash))
            || self.chain.has_block(hash)
    }

    /// Ask peers for queued blocks they can give, a few at a time each.
    fn schedule(&mut self, now: Now) {
        let tips = peer_tips(&self.peers);
        let asks = self.sched.schedule(&tips, now.local);
        for (id, batch) in asks {
            self.send(&id, Message::GetBlocks(batch));
        }
    }

    fn on_block(&mut self, id: NodeId, block: Block, now: Now) -> Result<(), String> {
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
    fn submit_ready(&mut self) {
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
        self.out.push(Output::SubmitBlocks(batch));
    }

    fn blocks_done(&mut self, outcome: Result<BatchOutcome, NodeError>, now: Now) {
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
                        self.ban(*from, &format!("invalid block: {reason}"), now);
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

    fn node_event(&mut self, ev: NodeEvent, now: Now) {
        match ev {
            // At most one announcement per TRICKLE: a fast miner's tips go out together.
            NodeEvent::BlockConnected { .. } | NodeEvent::Reorg { .. }
                if now.local.duration_since(self.last_trickle) >= TRICKLE =>
            {
                self.trickle(now);
            }
            NodeEvent::TxAccepted(txid) => {
                let mut full = Vec::new();
                for p in self.peers.values_mut() {
                    if !p.known.contains(&txid.0) {
                        p.know(txid.0);
                        p.tx_inv.push(txid);
                        if p.tx_inv.len() >= MAX_INV {
                            full.push((p.serial, std::mem::take(&mut p.tx_inv)));
                        }
                    }
                }
                for (serial, batch) in full {
                    self.out.push(Output::Send {
                        serial,
                        msg: Message::InvTxs(batch),
                    });
                }
            }
            _ => {}
        }
    }

    /// Send what waited for the trickle: our tip, and each peer's new transactions.
    fn trickle(&mut self, now: Now) {
        self.last_trickle = now.local;
        // Nobody to tell (an idle node with no peers wakes ten times a second for nothing).
        if self.peers.is_empty() {
            return;
        }
        self.announce_tip();
        let mut sends = Vec::new();
        for p in self.peers.values_mut() {
            if !p.tx_inv.is_empty() {
                sends.push((p.serial, std::mem::take(&mut p.tx_inv)));
            }
        }
        for (serial, batch) in sends {
            self.out.push(Output::Send {
                serial,
                msg: Message::InvTxs(batch),
            });
        }
    }

    /// Announce our tip to peers that do not know it (only while no download is under way:
    /// mid-sync tips are not news).
    fn announce_tip(&mut self) {
        if self.sched.busy() || self.submission.is_some() {
            return;
        }
        let (_, tip, _) = self.chain.tip();
        if self.last_announced == Some(tip) {
            return;
        }
        self.last_announced = Some(tip);
        let mut sends = Vec::new();
        for p in self.peers.values_mut() {
            if !p.known.contains(&tip.0) {
                p.know(tip.0);
                sends.push(p.serial);
            }
        }
        for serial in sends {
            self.out.push(Output::Send {
                serial,
                msg: Message::InvBlocks(vec![tip]),
            });
        }
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
        self.publish(now);
    }

    /// Peers that stalled (see [`super::sched`]) lose their requests; after [`MAX_STALLS`]
    /// in a row one goes, banned if it stalled on blocks whose headers it sent us itself.
    fn check_stalls(&mut self, now: Now) {
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
    fn drop_undeliverable(&mut self) {
        let tips = peer_tips(&self.peers);
        let dropped = self.sched.drop_undeliverable(&tips);
        if dropped > 0 {
            tracing::info!("dropping {dropped} queued block(s) that no peer delivers");
        }
    }

    /// Dial book entries that are due, while outbound connections are below the limit.
    fn dial_due(&mut self, now: Now) {
        let outbound = self.peers.values().filter(|p| !p.info.inbound).count() + self.dialing.len();
        let room = self.settings.max_outbound.saturating_sub(outbound);
        if room == 0 {
            return;
        }
        let connected_addrs: HashSet<SocketAddr> = self
            .peers
            .values()
            .flat_map(|p| [Some(p.info.addr), p.listen])
            .flatten()
            .collect();
        let connected_ids: HashSet<NodeId> = self.peers.keys().copied().collect();
        let due = self.book.due(
            now.unix,
            room,
            &DialFilter {
                own_id: self.settings.id,
                connected_addrs: &connected_addrs,
                connected_ids: &connected_ids,
                dialing: &self.dialing,
                allowed: self.allowed.as_ref(),
            },
        );
        for target in due {
            self.dialing.insert(target.addr);
            self.out.push(Output::Dial(target));
        }
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
        };
        self.out.push(Output::View(view));
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
