//! The dashboard: `chain-tui` (or `chain-tui tui`) starts a node with its network and drives it
//! from the terminal.
//!
//! - [`app`]: the state and what each action does, without I/O (tests drive it directly);
//! - [`action`], [`keymap`]: keys → actions as data (`assets/keymap.toml`, user overrides);
//! - [`panes`]: drawing, one module per pane, overlays and the status bar (styles, keys, the
//!   terminal guard and the log ring are [`crate::term`]'s, shared with the demo);
//! - this module: the terminal guard and the event loop, the only place that touches the
//!   node, the network and the wallet. Wallet scans and store reads run on blocking threads.

pub mod action;
pub mod app;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixture;
pub mod keymap;
pub mod panes;

pub use panes::{ScreenLayout, draw, layout, layout_zoomed};

use crate::core::amount::Amount;
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::Network;
use crate::node::PeerAddr;
use crate::node::Spend;
use crate::node::{NodeConfig, NodeEvent, NodeHandle};
use crate::node::{P2pConfig, P2pHandle};
use crate::runtime::{ApiSetup, Services, ServicesConfig};
use crate::wallet::Wallet;
use anyhow::{Result, anyhow};
use app::{App, BlockDetail, Command, InputRow, OutputRow, ProofView, TxDetail, TxRow, WalletView};
use crossterm::event::{Event, EventStream, KeyEventKind, MouseButton, MouseEventKind};
use futures_util::StreamExt;
use keymap::Keymap;
use ratatui::DefaultTerminal;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// How the dashboard's node is started.
#[derive(Clone, Debug)]
pub struct TuiConfig {
    pub data_dir: PathBuf,
    pub network: Network,
    pub passphrase: Option<String>,
    pub listen: SocketAddr,
    pub connect: Vec<PeerAddr>,
    /// Start mining right away.
    pub mine: bool,
    /// Mining threads.
    pub threads: usize,
    /// Where the REST API listens (`None`: off).
    pub api: Option<SocketAddr>,
    /// The API's limits (whether reads need the token).
    pub api_limits: crate::runtime::ApiLimits,
    /// Regtest: mine one block at a time, this far apart on average, instead of flat out.
    pub pace: Option<Duration>,
}

/// Shortest time between two frames drawn for data changes (input draws at once).
const FRAME: Duration = Duration::from_millis(50);
/// Shortest time between two wallet scans.
const WALLET_EVERY: Duration = Duration::from_millis(300);
/// Wallet transactions kept for the pane.
const WALLET_HISTORY: usize = 100;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Start the node and its network, open the dashboard, and shut everything down cleanly when
/// it closes. Anything that can fail at start-up fails before the terminal is taken.
pub async fn run(cfg: TuiConfig) -> Result<()> {
    let keymap = keymap::load(&cfg.data_dir).map_err(|e| anyhow!(e))?;
    let wallet = Wallet::open_or_create(&cfg.data_dir, cfg.network, cfg.passphrase.as_deref())?;
    let address = wallet.receive_address();
    let wallet = Arc::new(Mutex::new(wallet));
    let threads = cfg.threads.max(1);
    let mut p2p = P2pConfig::new(&cfg.data_dir, cfg.listen);
    p2p.connect = cfg.connect.clone();
    let services = Services::start(ServicesConfig {
        node: NodeConfig::new(&cfg.data_dir, cfg.network),
        p2p: Some(p2p.into()),
        api: cfg.api.map(|addr| ApiSetup {
            addr,
            limits: cfg.api_limits.clone(),
            wallet: Ok(wallet.clone()),
            mine_threads: threads,
        }),
    })
    .await?;
    let result = dashboard(&cfg, &services, keymap, wallet, address, threads).await;
    tracing::info!("dashboard closed; shutting down");
    let stopped = services.shutdown().await;
    result?;
    stopped?;
    Ok(())
}

