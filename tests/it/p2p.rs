//! The peer-to-peer layer with in-process nodes on 127.0.0.1: sync along a line of nodes,
//! transaction relay, a partition healing, misbehaving raw peers getting banned, reconnection
//! after a restart, foreign networks and pinned identities, flood protection.

use crate::common::net;

use crate::common::*;
use chain_tui::core::hash::{BlockHash, Txid};
use chain_tui::core::params::Network;
use chain_tui::core::tx::{OutPoint, Transaction};
use chain_tui::net::identity::{NodeKey, PeerAddr};
use chain_tui::net::wire::{self, MAX_FRAME, Message};
use chain_tui::node::NodeError;
use chain_tui::node::p2p::P2pConfig;
use net::*;
use std::time::Duration;

const COIN: u64 = 1_0000_0000;
const FEE: u64 = 10_000;

/// The coinbase outpoint of the active block at `height`.
fn coinbase_at(n: &TestNode, height: u64) -> OutPoint {
    let hash = n.node.hash_at(height).unwrap().expect("block at height");
    coinbase_of(&n.node.block(&hash).unwrap().expect("stored block"))
}

/// A transaction spending the coinbase at `height` (paid to `miner()`), to key 2.
fn spend_coinbase(n: &TestNode, height: u64) -> Transaction {
    let params = n.node.params();
    let cb = coinbase_at(n, height);
    let value = params.subsidy(height).units();
    spend(
        params,
        &[(cb, &key(1))],
        vec![
            pay(address(&key(2)), COIN),
            pay(miner(), value - COIN - FEE),
        ],
    )
}

fn in_mempool(n: &TestNode, txid: &Txid) -> bool {
    n.node.mempool_txs().iter().any(|t| t.txid() == *txid)
}

