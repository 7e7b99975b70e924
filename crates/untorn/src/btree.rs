//! Copy-on-write B+trees: read paths shared by read and write transactions, and the
//! write transaction's in-memory dirty nodes with splits, merges and bucket bookkeeping.
//!
//! A write transaction never modifies a page. Touching a node *materializes* it: the page
//! is decoded into an arena [`Node`], the parent's pointer becomes `Child::Dirty`, and the
//! old page is recorded as freed by this transaction. At commit the dirty nodes are
//! encoded bottom-up into new pages (see `commit.rs`), so a parent always knows each
//! child's txid and checksum when it is encoded.
//!
//! **Invariant:** separator `keys[i]` of a branch is a lower bound of every key in
//! child `i`, and child `i`'s keys are below `keys[i+1]`.
//! **Invariant:** the B+tree does I/O only through the pager.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    branch_entry_size, leaf_entry_size, BucketHeader, LeafValue, NodeView, PageRef, TxId,
    VerifiedPage, BUCKET_HEADER_SIZE, OVERFLOW_VALUE_SIZE, PAGE_HEADER_SIZE,
};
use crate::pager::Pager;

use crate::limits::MAX_KEY_SIZE;
pub(crate) use crate::limits::MAX_TREE_DEPTH;

/// A pointer to a child node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Child {
    /// Empty tree.
    Null,
    /// A committed page.
    Clean(PageRef),
    /// A node in the write transaction's arena.
    Dirty(usize),
}

impl Child {
    pub(crate) fn from_ref(r: PageRef) -> Child {
        if r.is_null() {
            Child::Null
        } else {
            Child::Clean(r)
        }
    }
}

/// A leaf value held by a dirty node.
#[derive(Debug, Clone)]
pub(crate) enum NVal {
    Inline(Vec<u8>),
    Overflow {
        extent: PageRef,
        len: u64,
    },
    /// A large value written by this transaction; encoded into an extent at commit.
    NewOverflow(Arc<[u8]>),
    Bucket(BucketHeader),
}

impl NVal {
    fn stored_len(&self) -> usize {
        match self {
            NVal::Inline(v) => v.len(),
            NVal::Overflow { .. } | NVal::NewOverflow(_) => OVERFLOW_VALUE_SIZE,
            NVal::Bucket(_) => BUCKET_HEADER_SIZE,
        }
    }

    pub(crate) fn is_bucket(&self) -> bool {
        matches!(self, NVal::Bucket(_))
    }

    fn from_leaf(v: LeafValue<'_>) -> NVal {
        match v {
            LeafValue::Inline(b) => NVal::Inline(b.to_vec()),
            LeafValue::Overflow { extent, len } => NVal::Overflow { extent, len },
            LeafValue::Bucket(h) => NVal::Bucket(h),
        }
    }
}

/// The first 8 bytes of a key, big-endian, zero-padded. Prefixes that differ order
/// like the keys; equal prefixes say nothing and fall back to the full comparison.
fn key_prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    if let (Some(dst), Some(src)) = (b.get_mut(..n), key.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_be_bytes(b)
}

/// A key held by an arena node, with its prefix inline: a binary search compares
/// prefixes without chasing the heap pointer (the pointer chase was the cost of a put).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeKey {
    prefix: u64,
    bytes: Box<[u8]>,
}

impl NodeKey {
    pub(crate) fn new(key: &[u8]) -> NodeKey {
        NodeKey {
            prefix: key_prefix(key),
            bytes: key.into(),
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    fn cmp_with(&self, key: &[u8], prefix: u64) -> std::cmp::Ordering {
        match self.prefix.cmp(&prefix) {
            std::cmp::Ordering::Equal => self.as_slice().cmp(key),
            other => other,
        }
    }
}

/// A node in the write transaction's arena.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub(crate) leaf: bool,
    pub(crate) keys: Vec<NodeKey>,
    /// Leaf values (leaf only).
    pub(crate) vals: Vec<NVal>,
    /// Children (branch only).
    pub(crate) children: Vec<Child>,
    /// Encoded size in bytes, header included.
    pub(crate) size: usize,
}

impl Node {
    fn new_leaf() -> Node {
        Node {
            leaf: true,
            size: PAGE_HEADER_SIZE,
            ..Node::default()
        }
    }

    fn entry_size(&self, i: usize) -> usize {
        let klen = self.keys.get(i).map_or(0, NodeKey::len);
        if self.leaf {
            leaf_entry_size(klen, self.vals.get(i).map_or(0, NVal::stored_len))
        } else {
            branch_entry_size(klen)
        }
    }

