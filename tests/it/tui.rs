//! The dashboard: snapshot tests of every pane and overlay on ratatui's `TestBackend` from a
//! fixed state, key handling driven through the app, and an end-to-end run of the real binary
//! in a pseudo-terminal (portable-pty, screen parsed by vt100) on regtest.

use chain_tui::core::address::Address;
use chain_tui::core::amount::Amount;
use chain_tui::core::hash::{BlockHash, Txid};
use chain_tui::core::params::Network;
use chain_tui::core::pow::U256;
use chain_tui::core::tx::OutPoint;
use chain_tui::net::identity::NodeId;
use chain_tui::node::explore::{AddressCoin, AddressView, Spend};
use chain_tui::node::mempool::FeeRate;
use chain_tui::storage::HistoryEntry;
use chain_tui::tui::action::Action;
use chain_tui::tui::app::{
    ADDRESS_PAGE, App, BlockDetail, Command, InputRow, OutputRow, Overlay, Pane, ProofView,
    TxDetail, TxRow,
};
use chain_tui::tui::keymap::Keymap;
use chain_tui::tui::{draw, fixture, layout, panes};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

const NOW: u64 = fixture::NOW;

fn hash(b: u8) -> [u8; 32] {
    fixture::hash(b)
}

/// A busy devnet node: 12 recent blocks 10 s apart, a mempool, two peers and a ban, a wallet.
fn fixture() -> App {
    fixture::demo_app()
}

fn screen(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    t
}

/// One pane alone in a `w`×`h` buffer.
fn pane(app: &App, p: Pane, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| {
        let area = Rect::new(0, 0, w, h);
        match p {
            Pane::Chain => panes::chain::render(f, app, area, true),
            Pane::Mempool => panes::mempool::render(f, app, area, true),
            Pane::Peers => panes::peers::render(f, app, area, true),
            Pane::Hashrate => panes::hashrate::render(f, app, area, true),
            Pane::Wallet => panes::wallet::render(f, app, area, true),
            Pane::Log => panes::log::render(f, app, area, true),
        }
    })
    .unwrap();
    t
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn type_text(app: &mut App, s: &str) {
    for c in s.chars() {
        assert_eq!(app.on_key(key(c)), None);
    }
}

fn text_of(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

// ---- snapshots ----

#[test]
fn snapshot_full_dashboard() {
    insta::assert_snapshot!(screen(&fixture(), 160, 45).backend());
}

#[test]
fn snapshot_chain_pane() {
    insta::assert_snapshot!(pane(&fixture(), Pane::Chain, 56, 16).backend());
}

#[test]
fn snapshot_mempool_pane() {
    insta::assert_snapshot!(pane(&fixture(), Pane::Mempool, 40, 10).backend());
}

#[test]
fn snapshot_peers_pane() {
    insta::assert_snapshot!(pane(&fixture(), Pane::Peers, 80, 8).backend());
}

#[test]
fn snapshot_hashrate_pane() {
    insta::assert_snapshot!(pane(&fixture(), Pane::Hashrate, 50, 8).backend());
}

#[test]
fn snapshot_wallet_pane() {
    insta::assert_snapshot!(pane(&fixture(), Pane::Wallet, 70, 8).backend());
}

#[test]
fn snapshot_log_pane() {
    insta::assert_snapshot!(pane(&fixture(), Pane::Log, 70, 5).backend());
}

#[test]
fn snapshot_empty_node() {
    // A fresh node: nothing mined, no peers, balance not loaded yet.
    let mut app = App::new(Network::Regtest, Keymap::default(), 1, 2);
    app.now = NOW;
    app.p2p.listen = Some("127.0.0.1:18444".parse().unwrap());
    insta::assert_snapshot!(screen(&app, 120, 32).backend());
}

#[test]
fn snapshot_help_overlay() {
    let mut app = fixture();
    app.on_action(Action::Help);
    insta::assert_snapshot!(screen(&app, 100, 32).backend());
}

#[test]
fn snapshot_send_form_with_errors() {
    let mut app = fixture();
    app.on_action(Action::Send);
    type_text(&mut app, "ct1qnotanaddress");
    app.on_key(code(KeyCode::Tab));
    type_text(&mut app, "1000");
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    let t = screen(&app, 100, 30);
    let s = text_of(&t);
    assert!(s.contains("above the spendable balance of 312.5"), "{s}");
    assert!(s.contains("nothing was sent"), "{s}");
    insta::assert_snapshot!(t.backend());
}

#[test]
fn snapshot_add_peer_form_with_error() {
    let mut app = fixture();
    app.on_action(Action::AddPeer);
    type_text(&mut app, "127.0.0.1");
    app.on_key(code(KeyCode::Enter));
    insta::assert_snapshot!(screen(&app, 100, 24).backend());
}

#[test]
fn snapshot_block_details() {
    let mut app = fixture();
    // The fixture's block, cut to its coinbase and one payment.
    let mut block = chain_tui::tui::fixture::block_detail();
    block.size = 1_200;
    block.fees = Amount::from_units(4_000);
    block.txs.truncate(2);
    block.txs[0].outputs = 1;
    block.txs[0].amount = Amount::from_units(5_000_004_000);
    block.txs[0].size = 80;
    block.txs[1].amount = Amount::from_units(4_999_996_000);
    app.on_block(Ok(block));
    app.on_action(Action::Down);
    insta::assert_snapshot!(screen(&app, 130, 20).backend());
}

/// A confirmed payment from the wallet's address [3; 20]: output 0 pays [9; 20] and was spent
/// in block 1290, output 1 comes back as change and is unspent; second of three in its block.
fn payment_detail() -> TxDetail {
    use chain_tui::core::merkle::{merkle_proof, merkle_root, proof_path, verify_proof};
    let ids = [Txid(hash(0x60)), Txid(hash(0x61)), Txid(hash(0x62))];
    let steps = merkle_proof(&ids, 1).unwrap();
    let root = merkle_root(&ids);
    TxDetail {
        txid: ids[1],
        block: Some((BlockHash(hash(0x30)), 1284)),
        confirmations: 7,
        coinbase: false,
        size: 250,
        inputs: vec![InputRow {
            prevout: OutPoint {
                txid: Txid(hash(0x51)),
                vout: 0,
            },
            address: Some(Address::from_hash([3; 20])),
            amount: Some(Amount::from_units(5_000_000_000)),
        }],
        outputs: vec![
            OutputRow {
                address: Address::from_hash([9; 20]),
                amount: Amount::from_units(500_000_000),
                spend: Spend::Confirmed(Txid(hash(0x70)), 1290),
            },
            OutputRow {
                address: Address::from_hash([3; 20]),
                amount: Amount::from_units(4_499_996_000),
                spend: Spend::Unspent,
            },
        ],
        fee: Some(Amount::from_units(4_000)),
        proof: Some(ProofView {
            index: 1,
            count: 3,
            path: proof_path(&ids[1], &steps),
            valid: verify_proof(&ids[1], &steps, &root),
            steps,
            root,
        }),
    }
}

#[test]
fn snapshot_tx_details() {
    let mut app = fixture();
    app.on_tx(Ok(payment_detail()));
    insta::assert_snapshot!(screen(&app, 130, 24).backend());
    // Enter on an input opens the transaction whose output it spends.
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadTx(Txid(hash(0x51))))
    );
    // Enter on a spent output opens the transaction that spent it.
    app.on_key(key('j'));
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadTx(Txid(hash(0x70))))
    );
    // An unspent output has no spender: a message, nothing opened.
    app.on_key(key('j'));
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    assert_eq!(
        app.message.as_ref().map(|m| m.text.as_str()),
        Some("output 1 is unspent")
    );
    // y copies the selected output's address.
    assert_eq!(
        app.on_key(key('y')),
        Some(Command::Copy(
            Address::from_hash([3; 20]).encode(Network::Devnet)
        ))
    );
}

