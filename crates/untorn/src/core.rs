//! The engine core behind a [`crate::Database`] handle: the state its transactions
//! share, opening (creation, the superblock's choice, recovery), the commit path,
//! checkpoints, a clean close, reader registration and poisoning.
//!
//! States of a handle: *open* (read-write or read-only) → *poisoned* (a sync or a journal
//! header write failed: reads continue, writes refuse until reopen). Transitions happen
//! only in [`Shared::commit`] and [`Shared::checkpoint_locked`].
//!
//! **Invariant:** pages freed by commit F are reused only when no registered reader has
//! a snapshot older than F.
//! **Invariant:** a failed journal sync, a failed header write or checkpoint I/O poisons
//! the handle; there is no retry path. A commit that fails before its header is written
//! leaves nothing replayable and the handle usable (J13).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::btree::TxState;
use crate::commit::{self, DirectError, FreeState, Placed};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::format::{Meta, MetaState, PageRef, TxId};
use crate::freeset::FreeSet;
use crate::journal::{self, AppendError, JournalWriter};
use crate::pager::Pager;
use crate::readers::{ReaderTableFile, Registration};
use crate::recovery::{self, Evidence, RecoverOptions, RecoveryReport};
use crate::storage::Storage;
use crate::superblock::{self, Chosen, Slot};

/// Locks a mutex, serving its value even if a panic poisoned the lock: every value
/// behind these locks is consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps a journal's bytes before a rollback reuses it (see `recovery::Evidence`).
pub(crate) type EvidenceFn = Arc<dyn Fn(&dyn Storage) -> Result<String> + Send + Sync>;

/// What opening needs to know (the validated options of a `Builder`).
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) page_size: usize,
    pub(crate) cache_size_bytes: usize,
    pub(crate) read_only: bool,
    /// Sync the journal at every commit (`Durability::Immediate`).
    pub(crate) sync_on_commit: bool,
    pub(crate) checkpoint_threshold_bytes: u64,
    /// A durable commit whose images add up to at least this many bytes writes the ones
    /// it can straight home instead of through the journal (J25).
    pub(crate) direct_home_threshold_bytes: u64,
    /// `Recovery::RollbackToLastGood`.
    pub(crate) rollback: bool,
    /// Fixed seed for ids and salts (simulator, golden files); `None`: random.
    pub(crate) id_seed: Option<u64>,
    /// Where a rollback keeps the journal's bytes (path-based opens).
    pub(crate) evidence: Option<EvidenceFn>,
    /// Read-write by path: the reader table other processes' readers register in.
    pub(crate) reader_table: Option<Arc<ReaderTableFile>>,
    /// Read-only by path: this handle's slot in the reader table (pinning "opening"
    /// until open chose the snapshot).
    pub(crate) registration: Option<Arc<Registration>>,
}

/// Attempts of a read-only open to read one state while a writer checkpoints under it.
const SETTLE_ATTEMPTS: u32 = 64;

/// One commit's change to the free set, in a persistent list a reader's snapshot keeps
/// alive (so the checker can compute a snapshot's free pages without the writer).
pub(crate) struct Delta {
    prev: Option<Arc<Delta>>,
    allocated: Vec<(u64, u64)>,
    freed: Vec<(u64, u64)>,
}

impl Drop for Delta {
    // Iterative, so that dropping a long list never recurses.
    fn drop(&mut self) {
        let mut next = self.prev.take();
        while let Some(d) = next {
            match Arc::try_unwrap(d) {
                Ok(mut inner) => next = inner.prev.take(),
                Err(_) => break,
            }
        }
    }
}

/// The free pages of one committed snapshot: the set at the last checkpoint (or open)
/// and the deltas of the commits since.
#[derive(Clone, Default)]
pub(crate) struct FreeView {
    base: Option<Arc<Vec<(u64, u64)>>>,
    last: Option<Arc<Delta>>,
}

impl FreeView {
    fn new(base: &FreeSet) -> FreeView {
        FreeView {
            base: Some(Arc::new(base.runs().collect())),
            last: None,
        }
    }

    fn push(&self, allocated: Vec<(u64, u64)>, freed: Vec<(u64, u64)>) -> FreeView {
        FreeView {
            base: self.base.clone(),
            last: Some(Arc::new(Delta {
                prev: self.last.clone(),
                allocated,
                freed,
            })),
        }
    }

