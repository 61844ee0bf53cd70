//! The endpoints: a handler for each, annotated with what it takes and answers. The router
//! and the OpenAPI document (`GET /openapi.json`) are built from the same annotations
//! (utoipa-axum), so the document lists exactly the routes served, with the types of
//! [`types`](super::types); [`route_table`] reads it back for the CLI and the tests.

use super::error::ApiError;
use super::server::{
    ApiState, Authorized, JsonBody, MAX_BODY, body_timeout, busy, check_host, check_read_token,
    deadline, is_timeout, too_large,
};
use super::types::{self as t, ErrorBody};
use super::views::{self, BlockId, parse_address, parse_txid};
use crate::core::amount::Amount;
use crate::core::block::Block;
use crate::node::FeeRate;
use crate::node::PeerAddr;
use crate::node::chainfile;
use crate::node::{Accepted, ProcessError};
use crate::wallet::Wallet;
use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<ApiState>>;
type JsonResult<T> = Result<Json<T>, ApiError>;

/// One endpoint: method, path (axum syntax), whether it needs the token, and its summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteDoc {
    pub method: String,
    pub path: String,
    pub token: bool,
    pub summary: String,
}

/// Every endpoint the API serves, read from the generated OpenAPI document.
pub fn route_table() -> Vec<RouteDoc> {
    let spec = openapi_json();
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let token = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            out.push(RouteDoc {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                token,
                summary: op["summary"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    out
}

/// Largest chain file `POST /chain/import` takes.
pub const MAX_IMPORT: usize = 256 * 1024 * 1024;

/// The routes with their OpenAPI annotations; `block_limit` caps a `POST /blocks` body.
#[allow(deprecated)] // GET /mine and GET /nodes/resolve: served, and documented as deprecated
fn api_routes(block_limit: usize) -> OpenApiRouter<Arc<ApiState>> {
    let (schemas, paths, submit) = routes!(submit_block);
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(info))
        .routes(routes!(chain))
        .routes(routes!(block))
        .routes((
            schemas,
            paths,
            submit.layer(DefaultBodyLimit::max(block_limit)),
        ))
        .routes(routes!(tx))
        .routes(routes!(search))
        .routes(routes!(proof))
        .routes(routes!(confirmations))
        .routes(routes!(new_transaction))
        .routes(routes!(check_transaction))
        .routes(routes!(build_transaction))
        .routes(routes!(validate))
        .routes(routes!(mempool))
        .routes(routes!(difficulty))
        .routes(routes!(balance))
        .routes(routes!(fee_estimate))
        .routes(routes!(chain_tips))
        .routes(routes!(address_utxos))
        .routes(routes!(address_history))
        .routes(routes!(wallet_address, wallet_new_address))
        .routes(routes!(wallet_balance))
        .routes(routes!(wallets))
        .routes(routes!(wallet_history))
        .routes(routes!(wallet_send))
        .routes(routes!(events))
        .routes(routes!(block_wait))
        .routes(routes!(peers))
        .routes(routes!(unban))
        .routes(routes!(register))
        .routes(routes!(resolve_get, resolve))
        .routes(routes!(mining, set_mining))
        .routes(routes!(template))
        .routes(routes!(mine_one, mine))
        .routes(routes!(job, cancel_job))
        .routes(routes!(import))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

pub(crate) fn router(state: Arc<ApiState>) -> Router {
    let block_limit = state.ctx.node.params().max_block_size * 2 + 1024;
    let (routes, _) = api_routes(block_limit).split_for_parts();
    routes
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
            check_read_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host,
        ))
        .with_state(state)
}

/// The OpenAPI 3.1 document: the routes' annotations, then what every operation shares (the
/// error answers any request can get, the token's 401) and the links between operations.
pub fn openapi_json() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let doc = api_routes(0).into_openapi();
        let mut v = serde_json::to_value(doc).unwrap_or(Value::Null);
        super::spec::complete(&mut v);
        v
    })
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "chain-tui node API",
        description = "The REST API of a chain-tui node: what a person does in the dashboard, \
            for scripts. It listens on loopback; writes need the bearer token from the data \
            dir's node.json. Amounts are integers in base units (100,000,000 to the coin); \
            hashes, txids, keys and signatures are lowercase hex. Every error is \
            `{\"error\", \"code\"}`; a 4xx answer means nothing changed.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    servers((url = "http://127.0.0.1:18443", description = "a regtest node on its default API port")),
    components(schemas(ErrorBody, super::events::Event, super::events::BlockAt)),
    tags(
        (name = "chain", description = "Blocks, the active chain and its tips"),
        (name = "transactions", description = "Transactions: look up, check, submit"),
        (name = "addresses", description = "Any address's balance, coins and history"),
        (name = "wallet", description = "The node's own wallet"),
        (name = "mining", description = "The node's miner, templates for external miners, mine jobs"),
        (name = "network", description = "Peers, bans and sync"),
        (name = "node", description = "The node at a glance, events, metrics, this document"),
    ),
)]
struct ApiDoc;

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

fn ok<T>(v: T) -> JsonResult<T> {
    Ok(Json(v))
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

/// The node at a glance
///
/// Network, height, tip, work, difficulty, peers, mempool size, hash rate, sync state and
/// version. With `?challenge=HEX` (16 to 64 random bytes) the answer carries `identity_proof`,
/// the node key's signature binding the API address and the challenge.
#[utoipa::path(get, path = "/info", tag = "node", security(()), params(t::InfoQuery),
    responses((status = 200, body = t::Info)))]
