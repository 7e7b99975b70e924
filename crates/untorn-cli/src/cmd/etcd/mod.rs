//! `untorn etcd keys|get|history|revisions|check`: etcd's view of an etcd backend file,
//! read without a server (see `untorn_etcd`); [`salvage`] is the etcd part of
//! `untorn salvage`.

pub mod salvage;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use untorn_etcd::{EtcdDb, KeyValue, Opened};

use crate::args::{EtcdArgs, EtcdCommon, EtcdOp};
use crate::encoding::{display, encode};
use crate::output;
use crate::{EXIT_ERROR, EXIT_FINDINGS};

fn open(c: &EtcdCommon) -> Result<Opened> {
    let o = untorn_etcd::open_with(&c.file, c.etcd)
        .with_context(|| format!("cannot read {} as etcd", c.file.display()))?;
    if let Some(d) = &o.damaged {
        eprintln!(
            "untorn: {} is damaged ({} lost subtree(s)); reading what verifies — run `untorn etcd check` and `untorn salvage`",
            c.file.display(),
            d.lost.len()
        );
    }
    Ok(o)
}

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

pub fn run(a: EtcdArgs) -> Result<ExitCode> {
    let mut out = output::stdout();
    let code = match a.op {
        EtcdOp::Keys {
            common,
            prefix,
            rev,
        } => {
            let o = open(&common)?;
            let kvs = o.db.range(rev)?;
            let kvs: Vec<&KeyValue> = kvs
                .into_iter()
                .filter(|kv| {
                    prefix
                        .as_deref()
                        .is_none_or(|p| kv.key.starts_with(p.as_bytes()))
                })
                .collect();
            if common.json {
                output::json(
                    &mut out,
                    &kvs.iter().map(|kv| kv_json(kv)).collect::<Vec<_>>(),
                )?;
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
            ExitCode::SUCCESS
        }
        EtcdOp::Get { common, key, rev } => {
            let o = open(&common)?;
            match o.db.get(key.as_bytes(), rev)? {
                None => ExitCode::from(EXIT_FINDINGS),
                Some(kv) => {
                    if common.json {
                        output::json(&mut out, &kv_json(kv))?;
                    } else {
                        out.write_all(&kv.value)?;
                        writeln!(out)?;
                    }
                    ExitCode::SUCCESS
                }
            }
        }
        EtcdOp::History { common, key } => {
            let o = open(&common)?;
            let h = o.db.history(key.as_bytes());
            if common.json {
                #[derive(Serialize)]
                struct Row {
                    revision: String,
                    delete: bool,
                    kv: Option<JsonKv>,
                    error: Option<String>,
                }
                let rows: Vec<Row> = h
                    .iter()
                    .map(|r| Row {
                        revision: r.rev.to_string(),
                        delete: r.tombstone,
                        kv: r.kv.as_ref().ok().map(kv_json),
                        error: r.kv.as_ref().err().map(|e| e.to_string()),
                    })
                    .collect();
                output::json(&mut out, &rows)?;
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
                output::table(&mut out, &rows)?;
            }
            if h.is_empty() {
                ExitCode::from(EXIT_FINDINGS)
            } else {
                ExitCode::SUCCESS
            }
        }
        EtcdOp::Revisions { common } => {
            let o = open(&common)?;
            revisions(&mut out, &o.db, common.json)?;
            ExitCode::SUCCESS
        }
        EtcdOp::Check {
            common,
            max_findings,
        } => check(&mut out, &common, max_findings)?,
    };
    out.flush()?;
    Ok(code)
}

fn revisions(out: &mut impl Write, db: &EtcdDb, json: bool) -> Result<()> {
    let s = db.revisions_summary();
    if json {
        #[derive(Serialize)]
        struct J {
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
        output::json(
            out,
            &J {
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
        return Ok(());
    }
    let opt = |r: Option<untorn_etcd::Revision>| r.map(|r| r.to_string()).unwrap_or("-".into());
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
    Ok(())
}

#[derive(Serialize)]
struct JsonFinding {
    kind: &'static str,
    revision: Option<String>,
    key: Option<Value>,
    message: String,
}

#[derive(Serialize)]
struct JsonCheck {
    ok: bool,
    current_revision: i64,
    compacted: i64,
    consistent_index: Option<u64>,
    revisions_checked: u64,
    keys_checked: u64,
    snapshot_hash: Option<String>,
    damage: Vec<String>,
    findings: Vec<JsonFinding>,
    truncated: bool,
}

fn check(out: &mut impl Write, c: &EtcdCommon, max: usize) -> Result<ExitCode> {
    let o = match untorn_etcd::open_with(&c.file, c.etcd) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("untorn: cannot check {} as etcd: {e}", c.file.display());
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let r = untorn_etcd::check_db(&o.db, max);
    let mut damage = Vec::new();
    let mut hash = None;
    if o.snapshot.is_some() {
        let f = untorn_bbolt::BoltFile::open(&c.file)?;
        if let Some(h) = f.verify_snapshot()? {
            let ok = h.matches();
            hash = Some(if ok {
                "ok".to_string()
            } else {
                "MISMATCH".into()
            });
            if !ok {
                damage.push(format!(
                    "snapshot SHA-256 mismatch: stored {}, computed {} (the file changed after `etcdctl snapshot save`)",
                    untorn_bbolt::file::hex32(&h.stored),
                    untorn_bbolt::file::hex32(&h.computed)
                ));
            }
        }
    }
    if let Some(d) = &o.damaged {
        for l in &d.lost {
            let range = if l.bucket.first().map(Vec::as_slice) == Some(b"key") {
                let rev = |k: &Option<Vec<u8>>| {
                    k.as_deref()
                        .and_then(|k| untorn_etcd::format::decode_rev_key(k).ok())
                        .map(|r| r.rev.to_string())
                        .unwrap_or("…".into())
                };
                format!("revisions [{}, {})", rev(&l.lower), rev(&l.upper))
            } else {
                "entries".to_string()
            };
            damage.push(format!(
                "bucket {} page {}: {range} unreadable: {}",
                untorn_bbolt::tree::path_display(&l.bucket),
                l.page,
                l.reason
            ));
        }
        damage.extend(d.notes.iter().cloned());
    }
    let ok = r.is_ok() && damage.is_empty();
    if c.json {
        output::json(
            out,
            &JsonCheck {
                ok,
                current_revision: r.current_revision,
                compacted: r.compacted,
                consistent_index: r.consistent_index,
                revisions_checked: r.revisions_checked,
                keys_checked: r.keys_checked,
                snapshot_hash: hash,
                damage,
                findings: r
                    .findings
                    .iter()
                    .map(|f| JsonFinding {
                        kind: f.kind.as_str(),
                        revision: f.revision.map(|r| r.to_string()),
                        key: f.key.as_deref().map(|k| encode(k, true)),
                        message: f.message.clone(),
                    })
                    .collect(),
                truncated: r.truncated,
            },
        )?;
    } else {
        for d in &damage {
            writeln!(out, "DAMAGE {d}")?;
        }
        for f in &r.findings {
            writeln!(out, "{f}")?;
        }
        writeln!(
            out,
            "{}: {} revisions of {} keys checked; current revision {}, compacted at {}, consistent index {}{}",
            if ok { "OK" } else { "FAILED" },
            r.revisions_checked,
            r.keys_checked,
            r.current_revision,
            r.compacted,
            r.consistent_index
                .map(|c| c.to_string())
                .unwrap_or_else(|| "missing".into()),
            match &hash {
                Some(h) => format!("; snapshot hash {h}"),
                None => String::new(),
            }
        )?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}
