//! The dashboard's state and its reactions to actions, with no I/O: the event loop feeds it
//! node snapshots, network views and wallet data, and carries out the [`Command`]s it returns.
//! Everything here is plain data, so tests build an `App` by hand and drive it.

use super::action::Action;
use super::keymap::{Key, Keymap};
use crate::core::address::Address;
use crate::core::amount::Amount;
use crate::core::hash::{BlockHash, MerkleRoot, Txid};
use crate::core::merkle::ProofStep;
use crate::core::params::Network;
use crate::core::pow::{CompactTarget, U256};
use crate::core::tx::OutPoint;
use crate::node::FeeRate;
use crate::node::P2pView;
use crate::node::PeerAddr;
use crate::node::{AddressView, Spend};
use crate::node::{BlockSummary, Snapshot};
use crate::wallet::{Balance, WalletTx};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Position, Rect};
use std::cell::Cell;
use std::collections::BTreeMap;

/// The panes, in focus order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pane {
    Chain,
    Mempool,
    Peers,
    Hashrate,
    Wallet,
    Log,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Chain,
        Pane::Mempool,
        Pane::Peers,
        Pane::Hashrate,
        Pane::Wallet,
        Pane::Log,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Chain => "Chain tip",
            Pane::Mempool => "Mempool",
            Pane::Peers => "Peers",
            Pane::Hashrate => "Hashrate",
            Pane::Wallet => "Wallet",
            Pane::Log => "Log",
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn next(self) -> Pane {
        Pane::ALL[(self.index() + 1) % Pane::ALL.len()]
    }

    pub fn prev(self) -> Pane {
        Pane::ALL[(self.index() + Pane::ALL.len() - 1) % Pane::ALL.len()]
    }

    /// The actions that do something in this pane, for the status bar.
    pub fn actions(self) -> &'static [Action] {
        match self {
            Pane::Chain => &[Action::Details, Action::ToggleMining, Action::Send],
            Pane::Mempool => &[Action::Details, Action::Send],
            Pane::Peers => &[Action::AddPeer, Action::Unban],
            Pane::Hashrate => &[Action::ToggleMining, Action::ThreadsUp, Action::ThreadsDown],
            Pane::Wallet => &[Action::Send, Action::NewAddress, Action::Details],
            Pane::Log => &[Action::ToggleMining, Action::Send],
        }
    }
}

/// What the wallet pane shows (loaded off the UI task).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalletView {
    pub address: Option<Address>,
    /// Every address the wallet holds a key for (to mark outputs "yours").
    pub addresses: Vec<Address>,
    pub balance: Option<Balance>,
    /// Amounts of the coins a payment may spend now (for the send form's checks).
    pub coins: Vec<Amount>,
    /// Newest first.
    pub history: Vec<WalletTx>,
    pub error: Option<String>,
}

/// A transaction line in a block's details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRow {
    pub txid: Txid,
    pub coinbase: bool,
    pub inputs: usize,
    pub outputs: usize,
    /// Sum of the outputs.
    pub amount: Amount,
    pub size: usize,
}

/// One block with its transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDetail {
    pub hash: BlockHash,
    pub height: u64,
    pub time: u64,
    /// When this node first saw the block (seconds since the epoch), if it recorded it.
    pub seen: Option<u64>,
    pub confirmations: u64,
    pub size: usize,
    pub txs: Vec<TxRow>,
    /// The header's other fields.
    pub version: u32,
    pub prev: BlockHash,
    pub merkle_root: crate::core::hash::MerkleRoot,
    pub bits: u32,
    pub nonce: u64,
    /// Work this block adds, and the chain's work up to it.
    pub work: U256,
    pub chainwork: U256,
    /// The coinbase's outputs split: new coins, and the fees of the block's transactions.
    pub subsidy: Amount,
    pub fees: Amount,
    /// The next block on the active chain, if any.
    pub next: Option<BlockHash>,
}

/// An input with the output it spends, when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputRow {
    pub prevout: OutPoint,
    pub address: Option<Address>,
    pub amount: Option<Amount>,
}

/// One transaction in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxDetail {
    pub txid: Txid,
    /// Confirming block and its height (None: in the mempool).
    pub block: Option<(BlockHash, u64)>,
    pub confirmations: u64,
    pub coinbase: bool,
    pub size: usize,
    pub inputs: Vec<InputRow>,
    pub outputs: Vec<OutputRow>,
    pub fee: Option<Amount>,
    /// The merkle proof that the transaction is in its block (confirmed ones).
    pub proof: Option<ProofView>,
}

/// An output and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputRow {
    pub address: Address,
    pub amount: Amount,
    pub spend: Spend,
}

/// A transaction's merkle proof of inclusion, checked against its block header's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofView {
    /// The transaction's position in the block, and the block's transaction count.
    pub index: usize,
    pub count: usize,
    pub steps: Vec<ProofStep>,
    /// The hash after each step (the last is where the proof leads).
    pub path: Vec<[u8; 32]>,
    /// The block header's merkle root.
    pub root: MerkleRoot,
    /// Whether the path ends at the header's root (`core::merkle::verify_proof`).
    pub valid: bool,
}

impl TxDetail {
    /// Rows the selection moves over: the inputs (none for a coinbase), then the outputs.
    pub fn rows(&self) -> usize {
        self.input_rows() + self.outputs.len()
    }

    /// Selectable input rows.
    pub fn input_rows(&self) -> usize {
        if self.coinbase { 0 } else { self.inputs.len() }
    }

    /// How the wallet sees output `n`: "yours" when it pays one of `mine`, "change" when it
    /// does and the transaction also spends a coin of `mine` (money coming back).
    pub fn mark(&self, n: usize, mine: &[Address]) -> Option<&'static str> {
        let o = self.outputs.get(n)?;
        if !mine.contains(&o.address) {
            return None;
        }
        let spends_ours = self
            .inputs
            .iter()
            .any(|i| i.address.is_some_and(|a| mine.contains(&a)));
        Some(if spends_ours && !self.coinbase {
            "change"
        } else {
            "yours"
        })
    }

    /// Fee per byte (base units, rounded down), when the fee is known.
    pub fn fee_rate(&self) -> Option<u64> {
        Some(self.fee?.units() / (self.size as u64).max(1))
    }
}

/// A block, transaction or address view read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reloaded {
    Block(BlockDetail),
    Tx(TxDetail),
    Address(AddressView, usize, usize),
}

/// Which list of an address view is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrList {
    Coins,
    History,
    Pending,
}

