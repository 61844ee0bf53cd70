//! Wire protocol: round trips of every message through encode/decode and through the framing,
//! and the refusals (oversized, truncated, closed, non-canonical, over-limit, garbage).

use crate::common;

use chain_tui::core::address::Address;
use chain_tui::core::amount::Amount;
use chain_tui::core::block::{Block, BlockHeader};
use chain_tui::core::encode::{DecodeError, decode_canonical};
use chain_tui::core::hash::{BlockHash, MerkleRoot, Txid};
use chain_tui::core::pow::CompactTarget;
use chain_tui::core::tx::{OutPoint, Transaction, TxIn, TxOut};
use chain_tui::net::wire::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, duplex};

// ---------------------------------------------------------------------------------------------
// Strategies (bounded sizes).

fn arb_block_hash() -> impl Strategy<Value = BlockHash> {
    any::<[u8; 32]>().prop_map(BlockHash)
}

fn arb_txid() -> impl Strategy<Value = Txid> {
    any::<[u8; 32]>().prop_map(Txid)
}

fn arb_header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<u32>(),
        arb_block_hash(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(|(version, prev, m, time, bits, nonce)| BlockHeader {
            version,
            prev,
            merkle_root: MerkleRoot(m),
            time,
            bits: CompactTarget(bits),
            nonce,
        })
}

fn arb_tx() -> impl Strategy<Value = Transaction> {
    let input = (
        arb_txid(),
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(txid, vout, pubkey, s1, s2)| {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&s1);
            signature[32..].copy_from_slice(&s2);
            TxIn {
                prevout: OutPoint { txid, vout },
                pubkey,
                signature,
            }
        });
    let output = (any::<u64>(), any::<[u8; 20]>()).prop_map(|(a, ad)| TxOut {
        amount: Amount::from_units(a),
        address: Address::from_hash(ad),
    });
    (
        any::<u32>(),
        prop::collection::vec(input, 0..4),
        prop::collection::vec(output, 0..4),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(
            |(version, inputs, outputs, lock_height, memo)| Transaction {
                version,
                inputs,
                outputs,
                lock_height,
                memo,
            },
        )
}

fn arb_block() -> impl Strategy<Value = Block> {
    (arb_header(), prop::collection::vec(arb_tx(), 0..5))
        .prop_map(|(header, txs)| Block { header, txs })
}

/// Socket addresses as the wire carries them: postcard keeps an IPv6 address's ip and port,
/// not its flow info or scope id, so those are zero here.
fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        ))),
    ]
}

fn arb_hello() -> impl Strategy<Value = Hello> {
    (
        any::<u32>(),
        arb_block_hash(),
        any::<u64>(),
        arb_block_hash(),
        any::<[u8; 32]>(),
        prop::option::of(arb_addr()),
        "[ -~]{0,64}",
    )
        .prop_map(
            |(version, genesis, height, tip, work, listen, user_agent)| Hello {
                version,
                genesis,
                height,
                tip,
                work,
                listen,
                user_agent,
            },
        )
}

fn arb_message() -> impl Strategy<Value = Message> {
    use prop::collection::vec;
    prop_oneof![
        arb_hello().prop_map(Message::Hello),
        any::<u64>().prop_map(Message::Ping),
        any::<u64>().prop_map(Message::Pong),
        (vec(arb_block_hash(), 0..=MAX_LOCATOR), arb_block_hash())
            .prop_map(|(locator, stop)| Message::GetHeaders { locator, stop }),
        vec(arb_header(), 0..40).prop_map(Message::Headers),
        vec(arb_block_hash(), 0..40).prop_map(Message::GetBlocks),
        arb_block().prop_map(Message::Block),
        vec(arb_block_hash(), 0..40).prop_map(Message::NotFound),
        vec(arb_block_hash(), 0..40).prop_map(Message::InvBlocks),
        vec(arb_txid(), 0..40).prop_map(Message::InvTxs),
        vec(arb_txid(), 0..40).prop_map(Message::GetTxs),
        arb_tx().prop_map(Message::Tx),
        Just(Message::GetAddrs),
        vec(arb_addr(), 0..40).prop_map(Message::Addrs),
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Feed raw bytes into a stream, close it, and read one message back.
async fn read_raw(bytes: &[u8]) -> Result<Message, WireError> {
    let (mut a, mut b) = duplex(bytes.len().max(1) + 16);
    a.write_all(bytes).await.expect("write");
    drop(a);
    read_message(&mut b).await
}

fn hello(user_agent: String) -> Message {
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        genesis: BlockHash([1; 32]),
        height: 0,
        tip: BlockHash([1; 32]),
        work: [0; 32],
        listen: None,
        user_agent,
    })
}

