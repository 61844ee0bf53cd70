//! `chain-tui demo --sim`: a simulated network ([`crate::sim`]) drawn live. Every node runs
//! the real protocol state machine on a virtual network of world regions, in virtual time
//! that the user speeds up, slows down or pauses. The window shows how far the newest block
//! has spread, node by node and region by region; the recent blocks with their propagation
//! times; and the block tree, drawn by the demo's own tree code.
//!
//! The simulation runs on a thread of its own; the UI task only reads the frames it
//! publishes and sends it the speed and pause.

use super::render::render_tree_with;
use super::tree::{Have, TreeBlock, TreeCell, TreeInput, TreeView};
use crate::core::hash::BlockHash;
use crate::sim::world::{Latency, REGIONS, region_name};
use crate::sim::{BlockSpread, Holds, Relay, Sim, SimConfig};
use crate::term::{TerminalGuard, theme};
use anyhow::{Result, anyhow};
use crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Slowest and fastest speeds, as powers of two of real time.
const SLOWEST: i32 = -5;
const FASTEST: i32 = 12;
/// Real time between two steps of the simulation (and two frames).
const STEP: Duration = Duration::from_millis(40);
/// Blocks kept for the table and the tree.
const RECENT: usize = 40;

/// How the simulated network is set up.
#[derive(Clone, Debug)]
pub struct SimDemo {
    pub nodes: usize,
    pub relay: Relay,
    /// Mean time between blocks (virtual).
    pub block_interval: Duration,
    pub seed: u64,
}

impl SimDemo {
    fn config(&self) -> SimConfig {
        SimConfig {
            nodes: self.nodes,
            peers: 8,
            block_interval: self.block_interval,
            block_size: 1_000_000,
            latency: Latency::World,
            seed: self.seed,
            upload_bps: 10_000_000,
            relay: self.relay,
            txs: 100,
            ..SimConfig::default()
        }
    }
}

/// What the user set: speed (a power of two of real time) and pause.
#[derive(Clone, Copy, Debug, Default)]
struct Control {
    speed: i32,
    paused: bool,
    quit: bool,
}

/// What one frame shows, taken from the simulation between two steps.
#[derive(Clone, Debug)]
pub struct SimFrame {
    pub now: Duration,
    /// A power of two of real time.
    pub speed: i32,
    pub paused: bool,
    pub nodes: usize,
    pub relay: Relay,
    /// Each node's region.
    pub regions: Vec<usize>,
    /// The last blocks mined, newest first.
    pub spreads: Vec<BlockSpread>,
    /// Per block of `spreads`: nodes that have it on their active chain.
    pub active: Vec<usize>,
    pub tree: TreeInput,
}

impl SimFrame {
    /// The state of `sim` now.
    pub fn take(sim: &Sim, speed: i32, paused: bool) -> SimFrame {
        let n = sim.len();
        let spreads = sim.spreads(RECENT);
        let mut blocks = Vec::with_capacity(spreads.len());
        let mut active = Vec::with_capacity(spreads.len());
        for s in &spreads {
            let have: Vec<Have> = (0..n)
                .map(|i| match sim.holds(i, &s.hash) {
                    Holds::Active => Have::Active,
                    Holds::Side => Have::Side,
                    Holds::Missing => Have::Missing,
                })
                .collect();
            active.push(have.iter().filter(|h| **h == Have::Active).count());
            blocks.push(TreeBlock {
                hash: s.hash,
                height: s.height,
                prev: s.prev,
                miner: Some(s.miner),
                have,
            });
        }
        SimFrame {
            now: sim.now(),
            speed,
            paused,
            nodes: n,
            relay: sim.config().relay,
            regions: (0..n).map(|i| sim.region(i)).collect(),
            spreads,
            active,
            tree: TreeInput {
                blocks,
                tips: (0..n).map(|i| Some(sim.tip(i).1)).collect(),
                reorgs: Vec::new(),
            },
        }
    }
}

