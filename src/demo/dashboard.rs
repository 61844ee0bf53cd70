//! The demo dashboard's terminal and event loop: keys through [`DemoApp`], commands to the
//! [`Demo`] controller off the UI task, node statuses and tree data refreshed on a blocking
//! thread, a scenario played live (pausable), and a frame drawn at once after a key and at most
//! every 100 ms for data. [`bench_keys`] runs the same loop off-screen to time key-to-redraw.

use super::app::{DemoApp, DemoCommand, ScenarioView};
use super::controller::Demo;
use super::render::draw;
use super::scenario::{self, Progress, Scenario};
use crate::term::TerminalGuard;
use anyhow::{Result, anyhow};
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::{Backend, TestBackend};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Shortest time between two frames drawn for data changes (keys draw at once).
const FRAME: Duration = Duration::from_millis(100);
/// How often node statuses and the tree are refreshed.
const REFRESH: Duration = Duration::from_millis(250);
/// Heights of the tree kept for display.
const TREE_HEIGHTS: u64 = 40;

/// Answers from background tasks.
enum Msg {
    Refresh(Box<(Vec<super::controller::NodeStatus>, super::tree::TreeInput)>),
    Done(Result<String, String>, Option<usize>),
    Scenario(Progress),
    ScenarioEnd(bool),
}

/// Open the terminal and run the dashboard until `q`, Ctrl-C or SIGTERM.
pub async fn run(demo: &Demo, scenario: Option<Scenario>) -> Result<()> {
    let mut guard = TerminalGuard::enter().map_err(|e| anyhow!("cannot open the terminal: {e}"))?;
    let input = EventStream::new();
    let r = event_loop(&mut guard.terminal, input, demo, scenario, None).await;
    drop(guard);
    r
}

/// The event loop over any backend and input stream. `drawn` hears the time of every frame.
pub async fn event_loop<B, S>(
    terminal: &mut Terminal<B>,
    mut input: S,
    demo: &Demo,
    scenario: Option<Scenario>,
    drawn: Option<mpsc::UnboundedSender<std::time::Instant>>,
) -> Result<()>
where
    B: Backend,
    S: Stream<Item = std::io::Result<Event>> + Unpin,
{
    let mut app = DemoApp::new(demo.network(), demo.topology(), demo.len());
    app.nodes = demo.status(false);
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let (pause_tx, pause_rx) = watch::channel(super::app::dashboard_pace());
    if let Some(sc) = scenario {
        app.scenario = Some(ScenarioView {
            name: sc.name.clone(),
            description: sc.description.clone(),
            steps: sc.steps.len(),
            pace: super::app::dashboard_pace(),
            ..ScenarioView::default()
        });
        let (d, tx) = (demo.clone(), tx.clone());
        tokio::spawn(async move {
            let t2 = tx.clone();
            let report = scenario::run(&d, &sc, pause_rx, move |p| {
                let _ = t2.send(Msg::Scenario(p));
            })
            .await;
            let _ = tx.send(Msg::ScenarioEnd(report.passed()));
        });
    }
    let mut changes = demo.changes();
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refreshing = false;
    let mut stale = false;
    let mut sigterm = crate::runtime::SigTerm::with_hangup();
    let mut dirty = true;
    let mut urgent = true;
    let mut last_draw = Instant::now();
    loop {
        if crate::term::panicked() {
            return Err(anyhow!("a thread panicked; see the log"));
        }
        if dirty && (urgent || last_draw.elapsed() >= FRAME) {
            terminal
                .draw(|f| draw(f, &app))
                .map_err(|e| anyhow!("drawing: {e}"))?;
            dirty = false;
            urgent = false;
            last_draw = Instant::now();
            if let Some(d) = &drawn {
                let _ = d.send(std::time::Instant::now());
            }
        }
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    if let Some(cmd) = app.on_key(k) {
                        if cmd == DemoCommand::Quit {
                            return Ok(());
                        }
                        if let DemoCommand::Pace(p) = cmd {
                            pause_tx.send_replace(p);
                        } else {
                            execute(cmd, demo, &tx);
                        }
                    }
                    dirty = true;
                    urgent = true;
                }
                Some(Ok(_)) => {
                    dirty = true;
                    urgent = true;
                }
                Some(Err(e)) => return Err(anyhow!("terminal input: {e}")),
                None => return Ok(()),
            },
            _ = refresh.tick(), if !refreshing => {
                refreshing = true;
                spawn_refresh(demo, &tx);
            }
            r = changes.changed() => {
                // The node columns and the tree change together, from one refresh read at
                // once (columns updated alone ran a block or two ahead of the tree).
                if r.is_ok() {
                    if refreshing {
                        // The one in flight may have read before this change: one more after.
                        stale = true;
                    } else {
                        refreshing = true;
                        spawn_refresh(demo, &tx);
                    }
                }
            }
            Some(m) = rx.recv() => {
                match m {
                    Msg::Refresh(b) => {
                        refreshing = stale;
                        if stale {
                            stale = false;
                            spawn_refresh(demo, &tx);
                        }
                        let (st, tree) = *b;
                        app.nodes = st;
                        app.tree = tree;
                        // Messages go after a few seconds; the key hints stay.
                        app.expire_message(std::time::Instant::now());
                    }
                    Msg::Done(r, node) => {
                        if let Some(i) = node
                            && let Some(b) = app.busy.get_mut(i)
                        {
                            *b = false;
                        }
                        match r {
                            Ok(s) => app.info(s),
                            Err(e) => app.error(e),
                        }
                        urgent = true;
                    }
                    Msg::Scenario(p) => {
                        if let Some(s) = &mut app.scenario {
                            match p {
                                Progress::Started { index, text, say } => {
                                    s.current = Some((index, text));
                                    s.started = index;
                                    s.say = say;
                                }
                                Progress::Finished(r) => {
                                    s.current = None;
                                    s.done.push(r);
                                }
                            }
                        }
                    }
                    Msg::ScenarioEnd(ok) => {
                        if let Some(s) = &mut app.scenario {
                            s.finished = Some(ok);
                        }
                    }
                }
                dirty = true;
            }
            _ = sigterm.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep_until(last_draw + FRAME), if dirty => {}
        }
    }
}

