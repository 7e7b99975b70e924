//! Buckets, values, cursors and range iterators.

use std::fmt;
use std::ops::{Bound, Deref, RangeBounds};
use std::sync::Arc;

use crate::btree::{load, lookup, Child, Handle, NVal, TxState, ValRef, MAX_TREE_DEPTH};
use crate::core::TxInner;
use crate::error::{CorruptionKind, Error, Result};
use crate::format::{overflow_value, BucketHeader, VerifiedPage};
use crate::pager::Pager;

/// A value read from the database. Dereferences to `&[u8]`; values in a page are not
/// copied.
#[derive(Clone)]
pub struct Value {
    inner: ValueInner,
}

#[derive(Clone)]
enum ValueInner {
    Page {
        page: Arc<VerifiedPage>,
        start: usize,
        end: usize,
    },
    Owned(Arc<[u8]>),
}

impl Value {
    fn in_page(page: Arc<VerifiedPage>, slice: &[u8]) -> Value {
        let base = page.bytes().as_ptr() as usize;
        let start = (slice.as_ptr() as usize).saturating_sub(base);
        let end = start + slice.len();
        Value {
            inner: ValueInner::Page { page, start, end },
        }
    }

    fn owned(bytes: impl Into<Arc<[u8]>>) -> Value {
        Value {
            inner: ValueInner::Owned(bytes.into()),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.inner {
            ValueInner::Page { page, start, end } => page.bytes().get(*start..*end).unwrap_or(&[]),
            ValueInner::Owned(b) => b,
        }
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?})", self.as_bytes())
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Value {}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialEq<&[u8]> for Value {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_bytes() == *other
    }
}

/// What a cursor position holds.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A key/value pair.
    Value(Value),
    /// A nested bucket (open it with `bucket(key)`).
    Bucket,
}

fn entry_at(pager: &Pager, st: Option<&TxState>, h: &Handle, i: usize) -> Result<Entry> {
    let v = h.view(st)?;
    Ok(match v.val(i)? {
        ValRef::Inline(b) => match h {
            Handle::Page(p) => Entry::Value(Value::in_page(Arc::clone(p), b)),
            Handle::Mem(_) => Entry::Value(Value::owned(b.to_vec())),
        },
        ValRef::Overflow { extent, len } => {
            let page = pager.read(&extent)?;
            let slice = overflow_value(page.bytes(), page.header(), len)?;
            let value = Value::in_page(Arc::clone(&page), slice);
            Entry::Value(value)
        }
        ValRef::NewOverflow(a) => Entry::Value(Value::owned(Arc::clone(a))),
        ValRef::Bucket(_) => Entry::Bucket,
    })
}

fn get_value(
    pager: &Pager,
    st: Option<&TxState>,
    root: Child,
    key: &[u8],
) -> Result<Option<Value>> {
    match lookup(pager, st, root, key)? {
        None => Ok(None),
        Some((h, i)) => match entry_at(pager, st, &h, i)? {
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
    root: Child,
    name: &[u8],
) -> Result<Option<BucketHeader>> {
    match lookup(pager, st, root, name)? {
        None => Ok(None),
        Some((h, i)) => match h.view(st)?.val(i)? {
            ValRef::Bucket(bh) => Ok(Some(bh)),
            _ => Err(Error::IncompatibleValue {
                expected: "bucket",
                found: "value",
            }),
        },
    }
}

/// Names of the sub-buckets in the tree at `root`.
pub(crate) fn bucket_names(
    pager: &Pager,
    st: Option<&TxState>,
    root: Child,
) -> Result<Vec<Vec<u8>>> {
    let mut c = Cursor {
        src: Src::Fixed { pager, root },
        stack: Vec::new(),
        seen_mod: 0,
        pos: None,
    };
    let mut names = Vec::new();
    let mut item = c.first_with(pager, st, root)?;
    while let Some((k, e)) = item {
        if matches!(e, Entry::Bucket) {
            names.push(k);
        }
        item = c.next_with(pager, st)?;
    }
    Ok(names)
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::KeyEmpty);
    }
    if key.len() > crate::MAX_KEY_SIZE {
        return Err(Error::KeyTooLarge(key.len()));
    }
    Ok(())
}

