//! Log: the tracing events, newest at the bottom; scrolls back through the lines kept (k/j,
//! PgUp/PgDn, g/G) and shows all levels or only info, warn or errors and up (v).

use super::{fit, pane_block};
use crate::term::theme;
use crate::tui::app::{App, LogLevel, Pane};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

pub fn render(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let block = pane_block(Pane::Log, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let shown = app.log_lines();
    let offset = app.log_offset.min(shown.len());
    // A line saying what is hidden, when something is (a level filter, or newer lines below).
    let note = (offset > 0 || app.log_level != LogLevel::All).then(|| {
        let mut n = format!("showing {}", app.log_level.name());
        if offset > 0 {
            n.push_str(&format!(" · {offset} newer line(s) below (G: follow)"));
        }
        n
    });
    let room = (inner.height as usize).saturating_sub(usize::from(note.is_some()));
    let end = shown.len() - offset;
    let start = end.saturating_sub(room);
    let mut lines: Vec<Line> = Vec::new();
    if let Some(n) = note {
        lines.push(Line::from(Span::styled(fit(&n, w), theme::label())));
    }
    lines.extend(shown[start..end].iter().map(|l| {
        let style = if l.contains(" ERROR ") {
            theme::bad()
        } else if l.contains(" WARN ") {
            theme::warn()
        } else {
            Style::new()
        };
        Line::from(Span::styled(fit(l, w), style))
    }));
    super::text(frame, &lines, inner);
}
