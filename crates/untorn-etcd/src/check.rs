//! etcd's invariants over a backend, reported in etcd's terms.
//!
//! bbolt's format cannot tell a garbled value from a good one; etcd's schema can:
//! every value of the `key` bucket must decode as an `mvccpb.KeyValue` whose
//! `mod_revision` is its bucket key's main revision, `create_revision ≤ mod_revision`,
//! versions count up by one per put within a generation, main revisions are dense from
//! the compaction point to the newest and sub revisions count from 0, and the meta
//! bucket holds a consistent index. Leases, members and auth values must decode.

use std::fmt;
use std::path::Path;

use untorn_bbolt::file::hex32;
use untorn_bbolt::BoltFile;

use crate::backend::open_with;
use crate::db::{EtcdDb, RevRecord};
use crate::error::EtcdError;
use crate::format::{decode_rev_key, Revision};
use crate::schema;

/// What an etcd finding is about. Names are stable (snake_case in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EtcdFindingKind {
    /// A bucket etcd needs is missing.
    MissingBucket,
    /// A key of the `key` bucket is not a revision.
    BadRevisionKey,
    /// A value of the `key` bucket does not decode (etcd panics on it at start-up).
    UndecodableValue,
    /// A put's `mod_revision` differs from its bucket key's revision.
    ModRevisionMismatch,
    /// `create_revision` is after `mod_revision`, or zero on a put.
    CreateRevision,
    /// Versions of one key do not count up by one within a generation.
    VersionSequence,
    /// A tombstone's value holds more than the key.
    TombstoneValue,
    /// Main revisions are missing between the compaction point and the newest.
    RevisionGap,
    /// Sub revisions of one main revision do not count from 0 without holes.
    SubRevisionGap,
    /// The consistent index is missing or undecodable.
    ConsistentIndex,
    /// A meta value (term, compaction marks) does not decode.
    MetaValue,
    /// A compaction was scheduled but not finished (etcd finishes it at start-up).
    CompactionPending,
    /// A lease does not decode or names another id than its key.
    LeaseValue,
    /// A live key is attached to a lease that is not in the `lease` bucket.
    LeaseMissing,
    /// A member entry does not decode.
    MemberValue,
    /// An auth value does not decode.
    AuthValue,
    /// Part of the bbolt tree could not be read: these revisions or entries are lost.
    LostData,
    /// The bbolt tree is damaged where nothing was lost (out-of-order separators, a
    /// page reached from two buckets): etcd's reads fail or wander.
    TreeDamage,
    /// The SHA-256 of an `etcdctl snapshot save` file does not match its contents.
    SnapshotHash,
}

impl EtcdFindingKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EtcdFindingKind::MissingBucket => "missing_bucket",
            EtcdFindingKind::BadRevisionKey => "bad_revision_key",
            EtcdFindingKind::UndecodableValue => "undecodable_value",
            EtcdFindingKind::ModRevisionMismatch => "mod_revision_mismatch",
            EtcdFindingKind::CreateRevision => "create_revision",
            EtcdFindingKind::VersionSequence => "version_sequence",
            EtcdFindingKind::TombstoneValue => "tombstone_value",
            EtcdFindingKind::RevisionGap => "revision_gap",
            EtcdFindingKind::SubRevisionGap => "sub_revision_gap",
            EtcdFindingKind::ConsistentIndex => "consistent_index",
            EtcdFindingKind::MetaValue => "meta_value",
            EtcdFindingKind::CompactionPending => "compaction_pending",
            EtcdFindingKind::LeaseValue => "lease_value",
            EtcdFindingKind::LeaseMissing => "lease_missing",
            EtcdFindingKind::MemberValue => "member_value",
            EtcdFindingKind::AuthValue => "auth_value",
            EtcdFindingKind::LostData => "lost_data",
            EtcdFindingKind::TreeDamage => "tree_damage",
            EtcdFindingKind::SnapshotHash => "snapshot_hash",
        }
    }

    /// Informational kinds (do not fail a check).
    pub fn is_warning(self) -> bool {
        matches!(self, EtcdFindingKind::CompactionPending)
    }
}

impl fmt::Display for EtcdFindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One etcd-level problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdFinding {
    /// What kind.
    pub kind: EtcdFindingKind,
    /// The revision concerned, when there is one.
    pub revision: Option<Revision>,
    /// The user key concerned, when known.
    pub key: Option<Vec<u8>>,
    /// Human description.
    pub message: String,
}

