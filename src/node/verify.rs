//! Signature verification on several cores, signature checks done before (and apart from)
//! the node thread's state checks, and the cache of signatures already verified. The rule
//! itself is in [`crate::core::sig`]: every verifier here answers exactly as
//! [`SerialVerifier`] does, first bad index included.

use crate::core::params::Params;
use crate::core::rules::{SigCheck, SigVerifier, first_invalid, tx_sig_checks, verify_batch};
use crate::core::tx::Transaction;
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::sync::Mutex;

#[cfg(doc)]
use crate::core::rules::SerialVerifier;

/// Fewest signatures worth a thread of their own: below this a batch takes well under a
/// millisecond, and starting a thread (tens of microseconds) would eat the gain.
pub const MIN_PER_THREAD: usize = 64;

/// This machine's cores, as the standard library reports them (at least 1). Read once:
/// on Linux each query reads cgroup files, which once cost a tenth of the API's CPU time
/// when every batch of transactions asked again.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// ZIP-215 batch verification split into contiguous chunks, one per thread
/// (`std::thread::scope`); small sets stay on the calling thread.
#[derive(Clone, Copy, Debug)]
pub struct ParallelVerifier {
    threads: usize,
}

impl ParallelVerifier {
    /// At most `threads` threads (at least one: the caller's).
    pub fn new(threads: usize) -> ParallelVerifier {
        ParallelVerifier {
            threads: threads.max(1),
        }
    }

    /// One thread per core.
    pub fn all_cores() -> ParallelVerifier {
        ParallelVerifier::new(cores())
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many threads `n` items get.
    fn threads_for(&self, n: usize) -> usize {
        self.threads.min(n / MIN_PER_THREAD).max(1)
    }
}

impl Default for ParallelVerifier {
    fn default() -> Self {
        ParallelVerifier::all_cores()
    }
}

impl SigVerifier for ParallelVerifier {
    fn verify_all(&self, checks: &[SigCheck]) -> Result<(), usize> {
        let ranges = split(checks.len(), self.threads_for(checks.len()));
        let firsts = run_each(&ranges, |r| first_invalid(&checks[r.clone()]));
        // Chunks are in order, so the first chunk with a bad signature holds the first one.
        match ranges
            .iter()
            .zip(firsts)
            .find_map(|(r, f)| f.map(|i| r.start + i))
        {
            Some(i) => Err(i),
            None => Ok(()),
        }
    }
}

/// `0..n` in `parts` contiguous ranges of nearly equal length.
fn split(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|i| n * i / parts..n * (i + 1) / parts)
        .collect()
}

/// `f` over every range, the first on the calling thread and the others on scoped threads.
/// A thread that cannot be started, or that panics, has its range redone here.
fn run_each<T: Send>(ranges: &[Range<usize>], f: impl Fn(&Range<usize>) -> T + Sync) -> Vec<T> {
    let Some((first, rest)) = ranges.split_first() else {
        return Vec::new();
    };
    if rest.is_empty() {
        return vec![f(first)];
    }
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = rest
            .iter()
            .map(|r| {
                std::thread::Builder::new()
                    .name("chain-tui-verify".into())
                    .spawn_scoped(s, move || f(r))
            })
            .collect();
        let mut out = vec![f(first)];
        for (r, h) in rest.iter().zip(handles) {
            out.push(match h.map(|h| h.join()) {
                Ok(Ok(v)) => v,
                _ => f(r),
            });
        }
        out
    })
}

/// A transaction's signature verdict, computed from the transaction alone. Used as the
/// [`SigVerifier`] of its mempool admission, it answers for exactly the checks it was made
/// from (the same value [`SerialVerifier`] gives); anything else is verified afresh.
#[derive(Clone, Debug)]
pub struct TxSigs {
    checks: Vec<SigCheck>,
    /// `None`: not checked yet (checked when needed).
    verdict: Option<Result<(), usize>>,
}

impl TxSigs {
    /// Nothing verified yet: [`SigVerifier::verify_all`] does the work when asked.
    pub fn unchecked() -> TxSigs {
        TxSigs {
            checks: Vec::new(),
            verdict: None,
        }
    }

