//! The mempool: transactions valid against the tip plus their mempool parents, ordered by fee rate
//! for block templates, capped in bytes (the lowest fee rate is evicted, with its descendants),
//! refusing conflicting spends with the txid they conflict with.

use crate::core::amount::Amount;
pub use crate::core::fee::FeeRate;
use crate::core::hash::Txid;
use crate::core::params::Params;
use crate::core::rules::{Coin, CoinView, SigVerifier, TxError, check_tx_inputs, check_tx_sanity};
use crate::core::tx::{OutPoint, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Default cap on the mempool's total size.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;
/// Largest transaction accepted, in bytes.
pub const MAX_TX_SIZE: usize = 100_000;

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
    #[error("fee rate {rate} is below the minimum {min}")]
    FeeTooLow { rate: FeeRate, min: FeeRate },
    #[error("mempool is full and the fee rate {0} is too low to enter")]
    Full(FeeRate),
    #[error("invalid transaction: {0}")]
    Invalid(TxError),
}

impl MempoolError {
    /// Whether the transaction breaks a consensus rule, so that a peer relaying it misbehaved.
    /// Races between honest peers are not: already known or confirmed, a conflicting spend or
    /// a full pool seen first, a missing or spent input (a parent not yet here, a block not yet
    /// connected), an immature or not yet final spend. Neither are this node's own limits
    /// (size, minimum fee, no loose coinbase), which a peer with other limits may not share.
    pub fn is_peer_fault(&self) -> bool {
        match self {
            MempoolError::AlreadyKnown(_)
            | MempoolError::AlreadyConfirmed(_)
            | MempoolError::Conflict { .. }
            | MempoolError::Full(_)
            | MempoolError::Coinbase
            | MempoolError::TooLarge(_)
            | MempoolError::FeeTooLow { .. } => false,
            MempoolError::Invalid(e) => !matches!(
                e,
                TxError::MissingInput(_)
                    | TxError::AlreadySpent(_)
                    | TxError::ImmatureCoinbase { .. }
                    | TxError::NotFinal { .. }
            ),
        }
    }
    /// Whether it was refused only because the node already has it.
    pub fn is_known(&self) -> bool {
        matches!(
            self,
            MempoolError::AlreadyKnown(_) | MempoolError::AlreadyConfirmed(_)
        )
    }
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

/// What the pool would do with a transaction it would take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    pub txid: Txid,
    pub fee: Amount,
    pub size: usize,
    pub rate: FeeRate,
    /// Transactions it would displace (a full pool), each with its descendants.
    pub evict: Vec<Txid>,
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

/// The fee rate a transaction needs to be mined within `blocks` blocks if nothing else
/// arrives: it must outbid what fills those blocks. `queue` is the mempool as (rate, size),
/// highest rate first, and `block_space` the bytes one block has for transactions. The rate of
/// the transaction that would fill the last of those blocks, one base unit per kB more; the
/// minimum relay rate when the mempool does not fill them.
pub fn fee_to_confirm_within(
    queue: &[(FeeRate, usize)],
    blocks: u64,
    block_space: usize,
) -> FeeRate {
    let room = (block_space as u64).saturating_mul(blocks);
    let mut used = 0u64;
    for (rate, size) in queue {
        used = used.saturating_add(*size as u64);
        if used > room {
            let outbid = FeeRate::per_kb(rate.per_kb_units().saturating_add(1));
            return outbid.max(FeeRate::MIN_RELAY);
        }
    }
    FeeRate::MIN_RELAY
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
        self.ordered().into_iter().map(|e| e.tx.clone()).collect()
    }

    /// All txids, parents before children.
    pub fn ordered_txids(&self) -> Vec<Txid> {
        self.ordered().into_iter().map(|e| e.txid).collect()
    }

    fn ordered(&self) -> Vec<&Entry> {
        let mut out = Vec::with_capacity(self.entries.len());
        let mut done = HashSet::new();
        let mut ids: Vec<&Entry> = self.entries.values().collect();
        ids.sort_by_key(|e| (e.time, e.txid));
        for e in ids {
            self.push_with_parents(e, &mut done, &mut out);
        }
        out
    }

