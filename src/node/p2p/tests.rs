//! The protocol state machine driven by hand in virtual time: a chain held in memory, peers
//! that are only node ids and the messages the test makes up. Every timeout is reached by
//! moving the clock, so each test runs in milliseconds.

use super::Activity;
use super::book::Records;
use super::sched::{MAX_STALLS, STALL_TIMEOUT};
use super::state::{Answer, ChainView, Command, ConnInfo, Input, Now, Output, P2pState, Settings};
use super::time::LocalTime;
use crate::core::block::{Block, BlockHeader};
use crate::core::hash::{BlockHash, MerkleRoot, Txid};
use crate::core::params::Network;
use crate::core::pow::Work;
use crate::core::tx::Transaction;
use crate::net::DisconnectReason;
use crate::net::compact::CompactBlock;
use crate::net::identity::{NodeId, PeerAddr};
use crate::net::wire::{Hello, Message, PROTOCOL_VERSION};
use crate::storage::{BlockMeta, BlockStatus};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const BAN_TIME: Duration = Duration::from_secs(3600);

/// A chain of one block: genesis.
struct Genesis;

impl ChainView for Genesis {
    fn tip(&self) -> (u64, BlockHash, Work) {
        let p = Network::Regtest.params();
        (
            0,
            p.genesis_hash,
            p.genesis.header.bits.to_target().unwrap().work(),
        )
    }
    fn block_meta(&self, hash: &BlockHash) -> Option<BlockMeta> {
        let p = Network::Regtest.params();
        (*hash == p.genesis_hash).then(|| BlockMeta {
            header: p.genesis.header,
            height: 0,
            chainwork: self.tip().2,
            status: BlockStatus::Valid,
            size: 0,
            tx_count: 1,
        })
    }
    fn has_block(&self, hash: &BlockHash) -> bool {
        *hash == Network::Regtest.params().genesis_hash
    }
    fn has_tx(&self, _: &Txid) -> bool {
        false
    }
    fn locator(&self) -> Result<Vec<BlockHash>, String> {
        Ok(vec![Network::Regtest.params().genesis_hash])
    }
    fn mempool_txids(&self) -> Vec<Txid> {
        Vec::new()
    }
    fn mempool_tx(&self, _: &Txid) -> Option<Transaction> {
        None
    }
    fn block(&self, hash: &BlockHash) -> Option<Block> {
        let p = Network::Regtest.params();
        (*hash == p.genesis_hash).then(|| p.genesis.clone())
    }
    fn next_bits(&self, parent: &BlockHash) -> Option<crate::core::pow::CompactTarget> {
        (*parent == self.tip().1).then_some(Network::Regtest.params().genesis.header.bits)
    }
}

/// Genesis with a mempool, or a chain of genesis and one block `tip` (with a mempool); the
/// test may set the tip later.
struct Mempool {
    txs: Vec<Transaction>,
    tip: Arc<std::sync::Mutex<Option<Block>>>,
}

impl Mempool {
    fn tip_block(&self) -> Option<Block> {
        self.tip.lock().unwrap().clone()
    }
}

impl ChainView for Mempool {
    fn tip(&self) -> (u64, BlockHash, Work) {
        match &self.tip_block() {
            Some(b) => (1, b.hash(), Genesis.tip().2.saturating_add(Genesis.tip().2)),
            None => Genesis.tip(),
        }
    }
    fn block_meta(&self, hash: &BlockHash) -> Option<BlockMeta> {
        match &self.tip_block() {
            Some(b) if b.hash() == *hash => Some(BlockMeta {
                header: b.header,
                height: 1,
                chainwork: self.tip().2,
                status: BlockStatus::Valid,
                size: 0,
                tx_count: b.txs.len() as u32,
            }),
            _ => Genesis.block_meta(hash),
        }
    }
    fn has_block(&self, hash: &BlockHash) -> bool {
        self.block_meta(hash).is_some()
    }
    fn has_tx(&self, txid: &Txid) -> bool {
        self.txs.iter().any(|t| t.txid() == *txid)
    }
    fn locator(&self) -> Result<Vec<BlockHash>, String> {
        Ok(vec![self.tip().1])
    }
    fn mempool_txids(&self) -> Vec<Txid> {
        self.txs.iter().map(Transaction::txid).collect()
    }
    fn mempool_tx(&self, txid: &Txid) -> Option<Transaction> {
        self.txs.iter().find(|t| t.txid() == *txid).cloned()
    }
    fn block(&self, hash: &BlockHash) -> Option<Block> {
        match &self.tip_block() {
            Some(b) if b.hash() == *hash => Some(b.clone()),
            _ => Genesis.block(hash),
        }
    }
    fn next_bits(&self, parent: &BlockHash) -> Option<crate::core::pow::CompactTarget> {
        (*parent == self.tip().1).then_some(Network::Regtest.params().genesis.header.bits)
    }
}

