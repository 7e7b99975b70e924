//! Salvage: recover every key that can be trusted from a damaged file.
//!
//! 1. Pick the active meta (the newest valid one; or the one asked for).
//! 2. Walk every bucket tree from it with a global visited bitmap and an explicit
//!    stack. A child is used only if its page reads strictly (id matches, type is
//!    branch/leaf, elements in bounds), its keys are in order and inside the range
//!    its parent gives it, it is not already visited (cycles and double references
//!    keep their first use) and the depth bound holds. Anything else is a lost
//!    subtree: recorded as a *hole* (bucket path, key range) and reported.
//! 3. Orphan leaves (optional, see [`OrphanPolicy`]): pages below the high-water
//!    mark that were not reached and are not free, that read strictly as a leaf
//!    with ordered keys, and whose keys all fall inside exactly one hole, are
//!    attributed to that hole's bucket. Keys already recovered from the tree win
//!    (the tree from the newest meta is the newest data; bbolt pages carry no
//!    txid, so among orphans the first one found wins and conflicts are counted).
//!    Bucket elements on orphan leaves bring their whole sub-tree back the same way.
//! 4. Write a fresh file with the writer: same page size and freelist mode.

use std::collections::HashSet;
use std::path::Path;
use untorn::report::{Lost, SalvageSummary};

use crate::error::Result;
use crate::file::BoltFile;
use crate::format::{BucketHeader, Node, NodeKind, BUCKET_HEADER_SIZE};
use crate::tree::{path_display, verify_node, DumpItem, Entry};
use crate::writer::{write_file, BucketData, Value, WriteOptions};
use untorn::limits::{MAX_BUCKET_DEPTH, MAX_TREE_DEPTH};

/// Top-level bucket of a salvaged file that holds what salvage kept but could not
/// attribute to a bucket on evidence (one sub-bucket per orphan tree, named after its
/// page). bbolt and etcd ignore buckets they do not know.
pub const LOST_AND_FOUND: &[u8] = b"lost+found";

/// Whether salvage may use unreachable leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrphanPolicy {
    /// Only what the tree reaches.
    Never,
    /// Use orphans only when the freelist is synced and readable, so that free
    /// (possibly stale) pages can be told apart from leaked ones. The default.
    #[default]
    WhenFreelistSynced,
    /// Also for NoFreelistSync files: free pages may then hold stale versions of
    /// lost ranges, so deleted keys can come back. Use with care.
    Always,
}

/// Options of salvage.
#[derive(Debug, Clone, Default)]
pub struct SalvageOptions {
    /// Orphan leaves policy.
    pub orphans: OrphanPolicy,
    /// Use this meta (0 or 1) instead of the newest valid one.
    pub meta: Option<usize>,
    /// Output page size (default: the source's).
    pub page_size: Option<u32>,
    /// Output freelist mode (default: the source's).
    pub no_freelist_sync: Option<bool>,
}

/// A subtree that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostSubtree {
    /// Bucket the subtree belongs to.
    pub bucket: Vec<Vec<u8>>,
    /// The page referenced.
    pub page: u64,
    /// The page that referenced it (None for a bucket root).
    pub parent: Option<u64>,
    /// Key range the subtree covered (lower inclusive), when known.
    pub lower: Option<Vec<u8>>,
    /// Upper bound (exclusive), when known.
    pub upper: Option<Vec<u8>>,
    /// Why it was not used.
    pub reason: String,
}

