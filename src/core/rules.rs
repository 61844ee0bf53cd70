//! Consensus rules: context-free block and transaction checks, header context (difficulty and
//! time), and connecting a block's transactions against a coin view. Every rule has its own
//! error variant. Signature checks go through [`SigVerifier`], so batch and multi-core verifiers
//! plug in without touching the rules; what makes a signature valid is in [`super::sig`].

use super::address::Address;
use super::amount::Amount;
use super::block::Block;
use super::encode::DecodeError;
use super::hash::Txid;
use super::merkle::merkle_root_checked;
use super::params::Params;
use super::pow::{CompactError, CompactTarget};
use super::tx::{MAX_MEMO, OutPoint, Transaction, TxOut};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// An unspent output as the chain state keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coin {
    pub output: TxOut,
    /// Height of the block that created it.
    pub height: u64,
    pub coinbase: bool,
}

/// Read access to unspent outputs.
pub trait CoinView {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin>;
    /// Whether `outpoint` existed and was spent (lets errors tell "already spent" from "missing").
    fn was_spent(&self, _outpoint: &OutPoint) -> bool {
        false
    }
}

impl CoinView for HashMap<OutPoint, Coin> {
    fn coin(&self, o: &OutPoint) -> Option<Coin> {
        self.get(o).copied()
    }
}

pub use super::sig::{
    BatchVerifier, SerialVerifier, SigCheck, SigVerifier, first_invalid, verify_batch, verify_one,
};

/// The signature checks of a transaction, one per input in input order, exactly as
/// [`check_tx_inputs`] hands them to the verifier. They depend on the transaction and the
/// network only (the sighash commits to no chain state), so they can be verified before, and
/// apart from, the checks against the coin view.
pub fn tx_sig_checks(tx: &Transaction, params: &Params) -> Vec<SigCheck> {
    if tx.is_coinbase() {
        return Vec::new();
    }
    let sighash = tx.sighash(&params.genesis_hash);
    tx.inputs
        .iter()
        .map(|input| SigCheck {
            msg: sighash,
            pubkey: input.pubkey,
            signature: input.signature,
        })
        .collect()
}

/// Why a transaction is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction has no inputs")]
    NoInputs,
    #[error("transaction has no outputs")]
    NoOutputs,
    #[error("input {0} is spent twice in the transaction")]
    DuplicateInput(OutPoint),
    #[error("output {0} does not exist")]
    MissingInput(OutPoint),
    #[error("output {0} is already spent")]
    AlreadySpent(OutPoint),
    #[error("coinbase output {outpoint} is immature: {confirmations} of {required} confirmations")]
    ImmatureCoinbase {
        outpoint: OutPoint,
        confirmations: u64,
        required: u64,
    },
    #[error("outputs ({outputs}) exceed inputs ({inputs})")]
    OutputsExceedInputs { inputs: Amount, outputs: Amount },
    #[error("amounts overflow")]
    ValueOverflow,
    #[error("output {0} is zero")]
    ZeroOutput(usize),
    #[error("input {0}'s key does not match the address it spends")]
    WrongKey(usize),
    #[error("input {0} has a bad signature")]
    BadSignature(usize),
    #[error("transaction is locked until height {lock_height}, block height is {height}")]
    NotFinal { lock_height: u64, height: u64 },
    #[error("memo is {0} bytes, over the limit of {MAX_MEMO}")]
    MemoTooLarge(usize),
    #[error("a coinbase transaction outside of a block's first place")]
    UnexpectedCoinbase,
}

