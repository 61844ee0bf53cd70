//! A chain store that knows it is damaged: empty and truncated files, flipped bytes in the UTXO
//! set, a block and the tip are refused at open with the remedy; thousands of random byte changes
//! never make the open panic or hang; `chain validate` names damaged index entries; a read-only
//! store is reported as read-only.
//!
//! Damage is made two ways: by changing bytes of the file (what a disk or a careless copy does;
//! redb does not verify its page checksums on a normal open), and, where a test needs one exact
//! entry changed, by writing that entry with redb itself (a change no redb check can see, only
//! ours).

use crate::common::{TestChain, address, coinbase_of, key, pay, spend};
use chain_tui::core::amount::Amount;
use chain_tui::core::block::Block;
use chain_tui::core::params::Network;
use chain_tui::core::tx::OutPoint;
use chain_tui::storage::Store;
use redb::{ReadableTable, TableDefinition};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::bin::{self, BIN, Out};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("blocks");
const UTXO: TableDefinition<[u8; 36], [u8; 37]> = TableDefinition::new("utxo");
const UNDO: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("undo");
const TXINDEX: TableDefinition<[u8; 32], [u8; 36]> = TableDefinition::new("tx_index");
const ADDR_COINS: TableDefinition<[u8; 56], [u8; 37]> = TableDefinition::new("address_coins");

/// What a built store holds, for the tests to damage.
struct Built {
    dir: tempfile::TempDir,
    /// Blocks of the active chain, genesis excluded, oldest first.
    blocks: Vec<Block>,
    /// A block that spends coins (it has undo data).
    spender: Block,
}

impl Built {
    fn store(&self) -> PathBuf {
        self.dir.path().join("chain.redb")
    }
    fn tip(&self) -> &Block {
        self.blocks.last().unwrap()
    }
}

/// A regtest store of 24 blocks with a few payments between three keys, closed.
fn build() -> Built {
    let mut t = TestChain::new();
    let (a, b, c) = (key(1), key(2), key(3));
    let mut tip = t.mine(12, address(&a));
    let read_block = |t: &TestChain, h: u64| {
        let r = t.chain.store().read().unwrap();
        r.block(&r.hash_at(h).unwrap().unwrap()).unwrap().unwrap()
    };
    let b1 = read_block(&t, 1);
    let b2 = read_block(&t, 2);
    let subsidy = b1.txs[0].outputs[0].amount.units();
    let tx1 = spend(
        t.params,
        &[(coinbase_of(&b1), &a)],
        vec![
            pay(address(&b), 20_0000_0000),
            pay(address(&a), subsidy - 20_0000_0000 - 1000),
        ],
    );
    let tx2 = spend(
        t.params,
        &[(coinbase_of(&b2), &a)],
        vec![pay(address(&c), subsidy - 1000)],
    );
    tip = t.mine_on(
        &tip,
        address(&a),
        vec![tx1.clone(), tx2],
        Amount::from_units(2000),
    );
    // B pays C from the coin it just got (spent a block later).
    let tx3 = spend(
        t.params,
        &[(
            OutPoint {
                txid: tx1.txid(),
                vout: 0,
            },
            &b,
        )],
        vec![
            pay(address(&c), 5_0000_0000),
            pay(address(&b), 14_9999_0000),
        ],
    );
    tip = t.mine_on(&tip, address(&b), vec![tx3], Amount::from_units(10_000));
    t.mine_on(&tip, address(&c), vec![], Amount::ZERO);
    t.mine(9, address(&a));
    let height = t.tip().height;
    let blocks: Vec<Block> = (1..=height).map(|h| read_block(&t, h)).collect();
    let spender = blocks[13].clone();
    assert_eq!(spender.txs.len(), 2, "block 14 spends a coin");
    let TestChain { dir, chain, .. } = t;
    drop(chain);
    Built {
        dir,
        blocks,
        spender,
    }
}

/// `chain-tui --network regtest --data-dir DIR args…` to its end.
fn run(dir: &Path, args: &[&str]) -> Out {
    bin::run(bin::regtest(dir).args(args))
}

/// Open the store; the error text, or `None` if it opened.
fn open_error(path: &Path) -> Option<String> {
    Store::open(path, Network::Regtest)
        .err()
        .map(|e| e.to_string())
}