/// The dashboard on started services, until it is closed.
async fn dashboard(
    cfg: &TuiConfig,
    services: &Services,
    keymap: Keymap,
    wallet: Arc<Mutex<Wallet>>,
    address: crate::core::address::Address,
    threads: usize,
) -> Result<()> {
    let (node, net) = (services.node.clone(), services.net()?.clone());
    let max_threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (pace_tx, pace_rx) = tokio::sync::watch::channel(None);
    if let Some(mean) = cfg.pace {
        tokio::spawn(pacer(node.clone(), mean, pace_rx, services.token()));
    }
    if cfg.mine {
        if cfg.pace.is_some() {
            pace_tx.send_replace(Some((address, threads)));
        } else {
            node.set_mining(threads, Some(address)).await?;
        }
    }
    let view = net.view();
    tracing::info!(
        "dashboard: node {} on {} listening on {}",
        view.id.map(|i| i.to_string()).unwrap_or_default(),
        cfg.network,
        view.listen.map(|a| a.to_string()).unwrap_or_default()
    );
    let mut app = App::new(cfg.network, keymap, threads, max_threads.max(threads));
    app.wallet.address = Some(address);
    app.pace = cfg.pace;
    app.paced_on = cfg.mine && cfg.pace.is_some();
    app.set_snapshot(node.snapshot());
    app.set_p2p(view);
    app.tick(unix_now());
    let ctx = Ctx {
        node,
        net,
        wallet,
        pace: pace_tx,
    };
    match crate::term::TerminalGuard::enter() {
        Ok(mut guard) => {
            let r = event_loop(&mut guard.terminal, &mut app, &ctx).await;
            drop(guard);
            r
        }
        Err(e) => Err(anyhow!("cannot open the terminal: {e}")),
    }
}

/// What the event loop works with.
struct Ctx {
    node: NodeHandle,
    net: P2pHandle,
    wallet: Arc<Mutex<Wallet>>,
    /// Paced mining (regtest): the address and threads to mine with, or `None` when off.
    pace: tokio::sync::watch::Sender<Option<(crate::core::address::Address, usize)>>,
}

