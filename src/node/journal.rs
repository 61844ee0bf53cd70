//! The mempool's journal: transactions the mempool took through `submit_txs`, appended to
//! `DATA_DIR/mempool-0.journal` by a writer thread of its own, and the node thread goes on to
//! the next batch while the disk syncs. What arrives during one write goes into the next,
//! together (group commit):
//! one append and one `fdatasync` (a redb commit takes two syncs, and this is the path every
//! `POST /transactions/new` waits on). Every submitter is answered only once its transactions
//! are on disk, and groups are answered in the order they were taken: a child is never
//! answered before the parent it spends is durable in the other file.
//!
//! Each record is `length (u32, little-endian) · SHA-256 of the transaction · the transaction's
//! encoding`. Reading stops at the first record that is short or does not match its hash (a
//! write the process did not finish: nobody was answered for it), and says so. The saved
//! mempool is a cache the node re-validates when it starts: the journal is read with it and
//! then folded into the store's saved mempool and emptied, and so again when it grows past its
//! limit ([`COMPACT_AT`] by default) and when the node stops.

use super::NodeError;
use super::mempool::Mempool;
use crate::core::encode::decode_canonical;
use crate::core::hash::Txid;
use crate::core::tx::Transaction;
use crate::storage::Store;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Writers, each with its own file. One: with two, each `fdatasync` carried half as many
/// transactions and eight clients of `POST /transactions/new` got about a tenth fewer through
/// (`chain-tui bench api --clients 8`: 10,200–11,600 tx/s against 11,800–13,400 with one).
const WRITERS: usize = 1;
/// Files any version wrote (0.1 had two writers): all are read when the node starts.
const FILES_EVER: usize = 2;

/// The files the journal writes in a data dir.
pub(super) fn journal_paths(data_dir: &Path) -> Vec<PathBuf> {
    (0..WRITERS).map(|i| journal_path(data_dir, i)).collect()
}

/// Every journal file a node of any version may have left in a data dir: read at start and
/// emptied once folded into the store.
pub(super) fn journal_files(data_dir: &Path) -> Vec<PathBuf> {
    (0..FILES_EVER.max(WRITERS))
        .map(|i| journal_path(data_dir, i))
        .collect()
}

fn journal_path(data_dir: &Path, i: usize) -> PathBuf {
    data_dir.join(format!("mempool-{i}.journal"))
}

/// A journal this long is folded into the store's saved mempool and emptied (the default of
/// `NodeConfig::journal_limit`).
pub(super) const COMPACT_AT: u64 = 32 << 20;

/// A batch's answers, sent once its transactions are durable (or the write failed).
pub(super) type Answer = oneshot::Sender<Result<Vec<Result<Txid, NodeError>>, NodeError>>;

struct Entry {
    txs: Vec<Transaction>,
    results: Vec<Result<Txid, NodeError>>,
    reply: Answer,
}

/// Most batches one write takes.
const MAX_GROUP: usize = 256;
/// Bytes before each transaction: its length and hash.
const HEADER: usize = 4 + 32;

pub(super) struct Journal {
    queue: Option<mpsc::Sender<Entry>>,
    threads: Vec<JoinHandle<()>>,
}

/// What the writers share: the queue with the number of the last group taken from it, and the
/// number of the last group answered.
struct Shared {
    queue: Mutex<(mpsc::Receiver<Entry>, u64)>,
    answered: Mutex<u64>,
    turn: Condvar,
}

/// The journal's file and what it folds into.
struct Writer {
    file: File,
    path: PathBuf,
    store: Store,
    limit: u64,
    /// Why this writer takes no more writes (a failed write it could not cut off).
    broken: Option<String>,
}

/// The records of a journal file, oldest first, and what was wrong after the last good one
/// (`None`: nothing).
pub(super) fn read(path: &Path) -> Result<(Vec<Transaction>, Option<String>), NodeError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(|e| NodeError::Persist(format!("reading {}: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => {
            return Err(NodeError::Persist(format!(
                "opening {}: {e}",
                path.display()
            )));
        }
    };
    let mut txs = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let read_so_far = txs.len();
        let bad = |why: &str| {
            Some(format!(
                "{} bytes at offset {at} are {why}; the {read_so_far} records before them were \
                 read",
                bytes.len() - at,
            ))
        };
        let Some(head) = bytes.get(at..at + HEADER) else {
            return Ok((txs, bad("a cut-off record")));
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[..4]);
        let len = u32::from_le_bytes(len) as usize;
        if len > super::MAX_TX_SIZE {
            return Ok((
                txs,
                bad("no record (its length is beyond any transaction's)"),
            ));
        }
        let Some(body) = bytes.get(at + HEADER..at + HEADER + len) else {
            return Ok((txs, bad("a cut-off record")));
        };
        if Sha256::digest(body).as_slice() != &head[4..] {
            return Ok((txs, bad("a record that does not match its hash")));
        }
        match decode_canonical::<Transaction>(body, super::MAX_TX_SIZE) {
            Ok(tx) => txs.push(tx),
            Err(e) => return Ok((txs, bad(&format!("no transaction ({e})")))),
        }
        at += HEADER + len;
    }
    Ok((txs, None))
}

