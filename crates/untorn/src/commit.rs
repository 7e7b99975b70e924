//! Turning a write transaction's dirty nodes into page images: allocation, bottom-up
//! encoding (children before parents, so every parent records its children's txid and
//! checksum), overflow extents and the new meta — and the writer's free state, updated in
//! place by each commit and undone if the commit fails. A commit writes no freelist: its
//! record carries the runs it freed (the delta), and the freelist extent is written at
//! checkpoints only (`recovery::freelist_extent`).

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use crate::btree::{BucketSlot, Child, NodeValue, TxState};
use crate::error::{Error, Result};
use crate::format::{
    encode_branch, encode_leaf, encode_overflow, extent_pages_for, rebranch, BucketId, LeafValue,
    Meta, PageHeader, PageId, PageRef, TxId, VerifiedPage, PAGE_HEADER_SIZE,
};
use crate::freeset::FreeSet;
use crate::limits::MAX_TREE_DEPTH;
use crate::pager::Pager;
use crate::storage::Storage;

/// The writer's free pages: `free` (reusable now), `pending` (freed by a commit, held
/// back while a reader may still see them) and `freed_since_checkpoint` (pages freed by
/// the commits of this journal generation: not home-safe, because the meta on disk may
/// still need them). Updated in place by every commit; a failed commit undoes its changes
/// ([`FreeUndo`]) instead of working on a copy of the whole state.
#[derive(Debug, Default)]
pub(crate) struct FreeState {
    pub(crate) free: FreeSet,
    pub(crate) pending: BTreeMap<TxId, Vec<(u64, u64)>>,
    pub(crate) freed_since_checkpoint: FreeSet,
}

/// What one commit changed in a [`FreeState`] before it became durable.
#[derive(Debug, Default)]
pub(crate) struct FreeUndo {
    /// Runs taken from `free`.
    taken: Vec<(u64, u64)>,
    /// Pending entries moved into `free`.
    released: Vec<(TxId, Vec<(u64, u64)>)>,
}

impl FreeState {
    /// Puts back what a failed commit took: the allocations first, then the released
    /// pending entries (which the allocations may have drawn from).
    pub(crate) fn undo(&mut self, undo: FreeUndo) {
        for (s, l) in undo.taken.into_iter().rev() {
            self.free.insert(s, l);
        }
        for (txid, runs) in undo.released.into_iter().rev() {
            for (s, l) in &runs {
                self.free.remove(*s, *l);
            }
            self.pending.insert(txid, runs);
        }
    }

    /// Every page free in the newest committed state (free and pending): what a
    /// checkpoint's freelist lists.
    pub(crate) fn all_free(&self) -> FreeSet {
        let mut all = self.free.clone();
        for (s, l) in self.pending.values().flatten() {
            all.insert(*s, *l);
        }
        all
    }
}

/// Page allocation during one commit: free runs first, then the high-water mark. Every
/// run taken is logged so that a failed commit can give it back.
pub(crate) struct Allocator<'a> {
    pub(crate) free: &'a mut FreeSet,
    pub(crate) high_water: PageId,
    taken: &'a mut Vec<(u64, u64)>,
}

impl Allocator<'_> {
    pub(crate) fn allocate(&mut self, pages: u32) -> Result<PageId> {
        let pages = u64::from(pages);
        if let Some(start) = self.free.allocate(pages) {
            self.taken.push((start, pages));
            return Ok(PageId(start));
        }
        let start = self.high_water;
        self.high_water = start
            .checked_add(pages)
            .ok_or(Error::Internal("page ids exhausted"))?;
        Ok(start)
    }
}

/// The one exit of every image this commit writes: asserts the allocation (a data page,
/// wholly below the high-water mark, written by this commit) and wraps the sealed image.
/// The seal was the image's one CRC; debug builds also verify the bytes exactly as a
/// reader will (see `VerifiedPage::sealed`).
fn seal(
    (bytes, header): (Vec<u8>, PageHeader),
    txid: TxId,
    high_water: PageId,
    page_size: usize,
) -> Result<Arc<VerifiedPage>> {
    let id = header.page_id;
    if id < PageId::FIRST_DATA || header.reference().end().is_none_or(|end| end > high_water) {
        return Err(Error::Internal("spilled a page outside 2..high-water"));
    }
    if header.txid != txid {
        return Err(Error::Internal("spilled a page with another commit's txid"));
    }
    VerifiedPage::sealed(bytes, header, id, page_size).map(Arc::new)
}

