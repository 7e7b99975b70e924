//! `untorn backup` and `untorn compact`: a consistent, dense copy of an untorn database's
//! newest committed state in a new file (`Database::backup_to`, `Database::compact_to`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use untorn::{CopyStats, Database};

use crate::args::CopyArgs;
use crate::backend::{detect, same_file, Format};
use crate::output;

/// Opens SRC read-only, refusing bbolt files and a DST that is SRC.
fn open_source(a: &CopyArgs, what: &str) -> Result<Database> {
    if same_file(&a.src, &a.dst) {
        bail!("{what}: SRC and DST are the same file");
    }
    match detect(&a.src)? {
        Format::Native => {}
        Format::Bbolt => bail!(
            "{}: a bbolt database; `untorn {what}` copies untorn databases (for a clean \
             bbolt copy use `untorn salvage SRC DST`)",
            a.src.display()
        ),
    }
    let db = Database::builder()
        .read_only(true)
        .open(&a.src)
        .with_context(|| format!("cannot open {}", a.src.display()))?;
    Ok(crate::backend::noted(db, &a.src))
}

fn copy_json(c: &CopyStats) -> serde_json::Value {
    json!({
        "format": "untorn",
        "txid": c.txid,
        "page_size": c.page_size,
        "pages": c.pages,
        "bytes": c.bytes,
        "buckets": c.buckets,
        "keys": c.keys,
        "leaf_pages": c.leaves,
        "leaf_fill": (c.leaf_fill() * 1000.0).round() / 1000.0,
    })
}

fn copy_text(c: &CopyStats) -> String {
    format!(
        "{} in {} at txid {}: {} ({}), leaves {:.1}% full",
        output::count(c.keys, "key"),
        output::count(c.buckets, "bucket"),
        c.txid,
        output::count(c.bytes, "byte"),
        output::count(c.pages, "page"),
        c.leaf_fill() * 100.0
    )
}

pub fn backup(a: CopyArgs) -> Result<ExitCode> {
    let db = open_source(&a, "backup")?;
    let stats = db
        .backup_to(&a.dst)
        .with_context(|| format!("cannot back up {} to {}", a.src.display(), a.dst.display()))?;
    let mut out = output::stdout();
    if a.json {
        let mut v = copy_json(&stats);
        v["src"] = json!(a.src.display().to_string());
        v["dst"] = json!(a.dst.display().to_string());
        output::json(&mut out, &v)?;
    } else {
        writeln!(
            out,
            "backed up {} to {}: {}",
            a.src.display(),
            a.dst.display(),
            copy_text(&stats)
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn compact(a: CopyArgs) -> Result<ExitCode> {
    let db = open_source(&a, "compact")?;
    let c = db
        .compact_to(&a.dst)
        .with_context(|| format!("cannot compact {} to {}", a.src.display(), a.dst.display()))?;
    let before = c.bytes_before + c.journal_bytes_before;
    let percent = if before == 0 {
        100.0
    } else {
        c.bytes_after as f64 * 100.0 / before as f64
    };
    let mut out = output::stdout();
    if a.json {
        let mut v = copy_json(&c.copy);
        v["src"] = json!(a.src.display().to_string());
        v["dst"] = json!(a.dst.display().to_string());
        v["bytes_before"] = json!(c.bytes_before);
        v["journal_bytes_before"] = json!(c.journal_bytes_before);
        v["bytes_after"] = json!(c.bytes_after);
        output::json(&mut out, &v)?;
    } else {
        writeln!(
            out,
            "compacted {} ({} + {} of journal) to {} ({}, {:.1}% of before): {}",
            a.src.display(),
            output::count(c.bytes_before, "byte"),
            output::count(c.journal_bytes_before, "byte"),
            a.dst.display(),
            output::count(c.bytes_after, "byte"),
            percent,
            copy_text(&c.copy)
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