fn id(n: u8) -> NodeId {
    NodeId([n; 32])
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// `n` headers on genesis, each meeting the regtest target.
fn headers(n: usize) -> Vec<BlockHeader> {
    let p = Network::Regtest.params();
    let mut prev = p.genesis_hash;
    let mut out = Vec::new();
    for i in 0..n {
        let mut h = BlockHeader {
            version: 1,
            prev,
            merkle_root: MerkleRoot([0; 32]),
            time: p.genesis.header.time + 1 + i as u64,
            bits: p.genesis.header.bits,
            nonce: 0,
        };
        while !p.pow_limit.is_met_by(&h.hash().0) {
            h.nonce += 1;
        }
        prev = h.hash();
        out.push(h);
    }
    out
}

/// A node under test, its clock, and what it said.
struct Harness {
    state: P2pState,
    t: Duration,
    out: Vec<Output>,
}

impl Harness {
    /// Our node has id 5.
    fn new() -> Harness {
        Harness::with_records(Records::default(), &[])
    }

    fn with_records(records: Records, connect: &[PeerAddr]) -> Harness {
        Harness::with_chain(Box::new(Genesis), records, connect)
    }

    fn with_chain(chain: Box<dyn ChainView>, records: Records, connect: &[PeerAddr]) -> Harness {
        Harness::with_settings(chain, records, connect, |_| {})
    }

    fn with_settings(
        chain: Box<dyn ChainView>,
        records: Records,
        connect: &[PeerAddr],
        adjust: impl FnOnce(&mut Settings),
    ) -> Harness {
        let mut settings = Settings {
            id: id(5),
            listen: Some(addr(9000)),
            max_outbound: 8,
            max_inbound: 4,
            ban_time: BAN_TIME,
            pow_limit: Network::Regtest.params().pow_limit,
            max_block_bytes: Network::Regtest.params().max_block_size,
            ping_every: super::state::PING_EVERY,
            views: true,
        };
        adjust(&mut settings);
        let now = Now::default();
        let mut state = P2pState::new(settings, chain, records, connect, now);
        let out = state.start(now);
        Harness {
            state,
            t: Duration::ZERO,
            out,
        }
    }

    fn now(&self) -> Now {
        Now {
            local: LocalTime::from_millis(self.t.as_millis() as u64),
            unix: 1_000_000 + self.t.as_secs(),
        }
    }

    fn step(&mut self, input: Input) -> &[Output] {
        let now = self.now();
        self.out = self.state.step(input, now);
        &self.out
    }

    /// Move the clock to `secs` after the start, with a tick there.
    fn tick_at(&mut self, secs: u64) -> &[Output] {
        self.t = Duration::from_secs(secs);
        self.step(Input::Tick)
    }

    /// Peer `n` finished a handshake on connection `serial` (`dialed`: we dialed it there).
    fn connect(
        &mut self,
        n: u8,
        serial: u64,
        dialed: Option<SocketAddr>,
        height: u64,
    ) -> &[Output] {
        self.connect_version(n, serial, dialed, height, PROTOCOL_VERSION)
    }

    /// The same, on a connection settled on protocol `version`.
    fn connect_version(
        &mut self,
        n: u8,
        serial: u64,
        dialed: Option<SocketAddr>,
        height: u64,
        version: u32,
    ) -> &[Output] {
        let p = Network::Regtest.params();
        self.step(Input::Connected {
            conn: ConnInfo {
                serial,
                id: id(n),
                remote: dialed.unwrap_or(addr(10_000 + u16::from(n))),
            },
            hello: Hello {
                version,
                genesis: p.genesis_hash,
                height,
                tip: p.genesis_hash,
                work: Work::ZERO.to_be_bytes(),
                listen: None,
                user_agent: "test".into(),
            },
            dialed,
            activity: Arc::new(Activity::default()),
        })
    }

    fn message(&mut self, n: u8, serial: u64, msg: Message) -> &[Output] {
        self.step(Input::Message {
            serial,
            id: id(n),
            msg,
        })
    }
}

/// The blocks asked of connection `serial` in `out`.
fn asked(out: &[Output], serial: u64) -> Vec<BlockHash> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                serial: s,
                msg: Message::GetBlocks(b),
            } if *s == serial => Some(b.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Why connection `serial` was closed in `out`, if it was.
fn closed(out: &[Output], serial: u64) -> Option<DisconnectReason> {
    out.iter().find_map(|o| match o {
        Output::Disconnect {
            serial: s, reason, ..
        } if *s == serial => Some(*reason),
        _ => None,
    })
}

fn dials(out: &[Output]) -> Vec<SocketAddr> {
    out.iter()
        .filter_map(|o| match o {
            Output::Dial(p) => Some(p.addr),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_that_stalls_on_blocks_it_announced_loses_them_and_is_banned_after_three_stalls() {
    let mut h = Harness::new();
    // Peer 1 on connection 11, peer 2 on 12; both say they are 1 block ahead.
    h.connect(1, 11, None, 1);
    h.connect(2, 12, None, 1);
    let hs = headers(MAX_STALLS as usize);
    // Peer 1 sends the first header: it is asked for the block (the lowest id comes first).
    let out = h.message(1, 11, Message::Headers(vec![hs[0]]));
    assert_eq!(asked(out, 11), vec![hs[0].hash()]);
    assert!(asked(out, 12).is_empty());
    // Just at the timeout nothing moves; past it the request goes to peer 2.
    let secs = STALL_TIMEOUT.as_secs();
    assert!(asked(h.tick_at(secs), 12).is_empty());
    let out = h.tick_at(secs + 1);
    assert_eq!(asked(out, 12), vec![hs[0].hash()]);
    assert_eq!(closed(out, 11), None);
    // Peer 2 delivers it; it goes to the node.
    let out = h.message(
        2,
        12,
        Message::Block(Block {
            header: hs[0],
            txs: Vec::new(),
        }),
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::SubmitBlocks { blocks: b, .. } if b.len() == 1))
    );
    // Two more stalls on blocks only peer 1 announced (peer 2 is not high enough for them).
    // A block nobody can give is dropped from the queue, so peer 1 sends the headers from
    // the first one it owes again each time.
    let mut t = secs + 1;
    for (round, header) in hs.iter().enumerate().skip(1) {
        let out = h.message(1, 11, Message::Headers(hs[1..=round].to_vec()));
        assert!(
            asked(out, 11).contains(&header.hash()),
            "stall {}",
            round + 1
        );
        t += secs + 1;
        let out = h.tick_at(t);
        if round + 1 < MAX_STALLS as usize {
            assert_eq!(closed(out, 11), None, "stall {}", round + 1);
        } else {
            assert_eq!(closed(out, 11), Some(DisconnectReason::Misbehaviour));
            let saved = out.iter().find_map(|o| match o {
                Output::SaveRecords(r) => Some(r.clone()),
                _ => None,
            });
            let bans = saved.expect("the ban is saved").bans;
            assert_eq!(bans.len(), 1);
            assert_eq!(bans[0].id, Some(id(1)));
            assert!(
                bans[0].reason.contains("did not deliver"),
                "{}",
                bans[0].reason
            );
        }
    }
}

#[test]
fn a_peer_that_stalls_on_others_blocks_is_dropped_not_banned() {
    let mut h = Harness::new();
    h.connect(1, 11, None, 10);
    h.connect(2, 12, None, 10);
    let hs = headers(MAX_STALLS as usize);
    let secs = STALL_TIMEOUT.as_secs() + 1;
    let mut t = 0;
    for (round, header) in hs.iter().enumerate() {
        // Peer 2 sends each header, peer 1 (first in id order, and high enough) is asked.
        let out = h.message(2, 12, Message::Headers(vec![*header]));
        assert_eq!(asked(out, 11), vec![header.hash()]);
        t += secs;
        let out = h.tick_at(t);
        let expect = (round + 1 == MAX_STALLS as usize).then_some(DisconnectReason::Normal);
        assert_eq!(closed(out, 11), expect, "stall {}", round + 1);
        // Peer 2 is asked for what peer 1 did not deliver.
        assert_eq!(asked(out, 12), vec![header.hash()]);
        let block = Block {
            header: *header,
            txs: Vec::new(),
        };
        h.message(2, 12, Message::Block(block));
    }
    assert!(
        !h.out
            .iter()
            .any(|o| matches!(o, Output::SaveRecords(r) if !r.bans.is_empty()))
    );
}

#[test]
fn failed_dials_of_a_pinned_peer_back_off_two_four_eight_seconds() {
    let target = PeerAddr::new(addr(9100), None);
    let mut h = Harness::new();
    let out = h.step(Input::Command {
        req: 1,
        cmd: Command::Connect(target),
    });
    assert_eq!(dials(out), vec![target.addr]);
    let out = h.step(Input::DialFailed(target.addr, "refused".into()));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Answer {
            req: 1,
            answer: Answer::Connected(Err(_))
        }
    )));
    let mut last = 0;
    let mut waits = Vec::new();
    for _ in 0..3 {
        // Tick every second until it dials again.
        let mut t = last;
        loop {
            t += 1;
            assert!(t < last + 600, "never dialed again");
            if !dials(h.tick_at(t)).is_empty() {
                break;
            }
        }
        waits.push(t - last);
        last = t;
        h.step(Input::DialFailed(target.addr, "refused".into()));
    }
    assert_eq!(waits, vec![2, 4, 8]);
}

