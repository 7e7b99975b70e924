//! The fuzz target's entry point on a few thousand deterministic mutations of
//! real bbolt files (stable toolchain stand-in for `cargo fuzz`): no panic,
//! bounded time, and salvage output always checks clean.

use std::time::{Duration, Instant};

use untorn_bbolt::fuzzing::run_all;

use crate::common::*;

/// xorshift64*: deterministic, seedable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8], ps: usize) -> (String, Vec<u8>) {
    let mut d = base.to_vec();
    let pages = d.len() / ps;
    let what = rng.below(6);
    let name = match what {
        0 => {
            let n = 1 + rng.below(8);
            for _ in 0..n {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            format!("flip {n} bits")
        }
        1 => {
            let p = rng.below(pages);
            let off = p * ps + rng.below(64);
            d[off] ^= 1 << rng.below(8);
            format!("flip a header/element bit of page {p}")
        }
        2 => {
            let off = rng.below(d.len());
            let len = 1 + rng.below(2 * ps);
            let end = (off + len).min(d.len());
            d[off..end].fill(0);
            format!("zero {off}..{end}")
        }
        3 => {
            let (a, b) = (rng.below(pages), rng.below(pages));
            let src = d[a * ps..(a + 1) * ps].to_vec();
            d[b * ps..(b + 1) * ps].copy_from_slice(&src);
            format!("copy page {a} over {b}")
        }
        4 => {
            let p = 2 + rng.below(pages.saturating_sub(2));
            let off = p * ps + 16 + 16 * rng.below(8);
            let v = rng.next().to_le_bytes();
            let end = (off + 8).min(d.len());
            d[off..end].copy_from_slice(&v[..end - off]);
            format!("garbage element word in page {p}")
        }
        _ => {
            let len = rng.below(d.len());
            d.truncate(len);
            format!("truncate to {len}")
        }
    };
    (name, d)
}

fn run_mutations(base: &[u8], ps: usize, n: usize, seed: u64) {
    let mut rng = Rng(seed);
    let clean = run_all(base);
    assert!(
        clean.opened && clean.findings == 0 && clean.writer_clean,
        "{clean:?}"
    );
    let start = Instant::now();
    let mut opened = 0;
    let mut with_findings = 0;
    for i in 0..n {
        let (name, data) = mutate(&mut rng, base, ps);
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