    fn recompute_size(&mut self) {
        self.size = PAGE_HEADER_SIZE
            + (0..self.keys.len())
                .map(|i| self.entry_size(i))
                .sum::<usize>();
    }

    fn from_view(v: &NodeView<'_>) -> Result<Node> {
        let mut n = Node {
            leaf: v.is_leaf(),
            ..Node::default()
        };
        n.keys.reserve(v.len());
        for i in 0..v.len() {
            n.keys.push(NodeKey::new(v.key(i)?));
            if n.leaf {
                n.vals.push(NVal::from_leaf(v.leaf_value(i)?));
            } else {
                n.children.push(Child::Clean(v.branch_child(i)?));
            }
        }
        n.recompute_size();
        Ok(n)
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// Asserts what an encoded node must satisfy before it is spilled: one value (leaf)
    /// or one child (branch) per key, keys non-empty, bounded and strictly ascending, and
    /// the size estimate is the size the entries encode to.
    pub(crate) fn assert_sound(&self) -> Result<()> {
        let per_key = if self.leaf {
            self.vals.len() == self.keys.len() && self.children.is_empty()
        } else {
            self.children.len() == self.keys.len() && self.vals.is_empty() && !self.keys.is_empty()
        };
        if !per_key {
            return Err(internal("node with mismatched keys and entries"));
        }
        let ascending = self.keys.windows(2).all(|w| match w {
            [a, b] => a.as_slice() < b.as_slice(),
            _ => true,
        });
        let bounded = self
            .keys
            .iter()
            .all(|k| !k.as_slice().is_empty() && k.len() <= MAX_KEY_SIZE);
        if !ascending || !bounded {
            return Err(internal("node keys empty, too long or not ascending"));
        }
        let encoded_size = PAGE_HEADER_SIZE
            + (0..self.keys.len())
                .map(|i| self.entry_size(i))
                .sum::<usize>();
        if encoded_size != self.size {
            return Err(internal("node size estimate out of date"));
        }
        Ok(())
    }

    /// Splits off entries `at..` into a new node.
    fn split_off(&mut self, at: usize) -> Node {
        let mut right = Node {
            leaf: self.leaf,
            keys: self.keys.split_off(at),
            ..Node::default()
        };
        if self.leaf {
            right.vals = self.vals.split_off(at);
        } else {
            right.children = self.children.split_off(at);
        }
        self.recompute_size();
        right.recompute_size();
        right
    }

    fn search(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        let prefix = key_prefix(key);
        self.keys.binary_search_by(|k| k.cmp_with(key, prefix))
    }

    fn child_index(&self, key: &[u8]) -> usize {
        match self.search(key) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        }
    }
}

/// A node to read: a verified page or an arena node.
#[derive(Debug, Clone)]
pub(crate) enum Handle {
    Page(Arc<VerifiedPage>),
    Mem(usize),
}

/// A value as read from a node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValRef<'a> {
    Inline(&'a [u8]),
    Overflow { extent: PageRef, len: u64 },
    NewOverflow(&'a Arc<[u8]>),
    Bucket(BucketHeader),
}

/// A borrowed view of either kind of node.
#[derive(Clone, Copy)]
pub(crate) enum NodeRef<'a> {
    Page(NodeView<'a>),
    Mem(&'a Node),
}

fn internal(what: &'static str) -> Error {
    Error::Internal(what)
}

impl<'a> NodeRef<'a> {
    pub(crate) fn is_leaf(&self) -> bool {
        match self {
            NodeRef::Page(v) => v.is_leaf(),
            NodeRef::Mem(n) => n.leaf,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            NodeRef::Page(v) => v.len(),
            NodeRef::Mem(n) => n.len(),
        }
    }

    pub(crate) fn key(&self, i: usize) -> Result<&'a [u8]> {
        match self {
            NodeRef::Page(v) => v.key(i),
            NodeRef::Mem(n) => n
                .keys
                .get(i)
                .map(NodeKey::as_slice)
                .ok_or_else(|| internal("node key index")),
        }
    }

    pub(crate) fn child(&self, i: usize) -> Result<Child> {
        match self {
            NodeRef::Page(v) => v.branch_child(i).map(Child::Clean),
            NodeRef::Mem(n) => n
                .children
                .get(i)
                .copied()
                .ok_or_else(|| internal("node child index")),
        }
    }

    pub(crate) fn val(&self, i: usize) -> Result<ValRef<'a>> {
        match self {
            NodeRef::Page(v) => Ok(match v.leaf_value(i)? {
                LeafValue::Inline(b) => ValRef::Inline(b),
                LeafValue::Overflow { extent, len } => ValRef::Overflow { extent, len },
                LeafValue::Bucket(h) => ValRef::Bucket(h),
            }),
            NodeRef::Mem(n) => Ok(
                match n.vals.get(i).ok_or_else(|| internal("node value index"))? {
                    NVal::Inline(b) => ValRef::Inline(b),
                    NVal::Overflow { extent, len } => ValRef::Overflow {
                        extent: *extent,
                        len: *len,
                    },
                    NVal::NewOverflow(a) => ValRef::NewOverflow(a),
                    NVal::Bucket(h) => ValRef::Bucket(*h),
                },
            ),
        }
    }

    pub(crate) fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        match self {
            NodeRef::Page(v) => v.search(key),
            NodeRef::Mem(n) => Ok(n.search(key)),
        }
    }