#[test]
fn a_banned_peer_is_refused_until_its_ban_runs_out_then_let_back() {
    let mut h = Harness::new();
    h.connect(1, 11, None, 0);
    // A block it was never asked for: banned.
    let block = Block {
        header: headers(1)[0],
        txs: Vec::new(),
    };
    let out = h.message(1, 11, Message::Block(block));
    assert_eq!(closed(out, 11), Some(DisconnectReason::Misbehaviour));
    // It comes back on a new connection from the same address: refused, with why.
    h.t = Duration::from_secs(60);
    let out = h.connect(1, 13, None, 0);
    assert_eq!(closed(out, 13), Some(DisconnectReason::Banned));
    // A second before the ban ends: still refused. At its end: taken.
    h.t = BAN_TIME - Duration::from_secs(1);
    assert_eq!(
        closed(h.connect(1, 14, None, 0), 14),
        Some(DisconnectReason::Banned)
    );
    h.t = BAN_TIME;
    let out = h.connect(1, 15, None, 0);
    assert_eq!(closed(out, 15), None);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            serial: 15,
            msg: Message::GetAddrs
        }
    )));
}

#[test]
fn crossing_dials_keep_the_connection_the_smaller_id_made_on_both_ends() {
    // We are node 5. Node 9 is larger: our dial to it wins, whichever arrives first.
    for ours_first in [true, false] {
        let mut h = Harness::new();
        let (ours, theirs) = (21, 22);
        let dial = (ours, Some(addr(9009)));
        let inbound = (theirs, None);
        let (a, b) = if ours_first {
            (dial, inbound)
        } else {
            (inbound, dial)
        };
        h.connect(9, a.0, a.1, 0);
        h.t = Duration::from_secs(1);
        let out = h.connect(9, b.0, b.1, 0);
        let (kept, gone) = (ours, theirs);
        assert_eq!(closed(out, gone), Some(DisconnectReason::Duplicate));
        assert_eq!(closed(out, kept), None);
        // Messages on the kept one are taken: a pong nobody asked for bans on it.
        let out = h.message(9, kept, Message::Pong(7));
        assert_eq!(closed(out, kept), Some(DisconnectReason::Misbehaviour));
    }
    // Node 2 is smaller: its dial to us wins.
    let mut h = Harness::new();
    h.connect(2, 31, Some(addr(9002)), 0);
    h.t = Duration::from_secs(1);
    let out = h.connect(2, 32, None, 0);
    assert_eq!(closed(out, 31), Some(DisconnectReason::Duplicate));
    assert_eq!(closed(out, 32), None);
    // Long after, a new connection from the same node is no crossing: it replaces the old
    // (the node restarted).
    h.t = Duration::from_secs(60);
    let out = h.connect(2, 33, Some(addr(9002)), 0);
    assert_eq!(closed(out, 32), Some(DisconnectReason::Duplicate));
    assert_eq!(closed(out, 33), None);
}

