//! The endpoints: one table of routes (which also feeds `GET /openapi.json` and the README
//! check), and a handler for each.

use super::error::ApiError;
use super::server::{
    ApiState, Authorized, JsonBody, MAX_BODY, body_timeout, busy, check_host, deadline, is_timeout,
    too_large,
};
use super::views::{self, BlockId, parse_address, parse_txid};
use crate::core::amount::Amount;
use crate::core::block::Block;
use crate::node::FeeRate;
use crate::node::PeerAddr;
use crate::node::chainfile;
use crate::node::{Accepted, ProcessError};
use crate::wallet::Wallet;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type St = State<Arc<ApiState>>;
type JsonResult = Result<axum::Json<Value>, ApiError>;

/// One endpoint: method, path (axum syntax), whether it needs the token, and what it does.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub token: bool,
    pub summary: &'static str,
}

const fn r(
    method: &'static str,
    path: &'static str,
    token: bool,
    summary: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        token,
        summary,
    }
}

/// Every endpoint the API serves.
pub const ROUTES: &[RouteDoc] = &[
    r(
        "GET",
        "/info",
        false,
        "Network, height, tip, work, difficulty, peers, mempool size, hashrate",
    ),
    r(
        "GET",
        "/chain",
        false,
        "Active-chain blocks, paged: ?from=HEIGHT&limit=N (at most 500), &hex=true adds each block's encoding",
    ),
    r("GET", "/blocks/{id}", false, "One block by height or hash"),
    r(
        "POST",
        "/blocks",
        true,
        "Submit a solved block {\"hex\"} (external miners); the reason on rejection",
    ),
    r(
        "GET",
        "/tx/{txid}",
        false,
        "One transaction, confirmed or in the mempool",
    ),
    r(
        "GET",
        "/tx/{txid}/proof",
        false,
        "Merkle proof that a confirmed transaction is in its block",
    ),
    r(
        "GET",
        "/transaction/confirmations/{txid}",
        false,
        "Confirmations of a transaction",
    ),
    r(
        "POST",
        "/transactions/new",
        true,
        "Submit a transaction signed elsewhere (JSON fields or {\"hex\"}); validated into the mempool and relayed",
    ),
    r(
        "POST",
        "/transactions/check",
        true,
        "Dry run of /transactions/new: would the mempool take it, what it pays, or why not",
    ),
    r(
        "GET",
        "/validate",
        true,
        "Re-verify the whole chain from genesis (as chain validate); one at a time",
    ),
    r("GET", "/mempool", false, "Mempool transactions by fee rate"),
    r(
        "GET",
        "/difficulty",
        false,
        "Current difficulty, compact bits and target",
    ),
    r(
        "GET",
        "/balance/{address}",
        false,
        "Confirmed balance of any address, from the address index",
    ),
    r(
        "GET",
        "/fees/estimate",
        false,
        "The fee rate (base units per byte) to be mined within ?blocks=N blocks, from the mempool",
    ),
    r(
        "GET",
        "/chain/tips",
        false,
        "Every tip of the block tree: active, valid_fork, stored or invalid, with its branch length",
    ),
    r(
        "GET",
        "/address/{address}/utxos",
        false,
        "Unspent coins of any address, newest first, paged (offset, limit)",
    ),
    r(
        "GET",
        "/address/{address}/history",
        false,
        "Confirmed history of any address, newest first, paged, and its mempool transactions",
    ),
    r(
        "GET",
        "/wallet/address",
        false,
        "The node wallet's receive address",
    ),
    r("POST", "/wallet/address", true, "A new receive address"),
    r(
        "GET",
        "/wallet/balance",
        false,
        "Wallet balance: confirmed, unconfirmed, immature",
    ),
    r(
        "GET",
        "/events",
        false,
        "Server-Sent Events: blocks, reorgs, transactions, peers, mining; Last-Event-ID resumes",
    ),
    r(
        "GET",
        "/blocks/wait",
        false,
        "Long poll: answers when the tip moves past ?after=HASH, or after ?timeout=S (60 at most)",
    ),
    r(
        "GET",
        "/wallets",
        false,
        "The node wallet's addresses, each with its balance",
    ),
    r(
        "GET",
        "/wallet/history",
        false,
        "Wallet transactions with confirmations",
    ),
    r(
        "POST",
        "/wallet/send",
        true,
        "Pay {address, amount, fee_rate?} from the node's wallet",
    ),
    r(
        "GET",
        "/peers",
        false,
        "Connected peers, and bans with their reasons",
    ),
    r(
        "POST",
        "/peers/unban",
        true,
        "Lift a ban {\"id\": node id or address}",
    ),
    r(
        "POST",
        "/nodes/register",
        true,
        "Connect to peers {\"nodes\": [\"HOST:PORT\" or \"ID@HOST:PORT\"]}",
    ),
    r(
        "GET",
        "/nodes/resolve",
        true,
        "Sync with peers now; says whether the tip changed",
    ),
    r("POST", "/nodes/resolve", true, "Same as GET /nodes/resolve"),
    r(
        "GET",
        "/mining",
        false,
        "Mining on/off, threads, kernel, hashrate",
    ),
    r(
        "POST",
        "/mining",
        true,
        "Start or stop mining {\"mining\": bool, \"threads\"?}",
    ),
    r(
        "GET",
        "/mining/template",
        false,
        "A block template for an external miner (?address= pays another address)",
    ),
    r("GET", "/mine", true, "Mine one block now"),
    r(
        "POST",
        "/mine",
        true,
        "Mine N blocks {\"blocks\": N, \"threads\"?}: the blocks, or 202 and a job to follow",
    ),
    r(
        "GET",
        "/jobs/{id}",
        false,
        "A mine job: state, blocks mined so far, and the result once finished",
    ),
    r(
        "DELETE",
        "/jobs/{id}",
        true,
        "Cancel a mine job; answers the job as it stopped",
    ),
    r(
        "POST",
        "/chain/import",
        true,
        "Import a chain file (the body, as written by chain export): all or nothing",
    ),
    r(
        "GET",
        "/metrics",
        false,
        "Prometheus/OpenMetrics text: height, peers, mempool, hashrate, blocks, bans",
    ),
    r(
        "GET",
        "/openapi.json",
        false,
        "This list as an OpenAPI 3.1 description",
    ),
];

