//! Chain storage in redb: the block index (every known block, on any branch), block data, the
//! active chain by height, the UTXO set, undo data, the transaction index, the address index
//! (unspent coins and history per address), the leaf set and the saved mempool.
//!
//! All changes go through [`Store::write`], one redb write transaction: the node commits one per
//! accepted block (a reorganisation is a single transaction too), so after a crash the store is
//! at the last committed block, never between two. Reads go through a [`Reader`], a consistent
//! snapshot that never blocks the writer. Nothing here is held in memory beyond redb's cache.
//!
//! The store knows when it is damaged: the UTXO set has a commitment ([`UtxoCommitment`]) kept
//! with the tip and updated in the same transaction as every connect and disconnect, and
//! [`Store::open`] runs cheap checks (tip, its block and undo data, header links back to
//! genesis, the commitment against the UTXO table) before the store is used; see [`open`] for
//! what is refused and how. [`Store::open_to_inspect`] opens a store without those checks (and
//! read-only when the file cannot be written) for `chain validate`, which checks everything.
//!
//! redb options: durable commits use two-phase commit, which redb's design document
//! recommends when the data written can come from an attacker (blocks and transactions from
//! peers); a repair after an unclean shutdown (which verifies every page checksum) is logged
//! through a repair callback.

mod audit;
mod commitment;
mod open;
mod tables;

use crate::core::block::{Block, BlockHeader};
use crate::core::encode::{decode_canonical, encode};
use crate::core::hash::{BlockHash, Txid};
use crate::core::params::{Network, Params};
use crate::core::pow::Work;
use crate::core::rules::{BlockUndo, Coin, CoinView};
use crate::core::tx::{OutPoint, Transaction};
use crate::core::{Address, Amount};
pub use audit::{IndexAudit, IndexDamage};
pub use commitment::UtxoCommitment;
pub use open::LOCK_WAIT;
use redb::{Database, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tables::*;

/// Version of the on-disk layout. 2: the UTXO commitment record (a store of format 1 is
/// upgraded at its first open by computing it).
const FORMAT: u32 = 2;

/// What the remedy for a damaged store is, in every message that reports one.
const REMEDY: &str = "run `chain-tui chain validate` to see what is damaged, then restore \
chain.redb from a backup, or move it aside and re-sync (start the node with peers, or \
`chain-tui chain import FILE`)";

/// redb's page cache (read cache and write buffer together) at most. redb's default, 1 GiB,
/// kept every page read or written until the cache held that much: resident memory grew with
/// the chain. Mining and sync touch the branch pages and a few leaves per block, which this
/// holds many times over; other reads come from the operating system's file cache.
pub const CACHE_BYTES: usize = 32 << 20;

/// A storage failure. Corruption and foreign files are reported, never panicked on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open chain store {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "{path} is not a chain-tui chain store ({reason}); if it was one, it is damaged: restore \
         it from a backup, or move it aside and re-sync"
    )]
    Foreign { path: PathBuf, reason: String },
    #[error("chain store {path} is damaged: {problem}. Remedy: {REMEDY}")]
    Damaged { path: PathBuf, problem: String },
    #[error(
        "{path} is read-only ({reason}): the node writes to its chain store; make the file and \
         its directory writable, remount the disk read-write, or use another --data-dir \
         (`chain-tui chain validate` can check a read-only store)"
    )]
    ReadOnly { path: PathBuf, reason: String },
    #[error(
        "chain store {path} belongs to another network (genesis {found}); this node runs {expected}"
    )]
    WrongNetwork {
        path: PathBuf,
        expected: Network,
        found: String,
    },
    #[error("chain store is damaged: {0}")]
    Corrupt(String),
    #[error("chain store I/O: {0}")]
    Db(String),
    #[error("chain store has no table {0}")]
    MissingTable(String),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_err!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

pub type Result<T> = std::result::Result<T, StoreError>;

/// Validation state of a stored block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockStatus {
    /// Data stored, passed context-free and header checks, not (yet) connected.
    Stored,
    /// Has been connected to the active chain at least once.
    Valid,
    /// Failed full validation; never connect it or its descendants.
    Invalid,
}

/// One block index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub header: BlockHeader,
    pub height: u64,
    #[serde(with = "work_bytes")]
    pub chainwork: Work,
    pub status: BlockStatus,
    pub size: u32,
    pub tx_count: u32,
}

mod work_bytes {
    use crate::core::pow::Work;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    pub fn serialize<S: Serializer>(w: &Work, s: S) -> Result<S::Ok, S::Error> {
        w.to_be_bytes().serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Work, D::Error> {
        Ok(Work::from_be_bytes(<[u8; 32]>::deserialize(d)?))
    }
}

impl BlockMeta {
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }
}

/// Where a confirmed transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    pub block: BlockHash,
    pub index: u32,
}

/// One line of an address's history: a transaction that paid to it or spent from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub height: u64,
    pub txid: Txid,
    pub received: Amount,
    pub sent: Amount,
}

/// The stored chain. Cheap to clone; share it between threads.
#[derive(Clone)]
pub struct Store {
    db: Arc<DbBox>,
    params: &'static Params,
    path: PathBuf,
}

