//! The chain behind a fully validating simulated node: the node's own chain state machine
//! ([`Chain`]) and [`Mempool`] over a store in memory ([`Store::in_memory`], redb's in-memory
//! backend), brought up to date after each change by the same steps the node's thread takes
//! ([`crate::node::apply`]). Every block is checked as a live node checks it — proof of work,
//! difficulty, timestamps, Merkle root, every signature, every coin — and every transaction
//! as its mempool checks it; reorganisations undo and redo coins as on disk. The timestamp
//! rule reads the simulation's clock. Each node costs a store and a pool, so a run holds a few
//! hundred of them, not thousands (that is [`super::chain::LightChain`]'s work).

use crate::core::address::Address;
use crate::core::block::{Block, BlockHeader};
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::{Network, Params};
use crate::core::pow::{CompactTarget, Work};
use crate::core::rules::Coin;
use crate::core::tx::{OutPoint, Transaction};
use crate::node::apply;
use crate::node::chain::{Accepted, Chain, ProcessError};
use crate::node::mempool::Mempool;
use crate::node::p2p::state::ChainView;
use crate::node::read::ChainRead;
use crate::node::verify::{self, CachedVerifier, ParallelVerifier, SigCache};
use crate::node::{BatchOutcome, NodeError, NodeEvent, Template};
use crate::storage::{BlockMeta, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// redb's page cache for each node's store.
const CACHE_BYTES: usize = 1 << 20;
/// Each node's mempool limit.
const POOL_BYTES: usize = 4 << 20;
/// Signatures each node's cache keeps.
const SIG_CACHE: usize = 20_000;

struct Inner {
    chain: Chain,
    pool: Mempool,
    sig_cache: Arc<SigCache>,
}

/// One node's validating chain and mempool (cheap to clone: the clones share them).
#[derive(Clone)]
pub struct FullChain {
    inner: Arc<Mutex<Inner>>,
    store: Store,
    /// The simulation's clock, in unix seconds.
    clock: Arc<AtomicU64>,
}

impl FullChain {
    /// A chain of `network` with only genesis, whose timestamp rule reads `clock`.
    pub fn new(network: Network, clock: Arc<AtomicU64>) -> Result<FullChain, NodeError> {
        let store = Store::in_memory(network, CACHE_BYTES)?;
        let sig_cache = Arc::new(SigCache::new(SIG_CACHE));
        // One thread: a simulation is single-threaded, and a block of a few transactions
        // would not be split anyway.
        let mut chain = Chain::new(
            store.clone(),
            Box::new(CachedVerifier {
                inner: ParallelVerifier::new(1),
                cache: sig_cache.clone(),
            }),
        );
        let c = clock.clone();
        chain.set_clock(move || c.load(Ordering::Relaxed));
        Ok(FullChain {
            inner: Arc::new(Mutex::new(Inner {
                chain,
                pool: Mempool::new(POOL_BYTES),
                sig_cache,
            })),
            store,
            clock,
        })
    }

    fn lock(&self) -> Option<MutexGuard<'_, Inner>> {
        self.inner.lock().ok()
    }

    fn read(&self) -> Option<ChainRead> {
        ChainRead::new(self.store.read().ok()?, self.store.params()).ok()
    }

    pub fn params(&self) -> &'static Params {
        self.store.params()
    }

    /// Blocks from a peer, as the node takes a sync batch: in order, stopping at the first
    /// bad one (what came before stays); what it came to, and the events the node would send.
    pub fn submit_blocks(&self, blocks: Vec<Block>) -> (BatchOutcome, Vec<NodeEvent>) {
        let n = blocks.len();
        let mut outcome = BatchOutcome {
            submitted: n,
            height: 0,
            tip: BlockHash::ZERO,
            connected: 0,
            failure: None,
        };
        let Some(mut inner) = self.lock() else {
            outcome.failure = Some((0, "the simulated node's state is poisoned".into(), false));
            return (outcome, Vec::new());
        };
        let Ok(before) = inner.chain.tip() else {
            return (outcome, Vec::new());
        };
        let failure = match inner.chain.process_batch(blocks) {
            Ok(_) => None,
            Err((i, e)) => Some((i, e.to_string(), e.is_peer_fault())),
        };
        // Read back from the store: a failed batch keeps the blocks before the bad one.
        let change = apply::tip_change_since(&self.store, &before).unwrap_or_default();
        let events = self.after(&mut inner, &change, before.hash());
        if let Ok(after) = inner.chain.tip() {
            outcome.height = after.height;
            outcome.tip = after.hash();
        }
        outcome.connected = change.connected.len();
        outcome.failure = failure;
        (outcome, events)
    }

    /// A block of our own (or one given whole): the events it made, or why it was refused.
    pub fn process_block(&self, block: Block) -> Result<Vec<NodeEvent>, ProcessError> {
        let Some(mut inner) = self.lock() else {
            return Ok(Vec::new());
        };
        let before = inner.chain.tip()?.hash();
        match inner
            .chain
            .process_block(block, crate::node::chain::Durability::Immediate)?
        {
            Accepted::TipChanged(change) => Ok(self.after(&mut inner, &change, before)),
            _ => Ok(Vec::new()),
        }
    }

    fn after(
        &self,
        inner: &mut Inner,
        change: &crate::node::chain::TipChange,
        before: BlockHash,
    ) -> Vec<NodeEvent> {
        let Inner {
            pool, sig_cache, ..
        } = inner;
        let verify = apply::Verify {
            verifier: ParallelVerifier::new(1),
            cache: sig_cache,
        };
        let now = self.clock.load(Ordering::Relaxed);
        let mut events = apply::pool_events(pool, change, &self.store, &verify, now);
        events.extend(apply::change_events(change, Some(before), &self.store));
        events
    }

    /// A transaction for the mempool, checked as the node checks one: its id, or why not.
    pub fn accept_tx(&self, tx: Transaction) -> Result<Txid, NodeError> {
        let mut inner = self.lock().ok_or(NodeError::Stopped)?;
        let reader = self.store.read()?;
        let tip = reader.tip()?;
        let params = self.store.params();
        let sigs = verify::verify_txs(std::slice::from_ref(&tx), params, &ParallelVerifier::new(1));
        let sigs = sigs
            .into_iter()
            .next()
            .unwrap_or_else(verify::TxSigs::unchecked);
        let Inner {
            pool, sig_cache, ..
        } = &mut *inner;
        let rec = verify::Recording::new(&sigs, sig_cache);
        let now = self.clock.load(Ordering::Relaxed);
        let txid = pool.accept(tx, &reader, tip.height, params, &rec, now)?;
        rec.commit();
        Ok(txid)
    }

    /// The next block on our tip paying `address`, with the best of our mempool.
    pub fn template(&self, address: Address) -> Result<Template, NodeError> {
        let mut inner = self.lock().ok_or(NodeError::Stopped)?;
        let Inner { chain, pool, .. } = &mut *inner;
        let now = self.clock.load(Ordering::Relaxed);
        apply::block_template(chain, pool, self.store.params(), address, now)
    }

    /// Tip height and hash.
    pub fn tip(&self) -> (u64, BlockHash) {
        self.read()
            .map_or((0, BlockHash::ZERO), |r| (r.tip().height, r.tip().hash()))
    }

    pub fn has(&self, hash: &BlockHash) -> bool {
        self.read()
            .and_then(|r| r.block_meta(hash).ok().flatten())
            .is_some()
    }

    /// Whether `hash` is on the active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.read().is_some_and(|r| {
            r.block_meta(hash)
                .ok()
                .flatten()
                .is_some_and(|m| r.is_active(&m).unwrap_or(false))
        })
    }

    /// Headers a peer asked for (see [`ChainRead::headers_after`]).
    pub fn headers_after(
        &self,
        locator: &[BlockHash],
        stop: &BlockHash,
        max: usize,
    ) -> Vec<BlockHeader> {
        self.read()
            .and_then(|r| r.headers_after(locator, stop, max).ok())
            .unwrap_or_default()
    }

    /// Coins of `address` on the active chain that can be spent in the next block and that
    /// no mempool transaction spends, in the store's order.
    pub fn spendable(&self, address: &Address) -> Vec<(OutPoint, Coin)> {
        let Some(r) = self.read() else {
            return Vec::new();
        };
        let Ok(coins) = r.address_coins(address) else {
            return Vec::new();
        };
        let Some(inner) = self.lock() else {
            return Vec::new();
        };
        coins
            .into_iter()
            .filter(|(o, c)| !r.immature(c).unwrap_or(true) && inner.pool.spender(o).is_none())
            .collect()
    }

    /// Whether the mempool holds `txid`.
    pub fn in_pool(&self, txid: &Txid) -> bool {
        self.lock().is_some_and(|i| i.pool.contains(txid))
    }

    /// The mempool's size in transactions.
    pub fn pool_len(&self) -> usize {
        self.lock().map_or(0, |i| i.pool.len())
    }

    /// Where a transaction is confirmed on the active chain: the height of its block.
    pub fn confirmed_at(&self, txid: &Txid) -> Option<u64> {
        let r = self.read()?;
        let loc = r.tx_location(txid).ok()??;
        let meta = r.block_meta(&loc.block).ok()??;
        r.is_active(&meta).ok()?.then_some(meta.height)
    }
}

