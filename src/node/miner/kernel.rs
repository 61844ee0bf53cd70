//! SHA-256d header-hashing kernels. A kernel scans a range of nonces of one header template,
//! starting from the template's midstate (the first 64-byte chunk compressed once), and returns
//! the first nonce whose hash meets the target. The portable kernel uses the sha2 crate's
//! compression function, which picks SHA-NI at run time when the CPU has it; faster multi-lane
//! kernels plug in behind the same trait.

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

/// Names of the kernels this build offers on this CPU, fastest first.
pub fn available() -> Vec<&'static str> {
    vec![Sha2Kernel.name()]
}

/// The fastest kernel this CPU supports, or the named one.
pub fn select(name: Option<&str>) -> Result<Box<dyn Kernel>, String> {
    match name {
        None | Some("auto") | Some("sha2-midstate") => Ok(Box::new(Sha2Kernel)),
        Some(other) => Err(format!(
            "unknown mining kernel {other:?}; available: {}",
            available().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::{BlockHash, MerkleRoot};
    use crate::core::pow::{CompactTarget, U256};
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
        fn scan_agrees_with_target_check(seed in any::<u8>(), start in any::<u64>()) {
            // About one hash in 16 meets this target.
            let target = Target(U256::MAX >> 4);
            let h = header(seed, 5);
            let job = HeaderJob::new(&h, &target);
            let found = Sha2Kernel.scan(&job, start, 4096);
            let expected = (start..start.saturating_add(4096)).find(|&n| {
                let mut c = h; c.nonce = n; target.is_met_by(&c.hash().0)
            });
            prop_assert_eq!(found, expected);
        }
    }

    #[test]
    fn unknown_kernel_is_refused() {
        assert!(select(Some("warp-drive")).is_err());
        assert_eq!(select(None).map(|k| k.name()).ok(), Some("sha2-midstate"));
    }
}
