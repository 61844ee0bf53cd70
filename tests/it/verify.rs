//! Signature verification across verifiers: the serial, batch and multi-core verifiers give
//! the same block errors (index and input included), and the node's batched mempool admission
//! gives each transaction the result it would get alone.

use crate::common::net::{mine, spawn_node};
use crate::common::*;
use chain_tui::core::amount::Amount;
use chain_tui::core::block::Block;
use chain_tui::core::hash::Txid;
use chain_tui::core::params::Network;
use chain_tui::core::rules::{
    BatchVerifier, BlockError, Coin, SerialVerifier, SigVerifier, TxError, check_block_sanity,
    connect_block_txs,
};
use chain_tui::core::tx::{OutPoint, TxOut};
use chain_tui::node::mempool::MempoolError;
use chain_tui::node::verify::ParallelVerifier;
use chain_tui::node::{NodeError, NodeHandle};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(60);

/// A valid 300-transaction block and its coins, built once.
fn big_block() -> &'static (Block, HashMap<OutPoint, Coin>) {
    static BLOCK: OnceLock<(Block, HashMap<OutPoint, Coin>)> = OnceLock::new();
    BLOCK.get_or_init(|| chain_tui::bench::signed_block(300))
}

fn connect_with(
    block: &Block,
    view: &HashMap<OutPoint, Coin>,
    v: &dyn SigVerifier,
) -> Result<(), BlockError> {
    let params = Network::Regtest.params();
    // Merkle root and proof of work are not the point here: only connect the transactions.
    let txids = block.txids();
    connect_block_txs(block, &txids, 1, view, params, v).map(|_| ())
}

#[test]
fn the_benchmark_block_is_valid_with_every_verifier() {
    let (block, view) = big_block();
    let params = Network::Regtest.params();
    check_block_sanity(block, block.encode().len(), params).expect("sane");
    for v in [
        &SerialVerifier as &dyn SigVerifier,
        &BatchVerifier,
        &ParallelVerifier::new(3),
    ] {
        assert_eq!(connect_with(block, view, v), Ok(()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_verifier_names_the_same_bad_transaction(
        bad in proptest::collection::btree_set(1usize..301, 1..4),
        bit in 0usize..512,
    ) {
        let (block, view) = big_block();
        let mut block = block.clone();
        for &i in &bad {
            block.txs[i].inputs[0].signature[bit / 8] ^= 1 << (bit % 8);
        }
        let first = *bad.first().unwrap();
        let want = connect_with(&block, view, &SerialVerifier);
        prop_assert!(
            matches!(&want, Err(BlockError::Tx { index, error: TxError::BadSignature(0), .. }) if *index == first),
            "{:?}", want
        );
        prop_assert_eq!(connect_with(&block, view, &BatchVerifier), want.clone());
        for threads in [1, 2, 4] {
            prop_assert_eq!(connect_with(&block, view, &ParallelVerifier::new(threads)), want.clone());
        }
    }
}

/// Mine `n` blocks paying key 1; returns their coinbase outpoints, oldest first.
async fn mine_coinbases(node: &NodeHandle, n: u64) -> Vec<OutPoint> {
    mine(node, n, address(&key(1)))
        .await
        .iter()
        .map(|h| coinbase_of(&node.block(h).unwrap().unwrap()))
        .collect()
}

fn is_bad_signature(r: &Result<Txid, NodeError>, input: usize) -> bool {
    matches!(r, Err(NodeError::Mempool(MempoolError::Invalid(TxError::BadSignature(i)))) if *i == input)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_txs_admits_each_transaction_with_its_own_result() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node(dir.path(), Network::Regtest).await;
    let params = node.params();
    let k = key(1);
    let cbs = mine_coinbases(&node, 20).await;
    let value = params.subsidy(1).units();
    let pay = |amount: u64| TxOut {
        amount: Amount::from_units(amount),
        address: address(&k),
    };

    let t1 = spend(
        params,
        &[(cbs[0], &k)],
        vec![pay(value / 2), pay(value / 2 - 10_000)],
    );
    let t1_out = out(&t1, 0);
    // Spends an output of t1, earlier in the same batch.
    let t2 = spend(params, &[(t1_out, &k)], vec![pay(value / 2 - 10_000)]);
    let mut t3 = spend(params, &[(cbs[1], &k)], vec![pay(value - 10_000)]);
    t3.inputs[0].signature[10] ^= 1;
    let t4 = spend(params, &[(cbs[1], &k)], vec![pay(value - 20_000)]);
    let t5 = spend(params, &[(cbs[0], &k)], vec![pay(value - 30_000)]);
    let missing = OutPoint {
        txid: Txid([9; 32]),
        vout: 0,
    };
    let t6 = spend(params, &[(missing, &k)], vec![pay(1_000)]);
    // Six inputs, the fifth badly signed: checked on the blocking pool, found by index.
    let inputs: Vec<(OutPoint, &_)> = cbs[2..8].iter().map(|o| (*o, &k)).collect();
    let mut t7 = spend(params, &inputs, vec![pay(6 * value - 50_000)]);
    t7.inputs[4].signature[50] ^= 2;

    let all = vec![t1.clone(), t2.clone(), t3, t4.clone(), t5, t6, t7.clone()];
    let results = timeout(WAIT, node.submit_txs(all, true))
        .await
        .unwrap()
        .expect("batch");
    assert_eq!(results.len(), 7);
    assert_eq!(results[0].as_ref().ok(), Some(&t1.txid()));
    assert_eq!(results[1].as_ref().ok(), Some(&t2.txid()));
    assert!(is_bad_signature(&results[2], 0), "{:?}", results[2]);
    assert_eq!(results[3].as_ref().ok(), Some(&t4.txid()));
    assert!(
        matches!(&results[4], Err(NodeError::Mempool(MempoolError::Conflict { by, .. })) if *by == t1.txid()),
        "{:?}",
        results[4]
    );
    assert!(
        matches!(&results[5], Err(NodeError::Mempool(MempoolError::Invalid(TxError::MissingInput(o)))) if *o == missing),
        "{:?}",
        results[5]
    );
    assert!(is_bad_signature(&results[6], 4), "{:?}", results[6]);

    // The single path says the same about the same transaction.
    let single = timeout(WAIT, node.submit_tx(t7.clone(), false))
        .await
        .unwrap();
    assert!(is_bad_signature(&single, 4), "{single:?}");
    // Fixed, it goes in through the single path.
    sign(params, &mut t7, &[&k; 6]);
    let id = timeout(WAIT, node.submit_tx(t7.clone(), false))
        .await
        .unwrap()
        .expect("valid now");
    assert_eq!(id, t7.txid());
    // Already known: refused before any signature work, with the same error as before.
    let again = timeout(WAIT, node.submit_tx(t7, false)).await.unwrap();
    assert!(
        matches!(
            again,
            Err(NodeError::Mempool(MempoolError::AlreadyKnown(_)))
        ),
        "{again:?}"
    );
    assert!(node.submit_txs(vec![], true).await.unwrap().is_empty());

    // The persisted ones come back after a restart.
    node.shutdown().await.unwrap();
    drop(node);
    let node = spawn_node(dir.path(), Network::Regtest).await;
    for t in [&t1, &t2, &t4] {
        assert!(node.mempool_tx(&t.txid()).is_some(), "{} is back", t.txid());
    }
    node.shutdown().await.unwrap();
}
