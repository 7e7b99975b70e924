//! The walk surgery needs: every extent the base meta's tree reaches, and for each page
//! the reference that reaches it (who holds it, the bucket path, the key range), so an
//! operation can re-seal the path from a page up to the meta.
//!
//! Bounded like every walk over file contents: an explicit stack, a visited set (a page
//! is descended once; a second reference is recorded, not followed), extents checked
//! against the high-water mark, and at most `high_water` pages visited.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::format::{
    check_ref, check_tree, BucketId, LeafValue, PageId, PageRef, PageType, VerifiedPage,
};
use crate::limits::MAX_EXTENT_PAGES;
use crate::storage::Storage;

/// Where a reference to a page is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The meta's root reference (the root bucket's tree).
    Meta,
    /// Element `index` of branch page `page`.
    Branch { page: u64, index: usize },
    /// The bucket header of element `index` of leaf page `page` (the bucket's root).
    Bucket { page: u64, index: usize },
    /// The overflow value of element `index` of leaf page `page`.
    Overflow { page: u64, index: usize },
}

/// The first reference the walk met to a page.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub holder: Holder,
    pub reference: PageRef,
    /// The tree the page belongs to.
    pub tree: BucketId,
    /// The bucket path of that tree (empty: the root bucket).
    pub bucket: Vec<Vec<u8>>,
    /// Lower bound of the page's keys (inclusive) as its parent says.
    pub lower: Option<Vec<u8>>,
    /// Upper bound (exclusive).
    pub upper: Option<Vec<u8>>,
}

/// What a walk found.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Per referenced page id, its first reference.
    pub links: BTreeMap<u64, Link>,
    /// Pages covered by every referenced extent (whether it verified or not).
    pub used: BTreeSet<u64>,
    /// Referenced pages that did not verify against their reference (id, why).
    pub unreadable: Vec<(u64, String)>,
    /// Key/value pairs (not buckets) in the verified leaves, per tree.
    pub values: BTreeMap<u64, u64>,
}

impl Walk {
    /// Whether every page of tree `tree` that the walk reached verified.
    pub(crate) fn tree_complete(&self, tree: BucketId) -> bool {
        !self
            .unreadable
            .iter()
            .any(|(p, _)| self.links.get(p).is_none_or(|l| l.tree == tree))
    }

    /// Key/value pairs (not buckets) found in tree `tree`'s verified leaves.
    pub(crate) fn values_in(&self, tree: BucketId) -> u64 {
        self.values.get(&tree.get()).copied().unwrap_or(0)
    }
}

/// Reads and verifies the extent `r` references as a page of `tree` (`BucketId::NONE`:
/// any tree, for freelist extents).
pub(crate) fn read_extent(
    data: &dyn Storage,
    r: &PageRef,
    tree: BucketId,
    page_size: usize,
    high_water: PageId,
) -> std::result::Result<VerifiedPage, String> {
    if r.page_id < PageId::FIRST_DATA
        || r.extent_pages == 0
        || r.extent_pages > MAX_EXTENT_PAGES
        || r.end().is_none_or(|end| end > high_water)
    {
        return Err(format!(
            "the reference (page {}, {} pages) is outside 2..{high_water}",
            r.page_id, r.extent_pages
        ));
    }
    let off = r.page_id.offset(page_size).ok_or("offset overflows")?;
    let len = usize::try_from(r.extent_pages)
        .ok()
        .and_then(|n| n.checked_mul(page_size))
        .ok_or("extent length overflows")?;
    let mut buf = vec![0u8; len];
    data.read_at(off, &mut buf)
        .map_err(|e| format!("read failed: {e}"))?;
    let page = VerifiedPage::verify(buf, r.page_id, page_size).map_err(|e| e.to_string())?;
    check_ref(page.header(), r).map_err(|e| e.to_string())?;
    if tree != BucketId::NONE {
        check_tree(page.header(), tree).map_err(|e| e.to_string())?;
    }
    Ok(page)
}

