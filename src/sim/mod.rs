//! A deterministic network simulator. Every node runs the real peer-to-peer protocol, the
//! same [`P2pState`] a live node runs, fed by a virtual network instead of QUIC and by a
//! virtual clock instead of the system's. Behind each node's [`ChainView`] is either a
//! [`chain::LightChain`] — one content-addressed block store for the whole network, with each
//! node's own index and tip, so that thousands of nodes fit in memory — or, with
//! [`Validation::Full`], a [`full::FullChain`]: the node's own chain state machine and mempool
//! over a store in memory, checking every rule, with real signed payments between the nodes'
//! wallets relayed message by message (a few hundred nodes).
//!
//! The network: each node sits in a region ([`world`]); a message takes the one-way latency
//! between the two regions, after the sender's uplink has sent it (a node's messages leave one
//! after another at its upload bandwidth). Miners are drawn by hashrate share (equal shares),
//! with exponential times between blocks. Requests a live node's connection task answers by
//! itself (ping, headers, blocks) are answered here on arrival, as there.
//!
//! The same configuration and seed give the same run, event for event: the only randomness is
//! a seeded generator, and every collection whose order matters is ordered.

pub mod chain;
pub mod full;
pub mod txs;
pub mod world;

use crate::core::address::Address;
use crate::core::block::{Block, BlockHeader};
use crate::core::hash::Txid;
use crate::core::hash::{BlockHash, MerkleRoot};
use crate::core::params::{Network, Params};
use crate::core::pow::Work;
use crate::net::identity::{NodeId, PeerAddr};
use crate::net::wire::{self, Hello, MAX_HEADERS, Message};
use crate::node::p2p::book::{BookEntry, Records};
use crate::node::p2p::limits::{Bucket, counts_as_unsolicited};
use crate::node::p2p::state::{
    ChainView, Command, ConnInfo, Input, Now, Output, P2pState, Settings, TRICKLE,
};
use crate::node::p2p::time::LocalTime;
use crate::node::p2p::{Activity, CompactStats, UNSOLICITED_PER_SEC};
use crate::node::{BatchOutcome, NodeEvent};
use chain::{Connected, LightChain, Store};
use ed25519_dalek::SigningKey;
use full::FullChain;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use txs::TxWorld;
use world::{Latency, Region};

/// How a simulation is set up.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: usize,
    /// Outbound connections each node keeps.
    pub peers: usize,
    /// Mean time between blocks.
    pub block_interval: Duration,
    /// Each block's size on the network, in bytes.
    pub block_size: u64,
    pub latency: Latency,
    /// Simulated time to run.
    pub duration: Duration,
    pub seed: u64,
    /// Nodes that mine, with equal hashrate (0: all).
    pub miners: usize,
    /// Each node's upload bandwidth, in bits per second.
    pub upload_bps: u64,
    /// Time a node takes to validate a block, per megabyte (before it relays it).
    pub verify_per_mb: Duration,
    /// How often each node's timer fires (a live node: every second).
    pub tick: Duration,
    /// Time between pings of each peer.
    pub ping_every: Duration,
    /// The network splits in two halves (the first half of the nodes and the rest) for this
    /// span of time: every connection between the halves drops and none can be made.
    pub partition: Option<(Duration, Duration)>,
    /// An eclipse: the first node's outbound peers are all hostile (see [`Eclipse`]).
    pub eclipse: Option<Eclipse>,
    /// A flood: the last node sends its peers unrequested messages (see [`Flood`]).
    pub flood: Option<Flood>,
    /// How blocks travel. Blocks with no transactions (`txs` 0) always go whole.
    pub relay: Relay,
    /// Simulated transactions per full block (0: blocks carry none, and are validated whole).
    /// Each stands for `block_size / txs` bytes of real transactions.
    pub txs: usize,
    /// The size of one real transaction, in bytes: a compact block carries one short id per
    /// `tx_size` bytes of block.
    pub tx_size: u64,
    /// Mean time for a transaction to reach a node's mempool (see [`txs`]).
    pub tx_delay: Duration,
    /// How far nodes check what they receive.
    pub validation: Validation,
    /// With full validation: the last node, whenever it finds a block, makes it invalid (its
    /// coinbase pays one unit too much) and announces its header to its peers.
    pub invalid_miner: bool,
}

/// How far simulated nodes check what they receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validation {
    /// Blocks connect by their parent and the most work wins; transactions are synthetic
    /// and reach mempools by a delay model. Thousands of nodes.
    Light,
    /// Every consensus rule, by the node's own chain state machine and mempool over a store
    /// in memory; payments are real signed transactions between the nodes' own keys,
    /// relayed message by message. At most [`MAX_FULL_NODES`] nodes.
    Full,
}

/// The fee of each simulated payment, in units.
const PAYMENT_FEE: u64 = 10_000;

/// The most nodes a fully validating run takes (each has its own store and mempool).
pub const MAX_FULL_NODES: usize = 500;

/// How blocks travel between simulated nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relay {
    /// Protocol version 1: announced by hash; headers, then the whole block, are asked for.
    Full,
    /// Protocol version 2: compact blocks, rebuilt from the mempool.
    Compact,
}

/// Node 0 (the victim) dials only `attackers` hostile nodes (the last ones), which answer
/// pings and nothing else, tell it of no block and never mine; no honest node dials it. At
/// `honest_at`, honest node 1 dials it.
#[derive(Clone, Copy, Debug)]
pub struct Eclipse {
    pub attackers: usize,
    pub honest_at: Duration,
}

/// From `start` to `end`, the last node sends each of its peers `per_sec` announcements of
/// genesis a second (messages nobody asked for), on top of taking part as usual.
#[derive(Clone, Copy, Debug)]
pub struct Flood {
    pub start: Duration,
    pub end: Duration,
    pub per_sec: u64,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            nodes: 100,
            peers: 8,
            block_interval: Duration::from_secs(600),
            block_size: 1_000_000,
            latency: Latency::World,
            duration: Duration::from_secs(3600),
            seed: 1,
            miners: 0,
            upload_bps: 25_000_000,
            verify_per_mb: Duration::from_millis(100),
            tick: Duration::from_secs(1),
            ping_every: Duration::from_secs(60),
            partition: None,
            eclipse: None,
            flood: None,
            relay: Relay::Full,
            txs: 0,
            tx_size: 250,
            tx_delay: Duration::from_secs(5),
            validation: Validation::Light,
            invalid_miner: false,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SimReport {
    pub nodes: usize,
    pub blocks_mined: usize,
    /// Blocks mined before the last [`SETTLE`] of the run that ended off the best chain.
    pub stale_blocks: usize,
    /// Their share of the blocks mined before then, in parts per million.
    pub stale_ppm: u64,
    /// Median over blocks of the time until 50, 90 and 99 % of the honest nodes had the block
    /// (ms).
    pub propagation_ms: [u64; 3],
    /// The same at the 90th percentile over blocks.
    pub propagation_p90_ms: [u64; 3],
    /// Bytes each node sent and received, on average.
    pub bytes_per_node: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Events processed.
    pub events: u64,
    /// Nodes whose tip is the best tip at the end.
    pub on_best_tip: usize,
    pub relay: Relay,
    /// Compact block relay, summed over the nodes.
    pub compact: CompactStats,
    pub validation: Validation,
    /// Payments made (full validation), and how many are confirmed on the best chain.
    pub payments: usize,
    pub payments_confirmed: usize,
    /// Bans in force at the end, summed over the nodes.
    pub bans: usize,
    /// Blocks a node's own chain refused from its own template: 0 unless there is a bug.
    pub own_blocks_refused: usize,
}

/// A mined block and how far it spread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSpread {
    pub hash: BlockHash,
    pub height: u64,
    pub prev: BlockHash,
    pub miner: usize,
    pub mined_at: Duration,
    /// Per node: how long after it was mined the node had it.
    pub arrived: Vec<Option<Duration>>,
}

impl BlockSpread {
    /// How many nodes have it.
    pub fn reached(&self) -> usize {
        self.arrived.iter().flatten().count()
    }

