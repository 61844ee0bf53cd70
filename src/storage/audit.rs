//! The index audit of `chain validate`: what the transaction index, the address index (coins and
//! history), the undo data and the UTXO commitment record must hold, built from the blocks,
//! compared with what they hold. Each difference is reported by index and entry.

use super::commitment::UtxoCommitment;
use super::tables::K_UTXO_STATE;
use super::{Reader, Result, addr_coin_key, coin_from_bytes, hist_key, tx_address_flows};
use crate::core::block::Block;
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::Network;
use crate::core::rules::{BlockUndo, Coin};
use crate::core::tx::OutPoint;
use crate::core::{Address, Amount};
use redb::ReadableTable;
use std::collections::HashMap;

/// Findings reported per index at most (the count of the rest is given).
const MAX_PER_INDEX: usize = 20;

/// One damaged index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDamage {
    /// Which index: "tx index", "address index", "address history", "undo data",
    /// "UTXO commitment".
    pub index: &'static str,
    /// Which entry (a txid, address and outpoint, block hash …).
    pub entry: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for IndexDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.index, self.entry, self.problem)
    }
}

/// Index contents implied by the blocks, built block by block.
pub struct IndexAudit {
    network: Network,
    txs: HashMap<Txid, (BlockHash, u32)>,
    hist: HashMap<[u8; 60], (Amount, Amount)>,
    damage: Vec<IndexDamage>,
    dropped: HashMap<&'static str, usize>,
}

impl IndexAudit {
    pub fn new(network: Network) -> IndexAudit {
        IndexAudit {
            network,
            txs: HashMap::new(),
            hist: HashMap::new(),
            damage: Vec::new(),
            dropped: HashMap::new(),
        }
    }

    fn addr_str(&self, a: &Address) -> String {
        a.encode(self.network)
    }

    fn report(&mut self, index: &'static str, entry: String, problem: String) {
        let shown = self.damage.iter().filter(|d| d.index == index).count();
        if shown < MAX_PER_INDEX {
            self.damage.push(IndexDamage {
                index,
                entry,
                problem,
            });
        } else {
            *self.dropped.entry(index).or_default() += 1;
        }
    }

    /// Record what connecting `block` at `height` puts in the indexes, and compare its stored
    /// undo data with `undo` (the coins it spent, as the chain gives them).
    pub fn add_block(
        &mut self,
        r: &Reader,
        block: &Block,
        height: u64,
        txids: &[Txid],
        undo: &BlockUndo,
    ) {
        let hash = block.hash();
        let mut cursor = 0usize;
        for (i, tx) in block.txs.iter().enumerate() {
            let end = (cursor + tx.inputs.len()).min(undo.spent.len());
            let spent = &undo.spent[cursor..end];
            cursor = end;
            self.txs.insert(txids[i], (hash, i as u32));
            for (addr, recv, sent) in tx_address_flows(tx, spent) {
                self.hist
                    .insert(hist_key(&addr, height, &txids[i]), (recv, sent));
            }
        }
        let entry = || format!("block {hash} (height {height})");
        match r.undo_of(&hash) {
            Ok(Some(stored)) if stored == *undo => {}
            Ok(Some(stored)) => {
                let problem = match stored
                    .spent
                    .iter()
                    .zip(&undo.spent)
                    .position(|(a, b)| a != b)
                {
                    Some(k) => format!(
                        "spent coin {k} is recorded as {} {:?}, the block spent {} {:?}",
                        stored.spent[k].0, stored.spent[k].1, undo.spent[k].0, undo.spent[k].1
                    ),
                    None => format!(
                        "records {} spent coins, the block spent {}",
                        stored.spent.len(),
                        undo.spent.len()
                    ),
                };
                self.report("undo data", entry(), problem);
            }
            Ok(None) => self.report("undo data", entry(), "missing".into()),
            Err(e) => self.report("undo data", entry(), e.to_string()),
        }
    }