async fn info(State(s): St, q: Result<Query<t::InfoQuery>, QueryRejection>) -> JsonResult<t::Info> {
    let q = query(q)?;
    let view = s.ctx.p2p.as_ref().map(|p| p.view());
    let mut v = views::info(&s.ctx.node, view.as_ref());
    v.node_id = Some(s.identity.id().to_string());
    if let Some(c) = q.challenge {
        let c = hex::decode(c.trim())
            .ok()
            .filter(|c| (16..=64).contains(&c.len()))
            .ok_or_else(|| {
                ApiError::bad_request("bad_query", "challenge must be 16 to 64 bytes of hex")
            })?;
        v.identity_proof = Some(hex::encode(s.identity.sign_api_challenge(&s.bound, &c)));
    }
    ok(v)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
}

/// Pages of at most this many blocks (without hex) are cheap; larger ones wait their turn.
const SMALL_PAGE: u64 = 20;

/// Active-chain blocks, a page at a time
///
/// Oldest first from `from`; at most 500 a page. `hex=true` adds each block's encoding (as
/// `chain export` writes them).
#[utoipa::path(get, path = "/chain", tag = "chain", security(()), params(t::ChainQuery),
    responses((status = 200, body = t::ChainPage)))]
async fn chain(State(s): St, q: Result<Query<t::ChainQuery>, QueryRejection>) -> Response {
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

/// One block by height or hash
#[utoipa::path(get, path = "/blocks/{id}", tag = "chain", security(()),
    params(("id" = String, Path, description = "A height or a block hash",
        pattern = "^([0-9]{1,19}|[0-9a-f]{64})$"), t::BlockQuery),
    responses((status = 200, body = t::BlockView), (status = 404, body = ErrorBody)))]
async fn block(
    State(s): St,
    Path(id): Path<String>,
    q: Result<Query<t::BlockQuery>, QueryRejection>,
) -> JsonResult<t::BlockView> {
    let hex = query(q)?.hex.unwrap_or(false);
    let id: BlockId = id.parse()?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::block(&node, id, hex)).await?)
}

/// One transaction, confirmed or in the mempool
#[utoipa::path(get, path = "/tx/{txid}", tag = "transactions", security(()),
    params(("txid" = String, Path, pattern = "^[0-9a-f]{64}$"), t::TxQuery),
    responses((status = 200, body = t::TxView), (status = 404, body = ErrorBody)))]
async fn tx(
    State(s): St,
    Path(id): Path<String>,
    q: Result<Query<t::TxQuery>, QueryRejection>,
) -> JsonResult<t::TxView> {
    let q = query(q)?;
    let id = parse_txid(&id)?;
    let spends = q.spends.unwrap_or(false);
    // Finding the spenders reads blocks: one such request at a time.
    let _turn = if spends {
        Some(s.heavy_turn().await?)
    } else {
        None
    };
    let node = s.ctx.node.clone();
    let answer = tokio::task::spawn_blocking(move || views::tx(&node, &id, spends))
        .await
        .map_err(|e| ApiError::internal(format!("reading the transaction: {e}")))?;
    ok(answer?)
}

/// What a height, hash, txid (or a unique prefix of one) or address names
#[utoipa::path(get, path = "/search", tag = "chain", security(()), params(t::SearchQuery),
    responses((status = 200, body = t::SearchResult)))]
async fn search(
    State(s): St,
    q: Result<Query<t::SearchQuery>, QueryRejection>,
) -> JsonResult<t::SearchResult> {
    let q = query(q)?;
    if q.q.len() > 200 {
        return Err(ApiError::bad_request(
            "bad_query",
            "q: at most 200 characters (a height, a hash, a txid or an address)",
        ));
    }
    ok(views::search(&s.ctx.node, &q.q)?)
}

/// Merkle proof that a confirmed transaction is in its block
#[utoipa::path(get, path = "/tx/{txid}/proof", tag = "transactions", security(()),
    params(("txid" = String, Path, pattern = "^[0-9a-f]{64}$")),
    responses((status = 200, body = t::Proof), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`unconfirmed`: still in the mempool")))]
async fn proof(State(s): St, Path(id): Path<String>) -> JsonResult<t::Proof> {
    let id = parse_txid(&id)?;
    ok(views::proof(&s.ctx.node, &id)?)
}

/// Confirmations of a transaction
#[utoipa::path(get, path = "/transaction/confirmations/{txid}", tag = "transactions", security(()),
    params(("txid" = String, Path, pattern = "^[0-9a-f]{64}$")),
    responses((status = 200, body = t::Confirmations), (status = 404, body = ErrorBody)))]
async fn confirmations(State(s): St, Path(id): Path<String>) -> JsonResult<t::Confirmations> {
    let id = parse_txid(&id)?;
    ok(views::confirmations(&s.ctx.node, &id)?)
}

/// Re-verify the whole chain from genesis
///
/// As `chain validate` does; one at a time (`503 busy` while one runs).
#[utoipa::path(get, path = "/validate", tag = "chain", security(("bearer" = [])),
    responses((status = 200, body = t::Validation)))]
async fn validate(_: Authorized, State(s): St) -> JsonResult<t::Validation> {
    let Ok(one) = s.validating.clone().try_acquire_owned() else {
        return Err(busy("a chain validation is already running"));
    };
    let turn = s.heavy_turn().await?;
    let node = s.ctx.node.clone();
    // The permits go with the work: a client that gives up does not free them early.
    ok(blocking(move || {
        let v = views::validate(&node);
        drop((one, turn));
        v
    })
    .await?)
}

/// Most rows one page of `/mempool` or `/wallet/history` holds (also the default).
pub const MAX_PAGE: usize = 1000;

