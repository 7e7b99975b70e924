//! The checker's corruption matrix over images built with the `format` encoders.
//!
//! Every test builds a small database image, damages it in one way and runs it through
//! one helper, [`expect`], which asserts the exact set of (kind, page) findings.
//!
//! Longer than the engine's ~600-line guide on purpose: the corruption matrix is one
//! table of cases through one helper; split, it would be scattered over files that
//! share the image builder.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use crate::fuzzing::{mutate, Rng};
use std::sync::{Arc, Mutex};

use crate::format::{
    decode_header, encode_branch, encode_freelist, encode_leaf, encode_overflow, seal_page,
    BucketHeader, BucketId, LeafValue, Meta, PageId, PageRef, TxId,
};
use crate::report::{FindingKind as K, PageKind, PageState, Report};
use crate::storage::{MemoryStorage, Storage};
use crate::Error;

use super::{
    check, check_storage, fuzz_entry, page_infos, stats, CheckOptions, CheckSource, RawSource,
};

const PS: usize = 4096;
const TXID: TxId = TxId(7);

/// A database image under construction, page by page.
struct Img {
    /// Pages of another tree than `tree_of` says.
    trees: Vec<(u64, BucketId)>,
    bytes: Vec<u8>,
}

fn rf(h: &crate::format::PageHeader) -> PageRef {
    h.reference()
}

impl Img {
    fn new(pages: u64) -> Img {
        Img {
            trees: Vec::new(),
            bytes: vec![0u8; pages as usize * PS],
        }
    }

    fn put(&mut self, id: u64, page: &[u8]) {
        let off = id as usize * PS;
        if self.bytes.len() < off + page.len() {
            self.bytes.resize(off + page.len(), 0);
        }
        self.bytes[off..off + page.len()].copy_from_slice(page);
    }

    fn page(&self, id: u64) -> Vec<u8> {
        self.bytes[id as usize * PS..(id as usize + 1) * PS].to_vec()
    }

    fn tree(&self, page: u64) -> BucketId {
        self.trees
            .iter()
            .find(|(p, _)| *p == page)
            .map_or_else(|| tree_of(page), |(_, t)| *t)
    }

    fn leaf(&mut self, id: u64, entries: &[(&[u8], LeafValue<'_>)]) -> PageRef {
        let (p, h) = encode_leaf(entries, PageId(id), TXID, self.tree(id), PS).unwrap();
        self.put(id, &p);
        rf(&h)
    }

    fn branch(&mut self, id: u64, entries: &[(&[u8], PageRef)]) -> PageRef {
        let (p, h) = encode_branch(entries, PageId(id), TXID, self.tree(id), PS).unwrap();
        self.put(id, &p);
        rf(&h)
    }

    fn overflow(&mut self, id: u64, value: &[u8]) -> PageRef {
        let (p, h) = encode_overflow(value, PageId(id), TXID, self.tree(id), PS).unwrap();
        self.put(id, &p);
        rf(&h)
    }

    fn freelist(&mut self, id: u64, runs: &[(u64, u64)]) -> PageRef {
        let (p, h) = encode_freelist(runs, PageId(id), TXID, PS, 1).unwrap();
        self.put(id, &p);
        rf(&h)
    }

    /// Writes both metas: slot 0 older (meta_seq 0), slot 1 newer (meta_seq 1), same tree.
    fn metas(&mut self, root: PageRef, freelist: PageRef, high_water: u64) {
        for slot in 0..2u64 {
            let m = Meta {
                txid: TXID,
                page_size: PS as u32,
                root,
                freelist,
                high_water: PageId(high_water),
                db_id: crate::format::DbId([9; 16]),
                meta_seq: slot,
                journal_salt: 1 + slot,
                state: crate::format::MetaState::Open,
                next_bucket_id: BucketId(10),
            };
            self.put(slot, &m.encode().unwrap());
        }
    }

    /// Re-seals page `id` after its header was changed by `f` (bytes stay as they are).
    fn reseal(&mut self, id: u64, f: impl FnOnce(&mut crate::format::PageHeader)) -> PageRef {
        let mut page = self.page(id);
        let mut h = decode_header(&page).unwrap();
        f(&mut h);
        h.checksum = seal_page(&mut page, &h).unwrap();
        self.put(id, &page);
        rf(&h)
    }

    fn flip(&mut self, id: u64, byte: usize) {
        self.bytes[id as usize * PS + byte] ^= 0x40;
    }

    fn zero(&mut self, id: u64) {
        self.put(id, &[0u8; PS]);
    }

    fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(MemoryStorage::from_bytes(self.bytes.clone()))
    }

    fn check(&self) -> Report {
        check_storage(self.storage(), CheckOptions::default()).expect("check runs")
    }
}

/// The tree a hand-built page belongs to. Every image here follows one layout: page 2
/// is the root bucket's leaf and every other tree page belongs to the one top-level
/// bucket with a tree (id 2), except the pages an image names in `Img::trees` (the
/// standard image's bucket "a/sub").
fn tree_of(page: u64) -> BucketId {
    match page {
        2 => BucketId::ROOT,
        _ => BucketId(2),
    }
}

/// A bucket header with the id `tree_of` gives its root (9 for an empty bucket).
fn bucket(root: PageRef, count: u64) -> LeafValue<'static> {
    let id = if root.is_null() {
        BucketId(9)
    } else {
        BucketId(2)
    };
    bucket_with_id(root, count, id)
}

