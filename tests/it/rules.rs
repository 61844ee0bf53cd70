//! Consensus rules, one at a time: for every rule an otherwise-valid regtest block (or
//! transaction) breaks exactly that rule and must be refused with that rule's error variant,
//! leaving the tip and the UTXO set untouched. Most tests also submit the matching valid block
//! afterwards, so a test cannot pass because the "good" block was broken too.

use crate::common::*;
use chain_tui::core::FeeRate;
use chain_tui::core::amount::{Amount, COIN};
use chain_tui::core::block::Block;
use chain_tui::core::encode::DecodeError;
use chain_tui::core::hash::{MerkleRoot, Txid};
use chain_tui::core::merkle::merkle_root_checked;
use chain_tui::core::pow::CompactTarget;
use chain_tui::core::rules::{BlockError, SerialVerifier, TxError};
use chain_tui::core::tx::{OutPoint, Transaction, TxOut};
use chain_tui::node::chain::{Accepted, Durability, ProcessError, unix_now};
use chain_tui::node::mempool::{DEFAULT_MAX_BYTES, Mempool, MempoolError};
use chain_tui::storage::{BlockMeta, BlockStatus};
use ed25519_dalek::SigningKey;

const FEE: u64 = 1_000;

/// A regtest chain with `coins` mature 50-coin coinbase outputs owned by `alice`.
struct Fx {
    t: TestChain,
    alice: SigningKey,
    bob: SigningKey,
    miner: SigningKey,
    coins: Vec<OutPoint>,
}

/// Mine one empty block on the tip without waiting for the disk (fast setup).
fn mine_fast(t: &mut TestChain, to: chain_tui::core::Address) -> (Block, BlockMeta) {
    let tip = t.tip();
    let mut b = t.template(&tip, to, vec![], Amount::ZERO);
    solve(&mut b, t.params);
    let hash = b.hash();
    match t.chain.process_block(b.clone(), Durability::Batched) {
        Ok(Accepted::TipChanged(_)) => {}
        other => panic!("setup block refused: {other:?}"),
    }
    let meta = t.meta(&hash);
    (b, meta)
}

fn fixture(coins: usize) -> Fx {
    let mut t = TestChain::new();
    let alice = key(1);
    let bob = key(2);
    let miner = key(9);
    let mut outs = Vec::new();
    for _ in 0..coins {
        let (b, _) = mine_fast(&mut t, address(&alice));
        outs.push(coinbase_of(&b));
    }
    for _ in 0..t.params.coinbase_maturity {
        mine_fast(&mut t, address(&miner));
    }
    Fx {
        t,
        alice,
        bob,
        miner,
        coins: outs,
    }
}

impl Fx {
    fn params(&self) -> &'static chain_tui::core::params::Params {
        self.t.params
    }

    /// A solved block on the tip with `txs`, whose coinbase claims subsidy + `fees`.
    fn block(&self, txs: Vec<Transaction>, fees: u64) -> Block {
        self.block_on(&self.t.tip(), txs, fees)
    }

    fn block_on(&self, parent: &BlockMeta, txs: Vec<Transaction>, fees: u64) -> Block {
        let mut b = self
            .t
            .template(parent, address(&self.miner), txs, Amount::from_units(fees));
        solve(&mut b, self.params());
        b
    }

    /// A standard spend of one of alice's 50-coin coins: 20 to bob, the rest minus FEE back.
    fn pay_bob(&self, coin: OutPoint) -> Transaction {
        spend(
            self.params(),
            &[(coin, &self.alice)],
            vec![
                pay(address(&self.bob), 20 * COIN),
                pay(address(&self.alice), 30 * COIN - FEE),
            ],
        )
    }

    /// Submit `b` and require `ProcessError::Invalid` for exactly this block; the tip and the
    /// UTXO set must not change. Returns the rule that fired.
    fn reject(&mut self, b: Block) -> BlockError {
        let tip = self.t.tip().hash();
        let utxo = self.t.utxo_set();
        let hash = b.hash();
        let err = match self.t.process(b) {
            Err(ProcessError::Invalid { hash: h, error }) => {
                assert_eq!(h, hash, "error names another block");
                *error
            }
            other => panic!("expected ProcessError::Invalid, got {other:?}"),
        };
        assert_eq!(self.t.tip().hash(), tip, "tip moved after a rejection");
        assert!(
            self.t.utxo_set() == utxo,
            "UTXO set changed after a rejection"
        );
        err
    }

    /// Submit `b`, which breaks a rule of one of its transactions: that transaction's index
    /// (its txid checked) and the rule.
    fn reject_tx(&mut self, b: Block) -> (usize, TxError) {
        let txids = b.txids();
        match self.reject(b) {
            BlockError::Tx { index, txid, error } => {
                assert_eq!(Some(&txid), txids.get(index), "the error names its txid");
                (index, error)
            }
            other => panic!("expected a transaction's rule, got {other:?}"),
        }
    }

    /// A transaction spending alice's coin `coin` to `outputs`.
    fn alice_pays(&self, coin: OutPoint, outputs: Vec<TxOut>) -> Transaction {
        spend(self.params(), &[(coin, &self.alice)], outputs)
    }

    /// Submit `b` and require it to become the new tip.
    fn accept(&mut self, b: Block) {
        let hash = b.hash();
        match self.t.process(b) {
            Ok(Accepted::TipChanged(_)) => {}
            other => panic!("expected the valid block to be accepted, got {other:?}"),
        }
        assert_eq!(self.t.tip().hash(), hash);
    }
}

/// Assert a rejection's rule with `matches!`.
macro_rules! assert_rule {
    ($err:expr, $pat:pat $(if $guard:expr)?) => {{
        let err = $err;
        assert!(
            matches!(&err, $pat $(if $guard)?),
            "wrong rule: got {err:?}, expected {}",
            stringify!($pat)
        );
    }};
}

