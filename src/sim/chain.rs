//! The chain behind a simulated node: one block store shared by every node (content
//! addressed: a block is kept once, however many nodes have it) and, per node, the set of
//! blocks it has and its active chain. Blocks connect by their parent and the most work
//! wins, as on a real node; transactions are not checked (the simulated blocks carry
//! synthetic ones, or none, and stand for blocks of the configured size on the network). A
//! node's mempool is drawn from the run's [`TxWorld`].

use super::txs::TxWorld;
use crate::core::block::{Block, BlockHeader};
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::Params;
use crate::core::pow::{CompactTarget, Work};
use crate::core::tx::Transaction;
use crate::node::p2p::state::ChainView;
use crate::storage::{BlockMeta, BlockStatus};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// A block as the store keeps it.
pub struct Stored {
    pub block: Arc<Block>,
    pub height: u64,
    pub chainwork: Work,
    /// Its size on the network, in bytes.
    pub size: u64,
}

/// Every block any node has mined.
#[derive(Default)]
pub struct Store {
    blocks: RwLock<HashMap<BlockHash, Stored>>,
}

impl Store {
    /// A store with `params`' genesis block.
    pub fn new(params: &Params) -> Store {
        let s = Store::default();
        let work = params
            .genesis
            .header
            .bits
            .to_target()
            .map_or(Work::ZERO, |t| t.work());
        if let Ok(mut b) = s.blocks.write() {
            b.insert(
                params.genesis_hash,
                Stored {
                    block: Arc::new(params.genesis.clone()),
                    height: 0,
                    chainwork: work,
                    size: 0,
                },
            );
        }
        s
    }

    /// Keep a newly mined `block` of `size` bytes on its (stored) parent; its height and work.
    pub fn add(&self, block: Block, size: u64) -> Option<(u64, Work)> {
        let mut blocks = self.blocks.write().ok()?;
        let parent = blocks.get(&block.header.prev)?;
        let work = block.header.bits.to_target().ok()?.work();
        let (height, chainwork) = (parent.height + 1, parent.chainwork.saturating_add(work));
        blocks.insert(
            block.hash(),
            Stored {
                block: Arc::new(block),
                height,
                chainwork,
                size,
            },
        );
        Some((height, chainwork))
    }

    /// `f` of the stored block `hash`.
    pub fn with<T>(&self, hash: &BlockHash, f: impl FnOnce(&Stored) -> T) -> Option<T> {
        self.blocks.read().ok()?.get(hash).map(f)
    }

    pub fn header(&self, hash: &BlockHash) -> Option<BlockHeader> {
        self.with(hash, |s| s.block.header)
    }

    pub fn block(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        self.with(hash, |s| s.block.clone())
    }

    /// Height and cumulative work.
    pub fn place(&self, hash: &BlockHash) -> Option<(u64, Work)> {
        self.with(hash, |s| (s.height, s.chainwork))
    }

    pub fn size(&self, hash: &BlockHash) -> u64 {
        self.with(hash, |s| s.size).unwrap_or(0)
    }
}

/// What a node's chain holds.
struct Index {
    /// Blocks it has.
    have: HashSet<BlockHash>,
    /// Its active chain by height (genesis first).
    active: Vec<BlockHash>,
    tip_work: Work,
}

/// One node's view of the chain (cheap to clone: the clones share it).
#[derive(Clone)]
pub struct LightChain {
    store: Arc<Store>,
    index: Arc<Mutex<Index>>,
    /// The run's transactions and which node this is (none: an empty mempool).
    txs: Option<(Arc<TxWorld>, usize)>,
}

/// What connecting a block did to a node's chain.
#[derive(Debug, PartialEq, Eq)]
pub enum Connected {
    /// It was there already, or its parent is not (nothing changed).
    Nothing,
    /// Kept, on a branch with less work than the tip.
    Side,
    /// The tip moved: `disconnected` blocks left the active chain, and these joined it
    /// (heights and hashes, lowest first).
    Tip {
        disconnected: usize,
        connected: Vec<(u64, BlockHash)>,
    },
}