/// An open view follows new blocks: the event loop reads it again with the wallet and the
/// answer replaces it in place, selection kept (it used to show the confirmations it was opened
/// with); an answer for a view the user has left is dropped, not stacked.
#[test]
fn open_views_are_read_again_in_place() {
    use chain_tui::tui::app::Reloaded;
    let mut app = fixture();
    assert_eq!(app.refresh_command(), None);
    app.on_tx(Ok(payment_detail()));
    app.on_key(key('j'));
    assert_eq!(
        app.refresh_command(),
        Some(Command::LoadTx(Txid(hash(0x61))))
    );
    let mut later = payment_detail();
    later.confirmations = 8;
    app.on_reloaded(Reloaded::Tx(later.clone()));
    assert_eq!(app.overlays.len(), 1);
    let Some(Overlay::Tx(t, sel)) = app.overlays.last() else {
        panic!("no tx view")
    };
    assert_eq!((t.confirmations, *sel), (8, 1));
    app.on_address(Ok(address_view()), 0, 0);
    assert_eq!(
        app.refresh_command(),
        Some(Command::LoadAddress {
            address: Address::from_hash([3; 20]),
            coins_skip: 0,
            history_skip: 0
        })
    );
    let mut v = address_view();
    v.tip = 1290;
    app.on_reloaded(Reloaded::Address(v.clone(), 0, 0));
    assert_eq!(app.overlays.len(), 2, "replaced, not stacked");
    let Some(Overlay::Address(p)) = app.overlays.last() else {
        panic!("no address view")
    };
    assert_eq!(p.view.tip, 1290);
    // Answers for what is no longer on top change nothing.
    let before = app.overlays.clone();
    app.on_reloaded(Reloaded::Tx(later));
    app.on_reloaded(Reloaded::Address(v, 100, 0));
    assert_eq!(app.overlays, before);
}

#[test]
fn the_tx_view_marks_change_and_a_proof_that_fails() {
    let mut app = fixture();
    let mut t = payment_detail();
    // The same proof against another root: drawn, and said not to lead there.
    if let Some(p) = &mut t.proof {
        p.root = chain_tui::core::hash::MerkleRoot(hash(0x41));
        p.valid = chain_tui::core::merkle::verify_proof(&t.txid, &p.steps, &p.root);
    }
    assert_eq!(t.mark(0, &app.wallet.addresses), None);
    assert_eq!(t.mark(1, &app.wallet.addresses), Some("change"));
    app.on_tx(Ok(t));
    // The proof shows once the selection reaches the last output.
    app.on_key(key('G'));
    let text = text_of(&screen(&app, 130, 24));
    assert!(text.contains("does NOT lead"), "{text}");
    assert!(!text.contains("✓ leads"), "{text}");
    // A payment received from someone else is "yours", not change.
    let mut r = payment_detail();
    r.inputs[0].address = Some(Address::from_hash([8; 20]));
    assert_eq!(r.mark(1, &app.wallet.addresses), Some("yours"));
}

/// The wallet's address with 250 unspent coins (the newest a coinbase 3 blocks from maturity),
/// 2 history entries and one pending payment.
fn address_view() -> AddressView {
    let coins = (0..ADDRESS_PAGE as u64)
        .map(|i| AddressCoin {
            outpoint: OutPoint {
                txid: Txid(hash(0x80 + (i % 16) as u8)),
                vout: i as u32,
            },
            amount: Amount::from_units(5_000_000_000),
            height: 1284 - i,
            coinbase: true,
            matures_in: (i == 0).then_some(3),
            spent_in_mempool: (i == 1).then_some(Txid(hash(0x90))),
        })
        .collect();
    AddressView {
        address: Address::from_hash([3; 20]),
        tip: 1284,
        confirmed: Amount::from_units(1_245_000_000_000),
        immature: Amount::from_units(5_000_000_000),
        incoming: Amount::from_units(4_499_996_000),
        outgoing: Amount::from_units(5_000_000_000),
        next_maturity: Some(3),
        coin_count: 250,
        coins,
        history_count: 2,
        history: vec![
            HistoryEntry {
                height: 1284,
                txid: Txid(hash(0x61)),
                received: Amount::from_units(4_499_996_000),
                sent: Amount::from_units(5_000_000_000),
            },
            HistoryEntry {
                height: 1184,
                txid: Txid(hash(0x51)),
                received: Amount::from_units(5_000_000_000),
                sent: Amount::ZERO,
            },
        ],
        mempool: vec![Txid(hash(0x90))],
    }
}

#[test]
fn snapshot_address_view_and_its_pages() {
    let mut app = fixture();
    app.on_address(Ok(address_view()), 0, 0);
    insta::assert_snapshot!(screen(&app, 130, 24).backend());
    // Enter opens the coin's transaction.
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadTx(Txid(hash(0x80))))
    );
    // End goes to the last coin, which is on the third page: that page is read.
    assert_eq!(
        app.on_key(key('G')),
        Some(Command::LoadAddress {
            address: Address::from_hash([3; 20]),
            coins_skip: 200,
            history_skip: 0,
        })
    );
    // Its answer replaces the view on top and keeps the selection.
    let mut v = address_view();
    v.coins.truncate(50);
    app.on_address(Ok(v), 200, 0);
    let Some(Overlay::Address(p)) = app.overlays.last() else {
        panic!("no address view");
    };
    assert_eq!((p.sel, p.coins_skip, app.overlays.len()), (249, 200, 1));
    assert_eq!(p.selected_txid(), Some(Txid(hash(0x80 + (49 % 16)))));
    assert!(text_of(&screen(&app, 130, 24)).contains("row 250 of 250"));
    // Home goes back to the first page.
    assert_eq!(
        app.on_key(key('g')),
        Some(Command::LoadAddress {
            address: Address::from_hash([3; 20]),
            coins_skip: 0,
            history_skip: 0,
        })
    );
    // Tab shows the history; Enter opens its newest transaction.
    app.on_address(Ok(address_view()), 0, 0);
    app.on_key(code(KeyCode::Tab));
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadTx(Txid(hash(0x61))))
    );
    insta::assert_snapshot!("address_history", screen(&app, 130, 16).backend());
    // y copies the address.
    assert_eq!(
        app.on_key(key('y')),
        Some(Command::Copy(
            Address::from_hash([3; 20]).encode(Network::Devnet)
        ))
    );
}

/// The node publishes a snapshot every second; re-reading a 4,000-entry wallet each time kept
/// an idle dashboard at 1% of a core. Only a new tip or a mempool change makes it stale.
#[test]
fn the_wallet_is_read_again_only_when_the_chain_or_mempool_moves() {
    use chain_tui::tui::app::wallet_stale;
    let old = fixture().snapshot;
    let mut s = old.clone();
    s.hashrate_history.push(0);
    s.hashrate = 5;
    assert!(!wallet_stale(&old, &s), "a meter tick");
    let mut s = old.clone();
    s.tip = BlockHash(hash(0x77));
    assert!(wallet_stale(&old, &s), "a new tip");
    let mut s = old.clone();
    s.mempool_count += 1;
    assert!(wallet_stale(&old, &s), "a mempool change");
}