/// Grind the nonce for the block's own target without touching the merkle root.
fn grind(b: &mut Block) {
    let target = b.header.bits.to_target().unwrap();
    b.header.nonce = 0;
    while !target.is_met_by(&b.hash().0) {
        b.header.nonce += 1;
    }
}

fn coinbase(height: u64, to: chain_tui::core::Address, amount: u64, memo: &[u8]) -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![pay(to, amount)],
        lock_height: height,
        memo: memo.to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// Coinbase and transaction-list shape
// ---------------------------------------------------------------------------------------------

#[test]
fn coinbase_overpay() {
    let mut fx = fixture(1);
    let tx = fx.pay_bob(fx.coins[0]);
    let subsidy = fx.params().subsidy(fx.t.tip().height + 1);
    // Claims one unit more than subsidy + fees.
    let bad = fx.block(vec![tx.clone()], FEE + 1);
    assert_rule!(fx.reject(bad), BlockError::CoinbaseOverpay { paid, allowed }
        if *paid == Amount::from_units(subsidy.units() + FEE + 1) && *allowed == Amount::from_units(subsidy.units() + FEE));
    // Without fees: subsidy + 1 in an empty block.
    let bad = fx.block(vec![], 1);
    assert_rule!(fx.reject(bad), BlockError::CoinbaseOverpay { .. });
    // Exactly subsidy + fees is fine.
    let good = fx.block(vec![tx], FEE);
    fx.accept(good);
}

#[test]
fn coinbase_may_claim_less_than_allowed() {
    let mut fx = fixture(1);
    let tx = fx.pay_bob(fx.coins[0]);
    let mut b = fx.block(vec![tx], FEE);
    b.txs[0].outputs[0].amount = Amount::from_units(1);
    solve(&mut b, fx.params());
    fx.accept(b);
}

#[test]
fn missing_coinbase() {
    let mut fx = fixture(1);
    let tx = fx.pay_bob(fx.coins[0]);
    // No coinbase at all.
    let mut bad = fx.block(vec![tx.clone()], FEE);
    bad.txs.remove(0);
    solve(&mut bad, fx.params());
    assert_rule!(fx.reject(bad), BlockError::MissingCoinbase);
    // Coinbase present but not first.
    let mut bad = fx.block(vec![tx.clone()], FEE);
    bad.txs.swap(0, 1);
    solve(&mut bad, fx.params());
    assert_rule!(fx.reject(bad), BlockError::MissingCoinbase);
    fx.accept(fx.block(vec![tx], FEE));
}

#[test]
fn extra_coinbase() {
    let mut fx = fixture(1);
    let tx = fx.pay_bob(fx.coins[0]);
    let height = fx.t.tip().height + 1;
    let second = coinbase(height, address(&fx.bob), 1, b"second");
    let mut bad = fx.block(vec![tx.clone(), second.clone()], FEE);
    solve(&mut bad, fx.params());
    assert_rule!(fx.reject(bad), BlockError::ExtraCoinbase(2));
    let mut bad = fx.block(vec![second], 0);
    solve(&mut bad, fx.params());
    assert_rule!(fx.reject(bad), BlockError::ExtraCoinbase(1));
    fx.accept(fx.block(vec![tx], FEE));
}

#[test]
fn no_transactions() {
    let mut fx = fixture(0);
    let mut bad = fx.block(vec![], 0);
    bad.txs.clear();
    solve(&mut bad, fx.params());
    assert_rule!(fx.reject(bad), BlockError::NoTransactions);
    fx.accept(fx.block(vec![], 0));
}

#[test]
fn no_outputs() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    let mut tx = fx.pay_bob(c);
    tx.outputs.clear();
    sign(fx.params(), &mut tx, &[&fx.alice]);
    let bad = fx.block(vec![tx], 0);
    assert_eq!(fx.reject_tx(bad), (1, TxError::NoOutputs));
    // A coinbase without outputs.
    let mut bad = fx.block(vec![], 0);
    bad.txs[0].outputs.clear();
    solve(&mut bad, fx.params());
    assert_eq!(fx.reject_tx(bad), (0, TxError::NoOutputs));
    fx.accept(fx.block(vec![fx.pay_bob(c)], FEE));
}

// ---------------------------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------------------------

/// A block of exactly `size` bytes: one transaction with many outputs, topped up with the
/// coinbase memo.
fn block_of_size(fx: &Fx, size: usize) -> Block {
    let each = 100_000u64;
    let out = pay(address(&fx.bob), each);
    let per_output = chain_tui::core::encode::encode(&out).len();
    let build = |n: usize, memo: usize| {
        let mut outputs = vec![out; n];
        outputs.push(pay(address(&fx.alice), 50 * COIN - n as u64 * each - FEE));
        let tx = spend(fx.params(), &[(fx.coins[0], &fx.alice)], outputs);
        let mut b = fx.block(vec![tx], FEE);
        b.txs[0].memo = vec![b'm'; memo];
        solve(&mut b, fx.params());
        b
    };
    let probe = build(20_000, 0);
    let missing = size - probe.encode().len();
    let n = 20_000 + missing / per_output;
    let b = build(n, 0);
    let memo = size - b.encode().len();
    assert!(memo <= 100, "cannot pad with the memo: {memo}");
    let b = build(n, memo);
    assert_eq!(b.encode().len(), size);
    b
}

#[test]
fn block_size_limit() {
    let mut fx = fixture(1);
    let max = fx.params().max_block_size;
    assert_eq!(max, 1_000_000);
    let bad = block_of_size(&fx, max + 1);
    assert_rule!(fx.reject(bad), BlockError::TooLarge { size, max: m }
        if *size == max + 1 && *m == max);
    // Exactly at the limit is allowed.
    let good = block_of_size(&fx, max);
    fx.accept(good);
}

