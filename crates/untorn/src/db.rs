//! The database handle: [`Database`], its [`Builder`], and the operations on a whole
//! database (transactions, group commit, checkpoint, check, info). The state behind a
//! handle and the commit path live in `core.rs`.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::copy::CopyStats;
use crate::core::{lock, EvidenceFn, Options, Shared};
use crate::error::{Error, Result};
use crate::files::{journal_path, keep_journal, write_image, FileLock};
use crate::format::{is_valid_page_size, DEFAULT_PAGE_SIZE};
use crate::readers::{register_reader, table_path, ReaderTableFile};
use crate::recovery::{Recovery, RecoveryReport};
use crate::storage::{FileStorage, MemoryStorage, Storage};
use crate::tx::{Durability, OwnedReadTx, ReadTx, WriteTx};

/// Facts about an open database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Bytes per page.
    pub page_size: usize,
    /// Txid of the newest commit.
    pub txid: u64,
    /// Page ids below this are in use by the format.
    pub high_water: u64,
    /// Data file length.
    pub file_size_bytes: u64,
    /// Journal length.
    pub journal_size_bytes: u64,
    /// Commits in the journal not yet checkpointed.
    pub journal_commits: u64,
    /// Commits of this handle (since open) that wrote pages straight home (J25).
    pub direct_home_commits: u64,
    /// Pages those commits wrote straight home, each written once instead of twice.
    pub direct_home_pages: u64,
    /// The on-disk meta slot in use (the newest checkpointed meta).
    pub active_meta_slot: Option<u64>,
    /// Set when one meta slot was damaged at open.
    pub meta_fallback: Option<String>,
    /// Whether the handle is read-only.
    pub read_only: bool,
    /// Read-only: another process held the database open for writing when this handle
    /// opened. The handle reads the snapshot at `txid`; later commits are not seen.
    pub live: bool,
    /// The database's identity (hex).
    pub database_id: String,
}

/// The default of [`Builder::direct_home_threshold_bytes`]: commits this large pay a
/// second sync (the data file's) to write each page once.
pub(crate) const DEFAULT_DIRECT_HOME_THRESHOLD_BYTES: u64 = 1 << 20;

/// Options for opening a database. Obtain with [`Database::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    page_size: usize,
    cache_size_bytes: usize,
    read_only: bool,
    durability: Durability,
    checkpoint_threshold_bytes: u64,
    direct_home_threshold_bytes: u64,
    recovery: Recovery,
    id_seed: Option<u64>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            page_size: DEFAULT_PAGE_SIZE,
            cache_size_bytes: 256 << 20,
            read_only: false,
            durability: Durability::Immediate,
            checkpoint_threshold_bytes: 64 << 20,
            direct_home_threshold_bytes: DEFAULT_DIRECT_HOME_THRESHOLD_BYTES,
            recovery: Recovery::Strict,
            id_seed: None,
        }
    }
}