/// The database: writable, or opened read-only for inspection.
enum Db {
    Rw(Database),
    Ro(ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> std::result::Result<redb::ReadTransaction, redb::TransactionError> {
        match self {
            Db::Rw(db) => db.begin_read(),
            Db::Ro(db) => db.begin_read(),
        }
    }
}

/// The database, closed inside [`open::catch`]: redb writes its free-space map when it closes,
/// and a damaged map makes that panic. Every [`Store`] clone and every [`Reader`] holds it, so
/// the file is closed (and its lock released) when the last of them goes; [`Closed`] says when.
struct DbBox {
    db: Option<Db>,
    path: PathBuf,
    closed: Arc<Closed>,
}

impl DbBox {
    fn new(db: Db, path: &Path) -> Arc<DbBox> {
        Arc::new(DbBox {
            db: Some(db),
            path: path.to_path_buf(),
            closed: Arc::new(Closed::default()),
        })
    }
}

/// Set once a store's database file is closed: its last [`Store`] clone and [`Reader`] gone.
#[derive(Default)]
pub struct Closed {
    done: std::sync::Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Closed {
    /// Wait up to `limit` for the file to close; whether it did.
    pub fn wait(&self, limit: std::time::Duration) -> bool {
        let end = std::time::Instant::now() + limit;
        let mut done = match self.done.lock() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        while !*done {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            done = match self.cv.wait_timeout(done, left) {
                Ok((d, _)) => d,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    fn set(&self) {
        let mut done = match self.done.lock() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        *done = true;
        self.cv.notify_all();
    }
}

/// A [`Store`] that does not keep the database open: [`StoreRef::get`] gives the store while
/// its owner still holds it, and nothing once the owner has let it go.
#[derive(Clone)]
pub struct StoreRef {
    db: std::sync::Weak<DbBox>,
    params: &'static Params,
    path: PathBuf,
}

impl StoreRef {
    /// The store, while it is open.
    pub fn get(&self) -> Option<Store> {
        self.db.upgrade().map(|db| Store {
            db,
            params: self.params,
            path: self.path.clone(),
        })
    }
    pub fn params(&self) -> &'static Params {
        self.params
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::ops::Deref for DbBox {
    type Target = Db;
    fn deref(&self) -> &Db {
        match &self.db {
            Some(db) => db,
            None => unreachable!("the database is only taken out when the box is dropped"),
        }
    }
}

impl Drop for DbBox {
    fn drop(&mut self) {
        if let Some(db) = self.db.take()
            && let Err(e) = open::catch(&self.path, move || drop(db))
        {
            tracing::error!("closing the chain store: {e}");
        }
        self.closed.set();
    }
}

fn decode_meta(bytes: &[u8]) -> Result<BlockMeta> {
    decode_canonical(bytes, 1024)
        .map_err(|e| StoreError::Corrupt(format!("block index entry: {e}")))
}

/// The store's identity as its metadata records it.
struct Identity {
    format: u32,
}

impl Store {
    /// Open the store at `path` for `network`, or create it if no file is there. The store is
    /// checked before it is returned (see the module doc); damage, a file of another program,
    /// a store of another network or a file that cannot be written are refused with an error
    /// that says so. A store of format 1 gets its UTXO commitment computed (and logged).
    pub fn open(path: &Path, network: Network) -> Result<Store> {
        Store::open_waiting(path, network, LOCK_WAIT)
    }

    /// [`Store::open`], waiting up to `lock_wait` (instead of [`LOCK_WAIT`]) for another
    /// holder of the file to let it go.
    pub fn open_waiting(
        path: &Path,
        network: Network,
        lock_wait: std::time::Duration,
    ) -> Result<Store> {
        let params = network.params();
        if !Store::existing_file(path)? {
            Store::create_new(path, params)?;
        }
        open::contained(path, || {
            let started = std::time::Instant::now();
            let mut db = open::wait_unlocked(path, lock_wait, || {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .set_repair_callback(open::repair_logger(path))
                    .open(path)
            })
            .map_err(|e| open::classify(path, e))?;
            let opened = started.elapsed();
            open::check_pages(path, &mut db)?;
            let paged = started.elapsed();
            let store = Store {
                db: DbBox::new(Db::Rw(db), path),
                params,
                path: path.to_path_buf(),
            };
            let (height, coins) = store.check_at_open()?;
            tracing::info!(
                "chain store {}: height {height}, {coins} coins; opened in {:.1} ms, page \
                 checksums {:.1} ms, chain checks {:.1} ms",
                path.display(),
                opened.as_secs_f64() * 1e3,
                (paged - opened).as_secs_f64() * 1e3,
                (started.elapsed() - paged).as_secs_f64() * 1e3
            );
            Ok(store)
        })
    }

    /// A new store held in memory only (redb's in-memory backend), with `network`'s genesis
    /// block: for the network simulator's fully validating nodes, many to a process. Nothing
    /// is written to disk; `cache_bytes` bounds redb's page cache.
    pub fn in_memory(network: Network, cache_bytes: usize) -> Result<Store> {
        let params = network.params();
        let path = PathBuf::from("(in memory)");
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let store = Store {
            db: DbBox::new(Db::Rw(db), &path),
            params,
            path,
        };
        store.write(true, |b| b.init_genesis(params))?;
        Ok(store)
    }

    /// Open an existing store without the consistency checks, for `chain validate` (which
    /// checks everything itself): still refused if it is not a chain-tui store of `network`.
    /// A file that cannot be written is opened read-only; the store is never upgraded here.
    pub fn open_to_inspect(path: &Path, network: Network) -> Result<Store> {
        let params = network.params();
        if !Store::existing_file(path)? {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                reason: "there is no chain store here".into(),
            });
        }
        open::contained(path, || {
            let db = match open::wait_unlocked(path, LOCK_WAIT, || {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .set_repair_callback(open::repair_logger(path))
                    .open(path)
            }) {
                Ok(db) => Db::Rw(db),
                Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
                    if open::is_read_only(&e) =>
                {
                    Db::Ro(
                        redb::Builder::new()
                            .open_read_only(path)
                            .map_err(|e| open::classify(path, e))?,
                    )
                }
                Err(e) => return Err(open::classify(path, e)),
            };
            let store = Store {
                db: DbBox::new(db, path),
                params,
                path: path.to_path_buf(),
            };
            store.identity()?;
            Ok(store)
        })
    }

    /// Whether a store file exists at `path` (refusing what cannot be one: an empty file, a
    /// directory).
    fn existing_file(path: &Path) -> Result<bool> {
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => Err(StoreError::Foreign {
                path: path.to_path_buf(),
                reason: "it is not a regular file".into(),
            }),
            Ok(m) if m.len() == 0 => Err(open::empty_file_error(path)),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::Open {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        }
    }

    /// Make a new store at `path`: built in a temporary file beside it and renamed into place
    /// once the genesis block is committed, so a crash never leaves a half-made store.
    fn create_new(path: &Path, params: &'static Params) -> Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let io_err = |e: std::io::Error, at: &Path| {
            if open::is_read_only(&e) {
                open::read_only(at, &e)
            } else {
                StoreError::Open {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            }
        };
        let tmp = tempfile::Builder::new()
            .prefix(".chain.redb.")
            .suffix(".new")
            .tempfile_in(dir)
            .map_err(|e| io_err(e, dir))?;
        open::contained(path, || {
            let db = Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(tmp.path())
                .map_err(|e| StoreError::Open {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            let store = Store {
                db: DbBox::new(Db::Rw(db), tmp.path()),
                params,
                path: path.to_path_buf(),
            };
            store.write(true, |b| b.init_genesis(params))
        })?;
        match tmp.persist_noclobber(path) {
            Ok(_) => {}
            // Another process made one meanwhile: open that one.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(io_err(e.error, path)),
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(e, dir))
    }

    /// Format and network from the metadata.
    fn identity(&self) -> Result<Identity> {
        let foreign = |reason: &str| StoreError::Foreign {
            path: self.path.clone(),
            reason: reason.into(),
        };
        let rtx = self.db.begin_read()?;
        let meta = match rtx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(foreign("no chain-tui metadata"));
            }
            Err(e) => return Err(e.into()),
        };
        let genesis = meta.get(K_GENESIS)?.map(|v| v.value().to_vec());
        let format = meta.get(K_FORMAT)?.map(|v| v.value().to_vec());
        let (Some(g), Some(f)) = (genesis, format) else {
            return Err(foreign("no chain-tui metadata"));
        };
        let format = match <[u8; 4]>::try_from(f.as_slice()).map(u32::from_le_bytes) {
            Ok(v @ 1..=FORMAT) => v,
            _ => return Err(foreign("unsupported store format version")),
        };
        if g != self.params.genesis_hash.0 {
            return Err(StoreError::WrongNetwork {
                path: self.path.clone(),
                expected: self.params.network,
                found: hex::encode(&g),
            });
        }
        Ok(Identity { format })
    }

    /// The checks before a store is used; upgrades a format-1 store. Returns the height and
    /// the number of coins.
    fn check_at_open(&self) -> Result<(u64, u64)> {
        let Identity { format } = self.identity()?;
        let damaged = |problem: String| StoreError::Damaged {
            path: self.path.clone(),
            problem,
        };
        let checked = {
            let r = match self.read() {
                Ok(r) => r,
                // A table a newer version added: create it (opening it in a write does).
                Err(StoreError::MissingTable(_)) => {
                    self.write(true, |_| Ok::<_, StoreError>(()))?;
                    self.read()?
                }
                Err(e) => return Err(damaged(e.to_string())),
            };
            open::check(&r, self.params, format).map_err(damaged)?
        };
        if checked.stored.is_none() {
            let tip = self.read()?.tip_hash()?;
            let record = checked.computed.to_record(&tip);
            self.write(true, |b| {
                b.meta.insert(K_UTXO_STATE, record.as_slice())?;
                b.meta.insert(K_FORMAT, FORMAT.to_le_bytes().as_slice())?;
                Ok::<_, StoreError>(())
            })?;
            tracing::warn!(
                "chain store {} was made by an earlier chain-tui and had no UTXO commitment: \
                 computed it from its {} coins as they are; run `chain-tui chain validate` once \
                 to check them against the blocks",
                self.path.display(),
                checked.computed.count()
            );
        }
        Ok((checked.height, checked.computed.count()))
    }

    pub fn params(&self) -> &'static Params {
        self.params
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// A reference that does not keep the database open.
    pub fn downgrade(&self) -> StoreRef {
        StoreRef {
            db: Arc::downgrade(&self.db),
            params: self.params,
            path: self.path.clone(),
        }
    }
    /// Set once the database file is closed (every clone and reader of this store gone).
    pub fn closed(&self) -> Arc<Closed> {
        self.db.closed.clone()
    }
    /// Run `f` (reads of this store), turning a panic of the database library on a damaged
    /// file into [`StoreError::Damaged`].
    pub fn contain<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        open::contained(&self.path, f)
    }

    /// Whether the store was opened read-only (only by [`Store::open_to_inspect`]).
    pub fn is_read_only(&self) -> bool {
        matches!(**self.db, Db::Ro(_))
    }

    /// A consistent read snapshot.
    pub fn read(&self) -> Result<Reader> {
        let tx = self.db.begin_read()?;
        let open = |e: redb::TableError| match e {
            redb::TableError::TableDoesNotExist(t) => StoreError::MissingTable(t),
            e => e.into(),
        };
        Ok(Reader {
            meta: tx.open_table(META).map_err(open)?,
            index: tx.open_table(INDEX).map_err(open)?,
            blocks: tx.open_table(BLOCKS).map_err(open)?,
            active: tx.open_table(ACTIVE).map_err(open)?,
            utxo: tx.open_table(UTXO).map_err(open)?,
            undo: tx.open_table(UNDO).map_err(open)?,
            txindex: tx.open_table(TXINDEX).map_err(open)?,
            addr_coins: tx.open_table(ADDR_COINS).map_err(open)?,
            addr_hist: tx.open_table(ADDR_HIST).map_err(open)?,
            leaves: tx.open_table(LEAVES).map_err(open)?,
            mempool: tx.open_table(MEMPOOL).map_err(open)?,
            net: tx.open_table(NET).map_err(open)?,
            seen: match tx.open_table(SEEN) {
                Ok(t) => Some(t),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(e.into()),
            },
            _db: self.db.clone(),
        })
    }

    /// The writable database, or the error of a store opened read-only.
    fn writable(&self) -> Result<&Database> {
        match &**self.db {
            Db::Rw(db) => Ok(db),
            Db::Ro(_) => Err(StoreError::ReadOnly {
                path: self.path.clone(),
                reason: "opened read-only".into(),
            }),
        }
    }

    /// Run `f` in one write transaction: committed when it returns `Ok`, aborted (nothing
    /// changed) when it returns `Err`. `durable`: the commit is on disk when this returns
    /// (two-phase commit); otherwise it becomes durable with the next durable commit (batched
    /// imports and sync). A panic of the database library (a damaged file) is an error.
    pub fn write<T, E: From<StoreError>>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Batch<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        match open::catch(&self.path, || self.write_inner(durable, f)) {
            Ok(r) => r,
            Err(e) => Err(e.into()),
        }
    }

    fn write_inner<T, E: From<StoreError>>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Batch<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut tx = self.writable()?.begin_write().map_err(StoreError::from)?;
        tx.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(StoreError::from)?;
        if durable {
            tx.set_two_phase_commit(true);
        }
        let result = {
            let mut batch = open_tables(&tx)?;
            f(&mut batch)
        };
        match result {
            Ok(v) => {
                tx.commit().map_err(StoreError::from)?;
                Ok(v)
            }
            Err(e) => {
                // Dropping an uncommitted transaction discards it; abort says so explicitly.
                let _ = tx.abort();
                Err(e)
            }
        }
    }
}

/// A point the store can be rolled back to (all-or-nothing imports).
pub struct Checkpoint(redb::Savepoint);

impl Store {
    /// Remember the current state.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let tx = self.writable()?.begin_write()?;
        let sp = tx
            .ephemeral_savepoint()
            .map_err(|e| StoreError::Db(e.to_string()))?;
        tx.abort()?;
        Ok(Checkpoint(sp))
    }

