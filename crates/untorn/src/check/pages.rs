//! What the walk learned per page: leaked runs after the walk, and one [`PageInfo`]
//! per page id for `pages` and `map`.

use crate::format::{decode_header, PageId};
use crate::report::{FindingKind, PageInfo, PageKind, PageState};

use super::describe::page_kind;
use super::walk::{Record, Walk, CONTINUATION, CORRUPT, FREE, REACHABLE};

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
                self.push(FindingKind::Unreachable, Some(s), &[], msg);
            }
            p += 1;
        }
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