impl Builder {
    /// Page size for a new file (power of two, 4 KiB to 64 KiB). Ignored when opening.
    pub fn page_size(mut self, bytes: usize) -> Self {
        self.page_size = bytes;
        self
    }
    /// Page cache capacity.
    pub fn cache_size_bytes(mut self, bytes: usize) -> Self {
        self.cache_size_bytes = bytes;
        self
    }
    /// Open read-only (shared lock; the journal is replayed in memory only).
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }
    /// Commit durability.
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }
    /// Journal size that triggers a checkpoint after a commit.
    pub fn checkpoint_threshold_bytes(mut self, bytes: u64) -> Self {
        self.checkpoint_threshold_bytes = bytes;
        self
    }
    /// A durable commit whose page images add up to at least this many bytes writes the
    /// pages it can straight home (synced before its journal record, which lists them as
    /// direct extents) instead of writing them twice, to the journal and again at the
    /// checkpoint. Default 1 MiB; `u64::MAX` journals every page.
    pub fn direct_home_threshold_bytes(mut self, bytes: u64) -> Self {
        self.direct_home_threshold_bytes = bytes;
        self
    }
    /// What open does when recovering needs a choice only the user can make: refuse
    /// with a typed error (`Recovery::Strict`, the default), or roll back to the newest
    /// intact state and report what was discarded (`Recovery::RollbackToLastGood`; see
    /// [`RecoveryReport::rollback`]).
    pub fn recovery(mut self, r: Recovery) -> Self {
        self.recovery = r;
        self
    }
    /// Derives the database id and every journal salt from `seed` instead of the
    /// operating system's randomness (deterministic simulation and golden files only:
    /// two databases made with one seed share an id, so a journal of one would be
    /// accepted beside the other).
    #[doc(hidden)]
    pub fn deterministic_ids(mut self, seed: u64) -> Self {
        self.id_seed = Some(seed);
        self
    }

    /// Opens the database at `path`, creating it if missing.
    pub fn create(self, path: impl AsRef<Path>) -> Result<Database> {
        self.open_path(path.as_ref(), true)
    }

    /// Opens the existing database at `path`.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Database> {
        self.open_path(path.as_ref(), false)
    }

    fn open_path(self, path: &Path, create: bool) -> Result<Database> {
        if create && self.read_only {
            return Err(Error::ReadOnly);
        }
        let file_error = |p: &Path, e: std::io::Error| Error::File {
            path: p.to_path_buf(),
            source: e,
        };
        let mut oo = OpenOptions::new();
        oo.read(true);
        if !self.read_only {
            oo.write(true);
        }
        if create {
            oo.create(true);
        }
        let file = oo.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotADatabase(format!("{}: no such file", path.display()))
            } else {
                file_error(path, e)
            }
        })?;
        // Writers exclude each other with an exclusive lock of the data file. Readers take
        // no lock a writer conflicts with: they register in the reader table, which the
        // writer consults before it reuses a freed page. Only where the table cannot be
        // written (a read-only directory) does a reader fall back to a shared lock of the
        // data file, which keeps writers out while it reads.
        let mut reader_table = None;
        let (registration, live) = if self.read_only {
            register_reader(path, &file).map_err(|e| file_error(path, e))?
        } else {
            (None, false)
        };
        let held = if registration.is_none() {
            let locked = if self.read_only {
                file.try_lock_shared()
            } else {
                file.try_lock()
            };
            match locked {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked),
                Err(std::fs::TryLockError::Error(e)) => return Err(file_error(path, e)),
            }
            Some(FileLock(file.try_clone().map_err(|e| file_error(path, e))?))
        } else {
            None
        };
        if !self.read_only {
            let table =
                ReaderTableFile::open(path).map_err(|e| file_error(&table_path(path), e))?;
            reader_table = Some(Arc::new(table));
        }
        let jpath = journal_path(path);
        let journal_existed = jpath.exists();
        let journal: Arc<dyn Storage> = if self.read_only {
            match File::open(&jpath) {
                Ok(f) => Arc::new(FileStorage::with_path(f, &jpath)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Arc::new(MemoryStorage::new())
                }
                Err(e) => return Err(file_error(&jpath, e)),
            }
        } else {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&jpath)
                .map_err(|e| file_error(&jpath, e))?;
            Arc::new(FileStorage::with_path(f, &jpath))
        };
        let evidence: EvidenceFn = {
            let jpath = jpath.clone();
            Arc::new(move |journal: &dyn Storage| keep_journal(&jpath, journal))
        };
        let opened = self
            .open_with(
                Arc::new(FileStorage::with_path(file, path)),
                journal,
                create,
                Some(evidence),
                reader_table,
                registration,
            )
            .map_err(|e| match e {
                // Say which file is not a database.
                Error::NotADatabase(why) => {
                    Error::NotADatabase(format!("{}: {why}", path.display()))
                }
                Error::Io(e) => file_error(path, e),
                e => e,
            })
            .map(|mut db| {
                db.lock = held;
                db.live = live;
                db
            });
        if opened.is_err() && !journal_existed && !self.read_only {
            // Do not leave behind an empty journal this failed open created.
            let _ = std::fs::remove_file(&jpath);
        }
        opened
    }

    /// Opens a database on arbitrary storage (a simulator, memory). With
    /// `create_if_empty`, an empty data storage is initialised as a new database. A
    /// rollback here cannot keep the journal's bytes aside (the storage has no path).
    pub fn open_storage(
        self,
        data: Arc<dyn Storage>,
        journal: Arc<dyn Storage>,
        create_if_empty: bool,
    ) -> Result<Database> {
        self.open_with(data, journal, create_if_empty, None, None, None)
    }

    fn open_with(
        &self,
        data: Arc<dyn Storage>,
        journal: Arc<dyn Storage>,
        create_if_empty: bool,
        evidence: Option<EvidenceFn>,
        reader_table: Option<Arc<ReaderTableFile>>,
        registration: Option<Arc<crate::readers::Registration>>,
    ) -> Result<Database> {
        if !is_valid_page_size(self.page_size as u64) {
            return Err(Error::InvalidPageSize(self.page_size as u64));
        }
        let opts = Options {
            page_size: self.page_size,
            cache_size_bytes: self.cache_size_bytes,
            read_only: self.read_only,
            sync_on_commit: self.durability == Durability::Immediate,
            checkpoint_threshold_bytes: self.checkpoint_threshold_bytes,
            direct_home_threshold_bytes: self.direct_home_threshold_bytes,
            rollback: self.recovery == Recovery::RollbackToLastGood,
            id_seed: self.id_seed,
            evidence,
            reader_table,
            registration,
        };
        let shared = Shared::open(&opts, data, journal, create_if_empty)?;
        Ok(Database {
            shared: Arc::new(shared),
            batch_queue: Mutex::new(Vec::new()),
            lock: None,
            live: false,
        })
    }
}

