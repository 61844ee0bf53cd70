//! The demo's controller, with no UI: N real nodes in one process, their links, partitions
//! and heals, stopping and restarting, paced mining, payments between their wallets, and what
//! was observed (reorganisations, the blocks each node saw). The headless runner, the
//! scenario runner and the dashboard all drive it through the same methods.

mod adversary;
mod selfish;

pub use adversary::{InvalidRelay, MajorityAttack, MajorityOutcome, Refusal};
pub use selfish::{
    Decision, ModelGain, SelfishMining, SelfishOutcome, decide, eyal_sirer_share, model_gain,
};

use super::tree::{Have, TreeBlock, TreeInput};
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::Network;
use crate::core::pow::Work;
use crate::node::{NodeConfig, NodeEvent, NodeHandle};
use crate::node::{NodeId, NodeKey, PeerAddr};
use crate::node::{P2pConfig, P2pHandle};
use crate::runtime::{NetSetup, Services, ServicesConfig};
use crate::wallet::{Balance, Wallet};
use clap::ValueEnum;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Most nodes a demo runs (the dashboard shows at most [`super::MAX_DASHBOARD_NODES`]).
pub const MAX_NODES: usize = 64;
/// Blocks of the recent tree kept by the observers.
const REGISTRY_DEPTH: u64 = 300;
/// Reorganisations remembered for display.
const REORGS_KEPT: usize = 100;

/// How the nodes are linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// 1 — 2 — 3 — … — N
    #[default]
    Line,
    /// A line whose ends are linked too.
    Ring,
    /// Every node linked to every other.
    Mesh,
}

impl Topology {
    pub fn name(self) -> &'static str {
        match self {
            Topology::Line => "line",
            Topology::Ring => "ring",
            Topology::Mesh => "mesh",
        }
    }

    /// The links of `n` nodes, each as (smaller, larger) index.
    pub fn edges(self, n: usize) -> BTreeSet<(usize, usize)> {
        let mut e = BTreeSet::new();
        match self {
            Topology::Line | Topology::Ring => {
                for i in 1..n {
                    e.insert((i - 1, i));
                }
                if self == Topology::Ring && n > 2 {
                    e.insert((0, n - 1));
                }
            }
            Topology::Mesh => {
                for a in 0..n {
                    for b in a + 1..n {
                        e.insert((a, b));
                    }
                }
            }
        }
        e
    }
}

/// How a demo is set up.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    pub nodes: usize,
    pub topology: Topology,
    pub network: Network,
    /// Parent of the nodes' data dirs (`node-1`, `node-2`, …).
    pub dir: PathBuf,
    /// Mean time between two paced blocks of one mining node of power 1 on regtest.
    pub block_interval: Duration,
    /// Each node's mining power (its share of the hashrate is its power over the total of
    /// the nodes mining); missing entries are 1. See [`Demo::set_power`].
    pub power: Vec<u32>,
}

/// Most mining power one node may have.
pub const MAX_POWER: u32 = 100;

/// Whether a node mines, and how hard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MinerSetting {
    on: bool,
    power: u32,
}

/// A demo failure: a bad request (nothing changed) or a node that failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Bad(String),
    #[error("node {node}: {error}")]
    Node { node: usize, error: String },
}

fn node_err(i: usize, e: impl std::fmt::Display) -> DemoError {
    DemoError::Node {
        node: i + 1,
        error: e.to_string(),
    }
}

/// A running node: its handles (clones are cheap; all must be dropped before a restart).
#[derive(Clone)]
pub struct Running {
    pub node: NodeHandle,
    pub net: P2pHandle,
}

struct Slot {
    dir: PathBuf,
    id: NodeId,
    address: Address,
    wallet: Mutex<Wallet>,
    listen: Mutex<Option<SocketAddr>>,
    running: Mutex<Option<Running>>,
    /// The current run's services (their token also stops the run's observer).
    services: Mutex<Option<Services>>,
    /// One fixed-count mining request at a time (the node refuses a second).
    mine_lock: tokio::sync::Mutex<()>,
    miner: watch::Sender<MinerSetting>,
}

/// A reorganisation a node went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReorgSeen {
    pub node: usize,
    pub depth: usize,
    pub old_tip: BlockHash,
    pub new_tip: BlockHash,
    pub at: Instant,
}

#[derive(Default)]
struct Observed {
    /// Recent blocks any node connected: hash → (height, prev, miner).
    blocks: HashMap<BlockHash, (u64, BlockHash, Option<usize>)>,
    top: u64,
    reorgs: Vec<ReorgSeen>,
    /// Deepest reorganisation per node.
    deepest: Vec<usize>,
}

