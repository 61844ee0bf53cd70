//! What covers the panes: the help (generated from the key table), the send and add-peer forms,
//! and block and transaction details.

use super::{Col, age_ago, fit, fmt_bytes, kv, scroll_start};
use crate::core::pow::si_text;
use crate::node::Spend;
use crate::term::keymap::Bindable;
use crate::term::popup;
use crate::term::theme;
use crate::tui::app::{
    AddrList, AddressPage, App, BlockDetail, Field, Overlay, Payment, PeerForm, PeerRef, ProofView,
    SendForm, TxDetail,
};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Draw the innermost overlay, if any.
pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(o) = app.overlays.last() else {
        return;
    };
    match o {
        Overlay::Help => help(frame, app, area),
        Overlay::Send(f) => send(frame, app, f, area),
        Overlay::AddPeer(f) => add_peer(frame, f, area),
        Overlay::Search(f) => search(frame, f, area),
        Overlay::Peer(r) => peer(frame, app, r, area),
        Overlay::Block(b, sel) => block(frame, app, b, *sel, area),
        Overlay::Tx(t, sel) => tx(frame, app, t, *sel, area),
        Overlay::Address(p) => address(frame, app, p, area),
    }
}

fn help(frame: &mut Frame, app: &App, area: Rect) {
    let rows = app.keymap.help_rows();
    let key_w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(4)
        .max(9);
    let mut lines: Vec<Line> = rows
        .iter()
        .map(|(k, a)| {
            Line::from(vec![
                Span::styled(format!(" {k:<key_w$} "), theme::value()),
                Span::raw(a.description()),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<key_w$} ", "Ctrl-c"), theme::value()),
        Span::raw("quit, always"),
    ]));
    lines.push(Line::from(vec![
        Span::styled(format!(" {:<key_w$} ", "click"), theme::value()),
        Span::raw("focus a pane"),
    ]));
    lines.push(Line::from(Span::styled(
        " in forms: type; Tab/↑↓ field, Enter submit, Esc cancel",
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        " keys come from assets/keymap.toml, overridable by",
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        " ~/.config/chain-tui/keymap.toml or DATA_DIR/keymap.toml",
        theme::label(),
    )));
    let h = lines.len() as u16 + 2;
    let fits = h <= area.height;
    let title = if fits {
        "Keys"
    } else {
        "Keys (j/k, PgUp/PgDn scroll)"
    };
    let inner = popup(frame, area, (key_w as u16 + 44).max(62), h, title);
    // Scrolled by the user, never past the last line.
    let skip = app
        .help_scroll
        .min(lines.len().saturating_sub(inner.height as usize));
    frame.render_widget(Paragraph::new(lines.split_off(skip)), inner);
}

fn field_lines(
    label: &str,
    field: &Field,
    focused: bool,
    check: Result<(), &str>,
    w: usize,
) -> Vec<Line<'static>> {
    let style = if focused {
        theme::value()
    } else {
        Style::new()
    };
    let marker = if focused { "›" } else { " " };
    let room = w.saturating_sub(22).max(1);
    let value = field.value();
    let mut first = vec![Span::styled(
        format!("{marker} {label:<20}"),
        theme::label(),
    )];
    if focused {
        // Scrolled sideways so that the cursor (a reversed cell) stays in view.
        let scroll = field.input.visual_scroll(room.saturating_sub(1));
        let cursor = field.input.visual_cursor().saturating_sub(scroll);
        let shown: Vec<char> = value.chars().skip(scroll).take(room).collect();
        let before: String = shown.iter().take(cursor).collect();
        let at: String = shown.get(cursor).map_or(" ".into(), |c| c.to_string());
        let after: String = shown.iter().skip(cursor + 1).collect();
        first.push(Span::styled(before, style));
        first.push(Span::styled(at, style.add_modifier(Modifier::REVERSED)));
        first.push(Span::styled(after, style));
    } else {
        first.push(Span::styled(fit(value, room), style));
    }
    let first = Line::from(first);
    let second = match check {
        Ok(()) => Line::from(Span::styled("    ✓", theme::good())),
        Err("required") if value.trim().is_empty() => {
            Line::from(Span::styled("    required", theme::label()))
        }
        Err(e) => Line::from(Span::styled(fit(&format!("    ✗ {e}"), w), theme::bad())),
    };
    vec![first, second]
}

