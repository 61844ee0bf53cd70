//! Starting and stopping the API server: binding, the token, `node.json`, and the layers every
//! request passes (loopback Host check, bearer-token check for writes, body limits, request
//! and body timeouts, the limit on expensive reads).

use super::conn::{self, ApiLimits};
use super::error::ApiError;
use super::jobs::Jobs;
use super::routes;
use crate::core::hash::Txid;
use crate::core::tx::Transaction;
use crate::node::NodeHandle;
use crate::node::P2pHandle;
use crate::node::{NodeId, NodeKey, node_key_path};
use crate::wallet::Wallet;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

/// How long a request with a missing or wrong token waits before its 401.
pub const AUTH_DELAY: Duration = Duration::from_millis(250);
/// Largest request body, except where a route says otherwise.
pub const MAX_BODY: usize = 256 * 1024;

/// What the API serves: the node, its network part and its wallet.
#[derive(Clone)]
pub struct ApiContext {
    pub node: NodeHandle,
    pub p2p: Option<P2pHandle>,
    /// The node's wallet, or why it could not be opened (wallet endpoints then say so).
    pub wallet: Result<Arc<Mutex<Wallet>>, String>,
    /// Threads for `POST /mine` and `POST /mining` when the request does not say.
    pub mine_threads: usize,
}

/// Shared by every request.
pub(crate) struct ApiState {
    pub ctx: ApiContext,
    pub token: String,
    pub bound: SocketAddr,
    pub submitter: Submitter,
    pub limits: ApiLimits,
    /// Expensive reads running at once (large `/chain` pages, `/validate`).
    pub heavy: Arc<tokio::sync::Semaphore>,
    /// One `/validate` at a time.
    pub validating: Arc<tokio::sync::Semaphore>,
    /// Event streams and long polls open at once, at most `streams_max`.
    pub streams: Arc<tokio::sync::Semaphore>,
    pub streams_max: usize,
    /// One `/chain/import` at a time.
    pub importing: Arc<tokio::sync::Semaphore>,
    /// `POST /mine` jobs.
    pub jobs: Jobs,
    /// The data dir's node key, to prove the API is this node's (`GET /info?challenge=`).
    pub identity: NodeKey,
    /// Numbered live events for `GET /events`.
    pub events: Arc<super::events::EventLog>,
}

impl ApiState {
    /// A place for an event stream or a long poll, held while it is open; `503 busy` when
    /// they are all taken.
    pub fn stream_place(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.streams.clone().try_acquire_owned().map_err(|_| {
            busy(&format!(
                "{} event streams and long polls are open, the most this node serves at once",
                self.streams_max
            ))
        })
    }

    /// A turn for an expensive read: waits up to `heavy_wait`, then `503 busy`. Hold it until
    /// the work is done (move it into the blocking task).
    pub async fn heavy_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(self.limits.heavy_wait, self.heavy.clone().acquire_owned()).await
        {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy("the node is busy with other large reads")),
        }
    }
}

/// `503 busy`: try again shortly.
pub fn busy(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        format!("{what}; try again shortly"),
    )
}

type Pending = (
    Transaction,
    oneshot::Sender<Result<Txid, crate::node::NodeError>>,
);

/// Most transactions handed to the node in one batch.
const MAX_BATCH: usize = 1024;
/// Batches on their way through the node at once: enough that one has its signatures
/// verified while others are with the node thread and the disk, few enough that each carries
/// several transactions (2, 3, 4 and 8 measured with `chain-tui bench api`: 4 was fastest
/// with 8 clients and with 64).
const IN_FLIGHT: usize = 4;

/// Group commit for `POST /transactions/new`: transactions that arrive while the node is busy
/// with a batch go to it together as the next one — signatures verified as one batch on the
/// cores, one command to the node thread, one durable write — and each request still gets
/// its own answer, only after its transaction is on disk.
#[derive(Clone)]
pub(crate) struct Submitter {
    queue: mpsc::Sender<Pending>,
}

impl Submitter {
    fn start(node: NodeHandle) -> Submitter {
        let (queue, mut rx) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        tokio::spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            while let Some(first) = rx.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let node = node.clone();
                tokio::spawn(async move {
                    let (txs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let t0 = std::time::Instant::now();
                    let n = txs.len();
                    let r = node.submit_txs(txs, true).await;
                    drop(slot);
                    tracing::trace!("API batch of {n} transactions in {:?}", t0.elapsed());
                    match r {
                        Ok(results) => {
                            for (r, reply) in results.into_iter().zip(replies) {
                                let _ = reply.send(r);
                            }
                        }
                        Err(e) => {
                            let stopped = matches!(e, crate::node::NodeError::Stopped);
                            let why = e.to_string();
                            for reply in replies {
                                let _ = reply.send(Err(if stopped {
                                    crate::node::NodeError::Stopped
                                } else {
                                    crate::node::NodeError::Persist(why.clone())
                                }));
                            }
                        }
                    }
                });
            }
        });
        Submitter { queue }
    }

    /// Validate `tx` into the mempool, durably; its own result.
    pub async fn submit(&self, tx: Transaction) -> Result<Txid, crate::node::NodeError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((tx, reply))
            .await
            .map_err(|_| crate::node::NodeError::Stopped)?;
        answer.await.map_err(|_| crate::node::NodeError::Stopped)?
    }
}

