//! Drawing: the layout, one module per pane, the overlays and the status bar. Everything reads
//! an [`App`] and nothing else, so a `TestBackend` renders the same screen as a terminal.

pub mod chain;
pub mod hashrate;
pub mod log;
pub mod mempool;
pub mod overlay;
pub mod peers;
pub mod wallet;

use super::app::{App, Overlay, Pane};
use crate::core::pow::{U256, si_text};
use crate::node::FeeRate;
use crate::term::keymap::Bindable;
use crate::term::theme;
use ratatui::Frame;
use ratatui::buffer::{Buffer, CellWidth};
use ratatui::layout::{Constraint, Layout as RLayout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

/// Where everything goes on a screen of a given size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenLayout {
    pub panes: Vec<(Pane, Rect)>,
    /// A line naming every pane, when only some are shown.
    pub tabs: Option<Rect>,
    pub status: Rect,
}

/// Below this the screen only says it is too small.
pub const MIN_WIDTH: u16 = 24;
pub const MIN_HEIGHT: u16 = 6;

/// Full layout from this size up: six panes in three rows.
const FULL: (u16, u16) = (100, 28);
/// Medium: two columns of three.
const MEDIUM: (u16, u16) = (64, 21);

/// [`layout`], or with `zoom` the focused pane alone over the whole screen but the status bar.
pub fn layout_zoomed(area: Rect, focus: Pane, zoom: bool) -> ScreenLayout {
    if zoom && area.width >= MIN_WIDTH && area.height >= MIN_HEIGHT {
        let [body, status] = area.layout(&RLayout::vertical([
            Constraint::Min(1),
            Constraint::Length(1),
        ]));
        return ScreenLayout {
            panes: vec![(focus, body)],
            tabs: None,
            status,
        };
    }
    layout(area, focus)
}

/// Lay the panes out for `area`: three rows of panes on big screens, two columns of three on
/// medium ones, and on small ones a tab line and the focused pane alone.
pub fn layout(area: Rect, focus: Pane) -> ScreenLayout {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return ScreenLayout {
            panes: Vec::new(),
            tabs: None,
            status: Rect::default(),
        };
    }
    let [body, status] = area.layout(&RLayout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
    ]));
    if area.width >= FULL.0 && area.height >= FULL.1 {
        let h = body.height;
        let top = (h * 2 / 5).max(8);
        let mid = (h * 3 / 10).max(7);
        let [r1, r2, r3] = body.layout(&RLayout::vertical([
            Constraint::Length(top),
            Constraint::Length(mid),
            Constraint::Min(3),
        ]));
        let [chain, mempool, peers] = r1.layout(&RLayout::horizontal([
            Constraint::Percentage(33),
            Constraint::Percentage(27),
            Constraint::Percentage(40),
        ]));
        let [hashrate, wallet] = r2.layout(&RLayout::horizontal([
            Constraint::Percentage(33),
            Constraint::Percentage(67),
        ]));
        return ScreenLayout {
            panes: vec![
                (Pane::Chain, chain),
                (Pane::Mempool, mempool),
                (Pane::Peers, peers),
                (Pane::Hashrate, hashrate),
                (Pane::Wallet, wallet),
                (Pane::Log, r3),
            ],
            tabs: None,
            status,
        };
    }
    if area.width >= MEDIUM.0 && area.height >= MEDIUM.1 {
        let rows: [Rect; 3] = body.layout(&RLayout::vertical([
            Constraint::Ratio(1, 3),
            Constraint::Ratio(1, 3),
            Constraint::Ratio(1, 3),
        ]));
        let pairs = [
            (Pane::Chain, Pane::Mempool),
            (Pane::Peers, Pane::Hashrate),
            (Pane::Wallet, Pane::Log),
        ];
        let mut panes = Vec::new();
        for (row, (a, b)) in rows.iter().zip(pairs) {
            let [l, r] = row.layout(&RLayout::horizontal([
                Constraint::Percentage(50),
                Constraint::Percentage(50),
            ]));
            panes.push((a, l));
            panes.push((b, r));
        }
        return ScreenLayout {
            panes,
            tabs: None,
            status,
        };
    }
    let [tabs, pane] = body.layout(&RLayout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
    ]));
    ScreenLayout {
        panes: vec![(focus, pane)],
        tabs: Some(tabs),
        status,
    }
}

