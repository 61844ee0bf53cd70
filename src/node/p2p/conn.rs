//! One peer connection: the `Hello` exchange, a writer fed by a queue bounded in bytes, and a
//! reader that answers the peer's requests for data itself and forwards everything else to
//! the manager.
//!
//! Answering requests here, not in the manager, is what keeps one peer from starving the
//! others: a peer that floods `GetHeaders` waits behind its own requests (each request type
//! has its own rate, and a request beyond it waits instead of being answered early), while
//! every other peer's requests are answered by their own tasks. An answer waits for room in
//! the send queue, so a peer that asks and does not read stops being read from; one that
//! reads nothing for [`NOT_READING`] is disconnected. Nothing a peer can do makes the queue
//! hold more than [`HARD_QUEUE_BYTES`].
//!
//! Messages the node did not ask for (announcements, pings, address lists) share one budget
//! per peer; a peer that exceeds it by far is flooding and is banned. Blocks and transactions
//! are never counted against it: the manager only accepts those it asked for, so how many
//! arrive is bounded by what it asked, however fast the peer sends them.

use super::limits::{Bucket, counts_as_unsolicited};
use super::time::LocalTime;
use crate::core::hash::BlockHash;
use crate::core::pow::Work;
use crate::net::DisconnectReason;
use crate::net::identity::NodeId;
use crate::net::transport::Connection;
use crate::net::wire::{self, Hello, MAX_HEADERS, Message, WireError};
use crate::node::NodeHandle;
use crate::storage::BlockMeta;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// How long the Hello exchange may take.
pub(super) const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Answers wait for the send queue to drop below this before they are queued.
pub const SOFT_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// The send queue never holds more than this: the manager's own messages beyond it
/// disconnect the peer (a block is at most 2 MiB framed, so answers never reach it).
pub const HARD_QUEUE_BYTES: usize = 16 * 1024 * 1024;
/// A peer that takes nothing off a full send queue for this long is disconnected.
pub const NOT_READING: Duration = Duration::from_secs(15);
/// Unrequested messages a peer may send per second on average (burst: ten times that).
pub const UNSOLICITED_PER_SEC: u64 = 2000;
/// `GetHeaders` answered per second per peer (burst: twice that); more wait their turn.
pub const GET_HEADERS_PER_SEC: u64 = 20;

/// Per-peer rates of what a peer may ask and send unasked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    /// Unrequested messages a second on average (burst: ten times that); beyond it the
    /// peer is flooding and is banned.
    pub unsolicited_per_sec: u64,
    /// `GetHeaders` answered a second (burst: twice that); more wait their turn.
    pub get_headers_per_sec: u64,
}

impl Default for Rates {
    fn default() -> Rates {
        Rates {
            unsolicited_per_sec: UNSOLICITED_PER_SEC,
            get_headers_per_sec: GET_HEADERS_PER_SEC,
        }
    }
}

/// Close a peer's connection for `reason`, with `detail` as the text it sees.
pub(super) fn close(conn: &Connection, reason: DisconnectReason, detail: &[u8]) {
    reason.close(&conn.conn, detail);
}

/// What the peer did that makes it worth keeping when inbound slots run out, shared between
/// its connection task and the manager.
#[derive(Debug, Default)]
pub struct Activity {
    /// Unix seconds when we last answered a request of its for blocks or headers.
    pub last_served: AtomicU64,
    /// Bytes received from it, framing included.
    pub bytes_in: AtomicU64,
    /// Bytes queued to it, framing included.
    pub bytes_out: AtomicU64,
    /// Unix seconds of the last message received from it.
    pub last_recv: AtomicU64,
    /// The best block we know it has, from what its connection task saw: the first hash of
    /// its `GetHeaders` locator (its tip), blocks we sent it. The manager adds what it learns.
    pub best: std::sync::Mutex<Option<PeerBest>>,
}

/// The best block a peer is known to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerBest {
    pub height: u64,
    pub tip: BlockHash,
    /// Its cumulative work, when that block is in our index.
    pub work: Option<Work>,
}

