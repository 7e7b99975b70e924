//! `untorn etcd keys|get|history|revisions`: what `etcdctl get` would answer, read from
//! the file.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;
use untorn_etcd::{KeyValue, Revision};

use super::open;
use crate::args::EtcdCommon;
use crate::encoding::{display, encode};
use crate::output;
use crate::EXIT_FINDINGS;

#[derive(Serialize)]
struct JsonKv {
    key: Value,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    value: Value,
    lease: i64,
}

fn kv_json(kv: &KeyValue) -> JsonKv {
    JsonKv {
        key: encode(&kv.key, true),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: encode(&kv.value, true),
        lease: kv.lease,
    }
}

/// `keys [--prefix P] [--rev N]`: every live key (at revision N).
pub fn keys(
    out: &mut impl Write,
    c: &EtcdCommon,
    prefix: Option<&str>,
    rev: Option<i64>,
) -> Result<ExitCode> {
    let o = open(c)?;
    let kvs: Vec<&KeyValue> =
        o.db.range(rev)?
            .into_iter()
            .filter(|kv| prefix.is_none_or(|p| kv.key.starts_with(p.as_bytes())))
            .collect();
    if c.json {
        output::json(out, &kvs.iter().map(|kv| kv_json(kv)).collect::<Vec<_>>())?;
    } else {
        for kv in kvs {
            writeln!(
                out,
                "{}  mod {} version {}{}",
                display(&kv.key),
                kv.mod_revision,
                kv.version,
                if kv.lease != 0 {
                    format!(" lease {:x}", kv.lease)
                } else {
                    String::new()
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `get KEY [--rev N]`: the value (exit 1 when there is none).
pub fn get(out: &mut impl Write, c: &EtcdCommon, key: &str, rev: Option<i64>) -> Result<ExitCode> {
    let o = open(c)?;
    let Some(kv) = o.db.get(key.as_bytes(), rev)? else {
        return Ok(ExitCode::from(EXIT_FINDINGS));
    };
    if c.json {
        output::json(out, &kv_json(kv))?;
    } else {
        out.write_all(&kv.value)?;
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One revision of a key in `history --json`.
#[derive(Serialize)]
struct JsonHistoryRow {
    revision: String,
    delete: bool,
    kv: Option<JsonKv>,
    error: Option<String>,
}

/// `history KEY`: every revision of the key in the file (exit 1 when there is none).
pub fn history(out: &mut impl Write, c: &EtcdCommon, key: &str) -> Result<ExitCode> {
    let o = open(c)?;
    let h = o.db.history(key.as_bytes());
    if c.json {
        let rows: Vec<JsonHistoryRow> = h
            .iter()
            .map(|r| JsonHistoryRow {
                revision: r.rev.to_string(),
                delete: r.tombstone,
                kv: r.kv.as_ref().ok().map(kv_json),
                error: r.kv.as_ref().err().map(|e| e.to_string()),
            })
            .collect();
        output::json(out, &rows)?;
    } else {
        let mut rows = vec![vec![
            "REVISION".to_string(),
            "OP".into(),
            "VERSION".into(),
            "CREATED".into(),
            "VALUE".into(),
        ]];
        for r in &h {
            let kv = r.kv.as_ref().ok();
            rows.push(vec![
                r.rev.to_string(),
                if r.tombstone { "delete" } else { "put" }.into(),
                kv.map(|k| k.version.to_string()).unwrap_or_default(),
                kv.map(|k| k.create_revision.to_string())
                    .unwrap_or_default(),
                match &r.kv {
                    Ok(k) if !r.tombstone => format!("{} bytes", k.value.len()),
                    Ok(_) => String::new(),
                    Err(e) => format!("UNDECODABLE: {e}"),
                },
            ]);
        }
        output::table(out, &rows)?;
    }
    Ok(if h.is_empty() {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// `revisions --json`.
#[derive(Serialize)]
struct JsonRevisions {
    revisions: u64,
    deletes: u64,
    main_revisions: u64,
    keys: u64,
    oldest: Option<String>,
    newest: Option<String>,
    scheduled_compact: Option<i64>,
    finished_compact: Option<i64>,
    gaps: Vec<(i64, i64)>,
    sub_gaps: Vec<(i64, i64)>,
}

/// `revisions`: the revision range, the compaction point and gaps.
pub fn revisions(out: &mut impl Write, c: &EtcdCommon) -> Result<ExitCode> {
    let o = open(c)?;
    let s = o.db.revisions_summary();
    if c.json {
        output::json(
            out,
            &JsonRevisions {
                revisions: s.count,
                deletes: s.tombstones,
                main_revisions: s.main_revisions,
                keys: s.keys,
                oldest: s.oldest.map(|r| r.to_string()),
                newest: s.newest.map(|r| r.to_string()),
                scheduled_compact: s.scheduled_compact,
                finished_compact: s.finished_compact,
                gaps: s.gaps.clone(),
                sub_gaps: s.sub_gaps.clone(),
            },
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let opt = |r: Option<Revision>| r.map(|r| r.to_string()).unwrap_or("-".into());
    let mut rows = vec![
        vec![
            "revisions".to_string(),
            format!(
                "{} ({} deletes) in {} main revisions, {} keys",
                s.count, s.tombstones, s.main_revisions, s.keys
            ),
        ],
        vec!["oldest".into(), opt(s.oldest)],
        vec!["newest".into(), opt(s.newest)],
        vec![
            "compacted".into(),
            match (s.finished_compact, s.scheduled_compact) {
                (Some(f), Some(sc)) if sc > f => {
                    format!("{f} (scheduled up to {sc}, not finished)")
                }
                (Some(f), _) => f.to_string(),
                (None, _) => "never".into(),
            },
        ],
    ];
    if s.gaps.is_empty() && s.sub_gaps.is_empty() {
        rows.push(vec!["gaps".into(), "none".into()]);
    }
    for (a, b) in &s.gaps {
        rows.push(vec![
            "GAP".into(),
            format!("main revisions {a}..={b} missing"),
        ]);
    }
    for (m, sub) in &s.sub_gaps {
        rows.push(vec![
            "GAP".into(),
            format!("revision {m}: sub revision {sub} missing"),
        ]);
    }
    output::table(out, &rows)?;
    Ok(ExitCode::SUCCESS)
}
