//! Key bindings as data, one implementation for the dashboard and the demo. Each front end
//! names its actions in an enum that implements [`Bindable`] (names, help text and status-bar
//! labels are derived on the enum with strum) and ships a default table
//! (`assets/keymap.toml`, `assets/demo/keymap.toml`); user files override it action by action.
//! The same [`Keymap`] dispatches keys, fills the status bar and generates the help overlay.

use super::Key;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An action a key can be bound to.
pub trait Bindable: Copy + Eq + std::fmt::Debug + 'static {
    /// The compiled-in default table (TOML with a `[keys]` table: name = [keys]).
    const DEFAULT_TOML: &'static str;
    /// Every action, in the order the help overlay lists them.
    fn all() -> Vec<Self>;
    /// The name used in keymap files.
    fn name(self) -> String;
    /// What it does, for the help overlay.
    fn description(self) -> &'static str;
    /// A word or two for the status bar.
    fn short(self) -> &'static str;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: BTreeMap<String, Vec<String>>,
}

/// A key table: for each action, its keys in the order written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keymap<A> {
    bindings: Vec<(A, Vec<Key>)>,
}

impl<A: Bindable> Default for Keymap<A> {
    /// The built-in table ([`Bindable::DEFAULT_TOML`], tested to parse and bind every action;
    /// an empty table is the fallback).
    fn default() -> Keymap<A> {
        Keymap::from_toml(A::DEFAULT_TOML).unwrap_or_else(|_| Keymap::unbound())
    }
}

impl<A: Bindable> Keymap<A> {
    fn unbound() -> Keymap<A> {
        Keymap {
            bindings: A::all().into_iter().map(|a| (a, Vec::new())).collect(),
        }
    }

    /// A keymap from TOML text alone: every action must be bound.
    pub fn from_toml(text: &str) -> Result<Keymap<A>, String> {
        let mut map = Keymap::<A>::unbound();
        map.apply(text)?;
        if let Some((a, _)) = map.bindings.iter().find(|(_, k)| k.is_empty()) {
            return Err(format!("action {} has no key", a.name()));
        }
        Ok(map)
    }

    /// Override with a file's text: each action it names gets exactly the keys given, and those
    /// keys are taken from every other action. A key the file binds twice is refused, and so is
    /// an unknown action or key name; nothing changes then.
    pub fn apply(&mut self, text: &str) -> Result<(), String> {
        let file: KeymapFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let all = A::all();
        let mut given: Vec<(A, Vec<Key>)> = Vec::new();
        let mut seen: Vec<(Key, String)> = Vec::new();
        for (name, names) in file.keys {
            let Some(action) = all.iter().copied().find(|a| a.name() == name) else {
                let known: Vec<String> = all.iter().map(|a| a.name()).collect();
                return Err(format!(
                    "unknown action {name:?} (known: {})",
                    known.join(", ")
                ));
            };
            let mut keys = Vec::new();
            for k in names {
                let key: Key = k.parse()?;
                if let Some((_, other)) = seen.iter().find(|(s, _)| *s == key) {
                    return Err(format!("key {k:?} is bound to both {other} and {name}"));
                }
                seen.push((key, name.clone()));
                keys.push(key);
            }
            given.push((action, keys));
        }
        for (action, keys) in given {
            for (a, ks) in &mut self.bindings {
                if *a == action {
                    ks.clone_from(&keys);
                } else {
                    ks.retain(|k| !keys.contains(k));
                }
            }
        }
        Ok(())
    }

    /// The defaults, then each of `files` that exists, in order.
    pub fn load(files: &[PathBuf]) -> Result<Keymap<A>, String> {
        let mut map = Keymap::default();
        for path in files {
            match std::fs::read_to_string(path) {
                Ok(text) => map
                    .apply(&text)
                    .map_err(|e| format!("keymap {}: {e}", path.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
            }
        }
        Ok(map)
    }

    /// The action a key is bound to.
    pub fn action(&self, key: Key) -> Option<A> {
        self.bindings
            .iter()
            .find(|(_, ks)| ks.contains(&key))
            .map(|(a, _)| *a)
    }

    /// The keys of an action.
    pub fn keys(&self, action: A) -> &[Key] {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, k)| k.as_slice())
            .unwrap_or(&[])
    }

