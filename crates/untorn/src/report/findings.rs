//! Findings: what a checker reports, one [`FindingKind`] vocabulary for both formats so
//! that `untorn check --json` has one schema (documented in `docs/check.md`).
//!
//! **Root causes.** One damaged page can produce hundreds of findings: a bbolt page
//! overwritten by a copy of its ancestor is walked as bbolt walks it, and every page
//! below it is out of bounds, too deep, or reached twice. The [`FindingSink`] links each
//! finding to the root cause that explains it ([`Finding::cause`]): the first finding
//! about a page is that page's root cause unless a root cause lies above it on its path
//! (the path from the root, which every walk records), and a later finding below or on
//! that page is its consequence. The page *at fault* of a reference finding (a cycle, a
//! second reference, a reference out of bounds) is the referencing page, not the
//! referenced one; a page first reached below a root cause ([`FindingSink::reached`])
//! explains a second reference to it. [`Report::root_causes`] groups a report for
//! people: one headline per root cause, its consequences folded under it.

use std::collections::HashMap;
use std::fmt;

/// What kind of problem a finding reports. Names are stable (snake_case in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FindingKind {
    /// The page's checksum does not match its bytes (torn write, bit rot).
    Checksum,
    /// The page is all zeros.
    ZeroedPage,
    /// The page's header names another page id ("self-identifies as another id").
    PageIdMismatch,
    /// The page is valid but not the version its parent references (stale / lost write).
    ParentMismatch,
    /// The page belongs to another tree than the bucket that references it (its
    /// `tree_id` differs from the bucket's id).
    WrongTree,
    /// The page type is invalid, or invalid at this position in the tree.
    InvalidType,
    /// An element count, offset or length lies outside the page.
    ElementBounds,
    /// Keys within one page are not strictly ascending.
    KeyOrder,
    /// A page's common key prefix, or an element's stored key prefix, does not match its
    /// keys.
    KeyPrefix,
    /// A key lies outside the separator bounds its ancestors give it.
    KeyOutOfBounds,
    /// Leaves of one tree are at different depths.
    UnevenDepth,
    /// A page is referenced more than once.
    MultipleReferences,
    /// A page references one of its own ancestors.
    Cycle,
    /// A page id is at or beyond the high-water mark.
    OutOfBounds,
    /// A reachable page is also in the freelist.
    ReachableFreed,
    /// A page below the high-water mark is neither reachable nor free.
    Unreachable,
    /// A page id appears more than once in the freelist.
    FreelistDuplicate,
    /// A freelist entry is out of range (meta pages, beyond the high-water mark).
    FreelistOutOfRange,
    /// The freelist itself cannot be read.
    FreelistCorrupt,
    /// An overflow extent runs past the high-water mark or the file.
    OverflowBounds,
    /// A bucket header is invalid (bad root, count mismatch).
    BucketHeader,
    /// A meta page is invalid.
    MetaInvalid,
    /// The newest meta was unusable and an older one is in use.
    MetaFallback,
    /// The journal is damaged.
    Journal,
    /// A tree is deeper than the walk's bound.
    TooDeep,
    /// A page could not be read from storage.
    ReadError,
    /// The SHA-256 trailer of an etcd snapshot file (`etcdctl snapshot save`) does not
    /// match the database bytes before it (bbolt files only).
    SnapshotHash,
}

