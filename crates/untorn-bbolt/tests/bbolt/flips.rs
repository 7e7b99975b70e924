//! Single-byte flips over a real bbolt file: salvage never puts a key in a bucket it
//! was not in (what it cannot place goes to `lost+found`), and never panics. A flip
//! inside a key or bucket name that keeps the page's order, or in the size of a leaf's
//! last element, garbles a name in place; bbolt has no checksum that could tell, and the
//! key stays in its own bucket: counted, not a misplacement.
//!
//! `UNTORN_FLIPS=N` runs N flips (default 1,000).

use std::collections::HashSet;

use untorn::unstable::fuzzing::Rng;
use untorn_bbolt::{BoltFile, DumpItem, OrphanPolicy, SalvageOptions};

use crate::common::*;

type Path = Vec<Vec<u8>>;

#[test]
fn single_byte_flips_never_misplace_a_key() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 keys in `alpha`, nested buckets, and `tenants`: 150 sub-buckets and no
    // plain value (the buckets-only rule below bbolt's root).
    let Some(db) = make_db_with(dir.path(), "flips.db", 4096, false, 3000, 150) else {
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
                    if path.first().map(Vec::as_slice)
                        == Some(untorn_bbolt::salvage::LOST_AND_FOUND)
                        || buckets.contains(path)
                    {
                        false
                    } else if original_bucket(&buckets, path).is_some() {
                        // A flip inside a bucket's name that keeps the page's key
                        // order: undetectable, like a garbled key.
                        garbled += 1;
                        false
                    } else {
                        !path.split_last().is_some_and(|(last, parent)| {
                            pairs.contains(&(parent.to_vec(), last.clone()))
                        })
                    }
                }
                DumpItem::Pair(e) => {
                    // Keys of a bucket whose name was garbled in place are checked
                    // against the bucket it was.
                    let bucket = if buckets.contains(&e.bucket) {
                        e.bucket.clone()
                    } else {
                        original_bucket(&buckets, &e.bucket).unwrap_or_else(|| e.bucket.clone())
                    };
                    if e.bucket.first().map(Vec::as_slice)
                        == Some(untorn_bbolt::salvage::LOST_AND_FOUND)
                    {
                        false
                    } else if pairs.contains(&(bucket.clone(), e.key.clone())) {
                        kept += 1;
                        false
                    } else if garbled_in_place(&pairs, &bucket, &e.key)
                        || grown_in_place(&pairs, &bucket, &e.key)
                    {
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
        "flips: {n} single-byte flips; {no_meta} left no valid meta; {damaged} salvages lost a subtree; {to_lost_found} used lost+found; {keys_lost} keys not in their bucket in total; {garbled} keys or bucket names garbled in place in their own bucket (undetectable); {} misplaced",
        misplaced.len()
    );
    assert!(misplaced.is_empty(), "{}", misplaced.join("\n---\n"));
}

/// The original bucket path of `path` when one byte of one of its names was changed
/// (a flip inside a bucket name).
fn original_bucket(buckets: &HashSet<Path>, path: &Path) -> Option<Path> {
    for (n, name) in path.iter().enumerate() {
        for i in 0..name.len() {
            for b in 0..=255u8 {
                if b == name[i] {
                    continue;
                }
                let mut p = path.clone();
                p[n][i] = b;
                if buckets.contains(&p) {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// Whether `key` is an original key of `bucket` grown at its end: a flip in the size of
/// a leaf's last element (no element after it to contradict the size) reads the bytes
/// after the key as part of it. The key stays in its bucket under a longer name.
fn grown_in_place(pairs: &HashSet<(Path, Vec<u8>)>, bucket: &Path, key: &[u8]) -> bool {
    (1..key.len()).any(|n| pairs.contains(&(bucket.clone(), key[..n].to_vec())))
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
