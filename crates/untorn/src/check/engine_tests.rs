//! The checker on real databases written by the engine: a clean file checks clean, and
//! each kind of damage done to the file's bytes is reported at the right page, while the
//! engine's reads of the damaged data return an error, never different bytes.
//!
//! Longer than the engine's ~600-line guide on purpose: one file per boundary, every
//! scenario through the same builders and `expect_kinds`; split, the table of cases
//! would be scattered over files that share all their helpers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;

use crate::format::{decode_header, PageType};
use crate::report::{FindingKind as K, PageKind, PageState, Report};
use crate::storage::{MemoryStorage, Storage};
use crate::{Database, Error};

use super::{check, check_storage, page_infos, CheckOptions, RawSource};

const PS: usize = 4096;

/// A database on memory storage, checkpointed so the data file holds everything.
struct Fixture {
    data: MemoryStorage,
    journal: MemoryStorage,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            data: MemoryStorage::new(),
            journal: MemoryStorage::new(),
        }
    }

    fn open(&self) -> crate::Result<Database> {
        Database::builder().open_storage(
            Arc::new(self.data.clone()) as Arc<dyn Storage>,
            Arc::new(self.journal.clone()) as Arc<dyn Storage>,
            true,
        )
    }

    fn image(&self) -> Vec<u8> {
        self.data.to_vec()
    }

    fn set_image(&self, bytes: Vec<u8>) {
        self.data.set_len(0).unwrap();
        self.data.write_at(0, &bytes).unwrap();
    }

    fn raw_check(&self) -> Report {
        let s: Arc<dyn Storage> = Arc::new(MemoryStorage::from_bytes(self.image()));
        check_storage(s, CheckOptions::default()).unwrap()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    let n = if i.is_multiple_of(97) {
        9000
    } else {
        20 + (i % 50) as usize
    };
    let mut v = format!("v{round}-{i}-").into_bytes();
    v.resize(n, b'a' + (i % 26) as u8);
    v
}

/// Several buckets (one nested), a few thousand keys, overflow values, deletes, and a
/// second round of updates so the freelist is not empty.
fn build() -> Fixture {
    let f = Fixture::new();
    let db = f.open().unwrap();
    build_rounds(&db, false);
    db.checkpoint().unwrap();
    drop(db);
    f
}

/// The commits of [`build`]. `checkpoint_each`: checkpoint after every commit.
fn build_rounds(db: &Database, checkpoint_each: bool) {
    for round in 0..2u32 {
        db.update(|tx| -> crate::Result<_> {
            let a = tx.create_bucket_if_not_exists("alpha")?;
            for i in 0..3000 {
                a.put(key(i), value(i, round))?;
            }
            let n = a.create_bucket_if_not_exists("nested")?;
            for i in 0..300 {
                n.put(key(i), value(i, round))?;
            }
            let b = tx.create_bucket_if_not_exists("beta")?;
            for i in (0..1000).step_by(3) {
                b.put(key(i), value(i, round))?;
            }
            tx.create_bucket_if_not_exists("empty")?;
            Ok(())
        })
        .unwrap();
        if checkpoint_each {
            db.checkpoint().unwrap();
        }
        db.update(|tx| -> crate::Result<_> {
            let a = tx.bucket("alpha")?.unwrap();
            for i in (0..3000).step_by(7) {
                a.delete(key(i))?;
            }
            Ok(())
        })
        .unwrap();
        if checkpoint_each {
            db.checkpoint().unwrap();
        }
    }
}

fn expect_kinds(report: &Report, kinds: &[K]) {
    let got: Vec<K> = report.findings.iter().map(|f| f.kind).collect();
    for k in kinds {
        assert!(got.contains(k), "expected {k} in {:#?}", report.findings);
    }
    assert!(
        got.iter()
            .all(|k| kinds.contains(k) || *k == K::Unreachable),
        "unexpected findings {:#?}",
        report.findings
    );
}