/// Read the nodes' statuses and the block tree together, off the UI task.
fn spawn_refresh(demo: &Demo, tx: &mpsc::UnboundedSender<Msg>) {
    let (d, tx) = (demo.clone(), tx.clone());
    tokio::task::spawn_blocking(move || {
        let (st, tree) = d.view(true, TREE_HEIGHTS);
        let _ = tx.send(Msg::Refresh(Box::new((st, tree))));
    });
}

/// Carry out a command off the UI task; the outcome comes back as a status message.
fn execute(cmd: DemoCommand, demo: &Demo, tx: &mpsc::UnboundedSender<Msg>) {
    let (d, tx) = (demo.clone(), tx.clone());
    tokio::spawn(async move {
        let (r, node) = match cmd {
            DemoCommand::Quit | DemoCommand::Pace(_) => return,
            DemoCommand::SetMining(i, on) => (
                d.set_mining(i, on)
                    .await
                    .map(|_| format!("node {}: mining {}", i + 1, if on { "on" } else { "off" })),
                None,
            ),
            DemoCommand::SetPower(i, power) => (
                d.set_power(i, power)
                    .await
                    .map(|_| super::app::power_text(&d.status(false), i, power)),
                None,
            ),
            DemoCommand::Send { from, to, amount } => (
                d.send(from, to, amount, None).await.map(|t| {
                    format!(
                        "node {} sent {amount} to node {}: {}",
                        from + 1,
                        to + 1,
                        t.short()
                    )
                }),
                None,
            ),
            DemoCommand::Partition(i) => {
                let running = d.is_running(i);
                (
                    d.partition(&[i]).await.map(|_| {
                        if running {
                            format!("node {} cut off", i + 1)
                        } else {
                            format!("node {} (stopped) will be cut off when it restarts", i + 1)
                        }
                    }),
                    None,
                )
            }
            DemoCommand::Heal(nodes) => (
                d.heal(&nodes).await.map(|_| "links restored".to_string()),
                None,
            ),
            DemoCommand::Stop(i) => (
                d.stop(i).await.map(|_| format!("node {} stopped", i + 1)),
                Some(i),
            ),
            DemoCommand::Restart(i) => (
                d.restart(i)
                    .await
                    .map(|_| super::app::after_restart(&d.status(false), i)),
                Some(i),
            ),
        };
        let _ = tx.send(Msg::Done(r.map_err(|e| e.to_string()), node));
    });
}

/// Key-to-redraw latency with every node mining: `keys` presses of ←/→ (a redraw each) fed
/// to the real event loop drawing a 160×50 off-screen terminal, spaced 50–150 ms apart.
/// Returns the report text.
pub async fn bench_keys(demo: &Demo, keys: usize) -> Result<String> {
    for i in 0..demo.len() {
        demo.set_mining(i, true).await?;
    }
    // Let the network get going.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (key_tx, key_rx) = mpsc::unbounded_channel::<std::io::Result<Event>>();
    let (drawn_tx, mut drawn_rx) = mpsc::unbounded_channel();
    let d = demo.clone();
    let ui = tokio::spawn(async move {
        let mut terminal = Terminal::new(TestBackend::new(160, 50))?;
        let input = tokio_stream(key_rx);
        event_loop(&mut terminal, input, &d, None, Some(drawn_tx)).await
    });
    let mut lat = Vec::with_capacity(keys);
    let start_height = demo
        .status(false)
        .iter()
        .map(|s| s.height)
        .max()
        .unwrap_or(0);
    let t0 = std::time::Instant::now();
    for k in 0..keys {
        tokio::time::sleep(Duration::from_millis(50 + (k as u64 * 37) % 100)).await;
        while drawn_rx.try_recv().is_ok() {}
        let code = if k % 2 == 0 {
            KeyCode::Right
        } else {
            KeyCode::Left
        };
        let sent = std::time::Instant::now();
        key_tx
            .send(Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))))
            .map_err(|_| anyhow!("the dashboard stopped"))?;
        // The first frame drawn after the key.
        loop {
            match tokio::time::timeout(Duration::from_secs(5), drawn_rx.recv()).await {
                Ok(Some(at)) if at >= sent => {
                    lat.push(at.duration_since(sent));
                    break;
                }
                Ok(Some(_)) => continue,
                _ => return Err(anyhow!("no frame within 5 s of a key")),
            }
        }
    }
    let elapsed = t0.elapsed();
    let blocks = demo
        .status(false)
        .iter()
        .map(|s| s.height)
        .max()
        .unwrap_or(0)
        - start_height;
    let _ = key_tx.send(Ok(Event::Key(KeyEvent::new(
        KeyCode::Char('q'),
        KeyModifiers::NONE,
    ))));
    drop(key_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), ui).await;
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    Ok(format!(
        "key-to-redraw over {} keys, {} nodes mining ({} blocks in {:.1} s): median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target < 100 ms)",
        lat.len(),
        demo.len(),
        blocks,
        elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    ))
}

/// An unbounded receiver as a stream.
fn tokio_stream<T>(mut rx: mpsc::UnboundedReceiver<T>) -> impl Stream<Item = T> + Unpin {
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}
