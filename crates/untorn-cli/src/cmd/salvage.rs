//! `untorn salvage SRC DST`: copy what can be trusted into a new file, report the rest.
//!
//! - bbolt SRC, `--to bbolt` (default): `untorn_bbolt::salvage` (verified walk, orphan
//!   leaves, a fresh bbolt file with SRC's page size and freelist mode).
//! - bbolt SRC, `--to untorn`: the same salvaged contents written with the engine into
//!   a new untorn database, `--batch` entries per transaction.
//! - untorn SRC (`--to untorn`): `untorn::unstable::salvage::salvage_file`, page-level:
//!   every page of SRC and every record of its journal (and rollback copies) that
//!   verifies, attributed to its bucket by the tree id every page carries; works when the
//!   engine cannot open SRC (both metas destroyed, truncation, a damaged journal).
//!
//! Both formats report in one shape (`untorn::unstable::report::SalvageSummary`), rendered here.
//!
//! SRC is never modified; an existing DST is replaced only with `--force`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;
use untorn::unstable::report::{DumpItem, Lost, SalvageSummary, Stale};
use untorn::unstable::salvage::SalvageOptions as PageSalvageOptions;
use untorn::Database;
use untorn_bbolt::{OrphanPolicy, SalvageOptions, SalvageReport};

use super::dump::{BatchWriter, Line};
use crate::args::{Orphans, SalvageArgs, SalvageTo};
use crate::backend::{detect, same_file, Format};
use crate::encoding::{display, encode};
use crate::output;
use crate::{EXIT_ERROR, EXIT_FINDINGS};

/// A range of data salvage could not read (`untorn::unstable::report::Lost`).
#[derive(Debug, Serialize)]
struct JsonLost {
    /// Bucket path (names encoded as in `dump`).
    bucket: Vec<Value>,
    /// The page that failed, when known.
    page: Option<u64>,
    /// The page that referenced it (bbolt), when known.
    parent: Option<u64>,
    /// Keys from here (inclusive), when known.
    lower: Option<Value>,
    /// Keys up to here (exclusive), when known.
    upper: Option<Value>,
    /// Keys after this one (untorn SRC: the last key read before the damage).
    after: Option<Value>,
    reason: String,
}

impl From<&Lost> for JsonLost {
    fn from(l: &Lost) -> Self {
        let key = |k: &Option<Vec<u8>>| k.as_deref().map(|k| encode(k, true));
        JsonLost {
            bucket: path_json(&l.bucket),
            page: l.page,
            parent: l.parent,
            lower: key(&l.lower),
            upper: key(&l.upper),
            after: key(&l.after),
            reason: l.reason.clone(),
        }
    }
}

/// A key that may be older than its last committed value.
#[derive(Debug, Serialize)]
struct JsonStale {
    bucket: Vec<Value>,
    key: Value,
    txid: u64,
}

impl From<&Stale> for JsonStale {
    fn from(s: &Stale) -> Self {
        JsonStale {
            bucket: path_json(&s.bucket),
            key: encode(&s.key, true),
            txid: s.txid,
        }
    }
}

/// A salvaged entry the target format cannot hold (for example a bbolt key longer
/// than untorn's key limit).
#[derive(Debug, Serialize)]
struct JsonSkipped {
    bucket: Vec<Value>,
    key: Option<Value>,
    reason: String,
}

/// Details only bbolt salvage has.
#[derive(Debug, Serialize)]
struct JsonBboltDetails {
    meta_used: usize,
    meta_fallback: bool,
    txid: u64,
    pages_used: u64,
    pages_written: Option<u64>,
    orphan_pages_used: Vec<u64>,
    orphan_pages_unattributed: Vec<u64>,
    orphan_keys: u64,
    orphan_conflicts: u64,
    orphans_skipped: Option<String>,
    /// What was kept in the `lost+found` bucket because no bucket is proven.
    lost_and_found: Vec<JsonLostAndFound>,
    /// Decisions worth a line each (resorted branches, pages claimed twice, elements
    /// read as the buckets they must be).
    notes: Vec<String>,
}

/// Keys salvage kept in `lost+found/page-N`.
#[derive(Debug, Serialize)]
struct JsonLostAndFound {
    page: u64,
    keys: u64,
    reason: String,
}