/// What [`Database::compact_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// The source's data file length.
    pub bytes_before: u64,
    /// The source's journal length (commits not yet checkpointed and preallocated space).
    pub journal_bytes_before: u64,
    /// The compacted file's length (it has no journal).
    pub bytes_after: u64,
    /// What was copied.
    pub copy: CopyStats,
}

/// A closure queued by [`Database::batch`].
type BatchFn = Box<dyn FnMut(&WriteTx<'_>) -> Result<()> + Send>;

/// Where a batched call's result is delivered.
#[derive(Default)]
struct BatchSlot {
    result: Mutex<Option<Result<()>>>,
    ready: std::sync::Condvar,
}

impl BatchSlot {
    fn set(&self, r: Result<()>) {
        *lock(&self.result) = Some(r);
        self.ready.notify_all();
    }
}

struct BatchCall {
    f: BatchFn,
    slot: Arc<BatchSlot>,
}

/// An open database. `Send + Sync`: share it between threads by reference or `Arc`.
pub struct Database {
    pub(crate) shared: Arc<Shared>,
    /// Calls of [`Database::batch`] waiting for the next shared transaction.
    batch_queue: Mutex<Vec<BatchCall>>,
    /// The OS lock of a database opened by path; dropped (unlocked) after `shared`, so
    /// after the clean close has written everything.
    lock: Option<FileLock>,
    /// Read-only: another process held the database for writing at open.
    live: bool,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("page_size", &self.shared.pager.page_size)
            .field("read_only", &self.shared.read_only)
            .finish()
    }
}

impl Database {
    /// Opens the database at `path`, creating it if missing, with default options.
    pub fn create(path: impl AsRef<Path>) -> Result<Database> {
        Builder::default().create(path)
    }

