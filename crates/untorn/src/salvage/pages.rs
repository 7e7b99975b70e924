//! Page-level salvage: reads every page of a data file and every commit record of its
//! journals, keeps each extent that verifies on its own, and rebuilds buckets and keys
//! from them, whether or not the engine can open the file.
//!
//! Why this file is long: the scan, the live walk, the refill and the emission are four
//! passes over one private index (`Loc`, `Tree`, `Ent`); a split by pass would make that
//! index crate-visible. Splitting the scan (data file, journal) into its own file is the
//! next step if it grows.
//!
//! 1. **Scan.** Every page id of the data file (metas included) and every image of every
//!    commit record whose header verifies (journal and rollback copies, this database's
//!    id only) is verified on its own: checksum, self id, extent, node structure. Each
//!    verified branch, leaf and overflow extent is indexed by (page id, txid, checksum).
//! 2. **Newest commit.** The newest of the meta slots that verify, the journal's
//!    generation markers and its commit headers (a commit's root is in its header).
//! 3. **Live walk.** From that commit's root, every bucket's tree is walked through the
//!    index, each reference resolved only by the exact version it names (parents vouch
//!    for children, so a stale page never stands in for a lost one). A reference that
//!    does not resolve makes its key range in that bucket *lost*.
//! 4. **Refill.** Verified leaves the live walk did not use (free pages, older versions,
//!    journal images of older commits) are attributed to their bucket by `tree_id` and
//!    used only inside the lost ranges of their bucket (or for a bucket the walk never
//!    reached); the newest txid wins per key, and every such key is reported as possibly
//!    older than its last committed value. Pages of uncommitted transactions (txid newer
//!    than the newest commit) and of buckets created after it are never used.
//! 5. **Names.** A bucket's name, parent and sequence come from the bucket entry that
//!    carries its `bucket_id`; a bucket whose entry is lost is recovered as
//!    `lost+found/bucket-<id>` (its sub-buckets keep their names below it).
//!
//! Every walk is bounded (explicit stacks, visited sets, the tree height and nesting
//! limits); nothing is written to any source.
//!
//! Memory: the index holds a few dozen bytes per verified extent; the recovered keys and
//! inline values are held in memory until they are emitted (overflow values are read at
//! emission), so peak memory is about the live data's size plus the index.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{
    decode_header, overflow_value_range, page_sizes, peek_extent_pages, verify_page, BucketHeader,
    BucketId, DbId, LeafValue, Meta, NodeView, PageHeader, PageId, PageRef, PageType, RecordHeader,
    RecordKind, TxId, RECORD_HEADER_SIZE,
};
use crate::limits::{MAX_BUCKET_DEPTH, MAX_EXTENT_PAGES, MAX_TREE_DEPTH};
use crate::report::{DumpItem, Lost, Pair, SalvageSummary, Stale};
use crate::storage::Storage;

/// The bucket a bucket whose own entry is lost is recovered under.
pub const LOST_AND_FOUND: &[u8] = b"lost+found";

/// Where a salvage is, for a progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalvageProgress {
    /// `"data"`, `"journal"` or `"rebuild"`.
    pub phase: &'static str,
    /// Bytes (scan phases) or buckets (rebuild) done.
    pub done: u64,
    /// Of this many.
    pub total: u64,
}

/// Options of a page-level salvage.
#[derive(Default)]
pub struct SalvageOptions<'a> {
    /// Called between chunks; returning `false` cancels the salvage (`Error::Cancelled`).
    pub progress: Option<&'a mut dyn FnMut(&SalvageProgress) -> bool>,
    /// Use only the pages the newest commit references (no refill from unreferenced
    /// pages): the newest state minus its damaged subtrees, which are reported lost.
    /// What `untorn dump --skip-damaged` shows.
    pub live_only: bool,
}

impl std::fmt::Debug for SalvageOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalvageOptions")
            .field("progress", &self.progress.is_some())
            .field("live_only", &self.live_only)
            .finish()
    }
}

