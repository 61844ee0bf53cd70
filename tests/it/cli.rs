//! End-to-end tests of the `chain-tui` command line. Every test drives the real binary on its
//! own fresh regtest data dir (never the default one) and checks what it prints, its exit code,
//! and that bad input changes nothing.

use serde_json::Value;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::bin::{self, NodeProcess, Out};
/// Base units per coin.
const COIN: u64 = 100_000_000;
/// Regtest block subsidy (below the first halving at height 150).
const SUBSIDY: u64 = 50 * COIN;
/// Regtest coinbase maturity.
const MATURITY: u64 = 10;

/// Runs the binary with `args` and `envs` in a clean environment, bounded in time.
fn run_bin(args: &[&str], envs: &[(&str, &str)]) -> Out {
    bin::run(bin::command().args(args).envs(envs.iter().copied()))
}

/// `chain-tui --network regtest --data-dir DIR args...` with `envs`, bounded in time.
fn run_regtest(dir: &str, args: &[&str], envs: &[(&str, &str)]) -> Out {
    bin::run(bin::regtest(dir).args(args).envs(envs.iter().copied()))
}

/// A fresh data dir for one network.
struct Dir {
    tmp: tempfile::TempDir,
    network: &'static str,
}

/// What a failed command must leave untouched.
#[derive(Debug, PartialEq)]
struct State {
    info: Value,
    balance: Value,
    history: Value,
    address: String,
}

impl Dir {
    fn regtest() -> Dir {
        Dir::new("regtest")
    }
    fn devnet() -> Dir {
        Dir::new("devnet")
    }
    fn new(network: &'static str) -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
            network,
        }
    }
    fn path(&self) -> &Path {
        self.tmp.path()
    }
    fn dir_arg(&self) -> String {
        self.path().to_str().unwrap().to_string()
    }
    /// `chain-tui --network N --data-dir D args...`
    fn run(&self, args: &[&str]) -> Out {
        let d = self.dir_arg();
        let mut all = vec!["--network", self.network, "--data-dir", &d];
        all.extend_from_slice(args);
        run_bin(&all, &[])
    }
    /// Run, expect success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.ok(), "chain-tui {args:?} failed: {o:?}");
        assert!(
            !o.stderr.contains("panicked"),
            "chain-tui {args:?} panicked: {o:?}"
        );
        o.stdout
    }
    /// Run with `--json` (before the subcommand), expect success and exactly one JSON object.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let s = self.ok(&all);
        assert_eq!(
            s.trim_end().lines().count(),
            1,
            "chain-tui {args:?} --json printed more than one line: {s:?}"
        );
        serde_json::from_str(s.trim())
            .unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}: {s:?}"))
    }
    /// Run, expect a clean failure (see [`assert_clean_failure`]); returns stderr.
    fn fail(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_clean_failure(&o, args);
        o.stderr
    }
    fn info(&self) -> Value {
        self.json(&["chain", "info"])
    }
    fn height(&self) -> u64 {
        self.info()["height"].as_u64().unwrap()
    }
    fn tip(&self) -> String {
        self.info()["tip"].as_str().unwrap().to_string()
    }
    /// (confirmed, unconfirmed, immature) in base units.
    fn balance(&self) -> (u64, u64, u64) {
        let b = self.json(&["wallet", "balance"]);
        let get = |k: &str| {
            b[k].as_u64()
                .unwrap_or_else(|| panic!("balance key {k} is not an integer: {b}"))
        };
        (get("confirmed"), get("unconfirmed"), get("immature"))
    }
    fn new_address(&self) -> String {
        self.json(&["wallet", "new"])["address"]
            .as_str()
            .unwrap()
            .to_string()
    }
    fn mine(&self, n: u64) -> Value {
        let n = n.to_string();
        let v = self.json(&["mine", "--blocks", &n, "--threads", "1"]);
        assert_eq!(v["blocks"].as_array().unwrap().len().to_string(), n);
        v
    }
    fn state(&self) -> State {
        self.state_with(&[])
    }
    /// The state, reading the wallet with extra options (a passphrase).
    fn state_with(&self, opts: &[&str]) -> State {
        let with = |args: &[&str]| {
            let mut all = opts.to_vec();
            all.extend_from_slice(args);
            self.json(&all)
        };
        State {
            info: self.info(),
            balance: with(&["wallet", "balance"]),
            history: with(&["wallet", "history"]),
            address: with(&["wallet", "address"])["address"]
                .as_str()
                .unwrap()
                .to_string(),
        }
    }
    fn export(&self, file: &Path) -> Value {
        self.json(&["chain", "export", file.to_str().unwrap()])
    }
    fn validate(&self) {
        let o = self.run(&["chain", "validate"]);
        assert!(o.ok(), "chain validate failed: {o:?}");
        assert_eq!(o.stdout.trim(), "VALID", "{o:?}");
        let v = self.json(&["chain", "validate"]);
        assert_eq!(v["valid"], Value::Bool(true), "{v}");
    }
}

/// A failure must exit non-zero, print nothing on stdout, and one `error:` line on stderr (no
/// panic, no backtrace).
fn assert_clean_failure(o: &Out, args: &[&str]) {
    assert!(
        !o.ok() && o.code.is_some(),
        "chain-tui {args:?} should fail: {o:?}"
    );
    assert!(
        o.stdout.trim().is_empty(),
        "chain-tui {args:?} failed but printed on stdout: {o:?}"
    );
    assert!(
        o.stderr.starts_with("error:"),
        "chain-tui {args:?}: stderr should start with \"error:\": {o:?}"
    );
    assert!(
        !o.stderr.contains("panicked"),
        "chain-tui {args:?} panicked: {o:?}"
    );
    assert_eq!(
        o.stderr.trim_end().lines().count(),
        1,
        "chain-tui {args:?}: the error should be one line: {:?}",
        o.stderr
    );
}

/// Expected (confirmed, immature) of a wallet that mined every block 1..=tip and spent nothing:
/// a coinbase at height h is spendable in a block at height >= h + maturity.
fn expected_split(tip: u64) -> (u64, u64) {
    let next = tip + 1;
    let mature = (1..=tip).filter(|h| next - h >= MATURITY).count() as u64;
    (mature * SUBSIDY, (tip - mature) * SUBSIDY)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Byte ranges of each block's encoding in a chain file (magic, version, genesis, count, then
/// u32-length-prefixed blocks).
fn block_ranges(bytes: &[u8]) -> Vec<Range<usize>> {
    assert_eq!(&bytes[..8], b"CTCHAIN\0");
    let count = u64::from_le_bytes(bytes[44..52].try_into().unwrap());
    let mut pos = 52;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 4;
        out.push(pos..pos + len);
        pos += len;
    }
    assert_eq!(pos, bytes.len());
    assert_eq!(out.len() as u64, count);
    out
}

