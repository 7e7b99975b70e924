//! `untorn dump` and `untorn load`: every bucket and key/value as JSON lines.
//!
//! One line per bucket, before its contents: `{"bucket": [names], "sequence": n}` (so
//! empty buckets and sequences survive), then one line per key/value:
//! `{"bucket": [names], "key": k, "value": v}`. Names, keys and values are JSON strings
//! (valid UTF-8, `--format text`) or `{"hex": ".."}`. Buckets are written depth-first in
//! key order, so `dump | load | dump` reproduces the same bytes.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use untorn::unstable::report::DumpItem as SalvageItem;
use untorn::{Bucket, Cursor, Database, Entry, WriteTx};
use untorn_bbolt::DumpItem;

use crate::args::{DumpArgs, DumpFormat, LoadArgs};
use crate::backend::Backend;
use crate::encoding::{decode, encode};
use crate::output;

struct Frame<'t> {
    path: Vec<Vec<u8>>,
    bucket: Bucket<'t>,
    cursor: Cursor<'t>,
    started: bool,
}

fn path_json(path: &[Vec<u8>], text: bool) -> Vec<Value> {
    path.iter().map(|p| encode(p, text)).collect()
}

/// Writes a bucket line.
fn write_bucket(out: &mut impl Write, path: &[Vec<u8>], seq: u64, text: bool) -> Result<()> {
    serde_json::to_writer(
        &mut *out,
        &json!({"bucket": path_json(path, text), "sequence": seq}),
    )?;
    writeln!(out)?;
    Ok(())
}

/// Writes a key/value line.
fn write_pair(
    out: &mut impl Write,
    path: &[Vec<u8>],
    key: &[u8],
    value: &[u8],
    text: bool,
) -> Result<()> {
    serde_json::to_writer(
        &mut *out,
        &json!({"bucket": path_json(path, text), "key": encode(key, text), "value": encode(value, text)}),
    )?;
    writeln!(out)?;
    Ok(())
}

/// The `--bucket` path, decoded like every name on the command line.
fn bucket_path(a: &DumpArgs) -> Result<Vec<Vec<u8>>> {
    a.bucket
        .iter()
        .map(|n| crate::encoding::arg_bytes(n))
        .collect()
}

fn not_found(path: &[Vec<u8>]) -> anyhow::Error {
    let names: Vec<String> = path.iter().map(|n| crate::encoding::display(n)).collect();
    anyhow::anyhow!("bucket {} not found", names.join("/"))
}

