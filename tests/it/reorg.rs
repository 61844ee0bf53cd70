//! Reorganisations on the chain state machine: the UTXO set and the address index after a switch
//! are exactly those of a chain that only ever saw the winning branch, fork choice by work,
//! invalid blocks on heavier branches, orphans, and reopening the store after each switch.

use crate::common::*;
use chain_tui::core::Address;
use chain_tui::core::amount::Amount;
use chain_tui::core::block::Block;
use chain_tui::core::hash::BlockHash;
use chain_tui::core::pow::Work;
use chain_tui::core::rules::{BlockError, Coin, SerialVerifier, TxError};
use chain_tui::core::tx::{OutPoint, Transaction};
use chain_tui::node::chain::{Accepted, Chain, ProcessError};
use chain_tui::node::validate::validate_chain;
use chain_tui::storage::{BlockMeta, BlockStatus, HistoryEntry, Store};
use ed25519_dalek::SigningKey;

const COIN: u64 = 1_0000_0000;

/// A stand-in index entry for a block that is built but not processed yet (the template only
/// needs the parent's hash, height and time).
fn pending_meta(block: &Block, height: u64) -> BlockMeta {
    BlockMeta {
        header: block.header,
        height,
        chainwork: Work::ZERO,
        status: BlockStatus::Stored,
        size: 0,
        tx_count: block.txs.len() as u32,
    }
}

/// One block of a branch to build: who the coinbase pays, its transactions and their fees.
struct Spec {
    to: Address,
    txs: Vec<Transaction>,
    fees: Amount,
}

fn empty(to: Address) -> Spec {
    Spec {
        to,
        txs: vec![],
        fees: Amount::ZERO,
    }
}

/// Build and solve a branch on `parent` without processing it.
fn build_branch(t: &TestChain, parent: &BlockMeta, specs: Vec<Spec>) -> Vec<Block> {
    let mut parent = *parent;
    let mut out = Vec::new();
    for s in specs {
        let mut b = t.template(&parent, s.to, s.txs, s.fees);
        solve(&mut b, t.params);
        parent = pending_meta(&b, parent.height + 1);
        out.push(b);
    }
    out
}

/// A branch on `parent` whose coinbases all pay `miner`: one block per entry of `blocks`, with
/// those transactions, each paying a fee of `fee`.
fn branch(
    t: &TestChain,
    parent: &BlockMeta,
    miner: &SigningKey,
    fee: u64,
    blocks: Vec<Vec<Transaction>>,
) -> Vec<Block> {
    let specs = blocks
        .into_iter()
        .map(|txs| Spec {
            to: address(miner),
            fees: Amount::from_units(fee * txs.len() as u64),
            txs,
        })
        .collect();
    build_branch(t, parent, specs)
}

/// Processes `blocks` in order; each must move the tip.
fn connect(t: &mut TestChain, blocks: &[Block]) {
    for b in blocks {
        tip_change(t.process(b.clone()));
    }
}

/// Processes `blocks` in order; each must be stored as a side branch.
fn side(t: &mut TestChain, blocks: &[Block]) {
    for b in blocks {
        assert_eq!(t.process(b.clone()).unwrap(), Accepted::SideBranch);
    }
}

fn block_at(t: &TestChain, height: u64) -> Block {
    let r = t.chain.store().read().unwrap();
    let hash = r.hash_at(height).unwrap().expect("active height");
    r.block(&hash).unwrap().expect("block data")
}

/// The active chain's blocks from height 1 to the tip.
fn active_blocks(t: &TestChain) -> Vec<Block> {
    (1..=t.tip().height).map(|h| block_at(t, h)).collect()
}

/// A fresh chain fed exactly `blocks`, in order; each must move the tip.
fn chain_of(blocks: &[Block]) -> TestChain {
    let mut t = TestChain::new();
    for b in blocks {
        match t.process(b.clone()) {
            Ok(Accepted::TipChanged(_)) => {}
            other => panic!("block {} not connected: {other:?}", b.hash()),
        }
    }
    t
}

