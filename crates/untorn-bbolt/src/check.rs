//! The checker: one iterative walk over every tree, the freelist and the metas.
//!
//! The walk keeps an explicit stack of frames (the stack *is* the path from the
//! root, so every finding carries it), a per-page state byte (on stack, done,
//! free, corrupt, reported) and a per-tree depth bound. Each page is read and
//! parsed at most once, so the cost is linear in the number of pages below the
//! high-water mark. A reference to a page that is on the stack is a cycle; a
//! reference to a page already finished is a multiple reference; neither is
//! followed, so the walk always terminates.
//!
//! Why this file is long: one iterative walk with its explicit frame stack; each finding
//! kind is raised by the frame step that detects it, so the steps stay together rather
//! than being spread over files that would all need the frame.

use untorn::unstable::check::PageFlags;
use untorn::unstable::report::{FindingKind, FindingSink, PageInfo, PageKind, PageState, Report};

use crate::file::BoltFile;
use crate::format::{
    BucketHeader, Node, NodeKind, PageProblem, BUCKET_HEADER_SIZE, ELEMENT_SIZE, PAGE_HEADER_SIZE,
};

// The walk's bounds are the workspace's (`untorn::unstable::limits`): bbolt trees with 512-byte
// pages and a billion keys stay far below the depth bound.
use untorn::unstable::limits::{MAX_BUCKET_DEPTH, MAX_TREE_DEPTH};

const ON_STACK: u8 = 0x01;
const DONE: u8 = 0x02;
const FREE: u8 = 0x04;
const CORRUPT: u8 = 0x08;
const REPORTED: u8 = 0x10;
const VISITED: u8 = ON_STACK | DONE;

/// Called with (pages done, pages below the high-water mark) during a check.
pub type Progress = Box<dyn FnMut(u64, u64) + Send>;

/// Options of a check.
pub struct CheckOptions {
    /// Keep at most this many findings (the rest are counted as truncated).
    pub max_findings: usize,
    /// Per-tree depth bound.
    pub max_depth: usize,
    /// Check only the subtree rooted at this page: its pages, key order and bounds
    /// within it, cycles and double references; no meta, freelist or leak accounting.
    pub from_page: Option<u64>,
    /// Progress callback, called every few thousand pages and at the end.
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for CheckOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckOptions")
            .field("max_findings", &self.max_findings)
            .field("max_depth", &self.max_depth)
            .field("from_page", &self.from_page)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            max_findings: 1000,
            max_depth: MAX_TREE_DEPTH,
            from_page: None,
            progress: None,
        }
    }
}

/// Pages between two progress calls.
const PROGRESS_EVERY: u64 = 4096;

/// A root cause (an index into the findings) and the key range of the subtree it cut
/// off (lower inclusive, upper exclusive; `None`: unbounded).
type LostRange = (usize, Option<Vec<u8>>, Option<Vec<u8>>);

/// Node pages read per leaked run to learn its keys.
const LEAK_PAGES_READ: usize = 64;

/// A pending reference from a frame.
enum Pending {
    /// A child node of a branch, with its key bounds (lower inclusive, upper exclusive).
    Child {
        pgid: u64,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    },
    /// The root of a nested (non-inline) bucket.
    Bucket { root: u64, nesting: usize },
}

struct Frame {
    pgid: u64,
    depth: usize,
    tree: usize,
    nesting: usize,
    children: Vec<Pending>,
    next: usize,
}

/// Everything a walk learns; `check` and `pages` are views of it.
pub(crate) struct Walk {
    pub sink: FindingSink,
    pub state: PageFlags,
    pub kind: Vec<PageKind>,
    pub items: Vec<u32>,
    pub overflow: Vec<u32>,
    pub pages_checked: u64,
    pub keys_checked: u64,
    pub buckets_checked: u64,
    pub freelist_ok: bool,
    /// The shape of what the walk read, for `stats`.
    pub shape: Shape,
    /// Root causes that cut a subtree off (an unreadable page, a reference that leads
    /// elsewhere, a page whose content was replaced), with the key range the subtree
    /// covered: leaked pages whose keys fit exactly one of them are its consequences.
    pub lost: Vec<LostRange>,
}