    pub(crate) fn child_index(&self, key: &[u8]) -> Result<usize> {
        match self {
            NodeRef::Page(v) => v.child_index(key),
            NodeRef::Mem(n) => Ok(n.child_index(key)),
        }
    }
}

impl Handle {
    pub(crate) fn view<'a>(&'a self, st: Option<&'a TxState>) -> Result<NodeRef<'a>> {
        match self {
            Handle::Page(p) => p.node().map(NodeRef::Page),
            Handle::Mem(i) => st
                .and_then(|s| s.nodes.get(*i))
                .map(NodeRef::Mem)
                .ok_or_else(|| internal("arena node without a transaction")),
        }
    }

    /// Page id for error messages (0 for arena nodes).
    pub(crate) fn page_id(&self) -> u64 {
        match self {
            Handle::Page(p) => p.page_id().0,
            Handle::Mem(_) => 0,
        }
    }
}

/// Loads a child for reading.
pub(crate) fn load(pager: &Pager, child: Child) -> Result<Option<Handle>> {
    match child {
        Child::Null => Ok(None),
        Child::Clean(r) => Ok(Some(Handle::Page(pager.read(&r)?))),
        Child::Dirty(i) => Ok(Some(Handle::Mem(i))),
    }
}

fn too_deep(page: u64) -> Error {
    Error::corrupted(
        page,
        CorruptionKind::Structure,
        format!("tree deeper than {MAX_TREE_DEPTH} levels (cycle or damage)"),
    )
}

/// Finds `key` under `root`: the leaf holding it and its index.
pub(crate) fn lookup(
    pager: &Pager,
    st: Option<&TxState>,
    root: Child,
    key: &[u8],
) -> Result<Option<(Handle, usize)>> {
    let Some(mut h) = load(pager, root)? else {
        return Ok(None);
    };
    for _ in 0..MAX_TREE_DEPTH {
        let next = {
            let v = h.view(st)?;
            if v.is_leaf() {
                return Ok(match v.search(key)? {
                    Ok(i) => Some((h.clone(), i)),
                    Err(_) => None,
                });
            }
            let idx = v.child_index(key)?;
            v.child(idx)?
        };
        let child = load(pager, next)?.ok_or_else(|| {
            Error::corrupted(
                h.page_id(),
                CorruptionKind::Invalid,
                "branch with a null child",
            )
        })?;
        h = child;
    }
    Err(too_deep(h.page_id()))
}

/// State of a bucket opened by a write transaction.
#[derive(Debug, Clone)]
pub(crate) struct BucketState {
    pub(crate) root: Child,
    pub(crate) sequence: u64,
    pub(crate) count: u64,
    /// Parent bucket id (`usize::MAX` for the root bucket).
    pub(crate) parent: usize,
    pub(crate) name: Vec<u8>,
    pub(crate) deleted: bool,
    /// The header must be rewritten into the parent at commit.
    pub(crate) dirty: bool,
    pub(crate) depth: usize,
}

/// The mutable state of a write transaction.
pub(crate) struct TxState {
    pub(crate) txid: TxId,
    pub(crate) page_size: usize,
    pub(crate) nodes: Vec<Node>,
    pub(crate) buckets: Vec<BucketState>,
    pub(crate) index: HashMap<(usize, Vec<u8>), usize>,
    /// Pages (old versions, replaced overflow values, deleted trees) freed by this tx.
    pub(crate) freed: Vec<PageRef>,
    /// Bumped on every modification (cursors re-seek when it changes).
    pub(crate) mod_count: u64,
}

