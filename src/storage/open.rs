//! Opening a store, and the checks that decide whether it may be used.
//!
//! - A new store is made only where no `chain.redb` exists, in a temporary file that is renamed
//!   into place once its genesis block is committed: an empty or truncated file is damage, never
//!   a new chain.
//! - A file that cannot be opened for writing (file mode, immutable flag, read-only mount) is
//!   reported as read-only, not as a foreign file.
//! - Before a store is used, the cheap checks run: the tip's index entry, block data and undo
//!   data, the header links from the tip back to genesis, and the UTXO commitment recomputed from
//!   the UTXO table. A failure refuses the store with the remedy.
//! - A store held by another process (a `chain info` reading it offline, a node shutting down)
//!   is waited for, up to [`LOCK_WAIT`], before the open is refused as "in use".
//! - redb can panic on a damaged file. Every open and check runs inside [`contained`], which
//!   turns a panic into a "damaged store" error (and keeps its message off the terminal).

use super::commitment::UtxoCommitment;
use super::tables::*;
use super::{Reader, Result, StoreError};
use crate::core::block::Block;
use crate::core::hash::BlockHash;
use crate::core::merkle::merkle_root;
use crate::core::params::Params;
use crate::core::rules::BlockUndo;
use redb::ReadableTable;
use std::cell::{Cell, RefCell};
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicU8, Ordering};

/// redb's magic number: the first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

thread_local! {
    /// Set while this thread runs [`contained`]: a panic is recorded, not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Install (once) a panic hook that records panics of [`contained`] sections instead of
/// printing them, and hands every other panic to the hook that was there before.
fn install_quiet_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.try_with(Cell::get).unwrap_or(false) {
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let _ = LAST_PANIC.try_with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Run `f`, turning a panic (redb on a damaged file) into [`StoreError::Damaged`].
pub(super) fn catch<R>(path: &Path, f: impl FnOnce() -> R) -> Result<R> {
    install_quiet_hook();
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|_| {
        let msg = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "unknown panic".into());
        StoreError::Damaged {
            path: path.to_path_buf(),
            problem: format!("the database library panicked on it ({msg})"),
        }
    })
}

/// [`catch`] for a fallible `f`.
pub(super) fn contained<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch(path, f)?
}

/// redb's own check: every page checksum of the committed trees, and the free-space map
/// rebuilt from them (a damaged map is repaired, and said so).
pub(super) fn check_pages(path: &Path, db: &mut redb::Database) -> Result<()> {
    match db.check_integrity() {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(
                "chain store {}: the database library found damage in its own records (the \
                 free-space map or an unfinished commit) and repaired it",
                path.display()
            );
            Ok(())
        }
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))) => Err(StoreError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        Err(e) => Err(StoreError::Damaged {
            path: path.to_path_buf(),
            problem: format!("a page checksum does not match ({e})"),
        }),
    }
}