    /// Whether a verdict was computed ahead of time.
    pub fn is_checked(&self) -> bool {
        self.verdict.is_some()
    }
}

impl SigVerifier for TxSigs {
    fn verify_all(&self, checks: &[SigCheck]) -> Result<(), usize> {
        match self.verdict {
            Some(v) if checks == self.checks.as_slice() => v,
            _ => ParallelVerifier::all_cores().verify_all(checks),
        }
    }
}

/// Verify the signatures of `txs`, all as one batch when they are all valid (the usual case),
/// over up to `verifier.threads()` threads; each transaction gets its own verdict. A failed
/// batch is bisected along transaction boundaries down to the bad transactions.
pub fn verify_txs(
    txs: &[Transaction],
    params: &Params,
    verifier: &ParallelVerifier,
) -> Vec<TxSigs> {
    let checks: Vec<Vec<SigCheck>> = txs.iter().map(|tx| tx_sig_checks(tx, params)).collect();
    let total: usize = checks.iter().map(Vec::len).sum();
    // Split at transaction boundaries into parts of roughly equal signature counts.
    let parts = verifier.threads_for(total);
    let mut ranges = Vec::with_capacity(parts);
    let (mut start, mut seen) = (0, 0);
    for (i, c) in checks.iter().enumerate() {
        seen += c.len();
        if seen * parts >= total * (ranges.len() + 1) && ranges.len() + 1 < parts {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    ranges.push(start..checks.len());
    let verdicts: Vec<Result<(), usize>> = run_each(&ranges, |r| verdicts(&checks[r.clone()]))
        .into_iter()
        .flatten()
        .collect();
    checks
        .into_iter()
        .zip(verdicts)
        .map(|(checks, v)| TxSigs {
            checks,
            verdict: Some(v),
        })
        .collect()
}

/// One verdict per transaction's checks.
fn verdicts(txs: &[Vec<SigCheck>]) -> Vec<Result<(), usize>> {
    let all: Vec<SigCheck> = txs.iter().flatten().copied().collect();
    if verify_batch(&all) {
        return vec![Ok(()); txs.len()];
    }
    if let [one] = txs {
        return vec![first_invalid(one).map_or(Ok(()), Err)];
    }
    let (left, right) = txs.split_at(txs.len() / 2);
    let mut out = verdicts(left);
    out.extend(verdicts(right));
    out
}

/// Signatures verified when their transactions entered the mempool, so that a block carrying
/// those transactions (the usual case: compact blocks are rebuilt from the mempool) does not
/// verify them again. A check is kept as the SHA-256 of its message, key and signature: the
/// same triple always verifies the same way, so a hit is as good as a verification. Bounded:
/// the oldest entries go first.
pub struct SigCache {
    inner: Mutex<CacheInner>,
    capacity: usize,
}

#[derive(Default)]
struct CacheInner {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

/// Signatures a [`SigCache`] keeps by default (about 20 MB): a full mempool (32 MB) of
/// one-input transactions holds about 190,000.
pub const SIG_CACHE_ENTRIES: usize = 200_000;

impl SigCache {
    pub fn new(capacity: usize) -> SigCache {
        SigCache {
            inner: Mutex::new(CacheInner::default()),
            capacity,
        }
    }

    fn key(c: &SigCheck) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(c.msg);
        h.update(c.pubkey);
        h.update(c.signature);
        h.finalize().into()
    }

    /// Remember `checks` as verified.
    pub fn insert_all(&self, checks: &[SigCheck]) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for c in checks {
            let k = SigCache::key(c);
            if inner.set.insert(k) {
                inner.order.push_back(k);
            }
        }
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.set.remove(&old);
            }
        }
    }

    /// Which of `checks` are not known as verified, by index.
    fn unknown(&self, checks: &[SigCheck]) -> Vec<usize> {
        let Ok(inner) = self.inner.lock() else {
            return (0..checks.len()).collect();
        };
        (0..checks.len())
            .filter(|i| !inner.set.contains(&SigCache::key(&checks[*i])))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.set.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Verifies only what `cache` does not know as verified, with `inner`.
pub struct CachedVerifier<V> {
    pub inner: V,
    pub cache: std::sync::Arc<SigCache>,
}

impl<V: SigVerifier> SigVerifier for CachedVerifier<V> {
    fn verify_all(&self, checks: &[SigCheck]) -> Result<(), usize> {
        let todo = self.cache.unknown(checks);
        if todo.len() == checks.len() {
            return self.inner.verify_all(checks);
        }
        let rest: Vec<SigCheck> = todo.iter().map(|i| checks[*i]).collect();
        self.inner
            .verify_all(&rest)
            .map_err(|j| todo.get(j).copied().unwrap_or(j))
    }
}

/// Verifies with `inner`, and keeps what passed for `cache`, which it joins on
/// [`Recording::commit`]: only once the transaction is admitted, so a transaction refused
/// for its fee (made over and over at no cost) cannot push others out of the cache.
pub struct Recording<'a, V: ?Sized> {
    inner: &'a V,
    cache: &'a SigCache,
    passed: Mutex<Vec<SigCheck>>,
}

