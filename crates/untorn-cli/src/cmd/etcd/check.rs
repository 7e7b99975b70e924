//! `untorn etcd check`: etcd's invariants, the snapshot hash and damage of the bbolt
//! tree in revision terms, as `untorn_etcd::check_file` reports them. Exit 0 clean, 1
//! findings, 2 not run.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::args::EtcdCommon;
use crate::encoding::encode;
use crate::output;
use crate::{EXIT_ERROR, EXIT_FINDINGS};

#[derive(Serialize)]
struct JsonFinding {
    kind: &'static str,
    revision: Option<String>,
    key: Option<Value>,
    message: String,
    warning: bool,
}

#[derive(Serialize)]
struct JsonCheck {
    ok: bool,
    current_revision: i64,
    compacted: i64,
    consistent_index: Option<u64>,
    revisions_checked: u64,
    keys_checked: u64,
    /// `"ok"`, `"mismatch"`, or null for a file without a snapshot trailer.
    snapshot_hash: Option<&'static str>,
    findings: Vec<JsonFinding>,
    truncated: bool,
}

pub fn run(out: &mut impl Write, c: &EtcdCommon, max: usize) -> Result<ExitCode> {
    let r = match untorn_etcd::check_file(&c.file, c.etcd, max) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("untorn: cannot check {} as etcd: {e}", c.file.display());
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let hash = r
        .snapshot_hash_ok
        .map(|ok| if ok { "ok" } else { "mismatch" });
    if c.json {
        output::json(
            out,
            &JsonCheck {
                ok: r.is_ok(),
                current_revision: r.current_revision,
                compacted: r.compacted,
                consistent_index: r.consistent_index,
                revisions_checked: r.revisions_checked,
                keys_checked: r.keys_checked,
                snapshot_hash: hash,
                findings: r
                    .findings
                    .iter()
                    .map(|f| JsonFinding {
                        kind: f.kind.as_str(),
                        revision: f.revision.map(|r| r.to_string()),
                        key: f.key.as_deref().map(|k| encode(k, true)),
                        message: f.message.clone(),
                        warning: f.kind.is_warning(),
                    })
                    .collect(),
                truncated: r.truncated,
            },
        )?;
    } else {
        for f in &r.findings {
            writeln!(out, "{f}")?;
        }
        writeln!(
            out,
            "{}: {} revisions of {} keys checked; current revision {}, compacted at {}, \
             consistent index {}{}{}",
            if r.is_ok() { "OK" } else { "FAILED" },
            r.revisions_checked,
            r.keys_checked,
            r.current_revision,
            r.compacted,
            r.consistent_index
                .map(|c| c.to_string())
                .unwrap_or_else(|| "missing".into()),
            match hash {
                Some(h) => format!("; snapshot hash {h}"),
                None => String::new(),
            },
            if r.truncated {
                " (more findings not shown: raise --max-findings)"
            } else {
                ""
            }
        )?;
    }
    Ok(if r.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}