/// The records for `txs`, one after another.
fn records<'a>(txs: impl Iterator<Item = &'a Transaction>) -> Vec<u8> {
    let mut out = Vec::new();
    for tx in txs {
        let body = tx.encode();
        // A transaction the mempool took is far below 4 GiB.
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&body));
        out.extend_from_slice(&body);
    }
    out
}

/// Save the whole pool as the store's saved mempool (durably, replacing it), then empty the
/// journal files at `paths`. Only while nothing else writes the saved mempool: when the node
/// starts and when it stops.
pub(super) fn compact(
    store: &Store,
    pool: &RwLock<Mempool>,
    paths: &[PathBuf],
) -> Result<(), NodeError> {
    // A pool left poisoned by a panic is not known to be whole: keep the journal then.
    let txs = pool.read().map_err(|_| NodeError::Stopped)?.ordered_txs();
    store.write(true, |b| b.save_mempool(&txs))?;
    for path in paths {
        let emptied = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(0).and_then(|()| f.sync_all()));
        match emptied {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(NodeError::Persist(format!(
                    "emptying {}: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

impl Journal {
    /// Open (or create, private) the journal files at `paths`, appending, a writer thread
    /// each; a writer folds its file into `store` when it passes `limit` bytes.
    pub(super) fn start(paths: &[PathBuf], store: Store, limit: u64) -> Result<Journal, NodeError> {
        let (queue, rx) = mpsc::channel::<Entry>();
        let shared = Arc::new(Shared {
            queue: Mutex::new((rx, 0)),
            answered: Mutex::new(0),
            turn: Condvar::new(),
        });
        let mut threads = Vec::new();
        for path in paths {
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|f| crate::fsutil::make_private(path).map(|()| f));
            let file = opened
                .map_err(|e| NodeError::Persist(format!("opening {}: {e}", path.display())))?;
            let writer = Writer {
                file,
                path: path.clone(),
                store: store.clone(),
                limit,
                broken: None,
            };
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name("chain-tui-journal".into())
                .spawn(move || writer.run(&shared))
                .map_err(|e| {
                    NodeError::Persist(format!("cannot start the mempool journal: {e}"))
                })?;
            threads.push(thread);
        }
        // The files' names are durable too (a power cut would otherwise lose a new file).
        if let Some(dir) = paths.first().and_then(|p| p.parent()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| NodeError::Persist(format!("syncing {}: {e}", dir.display())))?;
        }
        Ok(Journal {
            queue: Some(queue),
            threads,
        })
    }

    /// Write `txs` (accepted into the mempool) and then answer `results` on `reply`.
    pub(super) fn write(
        &self,
        txs: Vec<Transaction>,
        results: Vec<Result<Txid, NodeError>>,
        reply: Answer,
    ) {
        let entry = Entry {
            txs,
            results,
            reply,
        };
        let unsent = match &self.queue {
            Some(q) => q.send(entry).err().map(|e| e.0),
            None => Some(entry),
        };
        // Stopped: the transactions are in the mempool, which the node saves when it stops.
        if let Some(e) = unsent {
            let _ = e.reply.send(Err(NodeError::Stopped));
        }
    }

    /// Finish every write asked for, and stop.
    pub(super) fn stop(&mut self) {
        self.queue = None;
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("the mempool journal panicked");
            }
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Writer {
    /// Take what waits (one writer at a time), write it, answer; until the queue closes.
    fn run(mut self, shared: &Shared) {
        loop {
            // Groups are numbered in the order they leave the queue.
            let (group, number) = {
                let Ok(mut q) = shared.queue.lock() else {
                    return;
                };
                let Ok(first) = q.0.recv() else { return };
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match q.0.try_recv() {
                        Ok(e) => group.push(e),
                        Err(_) => break,
                    }
                }
                q.1 += 1;
                (group, q.1)
            };
            let bytes = records(group.iter().flat_map(|e| &e.txs));
            let written = append(&mut self.file, &self.path, &mut self.broken, &bytes);
            // Answered in that order: a transaction is never answered before one that came
            // earlier (its parent, perhaps) is on disk in the other file.
            let Ok(mut answered) = shared.answered.lock() else {
                return;
            };
            while *answered + 1 != number {
                answered = match shared.turn.wait(answered) {
                    Ok(a) => a,
                    Err(_) => return,
                };
            }
            *answered = number;
            shared.turn.notify_all();
            drop(answered);
            for e in group {
                let answer = match &written {
                    Ok(()) => Ok(e.results),
                    Err(why) => Err(NodeError::Persist(why.clone())),
                };
                let _ = e.reply.send(answer);
            }
            if self.broken.is_none()
                && self.file.metadata().is_ok_and(|m| m.len() >= self.limit)
                && let Err(e) = fold(&self.store, &self.path)
            {
                tracing::error!("folding the mempool journal into the store: {e}");
            }
        }
    }
}

/// Append `bytes` to `file` (at `path`) and sync. A write or sync that fails is cut off again,
/// so that no record written later sits behind a damaged one; if even that fails, `broken`
/// says why and every later write is refused (nothing is answered `201` that a reader could not
/// reach).
fn append(
    file: &mut File,
    path: &Path,
    broken: &mut Option<String>,
    bytes: &[u8],
) -> Result<(), String> {
    if let Some(why) = broken {
        return Err(why.clone());
    }
    let shown = path.display().to_string();
    let before = file
        .metadata()
        .map_err(|e| format!("reading the length of {shown}: {e}"))?
        .len();
    let written = file.write_all(bytes).and_then(|()| file.sync_data());
    let Err(e) = written else { return Ok(()) };
    tracing::error!("appending to {shown}: {e}");
    let why = format!("saving the transactions to {shown}: {e}");
    if let Err(cut) = file.set_len(before).and_then(|()| file.sync_all()) {
        tracing::error!("cutting {shown} back after a failed write: {cut}; it takes no more");
        *broken = Some(format!(
            "{shown} could not be cut back after a failed write ({cut}); restart the node"
        ));
    }
    Err(why)
}

/// Fold the journal at `path` into the store's saved mempool (durably, adding its
/// transactions; what was confirmed meanwhile goes when the node next starts or stops), then
/// empty it. Nothing is taken out of the store here: another write may have just put a
/// transaction there.
fn fold(store: &Store, path: &Path) -> Result<(), NodeError> {
    let (txs, damage) = read(path)?;
    if let Some(why) = damage {
        tracing::warn!("{}: {why}", path.display());
    }
    store.write(true, |b| txs.iter().try_for_each(|tx| b.add_mempool(tx)))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(0).and_then(|()| f.sync_all()))
        .map_err(|e| NodeError::Persist(format!("emptying {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::address::Address;
    use crate::core::amount::Amount;
    use crate::core::hash::Txid;
    use crate::core::tx::{OutPoint, TxIn, TxOut};

    fn tx(n: u8) -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prevout: OutPoint {
                    txid: Txid([n; 32]),
                    vout: u32::from(n),
                },
                pubkey: [n; 32],
                signature: [n; 64],
            }],
            outputs: vec![TxOut {
                amount: Amount::from_units(u64::from(n) * 1000),
                address: Address::from_hash([n; 20]),
            }],
            lock_height: 0,
            memo: Vec::new(),
        }
    }

    #[test]
    fn a_write_that_fails_and_cannot_be_cut_back_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mempool-0.journal");
        let good = records([tx(1)].iter());
        std::fs::write(&path, &good).unwrap();
        // A handle that cannot write: the append fails, and so does cutting it back.
        let mut file = File::open(&path).unwrap();
        let mut broken = None;
        let bytes = records([tx(2)].iter());
        assert!(append(&mut file, &path, &mut broken, &bytes).is_err());
        let why = broken.clone().expect("the writer takes no more");
        assert!(why.contains("could not be cut back"), "{why}");
        // Every later write is refused, and the file still reads as before.
        assert_eq!(append(&mut file, &path, &mut broken, &bytes), Err(why));
        assert_eq!(read(&path).unwrap(), (vec![tx(1)], None));
        // A writable handle appends and syncs.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut fine = None;
        append(&mut file, &path, &mut fine, &bytes).unwrap();
        assert_eq!(fine, None);
        assert_eq!(read(&path).unwrap(), (vec![tx(1), tx(2)], None));
    }

    #[test]
    fn records_read_back_and_a_torn_or_flipped_tail_is_cut_off_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mempool.journal");
        assert_eq!(read(&path).unwrap(), (Vec::new(), None));
        let txs: Vec<Transaction> = (1..=5).map(tx).collect();
        let bytes = records(txs.iter());
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap(), (txs.clone(), None));
        // A write cut short: the last record is dropped, the rest read, and it is said.
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let (got, why) = read(&path).unwrap();
        assert_eq!(got, txs[..4]);
        assert!(why.unwrap().contains("cut-off record"));
        // A byte flipped in the third record: the first two are read.
        let mut flipped = bytes.clone();
        let third = 2 * (bytes.len() / 5) + HEADER + 7;
        flipped[third] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        let (got, why) = read(&path).unwrap();
        assert_eq!(got, txs[..2]);
        assert!(why.unwrap().contains("does not match its hash"));
        // A length beyond any transaction.
        let mut huge = bytes[..bytes.len() / 5].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 40]);
        std::fs::write(&path, &huge).unwrap();
        let (got, why) = read(&path).unwrap();
        assert_eq!(got, txs[..1]);
        assert!(why.unwrap().contains("beyond any transaction"));
    }
}
