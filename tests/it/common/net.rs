//! Network test harness: in-process nodes with their peer-to-peer part on 127.0.0.1, bounded
//! waits, and a raw peer speaking the wire protocol by hand (to misbehave).
#![allow(dead_code)]

use crate::common::solve;
use chain_tui::core::Address;
use chain_tui::core::amount::Amount;
use chain_tui::core::block::Block;
use chain_tui::core::hash::BlockHash;
use chain_tui::core::params::{Network, Params};
use chain_tui::core::tx::Transaction;
use chain_tui::net::identity::{NodeId, NodeKey, PeerAddr};
use chain_tui::net::transport::{Connection, Limits, Transport};
use chain_tui::net::wire::{self, Hello, Message, PROTOCOL_VERSION, WireError};
use chain_tui::node::p2p::{self, P2pConfig, P2pHandle, P2pView};
use chain_tui::node::{Node, NodeConfig, NodeHandle, Snapshot};
use chain_tui::storage::BlockMeta;
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::timeout;

/// Upper bound for any single wait.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Await `f`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// How long a wait sleeps when nothing it watches changes: for conditions on what no channel
/// publishes (a raw peer's socket, a file, another process).
const FALLBACK: Duration = Duration::from_millis(100);

thread_local! {
    /// The watch channels of the nodes this test started (a test runs on its own thread and
    /// its body on that thread): waits wake when one of them publishes.
    static WATCHED: RefCell<Vec<Watched>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone)]
enum Watched {
    Node(watch::Receiver<Snapshot>),
    Net(watch::Receiver<P2pView>),
}

impl Watched {
    /// Marks the current value seen.
    fn seen(&mut self) {
        match self {
            Watched::Node(r) => drop(r.borrow_and_update()),
            Watched::Net(r) => drop(r.borrow_and_update()),
        }
    }
    /// The next change; false once the sender is gone.
    async fn changed(&mut self) -> bool {
        match self {
            Watched::Node(r) => r.changed().await.is_ok(),
            Watched::Net(r) => r.changed().await.is_ok(),
        }
    }
}

/// Lets this test's waits wake on `node`'s snapshot.
pub fn watch_node(node: &NodeHandle) {
    WATCHED.with(|w| w.borrow_mut().push(Watched::Node(node.watch())));
}

/// Lets this test's waits wake on `net`'s view.
pub fn watch_net(net: &P2pHandle) {
    WATCHED.with(|w| w.borrow_mut().push(Watched::Net(net.watch())));
}

/// Waits until one of `watched` publishes or [`FALLBACK`] passes; drops closed channels.
async fn next_change(watched: &mut Vec<Watched>) {
    if watched.is_empty() {
        tokio::time::sleep(FALLBACK).await;
        return;
    }
    let changes = watched.iter_mut().map(|w| Box::pin(w.changed()));
    let closed = tokio::select! {
        (alive, i, _) = futures_util::future::select_all(changes) => (!alive).then_some(i),
        _ = tokio::time::sleep(FALLBACK) => None,
    };
    if let Some(i) = closed {
        watched.swap_remove(i);
    }
}

/// This test's watch channels, their current values marked seen.
fn watched_now() -> Vec<Watched> {
    let mut w = WATCHED.with(|w| w.borrow().clone());
    w.iter_mut().for_each(Watched::seen);
    w
}

/// Waits until `cond` holds, checking it again whenever one of this test's nodes publishes a
/// new snapshot or network view (and at least every [`FALLBACK`]); false if it did not hold
/// within `limit`.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let mut watched = watched_now();
    timeout(limit, async {
        while !cond() {
            next_change(&mut watched).await;
        }
    })
    .await
    .is_ok()
}

/// [`wait_until`] with [`WAIT`], panicking with `what` when it does not happen.
pub async fn expect(what: &str, cond: impl FnMut() -> bool) {
    assert!(wait_until(WAIT, cond).await, "timed out waiting: {what}");
}

