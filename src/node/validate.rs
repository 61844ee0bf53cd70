//! Full re-verification of the stored active chain from genesis: linkage, proof of work, header
//! rules, every signature and amount, with the UTXO set rebuilt in memory and compared with the
//! stored one at the end; and every index checked against what the blocks imply (the
//! transaction index, the address index and history, the undo data and the UTXO commitment,
//! see [`IndexAudit`]), each damaged entry reported by index and entry. A panic of the database
//! library on a damaged file is reported as damage, not raised.

use super::chain::unix_now;
use crate::core::hash::BlockHash;
use crate::core::pow::{PowSample, next_target};
use crate::core::rules::{
    Coin, HeaderContext, SigVerifier, check_block_sanity, check_header_context, connect_block_txs,
    median_time,
};
use crate::core::tx::OutPoint;
use crate::storage::{IndexAudit, IndexDamage, Store, StoreError};
use std::collections::{HashMap, VecDeque};

/// The outcome of a full validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Height of the tip that was checked.
    pub height: u64,
    /// The first bad block: height, hash and reason.
    pub first_bad: Option<(u64, BlockHash, String)>,
    /// Unspent outputs after the last block.
    pub utxo_count: usize,
    /// Damaged index entries (checked when every block is valid).
    pub damage: Vec<IndexDamage>,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.first_bad.is_none() && self.damage.is_empty()
    }
}

/// Re-verify the active chain in the data dir `dir` without starting a node there (a node
/// refuses a damaged store, which this is for): the store is opened for inspection only, and
/// read-only when it cannot be written.
pub fn validate_data_dir(
    dir: &std::path::Path,
    network: crate::core::params::Network,
) -> Result<Report, StoreError> {
    let store = Store::open_to_inspect(&super::store_path(dir), network)?;
    validate_chain(&store, &super::verify::ParallelVerifier::all_cores())
}

/// Re-verify the active chain of `store`.
pub fn validate_chain(store: &Store, verifier: &dyn SigVerifier) -> Result<Report, StoreError> {
    store.contain(|| validate_inner(store, verifier))
}

fn validate_inner(store: &Store, verifier: &dyn SigVerifier) -> Result<Report, StoreError> {
    let params = store.params();
    let r = store.read()?;
    let tip = r.tip()?;
    let window = match params.difficulty {
        crate::core::pow::DifficultyRule::Lwma { window } => window as usize + 1,
        crate::core::pow::DifficultyRule::Fixed => 0,
    };
    let keep = window.max(11);
    let mut utxo: HashMap<OutPoint, Coin> = HashMap::new();
    let mut history: VecDeque<PowSample> = VecDeque::new();
    let bad = |height: u64, hash: BlockHash, why: String| Report {
        height: tip.height,
        first_bad: Some((height, hash, why)),
        utxo_count: 0,
        damage: Vec::new(),
    };
    let mut audit = IndexAudit::new(params.network);
    let genesis = r.hash_at(0)?;
    if genesis != Some(params.genesis_hash) {
        return Ok(bad(
            0,
            genesis.unwrap_or_default(),
            "genesis block is not this network's".into(),
        ));
    }
    history.push_back(PowSample {
        height: 0,
        time: params.genesis.header.time,
        target: params.pow_limit,
    });
    let mut prev = params.genesis_hash;
    let now = unix_now();
    for height in 1..=tip.height {
        let Some(hash) = r.hash_at(height)? else {
            return Ok(bad(
                height,
                BlockHash::ZERO,
                "active chain has a gap".into(),
            ));
        };
        let block = match r.block(&hash) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(bad(height, hash, "block data missing".into())),
            Err(e) => return Ok(bad(height, hash, e.to_string())),
        };
        if block.hash() != hash {
            return Ok(bad(
                height,
                hash,
                "stored block does not hash to its key".into(),
            ));
        }
        if block.header.prev != prev {
            return Ok(bad(
                height,
                hash,
                "does not build on the previous block".into(),
            ));
        }
        let size = block.encode().len();
        let txids = match check_block_sanity(&block, size, params) {
            Ok(t) => t,
            Err(e) => return Ok(bad(height, hash, e.to_string())),
        };
        let samples: Vec<PowSample> = history.iter().copied().collect();
        let tail = &samples[samples.len().saturating_sub(window)..];
        let required = next_target(
            params.difficulty,
            tail,
            height,
            params.block_spacing,
            params.initial_target,
            params.pow_limit,
        );
        let times: Vec<u64> = samples.iter().rev().take(11).map(|s| s.time).collect();
        let ctx = HeaderContext {
            height,
            required_bits: required.to_compact(),
            median_time_past: median_time(&times),
            now,
        };
        if let Err(e) = check_header_context(&block, &ctx, params) {
            return Ok(bad(height, hash, e.to_string()));
        }
        let undo = match connect_block_txs(&block, &txids, height, &utxo, params, verifier) {
            Ok(u) => u,
            Err(e) => return Ok(bad(height, hash, e.to_string())),
        };
        audit.add_block(&r, &block, height, &txids, &undo);
        // Transaction by transaction, as the store applies them: a later transaction may
        // spend an output of an earlier one in the same block.
        let mut spent = undo.spent.iter();
        for (i, tx) in block.txs.iter().enumerate() {
            for (o, _) in spent.by_ref().take(tx.inputs.len()) {
                utxo.remove(o);
            }
            for (vout, out) in tx.outputs.iter().enumerate() {
                utxo.insert(
                    OutPoint {
                        txid: txids[i],
                        vout: vout as u32,
                    },
                    Coin {
                        output: *out,
                        height,
                        coinbase: i == 0,
                    },
                );
            }
        }
        history.push_back(PowSample {
            height,
            time: block.header.time,
            target: required,
        });
        while history.len() > keep {
            history.pop_front();
        }
        prev = hash;
    }
    // Every index against what the blocks imply.
    let damage = audit.finish(&r, &utxo, &tip.hash(), tip.height)?;
    // The stored UTXO set must be exactly the rebuilt one.
    let mut stored = 0usize;
    let mut mismatch = None;
    r.for_each_coin(|o, c| {
        stored += 1;
        if mismatch.is_none() && utxo.get(&o) != Some(&c) {
            mismatch = Some(o);
        }
    })?;
    let utxo_bad = match mismatch {
        Some(o) => Some(format!("stored UTXO set differs from the chain at {o}")),
        None if stored != utxo.len() => Some(format!(
            "stored UTXO set has {stored} coins, the chain gives {}",
            utxo.len()
        )),
        None => None,
    };
    Ok(Report {
        height: tip.height,
        utxo_count: if utxo_bad.is_some() { 0 } else { utxo.len() },
        first_bad: utxo_bad.map(|why| (tip.height, tip.hash(), why)),
        damage,
    })
}
