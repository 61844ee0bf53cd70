//! Peer-to-peer glue: connects the node to its peers over the authenticated QUIC transport.
//!
//! The protocol itself is [`state::P2pState`], a state machine with no I/O: the peer table,
//! the download scheduler ([`sched`]), bans and the address book ([`book`]). This module is
//! its reactor, the only code here with sockets and tasks: it feeds the state what happens
//! (connections, messages, timers, commands, node events, the node's verdicts) with the time,
//! and does what the state answers (sends, disconnects, dials, hand-offs to the node, saves).
//! Each connection has a task that does the `Hello` handshake, frames messages, answers the
//! peer's requests for data and forwards the rest. A per-peer rate limit means a flooding
//! peer is banned before it can crowd out the others.
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

use crate::core::hash::{BlockHash, Txid};
use crate::core::pow::Work;
use crate::net::identity::{NodeId, NodeKey, PeerAddr};
use crate::net::transport::{Connection, Limits, Transport};
use crate::net::wire::{self, Hello};
use crate::node::chain::unix_now;
use crate::node::{NodeError, NodeHandle};
use crate::storage::BlockMeta;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub mod book;
mod conn;
pub mod limits;
pub mod offer;
pub mod sched;
pub mod state;
#[cfg(test)]
mod tests;
pub mod time;

use book::{RecordStore, Records};
pub use conn::{Activity, PeerBest};
pub use conn::{
    GET_HEADERS_PER_SEC, HARD_QUEUE_BYTES, NOT_READING, Rates, SOFT_QUEUE_BYTES,
    UNSOLICITED_PER_SEC,
};
use conn::{Outbox, PeerEvent, QueueFull, run_connection};
use state::{
    Answer, ChainView, Command, ConnInfo, Input, Now, Output, P2pState, Settings, TRICKLE,
};
use time::LocalTime;

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
    /// The protocol version settled on with it (2 and up: compact blocks).
    pub protocol: u32,
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
    /// Compact block relay so far.
    pub compact: CompactStats,
}

/// How compact block relay went (counted since the node started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactStats {
    /// Compact blocks sent to peers.
    pub sent: u64,
    /// Compact blocks received of blocks we did not have.
    pub received: u64,
    /// Of those, rebuilt from the mempool alone, with no round trip.
    pub rebuilt_at_once: u64,
    /// Transactions asked of senders because the mempool lacked them.
    pub txs_asked: u64,
    /// Blocks asked for whole after all (a short id collision, or a rebuilt block that did
    /// not match its header).
    pub fetched_whole: u64,
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
    let (inputs_tx, inputs_rx) = mpsc::unbounded_channel();
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
    let records = NodeRecords(node.clone());
    let saved = records.load().unwrap_or_else(|e| {
        tracing::warn!("the address book could not be read: {e}");
        Records::default()
    });
    let clock = Instant::now();
    let now = Now {
        local: LocalTime::since(clock),
        unix: unix_now(),
    };
    let mut state = P2pState::new(
        Settings {
            id: transport.id(),
            listen,
            max_outbound: config.max_outbound,
            max_inbound: config.max_inbound,
            ban_time: config.ban_time,
            pow_limit: params.pow_limit,
            max_block_bytes: params.max_block_size,
            ping_every: state::PING_EVERY,
            views: true,
        },
        Box::new(NodeChain(node.clone())),
        saved,
        &config.connect,
        now,
    );
    let first = state.start(now);
    let (peer_txs, peer_txs_rx) = mpsc::unbounded_channel();
    tokio::spawn(submit_peer_txs(
        node.clone(),
        peer_txs_rx,
        inputs_tx.clone(),
    ));
    let mut r = Reactor {
        node: node.clone(),
        transport: Arc::new(transport),
        state,
        hello_base,
        rates: config.rates,
        records,
        conns: HashMap::new(),
        events_tx,
        inputs_tx,
        peer_txs,
        view: view_tx,
        replies: HashMap::new(),
        next_req: 0,
        clock,
    };
    r.perform(first);
    let node_events = node.events();
    let accept_transport = r.transport.clone();
    let accept_events = r.events_tx.clone();
    let hello_for_accept = r.hello_base.clone();
    let accept_node = node.clone();
    let rates = r.rates;
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
    tokio::spawn(r.run(cmd_rx, events_rx, node_events, inputs_rx));
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