impl FindingKind {
    /// Every kind, in declaration order (for docs and tests).
    pub const ALL: &'static [FindingKind] = &[
        FindingKind::Checksum,
        FindingKind::ZeroedPage,
        FindingKind::PageIdMismatch,
        FindingKind::ParentMismatch,
        FindingKind::WrongTree,
        FindingKind::InvalidType,
        FindingKind::ElementBounds,
        FindingKind::KeyOrder,
        FindingKind::KeyPrefix,
        FindingKind::KeyOutOfBounds,
        FindingKind::UnevenDepth,
        FindingKind::MultipleReferences,
        FindingKind::Cycle,
        FindingKind::OutOfBounds,
        FindingKind::ReachableFreed,
        FindingKind::Unreachable,
        FindingKind::FreelistDuplicate,
        FindingKind::FreelistOutOfRange,
        FindingKind::FreelistCorrupt,
        FindingKind::OverflowBounds,
        FindingKind::BucketHeader,
        FindingKind::MetaInvalid,
        FindingKind::MetaFallback,
        FindingKind::Journal,
        FindingKind::TooDeep,
        FindingKind::ReadError,
        FindingKind::SnapshotHash,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Checksum => "checksum",
            FindingKind::ZeroedPage => "zeroed_page",
            FindingKind::PageIdMismatch => "page_id_mismatch",
            FindingKind::ParentMismatch => "parent_mismatch",
            FindingKind::WrongTree => "wrong_tree",
            FindingKind::InvalidType => "invalid_type",
            FindingKind::ElementBounds => "element_bounds",
            FindingKind::KeyOrder => "key_order",
            FindingKind::KeyPrefix => "key_prefix",
            FindingKind::KeyOutOfBounds => "key_out_of_bounds",
            FindingKind::UnevenDepth => "uneven_depth",
            FindingKind::MultipleReferences => "multiple_references",
            FindingKind::Cycle => "cycle",
            FindingKind::OutOfBounds => "out_of_bounds",
            FindingKind::ReachableFreed => "reachable_freed",
            FindingKind::Unreachable => "unreachable",
            FindingKind::FreelistDuplicate => "freelist_duplicate",
            FindingKind::FreelistOutOfRange => "freelist_out_of_range",
            FindingKind::FreelistCorrupt => "freelist_corrupt",
            FindingKind::OverflowBounds => "overflow_bounds",
            FindingKind::BucketHeader => "bucket_header",
            FindingKind::MetaInvalid => "meta_invalid",
            FindingKind::MetaFallback => "meta_fallback",
            FindingKind::Journal => "journal",
            FindingKind::TooDeep => "too_deep",
            FindingKind::ReadError => "read_error",
            FindingKind::SnapshotHash => "snapshot_hash",
        }
    }

    /// Whether this kind is informational (does not make a check fail).
    pub fn is_warning(self) -> bool {
        matches!(self, FindingKind::MetaFallback)
    }

    /// Whether a finding of this kind is about a reference: the page at fault is the
    /// referencing page (the one before `page` on the path), not `page`.
    pub fn is_reference(self) -> bool {
        matches!(
            self,
            FindingKind::Cycle
                | FindingKind::MultipleReferences
                | FindingKind::OutOfBounds
                | FindingKind::OverflowBounds
        )
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found by a checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// The page the problem is in (None for file-level problems).
    pub page: Option<u64>,
    /// Page ids from the root down to (and including) `page`, when known.
    pub path: Vec<u64>,
    /// Human-readable description, naming offsets and values.
    pub message: String,
    /// The index (in the report's findings) of the root cause this finding is a
    /// consequence of; `None` for a root cause.
    pub cause: Option<usize>,
}

impl Finding {
    /// The page whose damage this finding shows: the referencing page for a reference
    /// finding, else the page it names.
    pub fn page_at_fault(&self) -> Option<u64> {
        if self.kind.is_reference() {
            if let [.., referrer, last] = self.path.as_slice() {
                if Some(*last) == self.page {
                    return Some(*referrer);
                }
            }
        }
        self.page
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.page {
            Some(p) => write!(f, "{} page {}: {}", self.kind, p, self.message)?,
            None => write!(f, "{}: {}", self.kind, self.message)?,
        }
        if !self.path.is_empty() {
            let path: Vec<String> = self.path.iter().map(|p| p.to_string()).collect();
            write!(f, " (path {})", path.join(" -> "))?;
        }
        Ok(())
    }
}

/// The result of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Findings, at most `max_findings` of them.
    pub findings: Vec<Finding>,
    /// Whether more findings existed than were kept.
    pub truncated: bool,
    /// Pages examined.
    pub pages_checked: u64,
    /// Keys (values, not buckets) seen.
    pub keys_checked: u64,
    /// Buckets seen.
    pub buckets_checked: u64,
    /// High-water mark: pages in use by the file format (ids below it are valid).
    pub high_water_mark: u64,
    /// Txid of the meta the check ran from.
    pub txid: u64,
}

impl Report {
    /// No findings other than warnings.
    pub fn is_ok(&self) -> bool {
        self.findings.iter().all(|f| f.kind.is_warning())
    }