/// The file a running node leaves in its data dir so that the CLI and scripts can find its
/// API and token. Mode 0600; removed on clean exit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFile {
    /// Address the API listens on.
    pub api: SocketAddr,
    /// Bearer token for state-changing requests (new on every start).
    pub token: String,
    pub pid: u32,
    pub network: String,
    pub version: String,
    /// Where the node accepts peers, if its network part runs.
    #[serde(default)]
    pub p2p: Option<SocketAddr>,
    /// The node's identity (the public key of DATA_DIR/node_key); the CLI uses the API only
    /// after it proves to hold that key.
    #[serde(default)]
    pub node_id: Option<NodeId>,
}

/// `DATA_DIR/node.json`.
pub fn node_file_path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.json")
}

impl NodeFile {
    /// Read a data dir's node file; `None` when there is none (no node runs there).
    pub fn read(data_dir: &Path) -> Result<Option<NodeFile>, String> {
        let path = node_file_path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} is damaged: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Write through the one atomic writer (random 0600 temp name, fsync, rename).
    fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::fsutil::write_atomic(&node_file_path(data_dir), &bytes)
    }
}

/// Why the API did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the API on {addr}: {error}{hint}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
        hint: &'static str,
    },
    #[error("cannot write {path}: {error}")]
    NodeFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Identity(#[from] crate::node::NetError),
}

/// A running API server. [`ApiServer::shutdown`] stops it and removes `node.json`; dropping it
/// does the same without waiting.
pub struct ApiServer {
    addr: SocketAddr,
    token: String,
    node_file: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ApiServer {
    /// Bind `addr` (port 0: the system picks one), write `node.json` and serve.
    pub async fn start(ctx: ApiContext, addr: SocketAddr) -> Result<ApiServer, StartError> {
        ApiServer::start_with(ctx, addr, ApiLimits::default()).await
    }

    /// [`ApiServer::start`] with other limits. Raises the process's open-files limit to its
    /// hard limit where it can, and lowers the connection cap to fit the limit in force.
    pub async fn start_with(
        ctx: ApiContext,
        addr: SocketAddr,
        limits: ApiLimits,
    ) -> Result<ApiServer, StartError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|error| StartError::Bind {
                addr,
                hint: if error.kind() == std::io::ErrorKind::AddrInUse {
                    " (is another node running? pass --api ADDR, e.g. --api 127.0.0.1:0, or --api off)"
                } else {
                    ""
                },
                error,
            })?;
        let bound = listener.local_addr().map_err(|error| StartError::Bind {
            addr,
            error,
            hint: "",
        })?;
        let token = new_token();
        let data_dir = ctx.node.data_dir().to_path_buf();
        let identity = NodeKey::load_or_create(&node_key_path(&data_dir))?;
        let file = NodeFile {
            api: bound,
            token: token.clone(),
            pid: std::process::id(),
            network: ctx.node.network().name().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            p2p: ctx.p2p.as_ref().and_then(|p| p.view().listen),
            node_id: Some(identity.id()),
        };
        let node_file = node_file_path(&data_dir);
        file.write(&data_dir)
            .map_err(|error| StartError::NodeFile {
                path: node_file.clone(),
                error,
            })?;
        let submitter = Submitter::start(ctx.node.clone());
        let stop_events = tokio_util::sync::CancellationToken::new();
        let events =
            super::events::EventLog::start(ctx.node.clone(), ctx.p2p.clone(), stop_events.clone());
        let cap = conn::connection_cap(limits.max_connections, conn::raise_open_files_limit());
        let streams_max = limits.max_streams.min(cap / 4).max(1);
        let state = Arc::new(ApiState {
            ctx,
            token: token.clone(),
            bound,
            submitter,
            heavy: Arc::new(tokio::sync::Semaphore::new(limits.heavy_reads.max(1))),
            validating: Arc::new(tokio::sync::Semaphore::new(1)),
            streams: Arc::new(tokio::sync::Semaphore::new(streams_max)),
            streams_max,
            importing: Arc::new(tokio::sync::Semaphore::new(1)),
            jobs: Jobs::default(),
            limits: limits.clone(),
            identity,
            events,
        });
        let app = routes::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let token = tokio_util::sync::CancellationToken::new();
            let serve = conn::serve(listener, app, &limits, cap, token.clone());
            tokio::pin!(serve);
            tokio::select! {
                _ = serve.as_mut() => {}
                _ = stopped => {
                    token.cancel();
                    // Event streams end now rather than hold the graceful shutdown.
                    stop_events.cancel();
                    state.jobs.cancel_all().await;
                    serve.await;
                }
            }
            stop_events.cancel();
        });
        tracing::info!("API listening on http://{bound} (at most {cap} connections)");
        Ok(ApiServer {
            addr: bound,
            token,
            node_file,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Stop accepting requests, let running ones finish (for at most 5 s), remove `node.json`.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let _ = std::fs::remove_file(&self.node_file);
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            let _ = std::fs::remove_file(&self.node_file);
        }
    }
}

