//! Page-level salvage against a model: a known workload (updates, deletes, nested
//! buckets, overflow values), random damage (zeroed, garbled or stale pages, metas and
//! branches included) to 1%, 10% and 30% of the pages, salvage into a new database.
//!
//! - every recovered pair was written (its bucket's model history holds the value), and
//!   is the newest committed value unless the report lists the key as possibly older;
//! - every key whose newest leaf (and overflow extent) survived is recovered, in place;
//! - at least 99% / 90% / 70% of the keys are recovered;
//! - the rebuilt database passes `check`.
//!
//! CI runs a small workload over a few seeds; `UNTORN_SALVAGE_KEYS` (keys per bucket)
//! and `UNTORN_SALVAGE_SEEDS` make a bigger run, which prints the recovered fractions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use untorn::unstable::format::{verify_page, LeafValue, NodeView, PageId, PageType};
use untorn::unstable::fuzzing::Rng;
use untorn::unstable::report::{DumpItem, PageKind, PageState, SalvageSummary};
use untorn::unstable::salvage::{salvage_file, SalvageOptions, SalvageProgress, LOST_AND_FOUND};
use untorn::{CheckOptions, Database};

type Path2 = Vec<Vec<u8>>;
/// Recovered pairs: bucket path, key, value.
type Pairs = Vec<(Path2, Vec<u8>, Vec<u8>)>;

const PS: usize = 4096;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The model: each key's history (every committed value, in order) and the final state.
#[derive(Default)]
struct Model {
    history: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    fin: BTreeMap<Vec<u8>, (Path2, Vec<u8>)>,
}

fn buckets() -> Vec<Path2> {
    vec![
        vec![b"alpha".to_vec()],
        vec![b"beta".to_vec()],
        vec![b"beta".to_vec(), b"nested".to_vec()],
        vec![b"gamma".to_vec()],
    ]
}

fn value(rng: &mut Rng, tag: u64, big: bool) -> Vec<u8> {
    let len = if big {
        1500 + rng.below(4000) as usize
    } else {
        8 + rng.below(80) as usize
    };
    let mut v = format!("v{tag}-").into_bytes();
    v.resize(len, b'a' + (tag % 26) as u8);
    v
}

