//! Stable stand-in for the fuzzer (the toolchain here is stable-only): thousands of
//! mutations of a valid database through the same entry point as the `open_read` fuzz
//! target. Nothing may panic, and whatever reads succeed must return the original data:
//! damage is an error, never different bytes.

use std::collections::BTreeSet;

use crate::common::MemDb;
use untorn::unstable::fuzzing::{mutate, open_and_read, Rng, Row};
use untorn::Database;

fn sample_db() -> (Vec<u8>, Vec<u8>, Vec<Row>) {
    let m = MemDb::new();
    let db = m.open(Database::builder()).unwrap();
    db.update(|tx| -> untorn::Result<_> {
        let a = tx.create_bucket("alpha")?;
        for i in 0..300u32 {
            a.put(
                format!("key{i:05}"),
                format!("value-{i}-{}", "z".repeat((i % 40) as usize)),
            )?;
        }
        a.put("big", vec![9u8; 9000])?;
        let n = a.create_bucket("nested")?;
        for i in 0..50u32 {
            n.put(i.to_be_bytes(), [i as u8; 30])?;
        }
        tx.create_bucket("beta")?.put("only", "one")?;
        Ok(())
    })
    .unwrap();
    let rows = untorn::unstable::fuzzing::read_all(&db).unwrap();
    // Leave one commit in the journal so the journal path is mutated too.
    db.update(|tx| tx.bucket("beta")?.unwrap().put("late", "commit"))
        .unwrap();
    let mut rows2 = untorn::unstable::fuzzing::read_all(&db).unwrap();
    rows2.sort();
    let d = m.data.to_vec();
    let j = m.journal.to_vec();
    std::mem::forget(db);
    let _ = rows;
    (d, j, rows2)
}

#[test]
fn mutated_files_never_panic_or_return_wrong_data() {
    let (data, journal, truth) = sample_db();
    assert!(!journal.is_empty());
    let truth_set: BTreeSet<Row> = truth.iter().cloned().collect();
    let mut rng = Rng::new(0x1234_5678_9abc_def1);
    let mut opened = 0;
    let iterations = 3000;
    for it in 0..iterations {
        let mut d = data.clone();
        let mut j = journal.clone();
        let target_journal = rng.index(4) == 0;
        let buf = if target_journal { &mut j } else { &mut d };
        mutate(&mut rng, buf, 4096);
        if let Some(Ok(rows)) = open_and_read(&d, &j) {
            opened += 1;
            // Either the whole committed state, or an older committed prefix (a torn
            // journal tail / meta fallback); never a row that was not written.
            for r in &rows {
                let ok = truth_set.contains(r);
                assert!(
                    ok,
                    "iteration {it}: read a row that was never written: {r:?}"
                );
            }
        }
    }
    assert!(
        opened > iterations / 10,
        "most mutations still open ({opened})"
    );
    // Pure garbage.
    for _ in 0..300 {
        let n = rng.index(20000);
        let g: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
        let _ = open_and_read(&g, &[]);
        let _ = open_and_read(&data[..8192.min(data.len())], &g);
    }
}

/// The recovery fuzz target's stable counterpart (CI runs it in `cargo test`; the
/// cargo-fuzz target `recovery` explores further): arbitrary journals, mutated valid
/// journals, edited foreign journals and splices of both beside a valid data file. Every
/// open recovers a committed prefix or returns a typed error, never another database's
/// rows, never a panic.
#[test]
fn recovery_fuzz_entry_on_arbitrary_and_mutated_journals() {
    use untorn::unstable::fuzzing::recovery::{fixture, recovery_entry};
    let f = fixture();
    assert!(f.states.len() >= 8, "{} states", f.states.len());
    assert!(!f.journal.is_empty() && !f.foreign_journal.is_empty());
    // The valid journal, the foreign one and nothing at all.
    for input in [&[1u8][..], &[2], &[0]] {
        recovery_entry(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    }
    let mut rng = Rng::new(0x005e_ed0f_0009);
    for it in 0..1200 {
        let mode = rng.index(4) as u8;
        let mut input = vec![mode];
        if mode == 0 {
            if rng.coin() {
                let mut j = f.journal.clone();
                for _ in 0..1 + rng.index(3) {
                    mutate(&mut rng, &mut j, 512);
                }
                input.extend_from_slice(&j);
            } else {
                let n = rng.index(4096);
                input.extend((0..n).map(|_| rng.byte()));
            }
        } else {
            let len = f.journal.len().max(1);
            for _ in 0..1 + rng.index(6) {
                // Offsets mostly inside the records (the first few kilobytes).
                let off = if rng.coin() {
                    rng.index(len.min(40_000))
                } else {
                    rng.index(len)
                };
                input.extend_from_slice(&[(off >> 16) as u8, (off >> 8) as u8, off as u8]);
                input.push(if rng.index(20) == 0 {
                    0xFF
                } else {
                    1 << rng.index(8)
                });
            }
        }
        recovery_entry(&input).unwrap_or_else(|e| {
            panic!(
                "iteration {it} (input {} bytes, mode {mode}): {e}",
                input.len()
            )
        });
    }
}