fn bucket_with_id(root: PageRef, count: u64, bucket_id: BucketId) -> LeafValue<'static> {
    LeafValue::Bucket(BucketHeader {
        root,
        sequence: 0,
        count,
        bucket_id,
    })
}

/// The standard image, built bottom-up (tests change one `Knobs` field):
///
/// ```text
/// 0,1   metas (slot 1 newer)        8   freelist: runs (9, 2)
/// 2     root bucket leaf: "a" -> bucket(root 3, count 4), "b" -> bucket(empty)
/// 3     bucket "a" branch: "k1" -> 4, "k5" -> 5
/// 4     leaf: k1, k2
/// 5     leaf: k5, k6 (overflow 6..=7), "sub" -> bucket(root 11, count 1)
/// 9,10  free                        11  bucket "a/sub" leaf: x
/// ```
struct Knobs {
    leaf4: Vec<(&'static [u8], &'static [u8])>,
    a_count: u64,
    b_count: u64,
    free_runs: Vec<(u64, u64)>,
    high_water: u64,
    /// Replaces the branch's second child reference.
    branch_child1: Option<PageRef>,
    overflow_len: Option<u64>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            leaf4: vec![(b"k1", b"v1"), (b"k2", b"v2")],
            a_count: 4,
            b_count: 0,
            free_runs: vec![(9, 2)],
            high_water: 12,
            branch_child1: None,
            overflow_len: None,
        }
    }
}

struct Std {
    img: Img,
    refs: Refs,
}

#[allow(dead_code)]
struct Refs {
    root: PageRef,
    branch: PageRef,
    leaf4: PageRef,
    leaf5: PageRef,
    overflow: PageRef,
    freelist: PageRef,
    sub: PageRef,
}

const BIG: [u8; 6000] = [0xab; 6000];

fn standard(k: Knobs) -> Std {
    let mut img = Img::new(k.high_water);
    img.trees.push((11, BucketId(3)));
    let sub = img.leaf(11, &[(b"x", LeafValue::Inline(b"1"))]);
    let overflow = img.overflow(6, &BIG);
    assert_eq!(overflow.extent_pages, 2);
    let leaf4_entries: Vec<(&[u8], LeafValue)> = k
        .leaf4
        .iter()
        .map(|(key, v)| (*key, LeafValue::Inline(v)))
        .collect();
    let leaf4 = img.leaf(4, &leaf4_entries);
    let leaf5 = img.leaf(
        5,
        &[
            (b"k5", LeafValue::Inline(b"v5")),
            (
                b"k6",
                LeafValue::Overflow {
                    extent: overflow,
                    len: k.overflow_len.unwrap_or(BIG.len() as u64),
                },
            ),
            (b"sub", bucket_with_id(sub, 1, BucketId(3))),
        ],
    );
    let branch = img.branch(
        3,
        &[(b"k1", leaf4), (b"k5", k.branch_child1.unwrap_or(leaf5))],
    );
    let root = img.leaf(
        2,
        &[
            (b"a", bucket(branch, k.a_count)),
            (b"b", bucket(PageRef::NULL, k.b_count)),
        ],
    );
    let freelist = img.freelist(8, &k.free_runs);
    img.metas(root, freelist, k.high_water);
    Std {
        img,
        refs: Refs {
            root,
            branch,
            leaf4,
            leaf5,
            overflow,
            freelist,
            sub,
        },
    }
}

