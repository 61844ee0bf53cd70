//! The wire protocol: the messages peers exchange, their canonical postcard encoding, the limits
//! every decoded message must respect, and the length-prefixed framing on a byte stream.
//!
//! A frame is a `u32` little-endian length followed by that many bytes of one canonically
//! encoded [`Message`]. The length is checked against [`MAX_FRAME`] before anything of the body
//! is read or allocated, and the body buffer grows only as bytes actually arrive, so a peer
//! cannot make us reserve memory it does not send.
//!
//! Decoding is strict ([`crate::core::encode::decode_canonical`]): no trailing bytes, and the
//! bytes must be exactly the re-encoding of the value. After decoding, [`Message::check_limits`]
//! enforces the per-message count limits. [`WireError::is_misbehaviour`] tells a protocol
//! violation (ban-worthy) from a failing link.
//!
//! The framing works over any [`AsyncRead`] / [`AsyncWrite`] (a QUIC stream in practice,
//! `tokio::io::duplex` in tests). [`read_message`] is not cancellation safe: dropping it midway
//! loses the bytes already read, so read from a dedicated task or loop, not inside a `select!`
//! that may drop it. Timeouts are the caller's business (`tokio::time::timeout`).

use super::compact::{CompactBlock, MAX_COMPACT_TXS};
use crate::core::block::{Block, BlockHeader};
use crate::core::encode::{DecodeError, decode_canonical, encode};
use crate::core::hash::{BlockHash, Txid};
use crate::core::tx::Transaction;
use serde::{Deserialize, Serialize};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The newest protocol version this build speaks. Two ends settle on the newest both speak
/// when the connection is made (its ALPN name, see [`crate::net::transport`]), and each
/// announces that version in its [`Hello`]. Version 2 adds compact blocks
/// ([`Message::CompactBlock`], [`Message::GetBlockTxs`], [`Message::BlockTxs`]); version 1
/// peers get full blocks.
pub const PROTOCOL_VERSION: u32 = 2;
/// Largest encoded message (frame body); a block is at most 1 MB.
pub const MAX_FRAME: usize = 2 * 1024 * 1024;
/// Most headers in one [`Message::Headers`].
pub const MAX_HEADERS: usize = 2000;
/// Most hashes in a [`Message::GetHeaders`] locator.
pub const MAX_LOCATOR: usize = 64;
/// Most hashes in one [`Message::GetBlocks`] (and so in one [`Message::NotFound`]).
pub const MAX_GET_BLOCKS: usize = 128;
/// Most hashes in one [`Message::InvBlocks`], [`Message::InvTxs`] or [`Message::GetTxs`].
pub const MAX_INV: usize = 1000;
/// Most addresses in one [`Message::Addrs`].
pub const MAX_ADDRS: usize = 1000;
/// Longest user agent, in bytes (printable ASCII only).
pub const MAX_USER_AGENT: usize = 64;

/// Size of the frame length prefix.
const LEN_PREFIX: usize = 4;
/// The body buffer grows by at most this much per read, whatever length the frame announces.
const READ_CHUNK: usize = 64 * 1024;

/// The first message each side sends on a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The sender's genesis hash: peers on another network are dropped.
    pub genesis: BlockHash,
    /// Height of the sender's tip.
    pub height: u64,
    /// The sender's tip.
    pub tip: BlockHash,
    /// Big-endian cumulative work of the sender's tip.
    pub work: [u8; 32],
    /// Where the sender accepts connections, if anywhere.
    pub listen: Option<SocketAddr>,
    /// Free text naming the software (printable ASCII, at most [`MAX_USER_AGENT`] bytes).
    pub user_agent: String,
}

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Hello(Hello),
    /// Liveness probe; answered with a [`Message::Pong`] carrying the same nonce.
    Ping(u64),
    Pong(u64),
    /// Headers after the first locator hash we share, up to `stop` (or MAX_HEADERS).
    GetHeaders {
        locator: Vec<BlockHash>,
        stop: BlockHash,
    },
    /// Consecutive headers, each the parent of the next (see [`headers_connect`]).
    Headers(Vec<BlockHeader>),
    /// Full blocks by hash, answered with [`Message::Block`]s and a [`Message::NotFound`].
    GetBlocks(Vec<BlockHash>),
    Block(Block),
    /// Requested blocks the sender does not have.
    NotFound(Vec<BlockHash>),
    /// A new tip / blocks announced by hash.
    InvBlocks(Vec<BlockHash>),
    /// Mempool transactions announced by txid.
    InvTxs(Vec<Txid>),
    /// Transactions by txid, answered with [`Message::Tx`]s (unknown ones are left out).
    GetTxs(Vec<Txid>),
    Tx(Transaction),
    /// Ask for addresses of other peers.
    GetAddrs,
    Addrs(Vec<SocketAddr>),
    /// (Version 2.) A new block, compactly: header, coinbase and short transaction ids.
    CompactBlock(CompactBlock),
    /// (Version 2.) The transactions at these positions of a block we were sent compactly.
    GetBlockTxs {
        block: BlockHash,
        indexes: Vec<u32>,
    },
    /// (Version 2.) The answer to [`Message::GetBlockTxs`]: the transactions in the order
    /// asked (empty if the block is unknown to the sender).
    BlockTxs {
        block: BlockHash,
        txs: Vec<Transaction>,
    },
}

