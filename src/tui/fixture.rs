//! A fixed dashboard state with every pane filled: the snapshot tests (`tests/it/tui.rs`) draw it,
//! and the render benchmark (`benches/render.rs`) and `examples/render_frames.rs` time it.
//! Not part of the API.

use super::app::{App, WalletView};
use super::keymap::Keymap;
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::estimate::{WindowBlock, estimate};
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::Network;
use crate::core::pow::{CompactTarget, U256, Work};
use crate::node::FeeRate;
use crate::node::NodeId;
use crate::node::{BanInfo, P2pView, PeerInfo};
use crate::node::{BlockSummary, MempoolTx, Snapshot};
use crate::wallet::{Balance, WalletTx};
use std::time::Duration;

/// The fixture's clock (unix seconds).
pub const NOW: u64 = 1_750_000_000;

/// A hash made of one repeated byte, with a difficulty-looking prefix.
pub fn hash(b: u8) -> [u8; 32] {
    let mut h = [b; 32];
    h[0] = 0;
    h[1] = 0x0a;
    h
}

/// A busy devnet node: 12 recent blocks 10 s apart, a mempool, two peers and a ban, a wallet.
#[doc(hidden)]
pub fn demo_app() -> App {
    let mut app = App::new(Network::Devnet, Keymap::default(), 2, 4);
    app.now = NOW;
    let recent: Vec<BlockSummary> = (0..12u64)
        .map(|i| BlockSummary {
            hash: BlockHash(hash(0x30 + i as u8)),
            height: 1284 - i,
            time: NOW - 4 - i * 10,
            bits: CompactTarget(0x1e01_0000),
            tx_count: (3 + i % 4) as u32,
            size: 1_200 + 150 * i as u32,
            seen_ms: Some((NOW - 4 - i * 10) * 1000 + 300),
        })
        .collect();
    let top: Vec<MempoolTx> = (0..5u64)
        .map(|i| MempoolTx {
            txid: Txid(hash(0x90 + i as u8)),
            fee: Amount::from_units(4_000 - 500 * i),
            size: 250 + 10 * i as usize,
            fee_rate: FeeRate::per_kb(16_000 - 2_000 * i),
        })
        .collect();
    let window: Vec<WindowBlock> = recent
        .iter()
        .map(|b| WindowBlock {
            height: b.height,
            time: b.time,
            bits: b.bits,
            seen_ms: b.seen_ms,
        })
        .collect();
    let rates = estimate(&window, NOW * 1000);
    app.snapshot = Snapshot {
        network: Network::Devnet,
        height: 1284,
        tip: BlockHash(hash(0x30)),
        tip_time: NOW - 4,
        bits: 0x1e01_0000,
        difficulty: U256::from(256u64),
        chainwork: Work(U256::from(21_474_836_480_000u64)),
        recent,
        rates,
        next_bits: Some(0x1e01_0000),
        mempool_count: 37,
        mempool_bytes: 9_150,
        mempool_fee_range: Some((FeeRate::per_kb(1_000), FeeRate::per_kb(40_000))),
        mempool_top: top,
        mining_threads: 2,
        mining_kernel: "sha-ni".into(),
        mining_address: Some(Address::from_hash([3; 20])),
        hashrate: 1_180_000,
        hashrate_history: (0..40u64)
            .map(|i| 900_000 + (i * 37 % 11) * 30_000)
            .collect(),
        orphans: 0,
        ..Snapshot::default()
    };
    app.p2p = P2pView {
        id: Some(NodeId([0x7f; 32])),
        listen: Some("127.0.0.1:7420".parse().unwrap()),
        peers: vec![
            PeerInfo {
                id: NodeId([0x3a; 32]),
                addr: "127.0.0.1:7421".parse().unwrap(),
                inbound: false,
                height: 1284,
                tip: BlockHash(hash(0x30)),
                work: Work(U256::from(1u64)),
                rtt: Some(Duration::from_millis(2)),
                bytes_in: 1_250_000,
                bytes_out: 30_400,
                user_agent: "chain-tui/0.1.0".into(),
                connected_since: NOW - 600,
                last_message: NOW - 1,
                protocol: 2,
            },
            PeerInfo {
                id: NodeId([0xc0; 32]),
                addr: "127.0.0.1:50312".parse().unwrap(),
                inbound: true,
                height: 1283,
                tip: BlockHash(hash(0x31)),
                work: Work(U256::from(1u64)),
                rtt: None,
                bytes_in: 800,
                bytes_out: 2_000_000,
                user_agent: "chain-tui/0.1.0".into(),
                connected_since: NOW - 60,
                last_message: NOW - 12,
                protocol: 1,
            },
        ],
        bans: vec![BanInfo {
            id: Some(NodeId([0xba; 32])),
            addr: Some("10.0.0.9:7420".parse().unwrap()),
            reason: "invalid block: hash above target".into(),
            until: NOW + 3_300,
        }],
        known_addrs: 5,
        downloading: 0,
        compact: crate::node::CompactStats {
            sent: 12,
            received: 40,
            rebuilt_at_once: 37,
            txs_asked: 5,
            fetched_whole: 0,
        },
    };
    app.wallet = WalletView {
        address: Some(Address::from_hash([3; 20])),
        addresses: vec![Address::from_hash([3; 20]), Address::from_hash([4; 20])],
        balance: Some(Balance {
            confirmed: Amount::from_units(31_250_000_000),
            unconfirmed: Amount::from_units(500_000_000),
            immature: Amount::from_units(5_000_000_000),
        }),
        // The confirmed balance in coins: six of 50 and one of 12.5.
        coins: [5_000_000_000u64; 6]
            .into_iter()
            .chain([1_250_000_000])
            .map(Amount::from_units)
            .collect(),
        history: vec![
            WalletTx {
                txid: Txid(hash(0x90)),
                height: None,
                confirmations: 0,
                received: Amount::from_units(4_499_996_000),
                sent: Amount::from_units(5_000_000_000),
            },
            WalletTx {
                txid: Txid(hash(0x51)),
                height: Some(1184),
                confirmations: 101,
                received: Amount::from_units(5_000_000_000),
                sent: Amount::ZERO,
            },
            WalletTx {
                txid: Txid(hash(0x52)),
                height: Some(1000),
                confirmations: 285,
                received: Amount::from_units(250_000_000),
                sent: Amount::ZERO,
            },
        ],
        error: None,
    };
    app.logs = vec![
        "12:00:01  INFO node::p2p: peer 3a3a3a3a connected (outbound)".into(),
        "12:00:05  INFO node: mined block 1284".into(),
        "12:00:06  WARN node::p2p: banned babababa: invalid block".into(),
    ];
    app.size = (160, 45);
    app
}