/// The one assertion helper: the report holds exactly these (kind, page) findings.
fn expect(report: &Report, expected: &[(K, Option<u64>)]) {
    let mut got: Vec<(K, Option<u64>)> = report.findings.iter().map(|f| (f.kind, f.page)).collect();
    let mut want = expected.to_vec();
    got.sort();
    want.sort();
    assert_eq!(
        got,
        want,
        "findings:\n{}",
        report
            .findings
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn finding(report: &Report, kind: K) -> &crate::report::Finding {
    report
        .findings
        .iter()
        .find(|f| f.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} finding in {:?}", report.findings))
}

#[test]
fn clean_image_has_no_findings_and_counts_everything() {
    let s = standard(Knobs::default());
    let r = s.img.check();
    expect(&r, &[]);
    assert!(r.is_ok());
    assert_eq!(r.keys_checked, 5, "k1 k2 k5 k6 x");
    assert_eq!(r.buckets_checked, 3, "a, b, a/sub");
    assert_eq!(r.txid, TXID.get());
    assert_eq!(r.high_water_mark, 12);

    let src = RawSource::open(s.img.storage()).unwrap();
    let st = stats(&src).unwrap();
    assert_eq!(st.branch_pages, 1);
    assert_eq!(st.leaf_pages, 4);
    assert_eq!(st.overflow_pages, 2);
    assert_eq!(st.freelist_pages, 1);
    assert_eq!(st.free_pages, 2);
    assert_eq!(st.leaked_pages, 0);
    assert_eq!(st.tree_depth_max, 2);
    assert_eq!(st.buckets, 3);
    assert_eq!(st.keys, 5);
    assert_eq!(st.value_bytes, 2 + 2 + 2 + 6000 + 1);
    assert!(st.fill_factor() > 0.0 && st.fill_factor() < 0.2);

    let infos = page_infos(&src).unwrap();
    let kinds: Vec<(PageKind, PageState)> = infos.iter().map(|i| (i.kind, i.state)).collect();
    use PageKind as P;
    use PageState as S;
    assert_eq!(
        kinds,
        vec![
            (P::Meta, S::Reachable),
            (P::Meta, S::Reachable),
            (P::Leaf, S::Reachable),
            (P::Branch, S::Reachable),
            (P::Leaf, S::Reachable),
            (P::Leaf, S::Reachable),
            (P::Overflow, S::Reachable),
            (P::Overflow, S::Reachable),
            (P::Freelist, S::Reachable),
            (P::Free, S::Free),
            (P::Free, S::Free),
            (P::Leaf, S::Reachable),
        ]
    );
    assert_eq!(infos[6].overflow, 1);
    assert_eq!(infos[5].items, 3);
}

#[test]
fn checksum_flip_is_reported_once_at_the_page() {
    let mut s = standard(Knobs::default());
    s.img.flip(4, 100);
    let r = s.img.check();
    expect(&r, &[(K::Checksum, Some(4))]);
    assert_eq!(finding(&r, K::Checksum).path, vec![2, 3, 4]);
}

#[test]
fn zeroed_page() {
    let mut s = standard(Knobs::default());
    s.img.zero(5);
    // Page 5's overflow value and sub-bucket are no longer reachable: leaked.
    let r = s.img.check();
    expect(
        &r,
        &[
            (K::ZeroedPage, Some(5)),
            (K::Unreachable, Some(6)),
            (K::Unreachable, Some(11)),
        ],
    );
}

#[test]
fn one_damaged_page_is_one_root_cause_with_its_leaked_subtree() {
    // The branch of bucket "a" is zeroed: its leaves (4, 5), the overflow extent (6..=7)
    // and the sub-bucket's leaf (11) are leaked. The leaked runs whose node pages hold
    // keys that fit only the lost subtree are consequences of the zeroed page.
    let mut s = standard(Knobs::default());
    s.img.zero(3);
    let r = s.img.check();
    expect(
        &r,
        &[
            (K::ZeroedPage, Some(3)),
            (K::Unreachable, Some(4)),
            (K::Unreachable, Some(11)),
        ],
    );
    let causes: Vec<Option<usize>> = r.findings.iter().map(|f| f.cause).collect();
    assert_eq!(causes, [None, Some(0), Some(0)]);
    let groups = r.root_causes();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].finding.kind, K::ZeroedPage);
    assert_eq!(groups[0].consequence_kinds(), "2 unreachable");
}

#[test]
fn misdirected_write_self_identifies_as_another_page() {
    let mut s = standard(Knobs::default());
    let five = s.img.page(5);
    s.img.put(4, &five);
    expect(&s.img.check(), &[(K::PageIdMismatch, Some(4))]);
}

