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
pub mod backend;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixture;
pub mod keymap;
pub mod panes;

pub use backend::{Backend, Local, Seen, load_block, load_tx};
pub use panes::{ScreenLayout, draw, layout, layout_zoomed};

use crate::core::hash::Txid;
use crate::core::params::Network;
use crate::node::P2pConfig;
use crate::node::PeerAddr;
use crate::node::{NodeConfig, NodeEvent, NodeHandle};
use crate::runtime::{ApiSetup, Services, ServicesConfig};
use crate::wallet::Wallet;
use anyhow::{Result, anyhow};
use app::{App, BlockDetail, Command, TxDetail, WalletView};
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
    let max_threads = crate::node::cores();
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
    let ctx = Ctx {
        backend: Arc::new(Local { node, net, wallet }),
        pace: Some(pace_tx),
    };
    open(&mut app, &ctx).await
}

/// The dashboard on a node elsewhere, driven through `backend` (see `chain-tui attach`), until
/// it is closed. The node goes on running.
pub async fn attach(
    backend: Arc<dyn Backend>,
    network: Network,
    keymap: Keymap,
    threads: usize,
    max_threads: usize,
) -> Result<()> {
    let mut app = App::new(network, keymap, threads, max_threads);
    if let Some(at) = backend.remote() {
        tracing::info!("dashboard attached to the {network} node at {at}");
        app.info(format!("attached to the node at {at}; q leaves it running"));
        app.attached = Some(at);
    }
    let ctx = Ctx {
        backend,
        pace: None,
    };
    open(&mut app, &ctx).await
}

/// Take the terminal and run the event loop on `ctx` until the dashboard closes.
async fn open(app: &mut App, ctx: &Ctx) -> Result<()> {
    app.set_snapshot(ctx.backend.snapshots().borrow().clone());
    app.set_p2p(ctx.backend.views().borrow().clone());
    app.tick(unix_now());
    match crate::term::TerminalGuard::enter() {
        Ok(mut guard) => {
            let r = event_loop(&mut guard.terminal, app, ctx).await;
            drop(guard);
            r
        }
        Err(e) => Err(anyhow!("cannot open the terminal: {e}")),
    }
}

