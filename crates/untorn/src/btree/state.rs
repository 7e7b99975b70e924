//! The write transaction's state ([`TxState`]): the arena of dirty nodes and the table
//! of the buckets it opened. The operations on it live beside it: `mutate` (keys and
//! values) and `catalog` (buckets); `read` only looks nodes up.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::format::{BucketId, PageRef, TxId};

use super::node::{internal, Child, Node, Store, Tree};

/// A bucket's index in the write transaction's bucket table (the root bucket is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct BucketSlot(usize);

impl BucketSlot {
    /// The root bucket, which holds the top-level buckets.
    pub(crate) const ROOT: BucketSlot = BucketSlot(0);

    pub(super) fn index(self) -> usize {
        self.0
    }

    /// The id the bucket at `index` of the table has.
    pub(super) fn at(index: usize) -> BucketSlot {
        BucketSlot(index)
    }
}

/// State of a bucket opened by a write transaction.
#[derive(Debug, Clone)]
pub(crate) struct BucketState {
    pub(crate) root: Child,
    /// The bucket's persistent id (the `tree_id` of its pages).
    pub(crate) bucket_id: BucketId,
    pub(crate) sequence: u64,
    pub(crate) count: u64,
    /// The parent bucket (`None` for the root bucket).
    pub(crate) parent: Option<BucketSlot>,
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
    /// The bytes the nodes' keys and inline values refer to.
    pub(crate) store: Store,
    /// The id the next bucket created gets.
    pub(crate) next_bucket_id: BucketId,
    pub(crate) buckets: Vec<BucketState>,
    /// Open buckets by (parent, name).
    pub(crate) index: HashMap<(BucketSlot, Vec<u8>), BucketSlot>,
    /// Pages (old versions, replaced overflow values, deleted trees) freed by this tx.
    pub(crate) freed: Vec<PageRef>,
    /// Bumped on every modification (cursors re-seek when it changes).
    pub(crate) mod_count: u64,
    /// The descent path of the current put or delete (kept to reuse its allocation).
    pub(super) path_scratch: Vec<(usize, usize)>,
    /// Committed pages a delete's lookup just read, reused when it materializes them.
    pub(super) looked_up: Vec<std::sync::Arc<crate::format::VerifiedPage>>,
}

impl TxState {
    pub(crate) fn new(
        txid: TxId,
        page_size: usize,
        root: PageRef,
        next_bucket_id: BucketId,
    ) -> TxState {
        TxState {
            txid,
            page_size,
            nodes: Vec::new(),
            store: Store::default(),
            next_bucket_id,
            buckets: vec![BucketState {
                root: Child::from_ref(root),
                bucket_id: BucketId::ROOT,
                sequence: 0,
                count: 0,
                parent: None,
                name: Vec::new(),
                deleted: false,
                dirty: false,
                depth: 0,
            }],
            index: HashMap::new(),
            freed: Vec::new(),
            mod_count: 0,
            path_scratch: Vec::new(),
            looked_up: Vec::new(),
        }
    }

    pub(crate) fn node(&self, i: usize) -> Result<&Node> {
        self.nodes.get(i).ok_or_else(|| internal("arena index"))
    }

    pub(crate) fn node_mut(&mut self, i: usize) -> Result<&mut Node> {
        self.nodes.get_mut(i).ok_or_else(|| internal("arena index"))
    }

    /// An open bucket (`BucketNotFound` once deleted by this transaction).
    pub(crate) fn bucket(&self, id: BucketSlot) -> Result<&BucketState> {
        match self.buckets.get(id.index()) {
            Some(s) if !s.deleted => Ok(s),
            Some(s) => Err(Error::bucket_not_found(&s.name)),
            None => Err(internal("bucket index")),
        }
    }

    pub(super) fn bucket_mut(&mut self, id: BucketSlot) -> Result<&mut BucketState> {
        match self.buckets.get_mut(id.index()) {
            Some(s) if !s.deleted => Ok(s),
            Some(s) => Err(Error::bucket_not_found(&s.name)),
            None => Err(internal("bucket index")),
        }
    }

    /// The tree of an open bucket: its root and id.
    pub(crate) fn tree(&self, id: BucketSlot) -> Result<Tree> {
        let s = self.bucket(id)?;
        Ok(Tree {
            root: s.root,
            id: s.bucket_id,
        })
    }

    /// The state of bucket `id`, deleted or not (`None` only for an id never handed out).
    pub(crate) fn bucket_state(&self, id: BucketSlot) -> Option<&BucketState> {
        self.buckets.get(id.index())
    }
}