/// Builds the database at `path` (closed cleanly); returns the model and a copy of the
/// data file from the middle of the workload (the source of stale pages).
fn build(path: &Path, seed: u64, per_bucket: u64) -> (Model, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let db = Database::builder().page_size(PS).create(path).unwrap();
    let mut model = Model::default();
    let bs = buckets();
    let mut tag = 0u64;
    let mut midway = Vec::new();
    let rounds = 4;
    for round in 0..rounds {
        let mut ops: Vec<(usize, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        for (bi, b) in bs.iter().enumerate() {
            for i in 0..per_bucket {
                let key = format!("{}-{i:06}", String::from_utf8_lossy(&b.concat())).into_bytes();
                let r = rng.below(100);
                let op = if round == 0 || r < 25 {
                    Some(true)
                } else if r < 32 {
                    Some(false)
                } else {
                    None
                };
                match op {
                    Some(true) => {
                        tag += 1;
                        let big = bi == 3 && i % 7 == 0;
                        ops.push((bi, key, Some(value(&mut rng, tag, big))));
                    }
                    Some(false) => ops.push((bi, key, None)),
                    None => {}
                }
            }
        }
        for chunk in ops.chunks(400) {
            db.update(|tx| {
                for (bi, key, v) in chunk {
                    let path = &bs[*bi];
                    let mut b = tx.create_bucket_if_not_exists(&path[0])?;
                    for n in &path[1..] {
                        b = b.create_bucket_if_not_exists(n)?;
                    }
                    match v {
                        Some(v) => b.put(key, v)?,
                        None => {
                            b.delete(key)?;
                        }
                    }
                }
                Ok::<_, untorn::Error>(())
            })
            .unwrap();
            for (bi, key, v) in chunk {
                match v {
                    Some(v) => {
                        model
                            .history
                            .entry(key.clone())
                            .or_default()
                            .push(v.clone());
                        model.fin.insert(key.clone(), (bs[*bi].clone(), v.clone()));
                    }
                    None => {
                        model.fin.remove(key);
                    }
                }
            }
        }
        if round == 1 {
            db.checkpoint().unwrap();
            midway = std::fs::read(path).unwrap();
        }
    }
    drop(db);
    (model, midway)
}

/// Keys whose newest leaf is page `id` (an extent of `pages` pages), with the pages their
/// overflow values need: the oracle of "every key whose newest leaf verifies".
fn live_leaves(path: &Path, bytes: &[u8]) -> Vec<(Vec<u64>, Vec<Vec<u8>>)> {
    let db = Database::builder().read_only(true).open(path).unwrap();
    let tx = db.begin_read().unwrap();
    let infos = untorn::unstable::check::page_infos(untorn::unstable::check_source(&tx)).unwrap();
    let mut out = Vec::new();
    for info in infos {
        if info.kind != PageKind::Leaf || info.state != PageState::Reachable {
            continue;
        }
        let extent = 1 + info.overflow as usize;
        let start = info.id as usize * PS;
        let page = &bytes[start..start + extent * PS];
        let h = verify_page(page, PageId(info.id), PS).unwrap();
        assert_eq!(h.page_type, PageType::Leaf);
        let node = NodeView::validate(page, &h).unwrap();
        for i in 0..node.len() {
            let key = node.key(i).unwrap().to_vec();
            let mut pages: Vec<u64> = (info.id..info.id + extent as u64).collect();
            match node.leaf_value(i).unwrap() {
                LeafValue::Bucket(_) => continue,
                LeafValue::Overflow { extent, .. } => pages.extend(
                    extent.page_id.get()..extent.page_id.get() + u64::from(extent.extent_pages),
                ),
                LeafValue::Inline(_) => {}
            }
            out.push((pages, vec![key]));
        }
    }
    out
}

/// Damages `fraction_pm` per mille of the pages (at least one), both metas from 10%
/// on and meta 0 always, and a branch; returns the damaged page ids.
fn damage(path: &Path, midway: &[u8], rng: &mut Rng, fraction_pm: u64) -> BTreeSet<u64> {
    let mut bytes = std::fs::read(path).unwrap();
    let n = (bytes.len() / PS) as u64;
    let want = ((n * fraction_pm).div_ceil(1000)).max(1);
    let mut hit = BTreeSet::new();
    hit.insert(0);
    if fraction_pm >= 100 {
        hit.insert(1);
    }
    // A branch page (found by type in the intact file).
    for id in 2..n {
        let p = &bytes[id as usize * PS..(id as usize + 1) * PS];
        if let Ok(h) = verify_page(p, PageId(id), PS) {
            if h.page_type == PageType::Branch && rng.coin() {
                hit.insert(id);
                break;
            }
        }
    }
    while (hit.len() as u64) < want {
        hit.insert(rng.below(n));
    }
    for &id in &hit {
        let page = &mut bytes[id as usize * PS..(id as usize + 1) * PS];
        match rng.below(3) {
            0 => page.fill(0),
            1 => {
                let at = rng.below((PS - 64) as u64) as usize;
                rng.fill(&mut page[at..at + 64]);
            }
            _ => {
                let old = midway.get(id as usize * PS..(id as usize + 1) * PS);
                match old {
                    Some(old) if old != &page[..] => page.copy_from_slice(old),
                    _ => rng.fill(&mut page[..]),
                }
            }
        }
    }
    std::fs::write(path, &bytes).unwrap();
    hit
}

struct Outcome {
    keys: usize,
    recovered: usize,
    summary: SalvageSummary,
}

fn salvage_into(src: &Path, dst: &Path) -> (SalvageSummary, Pairs) {
    let db = Database::create(dst).unwrap();
    let mut pairs = Vec::new();
    let tx = db.begin_write().unwrap();
    let summary = salvage_file(src, SalvageOptions::default(), |item| {
        match item {
            DumpItem::Bucket { path, sequence } => {
                let mut b = tx.create_bucket_if_not_exists(&path[0])?;
                for n in &path[1..] {
                    b = b.create_bucket_if_not_exists(n)?;
                }
                b.set_sequence(sequence)?;
            }
            DumpItem::Pair(p) => {
                let mut b = tx.create_bucket_if_not_exists(&p.bucket[0])?;
                for n in &p.bucket[1..] {
                    b = b.create_bucket_if_not_exists(n)?;
                }
                b.put(&p.key, &p.value)?;
                pairs.push((p.bucket, p.key, p.value));
            }
        }
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    tx.commit().unwrap();
    let report = db.check(CheckOptions::default()).unwrap();
    assert!(
        report.findings.is_empty(),
        "salvaged database fails check: {:?}",
        report.findings
    );
    (summary, pairs)
}

fn run(seed: u64, per_bucket: u64, fraction_pm: u64) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.untorn");
    let (model, midway) = build(&src, seed, per_bucket);
    let intact = std::fs::read(&src).unwrap();
    let leaves = live_leaves(&src, &intact);
    let mut rng = Rng::derive(seed, fraction_pm);
    let hit = damage(&src, &midway, &mut rng, fraction_pm);
    let damaged = std::fs::read(&src).unwrap();
    let (summary, pairs) = salvage_into(&src, &dir.path().join("out.untorn"));
    assert_eq!(
        std::fs::read(&src).unwrap(),
        damaged,
        "salvage wrote to its source"
    );
    let older: BTreeSet<(Path2, Vec<u8>)> = summary
        .possibly_older
        .iter()
        .map(|s| (s.bucket.clone(), s.key.clone()))
        .collect();
    let mut got: HashMap<Vec<u8>, (Path2, Vec<u8>)> = HashMap::new();
    for (bucket, key, value) in pairs {
        let history = model.history.get(&key);
        assert!(
            history.is_some_and(|h| h.contains(&value)),
            "seed {seed}: recovered {:?} = a value never written",
            String::from_utf8_lossy(&key)
        );
        let lost_found = bucket.first().map(Vec::as_slice) == Some(LOST_AND_FOUND);
        let newest = model.fin.get(&key);
        let exact = newest.is_some_and(|(p, v)| *v == value && (lost_found || *p == bucket));
        if !exact {
            assert!(
                older.contains(&(bucket.clone(), key.clone())),
                "seed {seed} {fraction_pm}‰: {:?} in {:?} is not the newest value and the report does not say so",
                String::from_utf8_lossy(&key),
                bucket
            );
        }
        got.insert(key, (bucket, value));
    }
    // Every key whose newest leaf (and overflow extent) survived is recovered, in place.
    for (pages, keys) in &leaves {
        if pages.iter().any(|p| hit.contains(p)) {
            continue;
        }
        for key in keys {
            let (path, v) = &model.fin[key];
            assert_eq!(
                got.get(key),
                Some(&(path.clone(), v.clone())),
                "seed {seed} {fraction_pm}‰: {:?}, whose leaf survived, not recovered in place",
                String::from_utf8_lossy(key)
            );
        }
    }
    let recovered = model
        .fin
        .iter()
        .filter(|(k, (_, v))| got.get(*k).is_some_and(|(_, g)| g == v))
        .count();
    if summary.lost.is_empty() && summary.possibly_older.is_empty() {
        assert_eq!(
            recovered,
            model.fin.len(),
            "\"nothing lost\" but keys are missing"
        );
    }
    Outcome {
        keys: model.fin.len(),
        recovered,
        summary,
    }
}

fn fraction(per_mille: u64, floor: f64) {
    let per_bucket = env_u64("UNTORN_SALVAGE_KEYS", 600);
    let seeds = env_u64("UNTORN_SALVAGE_SEEDS", 3);
    let (mut keys, mut recovered) = (0usize, 0usize);
    for seed in 0..seeds {
        let o = run(0x5a1_0000 + seed, per_bucket, per_mille);
        assert!(o.summary.pages_unreadable > 0);
        keys += o.keys;
        recovered += o.recovered;
        let f = o.recovered as f64 / o.keys as f64;
        assert!(
            f >= floor,
            "seed {seed}: {per_mille}‰ damage recovered {:.2}% < {:.0}%",
            f * 100.0,
            floor * 100.0
        );
    }
    eprintln!(
        "salvage model: {per_mille}‰ of pages damaged, {seeds} seeds x {} keys: {recovered}/{keys} = {:.2}% recovered",
        keys / seeds as usize,
        recovered as f64 * 100.0 / keys as f64
    );
}

#[test]
fn salvage_model_1_percent() {
    fraction(10, 0.99);
}

#[test]
fn salvage_model_10_percent() {
    fraction(100, 0.90);
}

#[test]
fn salvage_model_30_percent() {
    fraction(300, 0.70);
}

#[test]
fn salvage_of_an_intact_file_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.untorn");
    let (model, _) = build(&src, 7, 200);
    let (summary, pairs) = salvage_into(&src, &dir.path().join("out.untorn"));
    assert!(summary.nothing_lost(), "{:?}", summary.lost);
    assert_eq!(summary.pages_unreadable, 0);
    let got: BTreeMap<Vec<u8>, (Path2, Vec<u8>)> =
        pairs.into_iter().map(|(b, k, v)| (k, (b, v))).collect();
    assert_eq!(got, model.fin);
}

#[test]
fn salvage_reads_commits_only_in_the_journal_with_both_metas_destroyed() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.untorn");
    let db = Database::builder()
        .page_size(PS)
        .checkpoint_threshold_bytes(1 << 30)
        .create(&src)
        .unwrap();
    for t in 0..20u32 {
        db.update(|tx| {
            let b = tx.create_bucket_if_not_exists("j")?;
            for i in 0..50u32 {
                b.put(format!("k{:05}", t * 50 + i), format!("v{t}"))?;
            }
            Ok::<_, untorn::Error>(())
        })
        .unwrap();
    }
    // Copy data file and journal as they are while the database is open (nothing of
    // the 20 commits is home yet), then destroy both metas of the copy.
    let copy = dir.path().join("copy.untorn");
    let mut data = std::fs::read(&src).unwrap();
    std::fs::copy(untorn::journal_path(&src), untorn::journal_path(&copy)).unwrap();
    drop(db);
    data[..2 * PS].fill(0);
    std::fs::write(&copy, &data).unwrap();
    let (summary, pairs) = salvage_into(&copy, &dir.path().join("out.untorn"));
    assert_eq!(pairs.len(), 1000, "{summary:?}");
    assert!(summary.possibly_older.is_empty());
    assert!(pairs.iter().all(|(b, _, _)| b == &vec![b"j".to_vec()]));
}