/// The confirmation step: what will be signed, and a warning for an absurd fee.
fn confirm(frame: &mut Frame, app: &App, p: &Payment, area: Rect) {
    let w: usize = 74;
    let mut lines: Vec<Line> = vec![
        Line::from(Span::styled("Sign and send this payment?", theme::value())),
        Line::from(kv(
            "  to     ",
            fit(&p.to.encode(app.network), w.saturating_sub(11)),
        )),
        Line::from(kv("  amount ", super::coins(p.amount))),
        Line::from(kv(
            "  fee    ",
            format!(
                "{} ({} per byte)",
                super::coins(p.fee),
                super::fmt_fee_rate(p.fee_rate)
            ),
        )),
        Line::from(kv(
            "  total  ",
            super::coins(p.amount.checked_add(p.fee).unwrap_or(p.amount)),
        )),
    ];
    match &p.absurd {
        Some(why) => {
            lines.push(Line::from(Span::styled(
                fit(&format!("  ✗ {why}"), w),
                theme::bad(),
            )));
            lines.push(Line::from(Span::styled(
                "  Y (capital) send anyway · any other key edit · Esc cancel",
                theme::warn(),
            )));
        }
        None => lines.push(Line::from(Span::styled(
            "  y or Enter sign and send · any other key edit · Esc cancel",
            theme::label(),
        ))),
    }
    let inner = popup(frame, area, 76, lines.len() as u16 + 2, "Send: confirm");
    super::text(frame, &lines, inner);
}

fn send(frame: &mut Frame, app: &App, f: &SendForm, area: Rect) {
    if let Some(p) = &f.confirm {
        return confirm(frame, app, p, area);
    }
    let inner = popup(frame, area, 76, 13, "Send");
    let w = inner.width as usize;
    let c = f.check(app.network, app.spendable(), &app.wallet.coins);
    let mut lines: Vec<Line> = Vec::new();
    for (i, field) in f.fields.iter().enumerate() {
        lines.extend(field_lines(field.label, field, i == f.focus, c.field(i), w));
    }
    lines.push(Line::from(""));
    let spend = app
        .spendable()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "?".into());
    let mut info = kv("  spendable", spend);
    // What it will cost, as typed.
    if let (Some(fee), Ok(amount)) = (c.fee, &c.amount) {
        info.extend(kv("   fee", fee.to_string()));
        info.extend(kv(
            "   total",
            amount.checked_add(fee).unwrap_or(*amount).to_string(),
        ));
    }
    lines.push(Line::from(info));
    lines.push(Line::from(Span::styled(
        "  Enter check · Tab next field · amount max sends all · Esc cancel",
        theme::label(),
    )));
    if f.pending {
        lines.push(Line::from(Span::styled("  sending…", theme::warn())));
    } else if let Some(e) = &f.error {
        lines.push(Line::from(Span::styled(
            fit(&format!("  ✗ {e}"), w),
            theme::bad(),
        )));
    }
    super::text(frame, &lines, inner);
}

