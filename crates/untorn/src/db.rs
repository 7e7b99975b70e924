//! The database handle: open/create, recovery, the commit path, checkpoint, readers.
//!
//! States of a handle: *open* (read-write or read-only) → *poisoned* (a sync or journal
//! write failed: reads continue, writes refuse until reopen). Transitions happen only
//! in [`Shared::commit`] and [`Shared::checkpoint_locked`].

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::btree::TxState;
use crate::commit;
use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    decode_freelist, is_valid_page_size, meta::has_magic, meta::sniff_page_size, Meta, PageRef,
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MIN_PAGE_SIZE,
};
use crate::freeset::FreeSet;
use crate::journal::{self, JournalWriter};
use crate::pager::{CachedPage, Pager};
use crate::storage::{FileStorage, Storage};
use crate::tx::{ReadTx, WriteTx};

/// When a commit is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `commit()` returns after the journal record is synced (one sync per commit).
    #[default]
    Immediate,
    /// No sync at commit; after a crash the database holds some prefix of the commits
    /// (never a corrupt state). Checkpoints still sync.
    None,
}

/// What recovery did when the database was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Journal commits replayed on top of the newest valid meta.
    pub commits_replayed: u64,
    /// Page images written home from the journal (the doublewrite restore).
    pub pages_restored: u64,
    /// Bytes of torn journal tail discarded.
    pub bytes_discarded: u64,
    /// Set when one meta slot was damaged and the other was used.
    pub meta_fallback: Option<String>,
}

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
    /// The on-disk meta slot in use (the newest checkpointed meta).
    pub active_meta_slot: Option<u64>,
    /// Set when one meta slot was damaged at open.
    pub meta_fallback: Option<String>,
    /// Whether the handle is read-only.
    pub read_only: bool,
}

/// Options for opening a database. Obtain with [`Database::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    page_size: usize,
    cache_size_bytes: usize,
    read_only: bool,
    durability: Durability,
    checkpoint_threshold_bytes: u64,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            page_size: DEFAULT_PAGE_SIZE,
            cache_size_bytes: 256 << 20,
            read_only: false,
            durability: Durability::Immediate,
            checkpoint_threshold_bytes: 64 << 20,
        }
    }
}

/// The journal path for a data file: `<path>.journal`.
pub fn journal_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
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
                Error::from_io(e)
            }
        })?;
        let locked = if self.read_only {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match locked {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::from_io(e)),
        }
        let jpath = journal_path(path);
        let journal: Arc<dyn Storage> = if self.read_only {
            match File::open(&jpath) {
                Ok(f) => Arc::new(FileStorage::new(f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Arc::new(crate::storage::MemoryStorage::new())
                }
                Err(e) => return Err(Error::from_io(e)),
            }
        } else {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&jpath)
                .map_err(Error::from_io)?;
            Arc::new(FileStorage::new(f))
        };
        self.open_storage(Arc::new(FileStorage::new(file)), journal, create)
    }

    /// Opens a database on arbitrary storage (a simulator, memory). With
    /// `create_if_empty`, an empty data storage is initialised as a new database.
    pub fn open_storage(
        self,
        data: Arc<dyn Storage>,
        journal: Arc<dyn Storage>,
        create_if_empty: bool,
    ) -> Result<Database> {
        if !is_valid_page_size(self.page_size as u64) {
            return Err(Error::InvalidPageSize(self.page_size as u64));
        }
        let shared = Shared::open(self, data, journal, create_if_empty)?;
        Ok(Database {
            shared: Arc::new(shared),
        })
    }
}

pub(crate) struct Published {
    pub(crate) current: Meta,
    pub(crate) readers: BTreeMap<u64, usize>,
}

pub(crate) struct WriterState {
    pub(crate) meta: Meta,
    pub(crate) free: FreeSet,
    pub(crate) pending: BTreeMap<u64, Vec<(u64, u64)>>,
    pub(crate) journal: Option<JournalWriter>,
}

