//! Salvage in etcd's terms.
//!
//! On top of the bbolt salvage (which keeps every key it can prove and places none it
//! cannot), for an etcd backend:
//!
//! 1. **Revisions found elsewhere in the file are restored.** A revision's content never
//!    changes once written (etcd only ever appends revisions and deletes them by
//!    compaction), so a revision that lies in a lost range of the `key` bucket, above
//!    the compaction point, and is found on any page of the file that reads as a
//!    `key`-bucket leaf (a free page holding an older copy of the lost leaf, an orphan)
//!    is put back with its exact bytes.
//! 2. **What etcd would refuse is dropped and named.** A `key` entry whose bucket key
//!    is not a revision, whose value does not decode (etcd panics on it at start-up)
//!    or whose `mod_revision` is not its revision; a lease that does not decode.
//! 3. **The loss is reported per etcd key.** Every key whose newest revision was lost
//!    (dropped, or named by a copy that could not be restored) is listed with what etcd
//!    serves now: an older revision, nothing (it vanished), or a value it had deleted
//!    (its tombstone was lost). Lost revisions no surviving byte names are counted per
//!    lost range. With [`StalePolicy::Drop`] the keys whose newest revision was lost
//!    are removed entirely instead of falling back to an older value.
//! 4. Leases, members, meta and the other buckets: lost ranges are named, keys left
//!    attached to a lease that is gone are listed (etcd keeps them without expiry),
//!    and a missing consistent index is called out.
//!
//! Why this file is long: over a third of it is the report (lost revisions, affected keys,
//! the raft-log section) and its text rendering, which must stay beside the one pass that
//! fills it; the pass itself is the bbolt salvage's output read in revision order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use untorn::unstable::report::count;
use untorn_bbolt::format::NodeKind;
use untorn_bbolt::{BoltFile, BucketData, SalvageOptions, SalvageReport, Salvaged, Value};

use crate::error::EtcdError;
use crate::format::{decode_key_value, decode_lease, decode_rev_key, partial_key, Revision};
use crate::schema;
use crate::wal::WalLog;

/// What to do with keys whose newest revision was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StalePolicy {
    /// Keep their older revisions: etcd serves the older value (the default).
    #[default]
    Keep,
    /// Remove every revision of those keys: etcd serves nothing for them.
    Drop,
}

impl StalePolicy {
    /// `keep` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            StalePolicy::Keep => "keep",
            StalePolicy::Drop => "drop",
        }
    }
}

/// Options of an etcd salvage.
#[derive(Debug, Clone, Default)]
pub struct EtcdSalvageOptions {
    /// The bbolt salvage's options.
    pub bbolt: SalvageOptions,
    /// Keys whose newest revision was lost.
    pub stale: StalePolicy,
    /// The write-ahead log directory (default: `member/wal` next to a data dir's
    /// `member/snap/db`).
    pub wal: Option<PathBuf>,
}

/// The raft log a salvage names lost revisions from.
#[derive(Debug, Clone)]
pub enum WalInput {
    /// The log, read.
    Log(WalLog),
    /// No log: why (not in a data dir, no `member/wal`).
    Missing(String),
    /// A log that could not be read: why.
    Unreadable(String),
}

impl WalInput {
    /// Finds and reads the log: `dir` when given, else `member/wal` next to a data
    /// dir's `member/snap/db`.
    pub fn find(src: &Path, dir: Option<&Path>) -> WalInput {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => match crate::wal::wal_dir_for(src) {
                Some(d) => d,
                None => {
                    return WalInput::Missing(format!(
                        "{} is not a data dir's member/snap/db with a member/wal next to it",
                        src.display()
                    ))
                }
            },
        };
        match crate::wal::read_wal(&dir) {
            Ok(log) => WalInput::Log(log),
            Err(e) => WalInput::Unreadable(e.to_string()),
        }
    }
}