    /// Roll back to `cp`, durably.
    pub fn restore(&self, cp: &Checkpoint) -> Result<()> {
        let mut tx = self.writable()?.begin_write()?;
        tx.restore_savepoint(&cp.0)
            .map_err(|e| StoreError::Db(e.to_string()))?;
        tx.set_two_phase_commit(true);
        tx.commit()?;
        Ok(())
    }

    /// Make every earlier non-durable commit durable.
    pub fn flush(&self) -> Result<()> {
        self.write(true, |_| Ok::<_, StoreError>(()))
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The tables every reader and writer opens.
macro_rules! reader_methods {
    () => {
        /// The active chain's tip.
        pub fn tip(&self) -> Result<BlockMeta> {
            let hash = self
                .meta
                .get(K_TIP)?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| StoreError::Corrupt("no chain tip".into()))?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("bad tip record".into()))?;
            self.meta(&BlockHash(hash))?
                .ok_or_else(|| StoreError::Corrupt("tip block is not in the index".into()))
        }

        /// Block index entry of `hash`, on any branch.
        pub fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>> {
            match self.index.get(&hash.0)? {
                Some(v) => Ok(Some(decode_meta(v.value())?)),
                None => Ok(None),
            }
        }

        /// Full block data.
        pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>> {
            match self.blocks.get(&hash.0)? {
                Some(v) => Block::decode(v.value(), usize::MAX)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt(format!("block {hash}: {e}"))),
                None => Ok(None),
            }
        }