#[test]
fn stale_page_from_an_older_commit_is_a_parent_mismatch() {
    // The lost-write case: page 4 still holds the image an older commit wrote.
    let old = standard(Knobs::default());
    let mut s = standard(Knobs {
        leaf4: vec![(b"k1", b"new"), (b"k2", b"v2")],
        ..Knobs::default()
    });
    s.img.put(4, &old.img.page(4));
    let r = s.img.check();
    expect(&r, &[(K::ParentMismatch, Some(4))]);
    assert_eq!(finding(&r, K::ParentMismatch).path, vec![2, 3, 4]);
}

#[test]
fn wrong_page_type_for_the_position() {
    // Bucket "b"'s root points at the overflow extent (a valid page, wrong type).
    let mut img = Img::new(6);
    let ov = img.overflow(3, b"value");
    let root = img.leaf(2, &[(b"b", bucket(ov, 0))]);
    img.metas(root, PageRef::NULL, 4);
    expect(&img.check(), &[(K::InvalidType, Some(3))]);

    // The freelist reference points at a leaf.
    let mut img = Img::new(4);
    let leaf = img.leaf(3, &[(b"x", LeafValue::Inline(b"1"))]);
    let root = img.leaf(2, &[(b"b", bucket(PageRef::NULL, 0))]);
    img.metas(root, leaf, 4);
    expect(&img.check(), &[(K::InvalidType, Some(3))]);
}

#[test]
fn element_count_beyond_the_page_is_element_bounds() {
    let mut s = standard(Knobs::default());
    let leaf4 = s.img.reseal(4, |h| h.count = 5000);
    // The parent must vouch for the damaged page for the check to reach element bounds.
    let leaf5 = s.refs.leaf5;
    let branch = s.img.branch(3, &[(b"k1", leaf4), (b"k5", leaf5)]);
    let root = s.img.leaf(
        2,
        &[(b"a", bucket(branch, 4)), (b"b", bucket(PageRef::NULL, 0))],
    );
    s.img.metas(root, s.refs.freelist, 12);
    expect(&s.img.check(), &[(K::ElementBounds, Some(4))]);
}

/// Rebuilds the branch (page 3) and the root over new refs to the two leaves, so that the
/// parents vouch for a page the test damaged.
fn vouch_for(s: &mut Std, leaf4: PageRef, leaf5: PageRef) {
    let branch = s.img.branch(3, &[(b"k1", leaf4), (b"k5", leaf5)]);
    let root = s.img.leaf(
        2,
        &[(b"a", bucket(branch, 4)), (b"b", bucket(PageRef::NULL, 0))],
    );
    s.img.metas(root, s.refs.freelist, 12);
}

#[test]
fn a_page_of_another_tree_is_wrong_tree() {
    // Leaf 5 claims the tree of bucket "a/sub" (3) while bucket "a" (2) references it.
    let mut s = standard(Knobs::default());
    let leaf5 = s.img.reseal(5, |h| h.tree_id = BucketId(3));
    let leaf4 = s.refs.leaf4;
    vouch_for(&mut s, leaf4, leaf5);
    let r = s.img.check();
    // The leaf is not walked: its overflow value and sub-bucket are unreachable.
    expect(
        &r,
        &[
            (K::WrongTree, Some(5)),
            (K::Unreachable, Some(6)),
            (K::Unreachable, Some(11)),
        ],
    );
    assert_eq!(finding(&r, K::WrongTree).path, vec![2, 3, 5]);
}

#[test]
fn a_wrong_common_prefix_or_key_prefix_is_key_prefix() {
    // A common prefix the keys do not share ("k1", "k2" share one byte, not two).
    let mut s = standard(Knobs::default());
    let leaf4 = s.img.reseal(4, |h| h.common_prefix_len = 2);
    let leaf5 = s.refs.leaf5;
    vouch_for(&mut s, leaf4, leaf5);
    expect(&s.img.check(), &[(K::KeyPrefix, Some(4))]);

    // An element's stored key prefix that is not its key's bytes.
    let mut s = standard(Knobs::default());
    s.img.flip(4, crate::format::PAGE_HEADER_SIZE + 12);
    let leaf4 = s.img.reseal(4, |_| {});
    let leaf5 = s.refs.leaf5;
    vouch_for(&mut s, leaf4, leaf5);
    expect(&s.img.check(), &[(K::KeyPrefix, Some(4))]);
}