/// Position of `needle` inside `hay[range]`.
fn find_in(hay: &[u8], range: Range<usize>, needle: &[u8]) -> usize {
    range.start
        + hay[range.clone()]
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("needle not found in block")
}

/// A copy of `addr` with one data character changed (a typo).
fn typo(addr: &str) -> String {
    let mut chars: Vec<char> = addr.chars().collect();
    let i = chars.len() - 3;
    chars[i] = if chars[i] == 'q' { 'p' } else { 'q' };
    chars.into_iter().collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn wallet_new_prints_an_address_in_text_and_json() {
    let d = Dir::regtest();
    let o = d.run(&["wallet", "new"]);
    assert!(o.ok(), "{o:?}");
    let first = o.stdout.trim_end_matches('\n');
    assert_eq!(o.stdout, format!("{first}\n"), "one line of text");
    assert!(first.starts_with("ctrt1"), "regtest address: {first}");
    assert!(!first.contains(char::is_whitespace));

    let second = d.new_address();
    assert!(second.starts_with("ctrt1"));
    assert_ne!(first, second, "wallet new makes a new address");
    // The newest address is the receive address.
    assert_eq!(d.json(&["wallet", "address"])["address"], second.as_str());
    assert_eq!(d.ok(&["wallet", "address"]).trim(), second);

    let dev = Dir::devnet();
    let a = dev.new_address();
    assert!(a.starts_with("ct1"), "devnet address: {a}");
}

#[test]
fn mined_coinbases_split_into_confirmed_and_immature() {
    let d = Dir::regtest();
    d.new_address();
    assert_eq!(d.balance(), (0, 0, 0));

    // 9 blocks: the first coinbase needs one more block.
    let v = d.mine(9);
    assert_eq!(v["height"], 9);
    let (c, i) = expected_split(9);
    assert_eq!((c, i), (0, 9 * SUBSIDY));
    assert_eq!(d.balance(), (c, 0, i));

    // 10 blocks: the coinbase at height 1 may be spent at height 11 = 1 + maturity.
    d.mine(1);
    let (c, i) = expected_split(10);
    assert_eq!((c, i), (SUBSIDY, 9 * SUBSIDY));
    assert_eq!(d.balance(), (c, 0, i));

    let v = d.mine(2);
    assert_eq!(v["height"], 12);
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(v["tip"], blocks[1]);
    assert_eq!(d.tip(), v["tip"].as_str().unwrap());
    let (c, i) = expected_split(12);
    assert_eq!((c, i), (3 * SUBSIDY, 9 * SUBSIDY));
    assert_eq!(d.balance(), (c, 0, i));
    assert_eq!(
        d.ok(&["wallet", "balance"]),
        "confirmed   150\nunconfirmed 0\nimmature    450\n"
    );

    // History: one coinbase per block, newest first.
    let h = d.json(&["wallet", "history"]);
    let rows = h["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    for (k, row) in rows.iter().enumerate() {
        let height = 12 - k as u64;
        assert_eq!(row["height"], height, "{row}");
        assert_eq!(row["confirmations"], 13 - height, "{row}");
        assert_eq!(row["received"], SUBSIDY);
        assert_eq!(row["sent"], 0);
        assert_eq!(row["net"], SUBSIDY as i64);
    }
}

#[test]
fn send_confirms_in_the_next_block_and_the_recipient_sees_it() {
    let a = Dir::regtest();
    let b = Dir::regtest();
    a.new_address();
    let to = b.new_address();
    a.mine(12);
    assert_eq!(a.balance(), (3 * SUBSIDY, 0, 9 * SUBSIDY));

    let s = a.json(&["send", &to, "2.5"]);
    let txid = s["txid"].as_str().unwrap().to_string();
    assert!(is_hex64(&txid), "{s}");
    let amount = 250_000_000u64;
    assert_eq!(s["amount"], amount);
    let fee = s["fee"].as_u64().unwrap();
    assert!(fee > 0 && fee < COIN / 100, "fee {fee}");

    // In the mempool.
    let t = a.json(&["chain", "tx", &txid]);
    assert_eq!(t["txid"], txid.as_str());
    assert_eq!(t["confirmations"], 0, "{t}");
    assert_eq!(t["block"], Value::Null);
    assert_eq!(t["coinbase"], false);
    let outs = t["outputs"].as_array().unwrap();
    assert!(
        outs.iter()
            .any(|o| o["address"] == to.as_str() && o["amount"] == amount),
        "{t}"
    );
    assert_eq!(a.info()["mempool"], 1);
    let text = a.ok(&["chain", "tx", &txid]);
    assert!(text.contains("in the mempool, 0 confirmations"), "{text}");

    // Sender: one 50-coin coinbase is spent by the mempool tx, its change is unconfirmed.
    let (c, u, i) = a.balance();
    assert_eq!(c, 2 * SUBSIDY);
    assert_eq!(u, SUBSIDY - amount - fee);
    assert_eq!(i, 9 * SUBSIDY);
    let h = a.json(&["wallet", "history"]);
    let top = &h["transactions"][0];
    assert_eq!(top["txid"], txid.as_str());
    assert_eq!(top["confirmations"], 0);
    assert_eq!(top["height"], Value::Null);
    assert_eq!(top["net"], -((amount + fee) as i64));

    // The next block includes it.
    let m = a.mine(1);
    assert_eq!(m["height"], 13);
    let t = a.json(&["chain", "tx", &txid]);
    assert_eq!(t["confirmations"], 1, "{t}");
    assert_eq!(t["height"], 13);
    assert_eq!(t["block"], m["tip"]);
    let blk = a.json(&["chain", "block", "13"]);
    assert!(
        blk["txs"]
            .as_array()
            .unwrap()
            .contains(&Value::from(txid.as_str())),
        "{blk}"
    );
    assert_eq!(a.info()["mempool"], 0);
    // Coinbase at height 4 matured; the new coinbase (subsidy + fee) is immature.
    assert_eq!(
        a.balance(),
        (4 * SUBSIDY - amount - fee, 0, 9 * SUBSIDY + fee)
    );
    a.mine(1);
    assert_eq!(a.json(&["chain", "tx", &txid])["confirmations"], 2);

    // The recipient's node learns the chain by import and sees the payment.
    assert_eq!(b.balance(), (0, 0, 0));
    let file = a.path().join("chain.bin");
    a.export(&file);
    b.json(&["chain", "import", file.to_str().unwrap()]);
    assert_eq!(b.balance(), (amount, 0, 0));
    assert_eq!(
        b.ok(&["wallet", "balance"]),
        "confirmed   2.5\nunconfirmed 0\nimmature    0\n"
    );
    let h = b.json(&["wallet", "history"]);
    let rows = h["transactions"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{h}");
    assert_eq!(rows[0]["txid"], txid.as_str());
    assert_eq!(rows[0]["received"], amount);
    assert_eq!(rows[0]["sent"], 0);
    assert_eq!(rows[0]["net"], amount as i64);
    assert_eq!(rows[0]["height"], 13);
    assert_eq!(rows[0]["confirmations"], 2);

    // The recipient can spend it on; the sender sees the incoming payment in its mempool view.
    let back = a.json(&["wallet", "address"])["address"]
        .as_str()
        .unwrap()
        .to_string();
    let s2 = b.json(&["send", &back, "1"]);
    assert!(is_hex64(s2["txid"].as_str().unwrap()));
    let (c, u, _) = b.balance();
    assert_eq!(c, 0);
    assert_eq!(u, amount - COIN - s2["fee"].as_u64().unwrap());
}

#[test]
fn chain_info_block_tx_and_validate() {
    let d = Dir::regtest();
    let addr = d.new_address();
    let fresh = d.info();
    assert_eq!(fresh["height"], 0);
    let genesis = fresh["tip"].as_str().unwrap().to_string();

    let m = d.mine(5);
    let blocks: Vec<String> = m["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect();
    let info = d.info();
    assert_eq!(info["network"], "regtest");
    assert_eq!(info["height"], 5);
    assert_eq!(info["tip"], blocks[4].as_str());
    assert!(is_hex64(info["tip"].as_str().unwrap()));
    let work: u128 = info["work"].as_str().unwrap().parse().unwrap();
    let work0: u128 = fresh["work"].as_str().unwrap().parse().unwrap();
    assert!(work > work0, "work grows: {work0} -> {work}");
    assert!(info["difficulty"].as_u64().unwrap() >= 1);
    assert_eq!(info["mempool"], 0);
    let text = d.ok(&["chain", "info"]);
    assert!(
        text.starts_with("network    regtest\nheight     5\n"),
        "{text}"
    );
    assert!(text.contains(&blocks[4]));

    let b3 = d.json(&["chain", "block", "3"]);
    assert_eq!(b3["hash"], blocks[2].as_str());
    assert_eq!(b3["height"], 3);
    assert_eq!(b3["prev"], blocks[1].as_str());
    assert_eq!(b3["active"], true);
    assert_eq!(b3["confirmations"], 3);
    assert_eq!(b3["txs"].as_array().unwrap().len(), 1);
    assert_eq!(
        d.json(&["chain", "block", &blocks[2]]),
        b3,
        "by hash = by height"
    );
    let text = d.ok(&["chain", "block", &blocks[2]]);
    assert!(
        text.starts_with(&format!("block {}\nheight 3  active\n", blocks[2])),
        "{text}"
    );
    assert!(text.contains("3 confirmations"), "{text}");

    let g = d.json(&["chain", "block", "0"]);
    assert_eq!(g["hash"], genesis.as_str());
    assert_eq!(g["confirmations"], 6);
    assert_eq!(d.json(&["chain", "block", &blocks[4]])["confirmations"], 1);

    // The coinbase of block 3 pays the wallet.
    let cb = b3["txs"][0].as_str().unwrap();
    let t = d.json(&["chain", "tx", cb]);
    assert_eq!(t["coinbase"], true);
    assert_eq!(t["confirmations"], 3);
    assert_eq!(t["height"], 3);
    assert_eq!(t["block"], blocks[2].as_str());
    assert_eq!(t["outputs"][0]["address"], addr.as_str());
    assert_eq!(t["outputs"][0]["amount"], SUBSIDY);

    d.validate();
    let v = d.json(&["chain", "validate"]);
    assert_eq!(v["height"], 5);

    // No subcommand: a status summary.
    let s = d.json(&[]);
    assert_eq!(s["network"], "regtest");
    assert_eq!(s["height"], 5);
    assert_eq!(s["address"], addr.as_str());

    // With enough blocks for the estimates, the text shows them (it was once rendered from the
    // trimmed `--json` answer, which has none, and always said "too few blocks").
    d.mine(1);
    let text = d.ok(&["chain", "info"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("avg block  ") && l.contains(" s over the last ")),
        "{text}"
    );
    assert!(!text.contains("too few blocks"), "{text}");
}

#[test]
fn global_options_work_before_or_after_the_subcommand() {
    let d = Dir::regtest();
    let dir = d.dir_arg();
    let before = run_regtest(&dir, &["--json", "mine", "--blocks", "2"], &[]);
    assert!(before.ok(), "{before:?}");
    let after = run_bin(
        &[
            "mine",
            "--blocks",
            "2",
            "--json",
            "--data-dir",
            &dir,
            "--network",
            "regtest",
        ],
        &[],
    );
    assert!(after.ok(), "{after:?}");
    let v: Value = serde_json::from_str(after.stdout.trim()).unwrap();
    assert_eq!(v["height"], 4, "same data dir used both times");

    let forms: [&[&str]; 4] = [
        &[
            "--network",
            "regtest",
            "--data-dir",
            &dir,
            "--json",
            "chain",
            "info",
        ],
        &[
            "chain",
            "info",
            "--json",
            "--network",
            "regtest",
            "--data-dir",
            &dir,
        ],
        &[
            "--network",
            "regtest",
            "chain",
            "--data-dir",
            &dir,
            "info",
            "--json",
        ],
        &[
            "chain",
            "--json",
            "info",
            "--data-dir",
            &dir,
            "--network",
            "regtest",
        ],
    ];
    let outs: Vec<String> = forms
        .iter()
        .map(|f| {
            let o = run_bin(f, &[]);
            assert!(o.ok(), "{f:?}: {o:?}");
            o.stdout
        })
        .collect();
    for o in &outs {
        assert_eq!(o, &outs[0]);
    }
    let v: Value = serde_json::from_str(outs[0].trim()).unwrap();
    assert_eq!(v["height"], 4);
    assert_eq!(v["network"], "regtest");

    // The environment variables name the data dir and network too.
    let o = run_bin(
        &["chain", "info", "--json"],
        &[
            ("CHAIN_TUI_DATA_DIR", &dir),
            ("CHAIN_TUI_NETWORK", "regtest"),
        ],
    );
    assert!(o.ok(), "{o:?}");
    assert_eq!(o.stdout, outs[0]);

    // Without --json after the subcommand: text.
    let o = run_bin(
        &["chain", "info", "--data-dir", &dir, "--network", "regtest"],
        &[],
    );
    assert!(
        o.ok() && o.stdout.starts_with("network    regtest"),
        "{o:?}"
    );
}

#[test]
fn bad_input_fails_cleanly_and_changes_nothing() {
    let d = Dir::regtest();
    let other = Dir::regtest();
    let dev = Dir::devnet();
    d.new_address();
    let good = other.new_address();
    let devnet_addr = dev.new_address();
    d.mine(12);
    // A pending payment, so the mempool is not empty either.
    let pending = d.json(&["send", &good, "1"]);
    let pending_txid = pending["txid"].as_str().unwrap().to_string();

    // Chain files for the import cases.
    let files = tempfile::tempdir().unwrap();
    let export = files.path().join("good.bin");
    d.export(&export);
    let bytes = std::fs::read(&export).unwrap();
    let ranges = block_ranges(&bytes);
    assert_eq!(ranges.len(), 12);
    let random = write(files.path(), "random.bin", &noise(5_000, 1));
    let truncated = write(
        files.path(),
        "truncated.bin",
        &bytes[..ranges[5].start + ranges[5].len() / 2],
    );
    let mut flipped = bytes.clone();
    let mid = ranges[5].start + ranges[5].len() / 2;
    flipped[mid] ^= 0x01;
    let flipped = write(files.path(), "flipped.bin", &flipped);
    let mut count = bytes.clone();
    count[44] = 13;
    let count = write(files.path(), "count.bin", &count);
    let empty = write(files.path(), "empty.bin", b"");
    dev.mine(2);
    let foreign = files.path().join("devnet.bin");
    dev.export(&foreign);
    let missing = files.path().join("missing.bin");

    let before = d.state();
    assert_eq!(before.info["mempool"], 1);
    assert_eq!(before.info["height"], 12);

    let zero = "0".repeat(64);
    let typo_addr = typo(&good);
    let (random, truncated, flipped, count, empty, missing, foreign) = (
        random.to_str().unwrap(),
        truncated.to_str().unwrap(),
        flipped.to_str().unwrap(),
        count.to_str().unwrap(),
        empty.to_str().unwrap(),
        missing.to_str().unwrap(),
        foreign.to_str().unwrap(),
    );
    let send = |addr: &str, amount: &str| vec!["send".to_string(), addr.into(), amount.into()];
    let sv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("malformed address", send(&typo_addr, "1")),
        ("garbage address", send("hello", "1")),
        ("devnet address", send(&devnet_addr, "1")),
        ("amount above the balance", send(&good, "100000")),
        ("whole balance plus immature", send(&good, "600")),
        ("negative amount", sv(&["send", &good, "--", "-1"])),
        ("9 decimals", send(&good, "1.123456789")),
        ("abc", send(&good, "abc")),
        ("zero", send(&good, "0")),
        ("zero with decimals", send(&good, "0.00000000")),
        ("empty amount", send(&good, "")),
        ("exponent", send(&good, "1e3")),
        ("huge amount", send(&good, "99999999999999999999")),
        ("fee rate 0", sv(&["send", &good, "1", "--fee-rate", "0"])),
        ("unknown height", sv(&["chain", "block", "999999"])),
        ("unknown block hash", sv(&["chain", "block", &zero])),
        ("bad block id", sv(&["chain", "block", "zz"])),
        ("unknown txid", sv(&["chain", "tx", &zero])),
        ("malformed txid", sv(&["chain", "tx", "xyz"])),
        ("short txid", sv(&["chain", "tx", &pending_txid[..20]])),
        ("random import", sv(&["chain", "import", random])),
        ("truncated import", sv(&["chain", "import", truncated])),
        ("flipped import", sv(&["chain", "import", flipped])),
        ("wrong block count", sv(&["chain", "import", count])),
        ("empty import", sv(&["chain", "import", empty])),
        ("missing import", sv(&["chain", "import", missing])),
        ("devnet import", sv(&["chain", "import", foreign])),
        ("zero threads", sv(&["mine", "--blocks", "1", "--threads", "0"])),
    ];
    for (name, args) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = d.run(&args);
        assert_clean_failure(&o, &args);
        eprintln!("{name}: {}", o.stderr.trim());
        // The same with --json (before the subcommand; after `--` it would be positional).
        let mut j = vec!["--json"];
        j.extend_from_slice(&args);
        let o = d.run(&j);
        assert_clean_failure(&o, &j);
        assert_eq!(d.state(), before, "{name} changed the store");
    }
    assert!(!Path::new(missing).exists());

    // Clap errors: non-zero exit and an error on stderr (clap adds a usage hint).
    let clap_cases: [&[&str]; 4] = [
        &["mine", "--blocks", "1"],
        &["send", &good],
        &["mine"],
        &["chain", "frobnicate"],
    ];
    for (k, args) in clap_cases.iter().enumerate() {
        let dir = d.dir_arg();
        let network = if k == 0 { "foo" } else { "regtest" };
        let mut all = vec!["--network", network, "--data-dir", &dir];
        all.extend_from_slice(args);
        let o = run_bin(&all, &[]);
        assert!(!o.ok() && o.code.is_some(), "{all:?} should fail: {o:?}");
        assert!(o.stdout.is_empty(), "{o:?}");
        assert!(o.stderr.starts_with("error:"), "{o:?}");
        assert!(!o.stderr.contains("panicked"), "{o:?}");
        assert_eq!(d.state(), before, "{all:?} changed the store");
    }
    let o = run_bin(
        &[
            "--network",
            "foo",
            "--data-dir",
            &d.dir_arg(),
            "chain",
            "info",
        ],
        &[],
    );
    assert!(o.stderr.contains("foo"), "{o:?}");

    // The pending payment is still there and mines normally.
    d.mine(1);
    assert_eq!(d.json(&["chain", "tx", &pending_txid])["confirmations"], 1);
    d.validate();
}

#[test]
fn export_import_roundtrip() {
    let a = Dir::regtest();
    let b = Dir::regtest();
    let r = Dir::regtest();
    a.new_address();
    let to = r.new_address();
    a.mine(30);
    let txid = a.json(&["send", &to, "7.125"])["txid"]
        .as_str()
        .unwrap()
        .to_string();
    a.mine(1);
    let a_info = a.info();
    assert_eq!(a_info["height"], 31);

    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("chain.bin");
    let e = a.export(&file);
    assert_eq!(e["blocks"], 31);
    assert_eq!(e["file"], file.to_str().unwrap());
    let text = a.ok(&["chain", "export", file.to_str().unwrap()]);
    assert_eq!(
        text.trim(),
        format!("exported 31 blocks to {}", file.display())
    );
    assert!(
        !file.with_extension("partial").exists(),
        "the temporary file is renamed away"
    );
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(block_ranges(&bytes).len(), 31);

    let fstr = file.to_str().unwrap();
    let i = b.json(&["chain", "import", fstr]);
    assert_eq!(i["blocks"], 31);
    assert_eq!(i["height"], 31);
    let b_info = b.info();
    assert_eq!(b_info["tip"], a_info["tip"]);
    assert_eq!(b_info["height"], a_info["height"]);
    assert_eq!(b_info["work"], a_info["work"]);
    b.validate();
    let t = b.json(&["chain", "tx", &txid]);
    assert_eq!(t["confirmations"], 1);
    assert_eq!(t["height"], 31);
    // The same blocks, but for when each node first stored them.
    let block = |n: &Dir, h| {
        let mut v: serde_json::Value = Dir::json(n, &["chain", "block", h]);
        assert!(v["seen_ms"].as_u64().is_some(), "{v}");
        v.as_object_mut().unwrap().remove("seen_ms");
        v
    };
    for h in ["1", "17", "31"] {
        assert_eq!(block(&b, h), block(&a, h));
    }

    // B exports the very same bytes.
    let file_b = files.path().join("b.bin");
    b.export(&file_b);
    assert_eq!(std::fs::read(&file_b).unwrap(), bytes);

    // Importing the same file again changes nothing.
    let again = b.run(&["chain", "import", fstr]);
    assert!(again.ok(), "{again:?}");
    assert_eq!(b.info(), b_info);
    b.validate();

    // A corrupt file leaves B as it was.
    let corrupt = write(files.path(), "corrupt.bin", &noise(4_096, 7));
    b.fail(&["chain", "import", corrupt.to_str().unwrap()]);
    assert_eq!(b.info(), b_info);

    // A node with a longer chain of its own keeps it; a shorter one reorganises to the file.
    let longer = Dir::regtest();
    longer.mine(40);
    let l_info = longer.info();
    assert!(longer.run(&["chain", "import", fstr]).ok());
    assert_eq!(longer.info()["tip"], l_info["tip"]);
    longer.validate();
    let shorter = Dir::regtest();
    shorter.mine(5);
    assert!(shorter.run(&["chain", "import", fstr]).ok());
    assert_eq!(shorter.info()["tip"], a_info["tip"]);
    shorter.validate();
    assert_eq!(shorter.balance(), (0, 0, 0), "its own coinbases are gone");

    // An empty chain exports and imports as zero blocks.
    let empty = Dir::regtest();
    let ef = files.path().join("empty.bin");
    assert_eq!(empty.export(&ef)["blocks"], 0);
    let fresh = Dir::regtest();
    assert_eq!(
        fresh.json(&["chain", "import", ef.to_str().unwrap()])["height"],
        0
    );
}

#[test]
fn corrupt_imports_are_all_or_nothing() {
    let a = Dir::regtest();
    a.mine(20);
    let files = tempfile::tempdir().unwrap();
    let first = files.path().join("first.bin");
    a.export(&first);
    a.mine(10);
    let longer = files.path().join("longer.bin");
    a.export(&longer);
    let bytes = std::fs::read(&longer).unwrap();
    let ranges = block_ranges(&bytes);
    assert_eq!(ranges.len(), 30);

    // B holds the first 20 blocks; C is fresh.
    let b = Dir::regtest();
    b.json(&["chain", "import", first.to_str().unwrap()]);
    let b_info = b.info();
    assert_eq!(b_info["height"], 20);
    let c = Dir::regtest();
    let c_info = c.info();
    assert_eq!(c_info["height"], 0);

    let mut bad: Vec<(String, Vec<u8>)> = vec![
        ("random".into(), noise(10_000, 3)),
        ("random with magic".into(), {
            let mut v = bytes[..52].to_vec();
            v.extend(noise(3_000, 4));
            v
        }),
        (
            "truncated in the middle".into(),
            bytes[..bytes.len() / 2].to_vec(),
        ),
        (
            "truncated inside a length".into(),
            bytes[..ranges[10].start - 2].to_vec(),
        ),
        ("one block missing".into(), {
            let mut v = bytes[..ranges[24].start - 4].to_vec();
            v.extend_from_slice(&bytes[ranges[24].end..]);
            v[44] = 29;
            v
        }),
    ];
    // Block 26 fails only after blocks 21..=25 connected: nothing may stay.
    let mut memo = bytes.clone();
    let at = find_in(&memo, ranges[25].clone(), b"chain-tui");
    memo[at + 4] ^= 0x01;
    bad.push(("late block memo flipped".into(), memo));
    let mut last = bytes.clone();
    let at = find_in(&last, ranges[29].clone(), b"chain-tui");
    last[at] ^= 0x20;
    bad.push(("last block memo flipped".into(), last));
    // Single-byte flips at many places inside one middle block (header and coinbase).
    let r = ranges[22].clone();
    for off in (r.start..r.end).step_by(5) {
        let mut v = bytes.clone();
        v[off] ^= 0x80;
        bad.push((format!("byte {} of block 23 flipped", off - r.start), v));
    }

    for (k, (name, data)) in bad.iter().enumerate() {
        let f = write(files.path(), &format!("bad{k}.bin"), data);
        let f = f.to_str().unwrap();
        for (dir, info) in [(&b, &b_info), (&c, &c_info)] {
            let o = dir.run(&["chain", "import", f]);
            assert_clean_failure(&o, &["chain", "import", name]);
            assert_eq!(
                &dir.info(),
                info,
                "{name}: a failed import changed the chain"
            );
        }
    }
    b.validate();
    c.validate();
    // And the good file still imports afterwards.
    assert_eq!(
        b.json(&["chain", "import", longer.to_str().unwrap()])["height"],
        30
    );
    assert_eq!(b.tip(), a.tip());
    b.validate();
}

#[test]
fn damaged_or_foreign_store_gives_a_clear_error() {
    let d = Dir::regtest();
    let store = d.path().join("chain.redb");
    let garbage = noise(200_000, 9);
    std::fs::write(&store, &garbage).unwrap();
    let files = tempfile::tempdir().unwrap();
    let export = files.path().join("x.bin");
    let cmds: [&[&str]; 8] = [
        &["chain", "info"],
        &["chain", "validate"],
        &["chain", "block", "0"],
        &["wallet", "balance"],
        &["mine", "--blocks", "1", "--threads", "1"],
        &["send", "ctrt1qqvtx99d0aygdmc9x7xl6flwkkagv8740c974wce", "1"],
        &["chain", "export", export.to_str().unwrap()],
        &[],
    ];
    for args in cmds {
        let err = d.fail(args);
        assert!(err.contains("chain.redb"), "names the file: {err}");
        assert_eq!(
            std::fs::read(&store).unwrap(),
            garbage,
            "{args:?} overwrote the damaged store"
        );
    }
    assert!(!export.exists());

    // A store of the other network.
    let dev = Dir::devnet();
    dev.mine(1);
    let d2 = Dir::regtest();
    std::fs::copy(dev.path().join("chain.redb"), d2.path().join("chain.redb")).unwrap();
    let err = d2.fail(&["chain", "info"]);
    assert!(err.contains("another network"), "{err}");
    d2.fail(&["mine", "--blocks", "1"]);

    // A damaged keystore.
    let d3 = Dir::regtest();
    d3.mine(1);
    std::fs::write(d3.path().join("wallet.json"), noise(100, 5)).unwrap();
    d3.fail(&["wallet", "balance"]);
    d3.fail(&["wallet", "new"]);
    d3.fail(&["wallet", "address"]);
    d3.fail(&["mine", "--blocks", "1"]);
    assert_eq!(d3.height(), 1);
}

/// Errors are one readable line: an I/O cause must not be repeated (a `{source}` in the message
/// and again in the error chain prints "File exists (os error 17): File exists (os error 17)").
#[test]
fn data_dir_that_is_a_file_gives_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "not-a-dir", b"x");
    let f = file.to_str().unwrap();
    for args in [
        vec!["chain", "info"],
        vec!["wallet", "new"],
        vec!["mine", "--blocks", "1"],
    ] {
        let mut all = vec!["--network", "regtest", "--data-dir", f];
        all.extend_from_slice(&args);
        let o = run_bin(&all, &[]);
        assert_clean_failure(&o, &all);
        assert!(o.stderr.contains("not-a-dir"), "{o:?}");
        let parts: Vec<&str> = o.stderr.trim().split(": ").collect();
        for w in parts.windows(2) {
            assert_ne!(w[0], w[1], "repeated cause in {:?}", o.stderr);
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}

#[test]
fn bench_mine_reports_a_hash_rate() {
    let d = Dir::regtest();
    let v = d.json(&["bench", "mine", "--seconds", "0.3", "--threads", "1"]);
    assert!(v["hashes_per_second"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["threads"], 1);
    assert!(!v["kernel"].as_str().unwrap().is_empty());
    let text = d.ok(&["bench", "mine", "--seconds", "0.2", "--threads", "1"]);
    assert!(text.contains("H/s with 1 threads"), "{text}");
    d.fail(&[
        "bench",
        "mine",
        "--seconds",
        "0.2",
        "--kernel",
        "no-such-kernel",
    ]);
}

/// A chain file is one chain of well-formed blocks: each block must build on the one before it
/// and its transactions must match its header. A file whose block 6 was altered (a nonce bit
/// flipped: the block may still meet the easy regtest target), whose blocks were swapped, or
/// whose block 9 has a byte of its coinbase flipped (same header, so the same hash as a block
/// the node holds) is corrupt even when the node already holds the original blocks, and must be
/// refused without storing anything.
#[test]
fn import_refuses_corrupt_files_of_blocks_the_node_already_has() {
    use chain_tui::core::block::Block;
    let a = Dir::regtest();
    a.mine(12);
    let files = tempfile::tempdir().unwrap();
    let good = files.path().join("good.bin");
    a.export(&good);
    let bytes = std::fs::read(&good).unwrap();
    let ranges = block_ranges(&bytes);
    let before = a.state();

    let mut bad: Vec<(String, Vec<u8>, Option<String>)> = Vec::new();
    for bit in 0..8 {
        let mut v = bytes.clone();
        // The nonce is the last 8 bytes of the 88-byte header.
        v[ranges[5].start + 80] ^= 1 << bit;
        let altered = Block::decode(&v[ranges[5].clone()], usize::MAX)
            .expect("a nonce flip still decodes")
            .hash()
            .to_string();
        bad.push((format!("nonce bit {bit} of block 6"), v, Some(altered)));
    }
    let mut swapped = bytes[..52].to_vec();
    for (i, r) in ranges.iter().enumerate() {
        let r = match i {
            3 => &ranges[4],
            4 => &ranges[3],
            _ => r,
        };
        swapped.extend_from_slice(&(r.len() as u32).to_le_bytes());
        swapped.extend_from_slice(&bytes[r.clone()]);
    }
    bad.push(("blocks 4 and 5 swapped".into(), swapped, None));
    let mut memo = bytes.clone();
    let at = find_in(&memo, ranges[8].clone(), b"chain-tui");
    memo[at] ^= 0x20;
    bad.push(("coinbase memo of block 9 flipped".into(), memo, None));

    let mut accepted = Vec::new();
    for (k, (name, data, altered)) in bad.iter().enumerate() {
        let f = write(files.path(), &format!("bad{k}.bin"), data);
        let args = ["chain", "import", f.to_str().unwrap()];
        let o = a.run(&args);
        if o.ok() {
            accepted.push(format!("{name}: {}", o.stdout.trim()));
        } else {
            assert_clean_failure(&o, &args);
        }
        assert_eq!(a.state(), before, "{name}");
        if let Some(h) = altered
            && a.run(&["chain", "block", h]).ok()
        {
            accepted.push(format!("{name}: the altered block {h} was stored"));
        }
    }
    a.validate();
    assert!(
        accepted.is_empty(),
        "corrupt chain files were imported:\n{}",
        accepted.join("\n")
    );
}

/// Bad input is refused before anything is written: a data dir that does not exist yet must not
/// be created (with a fresh chain store) by a command that fails on its arguments.
#[test]
fn bad_input_does_not_create_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let random = write(files.path(), "random.bin", &noise(1_000, 11));
    let cases: [&[&str]; 5] = [
        &["send", "hello", "1"],
        &[
            "send",
            "ctrt1qqvtx99d0aygdmc9x7xl6flwkkagv8740c974wce",
            "abc",
        ],
        &["chain", "tx", "xyz"],
        &["chain", "block", "zz"],
        &["chain", "import", random.to_str().unwrap()],
    ];
    let mut created = Vec::new();
    for (k, args) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("d{k}"));
        let d = dir.to_str().unwrap();
        let mut all = vec!["--network", "regtest", "--data-dir", d];
        all.extend_from_slice(args);
        let o = run_bin(&all, &[]);
        assert_clean_failure(&o, &all);
        if dir.exists() {
            let files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            created.push(format!("{args:?} created {} with {files:?}", dir.display()));
        }
    }
    // A clap error never gets that far.
    let dir = tmp.path().join("clap");
    let o = run_bin(
        &[
            "--network",
            "foo",
            "--data-dir",
            dir.to_str().unwrap(),
            "wallet",
            "new",
        ],
        &[],
    );
    assert!(!o.ok() && o.stderr.starts_with("error:"), "{o:?}");
    assert!(!dir.exists());
    assert!(
        created.is_empty(),
        "failed commands wrote:\n{}",
        created.join("\n")
    );
}

