//! Read paths over both kinds of node: a verified page or an arena node of the write
//! transaction. Every walk is bounded by `MAX_TREE_DEPTH`.

use std::sync::{Arc, OnceLock};

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    check_tree, BucketHeader, BucketId, LeafValue, NodeView, PageRef, VerifiedPage,
};
use crate::limits::MAX_TREE_DEPTH;
use crate::pager::Pager;

pub(crate) use super::node::Tree;
use super::node::{internal, Child, Node, NodeValue, Store};
use super::state::TxState;

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
    Mem(&'a Node, &'a Store),
}

impl<'a> NodeRef<'a> {
    pub(crate) fn is_leaf(&self) -> bool {
        match self {
            NodeRef::Page(v) => v.is_leaf(),
            NodeRef::Mem(n, _) => n.leaf,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            NodeRef::Page(v) => v.len(),
            NodeRef::Mem(n, _) => n.len(),
        }
    }

    pub(crate) fn key(&self, i: usize) -> Result<&'a [u8]> {
        match self {
            NodeRef::Page(v) => v.key(i),
            NodeRef::Mem(n, store) => n.key(store, i).ok_or_else(|| internal("node key index")),
        }
    }

    pub(crate) fn child(&self, i: usize) -> Result<Child> {
        match self {
            NodeRef::Page(v) => v.branch_child(i).map(Child::Clean),
            NodeRef::Mem(n, _) => n.child(i).ok_or_else(|| internal("node child index")),
        }
    }

    pub(crate) fn val(&self, i: usize) -> Result<ValRef<'a>> {
        match self {
            NodeRef::Page(v) => Ok(match v.leaf_value(i)? {
                LeafValue::Inline(b) => ValRef::Inline(b),
                LeafValue::Overflow { extent, len } => ValRef::Overflow { extent, len },
                LeafValue::Bucket(h) => ValRef::Bucket(h),
            }),
            NodeRef::Mem(n, store) => Ok(
                match n.vals.get(i).ok_or_else(|| internal("node value index"))? {
                    NodeValue::Inline(b) => ValRef::Inline(store.get(*b)),
                    NodeValue::Overflow { extent, len } => ValRef::Overflow {
                        extent: *extent,
                        len: *len,
                    },
                    NodeValue::NewOverflow(a) => ValRef::NewOverflow(a),
                    NodeValue::Bucket(h) => ValRef::Bucket(*h),
                },
            ),
        }
    }

    pub(crate) fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        match self {
            NodeRef::Page(v) => v.search(key),
            NodeRef::Mem(n, store) => n.search(store, key),
        }
    }

    pub(crate) fn child_index(&self, key: &[u8]) -> Result<usize> {
        match self {
            NodeRef::Page(v) => v.child_index(key),
            NodeRef::Mem(n, store) => n.child_index(store, key),
        }
    }
}

