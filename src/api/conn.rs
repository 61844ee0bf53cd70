//! Connections: the API's own accept loop around hyper, so that nobody can starve it. It owns
//! the connection cap (at the cap the oldest idle connection is closed for the new one; when
//! every connection is busy the new one gets `503`), the header timeout (which also closes
//! idle keep-alive connections), the back-off when the process is out of file descriptors
//! (never a busy loop, one warning a minute), and raising the open-files limit at start.

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// What the API puts up with from its clients.
#[derive(Clone, Debug)]
pub struct ApiLimits {
    /// Most connections open at once (lowered at start to fit the open-files limit). At the
    /// cap the oldest idle connection is closed to make room; if none is idle, `503`.
    pub max_connections: usize,
    /// A connection must send a whole request head within this, counted from when it opens
    /// or its last answer was sent: slow headers and idle keep-alive connections are closed.
    pub header_timeout: Duration,
    /// Longest pause between two pieces of a request body.
    pub body_timeout: Duration,
    /// Longest a request may take, body included (`408` after it). `/validate` and
    /// `/chain/import` have their own limits instead.
    pub request_timeout: Duration,
    /// Expensive reads (large `/chain` pages, `/validate`) running at once.
    pub heavy_reads: usize,
    /// Event streams (`/events`) and long polls (`/blocks/wait`) open at once, at most a
    /// quarter of the connection cap: they keep their connections busy, and the rest must
    /// still get through. One more gets `503 busy`.
    pub max_streams: usize,
    /// How long an expensive read waits for its turn before `503 busy`.
    pub heavy_wait: Duration,
    /// Longest a chain import may take to arrive.
    pub import_timeout: Duration,
    /// How long a request with a missing or wrong token waits before its 401 (slows down
    /// guessing; [`super::server::AUTH_DELAY`] unless a test sets it shorter).
    pub auth_delay: Duration,
    /// Reads need the token too (`--api-read-token`; always when the API listens beyond
    /// loopback). The Host check is then not needed: a page that rebinds a name to this
    /// address cannot know the token.
    pub reads_need_token: bool,
}

impl Default for ApiLimits {
    fn default() -> ApiLimits {
        ApiLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            heavy_reads: cores().clamp(1, 4),
            max_streams: 128,
            heavy_wait: Duration::from_secs(10),
            import_timeout: Duration::from_secs(300),
            auth_delay: super::server::AUTH_DELAY,
            reads_need_token: false,
        }
    }
}

pub(crate) fn cores() -> usize {
    crate::node::cores()
}

/// File descriptors kept for everything else the node opens (store, peers, logs, files).
const FD_RESERVE: u64 = 128;
/// The cap is never set below this.
const MIN_CONNECTIONS: usize = 8;

/// Raise this process's open-files soft limit to its hard limit where the system allows;
/// the soft limit now in force, if known.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::debug!("cannot raise the open-files limit: {e}");
            None
        }
    }
}

/// The connection cap that fits `wanted` under an open-files limit of `soft`.
pub fn connection_cap(wanted: usize, soft: Option<u64>) -> usize {
    let room = soft.map_or(usize::MAX, |s| {
        usize::try_from(s.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX)
    });
    wanted.min(room).max(MIN_CONNECTIONS)
}

/// The open connections, for the cap.
struct Conns {
    cap: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
}

struct Entry {
    /// Requests in flight (their answers not yet fully sent).
    busy: usize,
    /// Since when nothing is in flight.
    idle_since: Instant,
    close: Arc<Notify>,
}

impl Conns {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table holds no invariant a panic could break halfway; keep serving.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room for a new connection: its id and what tells it to close; `None` when at the cap
    /// with every connection busy.
    fn open(&self) -> Option<(u64, Arc<Notify>)> {
        let mut t = self.table();
        if t.open.len() >= self.cap && !shed_oldest_idle(&mut t) {
            return None;
        }
        let id = t.next_id;
        t.next_id += 1;
        let close = Arc::new(Notify::new());
        t.open.insert(
            id,
            Entry {
                busy: 0,
                idle_since: Instant::now(),
                close: close.clone(),
            },
        );
        Some((id, close))
    }

    fn shed_oldest_idle(&self) -> bool {
        shed_oldest_idle(&mut self.table())
    }

    fn len(&self) -> usize {
        self.table().open.len()
    }

    fn busy(&self, id: u64) {
        if let Some(e) = self.table().open.get_mut(&id) {
            e.busy += 1;
        }
    }