/// `salvage --json`.
#[derive(Debug, Serialize)]
struct JsonSalvage {
    /// SRC's format.
    format: &'static str,
    /// DST's format.
    to: &'static str,
    src: String,
    dst: String,
    /// Nothing lost and nothing skipped (exit status 0).
    ok: bool,
    keys_recovered: u64,
    buckets_recovered: u64,
    lost: Vec<JsonLost>,
    /// Keys recovered from pages the newest commit does not reference: each may be older
    /// than its last committed value (untorn SRC).
    possibly_older: Vec<JsonStale>,
    /// Pages read and pages that failed verification (untorn SRC).
    pages_scanned: u64,
    pages_unreadable: u64,
    notes: Vec<String>,
    skipped: Vec<JsonSkipped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bbolt: Option<JsonBboltDetails>,
    /// The etcd report, for an etcd backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    etcd: Option<super::etcd::salvage::JsonEtcd>,
}

fn path_json(path: &[Vec<u8>]) -> Vec<Value> {
    path.iter().map(|p| encode(p, true)).collect()
}

fn path_text(path: &[Vec<u8>]) -> String {
    if path.is_empty() {
        return "(root)".to_owned();
    }
    path.iter()
        .map(|p| display(p))
        .collect::<Vec<_>>()
        .join("/")
}

pub fn run(a: SalvageArgs) -> Result<ExitCode> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if same_file(&a.src, &a.dst) {
        bail!(
            "DST {} is SRC: salvage never modifies SRC; write to a new file",
            a.dst.display()
        );
    }
    let format = match detect(&a.src) {
        Ok(f) => f,
        // Both meta slots destroyed: untorn pages (or a journal) are still recognisable.
        Err(e) => match untorn::unstable::salvage::recognise_file(&a.src) {
            Ok(true) => {
                eprintln!(
                    "untorn: {} has no readable meta page; its pages verify as untorn's: salvaging page by page",
                    a.src.display()
                );
                Format::Native
            }
            _ => return Err(e),
        },
    };
    if a.dst.exists() && !a.force {
        bail!("{} exists; use --force to replace it", a.dst.display());
    }
    let to = a.to.unwrap_or(match format {
        Format::Bbolt => SalvageTo::Bbolt,
        Format::Native => SalvageTo::Untorn,
    });
    let report = match (format, to) {
        (Format::Bbolt, SalvageTo::Bbolt) => bbolt_to_bbolt(&a)?,
        (Format::Bbolt, SalvageTo::Untorn) => bbolt_to_untorn(&a)?,
        (Format::Native, SalvageTo::Untorn) => native_to_untorn(&a)?,
        (Format::Native, SalvageTo::Bbolt) => {
            bail!("salvaging an untorn file into a bbolt file is not supported yet")
        }
    };
    let mut out = output::stdout();
    if a.json {
        output::json(&mut out, &report)?;
    } else {
        print_human(&mut out, &report)?;
    }
    out.flush()?;
    let nothing = report.keys_recovered == 0 && report.buckets_recovered == 0;
    Ok(if nothing && !report.lost.is_empty() {
        ExitCode::from(EXIT_ERROR)
    } else if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FINDINGS)
    })
}

fn bbolt_options(a: &SalvageArgs) -> SalvageOptions {
    SalvageOptions {
        orphans: match a.orphans {
            Orphans::Auto => OrphanPolicy::WhenFreelistSynced,
            Orphans::Always => OrphanPolicy::Always,
            Orphans::Never => OrphanPolicy::Never,
        },
        ..SalvageOptions::default()
    }
}

/// The report of either format's salvage, with the details only bbolt salvage has.
fn json_salvage(
    a: &SalvageArgs,
    format: Format,
    to: Format,
    summary: &SalvageSummary,
    skipped: Vec<JsonSkipped>,
    bbolt: Option<JsonBboltDetails>,
) -> JsonSalvage {
    JsonSalvage {
        format: format.name(),
        to: to.name(),
        src: a.src.display().to_string(),
        dst: a.dst.display().to_string(),
        // Keys kept in lost+found are not in their bucket: not "nothing lost".
        ok: summary.nothing_lost()
            && skipped.is_empty()
            && bbolt.as_ref().is_none_or(|b| b.lost_and_found.is_empty()),
        keys_recovered: summary.keys_recovered,
        buckets_recovered: summary.buckets_recovered,
        lost: summary.lost.iter().map(JsonLost::from).collect(),
        possibly_older: summary.possibly_older.iter().map(JsonStale::from).collect(),
        pages_scanned: summary.pages_scanned,
        pages_unreadable: summary.pages_unreadable,
        notes: summary.notes.clone(),
        skipped,
        bbolt,
        etcd: None,
    }
}

