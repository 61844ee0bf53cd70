//! The demo dashboard's keys as data: [`DemoAction`] is what a key can ask for, and
//! [`DemoKeymap`] maps keys to actions from `assets/demo/keymap.toml`. The help overlay is
//! generated from the same table that dispatches keys. Key names are those of the node
//! dashboard ([`crate::term::Key`]).

use crate::term::Key;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The default bindings, compiled in.
pub const DEFAULT_DEMO_KEYMAP: &str = include_str!("../../assets/demo/keymap.toml");

/// A user intent in the demo dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DemoAction {
    /// Select node n (0-based).
    Select(usize),
    SelectPrev,
    SelectNext,
    ToggleMining,
    Send,
    Partition,
    Heal,
    Stop,
    Restart,
    Pause,
    Help,
    Back,
    Quit,
}

impl DemoAction {
    /// Every action, in help order.
    pub const ALL: [DemoAction; 20] = [
        DemoAction::Select(0),
        DemoAction::Select(1),
        DemoAction::Select(2),
        DemoAction::Select(3),
        DemoAction::Select(4),
        DemoAction::Select(5),
        DemoAction::Select(6),
        DemoAction::Select(7),
        DemoAction::SelectPrev,
        DemoAction::SelectNext,
        DemoAction::ToggleMining,
        DemoAction::Send,
        DemoAction::Partition,
        DemoAction::Heal,
        DemoAction::Stop,
        DemoAction::Restart,
        DemoAction::Pause,
        DemoAction::Help,
        DemoAction::Back,
        DemoAction::Quit,
    ];

    /// The name used in keymap files.
    pub fn name(self) -> String {
        match self {
            DemoAction::Select(n) => format!("select_{}", n + 1),
            DemoAction::SelectPrev => "select_prev".into(),
            DemoAction::SelectNext => "select_next".into(),
            DemoAction::ToggleMining => "toggle_mining".into(),
            DemoAction::Send => "send".into(),
            DemoAction::Partition => "partition".into(),
            DemoAction::Heal => "heal".into(),
            DemoAction::Stop => "stop".into(),
            DemoAction::Restart => "restart".into(),
            DemoAction::Pause => "pause".into(),
            DemoAction::Help => "help".into(),
            DemoAction::Back => "back".into(),
            DemoAction::Quit => "quit".into(),
        }
    }

    /// What it does, for the help overlay.
    pub fn description(self) -> &'static str {
        match self {
            DemoAction::Select(_) => "select that node",
            DemoAction::SelectPrev => "select the node to the left",
            DemoAction::SelectNext => "select the node to the right",
            DemoAction::ToggleMining => "start / stop mining on the selected node",
            DemoAction::Send => "send from the selected node to another node's wallet",
            DemoAction::Partition => "partition the selected node (cut its links)",
            DemoAction::Heal => "heal the selected node (every partition if it has none)",
            DemoAction::Stop => "stop the selected node",
            DemoAction::Restart => "restart the selected node from its data dir",
            DemoAction::Pause => "pause / resume the scenario",
            DemoAction::Help => "this help",
            DemoAction::Back => "close the form or help",
            DemoAction::Quit => "quit (stops every node)",
        }
    }

    /// A one-word label for the status bar.
    pub fn short(self) -> &'static str {
        match self {
            DemoAction::Select(_) | DemoAction::SelectPrev | DemoAction::SelectNext => "node",
            DemoAction::ToggleMining => "mine",
            DemoAction::Send => "send",
            DemoAction::Partition => "partition",
            DemoAction::Heal => "heal",
            DemoAction::Stop => "stop",
            DemoAction::Restart => "restart",
            DemoAction::Pause => "pause",
            DemoAction::Help => "help",
            DemoAction::Back => "back",
            DemoAction::Quit => "quit",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
}

/// The demo's key table: each action with its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoKeymap {
    bindings: Vec<(DemoAction, Vec<Key>)>,
}

impl Default for DemoKeymap {
    fn default() -> DemoKeymap {
        // The built-in table is tested to parse; an empty table is the fallback.
        DemoKeymap::from_toml(DEFAULT_DEMO_KEYMAP).unwrap_or(DemoKeymap {
            bindings: Vec::new(),
        })
    }
}

impl DemoKeymap {
    /// A keymap from TOML text (every action must be bound, no key twice).
    pub fn from_toml(text: &str) -> Result<DemoKeymap, String> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut bindings: Vec<(DemoAction, Vec<Key>)> =
            DemoAction::ALL.iter().map(|a| (*a, Vec::new())).collect();
        let mut seen = Vec::new();
        for (name, keys) in file.keys {
            let Some(slot) = bindings.iter_mut().find(|(a, _)| a.name() == name) else {
                return Err(format!("unknown demo action {name:?}"));
            };
            for k in keys {
                let key: Key = k.parse()?;
                if seen.contains(&key) {
                    return Err(format!("key {k:?} is bound twice"));
                }
                seen.push(key);
                slot.1.push(key);
            }
        }
        if let Some((a, _)) = bindings.iter().find(|(_, k)| k.is_empty()) {
            return Err(format!("demo action {} has no key", a.name()));
        }
        Ok(DemoKeymap { bindings })
    }

    pub fn action(&self, key: Key) -> Option<DemoAction> {
        self.bindings
            .iter()
            .find(|(_, ks)| ks.contains(&key))
            .map(|(a, _)| *a)
    }

    pub fn keys_text(&self, action: DemoAction) -> String {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, ks)| {
                ks.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default()
    }

    /// Help rows in table order, the eight node keys folded into one row: (keys, description).
    pub fn help_rows(&self, nodes: usize) -> Vec<(String, &'static str)> {
        let mut rows = Vec::new();
        let selects: Vec<String> = (0..nodes.clamp(1, 8))
            .map(|n| self.keys_text(DemoAction::Select(n)))
            .collect();
        rows.push((selects.join(" "), DemoAction::Select(0).description()));
        for (a, _) in &self.bindings {
            if !matches!(a, DemoAction::Select(_)) {
                rows.push((self.keys_text(*a), a.description()));
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_table_binds_every_action_once() {
        let map = DemoKeymap::from_toml(DEFAULT_DEMO_KEYMAP).unwrap();
        for a in DemoAction::ALL {
            assert!(!map.keys_text(a).is_empty(), "{a:?}");
        }
        assert_eq!(map.action(Key::char('x')), Some(DemoAction::Stop));
        assert_eq!(map.action(Key::char('3')), Some(DemoAction::Select(2)));
        assert!(DemoKeymap::from_toml("[keys]\nfly = [\"f\"]\n").is_err());
        assert!(DemoKeymap::from_toml("[keys]\nquit = [\"q\"]\n").is_err());
    }
}