#[test]
fn a_full_inbound_table_evicts_the_least_useful_peer_for_a_newcomer() {
    let mut h = Harness::new();
    // Four inbound slots: peers 1–4 fill them; 2, 3 and 4 then give us something.
    for n in 1..=4u8 {
        h.t = Duration::from_secs(u64::from(n));
        h.connect(n, 40 + u64::from(n), None, 0);
    }
    for n in 2..=4u8 {
        let hs = headers(1);
        h.message(n, 40 + u64::from(n), Message::Headers(hs.clone()));
    }
    // Peer 2 was asked for the block and delivers it: useful.
    let block = Block {
        header: headers(1)[0],
        txs: Vec::new(),
    };
    h.message(2, 42, Message::Block(block));
    h.t = Duration::from_secs(10);
    let out = h.connect(8, 48, None, 0);
    assert_eq!(closed(out, 48), None);
    // Peer 2 gave us a block and is protected. Of the others, none was ever useful, so the
    // youngest goes: peer 4.
    let evicted: Vec<u64> = (41..=44).filter(|s| closed(out, *s).is_some()).collect();
    assert_eq!(evicted, vec![44]);
    assert_eq!(closed(out, 44), Some(DisconnectReason::Evicted));
}

#[test]
fn the_same_inputs_give_the_same_outputs() {
    let run = || {
        let mut h = Harness::with_records(
            Records::default(),
            &[PeerAddr::new(addr(9200), Some(id(7)))],
        );
        let mut log = format!("{:?}", h.out);
        for n in 1..=3u8 {
            log += &format!("{:?}", h.connect(n, u64::from(n), None, 1));
        }
        log += &format!("{:?}", h.message(2, 2, Message::Headers(headers(2))));
        for t in 1..=12 {
            log += &format!("{:?}", h.tick_at(t));
        }
        log
    };
    let first = run();
    assert!(first.contains("GetBlocks"));
    assert_eq!(first, run());
}

#[test]
fn saved_bans_hold_after_a_restart_and_the_book_is_dialed() {
    let mut h = Harness::new();
    h.connect(1, 11, None, 0);
    h.message(1, 11, Message::Pong(1));
    let records = h
        .out
        .iter()
        .find_map(|o| match o {
            Output::SaveRecords(r) => Some(r.clone()),
            _ => None,
        })
        .expect("the ban is saved");
    let mut again = Harness::with_records(records, &[PeerAddr::new(addr(9300), None)]);
    assert_eq!(dials(&again.out), vec![addr(9300)]);
    let out = again.connect(1, 21, None, 0);
    assert_eq!(closed(out, 21), Some(DisconnectReason::Banned));
}

#[test]
fn while_a_batch_is_with_the_node_its_blocks_are_not_fetched_again_and_peers_are_served() {
    let mut h = Harness::new();
    h.connect(1, 11, None, 3);
    let hs = headers(3);
    let out = h.message(1, 11, Message::Headers(hs[..2].to_vec()));
    assert_eq!(asked(out, 11), vec![hs[0].hash(), hs[1].hash()]);
    for hd in &hs[..2] {
        h.message(
            1,
            11,
            Message::Block(Block {
                header: *hd,
                txs: Vec::new(),
            }),
        );
    }
    // Both went to the node in one batch, and its verdict has not come back.
    let submitted = h
        .out
        .iter()
        .find_map(|o| match o {
            Output::SubmitBlocks { blocks: b, .. } => Some(b.len()),
            _ => None,
        })
        .expect("the blocks go to the node");
    assert_eq!(submitted, 2);
    // Meanwhile: an announcement of a block in the batch asks for nothing, and the next
    // header attaches to the batch's last block (height 3) and is fetched alone.
    let out = h.message(1, 11, Message::InvBlocks(vec![hs[1].hash()]));
    assert!(out.iter().all(|o| !matches!(
        o,
        Output::Send {
            msg: Message::GetHeaders { .. },
            ..
        }
    )));
    let out = h.message(1, 11, Message::Headers(hs.clone()));
    assert_eq!(asked(out, 11), vec![hs[2].hash()]);
    let out = h.message(
        1,
        11,
        Message::Block(Block {
            header: hs[2],
            txs: Vec::new(),
        }),
    );
    // One batch at a time: the third block waits for the verdict on the first two.
    assert!(!out.iter().any(|o| matches!(o, Output::SubmitBlocks { .. })));
    let out = h.step(Input::BlocksDone(Ok(crate::node::BatchOutcome {
        submitted: 2,
        height: 2,
        tip: hs[1].hash(),
        connected: 2,
        failure: None,
    })));
    assert!(out.iter().any(
        |o| matches!(o, Output::SubmitBlocks { blocks: b, .. } if b.len() == 1 && b[0].hash() == hs[2].hash())
    ));
}

