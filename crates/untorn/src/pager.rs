//! The pager: verified page reads through a cache and the journal overlay.
//!
//! A page is looked up, in order, in the *overlay* (images committed to the journal but
//! not yet written home by a checkpoint), the cache, and the data file. The overlay is
//! probed only for references newer than the last checkpoint (`home_through`): an image
//! written by an older commit is home, so the overlay cannot hold it, and the common read
//! takes neither the overlay's lock nor its hash probe. Every image read
//! from storage is verified (checksum, self id, extent, node structure) before it enters
//! the cache, and every lookup is checked against the reference the caller followed
//! (txid, checksum, extent): parents vouch for children.
//!
//! **Invariant:** a page returned by [`Pager::read`] matches the reference it was asked
//! for; anything else is `Error::Corrupted`, never data.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{check_ref, PageId, PageRef, TxId, VerifiedPage};
use crate::storage::Storage;

/// Hasher for page ids: a multiplicative mix (page ids are not attacker-chosen keys of
/// a long-lived map exposed to the network; SipHash costs more than the lookup).
#[derive(Default)]
pub(crate) struct PageIdHasher(u64);

impl Hasher for PageIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        let x = (v ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

pub(crate) type PageMap<V> = HashMap<PageId, V, BuildHasherDefault<PageIdHasher>>;

const SHARDS: usize = 16;
/// Extents larger than this are not cached (large overflow values).
const MAX_CACHED_EXTENT_BYTES: usize = 1 << 20;

#[derive(Debug, Default)]
struct Shard {
    map: PageMap<Arc<VerifiedPage>>,
    /// Insertion order for FIFO eviction; may hold ids no longer cached (skipped).
    fifo: VecDeque<PageId>,
    bytes: usize,
}

/// A sharded page cache with FIFO eviction (no bookkeeping on the read path, so a hit
/// takes only a shard's read lock: concurrent readers never wait for each other).
#[derive(Debug)]
pub(crate) struct PageCache {
    shards: Vec<RwLock<Shard>>,
    shard_capacity_bytes: usize,
}

impl PageCache {
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            shard_capacity_bytes: (capacity_bytes / SHARDS).max(1),
        }
    }

    fn shard_lock(&self, id: PageId) -> Option<&RwLock<Shard>> {
        usize::try_from(id.0 % SHARDS as u64)
            .ok()
            .and_then(|i| self.shards.get(i))
    }

    fn shard(&self, id: PageId) -> Option<std::sync::RwLockWriteGuard<'_, Shard>> {
        self.shard_lock(id)
            .map(|m| m.write().unwrap_or_else(|e| e.into_inner()))
    }

    fn get(&self, id: PageId) -> Option<Arc<VerifiedPage>> {
        self.shard_lock(id)?
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .get(&id)
            .cloned()
    }

    pub(crate) fn insert(&self, id: PageId, page: Arc<VerifiedPage>) {
        let len = page.bytes().len();
        if len > MAX_CACHED_EXTENT_BYTES || len > self.shard_capacity_bytes {
            self.remove(id);
            return;
        }
        let Some(mut shard) = self.shard(id) else {
            return;
        };
        match shard.map.insert(id, page) {
            Some(old) => shard.bytes -= old.bytes().len(),
            None => shard.fifo.push_back(id),
        }
        shard.bytes += len;
        // FIFO eviction: cheap, no bookkeeping on the read path.
        while shard.bytes > self.shard_capacity_bytes {
            let Some(victim) = shard.fifo.pop_front() else {
                break;
            };
            if victim == id {
                shard.fifo.push_back(victim);
                if shard.fifo.len() == 1 {
                    break;
                }
                continue;
            }
            if let Some(old) = shard.map.remove(&victim) {
                shard.bytes -= old.bytes().len();
            }
        }
        // Drop stale ids so the queue stays proportional to the map.
        if shard.fifo.len() > 4 * shard.map.len() + 64 {
            let Shard { map, fifo, .. } = &mut *shard;
            let mut seen = std::collections::HashSet::new();
            fifo.retain(|k| map.contains_key(k) && seen.insert(*k));
        }
    }

    pub(crate) fn remove(&self, id: PageId) {
        if let Some(mut shard) = self.shard(id) {
            if let Some(old) = shard.map.remove(&id) {
                shard.bytes -= old.bytes().len();
            }
        }
    }
}