#[test]
fn osc52_puts_base64_text_on_the_clipboard() {
    assert_eq!(chain_tui::tui::osc52("hello"), "\x1b]52;c;aGVsbG8=\x07");
    let mut app = fixture();
    // The Chain pane's selected block.
    assert_eq!(
        app.on_key(key('y')),
        Some(Command::Copy(BlockHash(hash(0x30)).to_string()))
    );
}

#[test]
fn snapshot_medium_terminal() {
    insta::assert_snapshot!(screen(&fixture(), 80, 24).backend());
}

#[test]
fn snapshot_small_terminal() {
    let mut app = fixture();
    app.on_action(Action::FocusNext);
    insta::assert_snapshot!(screen(&app, 50, 14).backend());
}

#[test]
fn snapshot_tiny_terminal() {
    insta::assert_snapshot!(screen(&fixture(), 20, 5).backend());
}

#[test]
fn any_size_renders_without_panicking() {
    let mut app = fixture();
    for w in [0u16, 1, 5, 23, 24, 40, 63, 64, 99, 100, 140, 250] {
        for h in [0u16, 1, 3, 6, 10, 20, 21, 27, 28, 60] {
            screen(&app, w, h);
            app.on_action(Action::Help);
            screen(&app, w, h);
            app.on_action(Action::Help);
        }
    }
}

#[test]
fn text_draws_the_cells_a_paragraph_draws() {
    // The panes draw their text with `panes::render_text` instead of a `Paragraph`; every cell
    // (symbol and style) must be the one the paragraph gave, including cut lines, wide and
    // zero-width characters, control characters and more lines than rows.
    use ratatui::buffer::Buffer;
    use ratatui::style::{Color, Modifier, Style};
    use ratatui::text::{Line, Span};
    use ratatui::widgets::{Paragraph, Widget};
    let red = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
    let lines = vec![
        Line::from(vec![
            Span::styled("height ", red),
            Span::raw("1284  4s ago"),
        ]),
        Line::from("a line far longer than the area is wide, so it is cut at the edge"),
        Line::from(vec![Span::raw(
            "wide 漢字 at the edge: 漢字漢字漢字漢字漢字",
        )]),
        Line::from("zero\u{200b}width e\u{301} and a tab\there"),
        Line::from(Span::styled(
            "← 0a3030…3030  +0.5  1 conf",
            Style::new().bg(Color::Blue),
        )),
        Line::styled("styled line", red).patch_style(Style::new().fg(Color::Green)),
        Line::from(""),
        Line::from("one more line than there are rows"),
    ];
    for (w, h) in [(30u16, 7u16), (31, 8), (1, 3), (2, 9), (0, 4), (40, 0)] {
        let area = Rect::new(3, 1, w, h);
        let mut want = Buffer::empty(Rect::new(0, 0, 50, 10));
        let mut got = want.clone();
        Paragraph::new(lines.clone()).render(area, &mut want);
        panes::render_text(&mut got, &lines, area);
        assert_eq!(got, want, "{w}x{h}");
    }
}

// ---- keys through actions ----

#[test]
fn tab_and_vim_keys_move_focus_and_selection() {
    let mut app = fixture();
    assert_eq!(app.focus, Pane::Chain);
    app.on_key(code(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Mempool);
    app.on_key(key('l'));
    assert_eq!(app.focus, Pane::Peers);
    app.on_key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.focus, Pane::Mempool);
    app.on_key(code(KeyCode::Left));
    app.on_key(key('h'));
    assert_eq!(app.focus, Pane::Log, "focus wraps around");
    app.on_key(code(KeyCode::Right));
    assert_eq!(app.focus, Pane::Chain);
    // The Chain pane's selection is a height: j goes down the chain past the recent blocks.
    for _ in 0..20 {
        app.on_key(key('j'));
    }
    assert_eq!(
        app.chain_selected(),
        1264,
        "j goes on past the recent blocks"
    );
    app.on_key(key('k'));
    app.on_key(code(KeyCode::Up));
    assert_eq!(app.chain_selected(), 1266);
    // A shorter chain later (a reorganisation): the selection stays inside it.
    let mut s = app.snapshot.clone();
    s.height = 1200;
    app.set_snapshot(s);
    assert_eq!(app.chain_selected(), 1200);
    // Other panes keep row selections that stop at their last row.
    app.focus = Pane::Mempool;
    for _ in 0..20 {
        app.on_key(key('j'));
    }
    assert_eq!(
        app.selected(Pane::Mempool),
        4,
        "selection stops at the last row"
    );
}

#[test]
fn enter_opens_block_then_transaction_and_esc_goes_back() {
    let mut app = fixture();
    app.on_key(key('j'));
    let want = app.snapshot.recent[1].hash;
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadBlock(want))
    );
    app.on_block(Ok(BlockDetail {
        hash: want,
        height: 1283,
        time: NOW,
        seen: None,
        version: 1,
        prev: BlockHash(hash(0x32)),
        merkle_root: chain_tui::core::hash::MerkleRoot(hash(0x41)),
        bits: 0x1e01_0000,
        nonce: 7,
        work: U256::from(65_537u64),
        chainwork: U256::from(21_474_836_414_463u64),
        subsidy: Amount::from_units(5_000_000_000),
        fees: Amount::from_units(0),
        next: Some(BlockHash(hash(0x30))),
        confirmations: 2,
        size: 300,
        txs: vec![
            TxRow {
                txid: Txid(hash(1)),
                coinbase: true,
                inputs: 0,
                outputs: 1,
                amount: Amount::from_units(1),
                size: 80,
            },
            TxRow {
                txid: Txid(hash(2)),
                coinbase: false,
                inputs: 1,
                outputs: 1,
                amount: Amount::from_units(1),
                size: 200,
            },
        ],
    }));
    // ← and → walk the chain from a block's view: its parent, its child.
    let mut walk = app.clone();
    assert_eq!(
        walk.on_key(code(KeyCode::Left)),
        Some(Command::LoadBlock(BlockHash(hash(0x32))))
    );
    let mut walk = app.clone();
    assert_eq!(
        walk.on_key(code(KeyCode::Right)),
        Some(Command::LoadBlock(BlockHash(hash(0x30))))
    );
    // j moves inside the block, not the pane behind it.
    app.on_key(key('j'));
    assert_eq!(app.chain_selected(), 1283);
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadTx(Txid(hash(2))))
    );
    app.on_tx(Err("unknown transaction".into()));
    assert!(app.message.as_ref().unwrap().error);
    assert!(matches!(app.overlays.last(), Some(Overlay::Block(_, 1))));
    // Tab does not move focus under a details overlay.
    app.on_key(code(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Chain);
    app.on_key(code(KeyCode::Esc));
    assert!(app.overlays.is_empty());
    // Mempool and wallet rows open transactions.
    app.focus = Pane::Mempool;
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadTx(Txid(hash(0x90))))
    );
    app.focus = Pane::Wallet;
    app.on_key(key('j'));
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadTx(Txid(hash(0x51))))
    );
    app.focus = Pane::Log;
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
}

