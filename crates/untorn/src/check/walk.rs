//! The walk behind [`check`], [`page_infos`] and [`stats`].
//!
//! One pass, in this order:
//!
//! 1. Both meta slots are decoded (`MetaInvalid`, `MetaFallback`; `metas.rs`).
//! 2. The freelist extent is verified and its runs marked free (`FreelistDuplicate`,
//!    `FreelistOutOfRange`, `FreelistCorrupt`; `freelist.rs`).
//! 3. The root bucket's tree and every bucket tree below it are walked depth-first with
//!    an explicit stack. Each reference is *claimed* before the page is read: bounds
//!    (`OutOfBounds`, `OverflowBounds`), a page on the current stack (`Cycle`), a page
//!    reached before (`MultipleReferences`), a free page (`ReachableFreed`). Then the page
//!    is read and verified (`Checksum`, `ZeroedPage`, `PageIdMismatch`, `ParentMismatch`,
//!    `WrongTree`, `InvalidType`, `ElementBounds`, `KeyOrder`, `KeyPrefix`) and its keys
//!    are checked against the
//!    bounds its ancestors give it (`KeyOutOfBounds`), its depth against the tree's other
//!    leaves (`UnevenDepth`), and each bucket's entry count against its header
//!    (`BucketHeader`; `tree.rs`).
//! 4. Every page id in `[2, high_water)` that is neither reachable nor free is reported,
//!    one finding per run of consecutive pages (`Unreachable`; `pages.rs`).
//!
//! This file holds the walk's state and what every step shares: claiming a reference,
//! reading and verifying a page, and recording findings.
//!
//! State per page is one flag byte in a map sized by the high-water mark, which is
//! bounded by the file size (`limits::MAX_PAGES_BEYOND_FILE`); a damaged page is reported once
//! and never descended into, so the cost is linear in the file size.

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    check_ref, peek_extent_pages, verify_page, BucketHeader, BucketId, Meta, PageHeader, PageRef,
};
use crate::limits::{MAX_EXTENT_BYTES, MAX_PAGES_BEYOND_FILE};
use crate::report::{FindingKind, FindingSink, PageInfo, PageKind, Report, Stats};

use super::flags::PageFlags;
use super::options::{CheckOptions, CheckProgress};
use super::source::CheckSource;

/// Progress callback interval.
const PROGRESS_EVERY_PAGES: u64 = 512;

// Per-page flags.
pub(super) const REACHABLE: u8 = 1;
pub(super) const FREE: u8 = 2;
pub(super) const ON_STACK: u8 = 4;
pub(super) const CORRUPT: u8 = 8;
pub(super) const REPORTED: u8 = 16;
pub(super) const CONTINUATION: u8 = 32;

/// Verifies the snapshot `src` and returns every finding (up to `opts.max_findings`).
pub fn check(src: &dyn CheckSource, opts: CheckOptions) -> Result<Report> {
    let walk = Walk::run(src, opts, false)?;
    Ok(walk.into_report())
}

/// [`check`] plus one [`PageInfo`] per page id below the high-water mark, from one walk
/// (what `untorn map` needs).
pub fn check_with_pages(
    src: &dyn CheckSource,
    opts: CheckOptions,
) -> Result<(Report, Vec<PageInfo>)> {
    let walk = Walk::run(src, opts, true)?;
    let infos = walk.page_infos();
    Ok((walk.into_report(), infos))
}

/// One [`PageInfo`] per page id below the high-water mark: kind, items, extra extent
/// pages and state (reachable, free, leaked, corrupt).
pub fn page_infos(src: &dyn CheckSource) -> Result<Vec<PageInfo>> {
    Ok(check_with_pages(src, CheckOptions::default())?.1)
}

/// Space and shape statistics of the snapshot (the same walk as [`check`]).
pub fn stats(src: &dyn CheckSource) -> Result<Stats> {
    let walk = Walk::run(src, CheckOptions::default(), false)?;
    let mut s = walk.stats.clone();
    s.findings = walk.sink.findings().len() as u64;
    Ok(s)
}

/// A child the walk will visit from a frame.
#[derive(Debug, Clone)]
pub(super) enum Child {
    /// A branch's child node with the key bounds `[lo, hi)` it must respect.
    Node {
        r: PageRef,
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
    },
    /// A bucket stored in a leaf: its tree is walked next.
    Bucket { name: Vec<u8>, header: BucketHeader },
}

