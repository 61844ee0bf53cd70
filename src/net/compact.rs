//! Compact blocks (protocol version 2; the idea of BIP 152, shaped for this protocol): a new
//! block travels as its header, the coinbase, and a 6-byte short id for each other
//! transaction. The receiver rebuilds it from its mempool and asks only for the transactions
//! it lacks ([`crate::net::wire::Message::GetBlockTxs`]).
//!
//! A short id is SipHash-2-4 of the txid, keyed by SHA-256 of the header and a nonce the
//! sender picks, cut to 48 bits. Keying by the block means an attacker cannot grind one
//! transaction to collide with another in every block; the nonce differs per sender, so a
//! collision that does happen is not repeated by every peer. A collision (two transactions of
//! the mempool, or of the block, with one short id) is never a fault: the slot is asked for,
//! or the whole block is, and a rebuilt block whose Merkle root does not match its header is
//! fetched whole. Nothing here trusts the sender: the block rebuilt is checked by the node
//! like any other.

use crate::core::block::{Block, BlockHeader};
use crate::core::hash::{BlockHash, Txid};
use crate::core::merkle::merkle_root_checked;
use crate::core::tx::Transaction;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use siphasher::sip::SipHasher24;
use std::collections::HashMap;
use std::hash::Hasher;

/// Most transactions a compact block may stand for (and indexes or transactions in one
/// [`crate::net::wire::Message::GetBlockTxs`] / `BlockTxs`). A block with more is announced
/// by hash instead.
pub const MAX_COMPACT_TXS: usize = 16_384;

/// A 48-bit short transaction id.
pub type ShortId = [u8; 6];

/// A transaction sent whole inside a compact block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefilled {
    /// Its position in the block.
    pub index: u32,
    pub tx: Transaction,
}

/// A block as its header, short ids and the transactions sent whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    pub header: BlockHeader,
    /// Keys the short ids together with the header.
    pub nonce: u64,
    /// One per transaction not prefilled, in block order.
    pub short_ids: Vec<ShortId>,
    /// In increasing position; the coinbase (position 0) at least.
    pub prefilled: Vec<Prefilled>,
}

/// Why a compact block could not be rebuilt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// The message is malformed: the sender broke the protocol.
    #[error("malformed compact block: {0}")]
    Malformed(&'static str),
    /// Two of the block's transactions share a short id: fetch the block whole.
    #[error("two transactions of the block share a short id")]
    Collision,
    /// The transactions sent for the missing slots are not the block's.
    #[error("the transactions sent do not fill the block: {0}")]
    BadFill(&'static str),
    /// The rebuilt block's Merkle root is not its header's (a short id matched the wrong
    /// mempool transaction): fetch the block whole.
    #[error("the rebuilt block does not match its header")]
    Mismatch,
}

impl CompactError {
    /// Whether the sender broke the protocol (a collision or a mismatch may be bad luck).
    pub fn is_misbehaviour(&self) -> bool {
        matches!(self, CompactError::Malformed(_) | CompactError::BadFill(_))
    }
}

/// The SipHash keys of a block's short ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortIdKey(u64, u64);

impl ShortIdKey {
    pub fn new(header: &BlockHeader, nonce: u64) -> ShortIdKey {
        let mut h = Sha256::new();
        h.update(header.to_bytes());
        h.update(nonce.to_le_bytes());
        let d = h.finalize();
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&d[i..i + 8]);
            u64::from_le_bytes(w)
        };
        ShortIdKey(word(0), word(8))
    }

    /// The short id of `txid`.
    pub fn short_id(&self, txid: &Txid) -> ShortId {
        let mut s = SipHasher24::new_with_keys(self.0, self.1);
        s.write(&txid.0);
        let b = s.finish().to_le_bytes();
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }
}