impl Activity {
    /// The peer has the block at `height` with hash `tip`: kept if it is higher than what was
    /// known (or as high, with the work now known).
    pub fn note_best(&self, height: u64, tip: BlockHash, work: Option<Work>) {
        let Ok(mut best) = self.best.lock() else {
            return;
        };
        let better = match *best {
            None => true,
            Some(b) => height > b.height || (b.tip == tip && b.work.is_none() && work.is_some()),
        };
        if better {
            *best = Some(PeerBest { height, tip, work });
        }
    }

    /// The peer has the block `m` of our index.
    pub fn note_meta(&self, m: &BlockMeta) {
        self.note_best(m.height, m.hash(), Some(m.chainwork));
    }

    pub fn best(&self) -> Option<PeerBest> {
        self.best.lock().ok().and_then(|b| *b)
    }
}

/// A frame waiting to be written.
struct Outgoing {
    frame: Vec<u8>,
}

/// The send side of a peer's queue: frames, counted in bytes.
#[derive(Clone)]
pub(super) struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    bytes: Arc<AtomicUsize>,
    drained: Arc<Notify>,
    activity: Arc<Activity>,
}

/// The queue is over [`HARD_QUEUE_BYTES`] (or the writer is gone).
#[derive(Debug)]
pub(super) struct QueueFull(pub usize);

impl Outbox {
    fn new(activity: Arc<Activity>) -> (Outbox, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Outbox {
                tx,
                bytes: Arc::new(AtomicUsize::new(0)),
                drained: Arc::new(Notify::new()),
                activity,
            },
            rx,
        )
    }

    /// Bytes queued and not yet written.
    pub(super) fn queued(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Queue `msg` now; the bytes it takes, or `QueueFull` when the queue is over the hard
    /// limit (the message is dropped: the peer does not read and must go).
    pub(super) fn push(&self, msg: &Message) -> Result<usize, QueueFull> {
        let frame = match wire::encode_frame(msg) {
            Ok(f) => f,
            Err(e) => {
                // Our own message over a wire limit is a bug here, not the peer's doing.
                tracing::error!("not sending {}: {e}", msg.kind());
                return Ok(0);
            }
        };
        let size = frame.len();
        let queued = self.queued();
        if queued + size > HARD_QUEUE_BYTES {
            return Err(QueueFull(queued));
        }
        self.bytes.fetch_add(size, Ordering::Relaxed);
        if self.tx.send(Outgoing { frame }).is_err() {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            return Err(QueueFull(queued));
        }
        self.activity
            .bytes_out
            .fetch_add(size as u64, Ordering::Relaxed);
        Ok(size)
    }

    /// Queue `msg` once the queue is below [`SOFT_QUEUE_BYTES`]; `Err` when the peer took
    /// nothing off it for [`NOT_READING`].
    async fn push_when_room(&self, msg: &Message) -> Result<usize, String> {
        loop {
            let drained = self.drained.notified();
            let queued = self.queued();
            if queued < SOFT_QUEUE_BYTES {
                break;
            }
            if tokio::time::timeout(NOT_READING, drained).await.is_err() {
                return Err(format!(
                    "does not read: {queued} bytes queued for {} s",
                    NOT_READING.as_secs()
                ));
            }
        }
        self.push(msg)
            .map_err(|QueueFull(n)| format!("does not read: {n} bytes queued"))
    }
}

/// What connection tasks tell the manager.
pub(super) enum PeerEvent {
    Connected {
        conn: Arc<Connection>,
        hello: Hello,
        outbox: Outbox,
        activity: Arc<Activity>,
        dialed: Option<SocketAddr>,
    },
    /// A message, with the connection it came on (a replaced duplicate connection's late
    /// messages are dropped: what they answer was asked on the old connection).
    Message(NodeId, Arc<Connection>, Message),
    Gone {
        id: NodeId,
        /// The connection that ended, if the handshake got that far.
        conn: Option<Arc<Connection>>,
        reason: String,
        misbehaviour: bool,
    },
    DialFailed(SocketAddr, String),
}

