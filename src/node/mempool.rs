//! The mempool: transactions valid against the tip plus their mempool parents, ordered by fee rate
//! for block templates, capped in bytes (the lowest fee rate is evicted, with its descendants),
//! refusing conflicting spends with the txid they conflict with.

use crate::core::amount::Amount;
use crate::core::hash::Txid;
use crate::core::params::Params;
use crate::core::rules::{Coin, CoinView, SigVerifier, TxError, check_tx_inputs, check_tx_sanity};
use crate::core::tx::{OutPoint, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Default cap on the mempool's total size.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;
/// Lowest fee rate accepted, in base units per 1000 bytes.
pub const MIN_FEE_RATE: u64 = 1000;
/// Largest transaction accepted, in bytes.
pub const MAX_TX_SIZE: usize = 100_000;

/// Fee rate in base units per 1000 bytes (integers, so ordering is exact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeeRate(pub u64);

impl FeeRate {
    pub fn of(fee: Amount, size: usize) -> FeeRate {
        FeeRate(fee.0.saturating_mul(1000) / (size.max(1) as u64))
    }
    /// Fee for `size` bytes at this rate (rounded up).
    pub fn fee_for(self, size: usize) -> Amount {
        Amount((self.0.saturating_mul(size as u64)).div_ceil(1000))
    }
}

/// Why a transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("transaction {0} is already in the mempool")]
    AlreadyKnown(Txid),
    #[error("transaction {0} is already confirmed")]
    AlreadyConfirmed(Txid),
    #[error("coinbase transactions are only valid in blocks")]
    Coinbase,
    #[error("input {outpoint} is already spent by mempool transaction {by}")]
    Conflict { outpoint: OutPoint, by: Txid },
    #[error("transaction is {0} bytes, over the limit of {MAX_TX_SIZE}")]
    TooLarge(usize),
    #[error("fee rate {rate} per kB is below the minimum {min}")]
    FeeTooLow { rate: u64, min: u64 },
    #[error("mempool is full and the fee rate {0} per kB is too low to enter")]
    Full(u64),
    #[error("invalid transaction: {0}")]
    Invalid(TxError),
}

impl From<TxError> for MempoolError {
    fn from(e: TxError) -> Self {
        MempoolError::Invalid(e)
    }
}

/// One mempool entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub tx: Transaction,
    pub txid: Txid,
    pub fee: Amount,
    pub size: usize,
    pub rate: FeeRate,
    /// Seconds since the epoch when it entered.
    pub time: u64,
}

/// The pool.
#[derive(Default)]
pub struct Mempool {
    entries: HashMap<Txid, Entry>,
    /// Which mempool transaction spends an outpoint.
    spends: HashMap<OutPoint, Txid>,
    by_rate: BTreeSet<(FeeRate, Txid)>,
    bytes: usize,
    max_bytes: usize,
}

/// Chain coins with the mempool's own outputs and spends laid over them.
struct PoolView<'a> {
    chain: &'a dyn CoinView,
    pool: &'a Mempool,
    next_height: u64,
}

impl CoinView for PoolView<'_> {
    fn coin(&self, o: &OutPoint) -> Option<Coin> {
        if self.pool.spends.contains_key(o) {
            return None;
        }
        if let Some(e) = self.pool.entries.get(&o.txid) {
            return e.tx.outputs.get(o.vout as usize).map(|out| Coin {
                output: *out,
                height: self.next_height,
                coinbase: false,
            });
        }
        self.chain.coin(o)
    }
    fn was_spent(&self, o: &OutPoint) -> bool {
        self.chain.was_spent(o)
    }
}

