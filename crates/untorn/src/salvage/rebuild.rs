//! The rebuild: the live walk from the newest commit's root, then the refill of lost
//! ranges from unreferenced leaves. Both read pages again from the source through the
//! scan's index and pass every entry they keep to the candidates, ranked so that the
//! candidates' winner is the entry the salvage keeps: the live walk's (the latest in
//! walk order) over any refill, and among refills the one from the newest txid.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::candidates::Candidates;
use super::options::{SalvageOptions, INDEX_ENTRY_BYTES, USED_ENTRY_BYTES};
use super::scan::{Loc, Scan};
use crate::error::Result;
use crate::format::{BucketId, LeafValue, NodeView, PageRef, PageType, SpillRecord, SpillValue};
use crate::limits::MAX_TREE_DEPTH;

/// A reference still to walk, with the key bounds `[lo, hi)` its parent gives it and
/// its depth.
type Frame = (PageRef, Option<Vec<u8>>, Option<Vec<u8>>, usize);

/// Ranks of the live walk's candidates: above every refill candidate.
const LIVE_RANK: u64 = 1 << 63;

/// A key range of a bucket whose pages are lost.
#[derive(Debug, Clone)]
pub(super) struct LostRange {
    pub lo: Option<Vec<u8>>,
    pub hi: Option<Vec<u8>>,
    pub page: Option<u64>,
    pub reason: String,
}

/// An upper bound, `None` for unbounded, ordered with unbounded last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Upper {
    Key(Vec<u8>),
    Unbounded,
}

/// What salvage knows about one bucket's tree.
#[derive(Debug, Default)]
pub(super) struct Tree {
    /// Lost key ranges, in the order found (the report's order).
    pub lost: Vec<LostRange>,
    /// The live walk reached this bucket's tree.
    pub reached: bool,
    /// The lost ranges sorted by lower bound, each with the highest upper bound of it
    /// and the ranges before it (`index_lost`).
    sorted: Vec<(Option<Vec<u8>>, Upper)>,
}

impl Tree {
    fn index_lost(&mut self) {
        let mut v: Vec<(Option<Vec<u8>>, Upper)> = self
            .lost
            .iter()
            .map(|r| {
                let hi = r.hi.clone().map_or(Upper::Unbounded, Upper::Key);
                (r.lo.clone(), hi)
            })
            .collect();
        v.sort();
        let mut max: Option<Upper> = None;
        for e in &mut v {
            if max.as_ref().is_some_and(|m| *m > e.1) {
                if let Some(m) = &max {
                    e.1 = m.clone();
                }
            } else {
                max = Some(e.1.clone());
            }
        }
        self.sorted = v;
    }

    /// Whether `key` lies in one of the lost ranges: the ranges starting at or before it
    /// reach past it.
    fn in_lost_range(&self, key: &[u8]) -> bool {
        let n = self
            .sorted
            .partition_point(|(lo, _)| lo.as_deref().is_none_or(|lo| lo <= key));
        n.checked_sub(1)
            .and_then(|i| self.sorted.get(i))
            .is_some_and(|(_, hi)| match hi {
                Upper::Unbounded => true,
                Upper::Key(hi) => key < hi.as_slice(),
            })
    }
}

fn spill_value(v: LeafValue<'_>) -> SpillValue {
    match v {
        LeafValue::Inline(b) => SpillValue::Inline(b.to_vec()),
        LeafValue::Overflow { extent, len } => SpillValue::Overflow(extent, len),
        LeafValue::Bucket(h) => SpillValue::Bucket(h),
    }
}

