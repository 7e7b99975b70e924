//! What the walk learned per page: leaked runs after the walk, and one [`PageInfo`]
//! per page id for `pages` and `map`.

use crate::format::{decode_header, verify_page, BucketId, NodeView, PageId};
use crate::report::{FindingKind, PageInfo, PageKind, PageState};

use super::describe::page_kind;
use super::walk::{Record, Walk, CONTINUATION, CORRUPT, FREE, REACHABLE};

/// A node page's first and last key.
type KeyRange = (Vec<u8>, Vec<u8>);

/// Extents read per leaked run to learn its trees and keys.
const LEAK_PAGES_READ: usize = 64;

impl Walk<'_> {
    pub(super) fn find_leaks(&mut self) {
        let mut run: Option<(u64, u64)> = None;
        let mut p = 2u64;
        let hwm = self.high_water;
        while p <= hwm {
            let leaked = p < hwm && self.flag(p) & (REACHABLE | FREE) == 0;
            if leaked {
                self.stats.leaked_pages += 1;
                run = Some(match run {
                    Some((s, _)) => (s, p),
                    None => (p, p),
                });
            } else if let Some((s, e)) = run.take() {
                let n = e - s + 1;
                let msg = if n == 1 {
                    format!("page {s} is neither reachable nor free (leaked)")
                } else {
                    format!("pages {s}..={e} ({n} pages) are neither reachable nor free (leaked)")
                };
                let cause = self.cause_of_leak(s, e);
                self.sink
                    .push_caused(FindingKind::Unreachable, Some(s), &[], msg, cause);
            }
            p += 1;
        }
    }

    /// The root cause a leaked run is a consequence of, on the evidence of the pages
    /// that verify (at most [`LEAK_PAGES_READ`] extents are read). Every page names its
    /// tree: a page of a tree the walk knows is explained by the one lost subtree of that
    /// tree whose key range holds its keys; a page of a tree the walk never reached (its
    /// bucket header was lost) by the one lost subtree there is, when there is one.
    /// `None` when no page verifies or the evidence fits no or several lost subtrees.
    fn cause_of_leak(&self, start: u64, end: u64) -> Option<usize> {
        if self.lost.is_empty() {
            return None;
        }
        let mut cause: Option<usize> = None;
        let mut p = start;
        let mut read = 0;
        while p <= end && read < LEAK_PAGES_READ {
            read += 1;
            let extent = self
                .src
                .read_raw(PageId(p), 1)
                .ok()
                .as_deref()
                .and_then(decode_header)
                .map_or(1, |h| h.extent_pages.max(1));
            if let Some((tree, keys)) = self.leaked_page(p, extent) {
                let known = self.bucket_ids.contains_key(&tree);
                let mut fits = self.lost.iter().filter(|l| {
                    if !known {
                        return true;
                    }
                    l.tree.is_none_or(|t| t == tree)
                        && keys.as_ref().is_none_or(|(a, b)| l.holds(a, b))
                });
                let here = match (fits.next(), fits.next()) {
                    (Some(l), None) => l.cause,
                    _ => return None,
                };
                if cause.is_some_and(|c| c != here) {
                    return None;
                }
                cause = Some(here);
            }
            p = p.saturating_add(u64::from(extent));
        }
        cause
    }

    /// The tree of the page at `id` (an extent of `extent` pages) and, for a node, its
    /// first and last key, when it verifies.
    fn leaked_page(&self, id: u64, extent: u32) -> Option<(BucketId, Option<KeyRange>)> {
        let bytes = self.src.read_raw(PageId(id), extent).ok()?;
        let h = verify_page(&bytes, PageId(id), self.page_size).ok()?;
        if h.tree_id == BucketId::NONE {
            return None;
        }
        let keys = NodeView::validate(&bytes, &h).ok().and_then(|view| {
            let first = view.key(0).ok()?.to_vec();
            let last = view.key(view.len().checked_sub(1)?).ok()?.to_vec();
            Some((first, last))
        });
        Some((h.tree_id, keys))
    }

    pub(super) fn page_infos(&self) -> Vec<PageInfo> {
        let mut out = Vec::with_capacity(self.flags.len());
        let mut owner: Option<Record> = None;
        for (i, (id, f)) in self.flags.iter().enumerate() {
            let rec = self
                .records
                .as_ref()
                .and_then(|r| r.get(i).copied().flatten());
            let corrupt = f & CORRUPT != 0 || (f & REACHABLE != 0 && f & FREE != 0);
            let state = if id < 2 || f & REACHABLE != 0 {
                if corrupt {
                    PageState::Corrupt
                } else {
                    PageState::Reachable
                }
            } else if f & FREE != 0 {
                PageState::Free
            } else {
                PageState::Leaked
            };
            if rec.is_some() {
                owner = rec;
            }
            let (kind, items, overflow) = if id < 2 {
                (PageKind::Meta, 0, 0)
            } else if let Some(r) = rec {
                (r.kind, r.items, r.overflow)
            } else if f & CONTINUATION != 0 {
                let _ = owner;
                (PageKind::Overflow, 0, 0)
            } else if f & REACHABLE == 0 && f & FREE != 0 {
                (PageKind::Free, 0, 0)
            } else {
                // Leaked or unverifiable: describe what the header claims, unverified.
                match self
                    .src
                    .read_raw(PageId(id), 1)
                    .ok()
                    .as_deref()
                    .and_then(decode_header)
                {
                    Some(h) => (
                        page_kind(h.page_type),
                        u64::from(h.count),
                        u64::from(h.extent_pages.saturating_sub(1)),
                    ),
                    None => (PageKind::Unknown, 0, 0),
                }
            };
            out.push(PageInfo {
                id,
                kind,
                items,
                overflow,
                state,
            });
        }
        out
    }
}
