//! redb's benchmark phases (`lmdb_benchmark`), run in order on one database by one
//! process: each phase starts from the state the previous ones left.
//!
//! | phase | what is timed |
//! |---|---|
//! | `bulk-load` | `keys` random pairs in one durable transaction |
//! | `individual-writes` | `keys/1000` durable transactions of one put |
//! | `batch-writes` | 100 durable transactions of `keys/1000` puts |
//! | `nosync-writes` | `keys/20` no-sync transactions of one put |
//! | `len` | the key count, from a fresh snapshot |
//! | `random-reads` | a get of every bulk-loaded key, in load (= random key) order |
//! | `random-range-reads` | `keys/2` scans of 10 entries from a random existing key |
//! | `random-reads-Nt` | N threads (4, 8, 16, 32), each its own snapshot, together getting every key once |
//! | `removals` | half of all keys removed in one durable transaction |
//! | `compaction` | the engine's compaction |
//!
//! Sizes (all files in the engine's directory) are taken after the bulk load, after the
//! removals and after compaction. Every read is checked: gets must find every key with
//! the right value digest, and the digest sums must agree between engines.
//!
//! Each phase is its own `#[inline(never)] fn phase_*`, so
//! `valgrind --tool=callgrind --toggle-collect='*phase_random_reads*'` counts exactly one
//! (`scripts/callgrind.sh PHASE` does this; the threaded phases also toggle on
//! `reader_thread`, which each spawned thread runs).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::DataSet;
use crate::engine::{dir_size_bytes, Engine, Result};

/// Workload sizes. [`Params::scaled`] reproduces redb's at one million keys.
#[derive(Debug, Clone)]
pub struct Params {
    pub data: DataSet,
    pub keys: u64,
    pub individual_writes: u64,
    pub batches: u64,
    pub batch_size: u64,
    pub nosync_writes: u64,
    pub scans: u64,
    pub scan_len: usize,
    pub threads: Vec<usize>,
}

impl Params {
    /// redb's counts for 1,000,000 keys (1,000 individual writes, 100 × 1,000 batch,
    /// 50,000 no-sync, 500,000 scans of 10), scaled linearly, at least 1 each.
    pub fn scaled(data: DataSet, keys: u64) -> Params {
        let keys = keys.max(2);
        Params {
            data,
            keys,
            individual_writes: (keys / 1000).max(1),
            batches: 100,
            batch_size: (keys / 1000).max(1),
            nosync_writes: (keys / 20).max(1),
            scans: (keys / 2).max(1),
            scan_len: 10,
            threads: vec![4, 8, 16, 32],
        }
    }

    /// Keys in the database after the four write phases (item ids `0..total`).
    pub fn total(&self) -> u64 {
        self.keys + self.individual_writes + self.batches * self.batch_size + self.nosync_writes
    }
}

/// One measured phase: a duration, or a size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Measurement {
    pub engine: String,
    pub phase: String,
    /// Wall time, for timed phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secs: Option<f64>,
    /// Bytes on disk, for size rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Operations (puts, gets, scans, removals) in the phase.
    pub ops: u64,
    /// Sum of value digests read (equal across engines for the same phase).
    pub checksum: u64,
}

/// Every phase name in order, sizes included (the report's row order).
pub fn phase_names(p: &Params) -> Vec<String> {
    let mut v: Vec<String> = [
        "bulk-load",
        "size-after-load",
        "individual-writes",
        "batch-writes",
        "nosync-writes",
        "len",
        "random-reads",
        "random-range-reads",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for t in &p.threads {
        v.push(format!("random-reads-{t}t"));
    }
    for s in [
        "removals",
        "size-after-removals",
        "compaction",
        "size-after-compaction",
    ] {
        v.push(s.to_string());
    }
    v
}

struct Run<'a> {
    engine_name: &'a str,
    /// Stop after this phase (the `phase` command); `None` runs all.
    stop_after: Option<&'a str>,
    emit: &'a mut dyn FnMut(Measurement),
    done: bool,
}

impl Run<'_> {
    fn time(&mut self, phase: &str, ops: u64, checksum: u64, secs: f64) {
        (self.emit)(Measurement {
            engine: self.engine_name.to_string(),
            phase: phase.to_string(),
            secs: Some(secs),
            bytes: None,
            ops,
            checksum,
        });
        if self.stop_after == Some(phase) {
            self.done = true;
        }
    }

    fn size(&mut self, phase: &str, engine: &dyn Engine) -> Result<()> {
        let bytes = dir_size_bytes(engine.dir())?;
        (self.emit)(Measurement {
            engine: self.engine_name.to_string(),
            phase: phase.to_string(),
            secs: None,
            bytes: Some(bytes),
            ops: 0,
            checksum: 0,
        });
        if self.stop_after == Some(phase) {
            self.done = true;
        }
        Ok(())
    }
}