impl LightChain {
    /// A chain that has only genesis.
    pub fn new(store: Arc<Store>, genesis: BlockHash) -> LightChain {
        let work = store.place(&genesis).map_or(Work::ZERO, |p| p.1);
        LightChain {
            store,
            index: Arc::new(Mutex::new(Index {
                have: [genesis].into(),
                active: vec![genesis],
                tip_work: work,
            })),
            txs: None,
        }
    }

    /// The same chain, with node `node`'s mempool drawn from `world`.
    pub fn with_txs(mut self, world: Arc<TxWorld>, node: usize) -> LightChain {
        self.txs = Some((world, node));
        self
    }

    pub fn has(&self, hash: &BlockHash) -> bool {
        self.index.lock().is_ok_and(|i| i.have.contains(hash))
    }

    /// Whether `hash` is on this node's active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        let Some((height, _)) = self.store.place(hash) else {
            return false;
        };
        self.index
            .lock()
            .is_ok_and(|i| i.active.get(height as usize) == Some(hash))
    }

    /// Take `hash` (in the store) if its parent is here; the tip moves when its branch has more
    /// work.
    pub fn connect(&self, hash: &BlockHash) -> Connected {
        let Ok(mut i) = self.index.lock() else {
            return Connected::Nothing;
        };
        let Some(header) = self.store.header(hash) else {
            return Connected::Nothing;
        };
        if i.have.contains(hash) || !i.have.contains(&header.prev) {
            return Connected::Nothing;
        }
        i.have.insert(*hash);
        let Some((height, work)) = self.store.place(hash) else {
            return Connected::Nothing;
        };
        if work <= i.tip_work {
            return Connected::Side;
        }
        // Walk back from the new tip to the active chain.
        let mut branch = vec![(height, *hash)];
        let mut at = header.prev;
        let mut h = height - 1;
        while i.active.get(h as usize) != Some(&at) {
            branch.push((h, at));
            match self.store.header(&at) {
                Some(hd) if h > 0 => {
                    at = hd.prev;
                    h -= 1;
                }
                _ => return Connected::Nothing,
            }
        }
        let fork = h as usize + 1;
        let disconnected = i.active.len().saturating_sub(fork);
        i.active.truncate(fork);
        branch.reverse();
        i.active.extend(branch.iter().map(|b| b.1));
        i.tip_work = work;
        Connected::Tip {
            disconnected,
            connected: branch,
        }
    }

    /// Tip height and hash.
    pub fn tip(&self) -> (u64, BlockHash) {
        self.index
            .lock()
            .ok()
            .and_then(|i| {
                let h = i.active.len().checked_sub(1)?;
                Some((h as u64, i.active[h]))
            })
            .unwrap_or((0, BlockHash::ZERO))
    }

    /// Up to `max` headers after the first locator hash on the active chain (genesis if
    /// none), through `stop`.
    pub fn headers_after(
        &self,
        locator: &[BlockHash],
        stop: &BlockHash,
        max: usize,
    ) -> Vec<BlockHeader> {
        let Ok(i) = self.index.lock() else {
            return Vec::new();
        };
        let start = locator
            .iter()
            .find_map(|l| {
                let (h, _) = self.store.place(l)?;
                (i.active.get(h as usize) == Some(l)).then_some(h as usize)
            })
            .unwrap_or(0);
        let mut out = Vec::new();
        for hash in i.active.iter().skip(start + 1).take(max) {
            if let Some(hd) = self.store.header(hash) {
                out.push(hd);
            }
            if hash == stop {
                break;
            }
        }
        out
    }
}

impl ChainView for LightChain {
    fn tip(&self) -> (u64, BlockHash, Work) {
        let (h, hash) = LightChain::tip(self);
        let work = self.index.lock().map_or(Work::ZERO, |i| i.tip_work);
        (h, hash, work)
    }