/// Paced mining for the regtest dashboard: while on, one block after a random wait
/// (exponentially distributed, mean `mean`), mined for real. Regtest's target is the easiest,
/// so flat-out mining makes hundreds of blocks a second and halves the subsidy away in
/// seconds; this keeps the chain watchable. Ends when the dashboard drops its sender.
async fn pacer(
    node: NodeHandle,
    mean: Duration,
    on: tokio::sync::watch::Receiver<Option<(crate::core::address::Address, usize)>>,
    stop: tokio_util::sync::CancellationToken,
) {
    let paced = crate::node::run_paced(
        mean,
        on,
        |v| *v,
        |(address, threads)| {
            let node = node.clone();
            async move {
                if let Err(e) = node.mine_blocks(1, threads, address).await {
                    tracing::warn!("paced mining: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                true
            }
        },
    );
    stop.run_until_cancelled(paced).await;
}

/// Answers from background tasks.
enum Msg {
    Wallet(WalletView),
    Info(String),
    Error(String),
    Sent(Result<Txid, String>),
    NewAddress(Result<crate::core::address::Address, String>),
    Block(Result<BlockDetail, String>),
    Tx(Result<TxDetail, String>),
    ChainRows(Vec<crate::node::BlockSummary>),
    Search(Result<crate::node::SearchHit, String>),
    Address(Result<crate::node::AddressView, String>, usize, usize),
    Refreshed(Option<app::Reloaded>),
}

/// The view a refresh command names, read again (`None` if it could not be read).
fn reload(node: &NodeHandle, cmd: Command) -> Option<app::Reloaded> {
    match cmd {
        Command::LoadBlock(h) => load_block(node, h).ok().map(app::Reloaded::Block),
        Command::LoadTx(t) => load_tx(node, t).ok().map(app::Reloaded::Tx),
        Command::LoadAddress {
            address,
            coins_skip,
            history_skip,
        } => node
            .address_view(&address, coins_skip, history_skip, app::ADDRESS_PAGE)
            .ok()
            .map(|v| app::Reloaded::Address(v, coins_skip, history_skip)),
        _ => None,
    }
}

/// The escape sequence that asks the terminal to put `text` on the system clipboard (OSC 52;
/// tmux passes it on with `set -g set-clipboard on`).
pub fn osc52(text: &str) -> String {
    use base64::Engine;
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// One loop over terminal input, node snapshots, network views, node events, log lines,
/// background answers, a 1 s tick and stop signals. Draws only when something changed, at
/// most every [`FRAME`] for data (at once for input).
async fn event_loop(terminal: &mut DefaultTerminal, app: &mut App, ctx: &Ctx) -> Result<()> {
    let mut input = EventStream::new();
    let mut snaps = ctx.node.watch();
    let mut views = ctx.net.watch();
    let mut events = ctx.node.events();
    let (mut snaps_open, mut views_open, mut events_open) = (true, true, true);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut sigterm = crate::runtime::SigTerm::new();
    let ring = crate::term::logbuf::ring();
    let size = terminal.size()?;
    app.size = (size.width, size.height);

    // Lines the ring had taken when app.logs was last copied from it (None: never).
    let mut logs_seen: Option<u64> = None;
    let mut dirty = true;
    let mut urgent = true;
    let mut last_draw = Instant::now();
    let mut wallet_dirty = true;
    let mut wallet_busy = false;
    let mut wallet_last = Instant::now() - WALLET_EVERY;

    loop {
        if crate::term::panicked() {
            return Err(anyhow!("a thread panicked; see the log"));
        }
        if app.quit {
            return Ok(());
        }
        if wallet_dirty && !wallet_busy && wallet_last.elapsed() >= WALLET_EVERY {
            wallet_dirty = false;
            wallet_busy = true;
            wallet_last = Instant::now();
            let (w, node, tx) = (ctx.wallet.clone(), ctx.node.clone(), tx.clone());
            // An open block, transaction or address view follows the chain with the wallet
            // (confirmations, spends, balances), as often and no more.
            let refresh = app.refresh_command();
            tokio::task::spawn_blocking(move || {
                if let Some(cmd) = refresh {
                    let _ = tx.send(Msg::Refreshed(reload(&node, cmd)));
                }
                let _ = tx.send(Msg::Wallet(load_wallet(&w, &node)));
            });
        }
        if dirty && (urgent || last_draw.elapsed() >= FRAME) {
            // Copy the log lines only when some arrived, not on every frame.
            let pushed = ring.pushed();
            if logs_seen != Some(pushed) {
                app.logs = ring.last(crate::term::logbuf::CAPACITY);
                logs_seen = Some(pushed);
            }
            terminal.draw(|f| draw(f, app))?;
            dirty = false;
            urgent = false;
            last_draw = Instant::now();
        }
        let draw_at = last_draw + FRAME;
        let wallet_at = wallet_last + WALLET_EVERY;
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(ev)) => {
                    if let Some(cmd) = on_input(app, ev) {
                        if cmd == Command::Quit {
                            return Ok(());
                        }
                        execute(cmd, ctx, &tx);
                    }
                    dirty = true;
                    urgent = true;
                }
                Some(Err(e)) => return Err(anyhow!("terminal input: {e}")),
                None => return Ok(()),
            },
            r = snaps.changed(), if snaps_open => {
                if r.is_err() {
                    snaps_open = false;
                    app.error("the node has stopped");
                } else {
                    let s = snaps.borrow_and_update().clone();
                    // The node publishes every second (its hashrate meter); the wallet is read
                    // again only when the chain or the mempool moved.
                    wallet_dirty |= app::wallet_stale(&app.snapshot, &s);
                    app.set_snapshot(s);
                    // Ages on screen are as of this frame (the tick then need not draw again).
                    app.tick(unix_now());
                    // Rows the Chain pane shows that the snapshot does not hold (a tall pane).
                    if let Some(cmd) = app.chain_missing() {
                        execute(cmd, ctx, &tx);
                    }
                }
                dirty = true;
            }
            r = views.changed(), if views_open => {
                if r.is_err() {
                    views_open = false;
                } else {
                    let v = views.borrow_and_update().clone();
                    app.set_p2p(v);
                }
                dirty = true;
            }
            e = events.recv(), if events_open => match e {
                Ok(NodeEvent::BlockRejected { hash, reason }) => {
                    app.error(format!("block {} rejected: {reason}", hash.short()));
                    dirty = true;
                }
                Ok(NodeEvent::Reorg { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Rows read before may have left the active chain: read them again.
                    app.on_reorg();
                    if let Some(cmd) = app.chain_missing() {
                        execute(cmd, ctx, &tx);
                    }
                    wallet_dirty = true;
                    dirty = true;
                }
                Ok(_) => wallet_dirty = true,
                Err(broadcast::error::RecvError::Closed) => events_open = false,
            },
            // Ages and fading messages move once a second; the node's own snapshot each second
            // usually redrew already, so draw only when nothing did for most of a second.
            _ = tick.tick() => {
                app.tick(unix_now());
                dirty |= last_draw.elapsed() >= Duration::from_millis(900);
            }
            _ = ring.changed() => dirty = true,
            Some(m) = rx.recv() => {
                match m {
                    Msg::Wallet(w) => {
                        wallet_busy = false;
                        app.set_wallet(w);
                    }
                    Msg::Info(s) => app.info(s),
                    Msg::Error(s) => app.error(s),
                    Msg::Sent(r) => {
                        wallet_dirty = true;
                        app.on_sent(r);
                    }
                    Msg::NewAddress(r) => {
                        wallet_dirty = true;
                        app.on_new_address(r);
                    }
                    Msg::Block(r) => app.on_block(r),
                    Msg::Tx(r) => app.on_tx(r),
                    Msg::ChainRows(rows) => app.on_chain_rows(rows),
                    Msg::Refreshed(r) => {
                        if let Some(r) = r {
                            app.on_reloaded(r);
                        }
                    }
                    Msg::Address(r, coins_skip, history_skip) => {
                        app.on_address(r, coins_skip, history_skip)
                    }
                    Msg::Search(r) => {
                        if let Some(cmd) = app.on_search(r) {
                            execute(cmd, ctx, &tx);
                        }
                    }
                }
                dirty = true;
                urgent = true;
            }
            _ = sigterm.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep_until(draw_at), if dirty => {}
            _ = tokio::time::sleep_until(wallet_at), if wallet_dirty && !wallet_busy => {}
        }
    }
}

/// Terminal input: keys through the app, a left click focuses a pane, resizes redraw.
fn on_input(app: &mut App, ev: Event) -> Option<Command> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => app.on_key(k),
        Event::Mouse(m) if m.kind == MouseEventKind::Down(MouseButton::Left) => {
            app.on_click(m.column, m.row);
            None
        }
        // The wheel scrolls the pane under the pointer.
        Event::Mouse(m)
            if matches!(
                m.kind,
                MouseEventKind::ScrollUp | MouseEventKind::ScrollDown
            ) =>
        {
            app.on_click(m.column, m.row);
            let up = m.kind == MouseEventKind::ScrollUp;
            app.on_action(if up {
                action::Action::Up
            } else {
                action::Action::Down
            })
        }
        Event::Resize(w, h) => {
            app.size = (w, h);
            None
        }
        Event::Paste(text) => {
            app.on_paste(&text);
            None
        }
        _ => None,
    }
}