fn header(prev: BlockHash, nonce: u64) -> BlockHeader {
    BlockHeader {
        version: 1,
        prev,
        merkle_root: MerkleRoot([9; 32]),
        time: 1,
        bits: CompactTarget(0x207f_ffff),
        nonce,
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips and garbage.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_transaction_round_trips_with_its_txid(tx in arb_tx()) {
        let bytes = tx.encode();
        let back: Transaction = decode_canonical(&bytes, 1 << 20).unwrap();
        prop_assert_eq!(&back, &tx);
        prop_assert_eq!(back.txid(), tx.txid());
    }

    #[test]
    fn transaction_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_canonical::<Transaction>(&bytes, 1 << 20);
    }

    /// The signature hash commits to everything but the signatures, and to the chain.
    #[test]
    fn sighash_ignores_signatures_only(tx in arb_tx(), s in any::<[u8; 32]>()) {
        let g = BlockHash([1; 32]);
        let mut t2 = tx.clone();
        for i in &mut t2.inputs {
            i.signature[..32].copy_from_slice(&s);
        }
        prop_assert_eq!(tx.sighash(&g), t2.sighash(&g));
        prop_assert_ne!(tx.sighash(&g), tx.sighash(&BlockHash([2; 32])));
        let mut t3 = tx.clone();
        t3.lock_height = t3.lock_height.wrapping_add(1);
        prop_assert_ne!(tx.sighash(&g), t3.sighash(&g));
    }

    #[test]
    fn encode_decode_round_trip(msg in arb_message()) {
        let bytes = msg.encode();
        prop_assert!(bytes.len() <= MAX_FRAME);
        prop_assert_eq!(Message::decode(&bytes), Ok(msg));
    }

    #[test]
    fn framed_round_trip_over_duplex(msgs in prop::collection::vec(arb_message(), 1..6),
                                     buf in 1usize..512) {
        // A small duplex buffer forces partial reads and writes, with writer and reader running
        // together.
        let got = rt().block_on(async {
            let (mut a, mut b) = duplex(buf);
            let to_send = msgs.clone();
            let writer = async move {
                for m in &to_send {
                    write_message(&mut a, m).await?;
                }
                drop(a);
                Ok::<_, WireError>(())
            };
            let reader = async {
                let mut got = Vec::new();
                loop {
                    match read_message(&mut b).await {
                        Ok(m) => got.push(m),
                        Err(e) => return (got, e),
                    }
                }
            };
            let (w, r) = tokio::join!(writer, reader);
            (w, r)
        });
        let (w, (received, end)) = got;
        prop_assert_eq!(w, Ok(()));
        prop_assert_eq!(received, msgs);
        prop_assert_eq!(end, WireError::Closed);
    }

    #[test]
    fn garbage_frames_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::decode(&body);
        let r = rt().block_on(read_raw(&frame(&body)));
        if let Err(e) = r {
            prop_assert!(e.is_misbehaviour(), "{e:?}");
        }
    }

    #[test]
    fn garbage_streams_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = rt().block_on(read_raw(&bytes));
    }

    #[test]
    fn mutated_messages_never_panic(msg in arb_message(), at in any::<prop::sample::Index>(),
                                    byte in any::<u8>()) {
        let mut bytes = msg.encode();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(m) = Message::decode(&bytes) {
            // Whatever decodes is canonical: it re-encodes to the same bytes.
            prop_assert_eq!(m.encode(), bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Framing refusals.

#[tokio::test]
async fn oversized_frame_is_refused_before_the_body() {
    let (mut a, mut b) = duplex(64);
    a.write_all(&((MAX_FRAME + 1) as u32).to_le_bytes())
        .await
        .unwrap();
    // The writer stays open and sends no body: the reader must answer from the header alone.
    let r = tokio::time::timeout(Duration::from_secs(5), read_message(&mut b))
        .await
        .expect("answered without waiting for the body");
    assert_eq!(
        r,
        Err(WireError::Oversized {
            len: MAX_FRAME + 1,
            max: MAX_FRAME
        })
    );
    assert!(r.unwrap_err().is_misbehaviour());
    drop(a);
}

#[tokio::test]
async fn largest_length_prefix_is_refused() {
    let (mut a, mut b) = duplex(64);
    a.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), read_message(&mut b))
        .await
        .expect("answered at once");
    assert!(matches!(r, Err(WireError::Oversized { .. })));
    drop(a);
}

#[tokio::test]
async fn frame_at_the_limit_is_read_then_judged_by_its_content() {
    // A full-size frame of garbage is accepted by the framing and refused by the decoder.
    let body = vec![0xffu8; MAX_FRAME];
    let (mut a, mut b) = duplex(64 * 1024);
    let writer = async move {
        a.write_all(&frame(&body)).await.unwrap();
    };
    let (_, r) = tokio::join!(writer, read_message(&mut b));
    assert!(matches!(r, Err(WireError::Decode(_))), "{r:?}");
}

#[tokio::test]
async fn cut_short_frames_are_truncated() {
    let full = encode_frame(&Message::Ping(300)).unwrap();
    for cut in 1..full.len() {
        let r = read_raw(&full[..cut]).await;
        assert_eq!(r, Err(WireError::Truncated), "cut at {cut}");
        assert!(WireError::Truncated.is_misbehaviour());
    }
    // A length with no body at all.
    assert_eq!(read_raw(&[5, 0, 0, 0]).await, Err(WireError::Truncated));
}

#[tokio::test]
async fn clean_eof_at_a_boundary_is_closed() {
    assert_eq!(read_raw(&[]).await, Err(WireError::Closed));
    let (mut a, mut b) = duplex(1024);
    write_message(&mut a, &Message::GetAddrs).await.unwrap();
    write_message(&mut a, &Message::Pong(7)).await.unwrap();
    drop(a);
    assert_eq!(read_message(&mut b).await, Ok(Message::GetAddrs));
    assert_eq!(read_message(&mut b).await, Ok(Message::Pong(7)));
    let end = read_message(&mut b).await;
    assert_eq!(end, Err(WireError::Closed));
    assert!(!WireError::Closed.is_misbehaviour());
}

#[tokio::test]
async fn io_errors_are_not_misbehaviour() {
    let (mut a, b) = duplex(16);
    drop(b);
    let r = write_message(&mut a, &Message::Ping(1)).await;
    assert!(matches!(r, Err(WireError::Io(_))), "{r:?}");
    assert!(!r.unwrap_err().is_misbehaviour());
}

// ---------------------------------------------------------------------------------------------
// Strict decoding.

#[tokio::test]
async fn trailing_bytes_are_refused() {
    let mut body = Message::Ping(1).encode();
    body.push(0);
    let e = Message::decode(&body).unwrap_err();
    assert_eq!(e, WireError::Decode(DecodeError::TrailingBytes(1)));
    assert!(e.is_misbehaviour());
    assert_eq!(read_raw(&frame(&body)).await, Err(e));
}

#[tokio::test]
async fn non_canonical_varint_is_refused() {
    // Ping(5) is [variant 1, 5]; the same number as an overlong varint is [1, 0x85, 0x00].
    assert_eq!(Message::Ping(5).encode(), vec![1, 5]);
    let e = Message::decode(&[1, 0x85, 0x00]).unwrap_err();
    assert!(matches!(e, WireError::Decode(_)), "{e:?}");
    assert!(e.is_misbehaviour());
    // An overlong enum tag too.
    assert!(matches!(
        Message::decode(&[0x81, 0x00, 5]),
        Err(WireError::Decode(_))
    ));
    assert!(matches!(
        read_raw(&frame(&[1, 0x85, 0x00])).await,
        Err(WireError::Decode(_))
    ));
}

#[test]
fn empty_and_unknown_variants_are_refused() {
    assert!(matches!(Message::decode(&[]), Err(WireError::Decode(_))));
    assert!(matches!(Message::decode(&[14]), Err(WireError::Decode(_))));
    assert!(matches!(
        Message::decode(&[0xff]),
        Err(WireError::Decode(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Count limits: checked when decoding, and refused before sending.

fn assert_limit(msg: Message, what: &str, count: usize, max: usize) {
    match Message::decode(&msg.encode()) {
        Err(WireError::Limit {
            what: w,
            count: c,
            max: m,
        }) => assert_eq!((w, c, m), (what, count, max)),
        other => panic!(
            "{}: expected a {what} limit error, got {other:?}",
            msg.kind()
        ),
    }
    assert!(msg.check_limits().unwrap_err().is_misbehaviour());
    assert!(matches!(encode_frame(&msg), Err(WireError::Limit { .. })));
}

#[test]
fn over_limit_counts_are_refused() {
    let h = BlockHash([5; 32]);
    assert_limit(
        Message::Headers(vec![header(h, 0); MAX_HEADERS + 1]),
        "headers",
        2001,
        MAX_HEADERS,
    );
    assert_limit(
        Message::GetHeaders {
            locator: vec![h; MAX_LOCATOR + 1],
            stop: h,
        },
        "locator",
        65,
        MAX_LOCATOR,
    );
    assert_limit(
        Message::InvBlocks(vec![h; MAX_INV + 1]),
        "inv_blocks",
        1001,
        MAX_INV,
    );
    assert_limit(
        Message::InvTxs(vec![Txid([1; 32]); MAX_INV + 1]),
        "inv_txs",
        1001,
        MAX_INV,
    );
    assert_limit(
        Message::GetTxs(vec![Txid([1; 32]); MAX_INV + 1]),
        "get_txs",
        1001,
        MAX_INV,
    );
    assert_limit(
        Message::GetBlocks(vec![h; MAX_GET_BLOCKS + 1]),
        "get_blocks",
        MAX_GET_BLOCKS + 1,
        MAX_GET_BLOCKS,
    );
    assert_limit(
        Message::NotFound(vec![h; MAX_GET_BLOCKS + 1]),
        "not_found",
        MAX_GET_BLOCKS + 1,
        MAX_GET_BLOCKS,
    );
    let addr: SocketAddr = "10.0.0.1:8333".parse().unwrap();
    assert_limit(
        Message::Addrs(vec![addr; MAX_ADDRS + 1]),
        "addrs",
        1001,
        MAX_ADDRS,
    );
    assert_limit(
        hello("x".repeat(MAX_USER_AGENT + 1)),
        "user_agent",
        65,
        MAX_USER_AGENT,
    );
}

#[test]
fn counts_at_the_limit_are_accepted() {
    let h = BlockHash([5; 32]);
    let ok = [
        Message::Headers(vec![header(h, 0); MAX_HEADERS]),
        Message::GetHeaders {
            locator: vec![h; MAX_LOCATOR],
            stop: h,
        },
        Message::InvBlocks(vec![h; MAX_INV]),
        Message::InvTxs(vec![Txid([1; 32]); MAX_INV]),
        Message::GetTxs(vec![Txid([1; 32]); MAX_INV]),
        Message::GetBlocks(vec![h; MAX_GET_BLOCKS]),
        Message::NotFound(vec![h; MAX_GET_BLOCKS]),
        Message::Addrs(vec!["[::1]:1".parse().unwrap(); MAX_ADDRS]),
        hello("x".repeat(MAX_USER_AGENT)),
    ];
    for m in ok {
        let bytes = m.encode();
        assert!(bytes.len() <= MAX_FRAME, "{}", m.kind());
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(&m), "{}", m.kind());
    }
}

#[tokio::test]
async fn over_limit_message_on_the_wire_is_misbehaviour() {
    let body = Message::InvTxs(vec![Txid([1; 32]); MAX_INV + 1]).encode();
    let e = read_raw(&frame(&body)).await.unwrap_err();
    assert!(
        matches!(
            e,
            WireError::Limit {
                what: "inv_txs",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_misbehaviour());
}

#[test]
fn user_agent_must_be_printable_ascii() {
    for bad in [
        "bell\u{7}",
        "new\nline",
        "tab\t",
        "caf\u{e9}",
        "\u{202e}rtl",
    ] {
        let m = hello(bad.to_string());
        assert_eq!(
            Message::decode(&m.encode()),
            Err(WireError::BadUserAgent),
            "{bad:?}"
        );
        assert!(WireError::BadUserAgent.is_misbehaviour());
    }
    assert!(hello(String::new()).check_limits().is_ok());
    assert!(
        hello("chain-tui/0.1.0 (linux)".into())
            .check_limits()
            .is_ok()
    );
}

#[test]
fn a_full_size_block_fits_in_a_frame() {
    // One transaction carrying a memo of 1 MB: over consensus limits, but the framing must
    // still carry anything up to a 1 MB block with room to spare.
    let tx = Transaction {
        version: 1,
        inputs: vec![],
        outputs: vec![],
        lock_height: 0,
        memo: vec![0xab; 1_000_000],
    };
    let m = Message::Block(Block {
        header: header(BlockHash::ZERO, 0),
        txs: vec![tx],
    });
    let f = encode_frame(&m).unwrap();
    assert!(f.len() < MAX_FRAME);
    assert_eq!(Message::decode(&f[4..]), Ok(m));
}

#[test]
fn kinds_name_every_variant() {
    let names: Vec<&str> = [
        hello(String::new()),
        Message::Ping(0),
        Message::Pong(0),
        Message::GetHeaders {
            locator: vec![],
            stop: BlockHash::ZERO,
        },
        Message::Headers(vec![]),
        Message::GetBlocks(vec![]),
        Message::Block(Block {
            header: header(BlockHash::ZERO, 0),
            txs: vec![],
        }),
        Message::NotFound(vec![]),
        Message::InvBlocks(vec![]),
        Message::InvTxs(vec![]),
        Message::GetTxs(vec![]),
        Message::Tx(Transaction {
            version: 1,
            inputs: vec![],
            outputs: vec![],
            lock_height: 0,
            memo: vec![],
        }),
        Message::GetAddrs,
        Message::Addrs(vec![]),
    ]
    .iter()
    .map(Message::kind)
    .collect();
    assert_eq!(
        names,
        [
            "hello",
            "ping",
            "pong",
            "get_headers",
            "headers",
            "get_blocks",
            "block",
            "not_found",
            "inv_blocks",
            "inv_txs",
            "get_txs",
            "tx",
            "get_addrs",
            "addrs"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Header chains.

#[test]
fn headers_connect_on_a_real_chain() {
    let mut tc = common::TestChain::new();
    let to = common::address(&common::key(1));
    let tip = tc.mine(6, to);
    let reader = tc.chain.store().read().unwrap();
    let headers: Vec<BlockHeader> = (0..=tip.height)
        .map(|h| {
            let hash = reader.hash_at(h).unwrap().expect("active block");
            reader.meta(&hash).unwrap().expect("meta").header
        })
        .collect();
    assert_eq!(headers.len(), 7);
    assert!(headers_connect(&headers));
    assert!(headers_connect(&headers[2..]));
    // The same headers survive the wire.
    let m = Message::Headers(headers.clone());
    assert_eq!(Message::decode(&m.encode()), Ok(m));

    let mut swapped = headers.clone();
    swapped.swap(3, 4);
    assert!(!headers_connect(&swapped));
    let mut gap = headers.clone();
    gap.remove(3);
    assert!(!headers_connect(&gap));
    let mut reversed = headers;
    reversed.reverse();
    assert!(!headers_connect(&reversed));
}