#[test]
fn salvage_of_a_truncated_file_recovers_what_remains() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.untorn");
    let (model, _) = build(&src, 11, 400);
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(&src, &bytes[..bytes.len() / 3]).unwrap();
    let (summary, pairs) = salvage_into(&src, &dir.path().join("out.untorn"));
    assert!(!summary.nothing_lost());
    assert!(!pairs.is_empty());
    for (_, k, v) in pairs {
        assert!(model.history[&k].contains(&v));
    }
}

#[test]
fn salvage_progress_can_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.untorn");
    build(&src, 3, 100);
    let mut calls = 0;
    let mut cb = |_: &untorn::unstable::salvage::SalvageProgress| {
        calls += 1;
        false
    };
    let r = salvage_file(
        &src,
        SalvageOptions {
            progress: Some(&mut cb),
            ..SalvageOptions::default()
        },
        |_| Ok::<_, untorn::Error>(()),
    );
    assert!(matches!(r, Err(untorn::Error::Cancelled)));
    assert_eq!(calls, 1);
}

#[test]
fn salvage_uses_rollback_copies_only_to_refill_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.untorn");
    let db = Database::builder()
        .page_size(PS)
        .checkpoint_threshold_bytes(1 << 30)
        .create(&src)
        .unwrap();
    db.update(|tx| {
        tx.create_bucket_if_not_exists("r")?.put("base", "0")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    db.checkpoint().unwrap();
    for t in 0..5u32 {
        db.update(|tx| {
            tx.create_bucket_if_not_exists("r")?
                .put(format!("k{t}"), "v")?;
            Ok::<_, untorn::Error>(())
        })
        .unwrap();
    }
    // The journal's commits survive only as a rollback copy: they refill nothing the
    // newest commit (the checkpointed one) reaches, so they are not used at all.
    let copy = dir.path().join("copy.untorn");
    let data = std::fs::read(&src).unwrap();
    let journal = std::fs::read(untorn::journal_path(&src)).unwrap();
    drop(db);
    std::fs::write(&copy, &data).unwrap();
    let rollback = format!("{}.rollback-1", untorn::journal_path(&copy).display());
    std::fs::write(&rollback, &journal).unwrap();
    let (summary, pairs) = salvage_into(&copy, &dir.path().join("out.untorn"));
    let keys: Vec<&[u8]> = pairs.iter().map(|(_, k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![&b"base"[..]], "{summary:?}");
    assert!(summary.nothing_lost(), "{summary:?}");
}

/// Everything a salvage yields: the items in order, the report, and the "merge"
/// progress calls (done, total) it made (only a salvage that spilled makes them).
type Yield = (Vec<DumpItem>, SalvageSummary, Vec<(u64, u64)>);

fn salvage_items(src: &Path, budget: u64, temp: &Path) -> untorn::Result<Yield> {
    let mut merges = Vec::new();
    let mut cb = |p: &SalvageProgress| {
        if p.phase == "merge" {
            merges.push((p.done, p.total));
        }
        true
    };
    let mut items = Vec::new();
    let summary = salvage_file(
        src,
        SalvageOptions {
            progress: Some(&mut cb),
            memory_budget: budget,
            temp_dir: Some(temp.to_path_buf()),
            ..SalvageOptions::default()
        },
        |item| {
            items.push(item);
            Ok::<_, untorn::Error>(())
        },
    )?;
    Ok((items, summary, merges))
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// A damaged file (10% of its pages, metas and a branch included) with overflow values,
/// nested buckets and stale pages to refill from.
fn damaged_source(dir: &Path, seed: u64) -> std::path::PathBuf {
    let src = dir.join("src.untorn");
    let (_, midway) = build(&src, seed, 600);
    let mut rng = Rng::derive(seed, 100);
    damage(&src, &midway, &mut rng, 100);
    src
}

#[test]
fn salvage_with_a_tiny_budget_spills_and_yields_the_same_as_without() {
    let dir = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let src = damaged_source(dir.path(), 0x5a1_0001);
    let before = std::fs::read(&src).unwrap();
    let (want, want_summary, merges) = salvage_items(&src, u64::MAX, temp.path()).unwrap();
    assert!(merges.is_empty(), "an unlimited budget spilled: {merges:?}");
    assert!(!want_summary.possibly_older.is_empty() && !want_summary.lost.is_empty());
    let mut multi_pass = false;
    for budget in [96 << 10, 160 << 10, 256 << 10] {
        let (got, summary, merges) = salvage_items(&src, budget, temp.path()).unwrap();
        assert!(!merges.is_empty(), "budget {budget}: nothing spilled");
        multi_pass |= merges.iter().any(|&(done, _)| done > 0);
        assert_eq!(got.len(), want.len(), "budget {budget}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "budget {budget}: item {i} differs");
        }
        assert_eq!(summary, want_summary, "budget {budget}: the report differs");
        assert!(
            dir_is_empty(temp.path()),
            "budget {budget}: temporary files left"
        );
    }
    assert!(multi_pass, "no budget merged runs in more than one pass");
    assert_eq!(
        std::fs::read(&src).unwrap(),
        before,
        "salvage wrote to its source"
    );
}

#[test]
fn salvage_with_too_small_a_budget_fails_with_a_typed_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let src = damaged_source(dir.path(), 0x5a1_0002);
    // Too small for the scan's buffers: refused before anything is read.
    let e = salvage_items(&src, 1 << 10, temp.path()).unwrap_err();
    assert!(
        matches!(e, untorn::Error::MemoryBudget { budget: 1024, needed, .. } if needed > 1024),
        "{e:?}"
    );
    // Room for the buffers, not for the index of this file's pages.
    let e = salvage_items(&src, 48 << 10, temp.path()).unwrap_err();
    assert!(
        matches!(e, untorn::Error::MemoryBudget { what, .. } if what.contains("index")),
        "{e:?}"
    );
    assert!(dir_is_empty(temp.path()));
}

#[test]
fn salvage_cancelled_while_merging_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let src = damaged_source(dir.path(), 0x5a1_0003);
    let mut cb = |p: &SalvageProgress| p.phase != "merge";
    let r = salvage_file(
        &src,
        SalvageOptions {
            progress: Some(&mut cb),
            memory_budget: 160 << 10,
            temp_dir: Some(temp.path().to_path_buf()),
            ..SalvageOptions::default()
        },
        |_| Ok::<_, untorn::Error>(()),
    );
    assert!(matches!(r, Err(untorn::Error::Cancelled)), "{r:?}");
    assert!(
        dir_is_empty(temp.path()),
        "temporary file left after an error"
    );
}