/// Largest chain file `POST /chain/import` takes.
pub const MAX_IMPORT: usize = 256 * 1024 * 1024;

pub(crate) fn router(state: Arc<ApiState>) -> Router {
    let block_limit = state.ctx.node.params().max_block_size * 2 + 1024;
    Router::new()
        .route("/info", get(info))
        .route("/chain", get(chain))
        .route("/blocks/{id}", get(block))
        .route(
            "/blocks",
            post(submit_block).layer(DefaultBodyLimit::max(block_limit)),
        )
        .route("/tx/{txid}", get(tx))
        .route("/tx/{txid}/proof", get(proof))
        .route("/transaction/confirmations/{txid}", get(confirmations))
        .route("/transactions/new", post(new_transaction))
        .route("/transactions/check", post(check_transaction))
        .route("/validate", get(validate))
        .route("/mempool", get(mempool))
        .route("/difficulty", get(difficulty))
        .route("/balance/{address}", get(balance))
        .route(
            "/wallet/address",
            get(wallet_address).post(wallet_new_address),
        )
        .route("/address/{address}/utxos", get(address_utxos))
        .route("/address/{address}/history", get(address_history))
        .route("/chain/tips", get(chain_tips))
        .route("/fees/estimate", get(fee_estimate))
        .route("/wallet/balance", get(wallet_balance))
        .route("/wallets", get(wallets))
        .route("/wallet/history", get(wallet_history))
        .route("/wallet/send", post(wallet_send))
        .route("/peers", get(peers))
        .route("/peers/unban", post(unban))
        .route("/nodes/register", post(register))
        .route("/nodes/resolve", get(resolve).post(resolve))
        .route("/mining", get(mining).post(set_mining))
        .route("/mining/template", get(template))
        .route("/mine", get(mine_one).post(mine))
        .route("/jobs/{id}", get(job).delete(cancel_job))
        .route("/chain/import", post(import))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/events", get(events))
        .route("/blocks/wait", get(block_wait))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            deadline,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.limits.body_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (GET /openapi.json lists them)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method (GET /openapi.json lists them)",
    )
}

/// Run a blocking read off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

fn ok(v: Value) -> JsonResult {
    Ok(axum::Json(v))
}

fn wallet_of(s: &ApiState) -> Result<Arc<Mutex<Wallet>>, ApiError> {
    s.ctx.wallet.clone().map_err(|why| {
        ApiError::new(
            StatusCode::CONFLICT,
            "wallet_unavailable",
            format!("the node has no wallet open: {why}"),
        )
    })
}

fn lock(w: &Mutex<Wallet>) -> Result<std::sync::MutexGuard<'_, Wallet>, ApiError> {
    w.lock()
        .map_err(|_| ApiError::internal("the wallet lock is poisoned"))
}

fn receive_address(s: &ApiState) -> Result<crate::core::address::Address, ApiError> {
    let w = wallet_of(s)?;
    let a = lock(&w)?.receive_address();
    Ok(a)
}

fn no_network() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "no_network",
        "this node runs without its network part",
    )
}

// ---- reads ----

/// `GET /info?challenge=HEX`: with a challenge (16 to 64 random bytes), the answer carries
/// `identity_proof`, the node key's signature binding the API address and the challenge.
#[derive(Deserialize)]
struct InfoQuery {
    challenge: Option<String>,
}

