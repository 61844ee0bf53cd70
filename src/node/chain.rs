//! The chain state machine: validates blocks, stores them, follows the most-work chain (reorganising
//! to any depth with undo data, atomically), keeps a bounded orphan pool and remembers invalid
//! blocks. It is synchronous; the node runs it on its own thread.

use crate::core::block::Block;
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::Params;
use crate::core::pow::{PowSample, Target, next_target};
use crate::core::rules::{
    self, BlockError, BlockUndo, HeaderContext, SigVerifier, check_block_sanity,
    check_header_context, connect_block_txs,
};
use crate::storage::{Batch, BlockMeta, BlockStatus, ChainRead, Store, StoreError};
use std::collections::{HashMap, HashSet, VecDeque};

/// Unix seconds now, as the chain's timestamp rule reads them.
pub type Clock = std::sync::Arc<dyn Fn() -> u64 + Send + Sync>;

/// Blocks per write transaction in [`Chain::process_batch`].
pub const BATCH_RUN: usize = 500;
/// Orphans kept at most (blocks whose parent is unknown).
const MAX_ORPHANS: usize = 256;
/// Invalid block hashes remembered in memory.
const MAX_INVALID: usize = 10_000;
/// Ancestors the difficulty rule and the median-time rule look at.
const MTP_SPAN: usize = 11;
/// Block facts kept in memory for ancestor walks (a walk needs the difficulty window and the
/// median-time span; anything else is read back from the store). Once full the map starts
/// again, empty and small, so it never holds more than this many entries nor the room for them.
const MAX_SAMPLES: usize = 4_096;

/// Why a block was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("invalid block {hash}: {error}")]
    Invalid {
        hash: BlockHash,
        error: Box<BlockError>,
    },
    #[error("block {0} is known to be invalid")]
    KnownInvalid(BlockHash),
    #[error("block {0} does not connect to any known block")]
    Disconnected(BlockHash),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProcessError {
    /// Whether the block itself is at fault (invalid, or known to be), so that whoever sent it
    /// misbehaved; an unknown parent or a storage failure is nobody's fault.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            ProcessError::Invalid { .. } | ProcessError::KnownInvalid(_)
        )
    }
}

/// What happened to a block that was not rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Already stored.
    Duplicate,
    /// Parent unknown: kept in the orphan pool until it arrives.
    Orphan,
    /// Stored on a side branch with less work than the tip.
    SideBranch,
    /// The active chain changed.
    TipChanged(TipChange),
}

/// How the active chain changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TipChange {
    /// Blocks removed from the active chain, tip first.
    pub disconnected: Vec<Block>,
    /// Blocks added, oldest first.
    pub connected: Vec<(Block, u64)>,
}

impl TipChange {
    /// Fold a later change into this one.
    pub fn merge(&mut self, other: TipChange) {
        // Blocks disconnected later that were connected earlier cancel out.
        for b in other.disconnected {
            let h = b.hash();
            if let Some(pos) = self.connected.iter().position(|(c, _)| c.hash() == h) {
                self.connected.remove(pos);
            } else {
                self.disconnected.push(b);
            }
        }
        self.connected.extend(other.connected);
    }
}

/// Durability of commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is on disk before it is reported (normal operation).
    Immediate,
    /// Commits become durable with the next immediate one (bulk import and initial sync).
    Batched,
}