#[test]
fn encrypted_wallet_needs_its_passphrase() {
    let d = Dir::regtest();
    let addr = d.json(&["--passphrase", "s3cret", "wallet", "new"])["address"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = std::fs::read_to_string(d.path().join("wallet.json")).unwrap();
    assert!(!raw.contains(&addr), "the keystore file is encrypted");
    let err = d.fail(&["wallet", "address"]);
    assert!(err.contains("passphrase"), "{err}");
    d.fail(&["--passphrase", "wrong", "wallet", "address"]);
    d.fail(&["mine", "--blocks", "1"]);
    assert_eq!(d.height(), 0, "no block mined without the key");
    assert_eq!(
        d.json(&["wallet", "address", "--passphrase", "s3cret"])["address"],
        addr.as_str()
    );
    let o = run_regtest(
        &d.dir_arg(),
        &["--json", "mine", "--blocks", "11"],
        &[("CHAIN_TUI_PASSPHRASE", "s3cret")],
    );
    assert!(o.ok(), "{o:?}");
    let before = d.state_with(&["--passphrase", "s3cret"]);
    d.fail(&["--passphrase", "wrong", "send", &addr, "1"]);
    d.fail(&["send", &addr, "1"]);
    assert_eq!(d.state_with(&["--passphrase", "s3cret"]), before);
    let s = d.json(&["--passphrase", "s3cret", "send", &addr, "1"]);
    assert!(is_hex64(s["txid"].as_str().unwrap()));
}

/// A `chain-tui node` child on `d`, listening on 127.0.0.1:0, with its API there too unless
/// `extra` names one.
fn start_node(d: &Dir, extra: &[&str]) -> NodeProcess {
    let mut args = vec!["node", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    if !extra.contains(&"--api") {
        args.extend_from_slice(&["--api", "127.0.0.1:0"]);
    }
    let mut cmd = bin::command();
    cmd.args(["--network", d.network, "--data-dir"])
        .arg(d.path())
        .args(&args)
        .stderr(Stdio::null());
    NodeProcess::start(&mut cmd, d.path())
}

#[test]
fn cli_gives_the_same_answers_with_and_without_a_running_node() {
    let d = Dir::regtest();
    d.new_address();
    d.ok(&["mine", "--blocks", "12", "--threads", "1"]);
    let other = Dir::regtest();
    let to = other.new_address();
    let txid = d.ok(&["send", &to, "1.5"]).trim().to_string();
    d.ok(&["mine", "--blocks", "1", "--threads", "1"]);

    let reads: Vec<Vec<&str>> = vec![
        vec!["chain", "info"],
        vec!["chain", "block", "3"],
        vec!["chain", "block", "13"],
        vec!["chain", "tx", &txid],
        vec!["chain", "validate"],
        vec!["wallet", "balance"],
        vec!["wallet", "history"],
        vec!["wallet", "address"],
        vec![],
    ];
    let unknown = "cd".repeat(32);
    let bad: Vec<Vec<&str>> = vec![
        vec!["chain", "block", "999"],
        vec!["chain", "tx", "ab"],
        vec!["chain", "tx", &unknown],
        vec!["send", &to, "100000"],
    ];
    let answers = |d: &Dir| -> Vec<(Option<i32>, String, String)> {
        let mut out = Vec::new();
        for r in &reads {
            for json in [false, true] {
                let mut args = if json { vec!["--json"] } else { vec![] };
                args.extend_from_slice(r);
                let o = d.run(&args);
                out.push((o.code, o.stdout, o.stderr));
            }
        }
        for b in &bad {
            let o = d.run(b);
            assert_clean_failure(&o, b);
            out.push((o.code, o.stdout, o.stderr));
        }
        out
    };
    let without = answers(&d);
    let msg = d.fail(&["peers", "list"]);
    assert!(msg.contains("no node is running"), "{msg}");

    let node = start_node(&d, &[]);
    let with = answers(&d);
    for (i, (a, b)) in without.iter().zip(&with).enumerate() {
        assert_eq!(a, b, "answer {i} differs with a running node");
    }
    // Commands that change state work through the node too.
    let peers = d.json(&["peers", "list"]);
    assert_eq!(peers["peers"], serde_json::json!([]));
    assert_eq!(d.ok(&["peers", "list"]).trim(), "no peers connected");
    let o = d.run(&["peers", "unban", "nobody"]);
    assert_clean_failure(&o, &["peers", "unban"]);
    let mined = d.ok(&["mine", "--blocks", "2", "--threads", "1"]);
    assert!(mined.starts_with("mined 2 blocks; height 15 "), "{mined}");
    let sent = d.json(&["send", &to, "0.25"]);
    assert_eq!(sent["amount"], COIN / 4);
    let new = d.ok(&["wallet", "new"]).trim().to_string();
    assert_eq!(d.ok(&["wallet", "address"]).trim(), new);
    assert_eq!(d.ok(&["chain", "validate"]).trim(), "VALID");
    let file = d.path().join("chain.bin");
    let exported = d.ok(&["chain", "export", file.to_str().unwrap()]);
    assert!(exported.starts_with("exported 15 blocks"), "{exported}");
    assert_eq!(node.stop(), Some(0), "clean exit on SIGTERM");
    assert!(!d.path().join("node.json").exists(), "node.json removed");

    // The node saved its mempool: the send is still there, and the store opens directly again.
    let info = d.info();
    assert_eq!(info["height"], 15);
    assert_eq!(info["mempool"], 1);
    let fresh = Dir::regtest();
    let o = fresh.ok(&["chain", "import", file.to_str().unwrap()]);
    assert!(o.starts_with("imported 15 blocks; height 15"), "{o}");
    assert_eq!(fresh.tip(), d.tip());
}

#[test]
fn a_node_whose_api_address_is_taken_stops_with_a_clear_message() {
    let d = Dir::regtest();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = d.dir_arg();
    let o = run_regtest(
        &dir,
        &["node", "--listen", "127.0.0.1:0", "--api", &addr],
        &[],
    );
    assert!(!o.ok(), "{o:?}");
    assert!(
        o.stderr
            .contains(&format!("cannot start the API on {addr}")),
        "{o:?}"
    );
    assert!(o.stderr.contains("--api"), "says what to do: {o:?}");
    assert!(!d.path().join("node.json").exists());
    // And a bad --api value is refused before anything starts.
    let o = run_regtest(&dir, &["node", "--api", "nowhere"], &[]);
    assert_eq!(o.code, Some(2), "{o:?}");
}

/// A log written to a pipe or a file carries no ANSI colour codes (it did: every line of a
/// `chain-tui node` log redirected to a file began with escape sequences), and a block mined
/// here is one INFO line with its height, the hashes tried and the time.
#[test]
fn logs_to_a_pipe_are_plain_text_and_tell_what_was_mined() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run_regtest(
        d,
        &["mine", "--blocks", "3", "--threads", "1"],
        &[("RUST_LOG", "info")],
    );
    assert!(out.ok(), "{out:?}");
    assert!(
        !out.stderr.contains('\u{1b}'),
        "ANSI codes in a piped log: {:?}",
        out.stderr
    );
    for h in 1..=3 {
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(&format!("mined block {h} ")))
            .unwrap_or_else(|| panic!("no line for block {h} in {:?}", out.stderr));
        assert!(line.contains("INFO"), "{line}");
        assert!(
            line.contains(" hashes in ") && line.ends_with(" s"),
            "{line}"
        );
    }
}

