//! Salvage of an untorn database the engine can open: everything that verifies is read
//! out, in key order, and whatever does not is reported as lost, in the user's terms
//! (bucket path, the last key read before the damage, the page that failed).
//!
//! Every bucket is read with a cursor, depth-first with an explicit stack. A bucket
//! whose pages fail verification (`Error::Corrupted`) is copied up to the damaged page;
//! the rest of it (keys after the last good key, and its sub-buckets not yet reached) is
//! reported lost. Any other error stops the salvage.
//!
//! This is not page-level salvage: a file the engine cannot open is out of its reach.

use crate::bucket::Bucket;
use crate::cursor::Cursor;
use crate::error::Error;
use crate::report::{DumpItem, Lost, Pair, SalvageSummary};
use crate::tx::ReadTx;
use crate::value::Entry;

/// A bucket being copied: its path, handle, cursor and the last key read.
struct Frame<'t> {
    path: Vec<Vec<u8>>,
    bucket: Bucket<'t>,
    cursor: Cursor<'t>,
    started: bool,
    last: Option<Vec<u8>>,
}

impl<'t> Frame<'t> {
    fn new(path: Vec<Vec<u8>>, bucket: Bucket<'t>) -> Self {
        Frame {
            path,
            cursor: bucket.cursor(),
            bucket,
            started: false,
            last: None,
        }
    }
}

/// What is lost when reading `path` failed with `e`, after key `after` if one was read.
fn lost(path: &[Vec<u8>], after: Option<&[u8]>, e: &Error) -> Lost {
    let page = match e {
        Error::Corrupted { page, .. } => Some(*page),
        _ => None,
    };
    Lost {
        bucket: path.to_vec(),
        page,
        after: after.map(<[u8]>::to_vec),
        reason: match after {
            Some(_) => {
                format!("the rest of the bucket is unreadable: {e}")
            }
            None => format!("the bucket is unreadable: {e}"),
        },
        ..Lost::default()
    }
}

/// Reads every bucket and key of `tx` that verifies, passing each to `emit` in key
/// order (a bucket before its contents), and reports what could not be read.
pub fn salvage_snapshot<E: From<Error>>(
    tx: &ReadTx<'_>,
    mut emit: impl FnMut(DumpItem) -> Result<(), E>,
) -> Result<SalvageSummary, E> {
    let mut summary = SalvageSummary::default();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    for name in tx.buckets()?.into_iter().rev() {
        match tx.bucket(&name) {
            Ok(Some(b)) => stack.push(Frame::new(vec![name], b)),
            Ok(None) => return Err(Error::Internal("a listed bucket vanished").into()),
            Err(e) if e.is_corruption() => summary.lost.push(lost(&[name], None, &e)),
            Err(e) => return Err(e.into()),
        }
    }
    while let Some(f) = stack.last_mut() {
        let item = if f.started {
            f.cursor.next()
        } else {
            f.started = true;
            match f.bucket.sequence() {
                Ok(sequence) => {
                    summary.buckets_recovered += 1;
                    emit(DumpItem::Bucket {
                        path: f.path.clone(),
                        sequence,
                    })?;
                    f.cursor.first()
                }
                Err(e) => Err(e),
            }
        };
        match item {
            Ok(None) => {
                stack.pop();
            }
            Ok(Some((key, Entry::Value(value)))) => {
                let key = key.to_vec();
                summary.keys_recovered += 1;
                f.last = Some(key.clone());
                emit(DumpItem::Pair(Pair {
                    bucket: f.path.clone(),
                    key,
                    value: value.to_vec(),
                }))?;
            }
            Ok(Some((key, Entry::Bucket))) => {
                let key = key.to_vec();
                f.last = Some(key.clone());
                let mut path = f.path.clone();
                path.push(key.clone());
                match f.bucket.bucket(&key) {
                    Ok(Some(child)) => stack.push(Frame::new(path, child)),
                    Ok(None) => return Err(Error::Internal("a listed bucket vanished").into()),
                    Err(e) if e.is_corruption() => summary.lost.push(lost(&path, None, &e)),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) if e.is_corruption() => {
                summary.lost.push(lost(&f.path, f.last.as_deref(), &e));
                stack.pop();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(summary)
}