    fn push_with_parents<'a>(
        &'a self,
        e: &'a Entry,
        done: &mut HashSet<Txid>,
        out: &mut Vec<&'a Entry>,
    ) {
        if done.contains(&e.txid) {
            return;
        }
        done.insert(e.txid);
        for i in &e.tx.inputs {
            if let Some(p) = self.entries.get(&i.prevout.txid) {
                self.push_with_parents(p, done, out);
            }
        }
        out.push(e);
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
        let a = self.check(&tx, chain, tip_height, params, verifier)?;
        for id in &a.evict {
            self.remove_one(id);
        }
        self.insert(Entry {
            tx,
            txid: a.txid,
            fee: a.fee,
            size: a.size,
            rate: a.rate,
            time: now,
        });
        Ok(a.txid)
    }

    /// Whether [`Mempool::accept`] would take `tx`, and what it would pay and displace; changes
    /// nothing.
    pub fn check(
        &self,
        tx: &Transaction,
        chain: &dyn CoinView,
        tip_height: u64,
        params: &Params,
        verifier: &dyn SigVerifier,
    ) -> Result<Admission, MempoolError> {
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
        check_tx_sanity(tx)?;
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
        let fee = check_tx_inputs(tx, &view, next_height, params, &mut sigs, &mut spent)?;
        if let Err(i) = verifier.verify_all(&sigs) {
            return Err(TxError::BadSignature(i).into());
        }
        let rate = FeeRate::of(fee, size);
        if rate < FeeRate::MIN_RELAY {
            return Err(MempoolError::FeeTooLow {
                rate,
                min: FeeRate::MIN_RELAY,
            });
        }
        // Work out what would have to leave before changing anything: the newcomer enters only
        // if it pays a higher rate than everything it displaces, and none of that is its own
        // parent.
        let evict = if self.bytes + size > self.max_bytes {
            let parents: HashSet<Txid> = tx
                .inputs
                .iter()
                .map(|i| i.prevout.txid)
                .filter(|t| self.entries.contains_key(t))
                .collect();
            self.eviction_plan(self.bytes + size - self.max_bytes, rate, &parents)
                .ok_or(MempoolError::Full(rate))?
        } else {
            Vec::new()
        };
        Ok(Admission {
            txid,
            fee,
            size,
            rate,
            evict,
        })
    }

    /// Transactions (lowest fee rate first, each with its descendants) whose removal frees
    /// `needed` bytes, all paying less than `rate` and none in `keep`; `None` if there is none.
    fn eviction_plan(
        &self,
        needed: usize,
        rate: FeeRate,
        keep: &HashSet<Txid>,
    ) -> Option<Vec<Txid>> {
        let mut plan = Vec::new();
        let mut chosen = HashSet::new();
        let mut freed = 0usize;
        for (r, id) in &self.by_rate {
            if freed >= needed {
                break;
            }
            if *r >= rate {
                return None;
            }
            let mut stack = vec![*id];
            while let Some(t) = stack.pop() {
                if !chosen.insert(t) {
                    continue;
                }
                if keep.contains(&t) {
                    return None;
                }
                let e = self.entries.get(&t)?;
                freed += e.size;
                plan.push(t);
                for vout in 0..e.tx.outputs.len() {
                    if let Some(child) = self.spends.get(&OutPoint {
                        txid: t,
                        vout: vout as u32,
                    }) {
                        stack.push(*child);
                    }
                }
            }
        }
        (freed >= needed).then_some(plan)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_consensus_breaks_are_a_peers_fault() {
        let o = OutPoint {
            txid: Txid([1; 32]),
            vout: 0,
        };
        let races = [
            MempoolError::AlreadyKnown(Txid([2; 32])),
            MempoolError::AlreadyConfirmed(Txid([2; 32])),
            MempoolError::Conflict {
                outpoint: o,
                by: Txid([3; 32]),
            },
            MempoolError::Full(FeeRate::MIN_RELAY),
            MempoolError::FeeTooLow {
                rate: FeeRate::per_kb(0),
                min: FeeRate::MIN_RELAY,
            },
            MempoolError::Invalid(TxError::MissingInput(o)),
            MempoolError::Invalid(TxError::AlreadySpent(o)),
        ];
        for e in races {
            assert!(!e.is_peer_fault(), "{e}");
        }
        assert!(MempoolError::Invalid(TxError::BadSignature(0)).is_peer_fault());
        assert!(MempoolError::AlreadyKnown(Txid([2; 32])).is_known());
        assert!(!MempoolError::Full(FeeRate::MIN_RELAY).is_known());
    }
    use crate::core::address::Address;
    use crate::core::params::Network;
    use crate::core::rules::SerialVerifier;
    use crate::core::tx::TxOut;
    use ed25519_dalek::SigningKey;

    const TIP: u64 = 10;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn addr(k: &SigningKey) -> Address {
        Address::from_pubkey(&k.verifying_key().to_bytes())
    }

    /// A confirmed, mature, non-coinbase coin of `amount` owned by `k`, numbered `n`.
    fn fund(view: &mut HashMap<OutPoint, Coin>, n: u8, k: &SigningKey, amount: u64) -> OutPoint {
        let o = OutPoint {
            txid: Txid([n; 32]),
            vout: 0,
        };
        view.insert(
            o,
            Coin {
                output: TxOut {
                    amount: Amount::from_units(amount),
                    address: addr(k),
                },
                height: 1,
                coinbase: false,
            },
        );
        o
    }

    /// A pool of `cap` bytes holding `txs`, accepted in order (the i-th at time i).
    fn pool_of(cap: usize, view: &HashMap<OutPoint, Coin>, txs: &[&Transaction]) -> Mempool {
        let mut pool = Mempool::new(cap);
        for (i, tx) in txs.iter().enumerate() {
            accept(&mut pool, view, tx, i as u64).expect("accepted");
        }
        pool
    }

    /// `N` coins of [`VALUE`] owned by `k`, numbered 1 to `N`, and the view that holds them.
    fn funded<const N: usize>(k: &SigningKey) -> (HashMap<OutPoint, Coin>, [OutPoint; N]) {
        let mut view = HashMap::new();
        let coins = std::array::from_fn(|i| fund(&mut view, i as u8 + 1, k, VALUE));
        (view, coins)
    }

    /// `prevout` (owned by `k`, worth `value`) spent to `k` again, leaving `fee`.
    fn spend(prevout: OutPoint, k: &SigningKey, value: u64, fee: u64) -> Transaction {
        let outputs = vec![TxOut {
            amount: Amount::from_units(value - fee),
            address: addr(k),
        }];
        Transaction::signed(
            &[(prevout, k)],
            outputs,
            &Network::Regtest.params().genesis_hash,
        )
    }

    fn out0(tx: &Transaction) -> OutPoint {
        OutPoint {
            txid: tx.txid(),
            vout: 0,
        }
    }

    fn accept(
        pool: &mut Mempool,
        view: &HashMap<OutPoint, Coin>,
        tx: &Transaction,
        now: u64,
    ) -> Result<Txid, MempoolError> {
        pool.accept(
            tx.clone(),
            view,
            TIP,
            Network::Regtest.params(),
            &SerialVerifier,
            now,
        )
    }

    /// The pool's internal indexes agree with its entries.
    fn assert_consistent(pool: &Mempool) {
        let bytes: usize = pool.entries.values().map(|e| e.size).sum();
        assert_eq!(pool.bytes, bytes);
        assert_eq!(pool.by_rate.len(), pool.entries.len());
        let inputs: usize = pool.entries.values().map(|e| e.tx.inputs.len()).sum();
        assert_eq!(pool.spends.len(), inputs);
        for e in pool.entries.values() {
            assert!(pool.by_rate.contains(&(e.rate, e.txid)));
            for i in &e.tx.inputs {
                assert_eq!(pool.spends.get(&i.prevout), Some(&e.txid));
            }
        }
    }

    const VALUE: u64 = 1_000_000;
    const LOW: u64 = 500;
    const MID: u64 = 5_000;
    const HIGH: u64 = 50_000;

    #[test]
    fn the_fee_to_confirm_outbids_what_fills_the_blocks() {
        let kb = FeeRate::per_kb;
        let queue = [
            (kb(9_000), 600),
            (kb(5_000), 600),
            (kb(3_000), 600),
            (kb(2_000), 600),
        ];
        // Two transactions fill one 1,000-byte block: outbid the second.
        assert_eq!(fee_to_confirm_within(&queue, 1, 1_000), kb(5_001));
        assert_eq!(fee_to_confirm_within(&queue, 2, 1_000), kb(2_001));
        // Room for everything: the minimum relay rate.
        assert_eq!(fee_to_confirm_within(&queue, 3, 1_000), FeeRate::MIN_RELAY);
        assert_eq!(fee_to_confirm_within(&[], 1, 1_000), FeeRate::MIN_RELAY);
        // Never below the minimum relay rate.
        assert_eq!(
            fee_to_confirm_within(&[(kb(10), 5_000)], 1, 1_000),
            FeeRate::MIN_RELAY
        );
    }

    #[test]
    fn full_pool_evicts_lowest_rate_with_descendants() {
        let k = key(1);
        let (view, [c1, c2, c3]) = funded(&k);
        let low = spend(c1, &k, VALUE, LOW);
        // The child pays well, but leaves with its parent.
        let child = spend(out0(&low), &k, VALUE - LOW, HIGH);
        let mid = spend(c2, &k, VALUE, MID);
        let high = spend(c3, &k, VALUE, HIGH);
        let cap = low.size() + child.size() + mid.size();
        let mut pool = pool_of(cap, &view, &[&low, &child, &mid]);
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.bytes(), cap);
        assert_eq!(
            pool.fee_rate_range().unwrap().0,
            pool.get(&low.txid()).unwrap().rate
        );

        assert_eq!(accept(&mut pool, &view, &high, 9), Ok(high.txid()));
        assert!(!pool.contains(&low.txid()));
        assert!(!pool.contains(&child.txid()));
        assert!(pool.contains(&mid.txid()));
        assert!(pool.contains(&high.txid()));
        assert_eq!(pool.len(), 2);
        assert!(pool.bytes() <= cap);
        assert_eq!(pool.spender(&c1), None);
        assert_eq!(pool.spender(&out0(&low)), None);
        assert_consistent(&pool);
        // The evicted coin may be spent again.
        let again = spend(c1, &k, VALUE, MID + 1);
        assert!(pool.bytes() + again.size() <= cap);
        assert_eq!(accept(&mut pool, &view, &again, 10), Ok(again.txid()));
        assert_consistent(&pool);
    }

    #[test]
    fn full_pool_refuses_a_lower_rate_than_everything() {
        let k = key(2);
        let (view, [c1, c2, c3, c4]) = funded(&k);
        let a = spend(c1, &k, VALUE, MID);
        let b = spend(c2, &k, VALUE, HIGH);
        let mut pool = Mempool::new(a.size() + b.size());
        accept(&mut pool, &view, &a, 1).unwrap();
        accept(&mut pool, &view, &b, 2).unwrap();
        let before: Vec<Txid> = pool.by_fee_rate().map(|e| e.txid).collect();

        let poor = spend(c3, &k, VALUE, LOW);
        let rate = FeeRate::of(Amount::from_units(LOW), poor.size());
        assert!(rate >= FeeRate::MIN_RELAY);
        assert_eq!(
            accept(&mut pool, &view, &poor, 3),
            Err(MempoolError::Full(rate))
        );
        // The same rate as the lowest entry does not enter either.
        let equal = spend(c4, &k, VALUE, MID);
        assert_eq!(equal.size(), a.size());
        assert!(matches!(
            accept(&mut pool, &view, &equal, 4),
            Err(MempoolError::Full(_))
        ));
        let after: Vec<Txid> = pool.by_fee_rate().map(|e| e.txid).collect();
        assert_eq!(before, after);
        assert_eq!(pool.spender(&c3), None);
        assert_consistent(&pool);
    }

    #[test]
    fn a_refused_newcomer_evicts_nothing() {
        let k = key(3);
        let (view, [c1, c2]) = funded(&k);
        let a = spend(c1, &k, VALUE, MID);
        let b = spend(c2, &k, VALUE, HIGH);
        let mut pool = Mempool::new(a.size() + b.size());
        accept(&mut pool, &view, &a, 1).unwrap();
        accept(&mut pool, &view, &b, 2).unwrap();
        let before: Vec<Txid> = pool.by_fee_rate().map(|e| e.txid).collect();
        // A well-paying child of the lowest-rate entry would need its own parent evicted.
        let child = spend(out0(&a), &k, VALUE - MID, HIGH * 10);
        assert!(matches!(
            accept(&mut pool, &view, &child, 3),
            Err(MempoolError::Full(_))
        ));
        let after: Vec<Txid> = pool.by_fee_rate().map(|e| e.txid).collect();
        assert_eq!(before, after, "a refused transaction changed the pool");
        assert_consistent(&pool);
    }

    #[test]
    fn remove_for_block_removes_confirmed_and_conflicts_with_descendants() {
        let k = key(3);
        let (view, [c1, c2, c3]) = funded(&k);
        let a = spend(c1, &k, VALUE, MID);
        let a_child = spend(out0(&a), &k, VALUE - MID, MID);
        let b = spend(c2, &k, VALUE, MID);
        let d = spend(c3, &k, VALUE, MID);
        let d_child = spend(out0(&d), &k, VALUE - MID, MID);
        let d_grandchild = spend(out0(&d_child), &k, VALUE - 2 * MID, MID);
        let all = [&a, &a_child, &b, &d, &d_child, &d_grandchild];
        let mut pool = pool_of(DEFAULT_MAX_BYTES, &view, &all);
        assert_eq!(pool.len(), 6);

        // A block confirms `a` and a different spend of `d`'s coin.
        let conflict = spend(c3, &k, VALUE, HIGH);
        let coinbase = Transaction {
            version: 1,
            inputs: vec![],
            outputs: vec![TxOut {
                amount: Amount::from_units(1),
                address: addr(&k),
            }],
            lock_height: TIP + 1,
            memo: vec![],
        };
        let mut removed = pool.remove_for_block(&[coinbase, a.clone(), conflict]);
        removed.sort();
        let mut expected = vec![a.txid(), d.txid(), d_child.txid(), d_grandchild.txid()];
        expected.sort();
        assert_eq!(removed, expected);
        // `a_child` now spends a confirmed output and stays, as does the unrelated `b`.
        assert_eq!(pool.len(), 2);
        assert!(pool.contains(&a_child.txid()));
        assert!(pool.contains(&b.txid()));
        assert_eq!(pool.spender(&c1), None);
        assert_eq!(pool.spender(&c3), None);
        assert_eq!(pool.spender(&out0(&a)), Some(a_child.txid()));
        assert_eq!(pool.bytes(), a_child.size() + b.size());
        assert_consistent(&pool);
        // A block of nothing the pool knows changes nothing.
        assert!(pool.remove_for_block(std::slice::from_ref(&d)).is_empty());
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn drain_returns_parents_before_children() {
        let k = key(4);
        let mut view = HashMap::new();
        let c1 = fund(&mut view, 1, &k, VALUE);
        let c2 = fund(&mut view, 2, &k, VALUE);
        let root = spend(c1, &k, VALUE, MID);
        let child = spend(out0(&root), &k, VALUE - MID, MID);
        let grandchild = spend(out0(&child), &k, VALUE - 2 * MID, HIGH);
        let other = spend(c2, &k, VALUE, LOW);
        let mut pool = Mempool::new(DEFAULT_MAX_BYTES);
        // Later descendants get earlier entry times (a clock that went back), so ordering by
        // time alone would put children first.
        accept(&mut pool, &view, &root, 300).unwrap();
        accept(&mut pool, &view, &child, 200).unwrap();
        accept(&mut pool, &view, &grandchild, 100).unwrap();
        accept(&mut pool, &view, &other, 150).unwrap();

        let drained = pool.drain();
        assert!(pool.is_empty());
        assert_eq!(pool.bytes(), 0);
        assert_eq!(pool.spender(&c1), None);
        assert_eq!(drained.len(), 4);
        let pos = |tx: &Transaction| drained.iter().position(|t| t == tx).expect("drained");
        assert!(pos(&root) < pos(&child));
        assert!(pos(&child) < pos(&grandchild));
        let _ = pos(&other);
        // Every transaction's in-pool parents come earlier.
        for (i, tx) in drained.iter().enumerate() {
            for input in &tx.inputs {
                if let Some(p) = drained.iter().position(|t| t.txid() == input.prevout.txid) {
                    assert!(p < i, "parent after child");
                }
            }
        }
        // Re-accepting in drained order succeeds, and the cap survived.
        for (n, tx) in drained.into_iter().enumerate() {
            accept(&mut pool, &view, &tx, n as u64).expect("re-accepted in order");
        }
        assert_eq!(pool.len(), 4);
        assert_eq!(pool.max_bytes, DEFAULT_MAX_BYTES);
        assert_consistent(&pool);
    }
}
