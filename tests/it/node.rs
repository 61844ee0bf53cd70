//! The node through its handle: mining, events, the mempool across reorganisations, conflicts
//! and restarts, and the wallet on top of it.

use crate::common::net::{mine, spawn_node, stop};
use crate::common::*;
use chain_tui::core::Address;
use chain_tui::core::FeeRate;
use chain_tui::core::amount::Amount;
use chain_tui::core::block::Block;
use chain_tui::core::hash::Txid;
use chain_tui::core::params::{Network, Params};
use chain_tui::core::rules::TxError;
use chain_tui::core::tx::{OutPoint, Transaction};
use chain_tui::node::chain::Accepted;
use chain_tui::node::mempool::MempoolError;
use chain_tui::node::{Node, NodeConfig, NodeError, NodeEvent, NodeHandle};
use chain_tui::storage::BlockMeta;
use chain_tui::wallet::{Wallet, WalletError};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;
use tokio::time::timeout;

const COIN: u64 = 1_0000_0000;
/// Upper bound for any single wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// A regtest node on `dir` with 12 blocks mined to `m`: block 1's coinbase is mature.
async fn with_coins(dir: &Path, m: &ed25519_dalek::SigningKey) -> NodeHandle {
    let node = spawn(dir).await;
    mine(&node, 12, address(m)).await;
    node
}

/// A regtest node on `dir`; the same for a restart, which must open the store at once.
async fn spawn(dir: &Path) -> NodeHandle {
    spawn_node(dir, Network::Regtest).await
}

/// Build and solve blocks on `parent` (not submitted), each with its transactions and fees.
fn build_branch(
    params: &Params,
    parent: &BlockMeta,
    to: Address,
    blocks: Vec<(Vec<Transaction>, u64)>,
) -> Vec<Block> {
    let mut parent = *parent;
    let mut out = Vec::new();
    for (txs, fees) in blocks {
        let mut b = template(params, &parent, to, txs, Amount::from_units(fees));
        solve(&mut b, params);
        parent = BlockMeta {
            header: b.header,
            height: parent.height + 1,
            ..parent
        };
        out.push(b);
    }
    out
}

fn active_block(node: &NodeHandle, height: u64) -> Block {
    let hash = node.hash_at(height).unwrap().expect("active height");
    node.block(&hash).unwrap().expect("block data")
}

fn mempool_ids(node: &NodeHandle) -> BTreeSet<Txid> {
    node.mempool_txs().iter().map(Transaction::txid).collect()
}

async fn submit(node: &NodeHandle, tx: &Transaction) -> Txid {
    timeout(WAIT, node.submit_tx(tx.clone(), false))
        .await
        .expect("in time")
        .expect("tx accepted")
}

