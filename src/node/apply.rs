//! The synchronous steps a chain change takes beyond the chain itself: what a new tip does to
//! the mempool (confirmed transactions leave; after a reorganisation the disconnected blocks'
//! transactions come back and whatever the new chain invalidated drops), re-admitting saved
//! transactions, and the next block's template. The node's thread runs them, and so does each
//! of the simulator's fully validating nodes, so both behave alike.

use super::chain::{Chain, TipChange};
use super::mempool::{Mempool, MempoolError};
use super::verify::{self, ParallelVerifier, SigCache};
use super::{COINBASE_RESERVE, NodeError, NodeEvent, Template};
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::block::{Block, BlockHeader};
use crate::core::hash::{BlockHash, Txid};
use crate::core::merkle::merkle_root;
use crate::core::params::Params;
use crate::core::rules::TxError;
use crate::core::tx::{Transaction, TxOut};
use crate::storage::{BlockMeta, Store};
use std::collections::HashSet;

/// What a tip change did to the mempool.
#[derive(Debug, Default, PartialEq, Eq)]
struct PoolChange {
    /// Transactions now in the pool that were not (the disconnected blocks' ones).
    added: Vec<Txid>,
    /// Transactions gone from the pool (confirmed, or invalid on the new chain).
    removed: Vec<Txid>,
}

/// Bring `pool` up to date with `change` (already committed to `store`). `now`: unix seconds,
/// the admission time of returning transactions.
fn pool_after_change(
    pool: &mut Mempool,
    change: &TipChange,
    store: &Store,
    verify: &Verify<'_>,
    now: u64,
) -> PoolChange {
    let mut out = PoolChange::default();
    if change.disconnected.is_empty() {
        for (b, _) in &change.connected {
            out.removed.extend(pool.remove_for_block(&b.txs));
        }
        return out;
    }
    // A reorganisation: transactions of the disconnected blocks come back (oldest block
    // first), then the old pool; whatever the new chain invalidated drops.
    let old = pool.drain();
    let before: HashSet<Txid> = old.iter().map(Transaction::txid).collect();
    let mut candidates: Vec<Transaction> = change
        .disconnected
        .iter()
        .rev()
        .flat_map(|b| b.txs.iter().skip(1).cloned())
        .collect();
    candidates.extend(old);
    readmit(pool, candidates, store, verify, now);
    let after: HashSet<Txid> = pool.ordered_txids().into_iter().collect();
    // In pool order (parents first), then in the old order: the same every run.
    out.added = pool
        .ordered_txids()
        .into_iter()
        .filter(|t| !before.contains(t))
        .collect();
    let mut gone: Vec<Txid> = before.difference(&after).copied().collect();
    gone.sort_unstable();
    out.removed = gone;
    out
}

/// How transactions' signatures are checked when they come back to the mempool: the threads
/// to use, and the cache that remembers them for their block.
pub struct Verify<'a> {
    pub verifier: ParallelVerifier,
    pub cache: &'a SigCache,
}

/// Bring `pool` up to date with `change`, and the events that say so: transactions back in the
/// pool, then transactions gone from it. The node sends them before [`change_events`].
pub fn pool_events(
    pool: &mut Mempool,
    change: &TipChange,
    store: &Store,
    verify: &Verify<'_>,
    now: u64,
) -> Vec<NodeEvent> {
    let p = pool_after_change(pool, change, store, verify, now);
    let mut events: Vec<NodeEvent> = p.added.into_iter().map(NodeEvent::TxAccepted).collect();
    events.extend(p.removed.into_iter().map(NodeEvent::TxRemoved));
    events
}