impl AddrList {
    pub fn next(self) -> AddrList {
        match self {
            AddrList::Coins => AddrList::History,
            AddrList::History => AddrList::Pending,
            AddrList::Pending => AddrList::Coins,
        }
    }
}

/// Rows of an address's coins or history read at a time.
pub const ADDRESS_PAGE: usize = 100;

/// An address view: its balance, and a page of one of its lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPage {
    pub view: AddressView,
    pub list: AddrList,
    /// Rows of each list before the page the view holds.
    pub coins_skip: usize,
    pub history_skip: usize,
    /// The selected row of the shown list, counted from its start (not the page's).
    pub sel: usize,
}

impl AddressPage {
    /// Rows in the shown list, in all.
    pub fn total(&self) -> usize {
        match self.list {
            AddrList::Coins => self.view.coin_count,
            AddrList::History => self.view.history_count as usize,
            AddrList::Pending => self.view.mempool.len(),
        }
    }

    /// The first row of the page held for the shown list.
    pub fn skip(&self) -> usize {
        match self.list {
            AddrList::Coins => self.coins_skip,
            AddrList::History => self.history_skip,
            AddrList::Pending => 0,
        }
    }

    /// The transaction of the selected row, if the page holds it.
    pub fn selected_txid(&self) -> Option<Txid> {
        let i = self.sel.checked_sub(self.skip())?;
        match self.list {
            AddrList::Coins => self.view.coins.get(i).map(|c| c.outpoint.txid),
            AddrList::History => self.view.history.get(i).map(|h| h.txid),
            AddrList::Pending => self.view.mempool.get(i).copied(),
        }
    }
}

/// The longest text a form field takes from a paste (addresses, amounts and hashes are far
/// shorter).
pub const FIELD_MAX: usize = 256;

/// A text field of a form: a cursor, Left/Right, Home/End, Ctrl-A/E/U/W/K, Backspace/Delete
/// and paste (tui-input does the editing; the view scrolls sideways to keep the cursor shown).
#[derive(Clone, Debug, Default)]
pub struct Field {
    pub label: &'static str,
    pub input: tui_input::Input,
}

impl PartialEq for Field {
    fn eq(&self, other: &Field) -> bool {
        self.label == other.label
            && self.input.value() == other.input.value()
            && self.input.cursor() == other.input.cursor()
    }
}

impl Eq for Field {}

impl Field {
    pub fn new(label: &'static str, value: &str) -> Field {
        Field {
            label,
            input: tui_input::Input::new(value.to_string()),
        }
    }

    pub fn value(&self) -> &str {
        self.input.value()
    }

    /// Replace the text (the cursor goes to its end).
    pub fn set(&mut self, value: &str) {
        self.input = tui_input::Input::new(value.to_string());
    }

    /// An editing key; whether the field took it (Enter, Esc, Tab and Up/Down it leaves).
    pub fn edit(&mut self, key: &KeyEvent) -> bool {
        let ev = crossterm::event::Event::Key(*key);
        match tui_input::backend::crossterm::to_input_request(&ev) {
            Some(req) => {
                self.input.handle(req);
                true
            }
            None => false,
        }
    }

    /// Pasted text at the cursor, without line breaks or other control characters, and no
    /// further than [`FIELD_MAX`] characters (a pasted file must not freeze the dashboard).
    pub fn paste(&mut self, text: &str) {
        let room = FIELD_MAX.saturating_sub(self.value().chars().count());
        for c in text.chars().filter(|c| !c.is_control()).take(room) {
            self.input.handle(tui_input::InputRequest::InsertChar(c));
        }
    }
}

/// The send form: address, amount in coins (or `max`), fee rate in base units per byte; then
/// a confirmation of what will be signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendForm {
    pub fields: [Field; 3],
    pub focus: usize,
    /// The checked payment waiting for the user's yes (nothing is signed before).
    pub confirm: Option<Payment>,
    /// Waiting for the node's answer.
    pub pending: bool,
    /// Why the last submit failed.
    pub error: Option<String>,
}

impl Default for SendForm {
    fn default() -> Self {
        SendForm {
            fields: [
                Field::new("to address", ""),
                Field::new("amount (coins)", ""),
                Field::new(
                    "fee rate (per byte)",
                    &FeeRate::DEFAULT.per_byte_units().to_string(),
                ),
            ],
            focus: 0,
            confirm: None,
            pending: false,
            error: None,
        }
    }
}

/// A payment the form checked, shown for confirmation before it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub to: Address,
    pub amount: Amount,
    pub fee_rate: FeeRate,
    pub fee: Amount,
    /// The fee rate is far above the usual one, or the fee above the amount: it takes a
    /// second, explicit yes.
    pub absurd: Option<String>,
}

/// Fee rates above this many times the default one need an explicit yes.
pub const ABSURD_FEE_FACTOR: u64 = 100;

/// Why a fee is absurd, if it is: far above the usual rate, or more than the amount itself.
pub fn absurd_fee(amount: Amount, fee_rate: FeeRate, fee: Amount) -> Option<String> {
    let usual = FeeRate::DEFAULT;
    if fee_rate.times(usual) > ABSURD_FEE_FACTOR {
        return Some(format!(
            "the fee rate is {}× the usual {} per byte",
            fee_rate.times(usual),
            usual.per_byte_text()
        ));
    }
    (fee > amount).then(|| format!("the fee ({fee}) is more than the amount ({amount})"))
}

/// A checked send form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendCheck {
    pub to: Result<Address, String>,
    pub amount: Result<Amount, String>,
    pub fee_rate: Result<FeeRate, String>,
    /// The fee the payment would pay, once amount and fee rate are valid and covered.
    pub fee: Option<Amount>,
}

impl SendCheck {
    pub fn field(&self, i: usize) -> Result<(), &str> {
        let r = match i {
            0 => self.to.as_ref().map(|_| ()),
            1 => self.amount.as_ref().map(|_| ()),
            _ => self.fee_rate.as_ref().map(|_| ()),
        };
        r.map_err(String::as_str)
    }
}

