//! Peer-to-peer glue: connects the node to its peers over the authenticated QUIC transport.
//!
//! One manager task owns every piece of network state: the peer table, the download
//! scheduler, bans and the address book. Each connection has a task that does the `Hello`
//! handshake, frames messages and forwards them. A per-peer rate limit means a flooding peer
//! is banned before it can crowd out the others.
//!
//! Sync is headers-first:
//! - headers are checked for linkage and proof of work, then their blocks are requested in
//!   batches from every peer known to have them;
//! - a request that stalls is given to another peer;
//! - blocks reach the node in chain order, in batches committed together and flushed before
//!   anything is relayed.
//!
//! New blocks and transactions are announced by hash and fetched by whoever lacks them. Each
//! peer has a known-inventory set, so nothing is echoed back to its sender.
//!
//! A protocol violation disconnects the peer and bans its identity and address for a while,
//! with the reason kept. The violations are: an invalid block or transaction, an undecodable
//! or oversized message, unrequested data, and flooding. The address book and the bans live
//! in the store, so a restarted node reconnects to the peers it knew.

use crate::core::block::{Block, BlockHeader};
use crate::core::hash::{BlockHash, Txid};
use crate::core::pow::Work;
use crate::net::identity::{NodeId, NodeKey, PeerAddr};
use crate::net::transport::{Connection, Limits, Transport};
use crate::net::wire::{self, Hello, MAX_ADDRS, MAX_HEADERS, MAX_INV, Message};
use crate::node::chain::unix_now;
use crate::node::{NodeError, NodeEvent, NodeHandle};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub mod book;
mod conn;
pub mod sched;
pub mod time;

use crate::net::DisconnectReason;
use book::{Book, DialFilter, RecordStore, Records};
use conn::{Activity, Outbox, PeerEvent, QueueFull, run_connection};
pub use conn::{
    GET_HEADERS_PER_SEC, HARD_QUEUE_BYTES, NOT_READING, Rates, SOFT_QUEUE_BYTES,
    UNSOLICITED_PER_SEC,
};
use sched::{Delivery, MAX_STALLS, MAX_WANTED, PeerTip, STALL_TIMEOUT, Scheduler, Want};
use time::LocalTime;

/// Blocks handed to the node at once during sync.
const SUBMIT_BATCH: usize = 500;
/// Known-inventory entries kept per peer before the set is reset.
const MAX_KNOWN: usize = 50_000;
/// Time between pings.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Pings remembered per peer: a pong to any of them is late, not unrequested.
const PINGS_KEPT: usize = 16;
/// Announcements (our tip, new transactions) go out at most this often; what comes in
/// between is sent together.
const TRICKLE: Duration = Duration::from_millis(100);
/// An existing connection in the other direction older than this is not a crossing dial: a
/// new connection from the same node replaces it (the node restarted).
const CROSSING_DIAL: Duration = Duration::from_secs(5);

/// How the network part of a node is started.
#[derive(Clone, Debug)]
pub struct P2pConfig {
    /// Where to accept connections (port 0: the system picks one).
    pub listen: SocketAddr,
    /// Peers to keep connected to.
    pub connect: Vec<PeerAddr>,
    /// Outbound connections the node keeps open at most.
    pub max_outbound: usize,
    /// Inbound peers kept at most; a new one beyond this evicts the least useful inbound
    /// peer (the transport accepts some more connections than this, so newcomers can
    /// always reach the handshake).
    pub max_inbound: usize,
    pub limits: Limits,
    /// What each peer may ask and send unasked.
    pub rates: Rates,
    /// The identity key file.
    pub key_path: PathBuf,
    /// How long a misbehaving peer stays banned.
    pub ban_time: Duration,
    pub user_agent: String,
}

