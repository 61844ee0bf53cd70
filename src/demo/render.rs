//! Drawing the demo dashboard from a [`DemoApp`] alone (so a `TestBackend` renders the same
//! screen as a terminal): a title line, a column per node, the shared block tree, the
//! scenario's steps, the status bar, and the help and send overlays.

use super::app::{DemoApp, Overlay, SendForm};
use super::controller::NodeStatus;
use super::keys::DemoAction;
use super::tree::{Have, TreeCell, TreeView};
use crate::core::pow::si_text;
use crate::term::keymap::Bindable;
use crate::term::theme;
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

/// Rows of a node column (with its border).
const NODE_ROWS: u16 = 12;

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &DemoApp) {
    let area = frame.area();
    if area.width < 30 || area.height < 10 {
        frame.render_widget(Paragraph::new("terminal too small for the demo"), area);
        return;
    }
    let [title, nodes, bottom, status] = area.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(NODE_ROWS),
        Constraint::Min(3),
        Constraint::Length(1),
    ]));
    draw_title(frame, app, title);
    draw_nodes(frame, app, nodes);
    if app.scenario.is_some() && bottom.width >= 90 {
        let [tree, sc] = bottom.layout(&Layout::horizontal([
            Constraint::Percentage(62),
            Constraint::Percentage(38),
        ]));
        draw_tree(frame, app, tree);
        draw_scenario(frame, app, sc);
    } else {
        draw_tree(frame, app, bottom);
    }
    draw_status(frame, app, status);
    match &app.overlay {
        Some(Overlay::Help) => draw_help(frame, app, area),
        Some(Overlay::Send(f)) => draw_send(frame, app, f, area),
        None => {}
    }
}

