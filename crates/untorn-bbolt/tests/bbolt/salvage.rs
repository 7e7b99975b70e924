//! Salvage of damaged real bbolt files: real bbolt's Check() passes on the output
//! and it holds every key of every surviving leaf.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use untorn_bbolt::{BoltFile, OrphanPolicy, PageBody, SalvageOptions};

use crate::common::*;
use crate::damage::{alpha_fixture, cycle_fixture, patch};

/// `P` lines of a dump (path, key, value).
fn pairs(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("P "))
        .cloned()
        .collect()
}

/// Pair lines of the keys stored on leaf `page` of top-level bucket `bucket`.
fn leaf_pairs(file: &BoltFile, page: u64, bucket: &[u8]) -> BTreeSet<String> {
    let PageBody::Leaf(elems) = untorn_bbolt::page(file, page).unwrap().body else {
        panic!("page {page} is not a leaf")
    };
    elems
        .iter()
        .map(|(_, k, v)| format!("P {} {} {}", hex(bucket), hex(k), hex(v)))
        .collect()
}

fn bbolt_checks_clean(db: &Path) {
    go_check(db).unwrap_or_else(|e| panic!("bbolt Check() on salvaged file: {e}"));
    if let Some(bench) = bboltbench() {
        let out = Command::new(bench)
            .args(["-op", "check", "-timeout", "20", "-db"])
            .arg(db)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && s.contains("\"ok\":true"),
            "bboltbench check: {s}"
        );
    }
    let r = untorn_bbolt::check(db, 10).unwrap();
    assert_eq!(r.findings, vec![]);
}

/// Salvages `db` and returns the salvaged pairs.
fn salvage(db: &Path, opts: &SalvageOptions) -> (BTreeSet<String>, untorn_bbolt::SalvageReport) {
    let out = db.with_extension("salvaged");
    let report = untorn_bbolt::salvage(db, &out, opts).unwrap();
    bbolt_checks_clean(&out);
    let src = BoltFile::open(db).unwrap();
    let dst = BoltFile::open(&out).unwrap();
    assert_eq!(dst.page_size(), src.page_size());
    assert_eq!(dst.meta().no_freelist_sync(), src.meta().no_freelist_sync());
    let got = pairs(&go_dump(&out));
    assert_eq!(got.len() as u64, report.keys_recovered);
    (got, report)
}

#[test]
fn salvage_cycle_pgid_recovers_everything_via_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let Some(bench) = bboltbench() else { return };
    if fixture_bin().is_none() {
        return;
    }
    let _ = bench;
    let Some((db, v)) = cycle_fixture(dir.path(), "pgid") else {
        return;
    };
    // The element rewrite loses no leaf: the old child is an orphan in a hole.
    let clean = dir.path().join("clean.db");
    let (got, report) = salvage(&db, &SalvageOptions::default());
    assert_eq!(report.lost.len(), 1, "{report}");
    assert_eq!(report.lost[0].page, v["ancestor_page"].as_u64().unwrap());
    assert!(!report.orphan_pages_used.is_empty(), "{report}");
    assert!(report.orphan_keys > 0);
    // Compare with a fresh load of the same keys (same seed): every key is back.
    let out = Command::new(bboltbench().unwrap())
        .args(["-op", "load", "-n", "30000", "-db"])
        .arg(&clean)
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected = pairs(&go_dump(&clean));
    assert_eq!(got, expected);
    // Without orphans the subtree's keys are missing, but the output is still clean.
    let (tree_only, r2) = salvage(
        &db,
        &SalvageOptions {
            orphans: OrphanPolicy::Never,
            ..Default::default()
        },
    );
    assert!(r2.orphan_pages_used.is_empty());
    assert!(tree_only.len() < expected.len());
    assert!(tree_only.is_subset(&expected));
}

#[test]
fn salvage_cycle_copy_loses_only_the_overwritten_leaf() {
    let dir = tempfile::tempdir().unwrap();
    if fixture_bin().is_none() {
        return;
    }
    let Some(bench) = bboltbench() else { return };
    let clean = dir.path().join("clean.db");
    let out = Command::new(&bench)
        .args(["-op", "load", "-n", "30000", "-db"])
        .arg(&clean)
        .output()
        .unwrap();
    assert!(out.status.success());
    let Some((db, v)) = cycle_fixture(dir.path(), "copy") else {
        return;
    };
    let overwritten = v["old_pgid"].as_u64().unwrap();
    let expected = pairs(&go_dump(&clean));
    let lost = leaf_pairs(&BoltFile::open(&clean).unwrap(), overwritten, b"bench");
    assert!(!lost.is_empty());
    let (got, report) = salvage(&db, &SalvageOptions::default());
    assert!(
        report.lost.iter().any(|l| l.page == overwritten),
        "{report}"
    );
    let surviving: BTreeSet<String> = expected.difference(&lost).cloned().collect();
    assert!(got.is_superset(&surviving));
    assert!(got.is_subset(&expected));
}

