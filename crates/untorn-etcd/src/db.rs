//! An etcd backend read into memory: revisions, the key index, meta, leases,
//! members and auth, with the queries `etcdctl` would answer.
//!
//! Built from a bbolt bucket tree ([`untorn_bbolt::BucketData`]) so that a healthy
//! file (read strictly) and a damaged one (what salvage could verify) are read alike.

use std::collections::BTreeMap;

use untorn_bbolt::{BucketData, Value};

use crate::format::{
    decode_alarm, decode_auth_role, decode_auth_user, decode_be_u64, decode_key_value,
    decode_lease, decode_lease_key, decode_member, decode_member_id, decode_rev_key,
    decode_revision_value, AlarmMember, AuthRole, AuthUser, DecodeError, KeyValue, Lease, Member,
    Revision,
};
use crate::schema::{self, meta_keys};

/// One entry of the `key` bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevRecord {
    /// The revision (from the bucket key).
    pub rev: Revision,
    /// Whether the bucket key carries the tombstone mark.
    pub tombstone: bool,
    /// The decoded value, or why it does not decode.
    pub kv: Result<KeyValue, DecodeError>,
}

impl RevRecord {
    /// The user key, when the value decodes.
    pub fn user_key(&self) -> Option<&[u8]> {
        self.kv.as_ref().ok().map(|kv| kv.key.as_slice())
    }
}

/// A `key` bucket entry whose bucket key is not a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadKey {
    /// The bucket key.
    pub key: Vec<u8>,
    /// Why it is not a revision.
    pub error: DecodeError,
}

/// A value of the `meta` bucket: decoded, absent, or undecodable.
pub type MetaValue<T> = Option<Result<T, DecodeError>>;

/// The `meta` bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaInfo {
    /// Last applied raft index.
    pub consistent_index: MetaValue<u64>,
    /// Raft term (etcd ≥ 3.5).
    pub term: MetaValue<u64>,
    /// Compaction requested up to this revision.
    pub scheduled_compact: MetaValue<Revision>,
    /// Compaction finished up to this revision.
    pub finished_compact: MetaValue<Revision>,
    /// Other keys, raw.
    pub other: Vec<(Vec<u8>, Vec<u8>)>,
}

impl MetaInfo {
    /// The finished compaction's main revision (0 when none).
    pub fn compacted(&self) -> i64 {
        match &self.finished_compact {
            Some(Ok(r)) => r.main,
            _ => 0,
        }
    }
}

/// The auth buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    /// `enabled`: Some(true/false), None when absent; raw when not one byte.
    pub enabled: Option<Result<bool, Vec<u8>>>,
    /// `authRevision`.
    pub revision: MetaValue<u64>,
    /// Users by name.
    pub users: Vec<(Vec<u8>, Result<AuthUser, DecodeError>)>,
    /// Roles by name.
    pub roles: Vec<(Vec<u8>, Result<AuthRole, DecodeError>)>,
}

/// An etcd backend in memory.
#[derive(Debug, Clone, Default)]
pub struct EtcdDb {
    /// Top-level etcd buckets present.
    pub buckets: Vec<String>,
    /// Every revision, in revision order (a tombstone after a put of the same revision
    /// cannot happen; both would sort by bucket key).
    pub revisions: Vec<RevRecord>,
    /// `key` bucket entries that are not revisions.
    pub bad_keys: Vec<BadKey>,
    /// User key → indexes into `revisions`, oldest first.
    pub index: BTreeMap<Vec<u8>, Vec<usize>>,
    /// The meta bucket.
    pub meta: MetaInfo,
    /// Leases: key id → decoded value.
    pub leases: BTreeMap<i64, Result<Lease, DecodeError>>,
    /// Lease bucket keys that are not 8 bytes.
    pub bad_lease_keys: Vec<Vec<u8>>,
    /// Members by id (or the undecodable entry).
    pub members: Vec<Result<Member, (Vec<u8>, DecodeError)>>,
    /// Removed member ids.
    pub members_removed: Vec<Result<u64, (Vec<u8>, DecodeError)>>,
    /// `cluster/clusterVersion`.
    pub cluster_version: Option<String>,
    /// Auth.
    pub auth: AuthInfo,
    /// Alarms raised.
    pub alarms: Vec<Result<AlarmMember, DecodeError>>,
}

/// Why a query cannot be answered (etcd answers these with the same errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The revision asked for was compacted away.
    #[error("required revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted {
        /// Revision asked for.
        requested: i64,
        /// Compaction point.
        compacted: i64,
    },
    /// The revision asked for is newer than the newest in the file.
    #[error("required revision {requested} is a future revision (newest is {current})")]
    Future {
        /// Revision asked for.
        requested: i64,
        /// Newest revision.
        current: i64,
    },
}

