//! The engine core behind a [`crate::Database`] handle: the state its transactions
//! share, opening (superblock, recovery, freelist), the commit path, checkpoints,
//! reader registration and poisoning.
//!
//! States of a handle: *open* (read-write or read-only) → *poisoned* (a sync or journal
//! write failed: reads continue, writes refuse until reopen). Transitions happen only in
//! [`Shared::commit`] and [`Shared::checkpoint_locked`].
//!
//! **Invariant:** pages freed by commit F are reused only when no registered reader has
//! a snapshot older than F.
//! **Invariant:** a failed journal write/sync or checkpoint I/O poisons the handle;
//! there is no retry path.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::btree::TxState;
use crate::commit;
use crate::error::{Error, Result};
use crate::format::{decode_freelist, Meta, TxId};
use crate::freeset::FreeSet;
use crate::journal::{self, JournalWriter};
use crate::pager::Pager;
use crate::recovery::{self, RecoveryReport};
use crate::storage::Storage;
use crate::superblock::{self, Slot};

/// Locks a mutex, serving its value even if a panic poisoned the lock: every value
/// behind these locks is consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What opening needs to know (the validated options of a `Builder`).
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) page_size: usize,
    pub(crate) cache_size_bytes: usize,
    pub(crate) read_only: bool,
    /// Sync the journal at every commit (`Durability::Immediate`).
    pub(crate) sync_on_commit: bool,
    pub(crate) checkpoint_threshold_bytes: u64,
}

/// The newest committed meta and the snapshots readers hold.
pub(crate) struct Published {
    pub(crate) current: Meta,
    /// Open read transactions per snapshot txid.
    pub(crate) readers: BTreeMap<TxId, usize>,
}

/// What only the writer touches (behind the writer lock).
pub(crate) struct WriterState {
    /// The newest committed meta (the base of the next write transaction).
    pub(crate) meta: Meta,
    /// The txid of the meta in the active slot on disk (the last checkpoint's).
    pub(crate) checkpointed: TxId,
    pub(crate) free: FreeSet,
    /// Runs freed by each commit, released once no reader can see them.
    pub(crate) pending: BTreeMap<TxId, Vec<(u64, u64)>>,
    /// `None` for a read-only handle.
    pub(crate) journal: Option<JournalWriter>,
}

/// The state shared by a database handle and its transactions.
pub(crate) struct Shared {
    pub(crate) pager: Pager,
    pub(crate) journal_storage: Arc<dyn Storage>,
    pub(crate) read_only: bool,
    sync_on_commit: bool,
    checkpoint_threshold: u64,
    pub(crate) published: Mutex<Published>,
    pub(crate) writer: Mutex<WriterState>,
    poisoned: AtomicBool,
    pub(crate) recovery: RecoveryReport,
    /// The on-disk meta slot in use (the newest checkpointed meta).
    active_slot: Mutex<Slot>,
}

