//! The node: one thread owns the chain state (store + mempool + miner control) and processes
//! commands in order; everything else talks to it through a cloneable [`NodeHandle`] — commands
//! in, a watched [`Snapshot`] and a stream of [`NodeEvent`]s out. Reads that need no ordering
//! (blocks, coins, history) go straight to a store snapshot from the handle.

pub mod apply;
pub mod chain;
pub mod chainfile;
pub mod explore;
pub mod fees;
mod journal;
pub mod mempool;
pub mod miner;
pub mod p2p;
pub mod read;
pub mod validate;
pub mod verify;

// The node's facade: what front ends (dashboard, demo, API, CLI, wallet) need, so that they
// import `crate::node::{…}` and `crate::core` only, never the network, the store or the node's
// inner modules.
pub use crate::net::identity::{NetError, NodeId, NodeKey, PeerAddr, node_key_path};
pub use crate::storage::{BlockMeta, HistoryEntry, StoreSpace, TxLocation};
pub use chain::{Accepted, ProcessError};
pub use chainfile::{ChainWriter, read_chain_file};
pub use explore::{AddressCoin, AddressView, Spend};
pub use mempool::{Admission, FeeRate, MAX_TX_SIZE, MempoolError};
pub use miner::{max_threads, run_paced};
pub use p2p::offer::offer_block;
pub use p2p::{BanInfo, CompactStats, P2pConfig, P2pHandle, P2pView, PeerInfo};
pub use read::{ChainRead, ChainTip, TipStatus};
pub use validate::{Report as ValidationReport, validate_data_dir};
pub use verify::cores;

use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::block::{Block, BlockHeader};
use crate::core::estimate::{self, ChainRates};
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::{Network, Params};
use crate::core::pow::{CompactTarget, U256, Work};
use crate::core::rules::Coin;
use crate::core::tx::{OutPoint, Transaction};
use crate::storage::{Store, StoreError, StoreRef};
use chain::{Chain, Durability, TipChange, unix_now, unix_now_ms};
use mempool::Mempool;
use miner::{Job, Miner};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use verify::{ParallelVerifier, TxSigs};

/// How long shutdown waits for reads in flight to let the store go.
const STORE_CLOSE_WAIT: Duration = Duration::from_secs(10);

/// How a node is started.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub network: Network,
    pub mempool_bytes: usize,
    /// Mining kernel name (`None`: the fastest this CPU supports).
    pub kernel: Option<String>,
    /// How long to wait for another holder of the store file to let it go.
    pub lock_wait: Duration,
    /// The mempool journal is folded into the store's saved mempool once it is this long.
    pub journal_limit: u64,
}

impl NodeConfig {
    pub fn new(data_dir: impl Into<PathBuf>, network: Network) -> NodeConfig {
        NodeConfig {
            data_dir: data_dir.into(),
            network,
            mempool_bytes: mempool::DEFAULT_MAX_BYTES,
            kernel: None,
            lock_wait: crate::storage::LOCK_WAIT,
            journal_limit: journal::COMPACT_AT,
        }
    }
}

/// The chain store's file inside a data dir.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("chain.redb")
}

/// A node failure as callers see it.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Block(#[from] ProcessError),
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    #[error("cannot create data dir {path}: {error}")]
    DataDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Kernel(String),
    #[error("cannot start the node thread: {0}")]
    Thread(std::io::Error),
    #[error("already mining a fixed number of blocks")]
    AlreadyMining,
    #[error("cannot load the node key: {0}")]
    NodeKey(crate::net::identity::NetError),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: std::net::SocketAddr,
        error: crate::net::identity::NetError,
    },
    #[error("{0}")]
    Dial(String),
    #[error("this node runs without a network")]
    NoNetwork,
    #[error("saving the transactions failed: {0}")]
    Persist(String),
    #[error("export failed: {0}")]
    Export(String),
    #[error("import failed, nothing was changed: {0}")]
    Import(String),
    #[error("the node has stopped")]
    Stopped,
}

/// A short description of a block for displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSummary {
    pub hash: BlockHash,
    pub height: u64,
    pub time: u64,
    pub bits: CompactTarget,
    pub tx_count: u32,
    pub size: u32,
    /// When this node first stored the block (milliseconds since the epoch), if recorded.
    pub seen_ms: Option<u64>,
}

impl From<&BlockMeta> for BlockSummary {
    fn from(m: &BlockMeta) -> Self {
        BlockSummary {
            hash: m.hash(),
            height: m.height,
            time: m.header.time,
            bits: m.header.bits,
            tx_count: m.tx_count,
            size: m.size,
            seen_ms: None,
        }
    }
}

/// What a search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchHit {
    Block(BlockHash),
    Tx(Txid),
    Address(Address),
    /// Nothing (or nothing unique), and why.
    Nothing(String),
}

/// A mempool entry for displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolTx {
    pub txid: Txid,
    pub fee: Amount,
    pub size: usize,
    pub fee_rate: FeeRate,
}

/// A fee estimate and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeEstimate {
    /// The higher of the two below.
    pub rate: FeeRate,
    /// What the mempool's queue asks now.
    pub from_mempool: FeeRate,
    /// What the last blocks took (`None`: no block above genesis yet).
    pub from_blocks: Option<FeeRate>,
    /// Blocks read, and how many of them were full.
    pub blocks_read: usize,
    pub full_blocks: usize,
}

/// Everything a dashboard shows, published on every change.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub network: Network,
    pub height: u64,
    pub tip: BlockHash,
    pub tip_time: u64,
    pub bits: u32,
    /// Tip target relative to the easiest target.
    pub difficulty: U256,
    pub chainwork: Work,
    /// Last blocks of the active chain, newest first (up to [`estimate::WINDOW`] + 1).
    pub recent: Vec<BlockSummary>,
    /// Average block time and network hashrate from the recent blocks (`None`: too little
    /// history to say).
    pub rates: Option<ChainRates>,
    /// The compact target the next block must meet.
    pub next_bits: Option<u32>,
    pub mempool_count: usize,
    pub mempool_bytes: usize,
    pub mempool_fee_range: Option<(FeeRate, FeeRate)>,
    pub mempool_top: Vec<MempoolTx>,
    pub mining_threads: usize,
    /// The hashing kernel's name (a node's own, or one its API named).
    pub mining_kernel: std::borrow::Cow<'static, str>,
    pub mining_address: Option<Address>,
    /// Local hashes per second (last second).
    pub hashrate: u64,
    /// Hashrate once a second, oldest first.
    pub hashrate_history: Vec<u64>,
    pub orphans: usize,
    /// Blocks that joined the active chain since the node started (reorgs count again).
    pub blocks_connected: u64,
    /// Blocks refused as invalid since the node started.
    pub blocks_rejected: u64,
    /// Transactions accepted into the mempool since the node started.
    pub txs_accepted: u64,
}

/// Something that happened, for event streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    BlockConnected {
        hash: BlockHash,
        height: u64,
    },
    BlockDisconnected {
        hash: BlockHash,
        height: u64,
    },
    Reorg {
        depth: usize,
        old_tip: BlockHash,
        new_tip: BlockHash,
    },
    BlockMined {
        hash: BlockHash,
        height: u64,
    },
    BlockRejected {
        hash: BlockHash,
        reason: String,
    },
    TxAccepted(Txid),
    TxRemoved(Txid),
}

