//! The bucket table of a write transaction: which buckets it opened, created or
//! deleted, and writing their headers into their parents at commit.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{BucketHeader, PageRef};
use crate::limits::{MAX_BUCKETS_PER_DELETE, MAX_BUCKET_DEPTH, MAX_TREE_DEPTH, MAX_TREE_PAGES};
use crate::pager::Pager;

use super::node::{Child, NodeValue};
use super::read::{load, lookup, too_deep, ValRef};
use super::state::{BucketId, BucketState, TxState};

impl TxState {
    /// Whether `id` is a bucket this transaction opened and has not deleted.
    fn is_open(&self, id: BucketId) -> bool {
        self.bucket_state(id).is_some_and(|s| !s.deleted)
    }

    /// Adds a bucket to the table and indexes it under (parent, name).
    fn add_bucket(&mut self, state: BucketState) -> BucketId {
        let id = BucketId::at(self.buckets.len());
        if let Some(parent) = state.parent {
            self.index.insert((parent, state.name.clone()), id);
        }
        self.buckets.push(state);
        id
    }

    /// Finds the value stored under `name` in bucket `parent` (read-only).
    fn find_entry(
        &self,
        pager: &Pager,
        parent: BucketId,
        name: &[u8],
    ) -> Result<Option<NodeValue>> {
        let root = self.bucket(parent)?.root;
        let Some((h, i)) = lookup(pager, Some(self), root, name)? else {
            return Ok(None);
        };
        let v = h.view(Some(self))?;
        Ok(Some(match v.val(i)? {
            ValRef::Inline(b) => NodeValue::Inline(b.to_vec()),
            ValRef::Overflow { extent, len } => NodeValue::Overflow { extent, len },
            ValRef::NewOverflow(a) => NodeValue::NewOverflow(Arc::clone(a)),
            ValRef::Bucket(h) => NodeValue::Bucket(h),
        }))
    }

    /// Opens sub-bucket `name` of `parent`.
    pub(crate) fn open_bucket(
        &mut self,
        pager: &Pager,
        parent: BucketId,
        name: &[u8],
    ) -> Result<Option<BucketId>> {
        let depth = self.bucket(parent)?.depth;
        if let Some(&id) = self.index.get(&(parent, name.to_vec())) {
            if self.is_open(id) {
                return Ok(Some(id));
            }
        }
        match self.find_entry(pager, parent, name)? {
            None => Ok(None),
            Some(NodeValue::Bucket(h)) => Ok(Some(self.add_bucket(BucketState {
                root: Child::from_ref(h.root),
                sequence: h.sequence,
                count: h.count,
                parent: Some(parent),
                name: name.to_vec(),
                deleted: false,
                dirty: false,
                depth: depth + 1,
            }))),
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
        parent: BucketId,
        name: &[u8],
    ) -> Result<BucketId> {
        let depth = self.bucket(parent)?.depth;
        if depth + 1 > MAX_BUCKET_DEPTH {
            return Err(Error::TooDeep);
        }
        if self.open_bucket(pager, parent, name)?.is_some() {
            return Err(Error::BucketExists);
        }
        self.put(
            pager,
            parent,
            name,
            NodeValue::Bucket(BucketHeader::default()),
        )?;
        Ok(self.add_bucket(BucketState {
            root: Child::Null,
            sequence: 0,
            count: 0,
            parent: Some(parent),
            name: name.to_vec(),
            deleted: false,
            dirty: true,
            depth: depth + 1,
        }))
    }

    /// Deletes sub-bucket `name` of `parent` and frees every page under it.
    pub(crate) fn delete_bucket(
        &mut self,
        pager: &Pager,
        parent: BucketId,
        name: &[u8],
    ) -> Result<()> {
        let Some(id) = self.open_bucket(pager, parent, name)? else {
            return Err(Error::BucketNotFound);
        };
        // Collect the roots to free: this bucket and every bucket below it. Open nested
        // buckets use their transaction state, others their stored header.
        let mut roots = vec![id];
        let mut visited = 0usize;
        while let Some(bid) = roots.pop() {
            visited += 1;
            if visited > MAX_BUCKETS_PER_DELETE {
                return Err(too_deep(0));
            }
            let root = self.bucket(bid)?.root;
            let mut nested = Vec::new();
            self.free_tree(pager, root, &mut nested)?;
            for (child_name, header) in nested {
                let sub = match self.index.get(&(bid, child_name.clone())) {
                    Some(&s) if self.is_open(s) => s,
                    _ => {
                        let depth = self.bucket(bid)?.depth + 1;
                        self.add_bucket(BucketState {
                            root: Child::from_ref(header.root),
                            sequence: header.sequence,
                            count: header.count,
                            parent: Some(bid),
                            name: child_name,
                            deleted: false,
                            dirty: false,
                            depth,
                        })
                    }
                };
                roots.push(sub);
            }
            self.bucket_mut(bid)?.deleted = true;
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
            if depth > MAX_TREE_DEPTH || visited > MAX_TREE_PAGES {
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

    pub(crate) fn set_sequence(&mut self, bucket: BucketId, v: u64) -> Result<()> {
        let st = self.bucket_mut(bucket)?;
        st.sequence = v;
        st.dirty = true;
        self.mod_count += 1;
        Ok(())
    }

    /// The buckets whose headers must be rewritten into their parents at commit (not the
    /// root bucket, whose root goes into the meta), deepest first.
    pub(crate) fn dirty_buckets_deepest_first(&self) -> Vec<(usize, BucketId)> {
        let mut ids: Vec<(usize, BucketId)> = (1..self.buckets.len())
            .map(BucketId::at)
            .filter_map(|id| {
                let s = self.bucket_state(id)?;
                (!s.deleted && s.dirty).then_some((s.depth, id))
            })
            .collect();
        ids.sort_by_key(|&(depth, _)| std::cmp::Reverse(depth));
        ids
    }

    /// After bucket `bucket`'s tree was spilled to `root`, stores its header in its
    /// parent's tree (which makes the parent dirty). Returns the parent.
    pub(crate) fn store_bucket_header(
        &mut self,
        pager: &Pager,
        bucket: BucketId,
        root: PageRef,
    ) -> Result<BucketId> {
        let (parent, name, header) = {
            let s = self.bucket(bucket)?;
            let parent = s
                .parent
                .ok_or(Error::Internal("storing the root bucket's header"))?;
            (
                parent,
                s.name.clone(),
                BucketHeader {
                    root,
                    sequence: s.sequence,
                    count: s.count,
                },
            )
        };
        self.put(pager, parent, &name, NodeValue::Bucket(header))?;
        let s = self.bucket_mut(bucket)?;
        s.root = Child::from_ref(root);
        s.dirty = false;
        Ok(parent)
    }
}
