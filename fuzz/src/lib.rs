//! The bodies of chain-tui's fuzz targets (one function per target in `fuzz_targets/`) and the
//! seed inputs they start from ([`seeds`]).
//!
//! Every target feeds untrusted bytes to one decoder of the main crate, through its public
//! library functions only, and checks that it returns (an error is fine, a panic is a bug).
//! Where a canonical encoding exists, a decoded value must re-encode to exactly the bytes it
//! came from; where the format is not canonical (JSON), the value must survive a round trip.
//! Nothing here opens a socket or dials an address, and files are touched only inside a
//! temporary directory (and the corpus directory, when asked to write seeds).

use chain_tui::api::NodeFile;
use chain_tui::api::routes::fuzz_request_bodies;
use chain_tui::api::views::TxJson;
use chain_tui::core::address::Address;
use chain_tui::core::block::{Block, BlockHeader, HEADER_SIZE};
use chain_tui::core::encode::{decode_canonical, encode};
use chain_tui::core::merkle::{merkle_root, merkle_root_checked};
use chain_tui::core::params::Network;
use chain_tui::core::rules::{check_block_sanity, check_tx_sanity, tx_sig_checks};
use chain_tui::core::tx::Transaction;
use chain_tui::demo::scenario::Scenario;
use chain_tui::net::wire::{Message, encode_frame, read_message};
use chain_tui::node::chainfile::parse_chain;
use chain_tui::node::mempool::MAX_TX_SIZE;
use chain_tui::wallet::keystore::Keystore;
use std::future::Future;
use std::task::{Context, Poll, Waker};

pub mod seeds;

/// The passphrase the keystore target decrypts with (and its encrypted seeds are sealed with).
pub const PASSPHRASE: &str = "fuzz passphrase";
/// The network the chain-file and API targets read for (their seeds are regtest data).
pub const NETWORK: Network = Network::Regtest;
/// Highest KDF costs the keystore target lets through: the keystore accepts up to 1 GiB and 64
/// passes from a file, which is right for a real wallet and far too slow for a fuzzer. Inputs
/// over these are skipped (the cost bounds themselves are checked before any derivation).
const FUZZ_MAX_M_COST: u64 = 64;
const FUZZ_MAX_T_COST: u64 = 2;
const FUZZ_MAX_P_COST: u64 = 2;

/// A wire message body (`Message::decode`): canonical, within the limits, re-encodes to itself.
pub fn wire_message(data: &[u8]) {
    if let Ok(msg) = Message::decode(data) {
        assert_eq!(
            msg.encode(),
            data,
            "a decoded message re-encodes to its bytes"
        );
        let frame = encode_frame(&msg).expect("a decoded message is within every limit");
        assert_eq!(&frame[4..], data);
        let _ = msg.kind();
    }
}

/// Drive a future that never waits (reading from a byte slice) to completion.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("reading from a byte slice never waits"),
    }
}

/// A byte stream of frames (`read_message`): every frame read re-frames to the bytes it used.
pub fn wire_frame(data: &[u8]) {
    let mut rest = data;
    loop {
        let before = rest;
        match ready(read_message(&mut rest)) {
            Ok(msg) => {
                let used = before.len() - rest.len();
                let frame = encode_frame(&msg).expect("a message read is within every limit");
                assert_eq!(frame, before[..used], "a frame re-encodes to its bytes");
            }
            Err(_) => break,
        }
    }
}

/// A block header: the fixed 88-byte form and its canonical postcard encoding.
pub fn header(data: &[u8]) {
    if let Some(fixed) = data.first_chunk::<HEADER_SIZE>() {
        let h = BlockHeader::from_bytes(fixed);
        assert_eq!(&h.to_bytes(), fixed);
        let _ = h.hash();
    }
    if let Ok(h) = decode_canonical::<BlockHeader>(data, 2 * HEADER_SIZE) {
        assert_eq!(encode(&h), data);
    }
}