/// The chain as the protocol reads it: the node's snapshot, store and mempool.
struct NodeChain(NodeHandle);

impl ChainView for NodeChain {
    fn tip(&self) -> (u64, BlockHash, Work) {
        let s = self.0.snapshot();
        (s.height, s.tip, s.chainwork)
    }
    fn block_meta(&self, hash: &BlockHash) -> Option<BlockMeta> {
        self.0.block_meta(hash).ok().flatten()
    }
    fn has_block(&self, hash: &BlockHash) -> bool {
        self.0.has_block(hash).unwrap_or(true)
    }
    fn has_tx(&self, txid: &Txid) -> bool {
        self.0.has_tx(txid).unwrap_or(true)
    }
    fn locator(&self) -> Result<Vec<BlockHash>, String> {
        self.0.locator().map_err(|e| e.to_string())
    }
    fn mempool_txids(&self) -> Vec<Txid> {
        self.0.mempool_txids()
    }
    fn mempool_tx(&self, txid: &Txid) -> Option<crate::core::tx::Transaction> {
        self.0.mempool_tx(txid)
    }
    fn block(&self, hash: &BlockHash) -> Option<crate::core::block::Block> {
        self.0.block(hash).ok().flatten()
    }
    fn next_bits(&self, parent: &BlockHash) -> Option<crate::core::pow::CompactTarget> {
        let s = self.0.snapshot();
        s.next_bits
            .filter(|_| s.tip == *parent)
            .map(crate::core::pow::CompactTarget)
    }
}

/// A transaction a peer sent, on its way to the node.
struct PeerTx {
    from: NodeId,
    remote: SocketAddr,
    tx: crate::core::tx::Transaction,
}

/// Hands peers' transactions to the node in the order they came, what has queued up at once
/// as one batch (one signature batch, one command), and sends each verdict back as an input.
async fn submit_peer_txs(
    node: NodeHandle,
    mut queue: mpsc::UnboundedReceiver<PeerTx>,
    inputs: mpsc::UnboundedSender<Input>,
) {
    /// Most transactions handed over at once.
    const BATCH: usize = 256;
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(t) => batch.push(t),
                Err(_) => break,
            }
        }
        let txs: Vec<_> = batch.iter().map(|t| t.tx.clone()).collect();
        let results: Vec<Option<Result<Txid, NodeError>>> = match node.submit_txs(txs, false).await
        {
            Ok(r) => r.into_iter().map(Some).collect(),
            Err(e) => {
                tracing::error!("submitting peer transactions: {e}");
                batch.iter().map(|_| None).collect()
            }
        };
        for (t, r) in batch.into_iter().zip(results) {
            let Some(result) = r else { continue };
            let input = Input::TxDone {
                from: t.from,
                remote: t.remote,
                txid: t.tx.txid(),
                result,
            };
            if inputs.send(input).is_err() {
                return;
            }
        }
    }
}

/// Who waits for a command's answer.
enum Reply {
    /// `P2pHandle::connect`: told the peer's id once the state took the connection, or why
    /// it did not.
    Connect(oneshot::Sender<Result<NodeId, String>>),
    Unban(oneshot::Sender<bool>),
    Done(oneshot::Sender<()>),
}

