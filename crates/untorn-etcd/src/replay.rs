//! Replaying the raft log against the backend file: which entry produced which main
//! revision, and the exact changes (key, put or delete, the `KeyValue` etcd stored) of
//! every revision the log covers — so that the keys of revisions lost from the file can
//! be named even when no byte of them survives in it.
//!
//! etcd applies the normal entries of its log in index order. An entry that changes the
//! key space produces exactly one main revision, its changes numbered from sub revision
//! 0 in the order etcd applies them: a put; every live key of a delete's range in key
//! order; a transaction's chosen branch, operation by operation (nested transactions
//! inline), every compare evaluated against the state before the transaction; a lease
//! revoke deletes the lease's keys in key order. An entry that changes nothing (a read,
//! a delete of nothing, a transaction whose chosen branch only reads, a failed put, a
//! compaction, a lease grant, membership, auth, alarms) produces no revision.
//!
//! The replay simulates exactly that over the state the file gives: it starts from an
//! empty key space when the log starts at the cluster's first entry, or else at the
//! first revision above the compaction point, found by trying the entries whose replay
//! reproduces the file's next revisions exactly. Only entries up to the consistent index
//! are replayed (later ones are not in the file yet; etcd applies them at start-up).
//! Every revision the replay produces is compared with what survives of it in the file
//! (keys, puts or deletes, whole `KeyValue`s); at the first disagreement the replay
//! stops and says where, and nothing after it is used.
//!
//! Bounds: one pass over the entries (the sync point tries at most
//! [`SYNC_CANDIDATES_MAX`] entries, each for a few revisions); transactions are walked
//! with an explicit stack.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use untorn::unstable::report::count;

use crate::db::{EtcdDb, RevRecord};
use crate::format::request::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, Op, PutRequest, Request, Txn,
};
use crate::format::{KeyValue, Revision};
use crate::wal::{WalEntry, WalLog};

/// Entries tried as the sync point.
pub const SYNC_CANDIDATES_MAX: usize = 1 << 20;
/// Revisions a sync candidate must reproduce (fewer when the file has fewer).
const SYNC_REVISIONS: usize = 8;

/// One change of a replayed revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its revision.
    pub rev: Revision,
    /// The key.
    pub key: Vec<u8>,
    /// The `KeyValue` etcd stored for a put; `None` for a delete.
    pub put: Option<KeyValue>,
}

/// One main revision the log produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The main revision.
    pub main: i64,
    /// The raft entry that produced it.
    pub index: u64,
    /// Its raft term.
    pub term: u64,
    /// Its changes, sub revision 0 first.
    pub changes: Vec<Change>,
}

/// Where a replay started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From an empty key space at the cluster's first entry.
    Empty,
    /// At main revision `main`, produced by entry `index` (found by matching the file).
    Synced {
        /// The first main revision replayed.
        main: i64,
        /// The entry that produced it.
        index: u64,
    },
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Where it started.
    pub start: Start,
    /// The revisions produced, consecutive, in order.
    pub revisions: Vec<Replayed>,
    /// The last entry replayed.
    pub last_index: u64,
    /// Where the log stopped agreeing with the file, if it did (nothing from there on
    /// is in `revisions`).
    pub stopped: Option<String>,
}

impl Replay {
    /// The replayed revision `main`, if the replay covers it.
    pub fn revision(&self, main: i64) -> Option<&Replayed> {
        let first = self.revisions.first()?.main;
        let i = usize::try_from(main.checked_sub(first)?).ok()?;
        self.revisions.get(i)
    }

    /// The main revisions covered: `first..=last`.
    pub fn covers(&self) -> Option<(i64, i64)> {
        Some((self.revisions.first()?.main, self.revisions.last()?.main))
    }
}

/// The state of one key during the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// Live, with its current `KeyValue`.
    Live(KeyValue),
    /// Absent (never written, or deleted).
    Absent,
    /// The file's record of it does not decode: unknown.
    Unknown,
}

/// The key space during a replay: the file's state as of `base_at`, plus what the
/// replay changed since.
struct World<'a> {
    db: &'a EtcdDb,
    base_at: i64,
    changed: BTreeMap<Vec<u8>, Seen>,
    revoked: HashSet<i64>,
    /// Live keys by lease, built at the first lease revoke and kept up to date.
    by_lease: Option<HashMap<i64, BTreeSet<Vec<u8>>>>,
}