#[derive(Debug)]
pub(super) enum Frame {
    /// A verified branch or leaf whose children are being visited.
    Node {
        page: u64,
        depth: u32,
        children: Vec<Child>,
        next: usize,
    },
    /// Marks the end of a bucket's tree: its counts are compared with the header.
    EndTree,
}

/// Per-tree (per-bucket) accounting.
#[derive(Debug)]
pub(super) struct Tree {
    /// The bucket's name, for messages (empty for the root bucket).
    pub(super) name: Vec<u8>,
    /// The id every page of the tree must carry (`None`: not known, not checked).
    pub(super) id: Option<BucketId>,
    /// The root bucket holds only buckets.
    pub(super) is_root_bucket: bool,
    /// Entry count from the bucket header, if there is one.
    pub(super) expected_count: Option<u64>,
    /// Leaf page holding the bucket header.
    pub(super) header_page: Option<u64>,
    pub(super) keys: u64,
    pub(super) leaf_depth: Option<u32>,
    pub(super) uneven_reported: bool,
    /// Some page of the tree could not be walked: counts are meaningless.
    pub(super) damaged: bool,
}

impl Tree {
    pub(super) fn new(
        name: Vec<u8>,
        id: Option<BucketId>,
        is_root_bucket: bool,
        expected: Option<u64>,
        header: Option<u64>,
    ) -> Self {
        Tree {
            name,
            id,
            is_root_bucket,
            expected_count: expected,
            header_page: header,
            keys: 0,
            leaf_depth: None,
            uneven_reported: false,
            damaged: false,
        }
    }
}

/// What a page record says, for `page_infos`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Record {
    pub(super) kind: PageKind,
    pub(super) items: u64,
    pub(super) overflow: u64,
}

/// Which bounds finding a claim reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefKind {
    Node,
    Overflow,
    Freelist,
}

pub(super) struct Walk<'a> {
    pub(super) src: &'a dyn CheckSource,
    pub(super) page_size: usize,
    pub(super) high_water: u64,
    pub(super) meta: Meta,
    pub(super) flags: PageFlags,
    pub(super) records: Option<Vec<Option<Record>>>,
    pub(super) sink: FindingSink,
    pub(super) stack: Vec<Frame>,
    pub(super) trees: Vec<Tree>,
    pub(super) stats: Stats,
    pub(super) report: Report,
    pub(super) progress: Option<Box<dyn FnMut(CheckProgress) -> bool + Send>>,
    pub(super) pages_done: u64,
    pub(super) next_progress: u64,
    /// Leak accounting is meaningful (full walk, freelist readable).
    pub(super) account_leaks: bool,
    /// Not a `from_page` walk: metas and freelist were checked.
    pub(super) full_walk: bool,
    /// Bucket ids seen so far, with the page holding each header (ids are unique).
    pub(super) bucket_ids: std::collections::HashMap<BucketId, Option<u64>>,
    /// Root causes that cut a subtree off, with the key range the subtree covered
    /// (leaked pages whose keys fit exactly one of them are its consequences).
    pub(super) lost: Vec<LostSubtree>,
}

/// A subtree the walk could not read: the root cause (an index into the findings), the
/// tree it belonged to (when known) and the key range its parent gave it (lower
/// inclusive, upper exclusive).
pub(super) struct LostSubtree {
    pub(super) cause: usize,
    pub(super) tree: Option<BucketId>,
    pub(super) lower: Option<Vec<u8>>,
    pub(super) upper: Option<Vec<u8>>,
}

impl LostSubtree {
    /// Whether keys `first..=last` lie inside the range.
    pub(super) fn holds(&self, first: &[u8], last: &[u8]) -> bool {
        self.lower.as_deref().is_none_or(|lo| first >= lo)
            && self.upper.as_deref().is_none_or(|hi| last < hi)
    }
}

pub(super) fn short_name(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    if s.chars().count() > 48 {
        let mut t: String = s.chars().take(48).collect();
        t.push('…');
        t
    } else {
        s.into_owned()
    }
}