#[test]
fn m_toggles_mining_and_plus_minus_change_threads() {
    let mut app = fixture();
    // Mining (2 threads): + raises to 3 and tells the node.
    assert_eq!(
        app.on_key(key('+')),
        Some(Command::SetMining {
            threads: 3,
            address: Some(Address::from_hash([3; 20]))
        })
    );
    app.on_key(key('+'));
    assert_eq!(app.on_key(key('+')), None, "at most the core count");
    assert_eq!(app.threads, 4);
    assert_eq!(
        app.on_key(key('m')),
        Some(Command::SetMining {
            threads: 0,
            address: None
        })
    );
    app.snapshot.mining_threads = 0;
    // Not mining: - only changes what m will start with.
    assert_eq!(app.on_key(key('-')), None);
    assert_eq!(app.threads, 3);
    for _ in 0..5 {
        app.on_key(key('-'));
    }
    assert_eq!(app.threads, 1);
    assert_eq!(
        app.on_key(key('m')),
        Some(Command::SetMining {
            threads: 1,
            address: Some(Address::from_hash([3; 20]))
        })
    );
}

#[test]
fn send_form_validates_and_sends_only_when_valid() {
    let mut app = fixture();
    let to = Address::from_hash([9; 20]).encode(Network::Devnet);
    app.on_key(key('s'));
    assert!(matches!(app.overlays.last(), Some(Overlay::Send(_))));
    // Keys that are bindings elsewhere are text inside a form.
    type_text(&mut app, "qm");
    let Some(Overlay::Send(f)) = app.overlays.last() else {
        panic!()
    };
    assert_eq!(f.fields[0].value(), "qm");
    let checked = f.check(app.network, app.spendable(), &app.wallet.coins);
    assert!(
        matches!(&checked.to, Err(e) if e.starts_with("not a valid address")),
        "{:?}",
        checked.to
    );
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        None,
        "bad address sends nothing"
    );
    app.on_key(code(KeyCode::Backspace));
    app.on_key(code(KeyCode::Backspace));
    // A regtest address on devnet is refused with the reason.
    type_text(
        &mut app,
        &Address::from_hash([9; 20]).encode(Network::Regtest),
    );
    let Some(Overlay::Send(f)) = app.overlays.last() else {
        panic!()
    };
    let err = f
        .check(app.network, app.spendable(), &app.wallet.coins)
        .to
        .unwrap_err();
    assert!(err.contains("network"), "{err}");
    for _ in 0..80 {
        app.on_key(code(KeyCode::Backspace));
    }
    type_text(&mut app, &to);
    app.on_key(code(KeyCode::Tab));
    type_text(&mut app, "312.50000001");
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        None,
        "amount above the balance sends nothing"
    );
    let Some(Overlay::Send(f)) = app.overlays.last() else {
        panic!()
    };
    assert_eq!(f.focus, 1, "enter jumps to the bad field");
    let err = f
        .check(app.network, app.spendable(), &app.wallet.coins)
        .amount
        .unwrap_err();
    assert!(err.contains("above the spendable balance"), "{err}");
    // The whole balance cannot pay its own fee: refused as typed (it showed ✓ and failed
    // only after Enter).
    for _ in 0..20 {
        app.on_key(code(KeyCode::Backspace));
    }
    type_text(&mut app, "312.5");
    let Some(Overlay::Send(f)) = app.overlays.last() else {
        panic!()
    };
    let c = f.check(app.network, app.spendable(), &app.wallet.coins);
    let err = c.amount.unwrap_err();
    assert!(err.contains("with its fee"), "{err}");
    assert_eq!(c.fee, None);
    for _ in 0..20 {
        app.on_key(code(KeyCode::Backspace));
    }
    type_text(&mut app, "2.5");
    let Some(Overlay::Send(f)) = app.overlays.last() else {
        panic!()
    };
    let c = f.check(app.network, app.spendable(), &app.wallet.coins);
    assert!(c.amount.is_ok());
    assert!(
        c.fee.is_some_and(|f| f.units() > 0),
        "the fee is shown as typed"
    );
    app.on_key(code(KeyCode::Down));
    app.on_key(code(KeyCode::Backspace));
    type_text(&mut app, "0");
    assert_eq!(app.on_key(code(KeyCode::Enter)), None, "fee rate 0 refused");
    app.on_key(code(KeyCode::Backspace));
    type_text(&mut app, "3");
    // Enter shows what will be signed; nothing is sent before the yes.
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    insta::assert_snapshot!("send_confirm", screen(&app, 100, 20).backend());
    // Any other key goes back to the fields; Enter again, then y, sends.
    assert_eq!(app.on_key(key('n')), None);
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    assert_eq!(
        app.on_key(key('y')),
        Some(Command::Send {
            to: Address::from_hash([9; 20]),
            amount: Amount::from_units(250_000_000),
            fee_rate: FeeRate::per_kb(3_000)
        })
    );
    // While pending, keys do nothing; a failure keeps the form with the reason.
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    app.on_sent(Err("insufficient funds: fee".into()));
    let Some(Overlay::Send(f)) = app.overlays.last() else {
        panic!()
    };
    assert!(!f.pending);
    assert_eq!(f.error.as_deref(), Some("insufficient funds: fee"));
    assert!(app.on_key(code(KeyCode::Enter)).is_none());
    assert!(app.on_key(code(KeyCode::Enter)).is_some());
    app.on_sent(Ok(Txid(hash(0x77))));
    assert!(app.overlays.is_empty());
    assert!(app.message.as_ref().unwrap().text.contains("sent"));
}

fn send_fields(app: &App) -> Vec<(String, usize)> {
    let Some(Overlay::Send(f)) = app.overlays.last() else {
        panic!("no send form")
    };
    f.fields
        .iter()
        .map(|x| (x.value().to_string(), x.input.cursor()))
        .collect()
}

#[test]
fn form_fields_edit_like_text_fields() {
    let mut app = fixture();
    app.on_key(key('s'));
    type_text(&mut app, "abc def");
    // Left/Right, Home/End and Ctrl-A/E move the cursor; typing inserts at it.
    app.on_key(code(KeyCode::Left));
    app.on_key(code(KeyCode::Left));
    type_text(&mut app, "X");
    assert_eq!(send_fields(&app)[0], ("abc dXef".into(), 6));
    app.on_key(code(KeyCode::Home));
    type_text(&mut app, ">");
    app.on_key(KeyEvent::new(KeyCode::Char('e'), KeyModifiers::CONTROL));
    type_text(&mut app, "<");
    assert_eq!(send_fields(&app)[0].0, ">abc dXef<");
    // Ctrl-W deletes the word before the cursor, Ctrl-U the line.
    app.on_key(KeyEvent::new(KeyCode::Char('w'), KeyModifiers::CONTROL));
    assert_eq!(send_fields(&app)[0].0, ">abc ");
    app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    assert_eq!(send_fields(&app)[0].0, "");
    // Paste goes to the focused field, without its line break.
    let to = Address::from_hash([9; 20]).encode(Network::Devnet);
    app.on_paste(&format!("{to}\n"));
    assert_eq!(send_fields(&app)[0].0, to);
    // A long value scrolls sideways: the cursor end stays in view in a narrow form.
    app.on_key(code(KeyCode::Home));
    let text = text_of(&screen(&app, 60, 20));
    assert!(text.contains(&to[..20]), "{text}");
    app.on_key(code(KeyCode::End));
    let text = text_of(&screen(&app, 60, 20));
    assert!(text.contains(&to[to.len() - 20..]), "{text}");
    // A huge paste stops at the field's limit instead of freezing the dashboard.
    app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    app.on_paste(&"x".repeat(10_000_000));
    assert_eq!(send_fields(&app)[0].0.len(), chain_tui::tui::app::FIELD_MAX);
    // The search and add-peer forms take the same editing.
    app.on_key(code(KeyCode::Esc));
    app.on_key(key('/'));
    app.on_paste("12x");
    app.on_key(code(KeyCode::Backspace));
    let Some(Overlay::Search(f)) = app.overlays.last() else {
        panic!()
    };
    assert_eq!(f.field.value(), "12");
}