impl SendForm {
    /// Validate every field: the address for this network, the amount and its fee against
    /// the coins that can be spent (the same coin selection the wallet makes), the fee rate
    /// against the minimum.
    pub fn check(
        &self,
        network: Network,
        spendable: Option<Amount>,
        coins: &[Amount],
    ) -> SendCheck {
        let addr = self.fields[0].value().trim();
        let to = if addr.is_empty() {
            Err("required".to_string())
        } else {
            Address::decode(addr, network).map_err(|e| e.to_string())
        };
        let amount_text = self.fields[1].value().trim();
        let rate_text = self.fields[2].value().trim();
        let amount = if amount_text.is_empty() {
            Err("required".to_string())
        } else if amount_text.eq_ignore_ascii_case("max") {
            // Everything the coins can pay after the fee of spending them.
            match rate_text
                .parse::<u64>()
                .ok()
                .and_then(|r| FeeRate::parse_per_byte(r).ok())
            {
                None => Err("max needs a valid fee rate".to_string()),
                Some(r) => crate::wallet::max_payment(coins, r)
                    .ok_or_else(|| "nothing to send after the fee".to_string()),
            }
        } else {
            match Amount::parse_coins(amount_text) {
                Err(e) => Err(e.to_string()),
                Ok(Amount::ZERO) => Err("amount must be above zero".to_string()),
                Ok(a) => match spendable {
                    None => Err("wallet balance not loaded yet".to_string()),
                    Some(s) if a > s => Err(format!("above the spendable balance of {s}")),
                    Some(_) => Ok(a),
                },
            }
        };
        let fee_rate = match rate_text.parse::<u64>() {
            _ if rate_text.is_empty() => Err("required".to_string()),
            Ok(r) => FeeRate::parse_per_byte(r).map_err(|e| e.to_string()),
            Err(_) => Err(format!("{rate_text:?} is not a whole number")),
        };
        // Amount plus fee must be covered, not the amount alone.
        let mut fee = None;
        let amount = match (amount, &fee_rate) {
            (Ok(a), Ok(rate)) => match crate::wallet::plan_payment(coins, a, *rate) {
                Ok(plan) => {
                    fee = Some(plan.fee);
                    Ok(a)
                }
                Err(crate::wallet::PlanError::TooLarge) => Err("too large".to_string()),
                Err(crate::wallet::PlanError::TooManyInputs(most)) => Err(format!(
                    "takes more coins than one transaction may spend: at most {most} in one \
                     payment"
                )),
                Err(crate::wallet::PlanError::Short(needed)) => Err(format!(
                    "with its fee that is {needed}, above the spendable {}",
                    spendable.unwrap_or_default()
                )),
            },
            (a, _) => a,
        };
        SendCheck {
            to,
            amount,
            fee_rate,
            fee,
        }
    }
}

/// The add-peer form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerForm {
    pub field: Field,
    pub error: Option<String>,
}

impl Default for PeerForm {
    fn default() -> Self {
        PeerForm {
            field: Field::new("HOST:PORT or NODEID@HOST:PORT", ""),
            error: None,
        }
    }
}

impl PeerForm {
    /// A typed character or Backspace edits the field (and clears the last error).
    fn edit(&mut self, key: &KeyEvent) {
        if self.field.edit(key) {
            self.error = None;
        }
    }

    pub fn check(&self) -> Result<PeerAddr, String> {
        let t = self.field.value().trim();
        if t.is_empty() {
            return Err("required".into());
        }
        t.parse::<PeerAddr>().map_err(|e| e.to_string())
    }
}

/// What a pane's selected row names.
enum Target {
    Block(BlockHash),
    Tx(Txid),
    Peer(PeerRef),
}

/// Which peer a peer view shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerRef {
    Connected(crate::node::NodeId),
    Banned(usize),
}

/// What covers the panes, innermost last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help,
    Send(SendForm),
    AddPeer(PeerForm),
    /// `/`: a height, hash, txid or address to open.
    Search(PeerForm),
    /// A connected peer (by id) or a ban (by position), drawn from the live view.
    Peer(PeerRef),
    /// A block and the selected transaction row.
    Block(BlockDetail, usize),
    /// A transaction and the selected row: an input (Enter opens the transaction it spends)
    /// or an output (Enter opens the transaction that spent it).
    Tx(TxDetail, usize),
    /// An address: balance, unspent coins, history and pending transactions.
    Address(AddressPage),
}

/// Something the event loop must do for the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Mine with this many threads paying this address (0: stop).
    SetMining {
        threads: usize,
        address: Option<Address>,
    },
    Send {
        to: Address,
        amount: Amount,
        fee_rate: FeeRate,
    },
    Connect(PeerAddr),
    /// Node id (hex) or address.
    Unban(String),
    NewAddress,
    LoadBlock(BlockHash),
    LoadTx(Txid),
    /// Regtest: paced mining on or off.
    SetPaced {
        on: bool,
        address: Address,
        threads: usize,
    },
    /// Mine one block now.
    MineOne {
        address: Address,
        threads: usize,
    },
    /// Look up a height, hash, txid or address and open what it names.
    Search(String),
    /// Read an address's view with these pages of its coins and history.
    LoadAddress {
        address: Address,
        coins_skip: usize,
        history_skip: usize,
    },
    /// Put text on the terminal's clipboard (OSC 52).
    Copy(String),
    /// Read `count` blocks of the active chain from height `top` down, for the Chain pane.
    LoadChain {
        top: u64,
        count: u64,
    },
}

/// A line for the status bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error: bool,
    /// When it was shown (unix seconds), so it fades after a while.
    pub at: u64,
}

/// Seconds a status message stays.
const MESSAGE_SECS: u64 = 8;

/// The whole dashboard state.
#[derive(Clone, Debug)]
pub struct App {
    pub network: Network,
    pub snapshot: Snapshot,
    pub p2p: P2pView,
    pub wallet: WalletView,
    /// Latest log lines, oldest first.
    pub logs: Vec<String>,
    pub focus: Pane,
    /// Selected row per pane (indexed like [`Pane::ALL`]).
    pub selected: [usize; 6],
    pub overlays: Vec<Overlay>,
    /// Threads to mine with when mining starts.
    pub threads: usize,
    pub max_threads: usize,
    /// Unix seconds, advanced by the tick (fixed in tests).
    pub now: u64,
    pub message: Option<Message>,
    /// Terminal size at the last draw (for mouse clicks).
    pub size: (u16, u16),
    pub keymap: Keymap,
    pub quit: bool,
    /// Chain pane: the selected block's height, or `None` to follow the tip.
    pub chain_sel: Option<u64>,
    /// Chain pane: the height of the top row once scrolled away from the tip.
    pub chain_top: Option<u64>,
    /// Chain pane: blocks read from the store for rows beyond the snapshot's recent ones
    /// (kept near the selection only, so browsing a long chain takes constant memory).
    pub chain_rows: BTreeMap<u64, BlockSummary>,
    /// Chain pane: table rows at the last draw (the size of a page).
    pub chain_room: Cell<usize>,
    /// Log pane: lines scrolled up from the newest (0 follows new lines).
    pub log_offset: usize,
    pub log_level: LogLevel,
    /// The focused pane fills the screen.
    pub zoomed: bool,
    /// Lines the help overlay is scrolled down by.
    pub help_scroll: usize,
    /// Regtest: mining is paced, a block this far apart on average (`None`: flat out).
    pub pace: Option<std::time::Duration>,
    /// Paced mining is on.
    pub paced_on: bool,
    /// The API of the node this dashboard is attached to (`None`: its own node).
    pub attached: Option<String>,
    /// The attached node does not answer: the figures on screen are its last.
    pub unreachable: bool,
}