/// The message of a refused damaged store: says damaged, names the file and the remedy.
fn assert_damage_refused(path: &Path, what: &str) -> String {
    let err = open_error(path).unwrap_or_else(|| panic!("{what}: the damaged store opened"));
    assert!(err.contains("damaged"), "{what}: {err}");
    assert!(err.contains("chain.redb"), "{what}: names the file: {err}");
    assert!(err.contains("chain validate"), "{what}: remedy: {err}");
    assert!(err.contains("re-sync"), "{what}: remedy: {err}");
    err
}

/// Every position of `needle` in `hay`.
fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// Change one entry with redb itself.
fn with_db(path: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(path).expect("raw open");
    let tx = db.begin_write().unwrap();
    f(&tx);
    tx.commit().unwrap();
}

#[test]
fn zero_length_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    std::fs::write(&path, b"").unwrap();
    let err = open_error(&path).expect("an empty chain.redb must not open as a new chain");
    assert!(err.contains("empty") && err.contains("chain.redb"), "{err}");
    let Out { code, stderr, .. } = run(dir.path(), &["chain", "info"]);
    let ok = code == Some(0);
    assert!(!ok, "chain info on an empty store succeeded");
    assert!(stderr.contains("empty"), "{stderr}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "overwritten");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["chain.redb"], "nothing is created beside it");
    // A new chain is made only where there is no store.
    let fresh = tempfile::tempdir().unwrap();
    let store = Store::open(&fresh.path().join("chain.redb"), Network::Regtest).unwrap();
    assert_eq!(store.read().unwrap().tip().unwrap().height, 0);
}

#[test]
fn truncated_store_is_refused() {
    let built = build();
    let path = built.store();
    let full = std::fs::read(&path).unwrap();
    for len in [
        100,
        512,
        4096,
        full.len() / 3,
        full.len() / 2,
        full.len() - 4096,
        full.len() - 1,
    ] {
        std::fs::write(&path, &full[..len]).unwrap();
        let err = assert_damage_refused(&path, &format!("truncated to {len} bytes"));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            &full[..len],
            "a refused store is left as it was ({err})"
        );
    }
}

#[test]
fn flipped_utxo_entry_is_found_at_open() {
    // One bit of a coin's amount, written through redb (its checksums stay valid).
    let built = build();
    let path = built.store();
    let clean = std::fs::read(&path).unwrap();
    with_db(&path, |tx| {
        let mut t = tx.open_table(UTXO).unwrap();
        let (k, mut v) = {
            let (k, v) = t.first().unwrap().unwrap();
            (k.value(), v.value())
        };
        v[2] ^= 0x01;
        t.insert(k, v).unwrap();
    });
    let err = assert_damage_refused(&path, "UTXO value changed");
    assert!(err.contains("UTXO"), "{err}");
    let Out { code, stderr, .. } = run(built.dir.path(), &["chain", "info"]);
    let ok = code == Some(0);
    assert!(!ok && stderr.contains("damaged"), "{stderr}");

    // A coin deleted from the UTXO set.
    std::fs::write(&path, &clean).unwrap();
    with_db(&path, |tx| {
        let mut t = tx.open_table(UTXO).unwrap();
        let k = t.last().unwrap().unwrap().0.value();
        t.remove(k).unwrap();
    });
    let err = assert_damage_refused(&path, "UTXO entry removed");
    assert!(err.contains("UTXO"), "{err}");

    // The same change made to the file's bytes: a coin's amount, wherever it is stored.
    std::fs::write(&path, &clean).unwrap();
    let tip = built.tip();
    let out = &tip.txs[0].outputs[0];
    let mut coin = Vec::new();
    coin.extend_from_slice(&out.amount.units().to_le_bytes());
    coin.extend_from_slice(&out.address.hash());
    coin.extend_from_slice(&(built.blocks.len() as u64).to_le_bytes());
    coin.push(1);
    let at = find_all(&clean, &coin);
    assert!(!at.is_empty(), "the tip's coinbase coin is in the file");
    let mut bytes = clean.clone();
    for i in at {
        bytes[i + 1] ^= 0x40;
    }
    std::fs::write(&path, &bytes).unwrap();
    assert_damage_refused(&path, "coin bytes flipped in the file");
}