/// Values longer than this go to an overflow extent.
pub(crate) fn overflow_threshold(page_size: usize) -> usize {
    page_size / 4
}

impl TxState {
    pub(crate) fn new(txid: TxId, page_size: usize, root: PageRef) -> TxState {
        TxState {
            txid,
            page_size,
            nodes: Vec::new(),
            buckets: vec![BucketState {
                root: Child::from_ref(root),
                sequence: 0,
                count: 0,
                parent: usize::MAX,
                name: Vec::new(),
                deleted: false,
                dirty: false,
                depth: 0,
            }],
            index: HashMap::new(),
            freed: Vec::new(),
            mod_count: 0,
        }
    }

    pub(crate) fn node(&self, i: usize) -> Result<&Node> {
        self.nodes.get(i).ok_or_else(|| internal("arena index"))
    }

    pub(crate) fn node_mut(&mut self, i: usize) -> Result<&mut Node> {
        self.nodes.get_mut(i).ok_or_else(|| internal("arena index"))
    }

    pub(crate) fn bucket(&self, b: usize) -> Result<&BucketState> {
        match self.buckets.get(b) {
            Some(s) if !s.deleted => Ok(s),
            Some(_) => Err(Error::BucketNotFound),
            None => Err(internal("bucket index")),
        }
    }

    fn bucket_mut(&mut self, b: usize) -> Result<&mut BucketState> {
        match self.buckets.get_mut(b) {
            Some(s) if !s.deleted => Ok(s),
            Some(_) => Err(Error::BucketNotFound),
            None => Err(internal("bucket index")),
        }
    }

    /// Makes `child` an arena node, recording its page as freed. Returns the arena index.
    fn materialize(&mut self, pager: &Pager, child: Child) -> Result<usize> {
        match child {
            Child::Dirty(i) => Ok(i),
            Child::Null => Err(internal("materialize null child")),
            Child::Clean(r) => {
                let page = pager.read(&r)?;
                let node = Node::from_view(&page.node()?)?;
                self.freed.push(r);
                self.nodes.push(node);
                Ok(self.nodes.len() - 1)
            }
        }
    }

    /// Descends to the leaf for `key`, materializing the path. Returns the path of
    /// (branch, child index) pairs and the leaf's arena index. With `lower_first`, first
    /// separators are lowered to `key` on the way (keeps the separator invariant for inserts).
    fn descend_mut(
        &mut self,
        pager: &Pager,
        b: usize,
        key: &[u8],
        lower_first: bool,
    ) -> Result<(Vec<(usize, usize)>, usize)> {
        let root = self.bucket(b)?.root;
        let mut cur = match root {
            Child::Null => {
                self.nodes.push(Node::new_leaf());
                self.nodes.len() - 1
            }
            other => self.materialize(pager, other)?,
        };
        self.bucket_mut(b)?.root = Child::Dirty(cur);
        let mut path = Vec::new();
        for _ in 0..MAX_TREE_DEPTH {
            let (idx, child) = {
                let n = self.node_mut(cur)?;
                if n.leaf {
                    return Ok((path, cur));
                }
                let idx = n.child_index(key);
                if lower_first && idx == 0 {
                    if let Some(first) = n.keys.first_mut() {
                        if key < first.as_slice() {
                            *first = NodeKey::new(key);
                            n.recompute_size();
                        }
                    }
                }
                let child = *n.children.get(idx).ok_or_else(|| internal("child index"))?;
                (idx, child)
            };
            let c = self.materialize(pager, child)?;
            if let Some(slot) = self.node_mut(cur)?.children.get_mut(idx) {
                *slot = Child::Dirty(c);
            }
            path.push((cur, idx));
            cur = c;
        }
        Err(too_deep(0))
    }