/// What etcd serves now for the key of a lost change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyNow {
    /// The lost change was the key's newest: what etcd serves instead.
    Serves(Fallback),
    /// A newer revision of the key survives: only its history was lost.
    NewerSurvives(Revision),
    /// A newer change of the key was lost too (reported there).
    NewerLost(Revision),
    /// A lost delete of a key that has no older revision: etcd serves nothing for it,
    /// as it did after the delete.
    Unchanged,
}

/// One lost change, named from the raft log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostChange {
    /// Its revision.
    pub rev: Revision,
    /// The key.
    pub key: Vec<u8>,
    /// Whether it was a delete.
    pub delete: bool,
    /// What etcd serves for the key now.
    pub now: KeyNow,
}

/// A main revision with lost changes, named from the raft log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostMainRevision {
    /// The main revision.
    pub main: i64,
    /// The raft entry that produced it.
    pub index: u64,
    /// Its raft term.
    pub term: u64,
    /// Changes the revision made.
    pub changes: u64,
    /// The lost ones.
    pub lost: Vec<LostChange>,
}

/// What the raft log contributed to a salvage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalReport {
    /// The log directory, when one was read.
    pub dir: Option<PathBuf>,
    /// How the log was used, or why it was not.
    pub summary: String,
    /// Whether the log named every lost change of the revisions it covers.
    pub used: bool,
    /// Where the replay stopped agreeing with the file, if it did.
    pub stopped: Option<String>,
    /// Main revisions with lost changes, each change named.
    pub lost: Vec<LostMainRevision>,
}

/// What etcd serves for a key whose newest revision was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// The value of this older revision.
    Older(Revision),
    /// Nothing: no older revision is left (or the older one is a delete).
    Vanished,
    /// The lost revision was a delete: etcd serves the deleted value of this revision again.
    Resurrected(Revision),
    /// Removed on request (`--etcd-stale drop`); it had this older revision.
    Dropped(Option<Revision>),
}

/// An etcd key whose newest revision was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedKey {
    /// The user key.
    pub key: Vec<u8>,
    /// The lost revision.
    pub lost: Revision,
    /// Whether the lost revision was a delete.
    pub lost_tombstone: bool,
    /// Why it was lost.
    pub reason: String,
    /// What etcd serves now.
    pub now: Fallback,
}

/// A range of the `key` bucket the bbolt salvage could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRevisions {
    /// First revision of the range (inclusive), when known.
    pub from: Option<Revision>,
    /// End of the range (exclusive), when known.
    pub to: Option<Revision>,
    /// The page that failed.
    pub page: u64,
    /// Why.
    pub reason: String,
    /// Revisions of the range restored from copies elsewhere in the file.
    pub restored: u64,
    /// Revisions of the range known to be lost (missing main revisions and sub
    /// revisions between surviving ones); the range may hold more.
    pub missing_at_least: u64,
    /// Whether every revision of the range is accounted for (restored, or counted
    /// exactly because the range's sub revisions are bounded on both sides).
    pub exact: bool,
}

/// A revision dropped because etcd could not use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedRevision {
    /// Its revision, when the bucket key decodes.
    pub revision: Option<Revision>,
    /// The user key, when it can still be read.
    pub key: Option<Vec<u8>>,
    /// Why.
    pub reason: String,
}

/// The etcd part of a salvage report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdSalvageReport {
    /// The policy applied to keys whose newest revision was lost.
    pub stale: StalePolicy,
    /// Lost ranges of the `key` bucket.
    pub lost_ranges: Vec<LostRevisions>,
    /// Revisions restored from copies elsewhere in the file.
    pub restored: Vec<Revision>,
    /// Revisions dropped because etcd could not use them.
    pub dropped: Vec<DroppedRevision>,
    /// Keys whose newest revision was lost.
    pub affected: Vec<AffectedKey>,
    /// Newest revision in the salvaged file.
    pub current_revision: i64,
    /// Compaction point.
    pub compacted: i64,
    /// Leases lost: (lower, upper) lease-id ranges of lost lease pages, and leases
    /// dropped because they do not decode.
    pub leases_lost: Vec<String>,
    /// Live keys attached to a lease that is not in the salvaged file.
    pub keys_without_lease: Vec<(Vec<u8>, i64)>,
    /// Lost ranges of the members buckets.
    pub members_lost: Vec<String>,
    /// Whether the consistent index survived.
    pub consistent_index: Option<u64>,
    /// Lost ranges of other buckets (bucket: reason).
    pub other_lost: Vec<String>,
    /// The raft log: the lost changes it names.
    pub wal: WalReport,
}

