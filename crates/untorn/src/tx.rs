//! Read and write transactions.

use std::cell::RefCell;
use std::sync::{Arc, MutexGuard};

use crate::btree::{Child, Tree, TxState};
use crate::bucket::{Bucket, BucketIter, BucketMut};
use crate::check::CheckSource;
use crate::copy::{write_snapshot, CopyStats};
use crate::core::{FreeView, Shared, TxInner, WriterState};
use crate::cursor::bucket_names;
use crate::error::{CorruptionKind, Error, Result};
use crate::format::{BucketId, Meta, PageId, PageRef, TxId};
use crate::limits::check_key;

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

/// A read transaction: one committed snapshot, isolated from later commits. Holding it
/// keeps the pages of its snapshot from being reused; it never blocks the writer.
pub struct ReadTx<'db> {
    pub(crate) shared: &'db Shared,
    pub(crate) meta: Meta,
    free: FreeView,
    /// Whether this handle registered the snapshot (and unregisters it on drop); a
    /// view of an [`OwnedReadTx`] does not.
    registered: bool,
}

impl<'db> ReadTx<'db> {
    pub(crate) fn new(shared: &'db Shared) -> Self {
        let (meta, free) = shared.register_reader();
        ReadTx {
            shared,
            meta,
            free,
            registered: true,
        }
    }

    /// The txid of the snapshot.
    pub fn txid(&self) -> u64 {
        self.meta.txid.0
    }

    /// The root bucket's tree (the catalog of top-level buckets).
    fn root_tree(&self) -> Tree {
        Tree {
            root: Child::from_ref(self.meta.root),
            id: BucketId::ROOT,
        }
    }

    /// Opens a top-level bucket.
    pub fn bucket(&self, name: impl AsRef<[u8]>) -> Result<Option<Bucket<'_>>> {
        let name = name.as_ref();
        check_key(name)?;
        Bucket::open_child(&self.shared.pager, self.root_tree(), name, 0)
    }

    /// Names of the top-level buckets, sorted.
    pub fn buckets(&self) -> Result<Vec<Vec<u8>>> {
        bucket_names(&self.shared.pager, None, self.root_tree())
    }

    /// The top-level buckets, opened, with their names, in key order.
    pub fn iter_buckets(&self) -> Result<BucketIter<'_, Bucket<'_>>> {
        let root = Bucket::root(&self.shared.pager, self.root_tree());
        root.iter_buckets()
    }

    /// Writes this snapshot as a complete, dense database image to `w`, starting at its
    /// current position: what [`Database::backup_to`](crate::Database::backup_to) and
    /// [`Database::compact_to`](crate::Database::compact_to) write into a file. The
    /// image is one data file whose metas say `clean` (it needs no journal), holding
    /// exactly this snapshot's buckets, keys, values, sequences and txid, every tree
    /// rebuilt bottom-up with its leaves filled close to 100%; it gets a database id of
    /// its own. Writers keep committing meanwhile: the snapshot is pinned while it is
    /// copied. `w` is flushed, not synced.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let db = untorn::Database::create(dir.path().join("db"))?;
    /// db.update(|tx| tx.create_bucket("b")?.put("k", "v"))?;
    /// let mut image = std::io::Cursor::new(Vec::new());
    /// let stats = db.begin_read()?.copy_to(&mut image)?;
    /// assert_eq!(stats.keys, 1);
    /// assert_eq!(image.into_inner().len() as u64, stats.bytes);
    /// # Ok::<(), untorn::Error>(())
    /// ```
    pub fn copy_to<W: std::io::Write + std::io::Seek>(&self, w: &mut W) -> Result<CopyStats> {
        write_snapshot(&self.shared.pager, &self.meta, self.root_tree(), w)
    }

    /// A view of this snapshot for the integrity checker (`untorn::unstable`).
    pub(crate) fn check_source(&self) -> &dyn CheckSource {
        self
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        if self.registered {
            self.shared.unregister_reader(self.meta.txid);
        }
    }
}

/// A read snapshot that owns its share of the database (`Database::begin_read_owned`):
/// `'static`, so it can move to another thread or into a task, and outlive the borrow of
/// the `Database` it came from. It pins its snapshot's pages until dropped, like a
/// [`ReadTx`]; [`OwnedReadTx::tx`] reads it.
pub struct OwnedReadTx {
    shared: Arc<Shared>,
    meta: Meta,
    free: FreeView,
}

impl OwnedReadTx {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let (meta, free) = shared.register_reader();
        OwnedReadTx { shared, meta, free }
    }

    /// The snapshot as a [`ReadTx`] (the same snapshot every time).
    pub fn tx(&self) -> ReadTx<'_> {
        ReadTx {
            shared: &self.shared,
            meta: self.meta,
            free: self.free.clone(),
            registered: false,
        }
    }

    /// The txid of the snapshot.
    pub fn txid(&self) -> u64 {
        self.meta.txid.0
    }
}

impl std::fmt::Debug for OwnedReadTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedReadTx")
            .field("txid", &self.meta.txid.0)
            .finish()
    }
}