impl<'a> Walk<'a> {
    pub(super) fn run(
        src: &'a dyn CheckSource,
        opts: CheckOptions,
        collect: bool,
    ) -> Result<Walk<'a>> {
        let page_size = src.page_size();
        let meta = src.meta();
        let file_pages = src.file_pages().map_err(Error::from_io)?;
        let mut sink = FindingSink::new(opts.max_findings);
        let limit = file_pages.saturating_add(MAX_PAGES_BEYOND_FILE).max(2);
        let mut high_water = meta.high_water.get().max(2);
        if high_water > limit {
            sink.push(
                FindingKind::OutOfBounds,
                None,
                &[],
                format!(
                    "high-water mark {} is absurd for a file of {file_pages} pages; checking only pages below {limit}",
                    meta.high_water
                ),
            );
            high_water = limit;
        }
        let len = usize::try_from(high_water).map_err(|_| {
            Error::InvalidArgument(format!("high-water mark {high_water} does not fit memory"))
        })?;
        let mut walk = Walk {
            src,
            page_size,
            high_water,
            meta,
            flags: PageFlags::new(len),
            records: collect.then(|| vec![None; len]),
            sink,
            stack: Vec::new(),
            trees: Vec::new(),
            stats: Stats {
                page_size,
                txid: meta.txid.get(),
                high_water: meta.high_water.get(),
                file_pages,
                meta_pages: 2,
                ..Stats::default()
            },
            report: Report {
                high_water_mark: meta.high_water.get(),
                txid: meta.txid.get(),
                ..Report::default()
            },
            progress: opts.progress,
            pages_done: 0,
            next_progress: PROGRESS_EVERY_PAGES,
            account_leaks: opts.from_page.is_none(),
            full_walk: opts.from_page.is_none(),
            bucket_ids: std::collections::HashMap::new(),
            lost: Vec::new(),
        };
        walk.report_progress(true)?;
        match opts.from_page {
            None => {
                walk.check_metas();
                walk.walk_freelist();
                walk.trees.push(Tree::new(
                    Vec::new(),
                    Some(BucketId::ROOT),
                    true,
                    None,
                    None,
                ));
                walk.stack.push(Frame::EndTree);
                if !meta.root.is_null() {
                    walk.visit_node(meta.root, None, None, 0)?;
                }
            }
            Some(id) => walk.start_from(id)?,
        }
        walk.drain()?;
        if walk.account_leaks {
            walk.find_leaks();
        }
        walk.stats.corrupt_pages = walk
            .flags
            .iter()
            .filter(|(_, f)| f & CORRUPT != 0 && f & REACHABLE != 0)
            .count() as u64;
        walk.report_progress(true)?;
        Ok(walk)
    }

    // ---- flags -------------------------------------------------------------------

    pub(super) fn flag(&self, page: u64) -> u8 {
        self.flags.get(page)
    }

    pub(super) fn set_flag(&mut self, page: u64, f: u8) {
        self.flags.set(page, f);
    }

    pub(super) fn clear_flag(&mut self, page: u64, f: u8) {
        self.flags.clear(page, f);
    }

    pub(super) fn record(&mut self, page: u64, kind: PageKind, items: u64, extent: u32) {
        let i = self.flags.index(page);
        if let (Some(recs), Some(i)) = (self.records.as_mut(), i) {
            if let Some(slot) = recs.get_mut(i) {
                *slot = Some(Record {
                    kind,
                    items,
                    overflow: u64::from(extent.saturating_sub(1)),
                });
            }
        }
    }

    // ---- findings ----------------------------------------------------------------

    /// Page ids of the node frames on the stack, root first, then `extra`.
    pub(super) fn path_with(&self, extra: &[u64]) -> Vec<u64> {
        let mut path: Vec<u64> = self
            .stack
            .iter()
            .filter_map(|f| match f {
                Frame::Node { page, .. } => Some(*page),
                Frame::EndTree => None,
            })
            .collect();
        path.extend_from_slice(extra);
        path
    }

    pub(super) fn push(
        &mut self,
        kind: FindingKind,
        page: Option<u64>,
        extra: &[u64],
        msg: String,
    ) {
        if let Some(p) = page {
            // A page named by an error finding is corrupt for `pages`/`map` (a leaked
            // run stays "leaked": nothing is wrong with its first page as such).
            if !kind.is_warning() && kind != FindingKind::Unreachable {
                self.set_flag(p, CORRUPT);
            }
        }
        if self.sink.is_full() {
            self.sink.push(kind, page, &[], msg);
        } else {
            let path = self.path_with(extra);
            self.sink.push(kind, page, &path, msg);
        }
    }

    /// Records that the subtree in `lower..upper` is cut off by the root cause this
    /// step found (the first one kept since finding `since`), if it found one.
    pub(super) fn note_lost(
        &mut self,
        since: usize,
        lower: &Option<Vec<u8>>,
        upper: &Option<Vec<u8>>,
    ) {
        if let Some(cause) = self.sink.root_since(since) {
            self.lost.push(LostSubtree {
                cause,
                tree: self.trees.last().and_then(|t| t.id),
                lower: lower.clone(),
                upper: upper.clone(),
            });
        }
    }

    pub(super) fn mark_damaged(&mut self) {
        if let Some(t) = self.trees.last_mut() {
            t.damaged = true;
        }
    }

    pub(super) fn report_progress(&mut self, force: bool) -> Result<()> {
        if !force && self.pages_done < self.next_progress {
            return Ok(());
        }
        self.next_progress = self.pages_done.saturating_add(PROGRESS_EVERY_PAGES);
        if let Some(cb) = self.progress.as_mut() {
            let p = CheckProgress {
                pages_done: self.pages_done.min(self.high_water),
                pages_total: self.high_water,
            };
            if !cb(p) {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }

    // ---- claiming and reading pages -----------------------------------------------

    /// Checks a reference before its page is read and marks its pages reachable.
    /// Returns false if the page must not be read (out of bounds, cycle, reached twice).
    pub(super) fn claim(&mut self, r: PageRef, kind: RefKind, via: &[u64]) -> bool {
        let id = r.page_id.get();
        let extent_bytes = u64::from(r.extent_pages).saturating_mul(self.page_size as u64);
        let end = id
            .checked_add(u64::from(r.extent_pages))
            .filter(|e| *e <= self.high_water)
            .filter(|_| id >= 2 && r.extent_pages != 0 && extent_bytes <= MAX_EXTENT_BYTES);
        let Some(end) = end else {
            let fk = match kind {
                RefKind::Node => FindingKind::OutOfBounds,
                RefKind::Overflow => FindingKind::OverflowBounds,
                RefKind::Freelist => FindingKind::FreelistCorrupt,
            };
            let mut path = via.to_vec();
            path.push(id);
            self.push(
                fk,
                Some(id),
                &path,
                format!(
                    "reference to page {id} with extent {} lies outside pages 2..{}",
                    r.extent_pages, self.high_water
                ),
            );
            self.mark_damaged();
            return false;
        };
        let mut path = via.to_vec();
        path.push(id);
        if self.flag(id) & ON_STACK != 0 {
            let from = self
                .path_with(via)
                .last()
                .map_or_else(|| "the meta".to_owned(), |p| format!("page {p}"));
            self.push(
                FindingKind::Cycle,
                Some(id),
                &path,
                format!("{from} references page {id}, which is its own ancestor (a cycle)"),
            );
            self.mark_damaged();
            return false;
        }
        if let Some(p) = (id..end).find(|&p| self.flag(p) & REACHABLE != 0) {
            if self.flag(p) & REPORTED == 0 {
                self.set_flag(p, REPORTED);
                self.push(
                    FindingKind::MultipleReferences,
                    Some(p),
                    &path,
                    format!("page {p} is referenced more than once (again via page {id})"),
                );
            }
            self.mark_damaged();
            return false;
        }
        let mut freed = 0u64;
        for p in id..end {
            let f = self.flag(p);
            if f & FREE != 0 {
                freed += 1;
            }
            self.set_flag(
                p,
                if p == id {
                    REACHABLE
                } else {
                    REACHABLE | CONTINUATION
                },
            );
        }
        if freed > 0 {
            self.push(
                FindingKind::ReachableFreed,
                Some(id),
                &path,
                format!(
                    "reachable extent {id}+{} has {} in the freelist",
                    r.extent_pages,
                    crate::words::count(freed, "page")
                ),
            );
        }
        self.pages_done = self.pages_done.saturating_add(u64::from(r.extent_pages));
        true
    }

    /// Reads and verifies a claimed extent against its parent's reference.
    /// Reads the page `r` refers to and verifies it, its match with `r` and, for a page
    /// of tree `tree`, its `tree_id`.
    pub(super) fn read_verified(
        &mut self,
        r: PageRef,
        via: &[u64],
        tree: Option<BucketId>,
    ) -> Option<(Vec<u8>, PageHeader)> {
        let id = r.page_id.get();
        let mut path = via.to_vec();
        path.push(id);
        let bytes = match self.src.read_raw(r.page_id, r.extent_pages) {
            Ok(b) => b,
            Err(e) => {
                self.push(
                    FindingKind::ReadError,
                    Some(id),
                    &path,
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        // The tree references it, so the file once held it.
                        format!(
                            "the file is truncated: page {id} (+{}) lies past its end: {e}",
                            r.extent_pages
                        )
                    } else {
                        format!("page {id} (+{}) could not be read: {e}", r.extent_pages)
                    },
                );
                self.mark_damaged();
                return None;
            }
        };
        match verify_page(&bytes, r.page_id, self.page_size) {
            Ok(h) => {
                if let Err(e) = check_ref(&h, &r) {
                    self.push(
                        FindingKind::ParentMismatch,
                        Some(id),
                        &path,
                        error_detail(&e),
                    );
                    self.mark_damaged();
                    return None;
                }
                if let Some(t) = tree.filter(|t| *t != h.tree_id) {
                    self.push(
                        FindingKind::WrongTree,
                        Some(id),
                        &path,
                        format!(
                            "page {id} belongs to tree {}, but bucket tree {t} references it",
                            h.tree_id
                        ),
                    );
                    self.mark_damaged();
                    return None;
                }
                Some((bytes, h))
            }
            Err(e) => {
                let kind = self
                    .stale_extent(&bytes, r)
                    .unwrap_or_else(|| finding_kind(&e));
                let msg = if kind == FindingKind::ParentMismatch {
                    format!(
                        "page {id} is a valid page with extent {} pages, the parent expects {} (stale or lost write)",
                        peek_extent_pages(&bytes).unwrap_or(0),
                        r.extent_pages
                    )
                } else {
                    error_detail(&e)
                };
                self.push(kind, Some(id), &path, msg);
                self.mark_damaged();
                None
            }
        }
    }

    /// When verification failed and the page claims another extent length than its
    /// parent's reference, re-reads it at its own length: if it verifies there, it is a
    /// stale page (ParentMismatch), not garbage.
    pub(super) fn stale_extent(&self, bytes: &[u8], r: PageRef) -> Option<FindingKind> {
        let own = peek_extent_pages(bytes)?;
        if own == r.extent_pages || own == 0 {
            return None;
        }
        let end = r.page_id.get().checked_add(u64::from(own))?;
        let own_bytes = u64::from(own).saturating_mul(self.page_size as u64);
        if end > self.high_water || own_bytes > MAX_EXTENT_BYTES {
            return None;
        }
        let b = self.src.read_raw(r.page_id, own).ok()?;
        verify_page(&b, r.page_id, self.page_size)
            .ok()
            .map(|_| FindingKind::ParentMismatch)
    }

    // ---- leaks and results ---------------------------------------------------------------

    pub(super) fn into_report(self) -> Report {
        let mut report = self.report;
        let (findings, truncated) = self.sink.finish();
        report.findings = findings;
        report.truncated = truncated;
        if self.full_walk {
            // A full check verified both meta pages too.
            report.pages_checked += 2;
        }
        report
    }
}