    /// The keys of an action as text (`"h/←"`).
    pub fn keys_text(&self, action: A) -> String {
        let ks: Vec<String> = self.keys(action).iter().map(Key::to_string).collect();
        ks.join("/")
    }

    /// Every bound action in help order: (keys text, action).
    pub fn help_rows(&self) -> Vec<(String, A)> {
        self.bindings
            .iter()
            .filter(|(_, ks)| !ks.is_empty())
            .map(|(a, _)| (self.keys_text(*a), *a))
            .collect()
    }
}

/// Where user keymaps named `file_name` are looked for, in the order they apply: the user's
/// config dir (`~/.config/chain-tui/`), then `data_dir` when given.
pub fn user_files(file_name: &str, data_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = directories::ProjectDirs::from("", "", "chain-tui") {
        v.push(d.config_dir().join(file_name));
    }
    if let Some(d) = data_dir {
        v.push(d.join(file_name));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small action set of its own, so these tests hold for any front end.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum T {
        Go,
        Stop,
        Quit,
    }

    impl Bindable for T {
        const DEFAULT_TOML: &'static str =
            "[keys]\ngo = [\"g\", \"Enter\"]\nstop = [\"s\"]\nquit = [\"q\"]\n";
        fn all() -> Vec<T> {
            vec![T::Go, T::Stop, T::Quit]
        }
        fn name(self) -> String {
            format!("{self:?}").to_lowercase()
        }
        fn description(self) -> &'static str {
            "does it"
        }
        fn short(self) -> &'static str {
            "it"
        }
    }

    #[test]
    fn the_default_table_binds_in_help_order() {
        let map = Keymap::<T>::default();
        assert_eq!(map.action(Key::char('g')), Some(T::Go));
        assert_eq!(map.keys_text(T::Go), "g/Enter");
        let rows: Vec<T> = map.help_rows().into_iter().map(|(_, a)| a).collect();
        assert_eq!(rows, vec![T::Go, T::Stop, T::Quit]);
        assert!(
            Keymap::<T>::from_toml("[keys]\ngo = [\"g\"]\n")
                .unwrap_err()
                .contains("stop has no key")
        );
    }

    #[test]
    fn a_user_file_overrides_steals_and_refuses_clashes() {
        let mut map = Keymap::<T>::default();
        map.apply("[keys]\nquit = [\"x\", \"s\"]\n").unwrap();
        assert_eq!(map.action(Key::char('x')), Some(T::Quit));
        assert_eq!(map.action(Key::char('s')), Some(T::Quit));
        assert_eq!(map.action(Key::char('q')), None);
        assert!(map.keys(T::Stop).is_empty());
        assert_eq!(map.action(Key::char('g')), Some(T::Go));

        let before = map.clone();
        let clash = map
            .apply("[keys]\ngo = [\"z\"]\nstop = [\"z\"]\n")
            .unwrap_err();
        assert!(clash.contains("bound to both go and stop"), "{clash}");
        let unknown = map.apply("[keys]\nfly = [\"f\"]\n").unwrap_err();
        assert!(unknown.contains("known: go, stop, quit"), "{unknown}");
        assert!(map.apply("[keys]\nquit = [\"NoSuchKey\"]\n").is_err());
        assert!(map.apply("[other]\n").is_err());
        assert_eq!(map, before, "a refused file changes nothing");
    }

    #[test]
    fn files_apply_in_order_and_a_missing_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        std::fs::write(&a, "[keys]\ngo = [\"1\"]\n").unwrap();
        std::fs::write(&b, "[keys]\ngo = [\"2\"]\n").unwrap();
        let missing = dir.path().join("none.toml");
        let map = Keymap::<T>::load(&[a.clone(), missing, b.clone()]).unwrap();
        assert_eq!(map.keys_text(T::Go), "2");
        std::fs::write(&b, "[keys]\ngo = [\"Hyper-x\"]\n").unwrap();
        let err = Keymap::<T>::load(&[a, b]).unwrap_err();
        assert!(err.contains("b.toml"), "{err}");
    }
}
