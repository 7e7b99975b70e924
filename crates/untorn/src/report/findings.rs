//! Findings: what a checker reports, one [`FindingKind`] vocabulary for both formats so
//! that `untorn check --json` has one schema (documented in `docs/check.md`).

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
        }
    }

    /// Whether this kind is informational (does not make a check fail).
    pub fn is_warning(self) -> bool {
        matches!(self, FindingKind::MetaFallback)
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
}

/// Collects findings up to a limit; counts the rest.
#[derive(Debug)]
pub struct FindingSink {
    findings: Vec<Finding>,
    max: usize,
    dropped: u64,
}

impl FindingSink {
    /// A sink keeping at most `max` findings (at least one).
    pub fn new(max: usize) -> Self {
        Self {
            findings: Vec::new(),
            max: max.max(1),
            dropped: 0,
        }
    }

    /// Records a finding (or counts it as dropped past the limit).
    pub fn push(&mut self, kind: FindingKind, page: Option<u64>, path: &[u64], message: String) {
        if self.findings.len() < self.max {
            self.findings.push(Finding {
                kind,
                page,
                path: path.to_vec(),
                message,
            });
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
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
mod tests {
    use super::*;

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
