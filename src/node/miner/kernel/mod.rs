//! SHA-256d header-hashing kernels. A kernel scans a range of nonces of one header template,
//! starting from the template's midstate (the first 64-byte chunk compressed once), and returns
//! the first nonce whose hash meets the target.
//!
//! Kernels, fastest first on x86_64 CPUs that have the features (detected at run time; nothing
//! is enabled at compile time):
//! - `avx512`: 16 nonces per pass in AVX-512 lanes (`avx512f`);
//! - `avx2`: 8 nonces per pass in AVX2 lanes (`avx2`);
//! - `sha-ni-x2`: two interleaved SHA-NI streams (`sha`, `sse4.1`); on the Xeons this was
//!   measured on, `sha256rnds2` is throughput-bound, so two streams gain only ~10% over one;
//! - `sha2-midstate`: the portable fallback, the sha2 crate's compression (itself SHA-NI when
//!   present).
//!
//! The lane kernels precompute everything that does not depend on the nonce (see `pre`) and
//! only finish hash word 0: a lane whose word 0 is at or below the target's is a candidate,
//! and every candidate is checked in nonce order with the portable path, so all kernels return
//! the same nonce.

#[cfg(target_arch = "x86_64")]
mod avx2;
// The AVX-512 intrinsics are stable since Rust 1.89, later than the declared `rust-version`:
// building this module needs 1.89 or later.
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod lanes;
mod pre;
#[cfg(target_arch = "x86_64")]
mod shani;

use crate::core::block::{BlockHeader, HEADER_SIZE, NONCE_OFFSET};
use crate::core::pow::Target;
use sha2::block_api::compress256;

/// SHA-256 initial state.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Where the nonce sits inside the second 64-byte chunk.
const NONCE_IN_TAIL: usize = NONCE_OFFSET - 64;

/// A header template prepared for scanning.
#[derive(Clone, Debug)]
pub struct HeaderJob {
    /// State after compressing the header's first 64 bytes.
    pub midstate: [u32; 8],
    /// The second chunk: header bytes 64..88, SHA-256 padding and the 704-bit length.
    pub tail: [u8; 64],
    /// The target as eight big-endian words (word 0 most significant).
    pub target_words: [u32; 8],
}

impl HeaderJob {
    pub fn new(header: &BlockHeader, target: &Target) -> HeaderJob {
        let bytes = header.to_bytes();
        let mut first = [0u8; 64];
        first.copy_from_slice(&bytes[..64]);
        let mut midstate = IV;
        compress256(&mut midstate, &[first]);
        let mut tail = [0u8; 64];
        tail[..HEADER_SIZE - 64].copy_from_slice(&bytes[64..]);
        tail[HEADER_SIZE - 64] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_SIZE as u64) * 8).to_be_bytes());
        let tb: [u8; 32] = target.0.to_be_bytes();
        let mut target_words = [0u32; 8];
        for (i, w) in target_words.iter_mut().enumerate() {
            *w = u32::from_be_bytes([tb[4 * i], tb[4 * i + 1], tb[4 * i + 2], tb[4 * i + 3]]);
        }
        HeaderJob {
            midstate,
            tail,
            target_words,
        }
    }

    /// The block hash for `nonce`, as the eight big-endian words of the digest.
    #[inline]
    pub fn hash_words(&self, nonce: u64) -> [u32; 8] {
        let mut tail = self.tail;
        tail[NONCE_IN_TAIL..NONCE_IN_TAIL + 8].copy_from_slice(&nonce.to_le_bytes());
        let mut s = self.midstate;
        compress256(&mut s, &[tail]);
        let mut second = [0u8; 64];
        for (i, w) in s.iter().enumerate() {
            second[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        second[32] = 0x80;
        second[56..].copy_from_slice(&256u64.to_be_bytes());
        let mut h = IV;
        compress256(&mut h, &[second]);
        h
    }

    /// Whether hash words (big-endian order) are at or below the target.
    #[inline]
    pub fn meets(&self, h: &[u32; 8]) -> bool {
        // Most candidates fail on the first word.
        if h[0] != self.target_words[0] {
            return h[0] < self.target_words[0];
        }
        h <= &self.target_words
    }
}

/// A nonce-scanning kernel.
pub trait Kernel: Send + Sync {
    fn name(&self) -> &'static str;
    /// First nonce in `start..start + count` whose hash meets the job's target.
    fn scan(&self, job: &HeaderJob, start: u64, count: u64) -> Option<u64>;
}

/// The portable kernel: sha2's compression (SHA-NI when the CPU has it, detected at run time).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sha2Kernel;

impl Kernel for Sha2Kernel {
    fn name(&self) -> &'static str {
        "sha2-midstate"
    }
    fn scan(&self, job: &HeaderJob, start: u64, count: u64) -> Option<u64> {
        let end = start.saturating_add(count);
        (start..end).find(|&n| job.meets(&job.hash_words(n)))
    }
}