#[test]
fn memo_too_large() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    let with_memo = |fx: &Fx, len: usize| {
        let mut tx = fx.pay_bob(c);
        tx.memo = vec![7; len];
        sign(fx.params(), &mut tx, &[&fx.alice]);
        tx
    };
    let bad = fx.block(vec![with_memo(&fx, 101)], FEE);
    assert_eq!(fx.reject_tx(bad), (1, TxError::MemoTooLarge(101)));
    // The coinbase's memo is capped too.
    let mut bad = fx.block(vec![], 0);
    bad.txs[0].memo = vec![1; 101];
    solve(&mut bad, fx.params());
    assert_eq!(fx.reject_tx(bad), (0, TxError::MemoTooLarge(101)));
    // 100 bytes is the limit, inclusive.
    let mut good = fx.block(vec![with_memo(&fx, 100)], FEE);
    good.txs[0].memo = vec![1; 100];
    solve(&mut good, fx.params());
    fx.accept(good);
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

#[test]
fn duplicate_input_in_one_tx() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    let tx = spend(
        fx.params(),
        &[(c, &fx.alice), (c, &fx.alice)],
        vec![pay(address(&fx.bob), 99 * COIN)],
    );
    let bad = fx.block(vec![tx], 0);
    assert_eq!(fx.reject_tx(bad), (1, TxError::DuplicateInput(c)));
    fx.accept(fx.block(vec![fx.pay_bob(c)], FEE));
}

#[test]
fn duplicate_spend_across_txs_of_a_block() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    let a = fx.pay_bob(c);
    let b = fx.alice_pays(c, vec![pay(address(&fx.miner), 50 * COIN - FEE)]);
    let bad = fx.block(vec![a.clone(), b], 2 * FEE);
    assert_rule!(fx.reject(bad), BlockError::DuplicateSpendInBlock(o) if *o == c);
    fx.accept(fx.block(vec![a], FEE));
}

#[test]
fn missing_input() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    // An outpoint nobody created.
    let ghost = OutPoint {
        txid: Txid([0xab; 32]),
        vout: 0,
    };
    let bad = fx.block(vec![fx.pay_bob(ghost)], FEE);
    assert_eq!(fx.reject_tx(bad), (1, TxError::MissingInput(ghost)));
    // An existing transaction, but an output index past its end.
    let past_end = OutPoint {
        txid: c.txid,
        vout: 1,
    };
    let bad = fx.block(vec![fx.pay_bob(past_end)], FEE);
    assert_eq!(fx.reject_tx(bad), (1, TxError::MissingInput(past_end)));
    fx.accept(fx.block(vec![fx.pay_bob(c)], FEE));
}

#[test]
fn in_block_spends_must_follow_their_parent() {
    let mut fx = fixture(1);
    let parent = fx.pay_bob(fx.coins[0]);
    let child = spend(
        fx.params(),
        &[(out(&parent, 0), &fx.bob)],
        vec![pay(address(&fx.alice), 20 * COIN - FEE)],
    );
    // Child before parent: its input does not exist yet.
    let bad = fx.block(vec![child.clone(), parent.clone()], 2 * FEE);
    let missing = out(&parent, 0);
    assert_eq!(fx.reject_tx(bad), (1, TxError::MissingInput(missing)));
    // Parent then child in the same block is fine.
    fx.accept(fx.block(vec![parent, child], 2 * FEE));
}

#[test]
fn already_spent_in_an_earlier_block() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    fx.accept(fx.block(vec![fx.pay_bob(c)], FEE));
    let again = fx.alice_pays(c, vec![pay(address(&fx.miner), 50 * COIN - FEE)]);
    let bad = fx.block(vec![again], FEE);
    assert_eq!(fx.reject_tx(bad), (1, TxError::AlreadySpent(c)));
    fx.accept(fx.block(vec![], 0));
}

#[test]
fn immature_coinbase() {
    let mut fx = fixture(0);
    let maturity = fx.params().coinbase_maturity;
    assert_eq!(maturity, 10);
    let (b, meta) = mine_fast(&mut fx.t, address(&fx.alice));
    let c = coinbase_of(&b);
    for _ in 0..maturity - 2 {
        mine_fast(&mut fx.t, address(&fx.miner));
    }
    // The next block is at coin height + maturity - 1: one confirmation short.
    assert_eq!(fx.t.tip().height + 1, meta.height + maturity - 1);
    let bad = fx.block(vec![fx.pay_bob(c)], FEE);
    let immature = TxError::ImmatureCoinbase {
        outpoint: c,
        confirmations: 9,
        required: 10,
    };
    assert_eq!(fx.reject_tx(bad), (1, immature));
    // One block later it is spendable.
    fx.accept(fx.block(vec![], 0));
    fx.accept(fx.block(vec![fx.pay_bob(c)], FEE));
}

#[test]
fn coinbase_of_the_same_block_is_immature() {
    let mut fx = fixture(0);
    let mut b = fx.block(vec![], 0);
    let cb = coinbase_of(&b);
    let miner = fx.miner.clone();
    let tx = spend(
        fx.params(),
        &[(cb, &miner)],
        vec![pay(address(&fx.bob), 10 * COIN)],
    );
    b.txs.push(tx);
    solve(&mut b, fx.params());
    let immature = TxError::ImmatureCoinbase {
        outpoint: cb,
        confirmations: 0,
        required: fx.params().coinbase_maturity,
    };
    assert_eq!(fx.reject_tx(b), (1, immature));
}

// ---------------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------------