/// `?offset=N&limit=M` on a list: rows N.. (0 by default), at most [`MAX_PAGE`] of them.
fn page(q: Result<Query<t::PageQuery>, QueryRejection>) -> Result<views::Page, ApiError> {
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

/// Mempool transactions by fee rate, a page at a time
#[utoipa::path(get, path = "/mempool", tag = "transactions", security(()), params(t::PageQuery),
    responses((status = 200, body = t::Mempool)))]
async fn mempool(
    State(s): St,
    q: Result<Query<t::PageQuery>, QueryRejection>,
) -> JsonResult<t::Mempool> {
    ok(views::mempool(&s.ctx.node, page(q)?))
}

/// Current difficulty, compact bits and target
#[utoipa::path(get, path = "/difficulty", tag = "chain", security(()),
    responses((status = 200, body = t::Difficulty)))]
async fn difficulty(State(s): St) -> JsonResult<t::Difficulty> {
    ok(views::difficulty(&s.ctx.node))
}

/// Confirmed balance of any address
///
/// From the address index: spendable and immature coins at the tip.
#[utoipa::path(get, path = "/balance/{address}", tag = "addresses", security(()),
    params(("address" = String, Path, description = "An address of this network")),
    responses((status = 200, body = t::AddressBalance)))]
async fn balance(State(s): St, Path(addr): Path<String>) -> JsonResult<t::AddressBalance> {
    let a = parse_address(&addr, s.ctx.node.network())?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::address_balance(&node, &a)).await?)
}

/// Unspent coins of any address, newest first, a page at a time
#[utoipa::path(get, path = "/address/{address}/utxos", tag = "addresses", security(()),
    params(("address" = String, Path, description = "An address of this network"), t::PageQuery),
    responses((status = 200, body = t::AddressCoins)))]
async fn address_utxos(
    State(s): St,
    Path(addr): Path<String>,
    q: Result<Query<t::PageQuery>, QueryRejection>,
) -> JsonResult<t::AddressCoins> {
    let page = page(q)?;
    let a = parse_address(&addr, s.ctx.node.network())?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::address_coins(&node, &a, page)).await?)
}

/// Confirmed history of any address, newest first, a page at a time, and its mempool transactions
#[utoipa::path(get, path = "/address/{address}/history", tag = "addresses", security(()),
    params(("address" = String, Path, description = "An address of this network"), t::PageQuery),
    responses((status = 200, body = t::AddressHistory)))]
async fn address_history(
    State(s): St,
    Path(addr): Path<String>,
    q: Result<Query<t::PageQuery>, QueryRejection>,
) -> JsonResult<t::AddressHistory> {
    let page = page(q)?;
    let a = parse_address(&addr, s.ctx.node.network())?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::address_history(&node, &a, page)).await?)
}

/// Furthest `GET /fees/estimate` looks ahead.
pub const MAX_FEE_BLOCKS: u64 = 100;

/// The fee rate to be mined within N blocks
///
/// The higher of two: from the mempool, the rate that outbids the transactions filling the
/// next `blocks` blocks, highest rate first; from the last 24 blocks, the lowest rate that
/// would have entered enough of them to be mined within `blocks` blocks 19 times in 20 (a full
/// block took its lowest rate, one with room anything relayed).
#[utoipa::path(get, path = "/fees/estimate", tag = "transactions", security(()), params(t::FeeQuery),
    responses((status = 200, body = t::FeeEstimate)))]
async fn fee_estimate(
    State(s): St,
    q: Result<Query<t::FeeQuery>, QueryRejection>,
) -> JsonResult<t::FeeEstimate> {
    let blocks = query(q)?.blocks.unwrap_or(1);
    if !(1..=MAX_FEE_BLOCKS).contains(&blocks) {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("blocks must be 1 to {MAX_FEE_BLOCKS}, not {blocks}"),
        ));
    }
    let node = s.ctx.node.clone();
    let e = blocking(move || Ok(node.fee_estimate(blocks)?)).await?;
    let snap = s.ctx.node.snapshot();
    ok(t::FeeEstimate {
        blocks,
        fee_rate: e.rate.per_kb_units().div_ceil(1_000),
        fee_rate_per_kb: e.rate.per_kb_units(),
        from_mempool_per_kb: e.from_mempool.per_kb_units(),
        from_blocks_per_kb: e.from_blocks.map(|r| r.per_kb_units()),
        blocks_read: e.blocks_read,
        full_blocks: e.full_blocks,
        mempool_bytes: snap.mempool_bytes,
        method: "the higher of two rates. From the mempool: the rate that outbids the \
                 transactions filling the next `blocks` blocks, highest rate first (one base \
                 unit per kB above the last one that fits), or the minimum relay rate when \
                 the mempool does not fill them. From the last 24 blocks: the lowest rate that \
                 would have entered enough of them to be mined within `blocks` blocks 19 times \
                 in 20 if the coming blocks are like those (a full block, 95% of its room used, \
                 took its lowest rate; one with room took anything relayed)"
            .into(),
    })
}

/// Every tip of the block tree
///
/// Active, valid_fork, stored or invalid, with the length of its branch.
#[utoipa::path(get, path = "/chain/tips", tag = "chain", security(()),
    responses((status = 200, body = t::ChainTips)))]
async fn chain_tips(State(s): St) -> JsonResult<t::ChainTips> {
    let node = s.ctx.node.clone();
    ok(blocking(move || views::chain_tips(&node)).await?)
}

/// The node wallet's receive address
#[utoipa::path(get, path = "/wallet/address", tag = "wallet", security(()),
    responses((status = 200, body = t::AddressView), (status = 409, body = ErrorBody,
        description = "`wallet_unavailable`: the node has no wallet open")))]