    /// Inserts or replaces `key` in bucket `b`. Returns the previous value.
    pub(crate) fn put(
        &mut self,
        pager: &Pager,
        b: usize,
        key: &[u8],
        val: NVal,
    ) -> Result<Option<NVal>> {
        let (path, leaf) = self.descend_mut(pager, b, key, true)?;
        let is_bucket = val.is_bucket();
        let old = {
            let n = self.node_mut(leaf)?;
            match n.search(key) {
                Ok(i) => {
                    let slot = n.vals.get_mut(i).ok_or_else(|| internal("leaf value"))?;
                    if slot.is_bucket() != is_bucket {
                        return Err(if is_bucket {
                            Error::IncompatibleValue {
                                expected: "bucket",
                                found: "value",
                            }
                        } else {
                            Error::IncompatibleValue {
                                expected: "value",
                                found: "bucket",
                            }
                        });
                    }
                    let new_len = val.stored_len();
                    let old = std::mem::replace(slot, val);
                    n.size = n.size + new_len - old.stored_len();
                    Some(old)
                }
                Err(i) => {
                    n.size += leaf_entry_size(key.len(), val.stored_len());
                    n.keys.insert(i, NodeKey::new(key));
                    n.vals.insert(i, val);
                    None
                }
            }
        };
        debug_assert_eq!(
            self.node(leaf).map(|n| n.size).ok(),
            self.node(leaf).ok().map(|n| {
                let mut c = n.clone();
                c.recompute_size();
                c.size
            }),
            "incremental leaf size"
        );
        if let Some(NVal::Overflow { extent, .. }) = &old {
            self.freed.push(*extent);
        }
        let was_bucket = old.as_ref().is_some_and(NVal::is_bucket);
        let st = self.bucket_mut(b)?;
        match (old.is_some(), was_bucket, is_bucket) {
            (false, _, false) => st.count += 1,
            (true, true, false) => st.count += 1,
            (true, false, true) => st.count = st.count.saturating_sub(1),
            _ => {}
        }
        st.dirty = true;
        self.mod_count += 1;
        self.split(b, path, leaf)?;
        Ok(old)
    }

    /// Stores a key/value pair (not a bucket) in bucket `b`.
    pub(crate) fn put_value(
        &mut self,
        pager: &Pager,
        b: usize,
        key: &[u8],
        val: NVal,
    ) -> Result<()> {
        self.put(pager, b, key, val).map(|_| ())
    }

    /// Splits `node` (and ancestors) while they exceed a page.
    fn split(&mut self, b: usize, mut path: Vec<(usize, usize)>, node: usize) -> Result<()> {
        let page_size = self.page_size;
        let mut cur = node;
        for _ in 0..=MAX_TREE_DEPTH {
            let pieces = {
                let n = self.node_mut(cur)?;
                let min_entries = if n.leaf { 1 } else { 2 };
                if n.size <= page_size || n.len() < 2 * min_entries {
                    return Ok(());
                }
                // Cut into the fewest pieces that fit a page each, of even size (a
                // piece whose single entry is larger than a page becomes a multi-page
                // extent).
                let usable = page_size - PAGE_HEADER_SIZE;
                let body = n.size - PAGE_HEADER_SIZE;
                let piece_count = body.div_ceil(usable).max(2);
                let target = body / piece_count;
                let mut cuts = Vec::new();
                let mut acc = 0usize;
                let mut start = 0usize;
                for i in 0..n.len() {
                    acc += n.entry_size(i);
                    let piece_len = i + 1 - start;
                    let remaining = n.len() - (i + 1);
                    if acc >= target
                        && piece_len >= min_entries
                        && remaining >= min_entries
                        && cuts.len() + 1 < piece_count
                    {
                        cuts.push(i + 1);
                        start = i + 1;
                        acc = 0;
                    }
                }
                let mut pieces = Vec::new();
                for at in cuts.into_iter().rev() {
                    pieces.push(n.split_off(at));
                }
                pieces.reverse();
                pieces
            };
            if pieces.is_empty() {
                return Ok(());
            }
            let mut new_entries = Vec::with_capacity(pieces.len());
            for p in pieces {
                let sep = p
                    .keys
                    .first()
                    .cloned()
                    .ok_or_else(|| internal("empty split piece"))?;
                self.nodes.push(p);
                new_entries.push((sep, Child::Dirty(self.nodes.len() - 1)));
            }
            let parent = match path.pop() {
                Some((parent, idx)) => {
                    let pn = self.node_mut(parent)?;
                    for (k, (sep, child)) in new_entries.into_iter().enumerate() {
                        pn.keys.insert(idx + 1 + k, sep);
                        pn.children.insert(idx + 1 + k, child);
                    }
                    pn.recompute_size();
                    parent
                }
                None => {
                    let first = self
                        .node(cur)?
                        .keys
                        .first()
                        .cloned()
                        .ok_or_else(|| internal("empty root"))?;
                    let mut root = Node {
                        leaf: false,
                        keys: vec![first],
                        children: vec![Child::Dirty(cur)],
                        ..Node::default()
                    };
                    for (sep, child) in new_entries {
                        root.keys.push(sep);
                        root.children.push(child);
                    }
                    root.recompute_size();
                    self.nodes.push(root);
                    let r = self.nodes.len() - 1;
                    self.bucket_mut(b)?.root = Child::Dirty(r);
                    r
                }
            };
            cur = parent;
        }
        Err(too_deep(0))
    }