/// Scan `start..start.saturating_add(count)` in passes of `lanes` nonces: `batch(base)` returns
/// a bit per lane (nonce `base + i`, wrapping) whose hash word 0 passed; those are checked in
/// order with the portable path and the first that meets the whole target is returned. Lanes
/// past the end of the range are ignored.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn scan_batches(
    job: &HeaderJob,
    start: u64,
    count: u64,
    lanes: u64,
    mut batch: impl FnMut(u64) -> u32,
) -> Option<u64> {
    let end = start.saturating_add(count);
    let mut base = start;
    while base < end {
        let mut mask = batch(base);
        let left = end - base;
        if left < lanes {
            mask &= (1u32 << left) - 1;
        }
        while mask != 0 {
            let nonce = base + u64::from(mask.trailing_zeros());
            if job.meets(&job.hash_words(nonce)) {
                return Some(nonce);
            }
            mask &= mask - 1;
        }
        base = base.saturating_add(lanes);
    }
    None
}

/// The kernels this CPU supports, fastest first.
fn kernels() -> Vec<Box<dyn Kernel>> {
    #[allow(unused_mut)]
    let mut ks: Vec<Box<dyn Kernel>> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(k) = avx512::Avx512Kernel::new() {
            ks.push(Box::new(k));
        }
        if let Some(k) = avx2::Avx2Kernel::new() {
            ks.push(Box::new(k));
        }
        if let Some(k) = shani::ShaNiKernel::new() {
            ks.push(Box::new(k));
        }
    }
    ks.push(Box::new(Sha2Kernel));
    ks
}

/// Names of the kernels this build offers on this CPU, fastest first.
pub fn available() -> Vec<&'static str> {
    kernels().iter().map(|k| k.name()).collect()
}