/// What salvage did and what was lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// Meta used (0 or 1).
    pub meta_used: usize,
    /// Whether the newest meta was unusable.
    pub meta_fallback: bool,
    /// Txid of the meta used.
    pub txid: u64,
    /// Page size of the source.
    pub page_size: u32,
    /// Whether the source used NoFreelistSync.
    pub no_freelist_sync: bool,
    /// High-water mark of the source.
    pub hwm: u64,
    /// Tree pages read and used.
    pub pages_used: u64,
    /// Subtrees not used, with reasons.
    pub lost: Vec<LostSubtree>,
    /// Buckets whose header could not be read (recreated empty).
    pub unreadable_buckets: Vec<(Vec<Vec<u8>>, String)>,
    /// Orphan leaves used.
    pub orphan_pages_used: Vec<u64>,
    /// Orphan leaves that parsed but could not be attributed to one hole.
    pub orphan_pages_unattributed: Vec<u64>,
    /// Keys recovered from orphan leaves.
    pub orphan_keys: u64,
    /// Keys on orphan leaves skipped because a key was already recovered.
    pub orphan_conflicts: u64,
    /// Keys recovered in total.
    pub keys_recovered: u64,
    /// Buckets recovered (not counting the root bucket).
    pub buckets_recovered: u64,
    /// Pages in the written file (0 when nothing was written).
    pub pages_written: u64,
    /// Why orphan leaves were not considered, when they were not.
    pub orphans_skipped: Option<String>,
}

impl SalvageReport {
    /// Whether the tree was read without losing any subtree or bucket (orphans
    /// may still have recovered keys of lost subtrees when this is false).
    pub fn nothing_lost(&self) -> bool {
        self.unreadable_buckets.is_empty() && self.lost.is_empty()
    }

    /// What was recovered and lost, in the report vocabulary both formats share: an
    /// unusable newest meta (its last commit is lost), every lost subtree, and every
    /// bucket that had to be recreated empty.
    pub fn summary(&self) -> SalvageSummary {
        let mut lost = Vec::new();
        if self.meta_fallback {
            lost.push(Lost {
                page: Some(u64::from(self.meta_used == 0)),
                reason: format!(
                    "the newest meta is unusable; salvaged the older state (meta {}, txid {}): \
                     the last commit is lost",
                    self.meta_used, self.txid
                ),
                ..Lost::default()
            });
        }
        lost.extend(self.lost.iter().map(|l| Lost {
            bucket: l.bucket.clone(),
            page: Some(l.page),
            parent: l.parent,
            lower: l.lower.clone(),
            upper: l.upper.clone(),
            after: None,
            reason: l.reason.clone(),
        }));
        lost.extend(self.unreadable_buckets.iter().map(|(path, why)| Lost {
            bucket: path.clone(),
            reason: format!("bucket unreadable (recreated empty): {why}"),
            ..Lost::default()
        }));
        SalvageSummary {
            keys_recovered: self.keys_recovered,
            buckets_recovered: self.buckets_recovered,
            lost,
        }
    }
}

impl std::fmt::Display for SalvageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "salvage from meta {} (txid {}){}: {} keys in {} buckets recovered; {} tree pages used",
            self.meta_used,
            self.txid,
            if self.meta_fallback {
                ", newest meta unusable"
            } else {
                ""
            },
            self.keys_recovered,
            self.buckets_recovered,
            self.pages_used
        )?;
        for l in &self.lost {
            writeln!(
                f,
                "lost subtree at page {} (from {}) in bucket {}: {}",
                l.page,
                l.parent
                    .map(|p| format!("page {p}"))
                    .unwrap_or_else(|| "bucket header".into()),
                path_display(&l.bucket),
                l.reason
            )?;
        }
        for (p, why) in &self.unreadable_buckets {
            writeln!(
                f,
                "bucket {} unreadable (recreated empty): {why}",
                path_display(p)
            )?;
        }
        writeln!(
            f,
            "orphan leaves: {} used ({} keys, {} conflicts skipped), {} unattributed",
            self.orphan_pages_used.len(),
            self.orphan_keys,
            self.orphan_conflicts,
            self.orphan_pages_unattributed.len()
        )
    }
}

/// The salvaged contents, ready to write as bbolt or to load elsewhere.
#[derive(Debug, Clone)]
pub struct Salvaged {
    /// Everything recovered.
    pub data: BucketData,
    /// What happened.
    pub report: SalvageReport,
}

impl Salvaged {
    /// Every bucket and pair, in order, a bucket before its contents (for
    /// `--to untorn`).
    pub fn items(&self) -> Items<'_> {
        Items {
            stack: vec![(Vec::new(), self.data.entries.iter())],
        }
    }
}

/// A bucket path and the iterator over that bucket's entries.
type ItemsFrame<'a> = (
    Vec<Vec<u8>>,
    std::collections::btree_map::Iter<'a, Vec<u8>, Value>,
);