impl<'a> World<'a> {
    fn new(db: &'a EtcdDb, base_at: i64) -> World<'a> {
        World {
            db,
            base_at,
            changed: BTreeMap::new(),
            revoked: HashSet::new(),
            by_lease: None,
        }
    }

    /// Sets the state of `key`, keeping the lease index (lease 0 there holds the keys
    /// whose state is unknown).
    fn set(&mut self, key: Vec<u8>, seen: Seen) {
        if self.by_lease.is_some() {
            let slot = |s: &Seen| match s {
                Seen::Live(kv) if kv.lease != 0 => Some(kv.lease),
                Seen::Unknown => Some(0),
                _ => None,
            };
            let (old, new) = (slot(&self.get(&key)), slot(&seen));
            if let Some(idx) = self.by_lease.as_mut() {
                if let Some(set) = old.and_then(|l| idx.get_mut(&l)) {
                    set.remove(&key);
                }
                if let Some(l) = new {
                    idx.entry(l).or_default().insert(key.clone());
                }
            }
        }
        self.changed.insert(key, seen);
    }

    fn base(&self, key: &[u8]) -> Seen {
        let newest: Option<&RevRecord> = self.db.index.get(key).and_then(|idx| {
            idx.iter()
                .filter_map(|&i| self.db.revisions.get(i))
                .take_while(|r| r.rev.main <= self.base_at)
                .last()
        });
        match newest {
            None => Seen::Absent,
            Some(r) if r.tombstone => Seen::Absent,
            Some(r) => match &r.kv {
                Ok(kv) => Seen::Live(kv.clone()),
                Err(_) => Seen::Unknown,
            },
        }
    }

    fn get(&self, key: &[u8]) -> Seen {
        match self.changed.get(key) {
            Some(s) => s.clone(),
            None => self.base(key),
        }
    }

    /// Every key in `[key, end)` (etcd's range semantics) that is live or unknown, in
    /// key order.
    fn keys_in(&self, key: &[u8], range_end: &[u8]) -> Vec<Vec<u8>> {
        let upper: Bound<Vec<u8>> = match range_end {
            [] => Bound::Included(key.to_vec()),
            [0] => Bound::Unbounded,
            end => Bound::Excluded(end.to_vec()),
        };
        if matches!(&upper, Bound::Excluded(e) if e.as_slice() <= key) {
            return Vec::new();
        }
        let range = (Bound::Included(key.to_vec()), upper);
        let mut keys: BTreeSet<Vec<u8>> = self
            .db
            .index
            .range::<Vec<u8>, _>(range.clone())
            .map(|(k, _)| k.clone())
            .collect();
        keys.extend(
            self.changed
                .range::<Vec<u8>, _>(range)
                .map(|(k, _)| k.clone()),
        );
        keys.into_iter()
            .filter(|k| self.get(k) != Seen::Absent)
            .collect()
    }

    /// Every live key attached to `lease`, in key order (`None`: some key's state is
    /// unknown). The first call indexes every key by lease (one pass over the file).
    fn lease_keys(&mut self, lease: i64) -> Option<Vec<Vec<u8>>> {
        if self.by_lease.is_none() {
            let mut idx: HashMap<i64, BTreeSet<Vec<u8>>> = HashMap::new();
            let keys: BTreeSet<&Vec<u8>> =
                self.db.index.keys().chain(self.changed.keys()).collect();
            for k in keys {
                match self.get(k) {
                    Seen::Live(kv) if kv.lease != 0 => {
                        idx.entry(kv.lease).or_default().insert(k.clone());
                    }
                    // An unreadable key may be attached to any lease.
                    Seen::Unknown => {
                        idx.entry(0).or_default().insert(k.clone());
                    }
                    _ => {}
                }
            }
            self.by_lease = Some(idx);
        }
        let idx = self.by_lease.as_ref()?;
        if idx.get(&0).is_some_and(|u| !u.is_empty()) {
            return None;
        }
        Some(
            idx.get(&lease)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        )
    }

    /// Evaluates one compare against the current state (`None`: unknown).
    fn compare(&self, c: &Compare) -> Option<bool> {
        let keys: Vec<Vec<u8>> = if c.range_end.is_empty() {
            vec![c.key.clone()]
        } else {
            self.keys_in(&c.key, &c.range_end)
        };
        let mut live = Vec::new();
        for k in &keys {
            match self.get(k) {
                Seen::Live(kv) => live.push(kv),
                Seen::Unknown => return None,
                Seen::Absent => {}
            }
        }
        if live.is_empty() {
            // etcd: comparing the value of no key fails; other targets compare zero.
            if c.target == CompareTarget::Value {
                return Some(false);
            }
            live.push(KeyValue::default());
        }
        Some(live.iter().all(|kv| compare_kv(c, kv)))
    }
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    use std::cmp::Ordering;
    let ord: Ordering = match c.target {
        CompareTarget::Value => kv.value.as_slice().cmp(c.value.as_slice()),
        CompareTarget::Create => kv.create_revision.cmp(&c.number),
        CompareTarget::Mod => kv.mod_revision.cmp(&c.number),
        CompareTarget::Version => kv.version.cmp(&c.number),
        CompareTarget::Lease => kv.lease.cmp(&c.number),
    };
    match c.result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::NotEqual => ord != Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
    }
}