impl SalvageOptions<'_> {
    fn report(&mut self, phase: &'static str, done: u64, total: u64) -> Result<()> {
        if let Some(cb) = self.progress.as_mut() {
            if !cb(&SalvageProgress { phase, done, total }) {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }
}

/// Pages read per chunk of the data-file scan.
const CHUNK_PAGES: u64 = 256;
/// Sectors read per chunk of the journal scan.
const JOURNAL_CHUNK: u64 = 1 << 20;

/// A `u64` length or count as `usize` (a typed error where it does not fit).
fn us(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::Internal("length larger than the address space"))
}

/// A reference still to walk, with the key bounds `[lo, hi)` its parent gives it and
/// its depth.
type Frame = (PageRef, Option<Vec<u8>>, Option<Vec<u8>>, usize);

/// Where a verified extent lies: source 0 is the data file, `i >= 1` journal `i - 1`.
#[derive(Debug, Clone, Copy)]
struct Loc {
    src: usize,
    offset: u64,
    h: PageHeader,
}

/// A root a commit names.
#[derive(Debug, Clone, Copy)]
struct Commit {
    txid: TxId,
    root: PageRef,
    next_bucket_id: BucketId,
    what: &'static str,
}

#[derive(Debug, Clone)]
enum Val {
    Inline(Vec<u8>),
    Overflow(PageRef, u64),
    Bucket(BucketHeader),
}

#[derive(Debug, Clone)]
struct Ent {
    txid: TxId,
    val: Val,
    /// From a page the newest commit does not reference.
    older: bool,
}

#[derive(Debug, Clone)]
struct LostRange {
    lo: Option<Vec<u8>>,
    hi: Option<Vec<u8>>,
    page: Option<u64>,
    reason: String,
}

#[derive(Debug, Default)]
struct Tree {
    entries: BTreeMap<Vec<u8>, Ent>,
    lost: Vec<LostRange>,
    /// The live walk reached this bucket's tree.
    reached: bool,
}

impl Tree {
    fn in_lost_range(&self, key: &[u8]) -> bool {
        self.lost.iter().any(|r| {
            r.lo.as_deref().is_none_or(|lo| key >= lo) && r.hi.as_deref().is_none_or(|hi| key < hi)
        })
    }
}

struct Scan<'s> {
    sources: Vec<&'s dyn Storage>,
    ps: usize,
    /// Verified branch, leaf and overflow extents by page id.
    versions: HashMap<u64, Vec<Loc>>,
    commits: Vec<Commit>,
    summary: SalvageSummary,
}

impl Scan<'_> {
    fn read(&self, loc: &Loc) -> Result<Vec<u8>> {
        let n = (loc.h.extent_pages as usize)
            .checked_mul(self.ps)
            .ok_or(Error::Internal("extent larger than the address space"))?;
        let mut buf = vec![0u8; n];
        let src = self
            .sources
            .get(loc.src)
            .ok_or(Error::Internal("salvage source index out of range"))?;
        src.read_at(loc.offset, &mut buf).map_err(Error::from_io)?;
        Ok(buf)
    }

    fn add(&mut self, loc: Loc) {
        if !matches!(
            loc.h.page_type,
            PageType::Branch | PageType::Leaf | PageType::Overflow
        ) {
            return;
        }
        let v = self.versions.entry(loc.h.page_id.get()).or_default();
        if !v
            .iter()
            .any(|l| l.h.txid == loc.h.txid && l.h.checksum == loc.h.checksum)
        {
            v.push(loc);
        }
    }

    /// The verified extent `r` names exactly, in tree `tree`.
    fn resolve(&self, r: &PageRef, tree: BucketId) -> Option<Loc> {
        self.versions
            .get(&r.page_id.get())?
            .iter()
            .find(|l| l.h.matches(r) && l.h.tree_id == tree)
            .copied()
    }
}

