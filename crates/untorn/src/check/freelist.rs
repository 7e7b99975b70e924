//! The freelist's part of the walk: its extent is verified and its runs marked free,
//! with findings for runs out of range, unsorted or listed twice.

use crate::format::PageType;
use crate::report::{FindingKind, PageKind};

use super::walk::{RefKind, Walk, FREE};

impl Walk<'_> {
    // ---- freelist ------------------------------------------------------------------

    pub(super) fn walk_freelist(&mut self) {
        let r = self.meta.freelist;
        let snapshot_runs = self.src.free_runs();
        if r.is_null() {
            if let Some(runs) = snapshot_runs {
                self.mark_free_runs(0, runs);
            }
            return;
        }
        if !self.claim(r, RefKind::Freelist, &[]) {
            self.account_leaks = false;
            return;
        }
        let Some((bytes, h)) = self.read_verified(r, &[], None) else {
            self.account_leaks = false;
            return;
        };
        let id = r.page_id.get();
        if h.page_type != PageType::Freelist {
            self.push(
                FindingKind::InvalidType,
                Some(id),
                &[id],
                format!(
                    "the freelist reference points at a {} page",
                    h.page_type.as_str()
                ),
            );
            self.account_leaks = false;
            return;
        }
        self.stats.freelist_pages += u64::from(h.extent_pages);
        self.record(id, PageKind::Freelist, u64::from(h.count), h.extent_pages);
        let runs = match crate::format::freelist_runs_unchecked(&bytes, &h) {
            Ok(r) => r,
            Err(msg) => {
                self.push(FindingKind::FreelistCorrupt, Some(id), &[id], msg);
                self.account_leaks = false;
                return;
            }
        };
        // A live snapshot's free set is the extent's (the last checkpoint's) changed by
        // the commits since; the extent itself was verified above.
        self.mark_free_runs(id, snapshot_runs.unwrap_or(runs));
    }

    pub(super) fn mark_free_runs(&mut self, id: u64, mut runs: Vec<(u64, u64)>) {
        let hwm = self.high_water;
        let mut out_of_range = 0u64;
        let mut first_bad: Option<(u64, u64)> = None;
        runs.retain(|&(start, len)| {
            let ok = len > 0 && start >= 2 && start.checked_add(len).is_some_and(|e| e <= hwm);
            if !ok {
                out_of_range += 1;
                first_bad.get_or_insert((start, len));
            }
            ok
        });
        if let Some((s, l)) = first_bad {
            self.push(
                FindingKind::FreelistOutOfRange,
                Some(id),
                &[id],
                format!(
                    "{} outside pages 2..{hwm}, the first {s}+{l}; they are ignored",
                    crate::words::count(out_of_range, "run")
                ),
            );
        }
        if runs.windows(2).any(|w| matches!(w, [a, b] if a.0 > b.0)) {
            self.push(
                FindingKind::FreelistCorrupt,
                Some(id),
                &[id],
                "freelist runs are not sorted".into(),
            );
            runs.sort_unstable();
        }
        // Runs sorted by start: a run starting below the end of everything before it
        // lists pages twice. Only the new part of each run is marked, so marking costs at
        // most one visit per page id.
        let mut max_end = 2u64;
        let mut dup_runs = 0u64;
        let mut first_dup: Option<(u64, u64)> = None;
        for (start, len) in runs {
            let end = start.saturating_add(len);
            if start < max_end {
                dup_runs += 1;
                first_dup.get_or_insert((start, end.min(max_end)));
            }
            for p in start.max(max_end)..end {
                self.set_flag(p, FREE);
                self.stats.free_pages += 1;
            }
            max_end = max_end.max(end);
        }
        if let Some((s, e)) = first_dup {
            self.push(
                FindingKind::FreelistDuplicate,
                Some(s),
                &[id],
                format!(
                    "the freelist lists pages twice ({} overlapping earlier ones); the first overlap is pages {s}..{e}",
                    crate::words::count(dup_runs, "run")
                ),
            );
        }
    }
}
