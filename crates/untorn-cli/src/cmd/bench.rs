//! `untorn bench`: write COUNT keys in transactions of BATCH, then read them all back,
//! on a scratch database; report throughput (bbolt's `bbolt bench`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use untorn::{Database, Durability};

use crate::args::{BenchArgs, BenchOrder};
use crate::output;

/// A validated `bench` invocation.
struct Config {
    count: u64,
    batch: u64,
    key_size: usize,
    value_size: usize,
    write: BenchOrder,
    read: BenchOrder,
    path: Option<PathBuf>,
    sync: bool,
    json: bool,
}

impl Config {
    fn new(a: BenchArgs) -> Result<Config> {
        if a.count == 0 || a.batch_size == 0 {
            bail!("--count and --batch-size must be at least 1");
        }
        if a.key_size < 8 || a.key_size > untorn::MAX_KEY_SIZE {
            bail!(
                "--key-size must be 8..={} bytes (keys hold a 64-bit counter)",
                untorn::MAX_KEY_SIZE
            );
        }
        if a.value_size > untorn::MAX_VALUE_SIZE {
            bail!(
                "--value-size is larger than untorn's {} bytes",
                untorn::MAX_VALUE_SIZE
            );
        }
        Ok(Config {
            count: a.count,
            batch: a.batch_size,
            key_size: a.key_size,
            value_size: a.value_size,
            write: a.write_mode,
            read: a.read_mode,
            path: a.path,
            sync: !a.no_sync,
            json: a.json,
        })
    }
}

/// Key number `i` (big-endian through the typed layer's codec, so keys sort as
/// numbers; padded in front to `size` bytes).
fn key(i: u64, size: usize) -> Vec<u8> {
    use untorn::typed::Codec;
    let mut k = vec![0u8; size.saturating_sub(8)];
    match u64::encode(&i) {
        Ok(b) => k.extend_from_slice(&b),
        Err(_) => k.resize(size, 0),
    }
    k
}

/// 0..n in the order asked for (random: a seeded Fisher-Yates shuffle).
fn order(n: u64, mode: BenchOrder, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    if mode == BenchOrder::Rnd {
        let mut s = seed;
        for i in (1..v.len()).rev() {
            // splitmix64
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let j = (z % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
    v
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    let cfg = Config::new(a)?;
    let tmp;
    let path = match &cfg.path {
        Some(p) => {
            if p.exists() {
                bail!("{} exists; bench writes a new database", p.display());
            }
            p.clone()
        }
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
            tmp.path().join("bench.untorn")
        }
    };
    let durability = if cfg.sync {
        Durability::Immediate
    } else {
        Durability::None
    };
    let db = Database::builder()
        .durability(durability)
        .create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let value = vec![0x5au8; cfg.value_size];
    let writes = order(cfg.count, cfg.write, 1);
    let start = Instant::now();
    let mut commits = 0u64;
    for chunk in writes.chunks(usize::try_from(cfg.batch).unwrap_or(usize::MAX)) {
        db.update(|tx| -> untorn::Result<()> {
            let b = tx.create_bucket_if_not_exists("bench")?;
            for &i in chunk {
                b.put(key(i, cfg.key_size), &value)?;
            }
            Ok(())
        })?;
        commits += 1;
    }
    let write_time = start.elapsed();
    let reads = order(cfg.count, cfg.read, 2);
    let start = Instant::now();
    let found = db.view(|tx| -> untorn::Result<u64> {
        let b = tx
            .bucket("bench")?
            .ok_or_else(|| untorn::Error::bucket_not_found("bench"))?;
        let mut found = 0u64;
        if cfg.read == BenchOrder::Seq {
            for pair in b.iter()? {
                let (_, v) = pair?;
                found += u64::from(v.len() == cfg.value_size);
            }
        } else {
            for &i in &reads {
                found += u64::from(b.get(key(i, cfg.key_size))?.is_some());
            }
        }
        Ok(found)
    })?;
    let read_time = start.elapsed();
    if found != cfg.count {
        bail!("read back {found} of {} keys", cfg.count);
    }
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    // The user's --path file is kept; a temporary one goes with its directory.
    drop(db);
    let mut out = output::stdout();
    let mode = |m: BenchOrder| match m {
        BenchOrder::Seq => "seq",
        BenchOrder::Rnd => "rnd",
    };
    if cfg.json {
        output::json(
            &mut out,
            &json!({"count": cfg.count, "batch_size": cfg.batch, "key_size": cfg.key_size,
                "value_size": cfg.value_size, "write_mode": mode(cfg.write),
                "read_mode": mode(cfg.read), "sync": cfg.sync, "commits": commits,
                "write_seconds": write_time.as_secs_f64(),
                "writes_per_second": per_sec(cfg.count, write_time),
                "read_seconds": read_time.as_secs_f64(),
                "reads_per_second": per_sec(cfg.count, read_time),
                "file_size_bytes": file_bytes}),
        )?;
    } else {
        writeln!(
            out,
            "write  {} in {} ({}, {}): {:.3} s, {:.0} keys/s, {:.0} commits/s",
            output::count(cfg.count, "key"),
            output::count(commits, "commit"),
            mode(cfg.write),
            if cfg.sync { "synced" } else { "no sync" },
            write_time.as_secs_f64(),
            per_sec(cfg.count, write_time),
            per_sec(commits, write_time),
        )?;
        writeln!(
            out,
            "read   {} ({}): {:.3} s, {:.0} keys/s",
            output::count(cfg.count, "key"),
            mode(cfg.read),
            read_time.as_secs_f64(),
            per_sec(cfg.count, read_time),
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_order_is_a_permutation() {
        let mut v = order(1000, BenchOrder::Rnd, 7);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
        assert_eq!(key(1, 10), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    }
}