        /// Undo data of a block (stored for blocks of the active chain above genesis).
        pub fn undo_of(&self, hash: &BlockHash) -> Result<Option<BlockUndo>> {
            match self.undo.get(&hash.0)? {
                Some(v) => decode_canonical(v.value(), usize::MAX)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt(format!("undo data of {hash}: {e}"))),
                None => Ok(None),
            }
        }

        /// Hash of the active chain's block at `height`.
        pub fn hash_at(&self, height: u64) -> Result<Option<BlockHash>> {
            Ok(self.active.get(height)?.map(|v| BlockHash(v.value())))
        }

        /// An unspent output.
        pub fn coin(&self, o: &OutPoint) -> Result<Option<Coin>> {
            match self.utxo.get(&o.to_key())? {
                Some(v) => Ok(Some(coin_from_bytes(&v.value()))),
                None => Ok(None),
            }
        }

        /// Where a transaction of the active chain is.
        pub fn tx_location(&self, txid: &Txid) -> Result<Option<TxLocation>> {
            Ok(self.txindex.get(&txid.0)?.map(|v| {
                let v = v.value();
                let mut b = [0u8; 32];
                b.copy_from_slice(&v[..32]);
                let mut i = [0u8; 4];
                i.copy_from_slice(&v[32..]);
                TxLocation {
                    block: BlockHash(b),
                    index: u32::from_be_bytes(i),
                }
            }))
        }

        /// Unspent coins paying `addr`.
        pub fn address_coins(&self, addr: &Address) -> Result<Vec<(OutPoint, Coin)>> {
            let (lo, hi) = addr_range::<56>(addr);
            let mut out = Vec::new();
            for row in self.addr_coins.range(lo..=hi)? {
                let (k, v) = row?;
                let k = k.value();
                let mut op = [0u8; 36];
                op.copy_from_slice(&k[20..]);
                out.push((OutPoint::from_key(&op), coin_from_bytes(&v.value())));
            }
            Ok(out)
        }

        /// Confirmed history of `addr`, oldest first.
        pub fn address_history(&self, addr: &Address) -> Result<Vec<HistoryEntry>> {
            let (lo, hi) = addr_range::<60>(addr);
            let mut out = Vec::new();
            for row in self.addr_hist.range(lo..=hi)? {
                let (k, v) = row?;
                out.push(history_entry(&k.value(), &v.value()));
            }
            Ok(out)
        }

        /// One page of `addr`'s confirmed history, newest first: `limit` entries after the
        /// `skip` newest, and how many entries there are in all.
        pub fn address_history_page(
            &self,
            addr: &Address,
            skip: usize,
            limit: usize,
        ) -> Result<(Vec<HistoryEntry>, u64)> {
            let (lo, hi) = addr_range::<60>(addr);
            let mut out = Vec::new();
            let mut total = 0u64;
            for row in self.addr_hist.range(lo..=hi)?.rev() {
                let (k, v) = row?;
                let n = total as usize;
                total += 1;
                if n >= skip && out.len() < limit {
                    out.push(history_entry(&k.value(), &v.value()));
                }
            }
            Ok((out, total))
        }

        /// Up to `limit` entries of `addr`'s confirmed history from height `from` up, oldest
        /// first.
        pub fn address_history_from(
            &self,
            addr: &Address,
            from: u64,
            limit: usize,
        ) -> Result<Vec<HistoryEntry>> {
            let (mut lo, hi) = addr_range::<60>(addr);
            lo[20..28].copy_from_slice(&from.to_be_bytes());
            let mut out = Vec::new();
            for row in self.addr_hist.range(lo..=hi)?.take(limit) {
                let (k, v) = row?;
                out.push(history_entry(&k.value(), &v.value()));
            }
            Ok(out)
        }

        /// Blocks no stored block builds on (candidate tips).
        pub fn leaves(&self) -> Result<Vec<BlockHash>> {
            let mut out = Vec::new();
            for row in self.leaves.iter()? {
                out.push(BlockHash(row?.0.value()));
            }
            Ok(out)
        }

        /// Transactions saved from the mempool.
        pub fn saved_mempool(&self) -> Result<Vec<Transaction>> {
            let mut out = Vec::new();
            for row in self.mempool.iter()? {
                let (_, v) = row?;
                // A damaged saved transaction is skipped: the mempool is a cache.
                if let Ok(tx) = decode_canonical::<Transaction>(v.value(), 1 << 20) {
                    out.push(tx);
                }
            }
            Ok(out)
        }
    };
}

