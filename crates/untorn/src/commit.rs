//! Turning a write transaction's dirty nodes into page images: allocation, bottom-up
//! encoding (children before parents, so every parent records its children's txid and
//! checksum), overflow extents, the freelist extent and the new meta.

use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

use crate::btree::{BucketSlot, Child, NodeValue, TxState};
use crate::error::{Error, Result};
use crate::format::{
    encode_branch, encode_freelist, encode_leaf, encode_overflow, extent_pages_for, freelist_bytes,
    BucketId, LeafValue, Meta, PageHeader, PageId, PageRef, TxId, VerifiedPage, PAGE_HEADER_SIZE,
};
use crate::freeset::FreeSet;
use crate::limits::MAX_TREE_DEPTH;
use crate::pager::Pager;

/// Page allocation during one commit: free runs first, then the high-water mark.
///
/// Every page allocated here is written through the journal. Large transactions will
/// write some pages straight home instead (format v2, §2.3 direct extents); those may
/// only come from home-safe pages (free at the last checkpoint and not freed since) or
/// from beyond the high-water mark, so that path will ask for them with a separate
/// home-safe allocation, never from `allocate`.
pub(crate) struct Allocator {
    pub(crate) free: FreeSet,
    pub(crate) high_water: PageId,
}

impl Allocator {
    pub(crate) fn allocate(&mut self, pages: u32) -> Result<PageId> {
        let pages = u64::from(pages);
        if let Some(start) = self.free.allocate(pages) {
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
            for c in &st.node(n)?.children {
                if let Child::Dirty(ci) = c {
                    stack.push((*ci, false, depth + 1));
                }
            }
            continue;
        }
        let node = std::mem::take(st.node_mut(n)?);
        let store = &st.store;
        node.assert_sound(store)?;
        let img = if node.leaf {
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
                let r = match c {
                    Child::Clean(r) => *r,
                    Child::Dirty(ci) => *done
                        .get(ci)
                        .ok_or(Error::Internal("child encoded after parent"))?,
                    Child::Null => return Err(Error::Internal("branch with a null child")),
                };
                entries.push((k.bytes(store), r));
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

/// The result of preparing a commit: images to journal and the new writer state.
pub(crate) struct Prepared {
    pub(crate) meta: Meta,
    pub(crate) images: Vec<Arc<VerifiedPage>>,
    pub(crate) free: FreeSet,
    pub(crate) pending: BTreeMap<TxId, Vec<(u64, u64)>>,
}

/// Prepares a commit of `st` on top of `base`. `free`/`pending` are copies of the
/// writer's state (installed only if the commit becomes durable); `oldest_reader` is the
/// smallest snapshot txid still open.
pub(crate) fn prepare(
    pager: &Pager,
    mut st: TxState,
    base: &Meta,
    free: FreeSet,
    mut pending: BTreeMap<TxId, Vec<(u64, u64)>>,
    oldest_reader: Option<TxId>,
) -> Result<Prepared> {
    let page_size = st.page_size;
    let txid = st.txid;
    // Pages freed by commit F were visible only to snapshots older than F.
    let mut free = free;
    let releasable: Vec<TxId> = pending
        .keys()
        .copied()
        .filter(|f| oldest_reader.is_none_or(|r| *f <= r))
        .collect();
    for f in releasable {
        if let Some(runs) = pending.remove(&f) {
            for (s, l) in runs {
                free.insert(s, l);
            }
        }
    }
    let mut alloc = Allocator {
        free,
        high_water: base.high_water,
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

    // Everything this transaction replaced, plus the old freelist, becomes pending.
    let mut freed = FreeSet::new();
    for r in &st.freed {
        freed.insert(r.page_id.0, u64::from(r.extent_pages));
    }
    if !base.freelist.is_null() {
        freed.insert(
            base.freelist.page_id.0,
            u64::from(base.freelist.extent_pages),
        );
    }
    if freed.pages() > 0 {
        pending.insert(txid, freed.runs().collect());
    }

    // The freelist lists free and pending pages (at open no reader exists).
    let pending_runs = pending.values().map(Vec::len).sum::<usize>();
    let freelist = if alloc.free.pages() == 0 && pending_runs == 0 {
        PageRef::NULL
    } else {
        let bound = alloc.free.run_count() + pending_runs + 1;
        let pages = extent_pages_for(freelist_bytes(bound), page_size)
            .ok_or(Error::Internal("freelist larger than an extent"))?;
        let id = alloc.allocate(pages)?;
        let merged = FreeSet::from_runs(
            alloc
                .free
                .runs()
                .chain(pending.values().flat_map(|v| v.iter().copied())),
        );
        let runs: Vec<(u64, u64)> = merged.runs().collect();
        let encoded = encode_freelist(&runs, id, txid, page_size, pages)?;
        let img = seal(encoded, txid, alloc.high_water, page_size)?;
        let r = img.reference();
        images.push(img);
        r
    };

    let meta = Meta {
        txid,
        page_size: u32::try_from(page_size).map_err(|_| Error::Internal("page size"))?,
        root,
        freelist,
        high_water: alloc.high_water,
        next_bucket_id: st.next_bucket_id,
    };
    meta.validate(0)?;
    Ok(Prepared {
        meta,
        images,
        free: alloc.free,
        pending,
    })
}