/// Bytes of a block template kept for its coinbase: the rest is for mempool transactions.
pub const COINBASE_RESERVE: usize = 2_000;

/// Outcome of a submitted block.
pub type BlockOutcome = Result<Accepted, ProcessError>;

enum Command {
    SubmitBlock(Block, oneshot::Sender<BlockOutcome>),
    SubmitTx {
        tx: Transaction,
        /// Signature verdict, worked out before the command was sent.
        sigs: TxSigs,
        persist: bool,
        reply: oneshot::Sender<Result<Txid, NodeError>>,
    },
    SubmitTxs {
        txs: Vec<(Transaction, TxSigs)>,
        persist: bool,
        reply: oneshot::Sender<Result<Vec<Result<Txid, NodeError>>, NodeError>>,
    },
    SetMining {
        threads: usize,
        address: Option<Address>,
        reply: oneshot::Sender<()>,
    },
    MineBlocks {
        count: u64,
        threads: usize,
        address: Address,
        progress: Arc<AtomicU64>,
        reply: oneshot::Sender<Result<Vec<BlockHash>, NodeError>>,
    },
    CancelMine(oneshot::Sender<bool>),
    Import(Vec<Block>, oneshot::Sender<Result<u64, NodeError>>),
    SubmitBlocks(
        Vec<Block>,
        bool,
        oneshot::Sender<Result<BatchOutcome, NodeError>>,
    ),
    Template(Address, oneshot::Sender<Result<Template, NodeError>>),
    Found(Arc<Job>, u64),
    Tick,
    Shutdown(oneshot::Sender<()>),
}

/// A cloneable handle to a running node. When the last clone is dropped without
/// [`NodeHandle::shutdown`], the node shuts down by itself (mempool saved, store closed).
#[derive(Clone)]
pub struct NodeHandle {
    cmd: mpsc::Sender<Command>,
    _lifeline: Arc<Lifeline>,
    snapshot: watch::Receiver<Snapshot>,
    events: broadcast::Sender<NodeEvent>,
    /// Does not keep the store open: the node thread owns it and closes it at shutdown.
    store: StoreRef,
    mempool: Arc<RwLock<Mempool>>,
    data_dir: PathBuf,
    /// Recent blocks' fee figures, per tip.
    fees: Arc<fees::FeeCache>,
}

/// Shared by every handle; its drop asks the node to stop.
struct Lifeline(mpsc::Sender<Command>);

impl Drop for Lifeline {
    fn drop(&mut self) {
        let (tx, _rx) = oneshot::channel();
        let _ = self.0.try_send(Command::Shutdown(tx));
    }
}

/// Starts nodes.
pub struct Node;

impl Node {
    /// Open the data dir's store, reload the saved mempool and start the node thread.
    pub fn spawn(config: NodeConfig) -> Result<NodeHandle, NodeError> {
        crate::fsutil::create_private_dir(&config.data_dir).map_err(|error| {
            NodeError::DataDir {
                path: config.data_dir.clone(),
                error,
            }
        })?;
        let kernel = miner::kernel::select(config.kernel.as_deref()).map_err(NodeError::Kernel)?;
        let store = Store::open_waiting(
            &store_path(&config.data_dir),
            config.network,
            config.lock_wait,
        )?;
        // redb creates the file under the umask: make it private (the data dir already is).
        crate::fsutil::make_private(&store_path(&config.data_dir)).map_err(|error| {
            NodeError::DataDir {
                path: store_path(&config.data_dir),
                error,
            }
        })?;
        let params = store.params();
        // Blocks skip the signatures their transactions had verified in the mempool.
        let sig_cache = Arc::new(verify::SigCache::new(verify::SIG_CACHE_ENTRIES));
        let mut chain = Chain::new(
            store.clone(),
            Box::new(verify::CachedVerifier {
                inner: ParallelVerifier::all_cores(),
                cache: sig_cache.clone(),
            }),
        );
        chain.recover()?;
        let mempool = Arc::new(RwLock::new(Mempool::new(config.mempool_bytes)));
        let (cmd_tx, cmd_rx) = mpsc::channel(4096);
        let (snap_tx, snap_rx) = watch::channel(Snapshot::default());
        let (events, _) = broadcast::channel(1024);
        let found_tx = cmd_tx.clone();
        let miner = Miner::new(
            kernel,
            Arc::new(move |job, nonce| {
                let _ = found_tx.try_send(Command::Found(job, nonce));
            }),
        );
        let mut state = State {
            journal: journal::Journal::start(
                &journal::journal_paths(&config.data_dir),
                store.clone(),
                config.journal_limit,
            )?,
            journal_paths: journal::journal_files(&config.data_dir),
            chain,
            sync_before: None,
            last_sync_flush: Instant::now(),
            sig_cache,
            params,
            mempool: mempool.clone(),
            miner,
            address: None,
            job_seq: 0,
            snapshot: snap_tx,
            events: events.clone(),
            waiter: None,
            threads_before_waiter: 0,
            meter: Meter::default(),
            template_dirty: false,
            last_template: Instant::now(),
            blocks_connected: 0,
            blocks_rejected: 0,
            txs_accepted: 0,
            work_since: (0, Instant::now()),
            next_bits: None,
            recent: None,
        };
        state.reload_mempool();
        state.publish();
        std::thread::Builder::new()
            .name("chain-tui-node".into())
            .spawn(move || state.run(cmd_rx))
            .map_err(NodeError::Thread)?;
        let tick_tx = cmd_tx.clone();
        let _ = std::thread::Builder::new()
            .name("chain-tui-tick".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    if tick_tx.blocking_send(Command::Tick).is_err() {
                        break;
                    }
                }
            });
        Ok(NodeHandle {
            _lifeline: Arc::new(Lifeline(cmd_tx.clone())),
            cmd: cmd_tx,
            snapshot: snap_rx,
            events,
            store: store.downgrade(),
            mempool,
            data_dir: config.data_dir,
            fees: Arc::default(),
        })
    }
}

