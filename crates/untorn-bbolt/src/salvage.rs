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
//!
//! Why this file is long: the walk, the holes it records and the orphan placement that
//! fills them share one private state (claimed pages, visited set, holes) and run as
//! passes over it; the report types (about a fifth) come first.

use std::collections::HashSet;
use std::path::Path;
use untorn::unstable::report::{count, Lost, SalvageSummary};

use crate::error::Result;
use crate::file::BoltFile;
use crate::format::{BucketHeader, Node, NodeKind, BUCKET_HEADER_SIZE};
use crate::tree::{path_display, verify_node, DumpItem, Entry};
use crate::writer::{write_file, BucketData, Value, WriteOptions};
use untorn::unstable::limits::{MAX_BUCKET_DEPTH, MAX_TREE_DEPTH};

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
    /// What salvage kept in the `lost+found` bucket because no bucket is proven.
    pub lost_and_found: Vec<LostAndFound>,
    /// Branch pages whose separators were out of order (children kept, resorted).
    pub resorted_branches: Vec<u64>,
    /// Decisions worth a line each (resorted pages, repaired bucket flags, pages
    /// referenced from two buckets).
    pub notes: Vec<String>,
    /// Whether the source had an etcd snapshot trailer (the output gets a new one).
    pub snapshot_trailer: bool,
}

/// Keys kept in `lost+found` (bucket `lost+found/page-N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostAndFound {
    /// The orphan page (or the page the value was on).
    pub page: u64,
    /// Keys kept.
    pub keys: u64,
    /// Why no bucket is proven.
    pub reason: String,
}

impl SalvageReport {
    /// Keys (plain values) currently in `data` (a progress count for attribution).
    fn keys_in(&self, data: &BucketData) -> u64 {
        data.counts().1
    }

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
            ..SalvageSummary::default()
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
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for l in &self.lost_and_found {
            writeln!(
                f,
                "lost+found/page-{}: {} keys: {}",
                l.page, l.keys, l.reason
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

/// How a reference failed: the page it names was redirected away (out of range,
/// used elsewhere, keys outside the reference's range) or destroyed in place
/// (zeroed, unparseable, holding another page's content). The difference tells which
/// orphans may fill the hole (see [`Ctx::orphans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoleKind {
    Redirected,
    Destroyed,
}

struct Hole {
    bucket: Vec<Vec<u8>>,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    /// Depth of the failed reference below the bucket's root (0 = the root itself).
    depth: usize,
    kind: HoleKind,
}

/// Who references a page: a branch (by page id) or a bucket header (by bucket path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClaimBy {
    Branch(u64),
    Root,
}

/// One walk job: a tree (or subtree) to read into bucket `path`.
struct Job {
    path: Vec<Vec<u8>>,
    root: u64,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    /// Depth of `root` below the bucket's root.
    depth: usize,
    /// Whether `root` is a bucket's root (a claim by a bucket header) or a subtree.
    claim_root: bool,
    /// Whether this job reads an orphan tree (conflicts are then counted).
    orphan: bool,
}

/// A branch being walked: its children with their key ranges.
struct WalkFrame {
    pgid: u64,
    depth: usize,
    children: Vec<ChildRef>,
    next: usize,
}

/// A page reached from two buckets: (page, first claim, later claim).
type Contest = (u64, (Vec<Vec<u8>>, ClaimBy), (Vec<Vec<u8>>, ClaimBy, bool));

/// What a page reached from two buckets is decided to be: the one claim allowed to
/// use it, or none.
type Overrides = std::collections::HashMap<u64, Option<(Vec<Vec<u8>>, ClaimBy)>>;

struct Ctx<'a> {
    file: &'a BoltFile,
    visited: Vec<bool>,
    /// For used pages: the bucket and the claim that used them.
    owner: std::collections::HashMap<u64, (Vec<Vec<u8>>, ClaimBy)>,
    data: BucketData,
    report: SalvageReport,
    holes: Vec<Hole>,
    jobs: Vec<Job>,
    /// Depth of the leaves of each bucket's tree, as found.
    leaf_depth: std::collections::HashMap<Vec<Vec<u8>>, usize>,
    contests: Vec<Contest>,
    overrides: Overrides,
    /// Buckets that hold only buckets on the evidence of their surviving pages (decided
    /// after a first walk); bbolt's root bucket always does.
    buckets_only: HashSet<Vec<Vec<u8>>>,
    /// Per bucket, what its leaves read through the tree hold: (bucket elements,
    /// leaves with a plain value that is not bucket-shaped).
    evidence: std::collections::HashMap<Vec<Vec<u8>>, (u64, u64)>,
}

