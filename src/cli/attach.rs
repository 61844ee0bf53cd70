//! `chain-tui attach [URL]`: the dashboard on a node that runs elsewhere (`chain-tui node` as a
//! service), driven only through its API. [`Remote`] is the dashboard's [`Backend`] over HTTP:
//! the node's `/events` stream says when something happened, and the typed reads (`/info`,
//! `/chain`, `/mempool`, `/mining`, `/peers`, the wallet's and the explorer's) are read again
//! then, and once a second for the hashrate. Sends and mining need the node's token; without
//! it they say so. Leaving the dashboard leaves the node running.

use crate::api::client::{ApiClient, EventStream, Streamed};
use crate::api::types as t;
use crate::api::{ApiError, events::Event};
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::block::Block;
use crate::core::encode::decode_canonical;
use crate::core::estimate::{ChainRates, SpanSource};
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::{Network, Params};
use crate::core::pow::{CompactTarget, U256, Work};
use crate::node::{AddressView, BlockSummary, NodeEvent, P2pView, SearchHit, Snapshot, Spend};
use crate::node::{BanInfo, CompactStats, FeeRate, HistoryEntry, MempoolTx, PeerAddr, PeerInfo};
use crate::tui::app::{TxDetail, WalletView};
use crate::tui::backend::{Backend, EVENT_QUEUE, Reply, Seen, WALLET_HISTORY};
use axum::http::StatusCode;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Newest blocks read with each refresh (the API's small page).
const RECENT: u64 = 20;
/// Transactions of the mempool the dashboard lists (as the node's own snapshot holds).
const MEMPOOL_TOP: usize = 20;
/// Hashrate samples kept (one a second), as the node keeps.
const HASHRATE_HISTORY: usize = 120;
/// Shortest time between two reads of the node's state.
const REFRESH_GAP: Duration = Duration::from_millis(150);
/// Inputs of one transaction whose spent outputs are read for the details overlay.
const MAX_INPUTS_READ: usize = 64;

/// Open the dashboard on the node `g` names (`--node`, or the one running on the data dir).
pub(super) async fn attach(g: &super::Global) -> anyhow::Result<()> {
    let Some((api, network)) = super::run::running_node(g).await? else {
        anyhow::bail!(
            "no node runs on {}: start one there with `chain-tui node`, or give a node's API: \
             chain-tui attach http://HOST:PORT",
            g.data_dir()?.display()
        );
    };
    // A node found on the data dir gave its token in its node.json.
    let token = g.node_url.is_none() || g.token_file.is_some();
    let url = g.node_url.clone().unwrap_or_else(|| api.base().to_string());
    let keymap = crate::tui::keymap::load(&g.data_dir()?).map_err(|e| anyhow::anyhow!(e))?;
    let remote = Remote::start(api, url, network, token)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let (threads, max_threads) = (remote.threads.max(1), remote.max_threads.max(1));
    crate::tui::attach(Arc::new(remote), network, keymap, threads, max_threads).await
}

/// A node's API as the dashboard's backend.
pub struct Remote {
    api: ApiClient,
    url: String,
    params: &'static Params,
    /// How a refused write is worded.
    refusal: Arc<Refusal>,
    snapshot: watch::Receiver<Snapshot>,
    view: watch::Receiver<P2pView>,
    events: broadcast::Sender<Seen>,
    /// `Some(why)` while the node does not answer.
    reachable: watch::Receiver<Option<String>>,
    stop: CancellationToken,
    /// The node's mining threads when attached, and the most it takes.
    threads: usize,
    max_threads: usize,
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Remote {
    /// Read the node's state once (so a node that does not answer fails before the terminal
    /// is taken), then follow it.
    pub async fn start(
        api: ApiClient,
        url: String,
        network: Network,
        token: bool,
    ) -> Result<Remote, String> {
        let params = network.params();
        let mut reader = Reader {
            api: api.clone(),
            params,
            history: VecDeque::new(),
            last_sample: None,
        };
        let (snap, view) = reader.read().await.map_err(|e| e.to_string())?;
        let mining: t::Mining = api.get("/mining").await.map_err(|e| e.to_string())?;
        let (snap_tx, snapshot) = watch::channel(snap);
        let (view_tx, view) = watch::channel(view);
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let stop = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let (reach_tx, reachable) = watch::channel(None);
        tokio::spawn(stop.clone().run_until_cancelled_owned(follow_events(
            api.clone(),
            events.clone(),
            wake.clone(),
        )));
        tokio::spawn(stop.clone().run_until_cancelled_owned(follow_state(
            reader,
            snap_tx,
            view_tx,
            reach_tx,
            wake,
            url.clone(),
        )));
        Ok(Remote {
            api,
            refusal: Arc::new(Refusal {
                url: url.clone(),
                token,
            }),
            url,
            params,
            snapshot,
            view,
            events,
            reachable,
            stop,
            threads: mining.threads,
            max_threads: mining.max_threads,
        })
    }
}

/// What a refused write says.
struct Refusal {
    url: String,
    /// Whether a token was given.
    token: bool,
}

impl Refusal {
    /// A write's error, with what to do when the node refused it for want of its token.
    fn refused(&self, e: ApiError) -> String {
        match (e.status, self.token) {
            (StatusCode::UNAUTHORIZED, false) => {
                "the node needs its token for this: attach with --token-file FILE (its \
                 node.json, or the token)"
                    .to_string()
            }
            (StatusCode::UNAUTHORIZED, true) => format!(
                "the node at {} refused the token (it changes each time the node starts)",
                self.url
            ),
            _ => e.message,
        }
    }
}

/// Reads the node's state through its API.
struct Reader {
    api: ApiClient,
    params: &'static Params,
    /// Hashrate once a second, oldest first, as sampled here.
    history: VecDeque<u64>,
    last_sample: Option<tokio::time::Instant>,
}

impl Reader {
    /// The node's snapshot and network view, as the node's own dashboard would see them.
    async fn read(&mut self) -> Result<(Snapshot, P2pView), ApiError> {
        let info: t::Info = self.api.get("/info").await?;
        // The newest blocks, in a page small enough not to count as a heavy read (the chain
        // pane asks for more when it shows more).
        let from = info.height.saturating_sub(RECENT - 1);
        let (chain_path, pool_path) = (
            format!("/chain?from={from}&limit={RECENT}"),
            format!("/mempool?limit={MEMPOOL_TOP}"),
        );
        let (chain, top, mining, peers) = tokio::try_join!(
            self.api.get::<t::ChainPage>(&chain_path),
            self.api.get::<t::Mempool>(&pool_path),
            self.api.get::<t::Mining>("/mining"),
            self.api.get::<t::Peers>("/peers"),
        )?;
        // The lowest rate is on the mempool's last page.
        let lowest = match top.count.checked_sub(1) {
            Some(last) if last >= top.txs.len() => self
                .api
                .get::<t::Mempool>(&format!("/mempool?offset={last}&limit=1"))
                .await?
                .txs
                .first()
                .map(rate_of),
            _ => top.txs.last().map(rate_of),
        };
        let due = self
            .last_sample
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(950));
        if due {
            self.last_sample = Some(tokio::time::Instant::now());
            self.history.push_back(mining.hashrate);
            while self.history.len() > HASHRATE_HISTORY {
                self.history.pop_front();
            }
        }
        let bad = |what: &str| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "bad_answer",
                format!("the node sent a bad {what}"),
            )
        };
        let tip: BlockHash = info.tip.parse().map_err(|_| bad("tip hash"))?;
        let mut recent = chain
            .chain
            .iter()
            .map(summary)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("block"))?;
        recent.reverse();
        let target = CompactTarget(info.bits)
            .to_target()
            .map_err(|_| bad("target"))?;
        let snapshot = Snapshot {
            network: self.params.network,
            height: info.height,
            tip,
            tip_time: recent.first().map(|b| b.time).unwrap_or_default(),
            bits: info.bits,
            difficulty: target.difficulty(&self.params.pow_limit),
            chainwork: Work(info.work.parse().map_err(|_| bad("chain work"))?),
            recent,
            rates: match &info.estimates {
                Some(e) => Some(rates(e).ok_or_else(|| bad("estimate"))?),
                None => None,
            },
            next_bits: info.next_bits,
            mempool_count: info.mempool,
            mempool_bytes: info.mempool_bytes,
            mempool_fee_range: lowest.zip(top.txs.first().map(rate_of)),
            mempool_top: top
                .txs
                .iter()
                .map(|m| {
                    Ok(MempoolTx {
                        txid: m.txid.parse().map_err(|_| bad("txid"))?,
                        fee: Amount::from_units(m.fee),
                        size: m.size,
                        fee_rate: rate_of(m),
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            mining_threads: if mining.mining { mining.threads } else { 0 },
            mining_kernel: mining.kernel.clone().into(),
            mining_address: mining
                .address
                .as_deref()
                .and_then(|a| Address::decode(a, self.params.network).ok()),
            hashrate: mining.hashrate,
            hashrate_history: self.history.iter().copied().collect(),
            orphans: info.orphans,
            // Counters since the node started are not part of the API; the panes do not show
            // them.
            blocks_connected: 0,
            blocks_rejected: 0,
            txs_accepted: 0,
        };
        let view = P2pView {
            id: peers.id.as_deref().and_then(|i| i.parse().ok()),
            listen: peers.listen.as_deref().and_then(|a| a.parse().ok()),
            peers: peers
                .peers
                .iter()
                .filter_map(|p| {
                    Some(PeerInfo {
                        id: p.id.parse().ok()?,
                        addr: p.addr.parse().ok()?,
                        inbound: p.inbound,
                        height: p.height,
                        tip: p.tip.parse().ok()?,
                        work: Work(p.work.parse().ok()?),
                        rtt: p.rtt_ms.map(Duration::from_millis),
                        bytes_in: p.bytes_in,
                        bytes_out: p.bytes_out,
                        user_agent: p.user_agent.clone(),
                        connected_since: p.connected_since,
                        last_message: p.last_message,
                        protocol: p.protocol,
                    })
                })
                .collect(),
            bans: peers
                .bans
                .iter()
                .map(|b| BanInfo {
                    id: b.id.as_deref().and_then(|i| i.parse().ok()),
                    addr: b.addr.as_deref().and_then(|a| a.parse().ok()),
                    reason: b.reason.clone(),
                    until: b.until,
                })
                .collect(),
            known_addrs: peers.known_addrs,
            downloading: info.sync.downloading,
            compact: CompactStats {
                sent: peers.compact.sent,
                received: peers.compact.received,
                rebuilt_at_once: peers.compact.rebuilt_at_once,
                txs_asked: peers.compact.txs_asked,
                fetched_whole: peers.compact.fetched_whole,
            },
        };
        Ok((snapshot, view))
    }
}

/// A mempool row's exact rate (the API's `fee_rate` is rounded to whole units per byte).
fn rate_of(m: &t::MempoolTx) -> FeeRate {
    FeeRate::of(Amount::from_units(m.fee), m.size)
}

fn summary(b: &t::BlockView) -> Result<BlockSummary, ()> {
    Ok(BlockSummary {
        hash: b.hash.parse().map_err(|_| ())?,
        height: b.height,
        time: b.time,
        bits: CompactTarget(b.bits),
        tx_count: u32::try_from(b.txs.len()).map_err(|_| ())?,
        size: u32::try_from(b.size).map_err(|_| ())?,
        seen_ms: b.seen_ms,
    })
}

fn rates(e: &t::Estimates) -> Option<ChainRates> {
    Some(ChainRates {
        intervals: e.intervals,
        span_ms: e.span_ms,
        avg_block_ms: e.avg_block_ms,
        hashrate: e.network_hashrate.parse::<U256>().ok()?,
        source: match e.measured_by.as_str() {
            "timestamps" => SpanSource::Timestamps,
            "seen_times" => SpanSource::SeenTimes,
            _ => return None,
        },
    })
}

/// The node's events, for as long as the dashboard is open: reconnects after a break and
/// resumes after the last event read (a gap the node no longer holds arrives as `Missed`).
async fn follow_events(api: ApiClient, out: broadcast::Sender<Seen>, wake: Arc<Notify>) {
    let mut last: Option<u64> = None;
    let mut said = false;
    loop {
        let opened = match last {
            Some(n) => api.events(Some(n)).await,
            None => api.events(None).await,
        };
        match opened {
            Ok(stream) => {
                said = false;
                read_events(stream, &mut last, &out, &wake).await;
                // The stream ended or broke: whatever happened meanwhile is read again.
                let _ = out.send(Seen::Missed);
                wake.notify_one();
            }
            Err(e) if !said => {
                tracing::warn!("attach: the node's event stream: {e}");
                said = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn read_events(
    mut stream: EventStream,
    last: &mut Option<u64>,
    out: &broadcast::Sender<Seen>,
    wake: &Notify,
) {
    loop {
        match stream.next().await {
            Ok(Some(Streamed::Event(n, e))) => {
                *last = Some(n);
                if let Some(e) = node_event(e) {
                    let _ = out.send(Seen::Event(e));
                }
                wake.notify_one();
            }
            // A newer node's event: nothing to show, but read.
            Ok(Some(Streamed::Other(n))) => *last = Some(n),
            Ok(Some(Streamed::Missed)) => {
                let _ = out.send(Seen::Missed);
                wake.notify_one();
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("attach: {e}");
                return;
            }
        }
    }
}

/// The node event an API event reports (peer and mining events have none: the next read of
/// the state shows them).
fn node_event(e: Event) -> Option<NodeEvent> {
    let hash = |h: &str| h.parse::<BlockHash>().ok();
    let txid = |h: &str| h.parse::<Txid>().ok();
    Some(match e {
        Event::BlockConnected(b) => NodeEvent::BlockConnected {
            hash: hash(&b.hash)?,
            height: b.height,
        },
        Event::BlockDisconnected(b) => NodeEvent::BlockDisconnected {
            hash: hash(&b.hash)?,
            height: b.height,
        },
        Event::BlockMined(b) => NodeEvent::BlockMined {
            hash: hash(&b.hash)?,
            height: b.height,
        },
        Event::Reorg {
            depth,
            old_tip,
            new_tip,
        } => NodeEvent::Reorg {
            depth,
            old_tip: hash(&old_tip)?,
            new_tip: hash(&new_tip)?,
        },
        Event::BlockRejected { hash: h, reason } => NodeEvent::BlockRejected {
            hash: hash(&h)?,
            reason,
        },
        Event::TxAccepted { txid: x } => NodeEvent::TxAccepted(txid(&x)?),
        Event::TxRemoved { txid: x } => NodeEvent::TxRemoved(txid(&x)?),
        Event::PeerConnected { .. }
        | Event::PeerDisconnected { .. }
        | Event::PeerBanned { .. }
        | Event::Mining { .. } => return None,
    })
}

/// The node's state, read again when an event says it changed and once a second (the
/// hashrate and ages move without events), never more often than [`REFRESH_GAP`].
async fn follow_state(
    mut reader: Reader,
    snap: watch::Sender<Snapshot>,
    view: watch::Sender<P2pView>,
    reachable: watch::Sender<Option<String>>,
    wake: Arc<Notify>,
    url: String,
) {
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        tokio::time::sleep(REFRESH_GAP).await;
        match reader.read().await {
            Ok((s, v)) => {
                if reachable.borrow().is_some() {
                    tracing::info!("attach: the node at {url} answers again");
                    reachable.send_replace(None);
                }
                snap.send_replace(s);
                view.send_if_modified(|old| {
                    let changed = *old != v;
                    *old = v;
                    changed
                });
            }
            Err(e) => {
                if reachable.borrow().is_none() {
                    tracing::warn!("attach: reading the node: {e}");
                    reachable.send_replace(Some(format!(
                        "the node at {url} does not answer; the figures shown are its last \
                         ({})",
                        e.message
                    )));
                }
            }
        }
    }
}

fn answer_err(e: ApiError) -> String {
    e.message
}

impl Backend for Remote {
    fn snapshots(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }
    fn views(&self) -> watch::Receiver<P2pView> {
        self.view.clone()
    }
    fn events(&self) -> broadcast::Receiver<Seen> {
        self.events.subscribe()
    }
    fn remote(&self) -> Option<String> {
        Some(self.url.clone())
    }
    fn reachable(&self) -> watch::Receiver<Option<String>> {
        self.reachable.clone()
    }

    fn set_mining(&self, threads: usize, _address: Option<Address>) -> Reply<()> {
        // The node mines to its own wallet (this dashboard's wallet is the node's).
        let req = t::MiningRequest {
            mining: threads > 0,
            threads: (threads > 0).then_some(threads),
        };
        let (api, me) = (self.api.clone(), self.refusal.clone());
        Box::pin(async move {
            api.post::<_, t::Mining>("/mining", &req)
                .await
                .map(|_| ())
                .map_err(|e| me.refused(e))
        })
    }

    fn mine_one(&self, address: Address, threads: usize) -> Reply<()> {
        let req = t::MineRequest {
            blocks: Some(1),
            threads: Some(threads.max(1)),
            address: Some(address.encode(self.params.network)),
        };
        let (api, me) = (self.api.clone(), self.refusal.clone());
        Box::pin(async move {
            api.post::<_, t::MineAnswer>("/mine", &req)
                .await
                .map(|_| ())
                .map_err(|e| me.refused(e))
        })
    }

    fn send(&self, to: Address, amount: Amount, fee_rate: FeeRate) -> Reply<Txid> {
        let req = t::SendRequest::One(t::SendOne {
            address: to.encode(self.params.network),
            amount: amount.units(),
            fee_rate: Some(fee_rate.per_byte_units()),
        });
        let (api, me) = (self.api.clone(), self.refusal.clone());
        Box::pin(async move {
            let sent: t::Sent = api
                .post("/wallet/send", &req)
                .await
                .map_err(|e| me.refused(e))?;
            sent.txid
                .parse()
                .map_err(|_| format!("the node answered a bad txid {:?}", sent.txid))
        })
    }

    fn new_address(&self) -> Reply<Address> {
        let (api, me, net) = (self.api.clone(), self.refusal.clone(), self.params.network);
        Box::pin(async move {
            let a: t::AddressView = api
                .post("/wallet/address", &serde_json::json!({}))
                .await
                .map_err(|e| me.refused(e))?;
            Address::decode(&a.address, net).map_err(|e| format!("the node's new address: {e}"))
        })
    }

    fn connect(&self, addr: PeerAddr) -> Reply<String> {
        let req = t::RegisterRequest {
            nodes: vec![addr.to_string()],
        };
        let (api, me) = (self.api.clone(), self.refusal.clone());
        Box::pin(async move {
            let r: t::Registered = api
                .post("/nodes/register", &req)
                .await
                .map_err(|e| me.refused(e))?;
            match (r.connected.first(), r.failed.first()) {
                (Some(c), _) => Ok(c.id.clone()),
                (None, Some(f)) => Err(f.error.clone()),
                (None, None) => Err("the node answered neither connected nor failed".into()),
            }
        })
    }

    fn unban(&self, who: String) -> Reply<bool> {
        let (api, me) = (self.api.clone(), self.refusal.clone());
        Box::pin(async move {
            match api
                .post::<_, t::Unbanned>("/peers/unban", &t::UnbanRequest { id: who })
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if e.status == StatusCode::NOT_FOUND => Ok(false),
                Err(e) => Err(me.refused(e)),
            }
        })
    }

    fn wallet(&self) -> Reply<WalletView> {
        let (api, net) = (self.api.clone(), self.params.network);
        Box::pin(async move { read_wallet(&api, net).await.map_err(answer_err) })
    }

    fn block(&self, hash: BlockHash) -> Reply<crate::tui::app::BlockDetail> {
        let (api, params) = (self.api.clone(), self.params);
        Box::pin(async move {
            let v: t::BlockView = api
                .get(&format!("/blocks/{hash}?hex=true"))
                .await
                .map_err(answer_err)?;
            let bytes = hex::decode(v.hex.as_deref().unwrap_or_default())
                .map_err(|e| format!("the node sent a block that is not hex: {e}"))?;
            let block: Block = decode_canonical(&bytes, params.max_block_size)
                .map_err(|e| format!("the node sent a block this build cannot read: {e}"))?;
            if block.hash() != hash {
                return Err(format!("the node sent another block than {}", hash.short()));
            }
            let next = match v.next.as_deref() {
                Some(n) => Some(n.parse().map_err(|_| "the node sent a bad next hash")?),
                None => None,
            };
            Ok(crate::tui::backend::block_detail(
                params,
                &block,
                v.height,
                v.size as usize,
                v.confirmations,
                v.chainwork
                    .parse()
                    .map_err(|_| "the node sent a bad chain work")?,
                next,
                v.seen_ms.map(|ms| ms / 1000),
            ))
        })
    }

    fn tx(&self, txid: Txid) -> Reply<TxDetail> {
        let (api, net) = (self.api.clone(), self.params.network);
        Box::pin(async move { read_tx(&api, net, txid).await })
    }

    fn search(&self, text: String) -> Reply<SearchHit> {
        let (api, net) = (self.api.clone(), self.params.network);
        Box::pin(async move {
            let q: String = url_escape(&text);
            let r: t::SearchResult = api
                .get(&format!("/search?q={q}"))
                .await
                .map_err(answer_err)?;
            let id = r.id.unwrap_or_default();
            let bad = || format!("the node's search answered a bad id {id:?}");
            Ok(match r.kind {
                t::SearchKind::Block => SearchHit::Block(id.parse().map_err(|_| bad())?),
                t::SearchKind::Transaction => SearchHit::Tx(id.parse().map_err(|_| bad())?),
                t::SearchKind::Address => {
                    SearchHit::Address(Address::decode(&id, net).map_err(|_| bad())?)
                }
                t::SearchKind::Nothing => SearchHit::Nothing(r.reason.unwrap_or_default()),
            })
        })
    }

    fn address(
        &self,
        address: Address,
        coins_skip: usize,
        history_skip: usize,
    ) -> Reply<AddressView> {
        let (api, net) = (self.api.clone(), self.params.network);
        Box::pin(async move {
            read_address(&api, net, address, coins_skip, history_skip)
                .await
                .map_err(answer_err)
        })
    }

    fn chain_page(&self, top: u64, count: u64) -> Reply<Vec<BlockSummary>> {
        let api = self.api.clone();
        Box::pin(async move {
            let mut rows = Vec::new();
            // From `top` down, at most 500 a request (the API's page), oldest first in each.
            let low = top.saturating_add(1).saturating_sub(count);
            let mut from = low;
            while from <= top {
                let limit = (top - from).saturating_add(1).min(500);
                let page: t::ChainPage = api
                    .get(&format!("/chain?from={from}&limit={limit}"))
                    .await
                    .map_err(|e| format!("reading the chain: {}", e.message))?;
                if page.chain.is_empty() {
                    break;
                }
                for b in &page.chain {
                    rows.push(summary(b).map_err(|()| "the node sent a bad block row")?);
                }
                match from.checked_add(limit) {
                    Some(f) => from = f,
                    None => break,
                }
            }
            rows.reverse();
            Ok(rows)
        })
    }
}

/// Percent-encode a search text for the query string.
fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn read_wallet(api: &ApiClient, net: Network) -> Result<WalletView, ApiError> {
    let bad = |what: String| ApiError::new(StatusCode::BAD_GATEWAY, "bad_answer", what);
    let history_path = format!("/wallet/history?limit={WALLET_HISTORY}");
    let (receive, wallets, balance, history) = tokio::try_join!(
        api.get::<t::AddressView>("/wallet/address"),
        api.get::<t::Wallets>("/wallets"),
        api.get::<t::WalletBalance>("/wallet/balance"),
        api.get::<t::WalletHistory>(&history_path),
    )?;
    let decode = |a: &str| Address::decode(a, net).map_err(|e| bad(format!("address {a}: {e}")));
    // The coins a payment may spend now, for the send form's checks: mature ones no mempool
    // transaction spends.
    let mut coins = Vec::new();
    for w in wallets.wallets.iter().filter(|w| w.spendable > 0) {
        let page: t::AddressCoins = api
            .get_pages(&format!("/address/{}/utxos", w.address))
            .await?;
        coins.extend(
            page.coins
                .iter()
                .filter(|c| c.matures_in.is_none() && c.spent_in_mempool.is_none())
                .map(|c| Amount::from_units(c.amount)),
        );
    }
    Ok(WalletView {
        address: Some(decode(&receive.address)?),
        addresses: wallets
            .wallets
            .iter()
            .map(|w| decode(&w.address))
            .collect::<Result<_, _>>()?,
        balance: Some(crate::wallet::Balance {
            confirmed: Amount::from_units(balance.confirmed),
            unconfirmed: Amount::from_units(balance.unconfirmed),
            immature: Amount::from_units(balance.immature),
        }),
        coins,
        history: history
            .transactions
            .iter()
            .map(|w| {
                Ok(crate::wallet::WalletTx {
                    txid: w
                        .txid
                        .parse()
                        .map_err(|_| bad(format!("txid {}", w.txid)))?,
                    height: w.height,
                    confirmations: w.confirmations,
                    received: Amount::from_units(w.received),
                    sent: Amount::from_units(w.sent),
                })
            })
            .collect::<Result<_, ApiError>>()?,
        error: None,
    })
}

async fn read_address(
    api: &ApiClient,
    net: Network,
    address: Address,
    coins_skip: usize,
    history_skip: usize,
) -> Result<AddressView, ApiError> {
    let bad = |what: &str| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_answer",
            format!("the node sent a bad {what}"),
        )
    };
    let a = address.encode(net);
    let limit = crate::tui::app::ADDRESS_PAGE;
    let paths = [
        format!("/balance/{a}"),
        format!("/address/{a}/utxos?offset={coins_skip}&limit={limit}"),
        format!("/address/{a}/history?offset={history_skip}&limit={limit}"),
    ];
    let (balance, coins, history) = tokio::try_join!(
        api.get::<t::AddressBalance>(&paths[0]),
        api.get::<t::AddressCoins>(&paths[1]),
        api.get::<t::AddressHistory>(&paths[2]),
    )?;
    let units = Amount::from_units;
    Ok(AddressView {
        address,
        tip: balance.height,
        confirmed: units(balance.spendable),
        immature: units(balance.immature),
        incoming: units(balance.incoming.unwrap_or_default()),
        outgoing: units(balance.outgoing.unwrap_or_default()),
        next_maturity: balance.next_maturity,
        coin_count: coins.count,
        coins: coins
            .coins
            .iter()
            .map(|c| {
                Ok(crate::node::AddressCoin {
                    outpoint: crate::core::tx::OutPoint {
                        txid: c.txid.parse().map_err(|_| bad("txid"))?,
                        vout: c.vout,
                    },
                    amount: units(c.amount),
                    height: c.height,
                    coinbase: c.coinbase,
                    matures_in: c.matures_in,
                    spent_in_mempool: match &c.spent_in_mempool {
                        Some(t) => Some(t.parse().map_err(|_| bad("txid"))?),
                        None => None,
                    },
                })
            })
            .collect::<Result<_, ApiError>>()?,
        history_count: history.count as u64,
        history: history
            .history
            .iter()
            .map(|h| {
                Ok(HistoryEntry {
                    height: h.height,
                    txid: h.txid.parse().map_err(|_| bad("txid"))?,
                    received: units(h.received),
                    sent: units(h.sent),
                })
            })
            .collect::<Result<_, ApiError>>()?,
        mempool: history
            .mempool
            .iter()
            .map(|t| t.parse().map_err(|_| bad("txid")))
            .collect::<Result<_, ApiError>>()?,
    })
}

async fn read_tx(api: &ApiClient, net: Network, txid: Txid) -> Result<TxDetail, String> {
    let v: t::TxView = api
        .get(&format!("/tx/{txid}?spends=true"))
        .await
        .map_err(answer_err)?;
    let tx = t::TxJson {
        version: v.version,
        inputs: v.inputs.clone(),
        outputs: v.outputs.clone(),
        lock_height: v.lock_height,
        memo: v.memo.clone(),
    }
    .to_tx(net)
    .map_err(|e| {
        format!(
            "the node sent a transaction this build cannot read: {}",
            e.message
        )
    })?;
    if tx.txid() != txid {
        return Err(format!(
            "the node sent another transaction than {}",
            txid.short()
        ));
    }
    // The outputs the inputs spend (a coinbase spends none).
    let mut spent = Vec::new();
    if !tx.is_coinbase() {
        for i in tx.inputs.iter().take(MAX_INPUTS_READ) {
            let prev = api
                .get::<t::TxView>(&format!("/tx/{}", i.prevout.txid))
                .await
                .ok();
            spent.push(prev.and_then(|p| {
                let o = p.outputs.get(i.prevout.vout as usize)?;
                Some(crate::core::tx::TxOut {
                    address: Address::decode(&o.address, net).ok()?,
                    amount: Amount::from_units(o.amount),
                })
            }));
        }
    }
    let spends: Vec<Spend> = v
        .spends
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let id = s.txid.as_deref().and_then(|t| t.parse().ok());
            match (s.state, id, s.height) {
                (t::SpendState::Unspent, _, _) => Spend::Unspent,
                (t::SpendState::Mempool, Some(id), _) => Spend::Mempool(id),
                (t::SpendState::Confirmed, Some(id), Some(h)) => Spend::Confirmed(id, h),
                _ => Spend::Unknown,
            }
        })
        .collect();
    let block = match (v.block.as_deref(), v.height) {
        (Some(b), Some(h)) => Some((b.parse().map_err(|_| "the node sent a bad block hash")?, h)),
        _ => None,
    };
    let proof = match block {
        Some(_) => {
            let p: t::Proof = api
                .get(&format!("/tx/{txid}/proof"))
                .await
                .map_err(answer_err)?;
            let steps = p
                .branch
                .iter()
                .map(|s| {
                    let mut sibling = [0u8; 32];
                    hex::decode_to_slice(&s.hash, &mut sibling)
                        .map_err(|_| "the node sent a bad proof step")?;
                    Ok(crate::core::merkle::ProofStep {
                        sibling,
                        sibling_on_left: s.side == t::Side::Left,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            // Checked against the root in the block's header, not the one the proof names.
            let header: t::BlockView = api
                .get(&format!("/blocks/{}", p.block))
                .await
                .map_err(answer_err)?;
            let root = header
                .merkle_root
                .parse()
                .map_err(|_| "the node sent a bad merkle root")?;
            Some(crate::tui::backend::proof_view(
                txid, p.index, p.count, steps, root,
            ))
        }
        None => None,
    };
    Ok(crate::tui::backend::tx_detail(
        &tx,
        block,
        v.confirmations,
        v.fee.map(Amount::from_units),
        &spent,
        &spends,
        proof,
    ))
}