    /// How long until `share` percent of the `n` nodes had it.
    pub fn time_to(&self, share: usize) -> Option<Duration> {
        let mut t: Vec<Duration> = self.arrived.iter().flatten().copied().collect();
        t.sort_unstable();
        let need = (self.arrived.len() * share).div_ceil(100).max(1);
        t.get(need - 1).copied()
    }
}

/// Whether a node has a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// On its active chain.
    Active,
    /// Stored, on a side branch.
    Side,
    Missing,
}

/// Blocks this close to the end may not have settled: left out of the stale count.
pub const SETTLE: Duration = Duration::from_secs(1800);

#[derive(Debug)]
enum Event {
    /// A dial from `from` to `to` finished its handshake.
    Connect {
        from: usize,
        to: usize,
    },
    /// A message from `from` arrives at `to` on `to`'s connection `serial`.
    Deliver {
        to: usize,
        serial: u64,
        from: usize,
        msg: Message,
    },
    /// `to`'s connection `serial` was closed by the other end.
    Closed {
        to: usize,
        serial: u64,
        from: usize,
    },
    Tick(usize),
    Trickle(usize),
    /// `node` finished validating the batch it was given.
    Validated {
        node: usize,
        blocks: Vec<Block>,
    },
    Mine,
    /// A transaction is made.
    NewTx,
    /// The flooder sends a round of unrequested messages.
    Flood,
    /// The partition starts: connections between the halves drop.
    Split,
    /// `from` dials `to` (the honest peer of an eclipse).
    Dial {
        from: usize,
        to: usize,
    },
}

/// An event and when.
struct Timed {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Timed {
    fn eq(&self, o: &Timed) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, o: &Timed) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timed {
    fn cmp(&self, o: &Timed) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// A node's chain: light or fully validating.
#[derive(Clone)]
enum NodeChain {
    Light(LightChain),
    Full(FullChain),
}

impl NodeChain {
    fn tip(&self) -> (u64, BlockHash) {
        match self {
            NodeChain::Light(c) => c.tip(),
            NodeChain::Full(c) => c.tip(),
        }
    }

    fn has(&self, hash: &BlockHash) -> bool {
        match self {
            NodeChain::Light(c) => c.has(hash),
            NodeChain::Full(c) => c.has(hash),
        }
    }

    fn is_active(&self, hash: &BlockHash) -> bool {
        match self {
            NodeChain::Light(c) => c.is_active(hash),
            NodeChain::Full(c) => c.is_active(hash),
        }
    }

    fn headers_after(&self, locator: &[BlockHash], stop: &BlockHash) -> Vec<BlockHeader> {
        match self {
            NodeChain::Light(c) => c.headers_after(locator, stop, MAX_HEADERS),
            NodeChain::Full(c) => c.headers_after(locator, stop, MAX_HEADERS),
        }
    }

    /// A block it has, to serve to a peer.
    fn block(&self, store: &Store, hash: &BlockHash) -> Option<Arc<Block>> {
        match self {
            NodeChain::Light(c) => store.block(hash).filter(|_| c.has(hash)),
            NodeChain::Full(c) => ChainView::block(c, hash).map(Arc::new),
        }
    }

    /// Its view for the protocol.
    fn view(&self) -> Box<dyn ChainView> {
        match self {
            NodeChain::Light(c) => Box::new(c.clone()),
            NodeChain::Full(c) => Box::new(c.clone()),
        }
    }

    fn work(&self) -> Work {
        match self {
            NodeChain::Light(c) => ChainView::tip(c).2,
            NodeChain::Full(c) => ChainView::tip(c).2,
        }
    }
}

/// A fully validating node's own key, paid by its coinbases and spent by its payments.
struct Wallet {
    key: SigningKey,
    address: Address,
}

struct SimNode {
    id: NodeId,
    addr: SocketAddr,
    region: Region,
    state: P2pState,
    chain: NodeChain,
    wallet: Option<Wallet>,
    /// Open connections: our serial → (the other node, its serial).
    conns: BTreeMap<u64, (usize, u64)>,
    /// Per connection, the budget of unrequested messages its peer may send (as a live
    /// node's connection task keeps it).
    budgets: BTreeMap<u64, Bucket>,
    /// When its uplink is free again (µs).
    upload_free: u64,
    bytes: u64,
    trickle_due: bool,
    /// A hostile node of an eclipse: answers pings, nothing else.
    hostile: bool,
}

/// A simulation in progress.
pub struct Sim {
    config: SimConfig,
    params: &'static Params,
    store: Arc<Store>,
    nodes: Vec<SimNode>,
    by_addr: BTreeMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<Timed>>,
    seq: u64,
    now: u64,
    rng: fastrand::Rng,
    next_serial: u64,
    miners: Vec<usize>,
    /// Each mined block: when, and when each node first had it (µs; by node index).
    mined: BTreeMap<BlockHash, (u64, Vec<Option<u64>>)>,
    /// Blocks in the order they were mined, with their miners.
    order: Vec<(BlockHash, usize)>,
    messages: u64,
    events: u64,
    txs: Arc<TxWorld>,
    next_tx: u64,
    /// The clock fully validating nodes read (unix seconds).
    clock: Arc<AtomicU64>,
    /// Invalid blocks the invalid miner made (it serves them; nobody else has them).
    bad_blocks: BTreeSet<BlockHash>,
    /// Payments made with full validation, in order, with who made them.
    payments: Vec<(Txid, usize)>,
    /// Blocks a node's own chain refused from its own template (a bug if any).
    refused_own: Vec<String>,
}

/// The address of simulated node `i`: on loopback, never dialed for real.
fn sim_addr(i: usize) -> SocketAddr {
    let port = 20_000 + (i % 40_000) as u16;
    let third = (i / 40_000) as u8;
    SocketAddr::from(([127, 0, third, 1], port))
}

/// Bytes `msg` takes on the wire (a block: its configured size; a simulated transaction:
/// the real transactions it stands for, each with a short id in a compact block).
/// Transaction relay is not simulated, and its messages (the mempool announced to a new
/// peer) count nothing.
fn wire_size(msg: &Message, store: &Store, config: &SimConfig) -> u64 {
    const FRAME: u64 = 8;
    let per_sim = config.block_size / config.txs.max(1) as u64;
    let real_per_sim = (per_sim / config.tx_size.max(1)).max(1);
    FRAME
        + match msg {
            Message::Block(b) => store.size(&b.hash()).max(88),
            Message::Headers(h) => 88 * h.len() as u64 + 4,
            Message::InvBlocks(h) | Message::GetBlocks(h) | Message::NotFound(h) => {
                32 * h.len() as u64 + 4
            }
            Message::InvTxs(_) | Message::GetTxs(_) | Message::Tx(_) => return 0,
            Message::GetHeaders { locator, .. } => 32 * locator.len() as u64 + 36,
            Message::Addrs(a) => 18 * a.len() as u64 + 4,
            Message::Hello(_) => 160,
            Message::Ping(_) | Message::Pong(_) | Message::GetAddrs => 9,
            // The coinbase goes whole: about a real transaction's size.
            Message::CompactBlock(c) => {
                96 + 6 * real_per_sim * c.short_ids.len() as u64
                    + config.tx_size * c.prefilled.len() as u64
            }
            // Positions as differences: about two bytes each.
            Message::GetBlockTxs { indexes, .. } => 36 + 2 * real_per_sim * indexes.len() as u64,
            Message::BlockTxs { txs, .. } => 36 + per_sim * txs.len() as u64,
        }
}

impl Sim {
    /// Set up the nodes (each dials `peers` others) and the first block. Refused: a fully
    /// validating run of more than [`MAX_FULL_NODES`] nodes, or one whose stores cannot be
    /// made.
    pub fn new(mut config: SimConfig) -> Result<Sim, String> {
        if config.txs == 0 {
            config.relay = Relay::Full;
        }
        let full = config.validation == Validation::Full;
        if full && config.nodes > MAX_FULL_NODES {
            return Err(format!(
                "full validation keeps a store and a mempool for every node: at most \
                 {MAX_FULL_NODES} nodes, not {}",
                config.nodes
            ));
        }
        let params = Network::Regtest.params();
        let clock = Arc::new(AtomicU64::new(params.genesis.header.time));
        let store = Arc::new(Store::new(params));
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let txs = Arc::new(TxWorld::new(config.seed, config.tx_delay));
        let n = config.nodes.max(1);
        let regions: Vec<Region> = (0..n).map(|_| config.latency.draw(&mut rng)).collect();
        let mut nodes = Vec::with_capacity(n);
        let mut by_addr = BTreeMap::new();
        let attackers = config
            .eclipse
            .map_or(0, |e| e.attackers.min(n.saturating_sub(2)));
        let hostile = |i: usize| attackers > 0 && i >= n - attackers;
        for (i, region) in regions.into_iter().enumerate() {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&rng.u64(..).to_be_bytes());
            id[24..].copy_from_slice(&(i as u64).to_be_bytes());
            let id = NodeId(id);
            let addr = sim_addr(i);
            by_addr.insert(addr, i);
            // Outbound peers: distinct others, chosen at random. In an eclipse the victim
            // dials only the attackers, the attackers dial the victim, and nobody else dials
            // either.
            let mut connect = Vec::new();
            if attackers > 0 && (i == 0 || hostile(i)) {
                let targets: Vec<usize> = if i == 0 {
                    (n - attackers..n).collect()
                } else {
                    vec![0]
                };
                connect.extend(
                    targets
                        .into_iter()
                        .map(|j| PeerAddr::new(sim_addr(j), None)),
                );
            } else {
                let honest = n - attackers - usize::from(attackers > 0);
                while connect.len() < config.peers.min(honest.saturating_sub(1)) {
                    let j = rng.usize(..n);
                    let a = PeerAddr::new(sim_addr(j), None);
                    let off_limits = attackers > 0 && (j == 0 || hostile(j));
                    if j != i && !off_limits && !connect.contains(&a) {
                        connect.push(a);
                    }
                }
            }
            let (chain, wallet) = if full {
                let chain = FullChain::new(Network::Regtest, clock.clone())
                    .map_err(|e| format!("node {i}: {e}"))?;
                // A key of its own, from the seed.
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&rng.u64(..).to_be_bytes());
                seed[8..16].copy_from_slice(&rng.u64(..).to_be_bytes());
                seed[24..].copy_from_slice(&(i as u64).to_be_bytes());
                let key = SigningKey::from_bytes(&seed);
                let address = Address::from_pubkey(&key.verifying_key().to_bytes());
                (NodeChain::Full(chain), Some(Wallet { key, address }))
            } else {
                let chain =
                    LightChain::new(store.clone(), params.genesis_hash).with_txs(txs.clone(), i);
                (NodeChain::Light(chain), None)
            };
            let state = P2pState::new(
                Settings {
                    id,
                    listen: Some(addr),
                    max_outbound: config.peers.max(connect.len()),
                    max_inbound: (config.peers * 8).max(16),
                    ban_time: Duration::from_secs(3600),
                    pow_limit: params.pow_limit,
                    max_block_bytes: params.max_block_size,
                    ping_every: config.ping_every,
                    views: false,
                },
                chain.view(),
                // Its first peers are in its book as any learned address is (not pinned as
                // `--connect` pins them: a node may rotate them out).
                Records {
                    book: connect
                        .iter()
                        .map(|p| BookEntry {
                            addr: p.addr,
                            id: None,
                            failures: 0,
                            next_try: 0,
                            pinned: false,
                        })
                        .collect(),
                    bans: Vec::new(),
                },
                &[],
                Now::default(),
            );
            nodes.push(SimNode {
                id,
                addr,
                region,
                state,
                chain,
                wallet,
                conns: BTreeMap::new(),
                budgets: BTreeMap::new(),
                upload_free: 0,
                bytes: 0,
                trickle_due: false,
                hostile: hostile(i),
            });
        }
        let mut miners: Vec<usize> = (0..n).filter(|i| !hostile(*i)).collect();
        if config.miners > 0 && config.miners < n {
            rng.shuffle(&mut miners);
            miners.truncate(config.miners);
            miners.sort_unstable();
        }
        let mut sim = Sim {
            config,
            params,
            store,
            nodes,
            by_addr,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            rng,
            next_serial: 1,
            miners,
            mined: BTreeMap::new(),
            order: Vec::new(),
            messages: 0,
            events: 0,
            txs,
            next_tx: 0,
            clock,
            bad_blocks: BTreeSet::new(),
            payments: Vec::new(),
            refused_own: Vec::new(),
        };
        let tick = micros(sim.config.tick).max(1);
        for i in 0..sim.nodes.len() {
            let now = sim.time();
            let out = sim.nodes[i].state.start(now);
            sim.perform(i, out);
            // Timers out of step, as real nodes' are.
            let phase = sim.rng.u64(..tick);
            sim.at(phase, Event::Tick(i));
        }
        sim.schedule_mining();
        if sim.config.txs > 0 {
            sim.schedule_tx();
        }
        if let Some((start, _)) = sim.config.partition {
            sim.at(micros(start), Event::Split);
        }
        if let Some(f) = sim.config.flood {
            sim.at(micros(f.start), Event::Flood);
        }
        if let Some(e) = sim.config.eclipse {
            sim.at(micros(e.honest_at), Event::Dial { from: 1, to: 0 });
        }
        Ok(sim)
    }

