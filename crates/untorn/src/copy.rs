//! Copying a read snapshot into a new, dense database image (hot backup and compaction).
//!
//! The snapshot is walked bucket by bucket in key order (an explicit stack of open
//! buckets, bounded by `MAX_BUCKET_DEPTH`), and every tree is rebuilt bottom-up: entries
//! fill a leaf until the next one would not fit, a full leaf gets the next page id and is
//! written at once, and its first key and reference go to the branch level above, which
//! fills the same way. Page ids are handed out in the order pages are finished, so the
//! image is written front to back; only the two meta pages, which name the root, are
//! written last (over the placeholder at the front). Memory holds one unfinished node
//! per tree level per open bucket, never the database.
//!
//! The image is a complete database: both metas in state `clean` (nothing newer exists
//! in any journal), no freelist, every page below the high-water mark reachable. It keeps
//! the snapshot's txid, bucket ids, sequences and counts, and gets a new database id, so
//! that no journal of the source can ever be replayed onto it.

use std::io::{Seek, SeekFrom, Write};

use crate::btree::{overflow_threshold, Tree};
use crate::bucket::Bucket;
use crate::entropy::Entropy;
use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    branch_entry_size, encode_branch, encode_leaf, encode_overflow, leaf_entry_size, BucketHeader,
    BucketId, LeafValue, Meta, MetaState, PageHeader, PageId, PageRef, TxId, BUCKET_HEADER_SIZE,
    OVERFLOW_VALUE_SIZE, PAGE_HEADER_SIZE,
};
use crate::limits::{MAX_BUCKET_DEPTH, MAX_TREE_DEPTH};
use crate::pager::Pager;
use crate::value::Entry;

/// What a copy wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyStats {
    /// The txid of the snapshot copied (the copy's meta carries it).
    pub txid: u64,
    /// Bytes per page (the source's).
    pub page_size: usize,
    /// Pages in the image, the two metas included (its high-water mark).
    pub pages: u64,
    /// Bytes written: `pages * page_size`.
    pub bytes: u64,
    /// Buckets copied, nested ones included.
    pub buckets: u64,
    /// Key/value pairs copied.
    pub keys: u64,
    /// Leaf pages written (single-page leaves and the first page of larger extents).
    pub leaves: u64,
    /// Bytes of the leaf pages' capacity their entries use, summed (fill factor =
    /// `leaf_bytes_used / (leaves * (page_size - header))`, extents counted as one).
    pub leaf_bytes_used: u64,
}

impl CopyStats {
    /// Average fill of the leaf pages written (0.0 to 1.0).
    pub fn leaf_fill(&self) -> f64 {
        let capacity = self
            .leaves
            .saturating_mul(self.page_size.saturating_sub(PAGE_HEADER_SIZE) as u64);
        if capacity == 0 {
            0.0
        } else {
            self.leaf_bytes_used as f64 / capacity as f64
        }
    }
}

/// Where finished extents go: written in page-id order at the writer's position.
struct Out<'w, W: Write + Seek> {
    w: &'w mut W,
    page_size: usize,
    txid: TxId,
    next: PageId,
    stats: CopyStats,
}

impl<W: Write + Seek> Out<'_, W> {
    /// Encodes an extent at the next free id with `encode` and writes it.
    fn emit(
        &mut self,
        encode: impl FnOnce(PageId, TxId, usize) -> Result<(Vec<u8>, PageHeader)>,
    ) -> Result<PageRef> {
        let (image, h) = encode(self.next, self.txid, self.page_size)?;
        if h.page_id != self.next || image.len() != h.extent_pages as usize * self.page_size {
            return Err(Error::Internal(
                "an encoded extent is not where it was asked",
            ));
        }
        self.w.write_all(&image).map_err(Error::from_io)?;
        self.next = self
            .next
            .checked_add(u64::from(h.extent_pages))
            .ok_or(Error::Internal("page ids overflow"))?;
        Ok(h.reference())
    }
}