/// 32 random bytes, hex.
fn new_token() -> String {
    let mut b = [0u8; 32];
    if getrandom::fill(&mut b).is_err() {
        // No system randomness: fall back to a hash of time and pid, still unguessable
        // from outside the machine in practice, and logged so it is noticed.
        tracing::warn!("no system randomness for the API token; using a time-based one");
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        b = crate::core::hash::sha256d(seed.as_bytes());
    }
    hex::encode(b)
}

/// Whether `host` (a Host header) names this machine: localhost, a 127/8 address, ::1, or the
/// exact address the API was bound to.
pub fn host_allowed(host: &str, bound: SocketAddr) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            Some(_) => return false,
            None => host,
        }
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == bound.ip(),
        Err(_) => false,
    }
}

/// Layer: refuse requests whose Host is not a loopback name (DNS rebinding).
pub(crate) async fn check_host(
    State(state): State<Arc<ApiState>>,
    req: Request,
    next: Next,
) -> Response {
    let ok = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| host_allowed(h, state.bound));
    if ok || state.limits.reads_need_token {
        next.run(req).await
    } else {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_host",
            "the Host header must name this machine (localhost or 127.0.0.1)",
        )
        .into_response()
    }
}

/// Layer: with [`ApiLimits::reads_need_token`], every request needs the token.
pub(crate) async fn check_read_token(
    State(state): State<Arc<ApiState>>,
    req: Request,
    next: Next,
) -> Response {
    if !state.limits.reads_need_token {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    match Authorized::from_request_parts(&mut parts, &state).await {
        Ok(Authorized) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => e.into_response(),
    }
}

/// Whether an API bound at `addr` must ask for the token on reads too: anywhere but loopback.
pub fn reads_need_token_at(addr: SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// Extractor for state-changing requests: `Authorization: Bearer TOKEN`, compared in constant
/// time; a wrong or missing token is answered 401 after the limits' `auth_delay`
/// ([`AUTH_DELAY`] by default).
pub struct Authorized;

impl FromRequestParts<Arc<ApiState>> for Authorized {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Authorized, ApiError> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(state.token.as_bytes())) {
            Ok(Authorized)
        } else {
            tokio::time::sleep(state.limits.auth_delay).await;
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token (the token is in node.json in the node's data dir)",
            ))
        }
    }
}

/// A JSON body (an empty body reads as `{}`), with JSON errors for bad or oversized bodies.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let bytes = raw_body(req, state).await?;
        decode_json_body(&bytes).map(JsonBody)
    }
}

/// A request body's bytes as `T`, the way [`JsonBody`] reads them (an empty body reads as `{}`).
pub fn decode_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("bad_json", format!("bad JSON body: {e}")))
}

/// The whole body, or 413 when it is over the route's limit.
pub async fn raw_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else if is_timeout(&e) {
            body_timeout()
        } else {
            ApiError::bad_request("bad_body", format!("cannot read the request body: {e}"))
        }
    })
}

pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "request body is over the size limit",
    )
}

pub(crate) fn body_timeout() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        "the request body came too slowly",
    )
}

/// Whether a body error is the body timeout's.
pub(crate) fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Layer: a request that takes longer than the request timeout gets `408` (`/validate`,
/// `/chain/import`, the `/events` stream and the `/blocks/wait` long poll have their own limits).
pub(crate) async fn deadline(
    State(state): State<Arc<ApiState>>,
    req: Request,
    next: Next,
) -> Response {
    // Streams and long polls have their own limits.
    if matches!(
        req.uri().path(),
        "/validate" | "/chain/import" | "/events" | "/blocks/wait"
    ) {
        return next.run(req).await;
    }
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the request took longer than {} s", limit.as_secs_f32()),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let bound: SocketAddr = "127.0.0.1:7421".parse().unwrap();
        for ok in [
            "localhost",
            "localhost:7421",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:7421",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:7421",
        ] {
            assert!(host_allowed(ok, bound), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7421",
            "localhost.evil.example",
            "10.0.0.1:7421",
            "[::1",
            "[::1]x",
            "127.0.0.1:x",
            "",
        ] {
            assert!(!host_allowed(bad, bound), "{bad}");
        }
        let wide: SocketAddr = "192.168.1.5:7421".parse().unwrap();
        assert!(host_allowed("192.168.1.5:7421", wide));
        assert!(!host_allowed("192.168.1.6:7421", wide));
    }
}