impl Shared {
    /// Opens (or, with `create_if_empty`, creates) the database on `data` + `journal`.
    pub(crate) fn open(
        opts: &Options,
        data: Arc<dyn Storage>,
        journal: Arc<dyn Storage>,
        create_if_empty: bool,
    ) -> Result<Shared> {
        let data_len = data.len().map_err(Error::from_io)?;
        let journal_len = journal.len().map_err(Error::from_io)?;
        let create = create_if_empty && !opts.read_only;
        if data_len == 0 {
            if !create {
                return Err(Error::NotADatabase("the file is empty".into()));
            }
            initialise(data.as_ref(), journal.as_ref(), opts.page_size)?;
        }
        let choice = match superblock::choose(data.as_ref())? {
            Ok(c) => c,
            // A crash while the file was being initialised leaves at most two pages and
            // an empty journal: nothing can be lost by initialising again.
            Err(_) if create && data_len <= 2 * opts.page_size as u64 && journal_len == 0 => {
                tracing::warn!("re-initialising a database whose creation was interrupted");
                initialise(data.as_ref(), journal.as_ref(), opts.page_size)?;
                superblock::choose(data.as_ref())??
            }
            Err(e) => return Err(e),
        };
        let page_size = choice.page_size;
        if !opts.read_only && data.len().map_err(Error::from_io)? < 2 * page_size as u64 {
            // A crash while the file was created left one meta slot: complete it.
            let other = choice.slot.other();
            tracing::warn!(
                "completing an interrupted initialisation (meta slot {} missing)",
                other.page()
            );
            superblock::write(data.as_ref(), other, &choice.meta)?;
        }
        let pager = Pager::new(Arc::clone(&data), page_size, opts.cache_size_bytes);
        let recovered =
            recovery::recover(data.as_ref(), journal.as_ref(), &choice, !opts.read_only)?;
        let meta = recovered.meta;
        // Read-only, the replayed images are served from memory; everything up to the
        // checkpointed meta is home.
        pager.publish(&recovered.unwritten);
        pager.set_home_through(recovered.checkpointed);
        let journal_writer = if opts.read_only {
            None
        } else {
            let mut jw = JournalWriter {
                storage: Arc::clone(&journal),
                pos: 0,
                salt: recovered.journal_salt,
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
                jw.salt = journal::next_salt(recovered.journal_salt, meta.txid);
            }
            Some(jw)
        };
        // The freelist is needed only for writing.
        let free = if opts.read_only || meta.freelist.is_null() {
            FreeSet::new()
        } else {
            let page = pager.read(&meta.freelist)?;
            FreeSet::from_runs(decode_freelist(
                page.bytes(),
                page.header(),
                meta.high_water,
            )?)
        };
        Ok(Shared {
            pager,
            journal_storage: journal,
            read_only: opts.read_only,
            sync_on_commit: opts.sync_on_commit,
            checkpoint_threshold: opts.checkpoint_threshold_bytes,
            published: Mutex::new(Published {
                current: meta,
                readers: BTreeMap::new(),
            }),
            writer: Mutex::new(WriterState {
                meta,
                checkpointed: recovered.checkpointed,
                free,
                pending: BTreeMap::new(),
                journal: journal_writer,
            }),
            poisoned: AtomicBool::new(false),
            recovery: recovered.report,
            active_slot: Mutex::new(recovered.active),
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
    pub(crate) fn register_reader(&self) -> Meta {
        let mut p = lock(&self.published);
        let meta = p.current;
        *p.readers.entry(meta.txid).or_insert(0) += 1;
        meta
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
        if Some(st.txid) != w.meta.txid.next() {
            return Err(Error::Internal("a commit must follow the newest meta"));
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
        let Some(jw) = w.journal.as_mut() else {
            return Err(Error::ReadOnly);
        };
        if let Err(e) = jw.append(
            &prepared.meta,
            &prepared.images,
            sync.unwrap_or(self.sync_on_commit),
        ) {
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
        let result = (|| -> Result<()> {
            // J2: records must be durable before any home page is overwritten.
            jw.storage.sync().map_err(Error::from_io)?;
            jw.synced_through = w.meta.txid;
            let images = self.pager.overlay_images();
            let active = recovery::write_home(
                self.pager.data.as_ref(),
                self.pager.page_size,
                &images,
                &w.meta,
                self.active_slot(),
                w.checkpointed,
            )?;
            *lock(&self.active_slot) = active;
            w.checkpointed = w.meta.txid;
            // The images are home and synced: readers of them may skip the overlay.
            self.pager.set_home_through(w.meta.txid);
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

/// Makes `data` + `journal` a new, empty database.
fn initialise(data: &dyn Storage, journal: &dyn Storage, page_size: usize) -> Result<()> {
    superblock::initialise(data, page_size)?;
    journal.set_len(0).map_err(Error::from_io)?;
    journal.sync().map_err(Error::from_io)
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