#[test]
fn outputs_exceed_inputs() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    let tx = fx.alice_pays(
        c,
        vec![
            pay(address(&fx.bob), 20 * COIN),
            pay(address(&fx.alice), 30 * COIN + 1),
        ],
    );
    let bad = fx.block(vec![tx], 0);
    let exceed = TxError::OutputsExceedInputs {
        inputs: Amount::from_units(50 * COIN),
        outputs: Amount::from_units(50 * COIN + 1),
    };
    assert_eq!(fx.reject_tx(bad), (1, exceed));
    // Outputs equal to inputs (no fee) are fine.
    let tx = fx.alice_pays(c, vec![pay(address(&fx.bob), 50 * COIN)]);
    fx.accept(fx.block(vec![tx], 0));
}

#[test]
fn zero_output() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    let tx = fx.alice_pays(
        c,
        vec![pay(address(&fx.bob), 20 * COIN), pay(address(&fx.alice), 0)],
    );
    let bad = fx.block(vec![tx], 30 * COIN);
    assert_eq!(fx.reject_tx(bad), (1, TxError::ZeroOutput(1)));
    fx.accept(fx.block(vec![fx.pay_bob(c)], FEE));
}

#[test]
fn value_overflow() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    let tx = fx.alice_pays(
        c,
        vec![pay(address(&fx.bob), u64::MAX), pay(address(&fx.alice), 1)],
    );
    let bad = fx.block(vec![tx], 0);
    assert_eq!(fx.reject_tx(bad), (1, TxError::ValueOverflow));
    // A coinbase whose outputs overflow.
    let mut bad = fx.block(vec![], 0);
    bad.txs[0].outputs.push(pay(address(&fx.bob), u64::MAX));
    solve(&mut bad, fx.params());
    assert_eq!(fx.reject_tx(bad), (0, TxError::ValueOverflow));
    fx.accept(fx.block(vec![fx.pay_bob(c)], FEE));
}

// ---------------------------------------------------------------------------------------------
// Keys and signatures
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_signature() {
    let mut fx = fixture(2);
    let (c0, c1) = (fx.coins[0], fx.coins[1]);
    // A flipped bit in the only signature.
    let mut tx = fx.pay_bob(c0);
    tx.inputs[0].signature[5] ^= 1;
    let bad = fx.block(vec![tx], FEE);
    assert_eq!(fx.reject_tx(bad), (1, TxError::BadSignature(0)));
    // A valid signature over other outputs: the sighash commits to the outputs.
    let mut tx = fx.pay_bob(c0);
    tx.outputs[0].amount = Amount::from_units(21 * COIN);
    tx.outputs[1].amount = Amount::from_units(29 * COIN - FEE);
    let bad = fx.block(vec![tx], FEE);
    assert_eq!(fx.reject_tx(bad), (1, TxError::BadSignature(0)));
    // The second input of the second transaction: the error names both.
    let first = fx.pay_bob(c0);
    let mut second = spend(
        fx.params(),
        &[(c1, &fx.alice), (out(&first, 0), &fx.bob)],
        vec![pay(address(&fx.miner), 70 * COIN - FEE)],
    );
    second.inputs[1].signature[40] ^= 0x80;
    let bad = fx.block(vec![first.clone(), second], 2 * FEE);
    assert_eq!(fx.reject_tx(bad), (2, TxError::BadSignature(1)));
    fx.accept(fx.block(vec![first], FEE));
}

#[test]
fn wrong_key() {
    let mut fx = fixture(1);
    let c = fx.coins[0];
    // Bob signs properly with his own key, but the coin pays alice's address.
    let tx = spend(
        fx.params(),
        &[(c, &fx.bob)],
        vec![pay(address(&fx.bob), 50 * COIN - FEE)],
    );
    let bad = fx.block(vec![tx], FEE);
    assert_eq!(fx.reject_tx(bad), (1, TxError::WrongKey(0)));
    fx.accept(fx.block(vec![fx.pay_bob(c)], FEE));
}

// ---------------------------------------------------------------------------------------------
// Merkle root
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_merkle_root() {
    let mut fx = fixture(1);
    let mut bad = fx.block(vec![fx.pay_bob(fx.coins[0])], FEE);
    bad.header.merkle_root = MerkleRoot([0x42; 32]);
    grind(&mut bad);
    assert_rule!(fx.reject(bad), BlockError::BadMerkleRoot);
    fx.accept(fx.block(vec![fx.pay_bob(fx.coins[0])], FEE));
}

/// A valid block with three transactions (odd count, so the tail can be duplicated) and a
/// copy whose last transaction is repeated: same merkle root, same header, same hash.
fn mutated_pair(fx: &Fx) -> (Block, Block) {
    let a = fx.pay_bob(fx.coins[0]);
    let b = spend(
        fx.params(),
        &[(out(&a, 0), &fx.bob)],
        vec![pay(address(&fx.miner), 20 * COIN - FEE)],
    );
    let good = fx.block(vec![a, b.clone()], 2 * FEE);
    let mut bad = good.clone();
    bad.txs.push(b);
    assert_eq!(good.txs.len(), 3);
    let (root_good, m_good) = merkle_root_checked(&good.txids());
    let (root_bad, m_bad) = merkle_root_checked(&bad.txids());
    assert_eq!(root_good, root_bad, "CVE-2012-2459: the roots collide");
    assert!(!m_good && m_bad);
    assert_eq!(good.hash(), bad.hash());
    (good, bad)
}

#[test]
fn mutated_merkle() {
    let mut fx = fixture(1);
    let (good, bad) = mutated_pair(&fx);
    assert_rule!(fx.reject(bad), BlockError::MutatedMerkle);
    // Control: the unmutated block is valid (on an identical, fresh chain).
    let mut fresh = fixture(1);
    assert_eq!(fresh.t.tip().hash(), fx.t.tip().hash());
    fresh.accept(good);
}

