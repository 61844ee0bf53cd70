//! The mempool's journal: transactions the mempool took through `submit_txs`, appended to
//! `DATA_DIR/mempool-{0,1}.journal` by writer threads of their own (a file each, so that one
//! group is written while another syncs), and the node thread goes on to the next batch while
//! the disk syncs. What arrives during one write goes into the next, together (group commit):
//! one append and one `fdatasync` (a redb commit takes two syncs, and this is the path every
//! `POST /transactions/new` waits on). Every submitter is answered only once its transactions
//! are on disk.
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
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Writers, each with its own file: while one syncs, the next group goes to another.
const WRITERS: usize = 2;

/// The journal's files in a data dir.
pub(super) fn journal_paths(data_dir: &Path) -> Vec<PathBuf> {
    (0..WRITERS)
        .map(|i| data_dir.join(format!("mempool-{i}.journal")))
        .collect()
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

/// The journal's file and what it folds into.
struct Writer {
    file: File,
    path: PathBuf,
    store: Store,
    pool: Arc<RwLock<Mempool>>,
    limit: u64,
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

/// Fold the pool into the store's saved mempool (durably), then empty the journal files at
/// `paths`.
pub(super) fn compact(
    store: &Store,
    pool: &RwLock<Mempool>,
    paths: &[PathBuf],
) -> Result<(), NodeError> {
    let txs = pool.read().map(|p| p.ordered_txs()).unwrap_or_default();
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
    /// each; a writer folds the pool into `store` when its file passes `limit` bytes.
    pub(super) fn start(
        paths: &[PathBuf],
        store: Store,
        pool: Arc<RwLock<Mempool>>,
        limit: u64,
    ) -> Result<Journal, NodeError> {
        let (queue, rx) = mpsc::channel::<Entry>();
        let rx = Arc::new(Mutex::new(rx));
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
                pool: pool.clone(),
                limit,
            };
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name("chain-tui-journal".into())
                .spawn(move || writer.run(&rx))
                .map_err(|e| {
                    NodeError::Persist(format!("cannot start the mempool journal: {e}"))
                })?;
            threads.push(thread);
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
    fn run(mut self, rx: &Mutex<mpsc::Receiver<Entry>>) {
        loop {
            let group = {
                let Ok(rx) = rx.lock() else { return };
                let Ok(first) = rx.recv() else { return };
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(e) => group.push(e),
                        Err(_) => break,
                    }
                }
                group
            };
            let bytes = records(group.iter().flat_map(|e| &e.txs));
            let written = self
                .file
                .write_all(&bytes)
                .and_then(|()| self.file.sync_data());
            if let Err(e) = &written {
                tracing::error!("appending to {}: {e}", self.path.display());
            }
            for e in group {
                let answer = match &written {
                    Ok(()) => Ok(e.results),
                    Err(err) => Err(NodeError::Persist(format!(
                        "saving the transactions to {}: {err}",
                        self.path.display()
                    ))),
                };
                let _ = e.reply.send(answer);
            }
            if self.file.metadata().is_ok_and(|m| m.len() >= self.limit)
                && let Err(e) = compact(&self.store, &self.pool, std::slice::from_ref(&self.path))
            {
                tracing::error!("folding the mempool journal into the store: {e}");
            }
        }
    }
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
