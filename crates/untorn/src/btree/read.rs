//! Read paths over both kinds of node: a verified page or an arena node of the write
//! transaction. Every walk is bounded by `MAX_TREE_DEPTH`.

use std::sync::Arc;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{BucketHeader, LeafValue, NodeView, PageRef, VerifiedPage};
use crate::limits::MAX_TREE_DEPTH;
use crate::pager::Pager;

use super::node::{internal, Child, Node, NodeKey, NodeValue};
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
    Mem(&'a Node),
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
                    NodeValue::Inline(b) => ValRef::Inline(b),
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

/// The error for a walk that went deeper than `MAX_TREE_DEPTH` (a cycle or damage).
pub(crate) fn too_deep(page: u64) -> Error {
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