/// A block (`Block::decode`, as `submit_block`, the chain file and the wire read it), then its
/// context-free consensus checks.
pub fn block(data: &[u8]) {
    let params = NETWORK.params();
    if let Ok(b) = Block::decode(data, params.max_block_size) {
        assert_eq!(b.encode(), data, "a decoded block re-encodes to its bytes");
        let txids = b.txids();
        let _ = (merkle_root(&txids), merkle_root_checked(&txids));
        let _ = (b.hash(), b.coinbase_height());
        let _ = check_block_sanity(&b, data.len(), params);
        for tx in &b.txs {
            let _ = check_tx_sanity(tx);
        }
    }
}

/// A transaction (canonical postcard, at most `MAX_TX_SIZE`), its context-free checks and its
/// JSON form (`TxJson`, as the API shows and takes it), which must give the same transaction.
pub fn transaction(data: &[u8]) {
    if let Ok(tx) = decode_canonical::<Transaction>(data, MAX_TX_SIZE) {
        assert_eq!(
            tx.encode(),
            data,
            "a decoded transaction re-encodes to its bytes"
        );
        assert_eq!(tx.size(), data.len());
        let _ = (tx.txid(), tx.output_total(), check_tx_sanity(&tx));
        let _ = tx_sig_checks(&tx, NETWORK.params());
        let json = TxJson::from_tx(&tx, NETWORK);
        let back = json
            .to_tx(NETWORK)
            .expect("the JSON form of a decoded transaction reads back");
        assert_eq!(back, tx, "JSON round trip");
    }
}

/// A chain file (`chain import`, `POST /import`): on success the blocks re-encode, in the
/// file's layout, to exactly the file's bytes.
pub fn chain_file(data: &[u8]) {
    if let Ok(blocks) = parse_chain(data, "fuzz input", NETWORK) {
        let mut again = data[..52].to_vec();
        for b in &blocks {
            let bytes = b.encode();
            again.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            again.extend_from_slice(&bytes);
        }
        assert_eq!(again, data, "a chain file re-encodes to its bytes");
    }
}

/// Whether a keystore file asks for more key-derivation work than a fuzzer should do.
fn too_costly(data: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return false;
    };
    let over = |field: &str, max: u64| {
        v.get("encryption")
            .and_then(|e| e.get(field))
            .and_then(serde_json::Value::as_u64)
            .is_some_and(|n| n > max)
    };
    over("m_cost", FUZZ_MAX_M_COST)
        || over("t_cost", FUZZ_MAX_T_COST)
        || over("p_cost", FUZZ_MAX_P_COST)
}

/// A keystore file: parsed without a passphrase, then parsed and decrypted with [`PASSPHRASE`].
pub fn keystore(data: &[u8]) {
    if too_costly(data) {
        return;
    }
    for pass in [None, Some(PASSPHRASE)] {
        if let Ok(store) = Keystore::parse_bytes(data, pass) {
            assert!(!store.keys().is_empty(), "a keystore always holds a key");
            for k in store.keys() {
                let _ = Address::from_pubkey(&k.public_key());
            }
            let _ = (store.is_encrypted(), store.kdf_params());
        }
    }
}

/// A demo scenario (TOML), checked as `demo --scenario` checks it before running.
pub fn scenario(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = Scenario::parse(text) {
        let n = s.highest_node();
        let _ = (s.check_nodes(n.saturating_add(1)), s.check_nodes(1));
    }
}

/// `node.json` (what the CLI reads to find a running node): it must survive a JSON round trip.
pub fn node_file(data: &[u8]) {
    if let Ok(f) = serde_json::from_slice::<NodeFile>(data) {
        let again = serde_json::to_vec(&f).expect("a node file serializes");
        let back: NodeFile = serde_json::from_slice(&again).expect("and reads back");
        assert_eq!(back, f, "node.json round trip");
    }
}

/// The API's request bodies and query strings. The first line of the input is used as a query
/// string (and as a path segment: block id, txid, address), the rest as a JSON body; both go
/// to every body and query type the routes accept.
pub fn api_bodies(data: &[u8]) {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let query = String::from_utf8_lossy(first);
    let _ = fuzz_request_bodies(body, &query);
    for net in [Network::Regtest, Network::Devnet] {
        if let Ok(a) = Address::decode(&query, net) {
            assert_eq!(
                Address::decode(&a.encode(net), net),
                Ok(a),
                "address round trip"
            );
        }
    }
}