impl P2pConfig {
    pub fn new(data_dir: &std::path::Path, listen: SocketAddr) -> P2pConfig {
        P2pConfig {
            listen,
            connect: Vec::new(),
            max_outbound: 8,
            max_inbound: 32,
            limits: Limits {
                max_inbound: 48,
                ..Limits::default()
            },
            rates: Rates::default(),
            key_path: data_dir.join("node_key"),
            ban_time: Duration::from_secs(3600),
            user_agent: format!("chain-tui/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A connected peer as displays show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub inbound: bool,
    pub height: u64,
    pub tip: BlockHash,
    pub work: Work,
    /// Last ping round trip.
    pub rtt: Option<Duration>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub user_agent: String,
    /// Seconds since the epoch.
    pub connected_since: u64,
    /// When its last message arrived (seconds since the epoch; 0: none yet).
    pub last_message: u64,
}

/// A ban.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanInfo {
    pub id: Option<NodeId>,
    pub addr: Option<SocketAddr>,
    pub reason: String,
    /// Seconds since the epoch.
    pub until: u64,
}

/// The network state as displays and the API see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct P2pView {
    pub id: Option<NodeId>,
    pub listen: Option<SocketAddr>,
    pub peers: Vec<PeerInfo>,
    pub bans: Vec<BanInfo>,
    /// Addresses in the book.
    pub known_addrs: usize,
    /// Blocks queued for download.
    pub downloading: usize,
}

enum P2pCmd {
    Connect(PeerAddr, oneshot::Sender<Result<NodeId, String>>),
    Unban(String, oneshot::Sender<bool>),
    Sync(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
    Restrict(Option<HashSet<NodeId>>, oneshot::Sender<()>),
}

/// A handle to the running network part of a node.
#[derive(Clone)]
pub struct P2pHandle {
    cmd: mpsc::Sender<P2pCmd>,
    view: watch::Receiver<P2pView>,
}

impl P2pHandle {
    /// Connected peers, bans and the address book size.
    pub fn view(&self) -> P2pView {
        self.view.borrow().clone()
    }
    /// A receiver that wakes when the view changes.
    pub fn watch(&self) -> watch::Receiver<P2pView> {
        self.view.clone()
    }
    /// Dial a peer now (and keep it in the address book).
    pub async fn connect(&self, addr: PeerAddr) -> Result<NodeId, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(P2pCmd::Connect(addr, tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await
            .map_err(|_| NodeError::Stopped)?
            .map_err(NodeError::Dial)
    }
    /// Lift the ban on a node id (hex) or an address; true if there was one.
    pub async fn unban(&self, who: &str) -> Result<bool, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(P2pCmd::Unban(who.to_string(), tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }
    /// Ask every peer for headers beyond our tip now.
    pub async fn sync_now(&self) -> Result<(), NodeError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(P2pCmd::Sync(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }
    /// Keep only the peers in `allowed` (`None`: any peer, the default). Connected peers not
    /// in the list are disconnected now; while a list is set, others are refused when they
    /// connect, and only book entries whose node id is in the list are dialed. Nothing is
    /// banned and the address book is kept, so lifting the list lets them back. The demo's
    /// topologies and partitions are made of this.
    pub async fn restrict_peers(&self, allowed: Option<HashSet<NodeId>>) -> Result<(), NodeError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(P2pCmd::Restrict(allowed, tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }
    /// Tell peers goodbye, save the address book, close the endpoint.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(P2pCmd::Shutdown(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }
}

struct Peer {
    conn: Arc<Connection>,
    conn_id: u64,
    outbox: Outbox,
    activity: Arc<Activity>,
    info: PeerInfo,
    /// Hashes (blocks and txids) this peer is known to have.
    known: HashSet<[u8; 32]>,
    requested_txs: HashSet<Txid>,
    /// Unix seconds when it last gave us a block or a transaction we did not have.
    last_useful: u64,
    /// Pings sent and not yet answered, oldest first.
    pings: VecDeque<(u64, Instant)>,
    last_ping: Instant,
    connected_at: Instant,
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
    fn send(&mut self, msg: Message) {
        // Never block the manager: a peer whose queue is full does not read, and goes.
        match self.outbox.push(&msg) {
            Ok(_) => {}
            Err(QueueFull(n)) => {
                if self.overflow.is_none() {
                    tracing::info!("send queue to {} is full ({n} bytes)", self.info.id.short());
                }
                self.overflow = Some(n);
            }
        }
    }
}

/// One log line for blocks received from peers and accepted: each block on its own while they
/// come one at a time (with how long after its timestamp it arrived), a range during a sync.
fn log_received(blocks: &[(u64, BlockHash, u64)], from: &[NodeId]) {
    let now = unix_now();
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

struct Manager {
    node: NodeHandle,
    transport: Arc<Transport>,
    config: P2pConfig,
    hello_base: Hello,
    peers: HashMap<NodeId, Peer>,
    /// Headers-first block downloads.
    sched: Scheduler,
    /// Where [`LocalTime`] counts from.
    clock: Instant,
    /// Addresses and bans.
    book: Book,
    /// Where the book is saved.
    records: Box<dyn RecordStore>,
    dialing: HashSet<SocketAddr>,
    /// `P2pHandle::connect` callers waiting for a dial of an address (with the id they pinned).
    waiting: HashMap<SocketAddr, Vec<(Option<NodeId>, DialReply)>>,
    events_tx: mpsc::Sender<PeerEvent>,
    view: watch::Sender<P2pView>,
    next_conn_id: u64,
    last_announced: Option<BlockHash>,
    /// When announcements last went out (see [`TRICKLE`]).
    last_trickle: Instant,
    /// Set by [`P2pHandle::restrict_peers`]: the only node ids we stay connected to.
    allowed: Option<HashSet<NodeId>>,
    /// Blocks handed to the node and not yet answered for, with their heights: the manager
    /// goes on with its peers meanwhile, and counts these as ones it has.
    in_submission: HashMap<BlockHash, u64>,
    /// Where the node's answers to hand-offs come back.
    verdicts_tx: mpsc::UnboundedSender<Verdict>,
}

/// The node's answer to something the manager handed it without waiting.
enum Verdict {
    /// A batch of downloaded blocks: each one's height, hash and timestamp, and its sender.
    Blocks {
        blocks: Vec<(u64, BlockHash, u64)>,
        senders: Vec<NodeId>,
        outcome: Result<crate::node::BatchOutcome, NodeError>,
    },
    /// A transaction a peer sent.
    Tx {
        from: NodeId,
        txid: Txid,
        result: Result<Txid, NodeError>,
    },
}

/// Start the network part of `node`: bind, load the address book and bans, dial `connect`.
pub async fn start(node: NodeHandle, config: P2pConfig) -> Result<P2pHandle, NodeError> {
    let key = NodeKey::load_or_create(&config.key_path).map_err(NodeError::NodeKey)?;
    let transport =
        Transport::bind(config.listen, &key, config.limits.clone()).map_err(|error| {
            NodeError::Listen {
                addr: config.listen,
                error,
            }
        })?;
    let listen = transport.local_addr().ok();
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (events_tx, events_rx) = mpsc::channel(4096);
    let (view_tx, view_rx) = watch::channel(P2pView::default());
    let params = node.params();
    let hello_base = Hello {
        version: wire::PROTOCOL_VERSION,
        genesis: params.genesis_hash,
        height: 0,
        tip: params.genesis_hash,
        work: [0; 32],
        listen,
        user_agent: config.user_agent.clone(),
    };
    let ban_time = config.ban_time;
    let (verdicts_tx, verdicts_rx) = mpsc::unbounded_channel();
    let mut m = Manager {
        node: node.clone(),
        transport: Arc::new(transport),
        config,
        hello_base,
        peers: HashMap::new(),
        sched: Scheduler::new(),
        clock: Instant::now(),
        book: Book::new(listen, ban_time),
        records: Box::new(NodeRecords(node.clone())),
        dialing: HashSet::new(),
        waiting: HashMap::new(),
        events_tx,
        view: view_tx,
        next_conn_id: 0,
        last_announced: None,
        last_trickle: Instant::now(),
        allowed: None,
        in_submission: HashMap::new(),
        verdicts_tx,
    };
    m.load_records();
    for p in m.config.connect.clone() {
        m.book.add(p.addr, p.id, true);
    }
    m.publish();
    let node_events = node.events();
    let accept_transport = m.transport.clone();
    let accept_events = m.events_tx.clone();
    let hello_for_accept = m.hello_base.clone();
    let accept_node = node.clone();
    let rates = m.config.rates;
    tokio::spawn(async move {
        accept_loop(
            accept_transport,
            accept_events,
            hello_for_accept,
            accept_node,
            rates,
        )
        .await;
    });
    tokio::spawn(m.run(cmd_rx, events_rx, node_events, verdicts_rx));
    Ok(P2pHandle {
        cmd: cmd_tx,
        view: view_rx,
    })
}

/// Our Hello with the current tip.
fn current_hello(base: &Hello, node: &NodeHandle) -> Hello {
    let mut h = base.clone();
    let s = node.snapshot();
    h.height = s.height;
    h.tip = s.tip;
    h.work = s.chainwork.to_be_bytes();
    h
}

async fn accept_loop(
    transport: Arc<Transport>,
    events: mpsc::Sender<PeerEvent>,
    hello: Hello,
    node: NodeHandle,
    rates: Rates,
) {
    while let Some(incoming) = transport.accept().await {
        match incoming {
            Ok(conn) => {
                let events = events.clone();
                let hello = current_hello(&hello, &node);
                let node = node.clone();
                tokio::spawn(async move {
                    run_connection(conn, hello, events, None, node, rates).await;
                });
            }
            Err(e) => tracing::debug!("inbound connection failed: {e}"),
        }
    }
}

/// Who waits for a dial to settle (`P2pHandle::connect`): told the peer's id once the
/// manager took the connection, or why it did not.
type DialReply = oneshot::Sender<Result<NodeId, String>>;

/// Record keys in the store's network table.
const BOOK_PREFIX: &str = "addr/";
const BAN_PREFIX: &str = "ban/";

/// The address book's records in the node's store (its network table), one record per
/// address and per ban.
struct NodeRecords(NodeHandle);

impl RecordStore for NodeRecords {
    fn load(&self) -> Result<Records, String> {
        let r = self
            .0
            .store()
            .and_then(|s| Ok(s.read()?))
            .map_err(|e| e.to_string())?;
        let rows = |prefix| r.net_records(prefix).map_err(|e| e.to_string());
        // A record that does not decode is skipped: the rest of the book is still good.
        Ok(Records {
            book: rows(BOOK_PREFIX)?
                .into_iter()
                .filter_map(|(_, v)| postcard::from_bytes(&v).ok())
                .collect(),
            bans: rows(BAN_PREFIX)?
                .into_iter()
                .filter_map(|(_, v)| postcard::from_bytes(&v).ok())
                .collect(),
        })
    }

    fn save(&self, records: &Records) -> Result<(), String> {
        let book: Vec<(String, Vec<u8>)> = records
            .book
            .iter()
            .filter_map(|e| {
                postcard::to_stdvec(e)
                    .ok()
                    .map(|v| (format!("{BOOK_PREFIX}{}", e.addr), v))
            })
            .collect();
        let bans: Vec<(String, Vec<u8>)> = records
            .bans
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                postcard::to_stdvec(b)
                    .ok()
                    .map(|v| (format!("{BAN_PREFIX}{i}"), v))
            })
            .collect();
        let store = self
            .0
            .store()
            .map_err(|_| "the node has stopped".to_string())?;
        store
            .write(true, |w| {
                w.put_net_records(BOOK_PREFIX, &book)?;
                w.put_net_records(BAN_PREFIX, &bans)
            })
            .map_err(|e| e.to_string())
    }
}

impl Manager {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<P2pCmd>,
        mut events: mpsc::Receiver<PeerEvent>,
        mut node_events: broadcast::Receiver<NodeEvent>,
        mut verdicts: mpsc::UnboundedReceiver<Verdict>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut trickle = tokio::time::interval(TRICKLE);
        trickle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.dial_due();
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(P2pCmd::Shutdown(reply)) => {
                        self.shutdown();
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.command(cmd),
                    None => {
                        self.shutdown();
                        return;
                    }
                },
                Some(ev) = events.recv() => self.peer_event(ev),
                Some(v) = verdicts.recv() => self.verdict(v),
                ev = node_events.recv() => match ev {
                    Ok(ev) => self.node_event(ev),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.announce_tip(),
                    Err(broadcast::error::RecvError::Closed) => {
                        self.shutdown();
                        return;
                    }
                },
                _ = tick.tick() => {
                    self.tick();
                    // Whatever is ready and has waited for a fuller batch.
                    self.submit_ready();
                }
                _ = trickle.tick() => self.trickle(),
            }
        }
    }