    /// Compare the stored indexes with what the blocks gave. `utxo` is the UTXO set the blocks
    /// give after `tip` (height `height`).
    pub fn finish(
        mut self,
        r: &Reader,
        utxo: &HashMap<OutPoint, Coin>,
        tip: &BlockHash,
        height: u64,
    ) -> Result<Vec<IndexDamage>> {
        self.check_txindex(r)?;
        self.check_addr_coins(r, utxo)?;
        self.check_history(r)?;
        self.check_undo_entries(r, height)?;
        self.check_commitment(r, utxo, tip)?;
        let mut out = self.damage;
        let mut dropped: Vec<_> = self.dropped.into_iter().collect();
        dropped.sort();
        for (index, n) in dropped {
            out.push(IndexDamage {
                index,
                entry: "…".into(),
                problem: format!("{n} more damaged entries not listed"),
            });
        }
        Ok(out)
    }

    fn check_txindex(&mut self, r: &Reader) -> Result<()> {
        let mut seen = 0usize;
        for row in r.txindex.iter()? {
            let (k, v) = row?;
            let (txid, v) = (Txid(k.value()), v.value());
            let mut b = [0u8; 32];
            b.copy_from_slice(&v[..32]);
            let mut i = [0u8; 4];
            i.copy_from_slice(&v[32..]);
            let (block, index) = (BlockHash(b), u32::from_be_bytes(i));
            match self.txs.get(&txid) {
                Some(&(want_b, want_i)) if (want_b, want_i) == (block, index) => seen += 1,
                Some(&(want_b, want_i)) => {
                    seen += 1;
                    self.report(
                        "tx index",
                        format!("txid {txid}"),
                        format!(
                            "points to block {block} position {index}, the chain has it in block \
                             {want_b} position {want_i}"
                        ),
                    );
                }
                None => self.report(
                    "tx index",
                    format!("txid {txid}"),
                    format!(
                        "points to block {block} position {index}, but no active block holds it"
                    ),
                ),
            }
        }
        if seen < self.txs.len() {
            let missing: Vec<(Txid, (BlockHash, u32))> = self
                .txs
                .iter()
                .filter(|(t, _)| !matches!(r.txindex.get(&t.0), Ok(Some(_))))
                .map(|(t, l)| (*t, *l))
                .collect();
            for (txid, (block, index)) in missing {
                self.report(
                    "tx index",
                    format!("txid {txid}"),
                    format!("missing (the transaction is in block {block} position {index})"),
                );
            }
        }
        Ok(())
    }

    fn check_addr_coins(&mut self, r: &Reader, utxo: &HashMap<OutPoint, Coin>) -> Result<()> {
        let mut seen = 0usize;
        for row in r.addr_coins.iter()? {
            let (k, v) = row?;
            let k = k.value();
            let mut a = [0u8; 20];
            a.copy_from_slice(&k[..20]);
            let addr = Address::from_hash(a);
            let mut op = [0u8; 36];
            op.copy_from_slice(&k[20..]);
            let o = OutPoint::from_key(&op);
            let coin = coin_from_bytes(&v.value());
            let entry = format!("address {} coin {o}", self.addr_str(&addr));
            match utxo.get(&o) {
                Some(c) if c.output.address != addr => self.report(
                    "address index",
                    entry,
                    format!(
                        "filed under this address, the coin pays {}",
                        self.addr_str(&c.output.address)
                    ),
                ),
                Some(c) if *c != coin => {
                    seen += 1;
                    self.report(
                        "address index",
                        entry,
                        format!("records {coin:?}, the chain gives {c:?}"),
                    );
                }
                Some(_) => seen += 1,
                None => self.report(
                    "address index",
                    entry,
                    "not an unspent coin of the chain".into(),
                ),
            }
        }
        if seen < utxo.len() {
            let mut missing = Vec::new();
            for (o, c) in utxo {
                if !matches!(
                    r.addr_coins.get(&addr_coin_key(&c.output.address, o)),
                    Ok(Some(_))
                ) {
                    missing.push((*o, c.output.address));
                }
            }
            missing.sort_by_key(|(o, _)| o.to_key());
            for (o, addr) in missing {
                self.report(
                    "address index",
                    format!("address {} coin {o}", self.addr_str(&addr)),
                    "missing (the coin is unspent)".into(),
                );
            }
        }
        Ok(())
    }