impl ChainView for FullChain {
    fn tip(&self) -> (u64, BlockHash, Work) {
        self.read().map_or((0, BlockHash::ZERO, Work::ZERO), |r| {
            let t = r.tip();
            (t.height, t.hash(), t.chainwork)
        })
    }

    fn block_meta(&self, hash: &BlockHash) -> Option<BlockMeta> {
        self.read()?.block_meta(hash).ok().flatten()
    }

    fn has_block(&self, hash: &BlockHash) -> bool {
        self.read()
            .is_none_or(|r| r.block_meta(hash).map_or(true, |m| m.is_some()))
    }

    fn has_tx(&self, txid: &Txid) -> bool {
        if self.in_pool(txid) {
            return true;
        }
        self.read()
            .is_none_or(|r| r.tx_location(txid).map_or(true, |l| l.is_some()))
    }

    fn locator(&self) -> Result<Vec<BlockHash>, String> {
        self.read()
            .ok_or_else(|| "the store cannot be read".to_string())?
            .locator()
            .map_err(|e| e.to_string())
    }

    fn mempool_txids(&self) -> Vec<Txid> {
        self.lock()
            .map(|i| i.pool.ordered_txids())
            .unwrap_or_default()
    }

    fn mempool_tx(&self, txid: &Txid) -> Option<Transaction> {
        self.lock()?.pool.get(txid).map(|e| e.tx.clone())
    }

