//! Durable single-put commit latency, interleaved with a raw 4 KiB `pwrite + fdatasync`
//! in the same directory, so both series see the same disk and the same background load.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::data::DataSet;
use crate::engine::{Engine, Result};

/// Latency percentiles of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub engine: String,
    pub commits: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub raw_p50_us: f64,
    pub raw_p99_us: f64,
}

/// The `p`-quantile (0..=1) of `sorted`, nearest rank, in microseconds.
pub fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Items written before the measured commits, so the tree has a few levels.
pub const PRELOAD_ITEMS: u64 = 10_000;

/// Preloads [`PRELOAD_ITEMS`], then times `commits` durable single-put commits, each
/// right after one raw page write + `fdatasync`.
pub fn run(name: &str, engine: &mut dyn Engine, data: &DataSet, commits: u64) -> Result<Latency> {
    let mut key = Vec::new();
    let mut value = Vec::new();
    engine.write(true, &mut |w| {
        for id in 0..PRELOAD_ITEMS {
            data.key(id, &mut key);
            data.value(id, &mut value);
            w.put(&key, &value)?;
        }
        Ok(())
    })?;
    let raw = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(engine.dir().join("raw-fdatasync"))?;
    let page = vec![0xa5u8; 4096];
    // Pre-size the raw file so its fdatasync never has to commit a size change.
    for slot in 0..256u64 {
        raw.write_all_at(&page, slot * 4096)?;
    }
    raw.sync_all()?;
    let mut raw_lat = Vec::with_capacity(commits as usize);
    let mut lat = Vec::with_capacity(commits as usize);
    for i in 0..commits {
        let t = Instant::now();
        raw.write_all_at(&page, (i % 256) * 4096)?;
        raw.sync_data()?;
        raw_lat.push(t.elapsed());
        let id = PRELOAD_ITEMS + i;
        data.key(id, &mut key);
        data.value(id, &mut value);
        let t = Instant::now();
        engine.write(true, &mut |w| w.put(&key, &value))?;
        lat.push(t.elapsed());
    }
    raw_lat.sort();
    lat.sort();
    Ok(Latency {
        engine: name.to_string(),
        commits,
        p50_us: percentile_us(&lat, 0.5),
        p99_us: percentile_us(&lat, 0.99),
        max_us: percentile_us(&lat, 1.0),
        raw_p50_us: percentile_us(&raw_lat, 0.5),
        raw_p99_us: percentile_us(&raw_lat, 0.99),
    })
}
