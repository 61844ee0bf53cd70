//! The dashboard's key table: [`crate::term::keymap::Keymap`] over its [`Action`]s. The
//! defaults live in `assets/keymap.toml`; a user file (`~/.config/chain-tui/keymap.toml`, then
//! `DATA_DIR/keymap.toml`) overrides them action by action.

use super::action::Action;
pub use crate::term::Key;
use crate::term::keymap::{self, Bindable};
use std::path::{Path, PathBuf};

/// The default bindings, compiled in.
pub const DEFAULT_KEYMAP: &str = Action::DEFAULT_TOML;

/// The dashboard's key table.
pub type Keymap = keymap::Keymap<Action>;

/// Where the dashboard's user keymaps are looked for, in the order they apply.
pub fn user_files(data_dir: &Path) -> Vec<PathBuf> {
    keymap::user_files("keymap.toml", Some(data_dir))
}

/// Defaults, then the user's config file, then the data dir's file (each optional).
pub fn load(data_dir: &Path) -> Result<Keymap, String> {
    Keymap::load(&user_files(data_dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    #[test]
    fn defaults_bind_every_action_without_clashes() {
        let map = Keymap::from_toml(DEFAULT_KEYMAP).unwrap();
        let mut seen = std::collections::HashSet::new();
        for a in Action::all() {
            assert!(!map.keys(a).is_empty(), "{a:?} unbound");
            assert!(
                !a.description().is_empty() && !a.short().is_empty(),
                "{a:?}"
            );
            for k in map.keys(a) {
                assert!(seen.insert(*k), "{k} bound twice");
                assert_eq!(map.action(*k), Some(a));
            }
        }
        assert_eq!(Action::ToggleMining.name(), "toggle_mining");
        assert_eq!(Action::LogLevel.name(), "log_level");
        // The help lists actions in declaration order, quit last.
        assert_eq!(map.help_rows().last().map(|(_, a)| *a), Some(Action::Quit));
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
    }
}