/// A closure queued by [`Database::batch`].
type BatchFn = Box<dyn Fn(&WriteTx<'_>) -> Result<()> + Send + Sync>;

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

pub(crate) struct Shared {
    pub(crate) pager: Pager,
    batch_queue: Mutex<Vec<BatchCall>>,
    pub(crate) journal_storage: Arc<dyn Storage>,
    pub(crate) read_only: bool,
    durability: Durability,
    checkpoint_threshold: u64,
    pub(crate) published: Mutex<Published>,
    pub(crate) writer: Mutex<WriterState>,
    poisoned: AtomicBool,
    recovery: RecoveryReport,
    /// Active on-disk meta slot (u64::MAX = none).
    pub(crate) active_slot: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The newest valid meta, its slot, the page size, and a note if a slot was damaged.
struct MetaChoice {
    meta: Meta,
    slot: u64,
    fallback: Option<String>,
}

fn read_exact_or_short(s: &dyn Storage, offset: u64, len: usize) -> Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; len];
    match s.read_at(offset, &mut buf) {
        Ok(()) => Ok(Some(buf)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(Error::from_io(e)),
    }
}

fn choose_meta(data: &dyn Storage) -> Result<std::result::Result<MetaChoice, Error>> {
    let head = read_exact_or_short(data, 0, MIN_PAGE_SIZE)?;
    let sniffed = head
        .as_deref()
        .and_then(sniff_page_size)
        .filter(|p| is_valid_page_size(u64::from(*p)));
    let mut candidates: Vec<usize> = Vec::new();
    if let Some(p) = sniffed {
        candidates.push(p as usize);
    }
    let mut ps = MIN_PAGE_SIZE;
    while ps <= MAX_PAGE_SIZE {
        if u32::try_from(ps).ok() != sniffed {
            candidates.push(ps);
        }
        ps *= 2;
    }
    let mut first_error: Option<Error> = None;
    let mut any_magic = head.as_deref().is_some_and(has_magic);
    for ps in candidates {
        let mut found: Vec<(u64, Meta)> = Vec::new();
        let mut errors: Vec<(u64, Error)> = Vec::new();
        for slot in 0..2u64 {
            match read_exact_or_short(data, slot * ps as u64, ps)? {
                Some(page) => {
                    any_magic |= has_magic(&page);
                    match Meta::decode(&page, slot, ps) {
                        Ok(m) => found.push((slot, m)),
                        Err(e) => errors.push((slot, e)),
                    }
                }
                None => errors.push((
                    slot,
                    Error::corrupted(slot, CorruptionKind::Meta, "meta page beyond end of file"),
                )),
            }
        }
        if let Some((slot, meta)) = found
            .iter()
            .max_by_key(|(s, m)| (m.txid, std::cmp::Reverse(*s)))
            .copied()
        {
            let fallback = errors.first().map(|(s, e)| {
                format!(
                    "meta slot {s} is unusable ({e}); using slot {slot} at txid {}",
                    meta.txid
                )
            });
            if let Some(msg) = &fallback {
                tracing::warn!("{msg}");
            }
            return Ok(Ok(MetaChoice {
                meta,
                slot,
                fallback,
            }));
        }
        if first_error.is_none() {
            first_error = errors.into_iter().next().map(|(_, e)| e);
        }
    }
    if !any_magic {
        if let Some(ps) = untorn_pages_present(data)? {
            return Ok(Err(Error::corrupted(
                0,
                CorruptionKind::Meta,
                format!(
                    "both meta pages are destroyed, but the file holds untorn pages of {ps} bytes: \
                     `untorn check` reads it page by page and `untorn salvage` can recover what verifies"
                ),
            )));
        }
        // bbolt's meta magic 0xED0CDAED sits at byte 16 of page 0.
        let bbolt = head
            .as_deref()
            .and_then(|h| h.get(16..20))
            .is_some_and(|m| m == 0xED0C_DAEDu32.to_le_bytes());
        return Ok(Err(Error::NotADatabase(if bbolt {
            "this is a bbolt (etcd) database, not an untorn one: the `untorn` CLI reads, \
             checks and salvages it (`untorn salvage SRC DST --to untorn` converts it)"
                .into()
        } else {
            "no untorn meta page found (wrong file type?)".into()
        })));
    }
    Ok(Err(match first_error {
        Some(e @ Error::UnsupportedVersion(_)) => e,
        Some(e) => Error::corrupted(
            0,
            CorruptionKind::Meta,
            format!("both meta pages are damaged: {e}"),
        ),
        None => Error::corrupted(0, CorruptionKind::Meta, "both meta pages are damaged"),
    }))
}

/// Whether pages after the metas verify as untorn pages at some page size (a damaged
/// untorn file rather than another file type). Probes a handful of pages.
fn untorn_pages_present(data: &dyn Storage) -> Result<Option<usize>> {
    let mut ps = MIN_PAGE_SIZE;
    while ps <= MAX_PAGE_SIZE {
        for id in 2..10u64 {
            let Some(page) = read_exact_or_short(data, id * ps as u64, ps)? else {
                break;
            };
            let extent = crate::format::peek_extent_pages(&page).unwrap_or(1);
            if extent == 1 && crate::format::verify_page(&page, id, ps).is_ok() {
                return Ok(Some(ps));
            }
        }
        ps *= 2;
    }
    Ok(None)
}

impl Shared {
    fn initialise(data: &dyn Storage, journal: &dyn Storage, page_size: usize) -> Result<()> {
        let meta = Meta {
            txid: 0,
            page_size: u32::try_from(page_size)
                .map_err(|_| Error::InvalidPageSize(page_size as u64))?,
            root: PageRef::NULL,
            freelist: PageRef::NULL,
            high_water: 2,
        };
        data.set_len(0).map_err(Error::from_io)?;
        data.write_at(0, &meta.encode(0)).map_err(Error::from_io)?;
        data.write_at(page_size as u64, &meta.encode(1))
            .map_err(Error::from_io)?;
        data.sync().map_err(Error::from_io)?;
        journal.set_len(0).map_err(Error::from_io)?;
        journal.sync().map_err(Error::from_io)?;
        Ok(())
    }

    fn open(
        opts: Builder,
        data: Arc<dyn Storage>,
        journal: Arc<dyn Storage>,
        create_if_empty: bool,
    ) -> Result<Shared> {
        let data_len = data.len().map_err(Error::from_io)?;
        let journal_len = journal.len().map_err(Error::from_io)?;
        if data_len == 0 {
            if !create_if_empty || opts.read_only {
                return Err(Error::NotADatabase("the file is empty".into()));
            }
            Self::initialise(data.as_ref(), journal.as_ref(), opts.page_size)?;
        }
        let choice = match choose_meta(data.as_ref())? {
            Ok(c) => c,
            Err(e) => {
                // A crash while the file was being initialised leaves at most two pages
                // and an empty journal: nothing can be lost by initialising again.
                let small = data_len <= 2 * opts.page_size as u64;
                if create_if_empty && !opts.read_only && small && journal_len == 0 {
                    tracing::warn!("re-initialising a database whose creation was interrupted");
                    Self::initialise(data.as_ref(), journal.as_ref(), opts.page_size)?;
                    choose_meta(data.as_ref())??
                } else {
                    return Err(e);
                }
            }
        };
        let page_size = choice.meta.page_size as usize;
        if !opts.read_only && data.len().map_err(Error::from_io)? < 2 * page_size as u64 {
            // A crash while the file was created left one meta slot: complete it.
            let other = 1 - choice.slot;
            tracing::warn!("completing an interrupted initialisation (meta slot {other} missing)");
            data.write_at(other * page_size as u64, &choice.meta.encode(other))
                .map_err(Error::from_io)?;
            data.sync().map_err(Error::from_io)?;
        }
        let pager = Pager::new(Arc::clone(&data), page_size, opts.cache_size_bytes);
        let scan = journal::scan(journal.as_ref(), page_size, choice.meta.txid)?;
        let mut meta = choice.meta;
        let mut report = RecoveryReport {
            commits_replayed: scan.records.len() as u64,
            pages_restored: 0,
            bytes_discarded: scan.bytes_discarded,
            meta_fallback: choice.fallback.clone(),
        };
        // Newest image per page across the replayed records.
        let mut newest: HashMap<u64, Arc<CachedPage>> = HashMap::new();
        for rec in scan.records {
            meta = rec.header.meta;
            for img in rec.images {
                newest.insert(img.header.page_id, Arc::new(img));
            }
        }
        let mut active_slot = choice.slot;
        let mut journal_writer = None;
        if opts.read_only {
            let images: Vec<Arc<CachedPage>> = newest.into_values().collect();
            pager.publish(&images);
        } else {
            let mut images: Vec<Arc<CachedPage>> = newest.into_values().collect();
            // Commit order (see Pager::overlay_images).
            images.sort_by_key(|p| (p.header.txid, p.header.page_id));
            if !images.is_empty() || meta.txid != choice.meta.txid {
                // Doublewrite restore: write every image home, then the meta.
                for img in &images {
                    data.write_at(img.header.page_id * page_size as u64, &img.bytes)
                        .map_err(Error::from_io)?;
                }
                data.sync().map_err(Error::from_io)?;
                let slot = 1 - choice.slot;
                data.write_at(slot * page_size as u64, &meta.encode(slot))
                    .map_err(Error::from_io)?;
                data.sync().map_err(Error::from_io)?;
                active_slot = slot;
                report.pages_restored = images.len() as u64;
                if report.commits_replayed > 0 {
                    tracing::info!(
                        commits = report.commits_replayed,
                        pages = report.pages_restored,
                        discarded = report.bytes_discarded,
                        "recovered from the journal"
                    );
                }
            }
            let mut jw = JournalWriter {
                storage: Arc::clone(&journal),
                pos: 0,
                salt: scan.salt,
                prev_crc: 0,
                synced_through: meta.txid,
                commits: 0,
                allocated: journal_len,
                // Enough to hold a whole generation, so a steady workload stops
                // allocating after its first checkpoint; a clean close gives it back.
                keep_bytes_max: opts
                    .checkpoint_threshold_bytes
                    .saturating_mul(2)
                    .max(8 * journal::ALLOCATION_CHUNK_BYTES),
            };
            if journal_len > 0 {
                jw.reset_truncating(meta.txid)?;
            } else {
                jw.salt = journal::next_salt(scan.salt, meta.txid);
            }
            journal_writer = Some(jw);
        }
        // The freelist is needed only for writing.
        let free = if opts.read_only || meta.freelist.is_null() {
            FreeSet::new()
        } else {
            let page = pager.read(&meta.freelist)?;
            FreeSet::from_runs(decode_freelist(&page.bytes, &page.header, meta.high_water)?)
        };
        Ok(Shared {
            pager,
            batch_queue: Mutex::new(Vec::new()),
            journal_storage: journal,
            read_only: opts.read_only,
            durability: opts.durability,
            checkpoint_threshold: opts.checkpoint_threshold_bytes,
            published: Mutex::new(Published {
                current: meta,
                readers: BTreeMap::new(),
            }),
            writer: Mutex::new(WriterState {
                meta,
                free,
                pending: BTreeMap::new(),
                journal: journal_writer,
            }),
            poisoned: AtomicBool::new(false),
            recovery: report,
            active_slot: AtomicU64::new(active_slot),
        })
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn poison(&self, why: &Error) {
        tracing::error!("poisoning the database handle: {why}");
        self.poisoned.store(true, Ordering::Release);
    }

    /// Registers a reader on the current snapshot.
    pub(crate) fn register_reader(&self) -> Meta {
        let mut p = lock(&self.published);
        let meta = p.current;
        *p.readers.entry(meta.txid).or_insert(0) += 1;
        meta
    }

    pub(crate) fn unregister_reader(&self, txid: u64) {
        let mut p = lock(&self.published);
        if let Some(n) = p.readers.get_mut(&txid) {
            *n -= 1;
            if *n == 0 {
                p.readers.remove(&txid);
            }
        }
    }

    /// Commits a write transaction. The writer lock is held by the caller.
    pub(crate) fn commit(&self, w: &mut WriterState, st: TxState) -> Result<()> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let oldest_reader = lock(&self.published).readers.keys().next().copied();
        let prepared = commit::prepare(
            &self.pager,
            st,
            &w.meta,
            w.free.clone(),
            w.pending.clone(),
            oldest_reader,
        )?;
        let sync = self.durability == Durability::Immediate;
        let Some(jw) = w.journal.as_mut() else {
            return Err(Error::ReadOnly);
        };
        if let Err(e) = jw.append(&prepared.meta, &prepared.images, sync) {
            self.poison(&e);
            return Err(e);
        }
        // Durable (or, with Durability::None, written): publish.
        self.pager.publish(&prepared.images);
        w.meta = prepared.meta;
        w.free = prepared.free;
        w.pending = prepared.pending;
        lock(&self.published).current = prepared.meta;
        if jw.pos >= self.checkpoint_threshold {
            if let Err(e) = self.checkpoint_locked(w) {
                // The commit itself is durable; the handle refuses further writes.
                self.poison(&e);
            }
        }
        Ok(())
    }

    /// Writes journal images home, syncs, advances the meta, then truncates the journal.
    pub(crate) fn checkpoint_locked(&self, w: &mut WriterState) -> Result<()> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let Some(jw) = w.journal.as_mut() else {
            return Err(Error::ReadOnly);
        };
        if jw.commits == 0 {
            return Ok(());
        }
        let page_size = self.pager.page_size as u64;
        let result = (|| -> Result<()> {
            // J2: records must be durable before any home page is overwritten.
            jw.storage.sync().map_err(Error::from_io)?;
            jw.synced_through = w.meta.txid;
            let images = self.pager.overlay_images();
            for img in &images {
                self.pager
                    .data
                    .write_at(img.header.page_id * page_size, &img.bytes)
                    .map_err(Error::from_io)?;
            }
            self.pager.data.sync().map_err(Error::from_io)?;
            let current = self.active_slot.load(Ordering::Acquire);
            let slot = if current == 0 { 1 } else { 0 };
            self.pager
                .data
                .write_at(slot * page_size, &w.meta.encode(slot))
                .map_err(Error::from_io)?;
            self.pager.data.sync().map_err(Error::from_io)?;
            self.active_slot.store(slot, Ordering::Release);
            // J4: only now may the journal space be reused.
            jw.reset(w.meta.txid)?;
            self.pager.retire_overlay(&images);
            Ok(())
        })();
        if let Err(e) = &result {
            self.poison(e);
        }
        result
    }
}