/// The block hash commits only to the header, so a peer can send the real header with a
/// mutated transaction list. Refusing the mutated copy must not blacklist the hash: the real
/// block must still be accepted afterwards (Bitcoin Core never caches such failures).
#[test]
fn mutated_copy_does_not_poison_the_valid_block() {
    let mut fx = fixture(1);
    let (good, bad) = mutated_pair(&fx);
    assert_rule!(fx.reject(bad), BlockError::MutatedMerkle);
    fx.accept(good);
}

/// Same as above with a tampered body (a transaction changed, the header kept): the header is
/// not at fault, so its hash must not be remembered as invalid.
#[test]
fn tampered_body_does_not_poison_the_valid_block() {
    let mut fx = fixture(1);
    let good = fx.block(vec![fx.pay_bob(fx.coins[0])], FEE);
    // Control: the block is valid (on an identical, fresh chain).
    let mut fresh = fixture(1);
    assert_eq!(fresh.t.tip().hash(), fx.t.tip().hash());
    fresh.accept(good.clone());
    let mut bad = good.clone();
    bad.txs[1].memo = b"tampered".to_vec();
    assert_eq!(bad.hash(), good.hash());
    assert_rule!(fx.reject(bad), BlockError::BadMerkleRoot);
    // Also a body emptied of its transactions.
    let mut bad = good.clone();
    bad.txs.clear();
    assert_rule!(fx.process_expect_refused(bad), BlockError::NoTransactions);
    fx.accept(good);
}