struct Item {
    link: Link,
}

/// Walks every tree from `root` (the root bucket's tree).
pub(crate) fn walk(
    data: &dyn Storage,
    root: PageRef,
    page_size: usize,
    high_water: PageId,
) -> Result<Walk> {
    walk_from(
        data,
        Link {
            holder: Holder::Meta,
            reference: root,
            tree: BucketId::ROOT,
            bucket: Vec::new(),
            lower: None,
            upper: None,
        },
        page_size,
        high_water,
    )
}

/// Walks from one reference (a subtree; `start.holder` is recorded as given).
pub(crate) fn walk_from(
    data: &dyn Storage,
    start: Link,
    page_size: usize,
    high_water: PageId,
) -> Result<Walk> {
    let mut w = Walk::default();
    if start.reference.is_null() {
        return Ok(w);
    }
    let limit = usize::try_from(high_water.get()).unwrap_or(usize::MAX);
    let mut stack = vec![Item { link: start }];
    let mut visited = 0usize;
    while let Some(Item { link }) = stack.pop() {
        let id = link.reference.page_id.get();
        if w.links.contains_key(&id) {
            continue; // a second reference: check reports it; never descended twice
        }
        visited += 1;
        if visited > limit {
            return Err(Error::corrupted(
                id,
                crate::error::CorruptionKind::OutOfRange,
                "the tree references more pages than the high-water mark allows",
            ));
        }
        let r = link.reference;
        if let Some(end) = r.end().filter(|e| *e <= high_water) {
            w.used.extend(id..end.get());
        } else {
            w.used.insert(id);
        }
        let is_overflow = matches!(link.holder, Holder::Overflow { .. });
        let page = match read_extent(data, &r, link.tree, page_size, high_water) {
            Ok(p) => p,
            Err(why) => {
                w.unreadable.push((id, why));
                w.links.insert(id, link);
                continue;
            }
        };
        if is_overflow {
            w.links.insert(id, link);
            continue;
        }
        let h = *page.header();
        if !matches!(h.page_type, PageType::Branch | PageType::Leaf) {
            w.unreadable.push((
                id,
                format!("a {} page where a node belongs", h.page_type.as_str()),
            ));
            w.links.insert(id, link);
            continue;
        }
        let node = page.node()?;
        for i in 0..node.len() {
            let key = node.key(i)?;
            if node.is_leaf() {
                match node.leaf_value(i)? {
                    LeafValue::Inline(_) => {
                        *w.values.entry(link.tree.get()).or_default() += 1;
                    }
                    LeafValue::Overflow { extent, .. } => {
                        *w.values.entry(link.tree.get()).or_default() += 1;
                        stack.push(Item {
                            link: Link {
                                holder: Holder::Overflow { page: id, index: i },
                                reference: extent,
                                tree: link.tree,
                                bucket: link.bucket.clone(),
                                lower: None,
                                upper: None,
                            },
                        });
                    }
                    LeafValue::Bucket(b) if !b.root.is_null() => {
                        let mut bucket = link.bucket.clone();
                        bucket.push(key.to_vec());
                        stack.push(Item {
                            link: Link {
                                holder: Holder::Bucket { page: id, index: i },
                                reference: b.root,
                                tree: b.bucket_id,
                                bucket,
                                lower: None,
                                upper: None,
                            },
                        });
                    }
                    LeafValue::Bucket(_) => {}
                }
            } else {
                let upper = if i + 1 < node.len() {
                    Some(node.key(i + 1)?.to_vec())
                } else {
                    link.upper.clone()
                };
                stack.push(Item {
                    link: Link {
                        holder: Holder::Branch { page: id, index: i },
                        reference: node.branch_child(i)?,
                        tree: link.tree,
                        bucket: link.bucket.clone(),
                        lower: Some(key.to_vec()),
                        upper,
                    },
                });
            }
        }
        w.links.insert(id, link);
    }
    Ok(w)
}