/// Page ids of the leaves (type byte in an unverified header) in the image.
fn pages_of_type(img: &[u8], t: PageType) -> Vec<u64> {
    let src = RawSource::open(Arc::new(MemoryStorage::from_bytes(img.to_vec()))).unwrap();
    let infos = page_infos(&src).unwrap();
    infos
        .iter()
        .filter(|i| i.state == PageState::Reachable)
        .filter(|i| {
            let off = i.id as usize * PS;
            decode_header(&img[off..off + PS]).is_some_and(|h| h.page_type == t)
        })
        .map(|i| i.id)
        .collect()
}

/// Every key/value the engine returns for bucket `alpha`, or the first error.
fn read_alpha(f: &Fixture) -> crate::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let db = f.open()?;
    db.view(|tx| {
        let a = tx
            .bucket("alpha")?
            .ok_or_else(|| Error::bucket_not_found("alpha"))?;
        a.iter()?
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect()
    })
}

/// The engine's reads of bucket `alpha` after damage: a corruption error, or exactly the
/// data as committed (the damage was elsewhere) - never different bytes.
fn assert_alpha_fails_or_equals(f: &Fixture, expected: &[(Vec<u8>, Vec<u8>)]) {
    match read_alpha(f) {
        Ok(now) => assert_eq!(now, expected),
        Err(e) => assert!(e.is_corruption(), "{e}"),
    }
}

#[test]
fn engine_database_checks_clean_live_and_from_the_file() {
    let f = build();
    let db = f.open().unwrap();
    let tx = db.begin_read().unwrap();
    let r = check(tx.check_source(), CheckOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.keys_checked > 3000);
    drop(tx);
    drop(db);
    let r = f.raw_check();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let src = RawSource::open(Arc::new(MemoryStorage::from_bytes(f.image()))).unwrap();
    let st = super::stats(&src).unwrap();
    assert_eq!(st.leaked_pages, 0);
    assert!(st.branch_pages > 0 && st.overflow_pages > 0 && st.free_pages > 0);
    assert_eq!(st.buckets, 4);
}