/// A bucket in a read transaction.
#[derive(Clone)]
pub struct Bucket<'t> {
    pager: &'t Pager,
    root: Child,
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
        parent_root: Child,
        name: &[u8],
        depth: usize,
    ) -> Result<Option<Bucket<'t>>> {
        if depth >= crate::MAX_BUCKET_DEPTH {
            return Err(Error::corrupted(
                0,
                CorruptionKind::Structure,
                "buckets nested deeper than the bound",
            ));
        }
        Ok(
            bucket_header_at(pager, None, parent_root, name)?.map(|header| Bucket {
                pager,
                root: Child::from_ref(header.root),
                header,
                depth: depth + 1,
            }),
        )
    }

    /// The value stored under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        get_value(self.pager, None, self.root, key.as_ref())
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
        Bucket::open_child(self.pager, self.root, name, self.depth)
    }

    /// Names of nested buckets, sorted.
    pub fn buckets(&self) -> Result<Vec<Vec<u8>>> {
        bucket_names(self.pager, None, self.root)
    }

    /// A cursor over keys and nested buckets.
    pub fn cursor(&self) -> Cursor<'t> {
        Cursor::new(self.src())
    }

    fn src(&self) -> Src<'t> {
        Src::Fixed {
            pager: self.pager,
            root: self.root,
        }
    }

    /// All key/value pairs in key order (nested buckets are skipped).
    pub fn iter(&self) -> Result<Range<'t>> {
        Ok(Range::over(self.src(), Bound::Unbounded, Bound::Unbounded))
    }

    /// Key/value pairs with keys in `r`.
    pub fn range<'a>(&self, r: impl RangeBounds<&'a [u8]>) -> Result<Range<'t>> {
        Ok(Range::over(
            self.src(),
            owned_bound(r.start_bound()),
            owned_bound(r.end_bound()),
        ))
    }

    /// Key/value pairs whose keys start with `p`.
    pub fn prefix(&self, p: impl AsRef<[u8]>) -> Result<Range<'t>> {
        let (lo, hi) = prefix_bounds(p.as_ref());
        Ok(Range::over(self.src(), lo, hi))
    }
}

fn owned_bound(b: Bound<&&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
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

/// A bucket in the write transaction. Several handles may coexist.
#[derive(Clone, Copy)]
pub struct BucketMut<'t> {
    inner: &'t TxInner<'t>,
    id: usize,
}

impl fmt::Debug for BucketMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BucketMut").field("id", &self.id).finish()
    }
}

impl<'t> BucketMut<'t> {
    pub(crate) fn root(inner: &'t TxInner<'t>) -> BucketMut<'t> {
        BucketMut { inner, id: 0 }
    }

    fn pager(&self) -> &'t Pager {
        &self.inner.shared.pager
    }

    fn root_child(&self) -> Result<Child> {
        Ok(self.inner.borrow()?.bucket(self.id)?.root)
    }

    /// The value stored under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        let st = self.inner.borrow()?;
        let root = st.bucket(self.id)?.root;
        get_value(self.pager(), Some(&st), root, key.as_ref())
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        check_key(key)?;
        if value.len() > crate::MAX_VALUE_SIZE {
            return Err(Error::ValueTooLarge(value.len()));
        }
        if self.id == 0 {
            return Err(Error::IncompatibleValue {
                expected: "bucket",
                found: "value",
            });
        }
        let pager = self.pager();
        let mut st = self.inner.borrow_mut()?;
        let val = if value.len() > crate::btree::overflow_threshold(st.page_size) {
            NVal::NewOverflow(Arc::from(value))
        } else {
            NVal::Inline(value.to_vec())
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
        let root = st.bucket(self.id)?.root;
        bucket_names(self.pager(), Some(&st), root)
    }

    /// A cursor over keys and nested buckets (supports `delete`).
    pub fn cursor(&self) -> Cursor<'t> {
        Cursor::new(self.src())
    }

    fn src(&self) -> Src<'t> {
        Src::Tx {
            inner: self.inner,
            bucket: self.id,
        }
    }

    /// All key/value pairs in key order (nested buckets are skipped).
    pub fn iter(&self) -> Result<Range<'t>> {
        self.root_child()?;
        Ok(Range::over(self.src(), Bound::Unbounded, Bound::Unbounded))
    }

    /// Key/value pairs with keys in `r`.
    pub fn range<'a>(&self, r: impl RangeBounds<&'a [u8]>) -> Result<Range<'t>> {
        self.root_child()?;
        Ok(Range::over(
            self.src(),
            owned_bound(r.start_bound()),
            owned_bound(r.end_bound()),
        ))
    }

    /// Key/value pairs whose keys start with `p`.
    pub fn prefix(&self, p: impl AsRef<[u8]>) -> Result<Range<'t>> {
        self.root_child()?;
        let (lo, hi) = prefix_bounds(p.as_ref());
        Ok(Range::over(self.src(), lo, hi))
    }
}