async fn wallet_address(State(s): St) -> JsonResult<t::AddressView> {
    let w = wallet_of(&s)?;
    let net = s.ctx.node.network();
    let a = lock(&w)?.receive_address();
    ok(t::AddressView {
        address: a.encode(net),
    })
}

/// The node wallet's addresses, each with its balance
#[utoipa::path(get, path = "/wallets", tag = "wallet", security(()),
    responses((status = 200, body = t::Wallets), (status = 409, body = ErrorBody,
        description = "`wallet_unavailable`: the node has no wallet open")))]
async fn wallets(State(s): St) -> JsonResult<t::Wallets> {
    let w = wallet_of(&s)?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::wallets(&*lock(&w)?, &node)).await?)
}

/// Wallet balance: confirmed, unconfirmed, immature
#[utoipa::path(get, path = "/wallet/balance", tag = "wallet", security(()),
    responses((status = 200, body = t::WalletBalance), (status = 409, body = ErrorBody,
        description = "`wallet_unavailable`: the node has no wallet open")))]
async fn wallet_balance(State(s): St) -> JsonResult<t::WalletBalance> {
    let w = wallet_of(&s)?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::wallet_balance(&*lock(&w)?, &node)).await?)
}

/// Wallet transactions with confirmations, newest first, a page at a time
#[utoipa::path(get, path = "/wallet/history", tag = "wallet", security(()), params(t::PageQuery),
    responses((status = 200, body = t::WalletHistory), (status = 409, body = ErrorBody,
        description = "`wallet_unavailable`: the node has no wallet open")))]
async fn wallet_history(
    State(s): St,
    q: Result<Query<t::PageQuery>, QueryRejection>,
) -> JsonResult<t::WalletHistory> {
    let page = page(q)?;
    let w = wallet_of(&s)?;
    let node = s.ctx.node.clone();
    ok(blocking(move || views::wallet_history(&*lock(&w)?, &node, page)).await?)
}

/// Connected peers, and bans with their reasons
#[utoipa::path(get, path = "/peers", tag = "network", security(()),
    responses((status = 200, body = t::Peers), (status = 409, body = ErrorBody,
        description = "`no_network`: the node runs without its network part")))]
async fn peers(State(s): St) -> JsonResult<t::Peers> {
    let p = s.ctx.p2p.as_ref().ok_or_else(no_network)?;
    ok(views::peers(&p.view()))
}

/// Mining on or off, threads, kernel, hash rate
#[utoipa::path(get, path = "/mining", tag = "mining", security(()),
    responses((status = 200, body = t::Mining)))]
async fn mining(State(s): St) -> JsonResult<t::Mining> {
    ok(views::mining(&s.ctx.node))
}

/// A block template for an external miner
///
/// The block to solve, its header bytes and target; `?address=` pays another address than the
/// wallet's. Solve it and send it to `POST /blocks`.
#[utoipa::path(get, path = "/mining/template", tag = "mining", security(()), params(t::TemplateQuery),
    responses((status = 200, body = t::Template), (status = 409, body = ErrorBody,
        description = "`wallet_unavailable`: no address given and no wallet open")))]
async fn template(
    State(s): St,
    q: Result<Query<t::TemplateQuery>, QueryRejection>,
) -> JsonResult<t::Template> {
    let q = query(q)?;
    let net = s.ctx.node.network();
    let address = match q.address {
        Some(a) => parse_address(&a, net)?,
        None => receive_address(&s)?,
    };
    let t = s.ctx.node.block_template(address).await?;
    ok(views::template(&t, net))
}

/// Prometheus/OpenMetrics text
///
/// Height, peers, mempool, hash rate, blocks connected and rejected, bans.
#[utoipa::path(get, path = "/metrics", tag = "node", security(()),
    responses((status = 200, body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
        description = "OpenMetrics text exposition")))]
async fn metrics(State(s): St) -> Response {
    let view = s.ctx.p2p.as_ref().map(|p| p.view());
    let streams = s.streams_max.saturating_sub(s.streams.available_permits()) as u64;
    let text = super::metrics::render(&s.ctx.node.snapshot(), view.as_ref(), streams);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Live events as Server-Sent Events
///
/// Blocks connected, disconnected, mined and rejected; reorganisations with their depth;
/// transactions accepted and removed; peers connected, disconnected and banned; the mining
/// state. Each event is numbered (`id:`), named (`event:`, the `type` of the `Event` schema)
/// and carries that `Event` as JSON (`data:`). `Last-Event-ID` (or `?after=N`) resumes after
/// event N while it is still among the last 1,024; a `missed` event says when it is not.
#[utoipa::path(get, path = "/events", tag = "node", security(()), params(t::EventsQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")),
    responses((status = 200, body = String, content_type = "text/event-stream",
        description = "An endless stream of `Event`s (see the schema), until the server stops")))]
