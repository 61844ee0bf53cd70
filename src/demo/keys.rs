//! The demo dashboard's actions: [`DemoAction`] is what a key can ask for, and [`DemoKeymap`]
//! maps keys to them with the shared [`crate::term::keymap::Keymap`], from
//! `assets/demo/keymap.toml`. Names, help text and status-bar words are derived on the enum.

use crate::term::keymap::{Bindable, Keymap};
use strum::{EnumIter, EnumMessage, IntoEnumIterator, IntoStaticStr};

/// Node keys the table has (`select_1` … `select_8`).
pub const SELECT_KEYS: usize = 8;

/// A user intent in the demo dashboard. `message` is the status-bar word, `detailed_message`
/// the help line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, IntoStaticStr, EnumMessage)]
#[strum(serialize_all = "snake_case")]
pub enum DemoAction {
    /// Select node n (0-based); named `select_{n+1}`.
    #[strum(message = "node", detailed_message = "select that node")]
    Select(usize),
    #[strum(message = "node", detailed_message = "select the node to the left")]
    SelectPrev,
    #[strum(message = "node", detailed_message = "select the node to the right")]
    SelectNext,
    #[strum(
        message = "mine",
        detailed_message = "start / stop mining on the selected node"
    )]
    ToggleMining,
    #[strum(
        message = "power",
        detailed_message = "more mining power for the selected node"
    )]
    PowerUp,
    #[strum(
        message = "power",
        detailed_message = "less mining power for the selected node"
    )]
    PowerDown,
    #[strum(
        message = "send",
        detailed_message = "send from the selected node to another node's wallet"
    )]
    Send,
    #[strum(
        message = "partition",
        detailed_message = "partition the selected node (cut its links)"
    )]
    Partition,
    #[strum(
        message = "heal",
        detailed_message = "heal the selected node (every partition if it has none)"
    )]
    Heal,
    #[strum(message = "stop", detailed_message = "stop the selected node")]
    Stop,
    #[strum(
        message = "restart",
        detailed_message = "restart the selected node from its data dir"
    )]
    Restart,
    #[strum(
        message = "pause",
        detailed_message = "pause / resume the scenario (in step mode: play on)"
    )]
    Pause,
    #[strum(
        message = "step",
        detailed_message = "step mode: run the scenario's next step, then wait"
    )]
    NextStep,
    #[strum(message = "faster", detailed_message = "play the scenario faster")]
    Faster,
    #[strum(message = "slower", detailed_message = "play the scenario slower")]
    Slower,
    #[strum(message = "help", detailed_message = "this help")]
    Help,
    #[strum(message = "back", detailed_message = "close the form or help")]
    Back,
    #[strum(message = "quit", detailed_message = "quit (stops every node)")]
    Quit,
}

impl Bindable for DemoAction {
    const DEFAULT_TOML: &'static str = include_str!("../../assets/demo/keymap.toml");
    fn all() -> Vec<DemoAction> {
        DemoAction::iter()
            .flat_map(|a| match a {
                DemoAction::Select(_) => (0..SELECT_KEYS).map(DemoAction::Select).collect(),
                a => vec![a],
            })
            .collect()
    }
    fn name(self) -> String {
        match self {
            DemoAction::Select(n) => format!("select_{}", n + 1),
            a => <&str>::from(a).to_string(),
        }
    }
    fn description(self) -> &'static str {
        self.get_detailed_message().unwrap_or_default()
    }
    fn short(self) -> &'static str {
        self.get_message().unwrap_or_default()
    }
}

/// The demo's key table.
pub type DemoKeymap = Keymap<DemoAction>;

/// Help rows in table order with the node keys of a demo of `nodes` nodes folded into one
/// row: (keys, description).
pub fn help_rows(map: &DemoKeymap, nodes: usize) -> Vec<(String, &'static str)> {
    let mut rows = Vec::new();
    let selects: Vec<String> = (0..nodes.clamp(1, SELECT_KEYS))
        .map(|n| map.keys_text(DemoAction::Select(n)))
        .collect();
    rows.push((selects.join(" "), DemoAction::Select(0).description()));
    for (keys, a) in map.help_rows() {
        if !matches!(a, DemoAction::Select(_)) {
            rows.push((keys, a.description()));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::Key;

    #[test]
    fn the_built_in_table_binds_every_action_once() {
        let map = DemoKeymap::from_toml(DemoAction::DEFAULT_TOML).unwrap();
        for a in DemoAction::all() {
            assert!(!map.keys_text(a).is_empty(), "{a:?}");
            assert!(
                !a.description().is_empty() && !a.short().is_empty(),
                "{a:?}"
            );
        }
        assert_eq!(DemoAction::all().len(), 25);
        assert_eq!(DemoAction::Select(7).name(), "select_8");
        assert_eq!(DemoAction::ToggleMining.name(), "toggle_mining");
        assert_eq!(map.action(Key::char('x')), Some(DemoAction::Stop));
        assert_eq!(map.action(Key::char('3')), Some(DemoAction::Select(2)));
        assert!(DemoKeymap::from_toml("[keys]\nfly = [\"f\"]\n").is_err());
        assert!(DemoKeymap::from_toml("[keys]\nquit = [\"q\"]\n").is_err());
    }

    #[test]
    fn help_folds_the_node_keys_of_the_demo_into_one_row() {
        let map = DemoKeymap::default();
        let rows = help_rows(&map, 3);
        assert_eq!(rows[0], ("1 2 3".to_string(), "select that node"));
        assert_eq!(rows.len(), 1 + 17);
        assert_eq!(rows.last().map(|r| r.1), Some("quit (stops every node)"));
    }
}
