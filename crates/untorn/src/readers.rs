//! The reader table beside a database opened by path: how read-only handles in other
//! processes tell the writer which snapshot they read (LMDB's reader table).
//!
//! Files: `NAME.readers` (the table, [`crate::format::readers`]) and one lock file per slot,
//! `NAME.readers.N`. A reader claims slot N under an exclusive lock of the table file, holds
//! an exclusive lock of `NAME.readers.N` for as long as it reads, and pins txid 0 ("opening":
//! nothing the writer freed may be reused) until it has chosen its snapshot, then that
//! snapshot's txid. A slot whose lock file nobody holds belongs to a reader that is gone
//! (it crashed, or was killed): a claiming reader takes it over and the writer clears it
//! at its checkpoints.
//!
//! Why registering first is enough (docs/crash_safety.md, "Readers in other processes"):
//! the writer releases pages freed by commit F only after reading the table, and only F
//! up to its newest commit, whose record is already in the journal. A reader registered
//! after that read then scans the journal and sees that commit, so its snapshot is at least
//! F and cannot reach those pages; a reader registered before it is seen.
//!
//! The writer reads the table at every commit that could release pages, without a lock
//! (one 4 KiB read; a torn read fails the checksum and is read again under the lock).
//! Nothing here is a database file: losing the table loses nothing once no process has the
//! database open.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::format::readers::{
    ReaderSlot, ReaderTable, READER_SLOTS, READER_TABLE_BYTES, READER_TABLE_HEADER_BYTES,
};
use crate::format::TxId;

/// `<db>.readers`.
pub(crate) fn table_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".readers");
    PathBuf::from(s)
}

/// `<db>.readers.<index>`: the lock file whose holder is slot `index`'s reader.
pub(crate) fn slot_path(db: &Path, index: usize) -> PathBuf {
    let mut s = table_path(db).into_os_string();
    s.push(format!(".{index}"));
    PathBuf::from(s)
}

/// Whether a reader holds slot `index`'s lock file. An error other than "not found" counts
/// as held: a slot is never cleared on a doubt.
fn slot_is_held(db: &Path, index: usize) -> bool {
    let file = match File::open(slot_path(db, index)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
        Err(_) => return true,
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => true,
    }
}

/// Registers a read-only open of `db` (whose data file is `data`): its registration
/// (`None` where the table cannot be written — a read-only directory: the caller falls
/// back to a shared lock of the data file, which keeps writers out) and whether a writer
/// held the database at that moment.
pub(crate) fn register_reader(
    db: &Path,
    data: &File,
) -> io::Result<(Option<Arc<Registration>>, bool)> {
    let registration = match ReaderTableFile::open(db).and_then(|t| Arc::new(t).register()) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            tracing::warn!(
                "cannot register in the reader table {} ({e}): opening with a shared lock, \
                 which keeps writers out while this handle reads",
                table_path(db).display()
            );
            return Ok((None, false));
        }
    };
    let live = match data.try_lock_shared() {
        Ok(()) => {
            data.unlock()?;
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(e)) => return Err(e),
    };
    Ok((Some(registration), live))
}

/// The open table file of one database.
pub(crate) struct ReaderTableFile {
    db: PathBuf,
    file: File,
    /// The writer's last full read: the table's `changes` and its oldest pin.
    seen: Mutex<Option<(u64, Option<TxId>)>>,
}