/// Verified page access for one database.
pub(crate) struct Pager {
    pub(crate) data: Arc<dyn Storage>,
    pub(crate) page_size: usize,
    pub(crate) cache: PageCache,
    /// Images committed to the journal whose home write is not yet synced.
    pub(crate) overlay: RwLock<PageMap<Arc<VerifiedPage>>>,
    /// Entries in `overlay` (read without the lock to skip it when empty).
    overlay_entries: AtomicUsize,
    /// Every image written by a commit with this txid or older is home and synced: a
    /// reference to one of them never needs the overlay. Only grows.
    home_through: AtomicU64,
}

impl Pager {
    pub(crate) fn new(data: Arc<dyn Storage>, page_size: usize, cache_bytes: usize) -> Self {
        Self {
            data,
            page_size,
            cache: PageCache::new(cache_bytes),
            overlay: RwLock::new(PageMap::default()),
            overlay_entries: AtomicUsize::new(0),
            home_through: AtomicU64::new(0),
        }
    }

    /// Records that every image of commits up to `txid` is home and synced (at open, the
    /// checkpointed meta's txid; after each checkpoint, the commit it wrote home).
    pub(crate) fn set_home_through(&self, txid: TxId) {
        self.home_through.fetch_max(txid.get(), Ordering::Release);
    }

    fn overlay_get(&self, id: PageId) -> Option<Arc<VerifiedPage>> {
        // Publish/retire update the count under the write lock; a reader that sees 0
        // may skip the overlay because any page it can reach was published before its
        // snapshot (Acquire pairs with the Release below).
        if self.overlay_entries.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.overlay
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Reads the extent `r` refers to, verified and checked against `r`.
    pub(crate) fn read(&self, r: &PageRef) -> Result<Arc<VerifiedPage>> {
        if r.page_id < PageId::FIRST_DATA {
            return Err(Error::corrupted(
                r.page_id.0,
                CorruptionKind::OutOfRange,
                "reference to a meta page or the null page",
            ));
        }
        // Images newer than the last checkpoint may live only in the overlay. (Release in
        // `set_home_through` follows the sync of the home writes.)
        if r.txid.get() > self.home_through.load(Ordering::Acquire) {
            if let Some(p) = self.overlay_get(r.page_id) {
                if p.header().matches(r) {
                    return Ok(p);
                }
            }
        }
        if let Some(p) = self.cache.get(r.page_id) {
            if p.header().matches(r) {
                return Ok(p);
            }
            self.cache.remove(r.page_id);
        }
        let page = Arc::new(self.read_from_storage(r.page_id, r.extent_pages)?);
        check_ref(page.header(), r)?;
        self.cache.insert(r.page_id, Arc::clone(&page));
        Ok(page)
    }

    /// Reads and verifies an extent from the data file (no overlay, no cache).
    pub(crate) fn read_from_storage(&self, id: PageId, extent_pages: u32) -> Result<VerifiedPage> {
        let bytes = self.read_raw_storage(id, extent_pages)?;
        VerifiedPage::verify(bytes, id, self.page_size)
    }

    /// Raw bytes of an extent from the data file; a read past the end is `Corrupted`.
    pub(crate) fn read_raw_storage(&self, id: PageId, extent_pages: u32) -> Result<Vec<u8>> {
        let len = (extent_pages as usize)
            .checked_mul(self.page_size)
            .filter(|l| *l > 0)
            .ok_or_else(|| {
                Error::corrupted(id.0, CorruptionKind::Bounds, "impossible extent length")
            })?;
        let offset = id.offset(self.page_size).ok_or_else(|| {
            Error::corrupted(id.0, CorruptionKind::OutOfRange, "page id overflows")
        })?;
        let mut buf = vec![0u8; len];
        match self.data.read_at(offset, &mut buf) {
            Ok(()) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::corrupted(
                id.0,
                CorruptionKind::OutOfRange,
                format!("page {id} (+{extent_pages}) lies beyond the end of the data file"),
            )),
            Err(e) => Err(Error::from_io(e)),
        }
    }