/// Drop the chain and open the store again from its directory.
fn reopen(t: TestChain) -> TestChain {
    let TestChain { dir, chain, params } = t;
    drop(chain);
    let store = Store::open(&dir.path().join("chain.redb"), params.network).expect("reopen store");
    TestChain {
        dir,
        chain: Chain::new(store, Box::new(SerialVerifier)),
        params,
    }
}

fn addr_coins(t: &TestChain, a: &Address) -> Vec<(OutPoint, Coin)> {
    t.chain.store().read().unwrap().address_coins(a).unwrap()
}

fn addr_history(t: &TestChain, a: &Address) -> Vec<HistoryEntry> {
    t.chain.store().read().unwrap().address_history(a).unwrap()
}

/// Everything observable about the active chain's state must be identical in `got` and in
/// `want` (a chain that only ever saw the winning branch).
fn assert_same_state(got: &TestChain, want: &TestChain, addrs: &[Address]) {
    assert_eq!(got.tip().hash(), want.tip().hash(), "tip");
    assert_eq!(got.tip().height, want.tip().height, "height");
    assert_eq!(got.tip().chainwork, want.tip().chainwork, "chainwork");
    assert_eq!(got.utxo_set(), want.utxo_set(), "UTXO set");
    for h in 0..=want.tip().height {
        assert_eq!(
            got.chain.store().read().unwrap().hash_at(h).unwrap(),
            want.chain.store().read().unwrap().hash_at(h).unwrap(),
            "active block at height {h}"
        );
    }
    for a in addrs {
        assert_eq!(addr_coins(got, a), addr_coins(want, a), "address coins");
        assert_eq!(addr_history(got, a), addr_history(want, a), "history");
    }
    // The address index agrees with the UTXO set.
    let utxo = got.utxo_set();
    for a in addrs {
        let from_utxo: Vec<(OutPoint, Coin)> = utxo
            .iter()
            .filter(|(_, c)| c.output.address == *a)
            .copied()
            .collect();
        let mut indexed = addr_coins(got, a);
        indexed.sort_by_key(|(o, _)| *o);
        let mut from_utxo = from_utxo;
        from_utxo.sort_by_key(|(o, _)| *o);
        assert_eq!(indexed, from_utxo, "address index vs UTXO set");
    }
    let r1 = validate_chain(got.chain.store(), &SerialVerifier).unwrap();
    let r2 = validate_chain(want.chain.store(), &SerialVerifier).unwrap();
    assert!(r1.is_valid(), "reorganised chain fails validation: {r1:?}");
    assert!(r2.is_valid(), "reference chain fails validation: {r2:?}");
    assert_eq!(r1.utxo_count, r2.utxo_count);
    assert_eq!(r1.utxo_count, utxo.len());
    assert_eq!(r1.height, r2.height);
}

/// `t`'s state is that of a chain fed only the blocks of `parts`, in order.
fn assert_only(t: &TestChain, k: &Keys, parts: &[&[Block]]) {
    assert_same_state(t, &chain_of(&parts.concat()), &k.addrs());
}

/// [`assert_only`], and it stays so after reopening the store.
fn assert_state_is(t: TestChain, k: &Keys, parts: &[&[Block]]) {
    let want = chain_of(&parts.concat());
    assert_same_state(&t, &want, &k.addrs());
    let t = assert_survives_reopen(t);
    assert_same_state(&t, &want, &k.addrs());
}

/// Reopen `t` from disk and check the tip and UTXO set did not change.
fn assert_survives_reopen(t: TestChain) -> TestChain {
    let tip = t.tip();
    let utxo = t.utxo_set();
    let t = reopen(t);
    assert_eq!(t.tip(), tip, "tip after reopening");
    assert_eq!(t.utxo_set(), utxo, "UTXO set after reopening");
    let r = validate_chain(t.chain.store(), &SerialVerifier).unwrap();
    assert!(r.is_valid(), "{r:?}");
    t
}

fn tip_change(r: Result<Accepted, ProcessError>) -> chain_tui::node::chain::TipChange {
    match r {
        Ok(Accepted::TipChanged(c)) => c,
        other => panic!("expected a tip change, got {other:?}"),
    }
}

/// What a tip change connected: each block's hash and height.
fn connected(change: &chain_tui::node::chain::TipChange) -> Vec<(BlockHash, u64)> {
    change
        .connected
        .iter()
        .map(|(b, h)| (b.hash(), *h))
        .collect()
}