impl Ctx<'_> {
    /// Whether plain values may not go into bucket `path`: bbolt's root bucket, and a
    /// bucket whose surviving pages hold only buckets.
    fn holds_only_buckets(&self, path: &[Vec<u8>]) -> bool {
        path.is_empty() || self.buckets_only.contains(path)
    }

    /// Whether a plain value is shaped like a bucket header whose bucket flag was lost:
    /// a header whose root lies in the file, or an inline bucket that parses as a leaf.
    fn bucket_shaped(&self, v: &[u8]) -> bool {
        let Some(h) = BucketHeader::decode(v) else {
            return false;
        };
        if h.root == 0 {
            return matches!(
                Node::parse(v.get(BUCKET_HEADER_SIZE..).unwrap_or(&[]).to_vec()),
                Ok(n) if n.kind == NodeKind::Leaf
            );
        }
        h.root >= 2 && h.root < self.file.hwm()
    }

    /// The buckets (not the root) whose leaves read through the tree hold bucket
    /// elements and no plain value except bucket-shaped ones.
    fn buckets_only_by_evidence(&self) -> HashSet<Vec<Vec<u8>>> {
        self.evidence
            .iter()
            .filter(|(p, (buckets, value_leaves))| {
                !p.is_empty() && *buckets > 0 && *value_leaves == 0
            })
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Whether this walk put a plain value into one of `buckets`.
    fn values_in(&self, buckets: &HashSet<Vec<Vec<u8>>>) -> bool {
        buckets.iter().any(|p| {
            self.data
                .bucket(p)
                .is_some_and(|b| b.entries.values().any(|v| matches!(v, Value::Data(_))))
        })
    }
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

    #[allow(clippy::too_many_arguments)]
    fn lose(
        &mut self,
        bucket: &[Vec<u8>],
        page: u64,
        parent: Option<u64>,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        depth: usize,
        kind: HoleKind,
        reason: String,
    ) {
        self.holes.push(Hole {
            bucket: bucket.to_vec(),
            lower: lower.clone(),
            upper: upper.clone(),
            depth,
            kind,
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
    ///
    /// An element whose bytes are not where bbolt writes them, or whose key breaks
    /// the page's key order, may carry a damaged key: it goes to `lost+found`, never
    /// into a bucket under a name that may not be its own. bbolt's root bucket holds
    /// only buckets: a plain element there is read as the bucket it must be when its
    /// value is a usable bucket header, and otherwise kept in `lost+found`.
    fn take_leaf(&mut self, path: &[Vec<u8>], node: &Node, pgid: u64, orphan: bool) -> u64 {
        let mut added = 0;
        let lost_found = vec![LOST_AND_FOUND.to_vec(), format!("page-{pgid}").into_bytes()];
        // What this leaf says about its bucket, when the tree reached it (evidence for
        // the buckets-only rule).
        if !orphan && path.first().map(Vec::as_slice) != Some(LOST_AND_FOUND) {
            let buckets = (0..node.elems.len()).filter(|&i| node.is_bucket(i)).count() as u64;
            let values = (0..node.elems.len())
                .any(|i| !node.is_bucket(i) && !self.bucket_shaped(node.value(i)));
            let e = self.evidence.entry(path.to_vec()).or_insert((0, 0));
            e.0 += buckets;
            e.1 += u64::from(values);
        }
        // Inline buckets are expanded with a worklist (each lies inside its parent's value).
        let mut work: Vec<(Vec<Vec<u8>>, Node)> = vec![(path.to_vec(), node.clone())];
        while let Some((p, n)) = work.pop() {
            let mut suspects = n.layout_suspects();
            suspects.extend(n.order_suspects());
            let in_lf = p.first().map(Vec::as_slice) == Some(LOST_AND_FOUND);
            if !suspects.is_empty() && !in_lf {
                suspects.sort_unstable();
                suspects.dedup();
                self.report.lost_and_found.push(LostAndFound {
                    page: pgid,
                    keys: suspects.len() as u64,
                    reason: format!(
                        "{} of a leaf of bucket {} whose bytes are misplaced or whose keys break the key order: their names are not proven",
                        count(suspects.len() as u64, "element"),
                        path_display(&p)
                    ),
                });
            }
            for i in 0..n.elems.len() {
                let key = n.key(i).to_vec();
                let v = n.value(i);
                let mut is_bucket = n.is_bucket(i);
                let p = if !in_lf && suspects.contains(&i) {
                    lost_found.clone()
                } else {
                    p.clone()
                };
                if !is_bucket && self.holds_only_buckets(&p) {
                    let which = if p.is_empty() {
                        "the root bucket, which holds only buckets".to_string()
                    } else {
                        format!(
                            "bucket {}, which on the evidence of its surviving pages holds only buckets",
                            path_display(&p)
                        )
                    };
                    if self.usable_bucket_header(v) {
                        self.report.notes.push(format!(
                            "page {pgid}: plain value {} in {which}; its value is a usable bucket header, read as a bucket",
                            path_display(std::slice::from_ref(&key))
                        ));
                        is_bucket = true;
                    } else {
                        if let Some(b) = self.data.bucket_mut(&lost_found) {
                            b.entries
                                .entry(key.clone())
                                .or_insert_with(|| Value::Data(v.to_vec()));
                        }
                        self.report.lost_and_found.push(LostAndFound {
                            page: pgid,
                            keys: 1,
                            reason: format!(
                                "plain value {} in {which}",
                                path_display(std::slice::from_ref(&key))
                            ),
                        });
                        continue;
                    }
                }
                if !is_bucket {
                    let Some(b) = self.data.bucket_mut(&p) else {
                        continue;
                    };
                    if b.entries.contains_key(&key) {
                        if orphan {
                            self.report.orphan_conflicts += 1;
                        }
                        continue;
                    }
                    b.entries.insert(key, Value::Data(v.to_vec()));
                    added += 1;
                    continue;
                }
                let mut sub = p.clone();
                sub.push(key);
                if sub.len() > MAX_BUCKET_DEPTH {
                    continue;
                }
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
                    self.jobs.push(Job {
                        path: sub,
                        root: h.root,
                        lower: None,
                        upper: None,
                        depth: 0,
                        claim_root: true,
                        orphan,
                    });
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

    /// Whether `v` is a bucket header whose tree can be read: an inline ordered leaf,
    /// or a root page in range that reads strictly and is not used yet.
    fn usable_bucket_header(&self, v: &[u8]) -> bool {
        let Some(h) = BucketHeader::decode(v) else {
            return false;
        };
        if h.root == 0 {
            return matches!(
                Node::parse(v.get(BUCKET_HEADER_SIZE..).unwrap_or(&[]).to_vec()),
                Ok(n) if n.kind == NodeKind::Leaf && n.first_order_violation().is_none()
            );
        }
        h.root >= 2
            && h.root < self.file.hwm()
            && !self.is_visited(h.root)
            && self.file.read_node(h.root).is_ok()
    }

    /// Checks a page's keys against its range. Key order inside a page is not
    /// required: the rebuild sorts, and a branch whose separators are out of order
    /// still names its children (they are then held to the branch's own range).
    fn in_range(node: &Node, lower: Option<&[u8]>, upper: Option<&[u8]>) -> bool {
        (0..node.elems.len()).all(|i| {
            let k = node.key(i);
            lower.is_none_or(|lo| k >= lo) && upper.is_none_or(|hi| k < hi)
        })
    }

    /// Walks all queued jobs.
    fn walk_jobs(&mut self) {
        while let Some(job) = self.jobs.pop() {
            let path = job.path;
            let _ = self.data.bucket_mut(&path);
            let mut stack: Vec<WalkFrame> = Vec::new();
            let first_claim = if job.claim_root {
                ClaimBy::Root
            } else {
                ClaimBy::Branch(0)
            };
            let mut pending = Some((
                job.root,
                None::<u64>,
                job.lower,
                job.upper,
                job.depth,
                first_claim,
            ));
            loop {
                if let Some((pgid, parent, lower, upper, depth, claim)) = pending.take() {
                    self.visit(
                        &path, pgid, parent, lower, upper, depth, claim, job.orphan, &mut stack,
                    );
                }
                let Some(top) = stack.last_mut() else { break };
                match top.children.get_mut(top.next) {
                    None => {
                        stack.pop();
                    }
                    Some(c) => {
                        top.next += 1;
                        let (id, lo, hi) = std::mem::take(c);
                        pending = Some((
                            id,
                            Some(top.pgid),
                            lo,
                            hi,
                            top.depth + 1,
                            ClaimBy::Branch(top.pgid),
                        ));
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn visit(
        &mut self,
        path: &[Vec<u8>],
        pgid: u64,
        parent: Option<u64>,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        depth: usize,
        claim: ClaimBy,
        orphan: bool,
        stack: &mut Vec<WalkFrame>,
    ) {
        let hwm = self.file.hwm();
        if pgid < 2 || pgid >= hwm {
            let r = format!("page id outside 2..{hwm}");
            return self.lose(
                path,
                pgid,
                parent,
                lower,
                upper,
                depth,
                HoleKind::Redirected,
                r,
            );
        }
        if depth >= MAX_TREE_DEPTH {
            let r = format!("deeper than {MAX_TREE_DEPTH} levels");
            return self.lose(
                path,
                pgid,
                parent,
                lower,
                upper,
                depth,
                HoleKind::Destroyed,
                r,
            );
        }
        if let Some(decision) = self.overrides.get(&pgid) {
            let allowed = decision
                .as_ref()
                .is_some_and(|(b, c)| b.as_slice() == path && *c == claim);
            if !allowed {
                let r =
                    "page referenced from two buckets; this reference is not proven to be its own"
                        .to_string();
                return self.lose(
                    path,
                    pgid,
                    parent,
                    lower,
                    upper,
                    depth,
                    HoleKind::Redirected,
                    r,
                );
            }
        }
        if self.is_visited(pgid) {
            if let Some((b, c)) = self.owner.get(&pgid).cloned() {
                if b.as_slice() != path {
                    let ok = self
                        .file
                        .read_node(pgid)
                        .is_ok_and(|n| Ctx::in_range(&n, lower.as_deref(), upper.as_deref()));
                    self.contests
                        .push((pgid, (b, c), (path.to_vec(), claim.clone(), ok)));
                }
            }
            let r = "page already used (cycle or reference shared with another parent)".to_string();
            return self.lose(
                path,
                pgid,
                parent,
                lower,
                upper,
                depth,
                HoleKind::Redirected,
                r,
            );
        }
        let node = match self.file.read_node(pgid) {
            Err(p) => {
                return self.lose(
                    path,
                    pgid,
                    parent,
                    lower,
                    upper,
                    depth,
                    HoleKind::Destroyed,
                    p.to_string(),
                )
            }
            Ok(n) => n,
        };
        if node.kind == NodeKind::Branch && node.elems.is_empty() {
            let r = "branch page has no elements".to_string();
            return self.lose(
                path,
                pgid,
                parent,
                lower,
                upper,
                depth,
                HoleKind::Destroyed,
                r,
            );
        }
        if !Ctx::in_range(&node, lower.as_deref(), upper.as_deref()) {
            let r = "keys outside the range given by the parent page".to_string();
            return self.lose(
                path,
                pgid,
                parent,
                lower,
                upper,
                depth,
                HoleKind::Redirected,
                r,
            );
        }
        self.mark(pgid);
        self.owner.insert(pgid, (path.to_vec(), claim));
        for i in 1..=u64::from(node.header.overflow) {
            self.mark(pgid + i);
        }
        self.report.pages_used += 1;
        let unordered = node.first_order_violation();
        match node.kind {
            NodeKind::Leaf => {
                if let Some(i) = unordered {
                    self.report.notes.push(format!(
                        "leaf page {pgid} of bucket {}: keys out of order at element {i}; every key kept, rebuilt in order",
                        path_display(path)
                    ));
                }
                self.leaf_depth.entry(path.to_vec()).or_insert(depth);
                self.take_leaf(path, &node, pgid, orphan);
            }
            NodeKind::Branch => {
                let n = node.elems.len();
                let children: Vec<ChildRef> = (0..n)
                    .map(|i| {
                        let id = node.elems.get(i).map(|e| e.pgid).unwrap_or(0);
                        if unordered.is_some() {
                            // Separators cannot be trusted: each child is held
                            // to this branch's own range only.
                            return (id, lower.clone(), upper.clone());
                        }
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
                        (id, lo, hi)
                    })
                    .collect();
                if let Some(i) = unordered {
                    self.report.resorted_branches.push(pgid);
                    self.report.notes.push(format!(
                        "branch page {pgid} of bucket {}: separators out of order at element {i}; its {n} children were read on path evidence and rebuilt in order",
                        path_display(path)
                    ));
                }
                stack.push(WalkFrame {
                    pgid,
                    depth,
                    children,
                    next: 0,
                });
            }
        }
    }

    /// Decides pages reached from two buckets: a branch reference whose range the
    /// page satisfies is evidence; a bucket header's root reference carries none. The
    /// page goes to the one claim with evidence, or to no one.
    fn decide_contests(&self) -> Overrides {
        let mut out = Overrides::new();
        for (page, (b1, c1), (b2, c2, ok2)) in &self.contests {
            let first_evidence = matches!(c1, ClaimBy::Branch(_));
            let second_evidence = matches!(c2, ClaimBy::Branch(_)) && *ok2;
            let winner = match (first_evidence, second_evidence) {
                (true, false) => Some((b1.clone(), c1.clone())),
                (false, true) => Some((b2.clone(), c2.clone())),
                _ => None,
            };
            out.insert(*page, winner);
        }
        out
    }

    /// Orphan trees: pages below the high-water mark that were not used and are not
    /// free, read strictly, and are not referenced by another such page. Each is
    /// placed only on evidence: its keys lie inside exactly one hole's range, and its
    /// height fits what that hole lost (a destroyed branch leaves its children, one
    /// level lower; a redirected reference leaves the original child, at the same
    /// level; a destroyed leaf leaves nothing but sub-bucket trees, whose bucket name
    /// was on the leaf). Anything else goes to `lost+found`.
    fn orphans(&mut self, free: &HashSet<u64>) {
        let hwm = self.file.hwm();
        let mut cand: std::collections::BTreeMap<u64, Node> = std::collections::BTreeMap::new();
        for id in 2..hwm {
            if self.is_visited(id) || free.contains(&id) {
                continue;
            }
            let Ok(node) = self.file.read_node(id) else {
                continue;
            };
            if node.elems.is_empty() || node.first_order_violation().is_some() {
                continue;
            }
            cand.insert(id, node);
        }
        let mut referenced: HashSet<u64> = HashSet::new();
        for node in cand.values() {
            match node.kind {
                NodeKind::Branch => referenced.extend(node.elems.iter().map(|e| e.pgid)),
                NodeKind::Leaf => {
                    for i in 0..node.elems.len() {
                        if node.is_bucket(i) {
                            if let Some(h) = BucketHeader::decode(node.value(i)) {
                                referenced.insert(h.root);
                            }
                        }
                    }
                }
            }
        }
        let tops: Vec<u64> = cand
            .keys()
            .copied()
            .filter(|id| !referenced.contains(id))
            .collect();
        for top in tops {
            if self.is_visited(top) {
                continue;
            }
            let Some(node) = cand.get(&top) else { continue };
            // Height and key range along the leftmost and rightmost paths.
            let height = orphan_height(&cand, top);
            let first = node.key(0).to_vec();
            let last = rightmost_key(&cand, top);
            let has_values = orphan_has_values(&cand, top);
            let fits: Vec<usize> = self
                .holes
                .iter()
                .enumerate()
                .filter(|(_, h)| {
                    h.lower.as_deref().is_none_or(|lo| first.as_slice() >= lo)
                        && h.upper.as_deref().is_none_or(|hi| last.as_slice() < hi)
                })
                .filter(|(_, h)| {
                    // Plain values never go to a bucket that holds only buckets.
                    !(has_values && self.holds_only_buckets(&h.bucket))
                })
                .filter(|(_, h)| {
                    let expected = self
                        .leaf_depth
                        .get(&h.bucket)
                        .and_then(|d| d.checked_sub(h.depth));
                    match (h.kind, expected, height) {
                        (_, _, None) => false,
                        (HoleKind::Redirected, Some(e), Some(ht)) => e == ht,
                        // A bucket whose every page was lost: only its redirected root
                        // reference can take a tree, of any height.
                        (HoleKind::Redirected, None, Some(_)) => h.depth == 0,
                        (HoleKind::Destroyed, Some(e), Some(ht)) => e >= 1 && ht + 1 == e,
                        (HoleKind::Destroyed, None, Some(_)) => false,
                    }
                })
                .map(|(i, _)| i)
                .collect();
            let target = match fits.as_slice() {
                [one] => self.holes.get(*one).map(|h| {
                    (
                        h.bucket.clone(),
                        h.lower.clone(),
                        h.upper.clone(),
                        h.depth,
                        false,
                    )
                }),
                _ => None,
            };
            let before = self.report.keys_in(&self.data);
            match target {
                Some((bucket, lower, upper, depth, _)) => {
                    self.report.orphan_pages_used.push(top);
                    self.jobs.push(Job {
                        path: bucket,
                        root: top,
                        lower,
                        upper,
                        depth,
                        claim_root: false,
                        orphan: true,
                    });
                    self.walk_jobs();
                    self.report.orphan_keys += self.report.keys_in(&self.data) - before;
                }
                None => {
                    let why = if fits.is_empty() {
                        "no lost range of a bucket can hold it (range, height or page type)"
                    } else {
                        "it fits the lost ranges of more than one bucket"
                    };
                    self.report.orphan_pages_unattributed.push(top);
                    let lf = vec![LOST_AND_FOUND.to_vec(), format!("page-{top}").into_bytes()];
                    self.jobs.push(Job {
                        path: lf,
                        root: top,
                        lower: None,
                        upper: None,
                        depth: 0,
                        claim_root: false,
                        orphan: true,
                    });
                    self.walk_jobs();
                    let keys = self.report.keys_in(&self.data) - before;
                    self.report.lost_and_found.push(LostAndFound {
                        page: top,
                        keys,
                        reason: format!("orphan tree at page {top}: {why}"),
                    });
                }
            }
        }
    }
}

/// Height of an orphan tree (0 = a leaf) along its leftmost path; None when the path
/// leaves the candidates or runs too deep.
fn orphan_height(cand: &std::collections::BTreeMap<u64, Node>, top: u64) -> Option<usize> {
    let mut id = top;
    for h in 0..MAX_TREE_DEPTH {
        let node = cand.get(&id)?;
        match node.kind {
            NodeKind::Leaf => return Some(h),
            NodeKind::Branch => id = node.elems.first()?.pgid,
        }
    }
    None
}

/// Last key along the rightmost path of an orphan tree (the top's last key when the
/// path leaves the candidates).
fn rightmost_key(cand: &std::collections::BTreeMap<u64, Node>, top: u64) -> Vec<u8> {
    let mut id = top;
    let mut last = Vec::new();
    for _ in 0..MAX_TREE_DEPTH {
        let Some(node) = cand.get(&id) else { break };
        let n = node.elems.len();
        last = node.key(n.saturating_sub(1)).to_vec();
        match node.kind {
            NodeKind::Leaf => break,
            NodeKind::Branch => match node.elems.last() {
                Some(e) => id = e.pgid,
                None => break,
            },
        }
    }
    last
}

/// Whether the leftmost leaf of an orphan tree holds plain values.
fn orphan_has_values(cand: &std::collections::BTreeMap<u64, Node>, top: u64) -> bool {
    let mut id = top;
    for _ in 0..MAX_TREE_DEPTH {
        let Some(node) = cand.get(&id) else {
            return true;
        };
        match node.kind {
            NodeKind::Leaf => return (0..node.elems.len()).any(|i| !node.is_bucket(i)),
            NodeKind::Branch => match node.elems.first() {
                Some(e) => id = e.pgid,
                None => return true,
            },
        }
    }
    true
}

/// One walk over the file with the given decisions on contested pages.
fn run<'a>(
    file: &'a BoltFile,
    opts: &SalvageOptions,
    overrides: Overrides,
    buckets_only: HashSet<Vec<Vec<u8>>>,
) -> Ctx<'a> {
    let meta = file.meta();
    let mut ctx = Ctx {
        file,
        visited: vec![false; usize::try_from(meta.pgid).unwrap_or(0)],
        owner: std::collections::HashMap::new(),
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
            snapshot_trailer: file.snapshot_trailer().is_some(),
            ..SalvageReport::default()
        },
        holes: Vec::new(),
        jobs: vec![Job {
            path: Vec::new(),
            root: meta.root,
            lower: None,
            upper: None,
            depth: 0,
            claim_root: true,
            orphan: false,
        }],
        leaf_depth: std::collections::HashMap::new(),
        contests: Vec::new(),
        overrides,
        buckets_only,
        evidence: std::collections::HashMap::new(),
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
    } else if ctx.holes.is_empty() {
        // Nothing lost: unreachable pages are leaks, never data of this tree.
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
    ctx
}

/// Salvages an open file into memory.
pub fn salvage_file(file: BoltFile, opts: &SalvageOptions) -> Result<Salvaged> {
    let file = match opts.meta {
        Some(i) => file.use_meta(i)?,
        None => file,
    };
    let mut ctx = run(&file, opts, Overrides::new(), HashSet::new());
    let mut notes = Vec::new();
    // Pages reached from two buckets: decide on evidence and walk again, so that a
    // page goes to the bucket that proves it (or to none) whatever the walk order.
    let mut overrides = Overrides::new();
    if !ctx.contests.is_empty() {
        overrides = ctx.decide_contests();
        notes.extend(overrides.iter().map(|(page, w)| match w {
            Some((b, _)) => format!(
                "page {page} is referenced from two buckets; kept in {} (a branch reference whose key range it fits)",
                path_display(b)
            ),
            None => format!(
                "page {page} is referenced from two buckets and neither reference is proven; not placed in either"
            ),
        }));
        ctx = run(&file, opts, overrides.clone(), HashSet::new());
    }
    // Buckets whose surviving pages hold only buckets take no plain value: when this
    // walk put one into such a bucket (a bucket element whose flag was lost, an orphan
    // of values), walk again with the rule.
    let buckets_only = ctx.buckets_only_by_evidence();
    if ctx.values_in(&buckets_only) {
        ctx = run(&file, opts, overrides, buckets_only);
    }
    ctx.report.notes.extend(notes);
    if let Ok(Some(h)) = file.verify_snapshot() {
        if !h.matches() {
            ctx.report.notes.push(format!(
                "the snapshot file's SHA-256 trailer ({}) does not match its database ({}): bytes changed after `etcdctl snapshot save`; everything that verifies was copied and the output has a fresh trailer",
                crate::file::hex32(&h.stored),
                crate::file::hex32(&h.computed)
            ));
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
    write_salvaged(dst, &s, opts)
}

/// Writes salvaged contents as a fresh bbolt file at `dst` (the source's page size and
/// freelist mode unless `opts` overrides them; a new SHA-256 trailer when the source
/// was an etcd snapshot file). Returns the report with the pages written.
pub fn write_salvaged(
    dst: impl AsRef<Path>,
    s: &Salvaged,
    opts: &SalvageOptions,
) -> Result<SalvageReport> {
    let wopts = WriteOptions {
        page_size: opts.page_size.unwrap_or(s.report.page_size),
        no_freelist_sync: opts.no_freelist_sync.unwrap_or(s.report.no_freelist_sync),
        txid: s.report.txid.max(1),
        ..WriteOptions::default()
    };
    let stats = write_file(&dst, &s.data, &wopts)?;
    if s.report.snapshot_trailer {
        crate::file::append_snapshot_trailer(dst.as_ref())?;
    }
    let mut report = s.report.clone();
    report.pages_written = stats.pages;
    Ok(report)
}