/// What the event loop works with.
struct Ctx {
    backend: Arc<dyn Backend>,
    /// Paced mining (regtest, own node): the address and threads to mine with, or `None` when
    /// off.
    pace: Option<tokio::sync::watch::Sender<Option<(crate::core::address::Address, usize)>>>,
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
        on,
        |v| v.map(|v| (v, mean)),
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
async fn reload(backend: &dyn Backend, cmd: Command) -> Option<app::Reloaded> {
    match cmd {
        Command::LoadBlock(h) => backend.block(h).await.ok().map(app::Reloaded::Block),
        Command::LoadTx(t) => backend.tx(t).await.ok().map(app::Reloaded::Tx),
        Command::LoadAddress {
            address,
            coins_skip,
            history_skip,
        } => backend
            .address(address, coins_skip, history_skip)
            .await
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
    let mut snaps = ctx.backend.snapshots();
    let mut views = ctx.backend.views();
    let mut events = ctx.backend.events();
    let mut reach = ctx.backend.reachable();
    let mut reach_open = true;
    let (mut snaps_open, mut views_open, mut events_open) = (true, true, true);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut sigterm = crate::runtime::SigTerm::with_hangup();
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
            let (backend, tx) = (ctx.backend.clone(), tx.clone());
            // An open block, transaction or address view follows the chain with the wallet
            // (confirmations, spends, balances), as often and no more.
            let refresh = app.refresh_command();
            tokio::spawn(async move {
                if let Some(cmd) = refresh {
                    let _ = tx.send(Msg::Refreshed(reload(&*backend, cmd).await));
                }
                let wallet = backend.wallet().await.unwrap_or_else(|e| WalletView {
                    error: Some(e),
                    ..WalletView::default()
                });
                let _ = tx.send(Msg::Wallet(wallet));
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
                Ok(Seen::Event(NodeEvent::BlockRejected { hash, reason })) => {
                    app.error(format!("block {} rejected: {reason}", hash.short()));
                    dirty = true;
                }
                Ok(Seen::Event(NodeEvent::Reorg { .. }))
                | Ok(Seen::Missed)
                | Err(broadcast::error::RecvError::Lagged(_)) => {
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
            r = reach.changed(), if reach_open => {
                if r.is_err() {
                    reach_open = false;
                } else {
                    // The figures on screen are the last the node gave; say so while it is away.
                    match reach.borrow_and_update().clone() {
                        Some(why) => {
                            app.unreachable = true;
                            app.error(why);
                        }
                        None => {
                            app.unreachable = false;
                            app.info("the node answers again");
                        }
                    }
                    dirty = true;
                    urgent = true;
                }
            }
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
    let b = ctx.backend.clone();
    let answer = |tx: mpsc::UnboundedSender<Msg>, m: Msg| {
        let _ = tx.send(m);
    };
    match cmd {
        Command::Quit => {}
        Command::SetMining { threads, address } => {
            tokio::spawn(async move {
                if let Err(e) = b.set_mining(threads, address).await {
                    answer(tx, Msg::Error(format!("mining: {e}")));
                }
            });
        }
        Command::Send {
            to,
            amount,
            fee_rate,
        } => {
            tokio::spawn(async move {
                let r = b.send(to, amount, fee_rate).await;
                if let Ok(txid) = &r {
                    tracing::info!("sent {amount} in transaction {txid}");
                }
                answer(tx, Msg::Sent(r));
            });
        }
        Command::Connect(addr) => {
            tokio::spawn(async move {
                let m = match b.connect(addr).await {
                    Ok(id) => Msg::Info(format!(
                        "connected to {addr} ({})",
                        id.get(..8).unwrap_or(&id)
                    )),
                    Err(e) => Msg::Error(format!("cannot connect to {addr}: {e}")),
                };
                answer(tx, m);
            });
        }
        Command::Unban(who) => {
            tokio::spawn(async move {
                let m = match b.unban(who.clone()).await {
                    Ok(true) => Msg::Info(format!("unbanned {}", app::short_text(&who))),
                    Ok(false) => Msg::Error(format!("{} was not banned", app::short_text(&who))),
                    Err(e) => Msg::Error(format!("unban: {e}")),
                };
                answer(tx, m);
            });
        }
        Command::NewAddress => {
            tokio::spawn(async move { answer(tx, Msg::NewAddress(b.new_address().await)) });
        }
        Command::LoadBlock(hash) => {
            tokio::spawn(async move { answer(tx, Msg::Block(b.block(hash).await)) });
        }
        Command::LoadTx(txid) => {
            tokio::spawn(async move { answer(tx, Msg::Tx(b.tx(txid).await)) });
        }
        Command::SetPaced {
            on,
            address,
            threads,
        } => match &ctx.pace {
            Some(pace) => {
                pace.send_replace(on.then_some((address, threads)));
            }
            None => answer(
                tx,
                Msg::Error("paced mining runs only on the dashboard's own node".into()),
            ),
        },
        Command::MineOne { address, threads } => {
            tokio::spawn(async move {
                if let Err(e) = b.mine_one(address, threads).await {
                    answer(tx, Msg::Error(format!("mining: {e}")));
                }
            });
        }
        Command::Search(text) => {
            tokio::spawn(async move { answer(tx, Msg::Search(b.search(text).await)) });
        }
        Command::LoadAddress {
            address,
            coins_skip,
            history_skip,
        } => {
            tokio::spawn(async move {
                let r = b.address(address, coins_skip, history_skip).await;
                answer(tx, Msg::Address(r, coins_skip, history_skip));
            });
        }
        Command::Copy(text) => {
            // Between frames: the sequence draws nothing.
            let mut out = std::io::stdout();
            let r = out
                .write_all(osc52(&text).as_bytes())
                .and_then(|()| out.flush());
            if let Err(e) = r {
                answer(tx, Msg::Error(format!("copy: {e}")));
            }
        }
        Command::LoadChain { top, count } => {
            tokio::spawn(async move {
                answer(
                    tx,
                    match b.chain_page(top, count).await {
                        Ok(rows) => Msg::ChainRows(rows),
                        Err(e) => Msg::Error(e),
                    },
                );
            });
        }
    }
}