impl Fx {
    /// Like `reject`, but a `KnownInvalid` answer is also accepted as a refusal (the hash may
    /// already be blacklisted by an earlier refusal); returns the rule, or panics.
    fn process_expect_refused(&mut self, b: Block) -> BlockError {
        let tip = self.t.tip().hash();
        let utxo = self.t.utxo_set();
        let err = match self.t.process(b) {
            Err(ProcessError::Invalid { error, .. }) => *error,
            Err(ProcessError::KnownInvalid(h)) => {
                panic!("block {h} refused as KnownInvalid before its own checks ran")
            }
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(self.t.tip().hash(), tip);
        assert!(self.t.utxo_set() == utxo);
        err
    }
}

// ---------------------------------------------------------------------------------------------
// Proof of work and difficulty
// ---------------------------------------------------------------------------------------------

#[test]
fn high_hash() {
    let mut fx = fixture(0);
    let good = fx.block(vec![], 0);
    let mut bad = good.clone();
    unsolve(&mut bad);
    assert_ne!(bad.hash(), good.hash());
    assert_rule!(fx.reject(bad), BlockError::HighHash);
    fx.accept(good);
}

#[test]
fn wrong_target() {
    let mut fx = fixture(0);
    let required = fx.params().pow_limit.to_compact();
    assert_eq!(required, CompactTarget(0x207f_ffff));
    // Harder than required (valid work, but regtest requires exactly the limit).
    let mut bad = fx.block(vec![], 0);
    bad.header.bits = CompactTarget(0x1f00_ffff);
    solve(&mut bad, fx.params());
    assert!(
        bad.header
            .bits
            .to_target()
            .unwrap()
            .is_met_by(&bad.hash().0)
    );
    assert_rule!(
        fx.reject(bad),
        BlockError::WrongTarget {
            expected: 0x207f_ffff,
            found: 0x1f00_ffff
        }
    );
    // Easier than the network's limit.
    let mut bad = fx.block(vec![], 0);
    bad.header.bits = CompactTarget(0x2100_ffff);
    solve(&mut bad, fx.params());
    assert_rule!(
        fx.reject(bad),
        BlockError::WrongTarget {
            found: 0x2100_ffff,
            ..
        }
    );
    // A compact target that does not decode at all.
    let mut bad = fx.block(vec![], 0);
    bad.header.bits = CompactTarget(0);
    bad.header.nonce += 1;
    assert_rule!(fx.reject(bad), BlockError::BadCompactTarget(_));
    fx.accept(fx.block(vec![], 0));
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

#[test]
fn time_too_old() {
    let mut fx = fixture(0);
    let tip = fx.t.tip();
    assert!(tip.height >= 10);
    // Harness blocks are one second apart: the median of the last 11 is tip time - 5.
    let median = tip.header.time - 5;
    let mut bad = fx.block(vec![], 0);
    bad.header.time = median;
    solve(&mut bad, fx.params());
    assert_rule!(fx.reject(bad), BlockError::TimeTooOld { time, median: m }
        if *time == median && *m == median);
    // One second above the median is enough, even though it is before the parent's time.
    let mut good = fx.block(vec![], 0);
    good.header.time = median + 1;
    solve(&mut good, fx.params());
    fx.accept(good);
}

const FIXED_NOW: u64 = 1_800_000_000;
fn fixed_clock() -> u64 {
    FIXED_NOW
}
fn later_clock() -> u64 {
    FIXED_NOW + 3 * 60 * 60
}

#[test]
fn time_too_new_real_clock() {
    let mut fx = fixture(0);
    let max_future = fx.params().max_future_secs;
    let mut bad = fx.block(vec![], 0);
    bad.header.time = unix_now() + max_future + 600;
    solve(&mut bad, fx.params());
    assert_rule!(fx.reject(bad), BlockError::TimeTooNew { .. });
    let mut good = fx.block(vec![], 0);
    good.header.time = unix_now().max(fx.t.tip().header.time + 1);
    solve(&mut good, fx.params());
    fx.accept(good);
}

#[test]
fn time_too_new_boundary() {
    let mut fx = fixture(0);
    fx.t.chain.set_clock(fixed_clock);
    let max = FIXED_NOW + fx.params().max_future_secs;
    let mut bad = fx.block(vec![], 0);
    bad.header.time = max + 1;
    solve(&mut bad, fx.params());
    assert_rule!(fx.reject(bad), BlockError::TimeTooNew { time, max: m }
        if *time == max + 1 && *m == max);
    let mut good = fx.block(vec![], 0);
    good.header.time = max;
    solve(&mut good, fx.params());
    fx.accept(good);
}

/// "Too far in the future" depends on the local clock, not on the block: a block refused for
/// it must be accepted once the clock has caught up (Bitcoin Core does not cache
/// time-too-new as a permanent failure). Otherwise a node with a lagging clock, or one that
/// heard of a block early, refuses the network's chain until it restarts.
#[test]
fn time_too_new_is_not_permanent() {
    let mut fx = fixture(0);
    fx.t.chain.set_clock(fixed_clock);
    let mut b = fx.block(vec![], 0);
    b.header.time = FIXED_NOW + fx.params().max_future_secs + 1;
    solve(&mut b, fx.params());
    assert_rule!(fx.reject(b.clone()), BlockError::TimeTooNew { .. });
    // Control: the same block is valid on an identical chain whose clock is later.
    let mut fresh = fixture(0);
    assert_eq!(fresh.t.tip().hash(), fx.t.tip().hash());
    fresh.t.chain.set_clock(later_clock);
    fresh.accept(b.clone());
    // The clock catches up: the block must now be accepted.
    fx.t.chain.set_clock(later_clock);
    fx.accept(b);
}

// ---------------------------------------------------------------------------------------------
// Height commitments and lock heights
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_coinbase_height() {
    let mut fx = fixture(0);
    let height = fx.t.tip().height + 1;
    for wrong in [height + 1, height - 1, 0] {
        let mut bad = fx.block(vec![], 0);
        bad.txs[0].lock_height = wrong;
        solve(&mut bad, fx.params());
        assert_rule!(fx.reject(bad), BlockError::BadCoinbaseHeight { expected, found }
            if *expected == height && *found == wrong);
    }
    fx.accept(fx.block(vec![], 0));
}

#[test]
fn tx_not_final() {
    let mut fx = fixture(1);
    let height = fx.t.tip().height + 1;
    let locked = |fx: &Fx, lock: u64| {
        let mut tx = fx.pay_bob(fx.coins[0]);
        tx.lock_height = lock;
        sign(fx.params(), &mut tx, &[&fx.alice]);
        tx
    };
    let bad = fx.block(vec![locked(&fx, height + 1)], FEE);
    assert_rule!(fx.reject(bad), BlockError::Tx {
        index: 1,
        error: TxError::NotFinal { lock_height, height: h },
        ..
    } if *lock_height == height + 1 && *h == height);
    // Locked to exactly this height: final.
    fx.accept(fx.block(vec![locked(&fx, height)], FEE));
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

#[test]
fn decode_refuses_trailing_and_non_canonical_bytes() {
    let fx = fixture(1);
    let block = fx.block(vec![fx.pay_bob(fx.coins[0])], FEE);
    let max = fx.params().max_block_size;
    let bytes = block.encode();
    assert_eq!(Block::decode(&bytes, max), Ok(block.clone()));

    // One extra byte.
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        Block::decode(&trailing, max),
        Err(DecodeError::TrailingBytes(1))
    );
    // Longer than allowed.
    assert!(matches!(
        Block::decode(&bytes, bytes.len() - 1),
        Err(DecodeError::TooLarge { .. })
    ));

    // Layout: 88-byte header, tx count, then the coinbase: version, inputs len, outputs len...
    assert_eq!(bytes[88], block.txs.len() as u8);
    assert_eq!(bytes[89], 1, "coinbase version");
    // The coinbase version 1 as an overlong varint: 0x81 0x00.
    let mut overlong = bytes.clone();
    overlong.splice(89..90, [0x81, 0x00]);
    let e = Block::decode(&overlong, max).unwrap_err();
    assert_eq!(e, DecodeError::NonCanonical);

    // The coinbase lock_height (its height commitment) as an overlong varint.
    let cb = &block.txs[0];
    let amount_len = chain_tui::core::encode::encode(&cb.outputs[0].amount).len();
    let at = 89 + 1 + 1 + 1 + amount_len + 20;
    assert!(cb.lock_height < 0x80);
    assert_eq!(bytes[at] as u64, cb.lock_height);
    let mut overlong = bytes.clone();
    overlong.splice(at..at + 1, [0x80 | cb.lock_height as u8, 0x80, 0x00]);
    let e = Block::decode(&overlong, max).unwrap_err();
    assert!(
        matches!(e, DecodeError::NonCanonical | DecodeError::Malformed(_)),
        "{e:?}"
    );
    // A u32 varint longer than five bytes cannot even be parsed.
    let mut overlong = bytes.clone();
    overlong.splice(89..90, [0x81, 0x80, 0x80, 0x80, 0x80, 0x00]);
    assert!(matches!(
        Block::decode(&overlong, max),
        Err(DecodeError::Malformed(_) | DecodeError::NonCanonical)
    ));

    // A decode failure becomes the block rule `Decode`.
    let as_rule: BlockError = DecodeError::TrailingBytes(1).into();
    assert!(matches!(
        as_rule,
        BlockError::Decode(DecodeError::TrailingBytes(1))
    ));
}

// ---------------------------------------------------------------------------------------------
// Invalid ancestry, known-invalid blocks and orphans
// ---------------------------------------------------------------------------------------------

/// The meta a block would get once stored (to build children of blocks not yet processed).
fn meta_of(b: &Block, parent: &BlockMeta) -> BlockMeta {
    BlockMeta {
        header: b.header,
        height: parent.height + 1,
        ..*parent
    }
}

#[test]
fn known_invalid_resubmission() {
    let mut fx = fixture(0);
    let bad = fx.block(vec![], 1);
    let hash = bad.hash();
    assert_rule!(fx.reject(bad.clone()), BlockError::CoinbaseOverpay { .. });
    match fx.t.process(bad) {
        Err(ProcessError::KnownInvalid(h)) => assert_eq!(h, hash),
        other => panic!("expected KnownInvalid, got {other:?}"),
    }
    // A context-free failure is remembered too.
    let mut bad = fx.block(vec![], 0);
    unsolve(&mut bad);
    assert_rule!(fx.reject(bad.clone()), BlockError::HighHash);
    assert!(matches!(
        fx.t.process(bad),
        Err(ProcessError::KnownInvalid(_))
    ));
}

/// A side branch is stored before it is validated; when it gets the most work, its invalid
/// block is found, marked, and the tip stays. A child of the marked block is refused.
#[test]
fn invalid_ancestor_on_a_side_branch() {
    let mut fx = fixture(0);
    let tip = fx.t.tip();
    let tip_parent = fx.t.meta(&tip.header.prev);
    let utxo = fx.t.utxo_set();

    // S1: a competitor of the tip (equal work: side branch).
    let mut s1 = fx.block_on(&tip_parent, vec![], 0);
    s1.txs[0].memo = b"side".to_vec();
    solve(&mut s1, fx.params());
    assert_eq!(fx.t.process(s1.clone()).unwrap(), Accepted::SideBranch);
    let s1m = fx.t.meta(&s1.hash());

    // S2 on S1 overpays: it is stored, then fails when the branch is activated.
    let s2 = fx.block_on(&s1m, vec![], 1);
    let s2_hash = s2.hash();
    match fx.t.process(s2.clone()) {
        Err(ProcessError::Invalid { hash, error }) => {
            assert_eq!(hash, s2_hash);
            assert!(
                matches!(*error, BlockError::CoinbaseOverpay { .. }),
                "{error:?}"
            );
        }
        other => panic!("expected S2 to be refused, got {other:?}"),
    }
    assert_eq!(fx.t.tip().hash(), tip.hash());
    assert!(fx.t.utxo_set() == utxo);
    assert_eq!(fx.t.meta(&s2_hash).status, BlockStatus::Invalid);

    // S3 on S2.
    let s3 = fx.block_on(&fx.t.meta(&s2_hash), vec![], 0);
    let s3_hash = s3.hash();
    assert_rule!(fx.reject(s3.clone()), BlockError::InvalidAncestor);
    assert!(matches!(fx.t.process(s3), Err(ProcessError::KnownInvalid(h)) if h == s3_hash));
    assert!(matches!(fx.t.process(s2), Err(ProcessError::KnownInvalid(h)) if h == s2_hash));
    assert_eq!(fx.t.tip().hash(), tip.hash());
    assert!(fx.t.utxo_set() == utxo);
}

/// A block that extends the tip and fails is never stored; a child of it must still be
/// refused rather than parked in the orphan pool waiting for a parent that can never come.
#[test]
fn child_of_a_rejected_tip_extension_is_refused() {
    let mut fx = fixture(0);
    let tip = fx.t.tip();
    let bad = fx.block(vec![], 1);
    assert_rule!(fx.reject(bad.clone()), BlockError::CoinbaseOverpay { .. });
    let child = fx.block_on(&meta_of(&bad, &tip), vec![], 0);
    let res = fx.t.process(child);
    assert!(
        matches!(
            &res,
            Err(ProcessError::Invalid { error, .. }) if matches!(**error, BlockError::InvalidAncestor)
        ) || matches!(&res, Err(ProcessError::KnownInvalid(_))),
        "child of an invalid block: expected InvalidAncestor or KnownInvalid, got {res:?}"
    );
    assert_eq!(fx.t.chain.orphan_count(), 0);
    assert_eq!(fx.t.tip().hash(), tip.hash());
}

#[test]
fn orphan_waits_for_its_parent() {
    let mut fx = fixture(0);
    let tip = fx.t.tip();
    let b1 = fx.block(vec![], 0);
    let b2 = fx.block_on(&meta_of(&b1, &tip), vec![], 0);
    let utxo = fx.t.utxo_set();
    assert_eq!(fx.t.process(b2.clone()).unwrap(), Accepted::Orphan);
    assert_eq!(fx.t.chain.orphan_count(), 1);
    assert_eq!(fx.t.tip().hash(), tip.hash());
    assert!(fx.t.utxo_set() == utxo);
    match fx.t.process(b1.clone()).unwrap() {
        Accepted::TipChanged(change) => {
            let hashes: Vec<_> = change.connected.iter().map(|(b, _)| b.hash()).collect();
            assert_eq!(hashes, vec![b1.hash(), b2.hash()]);
            assert!(change.disconnected.is_empty());
        }
        other => panic!("expected the tip to move, got {other:?}"),
    }
    let new_tip = fx.t.tip();
    assert_eq!(new_tip.hash(), b2.hash());
    assert_eq!(new_tip.height, tip.height + 2);
    assert_eq!(fx.t.chain.orphan_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Mempool
// ---------------------------------------------------------------------------------------------

fn mempool_accept(fx: &Fx, pool: &mut Mempool, tx: Transaction) -> Result<Txid, MempoolError> {
    let reader = fx.t.chain.store().read().unwrap();
    let height = fx.t.tip().height;
    pool.accept(
        tx,
        &reader,
        height,
        fx.params(),
        &SerialVerifier,
        unix_now(),
    )
}

#[test]
fn mempool_conflict_names_the_first_spender() {
    let fx = fixture(1);
    let c = fx.coins[0];
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES);
    let first = fx.pay_bob(c);
    let first_id = mempool_accept(&fx, &mut pool, first.clone()).unwrap();
    assert_eq!(first_id, first.txid());
    let second = fx.alice_pays(c, vec![pay(address(&fx.miner), 50 * COIN - 2 * FEE)]);
    assert_eq!(
        mempool_accept(&fx, &mut pool, second),
        Err(MempoolError::Conflict {
            outpoint: c,
            by: first_id
        })
    );
    assert_eq!(
        mempool_accept(&fx, &mut pool, first),
        Err(MempoolError::AlreadyKnown(first_id))
    );
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.spender(&c), Some(first_id));
}

#[test]
fn mempool_refuses_coinbase() {
    let fx = fixture(0);
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES);
    let cb = coinbase(fx.t.tip().height + 1, address(&fx.bob), 50 * COIN, b"");
    assert_eq!(
        mempool_accept(&fx, &mut pool, cb),
        Err(MempoolError::Coinbase)
    );
    assert!(pool.is_empty());
}

#[test]
fn mempool_fee_rate_minimum() {
    let fx = fixture(1);
    let c = fx.coins[0];
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES);
    let with_fee = |fee: u64| {
        fx.alice_pays(
            c,
            vec![
                pay(address(&fx.bob), 20 * COIN),
                pay(address(&fx.alice), 30 * COIN - fee),
            ],
        )
    };
    let size = with_fee(0).size();
    assert_eq!(
        Some(FeeRate::MIN_RELAY),
        FeeRate::per_byte(1),
        "the boundary below assumes 1 unit per byte"
    );
    // Zero fee.
    assert!(matches!(
        mempool_accept(&fx, &mut pool, with_fee(0)),
        Err(MempoolError::FeeTooLow { rate, min })
            if rate == FeeRate::per_kb(0) && min == FeeRate::MIN_RELAY
    ));
    // One unit short of one unit per byte.
    let short = with_fee(size as u64 - 1);
    assert_eq!(short.size(), size);
    assert!(matches!(
        mempool_accept(&fx, &mut pool, short),
        Err(MempoolError::FeeTooLow { rate, .. }) if rate < FeeRate::MIN_RELAY
    ));
    assert!(pool.is_empty());
    // Exactly the minimum.
    let exact = with_fee(size as u64);
    assert_eq!(exact.size(), size);
    mempool_accept(&fx, &mut pool, exact).unwrap();
}