/// Why a message could not be read, written or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The stream ended cleanly at a frame boundary.
    #[error("stream closed")]
    Closed,
    /// The link failed (reset, refused write, ...).
    #[error("i/o error: {0}")]
    Io(String),
    /// A frame announced (or a message needs) more than the frame limit.
    #[error("frame of {len} bytes is over the limit of {max}")]
    Oversized { len: usize, max: usize },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The frame body is not exactly one canonically encoded message.
    #[error("undecodable message: {0}")]
    Decode(DecodeError),
    /// A message carries more items than the protocol allows.
    #[error("{what}: {count} items, over the limit of {max}")]
    Limit {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// The user agent holds characters other than printable ASCII.
    #[error("user agent is not printable ASCII")]
    BadUserAgent,
}

// Not `#[from]`: the message already carries the inner error; a source would print it twice.
impl From<DecodeError> for WireError {
    fn from(e: DecodeError) -> Self {
        WireError::Decode(e)
    }
}

impl WireError {
    /// Whether the peer broke the protocol (ban-worthy) rather than the link failing.
    pub fn is_misbehaviour(&self) -> bool {
        match self {
            WireError::Closed | WireError::Io(_) => false,
            WireError::Oversized { .. }
            | WireError::Truncated
            | WireError::Decode(_)
            | WireError::Limit { .. }
            | WireError::BadUserAgent => true,
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e.to_string())
    }
}

fn limit(what: &'static str, count: usize, max: usize) -> Result<(), WireError> {
    if count > max {
        Err(WireError::Limit { what, count, max })
    } else {
        Ok(())
    }
}

impl Message {
    /// Short name for logs/metrics ("hello", "block", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Ping(_) => "ping",
            Message::Pong(_) => "pong",
            Message::GetHeaders { .. } => "get_headers",
            Message::Headers(_) => "headers",
            Message::GetBlocks(_) => "get_blocks",
            Message::Block(_) => "block",
            Message::NotFound(_) => "not_found",
            Message::InvBlocks(_) => "inv_blocks",
            Message::InvTxs(_) => "inv_txs",
            Message::GetTxs(_) => "get_txs",
            Message::Tx(_) => "tx",
            Message::GetAddrs => "get_addrs",
            Message::Addrs(_) => "addrs",
            Message::CompactBlock(_) => "compact_block",
            Message::GetBlockTxs { .. } => "get_block_txs",
            Message::BlockTxs { .. } => "block_txs",
        }
    }

    /// Count limits (headers, locator, inv, addrs, user agent length, get_blocks) — checked after
    /// decoding. The user agent must also be printable ASCII.
    pub fn check_limits(&self) -> Result<(), WireError> {
        match self {
            Message::Hello(h) => {
                limit("user_agent", h.user_agent.len(), MAX_USER_AGENT)?;
                if !h.user_agent.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                    return Err(WireError::BadUserAgent);
                }
                Ok(())
            }
            Message::GetHeaders { locator, .. } => limit("locator", locator.len(), MAX_LOCATOR),
            Message::Headers(h) => limit("headers", h.len(), MAX_HEADERS),
            Message::GetBlocks(v) => limit("get_blocks", v.len(), MAX_GET_BLOCKS),
            Message::NotFound(v) => limit("not_found", v.len(), MAX_GET_BLOCKS),
            Message::InvBlocks(v) => limit("inv_blocks", v.len(), MAX_INV),
            Message::InvTxs(v) => limit("inv_txs", v.len(), MAX_INV),
            Message::GetTxs(v) => limit("get_txs", v.len(), MAX_INV),
            Message::Addrs(v) => limit("addrs", v.len(), MAX_ADDRS),
            Message::CompactBlock(c) => limit("compact_block", c.tx_count(), MAX_COMPACT_TXS),
            Message::GetBlockTxs { indexes, .. } => {
                limit("get_block_txs", indexes.len(), MAX_COMPACT_TXS)
            }
            Message::BlockTxs { txs, .. } => limit("block_txs", txs.len(), MAX_COMPACT_TXS),
            Message::Ping(_)
            | Message::Pong(_)
            | Message::Block(_)
            | Message::Tx(_)
            | Message::GetAddrs => Ok(()),
        }
    }

    /// The first protocol version with this message: a peer that settled on an older one
    /// must not send it (and is not sent it).
    pub fn min_protocol(&self) -> u32 {
        match self {
            Message::CompactBlock(_) | Message::GetBlockTxs { .. } | Message::BlockTxs { .. } => 2,
            _ => 1,
        }
    }

    /// Canonical postcard bytes (the frame body, without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decode one canonical message of at most [`MAX_FRAME`] bytes, then check its limits.
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        let msg: Message = decode_canonical(bytes, MAX_FRAME)?;
        msg.check_limits()?;
        Ok(msg)
    }
}

