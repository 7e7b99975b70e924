//! Buckets: [`Bucket`] (a bucket of a read snapshot) and [`BucketMut`] (a bucket of the
//! write transaction; several handles may coexist and see each other's changes).

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
use crate::value::{Entry, Value};

fn get_value(pager: &Pager, st: Option<&TxState>, tree: Tree, key: &[u8]) -> Result<Option<Value>> {
    match lookup(pager, st, tree, key)? {
        None => Ok(None),
        Some((h, i)) => match entry_at(pager, st, tree.id, &h, i)? {
            Entry::Value(v) => Ok(Some(v)),
            Entry::Bucket => Err(Error::IncompatibleValue {
                expected: "value",
                found: "bucket",
            }),
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
            _ => Err(Error::IncompatibleValue {
                expected: "bucket",
                found: "value",
            }),
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
        match self.pins.lookup(self.pager, key.as_ref())? {
            None => Ok(None),
            Some((h, i)) => match entry_at(self.pager, None, self.tree.id, &h, i)? {
                Entry::Value(v) => Ok(Some(v)),
                Entry::Bucket => Err(Error::IncompatibleValue {
                    expected: "value",
                    found: "bucket",
                }),
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

    /// A cursor over keys and nested buckets.
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

    /// All key/value pairs in key order (nested buckets are skipped).
    pub fn iter(&self) -> Result<Range<'t>> {
        Ok(Range::all(self.src()))
    }

    /// Key/value pairs with keys in `r`.
    pub fn range<'a>(&self, r: impl RangeBounds<&'a [u8]>) -> Result<Range<'t>> {
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
            return Err(Error::IncompatibleValue {
                expected: "bucket",
                found: "value",
            });
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

    /// A cursor over keys and nested buckets (supports `delete`).
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

    /// Key/value pairs with keys in `r`.
    pub fn range<'a>(&self, r: impl RangeBounds<&'a [u8]>) -> Result<Range<'t>> {
        self.root_child()?;
        Ok(Range::within(self.src(), r))
    }

    /// Key/value pairs whose keys start with `p`.
    pub fn prefix(&self, p: impl AsRef<[u8]>) -> Result<Range<'t>> {
        self.root_child()?;
        Ok(Range::with_prefix(self.src(), p.as_ref()))
    }
}