impl Handle {
    pub(crate) fn view<'a>(&'a self, st: Option<&'a TxState>) -> Result<NodeRef<'a>> {
        match self {
            Handle::Page(p) => p.node().map(NodeRef::Page),
            Handle::Mem(i) => st
                .and_then(|s| Some(NodeRef::Mem(s.nodes.get(*i)?, &s.store)))
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

/// Reads a committed page of tree `tree`: verified, checked against the reference and
/// against the tree (a page of another tree is a parent mismatch).
pub(crate) fn read_page(pager: &Pager, tree: BucketId, r: &PageRef) -> Result<Arc<VerifiedPage>> {
    let page = pager.read(r)?;
    check_tree(page.header(), tree)?;
    Ok(page)
}

/// Loads a child of tree `tree` for reading.
pub(crate) fn load(pager: &Pager, tree: BucketId, child: Child) -> Result<Option<Handle>> {
    match child {
        Child::Null => Ok(None),
        Child::Clean(r) => Ok(Some(Handle::Page(read_page(pager, tree, &r)?))),
        Child::Dirty(i) => Ok(Some(Handle::Mem(i))),
    }
}

/// The error for a walk that went deeper than `MAX_TREE_DEPTH` (a cycle or damage).
pub(crate) fn too_deep(page: u64) -> Error {
    Error::corrupted(
        page,
        CorruptionKind::Structure,
        format!("tree deeper than {MAX_TREE_DEPTH} levels (cycle or damage)"),
    )
}

/// Finds `key` in `tree`: the leaf holding it and its index.
pub(crate) fn lookup(
    pager: &Pager,
    st: Option<&TxState>,
    tree: Tree,
    key: &[u8],
) -> Result<Option<(Handle, usize)>> {
    let Some(h) = load(pager, tree.id, tree.root)? else {
        return Ok(None);
    };
    lookup_from(pager, st, tree.id, h, key)
}

/// Finds `key` below the node `h` of tree `tree`.
pub(crate) fn lookup_from(
    pager: &Pager,
    st: Option<&TxState>,
    tree: BucketId,
    mut h: Handle,
    key: &[u8],
) -> Result<Option<(Handle, usize)>> {
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
        let child = load(pager, tree, next)?.ok_or_else(|| {
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

/// The top two levels of one tree of a read snapshot, pinned by a bucket handle: the root
/// page and, when the root is a branch, each child as it is first needed. A lookup reads
/// them from here with neither a lock nor a hash probe, and goes to the pager only for
/// the levels below. The pages are verified, checked against their references and the
/// tree's id exactly as the pager path does, once per handle.
#[derive(Debug)]
pub(crate) struct Pinned {
    tree: Tree,
    root: OnceLock<Arc<VerifiedPage>>,
    /// The root's children by index (empty until the root is read, or for a leaf root).
    children: OnceLock<Box<[OnceLock<Arc<VerifiedPage>>]>>,
}

impl Pinned {
    pub(crate) fn new(tree: Tree) -> Pinned {
        Pinned {
            tree,
            root: OnceLock::new(),
            children: OnceLock::new(),
        }
    }

    pub(crate) fn tree(&self) -> Tree {
        self.tree
    }

    /// The root page (`None` for an empty tree).
    pub(crate) fn root(&self, pager: &Pager) -> Result<Option<&Arc<VerifiedPage>>> {
        let Child::Clean(r) = self.tree.root else {
            return Ok(None);
        };
        if let Some(p) = self.root.get() {
            return Ok(Some(p));
        }
        let page = read_page(pager, self.tree.id, &r)?;
        // Another thread may have pinned the same page first; either copy is the same.
        let _ = self.root.set(page);
        Ok(self.root.get())
    }

    /// Child `i` of the root, which is a branch.
    pub(crate) fn child(&self, pager: &Pager, i: usize) -> Result<&Arc<VerifiedPage>> {
        let root = self
            .root(pager)?
            .ok_or_else(|| internal("pinned child of an empty tree"))?;
        let view = root.node()?;
        let slots = match self.children.get() {
            Some(s) => s,
            None => {
                let n = if view.is_leaf() { 0 } else { view.len() };
                let _ = self.children.set((0..n).map(|_| OnceLock::new()).collect());
                self.children
                    .get()
                    .ok_or_else(|| internal("pinned children"))?
            }
        };
        let slot = slots.get(i).ok_or_else(|| internal("pinned child index"))?;
        if let Some(p) = slot.get() {
            return Ok(p);
        }
        let page = read_page(pager, self.tree.id, &view.branch_child(i)?)?;
        let _ = slot.set(page);
        slot.get().ok_or_else(|| internal("pinned child"))
    }

    /// Finds `key`: the two pinned levels first, then the pager.
    pub(crate) fn lookup(&self, pager: &Pager, key: &[u8]) -> Result<Option<(Handle, usize)>> {
        let Some(root) = self.root(pager)? else {
            return Ok(None);
        };
        let mut page = root;
        for level in 0..2 {
            let v = page.node()?;
            let idx = if v.is_leaf() {
                return Ok(match v.search(key)? {
                    Ok(i) => Some((Handle::Page(Arc::clone(page)), i)),
                    Err(_) => None,
                });
            } else {
                v.child_index(key)?
            };
            if level == 0 {
                page = self.child(pager, idx)?;
            } else {
                let below = load(pager, self.tree.id, Child::Clean(v.branch_child(idx)?))?
                    .ok_or_else(|| internal("a loaded page"))?;
                return lookup_from(pager, None, self.tree.id, below, key);
            }
        }
        Err(too_deep(page.page_id().get()))
    }
}