#[test]
fn mempool_refuses_confirmed_tx() {
    let mut fx = fixture(1);
    let tx = fx.pay_bob(fx.coins[0]);
    fx.accept(fx.block(vec![tx.clone()], FEE));
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES);
    assert_eq!(
        mempool_accept(&fx, &mut pool, tx.clone()),
        Err(MempoolError::AlreadyConfirmed(tx.txid()))
    );
}

#[test]
fn mempool_refuses_invalid_tx() {
    let mut fx = fixture(0);
    let (b, _) = mine_fast(&mut fx.t, address(&fx.alice));
    let c = coinbase_of(&b);
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES);
    assert!(matches!(
        mempool_accept(&fx, &mut pool, fx.pay_bob(c)),
        Err(MempoolError::Invalid(TxError::ImmatureCoinbase { .. }))
    ));
    let mut tx = fx.pay_bob(c);
    tx.inputs[0].signature[0] ^= 1;
    for _ in 0..fx.params().coinbase_maturity {
        mine_fast(&mut fx.t, address(&fx.miner));
    }
    assert_eq!(
        mempool_accept(&fx, &mut pool, tx),
        Err(MempoolError::Invalid(TxError::BadSignature(0)))
    );
    mempool_accept(&fx, &mut pool, fx.pay_bob(c)).unwrap();
}

