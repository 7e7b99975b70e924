//! The bucket table of a write transaction: which buckets it opened, created or
//! deleted, and writing their headers into their parents at commit.

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{BucketHeader, BucketId, PageRef};
use crate::limits::{MAX_BUCKETS_PER_DELETE, MAX_BUCKET_DEPTH, MAX_TREE_DEPTH, MAX_TREE_PAGES};
use crate::pager::Pager;

use super::node::{Child, NodeValue};
use super::read::{load, lookup, too_deep, Tree, ValRef};
use super::state::{BucketSlot, BucketState, TxState};

impl TxState {
    /// Whether `id` is a bucket this transaction opened and has not deleted.
    fn is_open(&self, id: BucketSlot) -> bool {
        self.bucket_state(id).is_some_and(|s| !s.deleted)
    }

    /// Adds a bucket to the table and indexes it under (parent, name).
    fn add_bucket(&mut self, state: BucketState) -> BucketSlot {
        let id = BucketSlot::at(self.buckets.len());
        if let Some(parent) = state.parent {
            self.index.insert((parent, state.name.clone()), id);
        }
        self.buckets.push(state);
        id
    }

    /// Finds what is stored under `name` in bucket `parent` (read-only): `Some(Some(h))`
    /// for a bucket, `Some(None)` for a plain value.
    fn find_entry(
        &self,
        pager: &Pager,
        parent: BucketSlot,
        name: &[u8],
    ) -> Result<Option<Option<BucketHeader>>> {
        let tree = self.tree(parent)?;
        let Some((h, i)) = lookup(pager, Some(self), tree, name)? else {
            return Ok(None);
        };
        let v = h.view(Some(self))?;
        Ok(Some(match v.val(i)? {
            ValRef::Bucket(bh) => Some(checked_header(bh, name, h.page_id())?),
            _ => None,
        }))
    }

    /// Opens sub-bucket `name` of `parent`.
    pub(crate) fn open_bucket(
        &mut self,
        pager: &Pager,
        parent: BucketSlot,
        name: &[u8],
    ) -> Result<Option<BucketSlot>> {
        let depth = self.bucket(parent)?.depth;
        if let Some(&id) = self.index.get(&(parent, name.to_vec())) {
            if self.is_open(id) {
                return Ok(Some(id));
            }
        }
        match self.find_entry(pager, parent, name)? {
            None => Ok(None),
            Some(Some(h)) => Ok(Some(self.add_bucket(BucketState {
                root: Child::from_ref(h.root),
                bucket_id: h.bucket_id,
                sequence: h.sequence,
                count: h.count,
                parent: Some(parent),
                name: name.to_vec(),
                deleted: false,
                dirty: false,
                depth: depth + 1,
            }))),
            Some(None) => Err(Error::incompatible(name, "bucket", "value")),
        }
    }

    /// Creates sub-bucket `name` of `parent`.
    pub(crate) fn create_bucket(
        &mut self,
        pager: &Pager,
        parent: BucketSlot,
        name: &[u8],
    ) -> Result<BucketSlot> {
        let depth = self.bucket(parent)?.depth;
        if depth + 1 > MAX_BUCKET_DEPTH {
            return Err(Error::TooDeep);
        }
        if self.open_bucket(pager, parent, name)?.is_some() {
            return Err(Error::BucketExists {
                name: name.to_vec(),
            });
        }
        // Ids are never reused: a bucket deleted and created again is a new tree.
        let bucket_id = self.next_bucket_id;
        let next = bucket_id
            .next()
            .ok_or(Error::Internal("bucket ids exhausted"))?;
        self.put(
            pager,
            parent,
            name,
            NodeValue::Bucket(BucketHeader {
                bucket_id,
                ..BucketHeader::default()
            }),
        )?;
        self.next_bucket_id = next;
        Ok(self.add_bucket(BucketState {
            root: Child::Null,
            bucket_id,
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
        parent: BucketSlot,
        name: &[u8],
    ) -> Result<()> {
        let Some(id) = self.open_bucket(pager, parent, name)? else {
            return Err(Error::bucket_not_found(name));
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
            let tree = self.tree(bid)?;
            let mut nested = Vec::new();
            self.free_tree(pager, tree, &mut nested)?;
            for (child_name, header) in nested {
                let sub = match self.index.get(&(bid, child_name.clone())) {
                    Some(&s) if self.is_open(s) => s,
                    _ => {
                        let depth = self.bucket(bid)?.depth + 1;
                        self.add_bucket(BucketState {
                            root: Child::from_ref(header.root),
                            bucket_id: header.bucket_id,
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
        tree: Tree,
        nested: &mut Vec<(Vec<u8>, BucketHeader)>,
    ) -> Result<()> {
        let mut stack = vec![(tree.root, 0usize)];
        let mut visited = 0usize;
        while let Some((child, depth)) = stack.pop() {
            visited += 1;
            if depth > MAX_TREE_DEPTH || visited > MAX_TREE_PAGES {
                return Err(too_deep(0));
            }
            let Some(h) = load(pager, tree.id, child)? else {
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
                            ValRef::Bucket(bh) => {
                                let name = v.key(i)?;
                                nested
                                    .push((name.to_vec(), checked_header(bh, name, h.page_id())?));
                            }
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

    pub(crate) fn set_sequence(&mut self, bucket: BucketSlot, v: u64) -> Result<()> {
        let st = self.bucket_mut(bucket)?;
        st.sequence = v;
        st.dirty = true;
        self.mod_count += 1;
        Ok(())
    }

    /// The buckets whose headers must be rewritten into their parents at commit (not the
    /// root bucket, whose root goes into the meta), deepest first.
    pub(crate) fn dirty_buckets_deepest_first(&self) -> Vec<(usize, BucketSlot)> {
        let mut ids: Vec<(usize, BucketSlot)> = (1..self.buckets.len())
            .map(BucketSlot::at)
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
        bucket: BucketSlot,
        root: PageRef,
    ) -> Result<BucketSlot> {
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
                    bucket_id: s.bucket_id,
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

/// A bucket header read from a page, refused if its id cannot be a user bucket's.
/// `page` is the leaf holding it.
pub(crate) fn checked_header(h: BucketHeader, name: &[u8], page: u64) -> Result<BucketHeader> {
    if h.bucket_id < BucketId::FIRST_USER {
        return Err(Error::corrupted(
            page,
            CorruptionKind::Invalid,
            format!(
                "bucket {:?} has id {}, below the first user bucket id {}",
                String::from_utf8_lossy(name),
                h.bucket_id,
                BucketId::FIRST_USER
            ),
        ));
    }
    Ok(h)
}