/// `blocks`' hashes with their heights, the first at `first`.
fn at_heights(blocks: &[Block], first: u64) -> Vec<(BlockHash, u64)> {
    (first..).zip(blocks).map(|(h, b)| (b.hash(), h)).collect()
}

fn hashes(blocks: &[Block]) -> Vec<BlockHash> {
    blocks.iter().map(Block::hash).collect()
}

/// Mine `n` blocks paying `to`, returning the blocks.
fn mine_prefix(t: &mut TestChain, n: u64, to: Address) -> Vec<Block> {
    t.mine(n, to);
    active_blocks(t)
}

/// Keys, a chain of `blocks` blocks mined to `k.miner`, those blocks, its tip (where the
/// branches fork) and the blocks' coinbase outputs.
fn forked(blocks: u64) -> (Keys, TestChain, Vec<Block>, BlockMeta, Vec<OutPoint>) {
    let k = Keys::new();
    let mut t = TestChain::new();
    let prefix = mine_prefix(&mut t, blocks, address(&k.miner));
    let cb = prefix.iter().map(coinbase_of).collect();
    let fork = t.tip();
    (k, t, prefix, fork, cb)
}

struct Keys {
    miner: SigningKey,
    x: SigningKey,
    y: SigningKey,
    z: SigningKey,
    miner_a: SigningKey,
    miner_b: SigningKey,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            miner: key(1),
            x: key(2),
            y: key(3),
            z: key(4),
            miner_a: key(5),
            miner_b: key(6),
        }
    }
    fn addrs(&self) -> Vec<Address> {
        [
            &self.miner,
            &self.x,
            &self.y,
            &self.z,
            &self.miner_a,
            &self.miner_b,
        ]
        .iter()
        .map(|k| address(k))
        .collect()
    }
}

#[test]
fn reorg_to_heavier_branch_and_back_restores_state_exactly() {
    // 15 blocks: the coinbases of heights 1..=6 are mature in a block at height 16.
    let (k, mut t, prefix, fork, cb) = forked(15);
    let fee = 10_000;

    // Branch A: spends cb[0] (conflicts with B), cb[1] (A only), then a child of its first tx.
    let a_tx1 = pays(
        t.params,
        cb[0],
        &k.miner,
        &[(&k.x, 10 * COIN), (&k.miner, 40 * COIN - fee)],
    );
    let a_tx2 = pays(t.params, cb[1], &k.miner, &[(&k.x, 50 * COIN - fee)]);
    let a_tx3 = pays(
        t.params,
        out(&a_tx1, 0),
        &k.x,
        &[(&k.z, 3 * COIN), (&k.x, 7 * COIN - fee)],
    );
    let branch_a = branch(
        &t,
        &fork,
        &k.miner_a,
        fee,
        vec![vec![a_tx1, a_tx2], vec![a_tx3], vec![]],
    );

    // Branch B: spends cb[0] differently (the conflict), cb[2] (B only), a child, and cb[3]
    // together with a B-only output in one transaction.
    let b_tx1 = pays(
        t.params,
        cb[0],
        &k.miner,
        &[(&k.y, 20 * COIN), (&k.miner, 30 * COIN - fee)],
    );
    let b_tx2 = pays(t.params, cb[2], &k.miner, &[(&k.y, 50 * COIN - fee)]);
    let b_tx3 = pays(t.params, out(&b_tx1, 0), &k.y, &[(&k.z, 20 * COIN - fee)]);
    let b_tx4 = spend(
        t.params,
        &[(cb[3], &k.miner), (out(&b_tx2, 0), &k.y)],
        vec![pay(address(&k.x), 100 * COIN - 2 * fee)],
    );
    let branch_b = branch(
        &t,
        &fork,
        &k.miner_b,
        fee,
        vec![vec![b_tx1], vec![b_tx2], vec![b_tx3], vec![b_tx4]],
    );

    // A is connected first.
    connect(&mut t, &branch_a);
    assert_eq!(t.tip().hash(), branch_a[2].hash());
    assert_only(&t, &k, &[&prefix, &branch_a]);

    // B: three blocks are a side branch (the third has equal work: first seen stays), the
    // fourth has more work.
    for b in &branch_b[..3] {
        assert_eq!(t.process(b.clone()).unwrap(), Accepted::SideBranch);
        assert_eq!(t.tip().hash(), branch_a[2].hash());
    }
    let change = tip_change(t.process(branch_b[3].clone()));
    let mut a_rev = hashes(&branch_a);
    a_rev.reverse();
    assert_eq!(
        hashes(&change.disconnected),
        a_rev,
        "A disconnected tip first"
    );
    assert_eq!(
        connected(&change),
        at_heights(&branch_b, fork.height + 1),
        "B connected oldest first with heights"
    );
    assert_eq!(t.tip().hash(), branch_b[3].hash());
    // A's blocks are still known, as a side branch.
    for b in &branch_a {
        assert_eq!(t.meta(&b.hash()).status, BlockStatus::Valid);
    }
    assert_only(&t, &k, &[&prefix, &branch_b]);
    // The coin spent only by A is back; the one spent only by B is gone.
    assert!(t.coin(&cb[1]).is_some());
    assert!(t.coin(&cb[2]).is_none());
    assert!(t.coin(&out(&branch_a[1].txs[1], 0)).is_none());
    let mut t = assert_survives_reopen(t);

    // Back to A, extended to more work than B (A4 ties, A5 wins).
    let a_tip = pending_meta(&branch_a[2], fork.height + 3);
    let a_ext = build_branch(
        &t,
        &a_tip,
        vec![empty(address(&k.miner_a)), empty(address(&k.x))],
    );
    assert_eq!(t.process(a_ext[0].clone()).unwrap(), Accepted::SideBranch);
    assert_eq!(t.tip().hash(), branch_b[3].hash());
    let change = tip_change(t.process(a_ext[1].clone()));
    assert_eq!(change.disconnected.len(), 4);
    assert_eq!(change.connected.len(), 5);
    assert_eq!(t.tip().hash(), a_ext[1].hash());
    let only_a2: Vec<Block> = prefix
        .iter()
        .chain(&branch_a)
        .chain(&a_ext)
        .cloned()
        .collect();
    assert_same_state(&t, &chain_of(&only_a2), &k.addrs());
    let t = assert_survives_reopen(t);
    assert_same_state(&t, &chain_of(&only_a2), &k.addrs());
}