/// Open (dialer) or accept the one stream, and exchange and check `Hello`s. `Err((reason,
/// misbehaviour))` when it fails.
async fn handshake(
    conn: &Connection,
    hello: &Hello,
    dialer: bool,
) -> Result<(quinn::SendStream, quinn::RecvStream, Hello), (String, bool)> {
    // The dialer opens the one bidirectional stream both sides talk on.
    let streams = if dialer {
        tokio::time::timeout(HELLO_TIMEOUT, conn.conn.open_bi()).await
    } else {
        tokio::time::timeout(HELLO_TIMEOUT, conn.conn.accept_bi()).await
    };
    let (mut send, mut recv) = match streams {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err((format!("no stream: {e}"), false)),
        Err(_) => {
            close(
                conn,
                DisconnectReason::HandshakeTimeout,
                b"handshake timeout",
            );
            return Err(("handshake timed out".into(), false));
        }
    };
    if let Err(e) = wire::write_message(&mut send, &Message::Hello(hello.clone())).await {
        return Err((format!("cannot send hello: {e}"), false));
    }
    let theirs = match tokio::time::timeout(HELLO_TIMEOUT, wire::read_message(&mut recv)).await {
        Ok(Ok(Message::Hello(h))) => h,
        Ok(Ok(other)) => {
            close(conn, DisconnectReason::ExpectedHello, b"expected hello");
            return Err((format!("sent {} before hello", other.kind()), true));
        }
        Ok(Err(e)) => {
            // A connection that ended (not one that sent garbage): the other side hung up
            // first, so say why, in its words.
            if let Some(why) = conn.closed_because().filter(|_| !e.is_misbehaviour()) {
                return Err((why, false));
            }
            return Err((format!("bad hello: {e}"), e.is_misbehaviour()));
        }
        Err(_) => {
            close(conn, DisconnectReason::HandshakeTimeout, b"hello timeout");
            return Err(("no hello in time".into(), false));
        }
    };
    if theirs.genesis != hello.genesis {
        close(
            conn,
            DisconnectReason::OtherNetwork,
            b"its genesis block is not ours",
        );
        return Err((
            format!(
                "peer is on another network (genesis {})",
                theirs.genesis.short()
            ),
            false,
        ));
    }
    // Both ends announce the version their connection settled on.
    if theirs.version != conn.protocol {
        close(
            conn,
            DisconnectReason::Version,
            b"unsupported protocol version",
        );
        return Err((
            format!("protocol version {} not supported", theirs.version),
            false,
        ));
    }
    Ok((send, recv, theirs))
}

/// Handshake, then shuttle framed messages between the peer and the manager, answering the
/// peer's requests for data on the way.
pub(super) async fn run_connection(
    conn: Connection,
    hello: Hello,
    events: mpsc::Sender<PeerEvent>,
    dialed: Option<SocketAddr>,
    node: NodeHandle,
    rates: Rates,
) {
    let id = conn.peer;
    let conn = Arc::new(conn);
    let hello = Hello {
        version: conn.protocol,
        ..hello
    };
    let (mut send, mut recv, theirs) = match handshake(&conn, &hello, dialed.is_some()).await {
        Ok(x) => x,
        Err((reason, misbehaviour)) => {
            // A dial that fails at the handshake is a failed dial: the address leaves
            // `dialing` and backs off.
            if let Some(addr) = dialed {
                let _ = events
                    .send(PeerEvent::DialFailed(addr, reason.clone()))
                    .await;
            }
            gone(&events, id, None, reason, misbehaviour).await;
            return;
        }
    };
    let activity = Arc::new(Activity::default());
    let (outbox, mut rx) = Outbox::new(activity.clone());
    if events
        .send(PeerEvent::Connected {
            conn: conn.clone(),
            hello: theirs,
            outbox: outbox.clone(),
            activity: activity.clone(),
            dialed,
        })
        .await
        .is_err()
    {
        return;
    }
    let writer_conn = conn.clone();
    let written = outbox.clone();
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let ok = wire::write_frame(&mut send, &out.frame).await.is_ok();
            written.bytes.fetch_sub(out.frame.len(), Ordering::Relaxed);
            written.drained.notify_waiters();
            if !ok {
                break;
            }
        }
        let _ = send.finish();
        drop(writer_conn);
    });
    let mut reader = Reader {
        id,
        conn: conn.clone(),
        events: events.clone(),
        node,
        outbox,
        activity,
        clock: Instant::now(),
        unsolicited: Bucket::new(
            rates.unsolicited_per_sec,
            rates.unsolicited_per_sec * 10,
            LocalTime::default(),
        ),
        get_headers: Bucket::new(
            rates.get_headers_per_sec,
            rates.get_headers_per_sec * 2,
            LocalTime::default(),
        ),
    };
    let (reason, misbehaviour, code) = reader.run(&mut recv).await;
    writer.abort();
    close(&conn, code, reason.as_bytes());
    gone(&events, id, Some(conn), reason, misbehaviour).await;
}