fn bucket<'a>(root: &'a BucketData, name: &[u8]) -> Option<&'a BucketData> {
    match root.entries.get(name) {
        Some(Value::Bucket(b)) => Some(b),
        _ => None,
    }
}

fn data(b: &BucketData) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
    b.entries.iter().filter_map(|(k, v)| match v {
        Value::Data(d) => Some((k, d)),
        Value::Bucket(_) => None,
    })
}

impl EtcdDb {
    /// Reads etcd's buckets from a bucket tree (missing buckets read as empty).
    pub fn from_buckets(root: &BucketData) -> EtcdDb {
        let mut db = EtcdDb {
            buckets: schema::ALL_BUCKETS
                .iter()
                .filter(|n| bucket(root, n).is_some())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect(),
            ..EtcdDb::default()
        };
        if let Some(b) = bucket(root, schema::KEY) {
            db.revisions.reserve(b.entries.len());
            for (k, v) in data(b) {
                match decode_rev_key(k) {
                    Ok(rk) => db.revisions.push(RevRecord {
                        rev: rk.rev,
                        tombstone: rk.tombstone,
                        kv: decode_key_value(v),
                    }),
                    Err(error) => db.bad_keys.push(BadKey {
                        key: k.clone(),
                        error,
                    }),
                }
            }
            // Bucket order is byte order; for revision keys that is revision order
            // with the tombstone-marked key after the plain one.
            db.revisions.sort_by_key(|r| (r.rev, r.tombstone));
        }
        for (i, r) in db.revisions.iter().enumerate() {
            if let Some(k) = r.user_key() {
                db.index.entry(k.to_vec()).or_default().push(i);
            }
        }
        if let Some(b) = bucket(root, schema::META) {
            for (k, v) in data(b) {
                match k.as_slice() {
                    meta_keys::CONSISTENT_INDEX => {
                        db.meta.consistent_index = Some(decode_be_u64(v))
                    }
                    meta_keys::TERM => db.meta.term = Some(decode_be_u64(v)),
                    meta_keys::SCHEDULED_COMPACT => {
                        db.meta.scheduled_compact = Some(decode_revision_value(v))
                    }
                    meta_keys::FINISHED_COMPACT => {
                        db.meta.finished_compact = Some(decode_revision_value(v))
                    }
                    _ => db.meta.other.push((k.clone(), v.clone())),
                }
            }
        }
        if let Some(b) = bucket(root, schema::LEASE) {
            for (k, v) in data(b) {
                match decode_lease_key(k) {
                    Ok(id) => {
                        db.leases.insert(id, decode_lease(v));
                    }
                    Err(_) => db.bad_lease_keys.push(k.clone()),
                }
            }
        }
        if let Some(b) = bucket(root, schema::MEMBERS) {
            db.members = data(b)
                .map(|(k, v)| decode_member(k, v).map_err(|e| (k.clone(), e)))
                .collect();
        }
        if let Some(b) = bucket(root, schema::MEMBERS_REMOVED) {
            db.members_removed = data(b)
                .map(|(k, _)| decode_member_id(k).map_err(|e| (k.clone(), e)))
                .collect();
        }
        if let Some(b) = bucket(root, schema::CLUSTER) {
            db.cluster_version = data(b)
                .find(|(k, _)| k.as_slice() == b"clusterVersion")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        }
        if let Some(b) = bucket(root, schema::AUTH) {
            for (k, v) in data(b) {
                match k.as_slice() {
                    b"enabled" => {
                        db.auth.enabled = Some(match v.as_slice() {
                            [1] => Ok(true),
                            [0] => Ok(false),
                            other => Err(other.to_vec()),
                        })
                    }
                    b"authRevision" => db.auth.revision = Some(decode_be_u64(v)),
                    _ => {}
                }
            }
        }
        if let Some(b) = bucket(root, schema::AUTH_USERS) {
            db.auth.users = data(b)
                .map(|(k, v)| (k.clone(), decode_auth_user(v)))
                .collect();
        }
        if let Some(b) = bucket(root, schema::AUTH_ROLES) {
            db.auth.roles = data(b)
                .map(|(k, v)| (k.clone(), decode_auth_role(v)))
                .collect();
        }
        if let Some(b) = bucket(root, schema::ALARM) {
            db.alarms = b.entries.keys().map(|k| decode_alarm(k)).collect();
        }
        db
    }

    /// The newest main revision in the file (etcd's current revision), or 1 for a
    /// file without revisions (etcd starts at revision 1).
    pub fn current_revision(&self) -> i64 {
        self.revisions.last().map(|r| r.rev.main).unwrap_or(1)
    }