    /// Removes the key/value pair `key` from bucket `b` (a sub-bucket under `key` is
    /// `IncompatibleValue`; use `delete_bucket`). Returns whether it existed.
    pub(crate) fn delete_value(&mut self, pager: &Pager, b: usize, key: &[u8]) -> Result<bool> {
        let root = self.bucket(b)?.root;
        match lookup(pager, Some(self), root, key)? {
            None => Ok(false),
            Some((h, i)) if matches!(h.view(Some(self))?.val(i)?, ValRef::Bucket(_)) => {
                Err(Error::IncompatibleValue {
                    expected: "value",
                    found: "bucket",
                })
            }
            Some(_) => Ok(self.remove_present(pager, b, key)?.is_some()),
        }
    }

    /// Removes `key` from bucket `b`. Returns the removed value, or None if absent.
    pub(crate) fn delete(&mut self, pager: &Pager, b: usize, key: &[u8]) -> Result<Option<NVal>> {
        let root = self.bucket(b)?.root;
        if lookup(pager, Some(self), root, key)?.is_none() {
            return Ok(None);
        }
        self.remove_present(pager, b, key)
    }

    /// Removes `key`, known to be present in bucket `b`.
    fn remove_present(&mut self, pager: &Pager, b: usize, key: &[u8]) -> Result<Option<NVal>> {
        let (path, leaf) = self.descend_mut(pager, b, key, false)?;
        let removed = {
            let n = self.node_mut(leaf)?;
            match n.search(key) {
                Ok(i) => {
                    let k = n.keys.remove(i);
                    let v = n.vals.remove(i);
                    n.size -= leaf_entry_size(k.len(), v.stored_len());
                    v
                }
                Err(_) => return Err(internal("key vanished during delete")),
            }
        };
        if let NVal::Overflow { extent, .. } = &removed {
            self.freed.push(*extent);
        }
        let st = self.bucket_mut(b)?;
        if !removed.is_bucket() {
            st.count = st.count.saturating_sub(1);
        }
        st.dirty = true;
        self.mod_count += 1;
        self.rebalance(pager, b, path, leaf)?;
        Ok(Some(removed))
    }

    /// Merges underfull nodes upward after a delete; collapses the root.
    fn rebalance(
        &mut self,
        pager: &Pager,
        b: usize,
        mut path: Vec<(usize, usize)>,
        node: usize,
    ) -> Result<()> {
        let page_size = self.page_size;
        let mut cur = node;
        for _ in 0..=MAX_TREE_DEPTH {
            let (len, size, leaf) = {
                let n = self.node(cur)?;
                (n.len(), n.size, n.leaf)
            };
            let Some((parent, idx)) = path.pop() else {
                // Root: collapse a single-child branch, empty a leaf.
                let mut root = cur;
                for _ in 0..MAX_TREE_DEPTH {
                    let n = self.node(root)?;
                    if n.leaf || n.len() != 1 {
                        break;
                    }
                    let child = *n.children.first().ok_or_else(|| internal("root child"))?;
                    root = self.materialize(pager, child)?;
                }
                let n = self.node(root)?;
                let new_root = if n.leaf && n.len() == 0 {
                    Child::Null
                } else {
                    Child::Dirty(root)
                };
                self.bucket_mut(b)?.root = new_root;
                return Ok(());
            };
            if len == 0 {
                let pn = self.node_mut(parent)?;
                pn.keys.remove(idx);
                pn.children.remove(idx);
                pn.recompute_size();
                cur = parent;
                continue;
            }
            let min_entries = if leaf { 1 } else { 2 };
            if size >= page_size / 4 && len >= min_entries {
                return Ok(());
            }
            let parent_len = self.node(parent)?.len();
            if parent_len < 2 {
                cur = parent;
                continue;
            }
            let (left_idx, right_idx) = if idx > 0 {
                (idx - 1, idx)
            } else {
                (idx, idx + 1)
            };
            let (lc, rc) = {
                let pn = self.node(parent)?;
                (
                    *pn.children
                        .get(left_idx)
                        .ok_or_else(|| internal("left sibling"))?,
                    *pn.children
                        .get(right_idx)
                        .ok_or_else(|| internal("right sibling"))?,
                )
            };
            let l = self.materialize(pager, lc)?;
            let r = self.materialize(pager, rc)?;
            let combined = self.node(l)?.size + self.node(r)?.size - PAGE_HEADER_SIZE;
            if combined > page_size || self.node(l)?.leaf != self.node(r)?.leaf {
                // Keep both; they are dirty now, so record them in the parent.
                let pn = self.node_mut(parent)?;
                if let Some(s) = pn.children.get_mut(left_idx) {
                    *s = Child::Dirty(l);
                }
                if let Some(s) = pn.children.get_mut(right_idx) {
                    *s = Child::Dirty(r);
                }
                return Ok(());
            }
            let right = std::mem::take(self.node_mut(r)?);
            {
                let ln = self.node_mut(l)?;
                ln.keys.extend(right.keys);
                ln.vals.extend(right.vals);
                ln.children.extend(right.children);
                ln.recompute_size();
            }
            let pn = self.node_mut(parent)?;
            if let Some(s) = pn.children.get_mut(left_idx) {
                *s = Child::Dirty(l);
            }
            pn.keys.remove(right_idx);
            pn.children.remove(right_idx);
            pn.recompute_size();
            cur = parent;
        }
        Err(too_deep(0))
    }