impl CompactBlock {
    /// `block` as a compact block keyed with `nonce`, its coinbase sent whole. `None` if it
    /// has more than [`MAX_COMPACT_TXS`] transactions (announce it by hash instead).
    pub fn from_block(block: &Block, nonce: u64) -> Option<CompactBlock> {
        if block.txs.is_empty() || block.txs.len() > MAX_COMPACT_TXS {
            return None;
        }
        let key = ShortIdKey::new(&block.header, nonce);
        Some(CompactBlock {
            header: block.header,
            nonce,
            short_ids: block.txs[1..]
                .iter()
                .map(|t| key.short_id(&t.txid()))
                .collect(),
            prefilled: vec![Prefilled {
                index: 0,
                tx: block.txs[0].clone(),
            }],
        })
    }

    /// How many transactions the block has.
    pub fn tx_count(&self) -> usize {
        self.short_ids.len() + self.prefilled.len()
    }

    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }
}

/// A block being rebuilt from a compact block.
#[derive(Clone, Debug)]
pub struct PartialBlock {
    header: BlockHeader,
    key: ShortIdKey,
    /// Each position's transaction, once known.
    slots: Vec<Option<Transaction>>,
    /// The short id of each position not prefilled.
    ids: Vec<Option<ShortId>>,
    /// Bytes of the transactions in place, and the most a block's transactions may take.
    bytes: usize,
    max_bytes: usize,
}

impl PartialBlock {
    /// Lay out `cb` and fill what the mempool has: `mempool` lists its txids, `fetch` gives
    /// a transaction by txid. Two mempool transactions with one short id fill nothing: that
    /// position is asked for. The transactions may take `max_bytes` at most (a block's
    /// limit): a compact block that would need more is malformed.
    pub fn new(
        cb: &CompactBlock,
        mempool: impl IntoIterator<Item = Txid>,
        fetch: impl Fn(&Txid) -> Option<Transaction>,
        max_bytes: usize,
    ) -> Result<PartialBlock, CompactError> {
        let total = cb.tx_count();
        if total == 0 || total > MAX_COMPACT_TXS {
            return Err(CompactError::Malformed("transaction count out of range"));
        }
        let mut slots: Vec<Option<Transaction>> = vec![None; total];
        let mut ids: Vec<Option<ShortId>> = vec![None; total];
        let mut last: Option<u32> = None;
        for p in &cb.prefilled {
            if last.is_some_and(|l| p.index <= l) {
                return Err(CompactError::Malformed(
                    "prefilled positions not increasing",
                ));
            }
            let Some(slot) = slots.get_mut(p.index as usize) else {
                return Err(CompactError::Malformed(
                    "prefilled position beyond the block",
                ));
            };
            *slot = Some(p.tx.clone());
            last = Some(p.index);
        }
        if slots.first().is_none_or(Option::is_none) {
            return Err(CompactError::Malformed("the coinbase is not sent whole"));
        }
        let mut bytes: usize = cb.prefilled.iter().map(|p| p.tx.size()).sum();
        if bytes > max_bytes {
            return Err(CompactError::Malformed("more than a block may hold"));
        }
        let key = ShortIdKey::new(&cb.header, cb.nonce);
        // Position of each short id (the free positions take the short ids in order).
        let mut by_id: HashMap<ShortId, usize> = HashMap::with_capacity(cb.short_ids.len());
        let mut next = cb.short_ids.iter();
        for (i, slot) in slots.iter().enumerate() {
            if slot.is_some() {
                continue;
            }
            let Some(id) = next.next() else {
                return Err(CompactError::Malformed(
                    "fewer short ids than free positions",
                ));
            };
            ids[i] = Some(*id);
            if by_id.insert(*id, i).is_some() {
                return Err(CompactError::Collision);
            }
        }
        // A position two mempool transactions match is left to be asked for.
        let mut matched: HashMap<usize, Option<Txid>> = HashMap::new();
        for txid in mempool {
            if let Some(&i) = by_id.get(&key.short_id(&txid)) {
                matched
                    .entry(i)
                    .and_modify(|m| *m = None)
                    .or_insert(Some(txid));
            }
        }
        let mut matched: Vec<(usize, Txid)> = matched
            .into_iter()
            .filter_map(|(i, t)| Some((i, t?)))
            .collect();
        matched.sort_unstable();
        for (i, txid) in matched {
            if let Some(tx) = fetch(&txid)
                && let Some(slot) = slots.get_mut(i)
            {
                // Past the limit, the rest is asked for (and the answer then refused).
                if bytes + tx.size() > max_bytes {
                    break;
                }
                bytes += tx.size();
                *slot = Some(tx);
            }
        }
        Ok(PartialBlock {
            header: cb.header,
            key,
            slots,
            ids,
            bytes,
            max_bytes,
        })
    }

    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    pub fn header(&self) -> &BlockHeader {
        &self.header
    }