/// Whether `headers` form a chain: each header's `prev` is the hash of the header before it.
/// An empty or one-header list connects trivially; whether the first header connects to a
/// known block is the caller's question.
pub fn headers_connect(headers: &[BlockHeader]) -> bool {
    headers.windows(2).all(|w| w[1].prev == w[0].hash())
}

/// A whole frame (length prefix and body) for `msg`, ready to send; lets one encoding be sent
/// to many peers with [`write_frame`]. Refuses messages the peer would refuse (over a limit
/// or over [`MAX_FRAME`]).
pub fn encode_frame(msg: &Message) -> Result<Vec<u8>, WireError> {
    msg.check_limits()?;
    let body = msg.encode();
    let len = u32::try_from(body.len())
        .ok()
        .filter(|_| body.len() <= MAX_FRAME)
        .ok_or(WireError::Oversized {
            len: body.len(),
            max: MAX_FRAME,
        })?;
    let mut frame = Vec::with_capacity(LEN_PREFIX + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Write an already encoded frame (from [`encode_frame`]) and flush.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> Result<(), WireError> {
    let mut rest = frame;
    while !rest.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, rest)).await?;
        if n == 0 {
            return Err(WireError::Io("stream refused to accept more bytes".into()));
        }
        rest = rest.get(n..).unwrap_or_default();
    }
    poll_fn(|cx| Pin::new(&mut *w).poll_flush(cx)).await?;
    Ok(())
}

/// Frame and write one message, then flush. Messages over a limit are refused before anything
/// is written.
pub async fn write_message<W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &Message,
) -> Result<(), WireError> {
    let frame = encode_frame(msg)?;
    write_frame(w, &frame).await
}

/// Read into `buf` once; returns how many bytes arrived (0 at end of stream).
async fn read_some<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize, WireError> {
    let mut rb = ReadBuf::new(buf);
    poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, &mut rb)).await?;
    Ok(rb.filled().len())
}

/// Read one frame and decode its message.
///
/// End of stream before the first byte of a frame is [`WireError::Closed`]; anywhere inside a
/// frame it is [`WireError::Truncated`]. A length over [`MAX_FRAME`] is refused as
/// [`WireError::Oversized`] before any of the body is read.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Message, WireError> {
    read_message_sized(r).await.map(|(m, _)| m)
}