    fn done(&self, id: u64) {
        if let Some(e) = self.table().open.get_mut(&id) {
            e.busy = e.busy.saturating_sub(1);
            if e.busy == 0 {
                e.idle_since = Instant::now();
            }
        }
    }

    fn closed(&self, id: u64) {
        self.table().open.remove(&id);
    }
}

/// Close the connection idle the longest; false when none is idle.
fn shed_oldest_idle(t: &mut Table) -> bool {
    let victim = t
        .open
        .iter()
        .filter(|(_, e)| e.busy == 0)
        .min_by_key(|(_, e)| e.idle_since)
        .map(|(id, _)| *id);
    match victim.and_then(|id| t.open.remove(&id)) {
        Some(e) => {
            e.close.notify_one();
            true
        }
        None => false,
    }
}

/// Marks a connection busy from when hyper hands it a request until the answer's body has
/// been sent (or dropped).
struct Busy {
    conns: Arc<Conns>,
    id: u64,
}

impl Busy {
    fn new(conns: &Arc<Conns>, id: u64) -> Busy {
        conns.busy(id);
        Busy {
            conns: conns.clone(),
            id,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conns.done(self.id);
    }
}

/// An answer's body that keeps its connection marked busy while it is being sent.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a connection over the cap when every open one is busy.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 91\r\n\r\n\
{\"error\":\"too many connections, all busy; try again shortly\",\"code\":\"too_many_connections\"}";

/// Accept errors that concern one connection only (the peer gave up), not the listener.
fn one_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

/// Serve `app` on `listener` until `stop`, then let requests in flight finish (the caller
/// bounds how long).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ApiLimits,
    cap: usize,
    stop: CancellationToken,
) {
    let conns = Arc::new(Conns {
        cap,
        table: Mutex::default(),
    });
    let tracker = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut backoff = Duration::ZERO;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            Err(e) if one_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors (or memory): make room and wait, growing the wait up
                // to a second; never a busy loop, and one warning a minute at most.
                let shed = conns.shed_oldest_idle();
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(
                        "the API cannot accept connections: {e} ({} open{}); retrying",
                        conns.len(),
                        if shed {
                            ", closed the oldest idle one"
                        } else {
                            ""
                        }
                    );
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                continue;
            }
        };
        let Some((id, close)) = conns.open() else {
            // Best effort and never blocking: the socket is new, its buffer empty.
            let _ = stream.try_write(BUSY);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = {
            let (conns, app) = (conns.clone(), app.clone());
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let busy = Busy::new(&conns, id);
                let answer = app.clone().oneshot(req.map(Body::new));
                async move {
                    let resp = answer.await?;
                    Ok::<_, Infallible>(resp.map(|inner| Body::new(Tracked { inner, _busy: busy })))
                }
            })
        };
        let conn = http.serve_connection(TokioIo::new(stream), svc);
        let (conns, stop) = (conns.clone(), stop.clone());
        tracker.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::trace!("API connection ended: {e}");
                    }
                }
                // Shed for a newer connection: dropping it closes the socket.
                _ = close.notified() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            conns.closed(id);
        });
    }
    tracker.close();
    tracker.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_files_limit() {
        assert_eq!(connection_cap(512, Some(20_000)), 512);
        assert_eq!(connection_cap(512, Some(1024)), 512);
        assert_eq!(connection_cap(512, Some(256)), 128);
        assert_eq!(connection_cap(512, Some(64)), MIN_CONNECTIONS);
        assert_eq!(connection_cap(512, None), 512);
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_goes_and_busy_ones_stay() {
        let conns = Conns {
            cap: 3,
            table: Mutex::default(),
        };
        let (a, close_a) = conns.open().unwrap();
        let (b, close_b) = conns.open().unwrap();
        let (c, _) = conns.open().unwrap();
        conns.busy(a);
        // a is busy, so b (idle the longest) makes room.
        let (d, _) = conns.open().unwrap();
        assert_eq!(conns.len(), 3);
        assert!(!conns.table().open.contains_key(&b));
        let _ = close_a;
        drop(close_b);
        conns.busy(c);
        conns.busy(d);
        assert!(conns.open().is_none(), "all busy: refused");
        conns.done(c);
        assert!(conns.open().is_some(), "c idle again: it makes room");
        assert!(!conns.table().open.contains_key(&c));
        assert!(conns.table().open.contains_key(&a));
    }
}
