//! `untorn check`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use untorn::unstable::check::{check, check_storage_with_journal, CheckOptions};
use untorn::unstable::report::{Finding, FindingKind, Report};
use untorn::{CorruptionKind, Database, Error, FileStorage, Storage};

use super::source::{is_damage, journal_beside, Origin};
use crate::args::CheckArgs;
use crate::backend::{detect, Format};
use crate::output::{self, JsonReport};
use crate::EXIT_FINDINGS;

/// A validated `check` invocation.
struct Config {
    file: PathBuf,
    json: bool,
    max_findings: usize,
    from_page: Option<u64>,
    progress: bool,
}

impl Config {
    fn new(a: CheckArgs) -> Result<Config> {
        if a.max_findings == 0 {
            bail!("--max-findings must be at least 1");
        }
        Ok(Config {
            progress: !a.common.json && output::interactive(),
            file: a.common.file,
            json: a.common.json,
            max_findings: a.max_findings,
            from_page: a.from_page,
        })
    }

    fn options(&self, bar: Option<ProgressBar>) -> CheckOptions {
        CheckOptions {
            max_findings: self.max_findings,
            from_page: self.from_page,
            progress: bar.map(|bar| {
                Box::new(move |p: untorn::unstable::check::CheckProgress| {
                    bar.set_length(p.pages_total);
                    bar.set_position(p.pages_done);
                    true
                })
                    as Box<dyn FnMut(untorn::unstable::check::CheckProgress) -> bool + Send>
            }),
        }
    }
}