/// The reading half of a connection.
struct Reader {
    id: NodeId,
    conn: Arc<Connection>,
    events: mpsc::Sender<PeerEvent>,
    node: NodeHandle,
    outbox: Outbox,
    activity: Arc<Activity>,
    /// The rate limits' clock starts with the connection.
    clock: Instant,
    unsolicited: Bucket,
    get_headers: Bucket,
}

impl Reader {
    /// Read until the connection ends; why it ended, whether that was misbehaviour, and the
    /// close code to send.
    async fn run(&mut self, recv: &mut quinn::RecvStream) -> (String, bool, DisconnectReason) {
        loop {
            let msg = match wire::read_message_sized(recv).await {
                Ok((m, size)) => {
                    self.activity
                        .bytes_in
                        .fetch_add(size as u64, Ordering::Relaxed);
                    self.activity
                        .last_recv
                        .store(crate::node::chain::unix_now(), Ordering::Relaxed);
                    m
                }
                Err(WireError::Closed) => {
                    return ("disconnected".into(), false, DisconnectReason::Normal);
                }
                Err(e) => {
                    let bad = e.is_misbehaviour();
                    let code = if bad {
                        DisconnectReason::Misbehaviour
                    } else {
                        DisconnectReason::Normal
                    };
                    return (e.to_string(), bad, code);
                }
            };
            if msg.min_protocol() > self.conn.protocol {
                return (
                    format!(
                        "sent {} on a protocol {} connection",
                        msg.kind(),
                        self.conn.protocol
                    ),
                    true,
                    DisconnectReason::Misbehaviour,
                );
            }
            // Blocks and transactions are answers to what the manager asked for (it refuses
            // any it did not ask for); everything else is counted.
            if counts_as_unsolicited(&msg) && !self.unsolicited.take(LocalTime::since(self.clock)) {
                return (
                    format!("flooding: too many {} messages", msg.kind()),
                    true,
                    DisconnectReason::Misbehaviour,
                );
            }
            let served = match msg {
                Message::Ping(n) => self.outbox.push_when_room(&Message::Pong(n)).await,
                Message::GetHeaders { locator, stop } => {
                    while !self.get_headers.take(LocalTime::since(self.clock)) {
                        tokio::time::sleep(self.get_headers.wait()).await;
                    }
                    // A locator starts at the asker's tip: if we know that block, so do we
                    // its height.
                    if let Some(first) = locator.first()
                        && let Ok(Some(m)) = self.node.block_meta(first)
                    {
                        self.activity.note_meta(&m);
                    }
                    // A store that cannot be read answers nothing: an empty answer would
                    // say we have no more headers.
                    let headers = match self.node.headers_after(&locator, &stop, MAX_HEADERS) {
                        Ok(h) => h,
                        Err(e) => {
                            tracing::error!("headers for {}: {e}", self.id.short());
                            return (
                                format!("cannot read headers: {e}"),
                                false,
                                DisconnectReason::Normal,
                            );
                        }
                    };
                    self.served();
                    self.outbox.push_when_room(&Message::Headers(headers)).await
                }
                Message::GetBlocks(hashes) => match self.serve_blocks(hashes).await {
                    Ok(sent) => sent,
                    Err(reason) => return (reason, false, DisconnectReason::Normal),
                },
                Message::GetBlockTxs { block, indexes } => {
                    match self.serve_block_txs(block, &indexes) {
                        Ok(msg) => self.outbox.push_when_room(&msg).await,
                        Err((reason, true)) => {
                            return (reason, true, DisconnectReason::Misbehaviour);
                        }
                        Err((reason, false)) => {
                            return (reason, false, DisconnectReason::Normal);
                        }
                    }
                }
                Message::GetTxs(txids) => {
                    let mut r = Ok(0);
                    for t in txids {
                        if let Some(tx) = self.node.mempool_tx(&t) {
                            r = self.outbox.push_when_room(&Message::Tx(tx)).await;
                            if r.is_err() {
                                break;
                            }
                        }
                    }
                    r
                }
                other => {
                    let ev = PeerEvent::Message(self.id, self.conn.clone(), other);
                    if self.events.send(ev).await.is_err() {
                        return ("node stopping".into(), false, DisconnectReason::Normal);
                    }
                    Ok(0)
                }
            };
            if let Err(reason) = served {
                return (reason, false, DisconnectReason::NotReading);
            }
        }
    }

