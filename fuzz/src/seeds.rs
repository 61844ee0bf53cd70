//! Valid inputs each target starts from, built with the main crate's own encoders.
//!
//! The target binaries write them (so no second, uninstrumented build of every dependency is
//! needed): with `CHAIN_TUI_FUZZ_SEEDS=DIR` set, a target's start-up writes its seeds as
//! `DIR/<target>/seed-NN` (files that exist are left alone), then fuzzes as usual. `run.sh
//! --seeds` does this for every target.

use super::{NETWORK, PASSPHRASE};
use chain_tui::api::NodeFile;
use chain_tui::api::views::TxJson;
use chain_tui::core::address::Address;
use chain_tui::core::amount::Amount;
use chain_tui::core::block::{Block, BlockHeader};
use chain_tui::core::hash::{BlockHash, Txid};
use chain_tui::core::merkle::merkle_root;
use chain_tui::core::tx::{OutPoint, Transaction, TxIn, TxOut};
use chain_tui::net::wire::{Hello, Message, PROTOCOL_VERSION, encode_frame};
use chain_tui::node::chainfile::ChainWriter;
use chain_tui::wallet::keystore::{KdfParams, Keystore};
use std::net::SocketAddr;
use std::path::Path;

/// Write `target`'s seeds under `$CHAIN_TUI_FUZZ_SEEDS/<target>/` if that variable is set.
pub fn write_if_asked(target: &str) {
    let Some(dir) = std::env::var_os("CHAIN_TUI_FUZZ_SEEDS") else {
        return;
    };
    let dir = Path::new(&dir).join(target);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    for (i, seed) in for_target(target).iter().enumerate() {
        let file = dir.join(format!("seed-{i:02}"));
        if !file.exists() {
            std::fs::write(&file, seed).expect("write a seed");
        }
    }
}

/// The seeds of one target.
pub fn for_target(target: &str) -> Vec<Vec<u8>> {
    match target {
        "wire_message" => messages().iter().map(Message::encode).collect(),
        "wire_frame" => {
            let frames: Vec<Vec<u8>> = messages()
                .iter()
                .map(|m| encode_frame(m).expect("seed messages are within the limits"))
                .collect();
            let mut all = frames.clone();
            all.push(frames.concat());
            all
        }
        "header" => vec![chain_tui::core::encode::encode(
            &NETWORK.params().genesis.header,
        )],
        "block" => chain(2).iter().map(Block::encode).collect(),
        "transaction" => vec![coinbase(1).encode(), spend().encode()],
        "chain_file" => (0..3).map(chain_file).collect(),
        "keystore" => keystores(),
        "scenario" => vec![
            include_bytes!("../../assets/demo/double-spend.toml").to_vec(),
            include_bytes!("../../assets/demo/fork-and-reorg.toml").to_vec(),
            include_bytes!("../../assets/demo/late-joiner.toml").to_vec(),
            include_bytes!("../../assets/demo/line-heal-32.toml").to_vec(),
        ],
        "node_file" => vec![node_file(None), node_file(Some(addr(9000)))],
        "api_bodies" => api_bodies(),
        other => panic!("no seeds for unknown target {other}"),
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn coinbase(height: u64) -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![TxOut {
            amount: Amount::from_units(50_0000_0000),
            address: Address::from_pubkey(&[7; 32]),
        }],
        lock_height: height,
        memo: b"seed".to_vec(),
    }
}

fn spend() -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: OutPoint {
                txid: coinbase(1).txid(),
                vout: 0,
            },
            pubkey: [7; 32],
            signature: [9; 64],
        }],
        outputs: vec![
            TxOut {
                amount: Amount::from_units(10_0000_0000),
                address: Address::from_pubkey(&[8; 32]),
            },
            TxOut {
                amount: Amount::from_units(39_9999_0000),
                address: Address::from_pubkey(&[7; 32]),
            },
        ],
        lock_height: 2,
        memo: vec![],
    }
}

