//! The finding vocabulary shared by the native checker, the bbolt checker and the CLI.
//!
//! A checker produces a [`Report`]: a list of [`Finding`]s (kind, page, path from the
//! root, message) plus counters. Both formats use the same [`FindingKind`] names so that
//! `untorn check --json` has one schema (documented in `docs/check.md`). Page-level
//! summaries for `untorn pages` and `untorn map` use [`PageInfo`]; `untorn stats` prints
//! one [`Stats`] for both formats.

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
    /// The page type is invalid, or invalid at this position in the tree.
    InvalidType,
    /// An element count, offset or length lies outside the page.
    ElementBounds,
    /// Keys within one page are not strictly ascending.
    KeyOrder,
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
        FindingKind::InvalidType,
        FindingKind::ElementBounds,
        FindingKind::KeyOrder,
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
            FindingKind::InvalidType => "invalid_type",
            FindingKind::ElementBounds => "element_bounds",
            FindingKind::KeyOrder => "key_order",
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

/// What a page is, for `pages` and `map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageKind {
    /// A meta page.
    Meta,
    /// A branch (interior) node.
    Branch,
    /// A leaf node.
    Leaf,
    /// A continuation page of a multi-page node or overflow value.
    Overflow,
    /// The freelist.
    Freelist,
    /// A free page (content irrelevant).
    Free,
    /// Unreadable or unrecognised.
    Unknown,
}

impl PageKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Meta => "meta",
            PageKind::Branch => "branch",
            PageKind::Leaf => "leaf",
            PageKind::Overflow => "overflow",
            PageKind::Freelist => "freelist",
            PageKind::Free => "free",
            PageKind::Unknown => "unknown",
        }
    }
}

/// Where a page stands relative to the tree and the freelist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageState {
    /// Reachable from the active meta exactly once (or is a meta page).
    Reachable,
    /// In the freelist (or pending free).
    Free,
    /// Neither reachable nor free.
    Leaked,
    /// Reachable but failed verification, or referenced in a conflicting way.
    Corrupt,
}

impl PageState {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PageState::Reachable => "reachable",
            PageState::Free => "free",
            PageState::Leaked => "leaked",
            PageState::Corrupt => "corrupt",
        }
    }
}

/// One row of `untorn pages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    /// Page id.
    pub id: u64,
    /// What the page is.
    pub kind: PageKind,
    /// Elements in the page (keys, children or free ids).
    pub items: u64,
    /// Extra pages after this one belonging to it (multi-page node or overflow value).
    pub overflow: u64,
    /// Reachability state.
    pub state: PageState,
}

/// What `untorn stats` prints, for either format. Page counts count page ids (a 3-page
/// leaf extent counts as 3 leaf pages; a bbolt node's overflow pages count as overflow).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Bytes per page.
    pub page_size: usize,
    /// Txid of the snapshot.
    pub txid: u64,
    /// High-water mark (page ids below it belong to the file format).
    pub high_water: u64,
    /// Length of the data file in pages.
    pub file_pages: u64,
    /// Meta pages (always 2).
    pub meta_pages: u64,
    /// Pages in branch extents.
    pub branch_pages: u64,
    /// Pages in leaf extents.
    pub leaf_pages: u64,
    /// Pages in overflow-value extents.
    pub overflow_pages: u64,
    /// Pages in the freelist extent.
    pub freelist_pages: u64,
    /// Pages listed as free.
    pub free_pages: u64,
    /// Pages neither reachable nor free.
    pub leaked_pages: u64,
    /// Reachable pages that failed verification.
    pub corrupt_pages: u64,
    /// Deepest tree, in levels (a single leaf is depth 1).
    pub tree_depth_max: u32,
    /// Buckets (not counting the root bucket).
    pub buckets: u64,
    /// Key/value pairs in all buckets.
    pub keys: u64,
    /// Bytes of keys of key/value pairs.
    pub key_bytes: u64,
    /// Bytes of values (inline and overflow).
    pub value_bytes: u64,
    /// Header plus payload bytes used in branch and leaf extents.
    pub node_bytes_used: u64,
    /// Bytes available in branch and leaf extents (extent size).
    pub node_bytes_available: u64,
    /// Findings the walk produced (see `check` for details).
    pub findings: u64,
}

impl Stats {
    /// Bytes used over bytes available in branch and leaf pages (0.0 when there are none).
    pub fn fill_factor(&self) -> f64 {
        if self.node_bytes_available == 0 {
            0.0
        } else {
            self.node_bytes_used as f64 / self.node_bytes_available as f64
        }
    }
}

/// One page as `untorn page` shows it, for either format: the header as read, whether
/// the page verifies, its decoded elements and its raw bytes. Made by
/// [`crate::check::describe_page`] and by `untorn_bbolt::describe_page`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageDescription {
    /// The page id asked for.
    pub id: u64,
    /// Why the page could not be read at all (then nothing else is set).
    pub read_error: Option<String>,
    /// The header fields, when the bytes hold a recognisable header.
    pub header: Option<PageHeaderView>,
    /// `"ok"`, or why the page does not verify (or why no header was recognised).
    pub verify: String,
    /// The decoded elements (keys and values, children, free runs).
    pub elements: Vec<PageElement>,
    /// Why the elements could not be decoded, if they could not.
    pub elements_error: Option<String>,
    /// The decoded meta of a meta page.
    pub meta: Option<MetaView>,
    /// The page's bytes (its whole extent when the header names one).
    pub raw: Vec<u8>,
}