async fn info(State(s): St, q: Result<Query<InfoQuery>, QueryRejection>) -> JsonResult {
    let q = query(q)?;
    let view = s.ctx.p2p.as_ref().map(|p| p.view());
    let mut v = views::info(&s.ctx.node, view.as_ref());
    v["node_id"] = Value::String(s.identity.id().to_string());
    if let Some(c) = q.challenge {
        let c = hex::decode(c.trim())
            .ok()
            .filter(|c| (16..=64).contains(&c.len()))
            .ok_or_else(|| {
                ApiError::bad_request("bad_query", "challenge must be 16 to 64 bytes of hex")
            })?;
        v["identity_proof"] =
            Value::String(hex::encode(s.identity.sign_api_challenge(&s.bound, &c)));
    }
    ok(v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainQuery {
    from: Option<u64>,
    limit: Option<u64>,
    hex: Option<bool>,
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
}

/// Pages of at most this many blocks (without hex) are cheap; larger ones wait their turn.
const SMALL_PAGE: u64 = 20;

async fn chain(State(s): St, q: Result<Query<ChainQuery>, QueryRejection>) -> Response {
    let answer = async {
        let q = query(q)?;
        let (from, limit, hex) = (
            q.from.unwrap_or(0),
            q.limit.unwrap_or(100),
            q.hex.unwrap_or(false),
        );
        let turn = if limit > SMALL_PAGE || hex {
            Some(s.heavy_turn().await?)
        } else {
            None
        };
        let node = s.ctx.node.clone();
        // Encoded on the blocking thread too, so a large page costs the async threads nothing.
        blocking(move || {
            let v = views::chain_page(&node, from, limit, hex)?;
            let body = serde_json::to_vec(&v)
                .map_err(|e| ApiError::internal(format!("encoding the page: {e}")))?;
            drop(turn);
            Ok(body)
        })
        .await
    }
    .await;
    match answer {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn block(State(s): St, Path(id): Path<String>) -> JsonResult {
    let id: BlockId = id.parse()?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::block(&node, id)).await?)
}

async fn tx(State(s): St, Path(id): Path<String>) -> JsonResult {
    let id = parse_txid(&id)?;
    ok(views::tx(&s.ctx.node, &id)?)
}

async fn proof(State(s): St, Path(id): Path<String>) -> JsonResult {
    let id = parse_txid(&id)?;
    ok(views::proof(&s.ctx.node, &id)?)
}

async fn confirmations(State(s): St, Path(id): Path<String>) -> JsonResult {
    let id = parse_txid(&id)?;
    ok(views::confirmations(&s.ctx.node, &id)?)
}

async fn validate(_: Authorized, State(s): St) -> JsonResult {
    let Ok(one) = s.validating.clone().try_acquire_owned() else {
        return Err(busy("a chain validation is already running"));
    };
    let turn = s.heavy_turn().await?;
    let node = s.ctx.node.clone();
    // The permits go with the work: a client that gives up does not free them early.
    ok(blocking(move || {
        let v = views::validate(&node).map(|(v, _)| v);
        drop((one, turn));
        v
    })
    .await?)
}

/// `?offset=N&limit=M` on a list: rows N.. (0 by default), at most [`MAX_PAGE`] of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    offset: Option<usize>,
    limit: Option<usize>,
}

/// Most rows one page of `/mempool` or `/wallet/history` holds (also the default).
pub const MAX_PAGE: usize = 1000;

impl PageQuery {
    fn page(q: Result<Query<PageQuery>, QueryRejection>) -> Result<views::Page, ApiError> {
        let q = query(q)?;
        let limit = q.limit.unwrap_or(MAX_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("limit must be 1 to {MAX_PAGE}, not {limit}"),
            ));
        }
        Ok(views::Page {
            offset: q.offset.unwrap_or(0),
            limit,
        })
    }
}

async fn mempool(State(s): St, q: Result<Query<PageQuery>, QueryRejection>) -> JsonResult {
    ok(views::mempool(&s.ctx.node, PageQuery::page(q)?))
}

async fn difficulty(State(s): St) -> JsonResult {
    ok(views::difficulty(&s.ctx.node))
}

async fn balance(State(s): St, Path(addr): Path<String>) -> JsonResult {
    let a = parse_address(&addr, s.ctx.node.network())?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::address_balance(&node, &a)).await?)
}

/// `GET /address/{addr}/utxos`: a page of the address's unspent coins, newest first.
async fn address_utxos(
    State(s): St,
    Path(addr): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> JsonResult {
    address_page(&s, &addr, q, views::AddressList::Coins).await
}

/// `GET /address/{addr}/history`: a page of the address's confirmed history, newest first,
/// and its mempool transactions.
async fn address_history(
    State(s): St,
    Path(addr): Path<String>,
    q: Result<Query<PageQuery>, QueryRejection>,
) -> JsonResult {
    address_page(&s, &addr, q, views::AddressList::History).await
}

async fn address_page(
    s: &ApiState,
    addr: &str,
    q: Result<Query<PageQuery>, QueryRejection>,
    list: views::AddressList,
) -> JsonResult {
    let page = PageQuery::page(q)?;
    let a = parse_address(addr, s.ctx.node.network())?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::address_page(&node, &a, page, list)).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeeQuery {
    blocks: Option<u64>,
}

/// Furthest `GET /fees/estimate` looks ahead.
pub const MAX_FEE_BLOCKS: u64 = 100;

/// `GET /fees/estimate?blocks=N`: the fee rate to be mined within N blocks (1 by default).
async fn fee_estimate(State(s): St, q: Result<Query<FeeQuery>, QueryRejection>) -> JsonResult {
    let blocks = query(q)?.blocks.unwrap_or(1);
    if !(1..=MAX_FEE_BLOCKS).contains(&blocks) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("blocks must be 1 to {MAX_FEE_BLOCKS}, not {blocks}"),
        ));
    }
    let rate = s.ctx.node.fee_estimate(blocks);
    let snap = s.ctx.node.snapshot();
    ok(json!({
        "blocks": blocks,
        "fee_rate": rate.per_kb_units().div_ceil(1_000),
        "fee_rate_per_kb": rate.per_kb_units(),
        "mempool_bytes": snap.mempool_bytes,
        "method": "mempool: the rate that outbids the transactions filling the next `blocks` \
                   blocks, highest rate first (one base unit per kB above the last one that \
                   fits); the minimum relay rate when the mempool does not fill them",
    }))
}

/// `GET /chain/tips`: every tip of the block tree.
async fn chain_tips(State(s): St) -> JsonResult {
    let node = s.ctx.node.clone();
    ok(blocking(move || views::chain_tips(&node)).await?)
}

async fn wallet_address(State(s): St) -> JsonResult {
    let w = wallet_of(&s)?;
    let net = s.ctx.node.network();
    let a = lock(&w)?.receive_address();
    ok(json!({ "address": a.encode(net) }))
}