/// The events of `change` (from the tip `old_tip`) itself, in the order the node sends them:
/// blocks disconnected, blocks connected, and the reorganisation if there was one.
pub fn change_events(
    change: &TipChange,
    old_tip: Option<BlockHash>,
    store: &Store,
) -> Vec<NodeEvent> {
    let mut events = Vec::new();
    let reader = store.read().ok();
    for b in &change.disconnected {
        let hash = b.hash();
        let height = reader
            .as_ref()
            .and_then(|r| r.meta(&hash).ok().flatten())
            .map_or(0, |m| m.height);
        events.push(NodeEvent::BlockDisconnected { hash, height });
    }
    for (b, height) in &change.connected {
        events.push(NodeEvent::BlockConnected {
            hash: b.hash(),
            height: *height,
        });
    }
    if !change.disconnected.is_empty()
        && let (Some(old_tip), Some((last, _))) = (old_tip, change.connected.last())
    {
        events.push(NodeEvent::Reorg {
            depth: change.disconnected.len(),
            old_tip,
            new_tip: last.hash(),
        });
    }
    events
}

/// The change from `old` (a former tip) to the store's tip, read back from the store.
pub fn tip_change_since(store: &Store, old: &BlockMeta) -> Result<TipChange, NodeError> {
    let r = store.read()?;
    let tip = r.tip()?;
    let mut change = TipChange::default();
    // Walk the old tip back to the active chain.
    let mut cursor = *old;
    while r.hash_at(cursor.height)? != Some(cursor.hash()) {
        if let Some(b) = r.block(&cursor.hash())? {
            change.disconnected.push(b);
        }
        match r.meta(&cursor.header.prev)? {
            Some(m) => cursor = m,
            None => break,
        }
    }
    for h in cursor.height + 1..=tip.height {
        if let Some(hash) = r.hash_at(h)?
            && let Some(b) = r.block(&hash)?
        {
            change.connected.push((b, h));
        }
    }
    Ok(change)
}

/// Try `txs` (parents first, or not) against the store's tip; drop what is not valid there.
pub fn readmit(
    pool: &mut Mempool,
    txs: Vec<Transaction>,
    store: &Store,
    verify: &Verify<'_>,
    now: u64,
) {
    let Ok(reader) = store.read() else {
        return;
    };
    let Ok(tip) = reader.tip() else { return };
    let params = store.params();
    // Every signature at once, as batches over the threads.
    let sigs = verify::verify_txs(&txs, params, &verify.verifier);
    // Parents may come after their children: retry what lacked an input while a pass makes
    // progress.
    let mut pending: Vec<_> = txs.into_iter().zip(sigs).collect();
    loop {
        let before = pending.len();
        let mut missing = Vec::new();
        for (tx, sigs) in pending {
            let rec = verify::Recording::new(&sigs, verify.cache);
            let r = pool.accept(tx.clone(), &reader, tip.height, params, &rec, now);
            if r.is_ok() {
                rec.commit();
            }
            if let Err(MempoolError::Invalid(TxError::MissingInput(_))) = r {
                missing.push((tx, sigs));
            }
        }
        if missing.is_empty() || missing.len() == before {
            break;
        }
        pending = missing;
    }
}

/// The next block on `chain`'s tip paying `address`, with the best of `pool`, nonce 0, its
/// time `now` (unix seconds) or just past the median of the last blocks if that is later.
pub fn block_template(
    chain: &mut Chain,
    pool: &Mempool,
    params: &Params,
    address: Address,
    now: u64,
) -> Result<Template, NodeError> {
    let (tip, ctx, target) = chain.next_block_context()?;
    let height = tip.height + 1;
    let (txs, fees) = pool.template(params.max_block_size - COINBASE_RESERVE);
    let coinbase = Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![TxOut {
            amount: params
                .subsidy(height)
                .checked_add(fees)
                .unwrap_or(Amount::ZERO),
            address,
        }],
        lock_height: height,
        memo: b"chain-tui".to_vec(),
    };
    let mut all = Vec::with_capacity(txs.len() + 1);
    all.push(coinbase);
    all.extend(txs);
    let merkle = merkle_root(&all.iter().map(Transaction::txid).collect::<Vec<_>>());
    let header = BlockHeader {
        version: 1,
        prev: tip.hash(),
        merkle_root: merkle,
        time: now.max(ctx.median_time_past + 1),
        bits: ctx.required_bits,
        nonce: 0,
    };
    Ok(Template {
        block: Block { header, txs: all },
        height,
        target,
        fees,
    })
}