/// Puts items `ids` in `txns` transactions of `per_txn`; returns the wall time.
fn write_items(
    engine: &mut dyn Engine,
    p: &Params,
    first: u64,
    txns: u64,
    per_txn: u64,
    durable: bool,
) -> Result<f64> {
    let mut key = Vec::new();
    let mut value = Vec::new();
    let start = Instant::now();
    for t in 0..txns {
        engine.write(durable, &mut |w| {
            for i in 0..per_txn {
                let id = first + t * per_txn + i;
                p.data.key(id, &mut key);
                p.data.value(id, &mut value);
                w.put(&key, &value)?;
            }
            Ok(())
        })?;
    }
    Ok(start.elapsed().as_secs_f64())
}

#[inline(never)]
fn phase_bulk_load(engine: &mut dyn Engine, p: &Params) -> Result<f64> {
    write_items(engine, p, 0, 1, p.keys, true)
}

#[inline(never)]
fn phase_individual_writes(engine: &mut dyn Engine, p: &Params) -> Result<f64> {
    write_items(engine, p, p.keys, p.individual_writes, 1, true)
}

#[inline(never)]
fn phase_batch_writes(engine: &mut dyn Engine, p: &Params) -> Result<f64> {
    let first = p.keys + p.individual_writes;
    write_items(engine, p, first, p.batches, p.batch_size, true)
}

#[inline(never)]
fn phase_nosync_writes(engine: &mut dyn Engine, p: &Params) -> Result<f64> {
    let first = p.keys + p.individual_writes + p.batches * p.batch_size;
    let secs = write_items(engine, p, first, p.nosync_writes, 1, false)?;
    // Untimed: one durable empty commit so later phases run in durable mode and the
    // no-sync commits are on disk before the sizes are taken.
    engine.write(true, &mut |_| Ok(()))?;
    Ok(secs)
}

#[inline(never)]
fn phase_len(engine: &dyn Engine) -> Result<(f64, u64)> {
    let mut n = 0;
    let start = Instant::now();
    engine.read(&mut |r| {
        n = r.len()?;
        Ok(())
    })?;
    Ok((start.elapsed().as_secs_f64(), n))
}

/// Gets items `first..first+count`; every one must be found with the right digest.
fn get_items(engine: &dyn Engine, p: &Params, first: u64, count: u64) -> Result<u64> {
    let mut key = Vec::new();
    let mut sum = 0u64;
    let mut expected = 0u64;
    engine.read(&mut |r| {
        for id in first..first + count {
            p.data.key(id, &mut key);
            match r.get(&key)? {
                Some(d) => sum = sum.wrapping_add(d),
                None => return Err(format!("item {id} not found").into()),
            }
            expected = expected.wrapping_add(p.data.value_digest(id));
        }
        Ok(())
    })?;
    if sum != expected {
        return Err(format!("value digests of items {first}.. differ: {sum} != {expected}").into());
    }
    Ok(sum)
}

#[inline(never)]
fn phase_random_reads(engine: &dyn Engine, p: &Params) -> Result<(f64, u64)> {
    let start = Instant::now();
    let sum = get_items(engine, p, 0, p.keys)?;
    Ok((start.elapsed().as_secs_f64(), sum))
}

#[inline(never)]
fn phase_random_range_reads(engine: &dyn Engine, p: &Params) -> Result<(f64, u64, u64)> {
    let mut key = Vec::new();
    let mut entries = 0u64;
    let mut sum = 0u64;
    let start = Instant::now();
    engine.read(&mut |r| {
        for id in 0..p.scans {
            p.data.key(id % p.keys, &mut key);
            let (n, s) = r.scan(&key, p.scan_len)?;
            if n == 0 {
                return Err(format!("scan from item {id} found nothing").into());
            }
            entries += n as u64;
            sum = sum.wrapping_add(s);
        }
        Ok(())
    })?;
    Ok((start.elapsed().as_secs_f64(), entries, sum))
}

/// The body of one reader thread of the `random-reads-Nt` phases: its own function so
/// callgrind can collect inside the spawned threads (`--toggle-collect='*reader_thread*'`).
#[inline(never)]
fn reader_thread(engine: &dyn Engine, p: &Params, first: u64, count: u64) -> Result<u64> {
    get_items(engine, p, first, count)
}