impl<'a, V: SigVerifier + ?Sized> Recording<'a, V> {
    pub fn new(inner: &'a V, cache: &'a SigCache) -> Recording<'a, V> {
        Recording {
            inner,
            cache,
            passed: Mutex::new(Vec::new()),
        }
    }

    /// Remember what passed as verified.
    pub fn commit(self) {
        if let Ok(passed) = self.passed.into_inner() {
            self.cache.insert_all(&passed);
        }
    }
}

impl<V: SigVerifier + ?Sized> SigVerifier for Recording<'_, V> {
    fn verify_all(&self, checks: &[SigCheck]) -> Result<(), usize> {
        let r = self.inner.verify_all(checks);
        if r.is_ok()
            && let Ok(mut passed) = self.passed.lock()
        {
            passed.extend_from_slice(checks);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::address::Address;
    use crate::core::amount::Amount;
    use crate::core::hash::Txid;
    use crate::core::params::Network;
    use crate::core::rules::{BatchVerifier, SerialVerifier};
    use crate::core::tx::{OutPoint, TxIn, TxOut};
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    fn tx(seed: u8, inputs: usize) -> Transaction {
        let params = Network::Regtest.params();
        let key = SigningKey::from_bytes(&[seed; 32]);
        let mut tx = Transaction {
            version: 1,
            inputs: (0..inputs)
                .map(|i| TxIn {
                    prevout: OutPoint {
                        txid: Txid([seed; 32]),
                        vout: i as u32,
                    },
                    pubkey: key.verifying_key().to_bytes(),
                    signature: [0; 64],
                })
                .collect(),
            outputs: vec![TxOut {
                amount: Amount::from_units(1000),
                address: Address::from_hash([seed; 20]),
            }],
            lock_height: 0,
            memo: vec![],
        };
        let h = tx.sighash(&params.genesis_hash);
        for i in &mut tx.inputs {
            i.signature = key.sign(&h).to_bytes();
        }
        tx
    }

    #[test]
    fn a_cached_verifier_skips_what_the_mempool_verified_and_checks_the_rest() {
        let params = Network::Regtest.params();
        // One input each: a transaction's inputs under one key are one check.
        let checks = |seeds: &[u8]| -> Vec<SigCheck> {
            seeds
                .iter()
                .flat_map(|s| tx_sig_checks(&tx(*s, 1), params))
                .collect()
        };
        let good = checks(&[1, 4, 5]);
        let mut bad = checks(&[2, 6]);
        bad[1].signature[0] ^= 1;
        let cache = std::sync::Arc::new(SigCache::new(100));
        // What a recording verifier passed is remembered once committed; what failed is
        // not; nothing is without a commit.
        let serial = ParallelVerifier::new(1);
        let rec = Recording::new(&serial, &cache);
        assert_eq!(rec.verify_all(&good), Ok(()));
        drop(rec);
        assert_eq!(cache.len(), 0);
        let rec = Recording::new(&serial, &cache);
        assert_eq!(rec.verify_all(&good), Ok(()));
        assert_eq!(rec.verify_all(&bad), Err(1));
        rec.commit();
        assert_eq!(cache.len(), 3);
        let v = CachedVerifier {
            inner: ParallelVerifier::new(1),
            cache: cache.clone(),
        };
        // A bad signature after the cached ones is found at its own index.
        let mut all = good.clone();
        all.extend(bad.iter().copied());
        assert_eq!(v.verify_all(&all), Err(4));
        // A cached check is not verified again: one planted in the cache passes though it
        // is invalid (what a cache hit means), while the same set uncached fails.
        cache.insert_all(&bad[1..]);
        assert_eq!(v.verify_all(&all), Ok(()));
        assert_eq!(ParallelVerifier::new(1).verify_all(&all), Err(4));
    }

    #[test]
    fn the_signature_cache_keeps_the_newest_entries() {
        let params = Network::Regtest.params();
        let checks: Vec<SigCheck> = (10..15)
            .flat_map(|s| tx_sig_checks(&tx(s, 1), params))
            .collect();
        let cache = SigCache::new(3);
        cache.insert_all(&checks);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.unknown(&checks), vec![0, 1]);
    }

    #[test]
    fn split_covers_everything_in_order() {
        for n in [0, 1, 5, 64, 129, 2000] {
            for parts in [1, 2, 3, 8] {
                let r = split(n, parts);
                assert_eq!(r.first().map(|r| r.start), Some(0));
                assert_eq!(r.last().map(|r| r.end), Some(n));
                assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn parallel_agrees_with_serial(
            n in 1usize..400, bad in proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
            threads in 1usize..5,
        ) {
            let params = Network::Regtest.params();
            let txs: Vec<Transaction> = (0..n).map(|i| tx(i as u8, 1)).collect();
            let mut checks: Vec<SigCheck> =
                txs.iter().flat_map(|t| tx_sig_checks(t, params)).collect();
            let bad: std::collections::BTreeSet<usize> = bad.iter().map(|b| b.index(n)).collect();
            for &i in &bad {
                checks[i].msg[5] ^= 1;
            }
            let serial = SerialVerifier.verify_all(&checks);
            prop_assert_eq!(BatchVerifier.verify_all(&checks), serial);
            prop_assert_eq!(ParallelVerifier::new(threads).verify_all(&checks), serial);
        }

        #[test]
        fn transaction_verdicts_match_serial(
            shape in proptest::collection::vec((1usize..4, any::<bool>(), 0usize..4), 1..150),
            threads in 1usize..4,
        ) {
            let params = Network::Regtest.params();
            let mut txs = Vec::new();
            for (i, (inputs, broken, which)) in shape.iter().enumerate() {
                let mut t = tx(i as u8, *inputs);
                if *broken {
                    let w = which % inputs;
                    t.inputs[w].signature[33] ^= 0x10;
                }
                txs.push(t);
            }
            let got = verify_txs(&txs, params, &ParallelVerifier::new(threads));
            prop_assert_eq!(got.len(), txs.len());
            for (t, v) in txs.iter().zip(&got) {
                let checks = tx_sig_checks(t, params);
                prop_assert_eq!(v.verify_all(&checks), SerialVerifier.verify_all(&checks));
                prop_assert!(v.is_checked());
            }
        }
    }

    #[test]
    fn a_verdict_answers_only_for_its_own_checks() {
        let params = Network::Regtest.params();
        let good = tx(1, 2);
        let mut bad = good.clone();
        bad.inputs[1].signature[0] ^= 1;
        let v = verify_txs(
            std::slice::from_ref(&good),
            params,
            &ParallelVerifier::new(1),
        );
        assert_eq!(v[0].verify_all(&tx_sig_checks(&good, params)), Ok(()));
        // Other checks than the ones it was made from are verified afresh.
        assert_eq!(v[0].verify_all(&tx_sig_checks(&bad, params)), Err(1));
        assert_eq!(
            TxSigs::unchecked().verify_all(&tx_sig_checks(&bad, params)),
            Err(1)
        );
        assert!(verify_txs(&[], params, &ParallelVerifier::new(2)).is_empty());
    }
}