async fn events(
    State(s): St,
    headers: axum::http::HeaderMap,
    q: Result<Query<t::EventsQuery>, QueryRejection>,
) -> Response {
    use super::events::Numbered;
    use axum::response::sse::{Event as Sse, KeepAlive};
    let after = match (query(q), headers.get("last-event-id")) {
        (Err(e), _) => return e.into_response(),
        (Ok(q), None) => match (q.after, q.backlog) {
            // Only what comes next: resume after the newest event.
            (None, Some(false)) => Some(s.events.newest()),
            (after, _) => after,
        },
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
    let place = match s.stream_place() {
        Ok(p) => p,
        Err(e) => return e.into_response(),
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
    // The stream holds its place until it ends or the client goes.
    let live =
        futures_util::stream::unfold((since.live, place), move |(mut rx, place)| async move {
            use tokio::sync::broadcast::error::RecvError;
            match rx.recv().await {
                Ok(n) => Some((frame(&n), (rx, place))),
                // This client read too slowly: say how many it lost, and go on.
                Err(RecvError::Lagged(k)) => {
                    let e = Sse::default()
                        .event("missed")
                        .json_data(json!({ "lost": k }))
                        .unwrap_or_default();
                    Some((e, (rx, place)))
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

/// Longest a `GET /blocks/wait` waits.
pub const MAX_BLOCK_WAIT: Duration = Duration::from_secs(60);

/// `GET /blocks/wait?after=HASH&timeout=S`: answers once the tip is not `after` (at once if
/// it already is not), or after `timeout` seconds (default and at most 60) with `changed: false`.
/// Long poll: wait for the tip to move
///
/// Answers once the tip is not `after` (at once if it already is not), or after `timeout`
/// seconds (60 at most) with `changed: false`.
#[utoipa::path(get, path = "/blocks/wait", tag = "chain", security(()), params(t::WaitQuery),
    responses((status = 200, body = t::BlockWait)))]
async fn block_wait(
    State(s): St,
    q: Result<Query<t::WaitQuery>, QueryRejection>,
) -> JsonResult<t::BlockWait> {
    let q = query(q)?;
    let _place = s.stream_place()?;
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
    ok(t::BlockWait {
        changed,
        tip: snap.tip.to_string(),
        height: snap.height,
    })
}

/// This document
#[utoipa::path(get, path = "/openapi.json", tag = "node", security(()),
    responses((status = 200, body = Object, description = "The OpenAPI 3.1 description of this API")))]
async fn openapi(State(s): St) -> Json<Value> {
    let mut doc = openapi_json().clone();
    if s.limits.reads_need_token {
        // This node asks for the token on every request: so does its document.
        for op in super::spec::operations(&mut doc) {
            op["security"] = json!([{ "bearer": [] }]);
            if op["responses"].get("401").is_none() {
                op["responses"]["401"] = json!({ "$ref": "#/components/responses/Unauthorized" });
            }
        }
    }
    Json(doc)
}

// ---- writes (token) ----

/// Submit a transaction signed elsewhere
///
/// Its JSON fields, or `{"hex"}` with its canonical encoding (the README's signing recipe has
/// both). Validated into the mempool and relayed to peers.
#[utoipa::path(post, path = "/transactions/new", tag = "transactions", security(("bearer" = [])),
    request_body = t::TxRequest,
    responses((status = 201, body = t::Submitted, description = "In the mempool, relayed"),
        (status = 409, body = ErrorBody, description = "`duplicate` or `double_spend`"),
        (status = 422, body = ErrorBody, description = "Refused by the rules: `bad_signature`, \
            `missing_input`, `fee_too_low`, `immature_coinbase`, `invalid_transaction` …")))]
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
            Json(t::Submitted {
                txid: txid.to_string(),
            }),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Dry run of `POST /transactions/new`
///
/// Would the mempool take it: what it would pay, or the code and reason it would be refused
/// with. Nothing changes.
#[utoipa::path(post, path = "/transactions/check", tag = "transactions", security(("bearer" = [])),
    request_body = t::TxRequest,
    responses((status = 200, body = t::CheckVerdict),
        (status = 422, body = ErrorBody, description = "`bad_transaction`: the hex is not a \
            transaction's encoding")))]