/// A leaf value waiting in an unfinished leaf.
enum Pending {
    Inline(Vec<u8>),
    Overflow { extent: PageRef, len: u64 },
    Bucket(BucketHeader),
}

impl Pending {
    fn stored_len(&self) -> usize {
        match self {
            Pending::Inline(v) => v.len(),
            Pending::Overflow { .. } => OVERFLOW_VALUE_SIZE,
            Pending::Bucket(_) => BUCKET_HEADER_SIZE,
        }
    }
    fn as_leaf_value(&self) -> LeafValue<'_> {
        match self {
            Pending::Inline(v) => LeafValue::Inline(v),
            Pending::Overflow { extent, len } => LeafValue::Overflow {
                extent: *extent,
                len: *len,
            },
            Pending::Bucket(h) => LeafValue::Bucket(*h),
        }
    }
}

/// One unfinished branch level of a tree being built.
#[derive(Default)]
struct Level {
    entries: Vec<(Vec<u8>, PageRef)>,
    bytes: usize,
}

/// One tree built bottom-up from its entries in key order.
struct TreeBuilder {
    tree: BucketId,
    leaf: Vec<(Vec<u8>, Pending)>,
    leaf_bytes: usize,
    /// `levels[0]` holds the leaves' references, `levels[i]` the branches of level i.
    levels: Vec<Level>,
    /// Key/value pairs (not buckets) added.
    count: u64,
}

impl TreeBuilder {
    fn new(tree: BucketId) -> Self {
        TreeBuilder {
            tree,
            leaf: Vec::new(),
            leaf_bytes: 0,
            levels: Vec::new(),
            count: 0,
        }
    }

    /// Room for elements in one page.
    fn capacity(page_size: usize) -> usize {
        page_size.saturating_sub(PAGE_HEADER_SIZE)
    }

    /// Adds the next entry (keys strictly ascending, as the source's cursor yields them).
    fn add<W: Write + Seek>(
        &mut self,
        out: &mut Out<'_, W>,
        key: Vec<u8>,
        v: Pending,
    ) -> Result<()> {
        if let Some((last, _)) = self.leaf.last() {
            if *last >= key {
                return Err(Error::Internal("copy: keys out of order"));
            }
        }
        let size = leaf_entry_size(key.len(), v.stored_len());
        if !self.leaf.is_empty() && self.leaf_bytes + size > Self::capacity(out.page_size) {
            self.flush_leaf(out)?;
        }
        if !matches!(v, Pending::Bucket(_)) {
            self.count += 1;
        }
        self.leaf.push((key, v));
        self.leaf_bytes += size;
        Ok(())
    }

