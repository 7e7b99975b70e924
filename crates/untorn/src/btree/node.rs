//! The write transaction's arena: nodes, their keys and values, and child pointers that
//! are either a committed page or an arena node.
//!
//! A node holds no bytes of its own. Keys and inline values are [`Span`]s into the
//! transaction's [`Store`]: either the verified page the node was materialized from
//! (kept alive by the store) or an append-only chunk holding the bytes this transaction
//! wrote. Materializing a page therefore copies no key or value and makes no allocation
//! per entry (one vector of keys and one of values or children per node); splits and
//! merges move spans, never bytes. The bytes are copied once, when the node is encoded
//! into its new page at commit.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{
    branch_entry_size, leaf_entry_size, BucketHeader, BucketId, LeafValue, PageRef, VerifiedPage,
    BUCKET_HEADER_SIZE, OVERFLOW_VALUE_SIZE, PAGE_HEADER_SIZE,
};
use crate::limits::MAX_KEY_SIZE;

/// Bytes of a fresh chunk of the store (larger items get a chunk of their own).
const CHUNK_BYTES: usize = 256 * 1024;

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

/// A tree to read: its root and the id every page of it carries (`tree_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tree {
    pub(crate) root: Child,
    pub(crate) id: BucketId,
}

impl Tree {
    /// The tree of a bucket header.
    pub(crate) fn of(h: &BucketHeader) -> Tree {
        Tree {
            root: Child::from_ref(h.root),
            id: h.bucket_id,
        }
    }
}

/// Bytes held by the store: `buf` indexes its buffers, `off..off+len` the bytes in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    buf: u32,
    off: u32,
    len: u32,
}

impl Span {
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }
}

#[derive(Debug)]
enum Buf {
    /// A verified page a node was materialized from.
    Page(Arc<VerifiedPage>),
    /// Bytes written by this transaction; never reallocated (its capacity is fixed).
    Chunk(Vec<u8>),
}

/// The bytes a write transaction's nodes refer to. Append-only: a span, once handed out,
/// resolves to the same bytes until the transaction ends.
#[derive(Debug, Default)]
pub(crate) struct Store {
    bufs: Vec<Buf>,
    /// The chunk new bytes are appended to.
    open_chunk: Option<usize>,
}

impl Store {
    /// The bytes of `s`. Spans are made only by this store and its buffers never change,
    /// so every span resolves; an empty slice would mean an engine bug.
    #[inline]
    pub(crate) fn get(&self, s: Span) -> &[u8] {
        let bytes = match self.bufs.get(s.buf as usize) {
            Some(Buf::Page(p)) => p.bytes(),
            Some(Buf::Chunk(c)) => c.as_slice(),
            None => &[],
        };
        let out = bytes.get(s.off as usize..(s.off as usize).saturating_add(s.len as usize));
        debug_assert!(out.is_some(), "a span outside its buffer");
        out.unwrap_or(&[])
    }

    /// Copies `bytes` into the store.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Span> {
        let len = u32::try_from(bytes.len()).map_err(|_| internal("item larger than a span"))?;
        let fits = |c: &Vec<u8>| c.capacity() - c.len() >= bytes.len();
        let idx = match self.open_chunk {
            Some(i) if matches!(self.bufs.get(i), Some(Buf::Chunk(c)) if fits(c)) => i,
            _ => {
                self.bufs
                    .push(Buf::Chunk(Vec::with_capacity(CHUNK_BYTES.max(bytes.len()))));
                self.open_chunk = Some(self.bufs.len() - 1);
                self.bufs.len() - 1
            }
        };
        let Some(Buf::Chunk(chunk)) = self.bufs.get_mut(idx) else {
            return Err(internal("store chunk"));
        };
        let off = u32::try_from(chunk.len()).map_err(|_| internal("chunk offset"))?;
        // Within capacity: the chunk never reallocates, so earlier spans stay valid.
        chunk.extend_from_slice(bytes);
        Ok(Span {
            buf: u32::try_from(idx).map_err(|_| internal("store index"))?,
            off,
            len,
        })
    }

    /// Keeps `page` alive for spans into it; returns its buffer index.
    fn adopt(&mut self, page: Arc<VerifiedPage>) -> Result<u32> {
        self.bufs.push(Buf::Page(page));
        u32::try_from(self.bufs.len() - 1).map_err(|_| internal("store index"))
    }
}

/// A span into buffer `buf` covering `range`.
fn span_in(buf: u32, range: std::ops::Range<usize>) -> Result<Span> {
    let off = u32::try_from(range.start).map_err(|_| internal("span offset"))?;
    let len = u32::try_from(range.len()).map_err(|_| internal("span length"))?;
    Ok(Span { buf, off, len })
}

/// A leaf value held by a dirty node.
#[derive(Debug, Clone)]
pub(crate) enum NodeValue {
    Inline(Span),
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
}

