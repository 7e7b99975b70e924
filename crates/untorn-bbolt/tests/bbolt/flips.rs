//! Single-byte flips over a real bbolt file: salvage never puts a key in a bucket it
//! was not in (what it cannot place goes to `lost+found`), and never panics.
//!
//! `UNTORN_FLIPS=N` runs N flips (default 1,000).

use std::collections::HashSet;

use untorn::fuzzing::Rng;
use untorn_bbolt::{BoltFile, DumpItem, OrphanPolicy, SalvageOptions};

use crate::common::*;

type Path = Vec<Vec<u8>>;

#[test]
fn single_byte_flips_never_misplace_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = make_db(dir.path(), "flips.db", 4096, false) else {
        return;
    };
    let bytes = std::fs::read(&db).unwrap();
    let file = BoltFile::open(&db).unwrap();
    let mut pairs: HashSet<(Path, Vec<u8>)> = HashSet::new();
    let mut buckets: HashSet<Path> = HashSet::new();
    for item in untorn_bbolt::dump(&file) {
        match item.unwrap() {
            DumpItem::Bucket { path, .. } => {
                buckets.insert(path);
            }
            DumpItem::Pair(e) => {
                pairs.insert((e.bucket, e.key));
            }
        }
    }
    let total_keys = pairs.len() as u64;
    let hwm = file.hwm() as usize;
    let n: usize = std::env::var("UNTORN_FLIPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut rng = Rng::new(seed());
    let (mut no_meta, mut damaged, mut to_lost_found, mut keys_lost) = (0u64, 0u64, 0u64, 0u64);
    let mut misplaced: Vec<String> = Vec::new();
    let mut garbled = 0u64;
    for i in 0..n {
        let mut m = bytes.clone();
        // Flip inside the pages in use (metas included).
        let at = rng.index(hwm * 4096);
        let x = (rng.below(255) + 1) as u8;
        m[at] ^= x;
        let Ok(f) = BoltFile::from_bytes(m) else {
            no_meta += 1;
            continue;
        };
        let opts = SalvageOptions {
            orphans: OrphanPolicy::WhenFreelistSynced,
            ..SalvageOptions::default()
        };
        let s = untorn_bbolt::salvage_file(f, &opts).unwrap();
        if !s.report.nothing_lost() {
            damaged += 1;
        }
        if !s.report.lost_and_found.is_empty() {
            to_lost_found += 1;
        }
        let mut kept = 0u64;
        for item in s.items() {
            let bad = match &item {
                DumpItem::Bucket { path, .. } => {
                    path.first().map(Vec::as_slice) != Some(untorn_bbolt::salvage::LOST_AND_FOUND)
                        && !buckets.contains(path)
                        && !path.split_last().is_some_and(|(last, parent)| {
                            pairs.contains(&(parent.to_vec(), last.clone()))
                        })
                }
                DumpItem::Pair(e) => {
                    if e.bucket.first().map(Vec::as_slice)
                        == Some(untorn_bbolt::salvage::LOST_AND_FOUND)
                    {
                        false
                    } else if pairs.contains(&(e.bucket.clone(), e.key.clone())) {
                        kept += 1;
                        false
                    } else if garbled_in_place(&pairs, &e.bucket, &e.key) {
                        // A flip inside a key's bytes that keeps the page's key
                        // order: bbolt has no checksum that could tell.
                        garbled += 1;
                        false
                    } else {
                        true
                    }
                }
            };
            if bad && misplaced.len() < 10 {
                misplaced.push(format!(
                    "flip {i}: byte {at} (page {}, offset {}) ^= {x:#04x}: {item:?}\n{}",
                    at / 4096,
                    at % 4096,
                    s.report
                ));
            }
        }
        keys_lost += total_keys.saturating_sub(kept);
    }
    eprintln!(
        "flips: {n} single-byte flips; {no_meta} left no valid meta; {damaged} salvages lost a subtree; {to_lost_found} used lost+found; {keys_lost} keys not in their bucket in total; {garbled} keys garbled in place (undetectable); {} misplaced",
        misplaced.len()
    );
    assert!(misplaced.is_empty(), "{}", misplaced.join("\n---\n"));
}

/// Whether `key` is an original key of `bucket` with one byte changed.
fn garbled_in_place(pairs: &HashSet<(Path, Vec<u8>)>, bucket: &Path, key: &[u8]) -> bool {
    (0..key.len()).any(|i| {
        (0..=255u8).any(|b| {
            let mut k = key.to_vec();
            k[i] = b;
            b != key[i] && pairs.contains(&(bucket.clone(), k))
        })
    })
}

const fn seed() -> u64 {
    0x5eed_f11b
}