/// Why a block is invalid. Each consensus rule has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block encoding: {0}")]
    Decode(DecodeError),
    #[error("block is {size} bytes, over the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("block has no transactions")]
    NoTransactions,
    #[error("first transaction is not a coinbase")]
    MissingCoinbase,
    #[error("transaction {0} is a second coinbase")]
    ExtraCoinbase(usize),
    #[error("merkle root does not match the transactions")]
    BadMerkleRoot,
    #[error("transaction list is mutated (duplicated merkle leaves)")]
    MutatedMerkle,
    #[error("output {0} is spent twice in the block")]
    DuplicateSpendInBlock(OutPoint),
    #[error("block hash is above its target")]
    HighHash,
    #[error("invalid compact target: {0}")]
    BadCompactTarget(CompactError),
    #[error("target {found:#010x} differs from the required {expected:#010x}")]
    WrongTarget { expected: u32, found: u32 },
    #[error("timestamp {time} is not above the median of the previous 11 blocks ({median})")]
    TimeTooOld { time: u64, median: u64 },
    #[error("timestamp {time} is too far in the future (latest allowed {max})")]
    TimeTooNew { time: u64, max: u64 },
    #[error("coinbase commits to height {found}, block is at height {expected}")]
    BadCoinbaseHeight { expected: u64, found: u64 },
    #[error("coinbase pays {paid}, at most {allowed} (subsidy + fees) allowed")]
    CoinbaseOverpay { paid: Amount, allowed: Amount },
    #[error("transaction {index} ({txid}): {error}")]
    Tx {
        index: usize,
        txid: Txid,
        error: TxError,
    },
    #[error("block builds on a block known to be invalid")]
    InvalidAncestor,
}

// Conversions without `#[from]`: the message already carries the inner error, and a source
// would print it twice in a `{:#}` chain.
impl From<DecodeError> for BlockError {
    fn from(e: DecodeError) -> Self {
        BlockError::Decode(e)
    }
}
impl From<CompactError> for BlockError {
    fn from(e: CompactError) -> Self {
        BlockError::BadCompactTarget(e)
    }
}

impl BlockError {
    /// Whether this failure condemns every block with the same header hash. Not so when the
    /// body may have been altered in transit (the hash covers only the header: a mutated or
    /// padded copy of a valid block fails these), nor when the block is only too early for
    /// the local clock.
    pub fn condemns_hash(&self) -> bool {
        !matches!(
            self,
            BlockError::Decode(_)
                | BlockError::TooLarge { .. }
                | BlockError::NoTransactions
                | BlockError::BadMerkleRoot
                | BlockError::MutatedMerkle
                | BlockError::TimeTooNew { .. }
        )
    }
}

