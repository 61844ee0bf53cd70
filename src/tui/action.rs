//! The flat list of things a key can ask for. Key bindings (see [`super::keymap`]) map keys to
//! these by name, and the help overlay lists them in this order.

use std::fmt;
use std::str::FromStr;

/// A user intent, independent of the key that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    ToggleMining,
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
    Details,
    Back,
    Help,
}

impl Action {
    /// Every action, in the order the help overlay lists them.
    pub const ALL: [Action; 17] = [
        Action::ToggleMining,
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
        Action::Details,
        Action::Back,
        Action::Help,
        Action::Quit,
    ];

    /// The name used in keymap files.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ToggleMining => "toggle_mining",
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
            Action::Details => "details",
            Action::Back => "back",
            Action::Help => "help",
        }
    }

    /// What it does, for the help overlay.
    pub fn description(self) -> &'static str {
        match self {
            Action::Quit => "quit (stops the node)",
            Action::ToggleMining => "start / stop mining",
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
            Action::Details => "details: block → its txs → one tx",
            Action::Back => "back / close",
            Action::Help => "this help",
        }
    }

    /// A one-word label for the status bar.
    pub fn short(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ToggleMining => "mine",
            Action::ThreadsUp | Action::ThreadsDown => "threads",
            Action::Send => "send",
            Action::AddPeer => "add peer",
            Action::Unban => "unban",
            Action::NewAddress => "new address",
            Action::FocusNext | Action::FocusPrev | Action::Left | Action::Right => "focus",
            Action::Up | Action::Down => "select",
            Action::Details => "details",
            Action::Back => "back",
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