impl NodeHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| NodeError::Stopped)?;
        rx.await.map_err(|_| NodeError::Stopped)
    }

    pub fn params(&self) -> &'static Params {
        self.store.params()
    }
    pub fn network(&self) -> Network {
        self.params().network
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// The latest snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }
    /// The latest snapshot's tip, without copying the snapshot.
    pub fn snapshot_tip(&self) -> BlockHash {
        self.snapshot.borrow().tip
    }
    /// A receiver that wakes on every new snapshot.
    pub fn watch(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// Validate and process a block (from a peer, the API, an external miner).
    pub async fn submit_block(&self, block: Block) -> Result<Accepted, NodeError> {
        Ok(self.ask(|r| Command::SubmitBlock(block, r)).await??)
    }

    /// Validate a transaction into the mempool. `persist`: the caller reports it as sent, so it
    /// is written to disk before this returns (survives a crash until mined).
    ///
    /// Its signatures are checked here, on the caller's task (or tokio's blocking pool for a
    /// transaction with many inputs), before the node thread sees it: concurrent submits verify
    /// in parallel, and the node thread does only the checks against the chain and the pool.
    pub async fn submit_tx(&self, tx: Transaction, persist: bool) -> Result<Txid, NodeError> {
        let mut checked = self.check_signatures(vec![tx]).await;
        let Some((tx, sigs)) = checked.pop() else {
            return Err(NodeError::Stopped);
        };
        self.ask(|reply| Command::SubmitTx {
            tx,
            sigs,
            persist,
            reply,
        })
        .await?
    }

    /// Whether the mempool would take `tx` now, and what it would pay and displace: every check
    /// [`NodeHandle::submit_tx`] makes, signatures included, with nothing changed.
    pub async fn check_tx(&self, tx: Transaction) -> Result<Admission, NodeError> {
        let mut checked = self.check_signatures(vec![tx]).await;
        let Some((tx, sigs)) = checked.pop() else {
            return Err(NodeError::Stopped);
        };
        let reader = self.store()?.read()?;
        let tip = reader.tip()?;
        let pool = self.mempool.read().map_err(|_| NodeError::Stopped)?;
        Ok(pool.check(&tx, &reader, tip.height, self.params(), &sigs)?)
    }

    /// Validate many transactions into the mempool, in order (a later one may spend an earlier
    /// one's outputs), each with its own result. Their signatures are verified together, as
    /// ZIP-215 batches spread over the cores, off the node thread; the node thread then admits
    /// them in one command. `persist`: the accepted ones are written to disk, in one write,
    /// before this returns. The outer error means the node stopped, or that writing failed
    /// (the transactions may then be in the mempool without being saved, as with
    /// [`NodeHandle::submit_tx`]).
    pub async fn submit_txs(
        &self,
        txs: Vec<Transaction>,
        persist: bool,
    ) -> Result<Vec<Result<Txid, NodeError>>, NodeError> {
        if txs.is_empty() {
            return Ok(Vec::new());
        }
        let txs = self.check_signatures(txs).await;
        self.ask(|reply| Command::SubmitTxs {
            txs,
            persist,
            reply,
        })
        .await?
    }

    /// Signature verdicts for `txs`, worked out on this task (a few signatures) or on tokio's
    /// blocking pool, never on the node thread. Transactions the node refuses before looking at
    /// signatures (coinbase, oversized, already in the mempool) are left unchecked.
    async fn check_signatures(&self, txs: Vec<Transaction>) -> Vec<(Transaction, TxSigs)> {
        /// At most this many signatures are verified inline on the caller's task.
        const INLINE_SIGS: usize = 4;
        let params = self.params();
        let needed: Vec<bool> = {
            let pool = self.mempool.read().ok();
            txs.iter()
                .map(|tx| {
                    !tx.is_coinbase()
                        && tx.size() <= mempool::MAX_TX_SIZE
                        && !pool.as_ref().is_some_and(|p| p.contains(&tx.txid()))
                })
                .collect()
        };
        let sig_count: usize = txs
            .iter()
            .zip(&needed)
            .filter(|(_, n)| **n)
            .map(|(tx, _)| tx.inputs.len())
            .sum();
        let work = move |txs: Vec<Transaction>| {
            let (todo, idx): (Vec<Transaction>, Vec<usize>) = txs
                .iter()
                .zip(&needed)
                .enumerate()
                .filter(|(_, (_, n))| **n)
                .map(|(i, (tx, _))| (tx.clone(), i))
                .unzip();
            let mut sigs: Vec<TxSigs> = txs.iter().map(|_| TxSigs::unchecked()).collect();
            let verifier = ParallelVerifier::all_cores();
            for (i, v) in idx
                .into_iter()
                .zip(verify::verify_txs(&todo, params, &verifier))
            {
                sigs[i] = v;
            }
            txs.into_iter().zip(sigs).collect::<Vec<_>>()
        };
        if sig_count == 0 {
            return txs
                .into_iter()
                .map(|tx| (tx, TxSigs::unchecked()))
                .collect();
        }
        if sig_count <= INLINE_SIGS {
            return work(txs);
        }
        match tokio::runtime::Handle::try_current() {
            // If the blocking pool fails us, the node thread checks the signatures itself.
            Ok(rt) => {
                let backup = txs.clone();
                rt.spawn_blocking(move || work(txs))
                    .await
                    .unwrap_or_else(|_| {
                        backup
                            .into_iter()
                            .map(|tx| (tx, TxSigs::unchecked()))
                            .collect()
                    })
            }
            Err(_) => work(txs),
        }
    }

    /// Mine with `threads` threads paying `address` (0 threads stops).
    pub async fn set_mining(
        &self,
        threads: usize,
        address: Option<Address>,
    ) -> Result<(), NodeError> {
        self.ask(|reply| Command::SetMining {
            threads,
            address,
            reply,
        })
        .await
    }

    /// Mine exactly `count` blocks paying `address`, then return to the previous mining state.
    pub async fn mine_blocks(
        &self,
        count: u64,
        threads: usize,
        address: Address,
    ) -> Result<Vec<BlockHash>, NodeError> {
        self.mine_blocks_counted(count, threads, address, Arc::default())
            .await
    }

    /// [`NodeHandle::mine_blocks`], adding one to `progress` for every block mined. After
    /// [`NodeHandle::cancel_mine`] it returns the blocks mined until then.
    pub async fn mine_blocks_counted(
        &self,
        count: u64,
        threads: usize,
        address: Address,
        progress: Arc<AtomicU64>,
    ) -> Result<Vec<BlockHash>, NodeError> {
        self.ask(|reply| Command::MineBlocks {
            count,
            threads,
            address,
            progress,
            reply,
        })
        .await?
    }

    /// Stop a `mine_blocks` in progress (it returns the blocks mined so far) and go back to the
    /// previous mining state; false when none runs. A block found at that moment may still be
    /// added to the chain.
    pub async fn cancel_mine(&self) -> Result<bool, NodeError> {
        self.ask(Command::CancelMine).await
    }

    /// Validate and connect a sequence of blocks all-or-nothing. Returns the new height.
    pub async fn import(&self, blocks: Vec<Block>) -> Result<u64, NodeError> {
        self.ask(|r| Command::Import(blocks, r)).await?
    }

    /// Blocks in chain order from a peer (initial sync): committed in batches. `more`: more
    /// batches are on their way, so the flush may wait for one of them (at most
    /// [`SYNC_FLUSH_EVERY`]); nothing about blocks not yet flushed is reported (no event, no
    /// snapshot) until they are durable.
    pub async fn submit_blocks(
        &self,
        blocks: Vec<Block>,
        more: bool,
    ) -> Result<BatchOutcome, NodeError> {
        self.ask(|r| Command::SubmitBlocks(blocks, more, r)).await?
    }

    /// A block template for an external miner: the next block on the tip paying `address`,
    /// with mempool transactions by fee rate and nonce 0; solve it and submit it.
    pub async fn block_template(&self, address: Address) -> Result<Template, NodeError> {
        self.ask(|r| Command::Template(address, r)).await?
    }

    /// Stop mining, save the mempool, close the store. Waits for the node thread.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.ask(Command::Shutdown).await
    }

    // ---- reads: straight from a store snapshot ----

    /// One consistent view of the stored chain, for a view built from several reads (see
    /// [`ChainRead`]).
    pub fn read(&self) -> Result<ChainRead, NodeError> {
        ChainRead::new(self.store()?.read()?, self.params())
    }

    pub fn tip(&self) -> Result<BlockMeta, NodeError> {
        Ok(self.store()?.read()?.tip()?)
    }
    pub fn block_meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>, NodeError> {
        Ok(self.store()?.read()?.meta(hash)?)
    }
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, NodeError> {
        Ok(self.store()?.read()?.block(hash)?)
    }
    /// What a search for `text` finds: a height of the active chain, a block hash or txid
    /// (a unique hex prefix is enough, `0x` first when it is all digits; mempool transactions
    /// too) or an address.
    pub fn search(&self, text: &str) -> Result<SearchHit, NodeError> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(SearchHit::Nothing(
                "type a height, a hash, a txid or an address".into(),
            ));
        }
        // A number is a height, unless written 0x… (then it is the start of a hash).
        let (t, forced_hex) = match t.strip_prefix("0x") {
            Some(rest) => (rest, true),
            None => (t, false),
        };
        if !forced_hex
            && let Ok(h) = t.parse::<u64>()
            && t.len() < 20
        {
            return Ok(match self.store()?.read()?.hash_at(h)? {
                Some(hash) => SearchHit::Block(hash),
                None => SearchHit::Nothing(format!(
                    "no block at height {h} (the tip is {})",
                    self.tip()?.height
                )),
            });
        }
        if let Ok(a) = Address::decode(t, self.params().network) {
            return Ok(SearchHit::Address(a));
        }
        let hex = t.to_ascii_lowercase();
        if hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(SearchHit::Nothing(format!(
                "{t:?} is no height, hash, txid or {} address",
                self.params().network
            )));
        }
        let (mut lo, mut hi) = ([0u8; 32], [0xffu8; 32]);
        for (i, c) in hex.bytes().enumerate() {
            let v = (c as char).to_digit(16).unwrap_or(0) as u8;
            let (byte, shift) = (i / 2, if i % 2 == 0 { 4 } else { 0 });
            lo[byte] = (lo[byte] & !(0xf << shift)) | (v << shift);
            hi[byte] = (hi[byte] & !(0xf << shift)) | (v << shift);
        }
        let (blocks, mut txs) = self.store()?.read()?.hashes_in(lo, hi, 2)?;
        for tx in self.mempool_txs() {
            let id = tx.txid();
            if (lo..=hi).contains(&id.0) && !txs.contains(&id) {
                txs.push(id);
            }
        }
        Ok(match (blocks.as_slice(), txs.as_slice()) {
            ([b], []) => SearchHit::Block(*b),
            ([], [t]) => SearchHit::Tx(*t),
            ([], []) => SearchHit::Nothing(format!("nothing starts with {hex}")),
            _ => SearchHit::Nothing(format!("{hex} matches more than one hash: type more of it")),
        })
    }

    /// Up to `count` blocks of the active chain from height `top` down (newest first), read
    /// in one store transaction: a page of a chain browser.
    pub fn chain_page(&self, top: u64, count: u64) -> Result<Vec<BlockSummary>, NodeError> {
        let r = self.store()?.read()?;
        let mut out = Vec::with_capacity(count.min(4096) as usize);
        let mut h = top;
        while (out.len() as u64) < count {
            let Some(hash) = r.hash_at(h)? else { break };
            let Some(m) = r.meta(&hash)? else { break };
            let mut b = BlockSummary::from(&m);
            b.seen_ms = r.seen_ms(&hash)?;
            out.push(b);
            if h == 0 {
                break;
            }
            h -= 1;
        }
        Ok(out)
    }
    /// When this node first stored the block (milliseconds since the epoch), if recorded.
    pub fn block_seen_ms(&self, hash: &BlockHash) -> Result<Option<u64>, NodeError> {
        Ok(self.store()?.read()?.seen_ms(hash)?)
    }
    /// Hash of the active chain's block at `height`.
    pub fn hash_at(&self, height: u64) -> Result<Option<BlockHash>, NodeError> {
        Ok(self.store()?.read()?.hash_at(height)?)
    }
    /// Whether `hash` is on the active chain.
    pub fn is_active(&self, meta: &BlockMeta) -> Result<bool, NodeError> {
        Ok(self.hash_at(meta.height)? == Some(meta.hash()))
    }

    /// A transaction, confirmed (with its block height and confirmations) or in the mempool.
    pub fn transaction(&self, txid: &Txid) -> Result<Option<TxInfo>, NodeError> {
        let r = self.store()?.read()?;
        if let Some(loc) = r.tx_location(txid)? {
            let tip = r.tip()?;
            let meta = r.meta(&loc.block)?.ok_or_else(|| {
                StoreError::Corrupt(format!("indexed block {} missing", loc.block))
            })?;
            let block = r.block(&loc.block)?.ok_or_else(|| {
                StoreError::Corrupt(format!("indexed block {} missing", loc.block))
            })?;
            let tx = block.txs.get(loc.index as usize).cloned().ok_or_else(|| {
                StoreError::Corrupt(format!("tx index points past block {}", loc.block))
            })?;
            return Ok(Some(TxInfo {
                tx,
                block: Some((loc.block, meta.height)),
                confirmations: (tip.height + 1).checked_sub(meta.height).ok_or_else(|| {
                    StoreError::Corrupt(format!("indexed block {} is above the tip", loc.block))
                })?,
                fee: None,
            }));
        }
        let pool = self.mempool.read().map_err(|_| NodeError::Stopped)?;
        Ok(pool.get(txid).map(|e| TxInfo {
            tx: e.tx.clone(),
            block: None,
            confirmations: 0,
            fee: Some(e.fee),
        }))
    }

    /// The fee rate a transaction needs to be mined within `blocks` blocks: the higher of what
    /// the mempool's queue asks ([`NodeHandle::mempool_fee_estimate`]) and what recent blocks
    /// took ([`fees::fee_from_blocks`]), with both.
    pub fn fee_estimate(&self, blocks: u64) -> Result<FeeEstimate, NodeError> {
        let from_mempool = self.mempool_fee_estimate(blocks);
        let recent = self.recent_block_fees()?;
        let from_blocks = fees::fee_from_blocks(&recent, blocks);
        Ok(FeeEstimate {
            rate: from_blocks.map_or(from_mempool, |b| b.max(from_mempool)),
            from_mempool,
            from_blocks,
            blocks_read: recent.len(),
            full_blocks: recent.iter().filter(|b| b.full()).count(),
        })
    }

    /// The fee rate a transaction needs to be mined within `blocks` blocks, from what waits in
    /// the mempool (see [`mempool::fee_to_confirm_within`]).
    pub fn mempool_fee_estimate(&self, blocks: u64) -> FeeRate {
        let queue: Vec<(FeeRate, usize)> = self
            .mempool_entries()
            .iter()
            .map(|e| (e.fee_rate, e.size))
            .collect();
        let space = self
            .params()
            .max_block_size
            .saturating_sub(COINBASE_RESERVE);
        mempool::fee_to_confirm_within(&queue, blocks, space)
    }

    /// Confirmed unspent coins of `addr`.
    pub fn address_coins(&self, addr: &Address) -> Result<Vec<(OutPoint, Coin)>, NodeError> {
        Ok(self.store()?.read()?.address_coins(addr)?)
    }
    /// Confirmed history of `addr`, oldest first.
    pub fn address_history(&self, addr: &Address) -> Result<Vec<HistoryEntry>, NodeError> {
        Ok(self.store()?.read()?.address_history(addr)?)
    }
    /// Mempool transactions, parents first.
    pub fn mempool_txs(&self) -> Vec<Transaction> {
        self.mempool
            .read()
            .map(|p| p.ordered_txs())
            .unwrap_or_default()
    }
    /// The mempool's txids, parents before children.
    pub fn mempool_txids(&self) -> Vec<Txid> {
        self.mempool
            .read()
            .map(|p| p.ordered_txids())
            .unwrap_or_default()
    }
    /// Every mempool entry, highest fee rate first.
    pub fn mempool_entries(&self) -> Vec<MempoolTx> {
        self.mempool
            .read()
            .map(|p| {
                p.by_fee_rate()
                    .map(|e| MempoolTx {
                        txid: e.txid,
                        fee: e.fee,
                        size: e.size,
                        fee_rate: e.rate,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// The mempool transaction spending `o`, if any.
    pub fn mempool_spender(&self, o: &OutPoint) -> Option<Txid> {
        self.mempool.read().ok().and_then(|p| p.spender(o))
    }

    /// Re-verify the whole active chain from genesis (blocking; run off async threads).
    pub fn validate_chain(&self) -> Result<validate::Report, NodeError> {
        Ok(validate::validate_chain(
            &self.store()?,
            &ParallelVerifier::all_cores(),
        )?)
    }

    /// A block locator: active-chain hashes from the tip back, spacing doubling after ten,
    /// ending at genesis.
    pub fn locator(&self) -> Result<Vec<BlockHash>, NodeError> {
        self.read()?.locator()
    }

    /// Active-chain headers after the first locator hash on our active chain (genesis if
    /// none), up to `stop` or `max` headers.
    pub fn headers_after(
        &self,
        locator: &[BlockHash],
        stop: &BlockHash,
        max: usize,
    ) -> Result<Vec<BlockHeader>, NodeError> {
        self.read()?.headers_after(locator, stop, max)
    }

    /// Whether the block is stored (on any branch).
    pub fn has_block(&self, hash: &BlockHash) -> Result<bool, NodeError> {
        Ok(self.store()?.read()?.meta(hash)?.is_some())
    }

    /// Whether the transaction is in the mempool or confirmed.
    pub fn has_tx(&self, txid: &Txid) -> Result<bool, NodeError> {
        if self
            .mempool
            .read()
            .map(|p| p.contains(txid))
            .unwrap_or(false)
        {
            return Ok(true);
        }
        Ok(self.store()?.read()?.tx_location(txid)?.is_some())
    }

    /// A mempool transaction.
    pub fn mempool_tx(&self, txid: &Txid) -> Option<Transaction> {
        self.mempool
            .read()
            .ok()
            .and_then(|p| p.get(txid).map(|e| e.tx.clone()))
    }

    /// The store while the node runs (the network glue's address book and bans, and reads);
    /// [`NodeError::Stopped`] once it has shut down and let the store go.
    pub(crate) fn store(&self) -> Result<Store, NodeError> {
        self.store.get().ok_or(NodeError::Stopped)
    }

    /// Write the active chain (without genesis) to `file`, through a temp file and a rename;
    /// returns the height written. Refused when the chain changes under the export.
    pub fn export_chain(&self, file: &Path) -> Result<u64, NodeError> {
        let tip = self.tip()?;
        let export = |e: String| NodeError::Export(e);
        let mut w = chainfile::ChainWriter::create(file, &self.params().genesis_hash, tip.height)
            .map_err(export)?;
        let mut h = 1;
        while h <= tip.height {
            let blocks = self.blocks_from(h, 1000)?;
            if blocks.is_empty() {
                return Err(export(format!(
                    "the chain changed during the export (height {h} is gone); try again"
                )));
            }
            for b in &blocks {
                w.push(b).map_err(export)?;
                h += 1;
            }
        }
        w.finish().map_err(export)?;
        Ok(tip.height)
    }

    /// Bytes in the store's page cache.
    pub fn store_cache_bytes(&self) -> Result<u64, NodeError> {
        Ok(self.store()?.cache_bytes() as u64)
    }
    /// How the store's file is used, table by table (one full walk of its trees).
    pub fn store_space(&self) -> Result<StoreSpace, NodeError> {
        Ok(self.store()?.space()?)
    }

    /// Blocks of the active chain from `from` (inclusive), at most `limit`.
    pub fn blocks_from(&self, from: u64, limit: u64) -> Result<Vec<Block>, NodeError> {
        self.read()?.blocks_from(from, limit)
    }
}

/// What a batch of peer blocks did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOutcome {
    pub submitted: usize,
    pub height: u64,
    pub tip: BlockHash,
    /// Blocks that joined the active chain.
    pub connected: usize,
    /// Position and reason of the first refused block, and whether it was invalid (the
    /// sender's fault) rather than, say, disconnected.
    pub failure: Option<(usize, String, bool)>,
}

/// A block to mine on the tip, and the target its header hash must meet.
#[derive(Clone, Debug)]
pub struct Template {
    pub block: Block,
    pub height: u64,
    pub target: crate::core::pow::Target,
    /// Fees of the included transactions (already in the coinbase).
    pub fees: Amount,
}

/// A transaction and where it is.
#[derive(Clone, Debug)]
pub struct TxInfo {
    pub tx: Transaction,
    /// Block hash and height, when confirmed.
    pub block: Option<(BlockHash, u64)>,
    pub confirmations: u64,
    /// Known for mempool transactions.
    pub fee: Option<Amount>,
}

struct MineWaiter {
    remaining: u64,
    mined: Vec<BlockHash>,
    progress: Arc<AtomicU64>,
    reply: oneshot::Sender<Result<Vec<BlockHash>, NodeError>>,
}

#[derive(Default)]
struct Meter {
    last_total: u64,
    last_at: Option<Instant>,
    rate: u64,
    history: VecDeque<u64>,
}

/// Hashrate samples kept (one a second).
const HASHRATE_HISTORY: usize = 120;
/// Minimum time between template rebuilds caused by mempool changes.
const TEMPLATE_MIN_INTERVAL: Duration = Duration::from_millis(500);
/// During a sync, batches are flushed to disk at least this often (and with the last one).
pub const SYNC_FLUSH_EVERY: Duration = Duration::from_secs(1);

struct State {
    chain: Chain,
    /// Sync batches committed but not yet flushed: the tip before the first of them.
    sync_before: Option<BlockMeta>,
    last_sync_flush: Instant,
    /// Signatures verified on mempool admission (the chain's verifier skips them).
    sig_cache: Arc<verify::SigCache>,
    /// Writes what `submit_txs` accepted, off this thread.
    journal: journal::Journal,
    journal_paths: Vec<PathBuf>,
    params: &'static Params,
    mempool: Arc<RwLock<Mempool>>,
    miner: Miner,
    address: Option<Address>,
    job_seq: u64,
    snapshot: watch::Sender<Snapshot>,
    events: broadcast::Sender<NodeEvent>,
    waiter: Option<MineWaiter>,
    threads_before_waiter: usize,
    meter: Meter,
    template_dirty: bool,
    last_template: Instant,
    blocks_connected: u64,
    blocks_rejected: u64,
    txs_accepted: u64,
    /// Miner hash count and time when work on the next block began (the last tip change).
    work_since: (u64, Instant),
    /// The next block's compact target, and the tip it follows.
    next_bits: Option<(BlockHash, u32)>,
    /// The recent blocks the snapshot shows, and the tip they end at: read again only when
    /// the tip changes (the node publishes every second).
    recent: Option<(BlockHash, Vec<BlockSummary>)>,
}

impl State {
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut shutdown_reply = None;
        while let Some(cmd) = rx.blocking_recv() {
            // Sync batches not yet flushed are made durable and reported before anything
            // else happens (a tick at the latest: within a second).
            if !matches!(cmd, Command::SubmitBlocks(..)) {
                self.finish_sync();
            }
            match cmd {
                Command::SubmitBlock(block, reply) => {
                    let r = self.process_block(block, false);
                    let _ = reply.send(r);
                }
                Command::SubmitTx {
                    tx,
                    sigs,
                    persist,
                    reply,
                } => {
                    let txid = tx.txid();
                    let r = self.submit_tx(tx, &sigs, persist);
                    match &r {
                        // Already have it: the usual race between peers relaying it.
                        Err(NodeError::Mempool(e)) if e.is_known() => {}
                        Err(e) => tracing::info!("transaction {} refused: {e}", txid.short()),
                        Ok(_) => {}
                    }
                    let _ = reply.send(r);
                }
                Command::SubmitTxs {
                    txs,
                    persist,
                    reply,
                } => self.submit_txs(txs, persist, reply),
                Command::SetMining {
                    threads,
                    address,
                    reply,
                } => {
                    if address.is_some() {
                        self.address = address;
                    }
                    self.miner.set_threads(threads);
                    self.rebuild_template();
                    self.publish();
                    let _ = reply.send(());
                }
                Command::MineBlocks {
                    count,
                    threads,
                    address,
                    progress,
                    reply,
                } => {
                    if count == 0 {
                        let _ = reply.send(Ok(vec![]));
                        continue;
                    }
                    if self.waiter.is_some() {
                        let _ = reply.send(Err(NodeError::AlreadyMining));
                        continue;
                    }
                    self.threads_before_waiter = self.miner.threads();
                    self.waiter = Some(MineWaiter {
                        remaining: count,
                        mined: Vec::new(),
                        progress,
                        reply,
                    });
                    self.address = Some(address);
                    self.miner.set_threads(threads.max(1));
                    self.rebuild_template();
                    self.publish();
                }
                Command::CancelMine(reply) => {
                    let cancelled = match self.waiter.take() {
                        Some(w) => {
                            self.miner.set_threads(self.threads_before_waiter);
                            let _ = w.reply.send(Ok(w.mined));
                            self.rebuild_template();
                            self.publish();
                            true
                        }
                        None => false,
                    };
                    let _ = reply.send(cancelled);
                }
                Command::Import(blocks, reply) => {
                    let _ = reply.send(self.import(blocks));
                }
                Command::SubmitBlocks(blocks, more, reply) => {
                    let _ = reply.send(self.submit_blocks(blocks, more));
                }
                Command::Template(address, reply) => {
                    let _ = reply.send(self.template(address));
                }
                Command::Found(job, nonce) => {
                    let block = miner::solved_block(&job, nonce);
                    if let Err(e) = self.process_block(block, true) {
                        // Our own template was refused: a bug, not bad luck. Say so to whoever
                        // waits for blocks instead of mining the same refused block forever.
                        tracing::error!("the node refused its own mined block: {e}");
                        if let Some(w) = self.waiter.take() {
                            let _ = w.reply.send(Err(NodeError::Block(e)));
                            self.miner.set_threads(self.threads_before_waiter);
                        }
                        self.rebuild_template();
                    }
                }
                Command::Tick => {
                    self.tick();
                }
                Command::Shutdown(reply) => {
                    shutdown_reply = Some(reply);
                    break;
                }
            }
        }
        self.shutdown();
        // Close the store before saying we are done, so the data dir can be opened again at
        // once. Handles only hold weak references; a read in flight keeps it open until it ends.
        let closed = self.chain.store().closed();
        drop(rx);
        drop(self);
        if !closed.wait(STORE_CLOSE_WAIT) {
            tracing::warn!(
                "the chain store is still held by a reader {} s after shutdown",
                STORE_CLOSE_WAIT.as_secs()
            );
        }
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn shutdown(&mut self) {
        self.miner.set_threads(0);
        self.miner.set_job(None);
        // Every write asked for is done before the whole mempool is saved over them.
        self.journal.stop();
        if let Err(e) = journal::compact(self.chain.store(), &self.mempool, &self.journal_paths) {
            tracing::error!("saving the mempool failed: {e}");
        }
    }

    /// The saved mempool and what the journal added since, re-validated against the tip; then
    /// folded into the store's saved mempool and the journal emptied.
    fn reload_mempool(&mut self) {
        let mut saved = match self.chain.store().read().and_then(|r| r.saved_mempool()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("saved mempool unreadable, starting empty: {e}");
                Vec::new()
            }
        };
        let mut all_read = true;
        for path in &self.journal_paths {
            match journal::read(path) {
                Ok((txs, damage)) => {
                    if let Some(why) = damage {
                        tracing::warn!(
                            "{}: {why} (a write cut short by a crash leaves this; nothing \
                             answered was in it)",
                            path.display()
                        );
                    }
                    saved.extend(txs);
                }
                Err(e) => {
                    all_read = false;
                    tracing::warn!("the mempool journal is unreadable, and kept as it is: {e}");
                }
            }
        }
        self.readmit(saved);
        // A journal that could not be read is not emptied: what it holds is not in the pool.
        if all_read
            && let Err(e) = journal::compact(self.chain.store(), &self.mempool, &self.journal_paths)
        {
            tracing::warn!("folding the mempool journal into the store: {e}");
        }
    }

    /// Try `txs` (parents first) against the current tip; drop what is no longer valid.
    fn readmit(&mut self, txs: Vec<Transaction>) {
        if let Ok(mut pool) = self.mempool.write() {
            let verify = apply::Verify {
                verifier: ParallelVerifier::all_cores(),
                cache: &self.sig_cache,
            };
            apply::readmit(&mut pool, txs, self.chain.store(), &verify, unix_now());
        }
    }

    fn submit_tx(
        &mut self,
        tx: Transaction,
        sigs: &TxSigs,
        persist: bool,
    ) -> Result<Txid, NodeError> {
        let reader = self.chain.store().read()?;
        let tip = reader.tip()?;
        let txid = {
            let mut pool = self.mempool.write().map_err(|_| NodeError::Stopped)?;
            let rec = verify::Recording::new(sigs, &self.sig_cache);
            let txid = pool.accept(
                tx.clone(),
                &reader,
                tip.height,
                self.params,
                &rec,
                unix_now(),
            )?;
            rec.commit();
            txid
        };
        drop(reader);
        if persist {
            self.chain.store().write(true, |b| b.add_mempool(&tx))?;
        }
        tracing::info!("transaction {} accepted into the mempool", txid.short());
        let _ = self.events.send(NodeEvent::TxAccepted(txid));
        self.txs_accepted += 1;
        self.template_dirty = true;
        if self.last_template.elapsed() >= TEMPLATE_MIN_INTERVAL {
            self.rebuild_template();
        }
        self.publish();
        Ok(txid)
    }

    /// Admit transactions in order, each with its own result; one write for the persisted
    /// ones and one snapshot at the end.
    /// Accept what `txs` can into the mempool, and answer on `reply` once the accepted ones
    /// are on disk (with `persist`; the journal writes them while this thread goes on).
    fn submit_txs(
        &mut self,
        txs: Vec<(Transaction, TxSigs)>,
        persist: bool,
        reply: journal::Answer,
    ) {
        let (accepted, results) = match self.admit(txs) {
            Ok(r) => r,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if accepted.is_empty() {
            let _ = reply.send(Ok(results));
            return;
        }
        for txid in results.iter().filter_map(|r| r.as_ref().ok()) {
            let _ = self.events.send(NodeEvent::TxAccepted(*txid));
        }
        self.template_dirty = true;
        if self.last_template.elapsed() >= TEMPLATE_MIN_INTERVAL {
            self.rebuild_template();
        }
        self.publish();
        if persist {
            self.journal.write(accepted, results, reply);
        } else {
            let _ = reply.send(Ok(results));
        }
    }

    /// The mempool's verdict on each of `txs`, and the ones it took.
    #[allow(clippy::type_complexity)]
    fn admit(
        &mut self,
        txs: Vec<(Transaction, TxSigs)>,
    ) -> Result<(Vec<Transaction>, Vec<Result<Txid, NodeError>>), NodeError> {
        let reader = self.chain.store().read()?;
        let tip = reader.tip()?;
        let now = unix_now();
        let mut results = Vec::with_capacity(txs.len());
        let mut accepted = Vec::new();
        let mut pool = self.mempool.write().map_err(|_| NodeError::Stopped)?;
        for (tx, sigs) in txs {
            let rec = verify::Recording::new(&sigs, &self.sig_cache);
            let r = pool.accept(tx.clone(), &reader, tip.height, self.params, &rec, now);
            if r.is_ok() {
                rec.commit();
            }
            if r.is_ok() {
                accepted.push(tx);
            }
            results.push(r.map_err(NodeError::from));
        }
        Ok((accepted, results))
    }

    fn process_block(&mut self, block: Block, mined: bool) -> BlockOutcome {
        let hash = block.hash();
        let before = self.chain.tip().ok().map(|t| t.hash());
        let result = self.chain.process_block(block, Durability::Immediate);
        match &result {
            Ok(Accepted::TipChanged(change)) => {
                let mut done = None;
                if mined {
                    let height = change
                        .connected
                        .iter()
                        .find(|(b, _)| b.hash() == hash)
                        .map(|(_, h)| *h);
                    if let Some(height) = height {
                        let (from, at) = self.work_since;
                        let hashes = self.miner.total_hashes().saturating_sub(from);
                        tracing::info!(
                            "mined block {height} {}: {} hashes in {:.2} s",
                            hash.short(),
                            crate::core::pow::si_text(U256::from(hashes)),
                            at.elapsed().as_secs_f64()
                        );
                        let _ = self.events.send(NodeEvent::BlockMined { hash, height });
                        done = self.count_mined(hash);
                    }
                }
                self.apply_change(change, before);
                if let Some(w) = done {
                    let _ = w.reply.send(Ok(w.mined));
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::info!("rejected block {hash}: {e}");
                if e.is_peer_fault() {
                    self.blocks_rejected += 1;
                }
                let _ = self.events.send(NodeEvent::BlockRejected {
                    hash,
                    reason: e.to_string(),
                });
            }
        }
        result
    }

    /// Count a mined block for `mine_blocks`; returns the waiter once it has all its blocks
    /// (mining already stopped, so no extra block is mined; the caller replies after the
    /// mempool and snapshot are up to date).
    fn count_mined(&mut self, hash: BlockHash) -> Option<MineWaiter> {
        let w = self.waiter.as_mut()?;
        w.mined.push(hash);
        w.progress.fetch_add(1, Ordering::Relaxed);
        w.remaining -= 1;
        if w.remaining > 0 {
            return None;
        }
        self.miner.set_threads(self.threads_before_waiter);
        self.waiter.take()
    }

    /// Bring the mempool, the miner and the watchers up to date with a changed tip.
    fn apply_change(&mut self, change: &TipChange, old_tip: Option<BlockHash>) {
        // The mempool follows the chain; listeners (relay, dashboard) hear what changed.
        let verify = apply::Verify {
            verifier: ParallelVerifier::all_cores(),
            cache: &self.sig_cache,
        };
        let mut events = match self.mempool.write() {
            Ok(mut pool) => {
                apply::pool_events(&mut pool, change, self.chain.store(), &verify, unix_now())
            }
            Err(_) => Vec::new(),
        };
        events.extend(apply::change_events(change, old_tip, self.chain.store()));
        for ev in events {
            let _ = self.events.send(ev);
        }
        self.blocks_connected += change.connected.len() as u64;
        // Hashes and time toward the next block count from here.
        self.work_since = (self.miner.total_hashes(), Instant::now());
        if !change.disconnected.is_empty()
            && let (Some(old_tip), Some((last, height))) = (old_tip, change.connected.last())
        {
            let returned: usize = change
                .disconnected
                .iter()
                .flat_map(|b| b.txs.iter().skip(1))
                .filter(|t| self.mempool.read().is_ok_and(|p| p.contains(&t.txid())))
                .count();
            tracing::warn!(
                "reorganisation: {} block{} replaced by {}, tip {} → {} at height {height}; {returned} \
                 transaction{} back in the mempool",
                change.disconnected.len(),
                if change.disconnected.len() == 1 {
                    ""
                } else {
                    "s"
                },
                change.connected.len(),
                old_tip.short(),
                last.hash().short(),
                if returned == 1 { "" } else { "s" },
            );
        }
        self.rebuild_template();
        self.publish();
    }

    fn import(&mut self, blocks: Vec<Block>) -> Result<u64, NodeError> {
        let store = self.chain.store().clone();
        let before = self.chain.tip()?.hash();
        let cp = store.checkpoint()?;
        let n = blocks.len();
        let total = match self.chain.process_batch(blocks) {
            Ok(total) => total,
            Err((i, e)) => {
                self.chain.forget_orphans();
                store.restore(&cp)?;
                return Err(NodeError::Import(format!("block {} of {n}: {e}", i + 1)));
            }
        };
        store.flush()?;
        let height = self.chain.tip()?.height;
        self.apply_change(&total, Some(before));
        Ok(height)
    }

    /// Flush sync batches committed and not yet durable, and report them.
    fn finish_sync(&mut self) {
        let Some(before) = self.sync_before else {
            return;
        };
        let done = self
            .chain
            .store()
            .flush()
            .map_err(NodeError::from)
            .and_then(|()| {
                self.last_sync_flush = Instant::now();
                self.tip_change_since(&before)
            });
        match done {
            Ok(change) => {
                self.sync_before = None;
                if !change.connected.is_empty() || !change.disconnected.is_empty() {
                    self.apply_change(&change, Some(before.hash()));
                }
            }
            // Kept: tried again at the next command or tick; nothing is reported before.
            Err(e) => tracing::error!("flushing synced blocks: {e}"),
        }
    }

    /// Blocks from a peer during sync: batched commits, flushed before they are reported or
    /// answered for (so before anything is relayed), except that while `more` batches are
    /// coming the flush waits, up to [`SYNC_FLUSH_EVERY`] (a flush costs tens of
    /// milliseconds). Stops at the first bad block, keeping what came before it.
    fn submit_blocks(&mut self, blocks: Vec<Block>, more: bool) -> Result<BatchOutcome, NodeError> {
        let deferred = self.sync_before;
        let before = match deferred {
            Some(b) => b,
            None => self.chain.tip()?,
        };
        // Pending until reported: an error below leaves it for the next flush.
        self.sync_before = Some(before);
        let n = blocks.len();
        let (change, failure) = match self.chain.process_batch(blocks) {
            Ok(c) => (c, None),
            Err((i, e)) => {
                if e.is_peer_fault() {
                    self.blocks_rejected += 1;
                }
                (TipChange::default(), Some((i, e)))
            }
        };
        let batch_connected = change.connected.len();
        if more && failure.is_none() && self.last_sync_flush.elapsed() < SYNC_FLUSH_EVERY {
            // Committed, not yet durable: reported with the flush.
            let after = self.chain.tip()?;
            return Ok(BatchOutcome {
                submitted: n,
                height: after.height,
                tip: after.hash(),
                connected: batch_connected,
                failure: None,
            });
        }
        self.chain.store().flush()?;
        self.last_sync_flush = Instant::now();
        let after = self.chain.tip()?;
        // Batches before this one not reported yet, or a failed batch that still committed
        // the blocks before the bad one: read the change back from the store.
        let change = if deferred.is_some() || (failure.is_some() && after.hash() != before.hash()) {
            self.tip_change_since(&before)?
        } else {
            change
        };
        self.sync_before = None;
        if !change.connected.is_empty() || !change.disconnected.is_empty() {
            self.apply_change(&change, Some(before.hash()));
        }
        Ok(BatchOutcome {
            submitted: n,
            height: after.height,
            tip: after.hash(),
            connected: batch_connected,
            failure: failure.map(|(i, e)| {
                let fault = e.is_peer_fault();
                (i, e.to_string(), fault)
            }),
        })
    }

    /// The change from `old` (a former tip) to the current tip, read back from the store.
    fn tip_change_since(&self, old: &BlockMeta) -> Result<TipChange, NodeError> {
        apply::tip_change_since(self.chain.store(), old)
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let total = self.miner.total_hashes();
        if let Some(at) = self.meter.last_at {
            let dt = now.duration_since(at).as_millis().max(1) as u64;
            self.meter.rate = (total - self.meter.last_total).saturating_mul(1000) / dt;
        }
        self.meter.last_at = Some(now);
        self.meter.last_total = total;
        self.meter.history.push_back(self.meter.rate);
        while self.meter.history.len() > HASHRATE_HISTORY {
            self.meter.history.pop_front();
        }
        if self.template_dirty || self.miner.threads() > 0 {
            // Mempool changes, and a fresh timestamp now and then.
            self.rebuild_template();
        }
        self.publish();
    }

    /// Build a block template paying the mining address and hand it to the miner.
    fn rebuild_template(&mut self) {
        self.template_dirty = false;
        self.last_template = Instant::now();
        let (Some(address), true) = (self.address, self.miner.threads() > 0) else {
            self.miner.set_job(None);
            return;
        };
        let t = match self.template(address) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("cannot build a block template: {e}");
                return;
            }
        };
        self.job_seq += 1;
        self.miner
            .set_job(Some(Job::new(self.job_seq, t.block, t.target)));
    }

    /// The next block on the tip paying `address`, nonce 0.
    fn template(&mut self, address: Address) -> Result<Template, NodeError> {
        let pool = self.mempool.read().map_err(|_| NodeError::Stopped)?;
        apply::block_template(&mut self.chain, &pool, self.params, address, unix_now())
    }

    fn publish(&mut self) {
        // Sync batches not yet durable are not shown: the last snapshot stands until then.
        if self.sync_before.is_some() {
            return;
        }
        let Ok(reader) = self.chain.store().read() else {
            return;
        };
        let Ok(tip) = reader.tip() else { return };
        let recent = match &self.recent {
            Some((t, r)) if *t == tip.hash() => r.clone(),
            _ => {
                let mut recent = Vec::new();
                let mut h = tip.height;
                while recent.len() <= estimate::WINDOW {
                    match reader
                        .hash_at(h)
                        .ok()
                        .flatten()
                        .and_then(|x| reader.meta(&x).ok().flatten())
                    {
                        Some(m) => {
                            let mut b = BlockSummary::from(&m);
                            b.seen_ms = reader.seen_ms(&b.hash).ok().flatten();
                            recent.push(b);
                        }
                        None => break,
                    }
                    if h == 0 {
                        break;
                    }
                    h -= 1;
                }
                self.recent = Some((tip.hash(), recent.clone()));
                recent
            }
        };
        let (count, bytes, range, top) = self
            .mempool
            .read()
            .map(|p| {
                let top = p
                    .by_fee_rate()
                    .take(20)
                    .map(|e| MempoolTx {
                        txid: e.txid,
                        fee: e.fee,
                        size: e.size,
                        fee_rate: e.rate,
                    })
                    .collect();
                (p.len(), p.bytes(), p.fee_rate_range(), top)
            })
            .unwrap_or_default();
        let target = tip.header.bits.to_target().unwrap_or(self.params.pow_limit);
        let window: Vec<estimate::WindowBlock> = recent
            .iter()
            .map(|b| estimate::WindowBlock {
                height: b.height,
                time: b.time,
                bits: b.bits,
                seen_ms: b.seen_ms,
            })
            .collect();
        let rates = estimate::estimate(&window, unix_now_ms());
        // The next block's target changes only with the tip: worked out once per tip, not on
        // every publish (each transaction and block publishes).
        let next_bits = match self.next_bits {
            Some((t, bits)) if t == tip.hash() => Some(bits),
            _ => {
                let bits = self
                    .chain
                    .next_block_context()
                    .ok()
                    .map(|(_, ctx, _)| ctx.required_bits.0);
                self.next_bits = bits.map(|b| (tip.hash(), b));
                bits
            }
        };
        let snap = Snapshot {
            network: self.params.network,
            height: tip.height,
            tip: tip.hash(),
            tip_time: tip.header.time,
            bits: tip.header.bits.0,
            difficulty: target.difficulty(&self.params.pow_limit),
            chainwork: tip.chainwork,
            recent,
            rates,
            next_bits,
            mempool_count: count,
            mempool_bytes: bytes,
            mempool_fee_range: range,
            mempool_top: top,
            mining_threads: self.miner.threads(),
            mining_kernel: self.miner.kernel_name().into(),
            mining_address: self.address,
            hashrate: self.meter.rate,
            hashrate_history: self.meter.history.iter().copied().collect(),
            orphans: self.chain.orphan_count(),
            blocks_connected: self.blocks_connected,
            blocks_rejected: self.blocks_rejected,
            txs_accepted: self.txs_accepted,
        };
        self.snapshot.send_replace(snap);
    }
}