    /// The compaction point (0 when never compacted).
    pub fn compacted(&self) -> i64 {
        self.meta.compacted()
    }

    fn check_rev(&self, at: Option<i64>) -> Result<i64, QueryError> {
        let current = self.current_revision();
        let at = match at {
            None | Some(0) => return Ok(current),
            Some(r) => r,
        };
        if at > current {
            return Err(QueryError::Future {
                requested: at,
                current,
            });
        }
        let compacted = self.compacted();
        if at < compacted {
            return Err(QueryError::Compacted {
                requested: at,
                compacted,
            });
        }
        Ok(at)
    }

    /// The record of `key` visible at main revision `at` (None = tombstoned or absent).
    fn visible(&self, key: &[u8], at: i64) -> Option<&RevRecord> {
        let idx = self.index.get(key)?;
        let newest = idx
            .iter()
            .filter_map(|&i| self.revisions.get(i))
            .take_while(|r| r.rev.main <= at)
            .last()?;
        (!newest.tombstone).then_some(newest)
    }

    /// What `etcdctl get KEY [--rev N]` answers (None: no such key at that revision).
    pub fn get(&self, key: &[u8], rev: Option<i64>) -> Result<Option<&KeyValue>, QueryError> {
        let at = self.check_rev(rev)?;
        Ok(self.visible(key, at).and_then(|r| r.kv.as_ref().ok()))
    }

    /// What `etcdctl get "" --from-key [--rev N]` answers: every live key, in key order.
    pub fn range(&self, rev: Option<i64>) -> Result<Vec<&KeyValue>, QueryError> {
        let at = self.check_rev(rev)?;
        Ok(self
            .index
            .keys()
            .filter_map(|k| self.visible(k, at))
            .filter_map(|r| r.kv.as_ref().ok())
            .collect())
    }

    /// Every revision of `key` in the file, oldest first (tombstones included).
    pub fn history(&self, key: &[u8]) -> Vec<&RevRecord> {
        self.index
            .get(key)
            .map(|idx| idx.iter().filter_map(|&i| self.revisions.get(i)).collect())
            .unwrap_or_default()
    }

    /// The revision range, compaction point and gaps.
    pub fn revisions_summary(&self) -> RevisionsSummary {
        let mut s = RevisionsSummary {
            count: self.revisions.len() as u64,
            tombstones: self.revisions.iter().filter(|r| r.tombstone).count() as u64,
            oldest: self.revisions.first().map(|r| r.rev),
            newest: self.revisions.last().map(|r| r.rev),
            scheduled_compact: match &self.meta.scheduled_compact {
                Some(Ok(r)) => Some(r.main),
                _ => None,
            },
            finished_compact: match &self.meta.finished_compact {
                Some(Ok(r)) => Some(r.main),
                _ => None,
            },
            keys: self.index.len() as u64,
            ..RevisionsSummary::default()
        };
        let mut mains: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for r in &self.revisions {
            mains.entry(r.rev.main).or_default().push(r.rev.sub);
        }
        s.main_revisions = mains.len() as u64;
        // Dense from the compaction point (or from 2: the first write) to the newest.
        let compacted = self.compacted();
        let dense_from = compacted.max(1) + 1;
        if let Some(newest) = s.newest.map(|r| r.main) {
            let mut expect = dense_from;
            for (&main, subs) in mains.range(dense_from..) {
                if main > expect {
                    s.gaps.push((expect, main - 1));
                }
                expect = main + 1;
                // Sub revisions count from 0 without holes.
                let missing: Vec<i64> = subs
                    .iter()
                    .enumerate()
                    .filter(|&(i, &sub)| sub != i as i64)
                    .map(|(i, _)| i as i64)
                    .take(1)
                    .collect();
                if let Some(&first) = missing.first() {
                    s.sub_gaps.push((main, first));
                }
            }
            let _ = newest;
        }
        s
    }
}

/// `untorn etcd revisions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionsSummary {
    /// Revision entries in the `key` bucket.
    pub count: u64,
    /// Of which tombstones.
    pub tombstones: u64,
    /// Distinct main revisions.
    pub main_revisions: u64,
    /// Distinct user keys.
    pub keys: u64,
    /// Oldest revision in the file.
    pub oldest: Option<Revision>,
    /// Newest revision (etcd's current revision).
    pub newest: Option<Revision>,
    /// Compaction requested up to.
    pub scheduled_compact: Option<i64>,
    /// Compaction done up to.
    pub finished_compact: Option<i64>,
    /// Main revisions missing between the compaction point and the newest
    /// (inclusive ranges).
    pub gaps: Vec<(i64, i64)>,
    /// Main revisions whose sub revisions do not count from 0 without holes: (main,
    /// first missing sub).
    pub sub_gaps: Vec<(i64, i64)>,
}
