//! The walk behind [`check`], [`page_infos`] and [`stats`].
//!
//! One pass, in this order:
//!
//! 1. Both meta slots are decoded (`MetaInvalid`, `MetaFallback`).
//! 2. The freelist extent is verified and its runs marked free (`FreelistDuplicate`,
//!    `FreelistOutOfRange`, `FreelistCorrupt`).
//! 3. The root bucket's tree and every bucket tree below it are walked depth-first with
//!    an explicit stack. Each reference is *claimed* before the page is read: bounds
//!    (`OutOfBounds`, `OverflowBounds`), a page on the current stack (`Cycle`), a page
//!    reached before (`MultipleReferences`), a free page (`ReachableFreed`). Then the page
//!    is read and verified (`Checksum`, `ZeroedPage`, `PageIdMismatch`, `ParentMismatch`,
//!    `InvalidType`, `ElementBounds`, `KeyOrder`) and its keys are checked against the
//!    bounds its ancestors give it (`KeyOutOfBounds`), its depth against the tree's other
//!    leaves (`UnevenDepth`), and each bucket's entry count against its header
//!    (`BucketHeader`).
//! 4. Every page id in `[2, high_water)` that is neither reachable nor free is reported,
//!    one finding per run of consecutive pages (`Unreachable`).
//!
//! State per page is one flag byte in a map sized by the high-water mark, which is
//! bounded by the file size ([`MAX_PAGES_BEYOND_FILE`]); a damaged page is reported once
//! and never descended into, so the cost is linear in the file size.

use crate::error::{CorruptionKind, Error, Result};
use crate::format::meta::claimed_txid;
use crate::format::{
    check_ref, decode_header, overflow_value, peek_extent_pages, verify_page, BucketHeader,
    LeafValue, Meta, NodeView, PageHeader, PageId, PageRef, PageType, TxId, PAGE_HEADER_SIZE,
};
use crate::limits::{
    MAX_BUCKET_DEPTH, MAX_EXTENT_BYTES, MAX_PAGES_BEYOND_FILE, MAX_STACK_FRAMES, MAX_TREE_DEPTH,
};
use crate::report::{FindingKind, FindingSink, PageInfo, PageKind, PageState, Report};

use super::options::{CheckOptions, CheckProgress};
use super::source::CheckSource;
use super::stats::Stats;

/// Progress callback interval.
const PROGRESS_EVERY_PAGES: u64 = 512;