/// An address-history row: key address ‖ height (big-endian) ‖ txid, value received ‖ sent.
fn history_entry(k: &[u8; 60], v: &[u8; 16]) -> HistoryEntry {
    let mut h = [0u8; 8];
    h.copy_from_slice(&k[20..28]);
    let mut t = [0u8; 32];
    t.copy_from_slice(&k[28..]);
    let mut r = [0u8; 8];
    r.copy_from_slice(&v[..8]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&v[8..]);
    HistoryEntry {
        height: u64::from_be_bytes(h),
        txid: Txid(t),
        received: Amount::from_units(u64::from_le_bytes(r)),
        sent: Amount::from_units(u64::from_le_bytes(s)),
    }
}

fn addr_range<const N: usize>(addr: &Address) -> ([u8; N], [u8; N]) {
    let mut lo = [0u8; N];
    let mut hi = [0xffu8; N];
    lo[..20].copy_from_slice(&addr.hash());
    hi[..20].copy_from_slice(&addr.hash());
    (lo, hi)
}

fn coin_to_bytes(c: &Coin) -> [u8; 37] {
    let mut b = [0u8; 37];
    b[..8].copy_from_slice(&c.output.amount.units().to_le_bytes());
    b[8..28].copy_from_slice(&c.output.address.hash());
    b[28..36].copy_from_slice(&c.height.to_le_bytes());
    b[36] = c.coinbase as u8;
    b
}

fn coin_from_bytes(b: &[u8; 37]) -> Coin {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    let mut ad = [0u8; 20];
    ad.copy_from_slice(&b[8..28]);
    let mut h = [0u8; 8];
    h.copy_from_slice(&b[28..36]);
    Coin {
        output: crate::core::TxOut {
            amount: Amount::from_units(u64::from_le_bytes(a)),
            address: Address::from_hash(ad),
        },
        height: u64::from_le_bytes(h),
        coinbase: b[36] != 0,
    }
}

/// Block index reads shared by a snapshot ([`Reader`]) and a write transaction ([`Batch`]).
pub trait ChainRead {
    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>>;
    fn tip(&self) -> Result<BlockMeta>;
}

impl ChainRead for Reader {
    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>> {
        Reader::meta(self, hash)
    }
    fn tip(&self) -> Result<BlockMeta> {
        Reader::tip(self)
    }
}

impl ChainRead for Batch<'_> {
    fn meta(&self, hash: &BlockHash) -> Result<Option<BlockMeta>> {
        Batch::meta(self, hash)
    }
    fn tip(&self) -> Result<BlockMeta> {
        Batch::tip(self)
    }
}

/// A read snapshot.
pub struct Reader {
    meta: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    index: redb::ReadOnlyTable<[u8; 32], &'static [u8]>,
    blocks: redb::ReadOnlyTable<[u8; 32], &'static [u8]>,
    active: redb::ReadOnlyTable<u64, [u8; 32]>,
    utxo: redb::ReadOnlyTable<[u8; 36], [u8; 37]>,
    undo: redb::ReadOnlyTable<[u8; 32], &'static [u8]>,
    txindex: redb::ReadOnlyTable<[u8; 32], [u8; 36]>,
    addr_coins: redb::ReadOnlyTable<[u8; 56], [u8; 37]>,
    addr_hist: redb::ReadOnlyTable<[u8; 60], [u8; 16]>,
    leaves: redb::ReadOnlyTable<[u8; 32], ()>,
    mempool: redb::ReadOnlyTable<[u8; 32], &'static [u8]>,
    net: redb::ReadOnlyTable<&'static str, &'static [u8]>,
    /// Absent in stores written before first-seen times were recorded.
    seen: Option<redb::ReadOnlyTable<[u8; 32], u64>>,
    /// The database stays open while a reader lives (declared last: dropped after the tables).
    _db: Arc<DbBox>,
}

impl Reader {
    reader_methods!();