#[test]
fn engine_database_checks_clean_with_uncheckpointed_commits() {
    let f = build();
    let db = f.open().unwrap();
    db.update(|tx| -> crate::Result<_> {
        let a = tx.bucket("alpha")?.unwrap();
        for i in 0..500 {
            a.put(key(i), b"journal only")?;
        }
        Ok(())
    })
    .unwrap();
    let tx = db.begin_read().unwrap();
    let r = check(tx.check_source(), CheckOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

/// Damage one page of a leaf's kind in the checkpointed file; the check must name it,
/// and the engine must refuse (not misread) the data in it.
fn damage_leaf(f: &Fixture, damage: impl Fn(&mut Vec<u8>, usize)) -> (u64, Report) {
    let mut img = f.image();
    let leaves = pages_of_type(&img, PageType::Leaf);
    let victim = leaves[leaves.len() / 2];
    damage(&mut img, victim as usize * PS);
    f.set_image(img);
    (victim, f.raw_check())
}

#[test]
fn bit_flip_in_a_real_leaf() {
    let f = build();
    let before = read_alpha(&f).unwrap();
    let (victim, r) = damage_leaf(&f, |img, off| img[off + 700] ^= 0x10);
    expect_kinds(&r, &[K::Checksum]);
    assert_eq!(r.findings[0].page, Some(victim));
    // The engine returns either an error or exactly the old data for alpha (the victim
    // may be in another bucket), never different bytes.
    assert_alpha_fails_or_equals(&f, &before);
}

#[test]
fn zeroed_real_leaf() {
    let f = build();
    let before = read_alpha(&f).unwrap();
    let (victim, r) = damage_leaf(&f, |img, off| img[off..off + PS].fill(0));
    expect_kinds(&r, &[K::ZeroedPage]);
    assert_eq!(r.findings[0].page, Some(victim));
    assert_alpha_fails_or_equals(&f, &before);
}

#[test]
fn stale_copy_of_a_page_from_an_older_file() {
    // The lost-write case: keep an old image of the file, change the data, restore one
    // page from the old image.
    let f = build();
    let old = f.image();
    let db = f.open().unwrap();
    db.update(|tx| -> crate::Result<_> {
        let a = tx.bucket("alpha")?.unwrap();
        for i in 0..3000 {
            if i % 7 != 0 {
                a.put(key(i), b"updated")?;
            }
        }
        Ok(())
    })
    .unwrap();
    db.checkpoint().unwrap();
    drop(db);
    let expected = read_alpha(&f).unwrap();
    let mut img = f.image();
    let new_leaves = pages_of_type(&img, PageType::Leaf);
    // A page that is a reachable leaf now and held other valid content before.
    let victim = new_leaves
        .iter()
        .copied()
        .find(|&p| {
            let off = p as usize * PS;
            off + PS <= old.len()
                && old[off..off + PS] != img[off..off + PS]
                && crate::format::verify_page(&old[off..off + PS], crate::format::PageId(p), PS)
                    .is_ok()
        })
        .expect("a page rewritten since the old image");
    let off = victim as usize * PS;
    img[off..off + PS].copy_from_slice(&old[off..off + PS]);
    f.set_image(img);
    let r = f.raw_check();
    expect_kinds(&r, &[K::ParentMismatch]);
    assert_eq!(r.findings[0].page, Some(victim));
    // Reading alpha either fails with a corruption error (the victim is in alpha) or
    // returns exactly the data as committed - never the stale page's older values.
    assert_alpha_fails_or_equals(&f, &expected);
}

#[test]
fn swapped_pages_self_identify_as_other_ids() {
    let f = build();
    let before = read_alpha(&f).unwrap();
    let mut img = f.image();
    let leaves = pages_of_type(&img, PageType::Leaf);
    let (a, b) = (leaves[1] as usize, leaves[2] as usize);
    let pa = img[a * PS..(a + 1) * PS].to_vec();
    let pb = img[b * PS..(b + 1) * PS].to_vec();
    img[a * PS..(a + 1) * PS].copy_from_slice(&pb);
    img[b * PS..(b + 1) * PS].copy_from_slice(&pa);
    f.set_image(img);
    let r = f.raw_check();
    expect_kinds(&r, &[K::PageIdMismatch]);
    let pages: Vec<Option<u64>> = r.findings.iter().map(|f| f.page).collect();
    assert!(pages.contains(&Some(a as u64)) && pages.contains(&Some(b as u64)));
    assert_alpha_fails_or_equals(&f, &before);
}

#[test]
fn leaked_and_double_freed_pages_in_a_real_file() {
    // Rewrite the freelist through the format encoders: drop one run (leak) and list
    // a reachable page (reachable_freed).
    let f = build();
    let img = f.image();
    let src = RawSource::open(Arc::new(MemoryStorage::from_bytes(img.clone()))).unwrap();
    let infos = page_infos(&src).unwrap();
    let free: Vec<u64> = infos
        .iter()
        .filter(|i| i.state == PageState::Free)
        .map(|i| i.id)
        .collect();
    assert!(!free.is_empty());
    let leaf = infos.iter().find(|i| i.kind == PageKind::Leaf).unwrap().id;
    let meta = super::CheckSource::meta(&src);
    let fl = meta.freelist;
    // Leak the first free page, free a reachable leaf.
    let mut runs: Vec<(u64, u64)> = free.iter().skip(1).map(|&p| (p, 1)).collect();
    runs.push((leaf, 1));
    runs.sort_unstable();
    let (page, h) = crate::format::encode_freelist(
        &runs,
        fl.page_id,
        meta.txid,
        PS,
        fl.extent_pages
            .max(((runs.len() * 16 + 48).div_ceil(PS)) as u32),
    )
    .unwrap();
    let mut img = img;
    let off = fl.page_id.get() as usize * PS;
    if img.len() < off + page.len() {
        img.resize(off + page.len(), 0);
    }
    img[off..off + page.len()].copy_from_slice(&page);
    let new_meta = crate::format::Meta {
        freelist: h.reference(),
        txid: meta.txid.next().unwrap(),
        meta_seq: meta.meta_seq + 1,
        ..meta
    };
    let slot = 1 - src.active_slot_for_tests();
    img[slot as usize * PS..(slot as usize + 1) * PS].copy_from_slice(&new_meta.encode().unwrap());
    f.set_image(img);
    let r = f.raw_check();
    expect_kinds(&r, &[K::ReachableFreed, K::Unreachable]);
    let leaked = r
        .findings
        .iter()
        .find(|x| x.kind == K::Unreachable)
        .unwrap();
    assert_eq!(leaked.page, Some(free[0]));
    let freed = r
        .findings
        .iter()
        .find(|x| x.kind == K::ReachableFreed)
        .unwrap();
    assert_eq!(freed.page, Some(leaf));
}

#[test]
fn damaged_newer_meta_of_a_real_file() {
    let f = build();
    let mut img = f.image();
    let src = RawSource::open(Arc::new(MemoryStorage::from_bytes(img.clone()))).unwrap();
    let active = src.active_slot_for_tests();
    img[active as usize * PS + 100] ^= 1;
    f.set_image(img);
    let r = f.raw_check();
    let kinds: Vec<K> = r.findings.iter().map(|x| x.kind).collect();
    // Without the journal's evidence nothing proves the damaged slot older: an error.
    assert!(kinds.contains(&K::MetaInvalid), "{kinds:?}");
    assert!(!kinds.contains(&K::MetaFallback), "{kinds:?}");
}

/// Regression (found by this checker): the checkpoint wrote overlay images home in
/// page-id order, so a stale single-page image could overwrite part of a newer
/// multi-page extent that reused the page (fixed on main by writing in commit order).
#[test]
fn engine_checkpoint_after_several_commits_keeps_overflow_extents_intact() {
    let f = Fixture::new();
    let db = f.open().unwrap();
    build_rounds(&db, false);
    db.checkpoint().unwrap();
    let tx = db.begin_read().unwrap();
    let r = check(tx.check_source(), CheckOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

/// Random puts (ascending, descending, random keys; small and overflow values), deletes,
/// nested buckets and bucket deletions: every commit's snapshot must check clean (no
/// false positives, in particular on separator bounds after inserts below the first key).
#[test]
fn random_engine_workloads_always_check_clean() {
    for checkpoint_each in [false, true] {
        let f = Fixture::new();
        let db = f.open().unwrap();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for commit in 0..40u32 {
            let ops: Vec<u64> = (0..300).map(|_| next()).collect();
            db.update(|tx| -> crate::Result<_> {
                for (j, r) in ops.iter().enumerate() {
                    let bucket = ["a", "b", "c"][(r % 3) as usize];
                    let b = tx.create_bucket_if_not_exists(bucket)?;
                    let k = match commit % 3 {
                        0 => format!("{:08}", 100_000 - commit * 300 - j as u32),
                        1 => format!("{:08}", r % 5000),
                        _ => format!("{:08}", commit * 300 + j as u32),
                    };
                    match (r >> 8) % 10 {
                        0..=5 => b.put(&k, vec![b'v'; 1 + (r >> 16) as usize % 200])?,
                        6 => b.put(&k, vec![b'o'; 5000 + (r >> 16) as usize % 9000])?,
                        7 | 8 => {
                            b.delete(&k)?;
                        }
                        _ => {
                            let n = b.create_bucket_if_not_exists(format!("n{}", r % 4))?;
                            n.put(&k, b"nested")?;
                        }
                    }
                }
                if commit % 13 == 12 {
                    tx.delete_bucket("c")?;
                }
                Ok(())
            })
            .unwrap();
            if checkpoint_each {
                db.checkpoint().unwrap();
            }
            let tx = db.begin_read().unwrap();
            let r = check(tx.check_source(), CheckOptions::default()).unwrap();
            assert!(
                r.findings.is_empty(),
                "commit {commit} (checkpoint_each {checkpoint_each}): {:#?}",
                r.findings
            );
        }
        if checkpoint_each {
            drop(db);
            let r = f.raw_check();
            assert!(r.findings.is_empty(), "{:#?}", r.findings);
        }
    }
}

// ---- structural damage in real files: re-encode a chain of pages up to a new meta ----

use crate::format::{
    encode_branch, encode_leaf, verify_page, BucketHeader, LeafValue, Meta, NodeView, PageHeader,
    PageRef,
};

#[derive(Debug, Clone)]
enum Val {
    Inline(Vec<u8>),
    Overflow(PageRef, u64),
    Bucket(BucketHeader),
}

#[derive(Debug, Clone)]
enum Entries {
    Leaf(Vec<(Vec<u8>, Val)>),
    Branch(Vec<(Vec<u8>, PageRef)>),
}

fn read_node(img: &[u8], r: PageRef) -> Entries {
    let off = r.page_id.get() as usize * PS;
    let bytes = &img[off..off + r.extent_pages as usize * PS];
    let h = verify_page(bytes, r.page_id, PS).unwrap();
    let v = NodeView::validate(bytes, &h).unwrap();
    if v.is_leaf() {
        Entries::Leaf(
            (0..v.len())
                .map(|i| {
                    let val = match v.leaf_value(i).unwrap() {
                        LeafValue::Inline(b) => Val::Inline(b.to_vec()),
                        LeafValue::Overflow { extent, len } => Val::Overflow(extent, len),
                        LeafValue::Bucket(b) => Val::Bucket(b),
                    };
                    (v.key(i).unwrap().to_vec(), val)
                })
                .collect(),
        )
    } else {
        Entries::Branch(
            (0..v.len())
                .map(|i| (v.key(i).unwrap().to_vec(), v.branch_child(i).unwrap()))
                .collect(),
        )
    }
}

fn write_node(
    img: &mut [u8],
    id: crate::format::PageId,
    txid: crate::format::TxId,
    e: &Entries,
) -> PageRef {
    // The rewritten page stays in the tree it was in.
    let off = id.get() as usize * PS;
    let tree = crate::format::decode_header(&img[off..])
        .map_or(crate::format::BucketId::ROOT, |h| h.tree_id);
    let (page, h): (Vec<u8>, PageHeader) = match e {
        Entries::Leaf(items) => {
            let items: Vec<(&[u8], LeafValue)> = items
                .iter()
                .map(|(k, v)| {
                    let lv = match v {
                        Val::Inline(b) => LeafValue::Inline(b),
                        Val::Overflow(extent, len) => LeafValue::Overflow {
                            extent: *extent,
                            len: *len,
                        },
                        Val::Bucket(b) => LeafValue::Bucket(*b),
                    };
                    (k.as_slice(), lv)
                })
                .collect();
            encode_leaf(&items, id, txid, tree, PS).unwrap()
        }
        Entries::Branch(items) => {
            let items: Vec<(&[u8], PageRef)> =
                items.iter().map(|(k, r)| (k.as_slice(), *r)).collect();
            encode_branch(&items, id, txid, tree, PS).unwrap()
        }
    };
    img[off..off + page.len()].copy_from_slice(&page);
    h.reference()
}

/// The chain of references from the meta's root to a page of bucket `alpha`'s tree:
/// [root-bucket leaf, alpha root, alpha root's first child, ...] down to `depth` levels
/// below the alpha root (fewer if a leaf comes first; `usize::MAX`: down to a leaf).
fn alpha_chain(img: &[u8], meta: &Meta, depth: usize) -> Vec<PageRef> {
    let mut chain = vec![meta.root];
    let Entries::Leaf(items) = read_node(img, meta.root) else {
        panic!("root bucket tree is expected to be one leaf");
    };
    let Some((_, Val::Bucket(h))) = items.iter().find(|(k, _)| k == b"alpha") else {
        panic!("no alpha");
    };
    chain.push(h.root);
    for _ in 0..depth {
        match read_node(img, *chain.last().unwrap()) {
            Entries::Branch(items) => chain.push(items[items.len() / 2].1),
            Entries::Leaf(_) => break,
        }
    }
    chain
}

/// Applies `f` to the last page of `chain`, re-encodes every page up the chain so each
/// parent vouches for its new child, and writes a newer meta into the inactive slot.
fn rewrite_chain(
    f: &Fixture,
    depth: usize,
    change: impl FnOnce(&mut Entries, &[PageRef]),
) -> Vec<PageRef> {
    let mut img = f.image();
    let src = RawSource::open(Arc::new(MemoryStorage::from_bytes(img.clone()))).unwrap();
    let meta = super::CheckSource::meta(&src);
    let txid = meta.txid.next().unwrap();
    let chain = alpha_chain(&img, &meta, depth);
    let last = *chain.last().unwrap();
    let mut e = read_node(&img, last);
    change(&mut e, &chain);
    let mut new_ref = write_node(&mut img, last.page_id, txid, &e);
    for (i, r) in chain.iter().enumerate().rev().skip(1) {
        let child_id = chain[i + 1].page_id;
        let mut e = read_node(&img, *r);
        match &mut e {
            Entries::Branch(items) => {
                for (_, c) in items.iter_mut().filter(|(_, c)| c.page_id == child_id) {
                    *c = new_ref;
                }
            }
            Entries::Leaf(items) => {
                for (_, v) in items.iter_mut() {
                    if let Val::Bucket(b) = v {
                        if b.root.page_id == child_id {
                            b.root = new_ref;
                        }
                    }
                }
            }
        }
        new_ref = write_node(&mut img, r.page_id, txid, &e);
    }
    let slot = 1 - src.active_slot_for_tests();
    let m = Meta {
        txid,
        root: new_ref,
        meta_seq: meta.meta_seq + 1,
        ..meta
    };
    img[slot as usize * PS..(slot as usize + 1) * PS].copy_from_slice(&m.encode().unwrap());
    f.set_image(img);
    chain
}

#[test]
fn real_branch_pointing_at_its_ancestor_is_a_cycle() {
    let f = build();
    // alpha's root branch: one child now points back at the root branch itself.
    let chain = rewrite_chain(&f, 0, |e, chain| {
        let me = chain[1];
        let Entries::Branch(items) = e else {
            panic!("alpha's root is expected to be a branch")
        };
        let n = items.len();
        items[n / 2].1 = me;
    });
    let r = f.raw_check();
    expect_kinds(&r, &[K::Cycle]);
    let c = r.findings.iter().find(|x| x.kind == K::Cycle).unwrap();
    let root = chain[1].page_id.get();
    assert_eq!(c.page, Some(root));
    assert_eq!(c.path, vec![chain[0].page_id.get(), root, root]);
    // The engine refuses to walk it: reading alpha fails, never loops.
    let e = read_alpha(&f).unwrap_err();
    assert!(e.is_corruption(), "{e}");
}

#[test]
fn real_leaf_with_keys_out_of_order_and_out_of_bounds() {
    let f = build();
    let chain = rewrite_chain(&f, usize::MAX, |e, _| {
        let Entries::Leaf(items) = e else {
            panic!("leaf")
        };
        items.swap(0, 1);
    });
    let r = f.raw_check();
    expect_kinds(&r, &[K::KeyOrder]);
    assert_eq!(
        r.findings[0].page,
        Some(chain.last().unwrap().page_id.get())
    );
    assert!(matches!(read_alpha(&f), Err(e) if e.is_corruption()));

    let f = build();
    let chain = rewrite_chain(&f, usize::MAX, |e, _| {
        let Entries::Leaf(items) = e else {
            panic!("leaf")
        };
        // A key far above this leaf's range, still sorted within the page.
        let v = items[0].1.clone();
        items.push((b"zzzz-out-of-range".to_vec(), v));
    });
    let r = f.raw_check();
    expect_kinds(&r, &[K::KeyOutOfBounds, K::BucketHeader]);
    assert!(r.findings.iter().any(
        |x| x.kind == K::KeyOutOfBounds && x.page == Some(chain.last().unwrap().page_id.get())
    ));
}

#[test]
fn check_of_an_old_snapshot_stays_clean_while_the_writer_moves_on() {
    // Check runs on a live database: the read snapshot pins its pages, so commits and
    // checkpoints made meanwhile neither disturb nor reuse what it reads.
    let f = build();
    let db = f.open().unwrap();
    let old = db.begin_read().unwrap();
    for round in 0..5u32 {
        db.update(|tx| -> crate::Result<_> {
            let a = tx.bucket("alpha")?.unwrap();
            for i in 0..3000 {
                if (i + round) % 3 == 0 {
                    a.delete(key(i))?;
                } else {
                    a.put(key(i), value(i, round + 10))?;
                }
            }
            Ok(())
        })
        .unwrap();
        db.checkpoint().unwrap();
    }
    let r = check(old.check_source(), CheckOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    let new = db.begin_read().unwrap();
    assert!(new.txid() > old.txid());
    let r = check(new.check_source(), CheckOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn real_page_of_another_tree_is_wrong_tree_and_never_read_as_data() {
    let f = build();
    // alpha's root page, re-sealed as a page of tree 99 and vouched for by its parent:
    // internally valid, correctly referenced, but not alpha's.
    let mut img = f.image();
    let src = RawSource::open(Arc::new(MemoryStorage::from_bytes(img.clone()))).unwrap();
    let meta = super::CheckSource::meta(&src);
    let alpha_root = alpha_chain(&img, &meta, 0)[1];
    let off = alpha_root.page_id.get() as usize * PS;
    let end = off + alpha_root.extent_pages as usize * PS;
    let mut h = decode_header(&img[off..end]).unwrap();
    h.tree_id = crate::format::BucketId(99);
    crate::format::seal_page(&mut img[off..end], &h).unwrap();
    f.set_image(img);
    rewrite_chain(&f, 0, |_, _| {});
    let r = f.raw_check();
    assert!(
        r.findings
            .iter()
            .any(|x| x.kind == K::WrongTree && x.page == Some(alpha_root.page_id.get())),
        "{:#?}",
        r.findings
    );
    let e = read_alpha(&f).expect_err("a page of another tree is never alpha's data");
    assert!(
        matches!(
            e,
            Error::Corrupted {
                kind: crate::CorruptionKind::ParentMismatch,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn bucket_ids_are_never_reused() {
    let f = Fixture::new();
    let db = f.open().unwrap();
    db.update(|tx| -> crate::Result<_> {
        tx.create_bucket("a")?.put("k", "1")?;
        tx.create_bucket("b")?;
        Ok(())
    })
    .unwrap();
    db.update(|tx| tx.delete_bucket("a")).unwrap();
    db.update(|tx| tx.create_bucket("a")?.put("k", "2"))
        .unwrap();
    db.checkpoint().unwrap();
    let tx = db.begin_read().unwrap();
    let r = check(tx.check_source(), CheckOptions::default()).unwrap();
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    drop(tx);
    drop(db);
    // The re-created "a" has id 4 (2 and 3 went to the first "a" and "b").
    let img = f.image();
    let src = RawSource::open(Arc::new(MemoryStorage::from_bytes(img.clone()))).unwrap();
    let meta = super::CheckSource::meta(&src);
    assert_eq!(meta.next_bucket_id, crate::format::BucketId(5));
    let Entries::Leaf(items) = read_node(&img, meta.root) else {
        panic!("one root leaf");
    };
    let ids: Vec<(Vec<u8>, u64)> = items
        .iter()
        .filter_map(|(k, v)| match v {
            Val::Bucket(h) => Some((k.clone(), h.bucket_id.get())),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![(b"a".to_vec(), 4), (b"b".to_vec(), 3)]);
}