    fn block(&self, hash: &BlockHash) -> Option<Block> {
        self.read()?.block(hash).ok().flatten()
    }

    fn next_bits(&self, parent: &BlockHash) -> Option<CompactTarget> {
        let mut inner = self.lock()?;
        let (tip, ctx, _) = inner.chain.next_block_context().ok()?;
        (tip.hash() == *parent).then_some(ctx.required_bits)
    }
}

#[cfg(test)]
mod tests {
    use crate::sim::{Holds, Relay, Sim, SimConfig, Validation, run};
    use std::time::Duration;

    fn min(m: u64) -> Duration {
        Duration::from_secs(60 * m)
    }

    fn full(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            peers: 4,
            block_interval: Duration::from_secs(30),
            duration: min(30),
            txs: 20,
            relay: Relay::Compact,
            validation: Validation::Full,
            seed,
            ..SimConfig::default()
        }
    }

    #[test]
    fn real_payments_are_checked_relayed_mined_and_confirmed_on_every_node() {
        let mut sim = Sim::new(full(24, 3)).expect("a simulation");
        sim.run_until(min(30));
        let best = sim.best_height();
        assert!(best >= 30, "{best}");
        // Everyone on one tip.
        assert_eq!(sim.on_tip_of(0), 24);
        // Coins mature after 10 blocks; from then on payments flow, and all but the newest
        // are confirmed, on every node, and in no node's mempool.
        let payments = sim.payments().to_vec();
        assert!(payments.len() >= 100, "{}", payments.len());
        let mut confirmed = 0;
        for (txid, _) in &payments {
            let at: Vec<Option<u64>> = (0..24).map(|i| sim.confirmed_at(i, txid)).collect();
            if let Some(h) = at[0] {
                confirmed += 1;
                assert!(at.iter().all(|x| *x == Some(h)), "{txid}: {at:?}");
                assert!((0..24).all(|i| !sim.in_mempool(i, txid)), "{txid}");
            }
        }
        assert!(
            confirmed * 10 >= payments.len() * 9,
            "{confirmed} of {}",
            payments.len()
        );
        let r = sim.run();
        assert_eq!(r.own_blocks_refused, 0, "{r:?}");
        assert_eq!(r.bans, 0, "honest nodes ban nobody: {r:?}");
        // Blocks went compactly, rebuilt from real mempools.
        assert!(r.compact.rebuilt_at_once > 0, "{r:?}");
    }

    #[test]
    fn a_fully_validating_run_is_the_same_for_the_same_seed() {
        let config = |seed| SimConfig {
            duration: min(15),
            ..full(12, seed)
        };
        let a = run(config(5)).expect("runs");
        assert!(a.payments > 20, "{a:?}");
        assert_eq!(a, run(config(5)).expect("runs"));
        assert_ne!(a, run(config(6)).expect("runs"));
    }

    #[test]
    fn a_double_spend_ends_with_one_payment_on_every_chain_and_the_other_nowhere() {
        let mut sim = Sim::new(SimConfig {
            txs: 0,
            ..full(24, 9)
        })
        .expect("a simulation");
        // Node 0's first coinbases mature.
        let mut t = min(5);
        let (one, two) = loop {
            sim.run_until(t);
            if let Some(pair) = sim.pay_twice(0, 0, 23) {
                break pair;
            }
            t += Duration::from_secs(30);
            assert!(t < min(60), "node 0 never had a mature coin");
        };
        assert!(sim.in_mempool(0, &one) && sim.in_mempool(23, &two));
        sim.run_until(t + min(10));
        let winner = if sim.confirmed_at(0, &one).is_some() {
            one
        } else {
            two
        };
        let loser = if winner == one { two } else { one };
        for i in 0..24 {
            assert!(sim.confirmed_at(i, &winner).is_some(), "node {i}");
            assert!(sim.confirmed_at(i, &loser).is_none(), "node {i}");
            assert!(!sim.in_mempool(i, &loser), "node {i} still holds the loser");
        }
    }

    #[test]
    fn an_invalid_block_gets_its_sender_banned_by_its_peers_and_the_chain_goes_on() {
        let n = 20;
        let mut sim = Sim::new(SimConfig {
            invalid_miner: true,
            peers: 6,
            ..full(n, 4)
        })
        .expect("a simulation");
        let bad = n - 1;
        sim.run_until(min(2));
        let peers: Vec<usize> = (0..bad).filter(|i| sim.connected(*i, bad)).collect();
        assert!(peers.len() >= 6, "{peers:?}");
        sim.run_until(min(30));
        let invalid = sim.invalid_blocks();
        assert!(!invalid.is_empty(), "the invalid miner found a block");
        // Every node it was connected to banned it, saying why; none holds its blocks.
        for i in &peers {
            let bans = sim.bans(*i);
            assert!(
                bans.iter()
                    .any(|(who, why)| *who == Some(bad) && why.contains("invalid")),
                "node {i}: {bans:?}"
            );
            assert!(!sim.connected(*i, bad), "node {i}");
        }
        for i in 0..bad {
            for h in &invalid {
                assert_eq!(sim.holds(i, h), Holds::Missing, "node {i} holds {h}");
            }
        }
        // The honest chain went on, on one tip.
        assert!(sim.best_height() >= 30, "{}", sim.best_height());
        assert_eq!(sim.on_tip_of(0), bad);
    }

    #[test]
    fn after_a_partition_heals_every_node_agrees_and_no_mempool_holds_a_confirmed_payment() {
        let n = 30;
        let mut sim = Sim::new(SimConfig {
            partition: Some((min(12), min(24))),
            duration: min(40),
            ..full(n, 12)
        })
        .expect("a simulation");
        sim.run_until(min(23));
        assert_ne!(sim.tip(0).1, sim.tip(n - 1).1, "two branches");
        sim.run_until(min(40));
        assert_eq!(sim.on_tip_of(0), n);
        for (txid, _) in sim.payments() {
            for i in 0..n {
                assert!(
                    !(sim.in_mempool(i, txid) && sim.confirmed_at(i, txid).is_some()),
                    "node {i}: {txid} both confirmed and in the mempool"
                );
            }
        }
        let r = sim.run();
        assert_eq!(r.own_blocks_refused, 0, "{r:?}");
        assert!(r.payments_confirmed > 0, "{r:?}");
    }
}
