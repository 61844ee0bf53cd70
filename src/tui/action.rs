//! The flat list of things a key can ask for in the dashboard. Key bindings
//! ([`crate::term::keymap`], `assets/keymap.toml`) map keys to these by name; names, help text
//! and status-bar words are derived here, and the help overlay lists actions in this order.

use crate::term::keymap::Bindable;
use strum::{EnumIter, EnumMessage, IntoEnumIterator, IntoStaticStr};

/// A user intent, independent of the key that produced it. `message` is the status-bar word,
/// `detailed_message` the help line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, IntoStaticStr, EnumMessage)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    #[strum(
        message = "mine",
        detailed_message = "start / stop mining (regtest: paced)"
    )]
    ToggleMining,
    #[strum(message = "one block", detailed_message = "mine one block now")]
    MineOne,
    #[strum(message = "threads", detailed_message = "one more mining thread")]
    ThreadsUp,
    #[strum(message = "threads", detailed_message = "one mining thread less")]
    ThreadsDown,
    #[strum(message = "send", detailed_message = "send coins (form)")]
    Send,
    #[strum(message = "add peer", detailed_message = "connect to a peer (form)")]
    AddPeer,
    #[strum(message = "unban", detailed_message = "unban the selected banned peer")]
    Unban,
    #[strum(message = "new address", detailed_message = "new receive address")]
    NewAddress,
    #[strum(message = "focus", detailed_message = "focus the next pane")]
    FocusNext,
    #[strum(message = "focus", detailed_message = "focus the previous pane")]
    FocusPrev,
    #[strum(message = "focus", detailed_message = "focus the pane before")]
    Left,
    #[strum(message = "focus", detailed_message = "focus the pane after")]
    Right,
    #[strum(message = "select", detailed_message = "select the row above")]
    Up,
    #[strum(message = "select", detailed_message = "select the row below")]
    Down,
    #[strum(
        message = "scroll",
        detailed_message = "a page up (Chain: newer blocks)"
    )]
    PageUp,
    #[strum(
        message = "scroll",
        detailed_message = "a page down (Chain: older blocks)"
    )]
    PageDown,
    #[strum(
        message = "scroll",
        detailed_message = "to the top (Chain: the tip, and follow it)"
    )]
    Top,
    #[strum(
        message = "scroll",
        detailed_message = "to the bottom (Chain: genesis)"
    )]
    Bottom,
    #[strum(
        message = "details",
        detailed_message = "details: block → its txs → one tx"
    )]
    Details,
    #[strum(
        message = "search",
        detailed_message = "find a height, block, txid or address"
    )]
    Search,
    #[strum(
        message = "copy",
        detailed_message = "copy the selected hash, txid or address (OSC 52)"
    )]
    Copy,
    #[strum(message = "back", detailed_message = "back / close")]
    Back,
    #[strum(
        message = "zoom",
        detailed_message = "zoom the focused pane (and back)"
    )]
    Zoom,
    #[strum(
        message = "log level",
        detailed_message = "Log: all lines / info / warn / errors"
    )]
    LogLevel,
    #[strum(message = "help", detailed_message = "this help")]
    Help,
    #[strum(message = "quit", detailed_message = "quit (stops the node)")]
    Quit,
}

impl Action {
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
}

impl Bindable for Action {
    const DEFAULT_TOML: &'static str = include_str!("../../assets/keymap.toml");
    fn all() -> Vec<Action> {
        Action::iter().collect()
    }
    fn name(self) -> String {
        <&str>::from(self).to_string()
    }
    fn description(self) -> &'static str {
        self.get_detailed_message().unwrap_or_default()
    }
    fn short(self) -> &'static str {
        self.get_message().unwrap_or_default()
    }
}
