//! `untorn info`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::args::InfoArgs;
use untorn_bbolt::{BoltFile, FreelistInfo};

use std::path::Path;

use anyhow::Context;
use untorn::{Database, Recovery};

use super::recover::JsonRecovery;
use crate::backend::{detect, open_bbolt, Format};
use crate::output;

/// `info --json`. Journal and recovery fields are null for bbolt files (bbolt has
/// neither); `metas` and `freelist` are present only for bbolt files.
#[derive(Debug, Serialize)]
struct JsonInfo {
    format: &'static str,
    page_size: usize,
    txid: u64,
    high_water: u64,
    file_size_bytes: u64,
    journal_size_bytes: Option<u64>,
    journal_commits: Option<u64>,
    active_meta_slot: Option<u64>,
    meta_fallback: Option<String>,
    commits_replayed: Option<u64>,
    pages_restored: Option<u64>,
    bytes_discarded: Option<u64>,
    /// Top-level buckets; null when the root bucket cannot be read (bbolt).
    buckets: Option<usize>,
    /// untorn: the database's identity (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    database_id: Option<String>,
    /// untorn: why a strict open refuses the file (then the rest describes what a
    /// rollback would open, read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
    /// untorn: the full recovery report.
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery: Option<JsonRecovery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metas: Option<Vec<JsonMeta>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    freelist: Option<String>,
}

/// One bbolt meta slot.
#[derive(Debug, Serialize)]
struct JsonMeta {
    slot: usize,
    valid: bool,
    problem: Option<String>,
    txid: Option<u64>,
    root: Option<u64>,
    freelist: Option<u64>,
    high_water: Option<u64>,
}

fn bbolt_info(f: &BoltFile) -> JsonInfo {
    let i = untorn_bbolt::info(f);
    let metas = i
        .metas
        .iter()
        .enumerate()
        .map(|(slot, m)| JsonMeta {
            slot,
            valid: m.is_valid(),
            problem: m.problem.as_ref().map(ToString::to_string),
            txid: m.meta.map(|m| m.txid),
            root: m.meta.map(|m| m.root),
            freelist: m.meta.filter(|m| !m.no_freelist_sync()).map(|m| m.freelist),
            high_water: m.meta.map(|m| m.pgid),
        })
        .collect();
    let freelist = match &i.freelist {
        FreelistInfo::Synced { page, count } => format!("page {page}, {count} ids"),
        FreelistInfo::NotSynced => "not synced (NoFreelistSync)".to_owned(),
        FreelistInfo::Unreadable(e) => format!("unreadable: {e}"),
    };
    JsonInfo {
        format: Format::Bbolt.name(),
        page_size: i.page_size as usize,
        txid: i.txid,
        high_water: i.hwm,
        file_size_bytes: i.file_len,
        journal_size_bytes: None,
        journal_commits: None,
        active_meta_slot: Some(i.active as u64),
        meta_fallback: f.is_fallback().then(|| i.reason.clone()),
        commits_replayed: None,
        pages_restored: None,
        bytes_discarded: None,
        buckets: untorn_bbolt::buckets(f, &[]).ok().map(|b| b.len()),
        database_id: None,
        refused: None,
        recovery: None,
        metas: Some(metas),
        freelist: Some(freelist),
    }
}

/// Opens an untorn file read-only; if a strict open refuses it, opens it as a rollback
/// would (read-only: nothing is written) and returns the refusal too.
fn open_native(path: &Path) -> Result<(Database, Option<String>)> {
    match Database::builder().read_only(true).open(path) {
        Ok(db) => Ok((crate::backend::noted(db, path), None)),
        Err(e) if e.needs_rollback() => {
            let db = Database::builder()
                .read_only(true)
                .recovery(Recovery::RollbackToLastGood)
                .open(path)
                .with_context(|| format!("cannot open {} (refused: {e})", path.display()))?;
            Ok((db, Some(e.to_string())))
        }
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
}

pub fn run(a: InfoArgs) -> Result<ExitCode> {
    let path = &a.common.file;
    let info = match detect(path)? {
        Format::Bbolt => bbolt_info(&open_bbolt(path)?),
        Format::Native => {
            let (db, refused) = open_native(path)?;
            let i = db.info()?;
            let rec = db.recovery_report();
            let buckets = db.view(|tx| tx.buckets()).ok().map(|b| b.len());
            JsonInfo {
                format: "untorn",
                page_size: i.page_size,
                txid: i.txid,
                high_water: i.high_water,
                file_size_bytes: i.file_size_bytes,
                journal_size_bytes: Some(i.journal_size_bytes),
                journal_commits: Some(i.journal_commits),
                active_meta_slot: i.active_meta_slot,
                meta_fallback: i.meta_fallback.or(rec.meta_fallback.clone()),
                commits_replayed: Some(rec.commits_replayed),
                pages_restored: Some(rec.pages_restored),
                bytes_discarded: Some(rec.bytes_discarded),
                buckets,
                database_id: Some(i.database_id),
                refused,
                recovery: Some(JsonRecovery::new(i.txid, &rec)),
                metas: None,
                freelist: None,
            }
        }
    };
    let damaged = info.refused.is_some()
        || info
            .recovery
            .as_ref()
            .is_some_and(|r| r.report.damaged_record.is_some());
    let mut out = output::stdout();
    if a.common.json {
        output::json(&mut out, &info)?;
    } else {
        let opt = |v: Option<u64>| v.map_or("none".to_owned(), |v| v.to_string());
        let mut rows: Vec<Vec<String>> = vec![
            vec!["format".into(), info.format.into()],
            vec!["page size".into(), format!("{} bytes", info.page_size)],
            vec!["txid".into(), info.txid.to_string()],
            vec![
                "high-water mark".into(),
                format!("{} pages", info.high_water),
            ],
            vec![
                "file size".into(),
                format!("{} bytes", info.file_size_bytes),
            ],
            vec!["active meta slot".into(), opt(info.active_meta_slot)],
            vec![
                "meta fallback".into(),
                info.meta_fallback.clone().unwrap_or_else(|| "no".into()),
            ],
            vec![
                "top-level buckets".into(),
                info.buckets
                    .map_or_else(|| "unreadable".to_owned(), |b| b.to_string()),
            ],
        ];
        if let (Some(size), Some(commits)) = (info.journal_size_bytes, info.journal_commits) {
            rows.push(vec![
                "journal".into(),
                format!(
                    "{}, {} not checkpointed",
                    output::count(size, "byte"),
                    output::count(commits, "commit")
                ),
            ]);
        }
        if let Some(id) = &info.database_id {
            rows.push(vec!["database id".into(), id.clone()]);
        }
        if let Some(r) = &info.refused {
            rows.insert(
                0,
                vec![
                    "REFUSED".into(),
                    format!("{r} (shown below: what a rollback would open, read-only)"),
                ],
            );
        }
        if let Some(rec) = &info.recovery {
            rows.extend(rec.rows(info.refused.is_some()));
        }
        for m in info.metas.iter().flatten() {
            let what = match (&m.problem, m.txid) {
                (None, Some(t)) => format!(
                    "valid, txid {t}, root {}, high-water mark {}",
                    opt(m.root),
                    opt(m.high_water)
                ),
                (Some(p), _) => format!("INVALID: {p}"),
                (None, None) => "unreadable".to_owned(),
            };
            rows.push(vec![format!("meta {}", m.slot), what]);
        }
        if let Some(fl) = &info.freelist {
            rows.push(vec!["freelist".into(), fl.clone()]);
        }
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(if damaged {
        ExitCode::from(crate::EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}