/// Context-free checks of one transaction (no chain state needed).
pub fn check_tx_sanity(tx: &Transaction) -> Result<(), TxError> {
    if tx.memo.len() > MAX_MEMO {
        return Err(TxError::MemoTooLarge(tx.memo.len()));
    }
    if tx.outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    // A coinbase may pay zero: once the subsidy has run out, an empty block has no fees.
    if !tx.is_coinbase()
        && let Some(i) = tx.outputs.iter().position(|o| o.amount == Amount::ZERO)
    {
        return Err(TxError::ZeroOutput(i));
    }
    tx.output_total().ok_or(TxError::ValueOverflow)?;
    if tx.is_coinbase() {
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(tx.inputs.len());
    for i in &tx.inputs {
        if !seen.insert(i.prevout) {
            return Err(TxError::DuplicateInput(i.prevout));
        }
    }
    Ok(())
}

/// Context-free checks of a block: size, coinbase placement, merkle root (and its mutation),
/// transaction sanity, double spends inside the block and proof of work. Returns the txids.
pub fn check_block_sanity(
    block: &Block,
    encoded_size: usize,
    params: &Params,
) -> Result<Vec<Txid>, BlockError> {
    if encoded_size > params.max_block_size {
        return Err(BlockError::TooLarge {
            size: encoded_size,
            max: params.max_block_size,
        });
    }
    let target = block.header.bits.to_target()?;
    if target > params.pow_limit {
        return Err(BlockError::WrongTarget {
            expected: params.pow_limit.to_compact().0,
            found: block.header.bits.0,
        });
    }
    if !target.is_met_by(&block.hash().0) {
        return Err(BlockError::HighHash);
    }
    if block.txs.is_empty() {
        return Err(BlockError::NoTransactions);
    }
    // The merkle root binds the body to the header: check it before any other body rule, so
    // that every later failure is a property of the block the hash names.
    let txids = block.txids();
    let (root, mutated) = merkle_root_checked(&txids);
    if mutated {
        return Err(BlockError::MutatedMerkle);
    }
    if root != block.header.merkle_root {
        return Err(BlockError::BadMerkleRoot);
    }
    if !block.txs[0].is_coinbase() {
        return Err(BlockError::MissingCoinbase);
    }
    if let Some(i) = block.txs.iter().skip(1).position(Transaction::is_coinbase) {
        return Err(BlockError::ExtraCoinbase(i + 1));
    }
    let mut spent = HashSet::new();
    for (index, tx) in block.txs.iter().enumerate() {
        check_tx_sanity(tx).map_err(|error| BlockError::Tx {
            index,
            txid: txids[index],
            error,
        })?;
        for i in &tx.inputs {
            if !spent.insert(i.prevout) {
                return Err(BlockError::DuplicateSpendInBlock(i.prevout));
            }
        }
    }
    Ok(txids)
}

/// What the chain says a header at some height must satisfy.
#[derive(Clone, Copy, Debug)]
pub struct HeaderContext {
    pub height: u64,
    pub required_bits: CompactTarget,
    pub median_time_past: u64,
    /// The local clock, seconds since the epoch.
    pub now: u64,
}

/// Median of up to 11 timestamps.
pub fn median_time(times: &[u64]) -> u64 {
    let mut t: Vec<u64> = times.to_vec();
    t.sort_unstable();
    t.get(t.len() / 2).copied().unwrap_or(0)
}

/// Checks of a header against its place in the chain.
pub fn check_header_context(
    block: &Block,
    ctx: &HeaderContext,
    params: &Params,
) -> Result<(), BlockError> {
    let h = &block.header;
    if h.bits != ctx.required_bits {
        return Err(BlockError::WrongTarget {
            expected: ctx.required_bits.0,
            found: h.bits.0,
        });
    }
    if h.time <= ctx.median_time_past {
        return Err(BlockError::TimeTooOld {
            time: h.time,
            median: ctx.median_time_past,
        });
    }
    let max = ctx.now.saturating_add(params.max_future_secs);
    if h.time > max {
        return Err(BlockError::TimeTooNew { time: h.time, max });
    }
    let found = block.coinbase_height().unwrap_or(u64::MAX);
    if found != ctx.height {
        return Err(BlockError::BadCoinbaseHeight {
            expected: ctx.height,
            found,
        });
    }
    Ok(())
}

/// What connecting a block changes, in order: the coins it spent (the undo data) and the fees.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockUndo {
    /// Spent coins, in the order of the block's inputs.
    pub spent: Vec<(OutPoint, Coin)>,
}

/// Check one non-coinbase transaction's inputs against `view` at `height`; returns its fee and
/// the spent coins. Signature checks are appended to `sigs` (the caller verifies them).
pub fn check_tx_inputs(
    tx: &Transaction,
    view: &dyn CoinView,
    height: u64,
    params: &Params,
    sigs: &mut Vec<SigCheck>,
    spent: &mut Vec<(OutPoint, Coin)>,
) -> Result<Amount, TxError> {
    if tx.is_coinbase() {
        return Err(TxError::UnexpectedCoinbase);
    }
    if tx.lock_height > height {
        return Err(TxError::NotFinal {
            lock_height: tx.lock_height,
            height,
        });
    }
    let sighash = tx.sighash(&params.genesis_hash);
    let mut total = Amount::ZERO;
    for (n, input) in tx.inputs.iter().enumerate() {
        let coin = match view.coin(&input.prevout) {
            Some(c) => c,
            None if view.was_spent(&input.prevout) => {
                return Err(TxError::AlreadySpent(input.prevout));
            }
            None => return Err(TxError::MissingInput(input.prevout)),
        };
        if coin.coinbase {
            let confirmations = height.saturating_sub(coin.height);
            if confirmations < params.coinbase_maturity {
                return Err(TxError::ImmatureCoinbase {
                    outpoint: input.prevout,
                    confirmations,
                    required: params.coinbase_maturity,
                });
            }
        }
        if Address::from_pubkey(&input.pubkey) != coin.output.address {
            return Err(TxError::WrongKey(n));
        }
        total = total
            .checked_add(coin.output.amount)
            .ok_or(TxError::ValueOverflow)?;
        sigs.push(SigCheck {
            msg: sighash,
            pubkey: input.pubkey,
            signature: input.signature,
        });
        spent.push((input.prevout, coin));
    }
    let out = tx.output_total().ok_or(TxError::ValueOverflow)?;
    total.checked_sub(out).ok_or(TxError::OutputsExceedInputs {
        inputs: total,
        outputs: out,
    })
}