    /// The positions still empty, in order.
    pub fn missing(&self) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Put `txs` in the empty positions, in order: as many as there are, each with its
    /// position's short id.
    pub fn fill(&mut self, txs: Vec<Transaction>) -> Result<(), CompactError> {
        let missing = self.missing();
        if txs.len() != missing.len() {
            return Err(CompactError::BadFill(
                "not as many transactions as asked for",
            ));
        }
        for (i, tx) in missing.into_iter().zip(txs) {
            let i = i as usize;
            if self.ids.get(i).copied().flatten() != Some(self.key.short_id(&tx.txid())) {
                return Err(CompactError::BadFill("a transaction with another short id"));
            }
            self.bytes += tx.size();
            if self.bytes > self.max_bytes {
                return Err(CompactError::BadFill("more than a block may hold"));
            }
            if let Some(slot) = self.slots.get_mut(i) {
                *slot = Some(tx);
            }
        }
        Ok(())
    }

    /// The block, if every position is filled and the transactions make its Merkle root.
    pub fn finish(self) -> Result<Block, CompactError> {
        let txs: Option<Vec<Transaction>> = self.slots.into_iter().collect();
        let Some(txs) = txs else {
            return Err(CompactError::BadFill("positions left empty"));
        };
        let block = Block {
            header: self.header,
            txs,
        };
        let (root, mutated) = merkle_root_checked(&block.txids());
        if mutated || root != block.header.merkle_root {
            return Err(CompactError::Mismatch);
        }
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::MerkleRoot;
    use crate::core::merkle::merkle_root;

    fn tx(i: u64) -> Transaction {
        Transaction {
            version: 1,
            inputs: Vec::new(),
            outputs: Vec::new(),
            lock_height: i,
            memo: Vec::new(),
        }
    }

    fn block(n: u64) -> Block {
        let txs: Vec<Transaction> = (0..n).map(tx).collect();
        let ids: Vec<Txid> = txs.iter().map(Transaction::txid).collect();
        Block {
            header: BlockHeader {
                version: 1,
                prev: BlockHash::ZERO,
                merkle_root: merkle_root(&ids),
                time: 1,
                bits: crate::core::pow::CompactTarget(0x207f_ffff),
                nonce: 0,
            },
            txs,
        }
    }

    const MAX: usize = 1_000_000;

    fn rebuild(cb: &CompactBlock, pool: &[Transaction]) -> PartialBlock {
        PartialBlock::new(
            cb,
            pool.iter().map(Transaction::txid),
            |t| pool.iter().find(|x| x.txid() == *t).cloned(),
            MAX,
        )
        .unwrap()
    }

    #[test]
    fn a_block_round_trips_through_its_compact_form_and_the_missing_transactions() {
        let b = block(5);
        let cb = CompactBlock::from_block(&b, 42).unwrap();
        assert_eq!(cb.short_ids.len(), 4);
        assert_eq!(cb.tx_count(), 5);
        let mut p = rebuild(&cb, &[b.txs[1].clone(), b.txs[4].clone(), tx(99)]);
        assert_eq!(p.missing(), vec![2, 3]);
        p.fill(vec![b.txs[2].clone(), b.txs[3].clone()]).unwrap();
        assert_eq!(p.finish().unwrap(), b);
        // The nonce changes every short id.
        let other = CompactBlock::from_block(&b, 43).unwrap();
        assert!(
            cb.short_ids
                .iter()
                .zip(&other.short_ids)
                .all(|(x, y)| x != y)
        );
    }

    #[test]
    fn a_short_id_the_mempool_matches_twice_fills_nothing_and_that_position_is_asked_for() {
        let b = block(3);
        let cb = CompactBlock::from_block(&b, 1).unwrap();
        // Two mempool transactions on one 48-bit short id take about 2^24 transactions to
        // find; a txid listed twice matches twice the same way.
        let ids = vec![b.txs[1].txid(), b.txs[1].txid(), b.txs[2].txid()];
        let p = PartialBlock::new(
            &cb,
            ids,
            |t| b.txs.iter().find(|x| x.txid() == *t).cloned(),
            MAX,
        )
        .unwrap();
        assert_eq!(p.missing(), vec![1]);
    }

    #[test]
    fn transactions_beyond_a_blocks_limit_are_refused() {
        let b = block(5);
        let cb = CompactBlock::from_block(&b, 1).unwrap();
        let one = b.txs[1].size();
        // Room for the coinbase and two more: the mempool fills two, the rest is asked
        // for, and an answer that would pass the limit is refused.
        let max = b.txs[0].size() + 2 * one;
        let pool: Vec<Transaction> = b.txs[1..].to_vec();
        let mut p = PartialBlock::new(
            &cb,
            pool.iter().map(Transaction::txid),
            |t| pool.iter().find(|x| x.txid() == *t).cloned(),
            max,
        )
        .unwrap();
        assert_eq!(p.missing(), vec![3, 4]);
        let e = p
            .fill(vec![b.txs[3].clone(), b.txs[4].clone()])
            .unwrap_err();
        assert!(e.is_misbehaviour(), "{e}");
        // A coinbase alone over the limit.
        let e = PartialBlock::new(&cb, [], |_| None, 1).unwrap_err();
        assert!(e.is_misbehaviour(), "{e}");
    }

    #[test]
    fn malformed_compact_blocks_are_refused_as_misbehaviour_and_bad_luck_is_not() {
        let b = block(4);
        let good = CompactBlock::from_block(&b, 1).unwrap();
        let cases = [
            CompactBlock {
                prefilled: Vec::new(),
                ..good.clone()
            },
            CompactBlock {
                prefilled: vec![good.prefilled[0].clone(), good.prefilled[0].clone()],
                ..good.clone()
            },
            CompactBlock {
                prefilled: vec![Prefilled {
                    index: 9,
                    tx: tx(0),
                }],
                ..good.clone()
            },
            CompactBlock {
                short_ids: Vec::new(),
                prefilled: Vec::new(),
                ..good.clone()
            },
        ];
        for cb in cases {
            let e = PartialBlock::new(&cb, [], |_| None, MAX).unwrap_err();
            assert!(e.is_misbehaviour(), "{e}");
        }
        // Two of the block's transactions on one short id.
        let dup = CompactBlock {
            short_ids: vec![good.short_ids[0]; 3],
            ..good.clone()
        };
        let e = PartialBlock::new(&dup, [], |_| None, MAX).unwrap_err();
        assert_eq!(e, CompactError::Collision);
        assert!(!e.is_misbehaviour());
        // A rebuilt block whose root is not its header's.
        let mut wrong = b.clone();
        wrong.header.merkle_root = MerkleRoot([1; 32]);
        let p = rebuild(&CompactBlock::from_block(&wrong, 1).unwrap(), &b.txs);
        assert_eq!(p.finish().unwrap_err(), CompactError::Mismatch);
        // A fill with the wrong count or a transaction of another short id.
        let mut p = rebuild(&good, &[]);
        assert!(
            p.fill(vec![b.txs[1].clone()])
                .unwrap_err()
                .is_misbehaviour()
        );
        let mut p = rebuild(&good, &[]);
        let swapped = vec![b.txs[2].clone(), b.txs[1].clone(), b.txs[3].clone()];
        assert!(p.fill(swapped).unwrap_err().is_misbehaviour());
    }
}
