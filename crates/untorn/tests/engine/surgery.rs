//! Surgery on untorn files (`untorn::unstable::surgery`): each operation on a damaged
//! copy gives a file that passes `check` (or the documented remaining findings), says
//! what it dropped, and opens with the expected contents; bad arguments are typed
//! refusals; a reverted meta is never undone by a journal replay.

use std::sync::Arc;

use untorn::unstable::check::{check_storage_with_journal, page_infos, RawSource};
use untorn::unstable::format::{encode_leaf, verify_page, NodeView, PageId, PageType};
use untorn::unstable::report::{FindingKind, PageState};
use untorn::unstable::surgery::{
    clear_page, clear_page_elements, copy_page, freelist_abandon, freelist_rebuild, meta_update,
    revert_meta, Dropped, MetaUpdate, SurgeryError,
};
use untorn::{CheckOptions, Database, Report, Storage};

use crate::common::MemDb;

const PS: usize = 4096;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

/// A database with buckets `a` (2000 keys: a branch over many leaves) and `b` (nested
/// `b/inner`), closed cleanly.
fn build() -> MemDb {
    let m = MemDb::new();
    let db = m.open(Database::builder().page_size(PS)).unwrap();
    db.update(|tx| {
        let a = tx.create_bucket("a")?;
        for i in 0..2000 {
            a.put(key(i), vec![b'x'; 40])?;
        }
        let b = tx.create_bucket("b")?;
        b.put("solo", "1")?;
        let inner = b.create_bucket("inner")?;
        inner.put("deep", "2")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    drop(db);
    m
}

/// [`build`], then keys 0..1500 of `a` deleted: the freelist lists many pages.
fn build_with_free_pages() -> MemDb {
    let m = build();
    let db = m.open_default();
    db.update(|tx| {
        let a = tx.bucket("a")?.unwrap();
        for i in 0..1500 {
            a.delete(key(i))?;
        }
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    drop(db);
    m
}

fn arcs(m: &MemDb) -> (Arc<dyn Storage>, Arc<dyn Storage>) {
    (Arc::new(m.data.clone()), Arc::new(m.journal.clone()))
}

fn check(m: &MemDb) -> Report {
    let (d, j) = arcs(m);
    check_storage_with_journal(d, Some(j.as_ref()), CheckOptions::default()).unwrap()
}

fn page(m: &MemDb, id: u64) -> Vec<u8> {
    let mut b = vec![0u8; PS];
    m.data.read_at(id * PS as u64, &mut b).unwrap();
    b
}

/// Verified leaf pages of tree `tree` currently on disk (reachable or not).
fn leaves_of(m: &MemDb, tree: u64) -> Vec<u64> {
    let pages = m.data.len().unwrap() / PS as u64;
    (2..pages)
        .filter(|id| {
            verify_page(&page(m, *id), PageId(*id), PS)
                .is_ok_and(|h| h.page_type == PageType::Leaf && h.tree_id.get() == tree)
        })
        .collect()
}

/// The reachable leaves of bucket `a` in key order, via the keys they hold.
fn leaf_holding(m: &MemDb, k: &[u8]) -> u64 {
    // Bucket `a` is the first bucket created: tree 2.
    for id in leaves_of(m, 2) {
        let b = page(m, id);
        let h = verify_page(&b, PageId(id), PS).unwrap();
        let n = NodeView::validate(&b, &h).unwrap();
        if (0..n.len()).any(|i| n.key(i).unwrap() == k) {
            return id;
        }
    }
    panic!("no leaf holds {k:?}");
}

fn keys_of_a(m: &MemDb) -> Vec<Vec<u8>> {
    let db = m.open_default();
    let out = db
        .view(|tx| {
            let a = tx.bucket("a")?.unwrap();
            let mut keys = Vec::new();
            for e in a.iter()? {
                keys.push(e?.0.to_vec());
            }
            assert_eq!(
                a.len()? as usize,
                keys.len(),
                "the bucket count agrees with its keys"
            );
            Ok::<_, untorn::Error>(keys)
        })
        .unwrap();
    out
}

fn garble(m: &MemDb, id: u64) {
    m.data.write_at(id * PS as u64 + 100, &[0xA5; 64]).unwrap();
}

#[test]
fn clear_page_of_a_damaged_leaf_gives_a_clean_file_without_that_range() {
    let m = build();
    let victim = leaf_holding(&m, &key(1000));
    garble(&m, victim);
    assert!(!check(&m).is_ok(), "the damage is visible");
    let (d, j) = arcs(&m);
    let out = clear_page(d, j, victim).unwrap();
    assert!(
        matches!(&out.dropped[..], [Dropped::Subtree { page, keys: None, bucket, .. }]
            if *page == victim && bucket == &vec![b"a".to_vec()]),
        "{:?}",
        out.dropped
    );
    assert!(out.freelist_rebuilt);
    let r = check(&m);
    assert!(r.is_ok(), "{:?}", r.findings);
    let keys = keys_of_a(&m);
    assert!(!keys.contains(&key(1000)));
    assert!(keys.contains(&key(0)) && keys.contains(&key(1999)));
    assert!(keys.len() > 1800 && keys.len() < 2000, "{}", keys.len());
}

#[test]
fn clear_page_elements_of_a_leaf_drops_exactly_those_keys() {
    let m = build();
    let victim = leaf_holding(&m, &key(500));
    let b = page(&m, victim);
    let h = verify_page(&b, PageId(victim), PS).unwrap();
    let n = NodeView::validate(&b, &h).unwrap();
    let gone: Vec<Vec<u8>> = (0..3).map(|i| n.key(i).unwrap().to_vec()).collect();
    let (d, j) = arcs(&m);
    let out = clear_page_elements(d, j, victim, 0, Some(3)).unwrap();
    match &out.dropped[..] {
        [Dropped::Keys {
            count: 3,
            first,
            last,
            ..
        }] => {
            assert_eq!(first, &gone[0]);
            assert_eq!(last, &gone[2]);
        }
        other => panic!("{other:?}"),
    }
    let r = check(&m);
    assert!(r.is_ok(), "{:?}", r.findings);
    let keys = keys_of_a(&m);
    assert_eq!(keys.len(), 1997);
    assert!(gone.iter().all(|k| !keys.contains(k)));
}

#[test]
fn clear_page_elements_of_a_branch_drops_whole_subtrees() {
    let m = build();
    // The root of bucket `a` is a branch over the leaves: clear its first two children.
    let leaf = leaf_holding(&m, &key(0));
    let pages = m.data.len().unwrap() / PS as u64;
    let branch = (2..pages)
        .find(|id| {
            let b = page(&m, *id);
            verify_page(&b, PageId(*id), PS).is_ok_and(|h| {
                h.page_type == PageType::Branch
                    && h.tree_id.get() == 2
                    && NodeView::validate(&b, &h)
                        .is_ok_and(|n| n.branch_child(0).unwrap().page_id.get() == leaf)
            })
        })
        .expect("a branch over the first leaf");
    let (d, j) = arcs(&m);
    let out = clear_page_elements(d, j, branch, 0, Some(2)).unwrap();
    assert_eq!(out.dropped.len(), 2);
    let dropped: u64 = out
        .dropped
        .iter()
        .map(|d| match d {
            Dropped::Subtree { keys: Some(n), .. } => *n,
            other => panic!("{other:?}"),
        })
        .sum();
    let r = check(&m);
    assert!(r.is_ok(), "{:?}", r.findings);
    let keys = keys_of_a(&m);
    assert_eq!(keys.len() as u64, 2000 - dropped);
    assert!(!keys.contains(&key(0)));
}

#[test]
fn copy_page_over_itself_accepts_a_stale_image_and_reseals_the_path() {
    let m = build();
    let victim = leaf_holding(&m, &key(700));
    // A lost write: the page holds another image of itself (one value differs), which
    // verifies on its own but is not the version its parent vouches for.
    let b = page(&m, victim);
    let h = verify_page(&b, PageId(victim), PS).unwrap();
    let n = NodeView::validate(&b, &h).unwrap();
    let entries: Vec<_> = (0..n.len())
        .map(|i| {
            let k = n.key(i).unwrap();
            let v = if k == key(700) {
                untorn::unstable::format::LeafValue::Inline(b"stale")
            } else {
                n.leaf_value(i).unwrap()
            };
            (k, v)
        })
        .collect();
    let (stale, _) = encode_leaf(&entries, PageId(victim), h.txid, h.tree_id, PS).unwrap();
    m.data.write_at(victim * PS as u64, &stale).unwrap();
    assert!(
        !check(&m).is_ok(),
        "the parent no longer vouches for the page"
    );
    let (d, j) = arcs(&m);
    let out = copy_page(d, j, victim, victim).unwrap();
    assert!(matches!(&out.dropped[..], [Dropped::Replaced { page, .. }] if *page == victim));
    let r = check(&m);
    assert!(r.is_ok(), "{:?}", r.findings);
    let db = m.open_default();
    let v = db
        .view(|tx| {
            Ok::<_, untorn::Error>(tx.bucket("a")?.unwrap().get(key(700))?.unwrap().to_vec())
        })
        .unwrap();
    assert_eq!(v, b"stale");
}

#[test]
fn freelist_rebuild_replaces_a_damaged_freelist() {
    let m = build_with_free_pages();
    let pages = m.data.len().unwrap() / PS as u64;
    let fl = (2..pages)
        .filter(|id| {
            verify_page(&page(&m, *id), PageId(*id), PS)
                .is_ok_and(|h| h.page_type == PageType::Freelist)
        })
        .collect::<Vec<_>>();
    assert!(!fl.is_empty(), "a freelist was written");
    for id in &fl {
        garble(&m, *id);
    }
    assert!(!check(&m).is_ok());
    let (d, j) = arcs(&m);
    let out = freelist_rebuild(d, j).unwrap();
    assert!(out.dropped.is_empty() && out.freelist_rebuilt);
    let r = check(&m);
    assert!(r.is_ok(), "{:?}", r.findings);
    assert_eq!(keys_of_a(&m).len(), 500);
}

#[test]
fn freelist_rebuild_refuses_a_tree_with_an_unreadable_page() {
    let m = build();
    garble(&m, leaf_holding(&m, &key(3)));
    let before = m.data.to_vec();
    let (d, j) = arcs(&m);
    assert!(matches!(
        freelist_rebuild(d, j),
        Err(SurgeryError::Damaged(_))
    ));
    assert!(m.data.to_vec() == before, "a refusal writes nothing");
}

#[test]
fn revert_meta_drops_the_newer_commits_and_the_journal_never_brings_them_back() {
    let m = build();
    // A second session: committed and checkpointed (in the newer slot) ...
    let db = m.open_default();
    db.update(|tx| {
        tx.bucket("a")?.unwrap().put("later", "1")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    drop(db);
    // ... and a third whose commit is only in the journal (the process died).
    let db = m.open_default();
    db.update(|tx| {
        tx.bucket("a")?.unwrap().put("journal-only", "1")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    std::mem::forget(db);
    let (d, j) = arcs(&m);
    let out = revert_meta(d, j).unwrap();
    match &out.dropped[..] {
        [Dropped::Commits {
            through_txid: Some(t),
            kept_txid,
            journal: true,
        }] => {
            assert!(t >= kept_txid)
        }
        other => panic!("{other:?}"),
    }
    let r = check(&m);
    assert!(r.is_ok(), "{:?}", r.findings);
    for _ in 0..2 {
        let db = m.open_default();
        db.view(|tx| {
            let a = tx.bucket("a")?.unwrap();
            assert!(
                a.get("journal-only")?.is_none(),
                "a reverted commit was replayed"
            );
            assert_eq!(a.len()?, 2000 + u64::from(a.get("later")?.is_some()));
            Ok::<_, untorn::Error>(())
        })
        .unwrap();
        db.update(|tx| tx.bucket("a").map(|_| ())).unwrap();
    }
}

#[test]
fn revert_meta_uses_the_only_valid_slot_when_the_other_is_destroyed() {
    let m = build();
    // A session with one commit: its clean close is the newer slot, its session start
    // (the state `build` left) the older one.
    let db = m.open_default();
    db.update(|tx| {
        tx.bucket("a")?.unwrap().put("later", "1")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    drop(db);
    let (d, j) = arcs(&m);
    let (_, slots) = untorn::unstable::superblock::validate_slots(d.as_ref()).unwrap();
    let newer = slots
        .iter()
        .flatten()
        .max_by_key(|s| (s.txid, s.meta_seq))
        .unwrap()
        .slot();
    m.data.write_at(newer * PS as u64, &vec![0u8; PS]).unwrap();
    let out = revert_meta(d, j).unwrap();
    assert!(matches!(&out.dropped[..], [Dropped::Commits { .. }]));
    let r = check(&m);
    assert!(r.is_ok(), "{:?}", r.findings);
    let keys = keys_of_a(&m);
    assert_eq!(keys.len(), 2000);
    assert!(
        !keys.contains(&b"later".to_vec()),
        "the destroyed slot's commit is gone"
    );
}

#[test]
fn bad_arguments_are_typed_refusals_and_write_nothing() {
    let m = build();
    let before = m.data.to_vec();
    let leaf = leaf_holding(&m, &key(10));
    let n = {
        let b = page(&m, leaf);
        let h = verify_page(&b, PageId(leaf), PS).unwrap();
        NodeView::validate(&b, &h).unwrap().len()
    };
    let (d, j) = arcs(&m);
    let e = clear_page(Arc::clone(&d), Arc::clone(&j), 1).unwrap_err();
    assert!(
        matches!(e, SurgeryError::PageOutOfRange { page: 1, .. }),
        "{e}"
    );
    let e = clear_page(Arc::clone(&d), Arc::clone(&j), 1 << 40).unwrap_err();
    assert!(matches!(e, SurgeryError::PageOutOfRange { .. }), "{e}");
    let e = clear_page_elements(Arc::clone(&d), Arc::clone(&j), leaf, 2, Some(n + 1)).unwrap_err();
    assert!(matches!(e, SurgeryError::ElementsOutOfRange { .. }), "{e}");
    let e = clear_page_elements(Arc::clone(&d), Arc::clone(&j), leaf, 3, Some(3)).unwrap_err();
    assert!(matches!(e, SurgeryError::ElementsOutOfRange { .. }), "{e}");
    // A page of another tree copied over a bucket-`a` leaf is fine structurally, but a
    // leaf is no place for a meta: page 0 is out of range, a free page is unreachable.
    let e = copy_page(Arc::clone(&d), Arc::clone(&j), 0, leaf).unwrap_err();
    assert!(
        matches!(e, SurgeryError::PageOutOfRange { page: 0, .. }),
        "{e}"
    );
    let e = meta_update(
        Arc::clone(&d),
        Arc::clone(&j),
        &MetaUpdate {
            root: Some(leaf),
            ..MetaUpdate::default()
        },
        false,
    )
    .unwrap_err();
    assert!(matches!(e, SurgeryError::WrongPageKind { .. }), "{e}");
    assert!(m.data.to_vec() == before, "a refusal writes nothing");
}

#[test]
fn clear_page_of_an_unreachable_page_is_refused() {
    let m = build();
    let db = m.open_default();
    db.update(|tx| tx.delete_bucket("b")).unwrap();
    drop(db);
    // Bucket `b` was tree 3; its leaf is now free.
    let free_leaf = leaves_of(&m, 3)
        .into_iter()
        .next()
        .expect("the deleted bucket's leaf is still on disk");
    let (d, j) = arcs(&m);
    let e = clear_page(d, j, free_leaf).unwrap_err();
    assert!(matches!(e, SurgeryError::NotReachable { .. }), "{e}");
}

#[test]
fn meta_update_refuses_a_file_that_would_fail_check_unless_forced() {
    let m = build();
    let (d, j) = arcs(&m);
    let (_, slots) = untorn::unstable::superblock::validate_slots(d.as_ref()).unwrap();
    let meta = slots
        .iter()
        .flatten()
        .max_by_key(|s| (s.txid, s.meta_seq))
        .copied()
        .unwrap();
    // Dropping the freelist makes every free page a leak: check fails.
    let e = meta_update(
        Arc::clone(&d),
        Arc::clone(&j),
        &MetaUpdate {
            high_water: Some(meta.high_water.get() + 5),
            ..MetaUpdate::default()
        },
        false,
    )
    .unwrap_err();
    assert!(matches!(e, SurgeryError::Refused(_)), "{e}");
    // A consistent update (the txid moves forward) passes.
    let m = build();
    let (d, j) = arcs(&m);
    let out = meta_update(
        d,
        j,
        &MetaUpdate {
            txid: Some(meta.txid.get() + 10),
            ..MetaUpdate::default()
        },
        false,
    )
    .unwrap();
    assert_eq!(out.txid, meta.txid.get() + 10);
    assert!(check(&m).is_ok());
    assert_eq!(keys_of_a(&m).len(), 2000);
}

#[test]
fn a_crash_between_the_renames_leaves_a_file_that_never_replays_the_old_journal() {
    // The CLI renames the new data file into place before the new journal: a crash in
    // between pairs the new data file with the old journal, whose records belong to a
    // generation the new metas retired.
    let m = build();
    let db = m.open_default();
    db.update(|tx| {
        tx.bucket("a")?.unwrap().put("journal-only", "1")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    std::mem::forget(db);
    let old_journal = m.journal.to_vec();
    let (d, j) = arcs(&m);
    revert_meta(d, j).unwrap();
    m.journal.set_len(0).unwrap();
    m.journal.write_at(0, &old_journal).unwrap();
    let db = m.open_default();
    db.view(|tx| {
        assert!(tx.bucket("a")?.unwrap().get("journal-only")?.is_none());
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    drop(db);
    let r = check(&m);
    assert!(r.is_ok(), "{:?}", r.findings);
}

#[test]
fn a_kept_meta_claiming_pages_beyond_the_file_is_refused_not_walked() {
    let m = build();
    let (d, j) = arcs(&m);
    let (_, slots) = untorn::unstable::superblock::validate_slots(d.as_ref()).unwrap();
    let mut older = slots
        .iter()
        .flatten()
        .min_by_key(|s| (s.txid, s.meta_seq))
        .copied()
        .unwrap();
    // A checksummed meta whose high-water mark is far past the end of the file: a
    // walk or a freelist over it would be unbounded.
    older.high_water = PageId(1 << 40);
    m.data
        .write_at(older.slot() * PS as u64, &older.encode().unwrap())
        .unwrap();
    let before = m.data.to_vec();
    let e = revert_meta(d, j).unwrap_err();
    assert!(
        matches!(e, SurgeryError::Damaged(ref s) if s.contains("truncated")),
        "{e}"
    );
    assert!(m.data.to_vec() == before, "a refusal writes nothing");
}

/// `freelist abandon` is the rung below `rebuild`: with an unreadable leaf in the tree
/// (rebuild refuses) it still writes a new meta whose freelist is empty, so every page
/// the tree does not reach is leaked — and none of them is overwritten by later commits.
#[test]
fn freelist_abandon_leaks_every_unreachable_page_and_later_commits_reuse_none() {
    let m = build_with_free_pages();
    garble(&m, leaf_holding(&m, &key(1700)));
    let (d, j) = arcs(&m);
    assert!(matches!(
        freelist_rebuild(Arc::clone(&d), Arc::clone(&j)),
        Err(SurgeryError::Damaged(_))
    ));
    let out = freelist_abandon(Arc::clone(&d), Arc::clone(&j)).unwrap();
    assert!(out.dropped.is_empty() && !out.freelist_rebuilt, "{out:?}");
    assert!(out.leaked_pages > 10, "{out:?}");
    let r = check(&m);
    assert!(
        r.findings.iter().all(|f| !matches!(
            f.kind,
            FindingKind::FreelistCorrupt
                | FindingKind::FreelistDuplicate
                | FindingKind::FreelistOutOfRange
                | FindingKind::ReachableFreed
        )),
        "{:?}",
        r.findings
    );
    let infos =
        page_infos(&RawSource::open_with_journal(Arc::clone(&d), Some(j.as_ref())).unwrap())
            .unwrap();
    assert!(infos.iter().all(|i| i.state != PageState::Free));
    let leaked: Vec<u64> = infos
        .iter()
        .filter(|i| i.state == PageState::Leaked)
        .map(|i| i.id)
        .collect();
    assert_eq!(leaked.len() as u64, out.leaked_pages);
    let before: Vec<Vec<u8>> = leaked.iter().map(|id| page(&m, *id)).collect();
    let db = m.open_default();
    db.update(|tx| {
        let b = tx.bucket("b")?.unwrap();
        for i in 0..2000 {
            b.put(key(i), vec![b'y'; 40])?;
        }
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    drop(db);
    for (id, bytes) in leaked.iter().zip(before) {
        assert!(page(&m, *id) == bytes, "leaked page {id} was reused");
    }
    let db = m.open_default();
    db.view(|tx| {
        assert_eq!(
            tx.bucket("b")?.unwrap().get(key(1999))?.unwrap().as_ref(),
            &[b'y'; 40][..]
        );
        assert_eq!(
            tx.bucket("a")?.unwrap().get(key(1501))?.unwrap().as_ref(),
            &[b'x'; 40][..]
        );
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
}