#[test]
fn bucket_ids_must_be_unique_user_ids_below_the_meta_counter() {
    // (id of "a", id of the empty bucket "b", what the finding says)
    for (a_id, b_id, why) in [
        (1, 9, "below the first"),
        (10, 9, "not below"),
        (2, 2, "another bucket"),
    ] {
        let mut s = standard(Knobs::default());
        let header = |root, count, bucket_id| {
            LeafValue::Bucket(BucketHeader {
                root,
                sequence: 0,
                count,
                bucket_id: BucketId(bucket_id),
            })
        };
        let root = s.img.leaf(
            2,
            &[
                (b"a", header(s.refs.branch, 4, a_id)),
                (b"b", header(PageRef::NULL, 0, b_id)),
            ],
        );
        s.img.metas(root, s.refs.freelist, 12);
        let r = s.img.check();
        expect(&r, &[(K::BucketHeader, Some(2))]);
        assert!(finding(&r, K::BucketHeader).message.contains(why), "{r:?}");
    }
}

#[test]
fn unsorted_keys_in_a_page() {
    let s = standard(Knobs {
        leaf4: vec![(b"k2", b"v2"), (b"k1", b"v1")],
        ..Knobs::default()
    });
    expect(&s.img.check(), &[(K::KeyOrder, Some(4))]);
}

#[test]
fn key_outside_the_parents_separator_bounds() {
    // Leaf 4 is child 0 of a branch whose next separator is "k5": "k7" does not belong.
    let s = standard(Knobs {
        leaf4: vec![(b"k1", b"v1"), (b"k7", b"v7")],
        ..Knobs::default()
    });
    let r = s.img.check();
    expect(&r, &[(K::KeyOutOfBounds, Some(4))]);
    // A child key smaller than its separator (bbolt's "child key smaller than parent").
    let s = standard(Knobs {
        leaf4: vec![(b"k0", b"v1"), (b"k2", b"v7")],
        ..Knobs::default()
    });
    expect(&s.img.check(), &[(K::KeyOutOfBounds, Some(4))]);
}

#[test]
fn leaves_at_different_depths() {
    let mut img = Img::new(7);
    let deep_leaf = img.leaf(5, &[(b"m", LeafValue::Inline(b"1"))]);
    let mid = img.branch(4, &[(b"m", deep_leaf)]);
    let shallow = img.leaf(3, &[(b"a", LeafValue::Inline(b"1"))]);
    let br = img.branch(6, &[(b"a", shallow), (b"m", mid)]);
    let root = img.leaf(2, &[(b"t", bucket(br, 2))]);
    img.metas(root, PageRef::NULL, 7);
    expect(&img.check(), &[(K::UnevenDepth, Some(5))]);
}

#[test]
fn page_referenced_twice() {
    // The branch's second child is the first child again ("a page allocated twice").
    let leaf4 = standard(Knobs::default()).refs.leaf4;
    let s = standard(Knobs {
        branch_child1: Some(leaf4),
        ..Knobs::default()
    });
    let r = s.img.check();
    // Page 5 and everything below it is no longer referenced.
    expect(
        &r,
        &[
            (K::MultipleReferences, Some(4)),
            (K::Unreachable, Some(5)),
            (K::Unreachable, Some(11)),
        ],
    );
    assert_eq!(finding(&r, K::MultipleReferences).path, vec![2, 3, 4]);
}

#[test]
fn branch_pointing_at_its_ancestor_is_a_cycle_with_its_path() {
    // The page-cycle incident: a chain of branches whose last one points back up.
    // root leaf 2 -> bucket "t" -> branch 3 -> branch 4 -> branch 5 -> (4 again)
    let mut img = Img::new(8);
    let leaf = img.leaf(6, &[(b"a", LeafValue::Inline(b"1"))]);
    let back = PageRef {
        page_id: PageId(4),
        txid: TXID,
        checksum: 0x1234,
        extent_pages: 1,
    };
    let b5 = img.branch(5, &[(b"a", leaf), (b"b", back)]);
    let b4 = img.branch(4, &[(b"a", b5)]);
    let b3 = img.branch(3, &[(b"a", b4)]);
    let root = img.leaf(2, &[(b"t", bucket(b3, 1))]);
    img.metas(root, PageRef::NULL, 7);
    let r = img.check();
    expect(&r, &[(K::Cycle, Some(4))]);
    assert_eq!(finding(&r, K::Cycle).path, vec![2, 3, 4, 5, 4]);
    assert!(finding(&r, K::Cycle)
        .message
        .starts_with("page 5 references page 4"));
}

