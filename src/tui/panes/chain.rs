//! Chain tip: height, tip hash and age, difficulty, cumulative work, average block time against
//! the target, and the last blocks.

use super::{age, age_ago, fit, flow, fmt_bytes, kv, pane_block};
use crate::core::estimate::SpanSource;
use crate::core::pow::si_text;
use crate::term::theme;
use crate::tui::app::{App, Pane};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

pub fn render(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let block = pane_block(Pane::Chain, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let s = &app.snapshot;
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let tip_age = if s.tip_time == 0 {
        "–".to_string()
    } else {
        age_ago(app.now, s.tip_time)
    };
    lines.extend(flow(
        vec![
            kv("height", s.height.to_string()),
            vec![Span::styled(tip_age, theme::label())],
        ],
        w,
    ));
    let tip = s.tip.to_string();
    let tip = if w >= tip.len() { tip } else { s.tip.short() };
    lines.push(Line::from(Span::styled(fit(&tip, w), theme::hash())));
    lines.extend(flow(
        vec![
            kv("difficulty (tip)", si_text(s.difficulty)),
            kv("work", si_text(s.chainwork.0)),
        ],
        w,
    ));
    let target = s.network.params().block_spacing;
    // Over the recent blocks (genesis never counted); "—" until there are enough of them.
    let (avg, over) = match s.rates {
        Some(r) => (
            format!(
                "{}.{} s",
                r.avg_block_ms / 1000,
                r.avg_block_ms % 1000 / 100
            ),
            // Timed by arrival where the stamps run ahead of the clock (fast regtest mining).
            if r.source == SpanSource::SeenTimes {
                format!("(as seen; target {target} s)")
            } else {
                format!("(target {target} s)")
            },
        ),
        None => ("—".into(), format!("(target {target} s)")),
    };
    lines.extend(flow(
        vec![
            kv("avg block", avg),
            vec![Span::styled(over, theme::label())],
        ],
        w,
    ));
    let header_rows = lines.len();
    let room = (inner.height as usize).saturating_sub(header_rows + 1);
    app.chain_room.set(room.max(1));
    // Rows by height from the top row down (the tip unless scrolled away); blocks the pane
    // does not hold yet (being read from the store) show as dots.
    let sel = app.chain_selected();
    let top = app.chain_top_row();
    let rows: Vec<(u64, [String; 5])> = (0..room as u64)
        .map_while(|i| top.checked_sub(i))
        .map(|h| {
            let cells = match app.chain_row(h) {
                Some(b) => [
                    b.height.to_string(),
                    b.hash.short(),
                    age(app.now, b.time),
                    b.tx_count.to_string(),
                    fmt_bytes(u64::from(b.size)),
                ],
                None => [
                    h.to_string(),
                    "…".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
            };
            (h, cells)
        })
        .collect();
    // Columns as wide as their widest cell (or heading), so nothing is cut that fits.
    let heads = ["height", "hash", "age", "txs", "size"];
    let mut widths = heads.map(str::len);
    for (_, r) in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let row = |cells: [&str; 5]| {
        format!(
            "{:<w0$} {:<w1$} {:>w2$} {:>w3$} {:>w4$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4]
        )
    };
    let mut head = row(heads);
    if app.chain_sel.is_some() {
        head.push_str("  (g: back to the tip)");
    }
    lines.push(Line::from(Span::styled(fit(&head, w), theme::label())));
    for (h, r) in &rows {
        let text = row([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        let style = if focused && *h == sel {
            theme::selected()
        } else {
            ratatui::style::Style::new()
        };
        lines.push(Line::from(Span::styled(fit(&text, w), style)));
    }
    super::text(frame, &lines, inner);
}