impl Drop for OwnedReadTx {
    fn drop(&mut self) {
        self.shared.unregister_reader(self.meta.txid);
    }
}

impl CheckSource for ReadTx<'_> {
    fn page_size(&self) -> usize {
        self.shared.pager.page_size
    }
    fn meta(&self) -> Meta {
        self.meta
    }
    fn active_slot(&self) -> Option<u64> {
        Some(self.shared.active_slot().page())
    }
    fn read_raw_meta(&self, slot: u64) -> std::io::Result<Vec<u8>> {
        // Read-only: the slots as they were when the snapshot was chosen (a writer in
        // another process rewrites them at its checkpoints).
        if let Some(raw) = &self.shared.raw_metas {
            let i = usize::try_from(slot).map_err(std::io::Error::other)?;
            return raw
                .get(i)
                .cloned()
                .ok_or_else(|| std::io::Error::other(format!("no meta slot {slot}")));
        }
        let ps = self.shared.pager.page_size;
        let mut buf = vec![0u8; ps];
        self.shared.pager.data.read_at(slot * ps as u64, &mut buf)?;
        Ok(buf)
    }
    fn read_raw(&self, page_id: PageId, extent_pages: u32) -> std::io::Result<Vec<u8>> {
        self.shared.pager.read_raw_snapshot(page_id, extent_pages)
    }
    fn file_pages(&self) -> std::io::Result<u64> {
        Ok(self.shared.pager.data.len()? / self.shared.pager.page_size as u64)
    }
    fn free_runs(&self) -> Option<Vec<(u64, u64)>> {
        self.free.runs()
    }
    fn damaged_slot_note(&self, slot: u64) -> Option<String> {
        self.shared
            .slot_notes
            .get(usize::try_from(slot).ok()?)?
            .clone()
    }
}

/// The write transaction. Only one exists at a time; dropping it without `commit`
/// aborts it. Not `Sync`: use it from one thread.
pub struct WriteTx<'db> {
    pub(crate) inner: TxInner<'db>,
    guard: MutexGuard<'db, WriterState>,
    txid: TxId,
    /// This commit's durability, when it differs from the handle's.
    durability: Option<Durability>,
}

impl<'db> WriteTx<'db> {
    pub(crate) fn new(shared: &'db Shared, guard: MutexGuard<'db, WriterState>) -> Result<Self> {
        let base = guard.meta;
        let txid = base.txid.next().ok_or_else(|| {
            Error::corrupted(0, CorruptionKind::Meta, "the txid counter is exhausted")
        })?;
        let st = TxState::new(txid, shared.pager.page_size, base.root, base.next_bucket_id);
        Ok(WriteTx {
            inner: TxInner {
                shared,
                st: RefCell::new(st),
            },
            guard,
            txid,
            durability: None,
        })
    }

    /// The txid this transaction will have when committed.
    pub fn txid(&self) -> u64 {
        self.txid.0
    }

    /// This transaction's durability, overriding the handle's ([`crate::Builder::durability`]):
    /// `Durability::None` skips this commit's sync (a crash may lose it, and later
    /// unsynced commits, never more: the database recovers to a prefix of its commits);
    /// `Durability::Immediate` syncs it on a handle that does not sync by default.
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = Some(durability);
    }

    /// Opens a top-level bucket for writing.
    pub fn bucket(&self, name: impl AsRef<[u8]>) -> Result<Option<BucketMut<'_>>> {
        BucketMut::root(&self.inner).bucket(name)
    }

    /// Creates a top-level bucket (`Error::BucketExists` if it exists).
    pub fn create_bucket(&self, name: impl AsRef<[u8]>) -> Result<BucketMut<'_>> {
        BucketMut::root(&self.inner).create_bucket(name)
    }

    /// Opens a top-level bucket, creating it if missing.
    pub fn create_bucket_if_not_exists(&self, name: impl AsRef<[u8]>) -> Result<BucketMut<'_>> {
        BucketMut::root(&self.inner).create_bucket_if_not_exists(name)
    }

    /// Deletes a top-level bucket and everything in it.
    pub fn delete_bucket(&self, name: impl AsRef<[u8]>) -> Result<()> {
        BucketMut::root(&self.inner).delete_bucket(name)
    }

    /// Names of the top-level buckets, sorted.
    pub fn buckets(&self) -> Result<Vec<Vec<u8>>> {
        BucketMut::root(&self.inner).buckets()
    }

    /// The top-level buckets, opened, with their names, in key order.
    pub fn iter_buckets(&self) -> Result<BucketIter<'_, BucketMut<'_>>> {
        BucketMut::root(&self.inner).iter_buckets()
    }

    /// Makes the transaction durable (with `Durability::Immediate`, on return).
    pub fn commit(mut self) -> Result<()> {
        let st = self.inner.st.replace(TxState::new(
            TxId::INITIAL,
            0,
            PageRef::NULL,
            BucketId::NONE,
        ));
        let sync = self.durability.map(|d| d == Durability::Immediate);
        self.inner.shared.commit(&mut self.guard, st, sync)
    }

    /// Discards the transaction.
    pub fn abort(self) {}
}