impl EtcdSalvageReport {
    /// Whether nothing etcd-visible was lost.
    pub fn nothing_lost(&self) -> bool {
        self.lost_ranges
            .iter()
            .all(|l| l.missing_at_least == 0 && l.exact)
            && self.dropped.is_empty()
            && self.affected.is_empty()
            && self.leases_lost.is_empty()
            && self.members_lost.is_empty()
            && self.other_lost.is_empty()
            && self.consistent_index.is_some()
    }

    /// Revisions known lost in total.
    pub fn revisions_lost(&self) -> u64 {
        self.lost_ranges
            .iter()
            .map(|l| l.missing_at_least)
            .sum::<u64>()
            + self.dropped.len() as u64
    }
}

/// A revision read from some page of the file.
struct Witness {
    bucket_key: Vec<u8>,
    value: Vec<u8>,
    rev: Revision,
}

/// Every `key`-bucket-looking leaf entry on any page of the file: a leaf whose every
/// element is a revision key with a value that decodes and whose `mod_revision` is
/// that revision (or a tombstone holding only its key).
fn witnesses(file: &BoltFile) -> Vec<Witness> {
    let mut out = Vec::new();
    for id in 2..file.hwm() {
        let Ok(node) = file.read_node(id) else {
            continue;
        };
        if node.kind != NodeKind::Leaf || node.elems.is_empty() {
            continue;
        }
        let mut page = Vec::with_capacity(node.elems.len());
        let all = (0..node.elems.len()).all(|i| {
            if node.is_bucket(i) {
                return false;
            }
            let (k, v) = (node.key(i), node.value(i));
            let Ok(rk) = decode_rev_key(k) else {
                return false;
            };
            let Ok(kv) = decode_key_value(v) else {
                return false;
            };
            let ok = if rk.tombstone {
                kv.mod_revision == 0 && kv.value.is_empty()
            } else {
                kv.mod_revision == rk.rev.main
            };
            if ok {
                page.push(Witness {
                    bucket_key: k.to_vec(),
                    value: v.to_vec(),
                    rev: rk.rev,
                });
            }
            ok
        });
        if all {
            out.extend(page);
        }
    }
    out
}

fn bucket_mut<'a>(root: &'a mut BucketData, name: &[u8]) -> Option<&'a mut BucketData> {
    match root.entries.get_mut(name) {
        Some(Value::Bucket(b)) => Some(b),
        _ => None,
    }
}

/// The revision of a separator key (the first key of a page: a whole bucket key).
fn rev_of(k: Option<&Vec<u8>>) -> Option<Revision> {
    k.and_then(|k| decode_rev_key(k).ok()).map(|r| r.rev)
}

fn in_range(k: &[u8], lo: Option<&Vec<u8>>, hi: Option<&Vec<u8>>) -> bool {
    lo.is_none_or(|l| k >= l.as_slice()) && hi.is_none_or(|h| k < h.as_slice())
}