/// What a walk measures of the trees' shape (the same quantities as untorn's stats).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Shape {
    /// Deepest tree, in levels (a single leaf is depth 1).
    pub tree_depth_max: u32,
    /// Bytes of keys of key/value pairs.
    pub key_bytes: u64,
    /// Bytes of values of key/value pairs.
    pub value_bytes: u64,
    /// Header, element and key/value bytes of the branch and leaf pages read.
    pub node_bytes_used: u64,
    /// Bytes of the branch and leaf pages read (their overflow pages included).
    pub node_bytes_available: u64,
}

impl Walk {
    fn get(&self, id: u64) -> u8 {
        self.state.get(id)
    }
    fn set(&mut self, id: u64, bits: u8) {
        self.state.set(id, bits);
    }
    fn clear(&mut self, id: u64, bits: u8) {
        self.state.clear(id, bits);
    }
    fn set_info(&mut self, id: u64, kind: PageKind, items: u32, overflow: u32) {
        if let Some(i) = self.state.index(id) {
            if let Some(k) = self.kind.get_mut(i) {
                *k = kind;
            }
            if let Some(k) = self.items.get_mut(i) {
                *k = items;
            }
            if let Some(k) = self.overflow.get_mut(i) {
                *k = overflow;
            }
        }
    }
    /// Records that the subtree in `lower..upper` is cut off by the root cause this
    /// step found (the first one kept since finding `since`), if it found one.
    fn note_lost(&mut self, since: usize, lower: &Option<Vec<u8>>, upper: &Option<Vec<u8>>) {
        if let Some(cause) = self.sink.root_since(since) {
            self.lost.push((cause, lower.clone(), upper.clone()));
        }
    }

    /// The root cause a leaked run `start..end` is a consequence of: the one lost
    /// subtree whose key range holds every key of the run's node pages that parse (at
    /// most [`LEAK_PAGES_READ`] of them are read).
    fn cause_of_leak(&self, file: &BoltFile, start: u64, end: u64) -> Option<usize> {
        if self.lost.is_empty() {
            return None;
        }
        let mut keys: Option<(Vec<u8>, Vec<u8>)> = None;
        let mut id = start;
        let mut read = 0;
        while id < end && read < LEAK_PAGES_READ {
            read += 1;
            let overflow = file.read_header(id).map_or(0, |h| u64::from(h.overflow));
            if let Ok(node) = file.read_node(id) {
                let n = node.elems.len();
                if let Some(last) = n.checked_sub(1) {
                    let (first, last) = (node.key(0).to_vec(), node.key(last).to_vec());
                    keys = Some(match keys {
                        None => (first, last),
                        Some((a, b)) => (a.min(first), b.max(last)),
                    });
                }
            }
            id = id.saturating_add(overflow + 1);
        }
        let (first, last) = keys?;
        let mut fits = self.lost.iter().filter(|(_, lo, hi)| {
            lo.as_deref().is_none_or(|lo| first.as_slice() >= lo)
                && hi.as_deref().is_none_or(|hi| last.as_slice() < hi)
        });
        match (fits.next(), fits.next()) {
            (Some((cause, _, _)), None) => Some(*cause),
            _ => None,
        }
    }

    /// Reports a finding once per page (for reference problems).
    fn report_once(&mut self, kind: FindingKind, page: u64, path: &[u64], msg: String) {
        if self.get(page) & REPORTED == 0 {
            self.set(page, REPORTED);
            self.sink.push(kind, Some(page), path, msg);
        }
    }
}