/// Damages one leaf of `alpha` with `damage`, salvages, and checks that every
/// key except that leaf's is back (and nothing that was not there).
fn leaf_damage(damage: impl FnOnce(&Path, u64, u64, &[(Vec<u8>, u64)]) -> Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, branch, children)) = alpha_fixture(dir.path()) else {
        return;
    };
    let before = pairs(&go_dump(&db));
    let file = BoltFile::open(&db).unwrap();
    let snapshot: Vec<(u64, BTreeSet<String>)> = children
        .iter()
        .map(|(_, id)| (*id, leaf_pairs(&file, *id, b"alpha")))
        .collect();
    drop(file);
    let damaged_leaf = damage(&db, branch, 4096, &children);
    let (got, report) = salvage(&db, &SalvageOptions::default());
    let mut surviving = before.clone();
    if let Some(leaf) = damaged_leaf {
        let lost = &snapshot.iter().find(|(id, _)| *id == leaf).unwrap().1;
        surviving = surviving.difference(lost).cloned().collect();
        assert!(!report.lost.is_empty(), "{report}");
    }
    let missing: Vec<_> = surviving.difference(&got).take(3).collect();
    assert!(missing.is_empty(), "missing {missing:?}\n{report}");
    // Nothing invented: every recovered pair existed before, except the damaged
    // leaf's rewritten key (none of our damages keep a changed key).
    assert!(got.is_subset(&before), "{report}");
}

#[test]
fn salvage_page_id_mismatch() {
    leaf_damage(|db, _, ps, children| {
        let leaf = children[2].1;
        patch(db, leaf * ps, &(leaf + 7).to_le_bytes());
        Some(leaf)
    });
}

#[test]
fn salvage_zeroed_page() {
    leaf_damage(|db, _, ps, children| {
        let leaf = children[1].1;
        patch(db, leaf * ps, &vec![0u8; ps as usize]);
        Some(leaf)
    });
}

#[test]
fn salvage_double_reference_recovers_both() {
    // Element 1 points at element 2's page: the old element-1 child is an orphan
    // in the hole; the shared page is used at its right position.
    leaf_damage(|db, branch, ps, children| {
        patch(db, branch * ps + 16 + 16 + 8, &children[2].1.to_le_bytes());
        None
    });
}

#[test]
fn salvage_freelist_disagreeing() {
    leaf_damage(|db, _, ps, children| {
        let file = BoltFile::open(db).unwrap();
        let fl = file.meta().freelist;
        let view = untorn_bbolt::page(&file, fl).unwrap();
        let start = if view.header.count == 0xFFFF { 24 } else { 16 };
        patch(db, fl * ps + start, &children[0].1.to_le_bytes());
        None
    });
}

#[test]
fn salvage_newest_meta_corrupt_uses_older() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, _)) = alpha_fixture(dir.path()) else {
        return;
    };
    let newest = BoltFile::open(&db).unwrap().active_index() as u64;
    patch(&db, newest * 4096 + 16 + 48, &[0xAB]);
    // bbolt itself now reads the older meta; salvage must give exactly that.
    let theirs = pairs(&go_dump(&db));
    let (got, report) = salvage(&db, &SalvageOptions::default());
    assert!(report.meta_fallback);
    assert_eq!(report.meta_used as u64, 1 - newest);
    assert_eq!(got, theirs);
}

#[test]
fn salvage_nofreelistsync_8192_healthy_is_identity() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = make_db(dir.path(), "n.db", 8192, true) else {
        return;
    };
    let (_, report) = salvage(&db, &SalvageOptions::default());
    assert!(report.nothing_lost());
    let out = db.with_extension("salvaged");
    assert_eq!(go_dump(&out), go_dump(&db));
}

#[test]
fn salvaged_items_match_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = make_db(dir.path(), "i.db", 4096, false) else {
        return;
    };
    let s = untorn_bbolt::salvage_entries(&db, &SalvageOptions::default()).unwrap();
    let file = BoltFile::open(&db).unwrap();
    let ours: Vec<_> = untorn_bbolt::dump(&file).map(|r| r.unwrap()).collect();
    let items: Vec<_> = s.items().collect();
    assert_eq!(items, ours);
}

