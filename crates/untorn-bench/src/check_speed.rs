//! `check` throughput: untorn's integrity check of a file against a plain sequential
//! read of the same file (`cat`-like, 1 MiB reads), interleaved, both from the page
//! cache after the build — so the ratio is the check's CPU and syscall cost.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::DataSet;
use crate::engine::Result;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckSpeed {
    pub file_bytes: u64,
    pub pages_checked: u64,
    pub keys_checked: u64,
    /// Best of the rounds.
    pub check_secs: f64,
    pub read_secs: f64,
}

impl CheckSpeed {
    pub fn check_mib_per_s(&self) -> f64 {
        self.file_bytes as f64 / (1 << 20) as f64 / self.check_secs.max(1e-9)
    }
    pub fn read_mib_per_s(&self) -> f64 {
        self.file_bytes as f64 / (1 << 20) as f64 / self.read_secs.max(1e-9)
    }
}

fn read_sequentially(path: &Path) -> Result<(f64, u64)> {
    let start = Instant::now();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut touch = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        // Touch the bytes so the read cannot be optimised away.
        touch = touch.wrapping_add(
            buf.get(..n)
                .map_or(0, |b| b.iter().step_by(4096).map(|&x| u64::from(x)).sum()),
        );
    }
    std::hint::black_box(touch);
    Ok((start.elapsed().as_secs_f64(), total))
}

/// Builds a database of `keys` items in `dir` (one transaction, then checkpointed and
/// closed), then runs `rounds` of: sequential read, `check` on a read-only handle.
pub fn run(dir: &Path, data: &DataSet, keys: u64, rounds: u32) -> Result<CheckSpeed> {
    let path = dir.join("check.untorn");
    {
        let db = untorn::Database::builder()
            .durability(untorn::Durability::None)
            .create(&path)?;
        let mut key = Vec::new();
        let mut value = Vec::new();
        db.update(|tx| -> untorn::Result<_> {
            let b = tx.create_bucket("bench")?;
            for id in 0..keys {
                data.key(id, &mut key);
                data.value(id, &mut value);
                b.put(&key, &value)?;
            }
            Ok(())
        })?;
        db.checkpoint()?;
    }
    let mut best = CheckSpeed {
        file_bytes: 0,
        pages_checked: 0,
        keys_checked: 0,
        check_secs: f64::INFINITY,
        read_secs: f64::INFINITY,
    };
    for _ in 0..rounds.max(1) {
        let (secs, bytes) = read_sequentially(&path)?;
        best.read_secs = best.read_secs.min(secs);
        best.file_bytes = bytes;
        let db = untorn::Database::builder().read_only(true).open(&path)?;
        let start = Instant::now();
        let report = db.check(Default::default())?;
        let secs = start.elapsed().as_secs_f64();
        if !report.is_ok() {
            return Err(format!("check found problems: {:?}", report.findings).into());
        }
        best.check_secs = best.check_secs.min(secs);
        best.pages_checked = report.pages_checked;
        best.keys_checked = report.keys_checked;
    }
    if best.keys_checked != keys {
        return Err(format!("check saw {} keys, expected {keys}", best.keys_checked).into());
    }
    Ok(best)
}