/// `--node URL` drives a node running elsewhere (another data dir, as a service would be):
/// reads without a token, writes with `--token-file` (its node.json or the bare token), and a
/// missing or stale token says what to do. A node started with `--api-read-token` asks for the
/// token on reads too.
#[test]
fn node_url_drives_a_node_running_elsewhere() {
    let served = Dir::regtest();
    served.new_address();
    let node = start_node(&served, &[]);
    let file = node.node_json();
    let url = format!("http://{}", file["api"].as_str().unwrap());
    let token_json = served.path().join("node.json");
    let bare = served.path().join("token.txt");
    std::fs::write(&bare, format!("{}\n", file["token"].as_str().unwrap())).unwrap();
    // The CLI's own data dir (devnet by default) has nothing: the node's network is used.
    let here = Dir::devnet();
    let here_arg = here.dir_arg();
    let run = |args: &[&str]| {
        let mut all = vec!["--data-dir", &here_arg, "--node", &url];
        all.extend_from_slice(args);
        run_bin(&all, &[])
    };
    let o = run(&["--json", "chain", "info"]);
    assert!(o.ok(), "{o:?}");
    let info: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(
        (info["network"].as_str(), info["height"].as_u64()),
        (Some("regtest"), Some(0))
    );
    // Writes need the token.
    let o = run(&["mine", "--blocks", "2", "--threads", "1"]);
    assert_clean_failure(&o, &["mine"]);
    assert!(o.stderr.contains("--token-file"), "{}", o.stderr);
    for token in [&token_json, &bare] {
        let t = token.to_str().unwrap();
        let o = run(&["--token-file", t, "mine", "--blocks", "2", "--threads", "1"]);
        assert!(o.ok(), "{o:?}");
    }
    let o = run(&["--json", "chain", "info"]);
    let info: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(info["height"], 4, "two mines of two blocks");
    let stale = here.path().join("stale.txt");
    std::fs::write(&stale, "00".repeat(32)).unwrap();
    let o = run(&[
        "--token-file",
        stale.to_str().unwrap(),
        "mine",
        "--blocks",
        "1",
    ]);
    assert_clean_failure(&o, &["mine"]);
    assert!(o.stderr.contains("is not this node's"), "{}", o.stderr);
    // Nothing answers there: said so, and the data dir is not used instead.
    node.stop();
    let o = run(&["chain", "info"]);
    assert_clean_failure(&o, &["chain", "info"]);
    assert!(
        o.stderr.contains("no chain-tui node answered at"),
        "{}",
        o.stderr
    );

    // A node that asks for the token on reads too.
    let guarded = Dir::regtest();
    guarded.new_address();
    let node = start_node(&guarded, &["--api-read-token"]);
    let file = node.node_json();
    let url = format!("http://{}", file["api"].as_str().unwrap());
    let o = run_bin(&["--node", &url, "chain", "info"], &[]);
    assert_clean_failure(&o, &["chain", "info"]);
    assert!(
        o.stderr.contains("needs its token for reads"),
        "{}",
        o.stderr
    );
    let json = guarded.path().join("node.json");
    let o = run_bin(
        &[
            "--node",
            &url,
            "--token-file",
            json.to_str().unwrap(),
            "chain",
            "info",
        ],
        &[],
    );
    assert!(o.ok(), "{o:?}");
    node.stop();
}

