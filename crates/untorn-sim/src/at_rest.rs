//! At-rest damage: a quiescent database whose data file and journal get random bit flips
//! and zeroed sectors between runs. Every read must return the right value or
//! `Error::Corrupted` naming the page — never a wrong value, never a panic.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use untorn::unstable::format::{RecordHeader, RecordKind};
use untorn::{Error, ReadTx};

use crate::config::{open_db, DATA_FILE, JOURNAL_FILE};
use crate::disk::{Damage, FaultConfig, SimDisk};
use crate::oracle::{apply_op, engine_check, scan_snapshot, ScanError};
use crate::summary::panic_message;
use untorn::unstable::fuzzing::model::{random_op, Model};
use untorn::unstable::fuzzing::Rng;

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
    /// Trials that damaged only the journal, in a record followed by an intact last one.
    pub middle_record_damaged: u64,
}

impl AtRestStats {
    /// Adds another run's counters.
    pub fn add(&mut self, o: &AtRestStats) {
        self.trials += o.trials;
        self.open_refused += o.open_refused;
        self.reads_corrupted += o.reads_corrupted;
        self.reads_right += o.reads_right;
        self.rolled_back += o.rolled_back;
        self.middle_record_damaged += o.middle_record_damaged;
    }
}

const THRESHOLD_BYTES: u64 = 256 * 1024;

/// Builds a quiescent database (some commits checkpointed home, some only in the
/// journal) and returns the disk and the model of every commit.
fn build(seed: u64) -> Result<(SimDisk, BTreeMap<u64, Model>, u64), String> {
    let disk = SimDisk::new(FaultConfig {
        seed,
        ..FaultConfig::default()
    });
    let db = open_db(&disk, THRESHOLD_BYTES).map_err(|e| format!("create: {e}"))?;
    let mut rng = Rng::derive(seed, 500);
    let mut history = BTreeMap::new();
    let mut model = Model::default();
    let mut last = db
        .begin_read()
        .map_err(|e| format!("begin_read: {e}"))?
        .txid();
    history.insert(last, model.clone());
    let mut tag = seed << 32;
    let commits = rng.range_inclusive(6, 20);
    for c in 0..commits {
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
        // Checkpoint now and then, but never in the last few commits, so the journal
        // holds several records when the run ends like a kill.
        if rng.below(4) == 0 && c + 4 < commits {
            db.checkpoint().map_err(|e| format!("checkpoint: {e}"))?;
        }
    }
    if rng.coin() {
        // Killed: the power goes while the handle is open, so the journal keeps its
        // records (no checkpoint on close).
        disk.shutdown();
        drop(db);
    } else {
        drop(db);
        disk.shutdown();
    }
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

/// The commit records of the journal's current generation in an undamaged journal:
/// (start, end) of each record (every byte of it is covered by a checksum). Bounded by
/// the journal length.
fn journal_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0usize;
    let mut salt = None;
    while let Some(h) = bytes.get(off..).and_then(RecordHeader::decode) {
        if *salt.get_or_insert(h.salt) != h.salt {
            break;
        }
        let next = off + usize::try_from(h.record_len()).unwrap_or(usize::MAX / 2);
        if h.kind == RecordKind::Commit {
            out.push((off, next));
        }
        if next <= off || next > bytes.len() {
            break;
        }
        off = next;
    }
    out
}

/// Whether only the journal was damaged, inside a record that is followed by an intact
/// last record: recovery must then report corruption, not cut the journal there.
fn damaged_record_before_intact_last(original: &[u8], damaged: &[u8], data_changed: bool) -> bool {
    if data_changed {
        return false;
    }
    let records = journal_records(original);
    let Some(((last_start, last_end), earlier)) = records.split_last() else {
        return false;
    };
    let differs = |a: usize, b: usize| original.get(a..b) != damaged.get(a..b);
    !differs(*last_start, *last_end) && earlier.iter().any(|(a, b)| differs(*a, *b))
}

fn trial(
    disk: &SimDisk,
    history: &BTreeMap<u64, Model>,
    last: u64,
    middle_record_damaged: bool,
    stats: &mut AtRestStats,
) -> Result<(), String> {
    let db = match open_db(disk, THRESHOLD_BYTES) {
        Ok(db) if middle_record_damaged => {
            let txid = db.begin_read().map(|r| r.txid());
            return Err(format!(
                "a damaged journal record followed by an intact one was not reported as corruption (opened at txid {txid:?}, last commit {last}, recovery {:?})",
                db.recovery_report()
            ));
        }
        Ok(db) => db,
        // Detected damage: corruption, or a typed refusal that names what a rollback
        // would discard (a damaged meta nothing proves older, a damaged journal record).
        Err(e @ (Error::Corrupted { .. } | Error::NotADatabase(_))) | Err(e)
            if e.is_corruption() || e.needs_rollback() || matches!(e, Error::NotADatabase(_)) =>
        {
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
        // Rolling back to an earlier intact commit must say so (repair ladder step 2).
        let report = db.recovery_report();
        if report.meta_fallback.is_none()
            && report.bytes_discarded == 0
            && report.damaged_record.is_none()
        {
            return Err(format!(
                "opened at txid {txid} < last commit {last} without reporting a meta fallback or discarded journal bytes: {report:?}"
            ));
        }
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
    // Check must see the damage the reads hit (it walks the same snapshot).
    match engine_check(&db) {
        Ok(None) if corrupted => Err(format!(
            "check reports a clean database at txid {txid} although reads hit Corrupted"
        )),
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
        drop(rtx);
        match engine_check(&db) {
            Ok(None) => {}
            Ok(Some(f)) => return Err(format!("seed {seed}: undamaged: check: {f}")),
            Err(e) => return Err(format!("seed {seed}: undamaged: check failed: {e}")),
        }
    }
    let mut rng = Rng::derive(seed, 600);
    let journal = disk.durable_bytes(JOURNAL_FILE);
    let data = disk.durable_bytes(DATA_FILE);
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
        let middle = damaged_record_before_intact_last(
            &journal,
            &copy.durable_bytes(JOURNAL_FILE),
            copy.durable_bytes(DATA_FILE) != data,
        );
        stats.middle_record_damaged += u64::from(middle);
        let r = catch_unwind(AssertUnwindSafe(|| {
            trial(&copy, &history, last, middle, &mut stats)
        }));
        stats.trials += 1;
        let r = r.unwrap_or_else(|p| Err(format!("panic: {}", panic_message(&p))));
        r.map_err(|e| format!("seed {seed} trial {t} damages {damages:?}: {e}"))?;
    }
    Ok(stats)
}
