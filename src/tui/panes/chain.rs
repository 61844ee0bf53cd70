//! Chain tip: height, tip hash and age, difficulty, cumulative work, average block time against
//! the target, and the last blocks.

use super::{age, fit, flow, fmt_bytes, kv, pane_block, scroll_start};
use crate::core::pow::si_text;
use crate::tui::app::{App, Pane, avg_block_time_tenths};
use crate::tui::theme;
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
        format!("{} ago", age(app.now, s.tip_time))
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
            kv("difficulty", si_text(s.difficulty)),
            kv("work", si_text(s.chainwork.0)),
        ],
        w,
    ));
    let target = s.network.params().block_spacing;
    let avg = match avg_block_time_tenths(s) {
        Some(t) => format!("{}.{} s", t / 10, t % 10),
        None => "–".into(),
    };
    lines.extend(flow(
        vec![
            kv("avg block", avg),
            vec![Span::styled(format!("(target {target} s)"), theme::label())],
        ],
        w,
    ));
    let header_rows = lines.len();
    lines.push(Line::from(Span::styled(
        fit("height  hash              age     txs  size", w),
        theme::label(),
    )));
    let room = (inner.height as usize).saturating_sub(header_rows + 1);
    let sel = app.selected(Pane::Chain);
    let start = scroll_start(sel, s.recent.len(), room);
    for (i, b) in s.recent.iter().enumerate().skip(start).take(room) {
        let text = format!(
            "{:<7} {:<17} {:>6} {:>4}  {}",
            b.height,
            b.hash.short(),
            age(app.now, b.time),
            b.tx_count,
            fmt_bytes(u64::from(b.size))
        );
        let style = if focused && i == sel {
            theme::selected()
        } else {
            ratatui::style::Style::new()
        };
        lines.push(Line::from(Span::styled(fit(&text, w), style)));
    }
    super::text(frame, &lines, inner);
}