    /// Writes the unfinished leaf and returns its first key and reference.
    fn write_leaf<W: Write + Seek>(&mut self, out: &mut Out<'_, W>) -> Result<(Vec<u8>, PageRef)> {
        let leaf = std::mem::take(&mut self.leaf);
        let used = std::mem::take(&mut self.leaf_bytes);
        let tree = self.tree;
        let r = {
            let entries: Vec<(&[u8], LeafValue<'_>)> = leaf
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_leaf_value()))
                .collect();
            out.emit(|id, txid, ps| encode_leaf(&entries, id, txid, tree, ps))?
        };
        out.stats.leaves += 1;
        out.stats.leaf_bytes_used += used as u64;
        let first = leaf
            .into_iter()
            .next()
            .map(|(k, _)| k)
            .ok_or(Error::Internal("copy: an empty leaf was written"))?;
        Ok((first, r))
    }

    fn flush_leaf<W: Write + Seek>(&mut self, out: &mut Out<'_, W>) -> Result<()> {
        let (k, r) = self.write_leaf(out)?;
        self.add_child(out, 0, k, r)
    }

    /// Writes branch level `lv` and returns its first key and reference.
    fn write_level<W: Write + Seek>(
        &mut self,
        out: &mut Out<'_, W>,
        lv: usize,
    ) -> Result<(Vec<u8>, PageRef)> {
        let tree = self.tree;
        let level = self
            .levels
            .get_mut(lv)
            .map(std::mem::take)
            .ok_or(Error::Internal("copy: a branch level is missing"))?;
        let r = {
            let entries: Vec<(&[u8], PageRef)> = level
                .entries
                .iter()
                .map(|(k, r)| (k.as_slice(), *r))
                .collect();
            out.emit(|id, txid, ps| encode_branch(&entries, id, txid, tree, ps))?
        };
        let first = level
            .entries
            .into_iter()
            .next()
            .map(|(k, _)| k)
            .ok_or(Error::Internal("copy: an empty branch was written"))?;
        Ok((first, r))
    }

    /// Adds a finished child to branch level `lv`, writing full levels upwards first. A
    /// branch takes at least two children (an extent of several pages when their keys
    /// are large), so every level is at most half as wide as the one below.
    fn add_child<W: Write + Seek>(
        &mut self,
        out: &mut Out<'_, W>,
        lv: usize,
        key: Vec<u8>,
        r: PageRef,
    ) -> Result<()> {
        let cap = Self::capacity(out.page_size);
        let mut todo = vec![(lv, key, r)];
        while let Some((lv, key, r)) = todo.pop() {
            if lv >= MAX_TREE_DEPTH {
                return Err(Error::Internal("copy: the tree grew deeper than the bound"));
            }
            while self.levels.len() <= lv {
                self.levels.push(Level::default());
            }
            let size = branch_entry_size(key.len());
            let full = self
                .levels
                .get(lv)
                .is_some_and(|l| l.entries.len() >= 2 && l.bytes + size > cap);
            if full {
                let (fk, fr) = self.write_level(out, lv)?;
                todo.push((lv, key, r));
                todo.push((lv + 1, fk, fr));
                continue;
            }
            let level = self
                .levels
                .get_mut(lv)
                .ok_or(Error::Internal("copy: a branch level is missing"))?;
            level.entries.push((key, r));
            level.bytes += size;
        }
        Ok(())
    }

    /// Writes what is unfinished and returns the root (null for an empty tree).
    fn finish<W: Write + Seek>(mut self, out: &mut Out<'_, W>) -> Result<(PageRef, u64)> {
        if self.leaf.is_empty() && self.levels.is_empty() {
            return Ok((PageRef::NULL, self.count));
        }
        if self.levels.is_empty() {
            let (_, r) = self.write_leaf(out)?;
            return Ok((r, self.count));
        }
        if !self.leaf.is_empty() {
            self.flush_leaf(out)?;
        }
        let mut lv = 0;
        while lv < self.levels.len() {
            let (k, r) = self.write_level(out, lv)?;
            if lv + 1 == self.levels.len() {
                return Ok((r, self.count));
            }
            self.add_child(out, lv + 1, k, r)?;
            lv += 1;
        }
        Err(Error::Internal("copy: a tree ended without a root"))
    }
}

/// A bucket being copied: where its source cursor is and the tree being built.
struct Frame<'t> {
    bucket: Bucket<'t>,
    cursor: crate::cursor::Cursor<'t>,
    started: bool,
    /// Its name in the parent (empty for the root).
    name: Vec<u8>,
    builder: TreeBuilder,
}