/// A peer's identity, address, direction, version, best block, RTT, traffic and age; for a
/// ban, the reason and when it ends. Drawn from the live view, so it updates while open.
fn peer(frame: &mut Frame, app: &App, r: &PeerRef, area: Rect) {
    let mut lines: Vec<Line> = Vec::new();
    let title;
    match r {
        PeerRef::Connected(id) => {
            title = "Peer";
            match app.p2p.peers.iter().find(|p| p.id == *id) {
                None => lines.push(Line::from(Span::styled("disconnected", theme::bad()))),
                Some(p) => {
                    lines.push(Line::from(kv("id", p.id.to_string())));
                    lines.push(Line::from({
                        let mut s = kv("address", p.addr.to_string());
                        s.extend(kv(
                            "  direction",
                            if p.inbound { "inbound" } else { "outbound" }.to_string(),
                        ));
                        s
                    }));
                    lines.push(Line::from({
                        let mut s = kv("version", p.user_agent.clone());
                        s.extend(kv(
                            "  protocol",
                            match p.protocol {
                                0 => "not reported".to_string(),
                                1 => "1 (full blocks)".to_string(),
                                v => format!("{v} (compact blocks)"),
                            },
                        ));
                        s
                    }));
                    lines.push(Line::from({
                        let mut s = kv("height", p.height.to_string());
                        s.extend(kv("  work", si_text(p.work.0)));
                        s
                    }));
                    lines.push(Line::from(kv("tip", p.tip.to_string())));
                    lines.push(Line::from({
                        let mut s = kv(
                            "rtt",
                            p.rtt
                                .map(|d| format!("{} ms", d.as_millis()))
                                .unwrap_or_else(|| "—".into()),
                        );
                        s.extend(kv("  in", fmt_bytes(p.bytes_in)));
                        s.extend(kv("  out", fmt_bytes(p.bytes_out)));
                        s
                    }));
                    lines.push(Line::from({
                        let mut s = kv("connected", age_ago(app.now, p.connected_since));
                        s.extend(kv(
                            "  last message",
                            if p.last_message == 0 {
                                "—".into()
                            } else {
                                age_ago(app.now, p.last_message)
                            },
                        ));
                        s
                    }));
                }
            }
        }
        PeerRef::Banned(i) => {
            title = "Banned peer";
            match app.p2p.bans.get(*i) {
                None => lines.push(Line::from(Span::styled("no longer banned", theme::label()))),
                Some(b) => {
                    lines.push(Line::from(kv(
                        "id",
                        b.id.map_or("—".into(), |i| i.to_string()),
                    )));
                    lines.push(Line::from(kv(
                        "address",
                        b.addr.map_or("—".into(), |a| a.to_string()),
                    )));
                    lines.push(Line::from(kv("reason", b.reason.clone())));
                    lines.push(Line::from(kv(
                        "ends",
                        if b.until > app.now {
                            format!("in {}", super::fmt_age(b.until - app.now))
                        } else {
                            "now".into()
                        },
                    )));
                }
            }
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("Esc back", theme::label())));
    let inner = popup(frame, area, 86, lines.len() as u16 + 2, title);
    super::text(frame, &lines, inner);
}

fn search(frame: &mut Frame, f: &PeerForm, area: Rect) {
    let inner = popup(frame, area, 76, 8, "Search");
    let w = inner.width as usize;
    let ok: Result<(), &str> = match &f.error {
        Some(e) => Err(e.as_str()),
        None => Ok(()),
    };
    let mut lines = field_lines("find", &f.field, true, ok, w);
    lines.push(Line::from(Span::styled(
        fit(&format!("  {}", f.field.label), w),
        theme::label(),
    )));
    lines.push(Line::from(Span::styled(
        "  Enter open · Esc cancel",
        theme::label(),
    )));
    super::text(frame, &lines, inner);
}

fn add_peer(frame: &mut Frame, f: &PeerForm, area: Rect) {
    let inner = popup(frame, area, 76, 7, "Add peer");
    let w = inner.width as usize;
    let c = f.check();
    let mut lines = field_lines(
        "peer",
        &f.field,
        true,
        c.as_ref().map(|_| ()).map_err(String::as_str),
        w,
    );
    lines.push(Line::from(Span::styled(
        fit(
            &format!("  {} · Enter connect · Esc cancel", f.field.label),
            w,
        ),
        theme::label(),
    )));
    if let Some(e) = &f.error {
        lines.push(Line::from(Span::styled(
            fit(&format!("  ✗ {e}"), w),
            theme::bad(),
        )));
    }
    super::text(frame, &lines, inner);
}

fn big(area: Rect) -> (u16, u16) {
    (
        area.width.saturating_sub(4).min(110),
        area.height.saturating_sub(2),
    )
}

