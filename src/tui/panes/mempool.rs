//! Mempool: transaction count, size, fee-rate range and the top transactions by fee rate.

use super::{fit, flow, fmt_bytes, fmt_fee_rate, kv, pane_block, scroll_start};
use crate::term::theme;
use crate::tui::app::{App, Pane};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

pub fn render(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let block = pane_block(Pane::Mempool, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let s = &app.snapshot;
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    lines.extend(flow(
        vec![
            vec![Span::styled(
                format!("{} tx", s.mempool_count),
                theme::value(),
            )],
            vec![Span::styled(
                fmt_bytes(s.mempool_bytes as u64),
                theme::value(),
            )],
        ],
        w,
    ));
    let fee = match s.mempool_fee_range {
        Some((lo, hi)) if lo == hi => format!("{} /B", fmt_fee_rate(lo)),
        Some((lo, hi)) => format!("{}–{} /B", fmt_fee_rate(lo), fmt_fee_rate(hi)),
        None => "–".into(),
    };
    lines.push(Line::from(kv("fee rate", fee)));
    if s.mempool_top.is_empty() {
        lines.push(Line::from(Span::styled("empty", theme::label())));
        super::text(frame, &lines, inner);
        return;
    }
    lines.push(Line::from(Span::styled(
        fit("txid               /B    size", w),
        theme::label(),
    )));
    let room = (inner.height as usize).saturating_sub(lines.len());
    let sel = app.selected(Pane::Mempool);
    let start = scroll_start(sel, s.mempool_top.len(), room);
    for (i, t) in s.mempool_top.iter().enumerate().skip(start).take(room) {
        let text = format!(
            "{:<17} {:>5} {:>7}",
            t.txid.short(),
            fmt_fee_rate(t.fee_rate),
            fmt_bytes(t.size as u64)
        );
        let style = if focused && i == sel {
            theme::selected()
        } else {
            Style::new()
        };
        lines.push(Line::from(Span::styled(fit(&text, w), style)));
    }
    super::text(frame, &lines, inner);
}