/// Why an entry's effect cannot be known.
type Unknown = String;

/// Applies one request at main revision `main` (if it changes anything): its changes,
/// in order.
fn apply(w: &mut World<'_>, req: &Request, main: i64) -> Result<Vec<Change>, Unknown> {
    let mut out = Vec::new();
    match req {
        Request::Put(p) => {
            if check_put(w, p)? {
                put(w, p, main, &mut out)?;
            }
        }
        Request::DeleteRange(d) => delete(w, d, main, &mut out),
        Request::Txn(txns) => txn(w, txns, main, &mut out)?,
        Request::LeaseRevoke { id } => {
            let keys = w
                .lease_keys(*id)
                .ok_or_else(|| format!("a key attached to lease {id:x} is unreadable"))?;
            w.revoked.insert(*id);
            for k in keys {
                delete_key(w, k, main, &mut out);
            }
        }
        Request::LeaseGrant { id } => {
            w.revoked.remove(id);
        }
        Request::Empty | Request::Compaction { .. } | Request::Other(_) => {}
    }
    Ok(out)
}

/// Whether a put succeeds (etcd refuses a put to a revoked lease, and `ignore_value` or
/// `ignore_lease` on an absent key).
fn check_put(w: &World<'_>, p: &PutRequest) -> Result<bool, Unknown> {
    if (p.ignore_value || p.ignore_lease) && w.get(&p.key) == Seen::Absent {
        return Ok(false);
    }
    if p.ignore_value || p.ignore_lease {
        if let Seen::Unknown = w.get(&p.key) {
            return Err("a put keeps the value or lease of an unreadable key".into());
        }
    }
    Ok(p.ignore_lease || p.lease == 0 || !w.revoked.contains(&p.lease))
}

fn put(w: &mut World<'_>, p: &PutRequest, main: i64, out: &mut Vec<Change>) -> Result<(), Unknown> {
    let prev = match w.get(&p.key) {
        Seen::Live(kv) => Some(kv),
        Seen::Absent => None,
        Seen::Unknown => {
            return Err("a put to a key whose previous revision is unreadable".into());
        }
    };
    let kv = KeyValue {
        key: p.key.clone(),
        create_revision: prev.as_ref().map_or(main, |kv| kv.create_revision),
        mod_revision: main,
        version: prev.as_ref().map_or(1, |kv| kv.version + 1),
        value: match (&prev, p.ignore_value) {
            (Some(kv), true) => kv.value.clone(),
            _ => p.value.clone(),
        },
        lease: match (&prev, p.ignore_lease) {
            (Some(kv), true) => kv.lease,
            _ => p.lease,
        },
    };
    out.push(Change {
        rev: Revision::new(main, out.len() as i64),
        key: p.key.clone(),
        put: Some(kv.clone()),
    });
    w.set(p.key.clone(), Seen::Live(kv));
    Ok(())
}

fn delete_key(w: &mut World<'_>, key: Vec<u8>, main: i64, out: &mut Vec<Change>) {
    out.push(Change {
        rev: Revision::new(main, out.len() as i64),
        key: key.clone(),
        put: None,
    });
    w.set(key, Seen::Absent);
}

fn delete(w: &mut World<'_>, d: &DeleteRangeRequest, main: i64, out: &mut Vec<Change>) {
    for k in w.keys_in(&d.key, &d.range_end) {
        delete_key(w, k, main, out);
    }
}