    fn block_meta(&self, hash: &BlockHash) -> Option<BlockMeta> {
        if !self.has(hash) {
            return None;
        }
        self.store.with(hash, |s| BlockMeta {
            header: s.block.header,
            height: s.height,
            chainwork: s.chainwork,
            status: BlockStatus::Valid,
            size: u32::try_from(s.size).unwrap_or(u32::MAX),
            tx_count: 1,
        })
    }

    fn has_block(&self, hash: &BlockHash) -> bool {
        self.has(hash)
    }

    fn has_tx(&self, _: &Txid) -> bool {
        true
    }

    fn locator(&self) -> Result<Vec<BlockHash>, String> {
        let i = self.index.lock().map_err(|_| "poisoned".to_string())?;
        let mut out = Vec::new();
        let mut h = i.active.len().saturating_sub(1);
        let mut step = 1;
        loop {
            out.push(i.active[h]);
            if h == 0 {
                break;
            }
            if out.len() >= 10 {
                step *= 2;
            }
            h = h.saturating_sub(step);
        }
        Ok(out)
    }

    fn mempool_txids(&self) -> Vec<Txid> {
        match &self.txs {
            Some((w, node)) => w.mempool(*node, self),
            None => Vec::new(),
        }
    }

    fn mempool_tx(&self, txid: &Txid) -> Option<Transaction> {
        self.txs.as_ref().and_then(|(w, _)| w.get(txid))
    }

    fn block(&self, hash: &BlockHash) -> Option<Block> {
        if !self.has(hash) {
            return None;
        }
        self.store.block(hash).map(|b| (*b).clone())
    }

    /// Simulated blocks all have genesis' target (the regtest rule is a fixed target).
    fn next_bits(&self, parent: &BlockHash) -> Option<CompactTarget> {
        let i = self.index.lock().ok()?;
        if i.active.last() != Some(parent) {
            return None;
        }
        let genesis = i.active.first().copied()?;
        drop(i);
        self.store.header(&genesis).map(|h| h.bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::MerkleRoot;
    use crate::core::params::Network;

    fn child(store: &Store, prev: BlockHash, tag: u8) -> BlockHash {
        let p = Network::Regtest.params();
        let mut header = BlockHeader {
            version: 1,
            prev,
            merkle_root: MerkleRoot([tag; 32]),
            time: p.genesis.header.time + 1,
            bits: p.genesis.header.bits,
            nonce: 0,
        };
        while !p.pow_limit.is_met_by(&header.hash().0) {
            header.nonce += 1;
        }
        let hash = header.hash();
        store.add(
            Block {
                header,
                txs: Vec::new(),
            },
            1000,
        );
        hash
    }

    #[test]
    fn the_branch_with_more_work_wins_and_a_reorg_says_what_left() {
        let p = Network::Regtest.params();
        let store = Arc::new(Store::new(p));
        let chain = LightChain::new(store.clone(), p.genesis_hash);
        let a1 = child(&store, p.genesis_hash, 1);
        let b1 = child(&store, p.genesis_hash, 2);
        let b2 = child(&store, b1, 3);
        assert!(matches!(
            chain.connect(&a1),
            Connected::Tip {
                disconnected: 0,
                ..
            }
        ));
        // Equal work: the first stays.
        assert_eq!(chain.connect(&b1), Connected::Side);
        assert_eq!(chain.tip(), (1, a1));
        // b1 is here, so its child connects, and that branch has more work.
        assert_eq!(
            chain.connect(&b2),
            Connected::Tip {
                disconnected: 1,
                connected: vec![(1, b1), (2, b2)]
            }
        );
        assert_eq!(chain.tip(), (2, b2));
        assert_eq!(
            chain
                .headers_after(&[p.genesis_hash], &BlockHash::ZERO, 10)
                .iter()
                .map(BlockHeader::hash)
                .collect::<Vec<_>>(),
            vec![b1, b2]
        );
        // An orphan (parent not here) changes nothing.
        let other = LightChain::new(store, p.genesis_hash);
        assert_eq!(other.connect(&b2), Connected::Nothing);
        assert_eq!(other.locator().unwrap(), vec![p.genesis_hash]);
    }
}