    fn check_history(&mut self, r: &Reader) -> Result<()> {
        let mut seen = 0usize;
        for row in r.addr_hist.iter()? {
            let (k, v) = row?;
            let (k, v) = (k.value(), v.value());
            let mut rb = [0u8; 8];
            rb.copy_from_slice(&v[..8]);
            let mut sb = [0u8; 8];
            sb.copy_from_slice(&v[8..]);
            let got = (
                Amount::from_units(u64::from_le_bytes(rb)),
                Amount::from_units(u64::from_le_bytes(sb)),
            );
            let entry = self.hist_entry(&k);
            match self.hist.get(&k) {
                Some(want) if *want == got => seen += 1,
                Some(want) => {
                    seen += 1;
                    self.report(
                        "address history",
                        entry,
                        format!(
                            "records received {} sent {}, the chain gives received {} sent {}",
                            got.0, got.1, want.0, want.1
                        ),
                    );
                }
                None => self.report(
                    "address history",
                    entry,
                    "no such transaction of this address in the chain".into(),
                ),
            }
        }
        if seen < self.hist.len() {
            let mut missing: Vec<[u8; 60]> = self
                .hist
                .keys()
                .filter(|k| !matches!(r.addr_hist.get(*k), Ok(Some(_))))
                .copied()
                .collect();
            missing.sort();
            for k in missing {
                let entry = self.hist_entry(&k);
                self.report("address history", entry, "missing".into());
            }
        }
        Ok(())
    }

    fn check_undo_entries(&mut self, r: &Reader, height: u64) -> Result<()> {
        let mut n = 0u64;
        for row in r.undo.iter()? {
            let (k, _) = row?;
            let hash = BlockHash(k.value());
            n += 1;
            let active = match r.meta(&hash) {
                Ok(Some(m)) => m.height > 0 && r.hash_at(m.height)? == Some(hash),
                _ => false,
            };
            if !active {
                self.report(
                    "undo data",
                    format!("block {hash}"),
                    "kept for a block that is not on the active chain".into(),
                );
            }
        }
        if n > height {
            self.report(
                "undo data",
                "table".into(),
                format!("{n} entries for {height} blocks above genesis"),
            );
        }
        Ok(())
    }

    fn check_commitment(
        &mut self,
        r: &Reader,
        utxo: &HashMap<OutPoint, Coin>,
        tip: &BlockHash,
    ) -> Result<()> {
        let mut want = UtxoCommitment::default();
        for (o, c) in utxo {
            want.add(&o.to_key(), &super::coin_to_bytes(c));
        }
        let stored = r.meta.get(K_UTXO_STATE)?.map(|v| v.value().to_vec());
        let problem = match stored.as_deref().map(UtxoCommitment::from_record) {
            // A format-1 store opened for inspection only: nothing recorded yet.
            None if !r.has_format_2()? => return Ok(()),
            None => "missing".to_string(),
            Some(None) => "has the wrong length".to_string(),
            Some(Some((at, _))) if at != *tip => {
                format!("is of the set after block {at}, the tip is {tip}")
            }
            Some(Some((_, c))) if c != want => format!(
                "records {} coins with digest {}, the chain gives {} coins with digest {}",
                c.count(),
                hex::encode(c.digest()),
                want.count(),
                hex::encode(want.digest())
            ),
            Some(Some(_)) => return Ok(()),
        };
        self.report("UTXO commitment", "record".into(), problem);
        Ok(())
    }
}

impl IndexAudit {
    fn hist_entry(&self, k: &[u8; 60]) -> String {
        let mut a = [0u8; 20];
        a.copy_from_slice(&k[..20]);
        let mut h = [0u8; 8];
        h.copy_from_slice(&k[20..28]);
        let mut t = [0u8; 32];
        t.copy_from_slice(&k[28..]);
        format!(
            "address {} height {} txid {}",
            Address::from_hash(a).encode(self.network),
            u64::from_be_bytes(h),
            Txid(t)
        )
    }
}

impl Reader {
    /// Whether the store's format has the UTXO commitment record.
    fn has_format_2(&self) -> Result<bool> {
        Ok(self
            .meta
            .get(super::tables::K_FORMAT)?
            .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
            .map(u32::from_le_bytes)
            .is_some_and(|f| f >= 2))
    }
}