fn block(frame: &mut Frame, app: &App, b: &BlockDetail, sel: usize, area: Rect) {
    let (bw, bh) = big(area);
    let inner = popup(frame, area, bw, bh, &format!("Block {}", b.height));
    let w = inner.width as usize;
    let target = crate::core::pow::CompactTarget(b.bits)
        .to_target()
        .map(|t| format!("{:064x}", t.0))
        .unwrap_or_else(|e| e.to_string());
    let mut lines: Vec<Line> = vec![
        // The hash over the target it had to meet, digit under digit.
        Line::from(vec![
            Span::styled("hash   ", theme::label()),
            Span::styled(fit(&b.hash.to_string(), w.saturating_sub(7)), theme::hash()),
        ]),
        Line::from(vec![
            Span::styled("target ", theme::label()),
            Span::raw(fit(&target, w.saturating_sub(7))),
        ]),
        Line::from({
            let mut s = kv("prev", b.prev.to_string());
            s.push(Span::styled("  ←", theme::label()));
            s
        }),
        Line::from(kv("merkle root", b.merkle_root.to_string())),
        Line::from({
            let mut s = kv("version", b.version.to_string());
            s.extend(kv("  bits", format!("{:#010x}", b.bits)));
            s.extend(kv("  nonce", b.nonce.to_string()));
            s.extend(kv("  work", si_text(b.work)));
            s.extend(kv("  chain work", si_text(b.chainwork)));
            s
        }),
        Line::from({
            let mut s = kv("subsidy", b.subsidy.to_string());
            s.extend(kv("  fees claimed", b.fees.to_string()));
            s.extend(kv(
                "  time",
                format!(
                    "{} UTC ({})",
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(b.time)
                    )
                    .to_string()
                    .trim_end_matches('Z')
                    .replace('T', " "),
                    age_ago(app.now, b.time)
                ),
            ));
            s
        }),
        Line::from({
            let mut s = kv("height", b.height.to_string());
            s.extend(kv("  confirmations", b.confirmations.to_string()));
            s.extend(kv(
                "  seen here",
                b.seen.map_or("—".into(), |t| age_ago(app.now, t)),
            ));
            s.extend(kv("  size", fmt_bytes(b.size as u64)));
            s.extend(kv("  txs", b.txs.len().to_string()));
            s
        }),
        Line::from(Span::styled(
            fit(
                "txid                                                              in  out        amount      size",
                w,
            ),
            theme::label(),
        )),
    ];
    let room = (inner.height as usize).saturating_sub(lines.len() + 1);
    let start = scroll_start(sel, b.txs.len(), room);
    for (i, t) in b.txs.iter().enumerate().skip(start).take(room) {
        let ins = if t.coinbase {
            "cb".to_string()
        } else {
            t.inputs.to_string()
        };
        let text = format!(
            "{} {:>3} {:>4} {:>13} {:>9}",
            t.txid,
            ins,
            t.outputs,
            t.amount.to_string(),
            fmt_bytes(t.size as u64)
        );
        let style = if i == sel {
            theme::selected()
        } else {
            Style::new()
        };
        lines.push(Line::from(Span::styled(fit(&text, w), style)));
    }
    let footer = Rect {
        y: inner.bottom().saturating_sub(1),
        height: 1.min(inner.height),
        ..inner
    };
    super::text(frame, &lines, inner);
    frame.render_widget(
        Paragraph::new(Span::styled(
            "j/k select · Enter transaction · ← previous block · → next · Esc back",
            theme::label(),
        )),
        footer,
    );
}

/// A hash as `0a6060606060…6060`: enough to tell hashes on one screen apart.
fn short_hex(h: &[u8; 32]) -> String {
    let hex = hex::encode(h);
    format!("{}…{}", &hex[..12], &hex[60..])
}

/// What became of an output, in words.
fn spend_text(s: &Spend) -> String {
    match s {
        Spend::Unspent => "unspent".into(),
        Spend::Mempool(t) => format!("spent by {} (mempool)", t.short()),
        Spend::Confirmed(t, h) => format!("spent by {} in block {h}", t.short()),
        Spend::Unknown => "spent (spender not found)".into(),
    }
}

/// The path of a merkle proof, one line per step, ending at the header's root.
fn proof_lines(t: &TxDetail, p: &ProofView, w: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let verdict = if p.valid {
        Span::styled("✓ leads to the block header's merkle root", theme::good())
    } else {
        Span::styled("✗ does NOT lead to the header's merkle root", theme::bad())
    };
    let steps = p.steps.len();
    lines.push(Line::from(vec![
        Span::styled(
            format!(
                "merkle proof (tx {} of {}, {steps} step{}) ",
                p.index + 1,
                p.count,
                if steps == 1 { "" } else { "s" }
            ),
            theme::label(),
        ),
        verdict,
    ]));
    lines.push(Line::from(vec![
        Span::styled("  txid         ", theme::label()),
        Span::styled(short_hex(&t.txid.0), theme::hash()),
    ]));
    for (i, (step, h)) in p.steps.iter().zip(&p.path).enumerate() {
        let side = if step.sibling_on_left {
            "left "
        } else {
            "right"
        };
        let text = format!(
            "  {} {side} {}  → {}",
            if i + 1 == steps { "└" } else { "├" },
            short_hex(&step.sibling),
            short_hex(h)
        );
        lines.push(Line::from(fit(&text, w)));
    }
    lines.push(Line::from(vec![
        Span::styled("  header root  ", theme::label()),
        Span::styled(short_hex(&p.root.0), theme::hash()),
    ]));
    lines
}