/// `n` blocks building on the regtest genesis (headers and merkle roots right, no proof of
/// work: the decoders do not check it).
fn chain(n: u64) -> Vec<Block> {
    let params = NETWORK.params();
    let mut prev = params.genesis_hash;
    let mut time = params.genesis.header.time;
    let mut blocks = Vec::new();
    for height in 1..=n {
        let mut txs = vec![coinbase(height)];
        if height == 2 {
            txs.push(spend());
        }
        let txids: Vec<Txid> = txs.iter().map(Transaction::txid).collect();
        time += 10;
        let header = BlockHeader {
            version: 1,
            prev,
            merkle_root: merkle_root(&txids),
            time,
            bits: params.genesis.header.bits,
            nonce: height,
        };
        prev = header.hash();
        blocks.push(Block { header, txs });
    }
    blocks
}

fn chain_file(n: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("chain.dat");
    let mut w = ChainWriter::create(&file, &NETWORK.params().genesis_hash, n).expect("create");
    for b in chain(n) {
        w.push(&b).expect("push");
    }
    w.finish().expect("finish");
    std::fs::read(&file).expect("read back")
}

fn messages() -> Vec<Message> {
    let params = NETWORK.params();
    let blocks = chain(2);
    vec![
        Message::Hello(Hello {
            version: PROTOCOL_VERSION,
            genesis: params.genesis_hash,
            height: 2,
            tip: blocks[1].hash(),
            work: [1; 32],
            listen: Some(addr(9000)),
            user_agent: "chain-tui/0.1.0".into(),
        }),
        Message::Ping(7),
        Message::Pong(7),
        Message::GetHeaders {
            locator: vec![blocks[1].hash(), params.genesis_hash],
            stop: BlockHash::ZERO,
        },
        Message::Headers(blocks.iter().map(|b| b.header).collect()),
        Message::GetBlocks(vec![blocks[0].hash()]),
        Message::Block(blocks[1].clone()),
        Message::NotFound(vec![blocks[0].hash()]),
        Message::InvBlocks(vec![blocks[1].hash()]),
        Message::InvTxs(vec![spend().txid()]),
        Message::GetTxs(vec![spend().txid()]),
        Message::Tx(spend()),
        Message::GetAddrs,
        Message::Addrs(vec![addr(9000), "[::1]:9001".parse().expect("an address")]),
    ]
}

fn keystores() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let plain = dir.path().join("plain.json");
    let sealed = dir.path().join("sealed.json");
    let mut store = Keystore::create(&plain, None).expect("create a keystore");
    store.new_key("second").expect("add a key");
    let kdf = KdfParams {
        m_cost: 8,
        t_cost: 1,
        p_cost: 1,
    };
    Keystore::create_with_kdf(&sealed, Some(PASSPHRASE), kdf).expect("create a sealed keystore");
    [plain, sealed]
        .iter()
        .map(|p| std::fs::read(p).expect("read back"))
        .collect()
}

fn node_file(p2p: Option<SocketAddr>) -> Vec<u8> {
    let f = NodeFile {
        api: addr(8080),
        token: "0123456789abcdef".into(),
        pid: 4242,
        network: NETWORK.name().into(),
        version: "0.1.0".into(),
        p2p,
        node_id: None,
    };
    serde_json::to_vec_pretty(&f).expect("serialize")
}

fn api_bodies() -> Vec<Vec<u8>> {
    let block_hex = hex_of(&chain(1)[0].encode());
    let tx_hex = hex_of(&spend().encode());
    let to = Address::from_pubkey(&[8; 32]).encode(NETWORK);
    let tx_json = serde_json::to_string(&TxJson::from_tx(&spend(), NETWORK)).expect("json");
    let txid = spend().txid().to_string();
    [
        format!("from=1&limit=5&hex=true\n{{\"hex\":\"{block_hex}\"}}"),
        format!("address={to}\n{{\"address\":\"{to}\",\"amount\":5,\"fee_rate\":2}}"),
        format!("{to}\n{{\"hex\":\"{tx_hex}\"}}"),
        format!("{txid}\n{tx_json}"),
        "5\n{\"id\":\"127.0.0.1:9000\"}".into(),
        "\n{\"nodes\":[\"127.0.0.1:9000\",\"[::1]:9001\",\"localhost:9002\"]}".into(),
        "\n{\"mining\":true,\"threads\":2}".into(),
        "\n{\"blocks\":3,\"threads\":1}".into(),
        "\n".into(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