/// Carry out a command off the UI task; answers come back as [`Msg`]s.
fn execute(cmd: Command, ctx: &Ctx, tx: &mpsc::UnboundedSender<Msg>) {
    let tx = tx.clone();
    let node = ctx.node.clone();
    match cmd {
        Command::Quit => {}
        Command::SetMining { threads, address } => {
            tokio::spawn(async move {
                if let Err(e) = node.set_mining(threads, address).await {
                    let _ = tx.send(Msg::Error(format!("mining: {e}")));
                }
            });
        }
        Command::Send {
            to,
            amount,
            fee_rate,
        } => {
            let w = ctx.wallet.clone();
            tokio::spawn(async move {
                let n = node.clone();
                let built = tokio::task::spawn_blocking(move || {
                    let w = w.lock().map_err(|_| "wallet unavailable".to_string())?;
                    w.build_payment(&n, to, amount, fee_rate)
                        .map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
                let r = match built {
                    Ok(t) => node.submit_tx(t, true).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                if let Ok(txid) = &r {
                    tracing::info!("sent {amount} in transaction {txid}");
                }
                let _ = tx.send(Msg::Sent(r));
            });
        }
        Command::Connect(addr) => {
            let net = ctx.net.clone();
            tokio::spawn(async move {
                let m = match net.connect(addr).await {
                    Ok(id) => Msg::Info(format!("connected to {addr} ({})", &id.to_string()[..8])),
                    Err(e) => Msg::Error(format!("cannot connect to {addr}: {e}")),
                };
                let _ = tx.send(m);
            });
        }
        Command::Unban(who) => {
            let net = ctx.net.clone();
            tokio::spawn(async move {
                let m = match net.unban(&who).await {
                    Ok(true) => Msg::Info(format!("unbanned {}", app::short_text(&who))),
                    Ok(false) => Msg::Error(format!("{} was not banned", app::short_text(&who))),
                    Err(e) => Msg::Error(format!("unban: {e}")),
                };
                let _ = tx.send(m);
            });
        }
        Command::NewAddress => {
            let w = ctx.wallet.clone();
            tokio::task::spawn_blocking(move || {
                let r = w
                    .lock()
                    .map_err(|_| "wallet unavailable".to_string())
                    .and_then(|mut w| w.new_address().map_err(|e| e.to_string()));
                let _ = tx.send(Msg::NewAddress(r));
            });
        }
        Command::LoadBlock(hash) => {
            tokio::task::spawn_blocking(move || {
                let _ = tx.send(Msg::Block(load_block(&node, hash)));
            });
        }
        Command::LoadTx(txid) => {
            tokio::task::spawn_blocking(move || {
                let _ = tx.send(Msg::Tx(load_tx(&node, txid)));
            });
        }
        Command::SetPaced {
            on,
            address,
            threads,
        } => {
            ctx.pace.send_replace(on.then_some((address, threads)));
        }
        Command::MineOne { address, threads } => {
            tokio::spawn(async move {
                if let Err(e) = node.mine_blocks(1, threads, address).await {
                    let _ = tx.send(Msg::Error(format!("mining: {e}")));
                }
            });
        }
        Command::Search(text) => {
            tokio::task::spawn_blocking(move || {
                let _ = tx.send(Msg::Search(node.search(&text).map_err(|e| e.to_string())));
            });
        }
        Command::LoadAddress {
            address,
            coins_skip,
            history_skip,
        } => {
            tokio::task::spawn_blocking(move || {
                let r = node
                    .address_view(&address, coins_skip, history_skip, app::ADDRESS_PAGE)
                    .map_err(|e| e.to_string());
                let _ = tx.send(Msg::Address(r, coins_skip, history_skip));
            });
        }
        Command::Copy(text) => {
            // Between frames: the sequence draws nothing.
            let mut out = std::io::stdout();
            let r = out
                .write_all(osc52(&text).as_bytes())
                .and_then(|()| out.flush());
            if let Err(e) = r {
                let _ = tx.send(Msg::Error(format!("copy: {e}")));
            }
        }
        Command::LoadChain { top, count } => {
            tokio::task::spawn_blocking(move || {
                let _ = tx.send(match node.chain_page(top, count) {
                    Ok(rows) => Msg::ChainRows(rows),
                    Err(e) => Msg::Error(format!("reading the chain: {e}")),
                });
            });
        }
    }
}

/// Address, balance and history (a blocking store scan).
fn load_wallet(w: &Mutex<Wallet>, node: &NodeHandle) -> WalletView {
    let Ok(w) = w.lock() else {
        return WalletView {
            error: Some("wallet unavailable".into()),
            ..WalletView::default()
        };
    };
    let mut view = WalletView {
        address: Some(w.receive_address()),
        addresses: w.addresses(),
        ..WalletView::default()
    };
    match w.balance_and_coins(node) {
        Ok((b, coins)) => {
            view.balance = Some(b);
            view.coins = coins;
        }
        Err(e) => view.error = Some(e.to_string()),
    }
    match w.history(node) {
        Ok(mut h) => {
            h.truncate(WALLET_HISTORY);
            view.history = h;
        }
        Err(e) => view.error = Some(e.to_string()),
    }
    view
}

/// A block and its transactions, for the details overlay.
pub fn load_block(node: &NodeHandle, hash: BlockHash) -> Result<BlockDetail, String> {
    let s = |e: crate::node::NodeError| e.to_string();
    // One snapshot: the block, its place in the chain and the tip it is counted against.
    let r = node.read().map_err(s)?;
    let block = r
        .block(&hash)
        .map_err(s)?
        .ok_or_else(|| format!("unknown block {}", hash.short()))?;
    let meta = r
        .block_meta(&hash)
        .map_err(s)?
        .ok_or_else(|| format!("unknown block {}", hash.short()))?;
    let active = r.is_active(&meta).map_err(s)?;
    let confirmations = r.block_confirmations(&meta).map_err(s)?;
    let next = if active {
        r.hash_at(meta.height + 1).map_err(s)?
    } else {
        None
    };
    let subsidy = node.params().subsidy(meta.height);
    let minted = block
        .txs
        .first()
        .and_then(|c| c.output_total())
        .unwrap_or_default();
    let work = meta
        .header
        .bits
        .to_target()
        .map(|t| t.work().0)
        .unwrap_or_default();
    Ok(BlockDetail {
        version: meta.header.version,
        prev: meta.header.prev,
        merkle_root: meta.header.merkle_root,
        bits: meta.header.bits.0,
        nonce: meta.header.nonce,
        work,
        chainwork: meta.chainwork.0,
        subsidy,
        fees: Amount::from_units(minted.units().saturating_sub(subsidy.units())),
        next,
        hash,
        height: meta.height,
        time: meta.header.time,
        seen: node.block_seen_ms(&hash).map_err(s)?.map(|ms| ms / 1000),
        confirmations,
        size: meta.size as usize,
        txs: block
            .txs
            .iter()
            .map(|t| TxRow {
                txid: t.txid(),
                coinbase: t.is_coinbase(),
                inputs: t.inputs.len(),
                outputs: t.outputs.len(),
                amount: t.output_total().unwrap_or_default(),
                size: t.size(),
            })
            .collect(),
    })
}

/// One transaction with the outputs its inputs spend, and its fee.
pub fn load_tx(node: &NodeHandle, txid: Txid) -> Result<TxDetail, String> {
    let s = |e: crate::node::NodeError| e.to_string();
    let info = node
        .transaction(&txid)
        .map_err(s)?
        .ok_or_else(|| format!("unknown transaction {}", txid.short()))?;
    let mut inputs = Vec::new();
    let mut in_total = Some(crate::core::amount::Amount::ZERO);
    for i in &info.tx.inputs {
        let spent = node
            .transaction(&i.prevout.txid)
            .map_err(s)?
            .and_then(|p| p.tx.outputs.get(i.prevout.vout as usize).copied());
        in_total = match (in_total, spent) {
            (Some(t), Some(o)) => t.checked_add(o.amount),
            _ => None,
        };
        inputs.push(InputRow {
            prevout: i.prevout,
            address: spent.map(|o| o.address),
            amount: spent.map(|o| o.amount),
        });
    }
    let spends = node.spenders(&txid).map_err(s)?;
    let outputs = info
        .tx
        .outputs
        .iter()
        .enumerate()
        .map(|(vout, o)| OutputRow {
            address: o.address,
            amount: o.amount,
            spend: spends.get(vout).copied().unwrap_or(Spend::Unknown),
        })
        .collect();
    // The path from the txid to the merkle root of its block, checked against the header.
    let proof = match info.block {
        Some((hash, _)) => {
            let block = node
                .block(&hash)
                .map_err(s)?
                .ok_or_else(|| format!("block {} is missing", hash.short()))?;
            let ids: Vec<Txid> = block.txs.iter().map(|t| t.txid()).collect();
            ids.iter().position(|t| *t == txid).and_then(|index| {
                let steps = crate::core::merkle::merkle_proof(&ids, index)?;
                let root = block.header.merkle_root;
                Some(ProofView {
                    index,
                    count: ids.len(),
                    path: crate::core::merkle::proof_path(&txid, &steps),
                    valid: crate::core::merkle::verify_proof(&txid, &steps, &root),
                    steps,
                    root,
                })
            })
        }
        None => None,
    };
    let coinbase = info.tx.is_coinbase();
    let fee = info.fee.or_else(|| {
        if coinbase {
            return None;
        }
        in_total?.checked_sub(info.tx.output_total()?)
    });
    Ok(TxDetail {
        txid,
        block: info.block,
        confirmations: info.confirmations,
        coinbase,
        size: info.tx.size(),
        inputs,
        outputs,
        fee,
        proof,
    })
}