/// `n` log lines of the kinds a running node writes, oldest first, for a full Log pane.
pub fn log_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let t = 43_200 + i as u64 * 3;
            let clock = format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
            match i % 4 {
                0 => format!("{clock}  INFO node: mined block {} (2 txs, 412 B)", 1000 + i),
                1 => format!(
                    "{clock}  INFO node::p2p: peer {:08x} connected (outbound) from 127.0.0.1:{}",
                    0x3a3a_3a3a_u32.wrapping_add(i as u32),
                    7000 + i
                ),
                2 => format!(
                    "{clock}  WARN node::p2p: peer {:08x} slow to answer getheaders: 2.4 s, asking another",
                    0xc0c0_c0c0_u32.wrapping_add(i as u32)
                ),
                _ => format!(
                    "{clock}  INFO node: accepted transaction {:016x}… into the mempool (fee rate 2.5 /B, 250 B, 37 in the pool)",
                    0x9090_9090_9090_u64 * i as u64
                ),
            }
        })
        .collect()
}

/// Active-chain rows from `top` down, 10 s apart, as the node's `chain_page` returns them.
#[doc(hidden)]
pub fn chain_rows(top: u64, count: u64) -> Vec<BlockSummary> {
    (0..count)
        .map_while(|i| top.checked_sub(i))
        .map(|h| BlockSummary {
            hash: BlockHash(hash((h % 200) as u8)),
            height: h,
            time: NOW - 4 - (100_000u64.saturating_sub(h)) * 10,
            bits: CompactTarget(0x1e01_0000),
            tx_count: 1 + (h % 5) as u32,
            size: 200 + (h % 7) as u32 * 100,
            seen_ms: Some((NOW - 4) * 1000),
        })
        .collect()
}

/// A block's full view with a coinbase and 40 payments.
#[doc(hidden)]
pub fn block_detail() -> super::app::BlockDetail {
    use super::app::{BlockDetail, TxRow};
    BlockDetail {
        hash: BlockHash(hash(0x30)),
        height: 1284,
        time: NOW - 4,
        seen: Some(NOW - 3),
        confirmations: 1,
        size: 12_000,
        txs: (0..41u8)
            .map(|i| TxRow {
                txid: Txid(hash(0x60u8.wrapping_add(i))),
                coinbase: i == 0,
                inputs: usize::from(i > 0),
                outputs: 2,
                amount: Amount::from_units(5_000_000_000 - u64::from(i)),
                size: 250,
            })
            .collect(),
        version: 1,
        prev: BlockHash(hash(0x31)),
        merkle_root: crate::core::hash::MerkleRoot(hash(0x40)),
        bits: 0x1e01_0000,
        nonce: 918_273,
        work: U256::from(65_537u64),
        chainwork: U256::from(21_474_836_480_000u64),
        subsidy: Amount::from_units(5_000_000_000),
        fees: Amount::from_units(160_000),
        next: None,
    }
}
