//! The recovery fuzz target's entry point (`fuzz/fuzz_targets/recovery.rs`) and its
//! fixture: a valid data file whose database has commits in its journal, the journal, and
//! the journal of *another* database. The input is a journal beside the valid data file:
//! arbitrary bytes, edits of the valid journal, or edits of the foreign one.
//!
//! Whatever the input, opening (read-only, read-write, with and without rollback) never
//! panics, never applies a record of another database, and either recovers the state
//! after one of the fixture's commits (a committed prefix) or returns a typed error
//! (never `Error::Internal`, which means a bug).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use super::{read_all, Row};
use crate::error::Error;
use crate::recovery::Recovery;
use crate::storage::{MemoryStorage, Storage};
use crate::Database;

/// The valid database the fuzz inputs are judged against.
#[derive(Debug)]
pub struct Fixture {
    /// The data file (a checkpoint, then commits only in the journal; a crash).
    pub data: Vec<u8>,
    /// Its journal.
    pub journal: Vec<u8>,
    /// The journal of another database (other id, other keys).
    pub foreign_journal: Vec<u8>,
    /// The rows after each of the fixture's commits, by txid.
    pub states: BTreeMap<u64, BTreeSet<Row>>,
}

fn crashed_database(
    seed: u64,
    keys: &str,
    states: &mut BTreeMap<u64, BTreeSet<Row>>,
) -> (Vec<u8>, Vec<u8>) {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let Ok(db) = Database::builder()
        .deterministic_ids(seed)
        .checkpoint_threshold_bytes(1 << 30)
        .open_storage(
            Arc::new(data.clone()) as Arc<dyn Storage>,
            Arc::new(journal.clone()) as Arc<dyn Storage>,
            true,
        )
    else {
        return (Vec::new(), Vec::new());
    };
    let mut record = |db: &Database| {
        if let (Ok(rows), Ok(tx)) = (read_all(db), db.begin_read()) {
            states.insert(tx.txid(), rows.into_iter().collect());
        }
    };
    record(&db);
    let _: crate::Result<()> = db.update(|tx| {
        let b = tx.create_bucket_if_not_exists("fz")?;
        for i in 0..10u8 {
            b.put(format!("{keys}-base{i}"), [i; 40])?;
        }
        Ok(())
    });
    record(&db);
    let _ = db.checkpoint();
    for i in 0..6u8 {
        let _: crate::Result<()> = db.update(|tx| {
            let b = tx.create_bucket_if_not_exists("fz")?;
            b.put(format!("{keys}-j{i}"), vec![i; 100 + 700 * usize::from(i)])?;
            if i == 2 {
                b.delete(format!("{keys}-base3"))?;
            }
            if i == 4 {
                b.create_bucket_if_not_exists("nested")?.put("n", "v")?;
            }
            Ok(())
        });
        record(&db);
    }
    // A crash: no clean close.
    std::mem::forget(db);
    (data.to_vec(), journal.to_vec())
}

/// The fixture, built once per process (deterministic ids: the same bytes every run).
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut states = BTreeMap::new();
        let (data, journal) = crashed_database(0xF022, "mine", &mut states);
        let mut other = BTreeMap::new();
        let (_, foreign_journal) = crashed_database(0xF023, "other", &mut other);
        Fixture {
            data,
            journal,
            foreign_journal,
            states,
        }
    })
}

/// Builds the journal an input stands for. Byte 0 chooses: 0 the rest is the journal;
/// 1 the rest edits the valid journal, 2 the foreign one, 3 the valid one with the
/// foreign one spliced in from the first edit's offset. Edits are 4-byte groups: a
/// big-endian 24-bit offset (modulo the length) and a byte XORed there; a first edit whose
/// byte is 0xFF truncates the journal at its offset instead.
pub fn journal_for(input: &[u8], f: &Fixture) -> Vec<u8> {
    let (mode, rest) = match input.split_first() {
        Some((m, r)) => (*m % 4, r),
        None => return Vec::new(),
    };
    let mut j = match mode {
        0 => return rest.to_vec(),
        1 => f.journal.clone(),
        2 => f.foreign_journal.clone(),
        _ => {
            // The valid journal with the foreign one's bytes from the first edit's offset.
            let mut j = f.journal.clone();
            let at = rest
                .get(..3)
                .map_or(0, |b| {
                    b.iter().fold(0usize, |a, x| a << 8 | usize::from(*x))
                })
                .checked_rem(j.len().max(1))
                .unwrap_or(0);
            if let (Some(dst), Some(src)) = (j.get_mut(at..), f.foreign_journal.get(at..)) {
                let n = dst.len().min(src.len());
                if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
                    d.copy_from_slice(s);
                }
            }
            j
        }
    };
    for (i, e) in rest.chunks_exact(4).enumerate() {
        let off = e
            .iter()
            .take(3)
            .fold(0usize, |a, x| a << 8 | usize::from(*x));
        let value = e.get(3).copied().unwrap_or(0);
        if j.is_empty() {
            break;
        }
        let at = off % j.len();
        if i == 0 && value == 0xFF {
            j.truncate(at);
        } else if let Some(b) = j.get_mut(at) {
            *b ^= value;
        }
    }
    j
}

/// Judges one opened database: its rows are the state after one of the fixture's
/// commits; a write on top does not panic.
fn judge(db: &Database, f: &Fixture, how: &str) -> Result<(), String> {
    let rows: BTreeSet<Row> = match read_all(db) {
        Ok(r) => r.into_iter().collect(),
        // A damaged page found while reading is an error, never wrong data.
        Err(e) if e.is_corruption() => return Ok(()),
        Err(e) => return Err(format!("{how}: reading failed with {e}")),
    };
    if !f.states.values().any(|s| *s == rows) {
        let foreign = rows.iter().any(|(_, k, _)| k.starts_with(b"other"));
        return Err(format!(
            "{how}: opened at a state that is no committed prefix ({} rows{})",
            rows.len(),
            if foreign {
                ", some of ANOTHER DATABASE"
            } else {
                ""
            }
        ));
    }
    Ok(())
}

fn typed(e: &Error, how: &str) -> Result<(), String> {
    match e {
        Error::Internal(m) => Err(format!("{how}: internal error (a bug): {m}")),
        _ => Ok(()),
    }
}

/// The entry point: opens the fixture's data file beside the journal `input` stands for,
/// read-only and read-write, strictly and with a rollback.
pub fn recovery_entry(input: &[u8]) -> Result<(), String> {
    let f = fixture();
    let journal = journal_for(input, f);
    for (how, read_only, recovery) in [
        ("read-only", true, Recovery::Strict),
        ("read-write", false, Recovery::Strict),
        ("read-only rollback", true, Recovery::RollbackToLastGood),
        ("read-write rollback", false, Recovery::RollbackToLastGood),
    ] {
        let opened = Database::builder()
            .read_only(read_only)
            .recovery(recovery)
            .cache_size_bytes(1 << 20)
            .deterministic_ids(1)
            .open_storage(
                Arc::new(MemoryStorage::from_bytes(f.data.clone())) as Arc<dyn Storage>,
                Arc::new(MemoryStorage::from_bytes(journal.clone())) as Arc<dyn Storage>,
                false,
            );
        match opened {
            Ok(db) => {
                judge(&db, f, how)?;
                if !read_only {
                    let _: crate::Result<()> =
                        db.update(|tx| tx.create_bucket_if_not_exists("fz")?.put("k", "v"));
                }
            }
            Err(e) => typed(&e, how)?,
        }
    }
    Ok(())
}