    fn shutdown(&mut self) {
        for p in self.peers.values() {
            conn::close(&p.conn, DisconnectReason::Normal, b"shutting down");
        }
        self.save_records();
        self.transport.close();
    }

    fn command(&mut self, cmd: P2pCmd) {
        match cmd {
            P2pCmd::Connect(addr, reply) => {
                self.book.add(addr.addr, addr.id, true);
                self.book.try_now(&addr.addr);
                if let Some(p) = self.peers.values().find(|p| p.info.addr == addr.addr) {
                    let _ = reply.send(Ok(p.info.id));
                    return;
                }
                // Answer when the dial settles (Connected or DialFailed for this address);
                // an address already being dialed is not dialed twice.
                self.waiting
                    .entry(addr.addr)
                    .or_default()
                    .push((addr.id, reply));
                if self.dialing.insert(addr.addr) {
                    self.spawn_dial(addr);
                }
            }
            P2pCmd::Unban(who, reply) => {
                let lifted = self.book.unban(&who);
                if lifted {
                    self.save_records();
                    self.publish();
                }
                let _ = reply.send(lifted);
            }
            P2pCmd::Sync(reply) => {
                let ids: Vec<NodeId> = self.peers.keys().copied().collect();
                for id in ids {
                    self.ask_headers(&id);
                }
                let _ = reply.send(());
            }
            P2pCmd::Restrict(allowed, reply) => {
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
                    if let Some(p) = self.peers.remove(&id) {
                        conn::close(&p.conn, DisconnectReason::Normal, b"link cut");
                        self.release_requests(&id);
                    }
                }
                self.dial_due();
                self.publish();
                let _ = reply.send(());
            }
            P2pCmd::Shutdown(_) => {}
        }
    }