/// A child reference with its key range (lower inclusive, upper exclusive).
type ChildRef = (u64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Iterator over salvaged items (see [`Salvaged::items`]).
pub struct Items<'a> {
    stack: Vec<ItemsFrame<'a>>,
}

impl Iterator for Items<'_> {
    type Item = DumpItem;
    fn next(&mut self) -> Option<DumpItem> {
        loop {
            let (path, iter) = self.stack.last_mut()?;
            match iter.next() {
                None => {
                    self.stack.pop();
                }
                Some((k, Value::Data(v))) => {
                    return Some(DumpItem::Pair(Entry {
                        bucket: path.clone(),
                        key: k.clone(),
                        value: v.clone(),
                    }))
                }
                Some((k, Value::Bucket(b))) => {
                    let mut sub = path.clone();
                    sub.push(k.clone());
                    self.stack.push((sub.clone(), b.entries.iter()));
                    return Some(DumpItem::Bucket {
                        path: sub,
                        sequence: b.sequence,
                    });
                }
            }
        }
    }
}

struct Hole {
    bucket: Vec<Vec<u8>>,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
}

struct Ctx<'a> {
    file: &'a BoltFile,
    visited: Vec<bool>,
    data: BucketData,
    report: SalvageReport,
    holes: Vec<Hole>,
    /// Buckets to walk: (path, root page).
    jobs: Vec<(Vec<Vec<u8>>, u64)>,
}