async fn wallets(State(s): St) -> JsonResult {
    let w = wallet_of(&s)?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::wallets(&*lock(&w)?, &node)).await?)
}

async fn wallet_balance(State(s): St) -> JsonResult {
    let w = wallet_of(&s)?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::wallet_balance(&*lock(&w)?, &node)).await?)
}

async fn wallet_history(State(s): St, q: Result<Query<PageQuery>, QueryRejection>) -> JsonResult {
    let page = PageQuery::page(q)?;
    let w = wallet_of(&s)?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::wallet_history(&*lock(&w)?, &node, page)).await?)
}

async fn peers(State(s): St) -> JsonResult {
    let p = s.ctx.p2p.as_ref().ok_or_else(no_network)?;
    ok(views::peers(&p.view()))
}

async fn mining(State(s): St) -> JsonResult {
    ok(views::mining(&s.ctx.node))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateQuery {
    address: Option<String>,
}

async fn template(State(s): St, q: Result<Query<TemplateQuery>, QueryRejection>) -> JsonResult {
    let q = query(q)?;
    let net = s.ctx.node.network();
    let address = match q.address {
        Some(a) => parse_address(&a, net)?,
        None => receive_address(&s)?,
    };
    let t = s.ctx.node.block_template(address).await?;
    ok(views::template(&t, net))
}

async fn metrics(State(s): St) -> Response {
    let view = s.ctx.p2p.as_ref().map(|p| p.view());
    let text = super::metrics::render(&s.ctx.node.snapshot(), view.as_ref());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /events`: Server-Sent Events, numbered; `Last-Event-ID` (or `?after=N`) resumes after
/// event N while it is still kept, and a `missed` event says when it is not.
async fn events(
    State(s): St,
    headers: axum::http::HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    use super::events::Numbered;
    use axum::response::sse::{Event as Sse, KeepAlive};
    let after = match (query(q), headers.get("last-event-id")) {
        (Err(e), _) => return e.into_response(),
        (Ok(q), None) => q.after,
        (Ok(_), Some(v)) => match v.to_str().ok().and_then(|v| v.trim().parse().ok()) {
            Some(n) => Some(n),
            None => {
                return ApiError::bad_request(
                    "bad_event_id",
                    "Last-Event-ID: the number of the last event received",
                )
                .into_response();
            }
        },
    };
    let since = s.events.since(after);
    let frame = |(n, e): &Numbered| {
        Sse::default()
            .id(n.to_string())
            .event(e.name())
            .json_data(&**e)
            .unwrap_or_default()
    };
    let mut first = Vec::new();
    if since.missed {
        let oldest = since.backlog.first().map(|(n, _)| *n);
        first.push(
            Sse::default()
                .event("missed")
                .json_data(json!({ "after": after, "oldest_kept": oldest }))
                .unwrap_or_default(),
        );
    }
    first.extend(since.backlog.iter().map(frame));
    let live = futures_util::stream::unfold(since.live, move |mut rx| async move {
        use tokio::sync::broadcast::error::RecvError;
        match rx.recv().await {
            Ok(n) => Some((frame(&n), rx)),
            // This client read too slowly: say how many it lost, and go on.
            Err(RecvError::Lagged(k)) => {
                let e = Sse::default()
                    .event("missed")
                    .json_data(json!({ "lost": k }))
                    .unwrap_or_default();
                Some((e, rx))
            }
            Err(RecvError::Closed) => None,
        }
    });
    // The stream ends when the server stops.
    let stream = futures_util::StreamExt::take_until(
        futures_util::StreamExt::map(
            futures_util::StreamExt::chain(futures_util::stream::iter(first), live),
            Ok::<_, std::convert::Infallible>,
        ),
        s.events.stopped(),
    );
    axum::response::sse::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    after: Option<String>,
    timeout: Option<u64>,
}

/// Longest a `GET /blocks/wait` waits.
pub const MAX_BLOCK_WAIT: Duration = Duration::from_secs(60);

/// `GET /blocks/wait?after=HASH&timeout=S`: answers once the tip is not `after` (at once if
/// it already is not), or after `timeout` seconds (default and at most 60) with `changed: false`.
async fn block_wait(State(s): St, q: Result<Query<WaitQuery>, QueryRejection>) -> JsonResult {
    let q = query(q)?;
    let mut watch = s.ctx.node.watch();
    let after = match q.after {
        Some(h) => h.parse::<crate::core::hash::BlockHash>().map_err(|_| {
            ApiError::bad_request("bad_hash", format!("after: not a block hash: {h:?}"))
        })?,
        None => watch.borrow().tip,
    };
    let limit = match q.timeout {
        None => MAX_BLOCK_WAIT,
        Some(t) if t <= MAX_BLOCK_WAIT.as_secs() => Duration::from_secs(t),
        Some(t) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!(
                    "timeout: at most {} seconds, not {t}",
                    MAX_BLOCK_WAIT.as_secs()
                ),
            ));
        }
    };
    let changed = tokio::time::timeout(limit, watch.wait_for(|snap| snap.tip != after))
        .await
        .is_ok_and(|r| r.is_ok());
    let snap = s.ctx.node.snapshot();
    ok(json!({ "changed": changed, "tip": snap.tip.to_string(), "height": snap.height }))
}

async fn openapi() -> JsonResult {
    ok(super::openapi_json())
}

// ---- writes (token) ----

async fn new_transaction(_: Authorized, State(s): St, JsonBody(v): JsonBody<Value>) -> Response {
    let result = async {
        unsigned_seed_form(&v)?;
        let tx = views::tx_from_json(v, s.ctx.node.network())?;
        let txid = s.submitter.submit(tx).await?;
        Ok::<_, ApiError>(txid)
    }
    .await;
    match result {
        Ok(txid) => (
            StatusCode::CREATED,
            axum::Json(json!({ "txid": txid.to_string() })),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /transactions/check`: a dry run of `POST /transactions/new`. The verdict, with what
/// the transaction would pay, or the code and reason it would be refused with; nothing changes.
async fn check_transaction(
    _: Authorized,
    State(s): St,
    JsonBody(v): JsonBody<Value>,
) -> JsonResult {
    unsigned_seed_form(&v)?;
    let tx = views::tx_from_json(v, s.ctx.node.network())?;
    let txid = tx.txid();
    match s.ctx.node.check_tx(tx).await {
        Ok(a) => ok(json!({
            "accepted": true,
            "txid": a.txid.to_string(),
            "fee": a.fee.units(),
            "size": a.size,
            "fee_rate": a.rate.per_kb_units().div_ceil(1_000),
            "fee_rate_per_kb": a.rate.per_kb_units(),
            "would_evict": a.evict.len(),
        })),
        Err(crate::node::NodeError::Mempool(e)) => {
            let e = ApiError::from(crate::node::NodeError::Mempool(e));
            ok(json!({
                "accepted": false,
                "txid": txid.to_string(),
                "code": e.code,
                "reason": e.message,
            }))
        }
        Err(e) => Err(e.into()),
    }
}

/// Refuses the teaching blockchains' unsigned `{sender, recipient, amount}`, saying what this
/// node takes instead.
fn unsigned_seed_form(v: &Value) -> Result<(), ApiError> {
    let seed_keys = ["sender", "recipient", "amount"];
    if !v
        .as_object()
        .is_some_and(|o| seed_keys.iter().any(|k| o.contains_key(*k)))
    {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "unsigned_transaction",
        "this node takes signed transactions only: `sender`, `recipient` and `amount` say \
         who pays whom but prove nothing. To pay from this node's wallet, POST /wallet/send \
         {\"address\": \"<recipient address>\", \"amount\": \"1.5\"}; to send a transaction \
         signed elsewhere, POST it here with `inputs` (each coin spent, with its owner's public \
         key and signature) and `outputs` (see the README's signing recipe)",
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HexBody {
    hex: String,
}

async fn submit_block(_: Authorized, State(s): St, JsonBody(b): JsonBody<HexBody>) -> JsonResult {
    let params = s.ctx.node.params();
    let bytes =
        hex::decode(&b.hex).map_err(|e| ApiError::bad_request("bad_block", format!("hex: {e}")))?;
    let block = Block::decode(&bytes, params.max_block_size)
        .map_err(|e| ApiError::bad_request("bad_block", format!("block: {e}")))?;
    let hash = block.hash();
    // A block from the API must build on a block we have: orphans would be kept, and the
    // caller asked for an answer now.
    if s.ctx.node.block_meta(&block.header.prev)?.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_parent",
            format!("block {hash} builds on unknown block {}", block.header.prev),
        ));
    }
    let (result, height) = match s.ctx.node.submit_block(block).await? {
        Accepted::Duplicate => ("duplicate", None),
        Accepted::Orphan => ("orphan", None),
        Accepted::SideBranch => ("side_branch", None),
        Accepted::TipChanged(c) => (
            "connected",
            c.connected
                .iter()
                .find(|(b, _)| b.hash() == hash)
                .map(|(_, h)| *h),
        ),
    };
    let height = match height {
        Some(h) => Some(h),
        None => s.ctx.node.block_meta(&hash)?.map(|m| m.height),
    };
    ok(json!({ "hash": hash.to_string(), "result": result, "height": height }))
}

async fn wallet_new_address(_: Authorized, State(s): St) -> JsonResult {
    let w = wallet_of(&s)?;
    let net = s.ctx.node.network();
    let a = blocking(move || Ok(lock(&w)?.new_address()?)).await?;
    ok(json!({ "address": a.encode(net) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    address: String,
    /// Base units.
    amount: u64,
    /// Base units per byte.
    fee_rate: Option<u64>,
}

async fn wallet_send(_: Authorized, State(s): St, JsonBody(b): JsonBody<SendBody>) -> JsonResult {
    let net = s.ctx.node.network();
    let to = parse_address(&b.address, net)?;
    if b.amount == 0 {
        return Err(ApiError::bad_request(
            "bad_amount",
            "bad amount: must be above zero",
        ));
    }
    let rate = fee_rate(b.fee_rate)?;
    let w = wallet_of(&s)?;
    ok(views::send(&w, &s.ctx.node, to, Amount::from_units(b.amount), rate).await?)
}

/// A fee rate in base units per byte, as the node's per-kB rate.
pub fn fee_rate(per_byte: Option<u64>) -> Result<FeeRate, ApiError> {
    match per_byte {
        Some(r) => FeeRate::parse_per_byte(r)
            .map_err(|e| ApiError::bad_request("bad_fee_rate", format!("bad fee rate: {e}"))),
        None => Ok(FeeRate::DEFAULT),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnbanBody {
    id: String,
}

async fn unban(_: Authorized, State(s): St, JsonBody(b): JsonBody<UnbanBody>) -> JsonResult {
    let p = s.ctx.p2p.as_ref().ok_or_else(no_network)?;
    if p.unban(&b.id).await? {
        ok(json!({ "unbanned": b.id }))
    } else {
        Err(ApiError::not_found(format!("no ban on {:?}", b.id)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    nodes: Vec<String>,
}

/// Most addresses one `POST /nodes/register` dials.
pub const MAX_REGISTER: usize = 16;
/// Longest `POST /nodes/register` waits for its dials (one dial gives up after 5 s).
pub const REGISTER_WAIT: Duration = Duration::from_secs(7);

async fn register(_: Authorized, State(s): St, JsonBody(b): JsonBody<RegisterBody>) -> JsonResult {
    let p = s.ctx.p2p.as_ref().ok_or_else(no_network)?;
    if b.nodes.is_empty() {
        return Err(ApiError::bad_request(
            "bad_nodes",
            "nodes: give at least one address",
        ));
    }
    if b.nodes.len() > MAX_REGISTER {
        return Err(ApiError::bad_request(
            "bad_nodes",
            format!(
                "nodes: at most {MAX_REGISTER} addresses at once, got {}",
                b.nodes.len()
            ),
        ));
    }
    // Every entry is checked before any is dialled.
    let entries = b
        .nodes
        .iter()
        .map(|n| register_entry(n))
        .collect::<Result<Vec<_>, _>>()?;
    // All at once; whatever has not answered by REGISTER_WAIT is reported as failed.
    let net = s.ctx.node.network();
    let dials = entries.into_iter().map(|e| async move {
        tokio::time::timeout(REGISTER_WAIT, register_one(p, e, net))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", REGISTER_WAIT.as_secs())))
    });
    let results = futures_util::future::join_all(dials).await;
    let mut connected = Vec::new();
    let mut failed = Vec::new();
    for (text, r) in b.nodes.iter().zip(results) {
        match r {
            Ok(id) => connected.push(json!({ "addr": text, "id": id.to_string() })),
            Err(e) => failed.push(json!({ "addr": text, "error": e })),
        }
    }
    let total = p.view().peers.len();
    ok(json!({ "connected": connected, "failed": failed, "peers": total }))
}

/// One `POST /nodes/register` entry: a peer's address, or a node's API written as a URL (as
/// the teaching blockchains name their nodes), whose `/info` gives its peer address.
enum RegisterEntry {
    Peer(PeerAddr),
    Api(std::net::SocketAddr),
}

fn register_entry(text: &str) -> Result<RegisterEntry, ApiError> {
    let bad = |why: String| ApiError::bad_request("bad_address", format!("{text:?}: {why}"));
    let t = text.trim();
    if t.starts_with("https://") {
        return Err(bad(
            "chain-tui's API speaks plain HTTP on loopback: write http://HOST:PORT".into(),
        ));
    }
    if let Some(rest) = t.strip_prefix("http://") {
        let hostport = rest.trim_end_matches('/');
        return match hostport.parse::<PeerAddr>() {
            Ok(PeerAddr { id: None, addr }) => Ok(RegisterEntry::Api(addr)),
            Ok(_) => Err(bad("a URL names no node id: write http://HOST:PORT".into())),
            Err(e) => Err(bad(e.to_string())),
        };
    }
    t.parse::<PeerAddr>()
        .map(RegisterEntry::Peer)
        .map_err(|e| bad(e.to_string()))
}

/// How long `/nodes/register` waits for another node's API to answer `/info`.
const API_LOOKUP_WAIT: Duration = Duration::from_millis(1500);

/// What a chain-tui API at `api` says of its node in `/info`: its network, node id and peer
/// address; `None` if nothing there answers as a chain-tui API.
async fn api_info(api: std::net::SocketAddr) -> Option<(String, Option<String>, Option<String>)> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(API_LOOKUP_WAIT)
        .build()
        .ok()?;
    // Another program may answer there: read at most 64 KiB of it (an `/info` is ~1 KiB).
    const MAX_INFO: usize = 64 * 1024;
    let mut resp = http.get(format!("http://{api}/info")).send().await.ok()?;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_INFO {
            return None;
        }
    }
    let v: Value = serde_json::from_slice(&body).ok()?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Some((text("network")?, text("node_id"), text("listen")))
}

/// Dials one entry: an API URL is first asked for its node's peer address. A peer address that
/// does not answer is checked for being an API port, the usual mix-up.
async fn register_one(
    p: &crate::node::P2pHandle,
    entry: RegisterEntry,
    net: crate::core::params::Network,
) -> Result<crate::node::NodeId, String> {
    let target = match entry {
        RegisterEntry::Peer(a) => a,
        RegisterEntry::Api(api) => {
            let Some((network, id, listen)) = api_info(api).await else {
                return Err(format!("no chain-tui API answered at http://{api}"));
            };
            if network != net.name() {
                return Err(format!("that node runs {network}, this one {net}"));
            }
            let (Some(id), Some(listen)) = (id, listen) else {
                return Err("that node runs without a peer-to-peer part".into());
            };
            let id = id.parse().map_err(|e| format!("its node id: {e}"))?;
            let mut addr: std::net::SocketAddr = listen
                .parse()
                .map_err(|e| format!("its peer address: {e}"))?;
            if addr.ip().is_unspecified() {
                // It listens on every interface: reach it where its API answered.
                addr.set_ip(api.ip());
            }
            PeerAddr::new(addr, Some(id))
        }
    };
    match p.connect(target).await {
        Ok(id) => Ok(id),
        Err(e) => match api_info(target.addr).await {
            Some((_, _, Some(listen))) => Err(format!(
                "{} is a chain-tui API port (HTTP), not a peer port: that node's peers connect \
                 to {listen}; register that, or http://{} to have it looked up",
                target.addr, target.addr
            )),
            _ => Err(e.to_string()),
        },
    }
}

/// Longest `nodes/resolve` waits for a sync to settle.
const RESOLVE_WAIT: Duration = Duration::from_secs(10);

async fn resolve(_: Authorized, State(s): St) -> JsonResult {
    let p = s.ctx.p2p.as_ref().ok_or_else(no_network)?;
    let node = &s.ctx.node;
    let before = node.snapshot();
    p.sync_now().await?;
    // Settled: nothing queued for download and the tip unchanged for a moment.
    let start = Instant::now();
    let mut last_tip = node.snapshot().tip;
    let mut stable_since = Instant::now();
    while start.elapsed() < RESOLVE_WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let tip = node.snapshot().tip;
        if tip != last_tip {
            last_tip = tip;
            stable_since = Instant::now();
        }
        if p.view().downloading == 0 && stable_since.elapsed() >= Duration::from_millis(300) {
            break;
        }
    }
    let after = node.snapshot();
    ok(json!({
        "replaced": after.tip != before.tip,
        "previous_tip": before.tip.to_string(),
        "previous_height": before.height,
        "tip": after.tip.to_string(),
        "height": after.height,
        "peers": p.view().peers.len(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MiningBody {
    mining: bool,
    threads: Option<usize>,
}

/// Threads for mining: the default when not given, at least 1, at most
/// [`miner::max_threads`](crate::node::max_threads) (four per core).
fn mining_threads(s: &ApiState, threads: Option<usize>) -> Result<usize, ApiError> {
    let max = crate::node::max_threads();
    match threads {
        Some(0) => Err(ApiError::bad_request(
            "bad_threads",
            "threads must be at least 1 to mine",
        )),
        Some(t) if t > max => Err(ApiError::bad_request(
            "bad_threads",
            format!("threads: at most {max} (four per core), got {t}"),
        )),
        Some(t) => Ok(t),
        None => Ok(s.ctx.mine_threads.clamp(1, max)),
    }
}

async fn set_mining(_: Authorized, State(s): St, JsonBody(b): JsonBody<MiningBody>) -> JsonResult {
    let threads = if b.mining {
        mining_threads(&s, b.threads)?
    } else {
        0
    };
    let address = if threads > 0 {
        Some(receive_address(&s)?)
    } else {
        // Off means off: a mine job stops too.
        s.jobs.cancel_all().await;
        None
    };
    s.ctx.node.set_mining(threads, address).await?;
    ok(views::mining(&s.ctx.node))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MineBody {
    blocks: Option<u64>,
    threads: Option<usize>,
    /// Who the coinbases pay (the wallet's receive address if left out).
    address: Option<String>,
}

/// Most blocks one `POST /mine` mines.
pub const MAX_MINE: u64 = 100_000;
/// A `POST /mine` of at most this many blocks is answered with the blocks when they are mined
/// within [`MINE_WAIT`]; a larger one, or a slower one, with `202` and its job.
pub const MINE_SYNC: u64 = 16;
pub const MINE_WAIT: Duration = Duration::from_secs(15);

async fn mine_blocks(
    s: &ApiState,
    blocks: u64,
    threads: Option<usize>,
    to: Option<&str>,
) -> Response {
    let answer = async {
        if blocks == 0 || blocks > MAX_MINE {
            return Err(ApiError::bad_request(
                "bad_blocks",
                format!("blocks must be 1 to {MAX_MINE}"),
            ));
        }
        let threads = mining_threads(s, threads)?;
        let address = match to {
            Some(a) => parse_address(a, s.ctx.node.network())?,
            None => receive_address(s)?,
        };
        let job = s.jobs.start_mine(&s.ctx.node, address, blocks, threads)?;
        if blocks <= MINE_SYNC && job.wait(MINE_WAIT).await {
            return Ok(match job.result() {
                Some(Ok(v)) => axum::Json(v).into_response(),
                Some(Err(e)) => e.into_response(),
                None => ApiError::internal("a finished job without its result").into_response(),
            });
        }
        Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/jobs/{}", job.id))],
            axum::Json(job.view()),
        )
            .into_response())
    }
    .await;
    answer.unwrap_or_else(IntoResponse::into_response)
}

async fn mine(_: Authorized, State(s): St, JsonBody(b): JsonBody<MineBody>) -> Response {
    mine_blocks(&s, b.blocks.unwrap_or(1), b.threads, b.address.as_deref()).await
}

async fn mine_one(_: Authorized, State(s): St) -> Response {
    mine_blocks(&s, 1, None, None).await
}

fn job_of(s: &ApiState, id: &str) -> Result<std::sync::Arc<super::jobs::MineJob>, ApiError> {
    id.parse::<u64>()
        .ok()
        .and_then(|id| s.jobs.get(id))
        .ok_or_else(|| ApiError::not_found(format!("no job {id:?}")))
}

async fn job(State(s): St, Path(id): Path<String>) -> JsonResult {
    ok(job_of(&s, &id)?.view())
}

async fn cancel_job(_: Authorized, State(s): St, Path(id): Path<String>) -> JsonResult {
    let job = job_of(&s, &id)?;
    if !job.is_finished() {
        job.cancel_and_wait(Duration::from_secs(10)).await;
    }
    ok(job.view())
}

async fn import(_: Authorized, State(s): St, req: Request) -> JsonResult {
    let Ok(_one) = s.importing.clone().try_acquire_owned() else {
        return Err(busy("another chain import is running"));
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_IMPORT as u64) {
        return Err(too_large());
    }
    // Decoded block by block as the body arrives: only the blocks are held, never the body.
    let failure = Arc::new(Mutex::new(None));
    let deadline = tokio::time::Instant::now() + s.limits.import_timeout;
    let stream = limited_body(req.into_body(), MAX_IMPORT, deadline, failure.clone());
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let net = s.ctx.node.network();
    let decoded = tokio::task::spawn_blocking(move || {
        let r = std::io::BufReader::with_capacity(64 * 1024, reader);
        chainfile::read_chain(r, "the request body", net)
    })
    .await?;
    let blocks = decoded.map_err(|e| {
        failure
            .lock()
            .ok()
            .and_then(|mut f| f.take())
            .unwrap_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_chain", e))
    })?;
    let n = blocks.len();
    let height = s.ctx.node.import(blocks).await?;
    ok(json!({ "blocks": n, "height": height }))
}

/// A request body as a byte stream that ends in an error past `max` bytes, at `deadline`, or
/// when the body fails; the reason is left in `failure`.
fn limited_body(
    body: axum::body::Body,
    max: usize,
    deadline: tokio::time::Instant,
    failure: Arc<Mutex<Option<ApiError>>>,
) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> + Send {
    use futures_util::StreamExt;
    let fail = move |e: ApiError| {
        let io = std::io::Error::other(e.message.clone());
        if let Ok(mut f) = failure.lock() {
            *f = Some(e);
        }
        Err(io)
    };
    let mut seen = 0usize;
    let mut over = false;
    let mut data = body.into_data_stream();
    futures_util::stream::poll_fn(move |cx| {
        if over {
            return std::task::Poll::Ready(None);
        }
        if tokio::time::Instant::now() >= deadline {
            over = true;
            return std::task::Poll::Ready(Some(fail(body_timeout())));
        }
        let item = std::task::ready!(data.poll_next_unpin(cx));
        std::task::Poll::Ready(match item {
            None => None,
            Some(Ok(bytes)) => {
                seen += bytes.len();
                if seen > max {
                    over = true;
                    Some(fail(too_large()))
                } else {
                    Some(Ok(bytes))
                }
            }
            Some(Err(e)) => {
                over = true;
                Some(fail(if is_timeout(&e) {
                    body_timeout()
                } else {
                    ApiError::bad_request("bad_body", format!("cannot read the request body: {e}"))
                }))
            }
        })
    })
}

impl From<ProcessError> for ApiError {
    fn from(e: ProcessError) -> ApiError {
        crate::node::NodeError::Block(e).into()
    }
}

/// Read `bytes` as every JSON request body type the routes take (the way [`JsonBody`] does) and
/// run the checks a handler makes before it touches the node (hex and block decoding, address
/// and peer parsing); `query` likewise as every query string. Returns how many parsed. Only for
/// the fuzz targets in `fuzz/`, which cannot name the private body types; dials nothing.
#[doc(hidden)]
pub fn fuzz_request_bodies(bytes: &[u8], query: &str) -> usize {
    use super::server::decode_json_body;
    use crate::core::params::Network;
    let mut parsed = 0;
    if let Ok(b) = decode_json_body::<HexBody>(bytes) {
        parsed += 1;
        if let Ok(raw) = hex::decode(&b.hex) {
            let max = Network::Regtest.params().max_block_size;
            if let Ok(block) = Block::decode(&raw, max) {
                parsed += usize::from(block.encode() == raw);
            }
        }
    }
    if let Ok(b) = decode_json_body::<SendBody>(bytes) {
        parsed += 1;
        parsed += usize::from(parse_address(&b.address, Network::Regtest).is_ok());
        parsed += usize::from(fee_rate(b.fee_rate).is_ok() && b.amount > 0);
    }
    if let Ok(b) = decode_json_body::<UnbanBody>(bytes) {
        parsed += usize::from(!b.id.is_empty());
    }
    if let Ok(b) = decode_json_body::<RegisterBody>(bytes) {
        parsed += b.nodes.iter().filter(|n| register_entry(n).is_ok()).count();
    }
    if let Ok(b) = decode_json_body::<MiningBody>(bytes) {
        parsed += usize::from(b.mining) + b.threads.map_or(0, |t| usize::from(t > 0));
    }
    if let Ok(b) = decode_json_body::<MineBody>(bytes) {
        parsed += usize::from(b.blocks.is_some_and(|n| n <= MAX_MINE)) + b.threads.map_or(0, |_| 1);
    }
    if let Ok(v) = decode_json_body::<Value>(bytes) {
        parsed += usize::from(unsigned_seed_form(&v).is_err());
        parsed += usize::from(views::tx_from_json(v, Network::Regtest).is_ok());
    }
    if let Ok(uri) = format!("/?{query}").parse::<axum::http::Uri>() {
        if let Ok(Query(q)) = Query::<ChainQuery>::try_from_uri(&uri) {
            parsed += usize::from(q.from.is_some() || q.limit.is_some() || q.hex.is_some());
        }
        if let Ok(Query(q)) = Query::<TemplateQuery>::try_from_uri(&uri) {
            parsed += q.address.map_or(0, |a| {
                usize::from(parse_address(&a, Network::Regtest).is_ok())
            });
        }
    }
    parsed += usize::from(query.parse::<BlockId>().is_ok());
    parsed += usize::from(parse_txid(query).is_ok());
    parsed
}
