//! `untorn buckets`, `keys`, `get`, `put`, `delete`: data through the engine (every read
//! verified; damaged data is an error, never different bytes).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use untorn::{Bucket, ReadTx};

use crate::args::{BucketsArgs, KeysArgs, KvArgs};
use crate::backend::Backend;
use crate::encoding::{arg_bytes, display, encode, to_hex};
use crate::output;
use crate::EXIT_FINDINGS;

/// A validated BUCKET... KEY [VALUE] invocation.
struct KvConfig {
    file: PathBuf,
    buckets: Vec<Vec<u8>>,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    hex: bool,
    json: bool,
}

impl KvConfig {
    /// `with_value`: the last argument is a value (put).
    fn new(a: KvArgs, with_value: bool) -> Result<KvConfig> {
        let mut args = parse_args(&a.args, a.hex)?;
        let value = if with_value { args.pop() } else { None };
        let key = args.pop();
        let (Some(key), false) = (key, args.is_empty()) else {
            bail!(
                "expected BUCKET... KEY{}: at least one bucket name and a key",
                if with_value { " VALUE" } else { "" }
            );
        };
        if key.is_empty() {
            bail!("the key is empty");
        }
        Ok(KvConfig {
            file: a.file,
            buckets: args,
            key,
            value,
            hex: a.hex,
            json: a.json,
        })
    }
}

/// Command-line names/keys as bytes (hex-decoded with `--hex`).
fn parse_args(args: &[String], hex: bool) -> Result<Vec<Vec<u8>>> {
    args.iter().map(|s| arg_bytes(s, hex)).collect()
}

fn path_display(path: &[Vec<u8>]) -> String {
    path.iter()
        .map(|p| display(p))
        .collect::<Vec<_>>()
        .join("/")
}

/// Descends from a transaction through the nested bucket `path`, evaluating to
/// `Ok(None)` if any level is missing. A macro because read and write transactions and
/// their bucket handles are different types with the same method names.
macro_rules! open_path {
    ($tx:expr, $path:expr) => {{
        let mut found = None;
        if let Some((first, rest)) = $path.split_first() {
            found = $tx.bucket(first)?;
            for name in rest {
                found = match found {
                    Some(b) => b.bucket(name)?,
                    None => None,
                };
            }
        }
        Ok::<_, untorn::Error>(found)
    }};
}

/// Opens the nested bucket `path` in a read transaction (`None` if any level is missing).
fn open_path<'t>(tx: &'t ReadTx<'_>, path: &[Vec<u8>]) -> Result<Option<Bucket<'t>>> {
    Ok(open_path!(tx, path)?)
}

fn not_found(what: &str) -> Result<ExitCode> {
    eprintln!("untorn: {what} not found");
    Ok(ExitCode::from(EXIT_FINDINGS))
}

fn show(b: &[u8], hex: bool) -> String {
    if hex {
        to_hex(b)
    } else {
        display(b)
    }
}

pub fn buckets(a: BucketsArgs) -> Result<ExitCode> {
    let path = parse_args(&a.bucket, a.hex)?;
    let Backend::Native(db) = Backend::open_read(&a.file)?;
    let tx = db.begin_read()?;
    // (name, keys, sub-buckets) of each bucket in a transaction or a bucket.
    macro_rules! rows_of {
        ($parent:expr) => {{
            let mut rows: Vec<(Vec<u8>, u64, usize)> = Vec::new();
            for name in $parent.buckets()? {
                let b = $parent.bucket(&name)?.context("bucket vanished")?;
                rows.push((name, b.len()?, b.buckets()?.len()));
            }
            rows
        }};
    }
    let rows = if path.is_empty() {
        rows_of!(tx)
    } else {
        let Some(parent) = open_path(&tx, &path)? else {
            return not_found(&format!("bucket {}", path_display(&path)));
        };
        rows_of!(parent)
    };
    let mut out = output::stdout();
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(n, k, b)| json!({"name": encode(n, !a.hex), "keys": k, "buckets": b}))
            .collect();
        output::json(&mut out, &v)?;
    } else {
        let mut t = vec![vec!["NAME".to_owned(), "KEYS".into(), "BUCKETS".into()]];
        for (n, k, b) in &rows {
            t.push(vec![show(n, a.hex), k.to_string(), b.to_string()]);
        }
        output::table(&mut out, &t)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn keys(a: KeysArgs) -> Result<ExitCode> {
    let path = parse_args(&a.bucket, a.hex)?;
    let Backend::Native(db) = Backend::open_read(&a.file)?;
    let tx = db.begin_read()?;
    let Some(b) = open_path(&tx, &path)? else {
        return not_found(&format!("bucket {}", path_display(&path)));
    };
    let mut out = output::stdout();
    if a.json {
        let mut keys = Vec::new();
        for item in b.iter()? {
            let (k, _) = item?;
            keys.push(encode(&k, !a.hex));
        }
        output::json(&mut out, &keys)?;
    } else {
        for item in b.iter()? {
            let (k, _) = item?;
            writeln!(out, "{}", show(&k, a.hex))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn get(a: KvArgs) -> Result<ExitCode> {
    let cfg = KvConfig::new(a, false)?;
    let Backend::Native(db) = Backend::open_read(&cfg.file)?;
    let tx = db.begin_read()?;
    let Some(b) = open_path(&tx, &cfg.buckets)? else {
        return not_found(&format!("bucket {}", path_display(&cfg.buckets)));
    };
    let Some(v) = b.get(&cfg.key)? else {
        return not_found(&format!("key {}", display(&cfg.key)));
    };
    let mut out = output::stdout();
    if cfg.json {
        output::json(
            &mut out,
            &json!({"key": encode(&cfg.key, !cfg.hex), "value": encode(&v, !cfg.hex)}),
        )?;
    } else if cfg.hex {
        writeln!(out, "{}", to_hex(&v))?;
    } else {
        // The value's bytes exactly; a newline only for a person at a terminal.
        out.write_all(&v)?;
        if std::io::stdout().is_terminal() {
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn put(a: KvArgs) -> Result<ExitCode> {
    let cfg = KvConfig::new(a, true)?;
    let value = cfg.value.clone().unwrap_or_default();
    let Backend::Native(db) = Backend::open_write(&cfg.file, true)?;
    db.update(|tx| {
        let (first, rest) = cfg
            .buckets
            .split_first()
            .ok_or_else(|| untorn::Error::InvalidArgument("no bucket".into()))?;
        let mut b = tx.create_bucket_if_not_exists(first)?;
        for name in rest {
            b = b.create_bucket_if_not_exists(name)?;
        }
        b.put(&cfg.key, &value)
    })
    .context("put failed")?;
    Ok(ExitCode::SUCCESS)
}

pub fn delete(a: KvArgs) -> Result<ExitCode> {
    let cfg = KvConfig::new(a, false)?;
    let Backend::Native(db) = Backend::open_write(&cfg.file, false)?;
    let existed = db
        .update(|tx| match open_path!(tx, cfg.buckets)? {
            Some(b) => Ok(Some(b.delete(&cfg.key)?)),
            None => Ok(None),
        })
        .context("delete failed")?;
    match existed {
        None => not_found(&format!("bucket {}", path_display(&cfg.buckets))),
        Some(false) => not_found(&format!("key {}", display(&cfg.key))),
        Some(true) => Ok(ExitCode::SUCCESS),
    }
}