#[test]
fn an_invalid_transaction_judged_after_its_sender_left_bans_the_address_it_came_from() {
    use crate::core::rules::TxError;
    use crate::core::tx::Transaction;
    use crate::node::{MempoolError, NodeError};
    let mut h = Harness::new();
    h.connect(1, 11, None, 0);
    let tx = Transaction {
        version: 1,
        inputs: Vec::new(),
        outputs: Vec::new(),
        lock_height: 0,
        memo: Vec::new(),
    };
    let txid = tx.txid();
    let out = h.message(1, 11, Message::InvTxs(vec![txid]));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Send {
            serial: 11,
            msg: Message::GetTxs(_)
        }
    )));
    let out = h.message(1, 11, Message::Tx(tx));
    let remote = out
        .iter()
        .find_map(|o| match o {
            Output::SubmitTx { remote, .. } => Some(*remote),
            _ => None,
        })
        .expect("the transaction goes to the node");
    assert_eq!(remote, addr(10_001));
    // It leaves before the node's verdict comes back.
    h.step(Input::Gone {
        id: id(1),
        serial: Some(11),
        remote: Some(remote),
        reason: "left".into(),
        misbehaviour: false,
    });
    let out = h.step(Input::TxDone {
        from: id(1),
        remote,
        txid,
        result: Err(NodeError::Mempool(MempoolError::Invalid(TxError::NoInputs))),
    });
    let bans = out
        .iter()
        .find_map(|o| match o {
            Output::SaveRecords(r) => Some(r.bans.clone()),
            _ => None,
        })
        .expect("the ban is saved");
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].id, Some(id(1)));
    assert_eq!(bans[0].addr, Some(remote));
    // Back under the same identity: refused.
    let out = h.connect(1, 12, None, 0);
    assert_eq!(closed(out, 12), Some(DisconnectReason::Banned));
}

// ---- Compact blocks ----

/// `n` distinct transactions (the state never checks them: the node does).
fn txs(n: usize) -> Vec<Transaction> {
    (0..n)
        .map(|i| Transaction {
            version: 1,
            inputs: Vec::new(),
            outputs: Vec::new(),
            lock_height: i as u64,
            memo: b"compact".to_vec(),
        })
        .collect()
}

/// A block on genesis holding `txs` (the first standing for the coinbase), with its Merkle
/// root (`right_root`: or a wrong one) and enough proof of work.
fn block_of(txs: Vec<Transaction>, right_root: bool) -> Block {
    block_on(Network::Regtest.params().genesis_hash, txs, right_root)
}

fn block_on(prev: BlockHash, txs: Vec<Transaction>, right_root: bool) -> Block {
    let p = Network::Regtest.params();
    let ids: Vec<Txid> = txs.iter().map(Transaction::txid).collect();
    let mut root = crate::core::merkle::merkle_root(&ids);
    if !right_root {
        root.0[0] ^= 1;
    }
    let mut header = BlockHeader {
        version: 1,
        prev,
        merkle_root: root,
        time: p.genesis.header.time + 1,
        bits: p.genesis.header.bits,
        nonce: 0,
    };
    while !p.pow_limit.is_met_by(&header.hash().0) {
        header.nonce += 1;
    }
    Block { header, txs }
}

fn compact(block: &Block) -> Message {
    Message::CompactBlock(CompactBlock::from_block(block, 7).unwrap())
}