/// A table column: heading, alignment, and priority (when the pane is too narrow the columns
/// with the highest number go first; 0 always stays).
#[derive(Clone, Copy, Debug)]
pub struct Col {
    pub head: &'static str,
    pub right: bool,
    pub priority: u8,
}

impl Col {
    pub const fn left(head: &'static str, priority: u8) -> Col {
        Col {
            head,
            right: false,
            priority,
        }
    }
    pub const fn right(head: &'static str, priority: u8) -> Col {
        Col {
            head,
            right: true,
            priority,
        }
    }
}

/// Lay out a table in `width` columns: each column as wide as its widest cell or heading, and
/// whole columns left out, least important first, until the rest fits, so that no figure is
/// cut in the middle. Returns the heading line and one line per row.
pub fn table(cols: &[Col], rows: &[Vec<String>], width: usize) -> (String, Vec<String>) {
    let mut widths: Vec<usize> = cols.iter().map(|c| c.head.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut keep: Vec<bool> = vec![true; cols.len()];
    let total = |keep: &[bool]| -> usize {
        let n = keep.iter().filter(|k| **k).count();
        widths
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| *w)
            .sum::<usize>()
            + n.saturating_sub(1)
    };
    while total(&keep) > width {
        let drop = (0..cols.len())
            .filter(|i| keep[*i] && cols[*i].priority > 0)
            .max_by_key(|i| (cols[*i].priority, *i));
        match drop {
            Some(i) => keep[i] = false,
            None => break,
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if !keep[i] {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if cols[i].right {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_string()
    };
    let head = line(&mut cols.iter().map(|c| c.head));
    let body = rows
        .iter()
        .map(|r| line(&mut r.iter().map(String::as_str)))
        .collect();
    (head, body)
}

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let l = layout_zoomed(area, app.focus, app.zoomed);
    if l.panes.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from("chain-tui: too small"),
                Line::from(format!(
                    "{}×{}, need {MIN_WIDTH}×{MIN_HEIGHT}",
                    area.width, area.height
                )),
                Line::from("q quits"),
            ]),
            area,
        );
        return;
    }
    // A block, transaction or address view covers the panes all but its margins: they are not
    // drawn under it (half the cost of such a frame).
    let covered = matches!(
        app.overlays.last(),
        Some(Overlay::Block(..) | Overlay::Tx(..) | Overlay::Address(..))
    );
    if let Some(t) = l.tabs.filter(|_| !covered) {
        draw_tabs(frame, app, t);
    }
    for (pane, rect) in l.panes.iter().filter(|_| !covered) {
        let focused = *pane == app.focus;
        match pane {
            Pane::Chain => chain::render(frame, app, *rect, focused),
            Pane::Mempool => mempool::render(frame, app, *rect, focused),
            Pane::Peers => peers::render(frame, app, *rect, focused),
            Pane::Hashrate => hashrate::render(frame, app, *rect, focused),
            Pane::Wallet => wallet::render(frame, app, *rect, focused),
            Pane::Log => log::render(frame, app, *rect, focused),
        }
    }
    draw_status(frame, app, l.status);
    overlay::render(frame, app, area);
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = Vec::new();
    for p in Pane::ALL {
        let style = if p == app.focus {
            theme::selected()
        } else {
            theme::label()
        };
        spans.push(Span::styled(format!(" {} ", p.title()), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The status bar: a message or the focused pane's keys on the left, network and listen
/// address (or the API attached to) on the right.
fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let right = if area.width < 70 {
        format!(" {} ", app.network)
    } else if let Some(at) = &app.attached {
        let away = if app.unreachable {
            " · NOT ANSWERING"
        } else {
            ""
        };
        format!(" {} · attached to {at}{away} ", app.network)
    } else {
        format!(
            " {} · {} ",
            app.network,
            app.p2p
                .listen
                .map(|a| a.to_string())
                .unwrap_or_else(|| "not listening".into())
        )
    };
    let mut spans: Vec<Span> = Vec::new();
    if let Some(m) = &app.message {
        let style = if m.error { theme::bad() } else { theme::good() };
        spans.push(Span::styled(format!(" {} ", m.text), style));
    }
    let mut actions: Vec<super::action::Action> = app.focus.actions().to_vec();
    for a in [
        super::action::Action::FocusNext,
        super::action::Action::Help,
        super::action::Action::Quit,
    ] {
        if !actions.contains(&a) {
            actions.push(a);
        }
    }
    for a in actions {
        let Some(k) = app.keymap.keys(a).first() else {
            continue;
        };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!("{k}"), theme::key()));
        spans.push(Span::raw(format!(" {}", a.short())));
    }
    let right_w = right.chars().count() as u16;
    let [left, r] = area.layout(&RLayout::horizontal([
        Constraint::Min(1),
        Constraint::Length(right_w.min(area.width / 2)),
    ]));
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme::status_bar()),
        left,
    );
    frame.render_widget(
        Paragraph::new(Line::from(right)).style(if app.unreachable {
            theme::bad()
        } else {
            theme::status_bar()
        }),
        r,
    );
}