impl Mempool {
    pub fn new(max_bytes: usize) -> Mempool {
        Mempool {
            max_bytes,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn get(&self, txid: &Txid) -> Option<&Entry> {
        self.entries.get(txid)
    }
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }
    /// Which mempool transaction spends `o`, if any.
    pub fn spender(&self, o: &OutPoint) -> Option<Txid> {
        self.spends.get(o).copied()
    }
    /// Entries, highest fee rate first.
    pub fn by_fee_rate(&self) -> impl Iterator<Item = &Entry> {
        self.by_rate
            .iter()
            .rev()
            .filter_map(|(_, id)| self.entries.get(id))
    }
    /// Lowest and highest fee rate.
    pub fn fee_rate_range(&self) -> Option<(FeeRate, FeeRate)> {
        Some((self.by_rate.first()?.0, self.by_rate.last()?.0))
    }
    /// All transactions, parents before children.
    pub fn ordered_txs(&self) -> Vec<Transaction> {
        let mut out = Vec::with_capacity(self.entries.len());
        let mut done = HashSet::new();
        let mut ids: Vec<&Entry> = self.entries.values().collect();
        ids.sort_by_key(|e| (e.time, e.txid));
        for e in ids {
            self.push_with_parents(e, &mut done, &mut out);
        }
        out
    }

    fn push_with_parents(&self, e: &Entry, done: &mut HashSet<Txid>, out: &mut Vec<Transaction>) {
        if done.contains(&e.txid) {
            return;
        }
        done.insert(e.txid);
        for i in &e.tx.inputs {
            if let Some(p) = self.entries.get(&i.prevout.txid) {
                self.push_with_parents(p, done, out);
            }
        }
        out.push(e.tx.clone());
    }

    /// Check `tx` against the chain (`chain`, whose tip is at `tip_height`) and the pool, and add
    /// it. Signatures are checked with `verifier`.
    pub fn accept(
        &mut self,
        tx: Transaction,
        chain: &dyn CoinView,
        tip_height: u64,
        params: &Params,
        verifier: &dyn SigVerifier,
        now: u64,
    ) -> Result<Txid, MempoolError> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyKnown(txid));
        }
        if tx.is_coinbase() {
            return Err(MempoolError::Coinbase);
        }
        let size = tx.size();
        if size > MAX_TX_SIZE {
            return Err(MempoolError::TooLarge(size));
        }
        check_tx_sanity(&tx)?;
        let first = OutPoint { txid, vout: 0 };
        if chain.coin(&first).is_some() || chain.was_spent(&first) {
            return Err(MempoolError::AlreadyConfirmed(txid));
        }
        for i in &tx.inputs {
            if let Some(by) = self.spends.get(&i.prevout) {
                return Err(MempoolError::Conflict {
                    outpoint: i.prevout,
                    by: *by,
                });
            }
        }
        let next_height = tip_height + 1;
        let view = PoolView {
            chain,
            pool: self,
            next_height,
        };
        let mut sigs = Vec::new();
        let mut spent = Vec::new();
        let fee = check_tx_inputs(&tx, &view, next_height, params, &mut sigs, &mut spent)?;
        if let Err(i) = verifier.verify_all(&sigs) {
            return Err(TxError::BadSignature(i).into());
        }
        let rate = FeeRate::of(fee, size);
        if rate.0 < MIN_FEE_RATE {
            return Err(MempoolError::FeeTooLow {
                rate: rate.0,
                min: MIN_FEE_RATE,
            });
        }
        if self.bytes + size > self.max_bytes {
            // Make room only if this transaction pays more than what would leave.
            let lowest = self.by_rate.first().map(|(r, _)| *r).unwrap_or_default();
            if rate <= lowest {
                return Err(MempoolError::Full(rate.0));
            }
        }
        self.insert(Entry {
            tx,
            txid,
            fee,
            size,
            rate,
            time: now,
        });
        while self.bytes > self.max_bytes {
            let Some(&(_, low)) = self.by_rate.first() else {
                break;
            };
            self.remove_with_descendants(&low);
        }
        if self.entries.contains_key(&txid) {
            Ok(txid)
        } else {
            Err(MempoolError::Full(rate.0))
        }
    }

    fn insert(&mut self, e: Entry) {
        for i in &e.tx.inputs {
            self.spends.insert(i.prevout, e.txid);
        }
        self.by_rate.insert((e.rate, e.txid));
        self.bytes += e.size;
        self.entries.insert(e.txid, e);
    }

    /// Remove one transaction (not its descendants).
    fn remove_one(&mut self, txid: &Txid) -> Option<Entry> {
        let e = self.entries.remove(txid)?;
        for i in &e.tx.inputs {
            self.spends.remove(&i.prevout);
        }
        self.by_rate.remove(&(e.rate, e.txid));
        self.bytes -= e.size;
        Some(e)
    }

    /// Remove `txid` and everything that spends its outputs, recursively. Returns what left.
    pub fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<Txid> {
        let mut removed = Vec::new();
        let mut stack = vec![*txid];
        while let Some(id) = stack.pop() {
            let Some(e) = self.remove_one(&id) else {
                continue;
            };
            for vout in 0..e.tx.outputs.len() {
                let o = OutPoint {
                    txid: id,
                    vout: vout as u32,
                };
                if let Some(child) = self.spends.get(&o) {
                    stack.push(*child);
                }
            }
            removed.push(id);
        }
        removed
    }

    /// A block was connected: its transactions leave, and so does anything that spends the
    /// same outputs (and their descendants).
    pub fn remove_for_block(&mut self, txs: &[Transaction]) -> Vec<Txid> {
        let mut removed = Vec::new();
        for tx in txs {
            let id = tx.txid();
            if self.remove_one(&id).is_some() {
                removed.push(id);
            }
            for i in &tx.inputs {
                if let Some(conflict) = self.spends.get(&i.prevout).copied() {
                    removed.extend(self.remove_with_descendants(&conflict));
                }
            }
        }
        removed
    }

    /// Take every transaction out (for revalidation after a reorganisation).
    pub fn drain(&mut self) -> Vec<Transaction> {
        let txs = self.ordered_txs();
        *self = Mempool::new(self.max_bytes);
        txs
    }

    /// Transactions for a block template: highest fee rate first, parents before children,
    /// within `max_bytes`. Returns them with their total fee.
    pub fn template(&self, max_bytes: usize) -> (Vec<Transaction>, Amount) {
        let mut chosen = HashSet::new();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut fees = Amount::ZERO;
        let mut progress = true;
        while progress {
            progress = false;
            for e in self.by_fee_rate() {
                if chosen.contains(&e.txid) || bytes + e.size > max_bytes {
                    continue;
                }
                let parents_in = e.tx.inputs.iter().all(|i| {
                    !self.entries.contains_key(&i.prevout.txid) || chosen.contains(&i.prevout.txid)
                });
                if !parents_in {
                    continue;
                }
                chosen.insert(e.txid);
                bytes += e.size;
                fees = fees.checked_add(e.fee).unwrap_or(fees);
                out.push(e.tx.clone());
                progress = true;
            }
        }
        (out, fees)
    }
}
