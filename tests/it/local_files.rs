//! Local files against a hostile world: a wallet that is deleted, truncated, emptied, altered,
//! readable by others or locked with another passphrase stops the node at start with a message
//! saying what was found (and nothing is replaced); passphrases come from a file or the
//! environment; the CLI uses a running node only after it proves to be the data dir's own;
//! files planted at temporary names leak nothing; modes are private whatever the umask; and
//! concurrent sends through the API never pick the same coins.

use crate::common::api::*;
use crate::common::net;

use crate::common::bin::{self, NodeProcess, Out};
use chain_tui::api::ApiLimits;
use chain_tui::core::params::Network;
use chain_tui::wallet::Wallet;
use net::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a node that must refuse to start may take to do so.
const REFUSE_WITHIN: Duration = Duration::from_secs(10);

/// `chain-tui --network regtest --data-dir DIR args...` in a clean environment plus `envs`.
fn command(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = bin::regtest(dir);
    cmd.args(args).envs(envs.iter().copied());
    cmd
}

/// Runs a one-shot command to its end.
fn run(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Out {
    bin::run(&mut command(dir, args, envs))
}

fn ok(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let o = run(dir, args, envs);
    assert_eq!(o.code, Some(0), "{args:?} failed: {o:?}");
    o.stdout.trim().to_string()
}

fn node_args() -> Vec<&'static str> {
    vec!["node", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0"]
}

/// Starts `chain-tui node` on `dir` and expects it to refuse within [`REFUSE_WITHIN`]: returns
/// its stderr. A node that starts instead fails the test.
fn node_refuses(dir: &Path, envs: &[(&str, &str)]) -> String {
    let child = command(dir, &node_args(), envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chain-tui node");
    match bin::finish(child, REFUSE_WITHIN) {
        Some(o) => {
            assert_ne!(o.code, Some(0), "the node must not succeed: {o:?}");
            o.stderr
        }
        None => panic!("the node started (it was still running after {REFUSE_WITHIN:?})"),
    }
}

/// A `chain-tui node` on `dir`, running until dropped (killed).
fn start_node(dir: &Path, envs: &[(&str, &str)]) -> NodeProcess {
    let mut cmd = command(dir, &node_args(), envs);
    NodeProcess::start(cmd.stderr(Stdio::null()), dir)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A data dir with a wallet made by `wallet new`; its address.
fn wallet_dir() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    let addr = ok(d.path(), &["wallet", "new"], &[]);
    assert!(addr.starts_with("ctrt1"), "{addr}");
    (d, addr)
}

#[test]
fn a_lost_or_damaged_wallet_stops_the_node_and_nothing_replaces_it() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "deleted",
            |p| std::fs::remove_file(p).unwrap(),
            "is missing, but this data dir had a wallet",
        ),
        (
            "truncated",
            |p| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, &b[..b.len() / 2]).unwrap();
            },
            "is not a valid chain-tui keystore",
        ),
        (
            "emptied",
            |p| std::fs::write(p, b"").unwrap(),
            "the file is empty",
        ),
        (
            "altered",
            |p| {
                // Change one hex digit of the seed: still a well-formed keystore, other keys.
                let text = std::fs::read_to_string(p).unwrap();
                let at = text.find("\"seed\": \"").unwrap() + "\"seed\": \"".len();
                let mut b = text.into_bytes();
                b[at] = if b[at] == b'0' { b'1' } else { b'0' };
                std::fs::write(p, b).unwrap();
            },
            "altered or replaced",
        ),
    ];
    for (what, damage, says) in cases {
        let (d, addr) = wallet_dir();
        let ks = d.path().join("wallet.json");
        damage(&ks);
        let before = std::fs::read(&ks).ok();

        let err = node_refuses(d.path(), &[]);
        assert!(err.contains(says), "{what}: {err}");
        assert!(err.contains("wallet.json"), "{what}: names the file: {err}");
        if what == "deleted" {
            assert!(err.contains(&addr), "{what}: names the lost address: {err}");
        }
        // No wallet address from a wallet the user never had.
        let o = run(d.path(), &["wallet", "address"], &[]);
        assert_ne!(o.code, Some(0), "{what}: {o:?}");
        assert!(o.stdout.trim().is_empty(), "{what}: {o:?}");
        assert_eq!(
            std::fs::read(&ks).ok(),
            before,
            "{what}: the keystore is untouched"
        );

        // `wallet new` asks for --force, then keeps the old file aside.
        let o = run(d.path(), &["wallet", "new"], &[]);
        assert_ne!(o.code, Some(0), "{what}: {o:?}");
        assert!(o.stderr.contains("--force"), "{what}: {o:?}");
        let fresh = ok(d.path(), &["wallet", "new", "--force"], &[]);
        assert_ne!(fresh, addr, "{what}");
        if let Some(before) = before {
            let kept: Vec<_> = std::fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains("wallet.json.old-"))
                .collect();
            assert_eq!(kept.len(), 1, "{what}: {kept:?}");
            assert_eq!(std::fs::read(&kept[0]).unwrap(), before, "{what}");
        }
        assert_eq!(ok(d.path(), &["wallet", "address"], &[]), fresh, "{what}");
    }
}

