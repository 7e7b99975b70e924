//! etcd's buckets and how a bbolt file is recognised as etcd's.

use untorn_bbolt::{BucketData, Value};

/// The bucket of revisions (`mvccpb.KeyValue` per revision).
pub const KEY: &[u8] = b"key";
/// Consistent index, term and the compaction marks.
pub const META: &[u8] = b"meta";
/// Leases.
pub const LEASE: &[u8] = b"lease";
/// Cluster members.
pub const MEMBERS: &[u8] = b"members";
/// Removed members.
pub const MEMBERS_REMOVED: &[u8] = b"members_removed";
/// Cluster version.
pub const CLUSTER: &[u8] = b"cluster";
/// Auth switches and revision.
pub const AUTH: &[u8] = b"auth";
/// Auth users.
pub const AUTH_USERS: &[u8] = b"authUsers";
/// Auth roles.
pub const AUTH_ROLES: &[u8] = b"authRoles";
/// Raised alarms.
pub const ALARM: &[u8] = b"alarm";

/// Every top-level bucket etcd 3.4–3.6 creates.
pub const ALL_BUCKETS: &[&[u8]] = &[
    KEY,
    META,
    LEASE,
    MEMBERS,
    MEMBERS_REMOVED,
    CLUSTER,
    AUTH,
    AUTH_USERS,
    AUTH_ROLES,
    ALARM,
];

/// Keys of the `meta` bucket.
pub mod meta_keys {
    /// Last applied raft index (8 bytes, big-endian).
    pub const CONSISTENT_INDEX: &[u8] = b"consistent_index";
    /// Raft term of that index (etcd ≥ 3.5).
    pub const TERM: &[u8] = b"term";
    /// Compaction requested up to this revision.
    pub const SCHEDULED_COMPACT: &[u8] = b"scheduledCompactRev";
    /// Compaction done up to this revision.
    pub const FINISHED_COMPACT: &[u8] = b"finishedCompactRev";
    /// Raft configuration (etcd ≥ 3.5).
    pub const CONF_STATE: &[u8] = b"confState";
    /// Storage version (etcd ≥ 3.6).
    pub const STORAGE_VERSION: &[u8] = b"storageVersion";
}

/// Whether a file is etcd's, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The verdict.
    pub is_etcd: bool,
    /// etcd bucket names found at the top level.
    pub found: Vec<String>,
    /// Top-level names that etcd never creates.
    pub foreign: Vec<String>,
}

/// Recognises etcd from top-level bucket names: `key` and `meta` must be there, and
/// nothing at the top level may be something etcd never creates (a plain value, or a
/// bucket other than etcd's and salvage's `lost+found`).
pub fn detect_names<'a>(top: impl IntoIterator<Item = (&'a [u8], bool)>) -> Detection {
    let mut found = Vec::new();
    let mut foreign = Vec::new();
    for (name, is_bucket) in top {
        let text = String::from_utf8_lossy(name).into_owned();
        if is_bucket && ALL_BUCKETS.contains(&name) {
            found.push(text);
        } else if !(is_bucket && name == untorn_bbolt::salvage::LOST_AND_FOUND) {
            foreign.push(text);
        }
    }
    let has = |n: &[u8]| found.iter().any(|f| f.as_bytes() == n);
    Detection {
        is_etcd: has(KEY) && has(META) && foreign.is_empty(),
        found,
        foreign,
    }
}

/// [`detect_names`] over the top level of salvaged or read contents.
pub fn detect(root: &BucketData) -> Detection {
    detect_names(
        root.entries
            .iter()
            .map(|(k, v)| (k.as_slice(), matches!(v, Value::Bucket(_)))),
    )
}

/// Why a file was (not) recognised.
pub fn describe(d: &Detection) -> String {
    let mut s = if d.found.is_empty() {
        "no etcd bucket at the top level".to_string()
    } else {
        format!("etcd buckets found: {}", d.found.join(", "))
    };
    if !d.foreign.is_empty() {
        s.push_str(&format!(
            "; names etcd never creates: {}",
            d.foreign.join(", ")
        ));
    }
    s.push_str(" (use --etcd to read it as etcd anyway)");
    s
}

/// A user key for humans: text when printable, hex otherwise.
pub fn show_key(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => format!(
            "0x{}",
            k.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}
