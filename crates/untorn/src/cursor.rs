//! [`Cursor`]: a position in one bucket's tree, moved key by key in either direction,
//! over a read snapshot or the write transaction's current state.
//!
//! In a write transaction a cursor survives modifications made through any handle: it
//! re-seeks to its last key when the transaction's modification counter moved.

use std::fmt;
use std::sync::Arc;

use crate::btree::{
    load, read_page, too_deep, BucketSlot, Child, Handle, Pinned, Tree, TxState, ValRef,
};
use crate::core::TxInner;
use crate::error::{Error, Result};
use crate::format::{overflow_value_range, BucketId, LeafValue, PageSlice, VerifiedPage};
use crate::limits::{MAX_LEAF_STEPS, MAX_TREE_DEPTH};
use crate::pager::Pager;
use crate::value::{Entry, Key, Value};

/// What element `i` of node `h` (of tree `tree`) holds, its value borrowed from its page.
pub(crate) fn entry_at(
    pager: &Pager,
    st: Option<&TxState>,
    tree: BucketId,
    h: &Handle,
    i: usize,
) -> Result<Entry> {
    let in_page = |page: &Arc<VerifiedPage>, range| {
        PageSlice::new(Arc::clone(page), range)
            .map(|s| Entry::Value(Value::in_page(s)))
            .ok_or(Error::Internal(
                "a validated value range lies outside its page",
            ))
    };
    if let Handle::Page(p) = h {
        // One decode of the element: the kind and where its bytes lie.
        return match p.node()?.leaf_value_at(i)? {
            (LeafValue::Inline(_), range) => in_page(p, range),
            (LeafValue::Overflow { extent, len }, _) => {
                let page = read_page(pager, tree, &extent)?;
                in_page(
                    &page,
                    overflow_value_range(page.bytes(), page.header(), len)?,
                )
            }
            (LeafValue::Bucket(_), _) => Ok(Entry::Bucket),
        };
    }
    let v = h.view(st)?;
    match v.val(i)? {
        ValRef::Inline(b) => Ok(Entry::Value(Value::owned(b.to_vec()))),
        ValRef::Overflow { extent, len } => {
            let page = read_page(pager, tree, &extent)?;
            in_page(
                &page,
                overflow_value_range(page.bytes(), page.header(), len)?,
            )
        }
        ValRef::NewOverflow(a) => Ok(Entry::Value(Value::owned(Arc::clone(a)))),
        ValRef::Bucket(_) => Ok(Entry::Bucket),
    }
}

/// Names of the sub-buckets in `tree`.
pub(crate) fn bucket_names(
    pager: &Pager,
    st: Option<&TxState>,
    tree: Tree,
) -> Result<Vec<Vec<u8>>> {
    let mut c = Cursor::new(Source::Snapshot {
        pager,
        tree,
        pins: None,
    });
    c.tree_id = tree.id;
    let mut names = Vec::new();
    let mut item = c.first_with(pager, st, tree.root)?;
    while let Some((k, e)) = item {
        if matches!(e, Entry::Bucket) {
            names.push(k.to_vec());
        }
        item = c.next_with(pager, st)?;
    }
    Ok(names)
}

/// The tree a cursor (or range) walks.
#[derive(Clone)]
pub(crate) enum Source<'t> {
    /// A bucket of a read snapshot: a fixed tree, and its top levels if a bucket handle
    /// pinned them.
    Snapshot {
        pager: &'t Pager,
        tree: Tree,
        pins: Option<Arc<Pinned>>,
    },
    /// A bucket of the write transaction: its root is looked up at every move.
    Write {
        inner: &'t TxInner<'t>,
        bucket: BucketSlot,
    },
}

/// A cursor step's result: the key and what it holds, or `None` at the end.
pub(crate) type Item = Option<(Key, Entry)>;