fn speed_text(speed: i32) -> String {
    if speed >= 0 {
        format!("×{}", 1u64 << speed)
    } else {
        format!("×1/{}", 1u64 << -speed)
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis() / 100
    )
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "not yet".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

/// Draw `fr` into the whole frame.
pub fn draw(f: &mut ratatui::Frame, fr: &SimFrame) {
    let area = f.area();
    let [top, grid, table, tree, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(grid_height(fr, area.width) + 2),
        Constraint::Length(10),
        Constraint::Min(4),
        Constraint::Length(1),
    ])
    .areas(area);
    let relay = match fr.relay {
        Relay::Compact => "compact blocks",
        Relay::Full => "full blocks",
    };
    let state = if fr.paused {
        Span::styled("paused", theme::warn())
    } else {
        Span::styled("running", theme::good())
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" Simulated network ", theme::title(true)),
            Span::styled(
                format!(
                    " {} nodes · {relay} · world latency · virtual time ",
                    fr.nodes
                ),
                theme::label(),
            ),
            Span::styled(clock(fr.now), theme::value()),
            Span::styled(
                format!(" · speed {} · ", speed_text(fr.speed)),
                theme::label(),
            ),
            state,
        ])),
        top,
    );
    draw_grid(f, fr, grid);
    draw_table(f, fr, table);
    draw_tree(f, fr, tree);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" space ", theme::key()),
            Span::styled("pause  ", theme::label()),
            Span::styled(" + ", theme::key()),
            Span::styled("faster  ", theme::label()),
            Span::styled(" - ", theme::key()),
            Span::styled("slower  ", theme::label()),
            Span::styled(" q ", theme::key()),
            Span::styled("quit   ", theme::label()),
            Span::styled(
                "█ has the newest block  · not yet   (virtual time; every node runs the real protocol)",
                theme::label(),
            ),
        ])),
        keys,
    );
}

/// Cells per grid line in a panel `width` wide (region name and count first).
fn cells_per_line(width: u16) -> usize {
    usize::from(width.saturating_sub(2 + 22)).max(10)
}

/// Lines the grid takes: each region's nodes wrapped, a summary line.
fn grid_height(fr: &SimFrame, width: u16) -> u16 {
    let per = cells_per_line(width);
    let lines: usize = (0..REGIONS)
        .map(|r| fr.regions.iter().filter(|x| **x == r).count().div_ceil(per))
        .sum();
    (lines + 1).min(40) as u16
}