/// An open database. `Send + Sync`: share it between threads by reference or `Arc`.
pub struct Database {
    pub(crate) shared: Arc<Shared>,
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
        Ok(WriteTx::new(&self.shared, guard))
    }

    /// Runs `f` in a read transaction.
    pub fn view<T>(&self, f: impl FnOnce(&ReadTx<'_>) -> Result<T>) -> Result<T> {
        let tx = self.begin_read()?;
        f(&tx)
    }

    /// Runs `f` in a write transaction and commits if it returns `Ok`.
    pub fn update<T>(&self, f: impl FnOnce(&WriteTx<'_>) -> Result<T>) -> Result<T> {
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
    /// If any closure of a batch fails, the batch is aborted and every closure is run
    /// again in a transaction of its own, so **`f` may run more than once and must be
    /// idempotent** (the same rule as bbolt's). Its own error is returned to each caller.
    pub fn batch(
        &self,
        f: impl Fn(&WriteTx<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Result<()> {
        let slot = Arc::new(BatchSlot::default());
        lock(&self.shared.batch_queue).push(BatchCall {
            f: Box::new(f),
            slot: Arc::clone(&slot),
        });
        // Whoever holds the writer lock next runs everything queued so far.
        let tx = self.begin_write();
        let calls = {
            let mut queue = lock(&self.shared.batch_queue);
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
        let all_ok = calls.iter().all(|c| (c.f)(&tx).is_ok());
        if all_ok {
            let committed = tx.commit();
            for c in &calls {
                c.slot.set(match &committed {
                    Ok(()) => Ok(()),
                    Err(e) => Err(e.duplicate()),
                });
            }
        } else {
            tx.abort();
            for c in &calls {
                c.slot.set(self.update(|tx| (c.f)(tx)));
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
        self.shared.checkpoint_locked(&mut w)
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
                .map_or(0, |j| j.commits)
        };
        let slot = self.shared.active_slot.load(Ordering::Acquire);
        Ok(Info {
            page_size: self.shared.pager.page_size,
            txid: meta.txid,
            high_water: meta.high_water,
            file_size_bytes: self.shared.pager.data.len().map_err(Error::from_io)?,
            journal_size_bytes: self.shared.journal_storage.len().map_err(Error::from_io)?,
            journal_commits,
            active_meta_slot: (slot <= 1).then_some(slot),
            meta_fallback: self.shared.recovery.meta_fallback.clone(),
            read_only: self.shared.read_only,
        })
    }

    /// Checks the integrity of the newest committed snapshot (read-only, concurrently
    /// with writers; see `docs/check.md`).
    pub fn check(&self, opts: crate::check::CheckOptions) -> Result<crate::report::Report> {
        let tx = self.begin_read()?;
        crate::check::check(tx.check_source(), opts)
    }

    /// Page counts by kind, free pages, tree depth and fill factor of the newest snapshot.
    pub fn stats(&self) -> Result<crate::check::Stats> {
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
        // Clean close: checkpoint so the next open has nothing to replay.
        let mut w = lock(&self.shared.writer);
        if let Err(e) = self.shared.checkpoint_locked(&mut w) {
            tracing::error!(
                "checkpoint at close failed: {e}; the journal will be replayed at next open"
            );
            return;
        }
        // Nothing is left to replay: give the journal's space back.
        let txid = w.meta.txid;
        if let Some(jw) = w.journal.as_mut() {
            if jw.allocated > 0 {
                if let Err(e) = jw.reset_truncating(txid) {
                    tracing::warn!("could not truncate the journal at close: {e}");
                }
            }
        }
    }
}
