//! Model-based property tests: random operations against the shared reference model
//! (`untorn::unstable::fuzzing::model`, the simulator's too), with commits, aborts, clean reopens
//! and crash-reopens (journal replay) in between.

use std::sync::Arc;

use proptest::prelude::*;
use untorn::unstable::fuzzing::model::{BucketPath, Model, Op, ValueSpec};
use untorn::{BucketMut, Database, Entry, MemoryStorage, Storage, WriteTx};

const BUCKETS: &[&[&str]] = &[&["a"], &["b"], &["a", "x"], &["a", "x", "y"]];

#[derive(Debug, Clone)]
enum Step {
    Tx { ops: Vec<Op>, commit: bool },
    CleanReopen,
    CrashReopen,
    Checkpoint,
}

fn path_of(i: usize) -> BucketPath {
    BUCKETS[i].iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn key_of(k: u16) -> Vec<u8> {
    format!("k{k:05}").into_bytes()
}

/// Operations of the shared reference model (`untorn::unstable::fuzzing::model`) on a few fixed
/// bucket paths, with keys dense enough that trees split and merge.
fn op() -> impl Strategy<Value = Op> {
    let bucket = 0..BUCKETS.len();
    prop_oneof![
        8 => (bucket.clone(), 0u16..2000, prop_oneof![9 => 0u32..200, 1 => 1000u32..9000], any::<u64>())
            .prop_map(|(bucket, key, len, tag)| Op::Put {
                path: path_of(bucket),
                key: key_of(key),
                value: ValueSpec { tag, len },
            }),
        4 => (bucket.clone(), 0u16..2000).prop_map(|(bucket, key)| Op::Delete {
            path: path_of(bucket),
            key: key_of(key),
        }),
        2 => bucket.prop_map(|bucket| Op::CreateBucket { path: path_of(bucket) }),
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
            .prop_map(|(bucket, commit)| Step::Tx { ops: vec![Op::DeleteBucket { path: path_of(bucket) }], commit }),
        1 => Just(Step::CleanReopen),
        1 => Just(Step::CrashReopen),
        1 => Just(Step::Checkpoint),
    ]
}

fn open_path<'t>(tx: &'t WriteTx<'_>, path: &[Vec<u8>]) -> untorn::Result<Option<BucketMut<'t>>> {
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
        Op::Put { path, key, value } => {
            // Puts create their bucket path, so that trees grow large enough to split.
            let mut b = tx.create_bucket_if_not_exists(&path[0]).unwrap();
            model.apply(&Op::CreateBucket {
                path: path[..1].to_vec(),
            });
            for depth in 1..path.len() {
                b = b.create_bucket_if_not_exists(&path[depth]).unwrap();
                model.apply(&Op::CreateBucket {
                    path: path[..=depth].to_vec(),
                });
            }
            b.put(key, value.bytes()).unwrap();
            model.apply(op);
        }
        Op::Delete { path, key } => {
            if let Some(b) = open_path(tx, path).unwrap() {
                let existed = b.delete(key).unwrap();
                let model_existed = model.apply(op) == Some(true);
                assert_eq!(existed, model_existed, "delete {path:?} {key:?}");
            }
        }
        Op::CreateBucket { path } => {
            let parent = &path[..path.len() - 1];
            if !(parent.is_empty() || model.has_bucket(parent)) {
                return;
            }
            if parent.is_empty() {
                tx.create_bucket_if_not_exists(&path[0]).unwrap();
            } else {
                let parent = open_path(tx, parent).unwrap().unwrap();
                parent
                    .create_bucket_if_not_exists(path.last().unwrap())
                    .unwrap();
            }
            model.apply(op);
        }
        Op::DeleteBucket { path } => {
            if !model.has_bucket(path) {
                return;
            }
            if path.len() == 1 {
                tx.delete_bucket(&path[0]).unwrap();
            } else {
                let parent = open_path(tx, &path[..path.len() - 1]).unwrap().unwrap();
                parent.delete_bucket(path.last().unwrap()).unwrap();
            }
            model.apply(op);
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
    assert_eq!(top, model.child_buckets(&[]), "top-level buckets");
    for (path, kv) in &model.buckets {
        let mut b = tx.bucket(&path[0]).unwrap().unwrap();
        for name in &path[1..] {
            b = b.bucket(name).unwrap().unwrap();
        }
        assert_eq!(b.len().unwrap(), kv.len() as u64, "len of {path:?}");
        let got: Vec<(Vec<u8>, Vec<u8>)> = b
            .iter()
            .unwrap()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            kv.iter().map(|(k, v)| (k.clone(), v.bytes())).collect();
        assert_eq!(got, want, "contents of {path:?}");
        let back: Vec<Vec<u8>> = b
            .iter()
            .unwrap()
            .rev()
            .map(|r| r.unwrap().0.to_vec())
            .collect();
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
            assert_eq!(b.get(k).unwrap().unwrap().to_vec(), v.bytes());
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
    let mut model = Model::default();
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
        eprintln!(
            "steps={n_steps} buckets={} keys={}",
            model.buckets.len(),
            model.key_count()
        );
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