#[test]
fn flipped_byte_in_the_tip_block_is_found_at_open() {
    let built = build();
    let path = built.store();
    let clean = std::fs::read(&path).unwrap();
    let enc = built.tip().encode();
    let at = find_all(&clean, &enc);
    assert!(!at.is_empty(), "the tip block's bytes are in the file");
    // A byte in the middle of its transactions, then one in its header, in the file: redb's
    // page checksums (checked at open) or the tip check find it.
    for offset in [enc.len() - 20, 40] {
        let mut bytes = clean.clone();
        for i in &at {
            bytes[i + offset] ^= 0x04;
        }
        std::fs::write(&path, &bytes).unwrap();
        assert_damage_refused(&path, &format!("tip block byte {offset}"));
        // The same change written through redb, checksums and all: the tip check finds it.
        std::fs::write(&path, &clean).unwrap();
        let mut changed = enc.clone();
        changed[offset] ^= 0x04;
        let hash = built.tip().hash().0;
        with_db(&path, |tx| {
            let mut t = tx.open_table(BLOCKS).unwrap();
            t.insert(hash, changed.as_slice()).unwrap();
        });
        let err = assert_damage_refused(&path, &format!("tip block byte {offset} via redb"));
        assert!(err.contains("tip"), "{err}");
        std::fs::write(&path, &clean).unwrap();
    }
}

#[test]
fn damaged_tip_record_is_found_at_open() {
    let built = build();
    let path = built.store();
    let clean = std::fs::read(&path).unwrap();
    // The tip pointer moved back one block: the UTXO set is of a later block.
    let parent = built.tip().header.prev;
    with_db(&path, |tx| {
        let mut t = tx.open_table(META).unwrap();
        t.insert("tip", parent.0.as_slice()).unwrap();
    });
    let err = assert_damage_refused(&path, "tip moved back");
    assert!(err.contains("tip"), "{err}");
    // The tip pointer with a flipped bit.
    std::fs::write(&path, &clean).unwrap();
    let mut tip = built.tip().hash().0;
    tip[7] ^= 0x10;
    with_db(&path, |tx| {
        let mut t = tx.open_table(META).unwrap();
        t.insert("tip", tip.as_slice()).unwrap();
    });
    assert_damage_refused(&path, "tip hash flipped");
    // The tip's block data gone.
    std::fs::write(&path, &clean).unwrap();
    let hash = built.tip().hash().0;
    with_db(&path, |tx| {
        tx.open_table(BLOCKS).unwrap().remove(hash).unwrap();
    });
    let err = assert_damage_refused(&path, "tip block removed");
    assert!(err.contains("block data"), "{err}");
}

/// A small xorshift generator: the fuzz loop is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug)]
enum Outcome {
    Opened,
    Refused,
    Panicked(String),
}

/// Open (and, if `validate`, validate) a copy of damaged bytes in its own thread; `None` if it
/// did not finish in time.
fn try_open(path: PathBuf, validate: bool) -> Option<Outcome> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| {
            if validate {
                match Store::open_to_inspect(&path, Network::Regtest) {
                    Ok(s) => chain_tui::node::validate::validate_chain(
                        &s,
                        &chain_tui::core::rules::SerialVerifier,
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                Store::open(&path, Network::Regtest)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        });
        let _ = std::fs::remove_file(&path);
        let _ = tx.send(match r {
            Ok(Ok(())) => Outcome::Opened,
            Ok(Err(_)) => Outcome::Refused,
            Err(p) => Outcome::Panicked(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
            ),
        });
    });
    rx.recv_timeout(Duration::from_secs(20)).ok()
}