    /// The findings grouped by root cause, in the order the root causes were found:
    /// each root cause with the consequences it explains.
    pub fn root_causes(&self) -> Vec<RootCause<'_>> {
        let mut out: Vec<RootCause<'_>> = Vec::new();
        let mut slot: HashMap<usize, usize> = HashMap::new();
        for (i, f) in self.findings.iter().enumerate() {
            match f.cause.and_then(|c| slot.get(&c).copied()) {
                Some(g) => {
                    if let Some(group) = out.get_mut(g) {
                        group.consequences.push((i, f));
                    }
                }
                None => {
                    slot.insert(i, out.len());
                    out.push(RootCause {
                        index: i,
                        finding: f,
                        consequences: Vec::new(),
                    });
                }
            }
        }
        out
    }

    /// Puts `finding` first (a finding from outside the walk, such as a damaged
    /// journal), keeping every cause index pointing at the same finding.
    pub fn insert_first(&mut self, mut finding: Finding) {
        finding.cause = None;
        for f in &mut self.findings {
            f.cause = f.cause.map(|c| c + 1);
        }
        self.findings.insert(0, finding);
    }
}

/// One root cause of a [`Report`] and the findings it explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCause<'a> {
    /// Its index in the report's findings.
    pub index: usize,
    /// The root-cause finding (the headline).
    pub finding: &'a Finding,
    /// The consequences: (index in the report's findings, finding), in walk order.
    pub consequences: Vec<(usize, &'a Finding)>,
}