#[test]
fn send_form_max_and_an_absurd_fee() {
    let mut app = fixture();
    let to = Address::from_hash([9; 20]).encode(Network::Devnet);
    app.on_key(key('s'));
    app.on_paste(&to);
    app.on_key(code(KeyCode::Tab));
    type_text(&mut app, "max");
    // max: every coin less the fee of spending them all, and that is exactly covered.
    let Some(Overlay::Send(f)) = app.overlays.last() else {
        panic!()
    };
    let c = f.check(app.network, app.spendable(), &app.wallet.coins);
    let (amount, fee) = (c.amount.clone().unwrap(), c.fee.unwrap());
    assert_eq!(amount.checked_add(fee), app.spendable());
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    assert_eq!(
        app.on_key(key('y')),
        Some(Command::Send {
            to: Address::from_hash([9; 20]),
            amount,
            fee_rate: chain_tui::core::FeeRate::DEFAULT,
        })
    );
    // A fee rate 500 times the usual one: y does not send it, Y does.
    let mut app = fixture();
    app.on_key(key('s'));
    app.on_paste(&to);
    app.on_key(code(KeyCode::Tab));
    type_text(&mut app, "1");
    app.on_key(code(KeyCode::Tab));
    app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    type_text(&mut app, "1000");
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    insta::assert_snapshot!("send_absurd_fee", screen(&app, 100, 20).backend());
    assert_eq!(app.on_key(key('y')), None, "y does not send an absurd fee");
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    assert!(matches!(app.on_key(key('Y')), Some(Command::Send { .. })));
}

#[test]
fn add_peer_unban_new_address_help_and_quit() {
    let mut app = fixture();
    app.on_key(key('a'));
    type_text(&mut app, "localhost:0");
    assert_eq!(app.on_key(code(KeyCode::Enter)), None);
    for _ in 0..2 {
        app.on_key(code(KeyCode::Backspace));
    }
    type_text(&mut app, ":7421");
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::Connect("127.0.0.1:7421".parse().unwrap()))
    );
    assert!(app.overlays.is_empty());
    // u needs a ban selected in the Peers pane.
    assert_eq!(app.on_key(key('u')), None);
    assert!(app.message.as_ref().unwrap().error);
    app.focus = Pane::Peers;
    app.on_key(key('j'));
    assert_eq!(app.on_key(key('u')), None, "a connected peer is not banned");
    app.on_key(key('j'));
    assert_eq!(
        app.on_key(key('u')),
        Some(Command::Unban(NodeId([0xba; 32]).to_string()))
    );
    assert_eq!(app.on_key(key('n')), Some(Command::NewAddress));
    app.on_new_address(Ok(Address::from_hash([5; 20])));
    assert_eq!(app.wallet.address, Some(Address::from_hash([5; 20])));
    app.on_key(key('?'));
    assert_eq!(app.overlays.last(), Some(&Overlay::Help));
    app.on_key(key('?'));
    assert!(app.overlays.is_empty());
    app.on_key(key('?'));
    app.on_key(code(KeyCode::Esc));
    assert!(app.overlays.is_empty());
    assert_eq!(app.on_key(key('q')), Some(Command::Quit));
    assert!(app.quit);
    let mut app = fixture();
    app.on_key(key('s'));
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Command::Quit),
        "Ctrl-c quits even from a form"
    );
}

#[test]
fn help_comes_from_the_same_table_that_dispatches() {
    let mut km = Keymap::default();
    km.apply("[keys]\nquit = [\"x\"]\ntoggle_mining = [\"Ctrl-g\"]\n")
        .unwrap();
    let mut app = fixture();
    app.keymap = km;
    assert_eq!(app.on_key(key('q')), None);
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('g'), KeyModifiers::CONTROL)),
        Some(Command::SetMining {
            threads: 0,
            address: None
        })
    );
    app.on_action(Action::Help);
    let s = text_of(&screen(&app, 100, 24));
    assert!(s.contains("Ctrl-g"), "{s}");
    // The list is longer than the screen: it scrolls (it used to be cut off).
    assert!(!s.contains("quit (stops the node)"), "{s}");
    app.on_key(code(KeyCode::End));
    let s = text_of(&screen(&app, 100, 24));
    let quit_line = |key: &str| {
        s.lines()
            .any(|l| l.contains(&format!(" {key} ")) && l.contains("quit (stops the node)"))
    };
    assert!(quit_line("x"), "{s}");
    assert!(!quit_line("q"), "{s}");
    // The status bar uses the same keys.
    app.on_action(Action::Back);
    let s = text_of(&screen(&app, 160, 45));
    assert!(s.contains("x quit"), "{s}");
    assert_eq!(app.on_key(key('x')), Some(Command::Quit));
}

#[test]
fn a_click_focuses_the_pane_under_it() {
    let mut app = fixture();
    let l = layout(Rect::new(0, 0, 160, 45), app.focus);
    for (p, r) in l.panes {
        app.on_click(r.x + r.width / 2, r.y + r.height / 2);
        assert_eq!(app.focus, p);
    }
    // The status bar is no pane.
    app.on_click(1, 44);
    assert_eq!(app.focus, Pane::Log);
}

#[test]
fn network_estimates_use_integers() {
    let app = fixture();
    // 12 blocks 10 s apart; the span runs between the medians of the first and last 5 stamps:
    // 7 intervals of one block's work over 70 s.
    let work = chain_tui::tui::app::block_work(0x1e01_0000).unwrap();
    let r = app.snapshot.rates.unwrap();
    assert_eq!(r.intervals, 7);
    assert_eq!(
        r.hashrate,
        work * U256::from(7u64) * U256::from(1000u64) / U256::from(70_000u64)
    );
    assert_eq!(
        chain_tui::tui::app::next_block_secs(&app.snapshot),
        Some(u64::try_from(work / r.hashrate).unwrap())
    );
    assert_eq!(r.avg_block_ms, 10_000);
}

// ---- end to end in a pseudo-terminal ----

mod e2e {
    use crate::pty::{Tui, wait_exit};
    use std::process::Command as Proc;
    use std::time::{Duration, Instant};

    use crate::common::bin::{self, BIN};

    /// The dashboard in a 160×45 pseudo-terminal.
    fn start(args: &[&str]) -> Tui {
        Tui::start(BIN, args, 45, 160)
    }

    /// The number after `label ` in the first line that has it.
    fn number_after(screen: &str, label: &str) -> Option<f64> {
        let i = screen.find(label)? + label.len();
        let s: String = screen[i..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        s.parse().ok()
    }

    /// The txid of the first payment the dashboard's log at `log` says it sent.
    fn sent_txid(log: &std::path::Path) -> String {
        let log = std::fs::read_to_string(log).unwrap();
        log.split("in transaction ")
            .nth(1)
            .and_then(|r| r.get(..64))
            .expect("the payment's txid in the log")
            .to_string()
    }

    /// Search for `text` as a person would: / opens the form, the text typed, Enter.
    fn search(tui: &mut Tui, text: &str) {
        tui.send("/");
        tui.wait_for("the search form", Duration::from_secs(5), |s| {
            s.contains("Search")
        });
        tui.type_text(text);
        tui.send("\r");
    }

    /// Pay `amount` coins to `to` as a person would: s opens the form, the address is pasted
    /// (bracketed paste), the amount typed, Enter checks, y confirms.
    fn send_through_the_form(tui: &mut Tui, to: &str, amount: &str) {
        tui.send("s");
        tui.wait_for("the send form", Duration::from_secs(5), |s| {
            s.contains("to address")
        });
        tui.send(&format!("\x1b[200~{to}\x1b[201~"));
        tui.send("\t");
        tui.type_text(amount);
        tui.wait_for("valid fields", Duration::from_secs(5), |s| {
            s.matches('✓').count() == 3
        });
        tui.send("\r");
        tui.wait_for("the confirmation", Duration::from_secs(5), |s| {
            s.contains("Sign and send this payment?") && s.contains(&format!("{amount} coins"))
        });
        tui.send("y");
    }

    /// A GET to the API of the dashboard running on `dir` (found through node.json).
    fn api_get(dir: &std::path::Path, path: &str) -> String {
        use std::io::{Read, Write};
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("node.json")).expect("node.json"))
                .unwrap();
        let addr = file["api"].as_str().unwrap();
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    fn start_regtest(dir: &std::path::Path) -> Tui {
        let mut tui = start(&[
            "--network",
            "regtest",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ]);
        tui.wait_for("the panes", Duration::from_secs(20), |s| {
            s.contains("Chain tip") && s.contains("Wallet") && s.contains("height 0")
        });
        tui
    }

