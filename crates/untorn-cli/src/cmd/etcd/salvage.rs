//! The etcd part of `untorn salvage`: for an etcd backend (detected from its buckets,
//! or `--etcd`), `untorn_etcd::salvage::apply` on the bbolt-salvaged contents, and its
//! report as JSON and text.

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use untorn_bbolt::Salvaged;
use untorn_etcd::salvage::{EtcdSalvageReport, Fallback, KeyNow, StalePolicy, WalInput};

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

/// A lost change named by the raft log.
#[derive(Debug, Serialize)]
struct JsonLostChange {
    revision: String,
    key: Value,
    delete: bool,
    /// `older`, `vanished`, `resurrected`, `dropped`, `newer_survives`, `newer_lost` or
    /// `unchanged`.
    now: &'static str,
    /// The revision etcd serves now, the newer surviving one, or the newer lost one.
    now_revision: Option<String>,
}

/// A main revision with lost changes.
#[derive(Debug, Serialize)]
struct JsonLostMain {
    revision: i64,
    raft_index: u64,
    raft_term: u64,
    changes: u64,
    lost: Vec<JsonLostChange>,
}

/// What the raft log contributed.
#[derive(Debug, Serialize)]
struct JsonWal {
    dir: Option<String>,
    used: bool,
    summary: String,
    stopped: Option<String>,
    lost: Vec<JsonLostMain>,
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
    wal: JsonWal,
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
    let wal = WalInput::find(&a.src, a.wal.as_deref());
    let r = untorn_etcd::salvage::apply(Some(&witness), s, stale, wal);
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
                let (now, rev) = fallback(&a.now);
                let rev = rev.map(|r| r.main);
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
        wal: JsonWal {
            dir: r.wal.dir.as_ref().map(|d| d.display().to_string()),
            used: r.wal.used,
            summary: r.wal.summary.clone(),
            stopped: r.wal.stopped.clone(),
            lost: r
                .wal
                .lost
                .iter()
                .map(|m| JsonLostMain {
                    revision: m.main,
                    raft_index: m.index,
                    raft_term: m.term,
                    changes: m.changes,
                    lost: m
                        .lost
                        .iter()
                        .map(|c| {
                            let (now, rev) = match &c.now {
                                KeyNow::Serves(f) => {
                                    let (n, r) = fallback(f);
                                    (n, r.map(|r| r.to_string()))
                                }
                                KeyNow::NewerSurvives(r) => ("newer_survives", Some(r.to_string())),
                                KeyNow::NewerLost(r) => ("newer_lost", Some(r.to_string())),
                                KeyNow::Unchanged => ("unchanged", None),
                            };
                            JsonLostChange {
                                revision: c.rev.to_string(),
                                key: encode(&c.key, true),
                                delete: c.delete,
                                now,
                                now_revision: rev,
                            }
                        })
                        .collect(),
                })
                .collect(),
        },
        nothing_lost: r.nothing_lost(),
        text: r.to_string(),
    }
}

/// The JSON name of what etcd serves for a key, and the revision it serves (or had).
fn fallback(f: &Fallback) -> (&'static str, Option<untorn_etcd::Revision>) {
    match f {
        Fallback::Older(r) => ("older", Some(*r)),
        Fallback::Vanished => ("vanished", None),
        Fallback::Resurrected(r) => ("resurrected", Some(*r)),
        Fallback::Dropped(r) => ("dropped", *r),
    }
}