#[derive(Clone, Copy)]
enum Src<'t> {
    Fixed {
        pager: &'t Pager,
        root: Child,
    },
    Tx {
        inner: &'t TxInner<'t>,
        bucket: usize,
    },
}

type Item = Option<(Vec<u8>, Entry)>;

/// A cursor over one bucket: keys in order, nested buckets included (as [`Entry::Bucket`]).
///
/// In a write transaction a cursor survives modifications made through any handle: it
/// re-seeks to its last key when the transaction changed.
pub struct Cursor<'t> {
    src: Src<'t>,
    stack: Vec<(Handle, usize)>,
    seen_mod: u64,
    pos: Option<Vec<u8>>,
}

impl fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor").field("pos", &self.pos).finish()
    }
}

fn too_deep() -> Error {
    Error::corrupted(0, CorruptionKind::Structure, "tree deeper than the bound")
}

/// Bound on leaf steps in one cursor move (empty leaves are skipped).
const MAX_LEAF_STEPS: usize = 1 << 40;

impl<'t> Cursor<'t> {
    fn new(src: Src<'t>) -> Self {
        Cursor {
            src,
            stack: Vec::new(),
            seen_mod: 0,
            pos: None,
        }
    }

    fn run<R>(
        &mut self,
        f: impl FnOnce(&mut Self, &Pager, Option<&TxState>, Child) -> Result<R>,
    ) -> Result<R> {
        match self.src {
            Src::Fixed { pager, root } => f(self, pager, None, root),
            Src::Tx { inner, bucket } => {
                let st = inner.borrow()?;
                let root = st.bucket(bucket)?.root;
                f(self, &inner.shared.pager, Some(&st), root)
            }
        }
    }

    /// Moves to the first entry.
    #[allow(clippy::should_implement_trait)]
    pub fn first(&mut self) -> Result<Item> {
        self.run(|c, pager, st, root| c.first_with(pager, st, root))
    }

    /// Moves to the last entry.
    pub fn last(&mut self) -> Result<Item> {
        self.run(|c, pager, st, root| {
            c.stack.clear();
            c.descend(pager, st, root, true)?;
            if c.at_valid(st)? {
                c.current(pager, st)
            } else {
                c.back_with(pager, st)
            }
        })
    }

    /// Moves to the first entry with key >= `key`.
    pub fn seek(&mut self, key: impl AsRef<[u8]>) -> Result<Item> {
        let key = key.as_ref();
        self.run(|c, pager, st, root| {
            c.seek_inner(pager, st, root, key)?;
            c.current(pager, st)
        })
    }