    /// On a 1,000-block chain the Chain pane pages from the tip to genesis (End), opens the
    /// genesis block (Enter), and goes back to the tip (g). It used to hold 12 blocks only.
    #[test]
    fn the_chain_pane_pages_to_genesis_on_a_1000_block_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().to_str().unwrap();
        let out = bin::regtest(d)
            .args(["mine", "--blocks", "1000"])
            .args(["--threads", "1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let mut tui = start(&[
            "--network",
            "regtest",
            "--data-dir",
            d,
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ]);
        tui.wait_for("the tip", Duration::from_secs(20), |s| {
            s.contains("height 1000")
        });
        // Row text starts with the height, inside the Chain pane's border.
        let has_row = |s: &str, h: u64| s.lines().any(|l| l.starts_with(&format!("│{h} ")));
        tui.send("\x1b[F"); // End
        tui.wait_for("genesis in the Chain pane", Duration::from_secs(10), |s| {
            has_row(s, 0) && has_row(s, 1) && !has_row(s, 1000)
        });
        tui.send("\r");
        tui.wait_for("the genesis block", Duration::from_secs(10), |s| {
            s.contains("Block 0") && s.contains("confirmations 1001")
        });
        // y puts the open block's hash on the clipboard (OSC 52).
        tui.send("y");
        let deadline = Instant::now() + Duration::from_secs(5);
        while tui.clipboard.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let copied = tui.clipboard.lock().unwrap().clone();
        assert_eq!(copied.len(), 1, "{copied:?}");
        assert_eq!(copied[0].len(), 64);
        let screen = tui.text();
        assert!(
            screen.contains(&format!("hash   {}", copied[0])),
            "{copied:?} is not the block shown: {screen}"
        );
        tui.send("\x1b"); // Esc
        std::thread::sleep(Duration::from_millis(300));
        // / finds a height (and hashes, txids, addresses: tests/node.rs).
        tui.send("/");
        tui.wait_for("the search form", Duration::from_secs(5), |s| {
            s.contains("Search")
        });
        tui.type_text("500");
        tui.send("\r");
        tui.wait_for("block 500", Duration::from_secs(10), |s| {
            s.contains("Block 500") && s.contains("confirmations 501")
        });
        tui.send("\x1b");
        std::thread::sleep(Duration::from_millis(300));
        tui.send("g");
        tui.wait_for("the tip again", Duration::from_secs(10), |s| {
            has_row(s, 1000)
        });
        tui.send("q");
        let (status, _, _) = wait_exit(&mut tui, "q");
        assert!(status.success(), "{status:?}");
    }

    #[test]
    fn ctrl_c_and_sigterm_restore_the_terminal() {
        let tmp = tempfile::tempdir().unwrap();
        // Ctrl-C, even with a form open.
        let mut tui = start_regtest(tmp.path());
        tui.send("s");
        tui.wait_for("the send form", Duration::from_secs(5), |s| {
            s.contains("to address")
        });
        tui.send("\x03");
        let (status, restored, cursor) = wait_exit(&mut tui, "Ctrl-C");
        assert!(status.success(), "{status:?}");
        assert!(restored && cursor);
        drop(tui);
        // SIGTERM from outside.
        let mut tui = start_regtest(tmp.path());
        let pid = tui.child.process_id().expect("pid");
        let killed = Proc::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let (status, restored, cursor) = wait_exit(&mut tui, "SIGTERM");
        assert!(status.success(), "{status:?}");
        assert!(restored && cursor);
    }

    #[test]
    fn dashboard_mines_sends_and_quits_in_a_terminal() {
        let t0 = Instant::now();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("node");
        let other = tmp.path().join("other");
        let dir_s = dir.to_str().unwrap().to_string();
        // A second wallet to pay.
        let out = bin::regtest(other.to_str().unwrap())
            .args(["wallet", "new"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let to = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(to.starts_with("ctrt1q"), "{to}");

        let mut tui = start(&[
            "--network",
            "regtest",
            "--data-dir",
            &dir_s,
            "--listen",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--block-interval",
            "0.1",
        ]);
        let s = tui.wait_for("the panes", Duration::from_secs(20), |s| {
            ["Chain tip", "Mempool", "Peers", "Hashrate", "Wallet", "Log"]
                .iter()
                .all(|p| s.contains(p))
                && s.contains("height 0")
                && s.contains("confirmed 0")
        });
        assert!(tui.parser.lock().unwrap().screen().alternate_screen());
        assert!(s.contains("regtest · 127.0.0.1:"), "{s}");
        // The dashboard serves the API and says where in node.json.
        let info = api_get(&dir, "/info");
        assert!(info.contains("\"network\":\"regtest\""), "{info}");

        // b mines exactly one block.
        tui.send("b");
        tui.wait_for("one block", Duration::from_secs(10), |s| {
            s.contains("height 1 ")
        });
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            tui.text().contains("height 1 "),
            "b mined more than one block"
        );
        // Mine past coinbase maturity (paced: one block every 0.1 s on average), then stop.
        tui.send("m");
        tui.wait_for("height to pass 11", Duration::from_secs(20), |s| {
            number_after(s, "height").is_some_and(|h| h >= 12.0)
        });
        tui.send("m");
        tui.wait_for("mining to stop", Duration::from_secs(10), |s| {
            s.contains("idle")
        });
        // A paced block under way when m was pressed still lands.
        std::thread::sleep(Duration::from_millis(500));
        let s = tui.wait_for("a spendable balance", Duration::from_secs(10), |s| {
            number_after(s, "confirmed").is_some_and(|c| c >= 50.0)
        });
        let before = number_after(&s, "confirmed").unwrap();

        // Send 1.5 to the other wallet through the form.
        send_through_the_form(&mut tui, &to, "1.5");
        let s = tui.wait_for(
            "the payment in mempool and wallet",
            Duration::from_secs(15),
            |s| s.contains("1 tx") && s.contains("pending") && s.contains("-1.5"),
        );
        assert!(
            number_after(&s, "confirmed").unwrap() < before,
            "the spent coin left the confirmed balance: {s}"
        );

        // Search the payment's txid (from the log), follow its input back to the coinbase it
        // spends, and come back.
        let txid = sent_txid(&dir.join("chain-tui.log"));
        search(&mut tui, &txid[..16]);
        tui.wait_for("the payment", Duration::from_secs(10), |s| {
            s.contains(&txid) && s.contains("inputs (1)") && s.contains("mempool")
        });
        tui.send("\r");
        tui.wait_for("the coinbase it spends", Duration::from_secs(10), |s| {
            s.contains("coinbase: new coins") && s.contains(&format!("spent by {}", &txid[..8]))
        });
        tui.send("\x1b");
        tui.wait_for("the payment again", Duration::from_secs(5), |s| {
            s.contains(&txid) && s.contains("inputs (1)")
        });
        // The open view follows the chain: a block mined now confirms it on screen.
        tui.send("b");
        tui.wait_for("the payment confirmed", Duration::from_secs(15), |s| {
            s.contains(&txid) && s.contains("confirmations 1") && s.contains("merkle proof")
        });
        tui.send("\x1b");
        std::thread::sleep(Duration::from_millis(300));

        // Quit: exit status 0 and the terminal back from the alternate screen.
        tui.send("q");
        let (status, restored, cursor) = wait_exit(&mut tui, "q");
        assert!(status.success(), "exit status {status:?}");
        assert!(restored, "alternate screen left");
        assert!(cursor, "cursor shown again");
        assert!(!dir.join("node.json").exists(), "node.json removed on exit");
        // Logs went to the file, not the terminal.
        let log = std::fs::read_to_string(dir.join("chain-tui.log")).unwrap();
        assert!(log.contains("sent 1.5"), "{log}");
        assert!(t0.elapsed() < Duration::from_secs(60));
    }

    /// `chain-tui attach URL` opens the same dashboard on a `chain-tui node` running as its own
    /// process, through the node's API only: without the token the panes show and a write
    /// says what is missing; with it a payment goes out and a block mined from the keyboard
    /// confirms it; q leaves the node running.
    #[test]
    fn attach_drives_a_node_running_elsewhere_and_leaves_it_running() {
        use crate::common::bin::NodeProcess;
        let tmp = tempfile::tempdir().unwrap();
        let (dir, other, mine) = (
            tmp.path().join("node"),
            tmp.path().join("other"),
            tmp.path().join("attach"),
        );
        let mut node = NodeProcess::regtest(&dir);
        let api = node.node_json()["api"].as_str().unwrap().to_string();
        let url = format!("http://{api}");
        // Coins to spend: past coinbase maturity, mined through the node's API.
        let out = bin::regtest(&dir)
            .args(["mine", "--blocks", "12", "--threads", "1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let out = bin::regtest(&other)
            .args(["wallet", "new"])
            .output()
            .unwrap();
        let to = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(to.starts_with("ctrt1q"), "{to}");
        let token_file = dir.join("node.json");
        let attach = |token: bool| {
            let mut args = vec!["--data-dir", mine.to_str().unwrap(), "attach", url.as_str()];
            if token {
                args.extend(["--token-file", token_file.to_str().unwrap()]);
            }
            start(&args)
        };
        let panes = |s: &str| {
            ["Chain tip", "Mempool", "Peers", "Hashrate", "Wallet", "Log"]
                .iter()
                .all(|p| s.contains(p))
        };

        // Without the token: everything shows; mining is refused with what to give.
        let mut tui = attach(false);
        let s = tui.wait_for("the panes of the node", Duration::from_secs(20), |s| {
            panes(s)
                && number_after(s, "height") == Some(12.0)
                && number_after(s, "confirmed").is_some_and(|c| c >= 50.0)
        });
        assert!(s.contains(&format!("attached to {url}")), "{s}");
        tui.send("m");
        tui.wait_for("the refusal", Duration::from_secs(10), |s| {
            s.contains("needs its token") && s.contains("--token-file")
        });
        tui.send("q");
        let (status, restored, _) = wait_exit(&mut tui, "q");
        assert!(status.success() && restored, "{status:?}");
        assert!(
            node.child.try_wait().unwrap().is_none(),
            "q stopped the node"
        );

        // With the token: send 1.5 through the form, then mine the block that confirms it.
        let mut tui = attach(true);
        tui.wait_for("the panes again", Duration::from_secs(20), |s| {
            panes(s) && number_after(s, "confirmed").is_some_and(|c| c >= 50.0)
        });
        send_through_the_form(&mut tui, &to, "1.5");
        tui.wait_for(
            "the payment in the node's mempool",
            Duration::from_secs(15),
            |s| s.contains("1 tx") && s.contains("-1.5") && s.contains("sent: transaction"),
        );
        let txid = sent_txid(&mine.join("attach.log"));
        tui.send("b");
        tui.wait_for("the payment confirmed", Duration::from_secs(15), |s| {
            number_after(s, "height") == Some(13.0) && s.contains("0 tx") && s.contains("-1.5")
        });
        // The node confirms it too, and the block opens from a search as on the node's own
        // dashboard.
        let tx = api_get(&dir, &format!("/tx/{txid}"));
        assert!(tx.contains("\"height\":13"), "{tx}");
        search(&mut tui, &txid[..16]);
        tui.wait_for("the payment's details", Duration::from_secs(10), |s| {
            s.contains(&txid) && s.contains("confirmations 1") && s.contains("merkle proof")
        });
        tui.send("\x1b");
        // m mines on the node: the pane names the node's own hashing kernel.
        let mining = api_get(&dir, "/mining");
        let kernel = mining
            .split("\"kernel\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("the node's kernel")
            .to_string();
        std::thread::sleep(Duration::from_millis(300));
        tui.send("m");
        tui.wait_for("the node mining", Duration::from_secs(10), |s| {
            s.contains(&format!("×1 {kernel}"))
        });
        tui.send("m");
        tui.wait_for("mining stopped", Duration::from_secs(10), |s| {
            s.contains("idle")
        });
        // Apart, or the terminal reads Esc q as Alt-q.
        std::thread::sleep(Duration::from_millis(300));
        tui.send("q");
        let (status, restored, cursor) = wait_exit(&mut tui, "q");
        assert!(status.success() && restored && cursor, "{status:?}");
        // The node went on running, and stops cleanly.
        let info = api_get(&dir, "/info");
        let height = info
            .split("\"height\":")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|h| h.parse::<f64>().ok())
            .expect("the node's height");
        assert!(height > 13.0, "{info}");
        // Attached while it stops: the dashboard says it does not answer, and still quits.
        let mut tui = attach(false);
        tui.wait_for("the panes once more", Duration::from_secs(20), |s| {
            panes(s) && number_after(s, "height") == Some(height)
        });
        assert_eq!(node.stop(), Some(0));
        tui.wait_for("that the node is away", Duration::from_secs(10), |s| {
            s.contains("NOT ANSWERING") && number_after(s, "height") == Some(height)
        });
        tui.send("q");
        let (status, restored, _) = wait_exit(&mut tui, "q");
        assert!(status.success() && restored, "{status:?}");
    }
}

/// The text of a rendered buffer, one string per row.
fn rows_of(t: &Terminal<TestBackend>) -> Vec<String> {
    let b = t.backend().buffer();
    (0..b.area.height)
        .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect())
        .collect()
}

/// Synthetic active-chain rows from `top` down, as the node would read them.
fn chain_rows(top: u64, count: u64) -> Vec<chain_tui::node::BlockSummary> {
    (0..count)
        .map_while(|i| top.checked_sub(i))
        .map(|h| chain_tui::node::BlockSummary {
            hash: BlockHash(hash((h % 200) as u8)),
            height: h,
            time: NOW - 4 - (1284 - h) * 10,
            bits: chain_tui::core::pow::CompactTarget(0x1e01_0000),
            tx_count: 1,
            size: 200,
            seen_ms: None,
        })
        .collect()
}

/// The Chain pane held the 12 latest blocks and nothing else: PgUp/PgDn/Home/End/g/G did
/// nothing and block 1 was unreachable. Now it scrolls to genesis, asks the node for the
/// blocks it lacks a page at a time, keeps only those near the selection, and g follows the
/// tip again.
#[test]
fn the_chain_pane_scrolls_to_genesis_and_back() {
    let mut app = fixture();
    app.focus = Pane::Chain;
    let _ = pane(&app, Pane::Chain, 56, 16); // the page size comes from the drawn pane
    let page = app.chain_room.get() as u64;
    assert!(page >= 5, "{page}");
    // PgDn past the recent blocks: the pane asks for the blocks around the selection.
    let mut asked = None;
    for _ in 0..3 {
        if let Some(c) = app.on_key(code(KeyCode::PageDown)) {
            asked = Some(c);
        }
    }
    assert_eq!(app.chain_selected(), 1284 - 3 * page);
    let Some(Command::LoadChain { top, count }) = asked else {
        panic!("no read asked for: {asked:?}");
    };
    assert!(top >= app.chain_selected() && top - count < app.chain_selected());
    app.on_chain_rows(chain_rows(top, count));
    let shown = rows_of(&pane(&app, Pane::Chain, 56, 16)).join("\n");
    assert!(
        shown.contains(&format!("{} ", app.chain_selected())),
        "{shown}"
    );
    // G: genesis, block 0, selectable and openable.
    let cmd = app.on_key(key('G'));
    assert_eq!(app.chain_selected(), 0);
    assert!(matches!(cmd, Some(Command::LoadChain { top, .. }) if top < 128));
    app.on_chain_rows(chain_rows(64, 65));
    let shown = rows_of(&pane(&app, Pane::Chain, 56, 16));
    assert!(
        shown.iter().any(|r| r.starts_with("│0 ")),
        "genesis row: {shown:#?}"
    );
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::LoadBlock(BlockHash(hash(0))))
    );
    // Only blocks near the selection are kept (constant memory over a long chain).
    assert!(
        app.chain_rows.keys().all(|h| *h <= 1024 + 64),
        "kept far rows"
    );
    // A new block while scrolled away leaves the view where it is.
    let top_before = app.chain_top_row();
    let mut s = app.snapshot.clone();
    s.height += 1;
    app.set_snapshot(s);
    assert_eq!(app.chain_top_row(), top_before);
    // g: back to the tip, following it.
    app.on_key(key('g'));
    assert_eq!(app.chain_sel, None);
    assert_eq!(app.chain_selected(), app.snapshot.height);
}

