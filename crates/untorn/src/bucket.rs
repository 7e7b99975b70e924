//! Buckets: [`Bucket`] (a bucket of a read snapshot) and [`BucketMut`] (a bucket of the
//! write transaction; several handles may coexist and see each other's changes), the
//! [`ReadBucket`] trait they share, and [`BucketIter`] over sub-buckets.

use std::fmt;
use std::ops::RangeBounds;
use std::sync::Arc;

use crate::btree::{
    checked_header, lookup, overflow_threshold, BucketSlot, NodeValue, Pinned, Tree, TxState,
    ValRef,
};
use crate::core::TxInner;
use crate::cursor::{bucket_names, entry_at, Cursor, Source};
use crate::error::{CorruptionKind, Error, Result};
use crate::format::BucketHeader;
use crate::limits::{check_key, MAX_BUCKET_DEPTH, MAX_VALUE_SIZE};
use crate::pager::Pager;
use crate::range::Range;
use crate::value::{Entry, Key, Value};

fn get_value(pager: &Pager, st: Option<&TxState>, tree: Tree, key: &[u8]) -> Result<Option<Value>> {
    match lookup(pager, st, tree, key)? {
        None => Ok(None),
        Some((h, i)) => match entry_at(pager, st, tree.id, &h, i)? {
            Entry::Value(v) => Ok(Some(v)),
            Entry::Bucket => Err(Error::incompatible(key, "value", "bucket")),
        },
    }
}

fn bucket_header_at(
    pager: &Pager,
    st: Option<&TxState>,
    tree: Tree,
    name: &[u8],
) -> Result<Option<BucketHeader>> {
    match lookup(pager, st, tree, name)? {
        None => Ok(None),
        Some((h, i)) => match h.view(st)?.val(i)? {
            ValRef::Bucket(bh) => Ok(Some(checked_header(bh, name, h.page_id())?)),
            _ => Err(Error::incompatible(name, "bucket", "value")),
        },
    }
}

/// A bucket in a read transaction.
#[derive(Clone)]
pub struct Bucket<'t> {
    pager: &'t Pager,
    tree: Tree,
    /// The top two levels of the tree, pinned for this handle's lookups.
    pins: Arc<Pinned>,
    header: BucketHeader,
    depth: usize,
}

impl fmt::Debug for Bucket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bucket")
            .field("header", &self.header)
            .finish()
    }
}

impl<'t> Bucket<'t> {
    /// The root of a snapshot as a bucket (its entries are the top-level buckets), for
    /// iterating them.
    pub(crate) fn root(pager: &'t Pager, tree: Tree) -> Bucket<'t> {
        Bucket {
            pager,
            tree,
            pins: Arc::new(Pinned::new(tree)),
            header: BucketHeader::default(),
            depth: 0,
        }
    }

    pub(crate) fn open_child(
        pager: &'t Pager,
        parent: Tree,
        name: &[u8],
        depth: usize,
    ) -> Result<Option<Bucket<'t>>> {
        if depth >= MAX_BUCKET_DEPTH {
            return Err(Error::corrupted(
                0,
                CorruptionKind::Structure,
                "buckets nested deeper than the bound",
            ));
        }
        Ok(
            bucket_header_at(pager, None, parent, name)?.map(|header| Bucket {
                pager,
                tree: Tree::of(&header),
                pins: Arc::new(Pinned::new(Tree::of(&header))),
                header,
                depth: depth + 1,
            }),
        )
    }