/// The fastest kernel this CPU supports (`None` or `"auto"`), or the named one.
pub fn select(name: Option<&str>) -> Result<Box<dyn Kernel>, String> {
    let ks = kernels();
    let want = match name {
        None | Some("auto") => return Ok(ks.into_iter().next().unwrap_or(Box::new(Sha2Kernel))),
        Some(n) => n,
    };
    match ks.into_iter().find(|k| k.name() == want) {
        Some(k) => Ok(k),
        None => Err(format!(
            "unknown or unsupported mining kernel {want:?}; available on this CPU: {}",
            available().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::address::Address;
    use crate::core::block::Block;
    use crate::core::encode::encode;
    use crate::core::hash::{BlockHash, MerkleRoot};
    use crate::core::merkle::merkle_root;
    use crate::core::params::Network;
    use crate::core::pow::{CompactTarget, U256};
    use crate::core::rules::check_block_sanity;
    use crate::core::tx::{Transaction, TxOut};
    use proptest::prelude::*;

    fn header(seed: u8, time: u64) -> BlockHeader {
        BlockHeader {
            version: 1,
            prev: BlockHash([seed; 32]),
            merkle_root: MerkleRoot([seed.wrapping_mul(3); 32]),
            time,
            bits: CompactTarget(0x207f_ffff),
            nonce: 0,
        }
    }

    /// The first nonce in `start..start.saturating_add(count)` whose plain SHA-256d (sha2
    /// crate, whole header) meets `target`.
    fn reference_scan(h: &BlockHeader, target: &Target, start: u64, count: u64) -> Option<u64> {
        (start..start.saturating_add(count)).find(|&n| {
            let mut c = *h;
            c.nonce = n;
            target.is_met_by(&c.hash().0)
        })
    }

    fn all_kernels() -> Vec<Box<dyn Kernel>> {
        available()
            .into_iter()
            .map(|n| select(Some(n)).expect("an available kernel is selectable"))
            .collect()
    }

    /// Starts at and around lane boundaries, anywhere, and next to `u64::MAX`.
    fn start_strategy() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..100,
            any::<u64>(),
            (0u64..100).prop_map(|d| u64::MAX - d),
            (0u64..100).prop_map(|d| (1u64 << 32) - 40 + d),
        ]
    }

    /// Targets that none, a few, about half or every hash meets, and targets just below a
    /// hash in the range (its word 0 passes, the full compare fails).
    fn target_for(h: &BlockHeader, kind: u8, start: u64, pick: u64) -> Target {
        match kind % 6 {
            0 => Target(U256::ZERO),
            1 => Target(U256::MAX),
            2 => Target(U256::MAX >> 1),
            3 => Target(U256::MAX >> 5),
            4 => Target(U256::MAX >> 9),
            _ => {
                let mut c = *h;
                c.nonce = start.saturating_add(pick);
                let hash = U256::from_be_bytes(c.hash().0);
                Target(hash.saturating_sub(U256::from(1u8)))
            }
        }
    }

    proptest! {
        #[test]
        fn midstate_hash_equals_plain_sha256d(seed in any::<u8>(), time in any::<u64>(), nonce in any::<u64>()) {
            let mut h = header(seed, time);
            let job = HeaderJob::new(&h, &Target(U256::MAX));
            h.nonce = nonce;
            let words = job.hash_words(nonce);
            let mut bytes = [0u8; 32];
            for (i, w) in words.iter().enumerate() {
                bytes[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
            }
            prop_assert_eq!(bytes, h.hash().0);
        }

        #[test]
        fn lane_precomputation_gives_hash_word0(seed in any::<u8>(), time in any::<u64>(), nonce in any::<u64>()) {
            let job = HeaderJob::new(&header(seed, time), &Target(U256::MAX));
            let p = pre::Pre::new(&job);
            prop_assert_eq!(pre::word0_reference(&p, nonce), job.hash_words(nonce)[0]);
        }

        #[test]
        fn every_kernel_agrees_with_sha2(
            seed in any::<u8>(),
            time in any::<u64>(),
            start in start_strategy(),
            count in prop_oneof![0u64..40, 40u64..300],
            kind in any::<u8>(),
            pick in 0u64..40,
        ) {
            let h = header(seed, time);
            let target = target_for(&h, kind, start, pick);
            let job = HeaderJob::new(&h, &target);
            let expected = reference_scan(&h, &target, start, count);
            for k in all_kernels() {
                prop_assert_eq!(k.scan(&job, start, count), expected, "kernel {}", k.name());
            }
        }

        #[test]
        fn scan_agrees_with_target_check(seed in any::<u8>(), start in any::<u64>()) {
            // About one hash in 16 meets this target.
            let target = Target(U256::MAX >> 4);
            let h = header(seed, 5);
            let job = HeaderJob::new(&h, &target);
            let expected = reference_scan(&h, &target, start, 4096);
            for k in all_kernels() {
                prop_assert_eq!(k.scan(&job, start, 4096), expected, "kernel {}", k.name());
            }
        }
    }

    /// A regtest block at height 1 on genesis paying the subsidy, with `bits`, mined by `k`.
    fn mine_block(k: &dyn Kernel, bits: CompactTarget) -> Block {
        let params = Network::Regtest.params();
        let coinbase = Transaction {
            version: 1,
            inputs: vec![],
            outputs: vec![TxOut {
                amount: params.subsidy(1),
                address: Address::from_pubkey(&[7; 32]),
            }],
            lock_height: 1,
            memo: Vec::new(),
        };
        let mut block = Block {
            header: BlockHeader {
                version: 1,
                prev: params.genesis_hash,
                merkle_root: merkle_root(&[coinbase.txid()]),
                time: params.genesis.header.time + 1,
                bits,
                nonce: 0,
            },
            txs: vec![coinbase],
        };
        let target = bits.to_target().expect("valid bits");
        let job = HeaderJob::new(&block.header, &target);
        let mut start = 0u64;
        let nonce = loop {
            if let Some(n) = k.scan(&job, start, 1 << 14) {
                break n;
            }
            start += 1 << 14;
        };
        block.header.nonce = nonce;
        // The first solution: no earlier nonce meets the target.
        assert_eq!(
            reference_scan(&block.header, &target, 0, nonce + 1),
            Some(nonce),
            "kernel {}",
            k.name()
        );
        block
    }

    #[test]
    fn blocks_mined_with_each_kernel_validate() {
        let params = Network::Regtest.params();
        let hard = Target(U256::from(1u8) << 240).to_compact();
        for k in all_kernels() {
            for bits in [params.pow_limit.to_compact(), hard] {
                let block = mine_block(&*k, bits);
                let size = encode(&block).len();
                assert!(
                    check_block_sanity(&block, size, params).is_ok(),
                    "kernel {} bits {:#x}",
                    k.name(),
                    bits.0
                );
            }
        }
    }

    #[test]
    fn empty_and_saturated_ranges() {
        let h = header(1, 2);
        let job = HeaderJob::new(&h, &Target(U256::MAX));
        for k in all_kernels() {
            assert_eq!(k.scan(&job, 5, 0), None, "{}", k.name());
            assert_eq!(k.scan(&job, u64::MAX, 100), None, "{}", k.name());
            assert_eq!(
                k.scan(&job, u64::MAX - 1, 100),
                Some(u64::MAX - 1),
                "{}",
                k.name()
            );
            assert_eq!(k.scan(&job, 17, 1), Some(17), "{}", k.name());
        }
    }

    #[test]
    fn selection_by_name() {
        assert!(select(Some("warp-drive")).is_err());
        let names = available();
        assert_eq!(names.last(), Some(&"sha2-midstate"));
        assert_eq!(select(None).map(|k| k.name()).ok(), names.first().copied());
        assert_eq!(
            select(Some("auto")).map(|k| k.name()).ok(),
            names.first().copied()
        );
        for n in &names {
            assert_eq!(select(Some(n)).map(|k| k.name()).ok(), Some(*n));
        }
        let err = select(Some("warp-drive")).err().unwrap_or_default();
        assert!(err.contains("sha2-midstate"), "{err}");
    }
}