/// Allocates the extent of a node whose encoded size is `size`, encodes it there and
/// seals it, asserting that the size the arena estimated is the size it encoded to (a
/// larger image would overwrite the next allocation).
fn spill_node(
    alloc: &mut Allocator,
    size: usize,
    txid: TxId,
    page_size: usize,
    encode: impl FnOnce(PageId) -> Result<(Vec<u8>, PageHeader)>,
) -> Result<Arc<VerifiedPage>> {
    let pages =
        extent_pages_for(size, page_size).ok_or(Error::Internal("node larger than an extent"))?;
    let id = alloc.allocate(pages)?;
    let encoded = encode(id)?;
    if encoded.1.extent_pages != pages {
        return Err(Error::Internal(
            "node size estimate differs from its encoding",
        ));
    }
    seal(encoded, txid, alloc.high_water, page_size)
}

/// Encodes the dirty part of the tree at `root` (the tree of bucket `tree`) into
/// images; returns the new root ref.
fn spill_tree(
    st: &mut TxState,
    alloc: &mut Allocator,
    root: Child,
    tree: BucketId,
    images: &mut Vec<Arc<VerifiedPage>>,
) -> Result<PageRef> {
    let page_size = st.page_size;
    let txid = st.txid;
    let top = match root {
        Child::Null => return Ok(PageRef::NULL),
        Child::Clean(r) => return Ok(r),
        Child::Dirty(i) => i,
    };
    let mut done: HashMap<usize, PageRef> = HashMap::new();
    let mut stack = vec![(top, false, 0usize)];
    while let Some((n, expanded, depth)) = stack.pop() {
        if depth > MAX_TREE_DEPTH {
            return Err(Error::Internal("dirty tree deeper than the bound"));
        }
        if !expanded {
            stack.push((n, true, depth));
            for ci in st.node(n)?.dirty_children() {
                stack.push((ci, false, depth + 1));
            }
            continue;
        }
        let node = std::mem::take(st.node_mut(n)?);
        let store = &st.store;
        node.assert_sound(store)?;
        let resolve = |c: &Child| match c {
            Child::Clean(r) => Ok(*r),
            Child::Dirty(ci) => done
                .get(ci)
                .copied()
                .ok_or(Error::Internal("child encoded after parent")),
            Child::Null => Err(Error::Internal("branch with a null child")),
        };
        let img = if let Some(pb) = &node.page {
            // An unchanged branch: its page with the new children patched in.
            let mut patched = Vec::with_capacity(pb.patched.len());
            for (i, c) in &pb.patched {
                patched.push((*i, resolve(c)?));
            }
            spill_node(alloc, node.size, txid, page_size, |id| {
                rebranch(pb.page.bytes(), pb.page.header(), &patched, id, txid)
            })?
        } else if node.leaf {
            let mut entries: Vec<(&[u8], LeafValue<'_>)> = Vec::with_capacity(node.keys.len());
            for (k, v) in node.keys.iter().zip(node.vals.iter()) {
                let value = match v {
                    NodeValue::Inline(b) => LeafValue::Inline(store.get(*b)),
                    NodeValue::Overflow { extent, len } => LeafValue::Overflow {
                        extent: *extent,
                        len: *len,
                    },
                    NodeValue::Bucket(h) => LeafValue::Bucket(*h),
                    NodeValue::NewOverflow(bytes) => {
                        let pages = extent_pages_for(PAGE_HEADER_SIZE + bytes.len(), page_size)
                            .ok_or(Error::Internal("overflow value larger than an extent"))?;
                        let id = alloc.allocate(pages)?;
                        let encoded = encode_overflow(bytes, id, txid, tree, page_size)?;
                        let ov = seal(encoded, txid, alloc.high_water, page_size)?;
                        let extent = ov.reference();
                        images.push(ov);
                        LeafValue::Overflow {
                            extent,
                            len: bytes.len() as u64,
                        }
                    }
                };
                entries.push((k.bytes(store), value));
            }
            spill_node(alloc, node.size, txid, page_size, |id| {
                encode_leaf(&entries, id, txid, tree, page_size)
            })?
        } else {
            let mut entries: Vec<(&[u8], PageRef)> = Vec::with_capacity(node.keys.len());
            for (k, c) in node.keys.iter().zip(node.children.iter()) {
                entries.push((k.bytes(store), resolve(c)?));
            }
            spill_node(alloc, node.size, txid, page_size, |id| {
                encode_branch(&entries, id, txid, tree, page_size)
            })?
        };
        done.insert(n, img.reference());
        images.push(img);
    }
    done.get(&top)
        .copied()
        .ok_or(Error::Internal("root not encoded"))
}

/// The result of preparing a commit: the images and meta to journal, the runs this
/// commit frees, and how to undo its changes to the free state if it fails.
pub(crate) struct Prepared {
    pub(crate) meta: Meta,
    pub(crate) images: Vec<Arc<VerifiedPage>>,
    /// Extents this commit replaced or deleted (coalesced runs): the record's delta.
    pub(crate) freed: Vec<(u64, u64)>,
    pub(crate) undo: FreeUndo,
}

/// Prepares a commit of `st` on top of `base`, allocating from `fs` in place. On error,
/// `fs` is as it was; on success the caller either installs the commit
/// ([`FreeState::commit`]) or undoes it ([`FreeState::undo`]). `oldest_reader` is the
/// smallest snapshot txid still open.
pub(crate) fn prepare(
    pager: &Pager,
    st: TxState,
    base: &Meta,
    fs: &mut FreeState,
    oldest_reader: Option<TxId>,
) -> Result<Prepared> {
    let mut undo = FreeUndo::default();
    // Pages freed by commit F were visible only to snapshots older than F.
    let releasable: Vec<TxId> = fs
        .pending
        .keys()
        .copied()
        .filter(|f| oldest_reader.is_none_or(|r| *f <= r))
        .collect();
    for f in releasable {
        if let Some(runs) = fs.pending.remove(&f) {
            for (s, l) in &runs {
                fs.free.insert(*s, *l);
            }
            undo.released.push((f, runs));
        }
    }
    match spill(pager, st, base, &mut fs.free, &mut undo.taken) {
        Ok((meta, images, freed)) => Ok(Prepared {
            meta,
            images,
            freed,
            undo,
        }),
        Err(e) => {
            fs.undo(undo);
            Err(e)
        }
    }
}

impl FreeState {
    /// Installs a durable commit's delta: its freed runs wait for the readers that can
    /// still see them, and are not home-safe until the next checkpoint.
    pub(crate) fn commit(&mut self, txid: TxId, freed: &[(u64, u64)]) {
        if freed.is_empty() {
            return;
        }
        for (s, l) in freed {
            self.freed_since_checkpoint.insert(*s, *l);
        }
        // A checkpoint may already hold back the old freelist extent under this txid.
        self.pending
            .entry(txid)
            .or_default()
            .extend_from_slice(freed);
    }
}

type Spilled = (Meta, Vec<Arc<VerifiedPage>>, Vec<(u64, u64)>);

/// Encodes every dirty bucket and the root tree into images allocated from `free`.
fn spill(
    pager: &Pager,
    mut st: TxState,
    base: &Meta,
    free: &mut FreeSet,
    taken: &mut Vec<(u64, u64)>,
) -> Result<Spilled> {
    let txid = st.txid;
    let mut alloc = Allocator {
        free,
        high_water: base.high_water,
        taken,
    };
    let mut images = Vec::new();

    // Buckets deepest first: each spilled bucket's header goes into its parent, which
    // may make the parent dirty in turn.
    let mut heap: BinaryHeap<(usize, BucketSlot)> =
        st.dirty_buckets_deepest_first().into_iter().collect();
    let mut spilled = 0usize;
    while let Some((_, bucket)) = heap.pop() {
        spilled += 1;
        if spilled > st.buckets.len() * 2 + 16 {
            return Err(Error::Internal("bucket spill did not converge"));
        }
        let Some(state) = st.bucket_state(bucket).filter(|s| s.dirty && !s.deleted) else {
            continue;
        };
        let (root, tree) = (state.root, state.bucket_id);
        let root_ref = spill_tree(&mut st, &mut alloc, root, tree, &mut images)?;
        let parent = st.store_bucket_header(pager, bucket, root_ref)?;
        if parent != BucketSlot::ROOT {
            if let Some(p) = st.bucket_state(parent).filter(|p| p.dirty && !p.deleted) {
                heap.push((p.depth, parent));
            }
        }
    }
    let root_child = st.bucket(BucketSlot::ROOT)?.root;
    let root = spill_tree(&mut st, &mut alloc, root_child, BucketId::ROOT, &mut images)?;

    // Everything this transaction replaced: the record's freed delta.
    let mut freed = FreeSet::new();
    for r in &st.freed {
        freed.insert(r.page_id.0, u64::from(r.extent_pages));
    }
    let meta = Meta {
        txid,
        root,
        high_water: alloc.high_water,
        next_bucket_id: st.next_bucket_id,
        ..*base
    };
    meta.validate(0)?;
    Ok((meta, images, freed.runs().collect()))
}

// ---- straight home --------------------------------------------------------------------

/// The images of a commit written straight home (direct extents) and those journaled.
pub(crate) struct Placed {
    pub(crate) direct: Vec<Arc<VerifiedPage>>,
    pub(crate) journaled: Vec<Arc<VerifiedPage>>,
}

/// Splits a large commit's images into those that may be written straight home before
/// the commit record (crash invariant J25) and those that go through the journal.
///
/// An image may go straight home only if no state recovery can return to, and no
/// reader, can see its pages: every page of a commit comes either from beyond the
/// previous commit's high-water mark (written by no record of this generation, reachable
/// from no meta) or from `free` (reachable by no reader's snapshot: pending pages are
/// released only when the last reader that could see them is gone). A free page that
/// this journal generation freed (`freed_since_checkpoint`) may still be reachable from
/// the checkpointed meta recovery starts from, or written by an older record that replay
/// would write again; every other free page was free in the checkpointed meta and is
/// written by no record of this generation (a record that wrote it would have had to
/// free it again, which puts it in `freed_since_checkpoint`). So the test is exact: the
/// image's extent must not touch `freed_since_checkpoint`.
pub(crate) fn place(images: Vec<Arc<VerifiedPage>>, freed_since_checkpoint: &FreeSet) -> Placed {
    let (direct, journaled) = images.into_iter().partition(|img| {
        !freed_since_checkpoint.intersects(img.page_id().0, u64::from(img.header().extent_pages))
    });
    Placed { direct, journaled }
}

/// Total bytes of `images`.
pub(crate) fn image_bytes(images: &[Arc<VerifiedPage>]) -> u64 {
    images.iter().map(|i| i.bytes().len() as u64).sum()
}

/// Why writing the direct extents home failed.
pub(crate) enum DirectError {
    /// A write failed: nothing replayable refers to those pages, which are free; the
    /// handle stays usable.
    Write(Error),
    /// The data file's sync failed: the handle must be poisoned (no retry of a failed
    /// sync); the commit is not visible, its record was never written.
    Sync(Error),
}

/// Largest single write of contiguous direct extents.
const DIRECT_WRITE_BATCH_BYTES: usize = 1 << 20;

/// Writes `direct` home (sorted by page id, contiguous extents coalesced into writes of
/// up to [`DIRECT_WRITE_BATCH_BYTES`]) and syncs the data file: after `Ok`, every direct
/// extent is durable at home, so the record that lists them may be written.
pub(crate) fn write_direct(
    data: &dyn Storage,
    direct: &mut [Arc<VerifiedPage>],
    page_size: usize,
) -> std::result::Result<(), DirectError> {
    direct.sort_by_key(|p| p.page_id());
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_at: Option<u64> = None;
    let flush = |buf: &mut Vec<u8>, at: &mut Option<u64>| -> Result<()> {
        if let Some(offset) = at.take() {
            data.write_at(offset, buf).map_err(Error::from_io)?;
        }
        buf.clear();
        Ok(())
    };
    let mut prev_end: Option<PageId> = None;
    for img in direct.iter() {
        let id = img.page_id();
        if prev_end.is_some_and(|end| id < end) {
            return Err(DirectError::Write(Error::Internal(
                "two direct extents of one commit overlap",
            )));
        }
        prev_end = img.reference().end();
        let offset = id
            .offset(page_size)
            .ok_or(DirectError::Write(Error::Internal("page offset overflows")))?;
        let contiguous = buf_at.is_some_and(|at| at + buf.len() as u64 == offset);
        if !contiguous || buf.len() + img.bytes().len() > DIRECT_WRITE_BATCH_BYTES {
            flush(&mut buf, &mut buf_at).map_err(DirectError::Write)?;
        }
        if buf_at.is_none() {
            buf_at = Some(offset);
        }
        buf.extend_from_slice(img.bytes());
    }
    flush(&mut buf, &mut buf_at).map_err(DirectError::Write)?;
    data.sync()
        .map_err(|e| DirectError::Sync(Error::from_io(e)))
}