    /// The value stored under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        let key = key.as_ref();
        match self.pins.lookup(self.pager, key)? {
            None => Ok(None),
            Some((h, i)) => match entry_at(self.pager, None, self.tree.id, &h, i)? {
                Entry::Value(v) => Ok(Some(v)),
                Entry::Bucket => Err(Error::incompatible(key, "value", "bucket")),
            },
        }
    }

    /// Key/value pairs directly in this bucket (O(1)).
    pub fn len(&self) -> Result<u64> {
        Ok(self.header.count)
    }

    /// Whether the bucket holds no key/value pairs.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.header.count == 0)
    }

    /// The bucket's sequence counter.
    pub fn sequence(&self) -> Result<u64> {
        Ok(self.header.sequence)
    }

    /// The bucket's header as read (default for a snapshot's root).
    pub(crate) fn header(&self) -> BucketHeader {
        self.header
    }

    /// Opens a nested bucket.
    pub fn bucket(&self, name: impl AsRef<[u8]>) -> Result<Option<Bucket<'t>>> {
        let name = name.as_ref();
        check_key(name)?;
        Bucket::open_child(self.pager, self.tree, name, self.depth)
    }

    /// Names of nested buckets, sorted.
    pub fn buckets(&self) -> Result<Vec<Vec<u8>>> {
        bucket_names(self.pager, None, self.tree)
    }

    /// The nested buckets, opened, with their names, in key order.
    pub fn iter_buckets(&self) -> Result<BucketIter<'t, Bucket<'t>>> {
        Ok(BucketIter::new(self.clone(), self.cursor()))
    }

    /// A cursor over keys and nested buckets (for seeks; [`Bucket::iter`] and
    /// [`Bucket::iter_buckets`] iterate).
    pub fn cursor(&self) -> Cursor<'t> {
        Cursor::new(self.src())
    }

    fn src(&self) -> Source<'t> {
        Source::Snapshot {
            pager: self.pager,
            tree: self.tree,
            pins: Some(Arc::clone(&self.pins)),
        }
    }

    /// All key/value pairs in key order (nested buckets are skipped: see
    /// [`Bucket::iter_buckets`]).
    pub fn iter(&self) -> Result<Range<'t>> {
        Ok(Range::all(self.src()))
    }

    /// Key/value pairs with keys in `r`: any range of byte strings, `"a".."c"`,
    /// `b"k1".as_slice()..=b"k9"`, `start_vec..` (`..` needs a type: use [`Bucket::iter`]).
    pub fn range<K: AsRef<[u8]>>(&self, r: impl RangeBounds<K>) -> Result<Range<'t>> {
        Ok(Range::within(self.src(), r))
    }

    /// Key/value pairs whose keys start with `p`.
    pub fn prefix(&self, p: impl AsRef<[u8]>) -> Result<Range<'t>> {
        Ok(Range::with_prefix(self.src(), p.as_ref()))
    }
}

/// A bucket in the write transaction. Several handles may coexist.
#[derive(Clone, Copy)]
pub struct BucketMut<'t> {
    inner: &'t TxInner<'t>,
    id: BucketSlot,
}

impl fmt::Debug for BucketMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketMut").field("id", &self.id).finish()
    }
}