    /// Whether `a` and `b` are cut off from each other now.
    fn apart(&self, a: usize, b: usize) -> bool {
        let Some((start, end)) = self.config.partition else {
            return false;
        };
        let half = self.nodes.len() / 2;
        (micros(start)..micros(end)).contains(&self.now) && (a < half) != (b < half)
    }

    /// Run until `t` of simulated time (events at `t` included). The nodes' logs are silenced:
    /// they would be thousands of nodes' worth, in virtual time.
    pub fn run_until(&mut self, t: Duration) {
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            self.run_until_inner(t)
        });
    }

    fn run_until_inner(&mut self, t: Duration) {
        let end = micros(t);
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > end {
                break;
            }
            let Some(Reverse(e)) = self.queue.pop() else {
                break;
            };
            self.now = e.at;
            self.txs.set_now(self.now);
            self.clock.store(self.time().unix, Ordering::Relaxed);
            self.events += 1;
            self.handle(e.event);
        }
        self.now = self.now.max(end);
    }

    /// Node `i`'s tip height and hash.
    pub fn tip(&self, i: usize) -> (u64, BlockHash) {
        self.nodes[i].chain.tip()
    }

    /// The greatest height among the honest nodes' tips.
    pub fn best_height(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|x| !x.hostile)
            .map(|x| x.chain.tip().0)
            .max()
            .unwrap_or(0)
    }

    /// How many honest nodes share node `i`'s tip.
    pub fn on_tip_of(&self, i: usize) -> usize {
        let tip = self.tip(i).1;
        self.nodes
            .iter()
            .filter(|x| !x.hostile && x.chain.tip().1 == tip)
            .count()
    }

    /// Simulated time so far.
    pub fn now(&self) -> Duration {
        Duration::from_micros(self.now)
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Node `i`'s bans in force: the banned node (by index) and why.
    pub fn bans(&self, i: usize) -> Vec<(Option<usize>, String)> {
        let Some(n) = self.nodes.get(i) else {
            return Vec::new();
        };
        n.state
            .bans(self.time().unix)
            .into_iter()
            .map(|b| {
                let who =
                    b.id.and_then(|id| self.nodes.iter().position(|x| x.id == id));
                (who, b.reason)
            })
            .collect()
    }

    /// The invalid miner's blocks so far.
    pub fn invalid_blocks(&self) -> Vec<BlockHash> {
        self.bad_blocks.iter().copied().collect()
    }

    /// Payments made so far (full validation), in order, with the node that made each.
    pub fn payments(&self) -> &[(Txid, usize)] {
        &self.payments
    }

    /// Where `txid` is confirmed on node `i`'s active chain: its block's height (full
    /// validation).
    pub fn confirmed_at(&self, i: usize, txid: &Txid) -> Option<u64> {
        match &self.nodes.get(i)?.chain {
            NodeChain::Full(c) => c.confirmed_at(txid),
            NodeChain::Light(_) => None,
        }
    }

    /// Whether node `i`'s mempool holds `txid` (full validation).
    pub fn in_mempool(&self, i: usize, txid: &Txid) -> bool {
        match self.nodes.get(i).map(|n| &n.chain) {
            Some(NodeChain::Full(c)) => c.in_pool(txid),
            _ => false,
        }
    }

    /// Stage a double spend (full validation): node `owner`'s oldest spendable coin is paid
    /// to two different nodes by two transactions, one handed to node `a`'s mempool and the
    /// other to node `b`'s at the same instant. Their ids (the first to `a`), or `None` if
    /// `owner` has no spendable coin or either node refused its transaction.
    pub fn pay_twice(&mut self, owner: usize, a: usize, b: usize) -> Option<(Txid, Txid)> {
        let n = self.nodes.len();
        let (NodeChain::Full(chain), Some(wallet)) =
            (&self.nodes.get(owner)?.chain, &self.nodes[owner].wallet)
        else {
            return None;
        };
        let (outpoint, coin) = chain.spendable(&wallet.address).into_iter().next()?;
        let fee = crate::core::amount::Amount::from_units(PAYMENT_FEE);
        let amount = coin.output.amount.checked_sub(fee)?;
        let payee = |k: usize| self.nodes[k % n].wallet.as_ref().map(|w| w.address);
        let make = |to: Address| {
            crate::core::tx::Transaction::signed(
                &[(outpoint, &wallet.key)],
                vec![crate::core::tx::TxOut {
                    amount,
                    address: to,
                }],
                &self.params.genesis_hash,
            )
        };
        let (one, two) = (make(payee(a)?), make(payee(b)?));
        let mut ids = Vec::new();
        for (at, tx) in [(a, one), (b, two)] {
            let NodeChain::Full(c) = &self.nodes.get(at)?.chain else {
                return None;
            };
            let txid = c.accept_tx(tx).ok()?;
            self.payments.push((txid, owner));
            self.node_events(at, vec![NodeEvent::TxAccepted(txid)]);
            ids.push(txid);
        }
        Some((ids[0], ids[1]))
    }

    /// Node `i`'s region.
    pub fn region(&self, i: usize) -> Region {
        self.nodes.get(i).map_or(0, |n| n.region)
    }

    /// The last `k` blocks mined, newest first, with when each node had them.
    pub fn spreads(&self, k: usize) -> Vec<BlockSpread> {
        self.order
            .iter()
            .rev()
            .take(k)
            .filter_map(|(hash, miner)| {
                let (at, seen) = self.mined.get(hash)?;
                let header = self.store.header(hash)?;
                Some(BlockSpread {
                    hash: *hash,
                    height: self.store.place(hash)?.0,
                    prev: header.prev,
                    miner: *miner,
                    mined_at: Duration::from_micros(*at),
                    arrived: seen
                        .iter()
                        .map(|t| t.map(|t| Duration::from_micros(t.saturating_sub(*at))))
                        .collect(),
                })
            })
            .collect()
    }

    /// Whether node `i` has block `hash`, and on its active chain.
    pub fn holds(&self, i: usize, hash: &BlockHash) -> Holds {
        let Some(n) = self.nodes.get(i) else {
            return Holds::Missing;
        };
        if !n.chain.has(hash) {
            Holds::Missing
        } else if n.chain.is_active(hash) {
            Holds::Active
        } else {
            Holds::Side
        }
    }

    fn time(&self) -> Now {
        Now {
            local: LocalTime::from_millis(self.now / 1000),
            unix: self.params.genesis.header.time + self.now / 1_000_000,
        }
    }

    fn at(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Timed {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// An exponential wait of mean `mean` (µs), from a uniform draw in (0, 1].
    fn exponential(&mut self, mean: f64) -> u64 {
        let u = 1.0 - self.rng.f64();
        ((-u.ln() * mean).min(mean * 50.0) as u64).max(1)
    }

    fn schedule_mining(&mut self) {
        let wait = self.exponential(self.config.block_interval.as_secs_f64() * 1e6);
        self.at(self.now + wait, Event::Mine);
    }

    /// The next transaction: as many per block interval as a full block holds.
    fn schedule_tx(&mut self) {
        let mean = self.config.block_interval.as_secs_f64() * 1e6 / self.config.txs as f64;
        let wait = self.exponential(mean);
        self.at(self.now + wait, Event::NewTx);
    }

    /// Run to the configured duration; what it measured.
    pub fn run(mut self) -> SimReport {
        let end = self.config.duration;
        self.run_until(end);
        self.report(micros(end))
    }

    fn step(&mut self, i: usize, input: Input) {
        let now = self.time();
        let out = self.nodes[i].state.step(input, now);
        self.perform(i, out);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Connect { from, to } => self.connect(from, to),
            Event::Deliver {
                to,
                serial,
                from,
                msg,
            } => {
                // Gone since it was sent: dropped with the connection.
                if !self.nodes[to].conns.contains_key(&serial) {
                    return;
                }
                self.messages += 1;
                self.deliver(to, serial, from, msg);
            }
            Event::Closed { to, serial, from } => {
                if self.drop_conn(to, serial).is_some() {
                    let (id, remote) = (self.nodes[from].id, self.nodes[from].addr);
                    self.step(
                        to,
                        Input::Gone {
                            id,
                            serial: Some(serial),
                            remote: Some(remote),
                            reason: "closed by the peer".into(),
                            misbehaviour: false,
                        },
                    );
                }
            }
            Event::Tick(i) => {
                self.step(i, Input::Tick);
                let next = self.now + micros(self.config.tick).max(1);
                self.at(next, Event::Tick(i));
            }
            Event::Trickle(i) => {
                self.nodes[i].trickle_due = false;
                self.step(i, Input::Trickle);
            }
            Event::Validated { node, blocks } => self.validated(node, blocks),
            Event::Mine => {
                if !self.miners.is_empty() {
                    let who = self.miners[self.rng.usize(..self.miners.len())];
                    self.mine(who);
                }
                self.schedule_mining();
            }
            Event::NewTx if self.config.validation == Validation::Full => {
                self.pay();
                self.schedule_tx();
            }
            Event::NewTx => {
                let honest = self.nodes.iter().filter(|x| !x.hostile).count().max(1);
                let origin = self.rng.usize(..honest);
                self.txs.make(self.next_tx, origin);
                self.next_tx += 1;
                self.schedule_tx();
            }
            Event::Flood => self.flood(),
            Event::Split => self.split(),
            Event::Dial { from, to } => {
                let addr = self.nodes[to].addr;
                self.step(
                    from,
                    Input::Command {
                        req: 0,
                        cmd: Command::Connect(PeerAddr::new(addr, None)),
                    },
                );
            }
        }
    }

    /// `node`'s connection `serial` is gone (with its budget): the other end and its serial.
    fn drop_conn(&mut self, node: usize, serial: u64) -> Option<(usize, u64)> {
        let n = &mut self.nodes[node];
        n.budgets.remove(&serial);
        n.conns.remove(&serial)
    }

    /// `to` closes connection `serial` to flooding `from`.
    fn close_flooded(&mut self, to: usize, serial: u64, from: usize, msg: &Message) {
        let Some((_, their)) = self.drop_conn(to, serial) else {
            return;
        };
        let latency = self
            .config
            .latency
            .one_way_us(self.nodes[to].region, self.nodes[from].region);
        self.at(
            self.now + latency,
            Event::Closed {
                to: from,
                serial: their,
                from: to,
            },
        );
        let (id, remote) = (self.nodes[from].id, self.nodes[from].addr);
        self.step(
            to,
            Input::Gone {
                id,
                serial: Some(serial),
                remote: Some(remote),
                reason: format!("flooding: too many {} messages", msg.kind()),
                misbehaviour: true,
            },
        );
    }

    /// The flooder's round: one announcement to each peer, then the next round.
    fn flood(&mut self) {
        let Some(f) = self.config.flood else {
            return;
        };
        if self.now >= micros(f.end) {
            return;
        }
        let flooder = self.nodes.len() - 1;
        let genesis = self.params.genesis_hash;
        let serials: Vec<u64> = self.nodes[flooder].conns.keys().copied().collect();
        for s in serials {
            self.send(flooder, s, Message::InvBlocks(vec![genesis]));
        }
        let next = self.now + (1_000_000 / f.per_sec.max(1)).max(1);
        self.at(next, Event::Flood);
    }

    /// Whether `a` has a connection to `b`.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.nodes
            .get(a)
            .is_some_and(|n| n.conns.values().any(|(j, _)| *j == b))
    }

    /// Every connection across the cut drops, at both ends.
    fn split(&mut self) {
        for i in 0..self.nodes.len() {
            let across: Vec<u64> = self.nodes[i]
                .conns
                .iter()
                .filter(|(_, (j, _))| self.apart(i, *j))
                .map(|(s, _)| *s)
                .collect();
            for serial in across {
                if let Some((j, _)) = self.drop_conn(i, serial) {
                    let (id, remote) = (self.nodes[j].id, self.nodes[j].addr);
                    self.step(
                        i,
                        Input::Gone {
                            id,
                            serial: Some(serial),
                            remote: Some(remote),
                            reason: "network partition".into(),
                            misbehaviour: false,
                        },
                    );
                }
            }
        }
    }

    fn deliver(&mut self, to: usize, serial: u64, from: usize, msg: Message) {
        // Over its budget of unrequested messages, the sender is flooding: the connection
        // closes and the protocol hears of the misbehaviour (and bans), as on a live node.
        let now = self.time().local;
        if counts_as_unsolicited(&msg)
            && let Some(b) = self.nodes[to].budgets.get_mut(&serial)
            && !b.take(now)
        {
            self.close_flooded(to, serial, from, &msg);
            return;
        }
        if self.nodes[to].hostile {
            if let Message::Ping(n) = msg {
                self.send(to, serial, Message::Pong(n));
            }
            return;
        }
        let replies: Vec<Message> = match msg {
            Message::Ping(n) => vec![Message::Pong(n)],
            Message::GetHeaders { locator, stop } => {
                vec![Message::Headers(
                    self.nodes[to].chain.headers_after(&locator, &stop),
                )]
            }
            Message::GetBlocks(hashes) => {
                let mut out = Vec::new();
                let mut missing = Vec::new();
                for h in hashes {
                    match self.served_block(to, &h) {
                        Some(b) => out.push(Message::Block((*b).clone())),
                        None => missing.push(h),
                    }
                }
                if !missing.is_empty() {
                    out.push(Message::NotFound(missing));
                }
                out
            }
            // A fully validating node's mempool (light nodes relay no transactions).
            Message::GetTxs(txids) => match &self.nodes[to].chain {
                NodeChain::Full(c) => txids
                    .iter()
                    .filter_map(|t| c.mempool_tx(t))
                    .map(Message::Tx)
                    .collect(),
                NodeChain::Light(_) => Vec::new(),
            },
            Message::GetBlockTxs { block, indexes } => {
                let txs = match self.served_block(to, &block) {
                    Some(b) => indexes
                        .iter()
                        .filter_map(|i| b.txs.get(*i as usize).cloned())
                        .collect(),
                    None => Vec::new(),
                };
                vec![Message::BlockTxs { block, txs }]
            }
            other => {
                let id = self.nodes[from].id;
                self.step(
                    to,
                    Input::Message {
                        serial,
                        id,
                        msg: other,
                    },
                );
                return;
            }
        };
        for r in replies {
            self.send(to, serial, r);
        }
    }

    /// Whether node `i` follows the protocol (not an eclipse attacker, not the invalid miner).
    fn is_honest(&self, i: usize) -> bool {
        let invalid_miner = self.config.invalid_miner && i + 1 == self.nodes.len();
        !self.nodes[i].hostile && !invalid_miner
    }

    /// A block `node` gives a peer that asks: one it has, or one of the invalid miner's own.
    fn served_block(&self, node: usize, hash: &BlockHash) -> Option<Arc<Block>> {
        if self.config.invalid_miner
            && node == self.nodes.len() - 1
            && self.bad_blocks.contains(hash)
        {
            return self.store.block(hash);
        }
        self.nodes[node].chain.block(&self.store, hash)
    }

    /// Put `msg` on `from`'s connection `serial`: it leaves when the uplink is free, and
    /// arrives a latency later.
    fn send(&mut self, from: usize, serial: u64, msg: Message) {
        let Some(&(to, their)) = self.nodes[from].conns.get(&serial) else {
            return;
        };
        if self.apart(from, to) {
            return;
        }
        let size = match self.config.validation {
            Validation::Light => wire_size(&msg, &self.store, &self.config),
            // Real blocks and transactions: their real size, and a frame's length prefix.
            Validation::Full => msg.encode().len() as u64 + 4,
        };
        let bps = self.config.upload_bps.max(1);
        let sending = size.saturating_mul(8_000_000) / bps;
        let node = &mut self.nodes[from];
        let leaves = node.upload_free.max(self.now) + sending;
        node.upload_free = leaves;
        node.bytes += size;
        self.nodes[to].bytes += size;
        let latency = self
            .config
            .latency
            .one_way_us(self.nodes[from].region, self.nodes[to].region);
        self.at(
            leaves + latency,
            Event::Deliver {
                to,
                serial: their,
                from,
                msg,
            },
        );
    }

    fn perform(&mut self, i: usize, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send { serial, msg } => self.send(i, serial, msg),
                Output::Disconnect { serial, .. } => {
                    if let Some((j, their)) = self.drop_conn(i, serial) {
                        let latency = self
                            .config
                            .latency
                            .one_way_us(self.nodes[i].region, self.nodes[j].region);
                        self.at(
                            self.now + latency,
                            Event::Closed {
                                to: j,
                                serial: their,
                                from: i,
                            },
                        );
                    }
                }
                Output::Dial(target) => match self.by_addr.get(&target.addr) {
                    Some(&j) if self.apart(i, j) => {
                        self.step(i, Input::DialFailed(target.addr, "unreachable".into()))
                    }
                    Some(&j) => {
                        // A QUIC handshake and the Hellos: about two round trips.
                        let rtt = 2 * self
                            .config
                            .latency
                            .one_way_us(self.nodes[i].region, self.nodes[j].region);
                        self.at(self.now + 2 * rtt, Event::Connect { from: i, to: j });
                    }
                    None => self.step(i, Input::DialFailed(target.addr, "no such node".into())),
                },
                Output::SubmitBlocks { blocks, .. } => {
                    // What is verified afresh: whole blocks, or (with transactions) the share
                    // of each block's transactions that had not reached the mempool, whose
                    // signatures were not checked on the way in.
                    let bytes: u64 = blocks.iter().map(|b| self.unverified_bytes(i, b)).sum();
                    let verify = self.config.verify_per_mb.as_micros() as u64 * bytes / 1_000_000;
                    self.at(self.now + verify, Event::Validated { node: i, blocks });
                }
                Output::SubmitTx { from, remote, tx } => {
                    let txid = tx.txid();
                    let result = match &self.nodes[i].chain {
                        NodeChain::Full(c) => c.accept_tx(tx),
                        // Light nodes relay no transactions.
                        NodeChain::Light(_) => Ok(txid),
                    };
                    let accepted = result.is_ok();
                    self.step(
                        i,
                        Input::TxDone {
                            from,
                            remote,
                            txid,
                            result,
                        },
                    );
                    if accepted && matches!(self.nodes[i].chain, NodeChain::Full(_)) {
                        self.node_events(i, vec![NodeEvent::TxAccepted(txid)]);
                    }
                }
                Output::SaveRecords(_) | Output::View(_) | Output::Answer { .. } => {}
            }
        }
    }

    fn hello(&self, i: usize) -> Hello {
        let chain = &self.nodes[i].chain;
        let ((height, tip), work) = (chain.tip(), chain.work());
        Hello {
            version: match self.config.relay {
                Relay::Full => 1,
                Relay::Compact => wire::PROTOCOL_VERSION,
            },
            genesis: self.params.genesis_hash,
            height,
            tip,
            work: work.to_be_bytes(),
            listen: Some(self.nodes[i].addr),
            user_agent: "chain-tui-sim".into(),
        }
    }

    /// `from`'s dial of `to` went through: both ends get the connection.
    fn connect(&mut self, from: usize, to: usize) {
        if self.apart(from, to) {
            let addr = self.nodes[to].addr;
            self.step(from, Input::DialFailed(addr, "unreachable".into()));
            return;
        }
        let (a, b) = (self.next_serial, self.next_serial + 1);
        self.next_serial += 2;
        self.nodes[from].conns.insert(a, (to, b));
        self.nodes[to].conns.insert(b, (from, a));
        let now = self.time().local;
        let budget = || Bucket::new(UNSOLICITED_PER_SEC, UNSOLICITED_PER_SEC * 10, now);
        self.nodes[from].budgets.insert(a, budget());
        self.nodes[to].budgets.insert(b, budget());
        let (hello_from, hello_to) = (self.hello(from), self.hello(to));
        let (id_from, id_to) = (self.nodes[from].id, self.nodes[to].id);
        let (addr_from, addr_to) = (self.nodes[from].addr, self.nodes[to].addr);
        self.step(
            to,
            Input::Connected {
                conn: ConnInfo {
                    serial: b,
                    id: id_from,
                    remote: addr_from,
                },
                hello: hello_from,
                dialed: None,
                activity: Arc::new(Activity::default()),
            },
        );
        self.step(
            from,
            Input::Connected {
                conn: ConnInfo {
                    serial: a,
                    id: id_to,
                    remote: addr_to,
                },
                hello: hello_to,
                dialed: Some(addr_to),
                activity: Arc::new(Activity::default()),
            },
        );
    }

    /// Bytes of `block` that `node` verifies afresh: what of it had not reached its mempool.
    fn unverified_bytes(&self, node: usize, block: &Block) -> u64 {
        match &self.nodes[node].chain {
            NodeChain::Light(_) => {
                let size = self.store.size(&block.hash());
                match self.txs.unseen(block, node) {
                    (unseen, total) if total > 0 => size * unseen as u64 / total as u64,
                    _ => size,
                }
            }
            NodeChain::Full(c) => {
                let fresh: usize = block
                    .txs
                    .iter()
                    .filter(|t| !c.in_pool(&t.txid()))
                    .map(|t| t.size())
                    .sum();
                80 + fresh as u64
            }
        }
    }

    /// What a fully validating node's chain and mempool did, told to its protocol as a live
    /// node's reactor tells it; the trickle runs soon after.
    fn node_events(&mut self, node: usize, events: Vec<NodeEvent>) {
        if events.is_empty() {
            return;
        }
        for ev in events {
            if let NodeEvent::BlockConnected { hash, .. } = &ev {
                self.note_arrival(node, hash);
            }
            self.step(node, Input::Node(ev));
        }
        self.wake_trickle(node);
    }

    fn wake_trickle(&mut self, node: usize) {
        if !self.nodes[node].trickle_due {
            self.nodes[node].trickle_due = true;
            let at = self.now + micros(TRICKLE);
            self.at(at, Event::Trickle(node));
        }
    }

    /// Blocks `node` validated join its chain; its protocol hears of it.
    fn validated(&mut self, node: usize, blocks: Vec<Block>) {
        if let NodeChain::Full(c) = &self.nodes[node].chain {
            let c = c.clone();
            let hashes: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
            let (outcome, events) = c.submit_blocks(blocks);
            // Kept on a side branch counts as having it, as below.
            for h in &hashes {
                if c.has(h) {
                    self.note_arrival(node, h);
                }
            }
            self.node_events(node, events);
            self.step(node, Input::BlocksDone(Ok(outcome)));
            return;
        }
        let blocks: Vec<BlockHash> = blocks.iter().map(Block::hash).collect();
        let NodeChain::Light(chain) = self.nodes[node].chain.clone() else {
            return;
        };
        let mut outcome = BatchOutcome {
            submitted: blocks.len(),
            height: 0,
            tip: BlockHash::ZERO,
            connected: 0,
            failure: None,
        };
        for h in &blocks {
            let c = chain.connect(h);
            self.note_arrival(node, h);
            if let Connected::Tip { connected, .. } = c {
                outcome.connected += connected.len();
                self.tip_moved(node, connected);
            }
        }
        let (height, tip) = self.nodes[node].chain.tip();
        outcome.height = height;
        outcome.tip = tip;
        self.step(node, Input::BlocksDone(Ok(outcome)));
    }

    fn note_arrival(&mut self, node: usize, hash: &BlockHash) {
        let now = self.now;
        if let Some((_, seen)) = self.mined.get_mut(hash)
            && let Some(slot) = seen.get_mut(node)
            && slot.is_none()
        {
            *slot = Some(now);
        }
    }

    /// Tell `node`'s protocol its tip moved, and have the trickle run soon.
    fn tip_moved(&mut self, node: usize, connected: Vec<(u64, BlockHash)>) {
        for (height, hash) in connected {
            self.step(
                node,
                Input::Node(NodeEvent::BlockConnected { hash, height }),
            );
        }
        self.wake_trickle(node);
    }

    /// `who` finds a block on its tip.
    fn mine(&mut self, who: usize) {
        let chain = match &self.nodes[who].chain {
            NodeChain::Light(c) => c.clone(),
            NodeChain::Full(c) => {
                let c = c.clone();
                return self.mine_full(who, &c);
            }
        };
        let (_, tip) = chain.tip();
        let mut merkle = [0u8; 32];
        merkle[..8].copy_from_slice(&self.rng.u64(..).to_be_bytes());
        merkle[8..16].copy_from_slice(&self.now.to_be_bytes());
        let mut header = BlockHeader {
            version: 1,
            prev: tip,
            merkle_root: MerkleRoot(merkle),
            time: self.time().unix,
            bits: self.params.genesis.header.bits,
            nonce: 0,
        };
        // The regtest target is met by about every other hash.
        while !self.params.pow_limit.is_met_by(&header.hash().0) {
            header.nonce += 1;
        }
        let mut block = Block {
            header,
            txs: Vec::new(),
        };
        let mut size = self.config.block_size;
        if self.config.txs > 0 {
            // A coinbase of its own, and the oldest of the miner's mempool.
            let coinbase = crate::core::tx::Transaction {
                version: 1,
                inputs: Vec::new(),
                outputs: Vec::new(),
                lock_height: self.rng.u64(..),
                memo: b"coinbase".to_vec(),
            };
            let mut txs = vec![coinbase];
            txs.extend(self.txs.for_block(who, &chain, self.config.txs));
            size = 88 + self.config.block_size * (txs.len() as u64 - 1) / self.config.txs as u64;
            block.header.merkle_root = crate::core::merkle::merkle_root(&block_txids(&txs));
            block.txs = txs;
            block.header.nonce = 0;
            while !self.params.pow_limit.is_met_by(&block.header.hash().0) {
                block.header.nonce += 1;
            }
            self.txs.included(&block);
        }
        let hash = block.hash();
        if self.store.add(block, size).is_none() {
            return;
        }
        let mut seen = vec![None; self.nodes.len()];
        seen[who] = Some(self.now);
        self.mined.insert(hash, (self.now, seen));
        self.order.push((hash, who));
        if let Connected::Tip { connected, .. } = chain.connect(&hash) {
            self.tip_moved(who, connected);
        }
    }

    /// A fully validating `who` finds a block: the node's own template (its mempool's best
    /// transactions, a coinbase paying its key), taken by its own chain as a mined block is.
    /// The invalid miner instead overpays its coinbase and announces the header to its peers.
    fn mine_full(&mut self, who: usize, chain: &FullChain) {
        let Some(address) = self.nodes[who].wallet.as_ref().map(|w| w.address) else {
            return;
        };
        let Ok(t) = chain.template(address) else {
            return;
        };
        let mut block = t.block;
        let invalid = self.config.invalid_miner && who == self.nodes.len() - 1;
        if invalid && let Some(out) = block.txs.first_mut().and_then(|c| c.outputs.first_mut()) {
            out.amount = out
                .amount
                .checked_add(crate::core::amount::Amount::from_units(1))
                .unwrap_or(out.amount);
            block.header.merkle_root = crate::core::merkle::merkle_root(&block_txids(&block.txs));
        }
        while !t.target.is_met_by(&block.header.hash().0) {
            block.header.nonce += 1;
        }
        let hash = block.hash();
        let size = block.encode().len() as u64;
        if self.store.add(block.clone(), size).is_none() {
            return;
        }
        if invalid {
            self.bad_blocks.insert(hash);
            let serials: Vec<u64> = self.nodes[who].conns.keys().copied().collect();
            for serial in serials {
                self.send(who, serial, Message::Headers(vec![block.header]));
            }
            return;
        }
        let mut seen = vec![None; self.nodes.len()];
        seen[who] = Some(self.now);
        self.mined.insert(hash, (self.now, seen));
        self.order.push((hash, who));
        match chain.process_block(block) {
            Ok(events) => self.node_events(who, events),
            // The node's own template refused: a bug, and the run says so in its report.
            Err(e) => self.refused_own.push(format!("node {who}: {e}")),
        }
    }

    /// A payment with full validation: a random honest node spends its oldest spendable coin
    /// to another node's key, less a fee, through its own mempool (which relays it).
    fn pay(&mut self) {
        let honest: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.is_honest(*i))
            .collect();
        if honest.len() < 2 {
            return;
        }
        let from = honest[self.rng.usize(..honest.len())];
        let mut to = honest[self.rng.usize(..honest.len())];
        if to == from {
            to = honest[(honest.iter().position(|x| *x == from).unwrap_or(0) + 1) % honest.len()];
        }
        let (NodeChain::Full(chain), Some(wallet), Some(payee)) = (
            &self.nodes[from].chain,
            &self.nodes[from].wallet,
            self.nodes[to].wallet.as_ref().map(|w| w.address),
        ) else {
            return;
        };
        let Some((outpoint, coin)) = chain.spendable(&wallet.address).into_iter().next() else {
            return;
        };
        let fee = crate::core::amount::Amount::from_units(PAYMENT_FEE);
        let Some(amount) = coin
            .output
            .amount
            .checked_sub(fee)
            .filter(|a| a.units() > 0)
        else {
            return;
        };
        let tx = crate::core::tx::Transaction::signed(
            &[(outpoint, &wallet.key)],
            vec![crate::core::tx::TxOut {
                amount,
                address: payee,
            }],
            &self.params.genesis_hash,
        );
        let chain = chain.clone();
        if let Ok(txid) = chain.accept_tx(tx) {
            self.payments.push((txid, from));
            self.node_events(from, vec![NodeEvent::TxAccepted(txid)]);
        }
    }

    fn report(&self, end: u64) -> SimReport {
        let n = self.nodes.len();
        // The best tip: the most work among the nodes' tips.
        let best = self
            .nodes
            .iter()
            .filter_map(|x| {
                let (_, tip) = x.chain.tip();
                Some((self.store.place(&tip)?.1, tip))
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|x| x.1);
        let on_best_tip = self
            .nodes
            .iter()
            .filter(|x| Some(x.chain.tip().1) == best)
            .count();
        let best_node = self
            .nodes
            .iter()
            .position(|x| Some(x.chain.tip().1) == best);
        // The chain of the best tip.
        let mut main = std::collections::HashSet::new();
        let mut at = best;
        while let Some(h) = at {
            main.insert(h);
            at = self
                .store
                .header(&h)
                .map(|hd| hd.prev)
                .filter(|p| *p != BlockHash::ZERO && self.store.place(p).is_some());
        }
        let settle = end.saturating_sub(micros(SETTLE));
        let counted: Vec<&BlockHash> = self
            .mined
            .iter()
            .filter(|(_, (t, _))| *t <= settle)
            .map(|(h, _)| h)
            .collect();
        let stale_blocks = counted.iter().filter(|h| !main.contains(**h)).count();
        let stale_ppm = (stale_blocks as u64 * 1_000_000)
            .checked_div(counted.len() as u64)
            .unwrap_or(0);
        // Per block: time until 50, 90, 99 % of nodes had it (blocks that never got there
        // are left out of that column).
        let mut columns: [Vec<u64>; 3] = Default::default();
        // Over the honest nodes: hostile ones are cut off, or cut themselves off.
        let honest = (0..n).filter(|i| self.is_honest(*i)).count();
        for (mined, seen) in self.mined.values() {
            let mut delays: Vec<u64> = seen
                .iter()
                .enumerate()
                .filter(|(i, _)| self.is_honest(*i))
                .filter_map(|(_, t)| t.map(|t| t - mined))
                .collect();
            delays.sort_unstable();
            for (c, share) in [50usize, 90, 99].into_iter().enumerate() {
                let need = (honest * share).div_ceil(100).max(1);
                if let Some(d) = delays.get(need - 1) {
                    columns[c].push(*d / 1000);
                }
            }
        }
        let pick = |c: &mut Vec<u64>, q: usize| {
            c.sort_unstable();
            if c.is_empty() {
                0
            } else {
                c[((c.len() - 1) * q) / 100]
            }
        };
        let mut median = [0; 3];
        let mut p90 = [0; 3];
        for (i, c) in columns.iter_mut().enumerate() {
            median[i] = pick(c, 50);
            p90[i] = pick(c, 90);
        }
        let bytes: u64 = self.nodes.iter().map(|x| x.bytes).sum();
        let mut compact = CompactStats::default();
        for x in &self.nodes {
            let c = x.state.compact_stats();
            compact.sent += c.sent;
            compact.received += c.received;
            compact.rebuilt_at_once += c.rebuilt_at_once;
            compact.txs_asked += c.txs_asked;
            compact.fetched_whole += c.fetched_whole;
        }
        SimReport {
            nodes: n,
            blocks_mined: self.mined.len(),
            stale_blocks,
            stale_ppm,
            propagation_ms: median,
            propagation_p90_ms: p90,
            bytes_per_node: bytes / n as u64,
            messages: self.messages,
            events: self.events,
            on_best_tip,
            relay: self.config.relay,
            compact,
            validation: self.config.validation,
            payments: self.payments.len(),
            payments_confirmed: best_node.map_or(0, |i| {
                self.payments
                    .iter()
                    .filter(|(t, _)| self.confirmed_at(i, t).is_some())
                    .count()
            }),
            bans: (0..n).map(|i| self.bans(i).len()).sum(),
            own_blocks_refused: self.refused_own.len(),
        }
    }
}