/// The Log pane showed only its last lines and could not scroll; now it scrolls back and
/// filters by level.
#[test]
fn the_log_pane_scrolls_and_filters_by_level() {
    let mut app = fixture();
    app.logs = (0..100)
        .map(|i| {
            let level = if i % 10 == 0 { "WARN" } else { "INFO" };
            format!("2026-11-30T12:00:00Z {level} chain_tui::node: line {i}")
        })
        .collect();
    app.focus = Pane::Log;
    let text = |app: &App| rows_of(&pane(app, Pane::Log, 70, 8)).join("\n");
    assert!(text(&app).contains("line 99"));
    for _ in 0..30 {
        app.on_key(key('k'));
    }
    let t = text(&app);
    assert!(t.contains("line 69") && !t.contains("line 99"), "{t}");
    assert!(t.contains("30 newer line(s) below"), "{t}");
    // Warn and up only.
    app.on_key(key('v'));
    app.on_key(key('v'));
    let t = text(&app);
    assert!(t.contains("line 90") && !t.contains("line 99"), "{t}");
    assert!(t.contains("warn and up"), "{t}");
    // G follows again.
    app.on_key(key('v'));
    app.on_key(key('v'));
    app.on_key(key('G'));
    assert!(text(&app).contains("line 99"));
}