    /// Blocks (any branch) and confirmed transactions whose hash lies in `lo..=hi` (a hex
    /// prefix widened with zeros and with f's), at most `limit` of each.
    pub fn hashes_in(
        &self,
        lo: [u8; 32],
        hi: [u8; 32],
        limit: usize,
    ) -> Result<(Vec<BlockHash>, Vec<Txid>)> {
        let mut blocks = Vec::new();
        for e in self.index.range(lo..=hi)?.take(limit) {
            blocks.push(BlockHash(e?.0.value()));
        }
        let mut txs = Vec::new();
        for e in self.txindex.range(lo..=hi)?.take(limit) {
            txs.push(Txid(e?.0.value()));
        }
        Ok((blocks, txs))
    }

    /// When this node first stored the block (milliseconds since the epoch), if recorded.
    pub fn seen_ms(&self, hash: &BlockHash) -> Result<Option<u64>> {
        match &self.seen {
            Some(t) => Ok(t.get(&hash.0)?.map(|v| v.value())),
            None => Ok(None),
        }
    }

    /// Network records whose key starts with `prefix`.
    pub fn net_records(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let tx_table = &self.net;
        let mut out = Vec::new();
        for row in tx_table.iter()? {
            let (k, v) = row?;
            if k.value().starts_with(prefix) {
                out.push((k.value().to_string(), v.value().to_vec()));
            }
        }
        Ok(out)
    }

    /// Visit every unspent coin, in outpoint order.
    pub fn for_each_coin(&self, mut f: impl FnMut(OutPoint, Coin)) -> Result<()> {
        for row in self.utxo.iter()? {
            let (k, v) = row?;
            f(OutPoint::from_key(&k.value()), coin_from_bytes(&v.value()));
        }
        Ok(())
    }
}

/// What consensus checks read, from a reader's snapshot or a batch's own writes (a store
/// error reads as "no such coin").
macro_rules! coin_view {
    ($ty:ty) => {
        impl CoinView for $ty {
            fn coin(&self, o: &OutPoint) -> Option<Coin> {
                <$ty>::coin(self, o).ok().flatten()
            }
            fn was_spent(&self, o: &OutPoint) -> bool {
                let coin = <$ty>::coin(self, o);
                was_spent_in(self.tx_location(&o.txid), coin, |h| self.block(h), o)
            }
        }
    };
}
coin_view!(Reader);

/// Whether `o` existed (its transaction is confirmed with that many outputs) and is gone.
fn was_spent_in(
    loc: Result<Option<TxLocation>>,
    coin: Result<Option<Coin>>,
    block: impl FnOnce(&BlockHash) -> Result<Option<Block>>,
    o: &OutPoint,
) -> bool {
    let (Ok(None), Ok(Some(loc))) = (coin, loc) else {
        return false;
    };
    matches!(block(&loc.block), Ok(Some(b))
        if b.txs.get(loc.index as usize).is_some_and(|t| (o.vout as usize) < t.outputs.len()))
}

/// Tables opened inside one write transaction: read methods see the transaction's own writes.
pub struct Batch<'a> {
    meta: redb::Table<'a, &'static str, &'static [u8]>,
    index: redb::Table<'a, [u8; 32], &'static [u8]>,
    blocks: redb::Table<'a, [u8; 32], &'static [u8]>,
    active: redb::Table<'a, u64, [u8; 32]>,
    utxo: redb::Table<'a, [u8; 36], [u8; 37]>,
    undo: redb::Table<'a, [u8; 32], &'static [u8]>,
    txindex: redb::Table<'a, [u8; 32], [u8; 36]>,
    addr_coins: redb::Table<'a, [u8; 56], [u8; 37]>,
    addr_hist: redb::Table<'a, [u8; 60], [u8; 16]>,
    leaves: redb::Table<'a, [u8; 32], ()>,
    mempool: redb::Table<'a, [u8; 32], &'static [u8]>,
    net: redb::Table<'a, &'static str, &'static [u8]>,
    seen: redb::Table<'a, [u8; 32], u64>,
}

fn open_tables(tx: &redb::WriteTransaction) -> Result<Batch<'_>> {
    Ok(Batch {
        meta: tx.open_table(META)?,
        index: tx.open_table(INDEX)?,
        blocks: tx.open_table(BLOCKS)?,
        active: tx.open_table(ACTIVE)?,
        utxo: tx.open_table(UTXO)?,
        undo: tx.open_table(UNDO)?,
        txindex: tx.open_table(TXINDEX)?,
        addr_coins: tx.open_table(ADDR_COINS)?,
        addr_hist: tx.open_table(ADDR_HIST)?,
        leaves: tx.open_table(LEAVES)?,
        mempool: tx.open_table(MEMPOOL)?,
        net: tx.open_table(NET)?,
        seen: tx.open_table(SEEN)?,
    })
}

