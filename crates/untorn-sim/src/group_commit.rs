//! Group commit (`Database::batch`) under crashes: several threads each issue a sequence
//! of batch calls (thread `t`'s call `i` puts key `(t, i)`), the power fails at a
//! seeded operation, and after the reopen every thread's keys must be exactly a prefix
//! `0..k` of its calls with `acknowledged ≤ k ≤ issued`, values exact.
//!
//! Thread scheduling makes these runs not bit-reproducible; the seed still fixes the
//! crash point and the fault flags.

use std::sync::Arc;

use untorn::Error;

use crate::config::{builder, open_db, open_with};
use crate::disk::{FaultConfig, SimDisk};
use untorn::unstable::fuzzing::Rng;

const BUCKET: &[u8] = b"batch";
const THREADS: u64 = 4;
const CALLS_PER_THREAD: u64 = 24;

fn key(t: u64, i: u64) -> Vec<u8> {
    let mut k = t.to_be_bytes().to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Thread 0's every fifth call fails inside its closure: the batch it joined is aborted
/// and every other closure is retried on its own (the failing caller gets its error).
fn fails(t: u64, i: u64) -> bool {
    t == 0 && i % 5 == 4
}

fn value(t: u64, i: u64) -> Vec<u8> {
    let mut v = vec![0u8; 24 + ((t * 31 + i * 7) % 300) as usize];
    Rng::derive(t << 32 | i, 0x6261_7463).fill(&mut v);
    v
}

/// One seed: returns the number of batch calls acknowledged before the crash.
pub fn run_seed(seed: u64) -> Result<u64, String> {
    let mut rng = Rng::derive(seed, 700);
    let disk = SimDisk::new(FaultConfig::default());
    // Create on a perfect disk, then arm the crash point.
    drop(open_db(&disk, 32 * 1024).map_err(|e| format!("create: {e}"))?);
    disk.shutdown();
    let db = Arc::new(open_db(&disk, 32 * 1024).map_err(|e| format!("open: {e}"))?);
    disk.set_faults(FaultConfig {
        seed,
        crash_at_op: Some(rng.below(120)),
        torn: rng.coin(),
        reorder: rng.coin(),
        ..FaultConfig::default()
    });
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let db = Arc::clone(&db);
        handles.push(std::thread::spawn(move || -> (u64, Option<String>) {
            let mut acked = 0;
            for i in 0..CALLS_PER_THREAD {
                let r = db.batch(move |tx| {
                    let b = tx.create_bucket_if_not_exists(BUCKET)?;
                    if fails(t, i) {
                        return Err(Error::InvalidArgument(format!("call {t}/{i} fails")));
                    }
                    b.put(key(t, i), value(t, i))
                });
                match r {
                    Ok(()) if fails(t, i) => {
                        return (
                            acked,
                            Some(format!("thread {t} call {i}: failing closure returned Ok")),
                        )
                    }
                    Err(Error::InvalidArgument(_)) if fails(t, i) => acked = i + 1,
                    Ok(()) => acked = i + 1,
                    Err(Error::Io(_) | Error::Poisoned | Error::CommitOutcomeUnknown { .. }) => {
                        return (acked, None)
                    }
                    Err(e) => return (acked, Some(format!("thread {t} call {i}: {e}"))),
                }
            }
            (acked, None)
        }));
    }
    let mut acked = Vec::new();
    for h in handles {
        let (a, err) = h.join().map_err(|_| "a batch thread panicked".to_owned())?;
        if let Some(e) = err {
            return Err(e);
        }
        acked.push(a);
    }
    drop(db);
    disk.crash();
    disk.set_faults(FaultConfig::default());
    let db = match open_db(&disk, 32 * 1024) {
        Ok(db) => db,
        // A reordered crash can leave a complete record of a commit in flight whose images
        // did not all land: its way out is a rollback, and the checks below prove that
        // no acknowledged call was lost by it.
        Err(Error::JournalRecordDamaged { .. }) => open_with(
            &disk,
            builder(&disk, 32 * 1024).recovery(untorn::Recovery::RollbackToLastGood),
        )
        .map_err(|e| format!("reopen with rollback after crash: {e}"))?,
        Err(e) => return Err(format!("reopen after crash: {e}")),
    };
    let rtx = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
    let bucket = rtx.bucket(BUCKET).map_err(|e| format!("bucket: {e}"))?;
    let mut present = vec![0u64; THREADS as usize];
    if let Some(b) = bucket {
        for item in b.iter().map_err(|e| format!("iter: {e}"))? {
            let (k, v) = item.map_err(|e| format!("iter: {e}"))?;
            let (t, i) = match (k.get(..8), k.get(8..16)) {
                (Some(a), Some(b)) if k.len() == 16 => {
                    let mut x = [0u8; 8];
                    let mut y = [0u8; 8];
                    x.copy_from_slice(a);
                    y.copy_from_slice(b);
                    (u64::from_be_bytes(x), u64::from_be_bytes(y))
                }
                _ => return Err(format!("WRONG DATA: unexpected key {k:?}")),
            };
            let Some(next) = present.get_mut(t as usize) else {
                return Err(format!("WRONG DATA: key of thread {t}"));
            };
            // Failing calls never leave a key: skip them in the expected sequence.
            while fails(t, *next) {
                *next += 1;
            }
            if fails(t, i) {
                return Err(format!("thread {t}: the failing call {i} left its key"));
            }
            if i != *next {
                return Err(format!(
                    "thread {t}: key {i} present but {next} is missing (not a prefix)"
                ));
            }
            if v.as_ref() != value(t, i).as_slice() {
                return Err(format!("WRONG DATA: thread {t} call {i}"));
            }
            *next += 1;
        }
    }
    for (t, (p, a)) in present.iter_mut().zip(&acked).enumerate() {
        // A trailing failing call counts as done when the one before it is present.
        while *p < *a && fails(t as u64, *p) {
            *p += 1;
        }
        let (p, a) = (&*p, a);
        if p < a {
            return Err(format!(
                "LOST COMMIT: thread {t} had {a} batch calls acknowledged, {p} survived"
            ));
        }
        // A thread has at most one call in flight.
        if *p > a + 1 {
            return Err(format!(
                "thread {t}: {p} calls present, only {} issued",
                a + 1
            ));
        }
    }
    Ok(acked.iter().sum())
}