/// Maps an engine corruption error to the finding vocabulary.
pub(super) fn finding_kind(e: &Error) -> FindingKind {
    match e {
        Error::Corrupted { kind, .. } => match kind {
            CorruptionKind::Checksum => FindingKind::Checksum,
            CorruptionKind::Zeroed => FindingKind::ZeroedPage,
            CorruptionKind::PageId => FindingKind::PageIdMismatch,
            CorruptionKind::ParentMismatch => FindingKind::ParentMismatch,
            CorruptionKind::PageType => FindingKind::InvalidType,
            CorruptionKind::Bounds => FindingKind::ElementBounds,
            CorruptionKind::KeyOrder => FindingKind::KeyOrder,
            CorruptionKind::OutOfRange => FindingKind::OutOfBounds,
            CorruptionKind::Structure => FindingKind::TooDeep,
            CorruptionKind::Meta => FindingKind::MetaInvalid,
            CorruptionKind::Journal => FindingKind::Journal,
            CorruptionKind::Invalid => FindingKind::ElementBounds,
            CorruptionKind::KeyPrefix => FindingKind::KeyPrefix,
        },
        Error::Io(_) => FindingKind::ReadError,
        Error::UnsupportedVersion(_) => FindingKind::MetaInvalid,
        _ => FindingKind::ElementBounds,
    }
}

/// The detail of a corruption error without the "corrupted page N" prefix.
pub(super) fn error_detail(e: &Error) -> String {
    match e {
        Error::Corrupted { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// A key for messages: UTF-8 text when printable, else hex; at most 32 bytes.
pub(super) fn hex_prefix(key: &[u8]) -> String {
    let shown = key.get(..key.len().min(32)).unwrap_or(key);
    let more = if key.len() > 32 { "…" } else { "" };
    match std::str::from_utf8(shown) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}{more}"),
        _ => {
            let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more}")
        }
    }
}