async fn submit_block(node: &NodeHandle, b: &Block) -> Accepted {
    timeout(WAIT, node.submit_block(b.clone()))
        .await
        .expect("in time")
        .expect("block accepted")
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Fast regtest mining stamps blocks a second apart, ahead of the clock: the dashboard's
/// average block time and network hashrate must come from when the blocks were seen, not from
/// those stamps (it read 1 s a block, and a network hashrate below the local one). Every block
/// records when the node first stored it.
#[tokio::test(flavor = "multi_thread")]
async fn live_figures_on_a_fast_regtest_chain_follow_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn(dir.path()).await;
    let snap = node.snapshot();
    assert_eq!(snap.rates, None, "no figure from genesis alone");
    let before = unix_ms();
    let hashes = mine(&node, 40, address(&key(1))).await;
    let after = unix_ms();
    for h in &hashes {
        let seen = node.block_seen_ms(h).unwrap().expect("seen time recorded");
        assert!(
            (before..=after).contains(&seen),
            "{before} <= {seen} <= {after}"
        );
    }
    let snap = node.snapshot();
    let tip_time = snap.recent[0].time;
    let r = snap.rates.expect("an estimate after 40 blocks");
    let took_ms = after - before;
    if tip_time > after / 1000 + 2 {
        // Stamped ahead of the clock (the usual case at regtest speed).
        assert_eq!(r.source, chain_tui::core::estimate::SpanSource::SeenTimes);
    }
    // The real average interval, not the one-second steps of the stamps.
    assert!(
        r.avg_block_ms <= took_ms.max(1) * 2 / 39 + 5,
        "avg {} ms a block; 40 blocks took {took_ms} ms: {r:?}",
        r.avg_block_ms
    );
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mine_blocks_reports_hashes_height_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn(dir.path()).await;
    assert_eq!(node.snapshot().height, 0);
    let mut events = node.events();
    let to = address(&key(1));
    let hashes = mine(&node, 12, to).await;
    assert_eq!(node.tip().unwrap().height, 12);
    assert_eq!(node.tip().unwrap().hash(), hashes[11]);
    for (i, h) in hashes.iter().enumerate() {
        assert_eq!(node.hash_at(i as u64 + 1).unwrap(), Some(*h));
        let b = node.block(h).unwrap().unwrap();
        assert_eq!(b.txs[0].outputs[0].address, to);
    }
    // The snapshot is published before the reply; allow a moment anyway.
    let mut watch = node.watch();
    timeout(WAIT, watch.wait_for(|s| s.height == 12))
        .await
        .expect("snapshot in time")
        .unwrap();
    let snap = node.snapshot();
    assert_eq!(snap.height, 12);
    assert_eq!(snap.tip, hashes[11]);
    assert_eq!(snap.network, Network::Regtest);
    assert_eq!(snap.recent.len(), 13, "the 12 blocks and genesis");
    assert_eq!(snap.recent[0].hash, hashes[11]);

    let mut connected = HashMap::new();
    let mut mined = HashMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while connected.len() < 12 || mined.len() < 12 {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("events in time")
            .expect("event stream open");
        match ev {
            NodeEvent::BlockConnected { hash, height } => {
                connected.insert(hash, height);
            }
            NodeEvent::BlockMined { hash, height } => {
                mined.insert(hash, height);
            }
            _ => {}
        }
    }
    for (i, h) in hashes.iter().enumerate() {
        assert_eq!(connected.get(h), Some(&(i as u64 + 1)), "connected event");
        assert_eq!(mined.get(h), Some(&(i as u64 + 1)), "mined event");
    }
    let report = node.validate_chain().unwrap();
    assert!(report.is_valid(), "{report:?}");
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mempool_after_reorg_matches_a_node_that_saw_only_the_new_branch() {
    let m = key(1);
    let x = key(2);
    let y = key(3);
    let fee = 10_000;
    let dir1 = tempfile::tempdir().unwrap();
    let n1 = spawn(dir1.path()).await;
    let params = n1.params();
    mine(&n1, 12, address(&m)).await;
    let fork = n1.tip().unwrap();
    let prefix: Vec<Block> = (1..=12).map(|h| active_block(&n1, h)).collect();
    let cb: Vec<OutPoint> = prefix.iter().map(coinbase_of).collect();

    // keep: only in A, no conflict with B; its child too. gone: conflicts with B's tx.
    let keep = pays(params, cb[0], &m, &[(&x, 10 * COIN), (&m, 40 * COIN - fee)]);
    let gone = pays(params, cb[1], &m, &[(&x, 50 * COIN - fee)]);
    let keep_child = pays(params, out(&keep, 0), &x, &[(&y, 10 * COIN - fee)]);
    let b_tx = pays(params, cb[1], &m, &[(&y, 50 * COIN - fee)]);

    // Branch A, mined by the node: block 13 with keep and gone, block 14 with keep_child.
    submit(&n1, &keep).await;
    submit(&n1, &gone).await;
    assert_eq!(
        mempool_ids(&n1),
        [keep.txid(), gone.txid()].into_iter().collect()
    );
    let a1 = mine(&n1, 1, address(&m)).await;
    let a1_block = n1.block(&a1[0]).unwrap().unwrap();
    assert_eq!(a1_block.txs.len(), 3, "A1 confirms both transactions");
    assert!(
        n1.mempool_txs().is_empty(),
        "confirmed txs leave the mempool"
    );
    assert_eq!(
        n1.transaction(&keep.txid()).unwrap().unwrap().confirmations,
        1
    );
    submit(&n1, &keep_child).await;
    let a2 = mine(&n1, 1, address(&m)).await;
    assert_eq!(n1.block(&a2[0]).unwrap().unwrap().txs.len(), 2);
    assert!(n1.mempool_txs().is_empty());
    assert_eq!(
        n1.transaction(&keep.txid()).unwrap().unwrap().confirmations,
        2
    );

    // Branch B on block 12: three blocks (more work than A), with the conflicting spend.
    let branch_b = build_branch(
        params,
        &fork,
        address(&y),
        vec![(vec![], 0), (vec![b_tx.clone()], fee), (vec![], 0)],
    );
    let mut events = n1.events();
    assert_eq!(submit_block(&n1, &branch_b[0]).await, Accepted::SideBranch);
    assert_eq!(submit_block(&n1, &branch_b[1]).await, Accepted::SideBranch);
    let change = match submit_block(&n1, &branch_b[2]).await {
        Accepted::TipChanged(c) => c,
        other => panic!("expected a reorganisation, got {other:?}"),
    };
    assert_eq!(change.disconnected.len(), 2);
    assert_eq!(change.connected.len(), 3);
    assert_eq!(n1.tip().unwrap().hash(), branch_b[2].hash());

    // keep and its child are back (unconfirmed); gone is dropped (B spent its input).
    assert_eq!(
        mempool_ids(&n1),
        [keep.txid(), keep_child.txid()].into_iter().collect()
    );
    let info = n1.transaction(&keep.txid()).unwrap().expect("keep known");
    assert_eq!(info.confirmations, 0);
    assert!(info.block.is_none());
    assert_eq!(info.fee, Some(Amount::from_units(fee)));
    assert!(
        n1.transaction(&gone.txid()).unwrap().is_none(),
        "gone dropped"
    );
    let b_info = n1
        .transaction(&b_tx.txid())
        .unwrap()
        .expect("b_tx confirmed");
    assert_eq!(b_info.block, Some((branch_b[1].hash(), 14)));
    assert_eq!(b_info.confirmations, 2);
    assert_eq!(n1.mempool_spender(&cb[0]), Some(keep.txid()));
    assert_eq!(n1.mempool_spender(&cb[1]), None);

    // The reorganisation is announced.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut saw_reorg = false;
    let mut disconnected = 0;
    let mut readmitted = std::collections::HashSet::new();
    while !saw_reorg {
        match tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("events in time")
            .unwrap()
        {
            NodeEvent::BlockDisconnected { .. } => disconnected += 1,
            // Transactions back in the pool are announced (relay and dashboards rely on it).
            NodeEvent::TxAccepted(id) => {
                readmitted.insert(id);
            }
            NodeEvent::Reorg {
                depth,
                old_tip,
                new_tip,
            } => {
                assert_eq!(depth, 2);
                assert_eq!(old_tip, a2[0]);
                assert_eq!(new_tip, branch_b[2].hash());
                saw_reorg = true;
            }
            _ => {}
        }
    }
    assert_eq!(disconnected, 2);
    assert_eq!(
        readmitted,
        [keep.txid(), keep_child.txid()].into_iter().collect(),
        "readmitted transactions are announced; the dropped conflict is not"
    );

    // A second node that only ever saw prefix + B, given the same transactions.
    let dir2 = tempfile::tempdir().unwrap();
    let n2 = spawn(dir2.path()).await;
    for b in prefix.iter().chain(&branch_b) {
        assert!(matches!(
            submit_block(&n2, b).await,
            Accepted::TipChanged(_)
        ));
    }
    assert_eq!(n2.tip().unwrap().hash(), branch_b[2].hash());
    submit(&n2, &keep).await;
    match n2.submit_tx(gone.clone(), false).await {
        Err(NodeError::Mempool(MempoolError::Invalid(TxError::AlreadySpent(o)))) => {
            assert_eq!(o, cb[1])
        }
        other => panic!("gone should be refused as spent, got {other:?}"),
    }
    submit(&n2, &keep_child).await;
    assert_eq!(mempool_ids(&n1), mempool_ids(&n2));
    assert_eq!(n1.snapshot().mempool_count, 2);

    // Mining on n1 now confirms what came back.
    mine(&n1, 1, address(&m)).await;
    assert!(n1.mempool_txs().is_empty());
    assert_eq!(
        n1.transaction(&keep_child.txid())
            .unwrap()
            .unwrap()
            .confirmations,
        1
    );
    // (validate_chain is not asserted here: block 16 spends an output created in the same
    // block, which validate_chain wrongly rejects; see tests/reorg.rs
    // `validate_chain_accepts_spends_of_outputs_created_in_the_same_block`.)
    stop(n1).await;
    stop(n2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_are_refused_and_confirmed_txs_leave_the_mempool() {
    let m = key(1);
    let x = key(2);
    let dir = tempfile::tempdir().unwrap();
    let node = with_coins(dir.path(), &m).await;
    let params = node.params();
    let cb0 = coinbase_of(&active_block(&node, 1));
    let cb_young = coinbase_of(&active_block(&node, 12));
    let first = pays(params, cb0, &m, &[(&x, 50 * COIN - 5_000)]);
    let rival = pays(params, cb0, &m, &[(&m, 50 * COIN - 9_000)]);
    let id = submit(&node, &first).await;
    assert_eq!(id, first.txid());
    match node.submit_tx(rival.clone(), false).await {
        Err(NodeError::Mempool(MempoolError::Conflict { outpoint, by })) => {
            assert_eq!(outpoint, cb0);
            assert_eq!(by, first.txid());
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        node.submit_tx(first.clone(), false).await,
        Err(NodeError::Mempool(MempoolError::AlreadyKnown(_)))
    ));
    // An immature coinbase cannot be spent.
    let young = pays(params, cb_young, &m, &[(&x, 50 * COIN - 5_000)]);
    assert!(matches!(
        node.submit_tx(young, false).await,
        Err(NodeError::Mempool(MempoolError::Invalid(
            TxError::ImmatureCoinbase { .. }
        )))
    ));
    assert_eq!(mempool_ids(&node), [first.txid()].into_iter().collect());
    let info = node.transaction(&first.txid()).unwrap().unwrap();
    assert_eq!((info.confirmations, info.block), (0, None));

    let mined = mine(&node, 1, address(&m)).await;
    assert!(node.mempool_txs().is_empty());
    let info = node.transaction(&first.txid()).unwrap().unwrap();
    assert_eq!(info.block, Some((mined[0], 13)));
    assert_eq!(info.confirmations, 1);
    // Now the rival spends a spent coin, and the first is already confirmed.
    assert!(matches!(
        node.submit_tx(rival, false).await,
        Err(NodeError::Mempool(MempoolError::Invalid(
            TxError::AlreadySpent(_)
        )))
    ));
    assert!(matches!(
        node.submit_tx(first, false).await,
        Err(NodeError::Mempool(MempoolError::AlreadyConfirmed(_)))
    ));
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mempool_survives_a_restart() {
    let m = key(1);
    let x = key(2);
    let dir = tempfile::tempdir().unwrap();
    let node = spawn(dir.path()).await;
    let params = node.params();
    mine(&node, 13, address(&m)).await;
    let cb: Vec<OutPoint> = (1..=3)
        .map(|h| coinbase_of(&active_block(&node, h)))
        .collect();
    let plain = pays(params, cb[0], &m, &[(&x, 50 * COIN - 5_000)]);
    let persisted = pays(params, cb[1], &m, &[(&x, 50 * COIN - 5_000)]);
    submit(&node, &plain).await;
    let id = timeout(WAIT, node.submit_tx(persisted.clone(), true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, persisted.txid());
    let before = mempool_ids(&node);
    assert_eq!(before.len(), 2);
    let tip = node.tip().unwrap();
    stop(node).await;

    let node = spawn(dir.path()).await;
    assert_eq!(node.tip().unwrap(), tip);
    assert_eq!(mempool_ids(&node), before, "mempool reloaded");
    assert_eq!(node.snapshot().mempool_count, 2);
    let info = node.transaction(&plain.txid()).unwrap().unwrap();
    assert_eq!(
        (info.confirmations, info.fee),
        (0, Some(Amount::from_units(5_000)))
    );
    // Reloaded entries are live: they conflict and get mined.
    let rival = pays(params, cb[0], &m, &[(&m, 50 * COIN - 9_000)]);
    assert!(matches!(
        node.submit_tx(rival, false).await,
        Err(NodeError::Mempool(MempoolError::Conflict { .. }))
    ));
    let mined = mine(&node, 1, address(&m)).await;
    assert_eq!(node.block(&mined[0]).unwrap().unwrap().txs.len(), 3);
    assert!(node.mempool_txs().is_empty());
    stop(node).await;

    // A mined mempool does not come back.
    let node = spawn(dir.path()).await;
    assert!(node.mempool_txs().is_empty());
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_mempool_reloads_a_child_after_its_parent() {
    // A mempool transaction spending another mempool transaction must survive a restart too.
    // The saved mempool is keyed by txid: pick a child whose txid sorts before its parent's.
    let m = key(1);
    let x = key(2);
    let dir = tempfile::tempdir().unwrap();
    let node = with_coins(dir.path(), &m).await;
    let params = node.params();
    let cb = coinbase_of(&active_block(&node, 1));
    let parent = pays(params, cb, &m, &[(&x, 50 * COIN - 5_000)]);
    let child = (0u8..=255)
        .map(|i| {
            let mut c = pays(params, out(&parent, 0), &x, &[(&m, 50 * COIN - 10_000)]);
            c.memo = vec![i];
            sign(params, &mut c, &[&x]);
            c
        })
        .find(|c| c.txid().0 < parent.txid().0)
        .expect("a child sorting first");
    submit(&node, &parent).await;
    timeout(WAIT, node.submit_tx(child.clone(), true))
        .await
        .unwrap()
        .unwrap();
    let before = mempool_ids(&node);
    assert_eq!(before.len(), 2);
    stop(node).await;
    let node = spawn(dir.path()).await;
    let after = mempool_ids(&node);
    stop(node).await;
    assert_eq!(after, before, "child lost on restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn mine_blocks_returns_after_the_block_is_applied() {
    // When mine_blocks returns, the mined block's transactions should have left the mempool
    // and the snapshot should show the new tip (callers such as the wallet read both next).
    let m = key(1);
    let dir = tempfile::tempdir().unwrap();
    let node = with_coins(dir.path(), &m).await;
    let params = node.params();
    let mut stale = Vec::new();
    for h in 1..=3u64 {
        let cb = coinbase_of(&active_block(&node, h));
        let tx = pays(params, cb, &m, &[(&m, 50 * COIN - 5_000)]);
        submit(&node, &tx).await;
        let mined = timeout(WAIT, node.mine_blocks(1, 1, address(&m)))
            .await
            .unwrap()
            .unwrap();
        let in_pool = node.mempool_txs().iter().any(|t| t.txid() == tx.txid());
        let snap_tip = node.snapshot().tip;
        if in_pool || snap_tip != mined[0] {
            stale.push(format!(
                "round {h}: confirmed tx still in mempool: {in_pool}, snapshot at new tip: {}",
                snap_tip == mined[0]
            ));
        }
        // Let the node catch up before the next round.
        let mut watch = node.watch();
        timeout(WAIT, watch.wait_for(|s| s.tip == mined[0]))
            .await
            .unwrap()
            .unwrap();
    }
    stop(node).await;
    assert!(stale.is_empty(), "mine_blocks replied early: {stale:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_right_after_shutdown_reopens_the_store() {
    // shutdown() closes the store before it returns, even while other handles to the stopped
    // node live on (a dashboard, a network task): a new node on the same data dir opens it at
    // once, without waiting for a lock, and the old handles answer "stopped".
    let dir = tempfile::tempdir().unwrap();
    let mut old_handles = Vec::new();
    for i in 0..5 {
        let mut config = NodeConfig::new(dir.path(), Network::Regtest);
        config.lock_wait = Duration::ZERO;
        let node = match Node::spawn(config) {
            Ok(n) => n,
            Err(e) => panic!("start {i} found the store still held: {e}"),
        };
        mine(&node, 1, address(&key(1))).await;
        let kept = node.clone();
        timeout(WAIT, node.shutdown())
            .await
            .expect("shutdown in time")
            .expect("shutdown");
        assert!(
            matches!(kept.tip(), Err(NodeError::Stopped)),
            "a handle of a stopped node reads nothing: {:?}",
            kept.tip().map(|t| t.height)
        );
        old_handles.push((node, kept));
    }
    let node = spawn(dir.path()).await;
    assert_eq!(node.tip().unwrap().height, 5, "every run's block is there");
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wallet_through_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn(dir.path()).await;
    let wallet = Wallet::open_or_create(dir.path(), Network::Regtest, None).unwrap();
    let me = wallet.receive_address();
    assert!(wallet.addresses().contains(&me));
    let zero = wallet.balance(&node).unwrap();
    assert_eq!(zero.confirmed, Amount::ZERO);
    assert_eq!(zero.immature, Amount::ZERO);

    mine(&node, 12, me).await;
    // Next block is 13: coinbases of heights 1..=3 have 10+ confirmations by then.
    let bal = wallet.balance(&node).unwrap();
    assert_eq!(bal.confirmed, Amount::from_units(3 * 50 * COIN));
    assert_eq!(bal.immature, Amount::from_units(9 * 50 * COIN));
    assert_eq!(bal.unconfirmed, Amount::ZERO);

    let other = address(&key(9));
    let tx = wallet
        .build_payment(
            &node,
            other,
            Amount::from_units(10 * COIN),
            FeeRate::DEFAULT,
        )
        .unwrap();
    assert_eq!(tx.inputs.len(), 1);
    assert_eq!(tx.outputs[0].amount, Amount::from_units(10 * COIN));
    assert_eq!(tx.outputs[0].address, other);
    let fee = 50 * COIN - tx.output_total().unwrap().units();
    assert!(fee > 0);
    assert!(fee >= FeeRate::DEFAULT.fee_for(tx.size()).units());
    let change = 40 * COIN - fee;
    assert_eq!(tx.outputs[1], pay(me, change));
    let txid = submit(&node, &tx).await;

    let bal = wallet.balance(&node).unwrap();
    assert_eq!(
        bal.confirmed,
        Amount::from_units(2 * 50 * COIN),
        "spent coin not counted"
    );
    assert_eq!(bal.unconfirmed, Amount::from_units(change));
    assert_eq!(bal.immature, Amount::from_units(9 * 50 * COIN));

    let hist = wallet.history(&node).unwrap();
    assert_eq!(hist.len(), 13);
    assert_eq!(hist[0].txid, txid);
    assert_eq!(hist[0].height, None);
    assert_eq!(hist[0].confirmations, 0);
    assert_eq!(hist[0].sent, Amount::from_units(50 * COIN));
    assert_eq!(hist[0].received, Amount::from_units(change));
    assert_eq!(hist[0].net(), -i128::from(10 * COIN + fee));
    for (i, e) in hist[1..].iter().enumerate() {
        // Newest first: heights 12, 11, ..., 1.
        let h = 12 - i as u64;
        assert_eq!(e.height, Some(h));
        assert_eq!(e.confirmations, 12 + 1 - h);
        assert_eq!(e.received, Amount::from_units(50 * COIN));
    }

    // More than is spendable (the immature part is mentioned).
    match wallet.build_payment(
        &node,
        other,
        Amount::from_units(1_000 * COIN),
        FeeRate::DEFAULT,
    ) {
        Err(WalletError::InsufficientFunds {
            available,
            immature_note,
            ..
        }) => {
            assert_eq!(available, Amount::from_units(2 * 50 * COIN + change));
            assert!(!immature_note.is_empty());
        }
        other => panic!("expected insufficient funds, got {other:?}"),
    }
    assert!(matches!(
        wallet.build_payment(&node, other, Amount::ZERO, FeeRate::DEFAULT),
        Err(WalletError::ZeroAmount)
    ));

    // Confirmed: no more unconfirmed change, the payment has one confirmation.
    mine(&node, 1, me).await;
    let bal = wallet.balance(&node).unwrap();
    assert_eq!(bal.unconfirmed, Amount::ZERO);
    // Height 13 tip, next 14: coinbases 1..=4 are mature, coinbase 1 is spent; change confirmed.
    assert_eq!(bal.confirmed, Amount::from_units(3 * 50 * COIN + change));
    assert_eq!(bal.immature, Amount::from_units(9 * 50 * COIN + fee));
    let hist = wallet.history(&node).unwrap();
    let paid = hist
        .iter()
        .find(|e| e.txid == txid)
        .expect("payment in history");
    assert_eq!(paid.height, Some(13));
    assert_eq!(paid.confirmations, 1);
    assert_eq!(node.address_coins(&other).unwrap().len(), 1);
    stop(node).await;
}

/// `/` in the dashboard: a height, a unique hex prefix of a block hash or txid, or an address
/// opens what it names; an ambiguous or unknown one says so.
#[tokio::test(flavor = "multi_thread")]
async fn search_finds_heights_hash_prefixes_txids_and_addresses() {
    use chain_tui::node::SearchHit;
    let dir = tempfile::tempdir().unwrap();
    let node = spawn(dir.path()).await;
    let to = address(&key(1));
    let hashes = mine(&node, 20, to).await;
    assert_eq!(node.search("7").unwrap(), SearchHit::Block(hashes[6]));
    assert!(
        matches!(node.search("21").unwrap(), SearchHit::Nothing(w) if w.contains("no block at height 21"))
    );
    // Twelve hex digits of a block hash are unique here; so are those of a coinbase txid.
    let h = hashes[12].to_string();
    assert_eq!(
        node.search(&format!("0x{}", &h[..12])).unwrap(),
        SearchHit::Block(hashes[12])
    );
    assert_eq!(
        node.search(&h.to_uppercase()).unwrap(),
        SearchHit::Block(hashes[12])
    );
    let cb = node.block(&hashes[3]).unwrap().unwrap().txs[0].txid();
    assert_eq!(
        node.search(&cb.to_string()[..20]).unwrap(),
        SearchHit::Tx(cb)
    );
    // One hex digit shared by two of the 20 block hashes (there is one: 20 > 16) is ambiguous.
    let firsts: Vec<char> = hashes
        .iter()
        .map(|h| h.to_string().chars().next().unwrap())
        .collect();
    let d = firsts
        .iter()
        .find(|c| firsts.iter().filter(|x| x == c).count() >= 2)
        .unwrap();
    // (All digits is a height; 0x makes it a hash prefix.)
    let r = node.search(&format!("0x{d}")).unwrap();
    assert!(
        matches!(&r, SearchHit::Nothing(w) if w.contains("more than one")),
        "{d}: {r:?} ({firsts:?})"
    );
    assert_eq!(
        node.search(&to.encode(Network::Regtest)).unwrap(),
        SearchHit::Address(to)
    );
    assert!(matches!(
        node.search("hello").unwrap(),
        SearchHit::Nothing(_)
    ));
    assert!(matches!(
        node.search(&"f".repeat(65)).unwrap(),
        SearchHit::Nothing(_)
    ));
    stop(node).await;
}

/// The dashboard's address view and "spent by": one page of coins and history at a time with
/// the balance split by maturity, the mempool's part, and the transaction that spent an
/// output, in the mempool and once confirmed; the transaction view's merkle proof checks out.
#[tokio::test(flavor = "multi_thread")]
async fn address_view_pages_and_spenders_are_found() {
    use chain_tui::node::explore::Spend;
    let dir = tempfile::tempdir().unwrap();
    let node = spawn(dir.path()).await;
    let wallet = Wallet::open_or_create(dir.path(), Network::Regtest, None).unwrap();
    let me = wallet.receive_address();
    let blocks = mine(&node, 12, me).await;
    let maturity = node.params().coinbase_maturity;

    let v = node.address_view(&me, 0, 0, 5).unwrap();
    assert_eq!((v.tip, v.coin_count, v.history_count), (12, 12, 12));
    // Spendable in block 13 once `maturity` deep: heights up to 13 - maturity.
    let mature = 13 - maturity;
    assert_eq!(v.confirmed, Amount::from_units(mature * 50 * COIN));
    assert_eq!(v.immature, Amount::from_units((12 - mature) * 50 * COIN));
    let heights: Vec<u64> = v.coins.iter().map(|c| c.height).collect();
    assert_eq!(heights, vec![12, 11, 10, 9, 8], "newest first, five");
    assert_eq!(v.coins[0].matures_in, Some(12 + maturity - 13));
    // The oldest immature coin, whatever page is shown.
    assert_eq!(v.next_maturity, Some(mature + 1 + maturity - 13));
    assert_eq!(
        node.address_view(&me, 10, 0, 5).unwrap().next_maturity,
        v.next_maturity
    );
    let hist: Vec<u64> = v.history.iter().map(|h| h.height).collect();
    assert_eq!(hist, vec![12, 11, 10, 9, 8]);
    let last = node.address_view(&me, 10, 10, 5).unwrap();
    assert_eq!(
        last.coins.iter().map(|c| c.height).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(
        last.history.iter().map(|h| h.height).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(last.coins[1].matures_in, None);

    // A payment in the mempool: the coin it spends is "outgoing", its change "incoming".
    let other = address(&key(9));
    let tx = wallet
        .build_payment(
            &node,
            other,
            Amount::from_units(10 * COIN),
            FeeRate::DEFAULT,
        )
        .unwrap();
    let spent = tx.inputs[0].prevout;
    let txid = submit(&node, &tx).await;
    let v = node.address_view(&me, 0, 0, 100).unwrap();
    assert_eq!(v.mempool, vec![txid]);
    assert_eq!(v.outgoing, Amount::from_units(50 * COIN));
    assert_eq!(v.incoming, tx.outputs[1].amount);
    assert_eq!(
        v.coins
            .iter()
            .find(|c| c.outpoint == spent)
            .and_then(|c| c.spent_in_mempool),
        Some(txid)
    );
    assert_eq!(node.spender(&spent).unwrap(), Spend::Mempool(txid));
    // An output of a mempool transaction that nothing spends yet.
    assert_eq!(node.spender(&out(&tx, 0)).unwrap(), Spend::Unspent);

    // Confirmed: found through the address's history from the coin's height.
    mine(&node, 1, me).await;
    assert_eq!(node.spender(&spent).unwrap(), Spend::Confirmed(txid, 13));
    assert_eq!(node.spender(&out(&tx, 0)).unwrap(), Spend::Unspent);
    let nowhere = OutPoint {
        txid: Txid([7; 32]),
        vout: 0,
    };
    assert_eq!(node.spender(&nowhere).unwrap(), Spend::Unknown);
    // Every output of a transaction in one call.
    assert_eq!(
        node.spenders(&spent.txid).unwrap(),
        vec![Spend::Confirmed(txid, 13)]
    );
    assert_eq!(
        node.spenders(&txid).unwrap(),
        vec![Spend::Unspent, Spend::Unspent]
    );
    assert!(node.spenders(&nowhere.txid).unwrap().is_empty());

    // The transaction view of the coinbase it spent: "spent by" the payment, and a proof.
    assert!(
        blocks
            .iter()
            .any(|b| node.block(b).unwrap().unwrap().txs[0].txid() == spent.txid)
    );
    let d = chain_tui::tui::load_tx(&node, spent.txid).unwrap();
    assert_eq!(d.outputs[0].spend, Spend::Confirmed(txid, 13));
    let p = d.proof.expect("a confirmed transaction has a proof");
    assert!(p.valid);
    let d = chain_tui::tui::load_tx(&node, txid).unwrap();
    let p = d.proof.clone().expect("proof");
    assert_eq!((p.index, p.count, p.steps.len(), p.valid), (1, 2, 1, true));
    assert_eq!(d.fee_rate(), Some(d.fee.unwrap().units() / d.size as u64));
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn services_start_in_order_and_shutdown_lets_everything_go() {
    use chain_tui::node::p2p::P2pConfig;
    use chain_tui::runtime::{ApiSetup, Services, ServicesConfig, StartError};
    let dir = tempfile::tempdir().unwrap();
    let loopback: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = |api: std::net::SocketAddr| {
        let mut node = NodeConfig::new(dir.path(), Network::Regtest);
        node.lock_wait = Duration::ZERO;
        ServicesConfig {
            node,
            p2p: Some(P2pConfig::new(dir.path(), loopback).into()),
            api: Some(ApiSetup {
                addr: api,
                limits: Default::default(),
                wallet: Err("no wallet in this test".into()),
                mine_threads: 1,
            }),
        }
    };
    let services = timeout(WAIT, Services::start(config(loopback)))
        .await
        .expect("started in time")
        .expect("node, network and API start");
    let node_file = chain_tui::api::node_file_path(dir.path());
    assert!(node_file.exists(), "the API left its address for clients");
    let api_addr = services.api().expect("an API").addr();
    let (node, net, token) = (
        services.node.clone(),
        services.net().expect("a network").clone(),
        services.token(),
    );
    assert!(net.view().listen.is_some());
    assert!(!token.is_cancelled());
    timeout(WAIT, services.shutdown())
        .await
        .expect("shutdown in time")
        .expect("shutdown");
    assert!(token.is_cancelled(), "side tasks were told to stop");
    assert!(!node_file.exists(), "the API removed node.json");
    assert!(matches!(node.tip(), Err(NodeError::Stopped)));
    assert!(matches!(net.sync_now().await, Err(NodeError::Stopped)));
    assert!(
        matches!(
            tokio::net::TcpStream::connect(api_addr)
                .await
                .map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionRefused)
        ),
        "the API port is closed"
    );

    // A start that fails at the API (its port is taken) stops the node and the network it had
    // started: the store is free again at once.
    let taken = std::net::TcpListener::bind(loopback).unwrap();
    let refused = Services::start(config(taken.local_addr().unwrap())).await;
    assert!(
        matches!(refused, Err(StartError::Api(_))),
        "{:?}",
        refused.err()
    );
    drop(taken);
    let again = timeout(WAIT, Services::start(config(loopback)))
        .await
        .expect("started in time")
        .expect("the same data dir opens at once after a failed start");
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_handle_answers_from_one_snapshot_while_blocks_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn(dir.path()).await;
    let wallet = Wallet::open_or_create(dir.path(), Network::Regtest, None).unwrap();
    let me = wallet.receive_address();
    mine(&node, 3, me).await;
    let r = node.read().unwrap();
    mine(&node, 5, me).await;
    assert_eq!(node.tip().unwrap().height, 8);
    // The held snapshot is the chain at height 3, in every answer.
    assert_eq!(r.tip().height, 3);
    assert_eq!(r.address_coins(&me).unwrap().len(), 3);
    assert_eq!(r.address_history(&me).unwrap().len(), 3);
    assert!(r.hash_at(4).unwrap().is_none());
    assert!(r.blocks_from(4, 10).unwrap().is_empty());
    assert_eq!(r.blocks_from(1, 10).unwrap().len(), 3);
    assert_eq!(r.confirmations(3).unwrap(), 1);
    assert_eq!(r.confirmations(1).unwrap(), 3);
    assert!(
        matches!(r.confirmations(5), Err(NodeError::Store(_))),
        "a height above the snapshot's tip is an error, never a wrapped count"
    );
    let tip_meta = node
        .block_meta(&node.tip().unwrap().hash())
        .unwrap()
        .unwrap();
    assert!(r.block_meta(&tip_meta.hash()).unwrap().is_none());
    drop(r);

    // Views built from several reads never mix heights, however fast blocks arrive: a wallet's
    // history counts every confirmation from the tip of the snapshot its entries came from.
    node.set_mining(1, Some(me)).await.unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(2);
    let mut checked = 0;
    while std::time::Instant::now() < until {
        let history = wallet.history(&node).unwrap();
        let newest = history.iter().filter_map(|t| t.height).max().unwrap();
        for t in &history {
            let h = t.height.expect("all confirmed");
            assert_eq!(t.confirmations, newest + 1 - h, "{t:?} against {newest}");
        }
        checked += 1;
        tokio::task::yield_now().await;
    }
    node.set_mining(0, None).await.unwrap();
    assert!(checked > 0);
    stop(node).await;
}

/// The mempool journal is folded into the store's saved mempool once it passes its limit, and
/// emptied: the store's file as it is on disk then (copied while the node runs, as a crash
/// would leave it, without the journal) holds every transaction the node answered for.
/// 0.1 wrote its journal to two files. A node that stopped hard with records in the second
/// one must still find them: each was answered 201.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_journal_file_an_older_node_left_is_read_and_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let params = Network::Regtest.params();
    let owner = key(3);
    let node = spawn_node(dir.path(), Network::Regtest).await;
    let hashes = mine(&node, 12, address(&owner)).await;
    let cb = coinbase_of(&node.block(&hashes[0]).unwrap().unwrap());
    stop(node).await;
    let tx = pays(params, cb, &owner, &[(&key(4), 49 * 100_000_000)]);
    // One record as the journal writes it: length, SHA-256 of the encoding, the encoding.
    let body = tx.encode();
    let mut record = (body.len() as u32).to_le_bytes().to_vec();
    record.extend_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(&body));
    record.extend_from_slice(&body);
    let second = dir.path().join("mempool-1.journal");
    std::fs::write(&second, &record).unwrap();
    let node = spawn_node(dir.path(), Network::Regtest).await;
    let kept: Vec<Txid> = node.mempool_txs().iter().map(Transaction::txid).collect();
    assert_eq!(kept, vec![tx.txid()]);
    // Folded into the store and emptied, so it is not read twice.
    assert_eq!(std::fs::metadata(&second).unwrap().len(), 0);
    stop(node).await;
    let node = spawn_node(dir.path(), Network::Regtest).await;
    let kept: Vec<Txid> = node.mempool_txs().iter().map(Transaction::txid).collect();
    assert_eq!(kept, vec![tx.txid()]);
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_past_its_limit_is_folded_into_the_store() {
    let (dir, copy) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config = NodeConfig::new(dir.path(), Network::Regtest);
    config.lock_wait = Duration::ZERO;
    config.journal_limit = 1;
    let node = Node::spawn(config).unwrap();
    let params = Network::Regtest.params();
    let owner = key(3);
    let hashes = mine(&node, 12, address(&owner)).await;
    let txs: Vec<Transaction> = hashes[..3]
        .iter()
        .map(|h| {
            let cb = coinbase_of(&node.block(h).unwrap().unwrap());
            pays(params, cb, &owner, &[(&key(4), 49 * 100_000_000)])
        })
        .collect();
    let answers = node.submit_txs(txs.clone(), true).await.unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let journal = dir.path().join("mempool-0.journal");
    crate::common::net::expect("the journal folded and emptied", || {
        std::fs::metadata(&journal).is_ok_and(|m| m.len() == 0)
    })
    .await;
    std::fs::copy(
        dir.path().join("chain.redb"),
        copy.path().join("chain.redb"),
    )
    .unwrap();
    let copied = spawn_node(copy.path(), Network::Regtest).await;
    let kept: BTreeSet<Txid> = copied.mempool_txs().iter().map(Transaction::txid).collect();
    let sent: BTreeSet<Txid> = txs.iter().map(Transaction::txid).collect();
    assert_eq!(kept, sent);
    stop(copied).await;
    stop(node).await;
}

/// Sync batches with more to come are committed but reported (snapshot, events) only once
/// flushed: with the last batch, or within about a second by the node's own tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_batches_are_reported_only_once_durable_with_the_last_or_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn(dir.path()).await;
    let chain = chain_tui::bench::generate_chain(30, 0);
    // A last batch: flushed and reported with its answer.
    let out = timeout(
        Duration::from_secs(20),
        node.submit_blocks(chain[..10].to_vec(), false),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((out.height, node.snapshot().height), (10, 10));
    let mut events = node.events();
    // A batch with more to come, right after that flush: committed and stored, not
    // reported yet (unless the node's one-second tick falls just between the two calls).
    let out = timeout(
        Duration::from_secs(20),
        node.submit_blocks(chain[10..20].to_vec(), true),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out.height, 20);
    assert!(node.has_block(&chain[19].hash()).unwrap(), "committed");
    assert_eq!(node.snapshot().height, 10, "not reported before the flush");
    assert!(events.try_recv().is_err(), "no event before the flush");
    // The last batch: both flushed and reported, each block once.
    let out = timeout(
        Duration::from_secs(20),
        node.submit_blocks(chain[20..25].to_vec(), false),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((out.height, node.snapshot().height), (25, 25));
    let mut connected = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let NodeEvent::BlockConnected { height, .. } = e {
            connected.push(height);
        }
    }
    assert_eq!(connected, (11..=25).collect::<Vec<u64>>());
    // More to come that never comes: the tick flushes it.
    timeout(
        Duration::from_secs(20),
        node.submit_blocks(chain[25..].to_vec(), true),
    )
    .await
    .unwrap()
    .unwrap();
    let mut heights = Vec::new();
    while heights.len() < 5 {
        match timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(NodeEvent::BlockConnected { height, .. })) => heights.push(height),
            Ok(Ok(_)) => {}
            other => panic!("no block reported within seconds: {other:?} after {heights:?}"),
        }
    }
    assert_eq!(heights, (26..=30).collect::<Vec<u64>>());
    let mut watch = node.watch();
    timeout(Duration::from_secs(5), watch.wait_for(|s| s.height == 30))
        .await
        .expect("the snapshot follows")
        .unwrap();
    stop(node).await;
}
