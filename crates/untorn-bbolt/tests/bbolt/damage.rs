//! Field damage in real bbolt files, each reported precisely.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use untorn::unstable::report::{FindingKind, Report};
use untorn_bbolt::{BoltFile, PageBody};

use crate::common::*;

pub fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
    f.sync_all().unwrap();
}

/// Root page of a top-level bucket, and its branch elements (key, child).
pub fn bucket_root(file: &BoltFile, name: &[u8]) -> (u64, Vec<(Vec<u8>, u64)>) {
    let PageBody::Leaf(elems) = untorn_bbolt::page(file, file.meta().root).unwrap().body else {
        panic!("root bucket root is not a leaf")
    };
    let (_, _, v) = elems.iter().find(|(_, k, _)| k == name).unwrap();
    let root = u64::from_le_bytes(v[..8].try_into().unwrap());
    let PageBody::Branch(children) = untorn_bbolt::page(file, root).unwrap().body else {
        panic!("bucket root is not a branch")
    };
    (root, children)
}

pub fn kinds(r: &Report) -> Vec<FindingKind> {
    r.findings.iter().map(|f| f.kind).collect()
}

pub fn has(r: &Report, kind: FindingKind, page: u64) -> bool {
    r.findings
        .iter()
        .any(|f| f.kind == kind && f.page == Some(page))
}

/// A fixture (4096-byte pages, synced freelist), a branch of the `alpha` bucket
/// whose children are leaves, and those children.
pub fn alpha_fixture(dir: &Path) -> Option<(PathBuf, u64, Vec<(Vec<u8>, u64)>)> {
    let db = make_db(dir, "d.db", 4096, false)?;
    let file = BoltFile::open(&db).unwrap();
    let (mut root, mut children) = bucket_root(&file, b"alpha");
    // Descend to the lowest branch level (the one whose children are leaves).
    for _ in 0..8 {
        match untorn_bbolt::page(&file, children[0].1).unwrap().body {
            PageBody::Branch(c) => {
                root = children[0].1;
                children = c;
            }
            _ => break,
        }
    }
    assert!(children.len() >= 4);
    Some((db, root, children))
}

/// A bboltbench-loaded file with a 3-level tree, corrupted with `-how`.
pub fn cycle_fixture(dir: &Path, how: &str) -> Option<(PathBuf, serde_json::Value)> {
    let bench = bboltbench()?;
    let db = dir.join(format!("cycle-{how}.db"));
    let out = Command::new(&bench)
        .args(["-op", "load", "-n", "30000", "-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(&bench)
        .args(["-op", "corruptcycle", "-how", how, "-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    Some((db, v))
}

fn check(db: &Path) -> Report {
    untorn_bbolt::check(db, 1000).unwrap()
}

#[test]
fn cycle_pgid_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, v)) = cycle_fixture(dir.path(), "pgid") else {
        return;
    };
    let ancestor = v["ancestor_page"].as_u64().unwrap();
    let victim = v["victim_page"].as_u64().unwrap();
    let old = v["old_pgid"].as_u64().unwrap();
    let r = check(&db);
    let cycles: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Cycle)
        .collect();
    assert_eq!(cycles.len(), 1, "{:#?}", r.findings);
    let c = cycles[0];
    assert_eq!(c.page, Some(ancestor));
    assert!(
        c.message
            .contains(&format!("{ancestor} -> {victim} -> {ancestor}")),
        "{}",
        c.message
    );
    let meta_root = BoltFile::open(&db).unwrap().meta().root;
    assert_eq!(c.path, vec![meta_root, ancestor, victim, ancestor]);
    // The subtree the element used to point to is now leaked.
    assert!(r
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Unreachable && f.page.is_some_and(|p| p <= old)));
    assert!(!r.truncated);
    // The strict reader refuses to walk it.
    let file = BoltFile::open(&db).unwrap();
    let err = untorn_bbolt::dump(&file).find_map(|r| r.err()).unwrap();
    assert!(
        err.to_string().contains(&format!("page {ancestor}")),
        "{err}"
    );
}

#[test]
fn cycle_copy_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, v)) = cycle_fixture(dir.path(), "copy") else {
        return;
    };
    let ancestor = v["ancestor_page"].as_u64().unwrap();
    let victim = v["victim_page"].as_u64().unwrap();
    let overwritten = v["old_pgid"].as_u64().unwrap();
    let r = check(&db);
    assert!(
        has(&r, FindingKind::PageIdMismatch, overwritten),
        "{:#?}",
        r.findings
    );
    let c = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Cycle)
        .unwrap_or_else(|| panic!("no cycle: {:#?}", r.findings));
    let meta_root = BoltFile::open(&db).unwrap().meta().root;
    assert_eq!(
        c.path,
        vec![meta_root, ancestor, victim, overwritten, victim]
    );
    assert!(
        c.message
            .contains(&format!("{victim} -> {overwritten} -> {victim}")),
        "{}",
        c.message
    );
    assert!(
        r.findings
            .iter()
            .filter(|f| f.kind == FindingKind::Cycle)
            .count()
            == 1
    );
}

