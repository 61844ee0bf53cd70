//! Key bindings as data. The defaults live in `assets/keymap.toml`; a user file
//! (`~/.config/chain-tui/keymap.toml`, then `DATA_DIR/keymap.toml`) overrides them action by
//! action. The same table dispatches keys, fills the status bar and generates the help overlay.

use super::action::Action;
pub use crate::term::Key;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default bindings, compiled in.
pub const DEFAULT_KEYMAP: &str = include_str!("../../assets/keymap.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
}

/// The key table: for each action, its keys in the order written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<(Action, Vec<Key>)>,
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap::from_toml(DEFAULT_KEYMAP).expect("the built-in keymap parses")
    }
}

impl Keymap {
    /// A keymap from TOML text alone (every action must be bound).
    pub fn from_toml(text: &str) -> Result<Keymap, String> {
        let mut map = Keymap {
            bindings: Action::ALL.iter().map(|a| (*a, Vec::new())).collect(),
        };
        map.apply(text)?;
        if let Some((a, _)) = map.bindings.iter().find(|(_, k)| k.is_empty()) {
            return Err(format!("action {a} has no key"));
        }
        Ok(map)
    }

    /// Override with a user file's text: each action it names gets exactly the keys given,
    /// and those keys are removed from every other action.
    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| e.to_string())?;
        for (name, keys) in file.keys {
            let action: Action = name.parse()?;
            let keys = keys
                .iter()
                .map(|k| k.parse::<Key>())
                .collect::<Result<Vec<Key>, String>>()?;
            for (a, ks) in &mut self.bindings {
                if *a != action {
                    ks.retain(|k| !keys.contains(k));
                }
            }
            if let Some((_, ks)) = self.bindings.iter_mut().find(|(a, _)| *a == action) {
                *ks = keys;
            }
        }
        Ok(())
    }

    /// Defaults, then the user's config file, then the data dir's file (each optional).
    pub fn load(data_dir: &Path) -> Result<Keymap, String> {
        let mut map = Keymap::default();
        for path in Keymap::user_files(data_dir) {
            match std::fs::read_to_string(&path) {
                Ok(text) => map
                    .apply(&text)
                    .map_err(|e| format!("keymap {}: {e}", path.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        Ok(map)
    }

    /// Where user keymaps are looked for, in the order they apply.
    pub fn user_files(data_dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Some(d) = directories::ProjectDirs::from("", "", "chain-tui") {
            v.push(d.config_dir().join("keymap.toml"));
        }
        v.push(data_dir.join("keymap.toml"));
        v
    }

    /// The action a key is bound to.
    pub fn action(&self, key: Key) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(_, ks)| ks.contains(&key))
            .map(|(a, _)| *a)
    }

    /// The keys of an action.
    pub fn keys(&self, action: Action) -> &[Key] {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// The keys of an action as text (`"h/←"`).
    pub fn keys_text(&self, action: Action) -> String {
        let ks: Vec<String> = self.keys(action).iter().map(Key::to_string).collect();
        ks.join("/")
    }

    /// Every binding in help order: (keys text, action).
    pub fn help_rows(&self) -> Vec<(String, Action)> {
        Action::ALL
            .iter()
            .filter(|a| !self.keys(**a).is_empty())
            .map(|a| (self.keys_text(*a), *a))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    #[test]
    fn defaults_bind_every_action_without_clashes() {
        let map = Keymap::default();
        let mut seen = std::collections::HashSet::new();
        for a in Action::ALL {
            assert!(!map.keys(a).is_empty(), "{a} unbound");
            for k in map.keys(a) {
                assert!(seen.insert(*k), "{k} bound twice");
                assert_eq!(map.action(*k), Some(a));
            }
        }
    }

    #[test]
    fn parses_key_names() {
        assert_eq!("q".parse::<Key>(), Ok(Key::char('q')));
        assert_eq!("-".parse::<Key>(), Ok(Key::char('-')));
        assert_eq!(
            "Ctrl-N".parse::<Key>(),
            Ok(Key::new(KeyCode::Char('n'), KeyModifiers::CONTROL))
        );
        assert_eq!(
            "Shift-Tab".parse::<Key>(),
            Ok(Key::new(KeyCode::BackTab, KeyModifiers::NONE))
        );
        assert_eq!(
            "F5".parse::<Key>(),
            Ok(Key::new(KeyCode::F(5), KeyModifiers::NONE))
        );
        assert!("Hyper-x".parse::<Key>().is_err());
        assert!("F13".parse::<Key>().is_err());
    }

    #[test]
    fn shift_does_not_matter_for_characters() {
        let map = Keymap::default();
        assert_eq!(
            map.action(Key::new(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
        assert_eq!(
            map.action(Key::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::FocusPrev)
        );
    }

    #[test]
    fn user_file_overrides_and_steals_keys() {
        let mut map = Keymap::default();
        map.apply("[keys]\nquit = [\"x\", \"m\"]\n").unwrap();
        assert_eq!(map.action(Key::char('x')), Some(Action::Quit));
        assert_eq!(map.action(Key::char('m')), Some(Action::Quit));
        assert_eq!(map.action(Key::char('q')), None);
        assert!(map.keys(Action::ToggleMining).is_empty());
        // Untouched actions keep their defaults.
        assert_eq!(map.action(Key::char('s')), Some(Action::Send));
        assert!(map.apply("[keys]\nfly = [\"f\"]\n").is_err());
        assert!(map.apply("[keys]\nquit = [\"NoSuchKey\"]\n").is_err());
        assert!(map.apply("[other]\n").is_err());
    }
}