/// How long an open waits for another process to release the store.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Open the redb file with `open`, retrying while another process holds it (a short-lived
/// offline read, or a node still shutting down), up to `limit` (normally [`LOCK_WAIT`]).
pub(super) fn wait_unlocked<T>(
    path: &Path,
    limit: std::time::Duration,
    mut open: impl FnMut() -> std::result::Result<T, redb::DatabaseError>,
) -> std::result::Result<T, redb::DatabaseError> {
    let end = std::time::Instant::now() + limit;
    let mut said = false;
    loop {
        match open() {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if std::time::Instant::now() < end => {
                if !said {
                    tracing::info!(
                        "chain store {} is in use by another process; waiting up to {} ms",
                        path.display(),
                        limit.as_millis()
                    );
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Whether an I/O error means "this may not be written".
pub(super) fn is_read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    ) || e.raw_os_error() == Some(30) // EROFS, for platforms that map it to Other
}

/// Whether the file starts with redb's magic number.
fn has_redb_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut buf = [0u8; REDB_MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok()
        && buf == REDB_MAGIC
}

/// Explain a failure of redb to open an existing file.
pub(super) fn classify(path: &Path, e: redb::DatabaseError) -> StoreError {
    let damaged = |problem: String| StoreError::Damaged {
        path: path.to_path_buf(),
        problem,
    };
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Open {
            path: path.to_path_buf(),
            reason: "it is in use by another chain-tui process".into(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) if is_read_only(&io) => {
            read_only(path, &io)
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == io::ErrorKind::UnexpectedEof =>
        {
            damaged(format!("the file is shorter than its header says ({io})"))
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => StoreError::Open {
            path: path.to_path_buf(),
            reason: io.to_string(),
        },
        _ if !has_redb_magic(path) => StoreError::Foreign {
            path: path.to_path_buf(),
            reason: "it is not a redb database".into(),
        },
        redb::DatabaseError::UpgradeRequired(v) => StoreError::Foreign {
            path: path.to_path_buf(),
            reason: format!("redb file format {v}, which this build does not read"),
        },
        redb::DatabaseError::RepairAborted => damaged(
            "it was not shut down cleanly and needs a repair, which a read-only open cannot do"
                .into(),
        ),
        other => damaged(other.to_string()),
    }
}

/// The error for a store that cannot be written.
pub(super) fn read_only(path: &Path, e: &io::Error) -> StoreError {
    StoreError::ReadOnly {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A repair callback that logs redb's progress (a repair follows an unclean shutdown and reads
/// the whole file).
pub(super) fn repair_logger(path: &Path) -> impl Fn(&mut redb::RepairSession) + 'static {
    let path = path.to_path_buf();
    let last = AtomicU8::new(u8::MAX);
    move |s: &mut redb::RepairSession| {
        let tenth = (s.progress() * 10.0) as u8;
        if last.swap(tenth, Ordering::Relaxed) != tenth {
            tracing::warn!(
                "chain store {} was not shut down cleanly; checking and repairing it: {}%",
                path.display(),
                u32::from(tenth) * 10
            );
        }
    }
}

/// What the open-time checks found.
pub(super) struct Checked {
    /// The UTXO commitment computed from the table.
    pub computed: UtxoCommitment,
    /// The stored commitment, `None` in a store of format 1 (made before commitments).
    pub stored: Option<(BlockHash, UtxoCommitment)>,
    /// The tip's height.
    pub height: u64,
}

/// The cheap checks: tip, header links, tip block and undo, UTXO commitment. `Err` is a
/// description of the damage.
pub(super) fn check(
    r: &Reader,
    params: &Params,
    format: u32,
) -> std::result::Result<Checked, String> {
    let e = |x: StoreError| x.to_string();
    let tip_hash = r.tip_hash().map_err(e)?;
    let tip = r
        .meta(&tip_hash)
        .map_err(e)?
        .ok_or_else(|| format!("the tip {tip_hash} is not in the block index"))?;
    if tip.hash() != tip_hash {
        return Err(format!(
            "the block index entry of the tip {tip_hash} holds the header of another block"
        ));
    }
    if r.hash_at(tip.height).map_err(e)? != Some(tip_hash) {
        return Err(format!(
            "the active chain at height {} is not the tip {tip_hash}",
            tip.height
        ));
    }
    let last = r
        .active
        .last()
        .map_err(|x| e(x.into()))?
        .map(|(k, _)| k.value());
    if last != Some(tip.height) {
        return Err(format!(
            "the active chain ends at height {last:?}, the tip is at {}",
            tip.height
        ));
    }
    check_tip_block(r, &tip_hash, tip.height, tip.tx_count)?;
    check_links(r, params, tip_hash, tip.height)?;
    let stored = match r.meta.get(K_UTXO_STATE).map_err(|x| e(x.into()))? {
        Some(v) => Some(
            UtxoCommitment::from_record(v.value())
                .ok_or("the UTXO commitment record has the wrong length")?,
        ),
        None if format < 2 => None,
        None => return Err("the UTXO commitment record is missing".into()),
    };
    if let Some((at, _)) = &stored
        && *at != tip_hash
    {
        return Err(format!(
            "the UTXO commitment is of the set after block {at}, but the tip is {tip_hash}"
        ));
    }
    // Never read more rows than the record says (plus one to see an extra): a damaged tree
    // cannot make this loop run long.
    let limit = stored.map_or(u64::MAX, |(_, c)| c.count().saturating_add(1));
    let computed = r.utxo_commitment(limit).map_err(e)?;
    if let Some((_, want)) = &stored
        && computed != *want
    {
        return Err(if computed.count() != want.count() {
            format!(
                "the UTXO set has {}{} coins, its commitment says {}",
                if computed.count() >= limit {
                    "more than "
                } else {
                    ""
                },
                computed.count().min(limit - 1),
                want.count()
            )
        } else {
            format!(
                "the UTXO set does not match its commitment ({} coins, digest {} stored, {} computed)",
                want.count(),
                hex::encode(want.digest()),
                hex::encode(computed.digest())
            )
        });
    }
    Ok(Checked {
        computed,
        stored,
        height: tip.height,
    })
}

/// The tip's block data and undo data.
fn check_tip_block(
    r: &Reader,
    tip: &BlockHash,
    height: u64,
    tx_count: u32,
) -> std::result::Result<(), String> {
    let bytes = r
        .blocks
        .get(&tip.0)
        .map_err(|x| StoreError::from(x).to_string())?
        .ok_or_else(|| format!("the block data of the tip {tip} is missing"))?;
    let block = Block::decode(bytes.value(), usize::MAX)
        .map_err(|x| format!("the block data of the tip {tip} does not decode: {x}"))?;
    drop(bytes);
    if block.hash() != *tip {
        return Err(format!(
            "the block data stored for the tip {tip} is of another block"
        ));
    }
    if merkle_root(&block.txids()) != block.header.merkle_root {
        return Err(format!(
            "the transactions of the tip {tip} do not match its merkle root"
        ));
    }
    if block.txs.len() != tx_count as usize {
        return Err(format!(
            "the tip {tip} has {} transactions, its index entry says {tx_count}",
            block.txs.len()
        ));
    }
    if height > 0 {
        let undo: BlockUndo = r
            .undo_of(tip)
            .map_err(|x| x.to_string())?
            .ok_or_else(|| format!("the undo data of the tip {tip} is missing"))?;
        let inputs: usize = block.txs.iter().map(|t| t.inputs.len()).sum();
        if undo.spent.len() != inputs {
            return Err(format!(
                "the undo data of the tip {tip} has {} spent coins, the block spends {inputs}",
                undo.spent.len()
            ));
        }
    }
    Ok(())
}

/// From the tip back to genesis: each index entry hashes to its key, links to the active
/// chain's block one height below, with less chain work; the chain starts at this network's
/// genesis.
fn check_links(
    r: &Reader,
    params: &Params,
    tip: BlockHash,
    height: u64,
) -> std::result::Result<(), String> {
    let e = |x: StoreError| x.to_string();
    let mut hash = tip;
    let mut meta = r
        .meta(&hash)
        .map_err(e)?
        .ok_or_else(|| format!("block {hash} is not in the block index"))?;
    for h in (1..=height).rev() {
        let prev = meta.header.prev;
        let below = r.hash_at(h - 1).map_err(e)?;
        if below != Some(prev) {
            return Err(format!(
                "the header chain is broken at height {h}: block {hash} builds on {prev}, \
                 the active chain has {} below it",
                below.map_or("nothing".to_string(), |b| b.to_string())
            ));
        }
        let pm = r
            .meta(&prev)
            .map_err(e)?
            .ok_or_else(|| format!("block {prev} (height {}) is not in the block index", h - 1))?;
        if pm.hash() != prev {
            return Err(format!(
                "the block index entry of {prev} (height {}) holds another header",
                h - 1
            ));
        }
        if pm.height != h - 1 || pm.chainwork >= meta.chainwork {
            return Err(format!(
                "the block index entry of {prev} has height {} and chain work not below its child's",
                pm.height
            ));
        }
        hash = prev;
        meta = pm;
    }
    if hash != params.genesis_hash {
        return Err(format!(
            "the active chain starts at {hash}, not at this network's genesis"
        ));
    }
    Ok(())
}

/// Whether the store at `path` looks like a file left by a truncation: empty.
pub(super) fn empty_file_error(path: &Path) -> StoreError {
    StoreError::Damaged {
        path: path.to_path_buf(),
        problem: "the file is empty (0 bytes): it was truncated or never finished; \
                  a new chain is only created where no chain.redb exists"
            .into(),
    }
}

impl Reader {
    /// The tip's hash as recorded.
    pub(super) fn tip_hash(&self) -> Result<BlockHash> {
        let v = self
            .meta
            .get(K_TIP)?
            .ok_or_else(|| StoreError::Corrupt("no chain tip recorded".into()))?;
        let b: [u8; 32] = v
            .value()
            .try_into()
            .map_err(|_| StoreError::Corrupt("the tip record has the wrong length".into()))?;
        Ok(BlockHash(b))
    }

    /// The commitment of the UTXO table, reading at most `limit` rows.
    pub(super) fn utxo_commitment(&self, limit: u64) -> Result<UtxoCommitment> {
        let mut c = UtxoCommitment::default();
        for row in self.utxo.iter()? {
            if c.count() >= limit {
                break;
            }
            let (k, v) = row?;
            c.add(&k.value(), &v.value());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_errors_are_recognised() {
        assert!(is_read_only(&io::Error::from(
            io::ErrorKind::PermissionDenied
        )));
        assert!(is_read_only(&io::Error::from(
            io::ErrorKind::ReadOnlyFilesystem
        )));
        assert!(is_read_only(&io::Error::from_raw_os_error(30)));
        assert!(!is_read_only(&io::Error::from(io::ErrorKind::NotFound)));
    }

    #[test]
    fn a_panic_inside_is_a_damaged_store_error() {
        let p = Path::new("somewhere/chain.redb");
        let e = contained::<()>(p, || panic!("boom"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("boom") && e.contains("damaged") && e.contains("chain validate"),
            "{e}"
        );
        assert_eq!(contained(p, || Ok(5)).unwrap(), 5);
        // Nested sections keep the outer one quiet.
        let r = contained(p, || {
            let _ = contained::<()>(p, || panic!("inner"));
            Ok(QUIET.with(Cell::get))
        });
        assert!(r.unwrap());
        assert!(!QUIET.with(Cell::get));
    }
}