/// [`read_message`], with the bytes the frame took (length prefix included).
pub async fn read_message_sized<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<(Message, usize), WireError> {
    let mut prefix = [0u8; LEN_PREFIX];
    let mut got = 0;
    while got < LEN_PREFIX {
        let n = read_some(r, &mut prefix[got..]).await?;
        if n == 0 {
            return Err(if got == 0 {
                WireError::Closed
            } else {
                WireError::Truncated
            });
        }
        got += n;
    }
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(WireError::Oversized {
            len,
            max: MAX_FRAME,
        });
    }
    // Grow the buffer only as data arrives, so an announced length costs nothing by itself.
    let mut body = Vec::with_capacity(len.min(READ_CHUNK));
    while body.len() < len {
        let start = body.len();
        let want = (len - start).min(READ_CHUNK);
        body.resize(start + want, 0);
        let n = read_some(r, &mut body[start..]).await?;
        body.truncate(start + n);
        if n == 0 {
            return Err(WireError::Truncated);
        }
    }
    Message::decode(&body).map(|m| (m, LEN_PREFIX + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::MerkleRoot;
    use crate::core::pow::CompactTarget;
    use std::collections::HashSet;
    use std::task::{Context, Poll};

    fn header(prev: BlockHash, nonce: u64) -> BlockHeader {
        BlockHeader {
            version: 1,
            prev,
            merkle_root: MerkleRoot([7; 32]),
            time: 1_700_000_000 + nonce,
            bits: CompactTarget(0x207f_ffff),
            nonce,
        }
    }

    fn samples() -> Vec<Message> {
        let h = header(BlockHash::ZERO, 1);
        let tx = Transaction {
            version: 1,
            inputs: vec![],
            outputs: vec![],
            lock_height: 3,
            memo: b"memo".to_vec(),
        };
        vec![
            Message::Hello(Hello {
                version: PROTOCOL_VERSION,
                genesis: BlockHash([1; 32]),
                height: 5,
                tip: BlockHash([2; 32]),
                work: [3; 32],
                listen: Some("127.0.0.1:9000".parse().unwrap()),
                user_agent: "chain-tui/0.1.0".into(),
            }),
            Message::Ping(1),
            Message::Pong(1),
            Message::GetHeaders {
                locator: vec![BlockHash([4; 32])],
                stop: BlockHash::ZERO,
            },
            Message::Headers(vec![h]),
            Message::GetBlocks(vec![h.hash()]),
            Message::Block(Block {
                header: h,
                txs: vec![tx.clone()],
            }),
            Message::NotFound(vec![h.hash()]),
            Message::InvBlocks(vec![h.hash()]),
            Message::InvTxs(vec![tx.txid()]),
            Message::GetTxs(vec![tx.txid()]),
            Message::Tx(tx),
            Message::GetAddrs,
            Message::Addrs(vec!["[::1]:1".parse().unwrap()]),
        ]
    }

    #[test]
    fn kinds_are_distinct_and_every_sample_round_trips() {
        let msgs = samples();
        let kinds: HashSet<_> = msgs.iter().map(Message::kind).collect();
        assert_eq!(kinds.len(), msgs.len());
        for m in msgs {
            assert_eq!(
                Message::decode(&m.encode()).as_ref(),
                Ok(&m),
                "{}",
                m.kind()
            );
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let at = |n: usize| Message::InvBlocks(vec![BlockHash::ZERO; n]);
        assert!(at(MAX_INV).check_limits().is_ok());
        assert_eq!(
            at(MAX_INV + 1).check_limits(),
            Err(WireError::Limit {
                what: "inv_blocks",
                count: MAX_INV + 1,
                max: MAX_INV
            })
        );
        let hello = |ua: &str| {
            Message::Hello(Hello {
                version: 1,
                genesis: BlockHash::ZERO,
                height: 0,
                tip: BlockHash::ZERO,
                work: [0; 32],
                listen: None,
                user_agent: ua.into(),
            })
        };
        assert!(hello(&"a".repeat(MAX_USER_AGENT)).check_limits().is_ok());
        assert!(matches!(
            hello(&"a".repeat(MAX_USER_AGENT + 1)).check_limits(),
            Err(WireError::Limit { .. })
        ));
        assert_eq!(hello("a\nb").check_limits(), Err(WireError::BadUserAgent));
        assert_eq!(hello("é").check_limits(), Err(WireError::BadUserAgent));
        // A message over a limit is refused before being sent.
        assert!(matches!(
            encode_frame(&at(MAX_INV + 1)),
            Err(WireError::Limit { .. })
        ));
    }

    #[test]
    fn headers_connect_checks_links() {
        let a = header(BlockHash::ZERO, 1);
        let b = header(a.hash(), 2);
        let c = header(b.hash(), 3);
        assert!(headers_connect(&[]));
        assert!(headers_connect(&[a]));
        assert!(headers_connect(&[a, b, c]));
        assert!(!headers_connect(&[a, c, b]));
        assert!(!headers_connect(&[a, c]));
    }

    /// Hands out its bytes one at a time and panics if read past them: proves the reader
    /// never asks for more than it needs.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let pos = self.pos;
            assert!(pos < self.data.len(), "read past the data it was given");
            let byte = self.data[pos];
            buf.put_slice(&[byte]);
            self.pos += 1;
            Poll::Ready(Ok(()))
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn reads_byte_by_byte_and_stops_at_oversized_prefix() {
        for m in samples() {
            let mut r = Trickle {
                data: encode_frame(&m).unwrap(),
                pos: 0,
            };
            assert_eq!(run(read_message(&mut r)), Ok(m));
        }
        let mut r = Trickle {
            data: ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec(),
            pos: 0,
        };
        assert_eq!(
            run(read_message(&mut r)),
            Err(WireError::Oversized {
                len: MAX_FRAME + 1,
                max: MAX_FRAME
            })
        );
        let mut r = Trickle {
            data: u32::MAX.to_le_bytes().to_vec(),
            pos: 0,
        };
        assert!(matches!(
            run(read_message(&mut r)),
            Err(WireError::Oversized { .. })
        ));
    }

    #[test]
    fn misbehaviour_classification() {
        assert!(!WireError::Closed.is_misbehaviour());
        assert!(!WireError::Io("reset".into()).is_misbehaviour());
        assert!(WireError::Truncated.is_misbehaviour());
        assert!(WireError::BadUserAgent.is_misbehaviour());
        assert!(WireError::Decode(DecodeError::TrailingBytes(1)).is_misbehaviour());
        assert!(
            WireError::Oversized {
                len: MAX_FRAME + 1,
                max: MAX_FRAME
            }
            .is_misbehaviour()
        );
    }
}