/// A pane's border and title.
pub fn pane_block(pane: Pane, focused: bool) -> Block<'static> {
    Block::bordered()
        .border_style(theme::border(focused))
        .title(Span::styled(
            format!(" {} ", pane.title()),
            theme::title(focused),
        ))
}

/// Draw `lines` into `area`, one per row, cut at its width: the cells a
/// `Paragraph::new(lines)` (no wrap, no block, no style, left-aligned) would draw, without its
/// two passes restyling every cell of the area and without collecting each line's graphemes
/// into a vector first. The panes draw a frame's text through this.
pub fn text(frame: &mut Frame, lines: &[Line], area: Rect) {
    render_text(frame.buffer_mut(), lines, area);
}

/// [`text`] on a buffer.
pub fn render_text(buf: &mut Buffer, lines: &[Line], area: Rect) {
    let area = area.intersection(buf.area);
    if area.is_empty() {
        return;
    }
    let width = area.width;
    for (line, y) in lines.iter().zip(area.top()..area.bottom()) {
        let mut x = 0u16;
        for g in line.styled_graphemes(Style::default()) {
            let w = g.symbol.cell_width();
            // As ratatui's LineTruncator: skip what is wider than the area, stop at the edge.
            if w > width {
                continue;
            }
            if x + w > width {
                break;
            }
            if w == 0 {
                continue;
            }
            buf[(area.left() + x, y)]
                .set_symbol(g.symbol)
                .set_style(g.style);
            x += w;
        }
    }
}

/// The first row to show so that `selected` stays visible in `height` rows.
pub fn scroll_start(selected: usize, len: usize, height: usize) -> usize {
    if height == 0 || len <= height {
        return 0;
    }
    selected
        .saturating_sub(height - 1)
        .min(len.saturating_sub(height))
}

/// A label span and a value span.
pub fn kv(label: &str, value: impl Into<String>) -> Vec<Span<'static>> {
    vec![
        Span::styled(format!("{label} "), theme::label()),
        Span::styled(value.into(), theme::value()),
    ]
}

/// Lay out groups of spans ("chips") on as many lines as `width` needs, two spaces apart, so
/// a narrow pane wraps figures instead of cutting a number short.
pub fn flow(chips: Vec<Vec<Span<'static>>>, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for chip in chips {
        let w: usize = chip.iter().map(|s| s.content.chars().count()).sum();
        if used > 0 && used + 2 + w > width {
            lines.push(Line::from(std::mem::take(&mut cur)));
            used = 0;
        }
        if used > 0 {
            cur.push(Span::raw("  "));
            used += 2;
        }
        cur.extend(chip);
        used += w;
    }
    if !cur.is_empty() {
        lines.push(Line::from(cur));
    }
    lines
}

/// `4s`, `3m 12s`, `2h 5m`, `3d 4h`.
pub fn fmt_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// An amount with its unit: `312.5 coins`.
pub fn coins(a: crate::core::amount::Amount) -> String {
    format!("{a} coins")
}