#[test]
fn deep_reorg_30_over_25() {
    let (k, mut t, prefix, fork, cb) = forked(12);
    let fee = 5_000;
    let a_tx = pays(t.params, cb[0], &k.miner, &[(&k.x, 50 * COIN - fee)]);
    let b_tx = spend(
        t.params,
        &[(cb[0], &k.miner), (cb[1], &k.miner)],
        vec![pay(address(&k.y), 100 * COIN - fee)],
    );
    let mut a_blocks = vec![vec![]; 25];
    a_blocks[0].push(a_tx);
    let mut b_blocks = vec![vec![]; 30];
    b_blocks[10].push(b_tx);
    let branch_a = branch(&t, &fork, &k.miner_a, fee, a_blocks);
    let branch_b = branch(&t, &fork, &k.miner_b, fee, b_blocks);
    assert_eq!((branch_a.len(), branch_b.len()), (25, 30));

    connect(&mut t, &branch_a);
    side(&mut t, &branch_b[..25]);
    assert_eq!(t.tip().hash(), branch_a[24].hash());
    let change = tip_change(t.process(branch_b[25].clone()));
    assert_eq!(change.disconnected.len(), 25);
    assert_eq!(change.connected.len(), 26);
    for b in &branch_b[26..] {
        let c = tip_change(t.process(b.clone()));
        assert!(c.disconnected.is_empty());
        assert_eq!(c.connected.len(), 1);
    }
    assert_eq!(t.tip().hash(), branch_b[29].hash());
    assert_eq!(t.tip().height, fork.height + 30);
    assert_state_is(t, &k, &[&prefix, &branch_b]);
}