    fn served(&self) {
        self.activity
            .last_served
            .store(crate::node::chain::unix_now(), Ordering::Relaxed);
    }

    /// The transactions at `indexes` of `block` (none if we do not have it). `Err` with
    /// `true` if an index is beyond the block or not in increasing order (no honest peer asks
    /// that); with `false` if the store could not be read (an empty answer would get us
    /// banned for announcing a block we cannot give).
    fn serve_block_txs(
        &self,
        block: BlockHash,
        indexes: &[u32],
    ) -> Result<Message, (String, bool)> {
        let b = match self.node.block(&block) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Ok(Message::BlockTxs {
                    block,
                    txs: Vec::new(),
                });
            }
            Err(e) => {
                tracing::error!("block {} for {}: {e}", block.short(), self.id.short());
                return Err((format!("cannot read block {}: {e}", block.short()), false));
            }
        };
        if indexes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(("asked for block transactions out of order".into(), true));
        }
        let mut txs = Vec::with_capacity(indexes.len());
        for i in indexes {
            match b.txs.get(*i as usize) {
                Some(tx) => txs.push(tx.clone()),
                None => {
                    return Err((
                        format!("asked for transaction {i} of a block with {}", b.txs.len()),
                        true,
                    ));
                }
            }
        }
        self.served();
        Ok(Message::BlockTxs { block, txs })
    }

    /// Send the blocks asked for that we have, and one `NotFound` for the rest.
    /// `Err` if the store cannot be read (a `NotFound` would get us banned for a block we
    /// announced); the inner `Err` if the peer does not read.
    async fn serve_blocks(
        &mut self,
        hashes: Vec<crate::core::hash::BlockHash>,
    ) -> Result<Result<usize, String>, String> {
        let mut missing = Vec::new();
        for h in hashes {
            match self.node.block(&h) {
                Ok(Some(b)) => {
                    if let Err(e) = self.outbox.push_when_room(&Message::Block(b)).await {
                        return Ok(Err(e));
                    }
                    if let Ok(Some(m)) = self.node.block_meta(&h) {
                        self.activity.note_meta(&m);
                    }
                }
                Ok(None) => missing.push(h),
                Err(e) => {
                    tracing::error!("block {} for {}: {e}", h.short(), self.id.short());
                    return Err(format!("cannot read block {}: {e}", h.short()));
                }
            }
            // Let the other peers' tasks run between blocks.
            tokio::task::yield_now().await;
        }
        self.served();
        if missing.is_empty() {
            return Ok(Ok(0));
        }
        Ok(self
            .outbox
            .push_when_room(&Message::NotFound(missing))
            .await)
    }
}

pub(super) async fn gone(
    events: &mpsc::Sender<PeerEvent>,
    id: NodeId,
    conn: Option<Arc<Connection>>,
    reason: String,
    misbehaviour: bool,
) {
    let _ = events
        .send(PeerEvent::Gone {
            id,
            conn,
            reason,
            misbehaviour,
        })
        .await;
}
