//! The set of free pages: disjoint, coalesced runs keyed by start page.

use std::collections::BTreeMap;

/// Free page runs. **Invariant:** runs are disjoint and never adjacent (coalesced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FreeSet {
    runs: BTreeMap<u64, u64>,
    pages: u64,
}

impl FreeSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Builds a set from runs; overlapping input is merged.
    pub(crate) fn from_runs(runs: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let mut s = Self::new();
        for (start, len) in runs {
            s.insert(start, len);
        }
        s
    }

    /// Total free pages.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    /// Number of runs.
    pub(crate) fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// Iterates runs in page order.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().map(|(s, l)| (*s, *l))
    }

    /// Whether `page` is free.
    #[cfg(test)]
    pub(crate) fn contains(&self, page: u64) -> bool {
        self.runs
            .range(..=page)
            .next_back()
            .is_some_and(|(s, l)| page < s + l)
    }

    /// Adds `len` pages starting at `start`, coalescing with neighbours. Pages already
    /// present are not counted twice.
    pub(crate) fn insert(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut new_start = start;
        let mut new_end = start.saturating_add(len);
        // Absorb every run that overlaps or touches [new_start, new_end).
        loop {
            let hit = self
                .runs
                .range(..=new_end)
                .next_back()
                .map(|(s, l)| (*s, *l))
                .filter(|(s, l)| s + l >= new_start);
            let Some((s, l)) = hit else { break };
            self.runs.remove(&s);
            self.pages -= l;
            new_start = new_start.min(s);
            new_end = new_end.max(s + l);
        }
        self.runs.insert(new_start, new_end - new_start);
        self.pages += new_end - new_start;
    }

    /// Removes the pages `[start, start + len)` that are in the set (splitting runs);
    /// returns how many were present.
    pub(crate) fn remove(&mut self, start: u64, len: u64) -> u64 {
        let end = start.saturating_add(len);
        let mut removed = 0;
        // Every run that overlaps [start, end): the one starting at or before `start`, and
        // those starting inside. Bounded by the runs the range touches.
        let first = self
            .runs
            .range(..=start)
            .next_back()
            .map(|(s, _)| *s)
            .unwrap_or(start);
        let hits: Vec<(u64, u64)> = self
            .runs
            .range(first..end)
            .map(|(s, l)| (*s, *l))
            .filter(|(s, l)| s.saturating_add(*l) > start)
            .collect();
        for (s, l) in hits {
            let run_end = s.saturating_add(l);
            self.runs.remove(&s);
            self.pages -= l;
            if s < start {
                self.runs.insert(s, start - s);
                self.pages += start - s;
            }
            if run_end > end {
                self.runs.insert(end, run_end - end);
                self.pages += run_end - end;
            }
            removed += run_end.min(end) - s.max(start);
        }
        removed
    }

    /// Whether any page of `[start, start + len)` is in the set.
    pub(crate) fn intersects(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len);
        let before = self
            .runs
            .range(..=start)
            .next_back()
            .is_some_and(|(s, l)| s.saturating_add(*l) > start);
        before || self.runs.range(start..end).next().is_some()
    }

    /// Takes `n` contiguous pages none of which is in `avoid` (first fit). Used for the
    /// checkpoint's freelist extent: pages free at the last checkpoint and not freed since
    /// are the only ones the older meta on disk cannot need (home-safe). Cost O(runs of
    /// both sets).
    pub(crate) fn allocate_avoiding(&mut self, n: u64, avoid: &FreeSet) -> Option<u64> {
        if n == 0 {
            return None;
        }
        let mut found = None;
        'runs: for (&s, &l) in &self.runs {
            let end = s.saturating_add(l);
            let mut at = s;
            // Pieces of this run between the avoided runs that overlap it.
            let first = avoid
                .runs
                .range(..=s)
                .next_back()
                .map(|(a, _)| *a)
                .unwrap_or(s);
            for (&a, &al) in avoid.runs.range(first..end) {
                let a_end = a.saturating_add(al);
                if a_end <= at {
                    continue;
                }
                if a >= at && a - at >= n {
                    found = Some(at);
                    break 'runs;
                }
                at = at.max(a_end);
                if at >= end {
                    continue 'runs;
                }
            }
            if end - at >= n {
                found = Some(at);
                break;
            }
        }
        let start = found?;
        self.remove(start, n);
        Some(start)
    }

    /// Takes `n` contiguous pages (first fit, lowest ids first).
    pub(crate) fn allocate(&mut self, n: u64) -> Option<u64> {
        if n == 0 {
            return None;
        }
        let (start, len) = self
            .runs
            .iter()
            .find(|(_, l)| **l >= n)
            .map(|(s, l)| (*s, *l))?;
        self.runs.remove(&start);
        if len > n {
            self.runs.insert(start + n, len - n);
        }
        self.pages -= n;
        Some(start)
    }

    /// Removes every page at or above `limit` (used to keep ids below the high-water mark).
    #[cfg(test)]
    pub(crate) fn truncate_at(&mut self, limit: u64) {
        let above: Vec<(u64, u64)> = self.runs.range(..).map(|(s, l)| (*s, *l)).collect();
        for (s, l) in above {
            if s + l > limit {
                self.runs.remove(&s);
                self.pages -= l;
                if s < limit {
                    self.runs.insert(s, limit - s);
                    self.pages += limit - s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_coalesces_and_allocate_is_first_fit() {
        let mut f = FreeSet::new();
        f.insert(10, 2);
        f.insert(14, 1);
        f.insert(12, 2);
        assert_eq!(f.runs().collect::<Vec<_>>(), vec![(10, 5)]);
        f.insert(11, 3); // already present
        assert_eq!(f.pages(), 5);
        f.insert(3, 1);
        assert_eq!(f.allocate(2), Some(10));
        assert_eq!(f.allocate(1), Some(3));
        assert_eq!(f.runs().collect::<Vec<_>>(), vec![(12, 3)]);
        assert_eq!(f.allocate(4), None);
        assert!(f.contains(13));
        assert!(!f.contains(15));
        f.truncate_at(13);
        assert_eq!(f.runs().collect::<Vec<_>>(), vec![(12, 1)]);
        assert_eq!(f.pages(), 1);
    }

    #[test]
    fn remove_splits_runs_and_counts_pages() {
        let mut f = FreeSet::from_runs([(10, 10), (30, 5)]);
        assert_eq!(f.remove(12, 3), 3);
        assert_eq!(
            f.runs().collect::<Vec<_>>(),
            vec![(10, 2), (15, 5), (30, 5)]
        );
        assert_eq!(f.remove(18, 14), 4);
        assert_eq!(
            f.runs().collect::<Vec<_>>(),
            vec![(10, 2), (15, 3), (32, 3)]
        );
        assert_eq!(f.pages(), 8);
        assert_eq!(f.remove(0, 5), 0);
        assert!(f.intersects(11, 1) && f.intersects(0, 11) && !f.intersects(12, 3));
    }

    #[test]
    fn allocate_avoiding_skips_avoided_pages() {
        let mut f = FreeSet::from_runs([(10, 10), (40, 4)]);
        let avoid = FreeSet::from_runs([(11, 2), (16, 1)]);
        assert_eq!(f.allocate_avoiding(3, &avoid), Some(13));
        assert_eq!(f.allocate_avoiding(3, &avoid), Some(17));
        assert_eq!(f.allocate_avoiding(2, &avoid), Some(40));
        assert_eq!(f.allocate_avoiding(5, &avoid), None);
        assert_eq!(f.allocate_avoiding(1, &avoid), Some(10));
        assert_eq!(
            f.runs().collect::<Vec<_>>(),
            vec![(11, 2), (16, 1), (42, 2)]
        );
    }
}