#[test]
fn page_self_identifying_as_another() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, children)) = alpha_fixture(dir.path()) else {
        return;
    };
    let leaf = children[2].1;
    patch(&db, leaf * 4096, &(leaf + 7).to_le_bytes());
    let r = check(&db);
    assert_eq!(
        kinds(&r),
        vec![FindingKind::PageIdMismatch],
        "{:#?}",
        r.findings
    );
    assert!(has(&r, FindingKind::PageIdMismatch, leaf));
    assert!(r.findings[0]
        .message
        .contains(&format!("page {}", leaf + 7)));
    let file = BoltFile::open(&db).unwrap();
    let err = untorn_bbolt::dump(&file).find_map(|r| r.err()).unwrap();
    assert!(err.to_string().contains(&format!("page {leaf}")), "{err}");
}

#[test]
fn zeroed_page() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, root, children)) = alpha_fixture(dir.path()) else {
        return;
    };
    let leaf = children[1].1;
    patch(&db, leaf * 4096, &[0u8; 4096]);
    let r = check(&db);
    assert!(has(&r, FindingKind::ZeroedPage, leaf), "{:#?}", r.findings);
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ZeroedPage)
        .unwrap();
    assert_eq!(f.path.last(), Some(&leaf));
    assert!(f.path.contains(&root));
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.kind != FindingKind::Unreachable)
            .count(),
        1,
        "{:#?}",
        r.findings
    );
}

#[test]
fn key_order_between_parent_and_child() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, children)) = alpha_fixture(dir.path()) else {
        return;
    };
    let leaf = children[3].1;
    let file = BoltFile::open(&db).unwrap();
    let PageBody::Leaf(elems) = untorn_bbolt::page(&file, leaf).unwrap().body else {
        panic!()
    };
    let first = &elems[0].1;
    // Key bytes of element 0: pos is relative to the element at offset 16.
    let pos = u32::from_le_bytes(
        untorn_bbolt::page(&file, leaf).unwrap().raw[20..24]
            .try_into()
            .unwrap(),
    );
    let smaller = vec![b'0'; first.len()];
    patch(&db, leaf * 4096 + 16 + u64::from(pos), &smaller);
    let r = check(&db);
    assert_eq!(
        kinds(&r),
        vec![FindingKind::KeyOutOfBounds],
        "{:#?}",
        r.findings
    );
    assert!(has(&r, FindingKind::KeyOutOfBounds, leaf));
}

#[test]
fn page_allocated_twice() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, root, children)) = alpha_fixture(dir.path()) else {
        return;
    };
    let (lost, shared) = (children[1].1, children[2].1);
    // Branch element 1 (at 16 + 16) gets element 2's child id.
    patch(&db, root * 4096 + 16 + 16 + 8, &shared.to_le_bytes());
    let r = check(&db);
    assert!(
        has(&r, FindingKind::MultipleReferences, shared),
        "{:#?}",
        r.findings
    );
    assert!(has(&r, FindingKind::Unreachable, lost), "{:#?}", r.findings);
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.kind == FindingKind::MultipleReferences)
            .count(),
        1
    );
}

#[test]
fn freelist_disagrees_with_tree() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, children)) = alpha_fixture(dir.path()) else {
        return;
    };
    let file = BoltFile::open(&db).unwrap();
    let fl = file.meta().freelist;
    let PageBody::Freelist(ids) = untorn_bbolt::page(&file, fl).unwrap().body else {
        panic!()
    };
    assert!(!ids.is_empty());
    let count_field = untorn_bbolt::page(&file, fl).unwrap().header.count;
    let start = if count_field == 0xFFFF { 24 } else { 16 };
    let leaf = children[0].1;
    let replaced = ids[0];
    patch(&db, fl * 4096 + start, &leaf.to_le_bytes());
    let r = check(&db);
    assert!(
        has(&r, FindingKind::ReachableFreed, leaf),
        "{:#?}",
        r.findings
    );
    assert!(
        has(&r, FindingKind::Unreachable, replaced),
        "{:#?}",
        r.findings
    );
}