/// The chain state.
pub struct Chain {
    store: Store,
    params: &'static Params,
    verifier: Box<dyn SigVerifier + Send>,
    orphans: HashMap<BlockHash, Block>,
    orphan_order: VecDeque<BlockHash>,
    invalid: HashSet<BlockHash>,
    /// (hash → (height, time, target)): immutable facts of blocks, for ancestor walks.
    samples: HashMap<BlockHash, (PowSample, BlockHash)>,
    /// Time source (seconds since the epoch); replaceable for tests.
    clock: Clock,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Chain {
    pub fn new(store: Store, verifier: Box<dyn SigVerifier + Send>) -> Chain {
        let params = store.params();
        Chain {
            store,
            params,
            verifier,
            orphans: HashMap::new(),
            orphan_order: VecDeque::new(),
            invalid: HashSet::new(),
            samples: HashMap::new(),
            clock: std::sync::Arc::new(unix_now),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
    pub fn params(&self) -> &'static Params {
        self.params
    }
    /// Replace the clock (tests of timestamp rules, the simulator's virtual time).
    pub fn set_clock(&mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) {
        self.clock = std::sync::Arc::new(clock);
    }
    pub fn tip(&self) -> Result<BlockMeta, StoreError> {
        self.store.read()?.tip()
    }
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// At start: if a stored branch has more work than the recorded tip (the node stopped
    /// before it could switch), switch now.
    pub fn recover(&mut self) -> Result<(), ProcessError> {
        match self.activate_best(true) {
            Ok(_) | Err(ProcessError::Invalid { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Drop every orphan (after a failed import).
    pub fn forget_orphans(&mut self) {
        self.orphans.clear();
        self.orphan_order.clear();
    }

    /// Process one block from anywhere (miner, peer, import, API) in its own transaction.
    pub fn process_block(
        &mut self,
        block: Block,
        durability: Durability,
    ) -> Result<Accepted, ProcessError> {
        let durable = durability == Durability::Immediate;
        let hash = block.hash();
        let first = self.process_one(block, durable)?;
        // Orphans waiting for this block (and for their own children, in turn).
        let mut change = match first {
            Accepted::TipChanged(c) => Some(c),
            Accepted::SideBranch => None,
            other => return Ok(other),
        };
        let mut ready = vec![hash];
        while let Some(parent) = ready.pop() {
            // In hash order: of two siblings with equal work, the same one wins every run.
            let mut children: Vec<BlockHash> = self
                .orphans
                .iter()
                .filter(|(_, b)| b.header.prev == parent)
                .map(|(h, _)| *h)
                .collect();
            children.sort_unstable();
            for child in children {
                let Some(b) = self.orphans.remove(&child) else {
                    continue;
                };
                self.orphan_order.retain(|h| *h != child);
                match self.process_one(b, durable) {
                    Ok(Accepted::TipChanged(c)) => {
                        ready.push(child);
                        match &mut change {
                            Some(acc) => acc.merge(c),
                            None => change = Some(c),
                        }
                    }
                    Ok(Accepted::SideBranch) => ready.push(child),
                    // An invalid orphan is dropped; the block that was asked about still stands.
                    Ok(_)
                    | Err(ProcessError::Invalid { .. })
                    | Err(ProcessError::KnownInvalid(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(match change {
            Some(c) => Accepted::TipChanged(c),
            None => Accepted::SideBranch,
        })
    }

    /// Reject `hash`, remembering it as invalid when the failure is bound to its header.
    fn invalid(&mut self, hash: BlockHash, error: BlockError) -> ProcessError {
        if error.condemns_hash() {
            if self.invalid.len() >= MAX_INVALID {
                self.invalid.clear();
            }
            self.invalid.insert(hash);
        }
        ProcessError::Invalid {
            hash,
            error: Box::new(error),
        }
    }

    fn process_one(&mut self, block: Block, durable: bool) -> Result<Accepted, ProcessError> {
        let hash = block.hash();
        if self.invalid.contains(&hash) {
            return Err(ProcessError::KnownInvalid(hash));
        }
        // Cheap answers from a snapshot, without a (durable, hence costly) write transaction.
        {
            let reader = self.store.read()?;
            if let Some(m) = reader.meta(&hash)? {
                return match m.status {
                    BlockStatus::Invalid => Err(ProcessError::KnownInvalid(hash)),
                    _ => Ok(Accepted::Duplicate),
                };
            }
            if !self.invalid.contains(&block.header.prev)
                && reader.meta(&block.header.prev)?.is_none()
            {
                let size = block.encode().len();
                check_block_sanity(&block, size, self.params).map_err(|e| self.invalid(hash, e))?;
                self.add_orphan(hash, block);
                return Ok(Accepted::Orphan);
            }
        }
        let store = self.store.clone();
        let step = store.write(durable, |b| self.accept_in(b, block));
        self.settle(step, durable)
    }

    /// Turn the outcome of [`Chain::accept_in`] into the caller's answer, switching branches
    /// when a stored block made another branch the heaviest.
    fn settle(
        &mut self,
        step: Result<Step, ChainWriteError>,
        durable: bool,
    ) -> Result<Accepted, ProcessError> {
        match step {
            Ok(Step::Done(a)) => Ok(a),
            Ok(Step::Activate) => self.activate_best(durable),
            Err(ChainWriteError::Invalid(h, e)) => Err(self.invalid(h, *e)),
            Err(ChainWriteError::KnownInvalid(h)) => Err(ProcessError::KnownInvalid(h)),
            Err(ChainWriteError::Disconnected(h)) => Err(ProcessError::Disconnected(h)),
            Err(ChainWriteError::Store(e)) => Err(e.into()),
        }
    }

    /// Validate `block` and write it inside the transaction `b`: connect it when it extends the
    /// tip, store it when it is on a side branch. Reads go through `b`, so earlier blocks of the
    /// same transaction are seen.
    fn accept_in(&mut self, b: &mut Batch<'_>, block: Block) -> Result<Step, ChainWriteError> {
        let hash = block.hash();
        let invalid = |e: BlockError| ChainWriteError::Invalid(hash, Box::new(e));
        if self.invalid.contains(&hash) {
            return Err(ChainWriteError::KnownInvalid(hash));
        }
        if let Some(m) = b.meta(&hash)? {
            return match m.status {
                BlockStatus::Invalid => Err(ChainWriteError::KnownInvalid(hash)),
                _ => Ok(Step::Done(Accepted::Duplicate)),
            };
        }
        let size = block.encode().len();
        let txids = check_block_sanity(&block, size, self.params).map_err(invalid)?;
        // A child of a block known to be invalid is refused, not kept waiting as an orphan.
        if self.invalid.contains(&block.header.prev) {
            return Err(invalid(BlockError::InvalidAncestor));
        }
        let Some(parent) = b.meta(&block.header.prev)? else {
            return Err(ChainWriteError::Disconnected(hash));
        };
        if parent.status == BlockStatus::Invalid {
            return Err(invalid(BlockError::InvalidAncestor));
        }
        let height = parent.height + 1;
        let ctx = self.header_context(&*b, &parent, height)?;
        check_header_context(&block, &ctx, self.params).map_err(invalid)?;
        let target = block
            .header
            .bits
            .to_target()
            .map_err(|e| invalid(e.into()))?;
        let meta = BlockMeta {
            header: block.header,
            height,
            chainwork: parent.chainwork.saturating_add(target.work()),
            status: BlockStatus::Stored,
            size: size as u32,
            tx_count: block.txs.len() as u32,
        };
        let tip = b.tip()?;
        self.remember(&meta);
        if block.header.prev == tip.hash() {
            // The common case: extend the tip.
            let undo = connect_block_txs(&block, &txids, height, &*b, self.params, &*self.verifier)
                .map_err(invalid)?;
            b.put_block(&block, &meta)?;
            b.connect(&block, &txids, &undo, &meta)?;
            return Ok(Step::Done(Accepted::TipChanged(TipChange {
                disconnected: vec![],
                connected: vec![(block, height)],
            })));
        }
        // A side branch: stored, and switched to (after this transaction) if it is heavier.
        b.put_block(&block, &meta)?;
        Ok(if meta.chainwork > tip.chainwork {
            Step::Activate
        } else {
            Step::Done(Accepted::SideBranch)
        })
    }

    /// Process a sequence of blocks (bulk import, initial sync) with up to [`BATCH_RUN`] blocks
    /// per write transaction, none of them durable until the caller flushes the store. Stops at
    /// the first block that fails, returning its position; what came before stays committed
    /// (the caller restores a checkpoint if it wants all or nothing).
    pub fn process_batch(
        &mut self,
        blocks: Vec<Block>,
    ) -> Result<TipChange, (usize, ProcessError)> {
        let mut total = TipChange::default();
        let mut blocks = blocks.into_iter().enumerate().peekable();
        while blocks.peek().is_some() {
            let store = self.store.clone();
            let mut last = 0;
            let mut change = TipChange::default();
            let step = store.write(false, |b| {
                for _ in 0..BATCH_RUN {
                    let Some((i, block)) = blocks.next() else {
                        break;
                    };
                    last = i;
                    match self.accept_in(b, block)? {
                        Step::Done(Accepted::TipChanged(c)) => change.merge(c),
                        Step::Done(_) => {}
                        // A branch switch happens in its own transaction, after this one.
                        Step::Activate => return Ok(Step::Activate),
                    }
                }
                Ok(Step::Done(Accepted::SideBranch))
            });
            let switched = match self.settle(step, false) {
                Ok(Accepted::TipChanged(c)) => Some(c),
                Ok(_) => None,
                Err(e) => return Err((last, e)),
            };
            total.merge(change);
            if let Some(c) = switched {
                total.merge(c);
            }
        }
        Ok(total)
    }

    fn add_orphan(&mut self, hash: BlockHash, block: Block) {
        if self.orphans.contains_key(&hash) {
            return;
        }
        while self.orphans.len() >= MAX_ORPHANS {
            match self.orphan_order.pop_front() {
                Some(old) => {
                    self.orphans.remove(&old);
                }
                None => break,
            }
        }
        self.orphans.insert(hash, block);
        self.orphan_order.push_back(hash);
    }

    fn remember(&mut self, meta: &BlockMeta) {
        if self.samples.len() >= MAX_SAMPLES {
            self.samples = HashMap::new();
        }
        if let Ok(target) = meta.header.bits.to_target() {
            self.samples.insert(
                meta.hash(),
                (
                    PowSample {
                        height: meta.height,
                        time: meta.header.time,
                        target,
                    },
                    meta.header.prev,
                ),
            );
        }
    }

    /// Up to `n` ancestors ending at `from` (inclusive), oldest first.
    fn ancestors(
        &mut self,
        reader: &dyn ChainRead,
        from: &BlockMeta,
        n: usize,
    ) -> Result<Vec<PowSample>, StoreError> {
        let mut out = Vec::with_capacity(n);
        let mut hash = from.hash();
        self.remember(from);
        while out.len() < n {
            let (sample, prev) = match self.samples.get(&hash) {
                Some(s) => *s,
                None => {
                    let Some(m) = reader.meta(&hash)? else { break };
                    self.remember(&m);
                    match self.samples.get(&hash) {
                        Some(s) => *s,
                        None => break,
                    }
                }
            };
            out.push(sample);
            if sample.height == 0 {
                break;
            }
            hash = prev;
        }
        out.reverse();
        Ok(out)
    }

    /// What a child of `parent` at `height` must satisfy.
    fn header_context(
        &mut self,
        reader: &dyn ChainRead,
        parent: &BlockMeta,
        height: u64,
    ) -> Result<HeaderContext, StoreError> {
        let window = match self.params.difficulty {
            crate::core::pow::DifficultyRule::Lwma { window } => window as usize + 1,
            crate::core::pow::DifficultyRule::Fixed => 0,
        };
        let history = self.ancestors(reader, parent, window.max(MTP_SPAN))?;
        let times: Vec<u64> = history
            .iter()
            .rev()
            .take(MTP_SPAN)
            .map(|s| s.time)
            .collect();
        let tail = &history[history.len().saturating_sub(window)..];
        let target = next_target(
            self.params.difficulty,
            tail,
            height,
            self.params.block_spacing,
            self.params.initial_target,
            self.params.pow_limit,
        );
        Ok(HeaderContext {
            height,
            required_bits: target.to_compact(),
            median_time_past: rules::median_time(&times),
            now: (self.clock)(),
        })
    }

    /// Target and minimum timestamp for a new block on the current tip (for the miner).
    pub fn next_block_context(&mut self) -> Result<(BlockMeta, HeaderContext, Target), StoreError> {
        let reader = self.store.read()?;
        let tip = reader.tip()?;
        let ctx = self.header_context(&reader, &tip, tip.height + 1)?;
        let target = ctx
            .required_bits
            .to_target()
            .unwrap_or(self.params.pow_limit);
        Ok((tip, ctx, target))
    }

    /// Move the active chain to the valid stored leaf with the most work, in one transaction.
    /// A block on the way that fails validation is marked invalid and the next best is tried.
    fn activate_best(&mut self, durable: bool) -> Result<Accepted, ProcessError> {
        let mut last_error = None;
        for _attempt in 0..16 {
            let reader = self.store.read()?;
            let tip = reader.tip()?;
            let mut best: Option<BlockMeta> = None;
            for leaf in reader.leaves()? {
                if self.invalid.contains(&leaf) {
                    continue;
                }
                if let Some(m) = reader.meta(&leaf)?
                    && m.status != BlockStatus::Invalid
                    && m.chainwork > tip.chainwork
                    && best.is_none_or(|b| m.chainwork > b.chainwork)
                {
                    best = Some(m);
                }
            }
            drop(reader);
            let Some(best) = best else { break };
            match self.reorg_to(&best, durable) {
                Ok(change) => return Ok(Accepted::TipChanged(change)),
                Err(ChainWriteError::Invalid(bad, e)) => {
                    if e.condemns_hash() {
                        self.mark_invalid(bad)?;
                    }
                    // The leaf descends from (or is) the bad block: never a candidate again.
                    self.mark_invalid(best.hash())?;
                    last_error = Some((bad, e));
                }
                Err(ChainWriteError::Store(e)) => return Err(e.into()),
                // Not produced by a branch switch; answered like any other failure.
                Err(e @ (ChainWriteError::KnownInvalid(_) | ChainWriteError::Disconnected(_))) => {
                    self.mark_invalid(best.hash())?;
                    return self.settle(Err(e), durable);
                }
            }
        }
        match last_error {
            Some((hash, error)) => Err(ProcessError::Invalid { hash, error }),
            None => Ok(Accepted::SideBranch),
        }
    }

    /// Mark `hash` invalid in the index (its descendants follow by ancestry).
    fn mark_invalid(&mut self, hash: BlockHash) -> Result<(), StoreError> {
        self.invalid.insert(hash);
        self.store.write(true, |b| {
            if let Some(mut m) = b.meta(&hash)? {
                m.status = BlockStatus::Invalid;
                b.put_meta(&hash, &m)?;
            }
            Ok::<_, StoreError>(())
        })
    }

    /// Disconnect to the fork point with `target`'s branch and connect that branch, all in one
    /// write transaction (aborted, changing nothing, if any block fails).
    fn reorg_to(
        &mut self,
        target: &BlockMeta,
        durable: bool,
    ) -> Result<TipChange, ChainWriteError> {
        // Walk back from the target until a block of the active chain.
        let reader = self.store.read()?;
        let mut branch = Vec::new();
        let mut cursor = *target;
        loop {
            if reader.hash_at(cursor.height)? == Some(cursor.hash()) {
                break;
            }
            if self.invalid.contains(&cursor.hash()) || cursor.status == BlockStatus::Invalid {
                return Err(ChainWriteError::Invalid(
                    cursor.hash(),
                    Box::new(BlockError::InvalidAncestor),
                ));
            }
            branch.push(cursor);
            cursor = reader.meta(&cursor.header.prev)?.ok_or_else(|| {
                StoreError::Corrupt(format!("missing parent of {}", cursor.hash()))
            })?;
        }
        let fork = cursor;
        drop(reader);
        branch.reverse();
        let mut ctx_for: Vec<HeaderContext> = Vec::with_capacity(branch.len());
        {
            let reader = self.store.read()?;
            let mut parent = fork;
            for m in &branch {
                ctx_for.push(self.header_context(&reader, &parent, m.height)?);
                parent = *m;
            }
        }
        let params = self.params;
        let verifier = &*self.verifier;
        self.store.write(durable, |b: &mut Batch<'_>| {
            let mut change = TipChange::default();
            let mut tip = b.tip()?;
            while tip.hash() != fork.hash() {
                let block = load_block(b, &tip.hash())?;
                let txids = block.txids();
                b.disconnect(&block, &txids, &tip)?;
                let prev = tip.header.prev;
                change.disconnected.push(block);
                tip = b
                    .meta(&prev)?
                    .ok_or_else(|| StoreError::Corrupt(format!("missing block {prev}")))?;
            }
            for (m, ctx) in branch.iter().zip(&ctx_for) {
                let hash = m.hash();
                let block = load_block(b, &hash)?;
                let size = block.encode().len();
                let txids = check_block_sanity(&block, size, params)
                    .map_err(|e| ChainWriteError::Invalid(hash, Box::new(e)))?;
                check_header_context(&block, ctx, params)
                    .map_err(|e| ChainWriteError::Invalid(hash, Box::new(e)))?;
                let undo: BlockUndo =
                    connect_block_txs(&block, &txids, m.height, &*b, params, verifier)
                        .map_err(|e| ChainWriteError::Invalid(hash, Box::new(e)))?;
                b.connect(&block, &txids, &undo, m)?;
                change.connected.push((block, m.height));
            }
            Ok(change)
        })
    }
}

/// What accepting a block inside a transaction led to.
enum Step {
    Done(Accepted),
    /// A side branch became the heaviest: switch to it after the transaction.
    Activate,
}

/// Errors inside a chain write transaction.
#[derive(Debug)]
enum ChainWriteError {
    Invalid(BlockHash, Box<BlockError>),
    KnownInvalid(BlockHash),
    Disconnected(BlockHash),
    Store(StoreError),
}

impl From<StoreError> for ChainWriteError {
    fn from(e: StoreError) -> Self {
        ChainWriteError::Store(e)
    }
}

fn load_block(b: &Batch<'_>, hash: &BlockHash) -> Result<Block, StoreError> {
    b.block(hash)?
        .ok_or_else(|| StoreError::Corrupt(format!("block data of {hash} is missing")))
}

/// Txids of transactions confirmed by `change` (used to clean the mempool).
pub fn confirmed_txids(change: &TipChange) -> HashSet<Txid> {
    change
        .connected
        .iter()
        .flat_map(|(b, _)| b.txs.iter().map(|t| t.txid()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::params::Network;
    use crate::node::verify::ParallelVerifier;
    use crate::storage::BlockStatus;

    /// The map of block facts grew with the chain up to 50,000 entries (about 7 MB with its
    /// table, kept after a clear); it now stays within [`MAX_SAMPLES`] entries and room.
    #[test]
    fn block_facts_in_memory_stay_bounded_as_the_chain_grows() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("chain.redb"), Network::Regtest).expect("open");
        let params = store.params();
        let mut chain = Chain::new(store, Box::new(ParallelVerifier::new(1)));
        let mut header = params.genesis.header;
        for height in 1..=60_000u64 {
            header.prev = header.hash();
            header.time += 1;
            chain.remember(&BlockMeta {
                header,
                height,
                chainwork: Default::default(),
                status: BlockStatus::Valid,
                size: 0,
                tx_count: 1,
            });
            assert!(
                chain.samples.len() <= MAX_SAMPLES,
                "{} block facts in memory at height {height}",
                chain.samples.len()
            );
        }
        assert!(
            chain.samples.capacity() <= 2 * MAX_SAMPLES,
            "room for {} block facts kept",
            chain.samples.capacity()
        );
    }
}