    /// Finds the value stored under `name` in bucket `parent` (read-only).
    fn find_entry(&self, pager: &Pager, parent: usize, name: &[u8]) -> Result<Option<NVal>> {
        let root = self.bucket(parent)?.root;
        let Some((h, i)) = lookup(pager, Some(self), root, name)? else {
            return Ok(None);
        };
        let v = h.view(Some(self))?;
        Ok(Some(match v.val(i)? {
            ValRef::Inline(b) => NVal::Inline(b.to_vec()),
            ValRef::Overflow { extent, len } => NVal::Overflow { extent, len },
            ValRef::NewOverflow(a) => NVal::NewOverflow(Arc::clone(a)),
            ValRef::Bucket(h) => NVal::Bucket(h),
        }))
    }

    /// Opens sub-bucket `name` of `parent`.
    pub(crate) fn open_bucket(
        &mut self,
        pager: &Pager,
        parent: usize,
        name: &[u8],
    ) -> Result<Option<usize>> {
        let depth = self.bucket(parent)?.depth;
        if let Some(&id) = self.index.get(&(parent, name.to_vec())) {
            if self.buckets.get(id).is_some_and(|s| !s.deleted) {
                return Ok(Some(id));
            }
        }
        match self.find_entry(pager, parent, name)? {
            None => Ok(None),
            Some(NVal::Bucket(h)) => {
                self.buckets.push(BucketState {
                    root: Child::from_ref(h.root),
                    sequence: h.sequence,
                    count: h.count,
                    parent,
                    name: name.to_vec(),
                    deleted: false,
                    dirty: false,
                    depth: depth + 1,
                });
                let id = self.buckets.len() - 1;
                self.index.insert((parent, name.to_vec()), id);
                Ok(Some(id))
            }
            Some(_) => Err(Error::IncompatibleValue {
                expected: "bucket",
                found: "value",
            }),
        }
    }

    /// Creates sub-bucket `name` of `parent`.
    pub(crate) fn create_bucket(
        &mut self,
        pager: &Pager,
        parent: usize,
        name: &[u8],
    ) -> Result<usize> {
        let depth = self.bucket(parent)?.depth;
        if depth + 1 > crate::MAX_BUCKET_DEPTH {
            return Err(Error::TooDeep);
        }
        if self.open_bucket(pager, parent, name)?.is_some() {
            return Err(Error::BucketExists);
        }
        self.put(pager, parent, name, NVal::Bucket(BucketHeader::default()))?;
        self.buckets.push(BucketState {
            root: Child::Null,
            sequence: 0,
            count: 0,
            parent,
            name: name.to_vec(),
            deleted: false,
            dirty: true,
            depth: depth + 1,
        });
        let id = self.buckets.len() - 1;
        self.index.insert((parent, name.to_vec()), id);
        Ok(id)
    }

