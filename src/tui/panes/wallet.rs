//! Wallet: the receive address, confirmed / unconfirmed / immature balance and the latest
//! transactions with their confirmations.

use super::{fit, flow, kv, pane_block, scroll_start};
use crate::core::amount::Amount;
use crate::tui::app::{App, Pane};
use crate::tui::theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

pub fn render(frame: &mut Frame, app: &App, area: Rect, focused: bool) {
    let block = pane_block(Pane::Wallet, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let wv = &app.wallet;
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let addr = wv
        .address
        .map(|a| a.encode(app.network))
        .unwrap_or_else(|| "no wallet yet".into());
    lines.push(Line::from(Span::styled(fit(&addr, w), theme::hash())));
    match &wv.balance {
        Some(b) => {
            lines.extend(flow(
                vec![
                    kv("confirmed", b.confirmed.to_string()),
                    kv("pending", b.unconfirmed.to_string()),
                    kv("immature", b.immature.to_string()),
                ],
                w,
            ));
        }
        None => lines.push(Line::from(Span::styled("loading balance…", theme::label()))),
    }
    if let Some(e) = &wv.error {
        lines.push(Line::from(Span::styled(fit(e, w), theme::bad())));
    }
    if wv.history.is_empty() {
        lines.push(Line::from(Span::styled(
            "no transactions yet",
            theme::label(),
        )));
        super::text(frame, &lines, inner);
        return;
    }
    let room = (inner.height as usize).saturating_sub(lines.len());
    let sel = app.selected(Pane::Wallet);
    let start = scroll_start(sel, wv.history.len(), room);
    for (i, t) in wv.history.iter().enumerate().skip(start).take(room) {
        let net = t.net();
        let amount = Amount(net.unsigned_abs().min(u128::from(u64::MAX)) as u64);
        let (arrow, sign) = if net < 0 { ("→", "-") } else { ("←", "+") };
        let conf = match t.confirmations {
            0 => "pending".to_string(),
            1 => "1 conf".to_string(),
            n => format!("{n} conf"),
        };
        let text = format!(
            "{arrow} {:<17} {:>16}  {conf}",
            t.txid.short(),
            format!("{sign}{amount}")
        );
        let style = if focused && i == sel {
            theme::selected()
        } else if t.confirmations == 0 {
            theme::warn()
        } else {
            Style::new()
        };
        lines.push(Line::from(Span::styled(fit(&text, w), style)));
    }
    super::text(frame, &lines, inner);
}
