//! The etcd part of `untorn salvage`: for an etcd backend (detected from its buckets,
//! or `--etcd`), `untorn_etcd::salvage::apply` on the bbolt-salvaged contents, and its
//! report as JSON and text.

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use untorn_bbolt::Salvaged;
use untorn_etcd::salvage::{EtcdSalvageReport, Fallback, StalePolicy};

use crate::args::{EtcdStale, SalvageArgs};
use crate::encoding::{display, encode};

/// A key whose newest revision was lost.
#[derive(Debug, Serialize)]
struct JsonAffected {
    key: Value,
    lost_revision: String,
    lost_was_delete: bool,
    /// `older`, `vanished`, `resurrected` or `dropped`.
    now: &'static str,
    /// The revision etcd serves now (older / resurrected), or had (dropped).
    now_revision: Option<i64>,
    reason: String,
}

/// A lost range of etcd's `key` bucket.
#[derive(Debug, Serialize)]
struct JsonLostRevisions {
    from: Option<String>,
    to: Option<String>,
    page: u64,
    reason: String,
    restored: u64,
    missing_at_least: u64,
    exact: bool,
}

/// `salvage --json` for an etcd backend (the `etcd` object).
#[derive(Debug, Serialize)]
pub struct JsonEtcd {
    stale: &'static str,
    current_revision: i64,
    compacted: i64,
    consistent_index: Option<u64>,
    revisions_lost: u64,
    lost_ranges: Vec<JsonLostRevisions>,
    restored_revisions: Vec<String>,
    dropped: Vec<String>,
    affected_keys: Vec<JsonAffected>,
    leases_lost: Vec<String>,
    keys_without_lease: Vec<(Value, String)>,
    members_lost: Vec<String>,
    other_lost: Vec<String>,
    /// Nothing etcd-visible was lost.
    #[serde(skip)]
    pub nothing_lost: bool,
    /// The report as text (for the human output).
    #[serde(skip)]
    pub text: String,
}

/// Applies the etcd layer when SRC is an etcd backend (or `--etcd` forces it).
pub fn apply(a: &SalvageArgs, s: &mut Salvaged) -> Result<Option<JsonEtcd>> {
    if !a.etcd && !untorn_etcd::detect(&s.data).is_etcd {
        return Ok(None);
    }
    let witness = untorn_bbolt::BoltFile::open(&a.src)
        .with_context(|| format!("cannot salvage {}", a.src.display()))?;
    let stale = match a.etcd_stale {
        EtcdStale::Keep => StalePolicy::Keep,
        EtcdStale::Drop => StalePolicy::Drop,
    };
    let r = untorn_etcd::salvage::apply(Some(&witness), s, stale);
    Ok(Some(json(&r)))
}

fn json(r: &EtcdSalvageReport) -> JsonEtcd {
    JsonEtcd {
        stale: r.stale.as_str(),
        current_revision: r.current_revision,
        compacted: r.compacted,
        consistent_index: r.consistent_index,
        revisions_lost: r.revisions_lost(),
        lost_ranges: r
            .lost_ranges
            .iter()
            .map(|l| JsonLostRevisions {
                from: l.from.map(|r| r.to_string()),
                to: l.to.map(|r| r.to_string()),
                page: l.page,
                reason: l.reason.clone(),
                restored: l.restored,
                missing_at_least: l.missing_at_least,
                exact: l.exact,
            })
            .collect(),
        restored_revisions: r.restored.iter().map(|r| r.to_string()).collect(),
        dropped: r
            .dropped
            .iter()
            .map(|d| {
                format!(
                    "{} {}: {}",
                    d.revision.map(|r| r.to_string()).unwrap_or("?".into()),
                    d.key.as_deref().map(display).unwrap_or("?".into()),
                    d.reason
                )
            })
            .collect(),
        affected_keys: r
            .affected
            .iter()
            .map(|a| {
                let (now, rev) = match &a.now {
                    Fallback::Older(r) => ("older", Some(r.main)),
                    Fallback::Vanished => ("vanished", None),
                    Fallback::Resurrected(r) => ("resurrected", Some(r.main)),
                    Fallback::Dropped(r) => ("dropped", r.map(|r| r.main)),
                };
                JsonAffected {
                    key: encode(&a.key, true),
                    lost_revision: a.lost.to_string(),
                    lost_was_delete: a.lost_tombstone,
                    now,
                    now_revision: rev,
                    reason: a.reason.clone(),
                }
            })
            .collect(),
        leases_lost: r.leases_lost.clone(),
        keys_without_lease: r
            .keys_without_lease
            .iter()
            .map(|(k, l)| (encode(k, true), format!("{l:x}")))
            .collect(),
        members_lost: r.members_lost.clone(),
        other_lost: r.other_lost.clone(),
        nothing_lost: r.nothing_lost(),
        text: r.to_string(),
    }
}