/// Blocks read around the selection when the Chain pane scrolls past what it holds.
pub const CHAIN_PAGE: u64 = 128;
/// Blocks the Chain pane keeps on either side of the selection.
const CHAIN_KEEP: u64 = 1024;

/// Which log lines the Log pane shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogLevel {
    #[default]
    All,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn next(self) -> LogLevel {
        match self {
            LogLevel::All => LogLevel::Info,
            LogLevel::Info => LogLevel::Warn,
            LogLevel::Warn => LogLevel::Error,
            LogLevel::Error => LogLevel::All,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::All => "all",
            LogLevel::Info => "info and up",
            LogLevel::Warn => "warn and up",
            LogLevel::Error => "errors",
        }
    }
    /// Whether a formatted log line (`… LEVEL target: message`) is shown at this level.
    pub fn shows(self, line: &str) -> bool {
        if self == LogLevel::All {
            return true;
        }
        let level = [" ERROR ", " WARN ", " INFO ", " DEBUG ", " TRACE "]
            .iter()
            .position(|l| line.contains(l))
            .unwrap_or(2);
        match self {
            LogLevel::All => true,
            LogLevel::Info => level <= 2,
            LogLevel::Warn => level <= 1,
            LogLevel::Error => level == 0,
        }
    }
}

impl App {
    pub fn new(network: Network, keymap: Keymap, threads: usize, max_threads: usize) -> App {
        App {
            network,
            snapshot: Snapshot {
                network,
                ..Snapshot::default()
            },
            p2p: P2pView::default(),
            wallet: WalletView::default(),
            logs: Vec::new(),
            focus: Pane::Chain,
            selected: [0; 6],
            overlays: Vec::new(),
            threads: threads.clamp(1, max_threads.max(1)),
            max_threads: max_threads.max(1),
            now: 0,
            message: None,
            size: (0, 0),
            keymap,
            quit: false,
            chain_sel: None,
            chain_top: None,
            chain_rows: BTreeMap::new(),
            chain_room: Cell::new(10),
            log_offset: 0,
            log_level: LogLevel::All,
            zoomed: false,
            help_scroll: 0,
            pace: None,
            paced_on: false,
            attached: None,
            unreachable: false,
        }
    }

    // ---- the Chain pane: the whole chain, a page at a time ----

    /// Height of the selected block in the Chain pane.
    pub fn chain_selected(&self) -> u64 {
        self.chain_sel
            .unwrap_or(self.snapshot.height)
            .min(self.snapshot.height)
    }

    /// Height of the Chain pane's top row.
    pub fn chain_top_row(&self) -> u64 {
        self.chain_top
            .unwrap_or(self.snapshot.height)
            .min(self.snapshot.height)
    }

    /// The block at `height`, if the pane holds it.
    pub fn chain_row(&self, height: u64) -> Option<&BlockSummary> {
        self.snapshot
            .recent
            .iter()
            .find(|b| b.height == height)
            .or_else(|| self.chain_rows.get(&height))
    }

    /// Select the block at `to` (`None` or the tip: follow the tip), keep it in view, and ask
    /// for the blocks around it that the pane does not hold.
    fn chain_select(&mut self, to: Option<u64>) -> Option<Command> {
        let tip = self.snapshot.height;
        match to {
            Some(h) if h < tip => {
                let room = self.chain_room.get().max(1) as u64;
                let mut top = self.chain_top_row();
                if h > top {
                    top = h;
                } else if h + room <= top {
                    top = h + room - 1;
                }
                self.chain_sel = Some(h);
                self.chain_top = (top < tip).then_some(top);
            }
            _ => {
                self.chain_sel = None;
                self.chain_top = None;
            }
        }
        self.chain_missing()
    }

    /// A read of the blocks around the selection, if the pane lacks any row it shows.
    pub fn chain_missing(&self) -> Option<Command> {
        let tip = self.snapshot.height;
        let top = self.chain_top_row();
        let room = self.chain_room.get().max(1) as u64;
        let bottom = top.saturating_sub(room - 1);
        if (bottom..=top).all(|h| self.chain_row(h).is_some()) {
            return None;
        }
        let sel = self.chain_selected();
        let hi = sel.saturating_add(CHAIN_PAGE / 2).max(top).min(tip);
        let lo = hi.saturating_sub(CHAIN_PAGE - 1);
        Some(Command::LoadChain {
            top: hi,
            count: hi - lo + 1,
        })
    }

    /// What a search found: the view to open, or why there is none.
    pub fn on_search(&mut self, r: Result<crate::node::SearchHit, String>) -> Option<Command> {
        use crate::node::SearchHit;
        match r {
            Ok(SearchHit::Block(h)) => Some(Command::LoadBlock(h)),
            Ok(SearchHit::Tx(t)) => Some(Command::LoadTx(t)),
            Ok(SearchHit::Address(a)) => Some(Command::LoadAddress {
                address: a,
                coins_skip: 0,
                history_skip: 0,
            }),
            Ok(SearchHit::Nothing(why)) | Err(why) => {
                self.error(why);
                None
            }
        }
    }

    /// Blocks read for the Chain pane; only those near the selection are kept.
    pub fn on_chain_rows(&mut self, rows: Vec<BlockSummary>) {
        for b in rows {
            self.chain_rows.insert(b.height, b);
        }
        let sel = self.chain_selected();
        let (lo, hi) = (
            sel.saturating_sub(CHAIN_KEEP),
            sel.saturating_add(CHAIN_KEEP),
        );
        self.chain_rows.retain(|h, _| (lo..=hi).contains(h));
    }

