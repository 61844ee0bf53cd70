//! Hashrate: the local hashrate with a sparkline of its history, mining threads and kernel, the
//! network hashrate estimated from recent blocks, and the expected time to the next block.

use super::{flow, fmt_age, fmt_hashrate, kv, pane_block};
use crate::core::pow::U256;
use crate::term::theme;
use crate::tui::app::{App, Pane, next_block_secs, next_block_secs_local};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Sparkline;

pub fn render(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let block = pane_block(Pane::Hashrate, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let s = &app.snapshot;
    let mut lines: Vec<Line> = Vec::new();
    let w = inner.width as usize;
    let state = if let Some(pace) = app.pace {
        let every = format!("{:.1} s", pace.as_secs_f64());
        if app.paced_on {
            Span::styled(format!("paced: a block every ~{every}"), theme::good())
        } else {
            Span::styled(
                format!("idle (m: a block every ~{every}, b: one now)"),
                theme::label(),
            )
        }
    } else if app.mining() {
        Span::styled(
            format!("×{} {}", s.mining_threads, s.mining_kernel),
            theme::good(),
        )
    } else {
        let t = app.threads;
        Span::styled(
            format!(
                "idle (m mines on {t} thread{})",
                if t == 1 { "" } else { "s" }
            ),
            theme::label(),
        )
    };
    lines.extend(flow(
        vec![
            kv("local", fmt_hashrate(U256::from(s.hashrate))),
            vec![state],
        ],
        w,
    ));
    // Estimated from recent blocks' work and times; "—" until there are enough of them.
    let net = s
        .rates
        .map(|r| format!("≈ {}", fmt_hashrate(r.hashrate)))
        .unwrap_or_else(|| "—".into());
    lines.push(Line::from(kv("network", net)));
    let next = match (next_block_secs(s), next_block_secs_local(s)) {
        (Some(t), _) => format!("≈ {}", fmt_age(t)),
        (None, Some(t)) if app.mining() => format!("≈ {} at the local rate", fmt_age(t)),
        _ => "—".into(),
    };
    lines.push(Line::from(kv("next block", next)));
    let text_rows = lines.len() as u16;
    let [text, spark, _] = inner.layout(&Layout::vertical([
        Constraint::Length(text_rows.min(inner.height)),
        Constraint::Max(4),
        Constraint::Min(0),
    ]));
    super::text(frame, &lines, text);
    if spark.height > 0 && spark.width > 0 {
        // The newest samples that fit, right-aligned.
        let h = &s.hashrate_history;
        let take = h.len().min(spark.width as usize);
        let data: Vec<u64> = h[h.len() - take..].to_vec();
        frame.render_widget(
            Sparkline::default().data(&data).style(theme::sparkline()),
            spark,
        );
    }
}
