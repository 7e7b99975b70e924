//! Page surgery: `copy-page`, `clear-page`, `clear-page-elements`. Each rewrites one
//! node at its own id and then re-seals the path above it: every ancestor is re-encoded
//! with the new child reference (id, txid, checksum, extent) and sealed, up to the meta's
//! root reference; the bucket count of the changed tree is recounted on the way.

use std::sync::Arc;

use super::error::SurgeryError;
use super::outcome::{Dropped, Outcome};
use super::staged::{settle, write_extent, write_result, Base, FreePlan, Written};
use super::tree::{read_extent, walk, walk_from, Holder, Link, Walk};
use crate::error::Error;
use crate::format::{
    encode_branch, encode_leaf, peek_extent_pages, rebranch, BucketId, LeafValue, PageHeader,
    PageId, PageRef, PageType, TxId, VerifiedPage,
};
use crate::limits::MAX_EXTENT_PAGES;
use crate::storage::Storage;

type Res<T> = std::result::Result<T, SurgeryError>;

/// A settled copy, walked, and the txid the surgery writes with (the base's + 1).
struct Ctx<'a> {
    data: &'a dyn Storage,
    base: Base,
    walk: Walk,
    txid: TxId,
}

impl<'a> Ctx<'a> {
    fn new(data: &'a Arc<dyn Storage>, journal: &Arc<dyn Storage>) -> Res<Ctx<'a>> {
        let base = settle(data, journal)?;
        let walk = walk(
            data.as_ref(),
            base.meta.root,
            base.page_size,
            base.meta.high_water,
        )?;
        let txid = base
            .meta
            .txid
            .next()
            .ok_or(Error::Internal("txid overflow"))?;
        Ok(Ctx {
            data: data.as_ref(),
            base,
            walk,
            txid,
        })
    }

    fn in_range(&self, page: u64) -> Res<()> {
        let hw = self.base.meta.high_water.get();
        if page < PageId::FIRST_DATA.get() || page >= hw {
            return Err(SurgeryError::PageOutOfRange {
                page,
                high_water: hw,
            });
        }
        Ok(())
    }

    /// The reference that reaches `page` (which must be a node, not an overflow value).
    fn link(&self, page: u64, op: &'static str) -> Res<Link> {
        self.in_range(page)?;
        let link = self
            .walk
            .links
            .get(&page)
            .ok_or(SurgeryError::NotReachable { page })?;
        if matches!(link.holder, Holder::Overflow { .. }) {
            return Err(SurgeryError::WrongPageKind {
                page,
                found: "overflow".into(),
                expected: "a branch or leaf page",
                op,
            });
        }
        Ok(link.clone())
    }

    /// The verified node `page` as its parent references it.
    fn node(&self, page: u64, link: &Link) -> Res<VerifiedPage> {
        read_extent(
            self.data,
            &link.reference,
            link.tree,
            self.base.page_size,
            self.base.meta.high_water,
        )
        .map_err(|why| SurgeryError::Unreadable { page, why })
    }

    fn write(&self, bytes: &[u8], h: &PageHeader) -> Res<PageRef> {
        write_extent(self.data, h.page_id, bytes, self.base.page_size)?;
        Ok(h.reference())
    }

    /// Key/value pairs in the verified leaves of the subtree `link` reaches, if every
    /// page of it verifies.
    fn subtree_values(&self, link: &Link) -> Res<Option<u64>> {
        let w = walk_from(
            self.data,
            link.clone(),
            self.base.page_size,
            self.base.meta.high_water,
        )?;
        Ok(w.tree_complete(link.tree).then(|| w.values_in(link.tree)))
    }

    /// Makes the reference held at `holder` (in tree `tree`) be `r`, re-sealing every
    /// ancestor up to the meta; returns the new root reference. The first bucket header
    /// crossed (the changed tree's) gets its count recounted, or lowered by
    /// `dropped_values` when its tree has unreadable pages.
    fn set_reference(
        &self,
        mut holder: Holder,
        tree: BucketId,
        mut r: PageRef,
        dropped_values: u64,
    ) -> Res<PageRef> {
        let mut recount = Some(tree);
        // Each step climbs to a page the walk met earlier: at most one step per page.
        for _ in 0..=self.walk.links.len() {
            let (page, index) = match holder {
                Holder::Meta => return Ok(r),
                Holder::Overflow { .. } => {
                    return Err(Error::Internal("re-sealing from an overflow reference").into())
                }
                Holder::Branch { page, index } | Holder::Bucket { page, index } => (page, index),
            };
            let link = self
                .walk
                .links
                .get(&page)
                .cloned()
                .ok_or(Error::Internal("a holder the walk did not record"))?;
            let v = self.node(page, &link)?;
            let (bytes, h) = if let Holder::Branch { .. } = holder {
                rebranch(
                    v.bytes(),
                    v.header(),
                    &[(index, r)],
                    PageId(page),
                    self.txid,
                )?
            } else {
                let node = v.node()?;
                let mut entries = Vec::with_capacity(node.len());
                for i in 0..node.len() {
                    let mut value = node.leaf_value(i)?;
                    if i == index {
                        let LeafValue::Bucket(mut b) = value else {
                            return Err(
                                Error::Internal("a bucket holder that is not a bucket").into()
                            );
                        };
                        b.root = r;
                        if recount.take().is_some() {
                            let sub = walk_from(
                                self.data,
                                Link {
                                    holder: Holder::Meta,
                                    reference: r,
                                    tree: b.bucket_id,
                                    bucket: Vec::new(),
                                    lower: None,
                                    upper: None,
                                },
                                self.base.page_size,
                                self.base.meta.high_water,
                            )?;
                            b.count = if sub.tree_complete(b.bucket_id) {
                                sub.values_in(b.bucket_id)
                            } else {
                                b.count.saturating_sub(dropped_values)
                            };
                        }
                        value = LeafValue::Bucket(b);
                    }
                    entries.push((node.key(i)?, value));
                }
                let (bytes, h) = encode_leaf(
                    &entries,
                    PageId(page),
                    self.txid,
                    link.tree,
                    self.base.page_size,
                )?;
                if h.extent_pages != v.header().extent_pages {
                    return Err(Error::Internal("a re-sealed leaf changed its extent").into());
                }
                (bytes, h)
            };
            r = self.write(&bytes, &h)?;
            holder = link.holder;
        }
        Err(Error::Internal("re-sealing climbed more pages than the walk met").into())
    }

    /// Removes the reference to `page` from its parent; a branch left without children
    /// is removed from its own parent in turn, and a tree left without pages becomes
    /// empty (a null root). Returns the new root reference.
    fn detach(&self, page: u64, dropped_values: u64) -> Res<PageRef> {
        let mut cur = page;
        for _ in 0..=self.walk.links.len() {
            let link = self
                .walk
                .links
                .get(&cur)
                .cloned()
                .ok_or(Error::Internal("detaching a page the walk did not record"))?;
            let Holder::Branch {
                page: parent,
                index,
            } = link.holder
            else {
                return self.set_reference(link.holder, link.tree, PageRef::NULL, dropped_values);
            };
            let plink = self
                .walk
                .links
                .get(&parent)
                .cloned()
                .ok_or(Error::Internal("a holder the walk did not record"))?;
            let v = self.node(parent, &plink)?;
            let node = v.node()?;
            if node.len() <= 1 {
                cur = parent;
                continue;
            }
            let mut entries = Vec::with_capacity(node.len());
            for i in (0..node.len()).filter(|i| *i != index) {
                entries.push((node.key(i)?, node.branch_child(i)?));
            }
            let (bytes, h) = encode_branch(
                &entries,
                PageId(parent),
                self.txid,
                plink.tree,
                self.base.page_size,
            )?;
            let r = self.write(&bytes, &h)?;
            return self.set_reference(plink.holder, plink.tree, r, dropped_values);
        }
        Err(Error::Internal("detaching climbed more pages than the walk met").into())
    }

    fn finish(
        &self,
        journal: &Arc<dyn Storage>,
        root: PageRef,
        message: String,
        dropped: Vec<Dropped>,
    ) -> Res<Outcome> {
        let Written {
            freelist_rebuilt,
            leaked_pages,
            unreadable_pages,
        } = write_result(
            self.data,
            journal.as_ref(),
            &self.base,
            root,
            self.txid,
            FreePlan::Derive,
        )?;
        Ok(Outcome {
            message,
            dropped,
            txid: self.txid.get(),
            freelist_rebuilt,
            leaked_pages,
            unreadable_pages,
        })
    }
}

/// What removing leaf elements `range` drops, and how many of them are values.
fn leaf_drop(v: &VerifiedPage, link: &Link, range: std::ops::Range<usize>) -> Res<(Dropped, u64)> {
    let node = v.node()?;
    let (mut first, mut last, mut count, mut values) = (Vec::new(), Vec::new(), 0u64, 0u64);
    let mut buckets = Vec::new();
    for i in range {
        let key = node.key(i)?;
        if count == 0 {
            first = key.to_vec();
        }
        last = key.to_vec();
        count += 1;
        match node.leaf_value(i)? {
            LeafValue::Bucket(_) => buckets.push(key.to_vec()),
            _ => values += 1,
        }
    }
    Ok((
        Dropped::Keys {
            bucket: link.bucket.clone(),
            first,
            last,
            count,
            buckets,
        },
        values,
    ))
}

/// `clear-page`: drops everything below `page` (a branch or leaf node the tree
/// references; its contents need not verify). The reference to it is removed from its
/// parent (a parent left empty goes too; a tree root leaves the bucket empty), the path
/// is re-sealed, and the freelist is rebuilt.
pub fn clear_page(data: Arc<dyn Storage>, journal: Arc<dyn Storage>, page: u64) -> Res<Outcome> {
    let cx = Ctx::new(&data, &journal)?;
    let link = cx.link(page, "clear-page")?;
    let (dropped, values) = match cx.node(page, &link) {
        Ok(v) if v.header().page_type == PageType::Leaf => {
            let n = v.node()?.len();
            leaf_drop(&v, &link, 0..n)?
        }
        _ => {
            let keys = cx.subtree_values(&link)?;
            (
                Dropped::Subtree {
                    bucket: link.bucket.clone(),
                    page,
                    from: link.lower.clone(),
                    to: link.upper.clone(),
                    keys,
                },
                keys.unwrap_or(0),
            )
        }
    };
    let root = cx.detach(page, values)?;
    cx.finish(
        &journal,
        root,
        format!("page {page} cleared: its parent no longer references it"),
        vec![dropped],
    )
}

/// `clear-page-elements`: removes elements `[from, to)` (`to` `None`: through the last)
/// of the branch or leaf `page` (which must verify), re-seals the path and rebuilds the
/// freelist. Removing every element is `clear-page`.
pub fn clear_page_elements(
    data: Arc<dyn Storage>,
    journal: Arc<dyn Storage>,
    page: u64,
    from: usize,
    to: Option<usize>,
) -> Res<Outcome> {
    let cx = Ctx::new(&data, &journal)?;
    let link = cx.link(page, "clear-page-elements")?;
    let v = cx.node(page, &link)?;
    let node = v.node()?;
    let count = node.len();
    let to = to.unwrap_or(count);
    if from >= to || to > count {
        return Err(SurgeryError::ElementsOutOfRange {
            page,
            from,
            to,
            count,
        });
    }
    if from == 0 && to == count {
        drop(cx);
        return clear_page(data, journal, page);
    }
    let (dropped, values, r) = if node.is_leaf() {
        let (d, values) = leaf_drop(&v, &link, from..to)?;
        let mut entries = Vec::with_capacity(count);
        for i in (0..count).filter(|i| !(from..to).contains(i)) {
            entries.push((node.key(i)?, node.leaf_value(i)?));
        }
        let (bytes, h) = encode_leaf(
            &entries,
            PageId(page),
            cx.txid,
            link.tree,
            cx.base.page_size,
        )?;
        (vec![d], values, cx.write(&bytes, &h)?)
    } else {
        let mut dropped = Vec::new();
        let mut values = 0;
        for i in from..to {
            let child = Link {
                holder: Holder::Branch { page, index: i },
                reference: node.branch_child(i)?,
                tree: link.tree,
                bucket: link.bucket.clone(),
                lower: Some(node.key(i)?.to_vec()),
                upper: if i + 1 < count {
                    Some(node.key(i + 1)?.to_vec())
                } else {
                    link.upper.clone()
                },
            };
            let keys = cx.subtree_values(&child)?;
            values += keys.unwrap_or(0);
            dropped.push(Dropped::Subtree {
                bucket: link.bucket.clone(),
                page: child.reference.page_id.get(),
                from: child.lower,
                to: child.upper,
                keys,
            });
        }
        let mut entries = Vec::with_capacity(count);
        for i in (0..count).filter(|i| !(from..to).contains(i)) {
            entries.push((node.key(i)?, node.branch_child(i)?));
        }
        let (bytes, h) = encode_branch(
            &entries,
            PageId(page),
            cx.txid,
            link.tree,
            cx.base.page_size,
        )?;
        (dropped, values, cx.write(&bytes, &h)?)
    };
    let root = cx.set_reference(link.holder, link.tree, r, values)?;
    cx.finish(
        &journal,
        root,
        format!("elements [{from}, {to}) of page {page} removed"),
        dropped,
    )
}

/// `copy-page`: replaces the contents of node `dst` (referenced by the tree) with those
/// of node `src` (which must verify on its own), re-encoded as page `dst` of `dst`'s
/// tree, then re-seals the path and rebuilds the freelist. The copy must fit the extent
/// the parent reserved for `dst`.
pub fn copy_page(
    data: Arc<dyn Storage>,
    journal: Arc<dyn Storage>,
    src: u64,
    dst: u64,
) -> Res<Outcome> {
    let cx = Ctx::new(&data, &journal)?;
    cx.in_range(src)?;
    let link = cx.link(dst, "copy-page")?;
    let ps = cx.base.page_size;
    let mut head = vec![0u8; ps];
    let off = PageId(src)
        .offset(ps)
        .ok_or(Error::Internal("page offset"))?;
    cx.data.read_at(off, &mut head).map_err(Error::from_io)?;
    let hw = cx.base.meta.high_water.get();
    let pages = peek_extent_pages(&head)
        .filter(|n| *n >= 1 && *n <= MAX_EXTENT_PAGES && src + u64::from(*n) <= hw)
        .ok_or_else(|| SurgeryError::Unreadable {
            page: src,
            why: format!(
                "its header names no extent length that fits below the high-water mark {hw}"
            ),
        })?;
    let mut bytes = vec![
        0u8;
        usize::try_from(pages)
            .unwrap_or(usize::MAX)
            .saturating_mul(ps)
    ];
    cx.data.read_at(off, &mut bytes).map_err(Error::from_io)?;
    let v = VerifiedPage::verify(bytes, PageId(src), ps).map_err(|e| SurgeryError::Unreadable {
        page: src,
        why: e.to_string(),
    })?;
    let node = match v.header().page_type {
        PageType::Branch | PageType::Leaf => v.node()?,
        other => {
            return Err(SurgeryError::WrongPageKind {
                page: src,
                found: other.as_str().into(),
                expected: "a branch or leaf page",
                op: "copy-page",
            })
        }
    };
    let (out, h) = if node.is_leaf() {
        let mut entries = Vec::with_capacity(node.len());
        for i in 0..node.len() {
            entries.push((node.key(i)?, node.leaf_value(i)?));
        }
        encode_leaf(&entries, PageId(dst), cx.txid, link.tree, ps)?
    } else {
        let mut entries = Vec::with_capacity(node.len());
        for i in 0..node.len() {
            entries.push((node.key(i)?, node.branch_child(i)?));
        }
        encode_branch(&entries, PageId(dst), cx.txid, link.tree, ps)?
    };
    if h.extent_pages > link.reference.extent_pages {
        return Err(SurgeryError::ExtentMismatch {
            src,
            src_pages: h.extent_pages,
            dst,
            dst_pages: link.reference.extent_pages,
        });
    }
    let r = cx.write(&out, &h)?;
    let root = cx.set_reference(link.holder, link.tree, r, 0)?;
    let from_tree = v.header().tree_id;
    cx.finish(
        &journal,
        root,
        if from_tree == link.tree {
            format!("page {src} copied over page {dst}")
        } else {
            format!(
                "page {src} (of tree {from_tree}) copied over page {dst} as a page of tree {}",
                link.tree
            )
        },
        vec![Dropped::Replaced {
            bucket: link.bucket.clone(),
            page: dst,
            from_page: src,
        }],
    )
}