async fn all_at(what: &str, nodes: &[&TestNode], tip: BlockHash) {
    expect(what, || nodes.iter().all(|n| n.tip() == tip)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_in_a_line_reach_the_same_tip() {
    // A never dials; B and C keep one outbound connection each: a strict line A - B - C.
    let a = TestNode::with(Network::Regtest, |c| c.max_outbound = 0).await;
    let b = TestNode::with(Network::Regtest, |c| c.max_outbound = 1).await;
    let c = TestNode::with(Network::Regtest, |c| c.max_outbound = 1).await;
    a.mine(400, miner()).await;
    b.connect_to(&a).await;
    c.connect_to(&b).await;
    // Then new blocks, relayed as they come.
    let last = *a.mine(100, miner()).await.last().unwrap();
    assert_eq!(a.height(), 500);
    all_at("A, B and C at A's tip", &[&a, &b, &c], last).await;
    assert_eq!(b.height(), 500);
    assert_eq!(c.height(), 500);
    assert!(
        !a.has_peer(&c.id()) && !c.has_peer(&a.id()),
        "A and C stay apart"
    );
    for n in [&b, &c] {
        assert_eq!(n.node.hash_at(250).unwrap(), a.node.hash_at(250).unwrap());
        assert!(n.view().bans.is_empty(), "{:?}", n.view().bans);
    }
    // Every node sees its neighbours at the tip, with the tip's work: A's view of B used to
    // stay at B's handshake height, because B never announces blocks A gave it.
    let work = a.node.snapshot().chainwork;
    for (n, of, what) in [
        (&a, &b, "A's view of B"),
        (&b, &a, "B's view of A"),
        (&b, &c, "B's view of C"),
        (&c, &b, "C's view of B"),
    ] {
        expect(what, || {
            n.view()
                .peers
                .iter()
                .any(|p| p.id == of.id() && p.height == 500 && p.tip == last && p.work == work)
        })
        .await;
    }
    let seen = a.view().peers.iter().map(|p| p.last_message).max().unwrap();
    assert!(seen > 0, "the time of a peer's last message is known");
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_crosses_the_line_and_is_confirmed_once() {
    let a = TestNode::with(Network::Regtest, |c| c.max_outbound = 0).await;
    let b = TestNode::with(Network::Regtest, |c| c.max_outbound = 1).await;
    let c = TestNode::with(Network::Regtest, |c| c.max_outbound = 1).await;
    let tip = *a.mine(12, miner()).await.last().unwrap();
    b.connect_to(&a).await;
    c.connect_to(&b).await;
    all_at("synced", &[&b, &c], tip).await;

    let tx = spend_coinbase(&a, 1);
    let txid = within("submit", a.node.submit_tx(tx, true))
        .await
        .expect("accepted at A");
    expect("the transaction reaches B and C", || {
        in_mempool(&b, &txid) && in_mempool(&c, &txid)
    })
    .await;

    let mined = *c.mine(1, address(&key(3))).await.last().unwrap();
    let block = c.node.block(&mined).unwrap().unwrap();
    assert!(block.txs.iter().any(|t| t.txid() == txid), "C mined it");
    all_at("the block reaches A and B", &[&a, &b], mined).await;
    expect("mempools empty", || {
        [&a, &b, &c].iter().all(|n| n.node.mempool_txs().is_empty())
    })
    .await;
    for n in [&a, &b, &c] {
        let info = n.node.transaction(&txid).unwrap().expect("known");
        assert_eq!(info.block.map(|(h, _)| h), Some(mined));
        assert_eq!(info.confirmations, 1);
    }
    c.stop().await;
    b.stop().await;
    a.stop().await;
}

/// Each transaction relayed from a peer goes to the node in the order it came: a chain of
/// transactions, each spending the one before, arrives whole (a child that overtook its parent
/// would be refused for a missing input and never asked for again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_transactions_from_a_peer_arrives_whole() {
    let a = TestNode::with(Network::Regtest, |c| c.max_outbound = 0).await;
    let b = TestNode::with(Network::Regtest, |c| c.max_outbound = 1).await;
    let tip = *a.mine(12, miner()).await.last().unwrap();
    b.connect_to(&a).await;
    all_at("synced", &[&b], tip).await;
    let params = a.node.params();
    let mut value = params.subsidy(1).units();
    let mut from = coinbase_at(&a, 1);
    let mut chain = Vec::new();
    for _ in 0..40 {
        value -= FEE;
        let tx = spend(params, &[(from, &key(1))], vec![pay(miner(), value)]);
        from = OutPoint {
            txid: tx.txid(),
            vout: 0,
        };
        chain.push(tx);
    }
    let ids: Vec<Txid> = chain.iter().map(Transaction::txid).collect();
    let answers = within("submit", a.node.submit_txs(chain, true))
        .await
        .expect("accepted at A");
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    expect("every transaction of the chain reaches B", || {
        ids.iter().all(|t| in_mempool(&b, t))
    })
    .await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healed_partition_converges_on_the_most_work_and_keeps_the_losing_tx() {
    let a = TestNode::new().await;
    let mut b = TestNode::new().await;
    let tip = *a.mine(12, miner()).await.last().unwrap();
    b.connect_to(&a).await;
    all_at("synced", &[&b], tip).await;

    // Partition: B's network goes away.
    within("B's network stops", b.net.shutdown()).await.unwrap();
    let b_id = b.id();
    expect("A drops B", || !a.has_peer(&b_id)).await;

    // A: 5 blocks, the first with T. B: 8 blocks, more work.
    let t = spend_coinbase(&a, 1);
    let txid = within("submit", a.node.submit_tx(t, true)).await.unwrap();
    let a_side = a.mine(5, miner()).await;
    assert!(
        a.node
            .block(&a_side[0])
            .unwrap()
            .unwrap()
            .txs
            .iter()
            .any(|t| t.txid() == txid),
        "T mined on A's side"
    );
    let b_tip = *b.mine(8, address(&key(4))).await.last().unwrap();
    assert!(a.node.mempool_txs().is_empty());

    // Heal: B's network comes back (same key, new port) and dials A.
    b.net = start_net(&b.node, config(b.dir.path())).await;
    assert_eq!(b.id(), b_id, "same identity after restart");
    b.connect_to(&a).await;
    all_at("both on B's branch", &[&a, &b], b_tip).await;
    assert_eq!(a.height(), 20);
    expect("T back in A's mempool and relayed to B", || {
        in_mempool(&a, &txid) && in_mempool(&b, &txid)
    })
    .await;
    assert!(a.view().bans.is_empty() && b.view().bans.is_empty());
    b.stop().await;
    a.stop().await;
}

// ---- misbehaving raw peers ----

/// A victim with some blocks and an honest node synced from it.
async fn victim_and_honest() -> (TestNode, TestNode) {
    let v = TestNode::new().await;
    let h = TestNode::new().await;
    let tip = *v.mine(20, miner()).await.last().unwrap();
    h.connect_to(&v).await;
    all_at("honest node synced", &[&h], tip).await;
    (v, h)
}

/// The raw peer gets banned with a reason containing `needle`, its connection closes, and the
/// honest node keeps following the victim.
async fn banned_and_honest_continues(v: &TestNode, h: &TestNode, raw: &RawPeer, needle: &str) {
    let id = raw.id();
    expect(&format!("raw peer banned ({needle})"), || {
        v.ban_reason(&id).is_some()
    })
    .await;
    let reason = v.ban_reason(&id).unwrap();
    assert!(
        reason.to_lowercase().contains(needle),
        "ban reason {reason:?} should mention {needle:?}"
    );
    assert!(
        raw.closed_within(Duration::from_secs(5)).await,
        "connection closed"
    );
    assert!(!v.has_peer(&id), "a banned peer is no longer listed");
    assert!(v.has_peer(&h.id()), "honest peer still connected");
    let tip = *v.mine(5, miner()).await.last().unwrap();
    all_at("honest node keeps syncing", &[h], tip).await;
    assert!(h.ban_reason(&v.id()).is_none() && v.ban_reason(&h.id()).is_none());
}

async fn raw_peer(v: &TestNode) -> RawPeer {
    let key = NodeKey::generate().unwrap();
    let raw = RawPeer::connect(key, v.listen(), raw_hello(v.node.params()))
        .await
        .expect("raw peer connects");
    let id = raw.id();
    expect("victim lists the raw peer", || v.has_peer(&id)).await;
    raw
}

async fn stop_pair(v: TestNode, h: TestNode) {
    h.stop().await;
    v.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_banned_stays_banned_until_unbanned() {
    let (v, h) = victim_and_honest().await;
    let mut raw = raw_peer(&v).await;
    // A frame whose body is not a message: 0xff is no message tag.
    let body = [0xffu8, 0x13, 0x37, 0x00, 0x42, 0x99, 0xaa, 0x55];
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    raw.send_raw(&frame).await.unwrap();
    banned_and_honest_continues(&v, &h, &raw, "undecodable").await;

    // The banned identity cannot come back: refused or closed straight away.
    let key = raw.key.clone();
    let id = raw.id();
    drop(raw);
    if let Ok(again) = RawPeer::connect(key.clone(), v.listen(), raw_hello(v.node.params())).await {
        assert!(
            again.closed_within(Duration::from_secs(3)).await,
            "banned peer was let back in"
        );
    }
    assert!(!v.has_peer(&id));

    // Unban: it can connect and stays.
    assert!(within("unban", v.net.unban(&id.to_string())).await.unwrap());
    assert!(v.ban_reason(&id).is_none());
    assert!(
        !within("unban twice", v.net.unban(&id.to_string()))
            .await
            .unwrap()
    );
    let again = RawPeer::connect(key, v.listen(), raw_hello(v.node.params()))
        .await
        .expect("reconnects after unban");
    expect("victim lists the unbanned peer", || v.has_peer(&id)).await;
    assert!(!again.closed_within(Duration::from_millis(500)).await);
    drop(again);
    stop_pair(v, h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_gets_banned() {
    let (v, h) = victim_and_honest().await;
    let mut raw = raw_peer(&v).await;
    let len = (MAX_FRAME as u32 + 1).to_le_bytes();
    raw.send_raw(&len).await.unwrap();
    banned_and_honest_continues(&v, &h, &raw, "over the limit").await;
    stop_pair(v, h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_block_gets_banned() {
    let (v, h) = victim_and_honest().await;
    let mut raw = raw_peer(&v).await;
    // Properly solved, but the coinbase pays one unit too much.
    let parent = v.node.tip().unwrap();
    let bad = block_on(v.node.params(), &parent, miner(), vec![], 0, 1);
    let hash = bad.hash();
    raw.send(&Message::InvBlocks(vec![hash])).await.unwrap();
    let mut served = false;
    let serve = async {
        while let Ok(m) = wire::read_message(&mut raw.recv).await {
            let reply = match m {
                Message::GetHeaders { .. } => Message::Headers(vec![bad.header]),
                Message::GetBlocks(hs) if hs.contains(&hash) => {
                    served = true;
                    Message::Block(bad.clone())
                }
                Message::Ping(n) => Message::Pong(n),
                _ => continue,
            };
            if wire::write_message(&mut raw.send, &reply).await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(WAIT, serve).await;
    assert!(served, "the victim asked for the block");
    banned_and_honest_continues(&v, &h, &raw, "invalid block").await;
    assert_ne!(v.tip(), hash);
    assert!(
        !h.node.has_block(&hash).unwrap(),
        "the invalid block went no further"
    );
    stop_pair(v, h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrequested_block_gets_banned() {
    let (v, h) = victim_and_honest().await;
    let mut raw = raw_peer(&v).await;
    let parent = v.node.tip().unwrap();
    let block = block_on(v.node.params(), &parent, miner(), vec![], 0, 0);
    raw.send(&Message::Block(block.clone())).await.unwrap();
    banned_and_honest_continues(&v, &h, &raw, "unrequested").await;
    assert!(!v.node.has_block(&block.hash()).unwrap());
    stop_pair(v, h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_gets_banned_while_sync_goes_on() {
    let v = TestNode::new().await;
    let h = TestNode::new().await;
    let tip = *v.mine(300, miner()).await.last().unwrap();
    let mut raw = raw_peer(&v).await;
    // 40,000 pings in one write, while the honest node syncs 300 blocks.
    let frame = wire::encode_frame(&Message::Ping(7)).unwrap();
    let flood: Vec<u8> = frame.repeat(40_000);
    let sync = h.connect_to(&v);
    let (sent, ()) = tokio::join!(raw.send_raw(&flood), sync);
    let _ = sent;
    all_at("honest node synced during the flood", &[&h], tip).await;
    banned_and_honest_continues(&v, &h, &raw, "flooding").await;
    stop_pair(v, h).await;
}

// ---- connections ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_reconnects_to_the_peers_it_knew() {
    let a = TestNode::new().await;
    let b = TestNode::new().await;
    b.connect_to(&a).await;
    let b_id = b.id();
    let TestNode { dir, node, net } = b;
    within("B's network stops", net.shutdown()).await.unwrap();
    within("B stops", node.shutdown()).await.unwrap();
    drop(node);
    expect("A drops B", || !a.has_peer(&b_id)).await;

    // No connect list: only the stored address book.
    let node = spawn_node(dir.path(), Network::Regtest).await;
    let net = start_net(&node, config(dir.path())).await;
    let b = TestNode { dir, node, net };
    assert_eq!(b.id(), b_id);
    assert!(b.view().known_addrs >= 1, "address book reloaded");
    let a_id = a.id();
    expect("A lists B again", || a.has_peer(&b_id) && b.has_peer(&a_id)).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_another_network_is_refused_at_the_handshake() {
    let r = TestNode::new().await;
    let d = TestNode::with(Network::Devnet, |_| {}).await;
    let res = within("dial", d.net.connect(PeerAddr::new(r.listen(), None))).await;
    assert!(
        matches!(&res, Err(NodeError::Dial(e)) if e.contains("closed the connection: another network")),
        "connect reports the refusal: {res:?}"
    );
    assert!(
        holds_for(Duration::from_millis(1500), || {
            r.view().peers.is_empty() && d.view().peers.is_empty()
        })
        .await,
        "no peer on either side"
    );
    assert!(r.view().bans.is_empty() && d.view().bans.is_empty());
    d.stop().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_identity_must_match() {
    let a = TestNode::new().await;
    let b = TestNode::new().await;
    let wrong = NodeKey::generate().unwrap().id();
    let res = within(
        "dial pinned wrong",
        b.net.connect(PeerAddr::new(a.listen(), Some(wrong))),
    )
    .await;
    assert!(
        matches!(&res, Err(NodeError::Dial(e)) if e.contains(&format!("expected node {wrong}"))),
        "wrong pinned id refused: {res:?}"
    );
    assert!(
        holds_for(Duration::from_millis(500), || a.view().peers.is_empty()
            && b.view().peers.is_empty())
        .await
    );
    let id = within(
        "dial pinned right",
        b.net.connect(PeerAddr::new(a.listen(), Some(a.id()))),
    )
    .await
    .expect("right pinned id accepted");
    assert_eq!(id, a.id());
    let (aid, bid) = (a.id(), b.id());
    expect("connected", || b.has_peer(&aid) && a.has_peer(&bid)).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_in_flight_when_another_peer_is_banned_are_not_unrequested() {
    let (v, h) = victim_and_honest().await;
    let params = v.node.params();
    let parent = v.node.tip().unwrap();
    // R1 will serve an invalid block on V's tip; R2 a valid 10-block branch on V's tip.
    let bad = block_on(params, &parent, miner(), vec![], 0, 1);
    let mut branch = Vec::new();
    let mut p = parent;
    for _ in 0..10 {
        let b = block_on(params, &p, address(&key(5)), vec![], 0, 0);
        // A BlockMeta for the next parent: height and header are what block_on reads.
        p.header = b.header;
        p.height += 1;
        branch.push(b);
    }
    let branch_tip = branch.last().unwrap().hash();
    let mut r1 = raw_peer(&v).await;
    // R2 claims nothing in its Hello, so it is asked only for the blocks of its headers.
    let hello2 = raw_hello(params);
    let mut r2 = RawPeer::connect(NodeKey::generate().unwrap(), v.listen(), hello2)
        .await
        .expect("r2 connects");
    let (r1_id, r2_id) = (r1.id(), r2.id());
    expect("both raw peers listed", || {
        v.has_peer(&r1_id) && v.has_peer(&r2_id)
    })
    .await;

    // 1. R1 announces and gets its header queued first.
    let bad_hash = bad.hash();
    r1.send(&Message::InvBlocks(vec![bad_hash])).await.unwrap();
    loop {
        match r1.recv().await.expect("r1 reads") {
            Message::GetHeaders { .. } => {
                r1.send(&Message::Headers(vec![bad.header])).await.unwrap();
            }
            Message::GetBlocks(hs) if hs.contains(&bad_hash) => break,
            _ => {}
        }
    }
    // 2. R2 announces its branch and is asked for its blocks, but holds them.
    r2.send(&Message::InvBlocks(vec![branch_tip]))
        .await
        .unwrap();
    let headers: Vec<_> = branch.iter().map(|b| b.header).collect();
    let r2_asked = async {
        let mut asked = Vec::new();
        while asked.len() < branch.len() {
            match r2.recv().await.expect("r2 reads") {
                Message::GetHeaders { .. } => {
                    r2.send(&Message::Headers(headers.clone())).await.unwrap();
                }
                Message::GetBlocks(hs) => asked.extend(hs),
                _ => {}
            }
        }
        asked
    };
    // Meanwhile R1 (at height 21 on its own branch) may be asked for R2's blocks: like an
    // honest node, it answers NotFound.
    let r1_not_found = async {
        while let Ok(m) = wire::read_message(&mut r1.recv).await {
            if let Message::GetBlocks(hs) = m {
                let other: Vec<BlockHash> = hs.into_iter().filter(|h| *h != bad_hash).collect();
                if !other.is_empty() {
                    let _ = wire::write_message(&mut r1.send, &Message::NotFound(other)).await;
                }
            }
        }
    };
    let asked = tokio::select! {
        asked = r2_asked => asked,
        _ = r1_not_found => panic!("R1's connection ended early"),
    };
    // 3. R1 delivers the invalid block and is banned.
    r1.send(&Message::Block(bad)).await.unwrap();
    expect("R1 banned", || v.ban_reason(&r1_id).is_some()).await;
    assert!(v.ban_reason(&r1_id).unwrap().contains("invalid block"));
    // 4. R2 now delivers what it was asked for, and keeps serving.
    for hash in &asked {
        let b = branch.iter().find(|b| b.hash() == *hash).unwrap();
        r2.send(&Message::Block(b.clone())).await.unwrap();
    }
    let serve = async {
        while let Ok(m) = wire::read_message(&mut r2.recv).await {
            let replies: Vec<Message> = match m {
                Message::GetHeaders { .. } => vec![Message::Headers(headers.clone())],
                Message::GetBlocks(hs) => branch
                    .iter()
                    .filter(|b| hs.contains(&b.hash()))
                    .map(|b| Message::Block(b.clone()))
                    .collect(),
                Message::Ping(n) => vec![Message::Pong(n)],
                _ => continue,
            };
            for r in replies {
                if wire::write_message(&mut r2.send, &r).await.is_err() {
                    return;
                }
            }
        }
    };
    let reached = tokio::select! {
        _ = serve => false,
        ok = wait_until(WAIT, || v.tip() == branch_tip) => ok,
    };
    assert!(
        v.ban_reason(&r2_id).is_none(),
        "honest R2 banned: {:?}",
        v.ban_reason(&r2_id)
    );
    assert!(reached, "V follows R2's valid branch");
    all_at("honest node follows", &[&h], branch_tip).await;
    drop((r1, r2));
    stop_pair(v, h).await;
}

/// Nodes A and B (whose configs `tweak_a` and `tweak_b` adjust), B dialing A and synced to
/// A's 12 blocks; then a transaction submitted at A reaches B's mempool and A mines a block
/// with it, which B gets. The last block's hash.
async fn block_with_a_relayed_tx(
    tweak_a: impl FnOnce(&mut P2pConfig),
    tweak_b: impl FnOnce(&mut P2pConfig),
) -> (TestNode, TestNode, BlockHash) {
    let a = TestNode::with(Network::Regtest, |c| {
        c.max_outbound = 0;
        tweak_a(c);
    })
    .await;
    let b = TestNode::with(Network::Regtest, |c| {
        c.max_outbound = 1;
        tweak_b(c);
    })
    .await;
    let tip = *a.mine(12, miner()).await.last().unwrap();
    b.connect_to(&a).await;
    all_at("synced", &[&b], tip).await;
    let tx = spend_coinbase(&a, 1);
    let txid = within("submit", a.node.submit_tx(tx, true))
        .await
        .expect("accepted at A");
    expect("the transaction reaches B", || in_mempool(&b, &txid)).await;
    let mined = *a.mine(1, miner()).await.last().unwrap();
    all_at("the block reaches B", &[&b], mined).await;
    (a, b, mined)
}

/// A new block goes to a version-2 peer compactly: rebuilt from its mempool when it has every
/// transaction, and with only the missing ones asked for when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_block_reaches_a_peer_compactly_and_only_missing_transactions_are_fetched() {
    // A transaction both mempools hold, then a block with it.
    let (a, b, mined) = block_with_a_relayed_tx(|_| {}, |_| {}).await;
    expect("B rebuilt it from its mempool", || {
        let c = b.view().compact;
        c.received == 1 && c.rebuilt_at_once == 1 && c.txs_asked == 0
    })
    .await;
    assert_eq!(a.view().compact.sent, 1, "{:?}", a.view().compact);

    // A block with a transaction B never saw: that one transaction is asked for.
    let params = a.node.params();
    let parent = a.node.block_meta(&mined).unwrap().expect("tip meta");
    let unseen = spend_coinbase(&a, 2);
    let unseen_id = unseen.txid();
    let block = block_on(params, &parent, miner(), vec![unseen], FEE, 0);
    let hash = block.hash();
    within("submit block", a.node.submit_block(block))
        .await
        .expect("A accepts the block");
    all_at("the second block reaches B", &[&b], hash).await;
    assert!(b.node.transaction(&unseen_id).unwrap().is_some());
    expect("B asked for the one transaction it lacked", || {
        let c = b.view().compact;
        c.received == 2 && c.rebuilt_at_once == 1 && c.txs_asked == 1 && c.fetched_whole == 0
    })
    .await;
    b.stop().await;
    a.stop().await;
}

/// A node that speaks only protocol version 1 (as nodes before compact blocks did) and a new
/// one settle on version 1, whichever dials, and the new one sends full blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_node_and_a_new_one_settle_on_version_1_and_relay_full_blocks() {
    let v1 = |c: &mut P2pConfig| c.limits.max_protocol = 1;
    // The old node dials the new one, then the new one dials the old one (which relays).
    for old_dials in [true, false] {
        let (a, b, _) = if old_dials {
            block_with_a_relayed_tx(|_| {}, v1).await
        } else {
            block_with_a_relayed_tx(v1, |_| {}).await
        };
        // Published on the next tick: wait for it, then check nothing went compactly.
        expect("A's view is current", || {
            a.view().peers.iter().any(|p| p.height == 13)
        })
        .await;
        assert_eq!(a.view().compact, Default::default());
        assert_eq!(b.view().compact, Default::default());
        b.stop().await;
        a.stop().await;
    }
}