/// A transaction: every compare on the chosen path is evaluated first (against the state
/// before the transaction), then the chosen branches' puts are checked (one failure fails
/// the whole transaction), then the operations run in order.
fn txn(w: &mut World<'_>, txns: &[Txn], main: i64, out: &mut Vec<Change>) -> Result<(), Unknown> {
    // 1. The chosen branch of every transaction on the path.
    let mut chosen: BTreeMap<usize, bool> = BTreeMap::new();
    let mut todo = vec![0usize];
    while let Some(t) = todo.pop() {
        let Some(tx) = txns.get(t) else {
            return Err(format!("transaction {t} is missing"));
        };
        if chosen.contains_key(&t) {
            return Err("a nested transaction is reached twice".into());
        }
        let mut ok = true;
        for c in &tx.compare {
            match w.compare(c) {
                Some(true) => {}
                Some(false) => {
                    ok = false;
                    break;
                }
                None => return Err("a compare reads an unreadable key".into()),
            }
        }
        chosen.insert(t, ok);
        let ops = if ok { &tx.success } else { &tx.failure };
        todo.extend(ops.iter().filter_map(|o| match o {
            Op::Txn(n) => Some(*n),
            _ => None,
        }));
    }
    // 2. The operations of the chosen branches, in order (explicit stack).
    let branch = |t: usize| -> &[Op] {
        match (txns.get(t), chosen.get(&t)) {
            (Some(tx), Some(true)) => &tx.success,
            (Some(tx), Some(false)) => &tx.failure,
            _ => &[],
        }
    };
    let mut ops: Vec<&Op> = Vec::new();
    let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
    while let Some((t, i)) = stack.pop() {
        let Some(op) = branch(t).get(i) else {
            continue;
        };
        stack.push((t, i + 1));
        match op {
            Op::Txn(n) => stack.push((*n, 0)),
            other => ops.push(other),
        }
    }
    for op in &ops {
        if let Op::Put(p) = op {
            if !check_put(w, p)? {
                return Ok(());
            }
        }
    }
    for op in ops {
        match op {
            Op::Put(p) => put(w, p, main, out)?,
            Op::DeleteRange(d) => delete(w, d, main, out),
            Op::Range | Op::Txn(_) | Op::Empty => {}
        }
    }
    Ok(())
}

/// Compares a replayed revision with what survives of it in the file. `Err` names the
/// first disagreement.
fn agrees(db: &EtcdDb, r: &Replayed, by_main: &BTreeMap<i64, Vec<usize>>) -> Result<(), String> {
    let Some(idx) = by_main.get(&r.main) else {
        return Ok(());
    };
    for &i in idx {
        let Some(rec) = db.revisions.get(i) else {
            continue;
        };
        let Some(c) = usize::try_from(rec.rev.sub)
            .ok()
            .and_then(|s| r.changes.get(s))
        else {
            return Err(format!(
                "the file has revision {} but entry {} made {} at revision {}",
                rec.rev,
                r.index,
                count(r.changes.len() as u64, "change"),
                r.main
            ));
        };
        // A record whose value does not decode, or whose mod_revision is not its
        // revision, is garbled: salvage drops it; it cannot contradict the log.
        let Ok(kv) = &rec.kv else {
            continue;
        };
        if !rec.tombstone && kv.mod_revision != rec.rev.main {
            continue;
        }
        let same = match &c.put {
            Some(put) => !rec.tombstone && kv == put,
            None => rec.tombstone && kv.key == c.key,
        };
        if !same {
            return Err(format!(
                "revision {} in the file is {} {}; entry {} {} {}",
                rec.rev,
                if rec.tombstone {
                    "a delete of"
                } else {
                    "a put of"
                },
                crate::schema::show_key(&kv.key),
                r.index,
                if c.put.is_some() { "puts" } else { "deletes" },
                crate::schema::show_key(&c.key)
            ));
        }
    }
    Ok(())
}

/// Replays `entries` from main revision `first_main` over the file's state as of
/// `first_main - 1`, comparing each revision with the file; stops after `limit`
/// revisions or at the first disagreement.
fn run(
    db: &EtcdDb,
    by_main: &BTreeMap<i64, Vec<usize>>,
    entries: &[WalEntry],
    first_main: i64,
    limit: usize,
) -> (Vec<Replayed>, u64, Option<String>) {
    let mut w = World::new(db, first_main - 1);
    let mut out: Vec<Replayed> = Vec::new();
    let mut last_index = 0;
    for e in entries {
        if out.len() >= limit {
            break;
        }
        let main = first_main + out.len() as i64;
        let changes = match &e.request {
            Ok(req) => apply(&mut w, req, main),
            Err(err) => Err(format!("its request does not decode: {err}")),
        };
        let changes = match changes {
            Ok(c) => c,
            Err(why) => {
                return (
                    out,
                    last_index,
                    Some(format!(
                        "entry {} (revision {main} or later): {why}",
                        e.index
                    )),
                )
            }
        };
        last_index = e.index;
        if changes.is_empty() {
            continue;
        }
        let r = Replayed {
            main,
            index: e.index,
            term: e.term,
            changes,
        };
        if let Err(why) = agrees(db, &r, by_main) {
            return (out, last_index, Some(why));
        }
        out.push(r);
    }
    (out, last_index, None)
}

