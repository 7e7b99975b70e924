//! At-rest damage: a quiescent database whose data file and journal get random bit flips
//! and zeroed sectors between runs. Every read must return the right value or
//! `Error::Corrupted` naming the page — never a wrong value, never a panic.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use untorn::{Error, ReadTx};

use crate::disk::{Damage, FaultConfig, SimDisk};
use crate::model::{random_op, Model};
use crate::prng::Prng;
use crate::torture::{
    apply_op, engine_check, open_db, panic_message, scan_snapshot, ScanError, DATA_FILE,
    JOURNAL_FILE,
};

/// What the damaged reopens did.
#[derive(Debug, Clone, Copy, Default)]
pub struct AtRestStats {
    /// Damaged copies opened (or refused).
    pub trials: u64,
    /// Opens refused with `Corrupted` or `NotADatabase`.
    pub open_refused: u64,
    /// Reads that returned `Corrupted`.
    pub reads_corrupted: u64,
    /// Reads that returned the right value.
    pub reads_right: u64,
    /// Trials whose recovered state was older than the last commit (damaged journal tail).
    pub rolled_back: u64,
}

const THRESHOLD_BYTES: u64 = 32 * 1024;

/// Builds a quiescent database (some commits checkpointed home, some only in the
/// journal) and returns the disk and the model of every commit.
fn build(seed: u64) -> Result<(SimDisk, BTreeMap<u64, Model>, u64), String> {
    let disk = SimDisk::new(FaultConfig {
        seed,
        ..FaultConfig::default()
    });
    let db = open_db(&disk, THRESHOLD_BYTES).map_err(|e| format!("create: {e}"))?;
    let mut rng = Prng::derive(seed, 500);
    let mut history = BTreeMap::new();
    let mut model = Model::default();
    let mut last = db
        .begin_read()
        .map_err(|e| format!("begin_read: {e}"))?
        .txid();
    history.insert(last, model.clone());
    let mut tag = seed << 32;
    let commits = rng.range_inclusive(6, 20);
    for _ in 0..commits {
        let wtx = db.begin_write().map_err(|e| format!("begin_write: {e}"))?;
        let txid = wtx.txid();
        for _ in 0..rng.range_inclusive(1, 6) {
            let op = random_op(&mut rng, &model, &mut tag);
            apply_op(&wtx, &op).map_err(|e| format!("{op:?}: {e}"))?;
            model.apply(&op);
        }
        wtx.commit().map_err(|e| format!("commit: {e}"))?;
        history.insert(txid, model.clone());
        last = txid;
        if rng.below(4) == 0 {
            db.checkpoint().map_err(|e| format!("checkpoint: {e}"))?;
        }
    }
    drop(db);
    disk.shutdown();
    Ok((disk, history, last))
}

fn read_path<'a>(
    rtx: &'a ReadTx<'_>,
    path: &[Vec<u8>],
) -> untorn::Result<Option<untorn::Bucket<'a>>> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(None);
    };
    let Some(mut b) = rtx.bucket(first)? else {
        return Ok(None);
    };
    for name in rest {
        match b.bucket(name)? {
            Some(c) => b = c,
            None => return Ok(None),
        }
    }
    Ok(Some(b))
}