coin_view!(Batch<'_>);

fn hist_key(addr: &Address, height: u64, txid: &Txid) -> [u8; 60] {
    let mut k = [0u8; 60];
    k[..20].copy_from_slice(&addr.hash());
    k[20..28].copy_from_slice(&height.to_be_bytes());
    k[28..].copy_from_slice(&txid.0);
    k
}

fn addr_coin_key(addr: &Address, o: &OutPoint) -> [u8; 56] {
    let mut k = [0u8; 56];
    k[..20].copy_from_slice(&addr.hash());
    k[20..].copy_from_slice(&o.to_key());
    k
}

/// Per-address received/sent totals of one transaction.
fn tx_address_flows(
    tx: &Transaction,
    spent: &[(OutPoint, Coin)],
) -> Vec<(Address, Amount, Amount)> {
    let mut flows: Vec<(Address, Amount, Amount)> = Vec::new();
    let mut add = |a: Address, recv: u64, sent: u64| match flows.iter_mut().find(|f| f.0 == a) {
        Some(f) => {
            f.1 = Amount::from_units(f.1.units().saturating_add(recv));
            f.2 = Amount::from_units(f.2.units().saturating_add(sent));
        }
        None => flows.push((a, Amount::from_units(recv), Amount::from_units(sent))),
    };
    for o in &tx.outputs {
        add(o.address, o.amount.units(), 0);
    }
    for (_, c) in spent {
        add(c.output.address, 0, c.output.amount.units());
    }
    flows
}

impl Batch<'_> {
    reader_methods!();

    fn init_genesis(&mut self, params: &Params) -> Result<()> {
        self.meta
            .insert(K_FORMAT, FORMAT.to_le_bytes().as_slice())?;
        self.meta
            .insert(K_GENESIS, params.genesis_hash.0.as_slice())?;
        let g = &params.genesis;
        let meta = BlockMeta {
            header: g.header,
            height: 0,
            chainwork: g
                .header
                .bits
                .to_target()
                .map(|t| t.work())
                .unwrap_or_default(),
            status: BlockStatus::Valid,
            size: g.encode().len() as u32,
            tx_count: g.txs.len() as u32,
        };
        self.put_block(g, &meta)?;
        // The genesis coinbase pays an unspendable address; its outputs are not added to the
        // UTXO set (as in Bitcoin), but the block is the chain's first entry.
        self.active.insert(0u64, params.genesis_hash.0)?;
        self.meta.insert(K_TIP, params.genesis_hash.0.as_slice())?;
        self.put_utxo_state(&params.genesis_hash, UtxoCommitment::default())
    }

    /// The UTXO commitment record: the block it is after, and the commitment.
    fn utxo_state(&self) -> Result<(BlockHash, UtxoCommitment)> {
        let v = self
            .meta
            .get(K_UTXO_STATE)?
            .ok_or_else(|| StoreError::Corrupt("the UTXO commitment record is missing".into()))?;
        UtxoCommitment::from_record(v.value()).ok_or_else(|| {
            StoreError::Corrupt("the UTXO commitment record has the wrong length".into())
        })
    }

    fn put_utxo_state(&mut self, tip: &BlockHash, c: UtxoCommitment) -> Result<()> {
        self.meta
            .insert(K_UTXO_STATE, c.to_record(tip).as_slice())?;
        Ok(())
    }

    /// Store a block's data and index entry; it becomes a leaf and its parent stops being one.
    /// The first time a block is stored, the time is recorded as when this node first saw it.
    pub fn put_block(&mut self, block: &Block, meta: &BlockMeta) -> Result<()> {
        let hash = block.hash();
        self.blocks.insert(hash.0, block.encode().as_slice())?;
        if self.seen.get(&hash.0)?.is_none() {
            self.seen.insert(hash.0, unix_ms())?;
        }
        self.put_meta(&hash, meta)?;
        self.leaves.remove(block.header.prev.0)?;
        self.leaves.insert(hash.0, ())?;
        Ok(())
    }

    /// Rewrite an index entry (e.g. its status).
    pub fn put_meta(&mut self, hash: &BlockHash, meta: &BlockMeta) -> Result<()> {
        self.index.insert(hash.0, encode(meta).as_slice())?;
        Ok(())
    }

    /// Undo data of a connected block.
    pub fn undo_data(&self, hash: &BlockHash) -> Result<BlockUndo> {
        let v = self
            .undo
            .get(hash.0)?
            .ok_or_else(|| StoreError::Corrupt(format!("no undo data for block {hash}")))?;
        decode_canonical(v.value(), usize::MAX)
            .map_err(|e| StoreError::Corrupt(format!("undo data of {hash}: {e}")))
    }

    /// Apply a validated block on top of the tip: spend its inputs, add its outputs, record undo
    /// data, the transaction and address indexes, the height and the new tip.
    pub fn connect(
        &mut self,
        block: &Block,
        txids: &[Txid],
        undo: &BlockUndo,
        meta: &BlockMeta,
    ) -> Result<()> {
        let hash = block.hash();
        let (after, mut acc) = self.utxo_state()?;
        if after != block.header.prev {
            return Err(StoreError::Corrupt(format!(
                "the UTXO commitment is of the set after block {after}, not after {}",
                block.header.prev
            )));
        }
        let mut cursor = 0usize;
        for (i, tx) in block.txs.iter().enumerate() {
            let spent = &undo.spent[cursor..cursor + tx.inputs.len()];
            cursor += tx.inputs.len();
            for (o, c) in spent {
                acc.remove(&o.to_key(), &coin_to_bytes(c));
                self.utxo.remove(o.to_key())?;
                self.addr_coins
                    .remove(addr_coin_key(&c.output.address, o))?;
            }
            for (vout, out) in tx.outputs.iter().enumerate() {
                let o = OutPoint {
                    txid: txids[i],
                    vout: vout as u32,
                };
                let coin = coin_to_bytes(&Coin {
                    output: *out,
                    height: meta.height,
                    coinbase: i == 0,
                });
                acc.add(&o.to_key(), &coin);
                self.utxo.insert(o.to_key(), coin)?;
                self.addr_coins
                    .insert(addr_coin_key(&out.address, &o), coin)?;
            }
            let mut loc = [0u8; 36];
            loc[..32].copy_from_slice(&hash.0);
            loc[32..].copy_from_slice(&(i as u32).to_be_bytes());
            self.txindex.insert(txids[i].0, loc)?;
            for (addr, recv, sent) in tx_address_flows(tx, spent) {
                let mut v = [0u8; 16];
                v[..8].copy_from_slice(&recv.units().to_le_bytes());
                v[8..].copy_from_slice(&sent.units().to_le_bytes());
                self.addr_hist
                    .insert(hist_key(&addr, meta.height, &txids[i]), v)?;
            }
        }
        self.undo.insert(hash.0, encode(undo).as_slice())?;
        self.active.insert(meta.height, hash.0)?;
        self.meta.insert(K_TIP, hash.0.as_slice())?;
        self.put_utxo_state(&hash, acc)?;
        let mut m = *meta;
        m.status = BlockStatus::Valid;
        self.put_meta(&hash, &m)
    }

    /// Undo the tip block: the exact reverse of [`Batch::connect`].
    pub fn disconnect(
        &mut self,
        block: &Block,
        txids: &[Txid],
        meta: &BlockMeta,
    ) -> Result<BlockUndo> {
        let hash = block.hash();
        let undo = self.undo_data(&hash)?;
        let (after, mut acc) = self.utxo_state()?;
        if after != hash {
            return Err(StoreError::Corrupt(format!(
                "the UTXO commitment is of the set after block {after}, not after {hash}"
            )));
        }
        let mut cursor = undo.spent.len();
        for (i, tx) in block.txs.iter().enumerate().rev() {
            let start = cursor
                .checked_sub(tx.inputs.len())
                .ok_or_else(|| StoreError::Corrupt(format!("undo data of {hash} is short")))?;
            let spent = &undo.spent[start..cursor];
            cursor = start;
            for (vout, out) in tx.outputs.iter().enumerate() {
                let o = OutPoint {
                    txid: txids[i],
                    vout: vout as u32,
                };
                acc.remove(
                    &o.to_key(),
                    &coin_to_bytes(&Coin {
                        output: *out,
                        height: meta.height,
                        coinbase: i == 0,
                    }),
                );
                self.utxo.remove(o.to_key())?;
                self.addr_coins.remove(addr_coin_key(&out.address, &o))?;
            }
            for (o, c) in spent {
                let b = coin_to_bytes(c);
                acc.add(&o.to_key(), &b);
                self.utxo.insert(o.to_key(), b)?;
                self.addr_coins
                    .insert(addr_coin_key(&c.output.address, o), b)?;
            }
            self.txindex.remove(txids[i].0)?;
            for (addr, _, _) in tx_address_flows(tx, spent) {
                self.addr_hist
                    .remove(hist_key(&addr, meta.height, &txids[i]))?;
            }
        }
        self.undo.remove(hash.0)?;
        self.active.remove(meta.height)?;
        self.meta.insert(K_TIP, block.header.prev.0.as_slice())?;
        self.put_utxo_state(&block.header.prev, acc)?;
        Ok(undo)
    }

    /// Replace the saved mempool with `txs`.
    pub fn save_mempool(&mut self, txs: &[Transaction]) -> Result<()> {
        self.mempool.retain(|_, _| false)?;
        for tx in txs {
            self.add_mempool(tx)?;
        }
        Ok(())
    }

    /// Replace every network record whose key starts with `prefix` by `records`.
    pub fn put_net_records(&mut self, prefix: &str, records: &[(String, Vec<u8>)]) -> Result<()> {
        self.net.retain(|k, _| !k.starts_with(prefix))?;
        for (k, v) in records {
            self.net.insert(k.as_str(), v.as_slice())?;
        }
        Ok(())
    }

    /// Save one mempool transaction.
    pub fn add_mempool(&mut self, tx: &Transaction) -> Result<()> {
        self.mempool.insert(tx.txid().0, tx.encode().as_slice())?;
        Ok(())
    }
}