/// Applies the etcd layer to bbolt-salvaged contents (see the module doc) and reports.
pub fn apply(
    file_witnesses: Option<&BoltFile>,
    s: &mut Salvaged,
    stale: StalePolicy,
    wal: WalInput,
) -> EtcdSalvageReport {
    let mut rep = EtcdSalvageReport {
        stale,
        ..EtcdSalvageReport::default()
    };
    let key_holes: Vec<&untorn_bbolt::LostSubtree> = s
        .report
        .lost
        .iter()
        .filter(|l| l.bucket.len() == 1 && l.bucket.first().map(Vec::as_slice) == Some(schema::KEY))
        .collect();
    for l in &s.report.lost {
        let name = l.bucket.first().map(Vec::as_slice).unwrap_or(b"");
        let line = format!(
            "{} page {}: {}",
            untorn_bbolt::tree::path_display(&l.bucket),
            l.page,
            l.reason
        );
        match name {
            n if n == schema::KEY => {}
            n if n == schema::LEASE => rep.leases_lost.push(line),
            n if n == schema::MEMBERS || n == schema::MEMBERS_REMOVED => {
                rep.members_lost.push(line)
            }
            _ => rep.other_lost.push(line),
        }
    }
    for (p, why) in &s.report.unreadable_buckets {
        rep.other_lost.push(format!(
            "bucket {} unreadable: {why}",
            untorn_bbolt::tree::path_display(p)
        ));
    }
    let pre = crate::db::EtcdDb::from_buckets(&s.data);
    let compacted = pre.compacted();
    // 1. Restore revisions found elsewhere, inside lost ranges, above the compaction.
    let mut restored_in: Vec<u64> = vec![0; key_holes.len()];
    if let (Some(file), false) = (file_witnesses, key_holes.is_empty()) {
        let ws = witnesses(file);
        if let Some(kb) = bucket_mut(&mut s.data, schema::KEY) {
            for w in ws {
                if w.rev.main <= compacted || kb.entries.contains_key(&w.bucket_key) {
                    continue;
                }
                let Some(h) = key_holes
                    .iter()
                    .position(|l| in_range(&w.bucket_key, l.lower.as_ref(), l.upper.as_ref()))
                else {
                    continue;
                };
                kb.entries.insert(w.bucket_key, Value::Data(w.value));
                if let Some(c) = restored_in.get_mut(h) {
                    *c += 1;
                }
                rep.restored.push(w.rev);
            }
        }
        rep.restored.sort_unstable();
        rep.restored.dedup();
    }
    // The raft log, replayed over what verifies (before garbled revisions are dropped:
    // the replay says what they should have been).
    let replay = match &wal {
        WalInput::Log(log) => {
            let db = crate::db::EtcdDb::from_buckets(&s.data);
            let ci = match &db.meta.consistent_index {
                Some(Ok(ci)) => Some(*ci),
                _ => None,
            };
            Some(crate::replay::replay(&db, log, ci))
        }
        _ => None,
    };
    // 2. Drop what etcd cannot use.
    let mut lost_named: Vec<(Vec<u8>, Revision, bool, String)> = Vec::new();
    if let Some(kb) = bucket_mut(&mut s.data, schema::KEY) {
        let mut drop_keys = Vec::new();
        for (k, v) in &kb.entries {
            let Value::Data(v) = v else {
                drop_keys.push((
                    k.clone(),
                    None,
                    None,
                    "a bucket inside the key bucket".to_string(),
                ));
                continue;
            };
            let rk = match decode_rev_key(k) {
                Ok(rk) => rk,
                Err(e) => {
                    drop_keys.push((
                        k.clone(),
                        None,
                        partial_key(v),
                        format!("bucket key is not a revision: {e}"),
                    ));
                    continue;
                }
            };
            match decode_key_value(v) {
                Err(e) => drop_keys.push((
                    k.clone(),
                    Some(rk),
                    partial_key(v),
                    format!("value does not decode ({e}); etcd would panic on it at start-up"),
                )),
                Ok(kv) if !rk.tombstone && kv.mod_revision != rk.rev.main => drop_keys.push((
                    k.clone(),
                    Some(rk),
                    Some(kv.key),
                    format!(
                        "mod_revision {} is not its revision {}: the value is garbled",
                        kv.mod_revision, rk.rev.main
                    ),
                )),
                Ok(_) => {}
            }
        }
        for (k, rk, key, reason) in drop_keys {
            kb.entries.remove(&k);
            if let (Some(rk), Some(key)) = (rk, &key) {
                lost_named.push((key.clone(), rk.rev, rk.tombstone, reason.clone()));
            }
            rep.dropped.push(DroppedRevision {
                revision: rk.map(|r| r.rev),
                key,
                reason,
            });
        }
    }
    if let Some(lb) = bucket_mut(&mut s.data, schema::LEASE) {
        let bad: Vec<Vec<u8>> = lb
            .entries
            .iter()
            .filter(|(k, v)| match v {
                Value::Data(v) => k.len() != 8 || decode_lease(v).is_err(),
                Value::Bucket(_) => true,
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in bad {
            lb.entries.remove(&k);
            rep.leases_lost.push(format!(
                "lease {} does not decode; dropped (etcd panics on it at start-up)",
                crate::schema::show_key(&k)
            ));
        }
    }
    // 3. Per key: which lost revisions were the key's newest. The raft log names the
    // changes no surviving byte names.
    let db = crate::db::EtcdDb::from_buckets(&s.data);
    let named_by_wal = name_from_wal(&mut rep, &wal, replay.as_ref(), &db);
    let already: BTreeSet<Revision> = lost_named.iter().map(|(_, r, _, _)| *r).collect();
    lost_named.extend(
        named_by_wal
            .iter()
            .filter(|c| !already.contains(&c.rev))
            .map(|c| {
                (
                    c.key.clone(),
                    c.rev,
                    c.delete,
                    format!("revision {} lost (named by the raft log)", c.rev.main),
                )
            }),
    );
    let mut affected: BTreeMap<Vec<u8>, AffectedKey> = BTreeMap::new();
    for (key, rev, tombstone, reason) in lost_named {
        let newest = db.history(&key).last().map(|r| (r.rev, r.tombstone));
        if newest.is_some_and(|(r, _)| r > rev) {
            continue; // only history was lost
        }
        let now = match (tombstone, newest) {
            (true, Some((r, false))) => Fallback::Resurrected(r),
            (true, _) => continue, // a delete lost, and the key was absent before it anyway
            (false, Some((r, false))) => Fallback::Older(r),
            (false, _) => Fallback::Vanished,
        };
        let e = affected.entry(key.clone()).or_insert(AffectedKey {
            key: key.clone(),
            lost: rev,
            lost_tombstone: tombstone,
            reason: reason.clone(),
            now: now.clone(),
        });
        if rev > e.lost {
            *e = AffectedKey {
                key,
                lost: rev,
                lost_tombstone: tombstone,
                reason,
                now,
            };
        }
    }
    // Lost ranges in revision terms, with what is known about their contents.
    let mut mains: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for r in &db.revisions {
        mains.entry(r.rev.main).or_default().insert(r.rev.sub);
    }
    for (i, l) in key_holes.iter().enumerate() {
        let from = rev_of(l.lower.as_ref());
        let to = rev_of(l.upper.as_ref());
        let (missing, exact) = count_missing(&mains, from, to, compacted);
        rep.lost_ranges.push(LostRevisions {
            from,
            to,
            page: l.page,
            reason: l.reason.clone(),
            restored: restored_in.get(i).copied().unwrap_or(0),
            missing_at_least: missing,
            exact,
        });
    }
    // With the raft log, the count of a lost range covered by the replay is exact.
    if rep.wal.used {
        for l in &mut rep.lost_ranges {
            let inside = |r: Revision| l.from.is_none_or(|f| r >= f) && l.to.is_none_or(|t| r < t);
            let covered = replay
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .and_then(|r| r.covers())
                .is_some_and(|(first, last)| {
                    l.from.is_none_or(|f| f.main >= first) && l.to.is_none_or(|t| t.main <= last)
                });
            if covered {
                l.missing_at_least = named_by_wal.iter().filter(|c| inside(c.rev)).count() as u64;
                l.exact = true;
            }
        }
    }
    // 4. The policy.
    if stale == StalePolicy::Drop {
        if let Some(kb) = bucket_mut(&mut s.data, schema::KEY) {
            for a in affected.values_mut() {
                let older = match a.now {
                    Fallback::Older(r) | Fallback::Resurrected(r) => Some(r),
                    _ => None,
                };
                for r in db.history(&a.key) {
                    kb.entries.remove(&r.rev.to_key(r.tombstone));
                }
                a.now = Fallback::Dropped(older);
            }
        }
    }
    // What etcd serves for the key of each change the log named.
    for m in &mut rep.wal.lost {
        for c in &mut m.lost {
            let newest = db.history(&c.key).last().map(|r| r.rev);
            c.now = match affected.get(&c.key) {
                Some(a) if a.lost == c.rev => KeyNow::Serves(a.now.clone()),
                _ if newest.is_some_and(|r| r > c.rev) => {
                    KeyNow::NewerSurvives(newest.unwrap_or(c.rev))
                }
                Some(a) if a.lost > c.rev => KeyNow::NewerLost(a.lost),
                _ => KeyNow::Unchanged,
            };
        }
    }
    rep.affected = affected.into_values().collect();
    let db = crate::db::EtcdDb::from_buckets(&s.data);
    rep.current_revision = db.current_revision();
    rep.compacted = db.compacted();
    rep.consistent_index = match &db.meta.consistent_index {
        Some(Ok(ci)) => Some(*ci),
        _ => None,
    };
    if let Ok(live) = db.range(None) {
        for kv in live {
            if kv.lease != 0 && !db.leases.contains_key(&kv.lease) {
                rep.keys_without_lease.push((kv.key.clone(), kv.lease));
            }
        }
    }
    let (buckets, keys) = s.data.counts();
    s.report.keys_recovered = keys;
    s.report.buckets_recovered = buckets;
    rep
}

/// Names the changes the raft log says the file should hold and does not (`db`: the
/// salvaged contents), fills `rep.wal`, and returns them in revision order.
fn name_from_wal(
    rep: &mut EtcdSalvageReport,
    wal: &WalInput,
    replay: Option<&Result<crate::replay::Replay, String>>,
    db: &crate::db::EtcdDb,
) -> Vec<LostChange> {
    let log = match wal {
        WalInput::Log(log) => log,
        WalInput::Missing(why) => {
            rep.wal.summary = format!("no write-ahead log: {why} (pass --wal DIR)");
            return Vec::new();
        }
        WalInput::Unreadable(why) => {
            rep.wal.summary = format!("the write-ahead log cannot be read: {why}");
            return Vec::new();
        }
    };
    rep.wal.dir = Some(log.dir.clone());
    let entries = match (log.entries.first(), log.entries.last()) {
        (Some(a), Some(b)) => format!("entries {}..={}", a.index, b.index),
        _ => "no entries".to_string(),
    };
    let replay = match replay {
        Some(Ok(r)) => r,
        Some(Err(why)) => {
            rep.wal.summary = format!("{}: {entries}; not replayed: {why}", log.dir.display());
            return Vec::new();
        }
        None => return Vec::new(),
    };
    rep.wal.used = true;
    rep.wal.stopped = replay.stopped.clone();
    rep.wal.summary = format!(
        "{}: {entries}{}; replayed {} up to entry {}{}",
        log.dir.display(),
        if log.problems.is_empty() {
            String::new()
        } else {
            format!(" (read up to damage: {})", log.problems.join("; "))
        },
        match replay.covers() {
            Some((a, b)) => format!("revisions {a}..={b}"),
            None => "no revision".to_string(),
        },
        replay.last_index,
        match replay.start {
            crate::replay::Start::Empty => " from the cluster's first entry".to_string(),
            crate::replay::Start::Synced { main, index } => {
                format!(" from entry {index}, which produced revision {main}")
            }
        }
    );
    let mut named = Vec::new();
    for (r, c) in replay.missing_from(db) {
        let change = LostChange {
            rev: c.rev,
            key: c.key.clone(),
            delete: c.put.is_none(),
            now: KeyNow::Unchanged,
        };
        match rep.wal.lost.last_mut() {
            Some(m) if m.main == r.main => m.lost.push(change.clone()),
            _ => rep.wal.lost.push(LostMainRevision {
                main: r.main,
                index: r.index,
                term: r.term,
                changes: r.changes.len() as u64,
                lost: vec![change.clone()],
            }),
        }
        named.push(change);
    }
    named
}

/// Revisions missing in `[from, to)` given the surviving ones: every main revision
/// above the compaction point has sub revisions 0..n without holes. Returns (at least
/// this many missing, whether the count is exact).
fn count_missing(
    mains: &BTreeMap<i64, BTreeSet<i64>>,
    from: Option<Revision>,
    to: Option<Revision>,
    compacted: i64,
) -> (u64, bool) {
    let lo_main = from.map(|r| r.main).unwrap_or(compacted.max(1) + 1);
    let hi_main = match to {
        Some(r) => r.main,
        None => mains.keys().next_back().copied().unwrap_or(lo_main),
    };
    let mut missing = 0u64;
    let mut exact = to.is_some();
    for m in lo_main.max(compacted + 1)..=hi_main {
        let subs = mains.get(&m);
        let first = if from.is_some_and(|f| f.main == m) {
            from.map(|f| f.sub).unwrap_or(0)
        } else {
            0
        };
        let end = if to.is_some_and(|t| t.main == m) {
            to.map(|t| t.sub)
        } else {
            None
        };
        match end {
            Some(e) => {
                missing += (first..e)
                    .filter(|s| !subs.is_some_and(|x| x.contains(s)))
                    .count() as u64;
            }
            None => {
                // Subs of this main above the last surviving one are unknown.
                let max = subs.and_then(|x| x.iter().next_back().copied());
                match max {
                    Some(mx) if mx >= first => {
                        missing += (first..mx)
                            .filter(|s| !subs.is_some_and(|x| x.contains(s)))
                            .count() as u64;
                        exact = false;
                    }
                    _ => {
                        missing += 1;
                        exact = false;
                    }
                }
            }
        }
    }
    (missing, exact)
}

/// Salvages the etcd backend at `src` into memory: the bbolt salvage, then the etcd
/// layer (the file is opened twice: once for the salvage, once to look for copies of
/// lost revisions).
pub fn salvage_entries(
    src: impl AsRef<Path>,
    opts: &EtcdSalvageOptions,
) -> Result<(Salvaged, EtcdSalvageReport), EtcdError> {
    let src = src.as_ref();
    let witness_file = BoltFile::open(src)?;
    let witness_file = match opts.bbolt.meta {
        Some(i) => witness_file.use_meta(i)?,
        None => witness_file,
    };
    let mut s = untorn_bbolt::salvage_file(BoltFile::open(src)?, &opts.bbolt)?;
    let wal = WalInput::find(src, opts.wal.as_deref());
    let rep = apply(Some(&witness_file), &mut s, opts.stale, wal);
    Ok((s, rep))
}

/// Salvages the etcd backend at `src` into a fresh file at `dst`.
pub fn salvage(
    src: impl AsRef<Path>,
    dst: impl AsRef<Path>,
    opts: &EtcdSalvageOptions,
) -> Result<(SalvageReport, EtcdSalvageReport), EtcdError> {
    let (s, rep) = salvage_entries(src, opts)?;
    let report = untorn_bbolt::write_salvaged(dst, &s, &opts.bbolt)?;
    Ok((report, rep))
}

impl std::fmt::Display for EtcdSalvageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = crate::schema::show_key;
        writeln!(
            f,
            "etcd: current revision {}, compacted at {}, consistent index {}",
            self.current_revision,
            self.compacted,
            self.consistent_index
                .map(|c| c.to_string())
                .unwrap_or_else(|| "MISSING (etcd would re-apply its whole raft log)".into())
        )?;
        for l in &self.lost_ranges {
            let range = match (l.from, l.to) {
                (Some(a), Some(b)) => format!("revisions {a} up to {b}"),
                (Some(a), None) => format!("revisions from {a} on"),
                (None, Some(b)) => format!("revisions before {b}"),
                (None, None) => "every revision".to_string(),
            };
            writeln!(
                f,
                "LOST {range} (page {}: {}): {} missing{}, {} restored from copies elsewhere in the file",
                l.page,
                l.reason,
                count(l.missing_at_least, "revision"),
                if l.exact { "" } else { " at least" },
                l.restored
            )?;
        }
        if self.lost_ranges.iter().any(|l| l.missing_at_least > 0) && self.wal.lost.is_empty() {
            writeln!(
                f,
                "  the keys of the missing revisions cannot be named from the file alone; a key whose newest revision was among them now shows an older value"
            )?;
        }
        writeln!(f, "raft log: {}", self.wal.summary)?;
        if let Some(why) = &self.wal.stopped {
            writeln!(
                f,
                "  the replay stopped: {why}; changes after that point are not named"
            )?;
        }
        for m in &self.wal.lost {
            writeln!(
                f,
                "{} of the {} of revision {} lost (raft entry {}, term {}):",
                m.lost.len(),
                count(m.changes, "change"),
                m.main,
                m.index,
                m.term
            )?;
            for c in &m.lost {
                let now = match &c.now {
                    KeyNow::Serves(Fallback::Older(r)) => {
                        format!("now shows its value from revision {}", r.main)
                    }
                    KeyNow::Serves(Fallback::Vanished) => "vanished".to_string(),
                    KeyNow::Serves(Fallback::Resurrected(r)) => format!(
                        "its delete was lost: etcd serves its value from revision {} again",
                        r.main
                    ),
                    KeyNow::Serves(Fallback::Dropped(_)) => "removed (--etcd-stale drop)".into(),
                    KeyNow::NewerSurvives(r) => {
                        format!("only history lost: revision {r} survives")
                    }
                    KeyNow::NewerLost(r) => format!("its newer revision {r} was lost too"),
                    KeyNow::Unchanged => "absent, as after the delete".into(),
                };
                writeln!(
                    f,
                    "  {} {} ({}): {now}",
                    if c.delete { "delete" } else { "put" },
                    show(&c.key),
                    c.rev
                )?;
            }
        }
        for d in &self.dropped {
            writeln!(
                f,
                "DROPPED revision {} key {}: {}",
                d.revision
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "?".into()),
                d.key.as_deref().map(show).unwrap_or_else(|| "?".into()),
                d.reason
            )?;
        }
        if !self.affected.is_empty() {
            writeln!(
                f,
                "{} lost their newest revision (--etcd-stale {}{}):",
                count(self.affected.len() as u64, "key"),
                self.stale.as_str(),
                if self.stale == StalePolicy::Keep {
                    ", the default: etcd serves their older values"
                } else {
                    ": removed"
                }
            )?;
            for a in &self.affected {
                let now = match &a.now {
                    Fallback::Older(r) => format!("now shows its value from revision {}", r.main),
                    Fallback::Vanished => "vanished (no older revision)".into(),
                    Fallback::Resurrected(r) => format!(
                        "its delete was lost: etcd serves its value from revision {} again",
                        r.main
                    ),
                    Fallback::Dropped(Some(r)) => format!("removed (had revision {})", r.main),
                    Fallback::Dropped(None) => "removed".into(),
                };
                writeln!(f, "  {} lost revision {}: {now}", show(&a.key), a.lost)?;
            }
        }
        if !self.restored.is_empty() {
            writeln!(
                f,
                "restored {} from copies elsewhere in the file",
                count(self.restored.len() as u64, "revision")
            )?;
        }
        for l in &self.leases_lost {
            writeln!(f, "LEASES {l}")?;
        }
        for (k, l) in &self.keys_without_lease {
            writeln!(
                f,
                "  key {} is attached to lease {l:x}, which is gone: etcd keeps it without expiry",
                show(k)
            )?;
        }
        for m in &self.members_lost {
            writeln!(f, "MEMBERS {m}")?;
        }
        for o in &self.other_lost {
            writeln!(f, "LOST {o}")?;
        }
        Ok(())
    }
}