/// A file with bucket `group` holding only sub-buckets (200, inline, over several
/// leaves under a branch) and bucket `values` holding plain values.
fn groups(dir: &Path) -> std::path::PathBuf {
    use untorn_bbolt::{BucketData, Value, WriteOptions};
    let mut root = BucketData::default();
    let group = root.bucket_mut(&[b"group".to_vec()]).unwrap();
    for i in 0..200 {
        let mut sub = BucketData::default();
        for j in 0..2 {
            sub.entries
                .insert(format!("k{j}").into_bytes(), Value::Data(vec![b'x'; 20]));
        }
        group
            .entries
            .insert(format!("g{i:04}").into_bytes(), Value::Bucket(sub));
    }
    let values = root.bucket_mut(&[b"values".to_vec()]).unwrap();
    for i in 0..300 {
        values
            .entries
            .insert(format!("v{i:04}").into_bytes(), Value::Data(vec![b'y'; 60]));
    }
    let db = dir.join("groups.db");
    untorn_bbolt::write_file(&db, &root, &WriteOptions::default()).unwrap();
    db
}

/// Clears the bucket flag of element `i` of leaf `page` (a 4096-byte page): the
/// element reads as a plain value whose bytes are a bucket header.
fn clear_bucket_flag(db: &Path, page: u64, i: u64) {
    patch(db, page * 4096 + 16 + i * 16, &0u32.to_le_bytes());
}

#[test]
fn a_bucket_of_buckets_takes_no_plain_values() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = groups(dir.path());
    let file = BoltFile::open(&healthy).unwrap();
    let (_, leaves) = crate::damage::bucket_root(&file, b"group");
    assert!(leaves.len() >= 3, "{leaves:?}");
    let (_, values) = crate::damage::bucket_root(&file, b"values");
    drop(file);
    let group = vec![b"group".to_vec()];
    let plain_in_group = |s: &untorn_bbolt::Salvaged| {
        s.data
            .bucket(&group)
            .unwrap()
            .entries
            .values()
            .filter(|v| matches!(v, untorn_bbolt::Value::Data(_)))
            .count()
    };

    // A sub-bucket's flag is lost: its value is a usable bucket header, and the other
    // elements of its bucket are all buckets, so it is read as the bucket it was.
    let flag = dir.path().join("flag.db");
    std::fs::copy(&healthy, &flag).unwrap();
    clear_bucket_flag(&flag, leaves[0].1, 3);
    let s = untorn_bbolt::salvage_entries(&flag, &SalvageOptions::default()).unwrap();
    assert_eq!(plain_in_group(&s), 0, "{}", s.report);
    assert_eq!(s.data.bucket(&group).unwrap().entries.len(), 200);
    assert!(
        s.report
            .notes
            .iter()
            .any(|n| n.contains("holds only buckets") && n.contains("read as a bucket")),
        "{}",
        s.report
    );

    // A branch element of `group` is redirected to a leaf of `values`; the leaf it led
    // to (its elements' bucket flags lost too) is an orphan of plain values whose keys
    // fit the hole. `group`'s surviving leaves hold only buckets: the orphan goes to
    // lost+found, never into `group`.
    let orphan = dir.path().join("orphan.db");
    std::fs::copy(&healthy, &orphan).unwrap();
    let victim = leaves[1].1;
    let PageBody::Leaf(elems) = untorn_bbolt::page(&BoltFile::open(&orphan).unwrap(), victim)
        .unwrap()
        .body
    else {
        panic!("page {victim} is not a leaf")
    };
    for i in 0..elems.len() as u64 {
        clear_bucket_flag(&orphan, victim, i);
    }
    let group_root = crate::damage::bucket_root(&BoltFile::open(&orphan).unwrap(), b"group").0;
    // Branch element 1's page id (offset 8 within the 16-byte element).
    patch(
        &orphan,
        group_root * 4096 + 16 + 16 + 8,
        &values[0].1.to_le_bytes(),
    );
    let s = untorn_bbolt::salvage_entries(&orphan, &SalvageOptions::default()).unwrap();
    assert_eq!(plain_in_group(&s), 0, "{}", s.report);
    assert!(
        s.report
            .lost_and_found
            .iter()
            .any(|l| l.page == victim && l.keys as usize == elems.len()),
        "{}",
        s.report
    );
    // Every other sub-bucket is there.
    assert_eq!(
        s.data.bucket(&group).unwrap().entries.len(),
        200 - elems.len()
    );
}