impl Ctx<'_> {
    fn mark(&mut self, id: u64) -> bool {
        match usize::try_from(id)
            .ok()
            .and_then(|i| self.visited.get_mut(i))
        {
            Some(v) if !*v => {
                *v = true;
                true
            }
            _ => false,
        }
    }

    fn is_visited(&self, id: u64) -> bool {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.visited.get(i))
            .copied()
            .unwrap_or(true)
    }

    fn lose(
        &mut self,
        bucket: &[Vec<u8>],
        page: u64,
        parent: Option<u64>,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        reason: String,
    ) {
        self.holes.push(Hole {
            bucket: bucket.to_vec(),
            lower: lower.clone(),
            upper: upper.clone(),
        });
        self.report.lost.push(LostSubtree {
            bucket: bucket.to_vec(),
            page,
            parent,
            lower,
            upper,
            reason,
        });
    }

    /// Inserts the elements of a verified leaf into bucket `path`. Returns keys added.
    fn take_leaf(&mut self, path: &[Vec<u8>], node: &Node, orphan: bool) -> u64 {
        let mut added = 0;
        // Inline buckets are expanded with a worklist (each lies inside its parent's value).
        let mut work: Vec<(Vec<Vec<u8>>, Node)> = vec![(path.to_vec(), node.clone())];
        while let Some((p, n)) = work.pop() {
            for i in 0..n.elems.len() {
                let key = n.key(i).to_vec();
                if !n.is_bucket(i) {
                    let Some(b) = self.data.bucket_mut(&p) else {
                        continue;
                    };
                    if b.entries.contains_key(&key) {
                        if orphan {
                            self.report.orphan_conflicts += 1;
                        }
                        continue;
                    }
                    b.entries.insert(key, Value::Data(n.value(i).to_vec()));
                    added += 1;
                    continue;
                }
                let mut sub = p.clone();
                sub.push(key);
                if sub.len() > MAX_BUCKET_DEPTH {
                    continue;
                }
                let v = n.value(i);
                let Some(h) = BucketHeader::decode(v) else {
                    self.report
                        .unreadable_buckets
                        .push((sub.clone(), format!("value of {} bytes", v.len())));
                    let _ = self.data.bucket_mut(&sub);
                    continue;
                };
                if let Some(b) = self.data.bucket_mut(&sub) {
                    b.sequence = h.sequence;
                }
                if h.root != 0 {
                    self.jobs.push((sub, h.root));
                    continue;
                }
                match Node::parse(v.get(BUCKET_HEADER_SIZE..).unwrap_or(&[]).to_vec()) {
                    Ok(inline)
                        if inline.kind == NodeKind::Leaf
                            && verify_node(0, &inline, None, None).is_ok() =>
                    {
                        work.push((sub, inline));
                    }
                    Ok(_) => self
                        .report
                        .unreadable_buckets
                        .push((sub, "inline bucket is not an ordered leaf".into())),
                    Err(e) => self
                        .report
                        .unreadable_buckets
                        .push((sub, format!("inline bucket: {e}"))),
                }
            }
        }
        added
    }

    /// Walks all queued bucket trees.
    fn walk_jobs(&mut self) {
        struct Frame {
            pgid: u64,
            children: Vec<ChildRef>,
            next: usize,
        }
        while let Some((path, root)) = self.jobs.pop() {
            let _ = self.data.bucket_mut(&path);
            let mut stack: Vec<Frame> = Vec::new();
            let mut pending = Some((root, None::<u64>, None::<Vec<u8>>, None::<Vec<u8>>));
            loop {
                if let Some((pgid, parent, lower, upper)) = pending.take() {
                    let hwm = self.file.hwm();
                    let reason = if pgid < 2 || pgid >= hwm {
                        Some(format!("page id outside 2..{hwm}"))
                    } else if stack.len() >= MAX_TREE_DEPTH {
                        Some(format!("deeper than {MAX_TREE_DEPTH} levels"))
                    } else if self.is_visited(pgid) {
                        Some(
                            "page already used (cycle or reference shared with another parent)"
                                .into(),
                        )
                    } else {
                        None
                    };
                    if let Some(r) = reason {
                        self.lose(&path, pgid, parent, lower, upper, r);
                    } else {
                        match self.file.read_node(pgid) {
                            Err(p) => self.lose(&path, pgid, parent, lower, upper, p.to_string()),
                            Ok(node) => {
                                match verify_node(pgid, &node, lower.as_deref(), upper.as_deref()) {
                                    Err(e) => {
                                        self.lose(&path, pgid, parent, lower, upper, e.to_string())
                                    }
                                    Ok(()) => {
                                        self.mark(pgid);
                                        for i in 1..=u64::from(node.header.overflow) {
                                            self.mark(pgid + i);
                                        }
                                        self.report.pages_used += 1;
                                        match node.kind {
                                            NodeKind::Leaf => {
                                                self.take_leaf(&path, &node, false);
                                            }
                                            NodeKind::Branch => {
                                                let n = node.elems.len();
                                                let children = (0..n)
                                                    .map(|i| {
                                                        let lo = if i == 0 {
                                                            lower.clone()
                                                        } else {
                                                            Some(node.key(i).to_vec())
                                                        };
                                                        let hi = if i + 1 < n {
                                                            Some(node.key(i + 1).to_vec())
                                                        } else {
                                                            upper.clone()
                                                        };
                                                        (
                                                            node.elems
                                                                .get(i)
                                                                .map(|e| e.pgid)
                                                                .unwrap_or(0),
                                                            lo,
                                                            hi,
                                                        )
                                                    })
                                                    .collect();
                                                stack.push(Frame {
                                                    pgid,
                                                    children,
                                                    next: 0,
                                                });
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                let Some(top) = stack.last_mut() else { break };
                match top.children.get_mut(top.next) {
                    None => {
                        stack.pop();
                    }
                    Some(c) => {
                        top.next += 1;
                        let (id, lo, hi) = std::mem::take(c);
                        pending = Some((id, Some(top.pgid), lo, hi));
                    }
                }
            }
        }
    }

    fn orphans(&mut self, free: &HashSet<u64>) {
        let hwm = self.file.hwm();
        for id in 2..hwm {
            if self.holes.is_empty() {
                return;
            }
            if self.visited.get(id as usize).copied().unwrap_or(true) || free.contains(&id) {
                continue;
            }
            let Ok(node) = self.file.read_node(id) else {
                continue;
            };
            if node.kind != NodeKind::Leaf
                || node.elems.is_empty()
                || verify_node(id, &node, None, None).is_err()
            {
                continue;
            }
            let first = node.key(0);
            let last = node.key(node.elems.len() - 1);
            let mut matches = self.holes.iter().filter(|h| {
                h.lower.as_deref().is_none_or(|lo| first >= lo)
                    && h.upper.as_deref().is_none_or(|hi| last < hi)
            });
            let (Some(h), None) = (matches.next(), matches.next()) else {
                self.report.orphan_pages_unattributed.push(id);
                continue;
            };
            let bucket = h.bucket.clone();
            self.mark(id);
            for i in 1..=u64::from(node.header.overflow) {
                self.mark(id + i);
            }
            self.report.orphan_pages_used.push(id);
            let added = self.take_leaf(&bucket, &node, true);
            self.report.orphan_keys += added;
            // Buckets found on orphan leaves are walked like any other.
            self.walk_jobs();
        }
    }
}

/// Salvages an open file into memory.
pub fn salvage_file(file: BoltFile, opts: &SalvageOptions) -> Result<Salvaged> {
    let file = match opts.meta {
        Some(i) => file.use_meta(i)?,
        None => file,
    };
    let meta = file.meta();
    let mut ctx = Ctx {
        file: &file,
        visited: vec![false; usize::try_from(meta.pgid).unwrap_or(0)],
        data: BucketData {
            sequence: meta.sequence,
            ..BucketData::default()
        },
        report: SalvageReport {
            meta_used: file.active_index(),
            meta_fallback: file.is_fallback(),
            txid: meta.txid,
            page_size: file.page_size(),
            no_freelist_sync: meta.no_freelist_sync(),
            hwm: meta.pgid,
            ..SalvageReport::default()
        },
        holes: Vec::new(),
        jobs: vec![(Vec::new(), meta.root)],
    };
    ctx.walk_jobs();
    let free: Option<HashSet<u64>> = match file.read_freelist() {
        Ok(Some((fl, overflow, ids))) => {
            for i in 0..=u64::from(overflow) {
                ctx.mark(fl + i);
            }
            Some(ids.into_iter().collect())
        }
        Ok(None) | Err(_) => None,
    };
    // Attribution compares each orphan with every hole; past this many holes the
    // file is too damaged for that to stay linear, and orphans are not used.
    const MAX_HOLES_FOR_ORPHANS: usize = 256;
    if ctx.holes.len() > MAX_HOLES_FOR_ORPHANS {
        ctx.report.orphans_skipped = Some(format!(
            "{} lost subtrees (more than {MAX_HOLES_FOR_ORPHANS})",
            ctx.holes.len()
        ));
    } else {
        match (opts.orphans, free) {
            (OrphanPolicy::Never, _) => {
                ctx.report.orphans_skipped = Some("orphan policy: never".into())
            }
            (OrphanPolicy::WhenFreelistSynced, None) => {
                ctx.report.orphans_skipped =
                    Some("the freelist is not synced or unreadable (policy: when synced)".into())
            }
            (_, Some(free)) => ctx.orphans(&free),
            (OrphanPolicy::Always, None) => ctx.orphans(&HashSet::new()),
        }
    }
    let (buckets, keys) = ctx.data.counts();
    ctx.report.keys_recovered = keys;
    ctx.report.buckets_recovered = buckets;
    Ok(Salvaged {
        data: ctx.data,
        report: ctx.report,
    })
}

/// Salvages the file at `src` into memory (for writing elsewhere, e.g. untorn).
pub fn salvage_entries(src: impl AsRef<Path>, opts: &SalvageOptions) -> Result<Salvaged> {
    salvage_file(BoltFile::open(src)?, opts)
}

/// Salvages `src` into a fresh bbolt file at `dst` (same page size and freelist
/// mode unless overridden). `dst` may equal `src`: everything is read first and
/// the new file replaces the old one by rename.
pub fn salvage(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
    opts: &SalvageOptions,
) -> Result<SalvageReport> {
    let s = salvage_entries(src, opts)?;
    let wopts = WriteOptions {
        page_size: opts.page_size.unwrap_or(s.report.page_size),
        no_freelist_sync: opts.no_freelist_sync.unwrap_or(s.report.no_freelist_sync),
        txid: s.report.txid.max(1),
        ..WriteOptions::default()
    };
    let stats = write_file(dst, &s.data, &wopts)?;
    let mut report = s.report;
    report.pages_written = stats.pages;
    Ok(report)
}