    /// After a reorganisation the blocks read earlier may no longer be the active ones.
    pub fn on_reorg(&mut self) {
        self.chain_rows.clear();
    }

    /// Log lines at the chosen level, oldest first.
    pub fn log_lines(&self) -> Vec<&String> {
        self.logs
            .iter()
            .filter(|l| self.log_level.shows(l))
            .collect()
    }

    pub fn mining(&self) -> bool {
        self.snapshot.mining_threads > 0 || self.paced_on
    }

    pub fn selected(&self, pane: Pane) -> usize {
        self.selected[pane.index()]
    }

    /// Rows the pane's selection moves over.
    pub fn rows(&self, pane: Pane) -> usize {
        match pane {
            Pane::Chain => self.snapshot.recent.len(),
            Pane::Mempool => self.snapshot.mempool_top.len(),
            Pane::Peers => self.p2p.peers.len() + self.p2p.bans.len(),
            Pane::Wallet => self.wallet.history.len(),
            Pane::Hashrate | Pane::Log => 0,
        }
    }

    /// Keep every selection inside its list after the data changed.
    pub fn clamp_selections(&mut self) {
        for p in Pane::ALL {
            let n = self.rows(p);
            let s = &mut self.selected[p.index()];
            *s = (*s).min(n.saturating_sub(1));
        }
        for o in &mut self.overlays {
            if let Overlay::Block(b, sel) = o {
                *sel = (*sel).min(b.txs.len().saturating_sub(1));
            }
        }
    }

    pub fn set_snapshot(&mut self, s: Snapshot) {
        self.snapshot = s;
        if self.chain_sel.is_some_and(|h| h >= self.snapshot.height) {
            self.chain_sel = None;
            self.chain_top = None;
        }
        self.clamp_selections();
    }

    pub fn set_p2p(&mut self, v: P2pView) {
        self.p2p = v;
        self.clamp_selections();
    }

    pub fn set_wallet(&mut self, w: WalletView) {
        self.wallet = w;
        self.clamp_selections();
    }