fn block_txids(txs: &[crate::core::tx::Transaction]) -> Vec<crate::core::hash::Txid> {
    txs.iter().map(crate::core::tx::Transaction::txid).collect()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Run `config` to the end (or why it cannot run).
pub fn run(config: SimConfig) -> Result<SimReport, String> {
    Ok(Sim::new(config)?.run())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_of(c: SimConfig) -> Sim {
        Sim::new(c).expect("a simulation")
    }

    fn go(c: SimConfig) -> SimReport {
        run(c).expect("a simulation")
    }

    fn small(seed: u64) -> SimConfig {
        SimConfig {
            nodes: 30,
            peers: 4,
            block_interval: Duration::from_secs(60),
            block_size: 100_000,
            duration: Duration::from_secs(3 * 3600),
            seed,
            ..SimConfig::default()
        }
    }

    #[test]
    fn a_partitioned_network_forks_and_converges_on_one_tip_after_it_heals() {
        let min = |m: u64| Duration::from_secs(60 * m);
        let mut sim = sim_of(SimConfig {
            nodes: 200,
            peers: 6,
            block_interval: Duration::from_secs(30),
            block_size: 20_000,
            duration: min(120),
            seed: 11,
            partition: Some((min(10), min(40))),
            ..SimConfig::default()
        });
        sim.run_until(min(9));
        assert_eq!(sim.on_tip_of(0), 200, "one tip before the split");
        sim.run_until(min(39));
        // Each half mined on its own: two tips, each held by (nearly all of) its half only
        // (a block just found may not have reached everyone yet).
        let (a, b) = (sim.tip(0), sim.tip(199));
        assert_ne!(a.1, b.1);
        assert!(
            (90..=100).contains(&sim.on_tip_of(0)),
            "{}",
            sim.on_tip_of(0)
        );
        assert!(
            (90..=100).contains(&sim.on_tip_of(199)),
            "{}",
            sim.on_tip_of(199)
        );
        // Healed at 40 min: within 10 minutes every node is on one tip, the heavier branch.
        sim.run_until(min(50));
        assert_eq!(sim.on_tip_of(0), 200);
        assert_eq!(sim.tip(0).0, sim.best_height());
        assert!(sim.best_height() > a.0.max(b.0));
    }

    #[test]
    fn a_small_network_split_until_every_slot_held_its_own_side_finds_itself_by_rotation() {
        // Thirty nodes of four outbound peers: while the link is down, every node fills its
        // slots with peers of its own half, so that when it comes back no connection
        // crosses. Only rotation (an extra peer every five minutes) joins the halves again.
        let min = |m: u64| Duration::from_secs(60 * m);
        let n = 30;
        let mut sim = sim_of(SimConfig {
            nodes: n,
            peers: 4,
            block_interval: Duration::from_secs(30),
            block_size: 20_000,
            partition: Some((min(12), min(24))),
            duration: min(40),
            seed: 12,
            ..SimConfig::default()
        });
        let across = |sim: &Sim| {
            (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .filter(|(i, j)| (*i < n / 2) != (*j < n / 2) && sim.connected(*i, *j))
                .count()
        };
        sim.run_until(min(24));
        assert_eq!(across(&sim), 0);
        assert_ne!(sim.tip(0).1, sim.tip(n - 1).1);
        sim.run_until(min(32));
        assert!(across(&sim) > 0);
        assert_eq!(sim.on_tip_of(0), n);
        // Connections came and went: each open one has its rate budget, and no closed one.
        for x in &sim.nodes {
            assert!(x.budgets.keys().eq(x.conns.keys()));
        }
    }

    #[test]
    fn an_eclipsed_node_learns_no_block_until_an_honest_peer_reaches_it() {
        let min = |m: u64| Duration::from_secs(60 * m);
        let mut sim = sim_of(SimConfig {
            nodes: 60,
            peers: 4,
            block_interval: Duration::from_secs(60),
            block_size: 20_000,
            duration: min(60),
            seed: 5,
            eclipse: Some(Eclipse {
                attackers: 8,
                honest_at: min(30),
            }),
            ..SimConfig::default()
        });
        sim.run_until(min(29));
        assert!(sim.best_height() >= 10, "{}", sim.best_height());
        assert_eq!(sim.tip(0).0, 0, "the victim hears of no block");
        // One honest peer is enough: a minute later it is on the honest tip.
        sim.run_until(min(31));
        assert_eq!(sim.tip(0).0, sim.best_height());
        assert_eq!(sim.tip(0).1, sim.tip(1).1);
    }

    #[test]
    fn a_flooding_node_is_banned_by_its_peers_while_blocks_keep_reaching_everyone() {
        let min = |m: u64| Duration::from_secs(60 * m);
        let mut sim = sim_of(SimConfig {
            nodes: 40,
            peers: 4,
            block_interval: Duration::from_secs(30),
            block_size: 100_000,
            seed: 21,
            flood: Some(Flood {
                start: min(10),
                end: min(13),
                per_sec: 5_000,
            }),
            ..SimConfig::default()
        });
        let flooder = 39;
        sim.run_until(min(10));
        let peers: Vec<usize> = (0..39).filter(|i| sim.connected(*i, flooder)).collect();
        assert!(peers.len() >= 4, "the flooder has peers: {peers:?}");
        // Within seconds of the flood, every peer has cut it off (a node it reaches later, by
        // rotation, cuts it off within seconds of its own).
        sim.run_until(min(10) + Duration::from_secs(10));
        for i in &peers {
            assert!(
                !sim.connected(*i, flooder),
                "node {i} still talks to the flooder"
            );
        }
        // Those it flooded banned it: none lets it back (others it may reach by rotation
        // once the flood is over: they never saw it misbehave).
        sim.run_until(min(16));
        for i in &peers {
            assert!(!sim.connected(*i, flooder), "node {i} let the flooder back");
            assert!(
                sim.bans(*i).iter().any(|(who, _)| *who == Some(flooder)),
                "node {i} banned the flooder"
            );
        }
        // Blocks mined during the flood reached every honest node within seconds, and the
        // honest nodes agree on one tip.
        let during: Vec<BlockSpread> = sim
            .spreads(100)
            .into_iter()
            .filter(|b| (min(10)..min(13)).contains(&b.mined_at) && b.miner != flooder)
            .collect();
        assert!(!during.is_empty());
        for b in &during {
            let honest = b.arrived[..39].iter().flatten().max().copied();
            assert!(
                b.arrived[..39].iter().all(Option::is_some),
                "block {} reached every honest node",
                b.height
            );
            assert!(
                honest.is_some_and(|t| t < Duration::from_secs(5)),
                "{honest:?}"
            );
        }
        assert!(sim.on_tip_of(0) >= 39, "{}", sim.on_tip_of(0));
    }

    #[test]
    fn the_same_seed_gives_the_same_run_and_another_seed_another() {
        let a = go(small(7));
        assert_eq!(a, go(small(7)));
        assert_ne!(a, go(small(8)));
        // With transactions and compact blocks too.
        let with_txs = |seed| SimConfig {
            txs: 50,
            relay: Relay::Compact,
            duration: Duration::from_secs(3600),
            ..small(seed)
        };
        let a = go(with_txs(7));
        assert!(a.compact.received > 0, "{a:?}");
        assert_eq!(a, go(with_txs(7)));
        assert_ne!(a, go(with_txs(8)));
    }

    #[test]
    fn compact_blocks_rebuilt_from_mempools_spread_several_times_faster_than_full_blocks() {
        // Same seed, same blocks and transactions; only the relay differs.
        let config = |relay| SimConfig {
            nodes: 100,
            peers: 8,
            block_interval: Duration::from_secs(600),
            block_size: 1_000_000,
            duration: Duration::from_secs(6 * 3600),
            upload_bps: 10_000_000,
            txs: 100,
            relay,
            seed: 4,
            ..SimConfig::default()
        };
        let full = go(config(Relay::Full));
        let compact = go(config(Relay::Compact));
        assert_eq!(full.blocks_mined, compact.blocks_mined);
        assert_eq!(full.compact, CompactStats::default(), "{full:?}");
        assert_eq!(full.on_best_tip, 100);
        assert_eq!(compact.on_best_tip, 100);
        // Nearly every node got nearly every block compactly, most from its mempool alone
        // (transactions made in the seconds before a block have not reached everyone).
        let c = compact.compact;
        let deliveries = (compact.blocks_mined as u64 - 1) * 99;
        assert!(c.received * 10 >= deliveries * 9, "{c:?} of {deliveries}");
        assert!(c.rebuilt_at_once * 2 >= c.received, "{c:?}");
        assert_eq!(c.fetched_whole, 0, "{c:?}");
        // The 90th percentile over blocks of the time to reach 90 % of nodes: at least 5x
        // shorter, and bytes sent per node at least 2x fewer.
        let (f, k) = (full.propagation_p90_ms[1], compact.propagation_p90_ms[1]);
        assert!(k * 5 <= f, "compact {k} ms, full {f} ms");
        assert!(compact.bytes_per_node * 2 <= full.bytes_per_node);
    }

    #[test]
    fn every_node_ends_on_the_best_chain_and_blocks_reach_all_nodes() {
        let r = go(small(3));
        assert!(r.blocks_mined > 100, "{r:?}");
        assert_eq!(r.on_best_tip, r.nodes, "{r:?}");
        // Every block reached 99 % of the nodes, within seconds (world latencies).
        assert!(r.propagation_ms[2] > 0, "{r:?}");
        assert!(r.propagation_p90_ms[2] < 10_000, "{r:?}");
        // One-minute blocks of 100 kB on a world network: some stale blocks, not many.
        assert!(r.stale_ppm < 100_000, "{r:?}");
    }
}