pub fn dump(a: DumpArgs) -> Result<ExitCode> {
    let text = a.format == DumpFormat::Text;
    let only = bucket_path(&a)?;
    if a.skip_damaged {
        return dump_skip_damaged(&a, &only, text);
    }
    let mut out = output::stdout();
    let db = match Backend::open_read(&a.file)? {
        Backend::Native(db) => db,
        Backend::Bbolt(f) => {
            // The library's dump is strict and iterative: it stops with an error
            // naming the first damaged page (then `--skip-damaged` or `untorn salvage`).
            let mut found = only.is_empty();
            for item in untorn_bbolt::dump(&f) {
                match item.with_context(|| format!("cannot dump {}", a.file.display()))? {
                    DumpItem::Bucket { path, sequence } => {
                        if path.starts_with(&only) {
                            found = true;
                            write_bucket(&mut out, &path, sequence, text)?
                        }
                    }
                    DumpItem::Pair(e) => {
                        if e.bucket.starts_with(&only) {
                            write_pair(&mut out, &e.bucket, &e.key, &e.value, text)?
                        }
                    }
                }
            }
            out.flush()?;
            if !found {
                return Err(not_found(&only));
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let tx = db.begin_read()?;
    // Depth-first with an explicit stack: nesting is bounded by the engine, but the
    // CLI does not recurse over file contents either.
    let mut stack: Vec<Frame<'_>> = Vec::new();
    if let Some((first, rest)) = only.split_first() {
        let mut b = tx.bucket(first)?.ok_or_else(|| not_found(&only))?;
        for name in rest {
            b = b.bucket(name)?.ok_or_else(|| not_found(&only))?;
        }
        let cursor = b.cursor();
        stack.push(Frame {
            path: only.clone(),
            bucket: b,
            cursor,
            started: false,
        });
    } else {
        let top = tx.buckets()?;
        for name in top.iter().rev() {
            let b = tx.bucket(name)?.context("bucket vanished")?;
            let cursor = b.cursor();
            stack.push(Frame {
                path: vec![name.clone()],
                bucket: b,
                cursor,
                started: false,
            });
        }
    }
    while let Some(f) = stack.last_mut() {
        let item = if f.started {
            f.cursor.next()?
        } else {
            f.started = true;
            write_bucket(&mut out, &f.path, f.bucket.sequence()?, text)?;
            f.cursor.first()?
        };
        match item {
            None => {
                stack.pop();
            }
            Some((k, Entry::Value(v))) => write_pair(&mut out, &f.path, &k, &v, text)?,
            Some((k, Entry::Bucket)) => {
                let child = f.bucket.bucket(&k)?.context("bucket vanished")?;
                let mut path = f.path.clone();
                path.push(k.to_vec());
                let cursor = child.cursor();
                stack.push(Frame {
                    path,
                    bucket: child,
                    cursor,
                    started: false,
                });
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `dump --skip-damaged`: the newest state minus its damaged subtrees (untorn: page-level
/// salvage using only the pages the newest commit references; bbolt: the verified walk
/// without orphan leaves). The skipped ranges go to stderr; exit 1 when any was skipped.
fn dump_skip_damaged(a: &DumpArgs, only: &[Vec<u8>], text: bool) -> Result<ExitCode> {
    let mut out = output::stdout();
    let mut found = only.is_empty();
    let mut write = |item: SalvageItem| -> Result<()> {
        match item {
            SalvageItem::Bucket { path, sequence } => {
                if path.starts_with(only) {
                    found = true;
                    write_bucket(&mut out, &path, sequence, text)?;
                }
            }
            SalvageItem::Pair(p) => {
                if p.bucket.starts_with(only) {
                    write_pair(&mut out, &p.bucket, &p.key, &p.value, text)?;
                }
            }
        }
        Ok(())
    };
    let ctx = || format!("cannot dump {}", a.file.display());
    let format = match crate::backend::detect(&a.file) {
        Ok(f) => f,
        Err(e) => match untorn::unstable::salvage::recognise_file(&a.file) {
            Ok(true) => crate::backend::Format::Native,
            _ => return Err(e),
        },
    };
    let summary = match format {
        crate::backend::Format::Native => {
            let opts = untorn::unstable::salvage::SalvageOptions {
                live_only: true,
                ..Default::default()
            };
            untorn::unstable::salvage::salvage_file(&a.file, opts, &mut write).with_context(ctx)?
        }
        crate::backend::Format::Bbolt => {
            let opts = untorn_bbolt::SalvageOptions {
                orphans: untorn_bbolt::OrphanPolicy::Never,
                ..Default::default()
            };
            let s = untorn_bbolt::salvage_entries(&a.file, &opts).with_context(ctx)?;
            s.items().try_for_each(&mut write)?;
            s.report.summary()
        }
    };
    out.flush()?;
    if !found {
        return Err(not_found(only));
    }
    let mut err = std::io::stderr().lock();
    let mut skipped = 0u64;
    for l in &summary.lost {
        if !l.bucket.starts_with(only) {
            continue;
        }
        skipped += 1;
        let names: Vec<String> = l
            .bucket
            .iter()
            .map(|n| crate::encoding::display(n))
            .collect();
        let mut what = format!(
            "bucket {}",
            if names.is_empty() {
                "(root)".to_owned()
            } else {
                names.join("/")
            }
        );
        if let Some(p) = l.page {
            what.push_str(&format!(", page {p}"));
        }
        if l.lower.is_some() || l.upper.is_some() {
            let k = |k: &Option<Vec<u8>>| {
                k.as_deref()
                    .map_or("…".to_owned(), crate::encoding::display)
            };
            what.push_str(&format!(", keys [{}, {})", k(&l.lower), k(&l.upper)));
        }
        writeln!(err, "untorn: skipped {what}: {}", l.reason)?;
    }
    Ok(if skipped == 0 {
        ExitCode::SUCCESS
    } else {
        writeln!(
            err,
            "untorn: {} skipped (the dump holds everything else that verifies)",
            output::count(skipped, "damaged range")
        )?;
        ExitCode::from(crate::EXIT_FINDINGS)
    })
}

/// One parsed dump line (also what `salvage` writes into an untorn file).
pub struct Line {
    /// Bucket path (never empty).
    pub bucket: Vec<Vec<u8>>,
    /// The bucket's sequence, on a bucket line.
    pub sequence: Option<u64>,
    /// The key and value, on a key/value line.
    pub kv: Option<(Vec<u8>, Vec<u8>)>,
}

/// Applies lines to an untorn database, committing every `batch` lines.
pub struct BatchWriter<'d> {
    db: &'d Database,
    tx: Option<WriteTx<'d>>,
    in_batch: usize,
    batch: usize,
    /// Transactions committed so far.
    pub commits: u64,
    /// Lines in those transactions.
    pub committed_lines: u64,
}

impl<'d> BatchWriter<'d> {
    pub fn new(db: &'d Database, batch: usize) -> Result<BatchWriter<'d>> {
        if batch == 0 {
            bail!("--batch must be at least 1");
        }
        Ok(BatchWriter {
            db,
            tx: None,
            in_batch: 0,
            batch,
            commits: 0,
            committed_lines: 0,
        })
    }

    /// Applies one line in the current transaction (started if needed).
    pub fn apply(&mut self, line: &Line) -> Result<()> {
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => self.db.begin_write()?,
        };
        apply(&tx, line)?;
        self.in_batch += 1;
        if self.in_batch >= self.batch {
            tx.commit().context("commit failed")?;
            self.commits += 1;
            self.committed_lines += self.in_batch as u64;
            self.in_batch = 0;
        } else {
            self.tx = Some(tx);
        }
        Ok(())
    }

    /// Commits what is pending.
    pub fn finish(mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            tx.commit().context("commit failed")?;
            self.commits += 1;
            self.committed_lines += self.in_batch as u64;
        }
        Ok(())
    }
}

fn parse_line(s: &str) -> Result<Line> {
    let v: Map<String, Value> = serde_json::from_str(s).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof => "not valid JSON",
            Category::Data => "not a JSON object",
            Category::Io => "unreadable",
        };
        // serde's message without its own "at line 1 column N" (the line is ours).
        let detail = e.to_string();
        let detail = detail
            .split(" at line ")
            .next()
            .unwrap_or(&detail)
            .to_owned();
        anyhow::anyhow!("{what} at column {}: {detail}", e.column())
    })?;
    let bucket = match v.get("bucket") {
        Some(Value::Array(a)) if !a.is_empty() => {
            a.iter().map(decode).collect::<Result<Vec<_>>>()?
        }
        _ => bail!("\"bucket\" must be a non-empty array of names"),
    };
    let sequence = match v.get("sequence") {
        None => None,
        Some(s) => Some(
            s.as_u64()
                .context("\"sequence\" must be an unsigned integer")?,
        ),
    };
    let kv = match (v.get("key"), v.get("value")) {
        (Some(k), Some(val)) => Some((decode(k)?, decode(val)?)),
        (None, None) => None,
        _ => bail!("\"key\" and \"value\" go together"),
    };
    for k in v.keys() {
        if !matches!(k.as_str(), "bucket" | "sequence" | "key" | "value") {
            bail!("unknown field {k:?}");
        }
    }
    Ok(Line {
        bucket,
        sequence,
        kv,
    })
}

fn apply(tx: &WriteTx<'_>, line: &Line) -> untorn::Result<()> {
    let Some((first, rest)) = line.bucket.split_first() else {
        return Err(untorn::Error::InvalidArgument("empty bucket path".into()));
    };
    let mut b = tx.create_bucket_if_not_exists(first)?;
    for name in rest {
        b = b.create_bucket_if_not_exists(name)?;
    }
    if let Some(seq) = line.sequence {
        b.set_sequence(seq)?;
    }
    if let Some((k, v)) = &line.kv {
        b.put(k, v)?;
    }
    Ok(())
}

pub fn load(a: LoadArgs) -> Result<ExitCode> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    // A bbolt file is refused before stdin is read.
    if a.file.exists() && crate::backend::detect(&a.file)? == crate::backend::Format::Bbolt {
        return crate::backend::bbolt_read_only(&a.file);
    }
    // Parse before anything is created: a first line that is wrong leaves no file.
    let stdin = std::io::stdin().lock();
    let mut lines = stdin.lines().enumerate().filter_map(|(n, l)| match l {
        Ok(l) if l.trim().is_empty() => None,
        other => Some((n + 1, other)),
    });
    let parse = |(n, line): (usize, std::io::Result<String>)| -> Result<(usize, Line)> {
        let line = line.with_context(|| format!("cannot read stdin at line {n}"))?;
        let parsed = parse_line(&line).with_context(|| format!("line {n}"))?;
        Ok((n, parsed))
    };
    let Some(first) = lines.next() else {
        eprintln!(
            "untorn: nothing to load (stdin is empty); {} not touched",
            a.file.display()
        );
        return Ok(ExitCode::SUCCESS);
    };
    let first = parse(first)?;
    let existed = a.file.exists();
    let db = Backend::open_write(&a.file, true)?;
    let mut writer = BatchWriter::new(&db, a.batch)?;
    let mut loaded = 0u64;
    let result = (|| -> Result<()> {
        for item in std::iter::once(Ok(first)).chain(lines.map(parse)) {
            let (n, parsed) = item?;
            writer.apply(&parsed).with_context(|| format!("line {n}"))?;
            loaded += 1;
        }
        Ok(())
    })();
    let (commits, committed) = (writer.commits, writer.committed_lines);
    let result = result.and_then(|()| writer.finish());
    match result {
        Ok(()) => {
            eprintln!(
                "loaded {} into {}",
                output::count(loaded, "line"),
                a.file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if commits == 0 && !existed => {
            // Nothing was committed into a file this load created: leave nothing.
            drop(db);
            for p in [a.file.clone(), untorn::journal_path(&a.file)] {
                let _ = std::fs::remove_file(p);
            }
            Err(e.context(format!(
                "nothing loaded; {} was not created",
                a.file.display()
            )))
        }
        Err(e) if commits == 0 => {
            Err(e.context(format!("nothing loaded; {} is unchanged", a.file.display())))
        }
        Err(e) => Err(e.context(format!(
            "the first {} ({}) are committed in {}; the rest is not",
            output::count(committed, "line"),
            output::count(commits, "transaction"),
            a.file.display()
        ))),
    }
}