    pub fn tick(&mut self, now: u64) {
        self.now = now;
        if self
            .message
            .as_ref()
            .is_some_and(|m| now.saturating_sub(m.at) >= MESSAGE_SECS)
        {
            self.message = None;
        }
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
            at: self.now,
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
            at: self.now,
        });
    }

    /// A key press: forms take typed text; everything else goes through the key table.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<Command> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.on_action(Action::Quit);
        }
        if matches!(
            self.overlays.last(),
            Some(Overlay::Send(_) | Overlay::AddPeer(_) | Overlay::Search(_))
        ) {
            return self.on_form_key(key);
        }
        let action = self.keymap.action(Key::from(key))?;
        self.on_action(action)
    }

    /// Pasted text goes to the focused field of the form on top, if any.
    pub fn on_paste(&mut self, text: &str) {
        match self.overlays.last_mut() {
            Some(Overlay::Send(f)) if f.confirm.is_none() && !f.pending => {
                f.fields[f.focus].paste(text);
                f.error = None;
            }
            Some(Overlay::AddPeer(f) | Overlay::Search(f)) => {
                f.field.paste(text);
                f.error = None;
            }
            _ => {}
        }
    }

    /// Spendable coins for the send form.
    pub fn spendable(&self) -> Option<Amount> {
        self.wallet.balance.map(|b| b.confirmed)
    }

    fn on_form_key(&mut self, key: KeyEvent) -> Option<Command> {
        let network = self.network;
        let spendable = self.spendable();
        let coins = self.wallet.coins.clone();
        let top = self.overlays.last_mut()?;
        match top {
            Overlay::Send(form) => {
                if form.pending && key.code != KeyCode::Esc {
                    return None;
                }
                // The confirmation step: y or Enter signs and sends (Y for an absurd fee),
                // anything else goes back to the fields.
                if let Some(p) = form.confirm.take() {
                    let yes = match key.code {
                        KeyCode::Char('Y') => true,
                        KeyCode::Char('y') | KeyCode::Enter => p.absurd.is_none(),
                        _ => false,
                    };
                    if yes {
                        form.pending = true;
                        form.error = None;
                        return Some(Command::Send {
                            to: p.to,
                            amount: p.amount,
                            fee_rate: p.fee_rate,
                        });
                    }
                    if key.code != KeyCode::Esc {
                        form.error = Some("not sent; edit the payment or Esc".into());
                    }
                    return None;
                }
                match key.code {
                    KeyCode::Esc => {
                        self.overlays.pop();
                    }
                    KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % 3,
                    KeyCode::BackTab | KeyCode::Up => form.focus = (form.focus + 2) % 3,
                    KeyCode::Enter => {
                        let c = form.check(network, spendable, &coins);
                        match (c.to, c.amount, c.fee_rate, c.fee) {
                            (Ok(to), Ok(amount), Ok(fee_rate), Some(fee)) => {
                                form.error = None;
                                form.confirm = Some(Payment {
                                    to,
                                    amount,
                                    fee_rate,
                                    fee,
                                    absurd: absurd_fee(amount, fee_rate, fee),
                                });
                            }
                            _ => {
                                form.error =
                                    Some("fix the fields marked ✗; nothing was sent".into());
                                // Jump to the first bad field.
                                let c = form.check(network, spendable, &coins);
                                if let Some(i) = (0..3).find(|i| c.field(*i).is_err()) {
                                    form.focus = i;
                                }
                            }
                        }
                    }
                    _ => {
                        if form.fields[form.focus].edit(&key) {
                            form.error = None;
                        }
                    }
                }
            }
            Overlay::Search(form) => match key.code {
                KeyCode::Esc => {
                    self.overlays.pop();
                }
                KeyCode::Enter => {
                    let text = form.field.value().trim().to_string();
                    if text.is_empty() {
                        form.error = Some("type something to look for".into());
                    } else {
                        self.overlays.pop();
                        return Some(Command::Search(text));
                    }
                }
                _ => form.edit(&key),
            },
            Overlay::AddPeer(form) => match key.code {
                KeyCode::Esc => {
                    self.overlays.pop();
                }
                KeyCode::Enter => match form.check() {
                    Ok(addr) => {
                        self.overlays.pop();
                        self.info(format!("connecting to {addr}…"));
                        return Some(Command::Connect(addr));
                    }
                    Err(_) => form.error = Some("fix the address; not connecting".into()),
                },
                _ => form.edit(&key),
            },
            _ => {}
        }
        None
    }

    fn move_selection(&mut self, down: bool) {
        if let Some(Overlay::Block(b, sel)) = self.overlays.last_mut() {
            *sel = if down {
                (*sel + 1).min(b.txs.len().saturating_sub(1))
            } else {
                sel.saturating_sub(1)
            };
            return;
        }
        if let Some(Overlay::Tx(t, sel)) = self.overlays.last_mut() {
            *sel = if down {
                (*sel + 1).min(t.rows().saturating_sub(1))
            } else {
                sel.saturating_sub(1)
            };
            return;
        }
        let n = self.rows(self.focus);
        let s = &mut self.selected[self.focus.index()];
        *s = if down {
            (*s + 1).min(n.saturating_sub(1))
        } else {
            s.saturating_sub(1)
        };
    }

    /// What an action does here and now.
    pub fn on_action(&mut self, action: Action) -> Option<Command> {
        // Help and details overlays take navigation; anything else closes help first.
        match action {
            Action::Quit => {
                self.quit = true;
                return Some(Command::Quit);
            }
            Action::Back => {
                self.overlays.pop();
                return None;
            }
            Action::Help => {
                if self.overlays.last() == Some(&Overlay::Help) {
                    self.overlays.pop();
                } else {
                    self.help_scroll = 0;
                    self.overlays.push(Overlay::Help);
                }
                return None;
            }
            // The help overlay scrolls (it is longer than small screens).
            a if a.scrolls() && self.overlays.last() == Some(&Overlay::Help) => {
                self.help_scroll = match action {
                    Action::Up => self.help_scroll.saturating_sub(1),
                    Action::Down => self.help_scroll + 1,
                    Action::PageUp => self.help_scroll.saturating_sub(10),
                    Action::PageDown => self.help_scroll + 10,
                    Action::Top => 0,
                    _ => usize::MAX / 2,
                };
                return None;
            }
            _ => {}
        }
        if self.overlays.last() == Some(&Overlay::Help) {
            self.overlays.pop();
        }
        let in_details = matches!(
            self.overlays.last(),
            Some(Overlay::Block(..) | Overlay::Tx(..) | Overlay::Address(..))
        );
        let scroll = action.scrolls();
        if let Some(Overlay::Address(page)) = self.overlays.last_mut() {
            match action {
                a if a.scrolls() => return address_scroll(page, a),
                Action::FocusNext | Action::Right | Action::FocusPrev | Action::Left => {
                    let steps = if matches!(action, Action::FocusNext | Action::Right) {
                        1
                    } else {
                        2
                    };
                    for _ in 0..steps {
                        page.list = page.list.next();
                    }
                    page.sel = page.skip();
                    return None;
                }
                _ => {}
            }
        }
        if scroll && !in_details && self.focus == Pane::Chain {
            let sel = self.chain_selected();
            let page = self.chain_room.get().max(1) as u64;
            let to = match action {
                Action::Up => Some(sel.saturating_add(1)),
                Action::Down => Some(sel.saturating_sub(1)),
                Action::PageUp => Some(sel.saturating_add(page)),
                Action::PageDown => Some(sel.saturating_sub(page)),
                Action::Top => None,
                _ => Some(0),
            };
            return self.chain_select(to);
        }
        if scroll && !in_details && self.focus == Pane::Log {
            let n = self.log_lines().len();
            let page = 10;
            self.log_offset = match action {
                Action::Up => self.log_offset + 1,
                Action::Down => self.log_offset.saturating_sub(1),
                Action::PageUp => self.log_offset + page,
                Action::PageDown => self.log_offset.saturating_sub(page),
                Action::Top => n,
                _ => 0,
            }
            .min(n.saturating_sub(1));
            return None;
        }
        match action {
            Action::Quit | Action::Back | Action::Help => None,
            Action::Up => {
                self.move_selection(false);
                None
            }
            Action::Down => {
                self.move_selection(true);
                None
            }
            Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => {
                let steps = match action {
                    Action::PageUp | Action::PageDown => 10,
                    _ => usize::MAX / 2,
                };
                let down = matches!(action, Action::PageDown | Action::Bottom);
                for _ in 0..steps.min(self.rows(self.focus).max(1)) {
                    self.move_selection(down);
                }
                None
            }
            Action::Zoom => {
                self.zoomed = !self.zoomed;
                None
            }
            Action::LogLevel => {
                self.log_level = self.log_level.next();
                self.log_offset = 0;
                self.info(format!("Log shows {}", self.log_level.name()));
                None
            }
            Action::FocusNext | Action::Right if !in_details => {
                self.focus = self.focus.next();
                None
            }
            Action::FocusPrev | Action::Left if !in_details => {
                self.focus = self.focus.prev();
                None
            }
            // In a block's view: ← the previous block, → the next one on the active chain.
            Action::Left | Action::Right => match self.overlays.last() {
                Some(Overlay::Block(b, _)) => {
                    let to = if action == Action::Left {
                        (b.height > 0).then_some(b.prev)
                    } else {
                        b.next
                    };
                    let to = to?;
                    self.overlays.pop();
                    Some(Command::LoadBlock(to))
                }
                _ => None,
            },
            Action::FocusNext | Action::FocusPrev => None,
            Action::Details => self.details(),
            Action::ToggleMining if self.pace.is_some() => {
                let Some(address) = self.wallet.address else {
                    self.error("no wallet address to mine to yet");
                    return None;
                };
                self.paced_on = !self.paced_on;
                self.info(if self.paced_on {
                    "mining one block at a time (b mines one now)"
                } else {
                    "stopping mining"
                });
                Some(Command::SetPaced {
                    on: self.paced_on,
                    address,
                    threads: self.threads,
                })
            }
            Action::MineOne => match self.wallet.address {
                Some(address) => {
                    self.info("mining one block");
                    Some(Command::MineOne {
                        address,
                        threads: self.threads,
                    })
                }
                None => {
                    self.error("no wallet address to mine to yet");
                    None
                }
            },
            Action::ToggleMining => {
                if self.mining() {
                    self.info("stopping mining");
                    Some(Command::SetMining {
                        threads: 0,
                        address: None,
                    })
                } else {
                    match self.wallet.address {
                        Some(a) => {
                            self.info(format!("mining with {} threads", self.threads));
                            Some(Command::SetMining {
                                threads: self.threads,
                                address: Some(a),
                            })
                        }
                        None => {
                            self.error("no wallet address to mine to yet");
                            None
                        }
                    }
                }
            }
            Action::ThreadsUp | Action::ThreadsDown => {
                let before = self.threads;
                self.threads = if action == Action::ThreadsUp {
                    (self.threads + 1).min(self.max_threads)
                } else {
                    self.threads.saturating_sub(1).max(1)
                };
                if self.threads == before {
                    self.info(format!(
                        "mining threads stay at {} (1 to {})",
                        self.threads, self.max_threads
                    ));
                    return None;
                }
                self.info(format!("mining threads: {}", self.threads));
                if self.mining() {
                    Some(Command::SetMining {
                        threads: self.threads,
                        address: self.wallet.address,
                    })
                } else {
                    None
                }
            }
            Action::Send => {
                self.overlays.clear();
                self.overlays.push(Overlay::Send(SendForm::default()));
                None
            }
            Action::Search => {
                self.overlays.retain(|o| !matches!(o, Overlay::Help));
                self.overlays.push(Overlay::Search(PeerForm {
                    field: Field::new(
                        "height, block hash, txid or address (a hex prefix will do)",
                        "",
                    ),
                    error: None,
                }));
                None
            }
            Action::AddPeer => {
                self.overlays.clear();
                self.overlays.push(Overlay::AddPeer(PeerForm::default()));
                None
            }
            Action::NewAddress => Some(Command::NewAddress),
            Action::Copy => {
                let Some(text) = self.copy_text() else {
                    self.error("nothing selected to copy");
                    return None;
                };
                self.info(format!("copied {} (OSC 52)", short_text(&text)));
                Some(Command::Copy(text))
            }
            Action::Unban => {
                let sel = self.selected(Pane::Peers);
                let peers = self.p2p.peers.len();
                if self.focus != Pane::Peers || sel < peers || self.p2p.bans.is_empty() {
                    self.error("select a banned peer in the Peers pane to unban it");
                    return None;
                }
                let ban = self.p2p.bans.get(sel - peers)?;
                let who = match (&ban.id, &ban.addr) {
                    (Some(id), _) => id.to_string(),
                    (None, Some(a)) => a.to_string(),
                    (None, None) => return None,
                };
                self.info(format!("unbanning {}", short_text(&who)));
                Some(Command::Unban(who))
            }
        }
    }

    /// What `y` copies: the hash, txid or address the selection names.
    pub fn copy_text(&self) -> Option<String> {
        let net = self.network;
        match self.overlays.last() {
            Some(Overlay::Block(b, _)) => return Some(b.hash.to_string()),
            Some(Overlay::Tx(t, sel)) => {
                let ins = t.input_rows();
                return Some(match sel.checked_sub(ins) {
                    None => t.inputs.get(*sel)?.prevout.txid.to_string(),
                    Some(n) => t.outputs.get(n)?.address.encode(net),
                });
            }
            Some(Overlay::Address(page)) => return Some(page.view.address.encode(net)),
            Some(Overlay::Peer(PeerRef::Connected(id))) => return Some(id.to_string()),
            Some(_) => return None,
            None => {}
        }
        Some(match self.pane_target() {
            Some(Target::Block(h)) => h.to_string(),
            Some(Target::Tx(t)) => t.to_string(),
            Some(Target::Peer(PeerRef::Connected(id))) => id.to_string(),
            // The wallet's receive address where nothing else is selected.
            Some(Target::Peer(PeerRef::Banned(_))) | None => self.wallet.address?.encode(net),
        })
    }

    /// What the focused pane's selection names.
    fn pane_target(&self) -> Option<Target> {
        let sel = self.selected(self.focus);
        match self.focus {
            Pane::Chain => self
                .chain_row(self.chain_selected())
                .map(|b| Target::Block(b.hash)),
            Pane::Mempool => self
                .snapshot
                .mempool_top
                .get(sel)
                .map(|t| Target::Tx(t.txid)),
            Pane::Wallet => self.wallet.history.get(sel).map(|t| Target::Tx(t.txid)),
            Pane::Peers => match self.p2p.peers.get(sel) {
                Some(p) => Some(Target::Peer(PeerRef::Connected(p.id))),
                None => {
                    let ban = sel.checked_sub(self.p2p.peers.len())?;
                    (ban < self.p2p.bans.len()).then_some(Target::Peer(PeerRef::Banned(ban)))
                }
            },
            Pane::Hashrate | Pane::Log => None,
        }
    }

    fn details(&mut self) -> Option<Command> {
        match self.overlays.last() {
            Some(Overlay::Block(b, sel)) => {
                return b.txs.get(*sel).map(|t| Command::LoadTx(t.txid));
            }
            // An input: the transaction whose output it spends; an output: the one that
            // spent it.
            Some(Overlay::Tx(t, sel)) => {
                let ins = t.input_rows();
                if *sel < ins {
                    return t.inputs.get(*sel).map(|i| Command::LoadTx(i.prevout.txid));
                }
                let n = *sel - ins;
                let why = match t.outputs.get(n)?.spend {
                    Spend::Mempool(s) | Spend::Confirmed(s, _) => return Some(Command::LoadTx(s)),
                    Spend::Unspent => format!("output {n} is unspent"),
                    Spend::Unknown => format!("who spent output {n} is not known here"),
                };
                self.info(why);
                return None;
            }
            Some(Overlay::Address(page)) => return page.selected_txid().map(Command::LoadTx),
            Some(_) => return None,
            None => {}
        }
        match self.pane_target()? {
            Target::Block(h) => Some(Command::LoadBlock(h)),
            Target::Tx(t) => Some(Command::LoadTx(t)),
            Target::Peer(r) => {
                self.overlays.push(Overlay::Peer(r));
                None
            }
        }
    }

    /// A mouse click at a cell: focus the pane under it.
    pub fn on_click(&mut self, column: u16, row: u16) {
        if !self.overlays.is_empty() {
            return;
        }
        let area = Rect::new(0, 0, self.size.0, self.size.1);
        let layout = super::layout_zoomed(area, self.focus, self.zoomed);
        if let Some((p, _)) = layout
            .panes
            .iter()
            .find(|(_, r)| r.contains(Position::new(column, row)))
        {
            self.focus = *p;
        }
    }

    // ---- answers from the event loop ----

    pub fn on_block(&mut self, r: Result<BlockDetail, String>) {
        match r {
            Ok(b) => {
                self.overlays.retain(|o| !matches!(o, Overlay::Help));
                self.overlays.push(Overlay::Block(b, 0));
            }
            Err(e) => self.error(e),
        }
    }

    /// A read of the block, transaction or address view on top, to follow a new tip or mempool
    /// (confirmations, spends, balances); its answer replaces the view in place.
    pub fn refresh_command(&self) -> Option<Command> {
        match self.overlays.last()? {
            Overlay::Block(b, _) => Some(Command::LoadBlock(b.hash)),
            Overlay::Tx(t, _) => Some(Command::LoadTx(t.txid)),
            Overlay::Address(p) => Some(Command::LoadAddress {
                address: p.view.address,
                coins_skip: p.coins_skip,
                history_skip: p.history_skip,
            }),
            _ => None,
        }
    }

    /// A view read again for [`App::refresh_command`]: it replaces the view on top, selection
    /// kept, if that is still the same block, transaction or address page (the user may have
    /// moved on while it was read; then it is dropped).
    pub fn on_reloaded(&mut self, r: Reloaded) {
        match (self.overlays.last_mut(), r) {
            (Some(Overlay::Block(old, sel)), Reloaded::Block(b)) if old.hash == b.hash => {
                *sel = (*sel).min(b.txs.len().saturating_sub(1));
                *old = b;
            }
            (Some(Overlay::Tx(old, sel)), Reloaded::Tx(t)) if old.txid == t.txid => {
                *sel = (*sel).min(t.rows().saturating_sub(1));
                *old = t;
            }
            (Some(Overlay::Address(p)), Reloaded::Address(v, coins_skip, history_skip))
                if p.view.address == v.address
                    && (p.coins_skip, p.history_skip) == (coins_skip, history_skip) =>
            {
                p.view = v;
                p.sel = p.sel.min(p.total().saturating_sub(1));
            }
            _ => {}
        }
    }

    /// An address view read: a new view, or another page of the one on top.
    pub fn on_address(
        &mut self,
        r: Result<AddressView, String>,
        coins_skip: usize,
        history_skip: usize,
    ) {
        let view = match r {
            Ok(v) => v,
            Err(e) => return self.error(e),
        };
        if let Some(Overlay::Address(page)) = self.overlays.last_mut()
            && page.view.address == view.address
        {
            page.view = view;
            page.coins_skip = coins_skip;
            page.history_skip = history_skip;
            page.sel = page.sel.min(page.total().saturating_sub(1));
            return;
        }
        self.overlays.retain(|o| !matches!(o, Overlay::Help));
        let list = if view.coin_count == 0 && view.history_count > 0 {
            AddrList::History
        } else {
            AddrList::Coins
        };
        self.overlays.push(Overlay::Address(AddressPage {
            view,
            list,
            coins_skip,
            history_skip,
            sel: 0,
        }));
    }

    pub fn on_tx(&mut self, r: Result<TxDetail, String>) {
        match r {
            Ok(t) => {
                self.overlays.retain(|o| !matches!(o, Overlay::Help));
                self.overlays.push(Overlay::Tx(t, 0));
            }
            Err(e) => self.error(e),
        }
    }

    pub fn on_sent(&mut self, r: Result<Txid, String>) {
        let pos = self
            .overlays
            .iter()
            .rposition(|o| matches!(o, Overlay::Send(_)));
        match r {
            Ok(txid) => {
                if let Some(i) = pos {
                    self.overlays.remove(i);
                }
                self.info(format!("sent: transaction {}", txid.short()));
            }
            Err(e) => match pos.and_then(|i| self.overlays.get_mut(i)) {
                Some(Overlay::Send(form)) => {
                    form.pending = false;
                    form.error = Some(e);
                }
                _ => self.error(e),
            },
        }
    }

    pub fn on_new_address(&mut self, r: Result<Address, String>) {
        match r {
            Ok(a) => {
                self.wallet.address = Some(a);
                self.info(format!("new receive address {}", a.encode(self.network)));
            }
            Err(e) => self.error(e),
        }
    }

    /// The result of a command that only reports.
    pub fn on_done(&mut self, r: Result<String, String>) {
        match r {
            Ok(m) => self.info(m),
            Err(e) => self.error(e),
        }
    }
}

