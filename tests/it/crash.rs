//! Crash safety of the real binary: a `mine` process killed with SIGKILL at arbitrary moments
//! never loses a committed block, never leaves a store that fails validation, and never loses a
//! transaction that `send` reported as sent; a node killed while clients post transactions
//! keeps every one it answered `201` for.

use crate::common::bin::{self, Out};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `chain-tui --network regtest --data-dir DIR args…` to its end.
fn run(dir: &Path, args: &[&str]) -> Out {
    bin::run(bin::regtest(dir).args(args))
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = run(dir, &all);
    assert!(o.ok(), "chain-tui {args:?} failed: {o:?}");
    serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("bad JSON {o:?}: {e}"))
}

fn height(dir: &Path) -> u64 {
    json(dir, &["chain", "info"])["height"].as_u64().unwrap()
}

fn assert_valid(dir: &Path, when: &str) {
    let o = run(dir, &["chain", "validate"]);
    assert!(o.ok(), "{when}: chain validate failed: {o:?}");
    assert_eq!(o.stdout.trim(), "VALID", "{when}: {o:?}");
}

/// A deterministic LCG.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    /// A delay in [lo, hi) milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// Start an endless `mine`, let it run for `delay`, SIGKILL it.
fn mine_and_kill(dir: &Path, delay: Duration) {
    let mut child = bin::regtest(dir)
        .args(["mine", "--blocks", "100000", "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start chain-tui");
    std::thread::sleep(delay);
    // `kill` sends SIGKILL on unix; the process may not have finished starting yet.
    let _ = child.kill();
    let st = bin::wait(&mut child, Duration::from_secs(10)).expect("killed within 10 s");
    assert!(
        !st.success(),
        "mine --blocks 100000 finished before it was killed"
    );
}

#[test]
fn killed_miner_never_loses_committed_blocks() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut rng = Lcg(0x5eed_c0ff_ee15_900d);
    let first = height(dir);
    let mut last = first;
    let mut heights = vec![first];
    for i in 0..8 {
        let delay = rng.millis(100, 600);
        mine_and_kill(dir, delay);
        let h = height(dir);
        assert!(
            h >= last,
            "iteration {i} (killed after {delay:?}): height went back from {last} to {h}"
        );
        assert_valid(dir, &format!("iteration {i}"));
        heights.push(h);
        last = h;
    }
    eprintln!("heights after each kill: {heights:?}");
    assert!(last > first, "nothing was mined: {heights:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "too slow");
}

#[test]
fn killed_miner_never_loses_a_sent_transaction() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let other = tempfile::tempdir().unwrap();
    let to = json(other.path(), &["wallet", "new"])["address"]
        .as_str()
        .unwrap()
        .to_string();
    json(dir, &["mine", "--blocks", "15", "--threads", "1"]);
    let mut rng = Lcg(42);
    let mut last = height(dir);
    let mut confirmed = 0;
    for i in 0..6 {
        let sent = json(dir, &["send", &to, "1.5"]);
        let txid = sent["txid"].as_str().unwrap().to_string();
        // The kill lands before the node opened the store, while it loads the mempool, or
        // after some blocks (the first one takes the tx).
        let delay = if i % 2 == 0 {
            rng.millis(0, 40)
        } else {
            rng.millis(40, 400)
        };
        mine_and_kill(dir, delay);
        let h = height(dir);
        assert!(h >= last, "height went back from {last} to {h}");
        last = h;
        let t = json(dir, &["chain", "tx", &txid]);
        let conf = t["confirmations"].as_u64().unwrap();
        if conf == 0 {
            assert_eq!(t["block"], Value::Null);
        } else {
            confirmed += 1;
            let at = t["height"].as_u64().unwrap();
            assert!(at <= h);
            let block = json(dir, &["chain", "block", &at.to_string()]);
            assert!(
                block["txs"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::from(txid.as_str())),
                "round {i}: tx {txid} says it is in block {at}, which does not hold it"
            );
        }
        eprintln!("round {i}: killed after {delay:?}, height {h}, tx confirmations {conf}");
        assert_valid(dir, &format!("round {i}"));
    }
    // A last round with a long enough run that the tx must have been mined, and then the
    // mempool must not hold it any more.
    let txid = json(dir, &["send", &to, "1.5"])["txid"]
        .as_str()
        .unwrap()
        .to_string();
    json(dir, &["mine", "--blocks", "1", "--threads", "1"]);
    mine_and_kill(dir, Duration::from_millis(300));
    let t = json(dir, &["chain", "tx", &txid]);
    assert!(t["confirmations"].as_u64().unwrap() >= 1, "{t}");
    assert_eq!(json(dir, &["chain", "info"])["mempool"], 0);
    assert_valid(dir, "end");
    eprintln!("{confirmed} of 6 killed rounds had the tx confirmed");
}

