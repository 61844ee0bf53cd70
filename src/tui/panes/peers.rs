//! Peers: node id, address, direction, their tip, round-trip time, bytes in and out; banned
//! peers with their reasons; compact block relay so far.

use super::{Col, fit, fmt_bytes, pane_block, scroll_start, table};
use crate::term::theme;
use crate::tui::app::{App, Pane, short_text};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

pub fn render(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let block = pane_block(Pane::Peers, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let v = &app.p2p;
    let w = inner.width as usize;
    // Columns by content; on a narrow pane bytes, address and direction go before the tip.
    let cols = [
        Col::left("id", 0),
        Col::right("tip", 0),
        Col::right("rtt", 2),
        Col::left("dir", 3),
        Col::left("addr", 4),
        Col::right("in", 5),
        Col::right("out", 5),
    ];
    let cells: Vec<Vec<String>> = v
        .peers
        .iter()
        .map(|p| {
            vec![
                p.id.to_string()[..8].to_string(),
                p.height.to_string(),
                p.rtt
                    .map(|d| format!("{} ms", d.as_millis()))
                    .unwrap_or_else(|| "–".into()),
                if p.inbound { "in" } else { "out" }.to_string(),
                p.addr.to_string(),
                fmt_bytes(p.bytes_in),
                fmt_bytes(p.bytes_out),
            ]
        })
        .collect();
    let (heading, peer_rows) = table(&cols, &cells, w);
    let mut rows: Vec<(String, Style)> = peer_rows.into_iter().map(|r| (r, Style::new())).collect();
    for b in &v.bans {
        let who = match (&b.id, &b.addr) {
            (Some(id), _) => short_text(&id.to_string()),
            (None, Some(a)) => a.to_string(),
            (None, None) => "?".into(),
        };
        let left = if b.until > app.now {
            format!(" ({} left)", super::fmt_age(b.until - app.now))
        } else {
            String::new()
        };
        rows.push((format!("✗ {who}  {}{left}", b.reason), theme::bad()));
    }
    let mut lines: Vec<Line> = Vec::new();
    let mut head = vec![Span::styled(
        format!("{} connected", v.peers.len()),
        theme::value(),
    )];
    if !v.bans.is_empty() {
        head.push(Span::styled(
            format!(" · {} banned", v.bans.len()),
            theme::bad(),
        ));
    }
    if let Some(id) = &v.id {
        head.push(Span::styled(
            format!(" · me {}", &id.to_string()[..8]),
            theme::label(),
        ));
    }
    lines.push(Line::from(head));
    let c = &v.compact;
    if c.sent + c.received > 0 {
        // As many of these as the pane has room for, most telling first.
        let parts = [
            format!("compact blocks {} in", c.received),
            format!("{} from the mempool", c.rebuilt_at_once),
            format!("{} txs asked", c.txs_asked),
            format!("{} fetched whole", c.fetched_whole),
            format!("{} out", c.sent),
        ];
        let mut text = String::new();
        for p in parts {
            let next = if text.is_empty() {
                p
            } else {
                format!("{text} · {p}")
            };
            if next.chars().count() > w && !text.is_empty() {
                break;
            }
            text = next;
        }
        lines.push(Line::from(Span::styled(fit(&text, w), theme::label())));
    }
    if rows.is_empty() {
        lines.push(Line::from(Span::styled(
            fit("no peers yet: a adds one", w),
            theme::label(),
        )));
        super::text(frame, &lines, inner);
        return;
    }
    lines.push(Line::from(Span::styled(fit(&heading, w), theme::label())));
    let room = (inner.height as usize).saturating_sub(lines.len());
    let sel = app.selected(Pane::Peers);
    let start = scroll_start(sel, rows.len(), room);
    for (i, (text, style)) in rows.iter().enumerate().skip(start).take(room) {
        let style = if focused && i == sel {
            theme::selected()
        } else {
            *style
        };
        lines.push(Line::from(Span::styled(fit(text, w), style)));
    }
    super::text(frame, &lines, inner);
}