    /// Ban `id` for misbehaviour: its identity, and the address its connection came from
    /// (never an address it merely claims to listen on: that may be another node's).
    /// The peer leaves the view in the same publish that lists its ban.
    fn ban(&mut self, id: NodeId, reason: &str) {
        let addr = self.peers.get(&id).map(|p| p.info.addr);
        self.drop_peer(&id, DisconnectReason::Misbehaviour, reason);
        self.ban_as(id, addr, reason);
    }

    fn ban_as(&mut self, id: NodeId, addr: Option<SocketAddr>, reason: &str) {
        tracing::warn!("banning peer {} ({addr:?}): {reason}", id.short());
        self.book.ban(id, addr, reason, unix_now());
        // Headers it sent count for nothing now; blocks only it announced are dropped at the
        // next tick unless another peer can give them.
        self.sched.forget_sender(&id);
        self.save_records();
        self.publish();
    }

    fn disconnect(&mut self, id: &NodeId, code: DisconnectReason, reason: &str) {
        if self.drop_peer(id, code, reason) {
            self.publish();
        }
    }

    /// Closes `id`'s connection and forgets the peer, without publishing; false if it was not
    /// connected.
    fn drop_peer(&mut self, id: &NodeId, code: DisconnectReason, reason: &str) -> bool {
        let Some(p) = self.peers.remove(id) else {
            return false;
        };
        conn::close(&p.conn, code, reason.as_bytes());
        self.release_requests(id);
        true
    }

    /// Give the blocks asked of `id` back to the queue.
    fn release_requests(&mut self, id: &NodeId) {
        self.sched.remove_peer(id);
    }

    /// Now on the manager's clock.
    fn now(&self) -> LocalTime {
        LocalTime::since(self.clock)
    }

    /// Connected peers as the scheduler sees them, in id order.
    fn peer_tips(peers: &HashMap<NodeId, Peer>) -> Vec<PeerTip<'_>> {
        let mut tips: Vec<PeerTip<'_>> = peers
            .values()
            .map(|p| PeerTip {
                id: p.info.id,
                height: p.info.height,
                known: &p.known,
            })
            .collect();
        tips.sort_by_key(|t| t.id);
        tips
    }