/// z zooms the focused pane to the whole screen and back.
#[test]
fn zoom_fills_the_screen_with_the_focused_pane() {
    let mut app = fixture();
    app.focus = Pane::Peers;
    app.on_key(key('z'));
    let l = chain_tui::tui::layout_zoomed(Rect::new(0, 0, 120, 40), app.focus, app.zoomed);
    assert_eq!(l.panes.len(), 1);
    assert_eq!(l.panes[0].0, Pane::Peers);
    assert_eq!(l.panes[0].1.height, 39);
    app.on_key(key('z'));
    assert!(!app.zoomed);
}

/// At 80×24, and in each pane of the README's three-pane tmux example (79×50), no amount,
/// confirmation count, tx count or peer tip is cut (they were: an empty Peers pane took the
/// most width while wallet amounts and peer tips ended in "…").
#[test]
fn narrow_terminals_cut_no_figure() {
    let app = fixture();
    for (w, h) in [(80, 24), (79, 50)] {
        let s = text_of(&screen(&app, w, h));
        for want in [
            "-5.00004  pending",
            "+50 101 conf",
            "+2.5 285 conf",
            "3a3a3a3a 1284",
            "c0c0c0c0 1283",
            "4s   3 1.2 kB",
            "confirmed 312.5",
        ] {
            assert!(s.contains(want), "{w}×{h}: {want:?} missing or cut:\n{s}");
        }
    }
}

/// Enter on a peer shows its identity, address, direction, version, best block, work, RTT,
/// traffic, connection age and last message; on a ban, the reason and when it ends.
#[test]
fn snapshot_peer_and_ban_views() {
    let mut app = fixture();
    app.focus = Pane::Peers;
    app.on_key(code(KeyCode::Enter));
    assert!(matches!(app.overlays.last(), Some(Overlay::Peer(_))));
    let s = text_of(&screen(&app, 120, 30));
    for want in [
        "127.0.0.1:7421",
        "outbound",
        "chain-tui/0.1.0",
        "height 1284",
        "rtt 2 ms",
        "last message 1s ago",
    ] {
        assert!(s.contains(want), "{want:?}:\n{s}");
    }
    insta::assert_snapshot!("peer_view", screen(&app, 120, 30).backend());
    app.on_key(code(KeyCode::Esc));
    app.on_key(key('j'));
    app.on_key(key('j'));
    app.on_key(code(KeyCode::Enter));
    let s = text_of(&screen(&app, 120, 30));
    assert!(
        s.contains("Banned peer") && s.contains("hash above target") && s.contains("ends in 55m"),
        "{s}"
    );
    insta::assert_snapshot!("ban_view", screen(&app, 120, 30).backend());
}

/// `/` opens the search form; Enter asks the node to look the text up.
#[test]
fn snapshot_search_form() {
    let mut app = fixture();
    app.on_key(key('/'));
    type_text(&mut app, "0x000a30");
    insta::assert_snapshot!("search_form", screen(&app, 100, 24).backend());
    assert_eq!(
        app.on_key(code(KeyCode::Enter)),
        Some(Command::Search("0x000a30".into()))
    );
    assert!(app.overlays.is_empty());
    // What it found opens; nothing found says why.
    assert_eq!(
        app.on_search(Ok(chain_tui::node::SearchHit::Block(BlockHash(hash(0x30))))),
        Some(Command::LoadBlock(BlockHash(hash(0x30))))
    );
    assert_eq!(
        app.on_search(Ok(chain_tui::node::SearchHit::Nothing(
            "nothing starts with 0abc".into()
        ))),
        None
    );
    assert!(
        app.message
            .as_ref()
            .is_some_and(|m| m.error && m.text.contains("0abc"))
    );
}
