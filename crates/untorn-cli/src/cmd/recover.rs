//! `untorn recover`: open read-write, recover, and print what recovery did (and, with
//! `--rollback`, exactly what it discarded).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use untorn::{Database, Recovery, RecoveryReport};

use crate::args::RecoverArgs;
use crate::backend::{bbolt_read_only, detect, Format};
use crate::output;

/// `recover --json` (and the report `info --json` embeds): the txid opened at and the
/// engine's [`RecoveryReport`], field for field.
#[derive(Debug, Serialize)]
pub struct JsonRecovery {
    pub txid: u64,
    #[serde(flatten)]
    pub report: RecoveryReport,
}

impl JsonRecovery {
    pub fn new(txid: u64, r: &RecoveryReport) -> JsonRecovery {
        JsonRecovery {
            txid,
            report: r.clone(),
        }
    }

    /// One row per fact, for the aligned text output.
    pub fn rows(&self, would: bool) -> Vec<Vec<String>> {
        let mut rows = vec![vec![
            "recovery".to_owned(),
            format!(
                "{} replayed, {} restored, {} of torn tail discarded",
                crate::output::count(self.report.commits_replayed, "commit"),
                crate::output::count(self.report.pages_restored, "page"),
                crate::output::count(self.report.bytes_discarded, "byte")
            ),
        ]];
        if let Some(m) = &self.report.meta_restored {
            rows.push(vec!["meta restored".into(), m.clone()]);
        } else if let Some(m) = &self.report.meta_fallback {
            rows.push(vec!["meta fallback".into(), m.clone()]);
        }
        if let Some(t) = self.report.revoked_txid {
            rows.push(vec![
                "revoked commit".into(),
                format!("txid {t} (its commit() returned an error; not replayed)"),
            ]);
        }
        if let Some(d) = &self.report.damaged_record {
            rows.push(vec![
                "DAMAGED RECORD".into(),
                format!(
                    "txid {} at journal offset {}: {}{}{}",
                    d.txid,
                    d.offset,
                    d.detail,
                    if d.acknowledged {
                        " (a later record shows it was acknowledged)"
                    } else {
                        ""
                    },
                    if d.later_txids.is_empty() {
                        String::new()
                    } else {
                        format!("; later records: txids {:?}", d.later_txids)
                    }
                ),
            ]);
        }
        if let Some(b) = &self.report.rollback {
            let verb = if would { "would discard" } else { "discarded" };
            let mut what = Vec::new();
            if !b.discarded_txids.is_empty() {
                what.push(format!("txids {:?}", b.discarded_txids));
            }
            if let Some(t) = b.discarded_unknown_after {
                what.push(format!("every commit after txid {t}, count unknown"));
            }
            if let Some(s) = b.damaged_slot {
                what.push(format!(
                    "the content of damaged meta slot {s}{}",
                    b.claimed_txid
                        .map(|t| format!(" (it claimed txid {t})"))
                        .unwrap_or_default()
                ));
            }
            if what.is_empty() {
                what.push("nothing".into());
            }
            rows.push(vec![
                "ROLLBACK".into(),
                format!("to txid {}; {verb} {}", b.to_txid, what.join("; ")),
            ]);
            rows.push(vec!["rollback because".into(), b.reason.clone()]);
            if let Some(k) = &b.journal_kept_as {
                rows.push(vec!["journal kept as".into(), k.clone()]);
            }
        }
        for w in &self.report.warnings {
            rows.push(vec!["warning".into(), w.clone()]);
        }
        rows
    }
}

pub fn run(a: RecoverArgs) -> Result<ExitCode> {
    let path = &a.common.file;
    if detect(path)? == Format::Bbolt {
        return bbolt_read_only(path);
    }
    let policy = if a.rollback {
        Recovery::RollbackToLastGood
    } else {
        Recovery::Strict
    };
    let db = Database::builder()
        .recovery(policy)
        .open(path)
        .with_context(|| format!("cannot recover {}", path.display()))?;
    let txid = db.begin_read()?.txid();
    let report = JsonRecovery::new(txid, &db.recovery_report());
    drop(db);
    let mut out = output::stdout();
    if a.common.json {
        output::json(&mut out, &report)?;
    } else {
        let mut rows = vec![vec!["opened at".to_owned(), format!("txid {txid}")]];
        rows.extend(report.rows(false));
        output::table(&mut out, &rows)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