#[test]
fn equal_work_does_not_switch_first_seen_wins() {
    let k = Keys::new();
    let mut t = TestChain::new();
    let prefix = mine_prefix(&mut t, 3, address(&k.miner));
    let fork = t.tip();
    let branch_a = branch(&t, &fork, &k.miner_a, 0, vec![vec![], vec![]]);
    let branch_b = branch(&t, &fork, &k.miner_b, 0, vec![vec![], vec![]]);
    connect(&mut t, &branch_a);
    let before = t.utxo_set();
    for b in &branch_b {
        assert_eq!(t.process(b.clone()).unwrap(), Accepted::SideBranch);
        assert_eq!(t.tip().hash(), branch_a[1].hash());
    }
    // Stored, not connected; same work as the tip.
    let side_tip = t.meta(&branch_b[1].hash());
    assert_eq!(side_tip.status, BlockStatus::Stored);
    assert_eq!(side_tip.chainwork, t.tip().chainwork);
    assert_eq!(t.utxo_set(), before);
    // Submitting again is a duplicate.
    assert_eq!(t.process(branch_b[1].clone()).unwrap(), Accepted::Duplicate);
    assert_only(&t, &k, &[&prefix, &branch_a]);
    // Also after a restart (recover must not switch to the equal-work branch).
    let mut t = assert_survives_reopen(t);
    t.chain.recover().unwrap();
    assert_eq!(t.tip().hash(), branch_a[1].hash());
}

/// A transaction spending `o` whose signature is wrong (otherwise well formed).
fn bad_sig_spend(
    params: &chain_tui::core::params::Params,
    o: OutPoint,
    k: &SigningKey,
) -> Transaction {
    let mut tx = spend(params, &[(o, k)], vec![pay(address(k), 50 * COIN - 1_000)]);
    tx.inputs[0].signature[0] ^= 1;
    tx
}

#[test]
fn heavier_branch_with_invalid_block_is_not_adopted() {
    let (k, mut t, prefix, fork, cb) = forked(15);
    let a_tx = pays(t.params, cb[0], &k.miner, &[(&k.x, 50 * COIN - 1_000)]);
    let branch_a = branch(
        &t,
        &fork,
        &k.miner_a,
        1_000,
        vec![vec![a_tx], vec![], vec![]],
    );
    let good_b = pays(t.params, cb[1], &k.miner, &[(&k.y, 50 * COIN - 1_000)]);
    let bad = bad_sig_spend(t.params, cb[2], &k.miner);
    let branch_b = branch(
        &t,
        &fork,
        &k.miner_b,
        1_000,
        vec![vec![good_b], vec![bad], vec![], vec![]],
    );
    connect(&mut t, &branch_a);
    side(&mut t, &branch_b[..3]);
    let err = t.process(branch_b[3].clone()).unwrap_err();
    match &err {
        ProcessError::Invalid { hash, .. } => assert_eq!(*hash, branch_b[1].hash()),
        other => panic!("unexpected error {other:?}"),
    }
    assert_eq!(t.tip().hash(), branch_a[2].hash(), "tip stays on A");
    assert_eq!(t.meta(&branch_b[1].hash()).status, BlockStatus::Invalid);
    let only_a = [&prefix[..], &branch_a[..]].concat();
    let want = chain_of(&only_a);
    assert_same_state(&t, &want, &k.addrs());
    // The bad block itself and anything built on the invalid branch are refused.
    assert!(matches!(
        t.process(branch_b[1].clone()),
        Err(ProcessError::KnownInvalid(_))
    ));
    let b5 = branch(
        &t,
        &pending_meta(&branch_b[3], fork.height + 4),
        &k.miner_b,
        0,
        vec![vec![]],
    );
    let r = t.process(b5[0].clone());
    assert!(
        matches!(&r, Err(ProcessError::Invalid { error, .. }) if **error == BlockError::InvalidAncestor),
        "a block on an invalid branch: {r:?}"
    );
    assert_eq!(t.tip().hash(), branch_a[2].hash());
    let t = assert_survives_reopen(t);
    assert_same_state(&t, &want, &k.addrs());
}