/// `attach` fails before it takes the terminal, with one line saying why: nothing listening,
/// something that is not a chain-tui node, a token file without a URL, and a data dir where no
/// node runs.
#[test]
fn attach_says_why_it_cannot_attach() {
    let here = Dir::regtest();
    let here_arg = here.path().to_str().unwrap().to_string();
    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let o = run_bin(&["--data-dir", &here_arg, "attach", &gone], &[]);
    assert_clean_failure(&o, &["attach"]);
    assert!(
        o.stderr.contains("no chain-tui node answered"),
        "{}",
        o.stderr
    );
    // An HTTP server that answers something else.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", other.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut c, _)) = other.accept() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\
                  connection: close\r\n\r\n{\"hello\":\"yes\"}",
            );
        }
    });
    let o = run_bin(&["--data-dir", &here_arg, "attach", &url], &[]);
    assert_clean_failure(&o, &["attach"]);
    assert!(
        o.stderr.contains("no chain-tui node answered"),
        "{}",
        o.stderr
    );
    server.join().unwrap();
    // A token file goes with a URL.
    let o = run_bin(
        &[
            "--data-dir",
            &here_arg,
            "--token-file",
            &here_arg,
            "wallet",
            "balance",
        ],
        &[],
    );
    assert_clean_failure(&o, &["wallet", "balance"]);
    assert!(o.stderr.contains("goes with --node URL"), "{}", o.stderr);
    // No URL and no node on the data dir.
    let o = run_bin(&["--data-dir", &here_arg, "attach"], &[]);
    assert_clean_failure(&o, &["attach"]);
    assert!(o.stderr.contains("no node runs on"), "{}", o.stderr);
}