async fn check_transaction(
    _: Authorized,
    State(s): St,
    JsonBody(v): JsonBody<Value>,
) -> JsonResult<t::CheckVerdict> {
    unsigned_seed_form(&v)?;
    let tx = views::tx_from_json(v, s.ctx.node.network())?;
    let txid = tx.txid();
    match s.ctx.node.check_tx(tx).await {
        Ok(a) => ok(t::CheckVerdict {
            accepted: true,
            txid: a.txid.to_string(),
            fee: Some(a.fee.units()),
            size: Some(a.size),
            fee_rate: Some(a.rate.per_kb_units().div_ceil(1_000)),
            fee_rate_per_kb: Some(a.rate.per_kb_units()),
            would_evict: Some(a.evict.len()),
            code: None,
            reason: None,
        }),
        Err(crate::node::NodeError::Mempool(e)) => {
            let e = ApiError::from(crate::node::NodeError::Mempool(e));
            ok(t::CheckVerdict {
                accepted: false,
                txid: txid.to_string(),
                fee: None,
                size: None,
                fee_rate: None,
                fee_rate_per_kb: None,
                would_evict: None,
                code: Some(e.code.to_string()),
                reason: Some(e.message),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Build an unsigned transaction for a key held elsewhere
///
/// Chooses coins of the address of `pubkey` (as the node's wallet chooses its own: largest
/// first, the fewest that cover the outputs and the fee), adds change back to that address (or
/// `change`), and answers the transaction with zero signatures, the sighash every input signs,
/// and the fee. Nothing changes and nothing is reserved: two builds may pick the same coins.
#[utoipa::path(post, path = "/transactions/build", tag = "transactions", security(("bearer" = [])),
    request_body = t::BuildRequest,
    responses((status = 200, body = t::Built),
        (status = 422, body = ErrorBody, description = "`insufficient_funds`, `too_many_inputs` (more coins than one transaction can spend; the message says the most one payment sends) or `bad_amount`")))]
async fn build_transaction(
    _: Authorized,
    State(s): St,
    JsonBody(b): JsonBody<t::BuildRequest>,
) -> JsonResult<t::Built> {
    let net = s.ctx.node.network();
    let pubkey: [u8; 32] = hex::decode(b.pubkey.trim())
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("bad_pubkey", "pubkey: 32 bytes of hex"))?;
    let pay = payments(&b.outputs, net)?;
    let change = b
        .change
        .as_deref()
        .map(|a| parse_address(a, net))
        .transpose()?;
    let rate = fee_rate(b.fee_rate)?;
    let node = s.ctx.node.clone();
    let (tx, fee) = blocking(move || {
        Ok(crate::wallet::build_unsigned(
            &node, pubkey, &pay, rate, change,
        )?)
    })
    .await?;
    let genesis = s.ctx.node.params().genesis_hash;
    let mut inputs = Vec::with_capacity(tx.inputs.len());
    for i in &tx.inputs {
        let amount = s
            .ctx
            .node
            .transaction(&i.prevout.txid)?
            .and_then(|t| t.tx.outputs.get(i.prevout.vout as usize).map(|o| o.amount))
            .unwrap_or_default();
        inputs.push(t::BuiltInput {
            txid: i.prevout.txid.to_string(),
            vout: i.prevout.vout,
            amount: amount.units(),
        });
    }
    let size = tx.size();
    ok(t::Built {
        tx: views::TxJson::from_tx(&tx, net),
        hex: hex::encode(tx.encode()),
        sighash: hex::encode(tx.sighash(&genesis)),
        genesis: genesis.to_string(),
        fee: fee.units(),
        size,
        fee_rate: FeeRate::of(fee, size).per_byte_units(),
        inputs,
    })
}

/// The payments of a send or a build, checked: 1 to 100 of them, each above zero to an
/// address of this network.
fn payments(
    list: &[t::Payment],
    net: crate::core::params::Network,
) -> Result<Vec<crate::core::tx::TxOut>, ApiError> {
    if list.is_empty() || list.len() > t::MAX_SEND_OUTPUTS {
        return Err(ApiError::bad_request(
            "bad_outputs",
            format!("outputs: 1 to {} payments", t::MAX_SEND_OUTPUTS),
        ));
    }
    list.iter()
        .map(|p| {
            if p.amount == 0 {
                return Err(ApiError::bad_request(
                    "bad_amount",
                    "bad amount: must be above zero",
                ));
            }
            Ok(crate::core::tx::TxOut {
                address: parse_address(&p.address, net)?,
                amount: Amount::from_units(p.amount),
            })
        })
        .collect()
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

/// Submit a solved block
///
/// `{"hex"}`: the block's encoding, as an external miner solved a `GET /mining/template`.
/// The answer says what became of it; a block that breaks a rule gets the reason.
#[utoipa::path(post, path = "/blocks", tag = "mining", security(("bearer" = [])),
    request_body = t::HexBody,
    responses((status = 200, body = t::BlockSubmitted),
        (status = 422, body = ErrorBody, description = "`bad_block` (the hex is not a block's \
            encoding), `invalid_block` (a rule broken) or `unknown_parent`")))]
async fn submit_block(
    _: Authorized,
    State(s): St,
    JsonBody(b): JsonBody<t::HexBody>,
) -> JsonResult<t::BlockSubmitted> {
    let params = s.ctx.node.params();
    let bytes =
        hex::decode(&b.hex).map_err(|e| ApiError::bad_request("bad_block", format!("hex: {e}")))?;
    // Hex that is not a block's encoding is well-formed JSON the node cannot use: 422.
    let block = Block::decode(&bytes, params.max_block_size).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_block",
            format!("block: {e}"),
        )
    })?;
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
        Accepted::Duplicate => (t::BlockResult::Duplicate, None),
        Accepted::Orphan => (t::BlockResult::Orphan, None),
        Accepted::SideBranch => (t::BlockResult::SideBranch, None),
        Accepted::TipChanged(c) => (
            t::BlockResult::Connected,
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
    ok(t::BlockSubmitted {
        hash: hash.to_string(),
        result,
        height,
    })
}

/// A new receive address for the node's wallet
#[utoipa::path(post, path = "/wallet/address", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, body = t::AddressView), (status = 409, body = ErrorBody,
        description = "`wallet_unavailable`: the node has no wallet open")))]
async fn wallet_new_address(_: Authorized, State(s): St) -> JsonResult<t::AddressView> {
    let w = wallet_of(&s)?;
    let net = s.ctx.node.network();
    let a = blocking(move || Ok(lock(&w)?.new_address()?)).await?;
    ok(t::AddressView {
        address: a.encode(net),
    })
}

/// Pay from the node's wallet
///
/// One recipient (`address`, `amount`) or several (`outputs`, 1 to 100), in one transaction
/// built, signed and sent by the node's wallet; change goes back to the wallet.
#[utoipa::path(post, path = "/wallet/send", tag = "wallet", security(("bearer" = [])),
    request_body = t::SendRequest,
    responses((status = 200, body = t::Sent),
        (status = 409, body = ErrorBody, description = "`wallet_unavailable`"),
        (status = 422, body = ErrorBody, description = "`insufficient_funds`, `too_many_inputs` or refused by the mempool")))]
async fn wallet_send(
    _: Authorized,
    State(s): St,
    JsonBody(b): JsonBody<t::SendRequest>,
) -> JsonResult<t::Sent> {
    let pay = payments(&b.payments(), s.ctx.node.network())?;
    let rate = fee_rate(b.fee_rate())?;
    let w = wallet_of(&s)?;
    ok(views::send(&w, &s.ctx.node, pay, rate).await?)
}

