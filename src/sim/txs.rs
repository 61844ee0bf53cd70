//! Transactions in the simulator. They are not relayed message by message (at a thousand
//! nodes that would be most of the run's work, and it is not what is measured): a transaction
//! is made at a random node and reaches each other node's mempool after a delay drawn from an
//! exponential distribution (mean [`TxWorld::new`]'s `mean_delay`), the same delay in every
//! run with the same seed. Blocks carry real (synthetic, unchecked) transactions, so compact
//! blocks are built, keyed and rebuilt by the same code a live node runs, and what a node
//! lacks when a block arrives is exactly what had not reached it yet.
//!
//! Each simulated transaction stands for several real ones (the block's size over its count
//! of simulated transactions); [`super::wire_size`] counts short ids per real transaction.

use super::chain::LightChain;
use crate::core::block::Block;
use crate::core::hash::{BlockHash, Txid};
use crate::core::tx::Transaction;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// A transaction included more than this long ago leaves the pool (µs): every node has long
/// had its block or will fetch it whole.
const KEEP_INCLUDED_US: u64 = 3_600_000_000;

struct SimTx {
    tx: Transaction,
    txid: Txid,
    created: u64,
    origin: usize,
    /// Blocks that include it.
    blocks: Vec<BlockHash>,
    first_included: Option<u64>,
}

#[derive(Default)]
struct Inner {
    /// By serial (oldest first).
    pool: BTreeMap<u64, SimTx>,
    by_txid: HashMap<Txid, u64>,
}

/// Every transaction of the run and when each node's mempool has it.
pub struct TxWorld {
    seed: u64,
    mean_delay_us: u64,
    /// The simulation's clock (µs), read by the nodes' chain views.
    now: AtomicU64,
    inner: RwLock<Inner>,
}

/// SplitMix64: a fast, well-mixed hash of one word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl TxWorld {
    pub fn new(seed: u64, mean_delay: std::time::Duration) -> TxWorld {
        TxWorld {
            seed,
            mean_delay_us: u64::try_from(mean_delay.as_micros()).unwrap_or(u64::MAX),
            now: AtomicU64::new(0),
            inner: RwLock::default(),
        }
    }

    pub fn set_now(&self, now: u64) {
        self.now.store(now, Ordering::Relaxed);
    }

    pub fn now(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    /// When transaction `serial` (made at `origin` at `created`) reaches `node`'s mempool.
    fn arrival(&self, serial: u64, created: u64, origin: usize, node: usize) -> u64 {
        if node == origin {
            return created;
        }
        let h = mix(self.seed ^ mix(serial ^ mix(node as u64)));
        // Uniform in (0, 1], then exponential.
        let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        created + (-u.ln() * self.mean_delay_us as f64) as u64
    }

    /// Make transaction `serial` at `origin`, now.
    pub fn make(&self, serial: u64, origin: usize) {
        let tx = Transaction {
            version: 1,
            inputs: Vec::new(),
            outputs: Vec::new(),
            lock_height: serial,
            memo: b"sim".to_vec(),
        };
        let txid = tx.txid();
        let created = self.now();
        if let Ok(mut i) = self.inner.write() {
            i.by_txid.insert(txid, serial);
            i.pool.insert(
                serial,
                SimTx {
                    tx,
                    txid,
                    created,
                    origin,
                    blocks: Vec::new(),
                    first_included: None,
                },
            );
        }
    }

    fn in_mempool(&self, serial: u64, t: &SimTx, node: usize, chain: &LightChain) -> bool {
        self.arrival(serial, t.created, t.origin, node) <= self.now()
            && !t.blocks.iter().any(|b| chain.has(b))
    }

    /// `node`'s mempool now: what has reached it and is in no block it has.
    pub fn mempool(&self, node: usize, chain: &LightChain) -> Vec<Txid> {
        let Ok(i) = self.inner.read() else {
            return Vec::new();
        };
        i.pool
            .iter()
            .filter(|(s, t)| self.in_mempool(**s, t, node, chain))
            .map(|(_, t)| t.txid)
            .collect()
    }

    pub fn get(&self, txid: &Txid) -> Option<Transaction> {
        let i = self.inner.read().ok()?;
        let s = i.by_txid.get(txid)?;
        i.pool.get(s).map(|t| t.tx.clone())
    }

    /// The oldest `max` transactions of `node`'s mempool, for a block it mines.
    pub fn for_block(&self, node: usize, chain: &LightChain, max: usize) -> Vec<Transaction> {
        let Ok(i) = self.inner.read() else {
            return Vec::new();
        };
        i.pool
            .iter()
            .filter(|(s, t)| self.in_mempool(**s, t, node, chain))
            .take(max)
            .map(|(_, t)| t.tx.clone())
            .collect()
    }

    /// `block` was mined; forget what was included long ago.
    pub fn included(&self, block: &Block) {
        let now = self.now();
        let hash = block.hash();
        let Ok(mut i) = self.inner.write() else {
            return;
        };
        for tx in block.txs.iter().skip(1) {
            let Some(s) = i.by_txid.get(&tx.txid()).copied() else {
                continue;
            };
            if let Some(t) = i.pool.get_mut(&s) {
                t.blocks.push(hash);
                t.first_included.get_or_insert(now);
            }
        }
        let old: Vec<(u64, Txid)> = i
            .pool
            .iter()
            .filter(|(_, t)| {
                t.first_included
                    .is_some_and(|f| now.saturating_sub(f) > KEEP_INCLUDED_US)
            })
            .map(|(s, t)| (*s, t.txid))
            .collect();
        for (s, txid) in old {
            i.pool.remove(&s);
            i.by_txid.remove(&txid);
        }
    }

    /// Of `block`'s transactions (the coinbase aside), how many had not reached `node`'s
    /// mempool by now, and how many there are: the share it verifies afresh (the rest had
    /// their signatures checked on the way into its mempool).
    pub fn unseen(&self, block: &Block, node: usize) -> (usize, usize) {
        let total = block.txs.len().saturating_sub(1);
        let Ok(i) = self.inner.read() else {
            return (total, total);
        };
        let now = self.now();
        let unseen = block
            .txs
            .iter()
            .skip(1)
            .filter(|tx| {
                i.by_txid
                    .get(&tx.txid())
                    .and_then(|s| i.pool.get(s).map(|t| (*s, t)))
                    .is_none_or(|(s, t)| self.arrival(s, t.created, t.origin, node) > now)
            })
            .count();
        (unseen, total)
    }
}
