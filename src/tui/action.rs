//! The flat list of things a key can ask for. Key bindings (see [`super::keymap`]) map keys to
//! these by name, and the help overlay lists them in this order.

use std::fmt;
use std::str::FromStr;

/// A user intent, independent of the key that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    ToggleMining,
    MineOne,
    ThreadsUp,
    ThreadsDown,
    Send,
    AddPeer,
    Unban,
    NewAddress,
    FocusNext,
    FocusPrev,
    Left,
    Right,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Details,
    Search,
    Copy,
    Back,
    Zoom,
    LogLevel,
    Help,
}

impl Action {
    /// Every action, in the order the help overlay lists them.
    pub const ALL: [Action; 26] = [
        Action::ToggleMining,
        Action::MineOne,
        Action::ThreadsUp,
        Action::ThreadsDown,
        Action::Send,
        Action::AddPeer,
        Action::Unban,
        Action::NewAddress,
        Action::FocusNext,
        Action::FocusPrev,
        Action::Left,
        Action::Right,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Details,
        Action::Search,
        Action::Copy,
        Action::Back,
        Action::Zoom,
        Action::LogLevel,
        Action::Help,
        Action::Quit,
    ];

    /// Whether it moves a selection or scrolls (up/down, a page, top/bottom).
    pub fn scrolls(self) -> bool {
        matches!(
            self,
            Action::Up
                | Action::Down
                | Action::PageUp
                | Action::PageDown
                | Action::Top
                | Action::Bottom
        )
    }

    /// The name used in keymap files.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ToggleMining => "toggle_mining",
            Action::MineOne => "mine_one",
            Action::ThreadsUp => "threads_up",
            Action::ThreadsDown => "threads_down",
            Action::Send => "send",
            Action::AddPeer => "add_peer",
            Action::Unban => "unban",
            Action::NewAddress => "new_address",
            Action::FocusNext => "focus_next",
            Action::FocusPrev => "focus_prev",
            Action::Left => "left",
            Action::Right => "right",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Details => "details",
            Action::Search => "search",
            Action::Copy => "copy",
            Action::Back => "back",
            Action::Zoom => "zoom",
            Action::LogLevel => "log_level",
            Action::Help => "help",
        }
    }

    /// What it does, for the help overlay.
    pub fn description(self) -> &'static str {
        match self {
            Action::Quit => "quit (stops the node)",
            Action::ToggleMining => "start / stop mining (regtest: paced)",
            Action::MineOne => "mine one block now",
            Action::ThreadsUp => "one more mining thread",
            Action::ThreadsDown => "one mining thread less",
            Action::Send => "send coins (form)",
            Action::AddPeer => "connect to a peer (form)",
            Action::Unban => "unban the selected banned peer",
            Action::NewAddress => "new receive address",
            Action::FocusNext => "focus the next pane",
            Action::FocusPrev => "focus the previous pane",
            Action::Left => "focus the pane before",
            Action::Right => "focus the pane after",
            Action::Up => "select the row above",
            Action::Down => "select the row below",
            Action::PageUp => "a page up (Chain: newer blocks)",
            Action::PageDown => "a page down (Chain: older blocks)",
            Action::Top => "to the top (Chain: the tip, and follow it)",
            Action::Bottom => "to the bottom (Chain: genesis)",
            Action::Details => "details: block → its txs → one tx",
            Action::Search => "find a height, block, txid or address",
            Action::Copy => "copy the selected hash, txid or address (OSC 52)",
            Action::Back => "back / close",
            Action::Zoom => "zoom the focused pane (and back)",
            Action::LogLevel => "Log: all lines / info / warn / errors",
            Action::Help => "this help",
        }
    }

    /// A one-word label for the status bar.
    pub fn short(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ToggleMining => "mine",
            Action::MineOne => "one block",
            Action::ThreadsUp | Action::ThreadsDown => "threads",
            Action::Send => "send",
            Action::AddPeer => "add peer",
            Action::Unban => "unban",
            Action::NewAddress => "new address",
            Action::FocusNext | Action::FocusPrev | Action::Left | Action::Right => "focus",
            Action::Up | Action::Down => "select",
            Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => "scroll",
            Action::Details => "details",
            Action::Search => "search",
            Action::Copy => "copy",
            Action::Back => "back",
            Action::Zoom => "zoom",
            Action::LogLevel => "log level",
            Action::Help => "help",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                format!("unknown action {s:?} (known: {})", names.join(", "))
            })
    }
}