#[test]
fn a_keystore_other_users_can_read_is_refused_with_the_chmod_to_run() {
    let (d, addr) = wallet_dir();
    let ks = d.path().join("wallet.json");
    std::fs::set_permissions(&ks, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = node_refuses(d.path(), &[]);
    assert!(
        err.contains(&format!("chmod 600 {}", ks.display())),
        "{err}"
    );
    assert_eq!(
        mode(&ks),
        0o644,
        "the user decides; nothing is changed behind them"
    );
    let o = run(d.path(), &["wallet", "address"], &[]);
    assert_ne!(o.code, Some(0), "{o:?}");
    std::fs::set_permissions(&ks, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(ok(d.path(), &["wallet", "address"], &[]), addr);
}

#[test]
fn a_wrong_or_missing_passphrase_is_reported_at_start() {
    let d = tempfile::tempdir().unwrap();
    ok(d.path(), &["--passphrase", "s3cret", "wallet", "new"], &[]);
    let err = node_refuses(d.path(), &[("CHAIN_TUI_PASSPHRASE", "wrong")]);
    assert!(err.contains("wrong passphrase"), "{err}");
    let err = node_refuses(d.path(), &[]);
    assert!(err.contains("encrypted"), "{err}");
    assert!(
        err.contains("--passphrase-file"),
        "says how to give it: {err}"
    );
}

#[test]
fn passphrases_come_from_a_file_or_the_environment() {
    let d = tempfile::tempdir().unwrap();
    let pass_file = d.path().join("pass");
    std::fs::write(&pass_file, "correct horse\n").unwrap();
    let file_arg = pass_file.to_str().unwrap().to_string();
    let addr = ok(
        d.path(),
        &["--passphrase-file", &file_arg, "wallet", "new"],
        &[],
    );
    let raw = std::fs::read_to_string(d.path().join("wallet.json")).unwrap();
    assert!(raw.contains("argon2id"), "the new keystore is encrypted");
    assert_eq!(
        ok(
            d.path(),
            &["wallet", "address", "--passphrase-file", &file_arg],
            &[]
        ),
        addr
    );
    assert_eq!(
        ok(
            d.path(),
            &["wallet", "address"],
            &[("CHAIN_TUI_PASSPHRASE_FILE", &file_arg)]
        ),
        addr
    );
    assert_eq!(
        ok(
            d.path(),
            &["wallet", "address"],
            &[("CHAIN_TUI_PASSPHRASE", "correct horse")]
        ),
        addr
    );
    let wrong = d.path().join("wrong");
    std::fs::write(&wrong, "battery staple\n").unwrap();
    let o = run(
        d.path(),
        &[
            "wallet",
            "address",
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ],
        &[],
    );
    assert_ne!(o.code, Some(0), "{o:?}");
    assert!(o.stderr.contains("wrong passphrase"), "{o:?}");
    let empty = d.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let o = run(
        d.path(),
        &[
            "wallet",
            "address",
            "--passphrase-file",
            empty.to_str().unwrap(),
        ],
        &[],
    );
    assert_ne!(o.code, Some(0), "{o:?}");
    assert!(o.stderr.contains("empty"), "{o:?}");

    // A node started with the passphrase from the environment serves its wallet.
    let node = start_node(d.path(), &[("CHAIN_TUI_PASSPHRASE_FILE", &file_arg)]);
    assert_eq!(ok(d.path(), &["wallet", "address"], &[]), addr);
    drop(node);
}

/// A program that answers every HTTP request with `body`, as a foreign program on a stale port.
fn foreign_api(body: Value) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let text = body.to_string();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    addr
}

#[test]
fn the_cli_trusts_only_its_own_node() {
    // Node A ran and was killed: its node.json is left behind.
    let (a, a_addr) = wallet_dir();
    let mut a_node = start_node(a.path(), &[]);
    let a_file = a_node.node_json();
    a_node.kill();
    drop(a_node);
    assert!(a.path().join("node.json").exists(), "a stale node.json");

    // Node B runs on another data dir, with a longer chain and its own wallet.
    let (b, b_addr) = wallet_dir();
    let b_node = start_node(b.path(), &[]);
    ok(b.path(), &["mine", "--blocks", "2", "--threads", "1"], &[]);
    let b_file = b_node.node_json();
    assert_ne!(a_addr, b_addr);

    let stale_cases = [
        // B now listens where A's API was.
        ("B on A's old port", {
            let mut f = a_file.clone();
            f["api"] = b_file["api"].clone();
            f
        }),
        // A node.json of another node altogether.
        ("B's node.json", b_file.clone()),
        // Another program answers on A's old port with made-up numbers.
        ("a foreign program", {
            let mut f = a_file.clone();
            f["api"] = json!(
                foreign_api(
                    json!({ "network": "regtest", "height": 999, "node_id": a_file["node_id"],
                                     "address": b_addr, "identity_proof": "00".repeat(64) })
                )
                .to_string()
            );
            f
        }),
    ];
    for (what, file) in stale_cases {
        std::fs::write(a.path().join("node.json"), file.to_string()).unwrap();
        let o = run(a.path(), &["wallet", "address"], &[]);
        assert_eq!(o.code, Some(0), "{what}: {o:?}");
        assert_eq!(
            o.stdout.trim(),
            a_addr,
            "{what}: A's own address, never B's"
        );
        assert!(o.stderr.contains("node.json is stale"), "{what}: {o:?}");
        let info: Value =
            serde_json::from_str(&ok(a.path(), &["--json", "chain", "info"], &[])).unwrap();
        assert_eq!(
            info["height"], 0,
            "{what}: A's chain, not the other's: {info}"
        );
    }
    // B's own CLI still goes through B's API (its store is locked by the running node).
    let info: Value =
        serde_json::from_str(&ok(b.path(), &["--json", "chain", "info"], &[])).unwrap();
    assert_eq!(info["height"], 2);
    assert_eq!(ok(b.path(), &["wallet", "address"], &[]), b_addr);
    drop(b_node);
}

#[test]
fn files_planted_at_temporary_names_leak_nothing() {
    let (d, _) = wallet_dir();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("target");
    std::fs::write(&target, "original").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let planted = d.path().join("node.json.tmp");

    // A symlink at the old fixed temporary name.
    std::os::unix::fs::symlink(&target, &planted).unwrap();
    let node = start_node(d.path(), &[]);
    let token = node.node_json()["token"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "original");
    let meta = std::fs::symlink_metadata(d.path().join("node.json")).unwrap();
    assert!(meta.file_type().is_file(), "node.json is a file of its own");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(!std::fs::read_to_string(&target).unwrap().contains(&token));
    drop(node);

    // A world-readable file at the old fixed temporary name.
    std::fs::remove_file(&planted).unwrap();
    std::fs::write(&planted, "").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
    let node = start_node(d.path(), &[]);
    let token = node.node_json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        mode(&d.path().join("node.json")),
        0o600,
        "node.json is private"
    );
    assert!(!std::fs::read_to_string(&planted).unwrap().contains(&token));
    drop(node);
}