    /// Moves to the next entry.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Item> {
        self.run(|c, pager, st, root| {
            if !c.revalidate(pager, st, root)? {
                return c.current(pager, st);
            }
            c.next_with(pager, st)
        })
    }

    /// Moves to the previous entry.
    pub fn prev(&mut self) -> Result<Item> {
        self.run(|c, pager, st, root| {
            c.revalidate(pager, st, root)?;
            if c.stack.is_empty() {
                c.descend(pager, st, root, true)?;
                if c.at_valid(st)? {
                    return c.current(pager, st);
                }
            }
            c.back_with(pager, st)
        })
    }

    /// Deletes the key/value pair at the cursor (write transactions only). The next
    /// `next()` returns the entry after it.
    pub fn delete(&mut self) -> Result<()> {
        let Src::Tx { inner, bucket } = self.src else {
            return Err(Error::ReadOnly);
        };
        let Some(key) = self.pos.clone() else {
            return Err(Error::InvalidArgument("cursor is not positioned".into()));
        };
        BucketMut { inner, id: bucket }.delete(key)?;
        Ok(())
    }

    fn first_with(&mut self, pager: &Pager, st: Option<&TxState>, root: Child) -> Result<Item> {
        self.stack.clear();
        self.descend(pager, st, root, false)?;
        if !self.forward_to_valid(pager, st)? {
            self.stack.clear();
            self.pos = None;
            return Ok(None);
        }
        self.current(pager, st)
    }

    fn next_with(&mut self, pager: &Pager, st: Option<&TxState>) -> Result<Item> {
        match self.stack.last_mut() {
            None => return Ok(None),
            Some((_, idx)) => *idx += 1,
        }
        if !self.forward_to_valid(pager, st)? {
            self.stack.clear();
            return Ok(None);
        }
        self.current(pager, st)
    }

    fn seek_inner(
        &mut self,
        pager: &Pager,
        st: Option<&TxState>,
        root: Child,
        key: &[u8],
    ) -> Result<()> {
        self.stack.clear();
        let mut child = root;
        for _ in 0..MAX_TREE_DEPTH {
            let Some(h) = load(pager, child)? else {
                return Ok(());
            };
            let (leaf, idx, next) = {
                let v = h.view(st)?;
                if v.is_leaf() {
                    let i = match v.search(key)? {
                        Ok(i) | Err(i) => i,
                    };
                    (true, i, Child::Null)
                } else {
                    let i = v.child_index(key)?;
                    (false, i, v.child(i)?)
                }
            };
            self.stack.push((h, idx));
            if leaf {
                if !self.forward_to_valid(pager, st)? {
                    self.stack.clear();
                }
                return Ok(());
            }
            child = next;
        }
        Err(too_deep())
    }

    /// In a write transaction, re-seeks if the transaction changed since the last move.
    /// Returns false if the old position's key no longer exists (the cursor then already
    /// stands on its successor).
    fn revalidate(&mut self, pager: &Pager, st: Option<&TxState>, root: Child) -> Result<bool> {
        let Some(st_ref) = st else { return Ok(true) };
        if st_ref.mod_count == self.seen_mod {
            return Ok(true);
        }
        self.seen_mod = st_ref.mod_count;
        match self.pos.clone() {
            None => {
                self.stack.clear();
                Ok(true)
            }
            Some(k) => {
                self.seek_inner(pager, st, root, &k)?;
                let exact = match self.stack.last() {
                    Some((h, i)) => {
                        let v = h.view(st)?;
                        *i < v.len() && v.key(*i)? == k.as_slice()
                    }
                    None => false,
                };
                Ok(exact)
            }
        }
    }

    fn descend(
        &mut self,
        pager: &Pager,
        st: Option<&TxState>,
        mut child: Child,
        last: bool,
    ) -> Result<()> {
        for _ in 0..MAX_TREE_DEPTH {
            if self.stack.len() > MAX_TREE_DEPTH {
                return Err(too_deep());
            }
            let Some(h) = load(pager, child)? else {
                return Ok(());
            };
            let (leaf, len) = {
                let v = h.view(st)?;
                (v.is_leaf(), v.len())
            };
            let idx = if last { len.saturating_sub(1) } else { 0 };
            if leaf {
                self.stack.push((h, idx));
                return Ok(());
            }
            let next = h.view(st)?.child(idx)?;
            self.stack.push((h, idx));
            child = next;
        }
        Err(too_deep())
    }

    fn at_valid(&self, st: Option<&TxState>) -> Result<bool> {
        match self.stack.last() {
            Some((h, i)) => Ok(*i < h.view(st)?.len()),
            None => Ok(false),
        }
    }

    /// From a leaf position that may be past the end of its leaf, moves forward to the
    /// next valid entry. Returns false at the end of the tree.
    fn forward_to_valid(&mut self, pager: &Pager, st: Option<&TxState>) -> Result<bool> {
        for _ in 0..MAX_LEAF_STEPS {
            if self.at_valid(st)? {
                return Ok(true);
            }
            if self.stack.pop().is_none() {
                return Ok(false);
            }
            // Climb to the first ancestor with a next child.
            loop {
                let Some((h, idx)) = self.stack.last_mut() else {
                    return Ok(false);
                };
                let len = h.view(st)?.len();
                if *idx + 1 < len {
                    *idx += 1;
                    let child = h.view(st)?.child(*idx)?;
                    self.descend(pager, st, child, false)?;
                    break;
                }
                self.stack.pop();
            }
        }
        Err(too_deep())
    }

    /// Moves to the previous valid entry.
    fn back_with(&mut self, pager: &Pager, st: Option<&TxState>) -> Result<Item> {
        for _ in 0..MAX_LEAF_STEPS {
            match self.stack.last_mut() {
                None => return Ok(None),
                Some((_, idx)) if *idx > 0 => {
                    *idx -= 1;
                    if self.at_valid(st)? {
                        return self.current(pager, st);
                    }
                    continue;
                }
                Some(_) => {}
            }
            self.stack.pop();
            loop {
                let Some((h, idx)) = self.stack.last_mut() else {
                    self.pos = None;
                    return Ok(None);
                };
                if *idx > 0 {
                    *idx -= 1;
                    let child = h.view(st)?.child(*idx)?;
                    self.descend(pager, st, child, true)?;
                    break;
                }
                self.stack.pop();
            }
            if self.at_valid(st)? {
                return self.current(pager, st);
            }
        }
        Err(too_deep())
    }

    fn current(&mut self, pager: &Pager, st: Option<&TxState>) -> Result<Item> {
        let Some((h, i)) = self.stack.last() else {
            return Ok(None);
        };
        let v = h.view(st)?;
        if *i >= v.len() {
            return Ok(None);
        }
        let key = v.key(*i)?.to_vec();
        let entry = entry_at(pager, st, h, *i)?;
        self.pos = Some(key.clone());
        if let Some(s) = st {
            self.seen_mod = s.mod_count;
        }
        Ok(Some((key, entry)))
    }
}