#[inline(never)]
fn phase_random_reads_threads(
    engine: &dyn Engine,
    p: &Params,
    threads: usize,
) -> Result<(f64, u64)> {
    let total = p.total();
    let per = total / threads as u64;
    let barrier = std::sync::Barrier::new(threads);
    let start = Instant::now();
    let sums: Vec<Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let last = if t + 1 == threads as u64 {
                        total
                    } else {
                        (t + 1) * per
                    };
                    reader_thread(engine, p, t * per, last - t * per)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("reader thread panicked".into()))
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut sum = 0u64;
    for r in sums {
        sum = sum.wrapping_add(r?);
    }
    Ok((secs, sum))
}

#[inline(never)]
fn phase_removals(engine: &mut dyn Engine, p: &Params) -> Result<f64> {
    let mut key = Vec::new();
    let n = p.total() / 2;
    let start = Instant::now();
    engine.write(true, &mut |w| {
        for id in 0..n {
            p.data.key(id, &mut key);
            w.remove(&key)?;
        }
        Ok(())
    })?;
    Ok(start.elapsed().as_secs_f64())
}

#[inline(never)]
fn phase_compaction(engine: &mut dyn Engine) -> Result<f64> {
    let start = Instant::now();
    engine.compact()?;
    Ok(start.elapsed().as_secs_f64())
}

fn expect_len(engine: &dyn Engine, want: u64, when: &str) -> Result<()> {
    let (_, n) = phase_len(engine)?;
    if n != want {
        return Err(format!("{when}: len() = {n}, expected {want}").into());
    }
    Ok(())
}

/// Runs the phases on `engine` in order, calling `emit` after each; with `stop_after`,
/// stops after that phase (the earlier ones still run: they build its starting state).
pub fn run(
    engine_name: &str,
    engine: &mut dyn Engine,
    p: &Params,
    stop_after: Option<&str>,
    emit: &mut dyn FnMut(Measurement),
) -> Result<()> {
    if let Some(s) = stop_after {
        if !phase_names(p).iter().any(|n| n == s) {
            return Err(
                format!("unknown phase {s:?} (have: {})", phase_names(p).join(", ")).into(),
            );
        }
    }
    let mut run = Run {
        engine_name,
        stop_after,
        emit,
        done: false,
    };
    // In `phase` mode the read-only phases before the target change nothing, so they
    // are skipped (faster under valgrind, and never counted by a toggle pattern).
    let skip = |name: &str| stop_after.is_some_and(|s| s != name);
    macro_rules! check_done {
        () => {
            if run.done {
                return Ok(());
            }
        };
    }
    let secs = phase_bulk_load(engine, p)?;
    run.time("bulk-load", p.keys, 0, secs);
    check_done!();
    run.size("size-after-load", engine)?;
    check_done!();
    let secs = phase_individual_writes(engine, p)?;
    run.time("individual-writes", p.individual_writes, 0, secs);
    check_done!();
    let secs = phase_batch_writes(engine, p)?;
    run.time("batch-writes", p.batches * p.batch_size, 0, secs);
    check_done!();
    let secs = phase_nosync_writes(engine, p)?;
    run.time("nosync-writes", p.nosync_writes, 0, secs);
    check_done!();
    if !skip("len") {
        let (secs, n) = phase_len(engine)?;
        if n != p.total() {
            return Err(format!("len() = {n} after the writes, expected {}", p.total()).into());
        }
        run.time("len", 1, n, secs);
        check_done!();
    }
    if !skip("random-reads") {
        let (secs, sum) = phase_random_reads(engine, p)?;
        run.time("random-reads", p.keys, sum, secs);
        check_done!();
    }
    if !skip("random-range-reads") {
        let (secs, entries, sum) = phase_random_range_reads(engine, p)?;
        run.time("random-range-reads", entries, sum, secs);
        check_done!();
    }
    for &t in &p.threads {
        let name = format!("random-reads-{t}t");
        if !skip(&name) {
            let (secs, sum) = phase_random_reads_threads(engine, p, t)?;
            run.time(&name, p.total(), sum, secs);
            check_done!();
        }
    }
    let secs = phase_removals(engine, p)?;
    run.time("removals", p.total() / 2, 0, secs);
    check_done!();
    let remaining = p.total() - p.total() / 2;
    expect_len(engine, remaining, "after removals")?;
    run.size("size-after-removals", engine)?;
    check_done!();
    let secs = phase_compaction(engine)?;
    run.time("compaction", remaining, 0, secs);
    check_done!();
    run.size("size-after-compaction", engine)?;
    // Untimed: compaction kept every remaining key (a sample of them with values).
    expect_len(engine, remaining, "after compaction")?;
    get_items(engine, p, p.total() / 2, remaining.min(10_000))?;
    Ok(())
}
