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

/// The branches of one tree of a read snapshot, pinned by a bucket handle as they are
/// first needed: the root and, below each pinned branch, its children while they are
/// branches (leaves are never pinned: they stay the cache's to evict). A lookup walks
/// every branch level from here with neither a lock, a hash probe nor a reference count
/// (the slots are write-once), and goes to the pager only for the leaf. Each page is
/// verified, checked against the reference its parent holds and against the tree's id
/// exactly as the pager path does, once per handle.
#[derive(Debug)]
pub(crate) struct Pinned {
    tree: Tree,
    root: OnceLock<PinNode>,
}

/// A pinned page and, for a branch, its pinned children by index (`None` once its
/// children turned out to be leaves).
#[derive(Debug)]
struct PinNode {
    page: Arc<VerifiedPage>,
    children: OnceLock<Option<Box<[OnceLock<PinNode>]>>>,
}

/// A child of a pinned branch: pinned itself, or a page read through the pager.
enum Loaded<'p> {
    Pinned(&'p PinNode),
    Page(Arc<VerifiedPage>),
}

impl PinNode {
    fn new(page: Arc<VerifiedPage>) -> PinNode {
        PinNode {
            page,
            children: OnceLock::new(),
        }
    }

    /// Child `i` of this node, which is a branch.
    fn child(&self, pager: &Pager, tree: BucketId, i: usize) -> Result<Loaded<'_>> {
        let view = self.page.node()?;
        let slot = match self.children.get() {
            Some(None) => {
                return Ok(Loaded::Page(read_page(
                    pager,
                    tree,
                    &view.branch_child(i)?,
                )?));
            }
            Some(Some(slots)) => Some(slots.get(i).ok_or_else(|| internal("pinned child index"))?),
            None => None,
        };
        if let Some(p) = slot.and_then(OnceLock::get) {
            return Ok(Loaded::Pinned(p));
        }
        let page = read_page(pager, tree, &view.branch_child(i)?)?;
        let slots = match self.children.get() {
            Some(s) => s,
            None => {
                let slots = (!page.node()?.is_leaf())
                    .then(|| (0..view.len()).map(|_| OnceLock::new()).collect());
                // Another thread may have decided first; its choice stands.
                let _ = self.children.set(slots);
                self.children
                    .get()
                    .ok_or_else(|| internal("pinned children"))?
            }
        };
        let Some(slot) = slots.as_ref().and_then(|s| s.get(i)) else {
            return Ok(Loaded::Page(page));
        };
        if page.node()?.is_leaf() {
            // A leaf where branches were pinned (a damaged, unbalanced tree): not pinned.
            return Ok(Loaded::Page(page));
        }
        // Another thread may have pinned the same page first; either copy is the same.
        let _ = slot.set(PinNode::new(page));
        slot.get()
            .map(Loaded::Pinned)
            .ok_or_else(|| internal("pinned child"))
    }
}

impl Pinned {
    pub(crate) fn new(tree: Tree) -> Pinned {
        Pinned {
            tree,
            root: OnceLock::new(),
        }
    }

    fn root_node(&self, pager: &Pager) -> Result<Option<&PinNode>> {
        let Child::Clean(r) = self.tree.root else {
            return Ok(None);
        };
        if let Some(p) = self.root.get() {
            return Ok(Some(p));
        }
        let page = read_page(pager, self.tree.id, &r)?;
        // Another thread may have pinned the same page first; either copy is the same.
        let _ = self.root.set(PinNode::new(page));
        Ok(self.root.get())
    }

    /// The page `child` of a cursor at `path` (the pages and indexes it descended from
    /// the root) if that child is one of the top two levels and pinned, or is the leaf
    /// below a pinned branch (read through the pager); `None` otherwise.
    pub(crate) fn at(
        &self,
        pager: &Pager,
        path: &[(Handle, usize)],
        child: Child,
    ) -> Result<Option<Arc<VerifiedPage>>> {
        let Some(mut node) = self.root_node(pager)? else {
            return Ok(None);
        };
        if path.is_empty() {
            return Ok((child == self.tree.root).then(|| Arc::clone(&node.page)));
        }
        // A cursor steps between leaves far more often than it descends: below the top
        // two levels, walking the pins from the root costs more than the pager's probe.
        if path.len() > 1 {
            return Ok(None);
        }
        let last = path.len() - 1;
        for (depth, (h, idx)) in path.iter().enumerate().take(MAX_TREE_DEPTH) {
            let on_path = matches!(h, Handle::Page(p) if Arc::ptr_eq(p, &node.page));
            if !on_path || node.page.node()?.is_leaf() {
                return Ok(None);
            }
            let loaded = node.child(pager, self.tree.id, *idx)?;
            if depth == last {
                let page = match loaded {
                    Loaded::Pinned(c) => Arc::clone(&c.page),
                    Loaded::Page(p) => p,
                };
                let Child::Clean(r) = child else {
                    return Ok(None);
                };
                let same = page.page_id() == r.page_id && page.header().matches(&r);
                return Ok(same.then_some(page));
            }
            match loaded {
                Loaded::Pinned(c) => node = c,
                Loaded::Page(_) => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Finds `key`: the pinned branches first, then the pager for the leaf.
    pub(crate) fn lookup(&self, pager: &Pager, key: &[u8]) -> Result<Option<(Handle, usize)>> {
        let Some(mut node) = self.root_node(pager)? else {
            return Ok(None);
        };
        for _ in 0..MAX_TREE_DEPTH {
            let v = node.page.node()?;
            if v.is_leaf() {
                return Ok(match v.search(key)? {
                    Ok(i) => Some((Handle::Page(Arc::clone(&node.page)), i)),
                    Err(_) => None,
                });
            }
            match node.child(pager, self.tree.id, v.child_index(key)?)? {
                Loaded::Pinned(c) => node = c,
                Loaded::Page(p) => {
                    return lookup_from(pager, None, self.tree.id, Handle::Page(p), key)
                }
            }
        }
        Err(too_deep(node.page.page_id().get()))
    }
}