/// A double-ended iterator over the key/value pairs of a bucket within bounds.
pub struct Range<'t> {
    front: Cursor<'t>,
    back: Cursor<'t>,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    front_started: bool,
    back_started: bool,
    last_front: Option<Vec<u8>>,
    last_back: Option<Vec<u8>>,
    done: bool,
}

impl<'t> Range<'t> {
    fn over(src: Src<'t>, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Self {
        Range {
            front: Cursor::new(src),
            back: Cursor::new(src),
            lo,
            hi,
            front_started: false,
            back_started: false,
            last_front: None,
            last_back: None,
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
        match self.lo.clone() {
            Bound::Unbounded => self.front.first(),
            Bound::Included(k) => self.front.seek(&k),
            Bound::Excluded(k) => match self.front.seek(&k)? {
                Some((found, _)) if found == k => self.front.next(),
                other => Ok(other),
            },
        }
    }

    fn back_step(&mut self) -> Result<Item> {
        if self.back_started {
            return self.back.prev();
        }
        self.back_started = true;
        match self.hi.clone() {
            Bound::Unbounded => self.back.last(),
            Bound::Included(k) => match self.back.seek(&k)? {
                Some((found, e)) if found == k => Ok(Some((found, e))),
                _ => self.back.prev(),
            },
            Bound::Excluded(k) => {
                self.back.seek(&k)?;
                self.back.prev()
            }
        }
    }
}

impl Iterator for Range<'_> {
    type Item = Result<(Vec<u8>, Value)>;

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
            if !self.below_hi(&k) || self.last_back.as_ref().is_some_and(|b| k >= *b) {
                break;
            }
            self.last_front = Some(k.clone());
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
            if !self.above_lo(&k) || self.last_front.as_ref().is_some_and(|f| k <= *f) {
                break;
            }
            self.last_back = Some(k.clone());
            if let Entry::Value(v) = e {
                return Some(Ok((k, v)));
            }
        }
        self.done = true;
        None
    }
}