fn bbolt_details(r: &SalvageReport) -> JsonBboltDetails {
    JsonBboltDetails {
        meta_used: r.meta_used,
        meta_fallback: r.meta_fallback,
        txid: r.txid,
        pages_used: r.pages_used,
        pages_written: (r.pages_written > 0).then_some(r.pages_written),
        orphan_pages_used: r.orphan_pages_used.clone(),
        orphan_pages_unattributed: r.orphan_pages_unattributed.clone(),
        orphan_keys: r.orphan_keys,
        orphan_conflicts: r.orphan_conflicts,
        orphans_skipped: r.orphans_skipped.clone(),
        lost_and_found: r
            .lost_and_found
            .iter()
            .map(|l| JsonLostAndFound {
                page: l.page,
                keys: l.keys,
                reason: l.reason.clone(),
            })
            .collect(),
        notes: r.notes.clone(),
    }
}

fn bbolt_to_bbolt(a: &SalvageArgs) -> Result<JsonSalvage> {
    let opts = bbolt_options(a);
    let ctx = || format!("cannot salvage {}", a.src.display());
    let mut s = untorn_bbolt::salvage_entries(&a.src, &opts).with_context(ctx)?;
    // An etcd backend (detected from its buckets, or --etcd): the etcd layer on top.
    let etcd = super::etcd::salvage::apply(a, &mut s)?;
    let r = untorn_bbolt::write_salvaged(&a.dst, &s, &opts).with_context(ctx)?;
    let mut j = json_salvage(
        a,
        Format::Bbolt,
        Format::Bbolt,
        &r.summary(),
        Vec::new(),
        Some(bbolt_details(&r)),
    );
    if let Some(e) = etcd {
        j.ok = j.ok && e.nothing_lost;
        j.etcd = Some(e);
    }
    Ok(j)
}

/// Creates a new, empty untorn database at `dst`, removing an old one (and its journal)
/// first; the caller has checked `--force`.
fn create_untorn(dst: &Path) -> Result<Database> {
    for p in [dst.to_path_buf(), untorn::journal_path(dst)] {
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("cannot replace {}", p.display()))?;
        }
    }
    Database::create(dst).with_context(|| format!("cannot create {}", dst.display()))
}

/// Why untorn cannot hold this line, if it cannot.
fn unwritable(line: &Line) -> Option<String> {
    if line.bucket.is_empty() {
        return Some("a plain value in bbolt's root bucket has no place in untorn".into());
    }
    if line.bucket.len() > untorn::MAX_BUCKET_DEPTH {
        return Some(format!(
            "buckets nested deeper than untorn's {}",
            untorn::MAX_BUCKET_DEPTH
        ));
    }
    if let Some(n) = line
        .bucket
        .iter()
        .find(|n| n.is_empty() || n.len() > untorn::MAX_KEY_SIZE)
    {
        return Some(format!(
            "bucket name of {} bytes (untorn allows 1..={})",
            n.len(),
            untorn::MAX_KEY_SIZE
        ));
    }
    if let Some((k, v)) = &line.kv {
        if k.is_empty() || k.len() > untorn::MAX_KEY_SIZE {
            return Some(format!(
                "key of {} bytes (untorn allows 1..={})",
                k.len(),
                untorn::MAX_KEY_SIZE
            ));
        }
        if v.len() > untorn::MAX_VALUE_SIZE {
            return Some(format!("value of {} bytes is too large", v.len()));
        }
    }
    None
}