// ---- Space figures (for `chain-tui bench soak`) ----

/// How the store's file is used: redb's own figures for the whole file and each table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreSpace {
    /// Length of the file.
    pub file_bytes: u64,
    /// Pages in use (the rest of the file is free space redb keeps for later writes).
    pub allocated_bytes: u64,
    /// Keys and values.
    pub stored_bytes: u64,
    /// Branch pages, table roots and redb's own tables.
    pub metadata_bytes: u64,
    /// Unused space inside allocated pages, and free pages.
    pub fragmented_bytes: u64,
    pub tables: Vec<TableSpace>,
}

/// One table's share of [`StoreSpace`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableSpace {
    pub name: &'static str,
    pub entries: u64,
    pub stored_bytes: u64,
    /// Leaf and branch pages, in bytes.
    pub page_bytes: u64,
    pub fragmented_bytes: u64,
}

impl Store {
    /// Space figures. Walks every page of every table (it reads the whole file), so call it
    /// rarely: it is a measurement, not a status.
    pub fn space(&self) -> Result<StoreSpace> {
        use redb::ReadableTableMetadata;
        let file_bytes = std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| StoreError::Db(e.to_string()))?;
        let tx = self.writable()?.begin_write()?;
        let stats = tx.stats()?;
        let page = stats.page_size() as u64;
        let mut tables = Vec::new();
        {
            let b = open_tables(&tx)?;
            let mut add = |name: &'static str, s: redb::TableStats, entries: u64| {
                tables.push(TableSpace {
                    name,
                    entries,
                    stored_bytes: s.stored_bytes(),
                    page_bytes: (s.leaf_pages() + s.branch_pages()) * page,
                    fragmented_bytes: s.fragmented_bytes(),
                })
            };
            macro_rules! table {
                ($($field:ident: $name:literal),*) => {$(
                    add($name, b.$field.stats()?, b.$field.len()?);
                )*};
            }
            table!(meta: "meta", index: "block_index", blocks: "blocks", active: "active_chain",
                utxo: "utxo", undo: "undo", txindex: "tx_index", addr_coins: "address_coins",
                addr_hist: "address_history", leaves: "leaves", mempool: "mempool",
                net: "net_records");
        }
        tx.abort()?;
        Ok(StoreSpace {
            file_bytes,
            allocated_bytes: stats.allocated_pages() * page,
            stored_bytes: stats.stored_bytes(),
            metadata_bytes: stats.metadata_bytes(),
            fragmented_bytes: stats.fragmented_bytes(),
            tables,
        })
    }
}

impl Store {
    /// Bytes in redb's page cache now (read cache and write buffer).
    pub fn cache_bytes(&self) -> usize {
        use redb::ReadableDatabase;
        match &**self.db {
            Db::Rw(db) => db.cache_stats().used_bytes(),
            Db::Ro(db) => db.cache_stats().used_bytes(),
        }
    }
}