#[test]
fn byte_damage_fuzz_never_panics_or_hangs() {
    let built = build();
    let clean = std::fs::read(built.store()).unwrap();
    // Pages that hold anything (the rest of the file is unused space).
    let live: Vec<usize> = clean
        .chunks(4096)
        .enumerate()
        .filter(|(_, p)| p.iter().any(|b| *b != 0))
        .map(|(i, _)| i)
        .collect();
    // Each run writes a copy and redb syncs it: memory-backed files where there are some.
    let work = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let mut rng = Rng(0x5eed_c0de_1234_5678);
    let pick = |rng: &mut Rng| {
        if rng.below(4) == 0 {
            rng.below(clean.len())
        } else {
            (live[rng.below(live.len())] * 4096 + rng.below(4096)).min(clean.len() - 1)
        }
    };
    let (mut opened, mut refused, mut panics, mut hangs) = (0, 0, Vec::new(), Vec::new());
    let started = Instant::now();
    let mut runs = 0usize;
    // Every byte of the header region flipped in turn, then random single bytes, then random
    // groups of eight bytes; the last runs validate instead of opening.
    let header = 512usize.min(clean.len());
    let (single, multi, validate) = (1200usize, 600usize, 120usize);
    for n in 0..header + single + multi + validate {
        let mut bytes = clean.clone();
        if n < header {
            bytes[n] ^= 0x01;
        } else if n < header + single {
            let i = pick(&mut rng);
            bytes[i] ^= (rng.below(255) + 1) as u8;
        } else {
            for _ in 0..8 {
                let i = pick(&mut rng);
                bytes[i] = rng.next() as u8;
            }
        }
        let path = work.path().join(format!("run{n}.redb"));
        std::fs::write(&path, &bytes).unwrap();
        let kept = bytes;
        runs += 1;
        match try_open(path, n >= header + single + multi) {
            Some(Outcome::Opened) => opened += 1,
            Some(Outcome::Refused) => refused += 1,
            Some(Outcome::Panicked(m)) => panics.push((n, m)),
            None => {
                // Kept for a look at what redb does with it.
                let at = std::env::temp_dir().join(format!("chain-tui-hang-{n}.redb"));
                let _ = std::fs::write(&at, &kept);
                hangs.push((n, at));
            }
        }
    }
    eprintln!(
        "{runs} damaged stores in {:.1} s: {opened} opened (damage in unused space or data the \
         cheap checks do not read), {refused} refused, {} panics, {} hangs",
        started.elapsed().as_secs_f64(),
        panics.len(),
        hangs.len()
    );
    assert!(panics.is_empty(), "panics escaped: {panics:?}");
    assert!(hangs.is_empty(), "opens that did not finish: {hangs:?}");
    assert!(
        refused > runs / 10,
        "the damage is found: {refused} of {runs}"
    );
}

/// `chain validate` through the binary: (valid, the JSON answer).
fn validate(dir: &Path) -> (bool, Value) {
    let Out {
        stdout: out,
        stderr: err,
        ..
    } = run(dir, &["--json", "chain", "validate"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (v["valid"].as_bool() == Some(true), v)
}

/// The damaged entries `chain validate` lists, as "index: entry: problem" lines.
fn damage_lines(v: &Value) -> Vec<String> {
    v["damage"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| format!("{}: {}: {}", d["index"], d["entry"], d["problem"]))
        .collect()
}

#[test]
fn validate_names_a_damaged_address_index() {
    let built = build();
    let (ok, v) = validate(built.dir.path());
    assert!(ok, "clean store: {v}");
    // An entry moved to another address: that address's balance changes, no coin does.
    with_db(&built.store(), |tx| {
        let mut t = tx.open_table(ADDR_COINS).unwrap();
        let (mut k, v) = {
            let (k, v) = t.first().unwrap().unwrap();
            (k.value(), v.value())
        };
        t.remove(k).unwrap();
        k[0] ^= 0xff;
        t.insert(k, v).unwrap();
    });
    let (ok, v) = validate(built.dir.path());
    assert!(!ok, "validate says VALID with a damaged address index: {v}");
    let lines = damage_lines(&v);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("address index") && l.contains("coin")),
        "{lines:?}"
    );
    let text = run(built.dir.path(), &["chain", "validate"]).stdout;
    assert!(text.contains("address index"), "{text}");
}

#[test]
fn validate_names_a_damaged_tx_index() {
    let built = build();
    let txid = built.spender.txs[1].txid();
    with_db(&built.store(), |tx| {
        tx.open_table(TXINDEX).unwrap().remove(txid.0).unwrap();
    });
    let (ok, v) = validate(built.dir.path());
    assert!(
        !ok,
        "validate says VALID with a tx index entry missing: {v}"
    );
    let lines = damage_lines(&v);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("tx index") && l.contains(&txid.to_string())),
        "{lines:?}"
    );
}