impl RootCause<'_> {
    /// How many consequences of each kind, most frequent first (then by name):
    /// "131 uneven_depth, 3 key_out_of_bounds, 1 cycle".
    pub fn consequence_kinds(&self) -> String {
        let mut counts: Vec<(FindingKind, usize)> = Vec::new();
        for (_, f) in &self.consequences {
            match counts.iter_mut().find(|(k, _)| *k == f.kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((f.kind, 1)),
            }
        }
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Collects findings up to a limit, counts the rest, and links each finding to its
/// root cause (see the module doc).
#[derive(Debug)]
pub struct FindingSink {
    findings: Vec<Finding>,
    max: usize,
    dropped: u64,
    /// Root-cause findings by the page at fault (the first one per page).
    roots: HashMap<u64, usize>,
    /// Pages first reached below a root cause, and that root cause.
    reached_under: HashMap<u64, usize>,
}

impl FindingSink {
    /// A sink keeping at most `max` findings (at least one).
    pub fn new(max: usize) -> Self {
        Self {
            findings: Vec::new(),
            max: max.max(1),
            dropped: 0,
            roots: HashMap::new(),
            reached_under: HashMap::new(),
        }
    }

    /// Records a finding (or counts it as dropped past the limit), linked to the root
    /// cause that explains it, if any.
    pub fn push(&mut self, kind: FindingKind, page: Option<u64>, path: &[u64], message: String) {
        self.push_caused(kind, page, path, message, None);
    }

    /// Like [`push`](Self::push), with a root cause the checker proved by other
    /// evidence (leaked pages whose keys fit exactly one lost subtree) when nothing on
    /// the finding's path names one.
    pub fn push_caused(
        &mut self,
        kind: FindingKind,
        page: Option<u64>,
        path: &[u64],
        message: String,
        cause: Option<usize>,
    ) {
        if self.findings.len() >= self.max {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let mut f = Finding {
            kind,
            page,
            path: path.to_vec(),
            message,
            cause: None,
        };
        let index = self.findings.len();
        f.cause = self
            .cause_of(&f)
            .or(cause.filter(|c| self.findings.get(*c).is_some_and(|r| r.cause.is_none())));
        if f.cause.is_none() {
            if let Some(p) = f.page_at_fault() {
                self.roots.entry(p).or_insert(index);
            }
        }
        debug_assert!(f.cause.is_none_or(|c| c < index));
        self.findings.push(f);
    }

    /// The root cause explaining `f`: one on its path (nearest the root), an earlier
    /// root cause on the same page, the root cause below which a page reached twice
    /// was first reached; a meta fallback is explained by the invalid meta.
    fn cause_of(&self, f: &Finding) -> Option<usize> {
        if f.kind == FindingKind::MetaFallback {
            return self.findings.iter().position(|g| {
                g.kind == FindingKind::MetaInvalid && g.cause.is_none() && g.page != f.page
            });
        }
        let root = |p: &u64| self.roots.get(p).copied();
        let on_path = || f.path.iter().find_map(root);
        let same_page = || f.page_at_fault().as_ref().and_then(root);
        let reached = || match (f.kind, f.page) {
            (FindingKind::MultipleReferences, Some(p)) => self.reached_under.get(&p).copied(),
            _ => None,
        };
        on_path().or_else(same_page).or_else(reached)
    }

    /// The root cause on `path`, if any (nearest the root).
    pub fn cause_along(&self, path: &[u64]) -> Option<usize> {
        if self.roots.is_empty() {
            return None;
        }
        path.iter().find_map(|p| self.roots.get(p).copied())
    }

    /// Notes that the walk reached `page` along `path` (ending at `page`): when a root
    /// cause lies on the path, a later second reference to `page` is its consequence.
    pub fn reached(&mut self, page: u64, path: &[u64]) {
        if let Some(c) = self.cause_along(path) {
            self.reached_under.entry(page).or_insert(c);
        }
    }

    /// Findings kept so far.
    pub fn len(&self) -> usize {
        self.findings.len()
    }

    /// Whether no finding was kept.
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    /// The first root cause kept at index `from` or later: what a checker's step found
    /// wrong at its page, when the step added any.
    pub fn root_since(&self, from: usize) -> Option<usize> {
        (from..self.findings.len())
            .find(|&i| self.findings.get(i).is_some_and(|f| f.cause.is_none()))
    }

    /// Whether the limit has been reached (a checker may stop early).
    pub fn is_full(&self) -> bool {
        self.findings.len() >= self.max
    }

    /// Findings so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Consumes the sink: (findings, truncated).
    pub fn finish(self) -> (Vec<Finding>, bool) {
        (self.findings, self.dropped > 0)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use FindingKind as K;

    #[test]
    fn kind_names_are_unique_snake_case() {
        let mut names: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn findings_link_to_the_root_cause_on_their_path() {
        let mut sink = FindingSink::new(100);
        // Page 282 holds a copy of its ancestor: the first finding about it is the root.
        sink.push(
            K::PageIdMismatch,
            Some(282),
            &[133, 132, 42, 282],
            "copy".into(),
        );
        sink.push(
            K::KeyOutOfBounds,
            Some(282),
            &[133, 132, 42, 282],
            "b".into(),
        );
        sink.reached(130, &[133, 132, 42, 282, 130]);
        // Below it: a cycle back to 42 (at fault: 282), a leaf too deep.
        sink.push(K::Cycle, Some(42), &[133, 132, 42, 282, 42], "c".into());
        sink.push(
            K::UnevenDepth,
            Some(43),
            &[133, 132, 42, 282, 130, 43],
            "d".into(),
        );
        // Page 130 reached again from 132: first reached below 282.
        sink.push(
            K::MultipleReferences,
            Some(130),
            &[133, 132, 130],
            "e".into(),
        );
        // An unrelated cycle elsewhere is its own root; at fault is page 7, not page 5.
        sink.push(K::Cycle, Some(5), &[133, 5, 7, 5], "f".into());
        sink.push(K::KeyOrder, Some(5), &[133, 5], "g".into());
        // Below two root causes: the one nearest the root explains it.
        sink.push(K::KeyOrder, Some(7), &[133, 5, 7], "h".into());
        let (findings, _) = sink.finish();
        let causes: Vec<Option<usize>> = findings.iter().map(|f| f.cause).collect();
        assert_eq!(
            causes,
            [
                None,
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                Some(6)
            ]
        );
        let report = Report {
            findings,
            ..Report::default()
        };
        let groups = report.root_causes();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].consequences.len(), 4);
        assert_eq!(
            groups[0].consequence_kinds(),
            "1 cycle, 1 key_out_of_bounds, 1 multiple_references, 1 uneven_depth"
        );
        let mut report = report;
        report.insert_first(Finding {
            kind: K::Journal,
            page: None,
            path: Vec::new(),
            message: "j".into(),
            cause: None,
        });
        assert_eq!(report.findings[2].cause, Some(1));
        assert_eq!(report.root_causes().len(), 4);
    }

    #[test]
    fn a_meta_fallback_is_explained_by_the_invalid_meta() {
        let mut sink = FindingSink::new(10);
        sink.push(K::MetaInvalid, Some(1), &[], "meta 1".into());
        sink.push(K::MetaFallback, Some(0), &[], "using meta 0".into());
        let (f, _) = sink.finish();
        assert_eq!(f[1].cause, Some(0));
    }

    #[test]
    fn sink_truncates_and_reports() {
        let mut sink = FindingSink::new(2);
        for i in 0..5 {
            sink.push(FindingKind::Checksum, Some(i), &[1, i], format!("p{i}"));
        }
        assert!(sink.is_full());
        let (f, truncated) = sink.finish();
        assert_eq!(f.len(), 2);
        assert!(truncated);
    }
}