/// `512 B`, `9.1 kB`, `3.2 MB`, `1.5 GB` (decimal units, truncated).
pub fn fmt_bytes(n: u64) -> String {
    match n {
        0..1000 => format!("{n} B"),
        1000..1_000_000 => format!("{}.{} kB", n / 1000, n % 1000 / 100),
        1_000_000..1_000_000_000 => format!("{}.{} MB", n / 1_000_000, n % 1_000_000 / 100_000),
        _ => format!(
            "{}.{} GB",
            n / 1_000_000_000,
            n % 1_000_000_000 / 100_000_000
        ),
    }
}

/// A fee rate in base units per byte: `2`, `2.5`.
pub fn fmt_fee_rate(r: FeeRate) -> String {
    r.per_byte_text()
}

/// Hashes per second with an SI prefix: `11.8M H/s`.
pub fn fmt_hashrate(h: U256) -> String {
    format!("{} H/s", si_text(h))
}

/// Long text cut to `width` characters with an ellipsis.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width <= 1 {
        return "…".chars().take(width).collect();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// How old a timestamp is: `3m 12s`, or `in 10m 0s` for one ahead of the clock (a block
/// stamped in the future says so instead of reading "0s").
pub fn age(now: u64, t: u64) -> String {
    if t > now {
        format!("in {}", fmt_age(t - now))
    } else {
        fmt_age(now - t)
    }
}

/// [`age`] as a phrase: `3m 12s ago`, `in 10m 0s`.
pub fn age_ago(now: u64, t: u64) -> String {
    if t > now {
        age(now, t)
    } else {
        format!("{} ago", age(now, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_drop_whole_columns_least_important_first() {
        let cols = [
            Col::left("id", 0),
            Col::left("addr", 3),
            Col::right("tip", 1),
            Col::right("bytes", 2),
        ];
        let rows = vec![vec![
            "3a3a3a3a".to_string(),
            "127.0.0.1:7421".to_string(),
            "1284".to_string(),
            "1.2 MB".to_string(),
        ]];
        let (h, r) = table(&cols, &rows, 80);
        assert_eq!(h, "id       addr            tip  bytes");
        assert_eq!(r[0], "3a3a3a3a 127.0.0.1:7421 1284 1.2 MB");
        // 20 columns: the address goes, then the bytes; the tip is never cut.
        let (h, r) = table(&cols, &rows, 20);
        assert_eq!(h, "id        tip  bytes");
        assert_eq!(r[0], "3a3a3a3a 1284 1.2 MB");
        let (_, r) = table(&cols, &rows, 14);
        assert_eq!(r[0], "3a3a3a3a 1284");
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_age(4), "4s");
        assert_eq!(fmt_age(192), "3m 12s");
        assert_eq!(fmt_age(7500), "2h 5m");
        assert_eq!(age(1000, 988), "12s");
        assert_eq!(age_ago(1000, 988), "12s ago");
        // A block stamped 627 s ahead of the clock (regtest after fast mining) read "0s ago".
        assert_eq!(age(1000, 1627), "in 10m 27s");
        assert_eq!(age_ago(1000, 1627), "in 10m 27s");
        assert_eq!(fmt_bytes(9_150), "9.1 kB");
        assert_eq!(fmt_bytes(999), "999 B");
        assert_eq!(fmt_fee_rate(FeeRate::per_kb(2_500)), "2.5");
        assert_eq!(fmt_fee_rate(FeeRate::per_kb(40_000)), "40");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(scroll_start(0, 10, 3), 0);
        assert_eq!(scroll_start(5, 10, 3), 3);
        assert_eq!(scroll_start(9, 10, 3), 7);
    }

    #[test]
    fn every_size_gets_a_layout_inside_the_screen() {
        for w in (0..220).step_by(7) {
            for h in (0..70).step_by(3) {
                let area = Rect::new(0, 0, w, h);
                let l = layout(area, Pane::Wallet);
                for (_, r) in &l.panes {
                    assert!(area.contains(r.as_position()) || r.area() == 0);
                    assert!(r.right() <= w && r.bottom() <= h);
                }
                if w >= MIN_WIDTH && h >= MIN_HEIGHT {
                    assert!(l.panes.iter().any(|(p, _)| *p == Pane::Wallet));
                }
            }
        }
    }
}