fn submitted(out: &[Output]) -> Vec<BlockHash> {
    out.iter()
        .filter_map(|o| match o {
            Output::SubmitBlocks { blocks: b, .. } => {
                Some(b.iter().map(Block::hash).collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn sent(out: &[Output], serial: u64) -> Vec<&Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { serial: s, msg } if *s == serial => Some(msg),
            _ => None,
        })
        .collect()
}

/// A node whose mempool holds `have` of the block's transactions (by position, not the
/// coinbase), connected to peer 1 on serial 11 and peer 2 on serial 12.
fn compact_harness(block: &Block, have: &[usize]) -> Harness {
    let chain = Mempool {
        txs: have.iter().map(|i| block.txs[*i].clone()).collect(),
        tip: Arc::default(),
    };
    let mut h = Harness::with_chain(Box::new(chain), Records::default(), &[]);
    h.connect(1, 11, None, 0);
    h.connect(2, 12, None, 0);
    h
}

#[test]
fn a_compact_block_whose_transactions_are_all_in_the_mempool_goes_to_the_node_at_once() {
    let block = block_of(txs(6), true);
    let mut h = compact_harness(&block, &[1, 2, 3, 4, 5]);
    let out = h.message(1, 11, compact(&block));
    assert_eq!(submitted(out), vec![block.hash()]);
    assert!(sent(out, 11).is_empty(), "nothing asked: {out:?}");
    assert_eq!(closed(out, 11), None);
}

#[test]
fn a_compact_block_asks_its_sender_for_exactly_the_missing_transactions_then_goes_to_the_node() {
    let block = block_of(txs(6), true);
    let mut h = compact_harness(&block, &[1, 3, 5]);
    let out = h.message(1, 11, compact(&block));
    assert!(submitted(out).is_empty());
    let asks = sent(out, 11);
    assert_eq!(
        asks,
        vec![&Message::GetBlockTxs {
            block: block.hash(),
            indexes: vec![2, 4],
        }]
    );
    let out = h.message(
        1,
        11,
        Message::BlockTxs {
            block: block.hash(),
            txs: vec![block.txs[2].clone(), block.txs[4].clone()],
        },
    );
    assert_eq!(submitted(out), vec![block.hash()]);
    assert_eq!(closed(out, 11), None);
}

#[test]
fn a_rebuilt_block_that_does_not_match_its_header_is_asked_for_whole_without_a_ban() {
    // Every transaction is at hand, but the header commits to other ones (as when a short id
    // matches the wrong mempool transaction).
    let block = block_of(txs(4), false);
    let mut h = compact_harness(&block, &[1, 2, 3]);
    let out = h.message(1, 11, compact(&block));
    assert!(submitted(out).is_empty());
    assert_eq!(closed(out, 11), None);
    assert_eq!(asked(out, 11), vec![block.hash()]);
}

#[test]
fn wrong_or_unasked_block_transactions_get_the_sender_banned() {
    let block = block_of(txs(4), true);
    // Unasked.
    let mut h = compact_harness(&block, &[1, 2, 3]);
    let out = h.message(
        2,
        12,
        Message::BlockTxs {
            block: block.hash(),
            txs: vec![block.txs[1].clone()],
        },
    );
    assert_eq!(closed(out, 12), Some(DisconnectReason::Misbehaviour));
    // Asked, but the answer holds a transaction of another short id.
    let mut h = compact_harness(&block, &[1, 3]);
    h.message(1, 11, compact(&block));
    let out = h.message(
        1,
        11,
        Message::BlockTxs {
            block: block.hash(),
            txs: vec![block.txs[3].clone()],
        },
    );
    assert_eq!(closed(out, 11), Some(DisconnectReason::Misbehaviour));
}

#[test]
fn a_compact_block_on_a_version_1_connection_gets_the_sender_banned() {
    let block = block_of(txs(3), true);
    let mut h = Harness::new();
    h.connect_version(3, 13, None, 0, 1);
    let out = h.message(3, 13, compact(&block));
    assert_eq!(closed(out, 13), Some(DisconnectReason::Misbehaviour));
}

#[test]
fn a_sender_that_does_not_send_the_missing_transactions_stalls_and_another_peer_gives_the_block() {
    let block = block_of(txs(4), true);
    let mut h = compact_harness(&block, &[1]);
    h.message(1, 11, compact(&block));
    // Peer 2 has it too.
    h.message(2, 12, Message::InvBlocks(vec![block.hash()]));
    let secs = STALL_TIMEOUT.as_secs() + 1;
    let out = h.tick_at(secs);
    assert_eq!(asked(out, 12), vec![block.hash()], "{out:?}");
    let out = h.message(2, 12, Message::Block(block.clone()));
    assert_eq!(submitted(out), vec![block.hash()]);
}

#[test]
fn a_new_tip_goes_compactly_to_version_2_peers_that_have_its_parent_and_by_hash_to_the_rest() {
    // Our new tip's parent: a block peers 1 and 3 announced.
    let parent = BlockHash([9; 32]);
    let block = block_on(parent, txs(3), true);
    let tip = Arc::default();
    let chain = Mempool {
        txs: Vec::new(),
        tip: Arc::clone(&tip),
    };
    let mut h = Harness::with_chain(Box::new(chain), Records::default(), &[]);
    // Peer 1 (version 2) and peer 3 (version 1) have the parent; peer 2 (version 2) did
    // not say it has.
    h.connect(1, 11, None, 0);
    h.connect(2, 12, None, 0);
    h.connect_version(3, 13, None, 0, 1);
    h.message(1, 11, Message::InvBlocks(vec![parent]));
    h.message(3, 13, Message::InvBlocks(vec![parent]));
    // The node connects the block.
    *tip.lock().unwrap() = Some(block.clone());
    h.t = Duration::from_secs(1);
    let out = h.step(Input::Node(crate::node::NodeEvent::BlockConnected {
        hash: block.hash(),
        height: 1,
    }));
    let Message::CompactBlock(c) = sent(out, 11)[0] else {
        panic!("peer 1 was sent {out:?}");
    };
    assert_eq!(c.hash(), block.hash());
    assert_eq!(c.short_ids.len(), 2);
    assert_eq!(sent(out, 12), vec![&Message::InvBlocks(vec![block.hash()])]);
    assert_eq!(sent(out, 13), vec![&Message::InvBlocks(vec![block.hash()])]);
}

// ---- Bounds on what a peer can make us hold ----

fn tx_inv(from: u32, n: u32) -> Message {
    Message::InvTxs(
        (from..from + n)
            .map(|i| {
                let mut t = [0u8; 32];
                t[..4].copy_from_slice(&i.to_be_bytes());
                Txid(t)
            })
            .collect(),
    )
}

fn txs_asked(out: &[Output], serial: u64) -> usize {
    sent(out, serial)
        .iter()
        .map(|m| match m {
            Message::GetTxs(t) => t.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn a_peer_that_announces_transactions_and_never_sends_them_is_asked_for_at_most_the_cap() {
    use super::state::MAX_REQUESTED_TXS;
    let mut h = Harness::new();
    h.connect(1, 11, None, 0);
    let mut asked = 0;
    for k in 0..8 {
        let out = h.message(1, 11, tx_inv(k * 1000, 1000));
        asked += txs_asked(out, 11);
        assert_eq!(closed(out, 11), None);
    }
    assert_eq!(asked, MAX_REQUESTED_TXS);
    // Announcing the same ones again asks for nothing more.
    assert_eq!(txs_asked(h.message(1, 11, tx_inv(0, 1000)), 11), 0);
    // Another peer is asked for what the first holds back.
    h.connect(2, 12, None, 0);
    assert_eq!(txs_asked(h.message(2, 12, tx_inv(7000, 10)), 12), 10);
    // Requests that never came expire: the first peer is asked again.
    h.tick_at(super::state::TX_REQUEST_EXPIRY.as_secs() + 1);
    assert_eq!(txs_asked(h.message(1, 11, tx_inv(0, 1000)), 11), 1000);
}

#[test]
fn a_peer_that_answers_no_ping_for_a_minute_is_disconnected_and_one_that_answers_stays() {
    use super::state::{PING_EVERY, PINGS_UNANSWERED};
    let mut h = Harness::new();
    h.connect(1, 11, None, 0);
    h.connect(2, 12, None, 0);
    // Peer 3 answers no ping but keeps sending (its pongs queue behind what it sends).
    h.connect(3, 13, None, 0);
    let genesis = Network::Regtest.params().genesis_hash;
    let limit = (PING_EVERY * PINGS_UNANSWERED).as_secs();
    let mut gone_at = None;
    for secs in 1..=limit + 10 {
        let out = h.message(3, 13, Message::InvBlocks(vec![genesis]));
        assert_eq!(closed(out, 13), None);
        let out = h.tick_at(secs);
        assert_eq!(closed(out, 11), None, "the answering peer stays ({secs} s)");
        assert_eq!(closed(out, 13), None, "the busy peer stays ({secs} s)");
        if let Some(reason) = closed(out, 12) {
            assert_eq!(reason, DisconnectReason::Normal);
            gone_at.get_or_insert(secs);
        }
        let pings: Vec<u64> = sent(out, 11)
            .iter()
            .filter_map(|m| match m {
                Message::Ping(n) => Some(*n),
                _ => None,
            })
            .collect();
        for n in pings {
            h.message(1, 11, Message::Pong(n));
        }
    }
    let gone_at = gone_at.expect("the silent peer was disconnected");
    assert!(
        (limit..=limit + PING_EVERY.as_secs()).contains(&gone_at),
        "gone at {gone_at} s"
    );
}

// ---- Compact blocks from hostile or unlucky senders ----

#[test]
fn a_compact_block_off_our_tip_is_only_an_announcement_and_one_with_the_wrong_difficulty_bans() {
    // Parent unknown: headers are asked for, nothing is rebuilt.
    let elsewhere = block_on(BlockHash([9; 32]), txs(3), true);
    let mut h = compact_harness(&elsewhere, &[1, 2]);
    let out = h.message(1, 11, compact(&elsewhere));
    let sent_to = sent(out, 11);
    assert!(!sent_to.is_empty(), "headers are asked for");
    assert!(
        sent_to
            .iter()
            .all(|m| matches!(m, Message::GetHeaders { .. })),
        "{out:?}"
    );
    assert!(submitted(out).is_empty());
    assert_eq!(closed(out, 11), None);
    // On our tip, with a target other than the one a block there must meet.
    let mut b = block_of(txs(3), true);
    b.header.bits = crate::core::pow::CompactTarget(b.header.bits.0 - 1);
    while !b
        .header
        .bits
        .to_target()
        .unwrap()
        .is_met_by(&b.header.hash().0)
    {
        b.header.nonce += 1;
    }
    let mut h = compact_harness(&b, &[1, 2]);
    let out = h.message(1, 11, compact(&b));
    assert_eq!(closed(out, 11), Some(DisconnectReason::Misbehaviour));
}

#[test]
fn a_second_compact_block_from_a_peer_sends_the_first_back_to_the_queue_for_another_peer() {
    let a = block_of(txs(4), true);
    // A sibling of A (another coinbase), also on our tip.
    let mut other = txs(4);
    other[0].memo = b"sibling".to_vec();
    let b = block_of(other, true);
    let mut h = compact_harness(&a, &[1]);
    // Peer 2 has A.
    h.message(2, 12, Message::InvBlocks(vec![a.hash()]));
    let out = h.message(1, 11, compact(&a));
    assert!(matches!(sent(out, 11)[0], Message::GetBlockTxs { .. }));
    let out = h.message(1, 11, compact(&b));
    assert_eq!(asked(out, 12), vec![a.hash()], "{out:?}");
    // Peer 1's late answer for A is not a violation; a second one is.
    let answer = Message::BlockTxs {
        block: a.hash(),
        txs: vec![a.txs[2].clone(), a.txs[3].clone()],
    };
    assert_eq!(closed(h.message(1, 11, answer.clone()), 11), None);
    assert_eq!(
        closed(h.message(1, 11, answer), 11),
        Some(DisconnectReason::Misbehaviour)
    );
}

#[test]
fn a_block_whose_filled_transactions_do_not_match_its_header_is_asked_of_another_peer() {
    // The header commits to other transactions than the short ids stand for (a sender that
    // made its short ids up): after the fill the block does not match.
    let bad = block_of(txs(4), false);
    let mut h = compact_harness(&bad, &[1]);
    h.message(2, 12, Message::InvBlocks(vec![bad.hash()]));
    h.message(1, 11, compact(&bad));
    let out = h.message(
        1,
        11,
        Message::BlockTxs {
            block: bad.hash(),
            txs: vec![bad.txs[2].clone(), bad.txs[3].clone()],
        },
    );
    assert_eq!(closed(out, 11), None);
    assert!(
        asked(out, 11).is_empty(),
        "not the same sender again: {out:?}"
    );
    assert_eq!(asked(out, 12), vec![bad.hash()]);
}

#[test]
fn transactions_that_arrive_after_a_stall_still_complete_the_block() {
    let block = block_of(txs(4), true);
    let mut h = compact_harness(&block, &[1]);
    h.message(2, 12, Message::InvBlocks(vec![block.hash()]));
    h.message(1, 11, compact(&block));
    // The sender stalls: the block is asked of peer 2; then the sender's late answer
    // comes first and completes it.
    let out = h.tick_at(STALL_TIMEOUT.as_secs() + 1);
    assert_eq!(asked(out, 12), vec![block.hash()]);
    let out = h.message(
        1,
        11,
        Message::BlockTxs {
            block: block.hash(),
            txs: vec![block.txs[2].clone(), block.txs[3].clone()],
        },
    );
    assert_eq!(closed(out, 11), None);
    assert_eq!(submitted(out), vec![block.hash()]);
}

/// A book entry as a learned address is: not pinned, never failed, due.
fn learned(port: u16) -> super::book::BookEntry {
    super::book::BookEntry {
        addr: addr(port),
        id: None,
        failures: 0,
        next_try: 0,
        pinned: false,
    }
}

#[test]
fn with_outbound_slots_full_an_extra_peer_is_tried_every_five_minutes_and_kept_only_if_useful() {
    use super::state::{ROTATE_EVERY, ROTATION_LOOK};
    let records = Records {
        book: vec![learned(7001), learned(7002), learned(7003)],
        bans: Vec::new(),
    };
    let mut h = Harness::with_settings(Box::new(Genesis), records, &[], |s| {
        s.max_outbound = 1;
        // Silence is not what this test is about.
        s.ping_every = Duration::from_secs(24 * 3600);
    });
    // One slot: the first address is dialed, and then the slots are full.
    assert_eq!(dials(&h.out), vec![addr(7001)]);
    h.connect(1, 11, Some(addr(7001)), 0);
    let every = ROTATE_EVERY.as_secs();
    let look = ROTATION_LOOK.as_secs();
    assert!(dials(h.tick_at(every - 1)).is_empty());
    // Five minutes on: one extra dial, to one of the two others.
    let first = dials(h.tick_at(every));
    assert_eq!(first.len(), 1, "{first:?}");
    assert!([addr(7002), addr(7003)].contains(&first[0]));
    // It gives us nothing within a minute: it goes, and the first peer stays.
    h.connect(2, 12, Some(first[0]), 0);
    h.tick_at(every + look - 1);
    let out = &h.out;
    assert_eq!(closed(out, 12), None);
    h.tick_at(every + look);
    let out = &h.out;
    assert_eq!(closed(out, 12), Some(DisconnectReason::Normal));
    assert_eq!(closed(out, 11), None);
    h.step(Input::Gone {
        id: id(2),
        serial: Some(12),
        remote: Some(first[0]),
        reason: "closed".into(),
        misbehaviour: false,
    });
    // Five minutes after the last try: the address not tried yet.
    assert!(dials(h.tick_at(2 * every - 1)).is_empty());
    let second = dials(h.tick_at(2 * every));
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0], first[0]);
    // This one gives us a block: it stays, and the peer useful longest ago makes room.
    h.connect(3, 13, Some(second[0]), 1);
    let hs = headers(1);
    h.message(3, 13, Message::Headers(hs.clone()));
    let out = &h.out;
    assert_eq!(asked(out, 13), vec![hs[0].hash()]);
    h.message(
        3,
        13,
        Message::Block(Block {
            header: hs[0],
            txs: Vec::new(),
        }),
    );
    h.tick_at(2 * every + look);
    let out = &h.out;
    assert_eq!(closed(out, 11), Some(DisconnectReason::Evicted));
    assert_eq!(closed(out, 13), None);
}

#[test]
fn a_failed_rotation_dial_waits_five_minutes_and_a_useful_extra_peer_displaces_the_least_useful() {
    use super::state::{ROTATE_EVERY, ROTATION_LOOK};
    let records = Records {
        book: (7001..=7004).map(learned).collect(),
        bans: Vec::new(),
    };
    let mut h = Harness::with_settings(Box::new(Genesis), records, &[], |s| {
        s.max_outbound = 2;
        s.ping_every = Duration::from_secs(24 * 3600);
    });
    assert_eq!(dials(&h.out), vec![addr(7001), addr(7002)]);
    h.connect(1, 11, Some(addr(7001)), 0);
    h.connect(2, 12, Some(addr(7002)), 0);
    // Peer 1 gives us a transaction; peer 2 never gives anything.
    let useful = |h: &mut Harness, n: u8, port: u16| {
        let txid = txs(1)[0].txid();
        h.step(Input::TxDone {
            from: id(n),
            remote: addr(port),
            txid,
            result: Ok(txid),
        });
    };
    h.tick_at(10);
    useful(&mut h, 1, 7001);
    let every = ROTATE_EVERY.as_secs();
    let first = dials(h.tick_at(every));
    assert_eq!(first.len(), 1, "{first:?}");
    // The dial fails: nothing more until the next five minutes are up, then another address.
    h.step(Input::DialFailed(first[0], "refused".into()));
    assert!(dials(h.tick_at(2 * every - 1)).is_empty());
    let second = dials(h.tick_at(2 * every));
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0], first[0]);
    h.connect(3, 13, Some(second[0]), 0);
    h.tick_at(2 * every + 5);
    useful(&mut h, 3, second[0].port());
    // Useful: it stays, and of the other two the one never useful goes.
    h.tick_at(2 * every + ROTATION_LOOK.as_secs());
    let out = &h.out;
    assert_eq!(closed(out, 12), Some(DisconnectReason::Evicted));
    assert_eq!(closed(out, 11), None);
    assert_eq!(closed(out, 13), None);
}