/// A fee rate in base units per byte, as the node's per-kB rate.
pub fn fee_rate(per_byte: Option<u64>) -> Result<FeeRate, ApiError> {
    match per_byte {
        Some(r) => FeeRate::parse_per_byte(r)
            .map_err(|e| ApiError::bad_request("bad_fee_rate", format!("bad fee rate: {e}"))),
        None => Ok(FeeRate::DEFAULT),
    }
}

/// Lift a ban
#[utoipa::path(post, path = "/peers/unban", tag = "network", security(("bearer" = [])),
    request_body = t::UnbanRequest,
    responses((status = 200, body = t::Unbanned), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`no_network`")))]
async fn unban(
    _: Authorized,
    State(s): St,
    JsonBody(b): JsonBody<t::UnbanRequest>,
) -> JsonResult<t::Unbanned> {
    let p = s.ctx.p2p.as_ref().ok_or_else(no_network)?;
    if p.unban(&b.id).await? {
        ok(t::Unbanned { unbanned: b.id })
    } else {
        Err(ApiError::not_found(format!("no ban on {:?}", b.id)))
    }
}

/// Most addresses one `POST /nodes/register` dials.
pub const MAX_REGISTER: usize = 16;
/// Longest `POST /nodes/register` waits for its dials (one dial gives up after 5 s).
pub const REGISTER_WAIT: Duration = Duration::from_secs(7);

/// Connect to peers
///
/// Each entry is a peer address (`HOST:PORT`, or `NODEID@HOST:PORT` to pin its identity) or
/// another node's API as `http://HOST:PORT`, whose `/info` gives its peer address. Every entry
/// is checked before any is dialled; the answer lists which connected and why others did not.
#[utoipa::path(post, path = "/nodes/register", tag = "network", security(("bearer" = [])),
    request_body = t::RegisterRequest,
    responses((status = 200, body = t::Registered),
        (status = 409, body = ErrorBody, description = "`no_network`")))]
async fn register(
    _: Authorized,
    State(s): St,
    JsonBody(b): JsonBody<t::RegisterRequest>,
) -> JsonResult<t::Registered> {
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
            Ok(id) => connected.push(t::Connected {
                addr: text.clone(),
                id: id.to_string(),
            }),
            Err(error) => failed.push(t::DialFailed {
                addr: text.clone(),
                error,
            }),
        }
    }
    ok(t::Registered {
        connected,
        failed,
        peers: p.view().peers.len(),
    })
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

/// Sync with peers now (deprecated form)
///
/// The teaching blockchains' `GET /nodes/resolve`: it changes state, so prefer
/// `POST /nodes/resolve`, which does the same.
#[deprecated = "a GET that changes state: use POST /nodes/resolve"]
#[utoipa::path(get, path = "/nodes/resolve", tag = "network", security(("bearer" = [])),
    responses((status = 200, body = t::Resolved),
        (status = 409, body = ErrorBody, description = "`no_network`")))]
async fn resolve_get(a: Authorized, s: St) -> JsonResult<t::Resolved> {
    resolve(a, s).await
}

/// Sync with peers now
///
/// Asks every peer for its headers, waits (10 s at most) for the download to settle and says
/// whether the tip changed.
#[utoipa::path(post, path = "/nodes/resolve", tag = "network", security(("bearer" = [])),
    responses((status = 200, body = t::Resolved),
        (status = 409, body = ErrorBody, description = "`no_network`")))]
async fn resolve(_: Authorized, State(s): St) -> JsonResult<t::Resolved> {
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
    ok(t::Resolved {
        replaced: after.tip != before.tip,
        previous_tip: before.tip.to_string(),
        previous_height: before.height,
        tip: after.tip.to_string(),
        height: after.height,
        peers: p.view().peers.len(),
    })
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

/// Start or stop the node's miner
///
/// Mining pays the wallet's receive address; stopping also cancels a running mine job.
#[utoipa::path(post, path = "/mining", tag = "mining", security(("bearer" = [])),
    request_body = t::MiningRequest,
    responses((status = 200, body = t::Mining),
        (status = 409, body = ErrorBody, description = "`wallet_unavailable` or `refused`")))]
async fn set_mining(
    _: Authorized,
    State(s): St,
    JsonBody(b): JsonBody<t::MiningRequest>,
) -> JsonResult<t::Mining> {
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
                Some(Ok(v)) => Json(v).into_response(),
                Some(Err(e)) => e.into_response(),
                None => ApiError::internal("a finished job without its result").into_response(),
            });
        }
        Ok((
            StatusCode::ACCEPTED,
            [(header::LOCATION, format!("/jobs/{}", job.id))],
            Json(job.view()),
        )
            .into_response())
    }
    .await;
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// Mine blocks now
///
/// Mines `blocks` blocks (1 by default) paying `address` (the wallet's by default). Up to 16
/// blocks mined within 15 s are answered at once; more, or slower, are answered `202` with the
/// job to follow at `GET /jobs/{id}` (its `Location`).
#[utoipa::path(post, path = "/mine", tag = "mining", security(("bearer" = [])),
    request_body = t::MineRequest,
    responses((status = 200, body = t::Mined),
        (status = 202, body = t::JobView, description = "Mining goes on as a job",
            headers(("Location" = String, description = "/jobs/{id}"))),
        (status = 409, body = ErrorBody, description = "`busy`: another mine job runs, or \
            `wallet_unavailable`")))]
async fn mine(_: Authorized, State(s): St, JsonBody(b): JsonBody<t::MineRequest>) -> Response {
    mine_blocks(&s, b.blocks.unwrap_or(1), b.threads, b.address.as_deref()).await
}