impl<'t> BucketMut<'t> {
    pub(crate) fn root(inner: &'t TxInner<'t>) -> BucketMut<'t> {
        BucketMut {
            inner,
            id: BucketSlot::ROOT,
        }
    }

    fn pager(&self) -> &'t Pager {
        &self.inner.shared.pager
    }

    fn root_child(&self) -> Result<Tree> {
        self.inner.borrow()?.tree(self.id)
    }

    /// The value stored under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        let st = self.inner.borrow()?;
        let tree = st.tree(self.id)?;
        get_value(self.pager(), Some(&st), tree, key.as_ref())
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        check_key(key)?;
        if value.len() > MAX_VALUE_SIZE {
            return Err(Error::ValueTooLarge(value.len()));
        }
        if self.id == BucketSlot::ROOT {
            return Err(Error::incompatible(key, "bucket", "value"));
        }
        let pager = self.pager();
        let mut st = self.inner.borrow_mut()?;
        let val = if value.len() > overflow_threshold(st.page_size) {
            NodeValue::NewOverflow(Arc::from(value))
        } else {
            NodeValue::Inline(st.store.push(value)?)
        };
        st.put_value(pager, self.id, key, val)
    }

    /// Removes every key/value pair with a key in `r` (nested buckets in the range stay);
    /// returns how many were removed.
    pub fn delete_range<K: AsRef<[u8]>>(&self, r: impl RangeBounds<K>) -> Result<u64> {
        // The keys first: deleting while a range walks would re-seek at every step.
        let keys = self
            .range(r)?
            .map(|pair| pair.map(|(k, _)| k))
            .collect::<Result<Vec<Key>>>()?;
        let mut removed = 0;
        for k in &keys {
            removed += u64::from(self.delete(k)?);
        }
        Ok(removed)
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let pager = self.pager();
        self.inner
            .borrow_mut()?
            .delete_value(pager, self.id, key.as_ref())
    }

    /// Key/value pairs directly in this bucket (O(1)).
    pub fn len(&self) -> Result<u64> {
        Ok(self.inner.borrow()?.bucket(self.id)?.count)
    }

    /// Whether the bucket holds no key/value pairs.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The bucket's sequence counter.
    pub fn sequence(&self) -> Result<u64> {
        Ok(self.inner.borrow()?.bucket(self.id)?.sequence)
    }

    /// Increments and returns the sequence counter.
    pub fn next_sequence(&self) -> Result<u64> {
        let mut st = self.inner.borrow_mut()?;
        let next = st
            .bucket(self.id)?
            .sequence
            .checked_add(1)
            .ok_or(Error::SequenceOverflow)?;
        st.set_sequence(self.id, next)?;
        Ok(next)
    }

    /// Sets the sequence counter.
    pub fn set_sequence(&self, v: u64) -> Result<()> {
        self.inner.borrow_mut()?.set_sequence(self.id, v)
    }

    /// Opens a nested bucket.
    pub fn bucket(&self, name: impl AsRef<[u8]>) -> Result<Option<BucketMut<'t>>> {
        let name = name.as_ref();
        check_key(name)?;
        let pager = self.pager();
        let id = self.inner.borrow_mut()?.open_bucket(pager, self.id, name)?;
        Ok(id.map(|id| BucketMut {
            inner: self.inner,
            id,
        }))
    }

    /// Creates a nested bucket (`Error::BucketExists` if it exists).
    pub fn create_bucket(&self, name: impl AsRef<[u8]>) -> Result<BucketMut<'t>> {
        let name = name.as_ref();
        check_key(name)?;
        let pager = self.pager();
        let id = self
            .inner
            .borrow_mut()?
            .create_bucket(pager, self.id, name)?;
        Ok(BucketMut {
            inner: self.inner,
            id,
        })
    }

    /// Opens a nested bucket, creating it if missing.
    pub fn create_bucket_if_not_exists(&self, name: impl AsRef<[u8]>) -> Result<BucketMut<'t>> {
        match self.bucket(name.as_ref())? {
            Some(b) => Ok(b),
            None => self.create_bucket(name),
        }
    }

    /// Deletes a nested bucket and everything in it.
    pub fn delete_bucket(&self, name: impl AsRef<[u8]>) -> Result<()> {
        let name = name.as_ref();
        check_key(name)?;
        let pager = self.pager();
        self.inner.borrow_mut()?.delete_bucket(pager, self.id, name)
    }

    /// Names of nested buckets, sorted.
    pub fn buckets(&self) -> Result<Vec<Vec<u8>>> {
        let st = self.inner.borrow()?;
        let tree = st.tree(self.id)?;
        bucket_names(self.pager(), Some(&st), tree)
    }

    /// The nested buckets, opened, with their names, in key order.
    pub fn iter_buckets(&self) -> Result<BucketIter<'t, BucketMut<'t>>> {
        self.root_child()?;
        Ok(BucketIter::new(*self, self.cursor()))
    }

    /// A cursor over keys and nested buckets (supports `delete`; for seeks —
    /// [`BucketMut::iter`] and [`BucketMut::iter_buckets`] iterate).
    pub fn cursor(&self) -> Cursor<'t> {
        Cursor::new(self.src())
    }

    fn src(&self) -> Source<'t> {
        Source::Write {
            inner: self.inner,
            bucket: self.id,
        }
    }

    /// All key/value pairs in key order (nested buckets are skipped).
    pub fn iter(&self) -> Result<Range<'t>> {
        self.root_child()?;
        Ok(Range::all(self.src()))
    }

    /// Key/value pairs with keys in `r` (see [`Bucket::range`]).
    pub fn range<K: AsRef<[u8]>>(&self, r: impl RangeBounds<K>) -> Result<Range<'t>> {
        self.root_child()?;
        Ok(Range::within(self.src(), r))
    }

    /// Key/value pairs whose keys start with `p`.
    pub fn prefix(&self, p: impl AsRef<[u8]>) -> Result<Range<'t>> {
        self.root_child()?;
        Ok(Range::with_prefix(self.src(), p.as_ref()))
    }
}