#[test]
fn bucket_root_pointing_at_an_ancestor_is_a_cycle() {
    let mut img = Img::new(4);
    // The root bucket's leaf names itself as the root of bucket "t".
    let me = PageRef {
        page_id: PageId(2),
        txid: TXID,
        checksum: 1,
        extent_pages: 1,
    };
    let root = img.leaf(2, &[(b"t", bucket(me, 0))]);
    img.metas(root, PageRef::NULL, 3);
    expect(&img.check(), &[(K::Cycle, Some(2))]);
}

#[test]
fn child_beyond_the_high_water_mark() {
    let s = standard(Knobs {
        branch_child1: Some(PageRef {
            page_id: PageId(40),
            txid: TXID,
            checksum: 0,
            extent_pages: 1,
        }),
        ..Knobs::default()
    });
    expect(
        &s.img.check(),
        &[
            (K::OutOfBounds, Some(40)),
            (K::Unreachable, Some(5)),
            (K::Unreachable, Some(11)),
        ],
    );
}

#[test]
fn reachable_page_in_the_freelist() {
    let s = standard(Knobs {
        free_runs: vec![(4, 1), (9, 2)],
        ..Knobs::default()
    });
    expect(&s.img.check(), &[(K::ReachableFreed, Some(4))]);
}

#[test]
fn leaked_pages_are_reported_as_runs() {
    let s = standard(Knobs {
        free_runs: vec![],
        high_water: 15,
        ..Knobs::default()
    });
    let r = s.img.check();
    expect(&r, &[(K::Unreachable, Some(9)), (K::Unreachable, Some(12))]);
    assert!(finding(&r, K::Unreachable).message.contains("9..=10"));
}

#[test]
fn double_free_in_the_freelist() {
    let s = standard(Knobs {
        free_runs: vec![(9, 2), (10, 1)],
        ..Knobs::default()
    });
    expect(&s.img.check(), &[(K::FreelistDuplicate, Some(10))]);
}

#[test]
fn freelist_entries_out_of_range() {
    for runs in [
        vec![(9, 2), (50, 1)],
        vec![(1, 1), (9, 2)],
        vec![(9, 2), (11, 0)],
    ] {
        let s = standard(Knobs {
            free_runs: runs.clone(),
            ..Knobs::default()
        });
        expect(&s.img.check(), &[(K::FreelistOutOfRange, Some(8))]);
    }
}

#[test]
fn freelist_that_cannot_be_decoded_skips_leak_accounting() {
    let mut s = standard(Knobs::default());
    let fl = s.img.reseal(8, |h| h.count = 3);
    s.img.metas(s.refs.root, fl, 12);
    // No Unreachable flood for the free pages the broken freelist no longer lists.
    expect(&s.img.check(), &[(K::FreelistCorrupt, Some(8))]);
}

#[test]
fn overflow_extent_out_of_bounds_or_wrong_length() {
    let mut img = Img::new(5);
    let root_leaf = |img: &mut Img, extent: PageRef, len: u64| {
        let b = img.leaf(3, &[(b"big", LeafValue::Overflow { extent, len })]);
        let root = img.leaf(2, &[(b"t", bucket(b, 1))]);
        img.metas(root, PageRef::NULL, 5);
    };
    let ov = img.overflow(4, b"12345");
    root_leaf(
        &mut img,
        PageRef {
            extent_pages: 3,
            ..ov
        },
        5,
    );
    // The extent is refused unread, so its pages are leaked as far as the walk knows.
    expect(
        &img.check(),
        &[(K::OverflowBounds, Some(4)), (K::Unreachable, Some(4))],
    );
    root_leaf(&mut img, ov, 6);
    expect(&img.check(), &[(K::OverflowBounds, Some(4))]);
    root_leaf(&mut img, ov, 5);
    expect(&img.check(), &[]);
}

#[test]
fn bucket_count_disagrees_with_its_tree() {
    let s = standard(Knobs {
        a_count: 5,
        ..Knobs::default()
    });
    let r = s.img.check();
    expect(&r, &[(K::BucketHeader, Some(2))]);
    assert_eq!(finding(&r, K::BucketHeader).path, vec![2]);
    let s = standard(Knobs {
        b_count: 3,
        ..Knobs::default()
    });
    expect(&s.img.check(), &[(K::BucketHeader, Some(2))]);
}