impl fmt::Display for EtcdFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(r) = self.revision {
            write!(f, " revision {r}")?;
        }
        if let Some(k) = &self.key {
            write!(f, " key {}", crate::schema::show_key(k))?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The result of `untorn etcd check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdCheckReport {
    /// Findings, at most the limit asked for.
    pub findings: Vec<EtcdFinding>,
    /// Whether more were found than kept.
    pub truncated: bool,
    /// Revisions examined.
    pub revisions_checked: u64,
    /// User keys examined.
    pub keys_checked: u64,
    /// Newest main revision.
    pub current_revision: i64,
    /// Compaction point.
    pub compacted: i64,
    /// Consistent index, when readable.
    pub consistent_index: Option<u64>,
    /// For an `etcdctl snapshot save` file: whether its SHA-256 matches.
    pub snapshot_hash_ok: Option<bool>,
}

impl EtcdCheckReport {
    /// Whether nothing but warnings was found.
    pub fn is_ok(&self) -> bool {
        self.findings.iter().all(|f| f.kind.is_warning())
    }
}

struct Sink {
    findings: Vec<EtcdFinding>,
    max: usize,
    dropped: u64,
}

impl Sink {
    fn push(
        &mut self,
        kind: EtcdFindingKind,
        revision: Option<Revision>,
        key: Option<&[u8]>,
        message: String,
    ) {
        if self.findings.len() < self.max {
            self.findings.push(EtcdFinding {
                kind,
                revision,
                key: key.map(<[u8]>::to_vec),
                message,
            });
        } else {
            self.dropped += 1;
        }
    }
}

impl Sink {
    fn new(max_findings: usize) -> Sink {
        Sink {
            findings: Vec::new(),
            max: max_findings.max(1),
            dropped: 0,
        }
    }
}

/// `untorn etcd check`: opens `path` as etcd's backend (`force`: even when its buckets do
/// not say so) and checks the SHA-256 of an `etcdctl snapshot save` file, reports damage
/// of the bbolt tree in revision terms (the file is then read through salvage), and
/// checks etcd's invariants over everything that verifies.
pub fn check_file(
    path: impl AsRef<Path>,
    force: bool,
    max_findings: usize,
) -> Result<EtcdCheckReport, EtcdError> {
    let path = path.as_ref();
    let opened = open_with(path, force)?;
    let mut s = Sink::new(max_findings);
    let mut snapshot_hash_ok = None;
    if opened.snapshot.is_some() {
        if let Some(h) = BoltFile::open(path)?.verify_snapshot()? {
            snapshot_hash_ok = Some(h.matches());
            if !h.matches() {
                s.push(
                    EtcdFindingKind::SnapshotHash,
                    None,
                    None,
                    format!(
                        "snapshot SHA-256 mismatch: stored {}, computed {} (the file changed \
                         after `etcdctl snapshot save`; `etcdctl snapshot restore` refuses it)",
                        hex32(&h.stored),
                        hex32(&h.computed)
                    ),
                );
            }
        }
    }
    if let Some(d) = &opened.damaged {
        for l in &d.lost {
            let in_key = l.bucket.first().map(Vec::as_slice) == Some(schema::KEY);
            let rev = |k: &Option<Vec<u8>>| {
                k.as_deref()
                    .and_then(|k| decode_rev_key(k).ok())
                    .map(|r| r.rev)
            };
            let show = |r: Option<Revision>| r.map_or("…".to_string(), |r| r.to_string());
            let range = if in_key {
                format!(
                    "revisions [{}, {})",
                    show(rev(&l.lower)),
                    show(rev(&l.upper))
                )
            } else {
                "entries".to_string()
            };
            s.push(
                EtcdFindingKind::LostData,
                if in_key { rev(&l.lower) } else { None },
                None,
                format!(
                    "bucket {} page {}: {range} unreadable: {}",
                    untorn_bbolt::tree::path_display(&l.bucket),
                    l.page,
                    l.reason
                ),
            );
        }
        for n in &d.notes {
            s.push(EtcdFindingKind::TreeDamage, None, None, n.clone());
        }
    }
    let mut report = check_into(&opened.db, s);
    report.snapshot_hash_ok = snapshot_hash_ok;
    Ok(report)
}

/// Checks etcd's invariants, keeping at most `max_findings` findings.
pub fn check_db(db: &EtcdDb, max_findings: usize) -> EtcdCheckReport {
    check_into(db, Sink::new(max_findings))
}

fn check_into(db: &EtcdDb, mut s: Sink) -> EtcdCheckReport {
    for name in [schema::KEY, schema::META] {
        let n = String::from_utf8_lossy(name);
        if !db.buckets.iter().any(|b| *b == n) {
            s.push(
                EtcdFindingKind::MissingBucket,
                None,
                None,
                format!("bucket {n} is missing"),
            );
        }
    }
    for b in &db.bad_keys {
        s.push(
            EtcdFindingKind::BadRevisionKey,
            None,
            None,
            format!(
                "key bucket entry {}: {}",
                crate::schema::show_key(&b.key),
                b.error
            ),
        );
    }
    for r in &db.revisions {
        check_record(&mut s, r);
    }
    // Per key: versions and create revisions within generations.
    let compacted = db.compacted();
    for (key, idx) in &db.index {
        let recs: Vec<&RevRecord> = idx.iter().filter_map(|&i| db.revisions.get(i)).collect();
        let mut prev: Option<(&RevRecord, i64, i64)> = None; // (record, version, create)
        for r in recs {
            let Ok(kv) = &r.kv else { continue };
            if r.tombstone {
                prev = Some((r, 0, 0));
                continue;
            }
            match prev {
                Some((p, pv, pc)) if !p.tombstone && kv.version != 1 => {
                    if kv.version != pv + 1 {
                        s.push(
                            EtcdFindingKind::VersionSequence,
                            Some(r.rev),
                            Some(key),
                            format!(
                                "version {} follows version {pv} at revision {}: a revision of this key is missing or garbled",
                                kv.version, p.rev
                            ),
                        );
                    } else if kv.create_revision != pc {
                        s.push(
                            EtcdFindingKind::CreateRevision,
                            Some(r.rev),
                            Some(key),
                            format!(
                                "create_revision {} differs from {pc} at revision {} of the same generation",
                                kv.create_revision, p.rev
                            ),
                        );
                    }
                }
                Some((p, _, _)) if p.tombstone && kv.version != 1 => {
                    s.push(
                        EtcdFindingKind::VersionSequence,
                        Some(r.rev),
                        Some(key),
                        format!(
                            "version {} right after the tombstone at revision {}: expected 1",
                            kv.version, p.rev
                        ),
                    );
                }
                None if kv.version != 1 && kv.create_revision > compacted => {
                    // The generation started after the compaction point, so its
                    // first put must still be here.
                    s.push(
                        EtcdFindingKind::VersionSequence,
                        Some(r.rev),
                        Some(key),
                        format!(
                            "oldest revision has version {} but the key was created at revision {}, after the compaction point {compacted}: earlier revisions are missing",
                            kv.version, kv.create_revision
                        ),
                    );
                }
                _ => {}
            }
            prev = Some((r, kv.version, kv.create_revision));
        }
    }
    let summary = db.revisions_summary();
    for (from, to) in &summary.gaps {
        s.push(
            EtcdFindingKind::RevisionGap,
            Some(Revision::new(*from, 0)),
            None,
            if from == to {
                format!("main revision {from} is missing (revisions must be dense after the compaction point {compacted})")
            } else {
                format!(
                    "main revisions {from}..={to} ({} revisions) are missing (revisions must be dense after the compaction point {compacted})",
                    to - from + 1
                )
            },
        );
    }
    for (main, sub) in &summary.sub_gaps {
        s.push(
            EtcdFindingKind::SubRevisionGap,
            Some(Revision::new(*main, *sub)),
            None,
            format!("revision {main}: sub revision {sub} is missing"),
        );
    }
    // Meta.
    match &db.meta.consistent_index {
        None => s.push(
            EtcdFindingKind::ConsistentIndex,
            None,
            None,
            "meta/consistent_index is missing: etcd would re-apply its whole raft log".into(),
        ),
        Some(Err(e)) => s.push(
            EtcdFindingKind::ConsistentIndex,
            None,
            None,
            format!("meta/consistent_index: {e}"),
        ),
        Some(Ok(_)) => {}
    }
    for (name, v) in [(
        "term",
        db.meta.term.as_ref().map(|r| r.as_ref().map(|_| ())),
    )] {
        if let Some(Err(e)) = v {
            s.push(
                EtcdFindingKind::MetaValue,
                None,
                None,
                format!("meta/{name}: {e}"),
            );
        }
    }
    for (name, v) in [
        ("scheduledCompactRev", &db.meta.scheduled_compact),
        ("finishedCompactRev", &db.meta.finished_compact),
    ] {
        if let Some(Err(e)) = v {
            s.push(
                EtcdFindingKind::MetaValue,
                None,
                None,
                format!("meta/{name}: {e}"),
            );
        }
    }
    if let (Some(Ok(sched)), finished) = (&db.meta.scheduled_compact, &db.meta.finished_compact) {
        let fin = match finished {
            Some(Ok(f)) => f.main,
            _ => 0,
        };
        if sched.main > fin {
            s.push(
                EtcdFindingKind::CompactionPending,
                Some(*sched),
                None,
                format!(
                    "compaction to revision {} was scheduled but only finished to {fin}; etcd finishes it at start-up",
                    sched.main
                ),
            );
        }
    }
    // Leases.
    for k in &db.bad_lease_keys {
        s.push(
            EtcdFindingKind::LeaseValue,
            None,
            None,
            format!(
                "lease bucket key {} is not an 8-byte lease id",
                crate::schema::show_key(k)
            ),
        );
    }
    for (id, l) in &db.leases {
        match l {
            Err(e) => s.push(
                EtcdFindingKind::LeaseValue,
                None,
                None,
                format!("lease {id:x}: {e}"),
            ),
            Ok(l) if l.id != *id => s.push(
                EtcdFindingKind::LeaseValue,
                None,
                None,
                format!("lease key {id:x} holds lease {:x}", l.id),
            ),
            Ok(_) => {}
        }
    }
    if let Ok(live) = db.range(None) {
        for kv in live {
            if kv.lease != 0 && !db.leases.contains_key(&kv.lease) {
                s.push(
                    EtcdFindingKind::LeaseMissing,
                    Some(Revision::new(kv.mod_revision, 0)),
                    Some(&kv.key),
                    format!(
                        "attached to lease {:x}, which is not in the lease bucket: etcd keeps the key without expiry",
                        kv.lease
                    ),
                );
            }
        }
    }
    for m in &db.members {
        if let Err((k, e)) = m {
            s.push(
                EtcdFindingKind::MemberValue,
                None,
                None,
                format!("members/{}: {e}", crate::schema::show_key(k)),
            );
        }
    }
    for m in &db.members_removed {
        if let Err((k, e)) = m {
            s.push(
                EtcdFindingKind::MemberValue,
                None,
                None,
                format!("members_removed/{}: {e}", crate::schema::show_key(k)),
            );
        }
    }
    if let Some(Err(raw)) = &db.auth.enabled {
        s.push(
            EtcdFindingKind::AuthValue,
            None,
            None,
            format!("auth/enabled is {} bytes, not 0 or 1", raw.len()),
        );
    }
    if let Some(Err(e)) = &db.auth.revision {
        s.push(
            EtcdFindingKind::AuthValue,
            None,
            None,
            format!("auth/authRevision: {e}"),
        );
    }
    // Each user and role record is keyed by its name and must hold that name.
    let users = db
        .auth
        .users
        .iter()
        .map(|(k, u)| (k, u.as_ref().map(|u| &u.name)));
    let roles = db
        .auth
        .roles
        .iter()
        .map(|(k, r)| (k, r.as_ref().map(|r| &r.name)));
    for (bucket, noun, records) in [
        ("authUsers", "user", users.collect::<Vec<_>>()),
        ("authRoles", "role", roles.collect()),
    ] {
        for (k, name) in records {
            match name {
                Err(e) => s.push(
                    EtcdFindingKind::AuthValue,
                    None,
                    None,
                    format!("{bucket}/{}: {e}", crate::schema::show_key(k)),
                ),
                Ok(name) if name != k => s.push(
                    EtcdFindingKind::AuthValue,
                    None,
                    None,
                    format!(
                        "{bucket}/{} holds {noun} {}",
                        crate::schema::show_key(k),
                        crate::schema::show_key(name)
                    ),
                ),
                Ok(_) => {}
            }
        }
    }
    for a in &db.alarms {
        if let Err(e) = a {
            s.push(
                EtcdFindingKind::MetaValue,
                None,
                None,
                format!("alarm key does not decode: {e}"),
            );
        }
    }
    EtcdCheckReport {
        findings: s.findings,
        truncated: s.dropped > 0,
        revisions_checked: db.revisions.len() as u64,
        keys_checked: db.index.len() as u64,
        current_revision: db.current_revision(),
        compacted,
        consistent_index: match &db.meta.consistent_index {
            Some(Ok(ci)) => Some(*ci),
            _ => None,
        },
        snapshot_hash_ok: None,
    }
}

/// The per-revision invariants.
fn check_record(s: &mut Sink, r: &RevRecord) {
    match &r.kv {
        Err(e) => s.push(
            EtcdFindingKind::UndecodableValue,
            Some(r.rev),
            None,
            format!(
                "value does not decode as mvccpb.KeyValue: {e} (etcd panics on it at start-up)"
            ),
        ),
        Ok(kv) if r.tombstone => {
            if kv.mod_revision != 0
                || kv.create_revision != 0
                || kv.version != 0
                || !kv.value.is_empty()
            {
                s.push(
                    EtcdFindingKind::TombstoneValue,
                    Some(r.rev),
                    Some(&kv.key),
                    "tombstone value holds more than the key".into(),
                );
            }
        }
        Ok(kv) => {
            if kv.mod_revision != r.rev.main {
                s.push(
                    EtcdFindingKind::ModRevisionMismatch,
                    Some(r.rev),
                    Some(&kv.key),
                    format!(
                        "mod_revision {} differs from the revision {} it is stored under",
                        kv.mod_revision, r.rev.main
                    ),
                );
            }
            if kv.create_revision <= 0 || kv.create_revision > kv.mod_revision {
                s.push(
                    EtcdFindingKind::CreateRevision,
                    Some(r.rev),
                    Some(&kv.key),
                    format!(
                        "create_revision {} is not in 1..=mod_revision {}",
                        kv.create_revision, kv.mod_revision
                    ),
                );
            }
            if kv.version <= 0 {
                s.push(
                    EtcdFindingKind::VersionSequence,
                    Some(r.rev),
                    Some(&kv.key),
                    format!("version {} of a put is not positive", kv.version),
                );
            } else if kv.version == 1 && kv.create_revision != kv.mod_revision {
                s.push(
                    EtcdFindingKind::CreateRevision,
                    Some(r.rev),
                    Some(&kv.key),
                    format!(
                        "version 1 (a creation) but create_revision {} differs from mod_revision {}",
                        kv.create_revision, kv.mod_revision
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::AuthInfo;
    use crate::format::{AuthRole, AuthUser, DecodeError};

    /// A user or role record must hold the name it is keyed by, and must decode; both
    /// kinds of record are checked, and an intact one says nothing.
    #[test]
    fn auth_records_are_checked_against_their_keys() {
        let db = EtcdDb {
            auth: AuthInfo {
                users: vec![
                    (
                        b"alice".to_vec(),
                        Ok(AuthUser {
                            name: b"bob".to_vec(),
                            ..AuthUser::default()
                        }),
                    ),
                    (
                        b"carol".to_vec(),
                        Ok(AuthUser {
                            name: b"carol".to_vec(),
                            ..AuthUser::default()
                        }),
                    ),
                ],
                roles: vec![
                    (b"admin".to_vec(), Err(DecodeError::RevKeyLength(3))),
                    (
                        b"reader".to_vec(),
                        Ok(AuthRole {
                            name: b"writer".to_vec(),
                            ..AuthRole::default()
                        }),
                    ),
                ],
                ..AuthInfo::default()
            },
            ..EtcdDb::default()
        };
        let r = check_db(&db, 100);
        let auth: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.kind == EtcdFindingKind::AuthValue)
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(auth.len(), 3, "{auth:?}");
        assert!(auth
            .iter()
            .any(|m| m.starts_with("authUsers/alice holds user bob")));
        assert!(auth.iter().any(|m| m.starts_with("authRoles/admin: ")));
        assert!(auth
            .iter()
            .any(|m| m.starts_with("authRoles/reader holds role writer")));
    }
}
