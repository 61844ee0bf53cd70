//! Wallet: the receive address, confirmed / unconfirmed / immature balance and the latest
//! transactions with their confirmations.

use super::{Col, fit, flow, kv, pane_block, scroll_start, table};
use crate::core::amount::Amount;
use crate::term::theme;
use crate::tui::app::{App, Pane};
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
    // Too long for the pane: both ends stay, the middle gives way (never a cut-off tail).
    let addr = if addr.chars().count() > w && w >= 9 {
        let keep = (w - 1) / 2;
        let head: String = addr.chars().take(keep).collect();
        let tail: String = addr
            .chars()
            .skip(addr.chars().count() - (w - 1 - keep))
            .collect();
        format!("{head}…{tail}")
    } else {
        addr
    };
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
    // Amount and confirmations come before the txid when the pane is narrow.
    let cols = [
        Col::left("", 0),
        Col::left("txid", 2),
        Col::right("coins", 0),
        Col::right("conf", 1),
    ];
    let shown: Vec<_> = wv
        .history
        .iter()
        .enumerate()
        .skip(start)
        .take(room)
        .collect();
    let cells: Vec<Vec<String>> = shown
        .iter()
        .map(|(_, t)| {
            let net = t.net();
            let amount = Amount::from_units(net.unsigned_abs().min(u128::from(u64::MAX)) as u64);
            let (arrow, sign) = if net < 0 { ("→", "-") } else { ("←", "+") };
            let conf = match t.confirmations {
                0 => "pending".to_string(),
                n => format!("{n} conf"),
            };
            vec![
                arrow.to_string(),
                t.txid.short(),
                format!("{sign}{amount}"),
                conf,
            ]
        })
        .collect();
    let (_, texts) = table(&cols, &cells, w);
    for ((i, t), text) in shown.into_iter().zip(texts) {
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