    /// Opens the existing database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        Builder::default().open(path)
    }

    /// Options for opening.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts a read transaction on the newest committed snapshot. Never blocks.
    pub fn begin_read(&self) -> Result<ReadTx<'_>> {
        Ok(ReadTx::new(&self.shared))
    }

    /// Starts a read transaction that owns its share of the database: it can move to
    /// another thread and outlive this borrow (the files stay open, and locked, until
    /// the last snapshot and the handle are dropped).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let db = untorn::Database::create(dir.path().join("db"))?;
    /// db.update(|tx| tx.create_bucket("b")?.put("k", "v"))?;
    /// let snap = db.begin_read_owned()?;
    /// let t = std::thread::spawn(move || -> untorn::Result<bool> {
    ///     Ok(snap.tx().bucket("b")?.expect("created").get("k")?.is_some())
    /// });
    /// assert!(t.join().expect("reader thread")?);
    /// # Ok::<(), untorn::Error>(())
    /// ```
    pub fn begin_read_owned(&self) -> Result<OwnedReadTx> {
        Ok(OwnedReadTx::new(Arc::clone(&self.shared)))
    }

    /// Starts the write transaction. Blocks while another write transaction is open.
    pub fn begin_write(&self) -> Result<WriteTx<'_>> {
        if self.shared.read_only {
            return Err(Error::ReadOnly);
        }
        if self.shared.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let guard = lock(&self.shared.writer);
        if self.shared.is_poisoned() {
            return Err(Error::Poisoned);
        }
        WriteTx::new(&self.shared, guard)
    }

    /// Runs `f` in a read transaction on the newest committed snapshot.
    ///
    /// `f` may return any error type that an [`Error`] converts into (`untorn::Error`,
    /// `anyhow::Error`, `Box<dyn std::error::Error>`, an application enum with a
    /// `From<untorn::Error>`), as diesel's and sqlx's `transaction` do. When `f` uses
    /// only untorn's errors Rust cannot tell which type is meant: name it on the closure
    /// (`|tx| -> untorn::Result<_> { .. }`).
    pub fn view<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&ReadTx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let tx = self.begin_read()?;
        f(&tx)
    }

    /// Runs `f` in a write transaction and commits only if it returns `Ok` (an `Err`
    /// aborts: nothing `f` did is visible, then or after any reopen). The commit's own
    /// error, if any, is returned converted into `E`.
    ///
    /// `f` may return any error type that an [`Error`] converts into (see
    /// [`Database::view`]):
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let db = untorn::Database::create(dir.path().join("db"))?;
    /// // An application's own failure aborts the transaction like untorn's.
    /// let r = db.update(|tx| -> Result<u32, Box<dyn std::error::Error>> {
    ///     tx.create_bucket("counts")?.put("n", "7")?;
    ///     let n: u32 = "seven".parse()?; // fails: nothing is committed
    ///     Ok(n)
    /// });
    /// assert!(r.is_err());
    /// assert!(db.view(|tx| tx.bucket("counts").map(|b| b.is_none()))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&WriteTx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let tx = self.begin_write()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Group commit (bbolt's `DB.Batch`): runs `f` in a write transaction shared with
    /// other concurrent `batch` callers, so that they pay for one journal sync together.
    /// Returns when the shared transaction is durable.
    ///
    /// Callers that queue while a commit is in progress are folded into the next one.
    /// If a closure of a batch fails, the batch is aborted, that closure runs again in
    /// a transaction of its own (its caller gets that result) and the others retry
    /// together in one transaction, so **`f` may run more than once and must be
    /// idempotent** (the same rule as bbolt's).
    ///
    /// Why `Send + 'static`: whichever caller holds the writer lock runs every closure
    /// queued so far, so `f` may run on another caller's thread (`Send`), from a queue
    /// that outlives this call as far as the compiler can tell (`'static`: the caller
    /// does wait for its result, but proving that to the borrow checker would take
    /// `unsafe` code, which the engine forbids). Move what `f` needs into it (an `Arc`,
    /// an owned key); `Sync` is not required. A closure that must borrow from the
    /// caller's stack belongs in [`Database::update`].
    pub fn batch(&self, f: impl FnMut(&WriteTx<'_>) -> Result<()> + Send + 'static) -> Result<()> {
        let slot = Arc::new(BatchSlot::default());
        lock(&self.batch_queue).push(BatchCall {
            f: Box::new(f),
            slot: Arc::clone(&slot),
        });
        // Whoever holds the writer lock next runs everything queued so far.
        let tx = self.begin_write();
        let calls = {
            let mut queue = lock(&self.batch_queue);
            if queue.iter().any(|c| Arc::ptr_eq(&c.slot, &slot)) {
                std::mem::take(&mut *queue)
            } else {
                Vec::new()
            }
        };
        if calls.is_empty() {
            // Another caller took our call: release the writer lock and wait for it.
            drop(tx);
            let mut guard = lock(&slot.result);
            loop {
                if let Some(r) = guard.take() {
                    return r;
                }
                guard = slot.ready.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
        }
        let tx = match tx {
            Ok(tx) => tx,
            Err(e) => {
                for c in &calls {
                    c.slot.set(Err(e.duplicate()));
                }
                return Err(e);
            }
        };
        // bbolt's rule: when a closure fails, the batch is aborted, that closure runs
        // alone (its own result goes to its caller) and the others retry together; each
        // round removes one call, so this ends after at most `calls.len()` rounds.
        let mut calls = calls;
        let mut tx = Some(tx);
        while !calls.is_empty() {
            let t = match tx.take().map_or_else(|| self.begin_write(), Ok) {
                Ok(t) => t,
                Err(e) => {
                    for c in &calls {
                        c.slot.set(Err(e.duplicate()));
                    }
                    break;
                }
            };
            match calls.iter_mut().position(|c| (c.f)(&t).is_err()) {
                None => {
                    let committed = t.commit();
                    for c in &calls {
                        c.slot.set(match &committed {
                            Ok(()) => Ok(()),
                            Err(e) => Err(e.duplicate()),
                        });
                    }
                    break;
                }
                Some(i) => {
                    t.abort();
                    let mut failed = calls.remove(i);
                    let f = &mut failed.f;
                    failed.slot.set(self.update(|tx| f(tx)));
                }
            }
        }
        let mine = lock(&slot.result).take();
        mine.unwrap_or(Err(Error::Internal("batch call lost its result")))
    }

    /// Copies committed journal images home and truncates the journal.
    pub fn checkpoint(&self) -> Result<()> {
        if self.shared.read_only {
            return Err(Error::ReadOnly);
        }
        let mut w = lock(&self.shared.writer);
        self.shared.checkpoint_locked(&mut w, false)
    }

    /// Hot backup: writes a consistent copy of the newest committed snapshot to `path`
    /// while writers keep committing (see [`ReadTx::copy_to`]). The copy is a complete
    /// database in one file (its metas say `clean`; it needs no journal) that opens and
    /// checks clean, with the snapshot's contents exactly; it is written under a
    /// temporary name beside `path`, synced, renamed into place and its directory synced,
    /// so `path` never holds a partial copy. Refuses (`Error::File`, `AlreadyExists`)
    /// when `path` or its journal exists. The copy is also dense: see
    /// [`Database::compact_to`].
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<CopyStats> {
        let tx = self.begin_read()?;
        write_image(&tx, path.as_ref())
    }

    /// Compaction: writes only the live data of the newest committed snapshot, densely
    /// packed (every tree rebuilt bottom-up in key order, leaves filled close to 100%),
    /// into a new database at `path`, the same way as [`Database::backup_to`]. A file
    /// fragmented by deletes or by a long-lived reader shrinks to about its live size;
    /// [`Compaction`] reports the sizes before and after.
    pub fn compact_to(&self, path: impl AsRef<Path>) -> Result<Compaction> {
        let tx = self.begin_read()?;
        let before = self.shared.pager.data.len().map_err(Error::from_io)?;
        let journal_before = self.shared.journal_storage.len().map_err(Error::from_io)?;
        let copy = write_image(&tx, path.as_ref())?;
        Ok(Compaction {
            bytes_before: before,
            journal_bytes_before: journal_before,
            bytes_after: copy.bytes,
            copy,
        })
    }

    /// Facts about the database.
    pub fn info(&self) -> Result<Info> {
        let meta = lock(&self.shared.published).current;
        let journal_commits = if self.shared.read_only {
            self.shared.recovery.commits_replayed
        } else {
            lock(&self.shared.writer)
                .journal
                .as_ref()
                .map(|j| j.commits)
                .ok_or(Error::Internal(
                    "a read-write handle without a journal writer",
                ))?
        };
        Ok(Info {
            page_size: self.shared.pager.page_size,
            txid: meta.txid.get(),
            high_water: meta.high_water.get(),
            file_size_bytes: self.shared.pager.data.len().map_err(Error::from_io)?,
            journal_size_bytes: self.shared.journal_storage.len().map_err(Error::from_io)?,
            journal_commits,
            direct_home_commits: self.shared.direct_home.commits.load(Ordering::Relaxed),
            direct_home_pages: self.shared.direct_home.pages.load(Ordering::Relaxed),
            active_meta_slot: Some(self.shared.active_slot().page()),
            meta_fallback: self.shared.recovery.meta_fallback.clone(),
            read_only: self.shared.read_only,
            live: self.live,
            database_id: meta.db_id.to_string(),
        })
    }

    /// Checks the integrity of the newest committed snapshot (read-only, concurrently
    /// with writers; see `docs/check.md`).
    pub fn check(&self, opts: crate::check::CheckOptions) -> Result<crate::report::Report> {
        let tx = self.begin_read()?;
        crate::check::check(tx.check_source(), opts)
    }

    /// Page counts by kind, free pages, tree depth and fill factor of the newest snapshot.
    pub fn stats(&self) -> Result<crate::report::Stats> {
        let tx = self.begin_read()?;
        crate::check::stats(tx.check_source())
    }

    /// What recovery did at open.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.shared.recovery.clone()
    }

    /// Whether a failed sync poisoned this handle (reopen to recover).
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_poisoned()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.shared.read_only || self.shared.is_poisoned() {
            return;
        }
        // Clean close (§3.4): checkpoint into a meta of state `clean` and truncate the
        // journal to its marker, so the next open has nothing to replay and a missing
        // journal loses nothing.
        let mut w = lock(&self.shared.writer);
        if let Err(e) = self.shared.checkpoint_locked(&mut w, true) {
            tracing::error!("clean close failed: {e}; the journal will be replayed at next open");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child process that holds a copy of the handle's descriptor (as one being spawned
    /// by another thread does, until its `exec`) must not keep the database locked after
    /// the handle is dropped. Without the explicit unlock, the reopen below is `Locked`.
    #[test]
    fn a_dropped_handle_unlocks_even_while_a_child_holds_its_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.untorn");
        let db = Database::create(&p).unwrap();
        let held = db.lock.as_ref().unwrap().0.try_clone().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::from(held))
            .spawn()
            .unwrap();
        drop(db);
        let reopened = Database::open(&p);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(reopened.is_ok(), "{:?}", reopened.err());
    }
}