    /// The snapshot's free runs; `None` if unknown (a read-only open whose freelist could
    /// not be read: the checker reads the extent itself).
    pub(crate) fn runs(&self) -> Option<Vec<(u64, u64)>> {
        let base = self.base.as_ref()?;
        let mut chain = Vec::new();
        let mut at = self.last.as_ref();
        while let Some(d) = at {
            chain.push(d);
            at = d.prev.as_ref();
        }
        let mut free = FreeSet::from_runs(base.iter().copied());
        for d in chain.into_iter().rev() {
            for (s, l) in &d.allocated {
                free.remove(*s, *l);
            }
            for (s, l) in &d.freed {
                free.insert(*s, *l);
            }
        }
        Some(free.runs().collect())
    }
}

/// The newest committed meta and the snapshots readers hold.
pub(crate) struct Published {
    pub(crate) current: Meta,
    pub(crate) free: FreeView,
    /// Open read transactions per snapshot txid.
    pub(crate) readers: BTreeMap<TxId, usize>,
}

/// What only the writer touches (behind the writer lock).
pub(crate) struct WriterState {
    /// The newest committed meta (the base of the next write transaction).
    pub(crate) meta: Meta,
    /// The meta in the active slot on disk (the last checkpoint's).
    pub(crate) on_disk: Meta,
    pub(crate) fs: FreeState,
    /// `None` for a read-only handle.
    pub(crate) journal: Option<JournalWriter>,
    entropy: Entropy,
}

/// Commits that wrote pages straight home, and those pages (since open).
#[derive(Default)]
pub(crate) struct DirectHomeCounters {
    pub(crate) commits: AtomicU64,
    pub(crate) pages: AtomicU64,
}

/// The state shared by a database handle and its transactions.
pub(crate) struct Shared {
    pub(crate) pager: Pager,
    pub(crate) journal_storage: Arc<dyn Storage>,
    pub(crate) read_only: bool,
    sync_on_commit: bool,
    checkpoint_threshold: u64,
    direct_home_threshold: u64,
    /// What commits wrote straight home since open (for `Database::info`).
    pub(crate) direct_home: DirectHomeCounters,
    pub(crate) published: Mutex<Published>,
    pub(crate) writer: Mutex<WriterState>,
    poisoned: AtomicBool,
    pub(crate) recovery: RecoveryReport,
    /// Per meta slot, why its damage (seen at open) is harmless, for the checker.
    pub(crate) slot_notes: [Option<String>; 2],
    /// The on-disk meta slot in use (the newest checkpointed meta).
    active_slot: Mutex<Slot>,
    /// Read-write: other processes' readers, consulted before freed pages are reused.
    reader_table: Option<Arc<ReaderTableFile>>,
    /// Read-only by path: the slot pinning this handle's snapshot (released on drop,
    /// after the last transaction that shares this state).
    _registration: Option<Arc<Registration>>,
    /// Read-only: both meta slots as read when the snapshot was chosen, for the checker
    /// (a live writer rewrites them).
    pub(crate) raw_metas: Option<[Vec<u8>; 2]>,
}

/// Journal space a generation start keeps (more is truncated).
fn keep_bytes_max(opts: &Options) -> u64 {
    // Enough to hold a whole generation, so a steady workload stops allocating after its
    // first checkpoint; a clean close gives it back.
    opts.checkpoint_threshold_bytes
        .saturating_mul(2)
        .max(8 * journal::ALLOCATION_CHUNK_BYTES)
}

/// The base meta `superblock::choose` picks now (`None` when it picks none).
fn base_meta(data: &dyn Storage, journal: &dyn Storage, rollback: bool) -> Result<Option<Meta>> {
    Ok(match superblock::choose(data, Some(journal), rollback)? {
        Ok(Chosen::Base(choice)) => Some(choice.meta),
        Ok(Chosen::Reinitialise(_)) | Err(_) => None,
    })
}

/// Both meta slots' bytes (a slot past the end of the file reads as empty).
fn read_both_slots(data: &dyn Storage, page_size: usize) -> Result<[Vec<u8>; 2]> {
    let read = |slot| match superblock::read_raw(data, slot, page_size) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Vec::new()),
        Err(e) => Err(Error::from_io(e)),
    };
    Ok([read(Slot::Zero)?, read(Slot::One)?])
}