/// A cursor over one bucket: keys in order, nested buckets included (as [`Entry::Bucket`]).
///
/// In a write transaction a cursor survives modifications made through any handle: it
/// re-seeks to its last key when the transaction changed.
pub struct Cursor<'t> {
    src: Source<'t>,
    /// The tree walked (set by every move; the pages read must carry it).
    tree_id: BucketId,
    stack: Vec<(Handle, usize)>,
    seen_mod: u64,
    /// The key of the last move, kept by a write transaction's cursor to re-seek.
    pos: Option<Key>,
}

impl fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor").field("pos", &self.pos).finish()
    }
}

impl<'t> Cursor<'t> {
    pub(crate) fn new(src: Source<'t>) -> Self {
        Cursor {
            tree_id: match &src {
                Source::Snapshot { tree, .. } => tree.id,
                Source::Write { .. } => BucketId::NONE,
            },
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
        match &self.src {
            Source::Snapshot { pager, tree, .. } => {
                let (pager, root) = (*pager, tree.root);
                f(self, pager, None, root)
            }
            &Source::Write { inner, bucket } => {
                let st = inner.borrow()?;
                let tree = st.tree(bucket)?;
                self.tree_id = tree.id;
                f(self, &inner.shared.pager, Some(&st), tree.root)
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
        let Source::Write { inner, bucket } = self.src.clone() else {
            return Err(Error::ReadOnly);
        };
        let Some(key) = self.pos.clone() else {
            return Err(Error::InvalidArgument("cursor is not positioned".into()));
        };
        let pager = &inner.shared.pager;
        inner.borrow_mut()?.delete_value(pager, bucket, &key)?;
        Ok(())
    }

    /// Loads `child`, the next node below the cursor's stack: from the pinned top levels
    /// of a snapshot bucket when it is one of them, else through the pager.
    fn load_node(&self, pager: &Pager, child: Child) -> Result<Option<Handle>> {
        if let Source::Snapshot {
            pins: Some(pins), ..
        } = &self.src
        {
            if let Some(p) = pins.at(pager, &self.stack, child)? {
                return Ok(Some(Handle::Page(p)));
            }
        }
        load(pager, self.tree_id, child)
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
            let Some(h) = self.load_node(pager, child)? else {
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
        Err(too_deep(0))
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
                        *i < v.len() && v.key(*i)? == k.as_bytes()
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
                return Err(too_deep(0));
            }
            let Some(h) = self.load_node(pager, child)? else {
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
        Err(too_deep(0))
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
        Err(too_deep(0))
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
        Err(too_deep(0))
    }

    fn current(&mut self, pager: &Pager, st: Option<&TxState>) -> Result<Item> {
        let Some((h, i)) = self.stack.last() else {
            return Ok(None);
        };
        let v = h.view(st)?;
        if *i >= v.len() {
            return Ok(None);
        }
        let key_bytes = v.key(*i)?;
        // A key in a page is handed out as a slice of the cached page, never copied.
        let key = match h {
            Handle::Page(p) => PageSlice::of_subslice(Arc::clone(p), key_bytes)
                .map(Key::in_page)
                .ok_or(Error::Internal("a validated key lies outside its page"))?,
            Handle::Mem(_) => Key::owned(key_bytes.to_vec()),
        };
        let entry = entry_at(pager, st, self.tree_id, h, *i)?;
        // A write transaction's cursor keeps its key to re-seek after a modification; a
        // snapshot's position is its stack, and its key stays borrowable (`peek_key`).
        if let Some(s) = st {
            self.pos = Some(key.clone());
            self.seen_mod = s.mod_count;
        }
        Ok(Some((key, entry)))
    }

    /// The key the cursor stands on, borrowed: from the cached page for a snapshot
    /// cursor, from the kept position for a write transaction's.
    pub(crate) fn peek_key(&self) -> Option<&[u8]> {
        match &self.src {
            Source::Snapshot { .. } => match self.stack.last()? {
                (Handle::Page(p), i) => p.node().ok()?.key(*i).ok(),
                (Handle::Mem(_), _) => None,
            },
            Source::Write { .. } => self.pos.as_deref(),
        }
    }
}