#[test]
fn mempool_child_of_unconfirmed_parent_and_template_order() {
    let mut fx = fixture(2);
    let (c0, c1) = (fx.coins[0], fx.coins[1]);
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES);
    // Parent: low fee rate. Child: highest fee rate. Independent: in between.
    let parent = fx.alice_pays(c0, vec![pay(address(&fx.bob), 50 * COIN - 1_000)]);
    let child = spend(
        fx.params(),
        &[(out(&parent, 0), &fx.bob)],
        vec![pay(address(&fx.miner), 50 * COIN - 1_000 - 100_000)],
    );
    let other = fx.alice_pays(c1, vec![pay(address(&fx.bob), 50 * COIN - 10_000)]);
    mempool_accept(&fx, &mut pool, parent.clone()).unwrap();
    mempool_accept(&fx, &mut pool, child.clone()).unwrap();
    mempool_accept(&fx, &mut pool, other.clone()).unwrap();
    assert_eq!(pool.len(), 3);
    let rate = |tx: &Transaction| pool.get(&tx.txid()).unwrap().rate;
    assert!(rate(&child) > rate(&other) && rate(&other) > rate(&parent));

    let (txs, fees) = pool.template(1_000_000);
    let ids: Vec<Txid> = txs.iter().map(Transaction::txid).collect();
    assert_eq!(ids, vec![other.txid(), parent.txid(), child.txid()]);
    assert_eq!(fees, Amount::from_units(1_000 + 100_000 + 10_000));
    // Parents before children in the unordered listing too.
    let all: Vec<Txid> = pool.ordered_txs().iter().map(Transaction::txid).collect();
    let pos = |id: Txid| all.iter().position(|x| *x == id).unwrap();
    assert!(pos(parent.txid()) < pos(child.txid()));

    // The template makes a valid block.
    fx.accept(fx.block(txs, fees.units()));
}

/// Outputs that pay the same address many times (used by size tests) are ordinary outputs.
#[test]
fn many_small_outputs_are_valid() {
    let mut fx = fixture(1);
    let outputs: Vec<TxOut> = (0..500).map(|_| pay(address(&fx.bob), COIN / 10)).collect();
    let tx = spend(fx.params(), &[(fx.coins[0], &fx.alice)], outputs);
    fx.accept(fx.block(vec![tx], 0));
}