/// Check that `cond` holds all along for `span` (a negative check: something does not happen),
/// checked at every change this test's nodes publish.
pub async fn holds_for(span: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let mut watched = watched_now();
    let end = Instant::now() + span;
    while Instant::now() < end {
        if !cond() {
            return false;
        }
        let _ = tokio::time::timeout_at(end.into(), next_change(&mut watched)).await;
    }
    cond()
}

/// A node and its network part, in its own data dir.
pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub node: NodeHandle,
    pub net: P2pHandle,
}

/// Start a node on `dir`. A node shut down there before has let the store go, so this does not
/// wait for any lock.
pub async fn spawn_node(dir: &Path, network: Network) -> NodeHandle {
    let mut config = NodeConfig::new(dir, network);
    config.lock_wait = Duration::ZERO;
    let node = Node::spawn(config).unwrap_or_else(|e| panic!("node does not start: {e}"));
    watch_node(&node);
    node
}

/// The default network config for a test node in `dir`, listening on 127.0.0.1:0.
pub fn config(dir: &Path) -> P2pConfig {
    let mut c = P2pConfig::new(dir, localhost());
    c.ban_time = Duration::from_secs(600);
    c
}

pub async fn start_net(node: &NodeHandle, config: P2pConfig) -> P2pHandle {
    let net = within("p2p start", p2p::start(node.clone(), config))
        .await
        .expect("p2p starts");
    watch_net(&net);
    net
}

impl TestNode {
    /// A regtest node with the default test config.
    pub async fn new() -> TestNode {
        TestNode::with(Network::Regtest, |_| {}).await
    }

    /// A node on `network` whose config `tweak` adjusts.
    pub async fn with(network: Network, tweak: impl FnOnce(&mut P2pConfig)) -> TestNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = spawn_node(dir.path(), network).await;
        let mut c = config(dir.path());
        tweak(&mut c);
        let net = start_net(&node, c).await;
        TestNode { dir, node, net }
    }

    pub fn view(&self) -> P2pView {
        self.net.view()
    }
    pub fn id(&self) -> NodeId {
        self.view().id.expect("node id")
    }
    pub fn listen(&self) -> SocketAddr {
        self.view().listen.expect("listen address")
    }
    pub fn peer_addr(&self) -> PeerAddr {
        PeerAddr::new(self.listen(), Some(self.id()))
    }
    pub fn height(&self) -> u64 {
        self.node.snapshot().height
    }
    pub fn tip(&self) -> BlockHash {
        self.node.snapshot().tip
    }
    pub fn has_peer(&self, id: &NodeId) -> bool {
        self.view().peers.iter().any(|p| p.id == *id)
    }
    pub fn ban_reason(&self, id: &NodeId) -> Option<String> {
        self.view()
            .bans
            .iter()
            .find(|b| b.id == Some(*id))
            .map(|b| b.reason.clone())
    }

    /// Dial `other` (pinned) and wait until both sides list each other.
    pub async fn connect_to(&self, other: &TestNode) {
        let id = within("connect", self.net.connect(other.peer_addr()))
            .await
            .expect("connect");
        assert_eq!(id, other.id());
        let (me, them) = (self.id(), other.id());
        expect("both sides list the connection", || {
            self.has_peer(&them) && other.has_peer(&me)
        })
        .await;
    }

    /// Mine `n` blocks paying `to`; waits until the snapshot shows the last one.
    pub async fn mine(&self, n: u64, to: Address) -> Vec<BlockHash> {
        mine(&self.node, n, to).await
    }

    /// Network first, then the node.
    pub async fn stop(self) {
        within("p2p shutdown", self.net.shutdown())
            .await
            .expect("p2p shutdown");
        within("node shutdown", self.node.shutdown())
            .await
            .expect("node shutdown");
    }
}

/// Who the test miners pay (key 1).
pub fn miner() -> Address {
    crate::common::address(&crate::common::key(1))
}

