//! [`Range`]: a double-ended iterator over the key/value pairs of a bucket within key
//! bounds, made of two cursors that stop when they meet.

use std::ops::{Bound, RangeBounds};

use crate::cursor::{Cursor, Item, Source};
use crate::error::Result;
use crate::value::{Entry, Key, Value};

/// A double-ended iterator over the key/value pairs of a bucket within bounds, in key
/// order; nested buckets are skipped (see `iter_buckets`). Keys and values are borrowed
/// from their pages ([`Key`], [`Value`]): a scan allocates nothing per pair.
pub struct Range<'t> {
    front: Cursor<'t>,
    back: Cursor<'t>,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    front_started: bool,
    back_started: bool,
    done: bool,
}

impl<'t> Range<'t> {
    /// Every key/value pair of the bucket.
    pub(crate) fn all(src: Source<'t>) -> Self {
        Range::over(src, Bound::Unbounded, Bound::Unbounded)
    }

    /// The pairs with keys in `r`.
    pub(crate) fn within<K: AsRef<[u8]>>(src: Source<'t>, r: impl RangeBounds<K>) -> Self {
        Range::over(
            src,
            owned_bound(r.start_bound()),
            owned_bound(r.end_bound()),
        )
    }

    /// The pairs whose keys start with `p`.
    pub(crate) fn with_prefix(src: Source<'t>, p: &[u8]) -> Self {
        let (lo, hi) = prefix_bounds(p);
        Range::over(src, lo, hi)
    }

    fn over(src: Source<'t>, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Self {
        Range {
            front: Cursor::new(src.clone()),
            back: Cursor::new(src),
            lo,
            hi,
            front_started: false,
            back_started: false,
            done: false,
        }
    }

    fn below_hi(&self, k: &[u8]) -> bool {
        match &self.hi {
            Bound::Unbounded => true,
            Bound::Included(h) => k <= h.as_slice(),
            Bound::Excluded(h) => k < h.as_slice(),
        }
    }

    fn above_lo(&self, k: &[u8]) -> bool {
        match &self.lo {
            Bound::Unbounded => true,
            Bound::Included(l) => k >= l.as_slice(),
            Bound::Excluded(l) => k > l.as_slice(),
        }
    }

    fn front_step(&mut self) -> Result<Item> {
        if self.front_started {
            return self.front.next();
        }
        self.front_started = true;
        match &self.lo {
            Bound::Unbounded => self.front.first(),
            Bound::Included(k) => self.front.seek(k),
            Bound::Excluded(k) => match self.front.seek(k)? {
                Some((found, _)) if found == *k => self.front.next(),
                other => Ok(other),
            },
        }
    }

    fn back_step(&mut self) -> Result<Item> {
        if self.back_started {
            return self.back.prev();
        }
        self.back_started = true;
        match &self.hi {
            Bound::Unbounded => self.back.last(),
            Bound::Included(k) => match self.back.seek(k)? {
                Some((found, e)) if found == *k => Ok(Some((found, e))),
                _ => self.back.prev(),
            },
            Bound::Excluded(k) => {
                self.back.seek(k)?;
                self.back.prev()
            }
        }
    }
}

impl Iterator for Range<'_> {
    type Item = Result<(Key, Value)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (k, e) = match self.front_step() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(None) => break,
                Ok(Some(item)) => item,
            };
            let met_back =
                self.back_started && self.back.peek_key().is_some_and(|b| k.as_slice() >= b);
            if !self.below_hi(&k) || met_back {
                break;
            }
            if let Entry::Value(v) = e {
                return Some(Ok((k, v)));
            }
        }
        self.done = true;
        None
    }
}

impl DoubleEndedIterator for Range<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (k, e) = match self.back_step() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(None) => break,
                Ok(Some(item)) => item,
            };
            let met_front =
                self.front_started && self.front.peek_key().is_some_and(|f| k.as_slice() <= f);
            if !self.above_lo(&k) || met_front {
                break;
            }
            if let Entry::Value(v) = e {
                return Some(Ok((k, v)));
            }
        }
        self.done = true;
        None
    }
}

fn owned_bound<K: AsRef<[u8]>>(b: Bound<&K>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn prefix_bounds(p: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let mut upper = p.to_vec();
    while let Some(last) = upper.pop() {
        if last < 0xff {
            upper.push(last + 1);
            return (Bound::Included(p.to_vec()), Bound::Excluded(upper));
        }
    }
    (Bound::Included(p.to_vec()), Bound::Unbounded)
}
