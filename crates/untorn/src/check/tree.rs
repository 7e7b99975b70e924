//! The tree part of the walk: every bucket's B+tree depth-first with an explicit
//! stack, key bounds from the ancestors, leaf depths, bucket entry counts and overflow
//! extents.

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    decode_header, overflow_value, peek_extent_pages, BucketHeader, BucketId, LeafValue, NodeView,
    PageId, PageRef, TxId, PAGE_HEADER_SIZE,
};
use crate::limits::{MAX_BUCKET_DEPTH, MAX_STACK_FRAMES, MAX_TREE_DEPTH};
use crate::report::{FindingKind, PageKind};

use super::walk::{
    error_detail, finding_kind, hex_prefix, short_name, Child, Frame, RefKind, Tree, Walk, ON_STACK,
};

impl Walk<'_> {
    // ---- the tree walk ---------------------------------------------------------------

    pub(super) fn start_from(&mut self, id: u64) -> Result<()> {
        if id < 2 || id >= self.high_water {
            return Err(Error::InvalidArgument(format!(
                "--from-page {id} must be a tree page in 2..{}",
                self.high_water
            )));
        }
        // No parent vouches for this page: take the reference from its own header.
        let first = self.src.read_raw(PageId(id), 1).map_err(Error::from_io)?;
        let extent = peek_extent_pages(&first).unwrap_or(1).max(1);
        let h = match decode_header(&first) {
            Some(h) => h,
            None => {
                self.trees
                    .push(Tree::new(Vec::new(), None, false, None, None));
                self.stack.push(Frame::EndTree);
                let r = PageRef {
                    page_id: PageId(id),
                    txid: TxId(0),
                    checksum: 0,
                    extent_pages: extent,
                };
                if self.claim(r, RefKind::Node, &[]) {
                    self.read_verified(r, &[], None);
                }
                return Ok(());
            }
        };
        let r = PageRef {
            page_id: PageId(id),
            txid: h.txid,
            checksum: h.checksum,
            extent_pages: extent,
        };
        // The start page names its tree; every page below it must carry the same id.
        self.trees
            .push(Tree::new(Vec::new(), Some(h.tree_id), false, None, None));
        self.stack.push(Frame::EndTree);
        self.visit_node(r, None, None, 0)
    }

    /// Processes the stack until it is empty.
    pub(super) fn drain(&mut self) -> Result<()> {
        loop {
            let next = match self.stack.last_mut() {
                None => return Ok(()),
                Some(Frame::EndTree) => None,
                Some(Frame::Node {
                    children,
                    next,
                    depth,
                    ..
                }) => match children.get_mut(*next) {
                    Some(c) => {
                        *next += 1;
                        // Take the child out (its bounds are only needed once).
                        let c = std::mem::replace(
                            c,
                            Child::Node {
                                r: PageRef::NULL,
                                lo: None,
                                hi: None,
                            },
                        );
                        Some((c, *depth))
                    }
                    None => None,
                },
            };
            match next {
                Some((Child::Node { r, lo, hi }, depth)) => {
                    self.visit_node(r, lo, hi, depth.saturating_add(1))?;
                }
                Some((Child::Bucket { name, header }, _)) => self.enter_bucket(name, header)?,
                None => self.pop_frame(),
            }
            self.report_progress(false)?;
        }
    }

    pub(super) fn pop_frame(&mut self) {
        match self.stack.pop() {
            Some(Frame::Node { page, .. }) => self.clear_flag(page, ON_STACK),
            Some(Frame::EndTree) => {
                if let Some(t) = self.trees.pop() {
                    self.finish_tree(t);
                }
            }
            None => {}
        }
    }

    pub(super) fn finish_tree(&mut self, t: Tree) {
        let (Some(expected), Some(holder)) = (t.expected_count, t.header_page) else {
            return;
        };
        if !t.damaged && expected != t.keys {
            // The holder leaf is on top of the stack again: the path ends at it.
            self.push(
                FindingKind::BucketHeader,
                Some(holder),
                &[],
                format!(
                    "bucket {:?} header says {expected} entries, its tree holds {}",
                    short_name(&t.name),
                    t.keys
                ),
            );
        }
    }

    pub(super) fn enter_bucket(&mut self, name: Vec<u8>, header: BucketHeader) -> Result<()> {
        let holder = self.path_with(&[]).last().copied();
        // `trees` holds the root bucket's tree and one per level of nesting.
        if self.trees.len() > MAX_BUCKET_DEPTH {
            self.push(
                FindingKind::TooDeep,
                holder,
                &[],
                format!(
                    "bucket {:?} is nested deeper than {MAX_BUCKET_DEPTH} levels; not walked",
                    short_name(&name)
                ),
            );
            self.mark_damaged();
            return Ok(());
        }
        self.stats.buckets += 1;
        self.report.buckets_checked += 1;
        let id = self.check_bucket_id(&name, header.bucket_id, holder);
        if header.root.is_null() {
            if header.count != 0 {
                self.push(
                    FindingKind::BucketHeader,
                    holder,
                    &[],
                    format!(
                        "empty bucket {:?} (null root) says it holds {} entries",
                        short_name(&name),
                        header.count
                    ),
                );
            }
            return Ok(());
        }
        self.trees
            .push(Tree::new(name, id, false, Some(header.count), holder));
        self.stack.push(Frame::EndTree);
        self.visit_node(header.root, None, None, 0)
    }

    /// Checks a bucket header's id: a user bucket's (>= 2), below the meta's
    /// `next_bucket_id`, and not another bucket's. Returns the id the bucket's pages must
    /// carry, or `None` when the id is unusable (then the tree's ids are not checked).
    fn check_bucket_id(
        &mut self,
        name: &[u8],
        id: BucketId,
        holder: Option<u64>,
    ) -> Option<BucketId> {
        let problem = if id < BucketId::FIRST_USER {
            Some(format!(
                "bucket {:?} has id {id}, below the first user bucket id {}",
                short_name(name),
                BucketId::FIRST_USER
            ))
        } else if self.full_walk && id >= self.meta.next_bucket_id {
            Some(format!(
                "bucket {:?} has id {id}, not below the meta's next bucket id {}",
                short_name(name),
                self.meta.next_bucket_id
            ))
        } else {
            self.bucket_ids.insert(id, holder).map(|other| {
                format!(
                    "bucket {:?} has id {id}, which another bucket (header in page {}) has too",
                    short_name(name),
                    other.map_or_else(|| "?".to_owned(), |p| p.to_string())
                )
            })
        };
        match problem {
            Some(msg) => {
                self.push(FindingKind::BucketHeader, holder, &[], msg);
                None
            }
            None => Some(id),
        }
    }

    /// Claims, reads and verifies a branch or leaf and pushes its frame.
    pub(super) fn visit_node(
        &mut self,
        r: PageRef,
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
        depth: u32,
    ) -> Result<()> {
        let id = r.page_id.get();
        let since = self.sink.len();
        if depth as usize >= MAX_TREE_DEPTH || self.stack.len() >= MAX_STACK_FRAMES {
            self.push(
                FindingKind::TooDeep,
                Some(id),
                &[id],
                format!("page {id} lies deeper than the walk's bound ({MAX_TREE_DEPTH} levels); not walked"),
            );
            self.mark_damaged();
            return Ok(());
        }
        if !self.claim(r, RefKind::Node, &[]) {
            self.note_lost(since, &lo, &hi);
            return Ok(());
        }
        let tree = self.trees.last().and_then(|t| t.id);
        let Some((bytes, h)) = self.read_verified(r, &[], tree) else {
            self.note_lost(since, &lo, &hi);
            return Ok(());
        };
        let view = match NodeView::validate(&bytes, &h) {
            Ok(v) => v,
            Err(e) => {
                let kind = match &e {
                    Error::Corrupted {
                        kind: CorruptionKind::Invalid,
                        ..
                    } => FindingKind::ElementBounds,
                    other => finding_kind(other),
                };
                self.push(kind, Some(id), &[id], error_detail(&e));
                self.mark_damaged();
                self.note_lost(since, &lo, &hi);
                return Ok(());
            }
        };
        let extent = u64::from(h.extent_pages);
        self.report.pages_checked += extent;
        self.stats.node_bytes_used += (PAGE_HEADER_SIZE as u64).saturating_add(h.payload_len);
        self.stats.node_bytes_available += extent.saturating_mul(self.page_size as u64);
        self.stats.tree_depth_max = self.stats.tree_depth_max.max(depth + 1);
        self.check_key_bounds(&view, lo.as_deref(), hi.as_deref());
        let children = if view.is_leaf() {
            self.stats.leaf_pages += extent;
            self.record(id, PageKind::Leaf, view.len() as u64, h.extent_pages);
            self.check_leaf_depth(id, depth);
            self.leaf_children(&view)
        } else {
            self.stats.branch_pages += extent;
            self.record(id, PageKind::Branch, view.len() as u64, h.extent_pages);
            branch_children(&view, hi.as_deref())
        };
        match children {
            Ok(children) if !children.is_empty() => {
                self.set_flag(id, ON_STACK);
                self.stack.push(Frame::Node {
                    page: id,
                    depth,
                    children,
                    next: 0,
                });
            }
            Ok(_) => {}
            Err(e) => {
                self.push(finding_kind(&e), Some(id), &[id], error_detail(&e));
                self.mark_damaged();
                self.note_lost(since, &lo, &hi);
            }
        }
        Ok(())
    }

    pub(super) fn check_key_bounds(
        &mut self,
        view: &NodeView<'_>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) {
        let id = view.page_id().get();
        let n = view.len();
        if n == 0 {
            return;
        }
        // Keys are strictly ascending (validated), so the first and last key decide.
        let (Ok(first), Ok(last)) = (view.key(0), view.key(n - 1)) else {
            return;
        };
        let below = lo.filter(|lo| first < *lo);
        let above = hi.filter(|hi| last >= *hi);
        if below.is_some() || above.is_some() {
            let msg = match (below, above) {
                (Some(lo), _) => format!(
                    "first key {} is below the lower bound {} its ancestors give it",
                    hex_prefix(first),
                    hex_prefix(lo)
                ),
                (_, Some(hi)) => format!(
                    "last key {} is not below the upper bound {} its ancestors give it",
                    hex_prefix(last),
                    hex_prefix(hi)
                ),
                _ => String::new(),
            };
            self.push(FindingKind::KeyOutOfBounds, Some(id), &[id], msg);
        }
    }

    pub(super) fn check_leaf_depth(&mut self, id: u64, depth: u32) {
        let Some(t) = self.trees.last_mut() else {
            return;
        };
        match t.leaf_depth {
            None => t.leaf_depth = Some(depth),
            Some(d) if d != depth && !t.uneven_reported => {
                t.uneven_reported = true;
                let msg = format!(
                    "leaf at depth {} while other leaves of bucket {:?} are at depth {}",
                    depth + 1,
                    short_name(&t.name),
                    d + 1
                );
                self.push(FindingKind::UnevenDepth, Some(id), &[id], msg);
            }
            Some(_) => {}
        }
    }

    /// Counts a leaf's values, checks its overflow extents now and returns its buckets.
    pub(super) fn leaf_children(&mut self, view: &NodeView<'_>) -> Result<Vec<Child>> {
        let id = view.page_id().get();
        let is_root_bucket = self.trees.last().is_some_and(|t| t.is_root_bucket);
        let mut children = Vec::new();
        let mut root_value_reported = false;
        for i in 0..view.len() {
            let key = view.key(i)?;
            let value = view.leaf_value(i)?;
            match value {
                LeafValue::Bucket(header) => children.push(Child::Bucket {
                    name: key.to_vec(),
                    header,
                }),
                LeafValue::Inline(v) => {
                    self.count_value(key.len(), v.len() as u64);
                }
                LeafValue::Overflow { extent, len } => {
                    self.count_value(key.len(), len);
                    self.visit_overflow(id, extent, len);
                }
            }
            if is_root_bucket && !matches!(value, LeafValue::Bucket(_)) && !root_value_reported {
                root_value_reported = true;
                self.push(
                    FindingKind::BucketHeader,
                    Some(id),
                    &[id],
                    format!(
                        "the root bucket holds a plain value under key {}; it may hold only buckets",
                        hex_prefix(key)
                    ),
                );
            }
        }
        Ok(children)
    }

    pub(super) fn count_value(&mut self, key_len: usize, value_len: u64) {
        self.stats.keys += 1;
        self.stats.key_bytes += key_len as u64;
        self.stats.value_bytes += value_len;
        self.report.keys_checked += 1;
        if let Some(t) = self.trees.last_mut() {
            t.keys += 1;
        }
    }

    pub(super) fn visit_overflow(&mut self, leaf: u64, extent: PageRef, len: u64) {
        if !self.claim(extent, RefKind::Overflow, &[leaf]) {
            return;
        }
        let id = extent.page_id.get();
        let tree = self.trees.last().and_then(|t| t.id);
        let Some((bytes, h)) = self.read_verified(extent, &[leaf], tree) else {
            return;
        };
        if let Err(e) = overflow_value(&bytes, &h, len) {
            let kind = match &e {
                Error::Corrupted {
                    kind: CorruptionKind::Bounds,
                    ..
                } => FindingKind::OverflowBounds,
                other => finding_kind(other),
            };
            self.push(kind, Some(id), &[leaf, id], error_detail(&e));
            self.mark_damaged();
            return;
        }
        self.report.pages_checked += u64::from(h.extent_pages);
        self.stats.overflow_pages += u64::from(h.extent_pages);
        self.record(id, PageKind::Overflow, 0, h.extent_pages);
    }
}

/// A branch's children with their key bounds: child `i` holds keys in
/// `[key[i], key[i+1])`, the last child up to the branch's own upper bound.
fn branch_children(view: &NodeView<'_>, hi: Option<&[u8]>) -> Result<Vec<Child>> {
    let n = view.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let r = view.branch_child(i)?;
        let lo = Some(view.key(i)?.to_vec());
        let child_hi = if i + 1 < n {
            Some(view.key(i + 1)?.to_vec())
        } else {
            hi.map(<[u8]>::to_vec)
        };
        out.push(Child::Node {
            r,
            lo,
            hi: child_hi,
        });
    }
    Ok(out)
}