fn draw_grid(f: &mut ratatui::Frame, fr: &SimFrame, area: Rect) {
    let newest = fr.spreads.first();
    let title = match newest {
        Some(b) => format!(
            " Block {} ({}) mined by node {} in {} ",
            b.height,
            &b.hash.to_string()[..8],
            b.miner + 1,
            region_name(fr.regions.get(b.miner).copied().unwrap_or(0))
        ),
        None => " No block yet ".into(),
    };
    let block = Block::bordered()
        .border_style(theme::border(false))
        .title(Span::styled(title, theme::title(false)));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let per = cells_per_line(area.width);
    let mut lines = Vec::new();
    if let Some(b) = newest {
        let since = fr.now.saturating_sub(b.mined_at);
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "{:.1} s ago · reached {} of {} nodes",
                    since.as_secs_f64(),
                    b.reached(),
                    fr.nodes
                ),
                theme::value(),
            ),
            Span::styled(
                format!(
                    " · time to 50 %: {} · to 90 %: {} · to all: {}",
                    secs(b.time_to(50)),
                    secs(b.time_to(90)),
                    secs(b.time_to(100))
                ),
                theme::label(),
            ),
        ]));
    } else {
        lines.push(Line::from(Span::styled(
            "waiting for the first block",
            theme::label(),
        )));
    }
    for r in 0..REGIONS {
        let members: Vec<usize> = (0..fr.nodes).filter(|i| fr.regions[*i] == r).collect();
        if members.is_empty() {
            continue;
        }
        let have = newest.map_or(0, |b| {
            members
                .iter()
                .filter(|i| b.arrived.get(**i).is_some_and(Option::is_some))
                .count()
        });
        for (k, chunk) in members.chunks(per).enumerate() {
            let label = if k == 0 {
                format!("{:<14}{:>4}/{:<4}", region_name(r), have, members.len())
            } else {
                " ".repeat(22)
            };
            let mut spans = vec![Span::styled(label, theme::label())];
            for i in chunk {
                let got = newest.is_some_and(|b| b.arrived.get(*i).is_some_and(Option::is_some));
                spans.push(if got {
                    Span::styled("█", theme::good())
                } else {
                    Span::styled("·", theme::label())
                });
            }
            lines.push(Line::from(spans));
        }
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_table(f: &mut ratatui::Frame, fr: &SimFrame, area: Rect) {
    let block = Block::bordered()
        .border_style(theme::border(false))
        .title(Span::styled(" Recent blocks ", theme::title(false)));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{:>7}  {:<9} {:<24} {:>9} {:>9} {:>9} {:>9}  {}",
            "height", "hash", "miner", "reached", "50 %", "90 %", "all", "on active chains"
        ),
        theme::label(),
    ))];
    for (b, active) in fr
        .spreads
        .iter()
        .zip(&fr.active)
        .take(usize::from(inner.height.saturating_sub(1)))
    {
        let miner = format!(
            "node {} ({})",
            b.miner + 1,
            region_name(fr.regions.get(b.miner).copied().unwrap_or(0))
        );
        // Every node that had it moved to another branch.
        let stale = *active == 0;
        let style = if stale { theme::bad() } else { theme::value() };
        lines.push(Line::from(Span::styled(
            format!(
                "{:>7}  {:<9} {:<24} {:>9} {:>9} {:>9} {:>9}  {}",
                b.height,
                &b.hash.to_string()[..8],
                miner,
                format!("{}/{}", b.reached(), fr.nodes),
                secs(b.time_to(50)),
                secs(b.time_to(90)),
                secs(b.time_to(100)),
                if stale {
                    "stale".to_string()
                } else {
                    active.to_string()
                }
            ),
            style,
        )));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn draw_tree(f: &mut ratatui::Frame, fr: &SimFrame, area: Rect) {
    let block = Block::bordered()
        .border_style(theme::border(false))
        .title(Span::styled(
            " Block tree (nodes that have each block; ◆ a node's tip) ",
            theme::title(false),
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let lane_w = 26;
    let lanes = usize::from((inner.width.saturating_sub(7) / lane_w).max(1));
    let view = TreeView::build(&fr.tree, usize::from(inner.height.saturating_sub(1)), lanes);
    let n = fr.nodes;
    render_tree_with(&view, lane_w, inner, f.buffer_mut(), |c: &TreeCell| {
        let hex = c.hash.to_string();
        let dot = if c.tip_of.is_empty() { "● " } else { "◆ " };
        let have = c.have.iter().filter(|h| **h != Have::Missing).count();
        vec![
            Span::styled(dot, theme::hash()),
            Span::styled(format!("{} ", &hex[..6]), theme::hash()),
            Span::styled(
                format!("{have}/{n}"),
                if have == n {
                    theme::good().add_modifier(Modifier::BOLD)
                } else {
                    theme::warn()
                },
            ),
        ]
    });
}

/// Open the terminal and run the simulated network until `q`, Ctrl-C or SIGTERM.
pub async fn run(cfg: SimDemo) -> Result<()> {
    let mut guard = TerminalGuard::enter().map_err(|e| anyhow!("cannot open the terminal: {e}"))?;
    let r = event_loop(&mut guard.terminal, EventStream::new(), cfg).await;
    drop(guard);
    r
}

/// The simulation on its own thread: steps of [`STEP`] real time, each advancing virtual
/// time by the speed, then a frame.
fn simulate(mut sim: Sim, control: Arc<Mutex<Control>>, frames: watch::Sender<Arc<SimFrame>>) {
    let mut last = Instant::now();
    loop {
        std::thread::sleep(STEP);
        let c = control.lock().map(|c| *c).unwrap_or(Control {
            quit: true,
            ..Control::default()
        });
        if c.quit {
            return;
        }
        // A step covers at most two steps of real time: a simulation slower than the speed
        // asked falls behind instead of taking ever longer steps.
        let real = last.elapsed().min(STEP * 2);
        last = Instant::now();
        if !c.paused {
            let step = if c.speed >= 0 {
                real.saturating_mul(1 << c.speed)
            } else {
                real / (1 << -c.speed)
            };
            // In slices, giving up on the rest after a tenth of a second of work.
            let target = sim.now() + step;
            let started = Instant::now();
            while sim.now() < target && started.elapsed() < Duration::from_millis(100) {
                let slice = (sim.now() + Duration::from_secs(1)).min(target);
                sim.run_until(slice);
            }
        }
        frames.send_replace(Arc::new(SimFrame::take(&sim, c.speed, c.paused)));
    }
}

/// The event loop over any backend and input stream.
pub async fn event_loop<B, S>(terminal: &mut Terminal<B>, mut input: S, cfg: SimDemo) -> Result<()>
where
    B: Backend,
    S: Stream<Item = std::io::Result<Event>> + Unpin,
{
    let control = Arc::new(Mutex::new(Control::default()));
    let sim = Sim::new(cfg.config()).map_err(|e| anyhow!(e))?;
    let first = Arc::new(SimFrame::take(&sim, 0, false));
    let (tx, mut frames) = watch::channel(first);
    let c2 = control.clone();
    let thread = std::thread::Builder::new()
        .name("chain-tui-sim".into())
        .spawn(move || simulate(sim, c2, tx))
        .map_err(|e| anyhow!("cannot start the simulation: {e}"))?;
    let mut sigterm = crate::runtime::SigTerm::with_hangup();
    let result = loop {
        if crate::term::panicked() {
            break Err(anyhow!("a thread panicked; see the log"));
        }
        // The speed and pause shown are the ones the simulation ran with (a key takes effect
        // at its next step, within 40 ms).
        let frame = frames.borrow_and_update().clone();
        if let Err(e) = terminal.draw(|f| draw(f, &frame)) {
            break Err(anyhow!("drawing: {e}"));
        }
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let Ok(mut c) = control.lock() else { break Ok(()) };
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => break Ok(()),
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                            break Ok(());
                        }
                        KeyCode::Char(' ') | KeyCode::Char('p') => c.paused = !c.paused,
                        KeyCode::Char('+') | KeyCode::Char('=') | KeyCode::Right => {
                            c.speed = (c.speed + 1).min(FASTEST);
                        }
                        KeyCode::Char('-') | KeyCode::Left => {
                            c.speed = (c.speed - 1).max(SLOWEST);
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(anyhow!("terminal input: {e}")),
                None => break Ok(()),
            },
            r = frames.changed() => {
                if r.is_err() {
                    break Err(anyhow!("the simulation stopped"));
                }
            }
            () = sigterm.recv() => break Ok(()),
        }
    };
    if let Ok(mut c) = control.lock() {
        c.quit = true;
    }
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    result
}

/// The frame of a fresh simulation of `cfg` run to `t` of virtual time (for tests).
pub fn frame_at(cfg: &SimDemo, t: Duration) -> Result<SimFrame> {
    let mut sim = Sim::new(cfg.config()).map_err(|e| anyhow!(e))?;
    sim.run_until(t);
    Ok(SimFrame::take(&sim, 0, false))
}

/// A hash's first 8 hex digits (for tests).
pub fn short(h: &BlockHash) -> String {
    h.to_string()[..8].to_string()
}