#[test]
fn newest_meta_corrupt_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, _)) = alpha_fixture(dir.path()) else {
        return;
    };
    let file = BoltFile::open(&db).unwrap();
    let newest = file.active_index() as u64;
    let old_txid = file.meta().txid;
    // Flip a bit in the newest meta's root field (offset 16 + 16).
    let mut b = [0u8; 1];
    std::fs::File::open(&db)
        .unwrap()
        .read_exact_at(&mut b, newest * 4096 + 32)
        .unwrap();
    patch(&db, newest * 4096 + 32, &[b[0] ^ 0x40]);
    let file = BoltFile::open(&db).unwrap();
    assert_eq!(file.active_index() as u64, 1 - newest);
    assert_eq!(file.meta().txid, old_txid - 1);
    let r = check(&db);
    assert_eq!(
        kinds(&r),
        vec![FindingKind::MetaInvalid, FindingKind::MetaFallback],
        "{:#?}",
        r.findings
    );
    assert!(has(&r, FindingKind::MetaInvalid, newest));
    assert!(r.findings[0].message.contains("checksum"));
    assert!(!r.is_ok());
}

#[test]
fn meta0_destroyed_page_size_found_from_meta1() {
    for ps in [8192u32, 16384] {
        let dir = tempfile::tempdir().unwrap();
        let Some(db) = make_db(dir.path(), "m.db", ps, false) else {
            return;
        };
        let before = our_dump(&BoltFile::open(&db).unwrap());
        patch(&db, 0, &vec![0u8; ps as usize]);
        let file = BoltFile::open(&db).unwrap();
        assert_eq!(file.page_size(), ps);
        assert_eq!(file.active_index(), 1);
        let r = check(&db);
        assert!(has(&r, FindingKind::MetaInvalid, 0), "{:#?}", r.findings);
        assert!(
            r.findings
                .iter()
                .all(|f| matches!(f.kind, FindingKind::MetaInvalid | FindingKind::MetaFallback)),
            "{:#?}",
            r.findings
        );
        // Meta 1 is one transaction older: every bucket still reads.
        let after = our_dump(&file);
        assert!(!after.is_empty() && after.len() <= before.len() + 1000);
    }
}

#[test]
fn no_valid_meta_is_a_report_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, _)) = alpha_fixture(dir.path()) else {
        return;
    };
    patch(&db, 0, &[0u8; 8192]);
    let r = check(&db);
    assert_eq!(
        kinds(&r),
        vec![FindingKind::MetaInvalid, FindingKind::MetaInvalid]
    );
    assert!(matches!(
        BoltFile::open(&db),
        Err(untorn_bbolt::BoltError::NoValidMeta { .. })
    ));
}

#[test]
fn a_snapshot_file_with_a_bad_hash_is_a_finding() {
    use untorn_bbolt::{BucketData, Value, WriteOptions};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("snapshot.db");
    let mut root = BucketData::default();
    let b = root.bucket_mut(&[b"key".to_vec()]).unwrap();
    for i in 0..100u32 {
        b.entries
            .insert(i.to_be_bytes().to_vec(), Value::Data(vec![7; 50]));
    }
    untorn_bbolt::write_file(&db, &root, &WriteOptions::default()).unwrap();
    // What `etcdctl snapshot save` writes: the database, then its SHA-256.
    untorn_bbolt::file::append_snapshot_trailer(&db).unwrap();
    let r = untorn_bbolt::check(&db, 10).unwrap();
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    // One byte of a value changes: bbolt cannot tell, the trailer can.
    let len = std::fs::metadata(&db).unwrap().len();
    let (_, leaf) = bucket_or_leaf(&BoltFile::open(&db).unwrap());
    patch(&db, leaf * 4096 + 4000, &[0x55]);
    assert_eq!(std::fs::metadata(&db).unwrap().len(), len);
    let r = untorn_bbolt::check(&db, 10).unwrap();
    assert_eq!(
        kinds(&r),
        vec![FindingKind::SnapshotHash],
        "{:?}",
        r.findings
    );
    assert!(r.findings[0].message.contains("etcdctl snapshot restore"));
}

/// The first leaf of top-level bucket `key` (its root, or the first child of its root).
fn bucket_or_leaf(file: &BoltFile) -> (u64, u64) {
    let PageBody::Leaf(elems) = untorn_bbolt::page(file, file.meta().root).unwrap().body else {
        panic!("root bucket root is not a leaf")
    };
    let (_, _, v) = elems.iter().find(|(_, k, _)| k == b"key").unwrap();
    let root = u64::from_le_bytes(v[..8].try_into().unwrap());
    match untorn_bbolt::page(file, root).unwrap().body {
        PageBody::Branch(children) => (root, children[0].1),
        _ => (root, root),
    }
}
