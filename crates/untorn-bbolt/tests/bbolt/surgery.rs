//! Surgery with bbolt 1.4 semantics on real bbolt files.

use untorn::unstable::report::FindingKind;
use untorn_bbolt::surgery::{self, MetaUpdate};
use untorn_bbolt::{BoltFile, PageBody};

use crate::common::*;
use crate::damage::{alpha_fixture, cycle_fixture, patch};

#[test]
fn hand_repair_of_the_cycle_incident() {
    // The incident's manual repair: clear the element that closes the cycle,
    // then rebuild the freelist. bbolt's Check passes afterwards.
    let dir = tempfile::tempdir().unwrap();
    if fixture_bin().is_none() {
        return;
    }
    let Some((db, v)) = cycle_fixture(dir.path(), "pgid") else {
        return;
    };
    let victim = v["victim_page"].as_u64().unwrap();
    let elem = v["elem"].as_u64().unwrap() as usize;
    let step1 = dir.path().join("step1.db");
    let out = surgery::clear_page_elements(&db, &step1, victim, elem, Some(elem + 1)).unwrap();
    assert!(out.freelist_abandoned);
    let r = untorn_bbolt::check(&step1, 100).unwrap();
    assert!(
        r.findings.iter().all(|f| f.kind != FindingKind::Cycle),
        "{:#?}",
        r.findings
    );
    assert!(r.is_ok(), "{:#?}", r.findings);
    // The source is untouched.
    assert!(untorn_bbolt::check(&db, 10)
        .unwrap()
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::Cycle));
    go_check(&step1).unwrap();
    let step2 = dir.path().join("step2.db");
    surgery::freelist_rebuild(&step1, &step2).unwrap();
    let f = BoltFile::open(&step2).unwrap();
    assert!(!f.meta().no_freelist_sync());
    let r = untorn_bbolt::check(&step2, 100).unwrap();
    assert_eq!(r.findings, vec![]);
    go_check(&step2).unwrap();
    // Rebuilding again is refused: the freelist exists.
    assert!(surgery::freelist_rebuild(&step2, &dir.path().join("x.db")).is_err());
}

#[test]
fn revert_meta_goes_back_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, _)) = alpha_fixture(dir.path()) else {
        return;
    };
    let before = BoltFile::open(&db).unwrap();
    let (newer, older_txid) = (before.active_index(), before.meta().txid - 1);
    let out = dir.path().join("rev.db");
    surgery::revert_meta(&db, &out).unwrap();
    let after = BoltFile::open(&out).unwrap();
    assert_eq!(after.meta().txid, older_txid);
    assert_eq!(after.metas()[newer].meta.unwrap().txid, older_txid);
    go_check(&out).unwrap();
    assert_eq!(untorn_bbolt::check(&out, 10).unwrap().findings, vec![]);
}

#[test]
fn copy_page_sets_the_target_id() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, children)) = alpha_fixture(dir.path()) else {
        return;
    };
    let (from, to) = (children[0].1, children[1].1);
    let out = dir.path().join("copy.db");
    surgery::copy_page(&db, &out, from, to).unwrap();
    let f = BoltFile::open(&out).unwrap();
    let a = untorn_bbolt::page(&f, from).unwrap();
    let b = untorn_bbolt::page(&f, to).unwrap();
    assert_eq!(b.header.id, to);
    assert_eq!(&a.raw[8..], &b.raw[8..]);
    // The copy sits in the wrong key range: check says so precisely.
    let r = untorn_bbolt::check(&out, 10).unwrap();
    assert!(r
        .findings
        .iter()
        .any(|x| x.kind == FindingKind::KeyOutOfBounds && x.page == Some(to)));
}

#[test]
fn clear_leaf_elements_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, children)) = alpha_fixture(dir.path()) else {
        return;
    };
    let leaf = children[1].1;
    let f = BoltFile::open(&db).unwrap();
    let PageBody::Leaf(before) = untorn_bbolt::page(&f, leaf).unwrap().body else {
        panic!()
    };
    drop(f);
    let out = surgery::clear_page_elements(&db, &db, leaf, 1, Some(3)).unwrap();
    assert!(!out.freelist_abandoned);
    let f = BoltFile::open(&db).unwrap();
    let PageBody::Leaf(after) = untorn_bbolt::page(&f, leaf).unwrap().body else {
        panic!()
    };
    assert_eq!(after.len(), before.len() - 2);
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1], before[3]);
    go_check(&db).unwrap();
    assert!(untorn_bbolt::check(&db, 10).unwrap().is_ok());
    // Bad ranges are refused.
    assert!(surgery::clear_page_elements(&db, &db, leaf, 5, Some(5)).is_err());
    assert!(surgery::clear_page_elements(&db, &db, leaf, 0, Some(10_000)).is_err());
    surgery::clear_page(&db, &db, leaf).unwrap();
    let f = BoltFile::open(&db).unwrap();
    assert_eq!(untorn_bbolt::page(&f, leaf).unwrap().header.count, 0);
}

#[test]
fn freelist_abandon_then_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, _)) = alpha_fixture(dir.path()) else {
        return;
    };
    let free_before = untorn_bbolt::pages(&BoltFile::open(&db).unwrap())
        .iter()
        .filter(|p| p.state == untorn::unstable::report::PageState::Free)
        .count();
    let a = dir.path().join("a.db");
    surgery::freelist_abandon(&db, &a).unwrap();
    let f = BoltFile::open(&a).unwrap();
    assert!(f
        .metas()
        .iter()
        .all(|m| m.meta.unwrap().no_freelist_sync() && m.is_valid()));
    go_check(&a).unwrap();
    let b = dir.path().join("b.db");
    surgery::freelist_rebuild(&a, &b).unwrap();
    go_check(&b).unwrap();
    let f = BoltFile::open(&b).unwrap();
    assert_eq!(untorn_bbolt::check(&b, 10).unwrap().findings, vec![]);
    // The old freelist page is free now too.
    let free_after = untorn_bbolt::pages(&f)
        .iter()
        .filter(|p| p.state == untorn::unstable::report::PageState::Free)
        .count();
    assert_eq!(free_after, free_before + 1);
    assert_eq!(go_dump(&b), go_dump(&db));
}

#[test]
fn meta_validate_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let Some((db, _, _)) = alpha_fixture(dir.path()) else {
        return;
    };
    let [a, b] = surgery::meta_validate(&db).unwrap();
    assert!(a.is_ok() && b.is_ok());
    let good = a.unwrap();
    // Break meta 0's checksum.
    patch(&db, 16 + 56, &[0x11; 8]);
    let [a, b] = surgery::meta_validate(&db).unwrap();
    assert!(matches!(
        a,
        Err(untorn_bbolt::format::MetaProblem::Checksum { .. })
    ));
    assert!(b.is_ok());
    // meta update with no field changes recomputes the checksum.
    let out = dir.path().join("u.db");
    surgery::meta_update(&db, &out, 0, &MetaUpdate::default()).unwrap();
    let [a, _] = surgery::meta_validate(&out).unwrap();
    assert_eq!(a.unwrap(), good);
    // Setting the root to another page is written and checksummed.
    surgery::meta_update(
        &out,
        &out,
        1,
        &MetaUpdate {
            pgid: Some(good.pgid + 1),
            ..Default::default()
        },
    )
    .unwrap();
    let [_, b] = surgery::meta_validate(&out).unwrap();
    assert_eq!(b.unwrap().pgid, good.pgid + 1);
}