/// Whether page `id` holds the same bytes as page `other` (the page its header names).
fn copy_of(file: &BoltFile, id: u64, other: u64) -> bool {
    if other >= file.hwm() || other == id {
        return false;
    }
    match (file.read_raw(id, 1), file.read_raw(other, 1)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn path_string(path: &[u64]) -> String {
    path.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn hex_short(b: &[u8]) -> String {
    let mut s: String = b.iter().take(16).map(|x| format!("{x:02x}")).collect();
    if b.len() > 16 {
        s.push_str("..");
    }
    s
}

/// Checks an open bbolt file. Read-only; linear in the pages below the high-water mark.
/// An etcd snapshot file's SHA-256 trailer is verified too.
pub fn check_file(file: &BoltFile, opts: CheckOptions) -> Report {
    let subtree = opts.from_page.is_some();
    let mut walk = run(file, opts);
    if !subtree {
        match file.verify_snapshot() {
            Ok(Some(h)) if !h.matches() => walk.sink.push(
                FindingKind::SnapshotHash,
                None,
                &[],
                format!(
                    "etcd snapshot file: the SHA-256 of the database is {}, its trailer says {} (the file changed after `etcdctl snapshot save`; `etcdctl snapshot restore` refuses it)",
                    crate::file::hex32(&h.computed),
                    crate::file::hex32(&h.stored)
                ),
            ),
            Ok(_) => {}
            Err(e) => walk.sink.push(
                FindingKind::SnapshotHash,
                None,
                &[],
                format!("etcd snapshot file: its SHA-256 could not be computed: {e}"),
            ),
        }
    }
    let (findings, truncated) = walk.sink.finish();
    Report {
        findings,
        truncated,
        pages_checked: walk.pages_checked,
        keys_checked: walk.keys_checked,
        buckets_checked: walk.buckets_checked,
        high_water_mark: file.hwm(),
        txid: file.meta().txid,
    }
}

/// Every page below the high-water mark with its kind and state.
pub fn pages_of(file: &BoltFile) -> Vec<PageInfo> {
    let walk = run(
        file,
        CheckOptions {
            max_findings: 1,
            ..CheckOptions::default()
        },
    );
    pages_from(file, &walk)
}

/// The page table, the counters and the findings of one walk (for `stats`).
pub(crate) fn walk_for_stats(file: &BoltFile) -> (Vec<PageInfo>, Walk, u64) {
    let walk = run(file, CheckOptions::default());
    let pages = pages_from(file, &walk);
    let findings = walk.sink.findings().len() as u64;
    (pages, walk, findings)
}

fn pages_from(file: &BoltFile, walk: &Walk) -> Vec<PageInfo> {
    let no_freelist = file.meta().no_freelist_sync();
    let mut out = Vec::with_capacity(walk.state.len());
    for (i, (id, st)) in walk.state.iter().enumerate() {
        let mut kind = walk.kind.get(i).copied().unwrap_or(PageKind::Unknown);
        let mut items = u64::from(walk.items.get(i).copied().unwrap_or(0));
        let mut overflow = u64::from(walk.overflow.get(i).copied().unwrap_or(0));
        let state = if st & CORRUPT != 0 || (st & VISITED != 0 && st & FREE != 0) {
            PageState::Corrupt
        } else if st & VISITED != 0 {
            PageState::Reachable
        } else if st & FREE != 0 || (no_freelist && id >= 2) {
            kind = PageKind::Free;
            PageState::Free
        } else {
            // A leaked page: say what its header claims.
            if let Ok(h) = file.read_header(id) {
                kind = crate::format::page_kind(h.flags);
                items = u64::from(h.count);
                overflow = u64::from(h.overflow);
            }
            PageState::Leaked
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

pub(crate) fn run(file: &BoltFile, mut opts: CheckOptions) -> Walk {
    let meta = file.meta();
    let hwm = meta.pgid;
    let n = usize::try_from(hwm).unwrap_or(0);
    let mut w = Walk {
        sink: FindingSink::new(opts.max_findings),
        state: PageFlags::new(n),
        kind: vec![PageKind::Unknown; n],
        items: vec![0; n],
        overflow: vec![0; n],
        pages_checked: 0,
        keys_checked: 0,
        buckets_checked: 0,
        freelist_ok: true,
        shape: Shape::default(),
        lost: Vec::new(),
    };

    if let Some(from) = opts.from_page {
        // A subtree walk: only what hangs below `from`.
        walk_trees(
            file,
            &mut w,
            Pending::Child {
                pgid: from,
                lower: None,
                upper: None,
            },
            hwm,
            opts.max_depth,
            &mut opts.progress,
        );
        return w;
    }

    // Metas.
    for (i, slot) in file.metas().iter().enumerate() {
        if let Some(p) = &slot.problem {
            w.sink.push(
                FindingKind::MetaInvalid,
                Some(i as u64),
                &[],
                format!("meta {i} is invalid: {p}"),
            );
        }
        w.set(i as u64, DONE);
        w.set_info(i as u64, PageKind::Meta, 0, 0);
    }
    if file.is_fallback() {
        w.sink.push(
            FindingKind::MetaFallback,
            Some(file.active_index() as u64),
            &[],
            format!(
                "newest meta unusable; using meta {} (txid {})",
                file.active_index(),
                meta.txid
            ),
        );
    }
    if meta.zero_checksum() {
        w.sink.push(
            FindingKind::MetaFallback,
            Some(file.active_index() as u64),
            &[],
            format!(
                "meta {} has a zero checksum: accepted unverified, as bbolt 1.3.6 does",
                file.active_index()
            ),
        );
    }

    // Freelist.
    if !meta.no_freelist_sync() {
        match file.read_freelist() {
            Err(e) => {
                w.freelist_ok = false;
                w.sink
                    .push(FindingKind::FreelistCorrupt, Some(meta.freelist), &[], e);
            }
            Ok(None) => {}
            Ok(Some((fl, overflow, ids))) => {
                for i in 0..=u64::from(overflow) {
                    w.set(fl.saturating_add(i), DONE);
                    w.set_info(
                        fl.saturating_add(i),
                        if i == 0 {
                            PageKind::Freelist
                        } else {
                            PageKind::Overflow
                        },
                        if i == 0 { ids.len() as u32 } else { 0 },
                        if i == 0 { overflow } else { 0 },
                    );
                }
                w.pages_checked += u64::from(overflow) + 1;
                for id in ids {
                    if id < 2 || id >= hwm {
                        w.sink.push(
                            FindingKind::FreelistOutOfRange,
                            Some(id),
                            &[fl],
                            format!("freelist entry {id} outside 2..{hwm}"),
                        );
                    } else if w.get(id) & FREE != 0 {
                        w.sink.push(
                            FindingKind::FreelistDuplicate,
                            Some(id),
                            &[fl],
                            format!("page {id} already freed (listed twice in the freelist)"),
                        );
                    } else if w.get(id) & VISITED != 0 {
                        w.set(id, FREE);
                        w.sink.push(
                            FindingKind::ReachableFreed,
                            Some(id),
                            &[fl],
                            format!("freelist lists page {id}, which is a meta or freelist page"),
                        );
                    } else {
                        w.set(id, FREE);
                    }
                }
            }
        }
    }

    // Trees.
    walk_trees(
        file,
        &mut w,
        Pending::Bucket {
            root: meta.root,
            nesting: 0,
        },
        hwm,
        opts.max_depth,
        &mut opts.progress,
    );

    // Leaks: pages below the HWM neither reachable nor free. Skipped when the
    // freelist is not synced (unreachable pages are then free by definition) or
    // could not be read (every page would look leaked).
    if !meta.no_freelist_sync() && w.freelist_ok {
        let mut id = 2u64;
        while id < hwm {
            if w.get(id) & (VISITED | FREE) == 0 {
                let start = id;
                while id < hwm && w.get(id) & (VISITED | FREE) == 0 {
                    id += 1;
                }
                let msg = if id - start == 1 {
                    format!("page {start} is unreachable and not in the freelist (leaked)")
                } else {
                    format!(
                        "pages {start}..={} ({} pages) are unreachable and not in the freelist (leaked)",
                        id - 1,
                        id - start
                    )
                };
                let cause = w.cause_of_leak(file, start, id);
                w.sink
                    .push_caused(FindingKind::Unreachable, Some(start), &[], msg, cause);
            } else {
                id += 1;
            }
        }
    }
    w
}

/// Walks from `start`: the root bucket (a full check) or one page (`--from-page`).
fn walk_trees(
    file: &BoltFile,
    w: &mut Walk,
    start: Pending,
    hwm: u64,
    max_depth: usize,
    progress: &mut Option<Progress>,
) {
    let mut stack: Vec<Frame> = Vec::new();
    let mut trees: Vec<Option<usize>> = Vec::new(); // leaf depth per tree
    let mut path: Vec<u64> = Vec::new();
    if matches!(start, Pending::Child { .. }) {
        // A subtree walk starts inside tree 0 at depth 1.
        trees.push(None);
    }
    // The root bucket is entered like a nested bucket of an empty frame.
    visit(
        file, w, &mut stack, &mut trees, &mut path, start, hwm, max_depth, None,
    );
    let mut next_report = PROGRESS_EVERY;
    while let Some(top) = stack.last_mut() {
        if w.pages_checked >= next_report {
            next_report = w.pages_checked + PROGRESS_EVERY;
            if let Some(p) = progress.as_mut() {
                p(w.pages_checked, hwm);
            }
        }
        if top.next >= top.children.len() {
            let id = top.pgid;
            stack.pop();
            path.pop();
            w.clear(id, ON_STACK);
            w.set(id, DONE);
            continue;
        }
        let idx = top.next;
        top.next += 1;
        let ctx = Some((top.depth, top.tree, top.nesting));
        let pending = match top.children.get_mut(idx) {
            Some(p) => std::mem::replace(
                p,
                Pending::Bucket {
                    root: 0,
                    nesting: 0,
                },
            ),
            None => continue,
        };
        visit(
            file, w, &mut stack, &mut trees, &mut path, pending, hwm, max_depth, ctx,
        );
    }
    if let Some(p) = progress.as_mut() {
        p(w.pages_checked, hwm);
    }
}

#[allow(clippy::too_many_arguments)]
fn visit(
    file: &BoltFile,
    w: &mut Walk,
    stack: &mut Vec<Frame>,
    trees: &mut Vec<Option<usize>>,
    path: &mut Vec<u64>,
    pending: Pending,
    hwm: u64,
    max_depth: usize,
    parent: Option<(usize, usize, usize)>,
) {
    let (pgid, lower, upper, depth, tree, nesting) = match pending {
        Pending::Child { pgid, lower, upper } => {
            let (d, t, n) = parent.unwrap_or((0, 0, 0));
            (pgid, lower, upper, d + 1, t, n)
        }
        Pending::Bucket { root, nesting } => {
            trees.push(None);
            // The root bucket (nesting 0) is not counted, as in untorn's reports.
            if nesting > 0 {
                w.buckets_checked += 1;
            }
            (root, None, None, 0, trees.len() - 1, nesting)
        }
    };
    let mut here = path.clone();
    here.push(pgid);
    let since = w.sink.len();
    if pgid < 2 {
        w.sink.push(
            FindingKind::InvalidType,
            Some(pgid),
            &here,
            format!("tree references meta page {pgid}"),
        );
        w.note_lost(since, &lower, &upper);
        return;
    }
    if pgid >= hwm {
        w.sink.push(
            FindingKind::OutOfBounds,
            Some(pgid),
            &here,
            format!("page {pgid} is at or beyond the high-water mark {hwm}"),
        );
        w.note_lost(since, &lower, &upper);
        return;
    }
    let st = w.get(pgid);
    if st & ON_STACK != 0 {
        let from = path.iter().position(|&p| p == pgid).unwrap_or(0);
        let cycle = path_string(path.get(from..).unwrap_or(&[]));
        w.report_once(
            FindingKind::Cycle,
            pgid,
            &here,
            format!(
                "page {} references its ancestor {pgid}: cycle {cycle} -> {pgid}",
                path.last().copied().unwrap_or(0),
            ),
        );
        w.note_lost(since, &lower, &upper);
        return;
    }
    if st & VISITED != 0 {
        w.report_once(
            FindingKind::MultipleReferences,
            pgid,
            &here,
            format!(
                "page {pgid} is referenced more than once (again from page {})",
                path.last().copied().unwrap_or(0)
            ),
        );
        w.note_lost(since, &lower, &upper);
        return;
    }
    // Mark before reading so that a failed read is not revisited.
    w.set(pgid, DONE);
    w.sink.reached(pgid, &here);
    w.pages_checked += 1;
    let (header, buf) = match file.read_extent(pgid, false) {
        Ok(x) => x,
        Err(p) => {
            w.set(pgid, CORRUPT);
            let kind = p.finding_kind();
            w.sink
                .push(kind, Some(pgid), &here, format!("page {pgid}: {p}"));
            w.note_lost(since, &lower, &upper);
            return;
        }
    };
    if header.id != pgid {
        w.set(pgid, CORRUPT);
        // A byte-for-byte copy of the page it names is a misdirected write (or a stale
        // page left behind); say which.
        let what = if copy_of(file, pgid, header.id) {
            "holds a copy of"
        } else {
            "self-identifies as"
        };
        w.sink.push(
            FindingKind::PageIdMismatch,
            Some(pgid),
            &here,
            format!(
                "page {pgid} {what} page {}: a misdirected or stale write; walked as bbolt would",
                header.id
            ),
        );
        // What the page held before is gone.
        w.note_lost(since, &lower, &upper);
    }
    let node = match Node::parse(buf) {
        Ok(n) => n,
        Err(p) => {
            w.set(pgid, CORRUPT);
            w.sink.push(
                p.finding_kind(),
                Some(pgid),
                &here,
                format!("page {pgid}: {p}"),
            );
            w.note_lost(since, &lower, &upper);
            return;
        }
    };
    let kind = match node.kind {
        NodeKind::Branch => PageKind::Branch,
        NodeKind::Leaf => PageKind::Leaf,
    };
    w.set_info(pgid, kind, node.elems.len() as u32, header.overflow);
    let used = (0..node.elems.len()).fold(
        (PAGE_HEADER_SIZE + node.elems.len() * ELEMENT_SIZE) as u64,
        |acc, i| acc + (node.key(i).len() + node.value(i).len()) as u64,
    );
    w.shape.node_bytes_used += used;
    w.shape.node_bytes_available +=
        (u64::from(header.overflow) + 1).saturating_mul(u64::from(file.page_size()));
    w.shape.tree_depth_max = w
        .shape
        .tree_depth_max
        .max(u32::try_from(depth + 1).unwrap_or(u32::MAX));
    // Overflow pages belong to this node.
    for i in 1..=u64::from(header.overflow) {
        let id = pgid + i;
        w.pages_checked += 1;
        if w.get(id) & VISITED != 0 {
            w.report_once(
                FindingKind::MultipleReferences,
                id,
                &here,
                format!("page {id} is both an overflow page of page {pgid} and used elsewhere"),
            );
        }
        if w.get(id) & FREE != 0 {
            w.set(id, CORRUPT);
            w.report_once(
                FindingKind::ReachableFreed,
                id,
                &here,
                format!("overflow page {id} of page {pgid} is in the freelist"),
            );
        }
        w.set(id, DONE);
        w.set_info(id, PageKind::Overflow, 0, 0);
    }
    if w.get(pgid) & FREE != 0 {
        w.set(pgid, CORRUPT);
        w.sink.push(
            FindingKind::ReachableFreed,
            Some(pgid),
            &here,
            format!("page {pgid} is reachable but in the freelist"),
        );
    }
    if node.kind == NodeKind::Branch && node.elems.is_empty() {
        w.set(pgid, CORRUPT);
        w.sink.push(
            FindingKind::ElementBounds,
            Some(pgid),
            &here,
            format!("branch page {pgid} has no elements"),
        );
    }
    if let Some(i) = node.first_order_violation() {
        w.set(pgid, CORRUPT);
        w.sink.push(
            FindingKind::KeyOrder,
            Some(pgid),
            &here,
            format!(
                "element {i} of page {pgid} breaks key order: {} then {}",
                hex_short(node.key(i.saturating_sub(1))),
                hex_short(node.key(i))
            ),
        );
    }
    let out_of_bounds = (0..node.elems.len()).find(|&i| {
        let k = node.key(i);
        lower.as_deref().is_some_and(|lo| k < lo) || upper.as_deref().is_some_and(|hi| k >= hi)
    });
    if let Some(i) = out_of_bounds {
        w.set(pgid, CORRUPT);
        w.sink.push(
            FindingKind::KeyOutOfBounds,
            Some(pgid),
            &here,
            format!(
                "key {} (element {i}) outside the parent's range [{}, {})",
                hex_short(node.key(i)),
                lower
                    .as_deref()
                    .map(hex_short)
                    .unwrap_or_else(|| "-inf".into()),
                upper
                    .as_deref()
                    .map(hex_short)
                    .unwrap_or_else(|| "+inf".into())
            ),
        );
    }
    if depth >= max_depth || nesting >= MAX_BUCKET_DEPTH {
        w.sink.push(
            FindingKind::TooDeep,
            Some(pgid),
            &here,
            format!("tree deeper than {max_depth} levels or buckets nested deeper than {MAX_BUCKET_DEPTH}; not descending"),
        );
        return;
    }
    let mut children = Vec::new();
    match node.kind {
        NodeKind::Branch => {
            let n = node.elems.len();
            for (i, e) in node.elems.iter().enumerate() {
                let lo = node.key(i).to_vec();
                let hi = if i + 1 < n {
                    Some(node.key(i + 1).to_vec())
                } else {
                    upper.clone()
                };
                children.push(Pending::Child {
                    pgid: e.pgid,
                    lower: Some(lo),
                    upper: hi,
                });
            }
        }
        NodeKind::Leaf => {
            if let Some(expected) = trees.get_mut(tree) {
                match expected {
                    None => *expected = Some(depth),
                    Some(d) if *d != depth => {
                        let d = *d;
                        w.sink.push(
                            FindingKind::UnevenDepth,
                            Some(pgid),
                            &here,
                            format!(
                                "leaf at depth {depth}, other leaves of this bucket at depth {d}"
                            ),
                        );
                    }
                    Some(_) => {}
                }
            }
            leaf_elements(w, &node, pgid, &here, nesting, &mut children);
        }
    }
    path.push(pgid);
    w.clear(pgid, DONE);
    w.set(pgid, ON_STACK);
    stack.push(Frame {
        pgid,
        depth,
        tree,
        nesting,
        children,
        next: 0,
    });
}

/// Counts keys and collects nested buckets of a leaf (inline buckets are checked
/// in place with a bounded worklist: each inline page lies strictly inside its
/// parent's value, so the worklist shrinks).
fn leaf_elements(
    w: &mut Walk,
    node: &Node,
    pgid: u64,
    here: &[u64],
    nesting: usize,
    children: &mut Vec<Pending>,
) {
    let mut work: Vec<(Node, usize)> = Vec::new();
    let mut scan = |w: &mut Walk, node: &Node, nest: usize, work: &mut Vec<(Node, usize)>| {
        for i in 0..node.elems.len() {
            if !node.is_bucket(i) {
                w.keys_checked += 1;
                w.shape.key_bytes += node.key(i).len() as u64;
                w.shape.value_bytes += node.value(i).len() as u64;
                continue;
            }
            let v = node.value(i);
            let Some(h) = BucketHeader::decode(v) else {
                w.sink.push(
                    FindingKind::BucketHeader,
                    Some(pgid),
                    here,
                    format!(
                        "bucket {} value is {} bytes, shorter than a bucket header",
                        hex_short(node.key(i)),
                        v.len()
                    ),
                );
                continue;
            };
            if h.root != 0 {
                children.push(Pending::Bucket {
                    root: h.root,
                    nesting: nest + 1,
                });
                continue;
            }
            w.buckets_checked += 1;
            let inline = v.get(BUCKET_HEADER_SIZE..).unwrap_or(&[]).to_vec();
            match Node::parse(inline) {
                Ok(n) if n.kind == NodeKind::Leaf => {
                    if let Some(j) = n.first_order_violation() {
                        w.sink.push(
                            FindingKind::KeyOrder,
                            Some(pgid),
                            here,
                            format!(
                                "inline bucket {}: keys not strictly ascending at element {j}",
                                hex_short(node.key(i))
                            ),
                        );
                    }
                    if nest < MAX_BUCKET_DEPTH {
                        work.push((n, nest + 1));
                    }
                }
                Ok(_) => w.sink.push(
                    FindingKind::BucketHeader,
                    Some(pgid),
                    here,
                    format!(
                        "inline bucket {} is not a leaf page",
                        hex_short(node.key(i))
                    ),
                ),
                Err(p) => w.sink.push(
                    FindingKind::BucketHeader,
                    Some(pgid),
                    here,
                    format!("inline bucket {}: {p}", hex_short(node.key(i))),
                ),
            }
        }
    };
    scan(w, node, nesting, &mut work);
    while let Some((n, nest)) = work.pop() {
        scan(w, &n, nest, &mut work);
    }
}

/// Maps a page problem to a short reason string (used by salvage reports).
pub fn problem_kind(p: &PageProblem) -> FindingKind {
    p.finding_kind()
}