#[test]
fn validate_names_damaged_undo_data() {
    let built = build();
    let hash = built.spender.hash();
    with_db(&built.store(), |tx| {
        let mut t = tx.open_table(UNDO).unwrap();
        let mut v = t.get(hash.0).unwrap().unwrap().value().to_vec();
        // Postcard: the last byte is the coinbase flag of the last spent coin.
        let last = v.len() - 1;
        v[last] ^= 1;
        t.insert(hash.0, v.as_slice()).unwrap();
    });
    let (ok, v) = validate(built.dir.path());
    assert!(!ok, "validate says VALID with damaged undo data: {v}");
    let lines = damage_lines(&v);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("undo data") && l.contains(&hash.to_string())),
        "{lines:?}"
    );
    // And a block's undo data removed.
    with_db(&built.store(), |tx| {
        tx.open_table(UNDO).unwrap().remove(hash.0).unwrap();
    });
    let (ok, v) = validate(built.dir.path());
    assert!(!ok);
    assert!(
        damage_lines(&v)
            .iter()
            .any(|l| l.contains("undo data") && l.contains("missing")),
        "{v}"
    );
}

/// Makes `path` unwritable even for root (the immutable flag) until dropped.
struct Immutable(PathBuf);
impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Immutable(path.to_path_buf()))
    }
}
impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Whether this process can open `path` for writing.
fn writable(path: &Path) -> bool {
    std::fs::OpenOptions::new().write(true).open(path).is_ok()
}

#[test]
fn read_only_store_is_reported_as_read_only() {
    let built = build();
    let path = built.store();
    let before = std::fs::read(&path).unwrap();
    // The file mode stops a normal user; root needs the immutable flag.
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms.clone()).unwrap();
    let _guard = if writable(&path) {
        Immutable::set(&path)
    } else {
        None
    };
    if writable(&path) {
        eprintln!("cannot make a file read-only here (root without chattr): not tested");
    } else {
        let err = open_error(&path).expect("opened a read-only store for writing");
        assert!(
            err.contains("read-only") && err.contains("chain.redb"),
            "{err}"
        );
        assert!(!err.contains("not a chain-tui"), "{err}");
        let Out { code, stderr, .. } = run(built.dir.path(), &["chain", "info"]);
        let ok = code == Some(0);
        assert!(!ok && stderr.contains("read-only"), "{stderr}");
        // validate works on it, read-only.
        let (ok, v) = validate(built.dir.path());
        assert!(ok, "{v}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "unchanged");
    }
    drop(_guard);
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
}

#[test]
fn store_on_a_read_only_mount_is_reported_as_read_only() {
    let built = build();
    let dir = built.dir.path();
    // A private mount namespace where the data dir is bound read-only (needs root; skipped
    // with a note where unshare cannot do it).
    let script = r#"mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" || exit 97
shift; exec "$@""#;
    let out = bin::clean(&mut Command::new("unshare"))
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(dir)
        .arg(BIN)
        .args(["--network", "regtest", "--data-dir"])
        .arg(dir)
        .args(["chain", "info"])
        .output();
    match out {
        Ok(o) if o.status.code() != Some(97) && !o.stderr.starts_with(b"unshare:") => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "chain info wrote to a read-only mount");
            assert!(
                err.contains("read-only") && !err.contains("not a chain-tui"),
                "{err}"
            );
        }
        _ => eprintln!("no private read-only mount possible here: not tested"),
    }
}

/// A store held for a moment by another holder (an offline `chain info`, a node still closing)
/// is waited for, not refused: a node started at that moment used to exit with "in use".
#[test]
fn a_store_held_briefly_is_waited_for() {
    let b = build();
    let held = Store::open(&b.store(), Network::Regtest).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        drop(held);
    });
    let opened = Store::open(&b.store(), Network::Regtest);
    release.join().unwrap();
    assert!(
        opened.is_ok(),
        "a store released after 0.4 s was refused: {:?}",
        opened.err().map(|e| e.to_string())
    );
}

/// A store that stays held is refused with "in use" once the wait is over, and is unchanged.
#[test]
fn a_store_held_for_good_is_refused_as_in_use() {
    let b = build();
    let _held = Store::open(&b.store(), Network::Regtest).unwrap();
    let start = Instant::now();
    let err = open_error(&b.store()).expect("a second open of a held store succeeded");
    assert!(err.contains("in use"), "{err}");
    assert!(
        start.elapsed() >= chain_tui::storage::LOCK_WAIT - Duration::from_millis(100),
        "refused after {:?}, before the wait was over",
        start.elapsed()
    );
}