#[test]
fn root_bucket_holding_a_plain_value() {
    let mut img = Img::new(3);
    let root = img.leaf(2, &[(b"v", LeafValue::Inline(b"1"))]);
    img.metas(root, PageRef::NULL, 3);
    expect(&img.check(), &[(K::BucketHeader, Some(2))]);
}

#[test]
fn damaged_older_unused_meta_is_a_warning_only_with_the_journals_evidence() {
    // What a crash during a checkpoint's meta write leaves: the slot not in use is torn.
    let mut s = standard(Knobs::default());
    let slot1 = Meta::decode(&s.img.page(1), 1, PS).unwrap();
    s.img.flip(0, 200);
    // Without the journal nothing proves the torn slot older: it may have held newer
    // commits (J16).
    let r = s.img.check();
    expect(&r, &[(K::MetaInvalid, Some(0))]);
    assert!(!r.is_ok());
    // The journal's generation marker continues slot 1: the damage loses nothing.
    let (marker, _) = crate::format::RecordHeader::marker(&slot1).encode();
    let journal = MemoryStorage::from_bytes(marker.to_vec());
    let r =
        super::check_storage_with_journal(s.img.storage(), Some(&journal), CheckOptions::default())
            .unwrap();
    expect(&r, &[(K::MetaFallback, Some(0))]);
    assert!(r.is_ok(), "a warning, not a failure");
}

#[test]
fn damaged_newer_meta_without_evidence_is_an_error() {
    let mut s = standard(Knobs::default());
    s.img.flip(1, 300);
    let r = s.img.check();
    expect(&r, &[(K::MetaInvalid, Some(1))]);
    assert!(!r.is_ok());
}

#[test]
fn both_metas_damaged_is_a_report_not_an_error() {
    let mut s = standard(Knobs::default());
    s.img.flip(0, 300);
    s.img.flip(1, 300);
    expect(
        &s.img.check(),
        &[(K::MetaInvalid, Some(0)), (K::MetaInvalid, Some(1))],
    );
}

#[test]
fn not_a_database() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::from_bytes(vec![7u8; 9000]));
    assert!(matches!(
        check_storage(storage, CheckOptions::default()),
        Err(Error::NotADatabase(_))
    ));
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::from_bytes(vec![]));
    assert!(matches!(
        check_storage(storage, CheckOptions::default()),
        Err(Error::NotADatabase(_))
    ));
}

#[test]
fn tree_deeper_than_the_bound() {
    let n = crate::limits::MAX_TREE_DEPTH as u64 + 4;
    let mut img = Img::new(n + 4);
    let mut child = img.leaf(3, &[(b"a", LeafValue::Inline(b"1"))]);
    for id in 4..4 + n {
        child = img.branch(id, &[(b"a", child)]);
    }
    let root = img.leaf(2, &[(b"t", bucket(child, 1))]);
    img.metas(root, PageRef::NULL, 4 + n);
    let r = img.check();
    // The walk stops at the bound; the pages below are unreachable as far as it knows.
    expect(&r, &[(K::TooDeep, Some(7)), (K::Unreachable, Some(3))]);
}

#[test]
fn page_beyond_the_end_of_the_file_is_a_read_error() {
    let mut s = standard(Knobs::default());
    s.img.bytes.truncate(11 * PS);
    expect(&s.img.check(), &[(K::ReadError, Some(11))]);
}

#[test]
fn absurd_high_water_mark_is_refused_without_allocating() {
    let mut s = standard(Knobs::default());
    s.img.metas(s.refs.root, s.refs.freelist, 1 << 40);
    let r = s.img.check();
    assert_eq!(r.findings[0].kind, K::OutOfBounds);
    assert_eq!(r.findings[0].page, None);
    assert!(r.findings.len() <= 3, "{:?}", r.findings);
}

