//! The fuzz target's entry point on a few thousand deterministic mutations of
//! real bbolt files (stable toolchain stand-in for `cargo fuzz`): no panic,
//! bounded time, and salvage output always checks clean.

use std::time::{Duration, Instant};

use untorn::unstable::fuzzing::{mutate, Rng};
use untorn_bbolt::fuzzing::run_all;

use crate::common::*;

fn run_mutations(base: &[u8], ps: usize, n: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let clean = run_all(base);
    assert!(
        clean.opened && clean.findings == 0 && clean.writer_clean,
        "{clean:?}"
    );
    let start = Instant::now();
    let mut opened = 0;
    let mut with_findings = 0;
    for i in 0..n {
        let mut data = base.to_vec();
        let name = mutate(&mut rng, &mut data, ps);
        let t = Instant::now();
        let out = std::panic::catch_unwind(|| run_all(&data))
            .unwrap_or_else(|_| panic!("mutation {i} ({name}) panicked"));
        assert!(
            out.writer_clean,
            "mutation {i} ({name}): salvage output does not check clean"
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "mutation {i} ({name}) took {:?}",
            t.elapsed()
        );
        opened += usize::from(out.opened);
        with_findings += usize::from(out.findings > 0);
    }
    // The mutations must actually exercise the checker.
    assert!(opened > n / 2, "only {opened} of {n} mutations opened");
    assert!(
        with_findings > n / 10,
        "only {with_findings} of {n} mutations had findings"
    );
    assert!(start.elapsed() < Duration::from_secs(240));
}

#[test]
fn mutations_of_real_bbolt_file_4096() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = make_db_n(dir.path(), "m.db", 4096, false, 400) else {
        return;
    };
    let base = std::fs::read(&db).unwrap();
    // Only the pages bbolt uses (the rest of the file is zeros).
    let hwm = untorn_bbolt::BoltFile::open(&db).unwrap().hwm() as usize;
    run_mutations(&base[..hwm * 4096], 4096, 1500, 0x9E37_79B9_7F4A_7C15);
}

#[test]
fn mutations_of_real_bbolt_file_8192_nofreelistsync() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = make_db_n(dir.path(), "m.db", 8192, true, 400) else {
        return;
    };
    let base = std::fs::read(&db).unwrap();
    let hwm = untorn_bbolt::BoltFile::open(&db).unwrap().hwm() as usize;
    run_mutations(&base[..hwm * 8192], 8192, 1500, 0xD1B5_4A32_D192_ED03);
}