    /// Raw bytes as a snapshot sees them: overlay image if present, else the data file.
    pub(crate) fn read_raw_snapshot(
        &self,
        id: PageId,
        extent_pages: u32,
    ) -> std::io::Result<Vec<u8>> {
        if let Some(p) = self.overlay_get(id) {
            let want = (extent_pages as usize).saturating_mul(self.page_size);
            let mut v = p.bytes().to_vec();
            v.resize(want, 0);
            return Ok(v);
        }
        let len = (extent_pages as usize).saturating_mul(self.page_size);
        let offset = id.offset(self.page_size).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "page id overflows")
        })?;
        let mut buf = vec![0u8; len];
        self.data.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    /// Publishes committed images: overlay them and drop stale cache entries.
    pub(crate) fn publish(&self, images: &[Arc<VerifiedPage>]) {
        let mut overlay = self.overlay.write().unwrap_or_else(|e| e.into_inner());
        for img in images {
            self.cache.remove(img.page_id());
            overlay.insert(img.page_id(), Arc::clone(img));
        }
        self.overlay_entries.store(overlay.len(), Ordering::Release);
    }

    /// Publishes committed images that are already home and synced (a commit's direct
    /// extents): they are served from the cache or the data file, never the overlay.
    pub(crate) fn publish_home(&self, images: &[Arc<VerifiedPage>]) {
        for img in images {
            self.cache.insert(img.page_id(), Arc::clone(img));
        }
    }

    /// After a commit that journaled no image (all its pages went straight home): if the
    /// overlay is empty, every committed image up to `txid` is home and synced, so reads
    /// of them may skip the overlay. (Without this, a large direct commit, which leaves
    /// the journal too small to trigger a checkpoint, would keep every read of its pages
    /// probing the overlay until the next checkpoint.) Called under the writer lock, so no
    /// publish races it.
    pub(crate) fn home_if_overlay_empty(&self, txid: TxId) {
        let overlay = self.overlay.read().unwrap_or_else(|e| e.into_inner());
        if overlay.is_empty() {
            self.set_home_through(txid);
        }
    }

    /// Whether the overlay holds an image starting at `id` (one a checkpoint will write).
    pub(crate) fn overlay_holds(&self, id: PageId) -> bool {
        self.overlay_get(id).is_some()
    }

    /// Snapshot of the overlay in the order images must be written home (for checkpoint).
    pub(crate) fn overlay_images(&self) -> Vec<Arc<VerifiedPage>> {
        let overlay = self.overlay.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<Arc<VerifiedPage>> = overlay.values().cloned().collect();
        // Commit order: a newer multi-page extent must land after any older image of a
        // page it now covers.
        v.sort_by_key(|p| (p.header().txid, p.page_id()));
        v
    }

    /// After a checkpoint synced `images` home: move them from the overlay to the cache.
    pub(crate) fn retire_overlay(&self, images: &[Arc<VerifiedPage>]) {
        let mut overlay = self.overlay.write().unwrap_or_else(|e| e.into_inner());
        for img in images {
            let id = img.page_id();
            if overlay.get(&id).is_some_and(|cur| Arc::ptr_eq(cur, img)) {
                overlay.remove(&id);
                self.cache.insert(id, Arc::clone(img));
            }
        }
        self.overlay_entries.store(overlay.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_leaf, BucketId, LeafValue};
    use crate::storage::MemoryStorage;

    fn leaf(id: u64, txid: u64) -> Arc<VerifiedPage> {
        let (bytes, _) = encode_leaf(
            &[(b"k".as_slice(), LeafValue::Inline(b"v"))],
            PageId(id),
            TxId(txid),
            BucketId::ROOT,
            4096,
        )
        .unwrap();
        Arc::new(VerifiedPage::verify(bytes, PageId(id), 4096).unwrap())
    }

    #[test]
    fn a_commit_without_journaled_images_moves_home_through_only_over_an_empty_overlay() {
        let data = Arc::new(MemoryStorage::new());
        data.set_len(16 * 4096).unwrap();
        let pager = Pager::new(data, 4096, 1 << 20);
        // Commit 5 journaled a page: it lives only in the overlay.
        let journaled = leaf(3, 5);
        pager.publish(std::slice::from_ref(&journaled));
        // Commit 6 wrote only direct extents: commit 5's image is not home yet, so reads
        // of it must still find the overlay.
        pager.home_if_overlay_empty(TxId(6));
        assert!(pager.read(&journaled.reference()).is_ok());
        // After a checkpoint retired the overlay, an all-direct commit moves the mark.
        pager.retire_overlay(std::slice::from_ref(&journaled));
        pager.home_if_overlay_empty(TxId(7));
        assert_eq!(pager.home_through.load(Ordering::Acquire), 7);
    }
}