pub fn run(a: CheckArgs) -> Result<ExitCode> {
    let cfg = Config::new(a)?;
    let format = detect(&cfg.file)?;
    let (report, origin) = match format {
        Format::Native => check_native(&cfg)?,
        Format::Bbolt => (check_bbolt(&cfg)?, Origin::BboltFile),
    };
    let mut out = output::stdout();
    if cfg.json {
        output::json(
            &mut out,
            &JsonReport::new(&report, format, origin.name(), origin.open_error()),
        )?;
    } else {
        print_human(&mut out, &report, &origin)?;
    }
    use std::io::Write;
    out.flush()?;
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

/// Checks a bbolt file: one linear walk with a visited set (a cycle is a finding, never
/// a loop). A file with no valid meta is a report of `meta_invalid` findings.
fn check_bbolt(cfg: &Config) -> Result<Report> {
    let bar = cfg.progress.then(progress_bar);
    let opts = untorn_bbolt::CheckOptions {
        max_findings: cfg.max_findings,
        from_page: cfg.from_page,
        progress: bar.clone().map(|bar| {
            Box::new(move |done: u64, total: u64| {
                bar.set_length(total);
                bar.set_position(done);
            }) as untorn_bbolt::Progress
        }),
        ..untorn_bbolt::CheckOptions::default()
    };
    let report = untorn_bbolt::check_with(&cfg.file, opts)
        .with_context(|| format!("cannot check {}", cfg.file.display()));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    report
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("checking {bar:40} {pos}/{len} pages ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn check_native(cfg: &Config) -> Result<(Report, Origin)> {
    let bar = cfg.progress.then(progress_bar);
    let (report, origin) = check_file(cfg, bar.clone())?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok((report, origin))
}

fn check_file(cfg: &Config, bar: Option<ProgressBar>) -> Result<(Report, Origin)> {
    let opts = cfg.options(bar);
    match Database::builder().read_only(true).open(&cfg.file) {
        Ok(db) => {
            crate::backend::note_if_live(&db, &cfg.file);
            let tx = db.begin_read().context("cannot start a read snapshot")?;
            let mut report = check(untorn::unstable::check_source(&tx), opts)?;
            // A read-only open serves the state before a damaged journal record: the
            // damage itself is a finding (exit 1), never a quiet tail.
            if let Some(d) = db.recovery_report().damaged_record {
                report.insert_first(
                    journal_finding(format!(
                        "journal record of txid {} at offset {} is damaged ({}){}{}; the check covers txid {}; \
                         `untorn recover FILE --rollback` discards it",
                        d.txid,
                        d.offset,
                        d.detail,
                        if d.acknowledged { ", and a later record shows it was acknowledged" } else { "" },
                        if d.later_txids.is_empty() {
                            String::new()
                        } else {
                            format!(", {} follow", output::count(d.later_txids.len() as u64, "later record"))
                        },
                        tx.txid()
                    )),
                );
            }
            Ok((report, Origin::Snapshot))
        }
        Err(e) if is_damage(&e) => {
            // The engine refuses the file: check the data file itself (the journal's
            // marker as evidence for the meta), and say why.
            let file = std::fs::File::open(&cfg.file)
                .with_context(|| format!("cannot open {}", cfg.file.display()))?;
            let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(file));
            let journal = journal_beside(&cfg.file);
            let mut report = check_storage_with_journal(
                storage,
                journal.as_ref().map(|j| j as &dyn Storage),
                opts,
            )
            .with_context(|| format!("cannot check {}", cfg.file.display()))?;
            let journal_refusal = matches!(
                e,
                Error::Corrupted {
                    kind: CorruptionKind::Journal,
                    ..
                } | Error::ForeignJournal { .. }
                    | Error::JournalMissing { .. }
                    | Error::JournalRecordDamaged { .. }
            );
            if journal_refusal {
                report.insert_first(journal_finding(e.to_string()));
            } else if matches!(e, Error::MetaDamaged { .. })
                && !report
                    .findings
                    .iter()
                    .any(|f| f.kind == FindingKind::MetaInvalid)
            {
                report.insert_first(Finding {
                    kind: FindingKind::MetaInvalid,
                    page: None,
                    path: Vec::new(),
                    message: e.to_string(),
                    cause: None,
                });
            }
            Ok((report, Origin::DataFile(e)))
        }
        Err(e) => Err(e).with_context(|| format!("cannot open {}", cfg.file.display())),
    }
}

fn journal_finding(message: String) -> Finding {
    Finding {
        kind: FindingKind::Journal,
        page: None,
        path: Vec::new(),
        message,
        cause: None,
    }
}

/// Consequences printed under each root cause (the rest are counted; `--json` has all).
const CONSEQUENCES_SHOWN: usize = 3;

fn print_human(out: &mut impl std::io::Write, r: &Report, origin: &Origin) -> Result<()> {
    if let Origin::DataFile(e) = origin {
        writeln!(
            out,
            "note: the engine cannot open this file ({e}); checked the data file directly"
        )?;
    }
    // One headline per root cause, its consequences folded under it.
    let causes = r.root_causes();
    for c in &causes {
        writeln!(out, "{}", c.finding)?;
        if c.consequences.is_empty() {
            continue;
        }
        let n = c.consequences.len();
        writeln!(
            out,
            "  {n} consequence{} ({}){}",
            if n == 1 { "" } else { "s" },
            c.consequence_kinds(),
            if n > CONSEQUENCES_SHOWN {
                format!(", the first {CONSEQUENCES_SHOWN}:")
            } else {
                ":".to_owned()
            }
        )?;
        for (_, f) in c.consequences.iter().take(CONSEQUENCES_SHOWN) {
            writeln!(out, "    {f}")?;
        }
    }
    let errors = r.findings.iter().filter(|f| !f.kind.is_warning()).count();
    let warnings = r.findings.len() - errors;
    let summary = format!(
        "{}, {}, {} checked at txid {} (high-water mark {})",
        output::count(r.pages_checked, "page"),
        output::count(r.keys_checked, "key"),
        output::count(r.buckets_checked, "bucket"),
        r.txid,
        r.high_water_mark
    );
    if r.findings.is_empty() {
        writeln!(out, "ok: {summary}")?;
    } else {
        writeln!(
            out,
            "{}: {}: {}, {}{}; {summary}",
            if errors == 0 { "ok" } else { "FAILED" },
            output::count(causes.len() as u64, "root cause"),
            output::count(errors as u64, "error"),
            output::count(warnings as u64, "warning"),
            if r.truncated {
                " (more not shown: raise --max-findings)"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}
