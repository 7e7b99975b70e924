//! Model-based property tests: random operations against a `BTreeMap` model, with
//! commits, aborts, clean reopens and crash-reopens (journal replay) in between.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use untorn::{BucketMut, Database, Entry, MemoryStorage, Storage, WriteTx};

const BUCKETS: &[&[&str]] = &[&["a"], &["b"], &["a", "x"], &["a", "x", "y"]];

#[derive(Debug, Clone)]
enum Op {
    Put {
        bucket: usize,
        key: u16,
        len: usize,
        fill: u8,
    },
    Delete {
        bucket: usize,
        key: u16,
    },
    CreateBucket {
        bucket: usize,
    },
    DeleteBucket {
        bucket: usize,
    },
}

#[derive(Debug, Clone)]
enum Step {
    Tx { ops: Vec<Op>, commit: bool },
    CleanReopen,
    CrashReopen,
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    let bucket = 0..BUCKETS.len();
    prop_oneof![
        8 => (bucket.clone(), 0u16..2000, prop_oneof![9 => 0usize..200, 1 => 1000usize..9000], any::<u8>())
            .prop_map(|(bucket, key, len, fill)| Op::Put { bucket, key, len, fill }),
        4 => (bucket.clone(), 0u16..2000).prop_map(|(bucket, key)| Op::Delete { bucket, key }),
        2 => bucket.prop_map(|bucket| Op::CreateBucket { bucket }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (prop::collection::vec(op(), 1..80), prop::bool::weighted(0.85))
            .prop_map(|(ops, commit)| Step::Tx { ops, commit }),
        2 => (prop::collection::vec(op(), 200..600), prop::bool::weighted(0.9))
            .prop_map(|(ops, commit)| Step::Tx { ops, commit }),
        // Whole-bucket deletes are rare so that trees stay large enough to split.
        1 => (0..BUCKETS.len(), prop::bool::weighted(0.8))
            .prop_map(|(bucket, commit)| Step::Tx { ops: vec![Op::DeleteBucket { bucket }], commit }),
        1 => Just(Step::CleanReopen),
        1 => Just(Step::CrashReopen),
        1 => Just(Step::Checkpoint),
    ]
}

type Model = BTreeMap<Vec<String>, BTreeMap<Vec<u8>, Vec<u8>>>;

fn path_of(i: usize) -> Vec<String> {
    BUCKETS[i].iter().map(|s| s.to_string()).collect()
}

fn key_of(k: u16) -> Vec<u8> {
    format!("k{k:05}").into_bytes()
}

fn open_path<'t>(tx: &'t WriteTx<'_>, path: &[String]) -> untorn::Result<Option<BucketMut<'t>>> {
    let Some(mut b) = tx.bucket(&path[0])? else {
        return Ok(None);
    };
    for name in &path[1..] {
        match b.bucket(name)? {
            Some(n) => b = n,
            None => return Ok(None),
        }
    }
    Ok(Some(b))
}

fn apply(tx: &WriteTx<'_>, model: &mut Model, op: &Op) {
    match op {
        Op::Put {
            bucket,
            key,
            len,
            fill,
        } => {
            // Puts create their bucket path, so that trees grow large enough to split.
            let path = path_of(*bucket);
            let mut b = tx.create_bucket_if_not_exists(&path[0]).unwrap();
            model.entry(path[..1].to_vec()).or_default();
            for depth in 1..path.len() {
                b = b.create_bucket_if_not_exists(&path[depth]).unwrap();
                model.entry(path[..=depth].to_vec()).or_default();
            }
            let value: Vec<u8> = (0..*len).map(|i| fill.wrapping_add(i as u8)).collect();
            b.put(key_of(*key), &value).unwrap();
            model.get_mut(&path).unwrap().insert(key_of(*key), value);
        }
        Op::Delete { bucket, key } => {
            let path = path_of(*bucket);
            if let Some(b) = open_path(tx, &path).unwrap() {
                let existed = b.delete(key_of(*key)).unwrap();
                let model_existed = model
                    .get_mut(&path)
                    .unwrap()
                    .remove(&key_of(*key))
                    .is_some();
                assert_eq!(existed, model_existed, "delete {path:?} {key}");
            }
        }
        Op::CreateBucket { bucket } => {
            let path = path_of(*bucket);
            let parent_exists =
                path.len() == 1 || model.contains_key(&path[..path.len() - 1].to_vec());
            if !parent_exists {
                return;
            }
            if path.len() == 1 {
                tx.create_bucket_if_not_exists(&path[0]).unwrap();
            } else {
                let parent = open_path(tx, &path[..path.len() - 1]).unwrap().unwrap();
                parent
                    .create_bucket_if_not_exists(path.last().unwrap())
                    .unwrap();
            }
            model.entry(path).or_default();
        }
        Op::DeleteBucket { bucket } => {
            let path = path_of(*bucket);
            if !model.contains_key(&path) {
                return;
            }
            if path.len() == 1 {
                tx.delete_bucket(&path[0]).unwrap();
            } else {
                let parent = open_path(tx, &path[..path.len() - 1]).unwrap().unwrap();
                parent.delete_bucket(path.last().unwrap()).unwrap();
            }
            model.retain(|p, _| !p.starts_with(&path));
        }
    }
}

/// Compares the whole database with the model: contents, order (forward and backward),
/// counts, bucket listings.
pub fn verify(db: &Database, model: &Model) {
    // The structure is sound: every page verified, reachable once or free, bounds kept.
    let report = db.check(Default::default()).unwrap();
    assert!(report.is_ok(), "check found: {:#?}", report.findings);
    let tx = db.begin_read().unwrap();
    let top: Vec<Vec<u8>> = tx.buckets().unwrap();
    let mut model_top: Vec<Vec<u8>> = model
        .keys()
        .filter(|p| p.len() == 1)
        .map(|p| p[0].clone().into_bytes())
        .collect();
    model_top.sort();
    assert_eq!(top, model_top, "top-level buckets");
    for (path, kv) in model {
        let mut b = tx.bucket(&path[0]).unwrap().unwrap();
        for name in &path[1..] {
            b = b.bucket(name).unwrap().unwrap();
        }
        assert_eq!(b.len().unwrap(), kv.len() as u64, "len of {path:?}");
        let got: Vec<(Vec<u8>, Vec<u8>)> = b
            .iter()
            .unwrap()
            .map(|r| r.map(|(k, v)| (k, v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            kv.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(got, want, "contents of {path:?}");
        let back: Vec<Vec<u8>> = b.iter().unwrap().rev().map(|r| r.unwrap().0).collect();
        let want_back: Vec<Vec<u8>> = kv.keys().rev().cloned().collect();
        assert_eq!(back, want_back, "reverse order of {path:?}");
        // Cursor sees sub-buckets too.
        let mut c = b.cursor();
        let mut item = c.first().unwrap();
        let mut subs = Vec::new();
        while let Some((k, e)) = item {
            if matches!(e, Entry::Bucket) {
                subs.push(k);
            }
            item = c.next().unwrap();
        }
        assert_eq!(subs, b.buckets().unwrap());
        for (k, v) in kv.iter().take(5) {
            assert_eq!(b.get(k).unwrap().unwrap().to_vec(), *v);
        }
    }
}

fn open(data: &MemoryStorage, journal: &MemoryStorage) -> Database {
    Database::builder()
        .checkpoint_threshold_bytes(256 * 1024)
        .open_storage(
            Arc::new(data.clone()) as Arc<dyn Storage>,
            Arc::new(journal.clone()) as Arc<dyn Storage>,
            true,
        )
        .unwrap()
}

fn run(steps: Vec<Step>) {
    let mut data = MemoryStorage::new();
    let mut journal = MemoryStorage::new();
    let mut db = Some(open(&data, &journal));
    let mut model: Model = BTreeMap::new();
    let n_steps = steps.len();
    for s in steps {
        match s {
            Step::Tx { ops, commit } => {
                let d = db.as_ref().unwrap();
                let tx = d.begin_write().unwrap();
                let mut scratch = model.clone();
                for o in &ops {
                    apply(&tx, &mut scratch, o);
                }
                if commit {
                    tx.commit().unwrap();
                    model = scratch;
                } else {
                    tx.abort();
                }
            }
            Step::CleanReopen => {
                drop(db.take());
                db = Some(open(&data, &journal));
            }
            Step::CrashReopen => {
                // Copy the bytes as they are (no clean close, no checkpoint): recovery
                // must replay the journal.
                let d2 = MemoryStorage::from_bytes(data.to_vec());
                let j2 = MemoryStorage::from_bytes(journal.to_vec());
                std::mem::forget(db.take());
                data = d2;
                journal = j2;
                db = Some(open(&data, &journal));
            }
            Step::Checkpoint => db.as_ref().unwrap().checkpoint().unwrap(),
        }
        verify(db.as_ref().unwrap(), &model);
    }
    if std::env::var("MODEL_DEBUG").is_ok() {
        let keys: usize = model.values().map(BTreeMap::len).sum();
        eprintln!("steps={n_steps} buckets={} keys={keys}", model.len());
    }
}

/// Case count: `PROPTEST_CASES` if set (for long local runs), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), max_shrink_iters: 2000, .. ProptestConfig::default() })]
    #[test]
    fn engine_matches_model(steps in prop::collection::vec(step(), 1..25)) {
        run(steps);
    }
}