/// Mine one block now (deprecated form)
///
/// The teaching blockchains' `GET /mine`: it changes state, so prefer `POST /mine`.
#[deprecated = "a GET that changes state: use POST /mine"]
#[utoipa::path(get, path = "/mine", tag = "mining", security(("bearer" = [])),
    responses((status = 200, body = t::Mined),
        (status = 202, body = t::JobView, description = "Mining goes on as a job",
            headers(("Location" = String, description = "/jobs/{id}"))),
        (status = 409, body = ErrorBody, description = "`busy` or `wallet_unavailable`")))]
async fn mine_one(_: Authorized, State(s): St) -> Response {
    mine_blocks(&s, 1, None, None).await
}

fn job_of(s: &ApiState, id: &str) -> Result<std::sync::Arc<super::jobs::MineJob>, ApiError> {
    id.parse::<u64>()
        .ok()
        .and_then(|id| s.jobs.get(id))
        .ok_or_else(|| ApiError::not_found(format!("no job {id:?}")))
}

/// A mine job
///
/// Its state, blocks mined so far, and the result once finished.
#[utoipa::path(get, path = "/jobs/{id}", tag = "mining", security(()),
    params(("id" = u64, Path, description = "The job's number")),
    responses((status = 200, body = t::JobView), (status = 404, body = ErrorBody)))]
async fn job(State(s): St, Path(id): Path<String>) -> JsonResult<t::JobView> {
    ok(job_of(&s, &id)?.view())
}

/// Cancel a mine job, and forget it
///
/// Answers the job as it stopped (a finished job as it is); after that `GET /jobs/{id}` is
/// `404`. A job that has not stopped within 10 s is answered `cancelling` and kept.
#[utoipa::path(delete, path = "/jobs/{id}", tag = "mining", security(("bearer" = [])),
    params(("id" = u64, Path, description = "The job's number")),
    responses((status = 200, body = t::JobView), (status = 404, body = ErrorBody)))]
async fn cancel_job(_: Authorized, State(s): St, Path(id): Path<String>) -> JsonResult<t::JobView> {
    let job = job_of(&s, &id)?;
    if !job.is_finished() {
        job.cancel_and_wait(Duration::from_secs(10)).await;
    }
    s.jobs.forget(job.id);
    ok(job.view())
}

/// Import a chain file
///
/// The body is a chain file as `chain export` writes it (at most 256 MiB), decoded as it
/// arrives. All or nothing: one bad block and nothing is imported.
#[utoipa::path(post, path = "/chain/import", tag = "chain", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "A chain file"),
    responses((status = 200, body = t::Imported),
        (status = 422, body = ErrorBody, description = "`invalid_chain`: nothing imported")))]
async fn import(_: Authorized, State(s): St, req: Request) -> JsonResult<t::Imported> {
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
    let n = blocks.len() as u64;
    let height = s.ctx.node.import(blocks).await?;
    ok(t::Imported { blocks: n, height })
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
    if let Ok(b) = decode_json_body::<t::HexBody>(bytes) {
        parsed += 1;
        if let Ok(raw) = hex::decode(&b.hex) {
            let max = Network::Regtest.params().max_block_size;
            if let Ok(block) = Block::decode(&raw, max) {
                parsed += usize::from(block.encode() == raw);
            }
        }
    }
    if let Ok(b) = decode_json_body::<t::SendRequest>(bytes) {
        parsed += 1;
        for p in b.payments() {
            parsed += usize::from(parse_address(&p.address, Network::Regtest).is_ok());
            parsed += usize::from(p.amount > 0);
        }
        parsed += usize::from(fee_rate(b.fee_rate()).is_ok());
    }
    if let Ok(b) = decode_json_body::<t::BuildRequest>(bytes) {
        parsed += 1;
        parsed += usize::from(payments(&b.outputs, Network::Regtest).is_ok());
        parsed += b.change.map_or(0, |a| {
            usize::from(parse_address(&a, Network::Regtest).is_ok())
        });
    }
    if let Ok(b) = decode_json_body::<t::UnbanRequest>(bytes) {
        parsed += usize::from(!b.id.is_empty());
    }
    if let Ok(b) = decode_json_body::<t::RegisterRequest>(bytes) {
        parsed += b.nodes.iter().filter(|n| register_entry(n).is_ok()).count();
    }
    if let Ok(b) = decode_json_body::<t::MiningRequest>(bytes) {
        parsed += usize::from(b.mining) + b.threads.map_or(0, |t| usize::from(t > 0));
    }
    if let Ok(b) = decode_json_body::<t::MineRequest>(bytes) {
        parsed += usize::from(b.blocks.is_some_and(|n| n <= MAX_MINE)) + b.threads.map_or(0, |_| 1);
    }
    if let Ok(v) = decode_json_body::<Value>(bytes) {
        parsed += usize::from(unsigned_seed_form(&v).is_err());
        parsed += usize::from(views::tx_from_json(v, Network::Regtest).is_ok());
    }
    if let Ok(uri) = format!("/?{query}").parse::<axum::http::Uri>() {
        if let Ok(Query(q)) = Query::<t::ChainQuery>::try_from_uri(&uri) {
            parsed += usize::from(q.from.is_some() || q.limit.is_some() || q.hex.is_some());
        }
        if let Ok(Query(q)) = Query::<t::TemplateQuery>::try_from_uri(&uri) {
            parsed += q.address.map_or(0, |a| {
                usize::from(parse_address(&a, Network::Regtest).is_ok())
            });
        }
    }
    parsed += usize::from(query.parse::<BlockId>().is_ok());
    parsed += usize::from(parse_txid(query).is_ok());
    parsed
}