/// The first 8 bytes of a key, big-endian, zero-padded. Prefixes that differ order
/// like the keys; equal prefixes say nothing and fall back to the full comparison.
#[inline]
fn key_prefix(key: &[u8]) -> u64 {
    key.iter()
        .take(8)
        .zip((0..8u32).rev())
        .fold(0u64, |acc, (b, shift)| acc | u64::from(*b) << (8 * shift))
}

/// A key held by an arena node, with its prefix inline: a binary search compares
/// prefixes without resolving the span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NodeKey {
    prefix: u64,
    span: Span,
}

impl NodeKey {
    pub(crate) fn new(store: &mut Store, key: &[u8]) -> Result<NodeKey> {
        Ok(NodeKey {
            prefix: key_prefix(key),
            span: store.push(key)?,
        })
    }

    pub(crate) fn bytes<'s>(&self, store: &'s Store) -> &'s [u8] {
        store.get(self.span)
    }

    pub(crate) fn len(&self) -> usize {
        self.span.len()
    }

    fn cmp_with(&self, store: &Store, key: &[u8], prefix: u64) -> std::cmp::Ordering {
        match self.prefix.cmp(&prefix) {
            std::cmp::Ordering::Equal => self.bytes(store).cmp(key),
            other => other,
        }
    }
}

/// A branch materialized from a page whose entries this transaction has not changed:
/// its keys and children are read through the page, except the children it replaced
/// (`patched`, one per path the transaction descended). Neither decoded when it is
/// materialized nor re-encoded at commit: its new image is the page with the patched
/// references written into it ([`rebranch`](crate::format::rebranch)). Restructuring it (a split's separator,
/// a merge, a lowered first key) decodes it first ([`Node::decode`]).
#[derive(Debug, Clone)]
pub(crate) struct PageBranch {
    pub(crate) page: Arc<VerifiedPage>,
    pub(crate) patched: Vec<(usize, Child)>,
}