/// Page size: meta 0's, else meta 1's at each size, else a journal header's, else the
/// size at which most of the first pages verify.
fn detect_page_size(data: &dyn Storage, journals: &[&dyn Storage]) -> Result<usize> {
    let len = data.len().map_err(Error::from_io)?;
    let mut first = vec![0u8; crate::format::meta::SNIFF_BYTES];
    if len >= first.len() as u64 && data.read_at(0, &mut first).is_ok() {
        if let Some(ps) = crate::format::meta::sniff_page_size(&first) {
            let mut page = vec![0u8; ps as usize];
            if data.read_at(0, &mut page).is_ok() && Meta::decode(&page, 0, ps as usize).is_ok() {
                return Ok(ps as usize);
            }
        }
    }
    for ps in page_sizes() {
        let mut page = vec![0u8; ps];
        if len >= 2 * ps as u64
            && data.read_at(ps as u64, &mut page).is_ok()
            && Meta::decode(&page, 1, ps).is_ok()
        {
            return Ok(ps);
        }
    }
    for j in journals {
        let mut sector = [0u8; RECORD_HEADER_SIZE];
        if j.read_at(0, &mut sector).is_ok() {
            if let Some(h) = RecordHeader::decode(&sector) {
                if crate::format::is_valid_page_size(u64::from(h.page_size)) {
                    return Ok(h.page_size as usize);
                }
            }
        }
    }
    let mut best = (0u64, 0usize);
    for ps in page_sizes() {
        let mut page = vec![0u8; ps];
        let mut verified = 0;
        for id in 2..66u64 {
            let Some(off) = PageId(id).offset(ps) else {
                break;
            };
            if off + ps as u64 > len || data.read_at(off, &mut page).is_err() {
                break;
            }
            if peek_extent_pages(&page) == Some(1) && verify_page(&page, PageId(id), ps).is_ok() {
                verified += 1;
            }
        }
        if verified > best.0 {
            best = (verified, ps);
        }
    }
    if best.0 == 0 {
        return Err(Error::NotADatabase(
            "no meta and no page verifies at any page size".into(),
        ));
    }
    Ok(best.1)
}

fn scan_data(scan: &mut Scan<'_>, opts: &mut SalvageOptions<'_>) -> Result<Vec<Meta>> {
    let ps = scan.ps;
    let data = *scan
        .sources
        .first()
        .ok_or(Error::Internal("salvage without a data file"))?;
    let len = data.len().map_err(Error::from_io)?;
    let total = len / ps as u64;
    let mut metas = Vec::new();
    for slot in 0..2u64 {
        let mut page = vec![0u8; ps];
        let ok = slot < total
            && data.read_at(slot * ps as u64, &mut page).is_ok()
            && match Meta::decode(&page, slot, ps) {
                Ok(m) => {
                    metas.push(m);
                    true
                }
                Err(_) => false,
            };
        scan.summary.pages_scanned += u64::from(slot < total);
        if !ok {
            scan.summary.pages_unreadable += u64::from(slot < total);
            scan.summary.lost.push(Lost {
                page: Some(slot),
                reason: format!(
                    "meta slot {slot} does not verify: a commit only it recorded is lost"
                ),
                ..Lost::default()
            });
        }
    }
    let mut window = vec![0u8; us(CHUNK_PAGES)? * ps];
    let mut win_start = 0u64;
    let mut win_len = 0u64;
    let mut id = 2u64;
    while id < total {
        if id < win_start || id >= win_start + win_len {
            opts.report("data", id * ps as u64, len)?;
            win_start = id;
            win_len = CHUNK_PAGES.min(total - id);
            let bytes = us(win_len)? * ps;
            let buf = window
                .get_mut(..bytes)
                .ok_or(Error::Internal("scan window shorter than a chunk"))?;
            data.read_at(id * ps as u64, buf).map_err(Error::from_io)?;
        }
        let at = us(id - win_start)? * ps;
        let page = window
            .get(at..at + ps)
            .ok_or(Error::Internal("page outside the scan window"))?;
        let extent = peek_extent_pages(page).unwrap_or(0);
        let verified = if extent == 1 {
            verify_page(page, PageId(id), ps).ok()
        } else if extent > 1 && extent <= MAX_EXTENT_PAGES && id + u64::from(extent) <= total {
            let mut buf = vec![0u8; extent as usize * ps];
            data.read_at(id * ps as u64, &mut buf)
                .map_err(Error::from_io)?;
            verify_page(&buf, PageId(id), ps)
                .ok()
                .filter(|h| node_ok(&buf, h))
        } else {
            None
        };
        let verified = verified.filter(|h| extent > 1 || node_ok(page, h));
        match verified {
            Some(h) => {
                scan.summary.pages_scanned += u64::from(h.extent_pages);
                scan.add(Loc {
                    src: 0,
                    offset: id * ps as u64,
                    h,
                });
                id += u64::from(h.extent_pages);
            }
            None => {
                scan.summary.pages_scanned += 1;
                scan.summary.pages_unreadable += 1;
                id += 1;
            }
        }
    }
    Ok(metas)
}