#[test]
fn invalid_block_error_names_the_real_reason() {
    // The caller of process_block should learn why the heavier branch was refused (a bad
    // signature), not only that some ancestor is invalid.
    let (k, mut t, _, fork, cb) = forked(15);
    let branch_a = branch(&t, &fork, &k.miner_a, 0, vec![vec![]]);
    let bad = bad_sig_spend(t.params, cb[2], &k.miner);
    let branch_b = branch(&t, &fork, &k.miner_b, 1_000, vec![vec![bad], vec![]]);
    tip_change(t.process(branch_a[0].clone()));
    assert_eq!(
        t.process(branch_b[0].clone()).unwrap(),
        Accepted::SideBranch
    );
    match t.process(branch_b[1].clone()) {
        Err(ProcessError::Invalid { hash, error }) => {
            assert_eq!(hash, branch_b[0].hash());
            assert!(
                matches!(
                    *error,
                    BlockError::Tx {
                        error: TxError::BadSignature(0),
                        ..
                    }
                ),
                "error reported: {error:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(t.tip().hash(), branch_a[0].hash());
}

#[test]
fn invalid_block_after_heavier_valid_part_keeps_the_valid_part() {
    // A: one block. B: B1, B2 valid (more work than A), B3 invalid, B4 on top.
    let (k, mut t, prefix, fork, cb) = forked(15);
    let branch_a = branch(&t, &fork, &k.miner_a, 0, vec![vec![]]);
    let bad = bad_sig_spend(t.params, cb[0], &k.miner);
    let branch_b = branch(
        &t,
        &fork,
        &k.miner_b,
        1_000,
        vec![vec![], vec![], vec![bad], vec![]],
    );
    tip_change(t.process(branch_a[0].clone()));
    assert_eq!(
        t.process(branch_b[0].clone()).unwrap(),
        Accepted::SideBranch
    );
    let c = tip_change(t.process(branch_b[1].clone()));
    assert_eq!(c.disconnected.len(), 1);
    assert!(matches!(
        t.process(branch_b[2].clone()),
        Err(ProcessError::Invalid { .. })
    ));
    // B4's parent was never stored: it waits as an orphan, or is refused; it never connects.
    match t.process(branch_b[3].clone()) {
        Ok(Accepted::Orphan) | Err(_) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(t.tip().hash(), branch_b[1].hash());
    assert_state_is(t, &k, &[&prefix, &branch_b[..2]]);
}

#[test]
fn invalid_branch_does_not_block_a_valid_heavier_branch() {
    // Tip: prefix + A (3 blocks). B (5 blocks) has a bad second block and is refused. Then a
    // valid C of 4 blocks (more work than A, less than the stored invalid B) must become the
    // chain: the node should follow the most-work VALID branch.
    let (k, mut t, prefix, fork, cb) = forked(15);
    let branch_a = branch(&t, &fork, &k.miner_a, 0, vec![vec![]; 3]);
    let bad = bad_sig_spend(t.params, cb[0], &k.miner);
    let branch_b = branch(
        &t,
        &fork,
        &k.miner_b,
        1_000,
        vec![vec![], vec![bad], vec![], vec![], vec![]],
    );
    let branch_c = branch(&t, &fork, &k.x, 0, vec![vec![]; 4]);
    connect(&mut t, &branch_a);
    side(&mut t, &branch_b[..3]);
    let r = t.process(branch_b[3].clone());
    assert!(
        matches!(&r, Err(ProcessError::Invalid { hash, .. }) if *hash == branch_b[1].hash()),
        "the branch is refused for its bad block: {r:?}"
    );
    // A child of the refused block: refused as well (or kept off the chain).
    let _ = t.process(branch_b[4].clone());
    assert_eq!(t.tip().hash(), branch_a[2].hash());
    side(&mut t, &branch_c[..3]);
    let r = t.process(branch_c[3].clone());
    assert!(
        matches!(r, Ok(Accepted::TipChanged(_))),
        "valid heavier branch C refused: {r:?}"
    );
    assert_eq!(t.tip().hash(), branch_c[3].hash());
    assert_only(&t, &k, &[&prefix, &branch_c]);
}

#[test]
fn orphans_connect_when_the_parent_arrives() {
    let (k, mut t, prefix, fork, cb) = forked(12);
    let cb = cb[0];
    let tx = pays(t.params, cb, &k.miner, &[(&k.x, 50 * COIN - 1_000)]);
    let child = pays(t.params, out(&tx, 0), &k.x, &[(&k.y, 50 * COIN - 2_000)]);
    let branch = branch(
        &t,
        &fork,
        &k.miner_a,
        1_000,
        vec![vec![], vec![tx], vec![], vec![child], vec![]],
    );
    // Child first: every block but the first is an orphan.
    for (i, b) in branch[1..].iter().rev().enumerate() {
        assert_eq!(t.process(b.clone()).unwrap(), Accepted::Orphan);
        assert_eq!(t.chain.orphan_count(), i + 1);
        assert_eq!(t.tip().hash(), fork.hash());
    }
    // An orphan delivered twice stays one orphan.
    assert_eq!(t.process(branch[2].clone()).unwrap(), Accepted::Orphan);
    assert_eq!(t.chain.orphan_count(), 4);
    let change = tip_change(t.process(branch[0].clone()));
    assert!(change.disconnected.is_empty());
    assert_eq!(connected(&change), at_heights(&branch, fork.height + 1));
    assert_eq!(t.chain.orphan_count(), 0);
    assert_eq!(t.tip().hash(), branch[4].hash());
    assert_only(&t, &k, &[&prefix, &branch]);
}

#[test]
fn orphans_of_a_heavier_branch_reorganise_when_the_parent_arrives() {
    let (k, mut t, prefix, fork, cb) = forked(12);
    let cb = cb[0];
    let a_tx = pays(t.params, cb, &k.miner, &[(&k.x, 50 * COIN - 1_000)]);
    let b_tx = pays(t.params, cb, &k.miner, &[(&k.y, 50 * COIN - 1_000)]);
    let branch_a = branch(&t, &fork, &k.miner_a, 1_000, vec![vec![a_tx], vec![]]);
    let branch_b = branch(
        &t,
        &fork,
        &k.miner_b,
        1_000,
        vec![vec![], vec![b_tx], vec![]],
    );
    connect(&mut t, &branch_a);
    assert_eq!(t.process(branch_b[2].clone()).unwrap(), Accepted::Orphan);
    assert_eq!(t.process(branch_b[1].clone()).unwrap(), Accepted::Orphan);
    let change = tip_change(t.process(branch_b[0].clone()));
    let mut a_rev = hashes(&branch_a);
    a_rev.reverse();
    assert_eq!(hashes(&change.disconnected), a_rev);
    assert_eq!(
        change
            .connected
            .iter()
            .map(|(b, _)| b.hash())
            .collect::<Vec<_>>(),
        hashes(&branch_b)
    );
    assert_eq!(t.chain.orphan_count(), 0);
    assert_state_is(t, &k, &[&prefix, &branch_b]);
}

#[test]
fn validate_chain_accepts_spends_of_outputs_created_in_the_same_block() {
    // A block confirming a transaction and its child. The chain accepts it; the full
    // re-verification must agree, before and after a reorganisation to such a block.
    let (k, mut t, prefix, fork, cb) = forked(12);
    let parent = pays(t.params, cb[0], &k.miner, &[(&k.x, 50 * COIN - 1_000)]);
    let child = pays(
        t.params,
        out(&parent, 0),
        &k.x,
        &[(&k.y, 50 * COIN - 2_000)],
    );
    let b_parent = pays(t.params, cb[1], &k.miner, &[(&k.y, 50 * COIN - 1_000)]);
    let b_child = pays(
        t.params,
        out(&b_parent, 0),
        &k.y,
        &[(&k.z, 50 * COIN - 2_000)],
    );
    let branch_a = branch(&t, &fork, &k.miner_a, 1_000, vec![vec![parent, child]]);
    let branch_b = branch(
        &t,
        &fork,
        &k.miner_b,
        1_000,
        vec![vec![b_parent, b_child], vec![]],
    );
    tip_change(t.process(branch_a[0].clone()));
    let report = validate_chain(t.chain.store(), &SerialVerifier).unwrap();
    assert!(
        report.is_valid(),
        "validate_chain rejects a chain the node accepted: {report:?}"
    );
    assert_eq!(
        t.process(branch_b[0].clone()).unwrap(),
        Accepted::SideBranch
    );
    tip_change(t.process(branch_b[1].clone()));
    assert_only(&t, &k, &[&prefix, &branch_b]);
}