/// Writes the items `produce` emits into a new untorn database at `dst`; items untorn
/// cannot hold are skipped and returned. On failure the partial DST is removed.
fn write_untorn<T>(
    dst: &Path,
    batch: usize,
    produce: impl FnOnce(&mut dyn FnMut(DumpItem) -> Result<()>) -> Result<T>,
) -> Result<(T, Vec<JsonSkipped>)> {
    let db = create_untorn(dst)?;
    let mut skipped = Vec::new();
    let result = (|| -> Result<T> {
        let mut writer = BatchWriter::new(&db, batch)?;
        let produced = produce(&mut |item: DumpItem| {
            let line = match item {
                DumpItem::Bucket { path, sequence } => Line {
                    bucket: path,
                    sequence: Some(sequence),
                    kv: None,
                },
                DumpItem::Pair(p) => Line {
                    bucket: p.bucket,
                    sequence: None,
                    kv: Some((p.key, p.value)),
                },
            };
            match unwritable(&line) {
                Some(reason) => skipped.push(JsonSkipped {
                    bucket: path_json(&line.bucket),
                    key: line.kv.as_ref().map(|(k, _)| encode(k, true)),
                    reason,
                }),
                None => writer.apply(&line)?,
            }
            Ok(())
        })?;
        writer.finish()?;
        Ok(produced)
    })();
    drop(db);
    match result {
        Ok(produced) => Ok((produced, skipped)),
        Err(e) => {
            for p in [dst.to_path_buf(), untorn::journal_path(dst)] {
                let _ = std::fs::remove_file(p);
            }
            Err(e.context(format!("cannot write {} (removed)", dst.display())))
        }
    }
}

fn bbolt_to_untorn(a: &SalvageArgs) -> Result<JsonSalvage> {
    let s = untorn_bbolt::salvage_entries(&a.src, &bbolt_options(a))
        .with_context(|| format!("cannot salvage {}", a.src.display()))?;
    let ((), skipped) = write_untorn(&a.dst, a.batch, |emit| s.items().try_for_each(emit))?;
    Ok(json_salvage(
        a,
        Format::Bbolt,
        Format::Native,
        &s.report.summary(),
        skipped,
        Some(bbolt_details(&s.report)),
    ))
}

fn native_to_untorn(a: &SalvageArgs) -> Result<JsonSalvage> {
    // Page-level: every page and journal record that verifies, whether or not the engine
    // can open the file; the source is only read.
    let temp_dir = match &a.tmp {
        Some(dir) => dir.clone(),
        None => match a.dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        },
    };
    let opts = PageSalvageOptions {
        memory_budget: a.memory.saturating_mul(1 << 20),
        temp_dir: Some(temp_dir),
        ..PageSalvageOptions::default()
    };
    let (summary, skipped) = write_untorn(&a.dst, a.batch, |emit| {
        untorn::unstable::salvage::salvage_file(&a.src, opts, emit)
            .with_context(|| format!("cannot salvage {}", a.src.display()))
    })?;
    Ok(json_salvage(
        a,
        Format::Native,
        Format::Native,
        &summary,
        skipped,
        None,
    ))
}