fn tx(frame: &mut Frame, app: &App, t: &TxDetail, sel: usize, area: Rect) {
    let (bw, bh) = big(area);
    let inner = popup(frame, area, bw, bh, "Transaction");
    let w = inner.width as usize;
    let net = app.network;
    let mine = &app.wallet.addresses;
    let mut lines: Vec<Line> = vec![Line::from(Span::styled(
        fit(&t.txid.to_string(), w),
        theme::hash(),
    ))];
    let place = match t.block {
        Some((h, height)) => format!("block {height} ({})", h.short()),
        None => "mempool".into(),
    };
    let mut info = kv("in", place);
    info.extend(kv("  confirmations", t.confirmations.to_string()));
    info.extend(kv("  size", fmt_bytes(t.size as u64)));
    let fee = if t.coinbase {
        "none (coinbase)".to_string()
    } else {
        t.fee.map(super::coins).unwrap_or_else(|| "unknown".into())
    };
    info.extend(kv("  fee", fee));
    if let Some(r) = t.fee_rate().filter(|_| !t.coinbase) {
        info.extend(kv("  fee rate", format!("{r} base units/byte")));
    }
    lines.extend(super::flow(vec![info], w));
    lines.push(Line::from(Span::styled(
        format!("inputs ({})", t.inputs.len()),
        theme::label(),
    )));
    if t.coinbase {
        lines.push(Line::from("  coinbase: new coins and fees"));
    }
    // The line of the selected row, to keep it in view.
    let mut sel_line = 0;
    for (n, i) in t.inputs.iter().enumerate() {
        let from = match (i.address, i.amount) {
            (Some(a), Some(v)) => format!("  {}  {}", a.encode(net), super::coins(v)),
            _ => String::new(),
        };
        let text = fit(
            &format!("  {}:{}{from}", i.prevout.txid.short(), i.prevout.vout),
            w,
        );
        lines.push(if n == sel && !t.coinbase {
            sel_line = lines.len();
            Line::from(Span::styled(text, theme::selected()))
        } else {
            Line::from(text)
        });
    }
    lines.push(Line::from(Span::styled(
        format!("outputs ({})", t.outputs.len()),
        theme::label(),
    )));
    for (n, o) in t.outputs.iter().enumerate() {
        let mark = t
            .mark(n, mine)
            .map(|m| format!("  {m}"))
            .unwrap_or_default();
        let text = fit(
            &format!(
                "  {n:>3}  {}  {}{mark}  {}",
                o.address.encode(net),
                super::coins(o.amount),
                spend_text(&o.spend)
            ),
            w,
        );
        lines.push(if n + t.input_rows() == sel {
            sel_line = lines.len();
            Line::from(Span::styled(text, theme::selected()))
        } else {
            Line::from(text)
        });
    }
    match &t.proof {
        Some(p) => lines.extend(proof_lines(t, p, w)),
        None if t.block.is_none() => lines.push(Line::from(Span::styled(
            "merkle proof: none until a block confirms it",
            theme::label(),
        ))),
        None => {}
    }
    let room = (inner.height as usize).saturating_sub(1);
    // Keep the selected row in view; the proof shows once the last output is selected.
    let start = if sel + 1 >= t.rows() {
        lines.len().saturating_sub(room).min(sel_line)
    } else {
        scroll_start(sel_line, lines.len(), room)
    };
    let body: Vec<Line> = lines.into_iter().skip(start).take(room).collect();
    super::text(frame, &body, inner);
    let footer = Rect {
        y: inner.bottom().saturating_sub(1),
        height: 1.min(inner.height),
        ..inner
    };
    frame.render_widget(
        Paragraph::new(Span::styled(
            fit(
                "j/k select · Enter on an input: its source; on an output: its spender · y copy · Esc back",
                w,
            ),
            theme::label(),
        )),
        footer,
    );
}

