use crate::common::*;
use chain_tui::core::amount::Amount;

#[test]
fn mine_and_spend_end_to_end() {
    let mut t = TestChain::new();
    let alice = key(1);
    let bob = key(2);
    let first = t.mine(1, address(&alice));
    t.mine(t.params.coinbase_maturity, address(&alice));
    let block = t
        .chain
        .store()
        .read()
        .unwrap()
        .block(&first.hash())
        .unwrap()
        .unwrap();
    let cb = coinbase_of(&block);
    let tx = spend(
        t.params,
        &[(cb, &alice)],
        vec![
            pay(address(&bob), 10_0000_0000),
            pay(address(&alice), 39_9999_0000),
        ],
    );
    let tip = t.tip();
    let b = t.mine_on(
        &tip,
        address(&alice),
        vec![tx.clone()],
        Amount::from_units(10_000),
    );
    assert_eq!(t.tip().hash(), b.hash());
    assert!(t.coin(&cb).is_none(), "spent coinbase left the UTXO set");
    let paid = chain_tui::core::tx::OutPoint {
        txid: tx.txid(),
        vout: 0,
    };
    assert_eq!(t.coin(&paid).unwrap().output.address, address(&bob));
}

/// The module graph the crate documents (lib.rs, README "Layout") is the real one: each module
/// imports only the modules below it, and front ends reach the node through its facade
/// (`crate::node::{…}`), never its inner modules, the network or the store.
#[test]
fn modules_import_only_what_the_stated_graph_allows() {
    use std::collections::BTreeSet;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // module -> (modules it may import, whether it may reach into crate::node's inner modules)
    let rules: &[(&str, &[&str], bool)] = &[
        ("core", &["core"], false),
        ("storage", &["core", "storage"], false),
        ("net", &["core", "net", "fsutil"], false),
        ("node", &["core", "storage", "net", "node", "fsutil"], true),
        ("wallet", &["core", "node", "wallet", "fsutil"], false),
        ("api", &["core", "node", "wallet", "api", "fsutil"], false),
        ("runtime", &["node", "api", "wallet", "runtime"], true),
        ("term", &["term", "fsutil"], false),
        (
            "tui",
            &["core", "node", "wallet", "runtime", "term", "tui"],
            false,
        ),
        (
            "demo",
            &[
                "core", "node", "wallet", "runtime", "term", "tui", "demo", "sim",
            ],
            false,
        ),
        (
            "bench",
            &["core", "node", "wallet", "api", "runtime", "bench"],
            true,
        ),
        (
            "cli",
            &[
                "core", "node", "wallet", "api", "runtime", "tui", "demo", "bench", "sim", "cli",
            ],
            false,
        ),
        ("fsutil", &["fsutil"], false),
        // The simulator drives the protocol's state machine itself.
        ("sim", &["core", "net", "node", "storage", "sim"], true),
    ];
    let known: BTreeSet<&str> = rules.iter().map(|r| r.0).collect();
    fn files(p: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        if p.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                files(&e.unwrap().path(), out);
            }
        } else if p.is_file() && p.extension().is_some_and(|x| x == "rs") {
            out.push(p.to_path_buf());
        }
    }
    let mut wrong = Vec::new();
    for (module, allowed, inner) in rules {
        let mut paths = Vec::new();
        files(&root.join(module), &mut paths);
        files(&root.join(format!("{module}.rs")), &mut paths);
        assert!(!paths.is_empty(), "no source for module {module}");
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for (i, _) in code.match_indices("crate::") {
                    let rest = &code[i + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let at = format!("{}:{}", path.display(), n + 1);
                    if !known.contains(name.as_str()) {
                        continue;
                    }
                    if !allowed.contains(&name.as_str()) {
                        wrong.push(format!("{at}: {module} imports crate::{name}"));
                    }
                    // crate::node::<lower-case name>:: is an inner module of the node.
                    if name == "node" && !inner && *module != "node" {
                        let after = &rest["node".len()..];
                        if let Some(sub) = after.strip_prefix("::")
                            && sub.starts_with(|c: char| c.is_ascii_lowercase())
                            && sub.contains("::")
                            && sub.split("::").next().is_some_and(|s| {
                                s.chars().all(|c| {
                                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
                                })
                            })
                        {
                            wrong.push(format!("{at}: {module} reaches into crate::node::{sub}"));
                        }
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports outside the stated graph:\n{}",
        wrong.join("\n")
    );
}
