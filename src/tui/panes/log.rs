//! Log: the latest tracing events, newest at the bottom.

use super::{fit, pane_block};
use crate::tui::app::{App, Pane};
use crate::tui::theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

pub fn render(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let block = pane_block(Pane::Log, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let room = inner.height as usize;
    let start = app.logs.len().saturating_sub(room);
    let lines: Vec<Line> = app.logs[start..]
        .iter()
        .map(|l| {
            let style = if l.contains(" ERROR ") {
                theme::bad()
            } else if l.contains(" WARN ") {
                theme::warn()
            } else {
                Style::new()
            };
            Line::from(Span::styled(fit(l, w), style))
        })
        .collect();
    super::text(frame, &lines, inner);
}
