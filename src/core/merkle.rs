//! Merkle trees over txids (Bitcoin's shape), with detection of the duplicated-last-pair
//! mutation (CVE-2012-2459) and inclusion proofs.

use super::hash::{MerkleRoot, Txid, sha256d_parts};
use serde::{Deserialize, Serialize};

fn parent(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    sha256d_parts(&[a, b])
}

/// Root of `txids` and whether the list is "mutated": two equal siblings at some level, the
/// shape in which a different transaction list gives the same root.
pub fn merkle_root_checked(txids: &[Txid]) -> (MerkleRoot, bool) {
    if txids.is_empty() {
        return (MerkleRoot::ZERO, false);
    }
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.0).collect();
    let mut mutated = false;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            let (a, b) = match pair {
                [a, b] => {
                    if a == b {
                        mutated = true;
                    }
                    (a, b)
                }
                [a] => (a, a),
                _ => unreachable!("chunks(2) yields one or two"),
            };
            next.push(parent(a, b));
        }
        level = next;
    }
    (MerkleRoot(level[0]), mutated)
}

/// Root of `txids`.
pub fn merkle_root(txids: &[Txid]) -> MerkleRoot {
    merkle_root_checked(txids).0
}

/// One step of an inclusion proof: the sibling hash and whether it sits on the left.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofStep {
    pub sibling: [u8; 32],
    pub sibling_on_left: bool,
}

/// Proof that `txids[index]` is under the root, or `None` if `index` is out of range.
pub fn merkle_proof(txids: &[Txid], index: usize) -> Option<Vec<ProofStep>> {
    if index >= txids.len() {
        return None;
    }
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.0).collect();
    let mut i = index;
    let mut proof = Vec::new();
    while level.len() > 1 {
        let sib = if i.is_multiple_of(2) {
            (i + 1).min(level.len() - 1)
        } else {
            i - 1
        };
        proof.push(ProofStep {
            sibling: level[sib],
            sibling_on_left: i % 2 == 1,
        });
        level = level
            .chunks(2)
            .map(|p| parent(&p[0], p.get(1).unwrap_or(&p[0])))
            .collect();
        i /= 2;
    }
    Some(proof)
}

/// The hashes a proof climbs through from `txid`: after each step, the parent it makes with its
/// sibling; the last is the root the proof leads to.
pub fn proof_path(txid: &Txid, proof: &[ProofStep]) -> Vec<[u8; 32]> {
    let mut h = txid.0;
    proof
        .iter()
        .map(|s| {
            h = if s.sibling_on_left {
                parent(&s.sibling, &h)
            } else {
                parent(&h, &s.sibling)
            };
            h
        })
        .collect()
}

/// Whether `proof` leads from `txid` to `root`.
pub fn verify_proof(txid: &Txid, proof: &[ProofStep], root: &MerkleRoot) -> bool {
    proof_path(txid, proof).last().copied().unwrap_or(txid.0) == root.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::sha256d;

    fn ids(n: u8) -> Vec<Txid> {
        (0..n).map(|i| Txid(sha256d(&[i]))).collect()
    }

    #[test]
    fn single_leaf_is_root() {
        let t = ids(1);
        assert_eq!(merkle_root(&t).0, t[0].0);
    }

    #[test]
    fn duplicated_tail_is_detected() {
        // [a b c] and [a b c c] have the same root; the second is mutated.
        let three = ids(3);
        let mut four = three.clone();
        four.push(three[2]);
        let (r3, m3) = merkle_root_checked(&three);
        let (r4, m4) = merkle_root_checked(&four);
        assert_eq!(r3, r4);
        assert!(!m3);
        assert!(m4);
    }

    #[test]
    fn proofs_verify_for_every_leaf() {
        for n in 1..12u8 {
            let t = ids(n);
            let root = merkle_root(&t);
            for (i, id) in t.iter().enumerate() {
                let p = merkle_proof(&t, i).unwrap();
                assert!(verify_proof(id, &p, &root), "n={n} i={i}");
                assert!(!verify_proof(&Txid([9; 32]), &p, &root));
            }
            assert!(merkle_proof(&t, n as usize).is_none());
        }
    }
}
