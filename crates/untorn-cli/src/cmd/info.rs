//! `untorn info`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::args::InfoArgs;
use crate::backend::Backend;
use crate::output;

#[derive(Debug, Serialize)]
struct JsonInfo {
    format: &'static str,
    page_size: usize,
    txid: u64,
    high_water: u64,
    file_size_bytes: u64,
    journal_size_bytes: u64,
    journal_commits: u64,
    active_meta_slot: Option<u64>,
    meta_fallback: Option<String>,
    commits_replayed: u64,
    pages_restored: u64,
    bytes_discarded: u64,
    buckets: usize,
}

pub fn run(a: InfoArgs) -> Result<ExitCode> {
    let info = match Backend::open_read(&a.common.file)? {
        Backend::Native(db) => {
            let i = db.info()?;
            let rec = db.recovery_report();
            let buckets = db.view(|tx| tx.buckets())?.len();
            JsonInfo {
                format: "untorn",
                page_size: i.page_size,
                txid: i.txid,
                high_water: i.high_water,
                file_size_bytes: i.file_size_bytes,
                journal_size_bytes: i.journal_size_bytes,
                journal_commits: i.journal_commits,
                active_meta_slot: i.active_meta_slot,
                meta_fallback: i.meta_fallback.or(rec.meta_fallback),
                commits_replayed: rec.commits_replayed,
                pages_restored: rec.pages_restored,
                bytes_discarded: rec.bytes_discarded,
                buckets,
            }
        }
    };
    let mut out = output::stdout();
    if a.common.json {
        output::json(&mut out, &info)?;
    } else {
        let opt = |v: Option<u64>| v.map_or("none".to_owned(), |v| v.to_string());
        let rows: Vec<Vec<String>> = vec![
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
            vec![
                "journal".into(),
                format!(
                    "{} bytes, {} commit(s) not checkpointed",
                    info.journal_size_bytes, info.journal_commits
                ),
            ],
            vec!["active meta slot".into(), opt(info.active_meta_slot)],
            vec![
                "meta fallback".into(),
                info.meta_fallback.clone().unwrap_or_else(|| "no".into()),
            ],
            vec![
                "recovery".into(),
                format!(
                    "{} commit(s) replayed, {} page(s) restored, {} byte(s) of torn tail discarded",
                    info.commits_replayed, info.pages_restored, info.bytes_discarded
                ),
            ],
            vec!["buckets".into(), info.buckets.to_string()],
        ];
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