// Per-page flags.
const REACHABLE: u8 = 1;
const FREE: u8 = 2;
const ON_STACK: u8 = 4;
const CORRUPT: u8 = 8;
const REPORTED: u8 = 16;
const CONTINUATION: u8 = 32;

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
enum Child {
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
enum Frame {
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
struct Tree {
    /// The bucket's name, for messages (empty for the root bucket).
    name: Vec<u8>,
    /// The root bucket holds only buckets.
    is_root_bucket: bool,
    /// Entry count from the bucket header, if there is one.
    expected_count: Option<u64>,
    /// Leaf page holding the bucket header.
    header_page: Option<u64>,
    keys: u64,
    leaf_depth: Option<u32>,
    uneven_reported: bool,
    /// Some page of the tree could not be walked: counts are meaningless.
    damaged: bool,
}

impl Tree {
    fn new(
        name: Vec<u8>,
        is_root_bucket: bool,
        expected: Option<u64>,
        header: Option<u64>,
    ) -> Self {
        Tree {
            name,
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
struct Record {
    kind: PageKind,
    items: u64,
    overflow: u64,
}

/// Which bounds finding a claim reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Node,
    Overflow,
    Freelist,
}

struct Walk<'a> {
    src: &'a dyn CheckSource,
    page_size: usize,
    high_water: u64,
    meta: Meta,
    flags: Vec<u8>,
    records: Option<Vec<Option<Record>>>,
    sink: FindingSink,
    stack: Vec<Frame>,
    trees: Vec<Tree>,
    stats: Stats,
    report: Report,
    progress: Option<Box<dyn FnMut(CheckProgress) -> bool + Send>>,
    pages_done: u64,
    next_progress: u64,
    /// Leak accounting is meaningful (full walk, freelist readable).
    account_leaks: bool,
    /// Not a `from_page` walk: metas and freelist were checked.
    full_walk: bool,
}

fn short_name(name: &[u8]) -> String {
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
    fn run(src: &'a dyn CheckSource, opts: CheckOptions, collect: bool) -> Result<Walk<'a>> {
        let page_size = src.page_size();
        let meta = src.meta();
        let file_pages = src.file_pages();
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
            flags: vec![0u8; len],
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
        };
        walk.report_progress(true)?;
        match opts.from_page {
            None => {
                walk.check_metas();
                walk.walk_freelist();
                walk.trees.push(Tree::new(Vec::new(), true, None, None));
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
            .filter(|&&f| f & CORRUPT != 0 && f & REACHABLE != 0)
            .count() as u64;
        walk.report_progress(true)?;
        Ok(walk)
    }

    // ---- flags -------------------------------------------------------------------

    fn idx(&self, page: u64) -> Option<usize> {
        usize::try_from(page).ok().filter(|&i| i < self.flags.len())
    }

    fn flag(&self, page: u64) -> u8 {
        self.idx(page)
            .and_then(|i| self.flags.get(i).copied())
            .unwrap_or(0)
    }

    fn set_flag(&mut self, page: u64, f: u8) {
        if let Some(i) = self.idx(page) {
            if let Some(b) = self.flags.get_mut(i) {
                *b |= f;
            }
        }
    }

    fn clear_flag(&mut self, page: u64, f: u8) {
        if let Some(i) = self.idx(page) {
            if let Some(b) = self.flags.get_mut(i) {
                *b &= !f;
            }
        }
    }

    fn record(&mut self, page: u64, kind: PageKind, items: u64, extent: u32) {
        let i = self.idx(page);
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
    fn path_with(&self, extra: &[u64]) -> Vec<u64> {
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

    fn push(&mut self, kind: FindingKind, page: Option<u64>, extra: &[u64], msg: String) {
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

    fn mark_damaged(&mut self) {
        if let Some(t) = self.trees.last_mut() {
            t.damaged = true;
        }
    }

    fn report_progress(&mut self, force: bool) -> Result<()> {
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

    // ---- metas -------------------------------------------------------------------

    fn check_metas(&mut self) {
        let mut valid: [Option<Meta>; 2] = [None, None];
        let mut damaged: Vec<(u64, Option<u64>, String)> = Vec::new();
        for slot in 0..2u64 {
            match self.src.read_raw_meta(slot) {
                // Judged like a damaged slot below: an unreadable slot that is not in
                // use (a crash while the file was created) is a warning.
                Err(e) => damaged.push((
                    slot,
                    None,
                    format!("meta slot {slot} could not be read: {e}"),
                )),
                Ok(raw) => match Meta::decode(&raw, slot, self.page_size) {
                    Ok(m) => {
                        if let Some(v) = valid.get_mut(slot_index(slot)) {
                            *v = Some(m);
                        }
                    }
                    Err(e) => {
                        let claimed = claimed_txid(&raw).map(TxId::get);
                        let claims = claimed
                            .map(|t| format!(" (it claims txid {t})"))
                            .unwrap_or_default();
                        damaged.push((
                            slot,
                            claimed,
                            format!("meta slot {slot} is invalid{claims}: {}", error_detail(&e)),
                        ));
                    }
                },
            }
            self.pages_done += 1;
            self.record(slot, PageKind::Meta, 0, 1);
        }
        if let Err(e) = self.meta.validate(0) {
            self.push(
                FindingKind::MetaInvalid,
                None,
                &[],
                format!("the snapshot's meta is inconsistent: {}", error_detail(&e)),
            );
        }
        if self.meta.page_size as usize != self.page_size {
            self.push(
                FindingKind::MetaInvalid,
                None,
                &[],
                format!(
                    "the snapshot's meta says page size {}, the source uses {}",
                    self.meta.page_size, self.page_size
                ),
            );
        }
        // A damaged slot that is not in use and cannot hold commits newer than this
        // snapshot is a warning: a crash while a checkpoint wrote the meta leaves exactly
        // that (the journal still carries those commits), and the next checkpoint
        // rewrites the slot. A damaged slot in use, or one that claims a newer commit than
        // anything readable (commits may be lost), is an error.
        let active = self.src.active_slot().filter(|&s| s < 2);
        let in_use = active.and_then(|a| valid.get(slot_index(a)).copied().flatten());
        let snapshot_txid = self.meta.txid.get();
        for (slot, claimed, msg) in damaged {
            match (active, in_use) {
                (Some(a), Some(m)) if a != slot && claimed.is_none_or(|t| t <= snapshot_txid) => {
                    // Harmless, but the page itself is damaged: show it so in `map`.
                    self.set_flag(slot, CORRUPT);
                    self.push(
                        FindingKind::MetaFallback,
                        Some(slot),
                        &[slot],
                        format!(
                            "{msg}; slot {a} (txid {}) is in use, nothing newer is lost, and the next checkpoint rewrites slot {slot}",
                            m.txid
                        ),
                    )
                }
                (Some(a), Some(m)) if a != slot => {
                    self.push(FindingKind::MetaInvalid, Some(slot), &[slot], msg);
                    self.push(
                        FindingKind::MetaFallback,
                        Some(a),
                        &[a],
                        format!(
                            "slot {slot} is damaged; the older slot {a} (txid {}) is in use: commits after txid {} may be lost",
                            m.txid, snapshot_txid
                        ),
                    );
                }
                _ => self.push(FindingKind::MetaInvalid, Some(slot), &[slot], msg),
            }
        }
        let (Some(active), Some(in_use)) = (active, in_use) else {
            return;
        };
        let other = 1 - active;
        let other_valid = valid.get(slot_index(other)).copied().flatten();
        if let Some(o) = other_valid {
            if o.txid > in_use.txid {
                self.push(
                    FindingKind::MetaFallback,
                    Some(active),
                    &[active],
                    format!(
                        "slot {active} (txid {}) is in use although slot {other} holds a newer valid meta (txid {})",
                        in_use.txid, o.txid
                    ),
                );
            }
        }
    }

    // ---- claiming and reading pages -----------------------------------------------

    /// Checks a reference before its page is read and marks its pages reachable.
    /// Returns false if the page must not be read (out of bounds, cycle, reached twice).
    fn claim(&mut self, r: PageRef, kind: RefKind, via: &[u64]) -> bool {
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
                    "reachable extent {id}+{} has {freed} page(s) in the freelist",
                    r.extent_pages
                ),
            );
        }
        self.pages_done = self.pages_done.saturating_add(u64::from(r.extent_pages));
        true
    }

    /// Reads and verifies a claimed extent against its parent's reference.
    fn read_verified(&mut self, r: PageRef, via: &[u64]) -> Option<(Vec<u8>, PageHeader)> {
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
                    format!("page {id} (+{}) could not be read: {e}", r.extent_pages),
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
    fn stale_extent(&self, bytes: &[u8], r: PageRef) -> Option<FindingKind> {
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

    // ---- freelist ------------------------------------------------------------------

    fn walk_freelist(&mut self) {
        let r = self.meta.freelist;
        if r.is_null() {
            return;
        }
        if !self.claim(r, RefKind::Freelist, &[]) {
            self.account_leaks = false;
            return;
        }
        let Some((bytes, h)) = self.read_verified(r, &[]) else {
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
        self.mark_free_runs(id, runs);
    }

    fn mark_free_runs(&mut self, id: u64, mut runs: Vec<(u64, u64)>) {
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
                    "{out_of_range} run(s) outside pages 2..{hwm}, the first {s}+{l}; they are ignored"
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
                    "{dup_runs} freelist run(s) list pages already listed; the first overlap is pages {s}..{e}"
                ),
            );
        }
    }

    // ---- the tree walk ---------------------------------------------------------------

    fn start_from(&mut self, id: u64) -> Result<()> {
        if id < 2 || id >= self.high_water {
            return Err(Error::InvalidArgument(format!(
                "--from-page {id} must be a tree page in 2..{}",
                self.high_water
            )));
        }
        // No parent vouches for this page: take the reference from its own header.
        let first = self.src.read_raw(PageId(id), 1).map_err(Error::from_io)?;
        let extent = peek_extent_pages(&first).unwrap_or(1).max(1);
        let h = match decode_header(&first) {
            Some(h) => h,
            None => {
                self.trees.push(Tree::new(Vec::new(), false, None, None));
                self.stack.push(Frame::EndTree);
                let r = PageRef {
                    page_id: PageId(id),
                    txid: TxId(0),
                    checksum: 0,
                    extent_pages: extent,
                };
                if self.claim(r, RefKind::Node, &[]) {
                    self.read_verified(r, &[]);
                }
                return Ok(());
            }
        };
        let r = PageRef {
            page_id: PageId(id),
            txid: h.txid,
            checksum: h.checksum,
            extent_pages: extent,
        };
        self.trees.push(Tree::new(Vec::new(), false, None, None));
        self.stack.push(Frame::EndTree);
        self.visit_node(r, None, None, 0)
    }

    /// Processes the stack until it is empty.
    fn drain(&mut self) -> Result<()> {
        loop {
            let next = match self.stack.last_mut() {
                None => return Ok(()),
                Some(Frame::EndTree) => None,
                Some(Frame::Node {
                    children,
                    next,
                    depth,
                    ..
                }) => match children.get_mut(*next) {
                    Some(c) => {
                        *next += 1;
                        // Take the child out (its bounds are only needed once).
                        let c = std::mem::replace(
                            c,
                            Child::Node {
                                r: PageRef::NULL,
                                lo: None,
                                hi: None,
                            },
                        );
                        Some((c, *depth))
                    }
                    None => None,
                },
            };
            match next {
                Some((Child::Node { r, lo, hi }, depth)) => {
                    self.visit_node(r, lo, hi, depth.saturating_add(1))?;
                }
                Some((Child::Bucket { name, header }, _)) => self.enter_bucket(name, header)?,
                None => self.pop_frame(),
            }
            self.report_progress(false)?;
        }
    }

    fn pop_frame(&mut self) {
        match self.stack.pop() {
            Some(Frame::Node { page, .. }) => self.clear_flag(page, ON_STACK),
            Some(Frame::EndTree) => {
                if let Some(t) = self.trees.pop() {
                    self.finish_tree(t);
                }
            }
            None => {}
        }
    }

    fn finish_tree(&mut self, t: Tree) {
        let (Some(expected), Some(holder)) = (t.expected_count, t.header_page) else {
            return;
        };
        if !t.damaged && expected != t.keys {
            // The holder leaf is on top of the stack again: the path ends at it.
            self.push(
                FindingKind::BucketHeader,
                Some(holder),
                &[],
                format!(
                    "bucket {:?} header says {expected} entries, its tree holds {}",
                    short_name(&t.name),
                    t.keys
                ),
            );
        }
    }

    fn enter_bucket(&mut self, name: Vec<u8>, header: BucketHeader) -> Result<()> {
        let holder = self.path_with(&[]).last().copied();
        // `trees` holds the root bucket's tree and one per level of nesting.
        if self.trees.len() > MAX_BUCKET_DEPTH {
            self.push(
                FindingKind::TooDeep,
                holder,
                &[],
                format!(
                    "bucket {:?} is nested deeper than {MAX_BUCKET_DEPTH} levels; not walked",
                    short_name(&name)
                ),
            );
            self.mark_damaged();
            return Ok(());
        }
        self.stats.buckets += 1;
        self.report.buckets_checked += 1;
        if header.root.is_null() {
            if header.count != 0 {
                self.push(
                    FindingKind::BucketHeader,
                    holder,
                    &[],
                    format!(
                        "empty bucket {:?} (null root) says it holds {} entries",
                        short_name(&name),
                        header.count
                    ),
                );
            }
            return Ok(());
        }
        self.trees
            .push(Tree::new(name, false, Some(header.count), holder));
        self.stack.push(Frame::EndTree);
        self.visit_node(header.root, None, None, 0)
    }

    /// Claims, reads and verifies a branch or leaf and pushes its frame.
    fn visit_node(
        &mut self,
        r: PageRef,
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
        depth: u32,
    ) -> Result<()> {
        let id = r.page_id.get();
        if depth as usize >= MAX_TREE_DEPTH || self.stack.len() >= MAX_STACK_FRAMES {
            self.push(
                FindingKind::TooDeep,
                Some(id),
                &[id],
                format!("page {id} lies deeper than the walk's bound ({MAX_TREE_DEPTH} levels); not walked"),
            );
            self.mark_damaged();
            return Ok(());
        }
        if !self.claim(r, RefKind::Node, &[]) {
            return Ok(());
        }
        let Some((bytes, h)) = self.read_verified(r, &[]) else {
            return Ok(());
        };
        let view = match NodeView::validate(&bytes, &h) {
            Ok(v) => v,
            Err(e) => {
                let kind = match &e {
                    Error::Corrupted {
                        kind: CorruptionKind::Invalid,
                        ..
                    } => FindingKind::ElementBounds,
                    other => finding_kind(other),
                };
                self.push(kind, Some(id), &[id], error_detail(&e));
                self.mark_damaged();
                return Ok(());
            }
        };
        let extent = u64::from(h.extent_pages);
        self.report.pages_checked += extent;
        self.stats.node_bytes_used += (PAGE_HEADER_SIZE as u64).saturating_add(h.payload_len);
        self.stats.node_bytes_available += extent.saturating_mul(self.page_size as u64);
        self.stats.tree_depth_max = self.stats.tree_depth_max.max(depth + 1);
        self.check_key_bounds(&view, lo.as_deref(), hi.as_deref());
        let children = if view.is_leaf() {
            self.stats.leaf_pages += extent;
            self.record(id, PageKind::Leaf, view.len() as u64, h.extent_pages);
            self.check_leaf_depth(id, depth);
            self.leaf_children(&view)
        } else {
            self.stats.branch_pages += extent;
            self.record(id, PageKind::Branch, view.len() as u64, h.extent_pages);
            branch_children(&view, hi.as_deref())
        };
        match children {
            Ok(children) if !children.is_empty() => {
                self.set_flag(id, ON_STACK);
                self.stack.push(Frame::Node {
                    page: id,
                    depth,
                    children,
                    next: 0,
                });
            }
            Ok(_) => {}
            Err(e) => {
                self.push(finding_kind(&e), Some(id), &[id], error_detail(&e));
                self.mark_damaged();
            }
        }
        Ok(())
    }

    fn check_key_bounds(&mut self, view: &NodeView<'_>, lo: Option<&[u8]>, hi: Option<&[u8]>) {
        let id = view.page_id().get();
        let n = view.len();
        if n == 0 {
            return;
        }
        // Keys are strictly ascending (validated), so the first and last key decide.
        let (Ok(first), Ok(last)) = (view.key(0), view.key(n - 1)) else {
            return;
        };
        let below = lo.filter(|lo| first < *lo);
        let above = hi.filter(|hi| last >= *hi);
        if below.is_some() || above.is_some() {
            let msg = match (below, above) {
                (Some(lo), _) => format!(
                    "first key {} is below the lower bound {} its ancestors give it",
                    hex_prefix(first),
                    hex_prefix(lo)
                ),
                (_, Some(hi)) => format!(
                    "last key {} is not below the upper bound {} its ancestors give it",
                    hex_prefix(last),
                    hex_prefix(hi)
                ),
                _ => String::new(),
            };
            self.push(FindingKind::KeyOutOfBounds, Some(id), &[id], msg);
        }
    }

    fn check_leaf_depth(&mut self, id: u64, depth: u32) {
        let Some(t) = self.trees.last_mut() else {
            return;
        };
        match t.leaf_depth {
            None => t.leaf_depth = Some(depth),
            Some(d) if d != depth && !t.uneven_reported => {
                t.uneven_reported = true;
                let msg = format!(
                    "leaf at depth {} while other leaves of bucket {:?} are at depth {}",
                    depth + 1,
                    short_name(&t.name),
                    d + 1
                );
                self.push(FindingKind::UnevenDepth, Some(id), &[id], msg);
            }
            Some(_) => {}
        }
    }

    /// Counts a leaf's values, checks its overflow extents now and returns its buckets.
    fn leaf_children(&mut self, view: &NodeView<'_>) -> Result<Vec<Child>> {
        let id = view.page_id().get();
        let is_root_bucket = self.trees.last().is_some_and(|t| t.is_root_bucket);
        let mut children = Vec::new();
        let mut root_value_reported = false;
        for i in 0..view.len() {
            let key = view.key(i)?;
            let value = view.leaf_value(i)?;
            match value {
                LeafValue::Bucket(header) => children.push(Child::Bucket {
                    name: key.to_vec(),
                    header,
                }),
                LeafValue::Inline(v) => {
                    self.count_value(key.len(), v.len() as u64);
                }
                LeafValue::Overflow { extent, len } => {
                    self.count_value(key.len(), len);
                    self.visit_overflow(id, extent, len);
                }
            }
            if is_root_bucket && !matches!(value, LeafValue::Bucket(_)) && !root_value_reported {
                root_value_reported = true;
                self.push(
                    FindingKind::BucketHeader,
                    Some(id),
                    &[id],
                    format!(
                        "the root bucket holds a plain value under key {}; it may hold only buckets",
                        hex_prefix(key)
                    ),
                );
            }
        }
        Ok(children)
    }

    fn count_value(&mut self, key_len: usize, value_len: u64) {
        self.stats.keys += 1;
        self.stats.key_bytes += key_len as u64;
        self.stats.value_bytes += value_len;
        self.report.keys_checked += 1;
        if let Some(t) = self.trees.last_mut() {
            t.keys += 1;
        }
    }

    fn visit_overflow(&mut self, leaf: u64, extent: PageRef, len: u64) {
        if !self.claim(extent, RefKind::Overflow, &[leaf]) {
            return;
        }
        let id = extent.page_id.get();
        let Some((bytes, h)) = self.read_verified(extent, &[leaf]) else {
            return;
        };
        if let Err(e) = overflow_value(&bytes, &h, len) {
            let kind = match &e {
                Error::Corrupted {
                    kind: CorruptionKind::Bounds,
                    ..
                } => FindingKind::OverflowBounds,
                other => finding_kind(other),
            };
            self.push(kind, Some(id), &[leaf, id], error_detail(&e));
            self.mark_damaged();
            return;
        }
        self.report.pages_checked += u64::from(h.extent_pages);
        self.stats.overflow_pages += u64::from(h.extent_pages);
        self.record(id, PageKind::Overflow, 0, h.extent_pages);
    }

    // ---- leaks and results ---------------------------------------------------------------

    fn find_leaks(&mut self) {
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

    fn into_report(self) -> Report {
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

    fn page_infos(&self) -> Vec<PageInfo> {
        let mut out = Vec::with_capacity(self.flags.len());
        let mut owner: Option<Record> = None;
        for (i, &f) in self.flags.iter().enumerate() {
            let id = i as u64;
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

/// Array index of a meta slot (0 or 1).
fn slot_index(slot: u64) -> usize {
    usize::from(slot != 0)
}

fn page_kind(t: PageType) -> PageKind {
    match t {
        PageType::Meta => PageKind::Meta,
        PageType::Branch => PageKind::Branch,
        PageType::Leaf => PageKind::Leaf,
        PageType::Overflow => PageKind::Overflow,
        PageType::Freelist => PageKind::Freelist,
    }
}

/// A branch's children with their key bounds: child `i` holds keys in
/// `[key[i], key[i+1])`, the last child up to the branch's own upper bound.
fn branch_children(view: &NodeView<'_>, hi: Option<&[u8]>) -> Result<Vec<Child>> {
    let n = view.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let r = view.branch_child(i)?;
        let lo = Some(view.key(i)?.to_vec());
        let child_hi = if i + 1 < n {
            Some(view.key(i + 1)?.to_vec())
        } else {
            hi.map(<[u8]>::to_vec)
        };
        out.push(Child::Node {
            r,
            lo,
            hi: child_hi,
        });
    }
    Ok(out)
}

/// Maps an engine corruption error to the finding vocabulary.
fn finding_kind(e: &Error) -> FindingKind {
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
        },
        Error::Io(_) => FindingKind::ReadError,
        Error::UnsupportedVersion(_) => FindingKind::MetaInvalid,
        _ => FindingKind::ElementBounds,
    }
}

/// The detail of a corruption error without the "corrupted page N" prefix.
fn error_detail(e: &Error) -> String {
    match e {
        Error::Corrupted { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

/// A key for messages: UTF-8 text when printable, else hex; at most 32 bytes.
fn hex_prefix(key: &[u8]) -> String {
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