/// An address: balance, and a page of its unspent coins, confirmed history or pending
/// transactions.
fn address(frame: &mut Frame, app: &App, p: &AddressPage, area: Rect) {
    let (bw, bh) = big(area);
    let inner = popup(frame, area, bw, bh, "Address");
    let w = inner.width as usize;
    let v = &p.view;
    let mut lines: Vec<Line> = vec![Line::from(Span::styled(
        fit(&v.address.encode(app.network), w),
        theme::hash(),
    ))];
    let mine = app.wallet.addresses.contains(&v.address);
    let mut chips = vec![
        kv("confirmed", super::coins(v.confirmed)),
        kv("immature", super::coins(v.immature)),
        kv(
            "pending",
            format!("+{} / −{} coins", v.incoming, v.outgoing),
        ),
    ];
    if let Some(n) = v.next_maturity {
        chips.push(kv(
            "next matures in",
            format!("{n} block{}", if n == 1 { "" } else { "s" }),
        ));
    }
    chips.push(kv("at tip", v.tip.to_string()));
    if mine {
        chips.push(vec![Span::styled("yours", theme::good())]);
    }
    lines.extend(super::flow(chips, w));
    let tab = |name: &str, n: String, on: bool| {
        let text = format!(" {name} ({n}) ");
        if on {
            Span::styled(text, theme::selected())
        } else {
            Span::styled(text, theme::label())
        }
    };
    lines.push(Line::from(vec![
        tab(
            "unspent coins",
            v.coin_count.to_string(),
            p.list == AddrList::Coins,
        ),
        Span::raw(" "),
        tab(
            "history",
            v.history_count.to_string(),
            p.list == AddrList::History,
        ),
        Span::raw(" "),
        tab(
            "pending",
            v.mempool.len().to_string(),
            p.list == AddrList::Pending,
        ),
    ]));
    let skip = p.skip();
    let (cols, rows): (&[Col], Vec<Vec<String>>) = match p.list {
        AddrList::Coins => (
            &[
                Col::right("height", 0),
                Col::left("coin", 0),
                Col::right("coins", 0),
                Col::left("", 1),
            ],
            v.coins
                .iter()
                .map(|c| {
                    let mut note = Vec::new();
                    if c.coinbase {
                        note.push("coinbase".to_string());
                    }
                    if let Some(n) = c.matures_in {
                        note.push(format!(
                            "matures in {n} block{}",
                            if n == 1 { "" } else { "s" }
                        ));
                    }
                    if let Some(t) = c.spent_in_mempool {
                        note.push(format!("spent by {} (mempool)", t.short()));
                    }
                    vec![
                        c.height.to_string(),
                        format!("{}:{}", c.outpoint.txid.short(), c.outpoint.vout),
                        c.amount.to_string(),
                        note.join(", "),
                    ]
                })
                .collect(),
        ),
        AddrList::History => (
            &[
                Col::right("height", 0),
                Col::left("txid", 0),
                Col::right("received (coins)", 0),
                Col::right("sent (coins)", 0),
                Col::right("confirmations", 1),
            ],
            v.history
                .iter()
                .map(|h| {
                    vec![
                        h.height.to_string(),
                        h.txid.short(),
                        h.received.to_string(),
                        h.sent.to_string(),
                        (v.tip + 1).saturating_sub(h.height).to_string(),
                    ]
                })
                .collect(),
        ),
        AddrList::Pending => (
            &[Col::left("txid", 0)],
            v.mempool.iter().map(|t| vec![t.to_string()]).collect(),
        ),
    };
    let (head, body) = super::table(cols, &rows, w);
    lines.push(Line::from(Span::styled(fit(&head, w), theme::label())));
    let room = (inner.height as usize).saturating_sub(lines.len() + 1);
    let sel = p.sel.saturating_sub(skip);
    let start = scroll_start(sel, body.len(), room);
    if body.is_empty() {
        lines.push(Line::from(Span::styled("  none", theme::label())));
    }
    for (i, row) in body.iter().enumerate().skip(start).take(room) {
        let text = fit(row, w);
        lines.push(if i == sel {
            Line::from(Span::styled(text, theme::selected()))
        } else {
            Line::from(text)
        });
    }
    super::text(frame, &lines, inner);
    let footer = Rect {
        y: inner.bottom().saturating_sub(1),
        height: 1.min(inner.height),
        ..inner
    };
    let shown = if p.total() == 0 {
        String::new()
    } else {
        format!("row {} of {} · ", p.sel + 1, p.total())
    };
    frame.render_widget(
        Paragraph::new(Span::styled(
            fit(
                &format!(
                    "{shown}Tab list · j/k PgUp/PgDn select · Enter transaction · y copy address · Esc back"
                ),
                w,
            ),
            theme::label(),
        )),
        footer,
    );
}