    /// Deletes sub-bucket `name` of `parent` and frees every page under it.
    pub(crate) fn delete_bucket(
        &mut self,
        pager: &Pager,
        parent: usize,
        name: &[u8],
    ) -> Result<()> {
        let Some(id) = self.open_bucket(pager, parent, name)? else {
            return Err(Error::BucketNotFound);
        };
        // Collect the roots to free: this bucket and every bucket below it. Open nested
        // buckets use their transaction state, others their stored header.
        let mut roots = vec![id];
        let mut stack_guard = 0usize;
        while let Some(bid) = roots.pop() {
            stack_guard += 1;
            if stack_guard > 1 << 24 {
                return Err(too_deep(0));
            }
            let root = self.bucket(bid)?.root;
            let mut nested = Vec::new();
            self.free_tree(pager, root, &mut nested)?;
            for (child_name, header) in nested {
                let sub = match self.index.get(&(bid, child_name.clone())) {
                    Some(&s) if self.buckets.get(s).is_some_and(|x| !x.deleted) => s,
                    _ => {
                        let depth = self.bucket(bid)?.depth + 1;
                        self.buckets.push(BucketState {
                            root: Child::from_ref(header.root),
                            sequence: header.sequence,
                            count: header.count,
                            parent: bid,
                            name: child_name,
                            deleted: false,
                            dirty: false,
                            depth,
                        });
                        self.buckets.len() - 1
                    }
                };
                roots.push(sub);
            }
            if let Some(s) = self.buckets.get_mut(bid) {
                s.deleted = true;
            }
        }
        self.delete(pager, parent, name)?;
        self.mod_count += 1;
        Ok(())
    }

    /// Frees every page of the tree at `root` (clean pages and overflow extents; arena
    /// nodes' original pages were already recorded when they were materialized) and
    /// returns the sub-buckets found in its leaves.
    fn free_tree(
        &mut self,
        pager: &Pager,
        root: Child,
        nested: &mut Vec<(Vec<u8>, BucketHeader)>,
    ) -> Result<()> {
        let mut stack = vec![(root, 0usize)];
        let mut visited = 0usize;
        while let Some((child, depth)) = stack.pop() {
            visited += 1;
            if depth > MAX_TREE_DEPTH || visited > 1 << 32 {
                return Err(too_deep(0));
            }
            let Some(h) = load(pager, child)? else {
                continue;
            };
            if let Child::Clean(r) = child {
                self.freed.push(r);
            }
            let mut extents = Vec::new();
            {
                let v = h.view(Some(self))?;
                for i in 0..v.len() {
                    if v.is_leaf() {
                        match v.val(i)? {
                            ValRef::Overflow { extent, .. } => extents.push(extent),
                            ValRef::Bucket(bh) => nested.push((v.key(i)?.to_vec(), bh)),
                            _ => {}
                        }
                    } else {
                        stack.push((v.child(i)?, depth + 1));
                    }
                }
            }
            self.freed.extend(extents);
        }
        Ok(())
    }

    pub(crate) fn set_sequence(&mut self, b: usize, v: u64) -> Result<()> {
        let st = self.bucket_mut(b)?;
        st.sequence = v;
        st.dirty = true;
        self.mod_count += 1;
        Ok(())
    }

    /// Writes every dirty bucket's header into its parent, deepest first, so that the
    /// root bucket's tree is the only thing left to encode. Called once, at commit, after
    /// each bucket's tree has been assigned pages by `spill` in commit.rs.
    pub(crate) fn dirty_buckets_deepest_first(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = (1..self.buckets.len())
            .filter(|&i| self.buckets.get(i).is_some_and(|s| !s.deleted && s.dirty))
            .collect();
        ids.sort_by_key(|&i| std::cmp::Reverse(self.buckets.get(i).map_or(0, |s| s.depth)));
        ids
    }

    /// Updates bucket `b`'s header in its parent's tree after its tree was spilled.
    pub(crate) fn store_bucket_header(
        &mut self,
        pager: &Pager,
        b: usize,
        root: PageRef,
    ) -> Result<()> {
        let (parent, name, header) = {
            let s = self.bucket(b)?;
            (
                s.parent,
                s.name.clone(),
                BucketHeader {
                    root,
                    sequence: s.sequence,
                    count: s.count,
                },
            )
        };
        self.put(pager, parent, &name, NVal::Bucket(header))?;
        if let Some(s) = self.buckets.get_mut(b) {
            s.root = Child::from_ref(root);
            s.dirty = false;
        }
        Ok(())
    }
}