/// Replays `wal` against `db` (what survives of the file), up to the consistent index
/// when there is one. `Err` says why no replay could start.
pub fn replay(db: &EtcdDb, wal: &WalLog, consistent_index: Option<u64>) -> Result<Replay, String> {
    let upto = consistent_index.unwrap_or(u64::MAX);
    let entries = wal.entries_between(0, upto);
    if entries.is_empty() {
        return Err(format!(
            "the log holds no entry up to the consistent index {upto} (it starts after entry {})",
            wal.start_index
        ));
    }
    let mut by_main: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, r) in db.revisions.iter().enumerate() {
        by_main.entry(r.rev.main).or_default().push(i);
    }
    let finish = |start, (revisions, last_index, stopped): (Vec<Replayed>, u64, Option<String>)| {
        let revisions: Vec<Replayed> = revisions;
        let mut stopped = stopped;
        // The file's newest revision must be the log's too.
        let newest = db.current_revision();
        let last = revisions.last().map_or(0, |r| r.main);
        if stopped.is_none() && newest > last && newest > 1 {
            stopped = Some(format!(
                "the log up to entry {last_index} produces revisions up to {last}, the file has {newest}"
            ));
        }
        Replay {
            start,
            revisions,
            last_index,
            stopped,
        }
    };
    if wal.start_index == 0 {
        // The log starts at the cluster's first entry: the key space starts empty and the
        // first write is revision 2.
        return Ok(finish(
            Start::Empty,
            run(db, &by_main, entries, 2, usize::MAX),
        ));
    }
    // Otherwise: sync at the first revision above the compaction point the file holds.
    let compacted = db.compacted();
    let Some(&first_main) = by_main.range(compacted.max(1) + 1..).next().map(|(m, _)| m) else {
        return Err("the file holds no revision above the compaction point to start from".into());
    };
    let wanted = by_main.range(first_main..).take(SYNC_REVISIONS).count();
    for (i, e) in entries.iter().enumerate().take(SYNC_CANDIDATES_MAX) {
        let Some(rest) = entries.get(i..) else {
            break;
        };
        // Only an entry that writes can have produced the first revision.
        if matches!(
            e.request,
            Ok(Request::Empty
                | Request::Compaction { .. }
                | Request::Other(_)
                | Request::LeaseGrant { .. })
        ) {
            continue;
        }
        let (trial, _, stopped) = run(db, &by_main, rest, first_main, wanted);
        if stopped.is_none()
            && trial.len() >= wanted
            && trial.first().is_some_and(|r| r.index == e.index)
        {
            return Ok(finish(
                Start::Synced {
                    main: first_main,
                    index: e.index,
                },
                run(db, &by_main, rest, first_main, usize::MAX),
            ));
        }
    }
    Err(format!(
        "no entry of the log (entries {}..={}) reproduces revision {first_main} and the ones after it",
        entries.first().map_or(0, |e| e.index),
        entries.last().map_or(0, |e| e.index)
    ))
}

impl Replay {
    /// The changes of replayed revisions that `db` should hold and does not: every
    /// change above the compaction point, and at or below it the newest put of each key
    /// (what compaction keeps; known only when the replay started from an empty key
    /// space and reached the compaction point). In revision order.
    pub fn missing_from<'r>(&'r self, db: &EtcdDb) -> Vec<(&'r Replayed, &'r Change)> {
        let held: HashSet<(Revision, bool)> =
            db.revisions.iter().map(|r| (r.rev, r.tombstone)).collect();
        let compacted = db.compacted();
        // At or below the compaction point only each key's last change survives, and
        // only when it is a put.
        let mut kept_below: BTreeMap<&[u8], (Revision, bool)> = BTreeMap::new();
        let reached = self.covers().is_some_and(|(_, last)| last >= compacted);
        if self.start == Start::Empty && reached {
            for r in self.revisions.iter().take_while(|r| r.main <= compacted) {
                for c in &r.changes {
                    kept_below.insert(&c.key, (c.rev, c.put.is_some()));
                }
            }
        }
        let mut out = Vec::new();
        for r in &self.revisions {
            for c in &r.changes {
                let expected =
                    r.main > compacted || kept_below.get(c.key.as_slice()) == Some(&(c.rev, true));
                if expected && !held.contains(&(c.rev, c.put.is_none())) {
                    out.push((r, c));
                }
            }
        }
        out
    }
}