/// See the module documentation.
struct Reactor {
    node: NodeHandle,
    transport: Arc<Transport>,
    state: P2pState,
    hello_base: Hello,
    rates: Rates,
    records: NodeRecords,
    /// Connections that finished their handshake and were not closed yet, by serial.
    conns: HashMap<u64, (Arc<Connection>, Outbox)>,
    events_tx: mpsc::Sender<PeerEvent>,
    /// Inputs made off the reactor's task (the node's verdicts).
    inputs_tx: mpsc::UnboundedSender<Input>,
    /// Peers' transactions, to [`submit_peer_txs`].
    peer_txs: mpsc::UnboundedSender<PeerTx>,
    view: watch::Sender<P2pView>,
    replies: HashMap<u64, Reply>,
    next_req: u64,
    /// Where [`LocalTime`] counts from.
    clock: Instant,
}

impl Reactor {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<P2pCmd>,
        mut events: mpsc::Receiver<PeerEvent>,
        mut node_events: broadcast::Receiver<crate::node::NodeEvent>,
        mut inputs: mpsc::UnboundedReceiver<Input>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut trickle = tokio::time::interval(TRICKLE);
        trickle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(P2pCmd::Shutdown(reply)) => {
                        self.shutdown(Some(reply));
                        return;
                    }
                    Some(cmd) => self.command(cmd),
                    None => {
                        self.shutdown(None);
                        return;
                    }
                },
                Some(ev) = events.recv() => self.peer_event(ev),
                Some(input) = inputs.recv() => self.input(input),
                ev = node_events.recv() => match ev {
                    Ok(ev) => self.input(Input::Node(ev)),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.input(Input::NodeLagged),
                    Err(broadcast::error::RecvError::Closed) => {
                        self.shutdown(None);
                        return;
                    }
                },
                _ = tick.tick() => {
                    self.forget_closed();
                    self.input(Input::Tick);
                }
                _ = trickle.tick() => self.input(Input::Trickle),
            }
        }
    }

    fn now(&self) -> Now {
        Now {
            local: LocalTime::since(self.clock),
            unix: unix_now(),
        }
    }

    /// Step the state with `input` and do what it says.
    fn input(&mut self, input: Input) {
        let now = self.now();
        let out = self.state.step(input, now);
        self.perform(out);
    }

    fn perform(&mut self, out: Vec<Output>) {
        let mut next = Vec::new();
        for o in out {
            match o {
                Output::Send { serial, msg } => {
                    // Never block: a peer whose queue is full does not read, and goes.
                    if let Some((_, outbox)) = self.conns.get(&serial)
                        && let Err(QueueFull(queued)) = outbox.push(&msg)
                    {
                        next.push(Input::NotReading { serial, queued });
                    }
                }
                Output::Disconnect {
                    serial,
                    reason,
                    detail,
                } => {
                    if let Some((conn, _)) = self.conns.remove(&serial) {
                        conn::close(&conn, reason, detail.as_bytes());
                    }
                }
                Output::Dial(target) => self.spawn_dial(target),
                Output::SubmitBlocks { blocks, more } => {
                    let (node, inputs) = (self.node.clone(), self.inputs_tx.clone());
                    tokio::spawn(async move {
                        // Even a hand-off task that panics gets a verdict back, or the state
                        // would wait for it for ever.
                        let outcome =
                            tokio::spawn(async move { node.submit_blocks(blocks, more).await })
                                .await
                                .unwrap_or(Err(NodeError::Stopped));
                        let _ = inputs.send(Input::BlocksDone(outcome));
                    });
                }
                Output::SubmitTx { from, remote, tx } => {
                    // One queue, so transactions reach the node in the order they came (a
                    // child after its parent).
                    let _ = self.peer_txs.send(PeerTx { from, remote, tx });
                }
                Output::SaveRecords(records) => {
                    if let Err(e) = self.records.save(&records) {
                        tracing::error!("saving the address book: {e}");
                    }
                }
                Output::View(view) => {
                    // Watchers (the dashboard redraws) wake only when something changed;
                    // this runs every second.
                    self.view.send_if_modified(|v| {
                        let changed = *v != view;
                        if changed {
                            *v = view;
                        }
                        changed
                    });
                }
                Output::Answer { req, answer } => self.reply(req, answer),
            }
        }
        for input in next {
            self.input(input);
        }
    }

    fn reply(&mut self, req: u64, answer: Answer) {
        match (self.replies.remove(&req), answer) {
            (Some(Reply::Connect(tx)), Answer::Connected(r)) => {
                let _ = tx.send(r);
            }
            (Some(Reply::Unban(tx)), Answer::Unbanned(b)) => {
                let _ = tx.send(b);
            }
            (Some(Reply::Done(tx)), _) => {
                let _ = tx.send(());
            }
            (Some(_), a) => tracing::error!("a command got the wrong kind of answer: {a:?}"),
            (None, _) => {}
        }
    }

    fn ask(&mut self, reply: Reply, cmd: Command) {
        self.next_req += 1;
        let req = self.next_req;
        self.replies.insert(req, reply);
        self.input(Input::Command { req, cmd });
    }

    fn command(&mut self, cmd: P2pCmd) {
        match cmd {
            P2pCmd::Connect(addr, tx) => self.ask(Reply::Connect(tx), Command::Connect(addr)),
            P2pCmd::Unban(who, tx) => self.ask(Reply::Unban(tx), Command::Unban(who)),
            P2pCmd::Sync(tx) => self.ask(Reply::Done(tx), Command::SyncNow),
            P2pCmd::Restrict(allowed, tx) => self.ask(Reply::Done(tx), Command::Restrict(allowed)),
            P2pCmd::Shutdown(tx) => self.shutdown(Some(tx)),
        }
    }

    /// Tell peers goodbye, save the book, close the endpoint; then answer `reply`.
    fn shutdown(&mut self, reply: Option<oneshot::Sender<()>>) {
        let (tx, _rx) = oneshot::channel();
        self.ask(Reply::Done(tx), Command::Shutdown);
        self.transport.close();
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
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
                let info = ConnInfo {
                    serial: conn.serial,
                    id: conn.peer,
                    remote: conn.remote,
                };
                self.conns.insert(conn.serial, (conn, outbox));
                self.input(Input::Connected {
                    conn: info,
                    hello,
                    dialed,
                    activity,
                });
            }
            PeerEvent::Message(id, conn, msg) => self.input(Input::Message {
                serial: conn.serial,
                id,
                msg,
            }),
            PeerEvent::Gone {
                id,
                conn,
                reason,
                misbehaviour,
            } => {
                if let Some(c) = &conn {
                    self.conns.remove(&c.serial);
                }
                self.input(Input::Gone {
                    id,
                    serial: conn.as_ref().map(|c| c.serial),
                    remote: conn.as_ref().map(|c| c.remote),
                    reason,
                    misbehaviour,
                });
            }
            PeerEvent::DialFailed(addr, reason) => self.input(Input::DialFailed(addr, reason)),
        }
    }

    /// Connections that closed underneath us, without their task saying so yet.
    fn forget_closed(&mut self) {
        let closed: Vec<(u64, NodeId, SocketAddr)> = self
            .conns
            .iter()
            .filter(|(_, (c, _))| c.conn.close_reason().is_some())
            .map(|(s, (c, _))| (*s, c.peer, c.remote))
            .collect();
        for (serial, id, remote) in closed {
            self.conns.remove(&serial);
            self.input(Input::Gone {
                id,
                serial: Some(serial),
                remote: Some(remote),
                reason: "connection closed".into(),
                misbehaviour: false,
            });
        }
    }

    /// Dial `target` and run the connection in a task of its own.
    fn spawn_dial(&self, target: PeerAddr) {
        let transport = self.transport.clone();
        let hello = current_hello(&self.hello_base, &self.node);
        let events = self.events_tx.clone();
        let node = self.node.clone();
        let rates = self.rates;
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
}

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