/// Reading a bucket, shared by [`Bucket`] (a read snapshot) and [`BucketMut`] (the write
/// transaction), so that one helper can take either:
///
/// ```
/// use untorn::ReadBucket;
///
/// fn total<'t>(b: &impl ReadBucket<'t>) -> untorn::Result<u64> {
///     let mut sum = 0;
///     for item in b.iter()? {
///         let (_, v) = item?;
///         sum += u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8]));
///     }
///     Ok(sum)
/// }
/// # let dir = tempfile::tempdir()?;
/// # let db = untorn::Database::create(dir.path().join("db"))?;
/// db.update(|tx| -> untorn::Result<()> {
///     let b = tx.create_bucket("n")?;
///     b.put("a", 2u64.to_be_bytes())?;
///     assert_eq!(total(&b)?, 2); // a BucketMut
///     Ok(())
/// })?;
/// db.view(|tx| -> untorn::Result<()> {
///     assert_eq!(total(&tx.bucket("n")?.expect("created"))?, 2); // a Bucket
///     Ok(())
/// })?;
/// # Ok::<(), untorn::Error>(())
/// ```
///
/// The inherent methods of the same names do the same; the trait needs importing only
/// where a helper is generic.
pub trait ReadBucket<'t>: Sized {
    /// The value stored under `key`.
    fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>>;
    /// Key/value pairs directly in this bucket (O(1)).
    fn len(&self) -> Result<u64>;
    /// Whether the bucket holds no key/value pairs.
    fn is_empty(&self) -> Result<bool>;
    /// The bucket's sequence counter.
    fn sequence(&self) -> Result<u64>;
    /// Opens a nested bucket.
    fn bucket(&self, name: impl AsRef<[u8]>) -> Result<Option<Self>>;
    /// Names of nested buckets, sorted.
    fn buckets(&self) -> Result<Vec<Vec<u8>>>;
    /// The nested buckets, opened, with their names, in key order.
    fn iter_buckets(&self) -> Result<BucketIter<'t, Self>>;
    /// A cursor over keys and nested buckets.
    fn cursor(&self) -> Cursor<'t>;
    /// All key/value pairs in key order.
    fn iter(&self) -> Result<Range<'t>>;
    /// Key/value pairs with keys in `r`.
    fn range<K: AsRef<[u8]>>(&self, r: impl RangeBounds<K>) -> Result<Range<'t>>;
    /// Key/value pairs whose keys start with `p`.
    fn prefix(&self, p: impl AsRef<[u8]>) -> Result<Range<'t>>;
}

/// Implements [`ReadBucket`] by the inherent methods of the same names.
macro_rules! read_bucket_by_inherent {
    ($ty:ident) => {
        impl<'t> ReadBucket<'t> for $ty<'t> {
            fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
                $ty::get(self, key)
            }
            fn len(&self) -> Result<u64> {
                $ty::len(self)
            }
            fn is_empty(&self) -> Result<bool> {
                $ty::is_empty(self)
            }
            fn sequence(&self) -> Result<u64> {
                $ty::sequence(self)
            }
            fn bucket(&self, name: impl AsRef<[u8]>) -> Result<Option<Self>> {
                $ty::bucket(self, name)
            }
            fn buckets(&self) -> Result<Vec<Vec<u8>>> {
                $ty::buckets(self)
            }
            fn iter_buckets(&self) -> Result<BucketIter<'t, Self>> {
                $ty::iter_buckets(self)
            }
            fn cursor(&self) -> Cursor<'t> {
                $ty::cursor(self)
            }
            fn iter(&self) -> Result<Range<'t>> {
                $ty::iter(self)
            }
            fn range<K: AsRef<[u8]>>(&self, r: impl RangeBounds<K>) -> Result<Range<'t>> {
                $ty::range(self, r)
            }
            fn prefix(&self, p: impl AsRef<[u8]>) -> Result<Range<'t>> {
                $ty::prefix(self, p)
            }
        }
    };
}

read_bucket_by_inherent!(Bucket);
read_bucket_by_inherent!(BucketMut);

/// An iterator over the nested buckets of a bucket (or the top-level buckets of a
/// transaction): `(name, bucket)` in key order, key/value pairs skipped.
pub struct BucketIter<'t, B> {
    parent: B,
    cursor: Cursor<'t>,
    started: bool,
    done: bool,
}

impl<B> fmt::Debug for BucketIter<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketIter")
            .field("cursor", &self.cursor)
            .finish()
    }
}

impl<'t, B: ReadBucket<'t>> BucketIter<'t, B> {
    pub(crate) fn new(parent: B, cursor: Cursor<'t>) -> Self {
        BucketIter {
            parent,
            cursor,
            started: false,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Option<(Key, B)>> {
        loop {
            let item = if self.started {
                self.cursor.next()?
            } else {
                self.started = true;
                self.cursor.first()?
            };
            match item {
                None => return Ok(None),
                Some((_, Entry::Value(_))) => continue,
                Some((name, Entry::Bucket)) => {
                    let b = self
                        .parent
                        .bucket(&name)?
                        .ok_or(Error::Internal("a bucket a cursor stands on does not open"))?;
                    return Ok(Some((name, b)));
                }
            }
        }
    }
}

impl<'t, B: ReadBucket<'t>> Iterator for BucketIter<'t, B> {
    type Item = Result<(Key, B)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