impl ReaderTableFile {
    /// Opens `<db>.readers`, creating it if missing.
    pub(crate) fn open(db: &Path) -> io::Result<ReaderTableFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(table_path(db))?;
        let table = ReaderTableFile {
            db: db.to_path_buf(),
            file,
            seen: Mutex::new(None),
        };
        // A new file gets an empty table now, so that the writer's reads find one.
        if table.file.metadata()?.len() < READER_TABLE_BYTES as u64 {
            table.update(|_| Ok(((), true)))?;
        }
        Ok(table)
    }

    /// Runs `f` on the table under its exclusive lock, writing it back when `f` says it
    /// changed it.
    fn update<T>(
        &self,
        f: impl FnOnce(&mut ReaderTable) -> io::Result<(T, bool)>,
    ) -> io::Result<T> {
        self.file.lock()?;
        let result = (|| {
            let mut table = self.load_locked()?;
            let (out, changed) = f(&mut table)?;
            if changed {
                table.changes = table.changes.wrapping_add(1);
                let bytes = table
                    .encode()
                    .ok_or_else(|| io::Error::other("the reader table does not encode"))?;
                self.file.write_all_at(&bytes, 0)?;
            }
            Ok(out)
        })();
        let _ = self.file.unlock();
        result
    }

    /// Reads the table (the lock held). A new file is an empty table; a damaged one is
    /// rebuilt from the slot lock files: a held slot pins everything (its snapshot is
    /// unknown) until its reader leaves.
    fn load_locked(&self) -> io::Result<ReaderTable> {
        if self.file.metadata()?.len() == 0 {
            return Ok(ReaderTable::default());
        }
        if let Some(t) = self.read_unlocked()? {
            return Ok(t);
        }
        tracing::warn!(
            "the reader table {} is damaged; rebuilt from its slots' lock files",
            table_path(&self.db).display()
        );
        let mut t = ReaderTable::default();
        for (i, s) in t.slots.iter_mut().enumerate() {
            if slot_is_held(&self.db, i) {
                *s = ReaderSlot {
                    in_use: true,
                    ..ReaderSlot::default()
                };
            }
        }
        Ok(t)
    }

    fn read_unlocked(&self) -> io::Result<Option<ReaderTable>> {
        let mut b = vec![0u8; READER_TABLE_BYTES];
        match self.file.read_exact_at(&mut b, 0) {
            Ok(()) => Ok(ReaderTable::decode(&b)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The oldest snapshot a registered reader reads (`TxId(0)` while one is opening, or
    /// when the table cannot be read: then nothing is released), `None` without readers.
    pub(crate) fn oldest_pin(&self) -> Option<TxId> {
        // The common case: the table did not change since the last full read (its header
        // alone is read; a torn read of the counter shows a change, never hides one that
        // completed before this read began).
        let mut head = [0u8; READER_TABLE_HEADER_BYTES];
        let changes = match self.file.read_exact_at(&mut head, 0) {
            Ok(()) => ReaderTable::peek_changes(&head),
            Err(_) => None,
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(c), Some((s, pin))) = (changes, *seen) {
            if c == s {
                return pin;
            }
        }
        let table = match self.read_unlocked() {
            Ok(Some(t)) => Ok(t),
            // Empty (no reader ever registered), torn by a concurrent write, or damaged.
            Ok(None) => self.update(|t| Ok((t.clone(), false))),
            Err(e) => Err(e),
        };
        match table {
            Ok(t) => {
                let pin = t
                    .slots
                    .iter()
                    .filter(|s| s.in_use)
                    .map(|s| TxId(s.pinned_txid))
                    .min();
                *seen = Some((t.changes, pin));
                pin
            }
            Err(e) => {
                tracing::warn!("reading the reader table: {e}; no freed page is reused");
                Some(TxId(0))
            }
        }
    }

    /// Clears the slots of readers that are gone (their lock file is free). Returns how
    /// many were cleared.
    pub(crate) fn reap(&self) -> io::Result<usize> {
        self.update(|t| {
            let mut cleared = 0;
            for (i, s) in t.slots.iter_mut().enumerate() {
                if s.in_use && !slot_is_held(&self.db, i) {
                    *s = ReaderSlot::default();
                    cleared += 1;
                }
            }
            Ok((cleared, cleared > 0))
        })
    }

    /// Registers a reader: claims a free slot (or one whose reader is gone), holds its lock
    /// file, and pins everything until [`Registration::pin`].
    pub(crate) fn register(self: &Arc<Self>) -> io::Result<Registration> {
        static CLAIMS: AtomicU64 = AtomicU64::new(0);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| {
                d.as_secs() ^ u64::from(d.subsec_nanos()).rotate_left(40)
            })
            ^ CLAIMS.fetch_add(1, Ordering::Relaxed).rotate_left(32);
        let pid = u64::from(std::process::id());
        self.update(|t| {
            // Free slots first; then the slots of readers that are gone.
            let order: Vec<usize> = (0..READER_SLOTS)
                .filter(|&i| t.slots.get(i).is_some_and(|s| !s.in_use))
                .chain((0..READER_SLOTS).filter(|&i| t.slots.get(i).is_some_and(|s| s.in_use)))
                .collect();
            for index in order {
                let lock_file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(slot_path(&self.db, index))?;
                match lock_file.try_lock() {
                    Ok(()) => {}
                    // Its reader is still there (or is leaving a slot marked free).
                    Err(TryLockError::WouldBlock) => continue,
                    Err(TryLockError::Error(e)) => return Err(e),
                }
                let Some(slot) = t.slots.get_mut(index) else {
                    continue;
                };
                *slot = ReaderSlot {
                    pid,
                    pinned_txid: 0,
                    nonce,
                    in_use: true,
                };
                let reg = Registration {
                    table: Arc::clone(self),
                    index,
                    nonce,
                    lock_file,
                };
                return Ok((reg, true));
            }
            Err(io::Error::other(format!(
                "all {READER_SLOTS} reader slots of {} are in use",
                table_path(&self.db).display()
            )))
        })
    }
}

/// One reader's slot, released when dropped (after the handle's last read).
pub(crate) struct Registration {
    table: Arc<ReaderTableFile>,
    index: usize,
    nonce: u64,
    /// Held locked: the slot's liveness.
    lock_file: File,
}

impl Registration {
    /// Pins `txid`, the snapshot the handle reads (replacing "opening").
    pub(crate) fn pin(&self, txid: TxId) -> io::Result<()> {
        self.table.update(|t| match t.slots.get_mut(self.index) {
            Some(s) if s.in_use && s.nonce == self.nonce => {
                s.pinned_txid = txid.get();
                Ok(((), true))
            }
            // Nobody clears a slot whose lock file is held: the table was replaced.
            _ => Err(io::Error::other(format!(
                "reader slot {} of {} is no longer this reader's",
                self.index,
                table_path(&self.table.db).display()
            ))),
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let released = self.table.update(|t| match t.slots.get_mut(self.index) {
            Some(s) if s.in_use && s.nonce == self.nonce => {
                *s = ReaderSlot::default();
                Ok(((), true))
            }
            _ => Ok(((), false)),
        });
        if let Err(e) = released {
            // The slot is cleared once its lock file is free (the unlock below).
            tracing::warn!("releasing reader slot {}: {e}", self.index);
        }
        let _ = self.lock_file.unlock();
    }
}