fn print_human(out: &mut impl Write, r: &JsonSalvage) -> Result<()> {
    let text = |v: &Option<Value>| match v {
        Some(v) => crate::encoding::decode(v)
            .map(|b| display(&b))
            .unwrap_or_else(|_| v.to_string()),
        None => "…".to_owned(),
    };
    let path = |p: &[Value]| {
        let names: Vec<Vec<u8>> = p
            .iter()
            .filter_map(|v| crate::encoding::decode(v).ok())
            .collect();
        path_text(&names)
    };
    let mut rows = vec![vec![
        "recovered".to_owned(),
        format!(
            "{} in {}",
            output::count(r.keys_recovered, "key"),
            output::count(r.buckets_recovered, "bucket")
        ),
    ]];
    if let Some(b) = &r.bbolt {
        rows.push(vec![
            "meta used".into(),
            format!(
                "{} (txid {}){}",
                b.meta_used,
                b.txid,
                if b.meta_fallback {
                    ", the newest meta is unusable"
                } else {
                    ""
                }
            ),
        ]);
        rows.push(vec![
            "orphan leaves".into(),
            match &b.orphans_skipped {
                Some(why) => format!("not used: {why}"),
                None => format!(
                    "{} used ({}, {} skipped), {} unattributed",
                    b.orphan_pages_used.len(),
                    output::count(b.orphan_keys, "key"),
                    output::count(b.orphan_conflicts, "conflict"),
                    b.orphan_pages_unattributed.len()
                ),
            },
        ]);
    }
    if r.bbolt.is_none() && r.format == Format::Native.name() {
        rows.push(vec![
            "pages".into(),
            format!(
                "{} read, {} unreadable",
                r.pages_scanned, r.pages_unreadable
            ),
        ]);
        for n in &r.notes {
            rows.push(vec!["note".into(), n.clone()]);
        }
    }
    if !r.possibly_older.is_empty() {
        let shown: Vec<String> = r
            .possibly_older
            .iter()
            .take(10)
            .map(|s| format!("{}/{}", path(&s.bucket), text(&Some(s.key.clone()))))
            .collect();
        rows.push(vec![
            "POSSIBLY OLDER".into(),
            format!(
                "{} recovered from pages the newest commit no longer references (each may be \
                 older than its last committed value, or deleted since): {}{}",
                output::count(r.possibly_older.len() as u64, "key"),
                shown.join(", "),
                if r.possibly_older.len() > shown.len() {
                    ", … (--json lists all)"
                } else {
                    ""
                }
            ),
        ]);
    }
    if let Some(b) = &r.bbolt {
        for n in &b.notes {
            rows.push(vec!["note".into(), n.clone()]);
        }
        for l in &b.lost_and_found {
            rows.push(vec![
                "LOST+FOUND".into(),
                format!(
                    "lost+found/page-{}: {}: {}",
                    l.page,
                    output::count(l.keys, "key"),
                    l.reason
                ),
            ]);
        }
    }
    for l in &r.lost {
        let mut what = format!("bucket {}", path(&l.bucket));
        if let Some(p) = l.page {
            what.push_str(&format!(", page {p}"));
        }
        if let Some(p) = l.parent {
            what.push_str(&format!(" (from page {p})"));
        }
        if l.lower.is_some() || l.upper.is_some() {
            what.push_str(&format!(", keys [{}, {})", text(&l.lower), text(&l.upper)));
        }
        if l.after.is_some() {
            what.push_str(&format!(", keys after {}", text(&l.after)));
        }
        rows.push(vec!["unreadable".into(), format!("{what}: {}", l.reason)]);
    }
    for s in &r.skipped {
        let key = s
            .key
            .as_ref()
            .map(|k| format!(" key {}", text(&Some(k.clone()))))
            .unwrap_or_default();
        rows.push(vec![
            "skipped".into(),
            format!("bucket {}{key}: {}", path(&s.bucket), s.reason),
        ]);
    }
    rows.push(vec!["wrote".into(), format!("{} ({})", r.dst, r.to)]);
    let orphan_keys = r.bbolt.as_ref().map_or(0, |b| b.orphan_keys);
    let lost = r.lost.len() as u64;
    let skipped = output::count(r.skipped.len() as u64, "entry");
    let unplaced: u64 = r
        .bbolt
        .as_ref()
        .map_or(0, |b| b.lost_and_found.iter().map(|l| l.keys).sum());
    let lost_and_found = if unplaced > 0 {
        format!(
            "; {} kept in lost+found (their bucket is not proven)",
            output::count(unplaced, "key")
        )
    } else {
        String::new()
    };
    let skipped_note = if r.skipped.is_empty() {
        String::new()
    } else {
        format!("; {skipped} skipped")
    };
    let verdict = if r.ok {
        "nothing lost".to_owned()
    } else if lost == 0 && r.skipped.is_empty() && !r.possibly_older.is_empty() {
        format!(
            "{} possibly older than their last committed value{lost_and_found}",
            output::count(r.possibly_older.len() as u64, "key")
        )
    } else if lost > 0 && orphan_keys > 0 {
        // Leaves the tree no longer reached refilled the unreadable ranges: maybe every
        // key came back, but nothing proves a range complete.
        format!(
            "{} unreadable in the tree, refilled from orphan leaves ({}); salvage cannot prove \
             {} complete{skipped_note}{lost_and_found}",
            output::count(lost, "range"),
            output::count(orphan_keys, "key"),
            if lost == 1 { "it" } else { "them" },
        )
    } else if lost > 0 {
        format!(
            "DATA LOST: {} unreadable{skipped_note}{lost_and_found}",
            output::count(lost, "range"),
        )
    } else if r.skipped.is_empty() {
        format!("nothing unreadable{lost_and_found}",)
    } else {
        format!("{skipped} skipped (untorn cannot hold them){lost_and_found}")
    };
    rows.push(vec!["result".into(), verdict]);
    output::table(out, &rows)?;
    if let Some(e) = &r.etcd {
        out.write_all(e.text.as_bytes())?;
    }
    Ok(())
}