/// Walks the newest commit's trees and refills their lost ranges, passing every entry
/// found to `cands`; returns what is known about each tree.
pub(super) fn rebuild(
    scan: &mut Scan<'_>,
    cands: &mut Candidates,
    opts: &mut SalvageOptions<'_>,
) -> Result<BTreeMap<BucketId, Tree>> {
    let newest = scan
        .commits
        .iter()
        .max_by_key(|c| (c.txid, c.what == "a meta slot"))
        .copied();
    let mut trees: BTreeMap<BucketId, Tree> = BTreeMap::new();
    match newest {
        Some(c) => scan.summary.notes.push(format!(
            "newest commit: txid {} (from {}){}",
            c.txid,
            c.what,
            if c.root.is_null() { ", empty" } else { "" }
        )),
        None => scan.summary.notes.push(
            "no meta and no journal record verifies: every key comes from unreferenced pages"
                .into(),
        ),
    }
    let mut rank = 0u64;
    let mut used: HashSet<(u64, u64)> = HashSet::new();
    let mut queue: Vec<(BucketId, PageRef)> = Vec::new();
    let mut seen_trees: BTreeSet<BucketId> = BTreeSet::new();
    match newest {
        Some(c) => queue.push((BucketId::ROOT, c.root)),
        None => {
            trees
                .entry(BucketId::ROOT)
                .or_default()
                .lost
                .push(LostRange {
                    lo: None,
                    hi: None,
                    page: None,
                    reason: "no commit names a root".into(),
                });
        }
    }
    let mut walked = 0u64;
    while let Some((tree_id, root)) = queue.pop() {
        if !seen_trees.insert(tree_id) || seen_trees.len() > 1 << 24 {
            continue;
        }
        scan.budget
            .charge(INDEX_ENTRY_BYTES, "the set of buckets walked")?;
        walked += 1;
        opts.report("rebuild", walked, walked + queue.len() as u64)?;
        let tree = trees.entry(tree_id).or_default();
        tree.reached = true;
        if root.is_null() {
            continue;
        }
        let mut stack: Vec<Frame> = vec![(root, None, None, 1)];
        while let Some((r, lo, hi, depth)) = stack.pop() {
            let lose = |tree: &mut Tree, reason: String| {
                let bytes = lo.as_ref().map_or(0, Vec::len) + hi.as_ref().map_or(0, Vec::len);
                tree.lost.push(LostRange {
                    lo: lo.clone(),
                    hi: hi.clone(),
                    page: Some(r.page_id.get()),
                    reason,
                });
                // Held twice: in the report's order and sorted.
                2 * (bytes as u64 + INDEX_ENTRY_BYTES)
            };
            let tree = trees.entry(tree_id).or_default();
            if depth > MAX_TREE_DEPTH || !used.insert((r.page_id.get(), r.txid.get())) {
                let bytes = lose(
                    tree,
                    "the tree is deeper than the limit or revisits a page".into(),
                );
                scan.budget.charge(bytes, "the lost key ranges")?;
                continue;
            }
            scan.budget
                .charge(USED_ENTRY_BYTES, "the set of pages the live walk used")?;
            let Some(loc) = scan.resolve(&r, tree_id) else {
                let bytes = lose(
                    tree,
                    format!(
                        "page {} (txid {}) is unreadable: no verified copy of the version its parent names",
                        r.page_id, r.txid
                    ),
                );
                scan.budget.charge(bytes, "the lost key ranges")?;
                continue;
            };
            let page = scan.read(&loc)?;
            let node = match NodeView::validate(&page, &loc.h) {
                Ok(n) => n,
                Err(e) => {
                    let bytes = lose(tree, format!("page {} does not verify: {e}", r.page_id));
                    scan.budget.charge(bytes, "the lost key ranges")?;
                    continue;
                }
            };
            if node.is_leaf() {
                for i in 0..node.len() {
                    let (Ok(key), Ok(v)) = (node.key(i), node.leaf_value(i)) else {
                        continue;
                    };
                    let value = spill_value(v);
                    if let SpillValue::Bucket(h) = &value {
                        if h.bucket_id.get() >= 2 && h.bucket_id != tree_id {
                            queue.push((h.bucket_id, h.root));
                        }
                    }
                    rank += 1;
                    cands.push(
                        SpillRecord {
                            tree: tree_id.get(),
                            key: key.to_vec(),
                            rank: LIVE_RANK | rank,
                            txid: loc.h.txid.get(),
                            older: false,
                            value,
                        },
                        scan.budget.sort_bytes(),
                    )?;
                }
            } else {
                let n = node.len();
                for i in (0..n).rev() {
                    let (Ok(child), Ok(key)) = (node.branch_child(i), node.key(i)) else {
                        continue;
                    };
                    let child_lo = if i == 0 {
                        lo.clone()
                    } else {
                        Some(key.to_vec())
                    };
                    let child_hi = if i + 1 == n {
                        hi.clone()
                    } else {
                        node.key(i + 1).ok().map(<[u8]>::to_vec)
                    };
                    stack.push((child, child_lo, child_hi, depth + 1));
                }
            }
        }
    }
    for tree in trees.values_mut() {
        tree.index_lost();
    }
    let live_txid = newest.map(|c| c.txid);
    let next_bucket = newest.map(|c| c.next_bucket_id);
    let any_lost = trees.values().any(|t| !t.lost.is_empty());
    // Refill: unreferenced leaves, oldest txid first so that the newest ranks highest.
    let mut pool: Vec<Loc> = Vec::new();
    if !opts.live_only {
        for l in &scan.versions {
            if l.h.page_type == PageType::Leaf
                && !used.contains(&(l.h.page_id.get(), l.h.txid.get()))
            {
                pool.push(*l);
            }
        }
    }
    scan.budget.charge(
        pool.len() as u64 * std::mem::size_of::<Loc>() as u64,
        "the list of unreferenced leaves",
    )?;
    drop(used);
    pool.sort_by_key(|l| (l.h.txid, l.h.page_id, l.src));
    let mut uncommitted = 0u64;
    let mut dead = 0u64;
    for loc in pool {
        if live_txid.is_some_and(|t| loc.h.txid > t) {
            uncommitted += 1;
            continue;
        }
        let t = loc.h.tree_id;
        let reached = trees.get(&t).is_some_and(|x| x.reached);
        if reached && trees.get(&t).is_some_and(|x| x.lost.is_empty()) {
            continue;
        }
        if !reached && (!any_lost || next_bucket.is_some_and(|n| t >= n)) {
            dead += 1;
            continue;
        }
        let page = scan.read(&loc)?;
        let Ok(node) = NodeView::validate(&page, &loc.h) else {
            continue;
        };
        if !trees.contains_key(&t) {
            scan.budget
                .charge(INDEX_ENTRY_BYTES, "the set of buckets")?;
        }
        let tree = trees.entry(t).or_default();
        for i in 0..node.len() {
            let (Ok(key), Ok(v)) = (node.key(i), node.leaf_value(i)) else {
                continue;
            };
            if reached && !tree.in_lost_range(key) {
                continue;
            }
            rank += 1;
            cands.push(
                SpillRecord {
                    tree: t.get(),
                    key: key.to_vec(),
                    rank,
                    txid: loc.h.txid.get(),
                    older: true,
                    value: spill_value(v),
                },
                scan.budget.sort_bytes(),
            )?;
        }
    }
    if uncommitted > 0 {
        scan.summary.notes.push(format!(
            "{uncommitted} verified leaves newer than the newest commit ignored (never committed)"
        ));
    }
    if dead > 0 {
        scan.summary.notes.push(format!(
            "{dead} verified leaves of buckets the newest commit does not hold ignored (deleted buckets)"
        ));
    }
    Ok(trees)
}