fn draw_title(frame: &mut Frame, app: &DemoApp, area: Rect) {
    let mut spans = vec![
        Span::styled(" chain-tui demo ", theme::key()),
        Span::raw(format!(
            " {} · {} nodes · {}",
            app.network,
            app.nodes.len(),
            app.topology.name()
        )),
    ];
    if let Some(s) = &app.scenario {
        let state = match (s.finished, s.pace.paused, s.pace.stepping) {
            (Some(true), ..) => Span::styled("PASSED", theme::good()),
            (Some(false), ..) => Span::styled("FAILED", theme::bad()),
            (None, true, _) => Span::styled("paused", theme::warn()),
            (None, false, true) => Span::styled("step by step (n)", theme::warn()),
            (None, false, false) => Span::styled("playing", theme::good()),
        };
        let step = s.current.as_ref().map(|c| c.0).unwrap_or(s.done.len());
        spans.push(Span::raw(format!(
            " · scenario {} step {step}/{} ",
            s.name, s.steps
        )));
        spans.push(state);
        if s.finished.is_none() {
            spans.push(Span::raw(format!(
                " {}",
                super::app::speed_text(s.pace.speed_pct)
            )));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn node_state(s: &NodeStatus) -> Span<'static> {
    if !s.running {
        Span::styled("stopped", theme::bad())
    } else if s.partitioned {
        Span::styled("cut off", theme::warn())
    } else if s.mining {
        Span::styled("mining", theme::good())
    } else {
        Span::styled("up", theme::label())
    }
}

fn draw_nodes(frame: &mut Frame, app: &DemoApp, area: Rect) {
    let n = app.nodes.len().max(1) as u32;
    let cols = area.layout_vec(&Layout::horizontal(
        (0..n).map(|_| Constraint::Ratio(1, n)).collect::<Vec<_>>(),
    ));
    for (s, col) in app.nodes.iter().zip(cols) {
        let selected = s.index == app.selected;
        let block = Block::bordered()
            .border_style(theme::border(selected))
            .title(Line::from(vec![
                Span::styled(format!(" {} ", s.index + 1), theme::title(selected)),
                node_state(s),
                Span::raw(" "),
            ]));
        let inner = block.inner(col);
        frame.render_widget(block, col);
        let w = inner.width as usize;
        let kv = |k: &str, v: String| {
            Line::from(vec![
                Span::styled(format!("{k} "), theme::label()),
                Span::styled(v, theme::value()),
            ])
        };
        let mut lines = Vec::new();
        if s.running {
            let tip = s.tip.to_string();
            lines.push(kv("height", s.height.to_string()));
            lines.push(Line::from(Span::styled(
                fit(&format!("{}…{}", &tip[..8], &tip[60..]), w),
                theme::hash(),
            )));
            lines.push(kv("work", si_text(s.work.0)));
            let peers: Vec<String> = s.peers.iter().map(|p| (p + 1).to_string()).collect();
            lines.push(kv(
                "peers",
                if peers.is_empty() {
                    "none".into()
                } else {
                    peers.join(",")
                },
            ));
            lines.push(kv(
                "mempool",
                format!("{} tx {}", s.mempool_count, bytes(s.mempool_bytes)),
            ));
            lines.push(kv(
                "hash/s",
                si_text(crate::core::pow::U256::from(s.hashrate)),
            ));
            lines.push(kv(
                "power",
                if s.mining {
                    format!("{} · {}%", s.power, (s.power_share_pm + 5) / 10)
                } else {
                    s.power.to_string()
                },
            ));
            match s.balance {
                Some(b) => {
                    lines.push(kv("balance", b.confirmed.to_string()));
                    lines.push(Line::from(Span::styled(
                        fit(&format!("+{} pend {} imm", b.unconfirmed, b.immature), w),
                        theme::label(),
                    )));
                }
                None => lines.push(kv("balance", "…".into())),
            }
        } else {
            lines.push(Line::from(Span::styled("stopped", theme::bad())));
            lines.push(Line::from(Span::styled("r restarts it", theme::label())));
        }
        if s.deepest_reorg > 0 {
            lines.push(Line::from(Span::styled(
                format!("deepest reorg: {}", s.deepest_reorg),
                theme::warn(),
            )));
        }
        if let Some(a) = s.listen {
            lines.push(Line::from(Span::styled(
                fit(&a.to_string(), w),
                theme::label(),
            )));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

fn bytes(n: usize) -> String {
    if n < 1000 {
        format!("{n} B")
    } else {
        format!("{:.1} kB", n as f64 / 1000.0)
    }
}

/// `s` cut to `width` characters (with an ellipsis when cut).
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Width of one lane of the tree for `nodes` nodes.
fn lane_width(nodes: usize) -> u16 {
    // "● 1a2b3c 12345678 ⟲12·n8 "
    (2 + 6 + 1 + nodes + 1 + 8) as u16
}

fn draw_tree(frame: &mut Frame, app: &DemoApp, area: Rect) {
    let block = Block::bordered()
        .border_style(theme::border(false))
        .title(Span::styled(" Block tree ", theme::title(false)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 2 || inner.width < 20 {
        return;
    }
    let nodes = app.nodes.len();
    let lane_w = lane_width(nodes);
    let max_lanes = ((inner.width.saturating_sub(7)) / lane_w).max(1) as usize;
    // The last line is the legend, when there is room for a tree above it.
    let legend = inner.height >= 6;
    let tree = if legend {
        Rect {
            height: inner.height - 1,
            ..inner
        }
    } else {
        inner
    };
    let rows = tree.height.saturating_sub(1) as usize;
    let view = TreeView::build(&app.tree, rows, max_lanes);
    render_tree(&view, lane_w, tree, frame.buffer_mut());
    if legend {
        let line = Rect {
            y: inner.y + inner.height - 1,
            height: 1,
            ..inner
        };
        let w = usize::from(inner.width);
        let text = [TREE_LEGEND, TREE_LEGEND_SHORT]
            .into_iter()
            .find(|l| l.chars().count() <= w)
            .unwrap_or(TREE_LEGEND_SHORT);
        frame.render_widget(
            Paragraph::new(Span::styled(fit(text, w), theme::label())),
            line,
        );
    }
}

/// What the tree's marks mean, under the tree (the help says it at more length).
const TREE_LEGEND: &str = "◆ tip · ● block · 123: nodes that have it (bold: on their chain, \
     dim: side branch, ·: missing) · ⟲d·nX+k: node X reorganised d blocks deep onto it (+k: k \
     more onto it) · ╯ where a fork leaves";
/// The legend for a narrow tree.
const TREE_LEGEND_SHORT: &str = "◆ tip · 123 have it (bold: on chain, dim: side, ·: missing) \
     · ⟲d·nX reorg · ? more";

fn cell_spans(c: &TreeCell) -> Vec<Span<'static>> {
    let hex = c.hash.to_string();
    let dot = if c.tip_of.is_empty() { "● " } else { "◆ " };
    let mut spans = vec![
        Span::styled(dot, theme::hash()),
        Span::styled(format!("{} ", &hex[..6]), theme::hash()),
    ];
    for (i, h) in c.have.iter().enumerate() {
        let d = char::from_digit(((i + 1) % 10) as u32, 10).unwrap_or('?');
        spans.push(match h {
            Have::Active => Span::styled(d.to_string(), theme::good().add_modifier(Modifier::BOLD)),
            Have::Side => Span::styled(d.to_string(), Style::new().add_modifier(Modifier::DIM)),
            Have::Missing => Span::styled("·", theme::label()),
            Have::Down => Span::styled(" ", theme::label()),
        });
    }
    if let Some(&(node, depth)) = c.reorgs.iter().max_by_key(|r| r.1) {
        let more = if c.reorgs.len() > 1 {
            format!("+{}", c.reorgs.len() - 1)
        } else {
            String::new()
        };
        spans.push(Span::styled(
            format!(" ⟲{depth}·n{}{more}", node + 1),
            theme::bad().add_modifier(Modifier::BOLD),
        ));
    }
    spans
}

/// Draw `view` into `area`: a header line, then a row per height, lanes side by side.
pub fn render_tree(view: &TreeView, lane_w: u16, area: Rect, buf: &mut Buffer) {
    render_tree_with(view, lane_w, area, buf, cell_spans);
}

/// [`render_tree`] with each block drawn by `cell` (the simulated network shows counts of
/// nodes, not a digit per node).
pub fn render_tree_with(
    view: &TreeView,
    lane_w: u16,
    area: Rect,
    buf: &mut Buffer,
    cell: impl Fn(&TreeCell) -> Vec<Span<'static>>,
) {
    let x0 = area.x + 7;
    let mut header = vec![Span::styled("height ", theme::label())];
    for lane in 0..view.lanes {
        let label = if lane == 0 {
            "best branch".to_string()
        } else {
            format!("fork lane {lane}")
        };
        header.push(Span::styled(
            format!("{:<w$}", label, w = lane_w as usize),
            theme::label(),
        ));
    }
    if view.hidden_lanes > 0 {
        header.push(Span::styled(
            format!("+{} more", view.hidden_lanes),
            theme::label(),
        ));
    }
    if view.rows.is_empty() {
        header = vec![Span::styled("no blocks yet", theme::label())];
    }
    buf.set_line(area.x, area.y, &Line::from(header), area.width);
    for (r, row) in view.rows.iter().enumerate() {
        let y = area.y + 1 + r as u16;
        if y >= area.bottom() {
            break;
        }
        buf.set_string(area.x, y, format!("{:<6}", row.height), theme::label());
        let mut ends = vec![0u16; view.lanes];
        for (lane, cell_at) in row.cells.iter().enumerate() {
            let x = x0 + lane as u16 * lane_w;
            if x >= area.right() {
                break;
            }
            if let Some(c) = cell_at {
                let (end, _) = buf.set_line(x, y, &Line::from(cell(c)), area.right() - x);
                ends[lane] = end;
            }
        }
        for &(lane, from) in &row.forks {
            let start = ends.get(from).copied().unwrap_or(x0).max(x0) + 1;
            let x_fork = x0 + lane as u16 * lane_w;
            if x_fork >= area.right() || start > x_fork {
                continue;
            }
            for x in start..x_fork {
                if buf[(x, y)].symbol() == " " {
                    buf[(x, y)].set_symbol("─").set_style(theme::label());
                }
            }
            buf[(x_fork, y)].set_symbol("╯").set_style(theme::label());
        }
    }
}

fn draw_scenario(frame: &mut Frame, app: &DemoApp, area: Rect) {
    let Some(s) = &app.scenario else { return };
    let block = Block::bordered()
        .border_style(theme::border(false))
        .title(Span::styled(
            format!(" Scenario {} ", s.name),
            theme::title(false),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    // Always on top: what the scenario is, and what the step now running means.
    let mut head: Vec<Line> = Vec::new();
    if !s.description.is_empty() {
        for l in wrap(&s.description, w).into_iter().take(2) {
            head.push(Line::from(Span::styled(l, theme::label())));
        }
    }
    if let Some(say) = &s.say {
        for l in wrap(&format!("» {say}"), w).into_iter().take(3) {
            head.push(Line::from(Span::styled(l, theme::value())));
        }
    }
    let room = (inner.height as usize).saturating_sub(head.len());
    // Each step; under each expectation, what it saw (which payment survived, how deep a
    // reorganisation went): the verdict in words, not only PASS.
    let mut lines: Vec<Line> = Vec::new();
    for r in &s.done {
        let (mark, style) = match (r.ok, r.expectation) {
            (true, true) => ("PASS", theme::good()),
            (true, false) => ("ok  ", theme::label()),
            (false, _) => ("FAIL", theme::bad()),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:>2} {mark} ", r.index), style),
            Span::raw(fit(&r.text, w.saturating_sub(8))),
        ]));
        if r.expectation && !r.detail.is_empty() {
            for l in wrap(&r.detail, w.saturating_sub(8)).into_iter().take(2) {
                lines.push(Line::from(Span::styled(format!("        {l}"), style)));
            }
        }
    }
    if let Some((i, text)) = &s.current {
        lines.push(Line::from(vec![
            Span::styled(format!("{i:>2} …    "), theme::warn()),
            Span::raw(fit(text, w.saturating_sub(8))),
        ]));
    }
    if let Some(last) = s.done.last()
        && !last.detail.is_empty()
        && !last.expectation
    {
        lines.push(Line::from(Span::styled(
            fit(&format!("   {}", last.detail), w),
            theme::label(),
        )));
    }
    let skip = lines.len().saturating_sub(room);
    head.extend(lines.into_iter().skip(skip));
    frame.render_widget(Paragraph::new(head), inner);
}

/// `text` in lines of at most `w` characters, broken at spaces where it can be.
fn wrap(text: &str, w: usize) -> Vec<String> {
    let w = w.max(8);
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > w {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > w {
            let head: String = line.chars().take(w).collect();
            let rest: String = line.chars().skip(w).collect();
            out.push(head);
            line = rest;
        }
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// The key hints, always, with the latest message beside them on the right (up to half the
/// width; the hints give way to it).
fn draw_status(frame: &mut Frame, app: &DemoApp, area: Rect) {
    frame.render_widget(Block::new().style(theme::status_bar()), area);
    let hints = match &app.message {
        Some(m) => {
            let style = if m.error { theme::bad() } else { theme::good() };
            let w = usize::from(area.width);
            let text = fit(&m.text, (w / 2).saturating_sub(2));
            let len = text.chars().count() as u16 + 2;
            let [hints, msg] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(len)]).areas(area);
            frame.render_widget(
                Paragraph::new(Span::styled(format!(" {text} "), style)),
                msg,
            );
            hints
        }
        None => area,
    };
    let area = hints;
    let k = &app.keymap;
    let mut spans = vec![Span::raw(" ")];
    let first = k.keys_text(DemoAction::Select(0));
    let last = k.keys_text(DemoAction::Select(app.nodes.len().clamp(1, 8) - 1));
    spans.push(Span::styled(format!(" {first}-{last} "), theme::key()));
    spans.push(Span::raw(" node "));
    let playing = app.scenario.as_ref().is_some_and(|s| s.finished.is_none());
    let mut actions = vec![
        DemoAction::ToggleMining,
        DemoAction::Send,
        DemoAction::Partition,
        DemoAction::Heal,
        DemoAction::Stop,
        DemoAction::Restart,
    ];
    if playing {
        actions.extend([DemoAction::Pause, DemoAction::NextStep, DemoAction::Faster]);
    }
    actions.extend([DemoAction::Help, DemoAction::Quit]);
    for a in actions {
        let keys = k.keys_text(a);
        let first = keys.split('/').next().unwrap_or("").to_string();
        spans.push(Span::styled(format!(" {first} "), theme::key()));
        spans.push(Span::raw(format!(" {} ", a.short())));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_help(frame: &mut Frame, app: &DemoApp, area: Rect) {
    let rows = super::keys::help_rows(&app.keymap, app.nodes.len());
    let key_w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(4);
    let mut lines: Vec<Line> = rows
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!(" {k:<key_w$}  "), theme::value()),
                Span::raw(*d),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        " block tree: digits are the nodes that have a block — bold on",
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        " their chain, dim on a side branch, · missing; ◆ a tip;",
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        " ⟲d·nX: node X reorganised d blocks deep onto this block",
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        " (+k: and k more reorganisations onto it);",
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        " forks sit in lanes (one lane holds forks far apart in height),",
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        " each joined by ───╯ to the block it leaves",
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        " keys come from assets/demo/keymap.toml",
        theme::label(),
    )));
    let h = lines.len() as u16 + 2;
    let inner = crate::term::popup(frame, area, 66, h, "Demo help");
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_send(frame: &mut Frame, app: &DemoApp, f: &SendForm, area: Rect) {
    let title = format!("Send from node {}", app.selected + 1);
    let inner = crate::term::popup(frame, area, 56, 8, &title);
    let field = |i: usize, label: &str, v: &str| {
        let style = if f.field == i {
            theme::selected()
        } else {
            theme::value()
        };
        Line::from(vec![
            Span::styled(format!("{label:<16}"), theme::label()),
            Span::styled(format!("{v:<20}"), style),
        ])
    };
    let spendable = app
        .nodes
        .get(app.selected)
        .and_then(|s| s.balance)
        .map(|b| format!("spendable {}", b.confirmed))
        .unwrap_or_else(|| "balance not loaded yet".into());
    let mut lines = vec![
        field(0, "to node (1-N)", &f.to),
        field(1, "amount (coins)", &f.amount),
        Line::from(Span::styled(spendable, theme::label())),
    ];
    match &f.error {
        Some(e) => lines.push(Line::from(Span::styled(e.clone(), theme::bad()))),
        None => lines.push(Line::from(Span::styled(
            "Tab switches field · Enter sends · Esc cancels",
            theme::label(),
        ))),
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