#[test]
fn findings_are_capped() {
    // 2000 leaked pages with gaps between them: one finding per run, capped at 10.
    let mut img = Img::new(3);
    let root = img.leaf(2, &[(b"b", bucket(PageRef::NULL, 0))]);
    let hwm = 4011;
    let runs: Vec<(u64, u64)> = (0..2000).map(|i| (11 + 2 * i, 1)).collect();
    let (p, h) = encode_freelist(&runs, PageId(3), TXID, PS, 8).unwrap();
    img.put(3, &p);
    let fl = rf(&h);
    img.metas(root, fl, hwm);
    img.bytes.resize(hwm as usize * PS, 0);
    let r = check_storage(
        img.storage(),
        CheckOptions {
            max_findings: 10,
            ..CheckOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.findings.len(), 10);
    assert!(r.truncated);
}

#[test]
fn from_page_checks_only_a_subtree() {
    let mut s = standard(Knobs {
        free_runs: vec![],
        ..Knobs::default()
    });
    s.img.flip(4, 100);
    let src = RawSource::open(s.img.storage()).unwrap();
    let r = check(
        &src,
        CheckOptions {
            from_page: Some(5),
            ..CheckOptions::default()
        },
    )
    .unwrap();
    expect(&r, &[]);
    assert_eq!(r.keys_checked, 3, "k5 k6 x");
    let r = check(
        &src,
        CheckOptions {
            from_page: Some(3),
            ..CheckOptions::default()
        },
    )
    .unwrap();
    expect(&r, &[(K::Checksum, Some(4))]);
    assert!(check(
        &src,
        CheckOptions {
            from_page: Some(99),
            ..CheckOptions::default()
        }
    )
    .is_err());
}

#[test]
fn progress_is_reported_and_can_cancel() {
    let s = standard(Knobs::default());
    let src = RawSource::open(s.img.storage()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let r = check(
        &src,
        CheckOptions {
            progress: Some(Box::new(move |p| {
                seen2.lock().unwrap().push(p);
                true
            })),
            ..CheckOptions::default()
        },
    )
    .unwrap();
    assert!(r.is_ok());
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 2);
    assert_eq!(seen.last().unwrap().pages_total, 12);
    let e = check(
        &src,
        CheckOptions {
            progress: Some(Box::new(|_| false)),
            ..CheckOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Cancelled));
}

#[test]
fn page_infos_mark_corrupt_leaked_and_free_pages() {
    let mut s = standard(Knobs::default());
    s.img.flip(4, 100);
    s.img.zero(9);
    let src = RawSource::open(s.img.storage()).unwrap();
    let infos = page_infos(&src).unwrap();
    assert_eq!(infos[4].state, PageState::Corrupt);
    assert_eq!(infos[9].state, PageState::Free);
    assert_eq!(stats(&src).unwrap().corrupt_pages, 1);
    let mut s = standard(Knobs::default());
    s.img.flip(0, 100);
    let src = RawSource::open(s.img.storage()).unwrap();
    let infos = page_infos(&src).unwrap();
    assert_eq!(
        (infos[0].kind, infos[0].state),
        (PageKind::Meta, PageState::Corrupt)
    );
    assert_eq!(infos[1].state, PageState::Reachable);
    let s = standard(Knobs {
        free_runs: vec![],
        ..Knobs::default()
    });
    let src = RawSource::open(s.img.storage()).unwrap();
    let infos = page_infos(&src).unwrap();
    assert_eq!(infos[9].state, PageState::Leaked);
    assert_eq!(infos[9].kind, PageKind::Unknown, "zero page has no header");
}

#[test]
fn every_finding_kind_has_a_test_or_is_engine_only() {
    // Kinds produced only outside this walk: `Journal` (journal replay in the engine),
    // `SnapshotHash` (etcd snapshot files, checked by untorn-bbolt:
    // `a_snapshot_file_with_a_bad_hash_is_a_finding`).
    let engine_only = [K::Journal, K::SnapshotHash];
    let src = include_str!("tests.rs");
    for k in K::ALL {
        if engine_only.contains(k) {
            continue;
        }
        let name = format!("K::{k:?}");
        assert!(src.contains(&name), "no test expects {name}");
    }
}

#[test]
fn mutated_images_never_panic() {
    // The same entry point as fuzz/fuzz_targets/check.rs, over deterministic mutations
    // of a valid image: byte flips, zeroed runs, copied pages, truncation, garbage.
    let base = standard(Knobs::default()).img.bytes;
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let mut img = base.clone();
        for _ in 0..1 + rng.index(4) {
            mutate(&mut rng, &mut img, PS);
        }
        fuzz_entry(&img);
    }
    // And pure garbage.
    for _ in 0..200 {
        let n = rng.index(20_000);
        let img: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
        fuzz_entry(&img);
    }
}

#[test]
fn check_source_is_object_safe() {
    let s = standard(Knobs::default());
    let src = RawSource::open(s.img.storage()).unwrap();
    let dyn_src: &dyn CheckSource = &src;
    assert_eq!(dyn_src.page_size(), PS);
    assert_eq!(dyn_src.active_slot(), Some(1));
}