/// A raw HTTP/1.1 request to `api` (one connection each): the status and the body.
fn http(api: &str, method: &str, path: &str, token: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(api).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    c.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Every `201` from `POST /transactions/new` is on disk before it is sent: a node killed with
/// SIGKILL while eight clients post transactions holds, when its data dir is opened again,
/// every transaction it answered `201` for (its mempool journal wrote them).
#[test]
fn a_killed_node_keeps_every_transaction_it_answered_201_for() {
    use crate::common::bin::NodeProcess;
    use crate::common::{address, key};
    use chain_tui::core::amount::Amount;
    use chain_tui::core::params::Network;
    use chain_tui::core::tx::{OutPoint, Transaction, TxOut};
    use std::sync::{Arc, Mutex};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut node = NodeProcess::regtest(&dir);
    let file = node.node_json();
    let (api, token) = (
        file["api"].as_str().unwrap().to_string(),
        file["token"].as_str().unwrap().to_string(),
    );
    let params = Network::Regtest.params();
    let owner = key(9);
    let to = address(&owner).encode(Network::Regtest);
    // Ten blocks a request: the API answers such a request when they are mined.
    for _ in 0..6 {
        let mined = http(
            &api,
            "POST",
            "/mine",
            &token,
            &format!(r#"{{"blocks": 10, "address": "{to}"}}"#),
        );
        assert_eq!(mined.as_ref().map(|m| m.0), Some(200), "{mined:?}");
    }
    // One payment from each mature coinbase, signed here.
    let mut txs = Vec::new();
    for h in 1..=60 - params.coinbase_maturity {
        let (_, b) = http(&api, "GET", &format!("/blocks/{h}"), &token, "").unwrap();
        let b: Value = serde_json::from_str(&b).unwrap();
        let coin = OutPoint {
            txid: b["txs"][0].as_str().unwrap().parse().unwrap(),
            vout: 0,
        };
        let pay = TxOut {
            amount: Amount::from_units(params.subsidy(h).units() - 10_000),
            address: address(&key(10)),
        };
        let tx = Transaction::signed(&[(coin, &owner)], vec![pay], &params.genesis_hash);
        txs.push(tx);
    }
    assert!(txs.len() >= 40, "{}", txs.len());
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let mine: Vec<Transaction> = txs.iter().skip(c).step_by(8).cloned().collect();
            let (api, token, accepted) = (api.clone(), token.clone(), accepted.clone());
            std::thread::spawn(move || {
                for tx in mine {
                    let body = format!(r#"{{"hex": "{}"}}"#, hex::encode(tx.encode()));
                    match http(&api, "POST", "/transactions/new", &token, &body) {
                        Some((201, _)) => accepted.lock().unwrap().push(tx.txid()),
                        Some((s, b)) => panic!("{s}: {b}"),
                        // The node was killed.
                        None => return,
                    }
                }
            })
        })
        .collect();
    // Kill it once some are in, while the rest are on their way.
    let start = Instant::now();
    while accepted.lock().unwrap().len() < 12 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "too few accepted"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    node.kill();
    for c in clients {
        c.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() < txs.len(), "all posted before the kill");
    for txid in &accepted {
        let t = json(&dir, &["chain", "tx", &txid.to_string()]);
        assert_eq!(t["confirmations"], 0, "{t}");
    }
    eprintln!(
        "{} of {} answered 201 before the kill; all kept",
        accepted.len(),
        txs.len()
    );
    assert_valid(&dir, "after the kill");
}