/// Mines `n` blocks paying `to` with the node's own miner (one thread), and waits until its
/// snapshot shows the last one (the miner answers before the snapshot is published).
pub async fn mine(node: &NodeHandle, n: u64, to: Address) -> Vec<BlockHash> {
    let hashes = within("mining", node.mine_blocks(n, 1, to))
        .await
        .expect("mined");
    assert_eq!(hashes.len() as u64, n);
    let last = *hashes.last().unwrap();
    let mut watch = node.watch();
    within("snapshot after mining", watch.wait_for(|s| s.tip == last))
        .await
        .unwrap();
    hashes
}

/// Shuts `node` down; it must stop within [`WAIT`].
pub async fn stop(node: NodeHandle) {
    within("node shutdown", node.shutdown())
        .await
        .expect("node shutdown");
}

/// A block on `parent` (solved) whose coinbase pays `subsidy + fees + extra` to `to`.
pub fn block_on(
    params: &Params,
    parent: &BlockMeta,
    to: Address,
    txs: Vec<Transaction>,
    fees: u64,
    extra: u64,
) -> Block {
    let mut b = crate::common::template(params, parent, to, txs, Amount::from_units(fees + extra));
    solve(&mut b, params);
    b
}

/// A peer that speaks the wire protocol by hand: its own transport, one connection to a node,
/// the one bidirectional stream, Hello exchanged.
pub struct RawPeer {
    pub key: NodeKey,
    pub transport: Transport,
    pub conn: Connection,
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    pub theirs: Hello,
}

/// A Hello for `params`' network at genesis, listening nowhere.
pub fn raw_hello(params: &Params) -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        genesis: params.genesis_hash,
        height: 0,
        tip: params.genesis_hash,
        work: [0; 32],
        listen: None,
        user_agent: "raw-test-peer".into(),
    }
}

impl RawPeer {
    /// Dial `target` with `key`, open the stream, send `hello` and read the node's Hello.
    pub async fn connect(
        key: NodeKey,
        target: SocketAddr,
        hello: Hello,
    ) -> Result<RawPeer, String> {
        let transport =
            Transport::bind(localhost(), &key, Limits::default()).map_err(|e| e.to_string())?;
        let conn = within("raw dial", transport.connect(target, None))
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, mut recv) = within("raw open_bi", conn.conn.open_bi())
            .await
            .map_err(|e| e.to_string())?;
        wire::write_message(&mut send, &Message::Hello(hello))
            .await
            .map_err(|e| e.to_string())?;
        let theirs = match timeout(Duration::from_secs(5), wire::read_message(&mut recv)).await {
            Ok(Ok(Message::Hello(h))) => h,
            Ok(Ok(other)) => return Err(format!("expected hello, got {}", other.kind())),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no hello in time".into()),
        };
        Ok(RawPeer {
            key,
            transport,
            conn,
            send,
            recv,
            theirs,
        })
    }

    pub fn id(&self) -> NodeId {
        self.key.id()
    }

    pub async fn send(&mut self, msg: &Message) -> Result<(), WireError> {
        wire::write_message(&mut self.send, msg).await
    }

    /// Write bytes as they are (frames made by hand).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        wire::write_frame(&mut self.send, bytes).await
    }

    /// The next message (not cancellation safe: a timeout loses the connection's framing).
    pub async fn recv(&mut self) -> Result<Message, WireError> {
        match timeout(WAIT, wire::read_message(&mut self.recv)).await {
            Ok(r) => r,
            Err(_) => Err(WireError::Io("nothing received in time".into())),
        }
    }

    /// Whether the node closes the connection within `limit`.
    pub async fn closed_within(&self, limit: Duration) -> bool {
        timeout(limit, self.conn.conn.closed()).await.is_ok()
    }

    /// Read and drop messages (answering pings) until the connection ends or `limit` passes.
    pub async fn drain(&mut self, limit: Duration) {
        let _ = timeout(limit, async {
            while let Ok(m) = wire::read_message(&mut self.recv).await {
                if let Message::Ping(n) = m
                    && self.send(&Message::Pong(n)).await.is_err()
                {
                    break;
                }
            }
        })
        .await;
    }
}
