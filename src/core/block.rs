//! Blocks and their fixed 88-byte header.
//!
//! Header layout (little-endian integers):
//! `version u32 | prev 32 | merkle_root 32 | time u64 | bits u32 | nonce u64`.
//! The first 64-byte SHA-256 chunk holds version, prev and 28 bytes of the merkle root, all fixed
//! for a block template; the nonce lies in the second chunk, so a miner compresses the first
//! chunk once (the midstate) and then pays two compressions per nonce.

use super::encode::{DecodeError, decode_canonical, encode};
use super::hash::{BlockHash, MerkleRoot, Txid, sha256d};
use super::pow::CompactTarget;
use super::tx::Transaction;
use serde::{Deserialize, Serialize};

/// Encoded header size.
pub const HEADER_SIZE: usize = 88;
/// Byte offset of the nonce in the header.
pub const NONCE_OFFSET: usize = 80;

/// A block header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "HeaderBytes", from = "HeaderBytes")]
pub struct BlockHeader {
    pub version: u32,
    pub prev: BlockHash,
    pub merkle_root: MerkleRoot,
    /// Seconds since the Unix epoch.
    pub time: u64,
    pub bits: CompactTarget,
    pub nonce: u64,
}

/// The header's wire form: exactly 88 bytes, no length prefix.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct HeaderBytes(#[serde(with = "serde_big_array::BigArray")] [u8; HEADER_SIZE]);

impl From<BlockHeader> for HeaderBytes {
    fn from(h: BlockHeader) -> Self {
        HeaderBytes(h.to_bytes())
    }
}

impl From<HeaderBytes> for BlockHeader {
    fn from(b: HeaderBytes) -> Self {
        BlockHeader::from_bytes(&b.0)
    }
}

fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

impl BlockHeader {
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(&self.prev.0);
        b[36..68].copy_from_slice(&self.merkle_root.0);
        b[68..76].copy_from_slice(&self.time.to_le_bytes());
        b[76..80].copy_from_slice(&self.bits.0.to_le_bytes());
        b[80..88].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> BlockHeader {
        BlockHeader {
            version: u32::from_le_bytes(arr(&b[0..4])),
            prev: BlockHash(arr(&b[4..36])),
            merkle_root: MerkleRoot(arr(&b[36..68])),
            time: u64::from_le_bytes(arr(&b[68..76])),
            bits: CompactTarget(u32::from_le_bytes(arr(&b[76..80]))),
            nonce: u64::from_le_bytes(arr(&b[80..88])),
        }
    }

    pub fn hash(&self) -> BlockHash {
        BlockHash(sha256d(&self.to_bytes()))
    }
}

/// A block: header and transactions, the first of which is the coinbase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<Transaction>,
}

impl Block {
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    /// Decode canonical bytes of at most `max` length.
    pub fn decode(bytes: &[u8], max: usize) -> Result<Block, DecodeError> {
        decode_canonical(bytes, max)
    }
    pub fn txids(&self) -> Vec<Txid> {
        self.txs.iter().map(Transaction::txid).collect()
    }
    /// The block height the coinbase commits to, if there is a coinbase.
    pub fn coinbase_height(&self) -> Option<u64> {
        self.txs
            .first()
            .filter(|t| t.is_coinbase())
            .map(|t| t.lock_height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn header_bytes_round_trip(v in any::<u32>(), p in any::<[u8;32]>(), m in any::<[u8;32]>(),
                                   t in any::<u64>(), b in any::<u32>(), n in any::<u64>()) {
            let h = BlockHeader { version: v, prev: BlockHash(p), merkle_root: MerkleRoot(m), time: t,
                                  bits: CompactTarget(b), nonce: n };
            prop_assert_eq!(BlockHeader::from_bytes(&h.to_bytes()), h);
            let wire = encode(&h);
            prop_assert_eq!(wire.len(), HEADER_SIZE);
            prop_assert_eq!(decode_canonical::<BlockHeader>(&wire, 100).unwrap(), h);
        }
    }

    #[test]
    fn nonce_is_in_the_second_chunk() {
        let h = BlockHeader {
            version: 1,
            prev: BlockHash([1; 32]),
            merkle_root: MerkleRoot([2; 32]),
            time: 3,
            bits: CompactTarget(4),
            nonce: 0,
        };
        let mut h2 = h;
        h2.nonce = u64::MAX;
        assert_eq!(h.to_bytes()[..64], h2.to_bytes()[..64]);
        assert_eq!(&h2.to_bytes()[NONCE_OFFSET..], &[0xff; 8]);
    }
}