/// Whether a verified extent's node structure verifies too (overflow and freelist
/// extents have none to check here).
fn node_ok(page: &[u8], h: &PageHeader) -> bool {
    match h.page_type {
        PageType::Branch | PageType::Leaf => NodeView::validate(page, h).is_ok(),
        _ => true,
    }
}

fn scan_journal(
    scan: &mut Scan<'_>,
    src: usize,
    db_id: Option<DbId>,
    opts: &mut SalvageOptions<'_>,
) -> Result<()> {
    let ps = scan.ps;
    let j = *scan
        .sources
        .get(src)
        .ok_or(Error::Internal("salvage source index out of range"))?;
    let len = j.len().map_err(Error::from_io)?;
    let sector = RECORD_HEADER_SIZE as u64;
    let mut headers = Vec::new();
    let mut buf = vec![0u8; us(JOURNAL_CHUNK)?];
    let mut at = 0u64;
    while at + sector <= len {
        opts.report("journal", at, len)?;
        let n = (len - at).min(JOURNAL_CHUNK);
        let n = n - n % sector;
        let chunk = buf
            .get_mut(..us(n)?)
            .ok_or(Error::Internal("journal chunk larger than its buffer"))?;
        j.read_at(at, chunk).map_err(Error::from_io)?;
        for (i, s) in chunk.chunks_exact(RECORD_HEADER_SIZE).enumerate() {
            if let Some(h) = RecordHeader::decode(s) {
                headers.push((at + i as u64 * sector, h));
            }
        }
        at += n;
    }
    for (pos, h) in headers {
        if db_id.is_some_and(|d| d != h.db_id) || h.page_size as usize != ps {
            continue;
        }
        scan.commits.push(Commit {
            txid: h.txid,
            root: h.root,
            next_bucket_id: h.next_bucket_id,
            what: match h.kind {
                RecordKind::Marker => "a journal generation marker",
                RecordKind::Commit => "a journal commit record",
            },
        });
        if h.kind != RecordKind::Commit {
            continue;
        }
        let Some(body) = pos
            .checked_add(sector)
            .and_then(|p| p.checked_add(h.aux_padded_len()))
        else {
            continue;
        };
        let end = body.saturating_add(h.body_len).min(len);
        let mut off = body;
        for _ in 0..h.image_count {
            let mut first = vec![0u8; ps];
            if off + ps as u64 > end || j.read_at(off, &mut first).is_err() {
                break;
            }
            let Some(claimed) = decode_header(&first) else {
                break;
            };
            let e = claimed.extent_pages;
            let Some(bytes) = u64::from(e).checked_mul(ps as u64) else {
                break;
            };
            if e == 0 || e > MAX_EXTENT_PAGES || off + bytes > end {
                break;
            }
            let mut img = vec![0u8; us(bytes)?];
            if j.read_at(off, &mut img).is_err() {
                break;
            }
            scan.summary.pages_scanned += u64::from(e);
            match verify_page(&img, claimed.page_id, ps) {
                Ok(v) if v.txid == h.txid && node_ok(&img, &v) => scan.add(Loc {
                    src,
                    offset: off,
                    h: v,
                }),
                _ => scan.summary.pages_unreadable += u64::from(e),
            }
            off += bytes;
        }
    }
    Ok(())
}