/// A node in the write transaction's arena.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// Set while the node is an unchanged branch page (then `keys` and `children` are
    /// empty; every accessor below reads through it).
    pub(crate) page: Option<PageBranch>,
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
    pub(super) fn entry_sizes(&self) -> impl Iterator<Item = usize> + '_ {
        let leaf = self.leaf;
        self.keys.iter().enumerate().map(move |(i, k)| {
            if leaf {
                leaf_entry_size(k.len(), self.vals.get(i).map_or(0, NodeValue::stored_len))
            } else {
                branch_entry_size(k.len())
            }
        })
    }

    fn encoded_size(&self) -> usize {
        PAGE_HEADER_SIZE + self.entry_sizes().sum::<usize>()
    }

    pub(super) fn recompute_size(&mut self) {
        debug_assert!(self.page.is_none(), "size of a page-backed branch");
        self.size = self.encoded_size();
    }

    /// A node over a verified page. A branch stays the page ([`PageBranch`]) until it
    /// is restructured; a leaf's keys and inline values are spans into the page, which
    /// the store keeps alive. No byte is copied.
    pub(super) fn from_page(store: &mut Store, page: Arc<VerifiedPage>) -> Result<Node> {
        let size = PAGE_HEADER_SIZE + usize::try_from(page.header().payload_len).unwrap_or(0);
        if !page.node()?.is_leaf() {
            return Ok(Node {
                page: Some(PageBranch {
                    page,
                    patched: Vec::new(),
                }),
                leaf: false,
                size,
                ..Node::default()
            });
        }
        Node::decode_page(store, page, &[])
    }

    /// Decodes a page-backed branch into keys and children (a no-op for other nodes).
    pub(super) fn decode(&mut self, store: &mut Store) -> Result<()> {
        if let Some(pb) = self.page.take() {
            *self = Node::decode_page(store, pb.page, &pb.patched)?;
        }
        Ok(())
    }

    /// The node of a verified page, with `patched` children replaced (a branch's).
    fn decode_page(
        store: &mut Store,
        page: Arc<VerifiedPage>,
        patched: &[(usize, Child)],
    ) -> Result<Node> {
        let v = page.node()?;
        let mut n = Node {
            leaf: v.is_leaf(),
            size: PAGE_HEADER_SIZE + usize::try_from(page.header().payload_len).unwrap_or(0),
            ..Node::default()
        };
        let count = v.len();
        n.keys.reserve_exact(count);
        if n.leaf {
            n.vals.reserve_exact(count);
        } else {
            n.children.reserve_exact(count);
        }
        let buf = store.adopt(Arc::clone(&page))?;
        let bytes = page.bytes();
        for i in 0..count {
            let (key_range, value) = if n.leaf {
                let (k, value, vrange) = v.leaf_entry(i)?;
                let value = match value {
                    LeafValue::Inline(_) => NodeValue::Inline(span_in(buf, vrange)?),
                    LeafValue::Overflow { extent, len } => NodeValue::Overflow { extent, len },
                    LeafValue::Bucket(h) => NodeValue::Bucket(h),
                };
                (k, Some(value))
            } else {
                n.children.push(Child::Clean(v.branch_child(i)?));
                (v.key_range(i)?, None)
            };
            let key = bytes
                .get(key_range.clone())
                .ok_or_else(|| internal("a validated key outside its page"))?;
            n.keys.push(NodeKey {
                prefix: key_prefix(key),
                span: span_in(buf, key_range)?,
            });
            if let Some(value) = value {
                n.vals.push(value);
            }
        }
        for (i, c) in patched {
            let slot = n
                .children
                .get_mut(*i)
                .ok_or_else(|| internal("patched child past the page"))?;
            *slot = *c;
        }
        // A validated page's payload is exactly its entries.
        debug_assert_eq!(n.size, n.encoded_size(), "page payload vs entries");
        Ok(n)
    }

    /// Child `i` of a branch.
    pub(crate) fn child(&self, i: usize) -> Option<Child> {
        match &self.page {
            Some(pb) => match pb.patched.iter().find(|(j, _)| *j == i) {
                Some((_, c)) => Some(*c),
                None => pb
                    .page
                    .node()
                    .and_then(|v| v.branch_child(i))
                    .ok()
                    .map(Child::Clean),
            },
            None => self.children.get(i).copied(),
        }
    }

    /// Replaces child `i` of a branch.
    pub(super) fn set_child(&mut self, i: usize, c: Child) -> Result<()> {
        match &mut self.page {
            Some(pb) => {
                if i >= pb.page.node()?.len() {
                    return Err(internal("child index"));
                }
                match pb.patched.iter_mut().find(|(j, _)| *j == i) {
                    Some(slot) => slot.1 = c,
                    None => pb.patched.push((i, c)),
                }
            }
            None => {
                *self
                    .children
                    .get_mut(i)
                    .ok_or_else(|| internal("child index"))? = c;
            }
        }
        Ok(())
    }

    /// The arena nodes among the children.
    pub(crate) fn dirty_children(&self) -> Vec<usize> {
        let dirty = |c: &Child| match c {
            Child::Dirty(i) => Some(*i),
            _ => None,
        };
        match &self.page {
            Some(pb) => pb.patched.iter().filter_map(|(_, c)| dirty(c)).collect(),
            None => self.children.iter().filter_map(dirty).collect(),
        }
    }

    pub(super) fn len(&self) -> usize {
        match &self.page {
            Some(pb) => pb.page.node().map_or(0, |v| v.len()),
            None => self.keys.len(),
        }
    }

    /// Key `i`.
    pub(crate) fn key<'s>(&'s self, store: &'s Store, i: usize) -> Option<&'s [u8]> {
        match &self.page {
            Some(pb) => pb.page.node().and_then(|v| v.key(i)).ok(),
            None => self.keys.get(i).map(|k| k.bytes(store)),
        }
    }

    /// Asserts what an encoded node must satisfy before it is spilled: one value (leaf)
    /// or one child (branch) per key, keys non-empty and bounded, and the size estimate
    /// is the size the entries encode to. Debug builds also check the keys ascend (a
    /// comparison of every key, which release builds leave to the code that inserts).
    pub(crate) fn assert_sound(&self, store: &Store) -> Result<()> {
        if let Some(pb) = &self.page {
            let v = pb.page.node()?;
            let header_size =
                PAGE_HEADER_SIZE + usize::try_from(pb.page.header().payload_len).unwrap_or(0);
            let sound = !v.is_leaf()
                && self.keys.is_empty()
                && self.children.is_empty()
                && self.vals.is_empty()
                && self.size == header_size
                && pb.patched.iter().all(|(i, _)| *i < v.len());
            return if sound {
                Ok(())
            } else {
                Err(internal("page-backed branch out of step with its page"))
            };
        }
        let per_key = if self.leaf {
            self.vals.len() == self.keys.len() && self.children.is_empty()
        } else {
            self.children.len() == self.keys.len() && self.vals.is_empty() && !self.keys.is_empty()
        };
        if !per_key {
            return Err(internal("node with mismatched keys and entries"));
        }
        let bounded = self
            .keys
            .iter()
            .all(|k| k.len() > 0 && k.len() <= MAX_KEY_SIZE);
        if !bounded {
            return Err(internal("node keys empty or too long"));
        }
        debug_assert!(
            self.keys
                .windows(2)
                .all(|w| matches!(w, [a, b] if a.bytes(store) < b.bytes(store))),
            "node keys not ascending"
        );
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

    pub(super) fn search(
        &self,
        store: &Store,
        key: &[u8],
    ) -> Result<std::result::Result<usize, usize>> {
        if let Some(pb) = &self.page {
            return pb.page.node()?.search(key);
        }
        let prefix = key_prefix(key);
        Ok(self
            .keys
            .binary_search_by(|k| k.cmp_with(store, key, prefix)))
    }

    pub(super) fn child_index(&self, store: &Store, key: &[u8]) -> Result<usize> {
        Ok(match self.search(store, key)? {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        })
    }
}

pub(crate) fn internal(what: &'static str) -> Error {
    Error::Internal(what)
}