    fn peer_event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::Connected {
                conn,
                hello,
                outbox,
                activity,
                dialed,
            } => {
                let result = self.connected(conn, hello, outbox, activity, dialed);
                if let Some(a) = dialed {
                    for (pinned, reply) in self.waiting.remove(&a).unwrap_or_default() {
                        let _ = reply.send(match (&result, pinned) {
                            (Ok(id), Some(p)) if *id != p => {
                                Err(format!("{a} is node {id}, not {p}"))
                            }
                            _ => result.clone(),
                        });
                    }
                }
            }
            PeerEvent::Message(id, conn, msg) => {
                if let Some(p) = self.peers.get(&id)
                    && Arc::ptr_eq(&p.conn, &conn)
                {
                    self.message(id, msg);
                }
            }
            PeerEvent::Gone {
                id,
                conn,
                reason,
                misbehaviour,
            } => {
                // Only the connection that ended: a newer one to the same node stays.
                let current = match (&conn, self.peers.get(&id)) {
                    (Some(c), Some(p)) => Arc::ptr_eq(c, &p.conn),
                    _ => false,
                };
                if misbehaviour {
                    if current {
                        self.ban(id, &reason);
                    } else {
                        // Misbehaved during the handshake: ban the identity and the address
                        // it came from.
                        let addr = conn.as_ref().map(|c| c.remote);
                        self.ban_as(id, addr, &reason);
                    }
                } else if current {
                    tracing::info!("peer {} left: {reason}", id.short());
                    self.peers.remove(&id);
                    self.release_requests(&id);
                } else {
                    tracing::debug!("connection to {} ended: {reason}", id.short());
                }
                self.publish();
            }
            PeerEvent::DialFailed(addr, reason) => {
                tracing::info!("dial {addr} failed: {reason}");
                self.dialing.remove(&addr);
                for (_, reply) in self.waiting.remove(&addr).unwrap_or_default() {
                    let _ = reply.send(Err(reason.clone()));
                }
                self.book.dial_failed(&addr, unix_now());
            }
        }
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
        conn: Arc<Connection>,
        hello: Hello,
        outbox: Outbox,
        activity: Arc<Activity>,
        dialed: Option<SocketAddr>,
    ) -> Result<NodeId, String> {
        let id = conn.peer;
        if let Some(a) = dialed {
            self.dialing.remove(&a);
        }
        let addr = conn.remote;
        if let Some(b) = self.book.is_banned(
            &id,
            &addr,
            dialed.is_none(),
            self.allowed.as_ref(),
            unix_now(),
        ) {
            let reason = if b.id == Some(id) {
                format!("banned: {}", b.reason)
            } else {
                format!("address {} has a banned peer: {}", addr.ip(), b.reason)
            };
            conn::close(&conn, DisconnectReason::Banned, reason.as_bytes());
            return Err(reason);
        }
        if self.allowed.as_ref().is_some_and(|a| !a.contains(&id)) {
            conn::close(&conn, DisconnectReason::NotAllowed, b"link cut");
            return Err(format!("node {} is not an allowed peer", id.short()));
        }
        if let Some(old) = self.peers.get(&id) {
            // Both sides dialed each other at once: keep the connection made by the node
            // with the smaller id, so both ends keep the same one. A second connection in the
            // same direction, or one next to an older connection, is no crossing dial: the
            // node restarted (or lost the old one), and the new one wins at once.
            let crossing =
                old.info.inbound != dialed.is_none() && old.connected_at.elapsed() < CROSSING_DIAL;
            let keep_new = !crossing || (dialed.is_some() == (self.transport.id() < id));
            if !keep_new {
                conn::close(&conn, DisconnectReason::Duplicate, b"duplicate connection");
                return Ok(id);
            }
            if let Some(old) = self.peers.remove(&id) {
                conn::close(
                    &old.conn,
                    DisconnectReason::Duplicate,
                    b"duplicate connection",
                );
                // Blocks asked on the old connection are asked again on the new one.
                self.release_requests(&id);
            }
        }
        if dialed.is_none() {
            let inbound = self.peers.values().filter(|p| p.info.inbound).count();
            if inbound >= self.config.max_inbound {
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
                        );
                    }
                    None => {
                        conn::close(&conn, DisconnectReason::Evicted, b"inbound slots full");
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
        self.next_conn_id += 1;
        let work = Work::from_be_bytes(hello.work);
        let mut peer = Peer {
            conn: conn.clone(),
            conn_id: self.next_conn_id,
            outbox,
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
                connected_since: unix_now(),
                last_message: unix_now(),
            },
            known: HashSet::new(),
            requested_txs: HashSet::new(),
            last_useful: 0,
            pings: VecDeque::new(),
            last_ping: Instant::now(),
            connected_at: Instant::now(),
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
        let now = self.now();
        self.sched.add_peer(id, now);
        // The Hello we sent was made when the connection started: our tip may have moved since
        // (and been announced before this peer was in the table), so announce it now.
        let tip = self.node.snapshot().tip;
        if let Some(p) = self.peers.get_mut(&id) {
            p.send(Message::GetAddrs);
            if !p.known.contains(&tip.0) {
                p.know(tip.0);
                p.send(Message::InvBlocks(vec![tip]));
            }
        }
        let ours = self.node.snapshot().chainwork;
        if work > ours {
            self.ask_headers(&id);
        }
        // Share our mempool: peers fetch what they lack.
        let txids: Vec<Txid> = self.node.mempool_txs().iter().map(|t| t.txid()).collect();
        if let Some(p) = self.peers.get_mut(&id) {
            for chunk in txids.chunks(MAX_INV) {
                for t in chunk {
                    p.know(t.0);
                }
                p.send(Message::InvTxs(chunk.to_vec()));
            }
        }
        self.publish();
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
        if let Some(p) = self.peers.get_mut(id) {
            p.send(Message::GetHeaders {
                locator,
                stop: BlockHash::ZERO,
            });
        }
    }

    /// A locator that starts at the last header queued for download, so a long sync asks for
    /// the next headers rather than the ones it already has.
    fn download_locator(&self) -> Result<Vec<BlockHash>, NodeError> {
        let mut loc = Vec::new();
        if let Some(last) = self.sched.last_queued() {
            loc.push(last);
        }
        loc.extend(self.node.locator()?);
        loc.truncate(wire::MAX_LOCATOR);
        Ok(loc)
    }

    fn message(&mut self, id: NodeId, msg: Message) {
        let result = self.handle(id, msg);
        if let Err(reason) = result {
            self.ban(id, &reason);
            self.publish();
        }
    }

    /// Handle one message; `Err(reason)` when the peer misbehaved.
    fn handle(&mut self, id: NodeId, msg: Message) -> Result<(), String> {
        match msg {
            Message::Hello(_) => return Err("second hello".into()),
            Message::Pong(n) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    // A pong to any ping still remembered is an answer, however late; the
                    // pings before it were not answered and are forgotten.
                    match p.pings.iter().position(|(sent, _)| *sent == n) {
                        Some(i) => {
                            let (_, at) = p.pings[i];
                            p.info.rtt = Some(at.elapsed());
                            p.pings.drain(..=i);
                        }
                        None => return Err("unrequested pong".into()),
                    }
                }
            }
            // Answered by the connection's own task (see `conn`); never reach the manager.
            Message::Ping(_)
            | Message::GetHeaders { .. }
            | Message::GetBlocks(_)
            | Message::GetTxs(_) => {}
            Message::Headers(headers) => self.on_headers(id, headers)?,
            Message::Block(block) => self.on_block(id, block)?,
            Message::NotFound(hashes) => {
                for h in hashes {
                    self.sched.not_found(&id, &h)?;
                }
                self.schedule();
            }
            Message::InvBlocks(hashes) => {
                let mut unknown = false;
                for h in &hashes {
                    if let Some(p) = self.peers.get_mut(&id) {
                        p.know(h.0);
                        // It announces a block we have: that is its height now.
                        if let Ok(Some(m)) = self.node.block_meta(h) {
                            p.activity.note_meta(&m);
                        }
                    }
                    if !self.sched.is_wanted(h) && !self.have_block(h) {
                        unknown = true;
                    }
                }
                if unknown {
                    self.ask_headers(&id);
                }
            }
            Message::InvTxs(txids) => {
                let mut want = Vec::new();
                if let Some(p) = self.peers.get_mut(&id) {
                    for t in &txids {
                        p.know(t.0);
                    }
                }
                for t in txids {
                    if !self.node.has_tx(&t).unwrap_or(true) {
                        want.push(t);
                    }
                }
                if !want.is_empty()
                    && let Some(p) = self.peers.get_mut(&id)
                {
                    p.requested_txs.extend(want.iter().copied());
                    p.send(Message::GetTxs(want));
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
                // The node's verdict comes back as a `Verdict::Tx`; peers are served meanwhile.
                let (node, verdicts) = (self.node.clone(), self.verdicts_tx.clone());
                tokio::spawn(async move {
                    let result = node.submit_tx(tx, false).await;
                    let _ = verdicts.send(Verdict::Tx {
                        from: id,
                        txid,
                        result,
                    });
                });
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
                    if Some(a) != self.hello_base.listen {
                        self.book.add(a, None, false);
                    }
                }
                self.dial_due();
            }
        }
        Ok(())
    }

    fn send(&mut self, id: &NodeId, msg: Message) {
        if let Some(p) = self.peers.get_mut(id) {
            p.send(msg);
        }
    }

    fn on_headers(&mut self, id: NodeId, headers: Vec<BlockHeader>) -> Result<(), String> {
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
            if !target.is_met_by(&h.hash().0) || target > self.node.params().pow_limit {
                return Err(format!(
                    "header {} has too little proof of work",
                    h.hash().short()
                ));
            }
        }
        // Where the headers attach: a stored block, or the last header already queued.
        let first_prev = headers[0].prev;
        let base_height = match self.node.block_meta(&first_prev) {
            Ok(Some(m)) => m.height,
            _ => match self
                .in_submission
                .get(&first_prev)
                .copied()
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
            if let Some(p) = self.peers.get_mut(&id) {
                p.know(hash.0);
                let height = base_height + 1 + i as u64;
                if height > p.info.height {
                    p.info.height = height;
                    p.info.tip = hash;
                }
            }
            if !self.sched.is_wanted(&hash) && self.have_block(&hash) {
                continue;
            }
            if self
                .sched
                .want(hash, h.prev, base_height + 1 + i as u64, id)
                == Want::Full
            {
                // Enough queued; the tick asks for more as the queue drains.
                return Ok(());
            }
        }
        if full
            && self.sched.wanted() < MAX_WANTED
            && let Some(last) = last
            && let Some(p) = self.peers.get_mut(&id)
        {
            p.send(Message::GetHeaders {
                locator: vec![last],
                stop: BlockHash::ZERO,
            });
        }
        self.schedule();
        Ok(())
    }

    /// Ask peers for queued blocks they can give, a few at a time each.
    fn schedule(&mut self) {
        let now = self.now();
        let tips = Self::peer_tips(&self.peers);
        let asks = self.sched.schedule(&tips, now);
        for (id, batch) in asks {
            self.send(&id, Message::GetBlocks(batch));
        }
    }

    fn on_block(&mut self, id: NodeId, block: Block) -> Result<(), String> {
        let hash = block.hash();
        let now = self.now();
        let height = match self.sched.delivered(&id, hash, block, now) {
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
                p.last_useful = unix_now();
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
        self.schedule();
        Ok(())
    }

    /// Whether the node has `hash`, or has it on its way in (a batch being validated).
    fn have_block(&self, hash: &BlockHash) -> bool {
        self.in_submission.contains_key(hash) || self.node.has_block(hash).unwrap_or(true)
    }

    /// Hand the node the received blocks whose ancestors in the queue are all received, in
    /// queue (chain) order, as one batch, without waiting: the node's answer comes back as a
    /// [`Verdict::Blocks`], and peers are served meanwhile. One batch at a time (the next may
    /// build on this one); what is ready by the answer goes next. A block nobody delivers
    /// holds back only its own descendants, never another branch.
    fn submit_ready(&mut self) {
        if !self.in_submission.is_empty() {
            return;
        }
        let ready = self.sched.take_ready(SUBMIT_BATCH);
        if ready.is_empty() {
            return;
        }
        let mut batch = Vec::with_capacity(ready.len());
        let mut senders = Vec::with_capacity(ready.len());
        let mut blocks = Vec::with_capacity(ready.len());
        for r in ready {
            self.in_submission.insert(r.hash, r.height);
            blocks.push((r.height, r.hash, r.block.header.time));
            batch.push(r.block);
            senders.push(r.from);
        }
        let (node, verdicts) = (self.node.clone(), self.verdicts_tx.clone());
        tokio::spawn(async move {
            let outcome = node.submit_blocks(batch).await;
            let _ = verdicts.send(Verdict::Blocks {
                blocks,
                senders,
                outcome,
            });
        });
    }

    /// The node answered for something handed to it.
    fn verdict(&mut self, v: Verdict) {
        match v {
            Verdict::Blocks {
                blocks,
                senders,
                outcome,
            } => {
                self.in_submission.clear();
                match outcome {
                    Ok(outcome) => {
                        let took = outcome.failure.as_ref().map_or(blocks.len(), |f| f.0);
                        log_received(&blocks[..took], &senders[..took]);
                        if let Some((i, reason, invalid)) = outcome.failure {
                            tracing::warn!("block {} of a batch refused: {reason}", i + 1);
                            // The rest of the queue built on it: drop it all and re-ask.
                            self.sched.reset();
                            if invalid && let Some(from) = senders.get(i) {
                                self.ban(*from, &format!("invalid block: {reason}"));
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
                self.schedule();
                // Caught up: what is now our tip is news to peers.
                self.announce_tip();
            }
            Verdict::Tx { from, txid, result } => match result {
                Ok(_) => {
                    if let Some(p) = self.peers.get_mut(&from) {
                        p.last_useful = unix_now();
                    }
                }
                // Races between honest peers are normal; an invalid transaction is not.
                Err(NodeError::Mempool(e)) if e.is_peer_fault() => {
                    self.ban(from, &format!("invalid transaction {}: {e}", txid.short()));
                    self.publish();
                }
                Err(NodeError::Mempool(_)) => {}
                Err(e) => tracing::error!("submitting a peer transaction: {e}"),
            },
        }
    }

    fn node_event(&mut self, ev: NodeEvent) {
        match ev {
            // At most one announcement per TRICKLE: a fast miner's tips go out together.
            NodeEvent::BlockConnected { .. } | NodeEvent::Reorg { .. }
                if self.last_trickle.elapsed() >= TRICKLE =>
            {
                self.trickle();
            }
            NodeEvent::TxAccepted(txid) => {
                for p in self.peers.values_mut() {
                    if !p.known.contains(&txid.0) {
                        p.know(txid.0);
                        p.tx_inv.push(txid);
                        if p.tx_inv.len() >= MAX_INV {
                            let batch = std::mem::take(&mut p.tx_inv);
                            p.send(Message::InvTxs(batch));
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Send what waited for the trickle: our tip, and each peer's new transactions.
    fn trickle(&mut self) {
        self.last_trickle = Instant::now();
        // Nobody to tell (an idle node with no peers wakes ten times a second for nothing).
        if self.peers.is_empty() {
            return;
        }
        self.announce_tip();
        for p in self.peers.values_mut() {
            if !p.tx_inv.is_empty() {
                let batch = std::mem::take(&mut p.tx_inv);
                p.send(Message::InvTxs(batch));
            }
        }
    }

    /// Announce our tip to peers that do not know it (only while no download is under way:
    /// mid-sync tips are not news).
    fn announce_tip(&mut self) {
        if self.sched.busy() || !self.in_submission.is_empty() {
            return;
        }
        let tip = self.node.snapshot_tip();
        if self.last_announced == Some(tip) {
            return;
        }
        self.last_announced = Some(tip);
        for p in self.peers.values_mut() {
            if !p.known.contains(&tip.0) {
                p.know(tip.0);
                p.send(Message::InvBlocks(vec![tip]));
            }
        }
    }

    fn tick(&mut self) {
        self.check_stalls();
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
            self.disconnect(&id, DisconnectReason::NotReading, "does not read");
        }
        // Pings.
        for p in self.peers.values_mut() {
            if p.last_ping.elapsed() >= PING_EVERY {
                let n = unix_now()
                    ^ p.conn_id.rotate_left(32)
                    ^ p.last_ping.elapsed().as_nanos() as u64;
                if p.pings.len() >= PINGS_KEPT {
                    p.pings.pop_front();
                }
                p.pings.push_back((n, Instant::now()));
                p.last_ping = Instant::now();
                p.send(Message::Ping(n));
            }
        }
        // Forget connections that closed underneath us.
        let closed: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.conn.conn.close_reason().is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in closed {
            self.peers.remove(&id);
            self.release_requests(&id);
        }
        if self.book.expire(unix_now()) {
            self.save_records();
        }
        self.drop_undeliverable();
        // Headers beyond the queue from the peer with the most work, while the queue is short
        // (also covers a missed announcement).
        if self.sched.wanted() < MAX_WANTED / 2 {
            let ours = self.node.snapshot().chainwork;
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
        self.schedule();
        self.announce_tip();
        self.dial_due();
        self.publish();
    }

    /// Peers that stalled (see [`sched`]) lose their requests; after [`MAX_STALLS`] in a
    /// row one goes, banned if it stalled on blocks whose headers it sent us itself.
    fn check_stalls(&mut self) {
        let now = self.now();
        for stall in self.sched.check_stalls(now) {
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
                    );
                } else {
                    tracing::info!("dropping peer {}: stalled block downloads", id.short());
                    self.disconnect(&id, DisconnectReason::Normal, "stalled");
                }
            }
        }
    }

    /// Drop queued blocks that no connected peer can give, with their descendants.
    fn drop_undeliverable(&mut self) {
        let tips = Self::peer_tips(&self.peers);
        let dropped = self.sched.drop_undeliverable(&tips);
        if dropped > 0 {
            tracing::info!("dropping {dropped} queued block(s) that no peer delivers");
        }
    }

    /// Dial book entries that are due, while outbound connections are below the limit.
    fn dial_due(&mut self) {
        let outbound = self.peers.values().filter(|p| !p.info.inbound).count() + self.dialing.len();
        let room = self.config.max_outbound.saturating_sub(outbound);
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
            unix_now(),
            room,
            &DialFilter {
                own_id: self.transport.id(),
                connected_addrs: &connected_addrs,
                connected_ids: &connected_ids,
                dialing: &self.dialing,
                allowed: self.allowed.as_ref(),
            },
        );
        for target in due {
            self.dialing.insert(target.addr);
            self.spawn_dial(target);
        }
    }

    /// Dial `target` and run the connection in a task of its own.
    fn spawn_dial(&self, target: PeerAddr) {
        let transport = self.transport.clone();
        let hello = current_hello(&self.hello_base, &self.node);
        let events = self.events_tx.clone();
        let node = self.node.clone();
        let rates = self.config.rates;
        tokio::spawn(async move {
            match transport.connect(target.addr, target.id).await {
                Ok(conn) => {
                    run_connection(conn, hello, events, Some(target.addr), node, rates).await
                }
                Err(e) => {
                    let _ = events
                        .send(PeerEvent::DialFailed(target.addr, e.to_string()))
                        .await;
                }
            }
        });
    }

    fn load_records(&mut self) {
        match self.records.load() {
            Ok(r) => self.book.load(r, unix_now()),
            Err(e) => tracing::warn!("the address book could not be read: {e}"),
        }
    }

    fn save_records(&self) {
        if let Err(e) = self.records.save(&self.book.records()) {
            tracing::error!("saving the address book: {e}");
        }
    }

    fn publish(&mut self) {
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
                        let m = self.node.block_meta(&b.tip).ok().flatten()?;
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
        let now = unix_now();
        let view = P2pView {
            id: Some(self.transport.id()),
            listen: self.hello_base.listen,
            peers,
            bans: self.book.bans(now),
            known_addrs: self.book.len(),
            downloading: self.sched.queued(),
        };
        // Watchers (the dashboard redraws) wake only when something changed; this runs
        // every second.
        self.view.send_if_modified(|v| {
            let changed = *v != view;
            if changed {
                *v = view;
            }
            changed
        });
    }
}
