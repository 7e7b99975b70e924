//! The write transaction's arena: nodes, their keys and values, and child pointers that
//! are either a committed page or an arena node.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{
    branch_entry_size, leaf_entry_size, BucketHeader, LeafValue, NodeView, PageRef,
    BUCKET_HEADER_SIZE, OVERFLOW_VALUE_SIZE, PAGE_HEADER_SIZE,
};
use crate::limits::MAX_KEY_SIZE;

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
pub(crate) enum NodeValue {
    Inline(Vec<u8>),
    Overflow {
        extent: PageRef,
        len: u64,
    },
    /// A large value written by this transaction; encoded into an extent at commit.
    NewOverflow(Arc<[u8]>),
    Bucket(BucketHeader),
}

impl NodeValue {
    pub(super) fn stored_len(&self) -> usize {
        match self {
            NodeValue::Inline(v) => v.len(),
            NodeValue::Overflow { .. } | NodeValue::NewOverflow(_) => OVERFLOW_VALUE_SIZE,
            NodeValue::Bucket(_) => BUCKET_HEADER_SIZE,
        }
    }

    pub(crate) fn is_bucket(&self) -> bool {
        matches!(self, NodeValue::Bucket(_))
    }

    pub(super) fn from_leaf(v: LeafValue<'_>) -> NodeValue {
        match v {
            LeafValue::Inline(b) => NodeValue::Inline(b.to_vec()),
            LeafValue::Overflow { extent, len } => NodeValue::Overflow { extent, len },
            LeafValue::Bucket(h) => NodeValue::Bucket(h),
        }
    }
}

/// The first 8 bytes of a key, big-endian, zero-padded. Prefixes that differ order
/// like the keys; equal prefixes say nothing and fall back to the full comparison.
fn key_prefix(key: &[u8]) -> u64 {
    key.iter()
        .take(8)
        .zip((0..8u32).rev())
        .fold(0u64, |acc, (b, shift)| acc | u64::from(*b) << (8 * shift))
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

    pub(super) fn cmp_with(&self, key: &[u8], prefix: u64) -> std::cmp::Ordering {
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
    pub(crate) vals: Vec<NodeValue>,
    /// Children (branch only).
    pub(crate) children: Vec<Child>,
    /// Encoded size in bytes, header included.
    pub(crate) size: usize,
}

impl Node {
    pub(super) fn new_leaf() -> Node {
        Node {
            leaf: true,
            size: PAGE_HEADER_SIZE,
            ..Node::default()
        }
    }

    /// The encoded size of each entry, in order. (A leaf pairs keys with values; the
    /// two have the same length, which `assert_sound` checks before a node is encoded.)
    pub(super) fn entry_sizes(&self) -> Vec<usize> {
        if self.leaf {
            self.keys
                .iter()
                .zip(&self.vals)
                .map(|(k, v)| leaf_entry_size(k.len(), v.stored_len()))
                .collect()
        } else {
            self.keys
                .iter()
                .map(|k| branch_entry_size(k.len()))
                .collect()
        }
    }

    fn encoded_size(&self) -> usize {
        PAGE_HEADER_SIZE + self.entry_sizes().iter().sum::<usize>()
    }

    pub(super) fn recompute_size(&mut self) {
        self.size = self.encoded_size();
    }

    pub(super) fn from_view(v: &NodeView<'_>) -> Result<Node> {
        let mut n = Node {
            leaf: v.is_leaf(),
            ..Node::default()
        };
        n.keys.reserve(v.len());
        for i in 0..v.len() {
            n.keys.push(NodeKey::new(v.key(i)?));
            if n.leaf {
                n.vals.push(NodeValue::from_leaf(v.leaf_value(i)?));
            } else {
                n.children.push(Child::Clean(v.branch_child(i)?));
            }
        }
        n.recompute_size();
        Ok(n)
    }

    pub(super) fn len(&self) -> usize {
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
        if self.encoded_size() != self.size {
            return Err(internal("node size estimate out of date"));
        }
        Ok(())
    }

    /// Splits off entries `at..` into a new node.
    pub(super) fn split_off(&mut self, at: usize) -> Node {
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

    pub(super) fn search(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        let prefix = key_prefix(key);
        self.keys.binary_search_by(|k| k.cmp_with(key, prefix))
    }

    pub(super) fn child_index(&self, key: &[u8]) -> usize {
        match self.search(key) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        }
    }
}

pub(crate) fn internal(what: &'static str) -> Error {
    Error::Internal(what)
}