/// Writes a complete database image of the snapshot whose root tree is `root` and whose
/// meta is `meta` to `w`, from its current position (which must be the start of the
/// image). The writer is not synced.
pub(crate) fn write_snapshot<W: Write + Seek>(
    pager: &Pager,
    meta: &Meta,
    root: Tree,
    w: &mut W,
) -> Result<CopyStats> {
    let page_size = pager.page_size;
    let start = w.stream_position().map_err(Error::from_io)?;
    // Placeholder for the metas, written last.
    let blank = vec![0u8; page_size];
    for _ in 0..2 {
        w.write_all(&blank).map_err(Error::from_io)?;
    }
    let mut out = Out {
        w,
        page_size,
        txid: meta.txid,
        next: PageId::FIRST_DATA,
        stats: CopyStats {
            txid: meta.txid.get(),
            page_size,
            ..CopyStats::default()
        },
    };
    let threshold = overflow_threshold(page_size);
    let top = Bucket::root(pager, root);
    let mut stack = vec![Frame {
        cursor: top.cursor(),
        bucket: top,
        started: false,
        name: Vec::new(),
        builder: TreeBuilder::new(BucketId::ROOT),
    }];
    let root_ref = loop {
        let depth = stack.len();
        let frame = stack
            .last_mut()
            .ok_or(Error::Internal("copy: the bucket stack emptied early"))?;
        let item = if frame.started {
            frame.cursor.next()?
        } else {
            frame.started = true;
            frame.cursor.first()?
        };
        match item {
            Some((k, Entry::Value(v))) => {
                let tree = frame.builder.tree;
                let pending = if v.len() > threshold {
                    let extent =
                        out.emit(|id, txid, ps| encode_overflow(&v, id, txid, tree, ps))?;
                    Pending::Overflow {
                        extent,
                        len: v.len() as u64,
                    }
                } else {
                    Pending::Inline(v.to_vec())
                };
                frame.builder.add(&mut out, k.to_vec(), pending)?;
                out.stats.keys += 1;
            }
            Some((k, Entry::Bucket)) => {
                if depth > MAX_BUCKET_DEPTH {
                    return Err(Error::corrupted(
                        0,
                        CorruptionKind::Structure,
                        "buckets nested deeper than the bound",
                    ));
                }
                let child = frame.bucket.bucket(&k)?.ok_or_else(|| {
                    Error::corrupted(
                        0,
                        CorruptionKind::Structure,
                        "a bucket the cursor found does not open",
                    )
                })?;
                let id = child.header().bucket_id;
                stack.push(Frame {
                    cursor: child.cursor(),
                    bucket: child,
                    started: false,
                    name: k.to_vec(),
                    builder: TreeBuilder::new(id),
                });
            }
            None => {
                let done = stack
                    .pop()
                    .ok_or(Error::Internal("copy: the bucket stack emptied early"))?;
                let src = done.bucket.header();
                let (root, count) = done.builder.finish(&mut out)?;
                let Some(parent) = stack.last_mut() else {
                    break root;
                };
                out.stats.buckets += 1;
                let header = BucketHeader {
                    root,
                    sequence: src.sequence,
                    count,
                    bucket_id: src.bucket_id,
                };
                parent
                    .builder
                    .add(&mut out, done.name, Pending::Bucket(header))?;
            }
        }
    };
    let high_water = out.next;
    let mut stats = out.stats;
    stats.pages = high_water.get();
    stats.bytes = high_water
        .offset(page_size)
        .ok_or(Error::Internal("image size overflows"))?;
    let mut entropy = Entropy::random();
    let db_id = entropy.db_id();
    let w = out.w;
    for seq in [2u64, 3] {
        let m = Meta {
            txid: meta.txid,
            page_size: meta.page_size,
            root: root_ref,
            freelist: PageRef::NULL,
            high_water,
            db_id,
            meta_seq: seq,
            journal_salt: entropy.salt(seq),
            state: MetaState::Clean,
            next_bucket_id: meta.next_bucket_id,
        };
        m.validate(m.slot())?;
        let at = PageId(m.slot())
            .offset(page_size)
            .and_then(|o| o.checked_add(start))
            .ok_or(Error::Internal("meta offset overflows"))?;
        w.seek(SeekFrom::Start(at)).map_err(Error::from_io)?;
        w.write_all(&m.encode()?).map_err(Error::from_io)?;
    }
    let end = stats
        .bytes
        .checked_add(start)
        .ok_or(Error::Internal("image size overflows"))?;
    w.seek(SeekFrom::Start(end)).map_err(Error::from_io)?;
    w.flush().map_err(Error::from_io)?;
    Ok(stats)
}