/// Move an address view's selection; a read of the page it lands on when the view lacks it.
fn address_scroll(page: &mut AddressPage, action: Action) -> Option<Command> {
    let last = page.total().saturating_sub(1);
    let step = ADDRESS_PAGE / 5;
    page.sel = match action {
        Action::Up => page.sel.saturating_sub(1),
        Action::Down => (page.sel + 1).min(last),
        Action::PageUp => page.sel.saturating_sub(step),
        Action::PageDown => (page.sel + step).min(last),
        Action::Top => 0,
        _ => last,
    };
    let want = page.sel - page.sel % ADDRESS_PAGE;
    if page.list == AddrList::Pending || want == page.skip() {
        return None;
    }
    let (mut coins_skip, mut history_skip) = (page.coins_skip, page.history_skip);
    if page.list == AddrList::Coins {
        coins_skip = want;
    } else {
        history_skip = want;
    }
    Some(Command::LoadAddress {
        address: page.view.address,
        coins_skip,
        history_skip,
    })
}

/// Whether the wallet's figures may differ between two snapshots: the tip or the mempool
/// changed (a new snapshot comes every second even when nothing else did).
pub fn wallet_stale(old: &Snapshot, new: &Snapshot) -> bool {
    old.tip != new.tip
        || old.height != new.height
        || old.mempool_count != new.mempool_count
        || old.mempool_bytes != new.mempool_bytes
}

/// First 8 and last 4 characters of long text.
pub fn short_text(s: &str) -> String {
    if s.chars().count() <= 16 {
        return s.to_string();
    }
    let head: String = s.chars().take(8).collect();
    let tail: String = s
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}…{tail}")
}

// ---- figures derived from a snapshot (integers) ----

/// Work of a block with these compact bits.
pub fn block_work(bits: u32) -> Option<U256> {
    CompactTarget(bits).to_target().ok().map(|t| t.work().0)
}

/// Expected seconds to the next block: the next block's work over the network hashrate
/// estimated from recent blocks; `None` with too little history.
pub fn next_block_secs(s: &Snapshot) -> Option<u64> {
    let bits = CompactTarget(s.next_bits?);
    s.rates?.secs_for(bits)
}

/// Expected seconds to the next block at the local hashrate alone (mining with no estimate).
pub fn next_block_secs_local(s: &Snapshot) -> Option<u64> {
    let work = block_work(s.next_bits?)?;
    if s.hashrate == 0 {
        return None;
    }
    Some(u64::try_from(work / U256::from(s.hashrate)).unwrap_or(u64::MAX))
}