/// A coin view with a block's own outputs and spends laid over a base view.
struct Overlay<'a> {
    base: &'a dyn CoinView,
    added: HashMap<OutPoint, Coin>,
    spent: HashSet<OutPoint>,
}

impl CoinView for Overlay<'_> {
    fn coin(&self, o: &OutPoint) -> Option<Coin> {
        if self.spent.contains(o) {
            return None;
        }
        self.added.get(o).copied().or_else(|| self.base.coin(o))
    }
    fn was_spent(&self, o: &OutPoint) -> bool {
        self.spent.contains(o) || self.base.was_spent(o)
    }
}

/// Connect a sanity-checked block's transactions at `height` against `view`: inputs exist and
/// are mature, amounts add up, signatures verify, the coinbase pays at most subsidy + fees.
/// Returns the undo data. Nothing is written: the caller commits the result.
pub fn connect_block_txs(
    block: &Block,
    txids: &[Txid],
    height: u64,
    view: &dyn CoinView,
    params: &Params,
    verifier: &dyn SigVerifier,
) -> Result<BlockUndo, BlockError> {
    let mut overlay = Overlay {
        base: view,
        added: HashMap::new(),
        spent: HashSet::new(),
    };
    let mut undo = BlockUndo::default();
    let mut fees = Amount::ZERO;
    let mut sigs = Vec::new();
    let mut sig_owner = Vec::new();
    for (index, tx) in block.txs.iter().enumerate() {
        let err = |error| BlockError::Tx {
            index,
            txid: txids[index],
            error,
        };
        if index > 0 {
            let before = sigs.len();
            let start = undo.spent.len();
            let fee = check_tx_inputs(tx, &overlay, height, params, &mut sigs, &mut undo.spent)
                .map_err(err)?;
            sig_owner.extend((0..sigs.len() - before).map(|input| (index, input)));
            fees = fees
                .checked_add(fee)
                .ok_or_else(|| err(TxError::ValueOverflow))?;
            for (o, _) in &undo.spent[start..] {
                overlay.spent.insert(*o);
            }
        }
        for (vout, output) in tx.outputs.iter().enumerate() {
            overlay.added.insert(
                OutPoint {
                    txid: txids[index],
                    vout: vout as u32,
                },
                Coin {
                    output: *output,
                    height,
                    coinbase: index == 0,
                },
            );
        }
    }
    if let Err(bad) = verifier.verify_all(&sigs) {
        let (index, input) = sig_owner.get(bad).copied().unwrap_or((0, 0));
        return Err(BlockError::Tx {
            index,
            txid: txids.get(index).copied().unwrap_or_default(),
            error: TxError::BadSignature(input),
        });
    }
    let allowed = params
        .subsidy(height)
        .checked_add(fees)
        .ok_or(BlockError::Tx {
            index: 0,
            txid: txids[0],
            error: TxError::ValueOverflow,
        })?;
    let paid = block.txs[0]
        .output_total()
        .unwrap_or(Amount::from_units(u64::MAX));
    if paid > allowed {
        return Err(BlockError::CoinbaseOverpay { paid, allowed });
    }
    Ok(undo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::block::BlockHeader;
    use crate::core::hash::{BlockHash, MerkleRoot};
    use crate::core::params::Network;
    use crate::core::tx::TxIn;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    /// A signed transaction spending one fake coin per key, and the view holding those coins.
    struct Case {
        tx: Transaction,
        view: HashMap<OutPoint, Coin>,
        fee: Amount,
    }

    /// Inputs worth `amounts` owned by keys from `seeds`; `n_out` outputs (each at least 2)
    /// share what is left after a fee chosen by `fee_seed`.
    fn case(seeds: &[[u8; 32]], amounts: &[u64], n_out: usize, fee_seed: u64) -> Case {
        let params = Network::Regtest.params();
        let keys: Vec<SigningKey> = seeds.iter().map(SigningKey::from_bytes).collect();
        let mut view = HashMap::new();
        let mut inputs = Vec::new();
        for (i, (k, amount)) in keys.iter().zip(amounts).enumerate() {
            let pubkey = k.verifying_key().to_bytes();
            let prevout = OutPoint {
                txid: Txid([i as u8 + 1; 32]),
                vout: i as u32,
            };
            view.insert(
                prevout,
                Coin {
                    output: TxOut {
                        amount: Amount::from_units(*amount),
                        address: Address::from_pubkey(&pubkey),
                    },
                    height: 1,
                    coinbase: false,
                },
            );
            inputs.push(TxIn {
                prevout,
                pubkey,
                signature: [0; 64],
            });
        }
        let total: u64 = amounts.iter().sum();
        let n = n_out as u64;
        let fee = fee_seed % (total - 2 * n + 1);
        let left = total - fee;
        let to = Address::from_pubkey(&keys[0].verifying_key().to_bytes());
        let outputs = (0..n)
            .map(|j| TxOut {
                amount: Amount::from_units(left / n + if j == 0 { left % n } else { 0 }),
                address: to,
            })
            .collect();
        let mut tx = Transaction {
            version: 1,
            inputs,
            outputs,
            lock_height: 0,
            memo: vec![],
        };
        let h = tx.sighash(&params.genesis_hash);
        for (input, k) in tx.inputs.iter_mut().zip(&keys) {
            input.signature = k.sign(&h).to_bytes();
        }
        Case {
            tx,
            view,
            fee: Amount::from_units(fee),
        }
    }

    /// Input checks, then the signatures, as the mempool does.
    fn verify(tx: &Transaction, view: &HashMap<OutPoint, Coin>) -> Result<Amount, TxError> {
        let params = Network::Regtest.params();
        let (mut sigs, mut spent) = (Vec::new(), Vec::new());
        let fee = check_tx_inputs(tx, view, 2, params, &mut sigs, &mut spent)?;
        assert_eq!(sigs.len(), tx.inputs.len());
        assert_eq!(sigs, tx_sig_checks(tx, params));
        assert_eq!(spent.len(), tx.inputs.len());
        SerialVerifier
            .verify_all(&sigs)
            .map_err(TxError::BadSignature)?;
        Ok(fee)
    }

    /// The transaction in a block at height 2 (after its coinbase), connected against `view`.
    fn connect(tx: &Transaction, view: &HashMap<OutPoint, Coin>) -> Result<BlockUndo, BlockError> {
        let params = Network::Regtest.params();
        let coinbase = Transaction {
            version: 1,
            inputs: vec![],
            outputs: vec![TxOut {
                amount: params.subsidy(2),
                address: Address::from_hash([0; 20]),
            }],
            lock_height: 2,
            memo: vec![],
        };
        let block = Block {
            header: BlockHeader {
                version: 1,
                prev: BlockHash::default(),
                merkle_root: MerkleRoot::ZERO,
                time: 0,
                bits: params.pow_limit.to_compact(),
                nonce: 0,
            },
            txs: vec![coinbase, tx.clone()],
        };
        let txids = block.txids();
        connect_block_txs(&block, &txids, 2, view, params, &SerialVerifier)
    }

    fn bad_signature(r: Result<BlockUndo, BlockError>, input: usize) -> bool {
        matches!(
            r,
            Err(BlockError::Tx { index: 1, error: TxError::BadSignature(i), .. }) if i == input
        )
    }

    fn arb_inputs() -> impl Strategy<Value = Vec<([u8; 32], u64)>> {
        proptest::collection::vec((any::<[u8; 32]>(), 1_000u64..1_000_000_000_000), 1..4)
    }

    proptest! {
        #[test]
        fn signed_by_the_right_key_verifies(
            inputs in arb_inputs(), n_out in 1usize..4, fee_seed in any::<u64>(),
        ) {
            let (seeds, amounts): (Vec<_>, Vec<_>) = inputs.into_iter().unzip();
            let c = case(&seeds, &amounts, n_out, fee_seed);
            prop_assert_eq!(verify(&c.tx, &c.view), Ok(c.fee));
            let undo = connect(&c.tx, &c.view);
            prop_assert!(undo.is_ok(), "{:?}", undo);
            prop_assert_eq!(undo.unwrap().spent.len(), c.tx.inputs.len());
        }

        #[test]
        fn any_flipped_signature_bit_fails(
            inputs in arb_inputs(), n_out in 1usize..4, fee_seed in any::<u64>(),
            which in any::<prop::sample::Index>(), bit in 0usize..512,
        ) {
            let (seeds, amounts): (Vec<_>, Vec<_>) = inputs.into_iter().unzip();
            let mut c = case(&seeds, &amounts, n_out, fee_seed);
            let i = which.index(c.tx.inputs.len());
            c.tx.inputs[i].signature[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(verify(&c.tx, &c.view), Err(TxError::BadSignature(i)));
            prop_assert!(bad_signature(connect(&c.tx, &c.view), i));
        }

        #[test]
        fn changing_an_output_amount_after_signing_fails(
            inputs in arb_inputs(), n_out in 1usize..4, fee_seed in any::<u64>(),
            which in any::<prop::sample::Index>(), delta in any::<u64>(),
        ) {
            let (seeds, amounts): (Vec<_>, Vec<_>) = inputs.into_iter().unzip();
            let mut c = case(&seeds, &amounts, n_out, fee_seed);
            let j = which.index(c.tx.outputs.len());
            // Any other amount the inputs still cover: lower (outputs are at least 2), or
            // higher by at most the fee.
            let old = c.tx.outputs[j].amount.units();
            let new = if c.fee.units() > 0 && delta % 2 == 0 {
                old + 1 + (delta / 2) % c.fee.units()
            } else {
                old - 1 - delta % (old - 1)
            };
            prop_assert_ne!(new, old);
            c.tx.outputs[j].amount = Amount::from_units(new);
            // Every input signed the old outputs, so the first one fails.
            prop_assert_eq!(verify(&c.tx, &c.view), Err(TxError::BadSignature(0)));
            prop_assert!(bad_signature(connect(&c.tx, &c.view), 0));
        }
    }

    #[test]
    fn a_signature_by_another_key_fails() {
        let mut c = case(&[[1; 32]], &[10_000], 1, 100);
        let params = Network::Regtest.params();
        let h = c.tx.sighash(&params.genesis_hash);
        c.tx.inputs[0].signature = SigningKey::from_bytes(&[2; 32]).sign(&h).to_bytes();
        assert_eq!(verify(&c.tx, &c.view), Err(TxError::BadSignature(0)));
        // Another key's pubkey does not match the address the coin pays.
        c.tx.inputs[0].pubkey = SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes();
        assert_eq!(verify(&c.tx, &c.view), Err(TxError::WrongKey(0)));
    }
}