impl PageDescription {
    /// A page that could not be read.
    pub fn unreadable(id: u64, why: impl Into<String>) -> Self {
        PageDescription {
            id,
            read_error: Some(why.into()),
            header: None,
            verify: String::new(),
            elements: Vec::new(),
            elements_error: None,
            meta: None,
            raw: Vec::new(),
        }
    }
}

/// The header fields of a page as read (unverified). Fields a format does not have are
/// `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageHeaderView {
    /// What the header says the page is.
    pub kind: PageKind,
    /// The id the page says it has.
    pub page_id: u64,
    /// The txid that wrote the page (untorn).
    pub txid: Option<u64>,
    /// The stored checksum (untorn).
    pub checksum: Option<u32>,
    /// The raw type flags (bbolt).
    pub flags: Option<u16>,
    /// Pages in the extent (untorn).
    pub extent_pages: Option<u32>,
    /// Extra pages after this one (bbolt).
    pub overflow: Option<u32>,
    /// Element count.
    pub count: u32,
    /// Payload bytes after the header (untorn).
    pub payload_len: Option<u64>,
}

/// One decoded element of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageElement {
    /// A key and its value.
    Value {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// A key whose value lives in an overflow extent (untorn).
    Overflow {
        /// The key.
        key: Vec<u8>,
        /// The extent's first page.
        page: u64,
        /// The txid that wrote the extent.
        txid: u64,
        /// Pages in the extent.
        extent_pages: u32,
        /// The value's length.
        len: u64,
    },
    /// A key naming a nested bucket.
    Bucket {
        /// The bucket's name.
        key: Vec<u8>,
        /// Its root page (0: empty, or inline in bbolt).
        root: u64,
        /// The txid that wrote its root (untorn).
        root_txid: Option<u64>,
        /// Its sequence counter.
        sequence: u64,
        /// Key/value pairs directly in it (untorn).
        count: Option<u64>,
        /// Whether it is stored inline in the leaf (bbolt).
        inline: Option<bool>,
    },
    /// A separator key and the child page it leads to.
    Child {
        /// The separator key.
        key: Vec<u8>,
        /// The child page.
        page: u64,
        /// The txid the parent expects of the child (untorn).
        txid: Option<u64>,
        /// The checksum the parent expects of the child (untorn).
        checksum: Option<u32>,
        /// The child's extent length (untorn).
        extent_pages: Option<u32>,
    },
    /// A run of free pages.
    FreeRun {
        /// The first free page.
        start: u64,
        /// Pages in the run.
        len: u64,
    },
    /// An element that could not be decoded.
    Error {
        /// Its key, if that could be read.
        key: Option<Vec<u8>>,
        /// What is wrong.
        message: String,
    },
}

/// The decoded meta of a meta page. Fields a format does not have are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaView {
    /// The commit the meta describes.
    pub txid: u64,
    /// The file's page size.
    pub page_size: u32,
    /// The root bucket's root page.
    pub root: u64,
    /// The freelist page (`None`: bbolt's freelist is not synced).
    pub freelist: Option<u64>,
    /// The high-water mark.
    pub high_water: u64,
    /// The root bucket's sequence (bbolt).
    pub sequence: Option<u64>,
    /// The meta's stored checksum (bbolt's FNV-1a).
    pub checksum: Option<u64>,
}

/// One key/value pair read out of a database, with its bucket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Bucket path from the root (empty for keys stored directly in the root bucket,
    /// which bbolt allows).
    pub bucket: Vec<Vec<u8>>,
    /// Key.
    pub key: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
}

/// What a dump or a salvage yields, in key order: buckets (so that empty buckets and
/// sequences survive) and key/value pairs, a bucket before its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpItem {
    /// A bucket at this path, with its sequence.
    Bucket {
        /// Path including the bucket's own name.
        path: Vec<Vec<u8>>,
        /// Bucket sequence.
        sequence: u64,
    },
    /// A key/value pair.
    Pair(Pair),
}

/// A range of data a salvage could not read, in the user's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lost {
    /// The bucket the data belonged to.
    pub bucket: Vec<Vec<u8>>,
    /// The page that failed, when known.
    pub page: Option<u64>,
    /// The page that referenced it, when known.
    pub parent: Option<u64>,
    /// Keys from here (inclusive), when known.
    pub lower: Option<Vec<u8>>,
    /// Keys up to here (exclusive), when known.
    pub upper: Option<Vec<u8>>,
    /// Keys after this one (the last key read before the damage), when known.
    pub after: Option<Vec<u8>>,
    /// Why.
    pub reason: String,
}

/// What a salvage recovered and lost, for either format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageSummary {
    /// Key/value pairs recovered.
    pub keys_recovered: u64,
    /// Buckets recovered (not counting the root bucket).
    pub buckets_recovered: u64,
    /// What could not be read.
    pub lost: Vec<Lost>,
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
