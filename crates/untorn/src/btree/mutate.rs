//! Keys and values in the write transaction's trees: descending with copy-on-write,
//! puts with eager splits, deletes with merges.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::check_tree;
use crate::format::{leaf_entry_size, PAGE_HEADER_SIZE};
use crate::limits::MAX_TREE_DEPTH;
use crate::pager::Pager;

use super::node::{internal, Child, Node, NodeKey, NodeValue};
use super::read::{load, lookup, read_page, too_deep, Handle, Tree, ValRef};
use super::state::{BucketSlot, TxState};

/// Children a page-backed branch may have replaced before it is decoded.
const MAX_PATCHED: usize = 1;

/// Values longer than this go to an overflow extent.
pub(crate) fn overflow_threshold(page_size: usize) -> usize {
    page_size / 4
}

impl TxState {
    /// Makes `child` (a node of bucket `bucket`'s tree) an arena node, recording its page
    /// as freed. Returns the arena index.
    pub(super) fn materialize(
        &mut self,
        pager: &Pager,
        bucket: BucketSlot,
        child: Child,
    ) -> Result<usize> {
        match child {
            Child::Dirty(i) => Ok(i),
            Child::Null => Err(internal("materialize null child")),
            Child::Clean(r) => {
                let tree = self
                    .bucket_state(bucket)
                    .map(|s| s.bucket_id)
                    .ok_or_else(|| internal("bucket index"))?;
                // A page a lookup of this operation just read (and checked) is reused.
                let seen = self
                    .looked_up
                    .iter()
                    .find(|p| p.page_id() == r.page_id && p.header().matches(&r))
                    .cloned();
                let page = match seen {
                    Some(p) => {
                        check_tree(p.header(), tree)?;
                        p
                    }
                    None => read_page(pager, tree, &r)?,
                };
                let node = Node::from_page(&mut self.store, page)?;
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
        bucket: BucketSlot,
        key: &[u8],
        lower_first: bool,
    ) -> Result<(Vec<(usize, usize)>, usize)> {
        let root = self.bucket(bucket)?.root;
        let mut cur = match root {
            Child::Null => {
                self.nodes.push(Node::new_leaf());
                self.nodes.len() - 1
            }
            other => self.materialize(pager, bucket, other)?,
        };
        self.bucket_mut(bucket)?.root = Child::Dirty(cur);
        // The path buffer is the transaction's, reused by every put and delete.
        let mut path = std::mem::take(&mut self.path_scratch);
        path.clear();
        for _ in 0..MAX_TREE_DEPTH {
            let (idx, child) = {
                let TxState { nodes, store, .. } = &mut *self;
                let n = nodes.get_mut(cur).ok_or_else(|| internal("arena index"))?;
                if n.leaf {
                    return Ok((path, cur));
                }
                let idx = n.child_index(store, key)?;
                if lower_first && idx == 0 {
                    let below_first = n.key(store, 0).is_some_and(|first| key < first);
                    if below_first {
                        n.decode(store)?;
                        let lowered = NodeKey::new(store, key)?;
                        if let Some(first) = n.keys.first_mut() {
                            *first = lowered;
                            n.recompute_size();
                        }
                    }
                }
                let child = n.child(idx).ok_or_else(|| internal("child index"))?;
                (idx, child)
            };
            let c = self.materialize(pager, bucket, child)?;
            {
                let TxState { nodes, store, .. } = &mut *self;
                let n = nodes.get_mut(cur).ok_or_else(|| internal("arena index"))?;
                n.set_child(idx, Child::Dirty(c))?;
                // A branch most of whose children a large transaction replaced is cheaper
                // decoded than read through its page and a long list of replacements.
                if n.page
                    .as_ref()
                    .is_some_and(|pb| pb.patched.len() > MAX_PATCHED)
                {
                    n.decode(store)?;
                }
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
        bucket: BucketSlot,
        key: &[u8],
        val: NodeValue,
    ) -> Result<Option<NodeValue>> {
        let (mut path, leaf) = self.descend_mut(pager, bucket, key, true)?;
        let is_bucket = val.is_bucket();
        let old = {
            let TxState { nodes, store, .. } = &mut *self;
            let n = nodes.get_mut(leaf).ok_or_else(|| internal("arena index"))?;
            match n.search(store, key)? {
                Ok(i) => {
                    let slot = n.vals.get_mut(i).ok_or_else(|| internal("leaf value"))?;
                    if slot.is_bucket() != is_bucket {
                        return Err(if is_bucket {
                            Error::incompatible(key, "bucket", "value")
                        } else {
                            Error::incompatible(key, "value", "bucket")
                        });
                    }
                    let new_len = val.stored_len();
                    let old = std::mem::replace(slot, val);
                    n.size = n.size + new_len - old.stored_len();
                    Some(old)
                }
                Err(i) => {
                    n.size += leaf_entry_size(key.len(), val.stored_len());
                    n.keys.insert(i, NodeKey::new(store, key)?);
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
        if let Some(NodeValue::Overflow { extent, .. }) = &old {
            self.freed.push(*extent);
        }
        let was_bucket = old.as_ref().is_some_and(NodeValue::is_bucket);
        let st = self.bucket_mut(bucket)?;
        match (old.is_some(), was_bucket, is_bucket) {
            (false, _, false) => st.count += 1,
            (true, true, false) => st.count += 1,
            (true, false, true) => st.count = st.count.saturating_sub(1),
            _ => {}
        }
        st.dirty = true;
        self.mod_count += 1;
        self.split(bucket, &mut path, leaf)?;
        self.path_scratch = path;
        Ok(old)
    }

    /// Stores a key/value pair (not a bucket) in bucket `b`.
    pub(crate) fn put_value(
        &mut self,
        pager: &Pager,
        bucket: BucketSlot,
        key: &[u8],
        val: NodeValue,
    ) -> Result<()> {
        self.put(pager, bucket, key, val).map(|_| ())
    }

    /// Splits `node` (and ancestors) while they exceed a page.
    fn split(
        &mut self,
        bucket: BucketSlot,
        path: &mut Vec<(usize, usize)>,
        node: usize,
    ) -> Result<()> {
        let page_size = self.page_size;
        let mut cur = node;
        for _ in 0..=MAX_TREE_DEPTH {
            let pieces = {
                let TxState { nodes, store, .. } = &mut *self;
                let n = nodes.get_mut(cur).ok_or_else(|| internal("arena index"))?;
                if n.size <= page_size {
                    return Ok(());
                }
                n.decode(store)?;
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
                let sizes: Vec<usize> = n.entry_sizes().collect();
                for (i, size) in sizes.into_iter().enumerate() {
                    acc += size;
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
                    .copied()
                    .ok_or_else(|| internal("empty split piece"))?;
                self.nodes.push(p);
                new_entries.push((sep, Child::Dirty(self.nodes.len() - 1)));
            }
            let parent = match path.pop() {
                Some((parent, idx)) => {
                    let pn = self.decoded(parent)?;
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
                        .copied()
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
                    self.bucket_mut(bucket)?.root = Child::Dirty(r);
                    r
                }
            };
            cur = parent;
        }
        Err(too_deep(0))
    }

    /// Removes the key/value pair `key` from bucket `b` (a sub-bucket under `key` is
    /// `IncompatibleValue`; use `delete_bucket`). Returns whether it existed.
    pub(crate) fn delete_value(
        &mut self,
        pager: &Pager,
        bucket: BucketSlot,
        key: &[u8],
    ) -> Result<bool> {
        let tree = self.tree(bucket)?;
        let found = self.find_keeping_pages(pager, tree, key);
        let removed = match found {
            Ok(None) => Ok(false),
            Ok(Some(true)) => Err(Error::incompatible(key, "value", "bucket")),
            Ok(Some(false)) => self.remove_present(pager, bucket, key).map(|v| v.is_some()),
            Err(e) => Err(e),
        };
        self.looked_up.clear();
        removed
    }

    /// Looks `key` up in `tree` (read-only): `Some(is_bucket)` if present. Keeps the
    /// committed pages of the path in `looked_up`, so that removing the key materializes
    /// them without reading them through the pager a second time.
    fn find_keeping_pages(
        &mut self,
        pager: &Pager,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<bool>> {
        let mut pages = std::mem::take(&mut self.looked_up);
        pages.clear();
        let found = (|| {
            let Some(mut h) = load(pager, tree.id, tree.root)? else {
                return Ok(None);
            };
            for _ in 0..MAX_TREE_DEPTH {
                if let Handle::Page(p) = &h {
                    pages.push(Arc::clone(p));
                }
                let next = {
                    let v = h.view(Some(self))?;
                    if v.is_leaf() {
                        return Ok(match v.search(key)? {
                            Ok(i) => Some(matches!(v.val(i)?, ValRef::Bucket(_))),
                            Err(_) => None,
                        });
                    }
                    v.child(v.child_index(key)?)?
                };
                h = load(pager, tree.id, next)?
                    .ok_or_else(|| internal("branch with a null child"))?;
            }
            Err(too_deep(h.page_id()))
        })();
        self.looked_up = pages;
        found
    }

    /// Removes `key` from bucket `b`. Returns the removed value, or None if absent.
    pub(crate) fn delete(
        &mut self,
        pager: &Pager,
        bucket: BucketSlot,
        key: &[u8],
    ) -> Result<Option<NodeValue>> {
        let tree = self.tree(bucket)?;
        if lookup(pager, Some(self), tree, key)?.is_none() {
            return Ok(None);
        }
        self.remove_present(pager, bucket, key)
    }

    /// Removes `key`, known to be present in bucket `b`.
    fn remove_present(
        &mut self,
        pager: &Pager,
        bucket: BucketSlot,
        key: &[u8],
    ) -> Result<Option<NodeValue>> {
        let (mut path, leaf) = self.descend_mut(pager, bucket, key, false)?;
        let removed = {
            let TxState { nodes, store, .. } = &mut *self;
            let n = nodes.get_mut(leaf).ok_or_else(|| internal("arena index"))?;
            match n.search(store, key)? {
                Ok(i) => {
                    let k = n.keys.remove(i);
                    let v = n.vals.remove(i);
                    n.size -= leaf_entry_size(k.len(), v.stored_len());
                    v
                }
                Err(_) => return Err(internal("key vanished during delete")),
            }
        };
        if let NodeValue::Overflow { extent, .. } = &removed {
            self.freed.push(*extent);
        }
        let st = self.bucket_mut(bucket)?;
        if !removed.is_bucket() {
            st.count = st.count.saturating_sub(1);
        }
        st.dirty = true;
        self.mod_count += 1;
        self.rebalance(pager, bucket, &mut path, leaf)?;
        self.path_scratch = path;
        Ok(Some(removed))
    }

    /// Arena node `i`, decoded if it was a page-backed branch (before it is
    /// restructured).
    fn decoded(&mut self, i: usize) -> Result<&mut Node> {
        let TxState { nodes, store, .. } = &mut *self;
        let n = nodes.get_mut(i).ok_or_else(|| internal("arena index"))?;
        n.decode(store)?;
        Ok(n)
    }

    /// Merges underfull nodes upward after a delete; collapses the root.
    fn rebalance(
        &mut self,
        pager: &Pager,
        bucket: BucketSlot,
        path: &mut Vec<(usize, usize)>,
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
                    let child = n.child(0).ok_or_else(|| internal("root child"))?;
                    root = self.materialize(pager, bucket, child)?;
                }
                let n = self.node(root)?;
                let new_root = if n.leaf && n.len() == 0 {
                    Child::Null
                } else {
                    Child::Dirty(root)
                };
                self.bucket_mut(bucket)?.root = new_root;
                return Ok(());
            };
            if len == 0 {
                let pn = self.decoded(parent)?;
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
                let pn = self.decoded(parent)?;
                (
                    pn.child(left_idx).ok_or_else(|| internal("left sibling"))?,
                    pn.child(right_idx)
                        .ok_or_else(|| internal("right sibling"))?,
                )
            };
            let l = self.materialize(pager, bucket, lc)?;
            let r = self.materialize(pager, bucket, rc)?;
            self.decoded(l)?;
            self.decoded(r)?;
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
}
