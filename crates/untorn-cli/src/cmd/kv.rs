//! `untorn buckets`, `keys`, `get`, `put`, `delete`: data through the engine (every read
//! verified; damaged data is an error, never different bytes).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;
use untorn::{Bucket, Database, ReadTx};
use untorn_bbolt::{BoltError, BoltFile};

use crate::args::{BucketsArgs, GetArgs, KeysArgs, KvArgs, PutArgs};
use crate::backend::Backend;
use crate::encoding::{arg_bytes, display, display_hex, encode};
use crate::output;
use crate::EXIT_FINDINGS;

/// A validated BUCKET... KEY [VALUE] invocation.
struct KvConfig {
    file: PathBuf,
    buckets: Vec<Vec<u8>>,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    json: bool,
}

impl KvConfig {
    /// `with_value`: the last argument is a value (put).
    fn new(a: KvArgs, with_value: bool) -> Result<KvConfig> {
        let mut args = parse_args(&a.args)?;
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
            json: a.json,
        })
    }
}

/// Command-line names/keys as bytes (the CLI's notation: text, or `0x` and hex).
fn parse_args(args: &[String]) -> Result<Vec<Vec<u8>>> {
    args.iter().map(|s| arg_bytes(s)).collect()
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
        display_hex(b)
    } else {
        display(b)
    }
}

/// A bbolt library result where a missing bucket (or a key that is not a bucket) on
/// the path means "not found" (`Ok(None)`).
fn bbolt_found<T>(r: untorn_bbolt::Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(BoltError::BucketNotFound(_) | BoltError::NotABucket(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// (name, keys, sub-buckets) of each sub-bucket of the bbolt bucket at `path`.
fn bbolt_bucket_rows(f: &BoltFile, path: &[Vec<u8>]) -> Result<Option<BucketRows>> {
    let Some(names) = bbolt_found(untorn_bbolt::buckets(f, path))? else {
        return Ok(None);
    };
    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        let mut sub = path.to_vec();
        sub.push(name.clone());
        let keys = untorn_bbolt::keys(f, &sub)
            .with_context(|| format!("cannot read bucket {}", path_display(&sub)))?;
        let buckets = untorn_bbolt::buckets(f, &sub)
            .with_context(|| format!("cannot read bucket {}", path_display(&sub)))?;
        rows.push((name, keys.len() as u64, buckets.len()));
    }
    Ok(Some(rows))
}

/// (name, keys, sub-buckets) rows of `untorn buckets`.
type BucketRows = Vec<(Vec<u8>, u64, usize)>;

/// The same rows for an untorn file (`None`: the bucket path does not exist).
fn native_bucket_rows(db: &Database, path: &[Vec<u8>]) -> Result<Option<BucketRows>> {
    let tx = db.begin_read()?;
    // (name, keys, sub-buckets) of each bucket in a transaction or a bucket.
    macro_rules! rows_of {
        ($parent:expr) => {{
            let mut rows: BucketRows = Vec::new();
            for name in $parent.buckets()? {
                let b = $parent.bucket(&name)?.context("bucket vanished")?;
                rows.push((name, b.len()?, b.buckets()?.len()));
            }
            rows
        }};
    }
    Ok(if path.is_empty() {
        Some(rows_of!(tx))
    } else {
        match open_path(&tx, path)? {
            Some(parent) => Some(rows_of!(parent)),
            None => None,
        }
    })
}

pub fn buckets(a: BucketsArgs) -> Result<ExitCode> {
    let path = parse_args(&a.bucket)?;
    let rows = match Backend::open_read(&a.file)? {
        Backend::Native(db) => native_bucket_rows(&db, &path)?,
        Backend::Bbolt(f) => bbolt_bucket_rows(&f, &path)?,
    };
    let Some(rows) = rows else {
        return not_found(&format!("bucket {}", path_display(&path)));
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
    let path = parse_args(&a.bucket)?;
    let db = match Backend::open_read(&a.file)? {
        Backend::Native(db) => db,
        Backend::Bbolt(f) => {
            let Some(keys) = bbolt_found(untorn_bbolt::keys(&f, &path))? else {
                return not_found(&format!("bucket {}", path_display(&path)));
            };
            return print_keys(keys.into_iter().map(Ok), a.hex, a.json);
        }
    };
    let tx = db.begin_read()?;
    let Some(b) = open_path(&tx, &path)? else {
        return not_found(&format!("bucket {}", path_display(&path)));
    };
    let keys = b
        .iter()?
        .map(|item| item.map(|(k, _)| k.to_vec()).map_err(anyhow::Error::from));
    print_keys(keys, a.hex, a.json)
}

/// Prints keys one per line, or as a JSON array.
fn print_keys(
    keys: impl Iterator<Item = Result<Vec<u8>>>,
    hex: bool,
    json: bool,
) -> Result<ExitCode> {
    let mut out = output::stdout();
    if json {
        let keys = keys
            .map(|k| k.map(|k| encode(&k, !hex)))
            .collect::<Result<Vec<_>>>()?;
        output::json(&mut out, &keys)?;
    } else {
        for k in keys {
            writeln!(out, "{}", show(&k?, hex))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn get(a: GetArgs) -> Result<ExitCode> {
    let hex = a.hex;
    let cfg = KvConfig::new(a.kv, false)?;
    let value = match Backend::open_read(&cfg.file)? {
        Backend::Native(db) => {
            let tx = db.begin_read()?;
            match open_path(&tx, &cfg.buckets)? {
                None => None,
                Some(b) => Some(b.get(&cfg.key)?.map(|v| v.to_vec())),
            }
        }
        Backend::Bbolt(f) => bbolt_found(untorn_bbolt::get(&f, &cfg.buckets, &cfg.key))?,
    };
    let Some(value) = value else {
        return not_found(&format!("bucket {}", path_display(&cfg.buckets)));
    };
    let Some(v) = value else {
        return not_found(&format!("key {}", display(&cfg.key)));
    };
    let mut out = output::stdout();
    if cfg.json {
        output::json(
            &mut out,
            &json!({"key": encode(&cfg.key, !hex), "value": encode(&v, !hex)}),
        )?;
    } else if hex {
        writeln!(out, "{}", display_hex(&v))?;
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

pub fn put(a: PutArgs) -> Result<ExitCode> {
    let cfg = KvConfig::new(
        KvArgs {
            file: a.file,
            args: a.args,
            json: false,
        },
        true,
    )?;
    let value = cfg.value.clone().unwrap_or_default();
    let db = Backend::open_write(&cfg.file, true)?;
    db.update(|tx| -> untorn::Result<_> {
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
    let db = Backend::open_write(&cfg.file, false)?;
    let existed = db
        .update(|tx| -> untorn::Result<_> {
            match open_path!(tx, cfg.buckets)? {
                Some(b) => Ok(Some(b.delete(&cfg.key)?)),
                None => Ok(None),
            }
        })
        .context("delete failed")?;
    match existed {
        None => not_found(&format!("bucket {}", path_display(&cfg.buckets))),
        Some(false) => not_found(&format!("key {}", display(&cfg.key))),
        Some(true) => Ok(ExitCode::SUCCESS),
    }
}