/// Whether the file at `path` holds untorn pages even though neither meta slot says so
/// (both destroyed): a journal header or pages that verify at some page size.
pub fn recognise_file(path: &Path) -> Result<bool> {
    let (data, journals) = crate::db::salvage_sources(path)?;
    let js: Vec<&dyn Storage> = journals.iter().map(|(_, s)| s as &dyn Storage).collect();
    match detect_page_size(&data, &js) {
        Ok(_) => Ok(true),
        Err(Error::NotADatabase(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Salvages the database at `path` page by page (its journal and rollback copies
/// included), passing buckets and pairs to `emit` (buckets in path order, each followed
/// by its pairs in key order; a parent before its children), and reports what could not be recovered. Nothing is
/// written to the source.
pub fn salvage_file<E: From<Error>>(
    path: &Path,
    opts: SalvageOptions<'_>,
    emit: impl FnMut(DumpItem) -> std::result::Result<(), E>,
) -> std::result::Result<SalvageSummary, E> {
    let (data, journals) = crate::db::salvage_sources(path)?;
    let journal_path = crate::db::journal_path(path);
    let live = journals
        .iter()
        .find(|(p, _)| *p == journal_path)
        .map(|(_, s)| s as &dyn Storage);
    let copies: Vec<&dyn Storage> = journals
        .iter()
        .filter(|(p, _)| *p != journal_path)
        .map(|(_, s)| s as &dyn Storage)
        .collect();
    salvage_storage(&data, live, &copies, opts, emit)
}

/// [`salvage_file`] over storages: the data file, its journal and journal copies kept by
/// rollbacks. A rollback copy's commits were discarded on purpose (and their txids may
/// be reused since): its images only refill lost ranges, its commits are never taken as
/// the newest.
pub fn salvage_storage<E: From<Error>>(
    data: &dyn Storage,
    journal: Option<&dyn Storage>,
    rollback_copies: &[&dyn Storage],
    mut opts: SalvageOptions<'_>,
    mut emit: impl FnMut(DumpItem) -> std::result::Result<(), E>,
) -> std::result::Result<SalvageSummary, E> {
    let journals: Vec<&dyn Storage> = journal
        .into_iter()
        .chain(rollback_copies.iter().copied())
        .collect();
    let ps = detect_page_size(data, &journals)?;
    let mut sources: Vec<&dyn Storage> = vec![data];
    sources.extend(journals.iter().copied());
    let live_journal = usize::from(journal.is_some());
    let mut scan = Scan {
        sources,
        ps,
        versions: HashMap::new(),
        commits: Vec::new(),
        summary: SalvageSummary::default(),
    };
    let metas = scan_data(&mut scan, &mut opts)?;
    // The database's identity: the metas', else the one most journal headers carry.
    let db_id = metas.first().map(|m| m.db_id);
    for m in &metas {
        scan.commits.push(Commit {
            txid: m.txid,
            root: m.root,
            next_bucket_id: m.next_bucket_id,
            what: "a meta slot",
        });
    }
    for src in 1..scan.sources.len() {
        let commits = scan.commits.len();
        scan_journal(&mut scan, src, db_id, &mut opts)?;
        if src > live_journal {
            scan.commits.truncate(commits);
        }
    }
    let rebuilt = rebuild(&mut scan, &mut opts)?;
    let mut summary = std::mem::take(&mut scan.summary);
    emit_all(&scan, rebuilt, &mut summary, &mut emit)?;
    Ok(summary)
}

/// The trees after the live walk and the refill.
struct Rebuilt {
    trees: BTreeMap<BucketId, Tree>,
}

fn rebuild(scan: &mut Scan<'_>, opts: &mut SalvageOptions<'_>) -> Result<Rebuilt> {
    let newest = scan
        .commits
        .iter()
        .max_by_key(|c| (c.txid, c.what == "a meta slot"))
        .copied();
    let mut trees: BTreeMap<BucketId, Tree> = BTreeMap::new();
    match newest {
        Some(c) => scan.summary.notes.push(format!(
            "newest commit: txid {} (from {}){}",
            c.txid,
            c.what,
            if c.root.is_null() { ", empty" } else { "" }
        )),
        None => scan.summary.notes.push(
            "no meta and no journal record verifies: every key comes from unreferenced pages"
                .into(),
        ),
    }
    // A meta slot's loss is no loss when a newer or equal commit is known from the
    // journal and the other slot: keep the conservative report otherwise.
    let mut used: HashSet<(u64, u64)> = HashSet::new();
    let mut queue: Vec<(BucketId, PageRef)> = Vec::new();
    let mut seen_trees: BTreeSet<BucketId> = BTreeSet::new();
    match newest {
        Some(c) => queue.push((BucketId::ROOT, c.root)),
        None => {
            trees
                .entry(BucketId::ROOT)
                .or_default()
                .lost
                .push(LostRange {
                    lo: None,
                    hi: None,
                    page: None,
                    reason: "no commit names a root".into(),
                });
        }
    }
    let mut walked = 0u64;
    while let Some((tree_id, root)) = queue.pop() {
        if !seen_trees.insert(tree_id) || seen_trees.len() > 1 << 24 {
            continue;
        }
        walked += 1;
        opts.report("rebuild", walked, walked + queue.len() as u64)?;
        let tree = trees.entry(tree_id).or_default();
        tree.reached = true;
        if root.is_null() {
            continue;
        }
        let mut stack: Vec<Frame> = vec![(root, None, None, 1)];
        while let Some((r, lo, hi, depth)) = stack.pop() {
            let lose = |tree: &mut Tree, reason: String| {
                tree.lost.push(LostRange {
                    lo: lo.clone(),
                    hi: hi.clone(),
                    page: Some(r.page_id.get()),
                    reason,
                })
            };
            let tree = trees.entry(tree_id).or_default();
            if depth > MAX_TREE_DEPTH || !used.insert((r.page_id.get(), r.txid.get())) {
                lose(
                    tree,
                    "the tree is deeper than the limit or revisits a page".into(),
                );
                continue;
            }
            let Some(loc) = scan.resolve(&r, tree_id) else {
                lose(
                    tree,
                    format!(
                        "page {} (txid {}) is unreadable: no verified copy of the version its parent names",
                        r.page_id, r.txid
                    ),
                );
                continue;
            };
            let page = scan.read(&loc)?;
            let node = match NodeView::validate(&page, &loc.h) {
                Ok(n) => n,
                Err(e) => {
                    lose(tree, format!("page {} does not verify: {e}", r.page_id));
                    continue;
                }
            };
            if node.is_leaf() {
                for i in 0..node.len() {
                    let (Ok(key), Ok(v)) = (node.key(i), node.leaf_value(i)) else {
                        continue;
                    };
                    let val = to_val(v);
                    if let Val::Bucket(h) = &val {
                        if h.bucket_id.get() >= 2 && h.bucket_id != tree_id {
                            queue.push((h.bucket_id, h.root));
                        }
                    }
                    tree.entries.insert(
                        key.to_vec(),
                        Ent {
                            txid: loc.h.txid,
                            val,
                            older: false,
                        },
                    );
                }
            } else {
                let n = node.len();
                for i in (0..n).rev() {
                    let (Ok(child), Ok(key)) = (node.branch_child(i), node.key(i)) else {
                        continue;
                    };
                    let child_lo = if i == 0 {
                        lo.clone()
                    } else {
                        Some(key.to_vec())
                    };
                    let child_hi = if i + 1 == n {
                        hi.clone()
                    } else {
                        node.key(i + 1).ok().map(<[u8]>::to_vec)
                    };
                    stack.push((child, child_lo, child_hi, depth + 1));
                }
            }
        }
    }
    let live_txid = newest.map(|c| c.txid);
    let next_bucket = newest.map(|c| c.next_bucket_id);
    let any_lost = trees.values().any(|t| !t.lost.is_empty());
    // Refill: unreferenced leaves, oldest txid first so that the newest wins.
    let mut pool: Vec<Loc> = scan
        .versions
        .values()
        .flatten()
        .filter(|_| !opts.live_only)
        .filter(|l| l.h.page_type == PageType::Leaf)
        .filter(|l| !used.contains(&(l.h.page_id.get(), l.h.txid.get())))
        .copied()
        .collect();
    pool.sort_by_key(|l| (l.h.txid, l.h.page_id, l.src));
    let mut uncommitted = 0u64;
    let mut dead = 0u64;
    for loc in pool {
        if live_txid.is_some_and(|t| loc.h.txid > t) {
            uncommitted += 1;
            continue;
        }
        let t = loc.h.tree_id;
        let reached = trees.get(&t).is_some_and(|x| x.reached);
        if reached && trees.get(&t).is_some_and(|x| x.lost.is_empty()) {
            continue;
        }
        if !reached && (!any_lost || next_bucket.is_some_and(|n| t >= n)) {
            dead += 1;
            continue;
        }
        let page = scan.read(&loc)?;
        let Ok(node) = NodeView::validate(&page, &loc.h) else {
            continue;
        };
        let tree = trees.entry(t).or_default();
        for i in 0..node.len() {
            let (Ok(key), Ok(v)) = (node.key(i), node.leaf_value(i)) else {
                continue;
            };
            if reached && !tree.in_lost_range(key) {
                continue;
            }
            if tree.entries.get(key).is_some_and(|e| !e.older) {
                continue;
            }
            tree.entries.insert(
                key.to_vec(),
                Ent {
                    txid: loc.h.txid,
                    val: to_val(v),
                    older: true,
                },
            );
        }
    }
    if uncommitted > 0 {
        scan.summary.notes.push(format!(
            "{uncommitted} verified leaves newer than the newest commit ignored (never committed)"
        ));
    }
    if dead > 0 {
        scan.summary.notes.push(format!(
            "{dead} verified leaves of buckets the newest commit does not hold ignored (deleted buckets)"
        ));
    }
    Ok(Rebuilt { trees })
}

fn to_val(v: LeafValue<'_>) -> Val {
    match v {
        LeafValue::Inline(b) => Val::Inline(b.to_vec()),
        LeafValue::Overflow { extent, len } => Val::Overflow(extent, len),
        LeafValue::Bucket(h) => Val::Bucket(h),
    }
}

/// A bucket's place: its parent tree, name and sequence, from the entry naming it.
struct Place {
    parent: BucketId,
    name: Vec<u8>,
    sequence: u64,
    older: bool,
}

fn emit_all<E: From<Error>>(
    scan: &Scan<'_>,
    rebuilt: Rebuilt,
    summary: &mut SalvageSummary,
    emit: &mut impl FnMut(DumpItem) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let Rebuilt { trees } = rebuilt;
    let mut places: BTreeMap<BucketId, Place> = BTreeMap::new();
    for (&t, tree) in &trees {
        for (k, e) in &tree.entries {
            if let Val::Bucket(h) = &e.val {
                if h.bucket_id.get() < 2 || h.bucket_id == t {
                    continue;
                }
                let better = places.get(&h.bucket_id).is_none_or(|p| p.older && !e.older);
                if better {
                    places.insert(
                        h.bucket_id,
                        Place {
                            parent: t,
                            name: k.clone(),
                            sequence: h.sequence,
                            older: e.older,
                        },
                    );
                }
            }
        }
    }
    // Paths, bounded by the nesting limit (a loop of names ends in lost+found).
    let path_of = |b: BucketId| -> Vec<Vec<u8>> {
        let mut names = Vec::new();
        let mut at = b;
        let mut seen = HashSet::new();
        loop {
            if at == BucketId::ROOT {
                names.reverse();
                return names;
            }
            match places.get(&at) {
                Some(p) if seen.insert(at) && names.len() < MAX_BUCKET_DEPTH => {
                    names.push(p.name.clone());
                    at = p.parent;
                }
                _ => {
                    names.push(format!("bucket-{}", at.get()).into_bytes());
                    names.push(LOST_AND_FOUND.to_vec());
                    names.reverse();
                    return names;
                }
            }
        }
    };
    let mut ordered: Vec<(Vec<Vec<u8>>, BucketId)> = trees
        .keys()
        .copied()
        .chain(places.keys().copied())
        .filter(|&t| t != BucketId::ROOT)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|t| (path_of(t), t))
        .filter(|(p, _)| p.len() <= MAX_BUCKET_DEPTH)
        .collect();
    ordered.sort();
    let lost_found_used = ordered.iter().any(|(p, t)| {
        p.first().map(Vec::as_slice) == Some(LOST_AND_FOUND) && !places.contains_key(t)
    });
    if lost_found_used
        && !ordered
            .iter()
            .any(|(p, _)| p.as_slice() == [LOST_AND_FOUND.to_vec()])
    {
        emit(DumpItem::Bucket {
            path: vec![LOST_AND_FOUND.to_vec()],
            sequence: 0,
        })?;
    }
    for (path, t) in &ordered {
        if !places.contains_key(t) && !path.is_empty() {
            summary.lost.push(Lost {
                bucket: path.clone(),
                reason: format!(
                    "the entry naming bucket {t} is lost: its keys are kept under {}",
                    String::from_utf8_lossy(&path.join(&b'/'))
                ),
                ..Lost::default()
            });
        }
        summary.buckets_recovered += 1;
        emit(DumpItem::Bucket {
            path: path.clone(),
            sequence: places.get(t).map_or(0, |p| p.sequence),
        })?;
        let Some(tree) = trees.get(t) else { continue };
        for r in &tree.lost {
            summary.lost.push(Lost {
                bucket: path.clone(),
                page: r.page,
                lower: r.lo.clone(),
                upper: r.hi.clone(),
                reason: r.reason.clone(),
                ..Lost::default()
            });
        }
        if !tree.reached {
            summary.lost.push(Lost {
                bucket: path.clone(),
                reason: "the bucket's tree is not reachable from the newest commit: its keys come from unreferenced pages".into(),
                ..Lost::default()
            });
        }
        for (k, e) in &tree.entries {
            let value = match &e.val {
                Val::Bucket(_) => continue,
                Val::Inline(v) => v.clone(),
                Val::Overflow(r, len) => match overflow(scan, r, *t, *len) {
                    Some(v) => v,
                    None => {
                        summary.lost.push(Lost {
                            bucket: path.clone(),
                            page: Some(r.page_id.get()),
                            lower: Some(k.clone()),
                            reason: "the key's overflow value is unreadable".into(),
                            ..Lost::default()
                        });
                        continue;
                    }
                },
            };
            if e.older {
                summary.possibly_older.push(Stale {
                    bucket: path.clone(),
                    key: k.clone(),
                    txid: e.txid.get(),
                });
            }
            summary.keys_recovered += 1;
            emit(DumpItem::Pair(Pair {
                bucket: path.clone(),
                key: k.clone(),
                value,
            }))?;
        }
    }
    if let Some(root) = trees.get(&BucketId::ROOT) {
        for r in &root.lost {
            summary.lost.push(Lost {
                bucket: Vec::new(),
                page: r.page,
                lower: r.lo.clone(),
                upper: r.hi.clone(),
                reason: format!("bucket names lost: {}", r.reason),
                ..Lost::default()
            });
        }
        let plain = root
            .entries
            .values()
            .filter(|e| !matches!(e.val, Val::Bucket(_)))
            .count();
        if plain > 0 {
            summary.notes.push(format!(
                "{plain} plain values found in the root bucket's pages ignored (it holds only buckets)"
            ));
        }
    }
    Ok(())
}

fn overflow(scan: &Scan<'_>, r: &PageRef, tree: BucketId, len: u64) -> Option<Vec<u8>> {
    let loc = scan.resolve(r, tree)?;
    let page = scan.read(&loc).ok()?;
    let range = overflow_value_range(&page, &loc.h, len).ok()?;
    page.get(range).map(<[u8]>::to_vec)
}
