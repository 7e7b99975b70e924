//! The oracle: how a run judges the engine against the [`Model`] — applying model
//! operations to a write transaction and comparing every snapshot with the model.
//!
//! After every reopen a run asserts (numbered so failures can cite them):
//!
//! 1. **Prefix:** the recovered txid is the txid of an issued commit (or of the state
//!    before any of them), and the database equals the model after exactly that commit —
//!    so no partial commit is visible and no invented state.
//! 2. **Durability:** the recovered txid is at least the last acknowledged commit's
//!    (strict fault classes only; lost/misdirected writes and bit rot may lose commits).
//! 3. **Check:** `Database::check` reports no findings (strict classes only).
//! 4. **No wrong data:** every value, key and bucket name a read returns equals the
//!    model's. Under damaging faults a read may fail with `Error::Corrupted`, never
//!    return something else.
//! 5. **Snapshots:** a read transaction (held across later commits and checkpoints, or
//!    running on another thread) sees exactly the model of its txid.
//! 6. **No panic** anywhere (caught and reported as a failure of the seed).

use std::collections::BTreeMap;

use untorn::{Database, Error, ReadTx, WriteTx};

use untorn::unstable::fuzzing::model::{BucketPath, Model, Op, ValueSpec};

/// How strictly a verification treats engine errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// No data-destroying fault: `Corrupted` is a failure; acknowledged commits must survive.
    Strict,
    /// Data-destroying faults: `Corrupted` is allowed (detected damage); commits may be lost.
    Lenient,
}

/// Why a snapshot scan stopped.
#[derive(Debug)]
pub enum ScanError {
    /// The engine returned an error (allowed or not depending on the faults).
    Engine(Error),
    /// The engine returned data that differs from the model: always a failure.
    Wrong(String),
}

impl From<Error> for ScanError {
    fn from(e: Error) -> Self {
        ScanError::Engine(e)
    }
}

pub(crate) fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn show_path(p: &[Vec<u8>]) -> String {
    let parts: Vec<String> = p.iter().map(|s| show(s)).collect();
    format!("/{}", parts.join("/"))
}

/// Compares `got` (a value the engine returned) with the model's spec.
pub(crate) fn check_value(
    path: &[Vec<u8>],
    key: &[u8],
    got: &[u8],
    want: ValueSpec,
) -> Result<(), String> {
    let want_bytes = want.bytes();
    if got == want_bytes.as_slice() {
        return Ok(());
    }
    let first_diff = got
        .iter()
        .zip(want_bytes.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want_bytes.len()));
    Err(format!(
        "WRONG DATA: {}:{} returned {} bytes (tag {:?}), model has {} bytes (tag {}); first difference at byte {first_diff}",
        show_path(path),
        show(key),
        got.len(),
        got.get(..8).map(|t| {
            let mut a = [0u8; 8];
            a.copy_from_slice(t);
            u64::from_le_bytes(a)
        }),
        want.len,
        want.tag
    ))
}

/// Verifies a read snapshot against `expected`: bucket names, every key/value (forward
/// iteration), the O(1) counts, point reads of present and absent keys, and one reverse
/// iteration. Every returned datum is compared as soon as it is returned, so a scan that
/// later stops with an engine error still proves that nothing wrong was returned before.
pub fn scan_snapshot(rtx: &ReadTx<'_>, expected: &Model) -> Result<u64, ScanError> {
    let top = rtx.buckets()?;
    let want_top = expected.child_buckets(&[]);
    if top != want_top {
        return Err(ScanError::Wrong(format!(
            "WRONG DATA: top-level buckets {:?}, model has {:?}",
            top.iter().map(|b| show(b)).collect::<Vec<_>>(),
            want_top.iter().map(|b| show(b)).collect::<Vec<_>>()
        )));
    }
    let mut keys = 0u64;
    for name in top {
        let path = vec![name.clone()];
        let bucket = rtx.bucket(&name)?.ok_or_else(|| {
            ScanError::Wrong(format!(
                "WRONG DATA: bucket {} listed but not found",
                show_path(&path)
            ))
        })?;
        keys += scan_bucket(&bucket, &path, expected)?;
    }
    Ok(keys)
}