#[test]
fn modes_are_private_whatever_the_umask() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("new").join("data");
    // umask 000 in the child only: `sh -c 'umask 000; exec chain-tui ...'`.
    let mut cmd = bin::regtest_after("umask 000", &dir);
    cmd.args(node_args()).stderr(Stdio::null());
    let node = NodeProcess::start(&mut cmd, &dir);
    assert_eq!(mode(&dir), 0o700, "data dir");
    for f in [
        "chain.redb",
        "wallet.json",
        "wallet.id",
        "node_key",
        "node.json",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_sends_with_funds_for_all_succeed() {
    let api = start_with(ApiLimits::default()).await;
    let mine_to = api.address();
    // 31 blocks: 21 mature coinbases of 50 coins, one per send and one to spare.
    within("mining", api.tn.node.mine_blocks(31, 1, mine_to))
        .await
        .expect("mined");
    let to = Wallet::open_or_create(tempfile::tempdir().unwrap().path(), Network::Regtest, None)
        .unwrap()
        .receive_address()
        .encode(Network::Regtest);
    // Twenty different payments (amounts differ by a base unit), all at once.
    let sends = (0..20u64).map(|i| {
        api.post(
            "/wallet/send",
            json!({ "address": to, "amount": 100_000_000 + i }),
        )
    });
    let answers = within("20 sends", futures_util::future::join_all(sends)).await;
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(refused.is_empty(), "refused sends: {refused:?}");
    let node = api.tn.node.clone();
    expect("the 20 payments in the mempool", move || {
        node.snapshot().mempool_count == 20
    })
    .await;
    api.stop().await;
}