/// Creates a new database on `data` + `journal` (§3.1): both metas in state `creating`,
/// the first generation's marker, the directory entries, then the session start. Returns
/// the open meta and the journal writer.
fn create(
    opts: &Options,
    data: &dyn Storage,
    journal: &Arc<dyn Storage>,
    entropy: &mut Entropy,
) -> Result<(Meta, JournalWriter)> {
    let db_id = entropy.db_id();
    let base = superblock::create_metas(data, opts.page_size, db_id, entropy.salt(1))?;
    data.sync_directory_entry().map_err(Error::from_io)?;
    let mut jw = JournalWriter::new(Arc::clone(journal), db_id, 0, keep_bytes_max(opts));
    jw.start_generation(&base, true)?;
    journal.sync_directory_entry().map_err(Error::from_io)?;
    let next = Meta {
        meta_seq: base.meta_seq + 1,
        journal_salt: entropy.salt(base.meta_seq + 1),
        state: MetaState::Open,
        ..base
    };
    recovery::advance(data, &mut jw, &[], &base, &next, false)?;
    jw.presize(0)?;
    Ok((next, jw))
}

impl Shared {
    /// Opens (or, with `create_if_empty`, creates) the database on `data` + `journal`.
    pub(crate) fn open(
        opts: &Options,
        data: Arc<dyn Storage>,
        journal: Arc<dyn Storage>,
        create_if_empty: bool,
    ) -> Result<Shared> {
        let mut entropy = opts.id_seed.map_or_else(Entropy::random, Entropy::seeded);
        let data_len = data.len().map_err(Error::from_io)?;
        let create_ok = create_if_empty && !opts.read_only;
        let evidence: Option<Evidence<'_>> = opts.evidence.as_deref().map(|e| e as Evidence<'_>);
        let fresh = |entropy: &mut Entropy| -> Result<recovery::Recovered> {
            if journal.len().map_err(Error::from_io)? > 0 {
                if let Some(keep) = evidence {
                    let kept = keep(journal.as_ref())?;
                    tracing::warn!(
                        "creating a database beside a journal with contents: kept as {kept}"
                    );
                }
            }
            let (meta, jw) = create(opts, data.as_ref(), &journal, entropy)?;
            Ok(recovery::Recovered {
                meta,
                on_disk: meta,
                unwritten: Vec::new(),
                free: Some(FreeSet::new()),
                freed_since_checkpoint: FreeSet::new(),
                journal: Some(jw),
                report: RecoveryReport::default(),
            })
        };
        let mut slot_notes: [Option<String>; 2] = [None, None];
        let existing = |entropy: &mut Entropy,
                        slot_notes: &mut [Option<String>; 2]|
         -> Result<recovery::Recovered> {
            match superblock::choose(data.as_ref(), Some(journal.as_ref()), opts.rollback)?? {
                Chosen::Reinitialise(why) => {
                    if !create_ok {
                        return Err(Error::NotADatabase(format!(
                            "{why}; `Database::create` initialises it again"
                        )));
                    }
                    tracing::warn!("re-initialising: {why}");
                    fresh(entropy)
                }
                Chosen::Base(choice) => {
                    for slot in Slot::BOTH {
                        let note = choice.proven(slot).map(str::to_owned).or_else(|| {
                            (choice.restored_from_marker && slot == choice.slot())
                                .then(|| "restored from the journal's generation marker".to_owned())
                        });
                        if let Some(n) = slot_notes.get_mut(usize::from(slot.page() == 1)) {
                            *n = note;
                        }
                    }
                    let ropts = RecoverOptions {
                        read_only: opts.read_only,
                        rollback: opts.rollback,
                        evidence,
                        keep_bytes_max: keep_bytes_max(opts),
                    };
                    recovery::recover(data.as_ref(), &journal, &choice, &ropts, entropy)
                }
            }
        };
        let mut raw_metas = None;
        let recovered = if data_len == 0 {
            if !create_ok {
                return Err(Error::NotADatabase("the file is empty".into()));
            }
            fresh(&mut entropy)?
        } else if opts.read_only {
            // A writer in another process may checkpoint while this open reads: retry
            // until the base meta is the same before and after (meta_seq only grows, and
            // the journal is reused only after a new meta), so the journal read was of
            // one generation.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let before = base_meta(data.as_ref(), journal.as_ref(), opts.rollback)?;
                let raw = before
                    .map(|m| read_both_slots(data.as_ref(), m.page_size as usize))
                    .transpose()?;
                let result = existing(&mut entropy, &mut slot_notes);
                let after = base_meta(data.as_ref(), journal.as_ref(), opts.rollback)?;
                if before == after {
                    raw_metas = raw;
                    break result?;
                }
                if attempt >= SETTLE_ATTEMPTS {
                    return Err(Error::Busy { attempts: attempt });
                }
            }
        } else {
            existing(&mut entropy, &mut slot_notes)?
        };
        let page_size = recovered.meta.page_size as usize;
        let pager = Pager::new(Arc::clone(&data), page_size, opts.cache_size_bytes);
        // Read-only, the replayed images are served from memory; everything up to the
        // checkpointed meta is home.
        pager.publish(&recovered.unwritten);
        pager.set_home_through(recovered.on_disk.txid);
        let meta = recovered.meta;
        let free_view = recovered
            .free
            .as_ref()
            .map_or_else(FreeView::default, FreeView::new);
        let fs = FreeState {
            free: recovered.free.unwrap_or_default(),
            pending: BTreeMap::new(),
            freed_since_checkpoint: recovered.freed_since_checkpoint,
        };
        let active = if recovered.on_disk.slot() == 0 {
            Slot::Zero
        } else {
            Slot::One
        };
        let mut fs = fs;
        if let Some(table) = &opts.reader_table {
            // Readers of another process may hold snapshots older than this state (from
            // an earlier writer session), whose freed pages are all free now: hold them
            // back until those readers move past it.
            if let Err(e) = table.reap() {
                tracing::warn!("clearing the reader table's stale slots: {e}");
            }
            if table.oldest_pin().is_some_and(|p| p < meta.txid) {
                let runs: Vec<(u64, u64)> = fs.free.runs().collect();
                for (s, l) in &runs {
                    fs.free.remove(*s, *l);
                }
                fs.pending.entry(meta.txid).or_default().extend(runs);
            }
        }
        if let Some(r) = &opts.registration {
            r.pin(meta.txid).map_err(Error::from_io)?;
        }
        Ok(Shared {
            pager,
            journal_storage: journal,
            read_only: opts.read_only,
            sync_on_commit: opts.sync_on_commit,
            checkpoint_threshold: opts.checkpoint_threshold_bytes,
            direct_home_threshold: opts.direct_home_threshold_bytes,
            direct_home: DirectHomeCounters::default(),
            published: Mutex::new(Published {
                current: meta,
                free: free_view,
                readers: BTreeMap::new(),
            }),
            writer: Mutex::new(WriterState {
                meta,
                on_disk: recovered.on_disk,
                fs,
                journal: recovered.journal,
                entropy,
            }),
            poisoned: AtomicBool::new(false),
            recovery: recovered.report,
            slot_notes,
            active_slot: Mutex::new(active),
            reader_table: opts.reader_table.clone(),
            _registration: opts.registration.clone(),
            raw_metas,
        })
    }

    /// The on-disk meta slot in use.
    pub(crate) fn active_slot(&self) -> Slot {
        *lock(&self.active_slot)
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn poison(&self, why: &Error) {
        tracing::error!("poisoning the database handle: {why}");
        self.poisoned.store(true, Ordering::Release);
    }

    /// Registers a reader on the current snapshot.
    pub(crate) fn register_reader(&self) -> (Meta, FreeView) {
        let mut p = lock(&self.published);
        let meta = p.current;
        *p.readers.entry(meta.txid).or_insert(0) += 1;
        (meta, p.free.clone())
    }

    pub(crate) fn unregister_reader(&self, txid: TxId) {
        let mut p = lock(&self.published);
        if let Some(n) = p.readers.get_mut(&txid) {
            *n -= 1;
            if *n == 0 {
                p.readers.remove(&txid);
            }
        }
    }

    /// The oldest snapshot a reader holds: this handle's and, when freed pages wait for
    /// release, those of readers in other processes (the reader table).
    fn oldest_reader(&self, fs: &FreeState) -> Option<TxId> {
        let local = lock(&self.published).readers.keys().next().copied();
        let external = match &self.reader_table {
            Some(table) if !fs.pending.is_empty() => table.oldest_pin(),
            _ => None,
        };
        match (local, external) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Commits a write transaction. The writer lock is held by the caller. `sync`
    /// overrides the handle's durability for this commit.
    pub(crate) fn commit(
        &self,
        w: &mut WriterState,
        st: TxState,
        sync: Option<bool>,
    ) -> Result<()> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let txid = st.txid;
        if Some(txid) != w.meta.txid.next() {
            return Err(Error::Internal("a commit must follow the newest meta"));
        }
        let oldest_reader = self.oldest_reader(&w.fs);
        let prepared = commit::prepare(&self.pager, st, &w.meta, &mut w.fs, oldest_reader)?;
        let Some(jw) = w.journal.as_mut() else {
            w.fs.undo(prepared.undo);
            return Err(Error::ReadOnly);
        };
        let sync = sync.unwrap_or(self.sync_on_commit);
        // J25: a large durable commit writes what it can straight home first. (Without a
        // sync there is no point at which the direct extents are known durable before the
        // record, so such commits journal everything.)
        let Placed {
            mut direct,
            journaled,
        } = if sync && commit::image_bytes(&prepared.images) >= self.direct_home_threshold {
            commit::place(prepared.images, &w.fs.freed_since_checkpoint)
        } else {
            Placed {
                direct: Vec::new(),
                journaled: prepared.images,
            }
        };
        if !direct.is_empty() {
            if direct.iter().any(|p| self.pager.overlay_holds(p.page_id())) {
                w.fs.undo(prepared.undo);
                return Err(Error::Internal(
                    "a direct extent starts at a page the checkpoint would write",
                ));
            }
            match commit::write_direct(self.pager.data.as_ref(), &mut direct, self.pager.page_size)
            {
                Ok(()) => {}
                Err(DirectError::Write(e)) => {
                    // The pages written are free and nothing refers to them.
                    w.fs.undo(prepared.undo);
                    return Err(e);
                }
                Err(DirectError::Sync(e)) => {
                    self.poison(&e);
                    w.fs.undo(prepared.undo);
                    return Err(e);
                }
            }
        }
        let direct_refs: Vec<PageRef> = direct.iter().map(|p| p.reference()).collect();
        match jw.append(
            &prepared.meta,
            &journaled,
            &prepared.freed,
            &direct_refs,
            sync,
        ) {
            Ok(()) => {}
            Err(AppendError::Clean(e)) => {
                // Nothing replayable was written: the handle stays usable.
                w.fs.undo(prepared.undo);
                return Err(e);
            }
            Err(AppendError::HeaderMayHaveLanded(e)) => {
                self.poison(&e);
                w.fs.undo(prepared.undo);
                return Err(match jw.revoke(txid) {
                    Ok(()) => e,
                    Err(r) => Error::CommitOutcomeUnknown {
                        txid: txid.get(),
                        detail: format!("{e}; writing the revocation: {r}"),
                    },
                });
            }
        }
        // Durable (or, with Durability::None, written): publish. Direct extents are home
        // and synced: they go to the cache, never to the overlay a checkpoint writes home.
        self.pager.publish(&journaled);
        self.pager.publish_home(&direct);
        if journaled.is_empty() {
            self.pager.home_if_overlay_empty(txid);
        }
        if !direct.is_empty() {
            let pages: u64 = direct
                .iter()
                .map(|p| u64::from(p.header().extent_pages))
                .sum();
            self.direct_home.commits.fetch_add(1, Ordering::Relaxed);
            self.direct_home.pages.fetch_add(pages, Ordering::Relaxed);
        }
        w.fs.commit(txid, &prepared.freed);
        let mut allocated = FreeSet::new();
        for img in journaled.iter().chain(&direct) {
            allocated.insert(img.page_id().0, u64::from(img.header().extent_pages));
        }
        w.meta = prepared.meta;
        {
            let mut p = lock(&self.published);
            p.free = p.free.push(allocated.runs().collect(), prepared.freed);
            p.current = prepared.meta;
        }
        if jw.pos >= self.checkpoint_threshold {
            if let Err(e) = self.checkpoint_locked(w, false) {
                // The commit itself is durable; the handle refuses further writes.
                self.poison(&e);
            }
        }
        Ok(())
    }

    /// Checkpoint (§3.4): syncs the journal, writes the overlay images and a new freelist
    /// extent home, advances the meta (state `clean` when `closing`) and starts the next
    /// journal generation (truncated to its marker when `closing`).
    pub(crate) fn checkpoint_locked(&self, w: &mut WriterState, closing: bool) -> Result<()> {
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        let Some(jw) = w.journal.as_mut() else {
            return Err(Error::ReadOnly);
        };
        if jw.commits == 0 && !closing {
            return Ok(());
        }
        if let Some(table) = &self.reader_table {
            // Readers that are gone stop pinning pages (their slots' lock files are free).
            if let Err(e) = table.reap() {
                tracing::warn!("clearing the reader table's stale slots: {e}");
            }
        }
        let commits = jw.commits;
        let page_size = self.pager.page_size;
        let result = (|| -> Result<()> {
            // J2: records must be durable before any home page is overwritten.
            jw.storage.sync().map_err(Error::from_io)?;
            jw.synced_through = w.meta.txid;
            let overlay = self.pager.overlay_images();
            let mut images = overlay.clone();
            let mut next = w.meta;
            let old_freelist = w.on_disk.freelist;
            if commits > 0 {
                let mut all_free = w.fs.all_free();
                if !old_freelist.is_null() {
                    all_free.insert(old_freelist.page_id.0, u64::from(old_freelist.extent_pages));
                }
                let (img, high_water) = recovery::freelist_extent(
                    &mut w.fs.free,
                    &w.fs.freed_since_checkpoint,
                    all_free,
                    next.txid,
                    next.high_water,
                    page_size,
                )?;
                next.freelist = img.as_ref().map_or(PageRef::NULL, |i| i.reference());
                next.high_water = high_water;
                images.extend(img);
                images.sort_by_key(|p| (p.header().txid, p.page_id()));
            }
            next.meta_seq = w
                .on_disk
                .meta_seq
                .checked_add(1)
                .ok_or(Error::Internal("meta sequence exhausted"))?;
            next.journal_salt = w.entropy.salt(next.meta_seq);
            next.state = if closing {
                MetaState::Clean
            } else {
                MetaState::Open
            };
            let peak = jw.peak_pos;
            recovery::advance(
                self.pager.data.as_ref(),
                jw,
                &images,
                &w.on_disk,
                &next,
                closing,
            )?;
            if !closing {
                jw.presize(peak)?;
            }
            // Installed only now that the new meta and generation are durable.
            w.fs.freed_since_checkpoint = FreeSet::new();
            if commits > 0 && !old_freelist.is_null() {
                let run = (old_freelist.page_id.0, u64::from(old_freelist.extent_pages));
                // Readers of this txid may still read the old extent (the checker does).
                let release_at = next
                    .txid
                    .next()
                    .ok_or(Error::Internal("txid counter exhausted"))?;
                w.fs.pending.entry(release_at).or_default().push(run);
                w.fs.freed_since_checkpoint.insert(run.0, run.1);
            }
            *lock(&self.active_slot) = if next.slot() == 0 {
                Slot::Zero
            } else {
                Slot::One
            };
            w.on_disk = next;
            w.meta = next;
            {
                let mut p = lock(&self.published);
                p.current = next;
                if commits > 0 {
                    p.free = FreeView::new(&w.fs.all_free());
                }
            }
            // The images are home and synced: readers of them may skip the overlay.
            self.pager.set_home_through(next.txid);
            self.pager.retire_overlay(&overlay);
            Ok(())
        })();
        if let Err(e) = &result {
            self.poison(e);
        }
        result
    }
}

/// The part of a write transaction that bucket handles and cursors borrow: the shared
/// state and the transaction's own (interior-mutable) tree state.
pub(crate) struct TxInner<'db> {
    pub(crate) shared: &'db Shared,
    pub(crate) st: RefCell<TxState>,
}

impl TxInner<'_> {
    pub(crate) fn borrow(&self) -> Result<std::cell::Ref<'_, TxState>> {
        self.st
            .try_borrow()
            .map_err(|_| Error::Internal("transaction state borrowed mutably"))
    }
    pub(crate) fn borrow_mut(&self) -> Result<std::cell::RefMut<'_, TxState>> {
        self.st
            .try_borrow_mut()
            .map_err(|_| Error::Internal("transaction state already borrowed"))
    }
}