fn scan_bucket(
    bucket: &untorn::Bucket<'_>,
    path: &BucketPath,
    expected: &Model,
) -> Result<u64, ScanError> {
    let wrong = |m: String| ScanError::Wrong(format!("WRONG DATA: {}: {m}", show_path(path)));
    let empty = BTreeMap::new();
    let want = expected.buckets.get(path).unwrap_or(&empty);
    let mut seen: Vec<Vec<u8>> = Vec::with_capacity(want.len());
    for item in bucket.iter()? {
        let (key, value) = item?;
        let key = key.to_vec();
        let Some(spec) = want.get(&key) else {
            return Err(wrong(format!(
                "iteration returned key {} not in the model",
                show(&key)
            )));
        };
        check_value(path, &key, &value, *spec).map_err(ScanError::Wrong)?;
        if seen.last().is_some_and(|prev| *prev >= key) {
            return Err(wrong(format!(
                "iteration not ascending at key {}",
                show(&key)
            )));
        }
        seen.push(key);
    }
    if seen.len() != want.len() {
        let missing: Vec<String> = want
            .keys()
            .filter(|k| !seen.contains(k))
            .take(5)
            .map(|k| show(k))
            .collect();
        return Err(wrong(format!(
            "iteration returned {} keys, model has {} (missing e.g. {missing:?})",
            seen.len(),
            want.len()
        )));
    }
    let len = bucket.len()?;
    if len != want.len() as u64 {
        return Err(wrong(format!("len() = {len}, model has {}", want.len())));
    }
    // Point reads: first, middle, last key and one absent key.
    let probes: Vec<&Vec<u8>> = [
        want.keys().next(),
        want.keys().nth(want.len() / 2),
        want.keys().next_back(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for key in probes {
        match (bucket.get(key)?, want.get(key)) {
            (Some(v), Some(spec)) => check_value(path, key, &v, *spec).map_err(ScanError::Wrong)?,
            (None, Some(_)) => {
                return Err(wrong(format!("get({}) = None, model has it", show(key))))
            }
            _ => {}
        }
    }
    if let Some(v) = bucket.get(b"absent-key")? {
        return Err(wrong(format!("get(absent-key) returned {} bytes", v.len())));
    }
    // Reverse iteration sees the same keys backwards.
    let mut back = Vec::with_capacity(seen.len());
    for item in bucket.iter()?.rev() {
        let (key, _) = item?;
        back.push(key);
    }
    back.reverse();
    if back != seen {
        return Err(wrong(
            "reverse iteration differs from forward iteration".into(),
        ));
    }
    let children = bucket.buckets()?;
    let want_children = expected.child_buckets(path);
    if children != want_children {
        return Err(wrong(format!(
            "sub-buckets {:?}, model has {:?}",
            children.iter().map(|b| show(b)).collect::<Vec<_>>(),
            want_children.iter().map(|b| show(b)).collect::<Vec<_>>()
        )));
    }
    check_cursor(bucket, path, want, &children)?;
    let mut keys = seen.len() as u64;
    for name in children {
        let mut child_path = path.clone();
        child_path.push(name.clone());
        let child = bucket
            .bucket(&name)?
            .ok_or_else(|| wrong(format!("sub-bucket {} listed but not found", show(&name))))?;
        // Recursion depth is bounded by the model's depth (the names were just checked).
        keys += scan_bucket(&child, &child_path, expected)?;
    }
    Ok(keys)
}

/// Assertions 1 and 2 on a recovered txid: an issued commit on this line (or the state
/// before them), not beyond the last issued, and (strict) not before the last acknowledged.
pub(crate) fn check_recovered_txid(
    txid: u64,
    acked_txid: u64,
    issued_txid: u64,
    history: &BTreeMap<u64, Model>,
    strictness: Strictness,
) -> Result<(), String> {
    if strictness == Strictness::Strict && txid < acked_txid {
        return Err(format!(
            "LOST COMMIT: recovered txid {txid} < last acknowledged txid {acked_txid}"
        ));
    }
    if txid > issued_txid {
        return Err(format!(
            "recovered txid {txid} > last issued txid {issued_txid}"
        ));
    }
    if !history.contains_key(&txid) {
        return Err(format!(
            "recovered txid {txid} is not the txid of any issued commit on this line"
        ));
    }
    Ok(())
}

/// A cursor walk sees every key and sub-bucket in order (values exact, sub-buckets as
/// `Entry::Bucket`), and `seek` to the middle entry lands on it.
fn check_cursor(
    bucket: &untorn::Bucket<'_>,
    path: &BucketPath,
    want: &BTreeMap<Vec<u8>, ValueSpec>,
    children: &[Vec<u8>],
) -> Result<(), ScanError> {
    let wrong =
        |m: String| ScanError::Wrong(format!("WRONG DATA: {} cursor: {m}", show_path(path)));
    let mut all: BTreeMap<&[u8], Option<ValueSpec>> =
        want.iter().map(|(k, v)| (k.as_slice(), Some(*v))).collect();
    for c in children {
        all.insert(c.as_slice(), None);
    }
    let mut cursor = bucket.cursor();
    let mut item = cursor.first()?;
    let mut expected = all.iter();
    // Bounded: one step per expected entry, plus the one that must be the end.
    for _ in 0..=all.len() {
        match (item, expected.next()) {
            (None, None) => break,
            (Some((k, entry)), Some((wk, spec))) => {
                if k.as_bytes() != *wk {
                    return Err(wrong(format!(
                        "returned {}, expected {}",
                        show(&k),
                        show(wk)
                    )));
                }
                match (entry, spec) {
                    (untorn::Entry::Value(v), Some(spec)) => {
                        check_value(path, &k, &v, *spec).map_err(ScanError::Wrong)?
                    }
                    (untorn::Entry::Bucket, None) => {}
                    (untorn::Entry::Value(_), None) => {
                        return Err(wrong(format!(
                            "{} is a bucket, cursor says value",
                            show(&k)
                        )))
                    }
                    (_, Some(_)) => {
                        return Err(wrong(format!(
                            "{} is a value, cursor says bucket",
                            show(&k)
                        )))
                    }
                }
            }
            (Some((k, _)), None) => return Err(wrong(format!("extra entry {}", show(&k)))),
            (None, Some((wk, _))) => return Err(wrong(format!("ended before {}", show(wk)))),
        }
        item = cursor.next()?;
    }
    if let Some((mid, _)) = all.iter().nth(all.len() / 2) {
        match cursor.seek(mid)? {
            Some((k, _)) if k.as_bytes() == *mid => {}
            other => {
                return Err(wrong(format!(
                    "seek({}) returned {:?}",
                    show(mid),
                    other.map(|(k, _)| show(&k))
                )))
            }
        }
    }
    Ok(())
}

/// Runs `f` on the bucket at `path` of a write transaction (`Ok(None)` if missing).
pub(crate) fn with_bucket_mut<T>(
    wtx: &WriteTx<'_>,
    path: &[Vec<u8>],
    f: impl FnOnce(&untorn::BucketMut<'_>) -> untorn::Result<T>,
) -> untorn::Result<Option<T>> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(None);
    };
    match wtx.bucket(first)? {
        None => Ok(None),
        Some(b) => descend_mut(&b, rest, f),
    }
}

fn descend_mut<T>(
    b: &untorn::BucketMut<'_>,
    rest: &[Vec<u8>],
    f: impl FnOnce(&untorn::BucketMut<'_>) -> untorn::Result<T>,
) -> untorn::Result<Option<T>> {
    match rest.split_first() {
        None => f(b).map(Some),
        Some((name, rest)) => match b.bucket(name)? {
            None => Ok(None),
            Some(child) => descend_mut(&child, rest, f),
        },
    }
}

/// What an engine call did, to compare with the model.
pub(crate) enum Applied {
    /// The engine call returned this flag (delete: existed; create: created).
    Flag(bool),
    /// Nothing to compare.
    Unit,
    /// The bucket the operation addresses does not exist in the engine.
    NoBucket,
}

/// Applies one model operation to a write transaction.
pub(crate) fn apply_op(wtx: &WriteTx<'_>, op: &Op) -> untorn::Result<Applied> {
    let flag = |r: Option<bool>| r.map_or(Applied::NoBucket, Applied::Flag);
    let unit = |r: Option<()>| r.map_or(Applied::NoBucket, |()| Applied::Unit);
    match op {
        Op::Put { path, key, value } => {
            let bytes = value.bytes();
            with_bucket_mut(wtx, path, |b| b.put(key, &bytes)).map(unit)
        }
        Op::Delete { path, key } => with_bucket_mut(wtx, path, |b| b.delete(key)).map(flag),
        Op::CreateBucket { path } => {
            let created = |r: untorn::Result<untorn::BucketMut<'_>>| match r {
                Ok(_) => Ok(true),
                Err(Error::BucketExists { .. }) => Ok(false),
                Err(e) => Err(e),
            };
            match path.split_last() {
                None => Ok(Applied::NoBucket),
                Some((name, [])) => created(wtx.create_bucket(name)).map(Applied::Flag),
                Some((name, parent)) => {
                    with_bucket_mut(wtx, parent, |b| created(b.create_bucket(name))).map(flag)
                }
            }
        }
        Op::DeleteBucket { path } => match path.split_last() {
            None => Ok(Applied::NoBucket),
            Some((name, [])) => wtx.delete_bucket(name).map(|()| Applied::Unit),
            Some((name, parent)) => {
                with_bucket_mut(wtx, parent, |b| b.delete_bucket(name)).map(unit)
            }
        },
    }
}

/// `Database::check` after a reopen, as a finding summary: `Ok(None)` when clean
/// (warnings allowed). Also cross-checks `Database::info` against the snapshot.
pub fn engine_check(db: &Database) -> untorn::Result<Option<String>> {
    let report = db.check(Default::default())?;
    let info = db.info()?;
    if info.txid != report.txid {
        return Ok(Some(format!(
            "info().txid {} != checked snapshot txid {}",
            info.txid, report.txid
        )));
    }
    if report.is_ok() {
        return Ok(None);
    }
    let shown: Vec<String> = report
        .findings
        .iter()
        .filter(|f| !f.kind.is_warning())
        .take(5)
        .map(|f| format!("{} page {:?}: {}", f.kind.as_str(), f.page, f.message))
        .collect();
    Ok(Some(format!(
        "{} findings, e.g. {}",
        report.findings.len(),
        shown.join("; ")
    )))
}