/// `chain-tui sim` runs the protocol on a virtual network: the same seed prints the same
/// figures, and arguments out of range fail cleanly.
#[test]
fn sim_is_repeatable_from_its_seed_and_refuses_bad_arguments() {
    let args = [
        "--json",
        "sim",
        "--nodes",
        "40",
        "--peers",
        "4",
        "--block-interval",
        "60",
        "--block-size",
        "50000",
        "--minutes",
        "120",
        "--seed",
        "9",
    ];
    let runs: Vec<Value> = (0..2)
        .map(|_| {
            let o = run_bin(&args, &[]);
            assert!(o.ok(), "{o:?}");
            let mut v: Value = serde_json::from_str(&o.stdout).unwrap();
            // Only the wall time may differ.
            assert!(v["wall_seconds"].as_f64().unwrap() > 0.0);
            v.as_object_mut().unwrap().remove("wall_seconds");
            v
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    let v = &runs[0];
    assert_eq!(v["nodes"], 40);
    assert!(v["blocks_mined"].as_u64().unwrap() > 50, "{v}");
    assert!(v["bytes_per_node"].as_u64().unwrap() > 0, "{v}");
    for bad in [
        vec!["sim", "--nodes", "1"],
        vec!["sim", "--latency", "moon"],
        vec!["sim", "--block-interval", "0"],
        vec!["sim", "--peers", "0"],
        vec!["sim", "--relay", "carrier-pigeon"],
    ] {
        let o = run_bin(&bad, &[]);
        assert!(!o.ok() && o.code == Some(2), "{bad:?}: {o:?}");
        assert!(!o.stderr.contains("panicked"), "{bad:?}: {o:?}");
    }
    // The compact relay line, with the counts the JSON gives.
    assert_eq!(v["relay"], "compact");
    assert!(v["compact"]["received"].as_u64().unwrap() > 0, "{v}");
    // `demo --sim` refuses what only real nodes (or a headless run) take, before any terminal
    // is opened; `--relay` and `--seed` need `--sim`.
    for (bad, says) in [
        (vec!["demo", "--sim", "--headless"], "chain-tui sim"),
        (
            vec!["demo", "--sim", "--nodes", "1"],
            "--nodes must be 2 to 2000",
        ),
        (vec!["demo", "--sim", "--mine"], "for real nodes"),
        (vec!["demo", "--relay", "full"], "go with --sim"),
    ] {
        let o = run_bin(&bad, &[]);
        assert!(!o.ok(), "{bad:?}: {o:?}");
        assert!(o.stderr.contains(says), "{bad:?}: {o:?}");
        assert!(!o.stderr.contains("panicked"), "{bad:?}: {o:?}");
    }
}