/// One damaged copy: returns whether reads hit `Corrupted`.
fn trial(
    disk: &SimDisk,
    history: &BTreeMap<u64, Model>,
    last: u64,
    stats: &mut AtRestStats,
) -> Result<(), String> {
    let db = match open_db(disk, THRESHOLD_BYTES) {
        Ok(db) => db,
        Err(Error::Corrupted { .. } | Error::NotADatabase(_)) => {
            stats.open_refused += 1;
            return Ok(());
        }
        Err(e) => {
            return Err(format!(
                "open of a damaged file failed with a non-corruption error: {e}"
            ))
        }
    };
    let rtx = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
    let txid = rtx.txid();
    let expected = history
        .get(&txid)
        .ok_or_else(|| format!("opened at txid {txid}, which is no commit (last {last})"))?;
    if txid < last {
        stats.rolled_back += 1;
    }
    let mut corrupted = false;
    match scan_snapshot(&rtx, expected) {
        Ok(_) => {}
        Err(ScanError::Wrong(m)) => return Err(format!("txid {txid}: {m}")),
        Err(ScanError::Engine(Error::Corrupted { .. })) => corrupted = true,
        Err(ScanError::Engine(e)) => {
            return Err(format!(
                "txid {txid}: scan failed with a non-corruption error: {e}"
            ))
        }
    }
    // Point reads of every key of the model, each on its own.
    for (path, kvs) in &expected.buckets {
        let bucket = match read_path(&rtx, path) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Err(format!(
                    "WRONG DATA: bucket {path:?} missing at txid {txid}"
                ))
            }
            Err(Error::Corrupted { .. }) => {
                stats.reads_corrupted += 1;
                corrupted = true;
                continue;
            }
            Err(e) => return Err(format!("bucket {path:?}: {e}")),
        };
        for (key, spec) in kvs {
            match bucket.get(key) {
                Ok(Some(v)) if v.as_ref() == spec.bytes().as_slice() => stats.reads_right += 1,
                Ok(Some(v)) => {
                    return Err(format!(
                        "WRONG DATA: {path:?}:{key:?} returned {} bytes, model has {} (tag {})",
                        v.len(),
                        spec.len,
                        spec.tag
                    ))
                }
                Ok(None) => {
                    return Err(format!(
                        "WRONG DATA: {path:?}:{key:?} missing at txid {txid}"
                    ))
                }
                Err(Error::Corrupted { .. }) => {
                    stats.reads_corrupted += 1;
                    corrupted = true;
                }
                Err(e) => return Err(format!("get {path:?}:{key:?}: {e}")),
            }
        }
    }
    drop(rtx);
    // When `Database::check` lands (see `engine_check`), also assert here that it reports
    // findings whenever `corrupted` is true; the stand-in cannot see page damage.
    let _ = corrupted;
    match engine_check(&db) {
        Ok(_) | Err(Error::Corrupted { .. }) => Ok(()),
        Err(e) => Err(format!("check failed with a non-corruption error: {e}")),
    }
}

/// Builds a database for `seed` and reopens `trials` copies, each with 1–4 random
/// damages in the data file and/or journal.
pub fn run_seed(seed: u64, trials: u64) -> Result<AtRestStats, String> {
    let (disk, history, last) = build(seed)?;
    let mut stats = AtRestStats::default();
    // Control: the undamaged database opens at its last commit with exact contents.
    {
        let copy = disk.fork();
        let db = open_db(&copy, THRESHOLD_BYTES)
            .map_err(|e| format!("seed {seed}: undamaged reopen: {e}"))?;
        let rtx = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
        if rtx.txid() != last {
            return Err(format!(
                "seed {seed}: undamaged reopen at txid {}, last commit {last}",
                rtx.txid()
            ));
        }
        let expected = history.get(&last).cloned().unwrap_or_default();
        match scan_snapshot(&rtx, &expected) {
            Ok(_) => {}
            Err(ScanError::Wrong(m)) => return Err(format!("seed {seed}: undamaged: {m}")),
            Err(ScanError::Engine(e)) => {
                return Err(format!("seed {seed}: undamaged: read failed: {e}"))
            }
        }
    }
    let mut rng = Prng::derive(seed, 600);
    for t in 0..trials {
        let copy = disk.fork();
        let mut damages: Vec<(&str, Damage)> = Vec::new();
        for _ in 0..rng.range_inclusive(1, 4) {
            let name = if rng.below(3) == 0 {
                JOURNAL_FILE
            } else {
                DATA_FILE
            };
            damages.extend(
                copy.damage_random(&mut rng, name, 1)
                    .into_iter()
                    .map(|d| (name, d)),
            );
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            trial(&copy, &history, last, &mut stats)
        }));
        stats.trials += 1;
        let r = r.unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&p))));
        r.map_err(|e| format!("seed {seed} trial {t} damages {damages:?}: {e}"))?;
    }
    Ok(stats)
}
