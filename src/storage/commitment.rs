//! The UTXO commitment: an incremental multiset hash of the unspent set, kept with the tip.
//!
//! The commitment is the sum, mod 2^256, of SHA-256(outpoint key ‖ coin bytes) over every coin,
//! with the number of coins beside it. Adding or removing one coin is one hash and one
//! addition, so [`Batch::connect`](super::Batch::connect) and
//! [`Batch::disconnect`](super::Batch::disconnect) update it in the same write transaction as the
//! UTXO table; at open the stored value is compared with one computed from the table. It finds
//! accidental damage (a flipped bit, a lost or extra row); it is not meant to resist someone who
//! can write the file (a sum of hashes mod 2^256 is not collision resistant against a chosen set).

use crate::core::hash::BlockHash;
use crate::core::pow::U256;
use sha2::{Digest, Sha256};

/// Length of the stored record: tip hash ‖ sum (LE) ‖ count (LE).
pub(super) const RECORD_LEN: usize = 32 + 32 + 8;

/// The multiset hash of a UTXO set and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct UtxoCommitment {
    sum: U256,
    count: u64,
}

fn element(key: &[u8; 36], coin: &[u8; 37]) -> U256 {
    let mut h = Sha256::new();
    h.update(key);
    h.update(coin);
    let d: [u8; 32] = h.finalize().into();
    U256::from_le_bytes(d)
}

impl UtxoCommitment {
    /// Number of coins in the set.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum as 32 bytes (little-endian), for display.
    pub fn digest(&self) -> [u8; 32] {
        self.sum.to_le_bytes()
    }

    /// Add one coin (outpoint key and coin bytes as the UTXO table stores them).
    pub fn add(&mut self, key: &[u8; 36], coin: &[u8; 37]) {
        self.sum = self.sum.wrapping_add(element(key, coin));
        self.count = self.count.wrapping_add(1);
    }

    /// Remove one coin.
    pub fn remove(&mut self, key: &[u8; 36], coin: &[u8; 37]) {
        self.sum = self.sum.wrapping_sub(element(key, coin));
        self.count = self.count.wrapping_sub(1);
    }

    /// The stored record: the commitment is of the UTXO set after block `tip`.
    pub(super) fn to_record(self, tip: &BlockHash) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[..32].copy_from_slice(&tip.0);
        r[32..64].copy_from_slice(&self.sum.to_le_bytes::<32>());
        r[64..].copy_from_slice(&self.count.to_le_bytes());
        r
    }

    /// Parse a stored record; `None` if it has the wrong length.
    pub(super) fn from_record(r: &[u8]) -> Option<(BlockHash, UtxoCommitment)> {
        if r.len() != RECORD_LEN {
            return None;
        }
        let mut tip = [0u8; 32];
        tip.copy_from_slice(&r[..32]);
        let mut sum = [0u8; 32];
        sum.copy_from_slice(&r[32..64]);
        let mut count = [0u8; 8];
        count.copy_from_slice(&r[64..]);
        Some((
            BlockHash(tip),
            UtxoCommitment {
                sum: U256::from_le_bytes(sum),
                count: u64::from_le_bytes(count),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coin(n: u8) -> ([u8; 36], [u8; 37]) {
        ([n; 36], [n.wrapping_mul(3); 37])
    }

    #[test]
    fn order_does_not_matter_and_remove_undoes_add() {
        let (a, b, c) = (coin(1), coin(2), coin(3));
        let mut x = UtxoCommitment::default();
        x.add(&a.0, &a.1);
        x.add(&b.0, &b.1);
        x.add(&c.0, &c.1);
        let mut y = UtxoCommitment::default();
        y.add(&c.0, &c.1);
        y.add(&a.0, &a.1);
        y.add(&b.0, &b.1);
        assert_eq!(x, y);
        y.remove(&a.0, &a.1);
        assert_ne!(x, y);
        let mut z = UtxoCommitment::default();
        z.add(&b.0, &b.1);
        z.add(&c.0, &c.1);
        assert_eq!(y, z);
        z.remove(&b.0, &b.1);
        z.remove(&c.0, &c.1);
        assert_eq!(z, UtxoCommitment::default());
    }

    #[test]
    fn a_flipped_bit_in_a_coin_changes_it() {
        let (k, v) = coin(7);
        let mut x = UtxoCommitment::default();
        x.add(&k, &v);
        let mut v2 = v;
        v2[5] ^= 1;
        let mut y = UtxoCommitment::default();
        y.add(&k, &v2);
        assert_ne!(x, y);
        assert_eq!(x.count(), y.count());
    }

    #[test]
    fn record_round_trips() {
        let (k, v) = coin(9);
        let mut x = UtxoCommitment::default();
        x.add(&k, &v);
        let tip = BlockHash([4; 32]);
        let r = x.to_record(&tip);
        assert_eq!(UtxoCommitment::from_record(&r), Some((tip, x)));
        assert_eq!(UtxoCommitment::from_record(&r[1..]), None);
    }
}