struct Inner {
    cfg: DemoConfig,
    slots: Vec<Slot>,
    edges: BTreeSet<(usize, usize)>,
    /// Partition side of each node: linked nodes talk only when on the same side.
    sides: Mutex<Vec<u32>>,
    next_side: Mutex<u32>,
    observed: Mutex<Observed>,
    /// Nodes whose own links are held down while an adversary speaks for them.
    muted: Mutex<HashSet<usize>>,
    /// Every payment the demo made, by txid (to tell what conflicts with it later).
    sent: Mutex<HashMap<Txid, crate::core::tx::Transaction>>,
    /// The last selfish mining run's outcome.
    selfish: Mutex<Option<SelfishOutcome>>,
    /// Bumped on every change the controller makes (start, stop, partition, mining…).
    changes: watch::Sender<u64>,
}

/// The demo: cheap to clone, shared by the runner and the dashboard.
#[derive(Clone)]
pub struct Demo {
    inner: Arc<Inner>,
}

/// One node's state, for reports and the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub index: usize,
    pub running: bool,
    pub partitioned: bool,
    pub mining: bool,
    /// Mining power (see [`Demo::set_power`]).
    pub power: u32,
    /// Its share of the power of the running nodes that mine, in per mille (0 when it does
    /// not mine).
    pub power_share_pm: u32,
    pub height: u64,
    pub tip: BlockHash,
    pub work: Work,
    /// Connected demo nodes (indices), sorted.
    pub peers: Vec<usize>,
    pub mempool_count: usize,
    pub mempool_bytes: usize,
    pub hashrate: u64,
    pub balance: Option<Balance>,
    pub deepest_reorg: usize,
    pub listen: Option<SocketAddr>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Demo {
    /// Create the nodes' data dirs, keys and wallets, then start every node linked by the
    /// topology. Nothing mines yet.
    pub async fn start(cfg: DemoConfig) -> Result<Demo, DemoError> {
        if cfg.nodes == 0 || cfg.nodes > MAX_NODES {
            return Err(DemoError::Bad(format!(
                "--nodes must be 1 to {MAX_NODES}, not {}",
                cfg.nodes
            )));
        }
        if let Some(p) = cfg.power.iter().find(|p| **p > MAX_POWER) {
            return Err(DemoError::Bad(format!(
                "mining power must be 0 to {MAX_POWER}, not {p}"
            )));
        }
        if cfg.network != Network::Regtest
            && let Some(p) = cfg
                .power
                .iter()
                .find(|p| **p as usize > crate::node::max_threads())
        {
            return Err(DemoError::Bad(format!(
                "on {} a node's power is its mining threads: at most {} on this machine, not {p}",
                cfg.network,
                crate::node::max_threads()
            )));
        }
        if cfg.power.len() > cfg.nodes {
            return Err(DemoError::Bad(format!(
                "{} mining powers for {} nodes",
                cfg.power.len(),
                cfg.nodes
            )));
        }
        let mut slots = Vec::new();
        for i in 0..cfg.nodes {
            let dir = cfg.dir.join(format!("node-{}", i + 1));
            std::fs::create_dir_all(&dir)
                .map_err(|e| node_err(i, format!("cannot create {}: {e}", dir.display())))?;
            let key = NodeKey::load_or_create(&dir.join("node_key")).map_err(|e| node_err(i, e))?;
            let wallet =
                Wallet::open_or_create(&dir, cfg.network, None).map_err(|e| node_err(i, e))?;
            slots.push(Slot {
                id: key.id(),
                address: wallet.receive_address(),
                wallet: Mutex::new(wallet),
                dir,
                listen: Mutex::new(None),
                running: Mutex::new(None),
                services: Mutex::new(None),
                mine_lock: tokio::sync::Mutex::new(()),
                miner: watch::channel(MinerSetting {
                    on: false,
                    power: cfg.power.get(i).copied().unwrap_or(1),
                })
                .0,
            });
        }
        let n = cfg.nodes;
        let demo = Demo {
            inner: Arc::new(Inner {
                edges: cfg.topology.edges(n),
                cfg,
                slots,
                sides: Mutex::new(vec![0; n]),
                next_side: Mutex::new(1),
                observed: Mutex::new(Observed {
                    deepest: vec![0; n],
                    ..Observed::default()
                }),
                changes: watch::channel(0).0,
                muted: Mutex::new(HashSet::new()),
                sent: Mutex::new(HashMap::new()),
                selfish: Mutex::new(None),
            }),
        };
        for i in 0..n {
            if let Err(e) = demo.start_node(i).await {
                demo.shutdown().await;
                return Err(e);
            }
            demo.spawn_pacer(i);
        }
        Ok(demo)
    }

    pub fn len(&self) -> usize {
        self.inner.slots.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inner.slots.is_empty()
    }
    pub fn network(&self) -> Network {
        self.inner.cfg.network
    }
    pub fn topology(&self) -> Topology {
        self.inner.cfg.topology
    }
    pub fn dir(&self) -> &Path {
        &self.inner.cfg.dir
    }
    /// Wakes on every change the controller makes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }
    fn bump(&self) {
        self.inner.changes.send_modify(|c| *c = c.wrapping_add(1));
    }

    fn check(&self, i: usize) -> Result<&Slot, DemoError> {
        self.inner.slots.get(i).ok_or_else(|| {
            DemoError::Bad(format!(
                "there is no node {} (nodes are 1 to {})",
                i + 1,
                self.len()
            ))
        })
    }

    /// The running node's handles (None when stopped). Drop them soon: a restart waits for
    /// every clone.
    pub fn running(&self, i: usize) -> Option<Running> {
        self.inner
            .slots
            .get(i)
            .and_then(|s| lock(&s.running).clone())
    }
    pub fn is_running(&self, i: usize) -> bool {
        self.inner
            .slots
            .get(i)
            .is_some_and(|s| lock(&s.running).is_some())
    }
    pub fn node_id(&self, i: usize) -> Option<NodeId> {
        self.inner.slots.get(i).map(|s| s.id)
    }
    /// The wallet's receive address of node `i`.
    pub fn address(&self, i: usize) -> Option<Address> {
        self.inner.slots.get(i).map(|s| s.address)
    }
    pub fn is_partitioned(&self, i: usize) -> bool {
        lock(&self.inner.sides).get(i).is_some_and(|s| *s != 0)
    }
    pub fn is_mining(&self, i: usize) -> bool {
        self.inner.slots.get(i).is_some_and(|s| s.miner.borrow().on)
    }

    /// Nodes `i` is meant to be linked to now: topology neighbours on the same side.
    fn active_neighbours(&self, i: usize) -> Vec<usize> {
        let sides = lock(&self.inner.sides);
        self.inner
            .edges
            .iter()
            .filter_map(|&(a, b)| {
                if a == i {
                    Some(b)
                } else if b == i {
                    Some(a)
                } else {
                    None
                }
            })
            .filter(|&j| sides.get(i) == sides.get(j))
            .collect()
    }

    fn topology_neighbours(&self, i: usize) -> Vec<usize> {
        self.inner
            .edges
            .iter()
            .filter_map(|&(a, b)| match (a == i, b == i) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// The peers node `i` may have: its active neighbours (none while it is muted).
    fn allowed(&self, i: usize) -> HashSet<NodeId> {
        if self.is_muted(i) {
            return HashSet::new();
        }
        self.active_neighbours(i)
            .into_iter()
            .map(|j| self.inner.slots[j].id)
            .collect()
    }

    /// Start node `i` from its data dir, linked to its running neighbours.
    async fn start_node(&self, i: usize) -> Result<(), DemoError> {
        let slot = self.check(i)?;
        if lock(&slot.running).is_some() {
            return Err(DemoError::Bad(format!("node {} is already running", i + 1)));
        }
        let previous = *lock(&slot.listen);
        let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
        let connect: Vec<PeerAddr> = self
            .active_neighbours(i)
            .into_iter()
            .filter(|&j| self.is_running(j))
            .filter_map(|j| {
                let s = &self.inner.slots[j];
                (*lock(&s.listen)).map(|a| PeerAddr::new(a, Some(s.id)))
            })
            .collect();
        let mut p2p = P2pConfig::new(&slot.dir, previous.unwrap_or(localhost));
        p2p.connect = connect;
        p2p.user_agent = format!("chain-tui-demo/{}", env!("CARGO_PKG_VERSION"));
        // A stopped node's shutdown let its store go: it opens at once. Same port as before
        // when possible, so the neighbours' address books stay right.
        let services = Services::start(ServicesConfig {
            node: NodeConfig::new(&slot.dir, self.network()),
            p2p: Some(NetSetup {
                config: p2p,
                fallback_listen: previous.map(|_| localhost),
            }),
            api: None,
        })
        .await
        .map_err(|e| node_err(i, e))?;
        let net = match services.net() {
            Ok(net) => net.clone(),
            Err(e) => {
                let _ = services.shutdown().await;
                return Err(node_err(i, e));
            }
        };
        if let Err(e) = net.restrict_peers(Some(self.allowed(i))).await {
            let _ = services.shutdown().await;
            return Err(node_err(i, e));
        }
        *lock(&slot.listen) = net.view().listen;
        let node = services.node.clone();
        self.spawn_observer(i, node.clone(), node.events(), services.token());
        *lock(&slot.services) = Some(services);
        *lock(&slot.running) = Some(Running { node, net });
        if slot.miner.borrow().on && self.network() != Network::Regtest {
            self.apply_continuous_mining(i).await;
        }
        self.bump();
        Ok(())
    }

    /// Record what node `i` connects and reorganises, until stopped.
    fn spawn_observer(
        &self,
        i: usize,
        node: NodeHandle,
        mut events: broadcast::Receiver<NodeEvent>,
        stop: CancellationToken,
    ) {
        let demo = self.clone();
        tokio::spawn(async move {
            if let Ok(r) = node.read() {
                demo.record_chain(&r, 60);
            }
            loop {
                let ev = tokio::select! {
                    _ = stop.cancelled() => break,
                    ev = events.recv() => ev,
                };
                match ev {
                    Ok(NodeEvent::BlockConnected { hash, .. }) => {
                        demo.record_block(&node, hash, None);
                    }
                    Ok(NodeEvent::BlockMined { hash, .. }) => {
                        demo.record_block(&node, hash, Some(i));
                    }
                    Ok(NodeEvent::Reorg {
                        depth,
                        old_tip,
                        new_tip,
                    }) => {
                        tracing::info!("node {} reorganised: depth {depth}", i + 1);
                        let mut o = lock(&demo.inner.observed);
                        if let Some(d) = o.deepest.get_mut(i) {
                            *d = (*d).max(depth);
                        }
                        o.reorgs.push(ReorgSeen {
                            node: i,
                            depth,
                            old_tip,
                            new_tip,
                            at: Instant::now(),
                        });
                        if o.reorgs.len() > REORGS_KEPT {
                            o.reorgs.remove(0);
                        }
                        drop(o);
                        demo.bump();
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Ok(r) = node.read() {
                            demo.record_chain(&r, 60);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    fn record_block(&self, node: &NodeHandle, hash: BlockHash, miner: Option<usize>) {
        {
            let mut o = lock(&self.inner.observed);
            if let Some(e) = o.blocks.get_mut(&hash) {
                if miner.is_some() {
                    e.2 = miner;
                }
                return;
            }
        }
        let Ok(Some(meta)) = node.block_meta(&hash) else {
            return;
        };
        self.record_meta(&meta, miner);
    }

    /// Record a block from its stored facts.
    fn record_meta(&self, meta: &crate::node::BlockMeta, miner: Option<usize>) {
        let (hash, height) = (meta.hash(), meta.height);
        let mut o = lock(&self.inner.observed);
        if let Some(e) = o.blocks.get_mut(&hash) {
            if miner.is_some() {
                e.2 = miner;
            }
            return;
        }
        o.blocks.insert(hash, (height, meta.header.prev, miner));
        if height > o.top {
            o.top = height;
            let floor = height.saturating_sub(REGISTRY_DEPTH);
            if o.blocks.len() as u64 > REGISTRY_DEPTH * 2 {
                o.blocks.retain(|_, b| b.0 >= floor);
            }
        }
    }

    /// Record the last `depth` blocks of a node's active chain.
    fn record_chain(&self, read: &crate::node::ChainRead, depth: u64) {
        let mut meta = *read.tip();
        for _ in 0..depth {
            let hash = meta.hash();
            if lock(&self.inner.observed).blocks.contains_key(&hash) {
                break;
            }
            self.record_meta(&meta, None);
            if meta.height == 0 {
                break;
            }
            match read.block_meta(&meta.header.prev) {
                Ok(Some(m)) => meta = m,
                _ => break,
            }
        }
    }

    /// Stop node `i` (network first, then the node; the data dir stays).
    pub async fn stop(&self, i: usize) -> Result<(), DemoError> {
        let slot = self.check(i)?;
        let Some(run) = lock(&slot.running).take() else {
            return Err(DemoError::Bad(format!("node {} is already stopped", i + 1)));
        };
        drop(run);
        let services = lock(&slot.services).take();
        // Wait for a paced block in progress to finish.
        let _guard = slot.mine_lock.lock().await;
        let stopped = match services {
            Some(s) => s.shutdown().await,
            None => Ok(()),
        };
        self.bump();
        tracing::info!("node {} stopped", i + 1);
        stopped.map_err(|e| node_err(i, e))
    }

    /// Start a stopped node again from its data dir; it reconnects and catches up.
    pub async fn restart(&self, i: usize) -> Result<(), DemoError> {
        self.check(i)?;
        if self.is_running(i) {
            return Err(DemoError::Bad(format!("node {} is already running", i + 1)));
        }
        self.start_node(i).await?;
        tracing::info!("node {} restarted", i + 1);
        Ok(())
    }

    /// Re-apply the links of `nodes` (after their side changed) and dial what should be linked.
    async fn relink(&self, nodes: &BTreeSet<usize>) {
        for &i in nodes {
            if let Some(r) = self.running(i) {
                let _ = r.net.restrict_peers(Some(self.allowed(i))).await;
            }
        }
        for &i in nodes {
            let Some(r) = self.running(i) else { continue };
            if self.is_muted(i) {
                continue;
            }
            for j in self.active_neighbours(i) {
                // One dial per link (the lower node dials when both were relinked): two
                // dials crossing make a duplicate connection that one side must drop.
                if (nodes.contains(&j) && j < i)
                    || !self.is_running(j)
                    || r.net
                        .view()
                        .peers
                        .iter()
                        .any(|p| p.id == self.inner.slots[j].id)
                {
                    continue;
                }
                let addr = *lock(&self.inner.slots[j].listen);
                if let Some(a) = addr {
                    let net = r.net.clone();
                    let id = self.inner.slots[j].id;
                    // Do not wait for the handshake: the dial settles by itself.
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(
                            Duration::from_secs(10),
                            net.connect(PeerAddr::new(a, Some(id))),
                        )
                        .await;
                    });
                }
            }
        }
        self.bump();
    }

    /// Cut every link of the given nodes to the rest (links among them stay).
    pub async fn partition(&self, group: &[usize]) -> Result<(), DemoError> {
        if group.is_empty() {
            return Err(DemoError::Bad("partition: no node given".into()));
        }
        for &i in group {
            self.check(i)?;
        }
        let side = {
            let mut n = lock(&self.inner.next_side);
            *n += 1;
            *n
        };
        let mut touched = BTreeSet::new();
        {
            let mut sides = lock(&self.inner.sides);
            for &i in group {
                sides[i] = side;
            }
        }
        for &i in group {
            touched.insert(i);
            touched.extend(self.topology_neighbours(i));
        }
        self.relink(&touched).await;
        tracing::info!(
            "partitioned {:?}",
            group.iter().map(|i| i + 1).collect::<Vec<_>>()
        );
        Ok(())
    }

    /// Put the given nodes (all when empty) back on the main side and relink them.
    pub async fn heal(&self, nodes: &[usize]) -> Result<(), DemoError> {
        for &i in nodes {
            self.check(i)?;
        }
        let all: Vec<usize> = if nodes.is_empty() {
            (0..self.len()).collect()
        } else {
            nodes.to_vec()
        };
        {
            let mut sides = lock(&self.inner.sides);
            for &i in &all {
                sides[i] = 0;
            }
        }
        let mut touched = BTreeSet::new();
        for &i in &all {
            touched.insert(i);
            touched.extend(self.topology_neighbours(i));
        }
        self.relink(&touched).await;
        tracing::info!("healed {:?}", all.iter().map(|i| i + 1).collect::<Vec<_>>());
        Ok(())
    }

    /// Mine `n` real blocks on node `i` paying its wallet (one thread); their hashes.
    pub async fn mine(&self, i: usize, n: u64) -> Result<Vec<BlockHash>, DemoError> {
        let slot = self.check(i)?;
        let _guard = slot.mine_lock.lock().await;
        let run = self
            .running(i)
            .ok_or_else(|| DemoError::Bad(format!("node {} is stopped", i + 1)))?;
        let r = run.node.mine_blocks(n, 1, slot.address).await;
        let hashes = r.map_err(|e| node_err(i, e))?;
        self.bump();
        Ok(hashes)
    }

    /// Turn node `i`'s mining on or off. On regtest mining is paced: one real block at random,
    /// exponentially distributed intervals (mean [`DemoConfig::block_interval`] over the
    /// node's power); on devnet the miner runs continuously, one thread per unit of power, at
    /// the real difficulty.
    pub async fn set_mining(&self, i: usize, on: bool) -> Result<(), DemoError> {
        let slot = self.check(i)?;
        slot.miner.send_modify(|m| m.on = on);
        if self.network() != Network::Regtest {
            self.apply_continuous_mining(i).await;
        }
        self.bump();
        Ok(())
    }

    /// Node `i`'s mining power (0 to [`MAX_POWER`]).
    pub fn power(&self, i: usize) -> u32 {
        self.inner
            .slots
            .get(i)
            .map_or(0, |s| s.miner.borrow().power)
    }

    /// Set node `i`'s mining power: on regtest its paced blocks come `power` times as often
    /// as at power 1 (so its share of the blocks is its power over the total of the nodes
    /// mining); on devnet it mines on `power` threads. 0: it finds no blocks even with mining
    /// on.
    pub async fn set_power(&self, i: usize, power: u32) -> Result<(), DemoError> {
        let slot = self.check(i)?;
        if power > MAX_POWER {
            return Err(DemoError::Bad(format!(
                "mining power must be 0 to {MAX_POWER}, not {power}"
            )));
        }
        if self.network() != Network::Regtest && power as usize > crate::node::max_threads() {
            return Err(DemoError::Bad(format!(
                "on {} a node's power is its mining threads: at most {} on this machine",
                self.network(),
                crate::node::max_threads()
            )));
        }
        slot.miner.send_modify(|m| m.power = power);
        if self.network() != Network::Regtest {
            self.apply_continuous_mining(i).await;
        }
        self.bump();
        Ok(())
    }

    async fn apply_continuous_mining(&self, i: usize) {
        let slot = &self.inner.slots[i];
        if let Some(r) = self.running(i) {
            let m = *slot.miner.borrow();
            let threads = if m.on { m.power as usize } else { 0 };
            let _ = r.node.set_mining(threads, Some(slot.address)).await;
        }
    }

    /// The paced miner of node `i` (regtest): while mining is on, one block after a random
    /// wait. Lives as long as the demo.
    fn spawn_pacer(&self, i: usize) {
        if self.network() != Network::Regtest {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let on = self.inner.slots[i].miner.subscribe();
        let mean = self.inner.cfg.block_interval.max(Duration::from_millis(10));
        // Power p: p times the rate of power 1 (the minimum of exponential waits is one).
        let active = move |m: &MinerSetting| (m.on && m.power > 0).then(|| ((), mean / m.power));
        tokio::spawn(crate::node::run_paced(on, active, move |()| {
            let weak = weak.clone();
            async move {
                let Some(inner) = weak.upgrade() else {
                    return false;
                };
                let demo = Demo { inner };
                if demo.is_running(i)
                    && let Err(e) = demo.mine(i, 1).await
                {
                    tracing::debug!("paced block on node {}: {e}", i + 1);
                }
                true
            }
        }));
    }

    /// Pay `amount` from node `from`'s wallet to node `to`'s wallet. The payment is built
    /// against, and submitted to, node `via` (default: `from`): on the other side of a
    /// partition, the same coins can be spent twice.
    pub async fn send(
        &self,
        from: usize,
        to: usize,
        amount: Amount,
        via: Option<usize>,
    ) -> Result<Txid, DemoError> {
        self.check(from)?;
        self.check(to)?;
        let via = via.unwrap_or(from);
        self.check(via)?;
        if amount == Amount::ZERO {
            return Err(DemoError::Bad("amount must be above zero".into()));
        }
        let to_addr = self.inner.slots[to].address;
        let txid = self
            .pay_with(from, via, move |w, node| {
                w.build_payment(node, to_addr, amount, crate::node::FeeRate::DEFAULT)
            })
            .await?;
        tracing::info!(
            "node {} paid {amount} to node {} in {txid}",
            from + 1,
            to + 1
        );
        self.bump();
        Ok(txid)
    }

    /// A payment built by `build` from node `from`'s wallet against node `via`'s view (off the
    /// async threads: it scans the store), submitted to node `via` and remembered.
    async fn pay_with(
        &self,
        from: usize,
        via: usize,
        build: impl FnOnce(
            &Wallet,
            &NodeHandle,
        ) -> Result<crate::core::tx::Transaction, crate::wallet::WalletError>
        + Send
        + 'static,
    ) -> Result<Txid, DemoError> {
        let run = self
            .running(via)
            .ok_or_else(|| DemoError::Bad(format!("node {} is stopped", via + 1)))?;
        let (demo, node) = (self.clone(), run.node.clone());
        let tx = tokio::task::spawn_blocking(move || {
            let w = lock(&demo.inner.slots[from].wallet);
            build(&w, &node)
        })
        .await
        .map_err(|e| node_err(from, e))?
        .map_err(|e| DemoError::Bad(format!("node {}: {e}", from + 1)))?;
        let body = tx.clone();
        let txid = run
            .node
            .submit_tx(tx, true)
            .await
            .map_err(|e| node_err(via, e))?;
        lock(&self.inner.sent).insert(txid, body);
        Ok(txid)
    }

    /// Node `i`'s wallet balance as node `i` sees it (None when stopped).
    pub fn balance(&self, i: usize) -> Option<Balance> {
        let run = self.running(i)?;
        let w = lock(&self.inner.slots.get(i)?.wallet);
        w.balance(&run.node).ok()
    }

    /// Whether every running node has the same tip; that tip.
    pub fn common_tip(&self) -> Option<BlockHash> {
        let mut tip = None;
        for i in 0..self.len() {
            if let Some(r) = self.running(i) {
                let t = r.node.snapshot().tip;
                match tip {
                    None => tip = Some(t),
                    Some(x) if x != t => return None,
                    _ => {}
                }
            }
        }
        tip
    }

    /// Deepest reorganisation node `i` went through (any node when None).
    pub fn deepest_reorg(&self, i: Option<usize>) -> usize {
        let o = lock(&self.inner.observed);
        match i {
            Some(i) => o.deepest.get(i).copied().unwrap_or(0),
            None => o.deepest.iter().copied().max().unwrap_or(0),
        }
    }

    pub fn reorgs(&self) -> Vec<ReorgSeen> {
        lock(&self.inner.observed).reorgs.clone()
    }

    /// Where a transaction is on node `i`: confirmed (Some(true)), in its mempool
    /// (Some(false)), unknown (None).
    /// Where node `i` has transaction `txid`: its block's height and its confirmations when
    /// confirmed (`None` inside: in its mempool); `None` if it does not have it or is stopped.
    pub fn tx_place(&self, i: usize, txid: &Txid) -> Option<Option<(u64, u64)>> {
        let r = self.running(i)?;
        let t = r.node.transaction(txid).ok().flatten()?;
        Some(t.block.map(|(_, h)| (h, t.confirmations)))
    }

    /// A transaction on node `i`'s active chain that spends a coin the demo's payment `txid`
    /// spent, with its height: the payment is conflicted there. None if there is none (or
    /// the payment is not one the demo made).
    pub fn conflict(&self, i: usize, txid: &Txid) -> Option<(Txid, u64)> {
        let r = self.running(i)?;
        let tx = lock(&self.inner.sent).get(txid).cloned()?;
        tx.inputs
            .iter()
            .find_map(|input| match r.node.spender(&input.prevout) {
                Ok(crate::node::Spend::Confirmed(t, h)) if t != *txid => Some((t, h)),
                _ => None,
            })
    }

    /// Whether node `i`'s wallet lists transaction `txid` in its history (None when stopped or
    /// the history cannot be read).
    pub fn wallet_lists(&self, i: usize, txid: &Txid) -> Option<bool> {
        let r = self.running(i)?;
        let w = lock(&self.inner.slots.get(i)?.wallet);
        let h = w.history(&r.node).ok()?;
        Some(h.iter().any(|t| t.txid == *txid))
    }

    pub fn tx_state(&self, i: usize, txid: &Txid) -> Option<bool> {
        let r = self.running(i)?;
        r.node
            .transaction(txid)
            .ok()
            .flatten()
            .map(|t| t.block.is_some())
    }

    /// Every node's state (balances scan the store: call off the UI task).
    pub fn status(&self, with_balances: bool) -> Vec<NodeStatus> {
        self.status_from(&self.reads(), with_balances)
    }

    /// One consistent read of each running node's store (None: stopped or unreadable).
    fn reads(&self) -> Vec<Option<crate::node::ChainRead>> {
        (0..self.len())
            .map(|i| self.running(i).and_then(|r| r.node.read().ok()))
            .collect()
    }

    /// The node columns and the block tree from one read of each node's store, so that they
    /// agree: the tree's tips and chains are the columns' (call off the UI task).
    pub fn view(&self, with_balances: bool, heights: u64) -> (Vec<NodeStatus>, TreeInput) {
        let reads = self.reads();
        (
            self.status_from(&reads, with_balances),
            self.tree_from(&reads, heights),
        )
    }

    fn status_from(
        &self,
        reads: &[Option<crate::node::ChainRead>],
        with_balances: bool,
    ) -> Vec<NodeStatus> {
        let ids: HashMap<NodeId, usize> = self
            .inner
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id, i))
            .collect();
        let deepest = lock(&self.inner.observed).deepest.clone();
        let mut out = (0..self.len())
            .map(|i| {
                let slot = &self.inner.slots[i];
                let mut st = NodeStatus {
                    index: i,
                    partitioned: self.is_partitioned(i),
                    mining: slot.miner.borrow().on,
                    power: slot.miner.borrow().power,
                    deepest_reorg: deepest.get(i).copied().unwrap_or(0),
                    listen: *lock(&slot.listen),
                    ..NodeStatus::default()
                };
                if let Some(r) = self.running(i) {
                    let s = r.node.snapshot();
                    st.running = true;
                    st.height = s.height;
                    st.tip = s.tip;
                    st.work = s.chainwork;
                    st.mempool_count = s.mempool_count;
                    st.mempool_bytes = s.mempool_bytes;
                    st.hashrate = s.hashrate;
                    // The chain as the tree reads it (a snapshot can trail the store).
                    if let Some(Some(r)) = reads.get(i) {
                        st.height = r.tip().height;
                        st.tip = r.tip().hash();
                        st.work = r.tip().chainwork;
                    }
                    let mut peers: Vec<usize> = r
                        .net
                        .view()
                        .peers
                        .iter()
                        .filter_map(|p| ids.get(&p.id).copied())
                        .collect();
                    peers.sort_unstable();
                    peers.dedup();
                    st.peers = peers;
                    if with_balances {
                        st.balance = lock(&slot.wallet).balance(&r.node).ok();
                    }
                }
                st
            })
            .collect::<Vec<_>>();
        let mining = |s: &NodeStatus| s.running && s.mining;
        let total: u64 = out
            .iter()
            .filter(|s| mining(s))
            .map(|s| u64::from(s.power))
            .sum();
        for s in &mut out {
            if mining(s) && total > 0 {
                s.power_share_pm = (u64::from(s.power) * 1000 / total) as u32;
            }
        }
        out
    }

    /// The data the block-tree view is built from: recent blocks any node saw, which node has
    /// each (on its active chain, stored on a side branch, or not), and the reorganisations.
    pub fn tree_input(&self, heights: u64) -> TreeInput {
        self.tree_from(&self.reads(), heights)
    }

    fn tree_from(&self, reads: &[Option<crate::node::ChainRead>], heights: u64) -> TreeInput {
        for r in reads.iter().flatten() {
            self.record_chain(r, heights.min(60));
        }
        let (blocks, top) = {
            let o = lock(&self.inner.observed);
            let floor = o.top.saturating_sub(heights.saturating_sub(1));
            let blocks: Vec<(BlockHash, u64, BlockHash, Option<usize>)> = o
                .blocks
                .iter()
                .filter(|(_, b)| b.0 >= floor)
                .map(|(h, b)| (*h, b.0, b.1, b.2))
                .collect();
            (blocks, o.top)
        };
        let _ = top;
        let mut out = Vec::new();
        for (hash, height, prev, miner) in blocks {
            let have = reads
                .iter()
                .map(|r| match r {
                    None => Have::Down,
                    Some(r) => {
                        if r.hash_at(height).ok().flatten() == Some(hash) {
                            Have::Active
                        } else if r.block_meta(&hash).ok().flatten().is_some() {
                            Have::Side
                        } else {
                            Have::Missing
                        }
                    }
                })
                .collect();
            out.push(TreeBlock {
                hash,
                height,
                prev,
                miner,
                have,
            });
        }
        let tips: Vec<Option<BlockHash>> = reads
            .iter()
            .map(|r| r.as_ref().map(|r| r.tip().hash()))
            .collect();
        let now = Instant::now();
        let reorgs = self
            .reorgs()
            .into_iter()
            .filter(|r| now.duration_since(r.at) < Duration::from_secs(600))
            .map(|r| (r.node, r.depth, r.new_tip))
            .collect();
        TreeInput {
            blocks: out,
            tips,
            reorgs,
        }
    }

    /// Stop every node (network first). Safe to call twice.
    pub async fn shutdown(&self) {
        for s in &self.inner.slots {
            s.miner.send_modify(|m| m.on = false);
        }
        for i in 0..self.len() {
            if self.is_running(i) {
                let _ = self.stop(i).await;
            }
        }
    }
}
