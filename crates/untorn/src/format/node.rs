//! Branch and leaf node pages: element layout, encoding and a validated read view.
//!
//! After the 48-byte page header come `count` fixed-size element headers, then the
//! key/value heap. All offsets are from the start of the extent.
//!
//! The header's `common_prefix_len` (cpl) is the length of the prefix every key of the
//! page shares (the encoder computes it from the first and the last key). Every element
//! stores `key_prefix`: the key's bytes `[cpl, cpl+4)`, zero-padded, compared as a
//! big-endian `u32`. Padding keeps the order monotone (`pad(A) < pad(B)` implies
//! `A < B`), so a binary search compares prefixes inside the element array and reads a
//! key only when two prefixes are equal. Keys are stored whole, so they stay borrowable.
//!
//! Branch element (36 bytes):
//!
//! | offset | size | field      |
//! |-------:|-----:|------------|
//! | 0      | 24   | child [`PageRef`] |
//! | 24     | 4    | key_off    |
//! | 28     | 2    | key_len    |
//! | 30     | 2    | flags: 0   |
//! | 32     | 4    | key_prefix |
//!
//! Separator `key[i]` is a lower bound of every key in child `i`; child `i` holds keys
//! in `[key[i], key[i+1])`.
//!
//! Leaf element (16 bytes):
//!
//! | offset | size | field      | meaning                                    |
//! |-------:|-----:|------------|--------------------------------------------|
//! | 0      | 1    | kind       | 0 inline value, 1 overflow value, 2 bucket |
//! | 1      | 1    | flags      | 0                                          |
//! | 2      | 2    | key_len    | 1..=32768                                  |
//! | 4      | 4    | val_len    | stored value bytes                         |
//! | 8      | 4    | data_off   | key at data_off, value right after it      |
//! | 12     | 4    | key_prefix |                                            |
//!
//! An overflow value stores 32 bytes: the extent's [`PageRef`] then the value length
//! (u64). A bucket stores its 48-byte [`BucketHeader`].
//!
//! Why this file is long: the element layout, its encoder and the validated read view
//! must agree byte for byte, so they stay in one file; about 220 of its lines are the
//! round-trip and hostile-input tests.

use std::cmp::Ordering;
use std::ops::Range;

use super::bytes::{
    get_u16, get_u32, get_u64, get_u8, put_bytes, put_u16, put_u32, put_u64, put_u8, u32_from,
    usize_from,
};
use super::ids::{BucketId, PageId, TxId};
use super::page::{
    extent_for, seal, PageHeader, PageRef, PageType, PAGE_HEADER_SIZE, PAGE_REF_SIZE,
};
use crate::error::{CorruptionKind, Error, Result};
use crate::limits::{MAX_EXTENT_PAGES, MAX_KEY_SIZE};

/// Size of a branch element header.
pub const BRANCH_ELEM_SIZE: usize = 36;
/// Size of a leaf element header.
pub const LEAF_ELEM_SIZE: usize = 16;
/// Stored size of an overflow value reference.
pub const OVERFLOW_VALUE_SIZE: usize = PAGE_REF_SIZE + 8;
/// Stored size of a bucket header.
pub const BUCKET_HEADER_SIZE: usize = 48;
/// Bytes of a key after the common prefix that an element stores as its `key_prefix`.
pub const KEY_PREFIX_SIZE: usize = 4;

const KIND_INLINE: u8 = 0;
const KIND_OVERFLOW: u8 = 1;
const KIND_BUCKET: u8 = 2;

const LEAF_OFF_KIND: usize = 0;
const LEAF_OFF_KEY_LEN: usize = 2;
const LEAF_OFF_VAL_LEN: usize = 4;
const LEAF_OFF_DATA: usize = 8;
const LEAF_OFF_PREFIX: usize = 12;
const BRANCH_OFF_KEY: usize = 24;
const BRANCH_OFF_KEY_LEN: usize = 28;
const BRANCH_OFF_PREFIX: usize = 32;

/// The length of the prefix `first` and `last` share, capped at `u16::MAX`: for the
/// sorted keys of a page, the prefix every key between them shares too.
pub fn common_prefix_len(first: &[u8], last: &[u8]) -> usize {
    first
        .iter()
        .zip(last)
        .take(usize::from(u16::MAX))
        .take_while(|(a, b)| a == b)
        .count()
}

/// A key's bytes `[cpl, cpl+4)`, zero-padded, as a big-endian `u32` (the `key_prefix`
/// an element stores).
#[inline]
pub fn key_prefix_at(key: &[u8], cpl: usize) -> u32 {
    let mut b = [0u8; KEY_PREFIX_SIZE];
    let tail = key.get(cpl..).unwrap_or(&[]);
    let n = tail.len().min(KEY_PREFIX_SIZE);
    if let (Some(dst), Some(src)) = (b.get_mut(..n), tail.get(..n)) {
        dst.copy_from_slice(src);
    }
    u32::from_be_bytes(b)
}

/// A bucket's header, stored as the value of its name in the parent bucket.
///
/// | offset | size | field    |
/// |-------:|-----:|----------|
/// | 0      | 24   | root [`PageRef`] (null = empty bucket) |
/// | 24     | 8    | sequence |
/// | 32     | 8    | count (key/value pairs directly in this bucket) |
/// | 40     | 8    | bucket_id (>= 2; every page of the bucket's tree carries it as `tree_id`) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketHeader {
    /// Root of the bucket's B+tree.
    pub root: PageRef,
    /// Value of `next_sequence`'s counter.
    pub sequence: u64,
    /// Number of key/value pairs (not sub-buckets) directly in the bucket.
    pub count: u64,
    /// The bucket's id: the `tree_id` of every page of its tree.
    pub bucket_id: BucketId,
}

impl BucketHeader {
    /// Decodes from 48 bytes.
    pub fn decode(b: &[u8]) -> Option<BucketHeader> {
        if b.len() != BUCKET_HEADER_SIZE {
            return None;
        }
        Some(BucketHeader {
            root: PageRef::decode(b, 0)?,
            sequence: get_u64(b, 24)?,
            count: get_u64(b, 32)?,
            bucket_id: BucketId(get_u64(b, 40)?),
        })
    }

    /// Encodes into 48 bytes.
    pub fn encode(&self) -> [u8; BUCKET_HEADER_SIZE] {
        let mut b = [0u8; BUCKET_HEADER_SIZE];
        let written = self.root.encode(&mut b, 0)
            && put_u64(&mut b, 24, self.sequence)
            && put_u64(&mut b, 32, self.count)
            && put_u64(&mut b, 40, self.bucket_id.0);
        // The fields are laid out inside the fixed-size array above.
        debug_assert!(written, "bucket header fields exceed its size");
        b
    }
}

/// A leaf value as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafValue<'a> {
    /// Value bytes inline in the page.
    Inline(&'a [u8]),
    /// Value in an overflow extent.
    Overflow {
        /// The extent.
        extent: PageRef,
        /// Value length in bytes.
        len: u64,
    },
    /// A nested bucket.
    Bucket(BucketHeader),
}

impl LeafValue<'_> {
    /// Bytes this value occupies in the page heap.
    pub fn stored_len(&self) -> usize {
        match self {
            LeafValue::Inline(v) => v.len(),
            LeafValue::Overflow { .. } => OVERFLOW_VALUE_SIZE,
            LeafValue::Bucket(_) => BUCKET_HEADER_SIZE,
        }
    }
}

/// Encoded size of a leaf entry (element header + key + stored value).
pub fn leaf_entry_size(key_len: usize, stored_value_len: usize) -> usize {
    LEAF_ELEM_SIZE + key_len + stored_value_len
}

/// Encoded size of a branch entry.
pub fn branch_entry_size(key_len: usize) -> usize {
    BRANCH_ELEM_SIZE + key_len
}

/// The common prefix length of sorted `keys` (first and last decide) and the header
/// field that stores it.
fn page_cpl<'k>(mut keys: impl DoubleEndedIterator<Item = &'k [u8]>) -> (usize, u16) {
    let first = keys.next();
    let last = keys.next_back().or(first);
    let cpl = match (first, last) {
        (Some(f), Some(l)) => common_prefix_len(f, l),
        _ => 0,
    };
    // `common_prefix_len` caps at u16::MAX.
    (cpl, u16::try_from(cpl).unwrap_or(u16::MAX))
}

/// Encodes a leaf extent of the tree `tree`. `entries` should be sorted, non-empty keys:
/// the encoder writes what it is given (tests build damaged pages with it); the engine
/// asserts its nodes are sound before it encodes them. The common prefix and every
/// element's key prefix are computed here, so they are right for sorted keys.
///
/// The extent is written front to back (header, elements, keys and values, zero tail),
/// so no byte is written twice.
pub fn encode_leaf(
    entries: &[(&[u8], LeafValue<'_>)],
    page_id: PageId,
    txid: TxId,
    tree: BucketId,
    page_size: usize,
) -> Result<(Vec<u8>, PageHeader)> {
    let body: usize = entries
        .iter()
        .map(|(k, v)| leaf_entry_size(k.len(), v.stored_len()))
        .sum();
    let (cpl, cpl16) = page_cpl(entries.iter().map(|(k, _)| *k));
    let (extent_pages, len) = extent_for(body, page_size)?;
    let mut page = Vec::with_capacity(len);
    page.resize(PAGE_HEADER_SIZE, 0);
    let mut written = true;
    let mut data_off = PAGE_HEADER_SIZE + entries.len() * LEAF_ELEM_SIZE;
    for (k, v) in entries {
        let (kind, vlen) = match v {
            LeafValue::Inline(b) => (KIND_INLINE, b.len()),
            LeafValue::Overflow { .. } => (KIND_OVERFLOW, OVERFLOW_VALUE_SIZE),
            LeafValue::Bucket(_) => (KIND_BUCKET, BUCKET_HEADER_SIZE),
        };
        let (Ok(klen), Some(vlen32), Some(off)) =
            (u16::try_from(k.len()), u32_from(vlen), u32_from(data_off))
        else {
            return Err(Error::Internal("leaf entry larger than its fields"));
        };
        let mut e = [0u8; LEAF_ELEM_SIZE];
        written &= put_u8(&mut e, LEAF_OFF_KIND, kind)
            && put_u16(&mut e, LEAF_OFF_KEY_LEN, klen)
            && put_u32(&mut e, LEAF_OFF_VAL_LEN, vlen32)
            && put_u32(&mut e, LEAF_OFF_DATA, off)
            && put_bytes(
                &mut e,
                LEAF_OFF_PREFIX,
                &key_prefix_at(k, cpl).to_be_bytes(),
            );
        page.extend_from_slice(&e);
        data_off += k.len() + vlen;
    }
    for (k, v) in entries {
        page.extend_from_slice(k);
        match v {
            LeafValue::Inline(b) => page.extend_from_slice(b),
            LeafValue::Overflow { extent, len } => {
                let mut b = [0u8; OVERFLOW_VALUE_SIZE];
                written &= extent.encode(&mut b, 0) && put_u64(&mut b, PAGE_REF_SIZE, *len);
                page.extend_from_slice(&b);
            }
            LeafValue::Bucket(h) => page.extend_from_slice(&h.encode()),
        }
    }
    written &= page.len() == PAGE_HEADER_SIZE + body && page.len() <= len;
    page.resize(len, 0);
    let h = PageHeader {
        checksum: 0,
        page_type: PageType::Leaf,
        page_id,
        txid,
        extent_pages,
        count: u32_from(entries.len()).ok_or(Error::Internal("leaf entry count"))?,
        payload_len: body as u64,
        common_prefix_len: cpl16,
        tree_id: tree,
    };
    seal(page, h, written)
}

/// Encodes a branch extent of the tree `tree`. `entries` are (separator key, child) in
/// key order. Written front to back like [`encode_leaf`].
pub fn encode_branch(
    entries: &[(&[u8], PageRef)],
    page_id: PageId,
    txid: TxId,
    tree: BucketId,
    page_size: usize,
) -> Result<(Vec<u8>, PageHeader)> {
    let body: usize = entries
        .iter()
        .map(|(k, _)| branch_entry_size(k.len()))
        .sum();
    let (cpl, cpl16) = page_cpl(entries.iter().map(|(k, _)| *k));
    let (extent_pages, len) = extent_for(body, page_size)?;
    let mut page = Vec::with_capacity(len);
    page.resize(PAGE_HEADER_SIZE, 0);
    let mut written = true;
    let mut data_off = PAGE_HEADER_SIZE + entries.len() * BRANCH_ELEM_SIZE;
    for (k, child) in entries {
        let (Some(off), Ok(klen)) = (u32_from(data_off), u16::try_from(k.len())) else {
            return Err(Error::Internal("branch entry larger than its fields"));
        };
        let mut e = [0u8; BRANCH_ELEM_SIZE];
        written &= child.encode(&mut e, 0)
            && put_u32(&mut e, BRANCH_OFF_KEY, off)
            && put_u16(&mut e, BRANCH_OFF_KEY_LEN, klen)
            && put_bytes(
                &mut e,
                BRANCH_OFF_PREFIX,
                &key_prefix_at(k, cpl).to_be_bytes(),
            );
        page.extend_from_slice(&e);
        data_off += k.len();
    }
    for (k, _) in entries {
        page.extend_from_slice(k);
    }
    written &= page.len() == PAGE_HEADER_SIZE + body && page.len() <= len;
    page.resize(len, 0);
    let h = PageHeader {
        checksum: 0,
        page_type: PageType::Branch,
        page_id,
        txid,
        extent_pages,
        count: u32_from(entries.len()).ok_or(Error::Internal("branch entry count"))?,
        payload_len: body as u64,
        common_prefix_len: cpl16,
        tree_id: tree,
    };
    seal(page, h, written)
}

/// A read view over a verified branch or leaf page whose elements were validated by
/// [`NodeView::validate`]. Accessors still never panic; an impossible offset is `Bounds`.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    page: &'a [u8],
    page_id: PageId,
    leaf: bool,
    count: usize,
    /// Bytes every key of the page shares.
    cpl: usize,
}

impl<'a> NodeView<'a> {
    /// Validates element bounds, key sizes, key order, the common prefix and every
    /// element's key prefix, and value kinds of a page whose header already verified,
    /// and returns a view. Cost O(page).
    pub fn validate(page: &'a [u8], h: &PageHeader) -> Result<NodeView<'a>> {
        let view = NodeView::prevalidated(page, h)?;
        let leaf = view.leaf;
        let bad = |detail: String| Error::corrupted(h.page_id.0, CorruptionKind::Bounds, detail);
        let elem = if leaf {
            LEAF_ELEM_SIZE
        } else {
            BRANCH_ELEM_SIZE
        };
        let heap_start = view
            .count
            .checked_mul(elem)
            .and_then(|n| n.checked_add(PAGE_HEADER_SIZE))
            .ok_or_else(|| bad(format!("element count {} overflows", h.count)))?;
        let heap_end = usize::try_from(h.payload_len)
            .ok()
            .and_then(|n| n.checked_add(PAGE_HEADER_SIZE))
            .filter(|end| heap_start <= *end && *end <= page.len())
            .ok_or_else(|| {
                bad(format!(
                    "{} elements do not fit in a payload of {} bytes",
                    h.count, h.payload_len
                ))
            })?;
        if !leaf && view.count == 0 {
            return Err(bad("branch page with no children".into()));
        }
        if view.count == 0 && view.cpl != 0 {
            return Err(Error::corrupted(
                h.page_id.0,
                CorruptionKind::KeyPrefix,
                format!(
                    "an empty page claims a common key prefix of {} bytes",
                    view.cpl
                ),
            ));
        }
        // One pass over the element array: each element header is sliced once and its
        // fields read from the slice, each key sliced once from the page.
        let cpl = view.cpl;
        let (prefix_off, elems) = match page.get(PAGE_HEADER_SIZE..heap_start) {
            Some(e) if leaf => (LEAF_OFF_PREFIX, e),
            Some(e) => (BRANCH_OFF_PREFIX, e),
            None => return Err(bad("element array out of bounds".into())),
        };
        // The previous key and its stored (verified) key prefix.
        let mut prev: Option<(&[u8], u32)> = None;
        let mut common: &[u8] = &[];
        for (i, e) in elems.chunks_exact(elem).enumerate() {
            let fields = if leaf {
                get_u16(e, LEAF_OFF_KEY_LEN).and_then(|klen| {
                    Some((
                        get_u32(e, LEAF_OFF_DATA)?,
                        klen,
                        get_u32(e, LEAF_OFF_VAL_LEN)?,
                    ))
                })
            } else {
                get_u32(e, BRANCH_OFF_KEY)
                    .and_then(|off| Some((off, get_u16(e, BRANCH_OFF_KEY_LEN)?, 0)))
            };
            let (koff, klen, vlen) = fields
                .map(|(o, k, v)| (usize_from(o), usize::from(k), usize_from(v)))
                .ok_or_else(|| bad(format!("element {i} out of bounds")))?;
            if klen == 0 || klen > MAX_KEY_SIZE {
                return Err(bad(format!("element {i}: key length {klen} out of range")));
            }
            let key_end = koff.checked_add(klen);
            let end = key_end.and_then(|e| e.checked_add(vlen));
            let key = match (koff >= heap_start, end.is_some_and(|e| e <= heap_end), key_end) {
                (true, true, Some(ke)) => page.get(koff..ke),
                _ => None,
            }
            .ok_or_else(|| {
                bad(format!(
                    "element {i}: data at offset {koff} (+{klen}+{vlen}) outside heap {heap_start}..{heap_end}"
                ))
            })?;
            if leaf {
                let kind = get_u8(e, LEAF_OFF_KIND)
                    .ok_or_else(|| bad(format!("element {i} out of bounds")))?;
                let ok = match kind {
                    KIND_INLINE => true,
                    KIND_OVERFLOW => vlen == OVERFLOW_VALUE_SIZE,
                    KIND_BUCKET => vlen == BUCKET_HEADER_SIZE,
                    _ => false,
                };
                if !ok {
                    return Err(Error::corrupted(
                        h.page_id.0,
                        CorruptionKind::Invalid,
                        format!("element {i}: invalid value kind {kind} with length {vlen}"),
                    ));
                }
            } else {
                // The child's id (bytes 0..8) and extent (20..24) of its reference.
                let (Some(child_id), Some(child_extent)) = (get_u64(e, 0), get_u32(e, 20)) else {
                    return Err(bad(format!("element {i}: child reference out of bounds")));
                };
                if PageId(child_id) < PageId::FIRST_DATA
                    || child_extent == 0
                    || child_extent > MAX_EXTENT_PAGES
                {
                    return Err(Error::corrupted(
                        h.page_id.0,
                        CorruptionKind::OutOfRange,
                        format!(
                            "element {i}: child reference to page {} with extent {child_extent} is impossible",
                            PageId(child_id)
                        ),
                    ));
                }
            }
            let prefix_bad = |detail: String| {
                Error::corrupted(
                    h.page_id.0,
                    CorruptionKind::KeyPrefix,
                    format!("element {i}: {detail}"),
                )
            };
            if i == 0 {
                common = key.get(..cpl).ok_or_else(|| {
                    prefix_bad(format!(
                        "the page's common prefix of {cpl} bytes is longer than its first key ({klen} bytes)"
                    ))
                })?;
            } else if !key.starts_with(common) {
                return Err(prefix_bad(format!(
                    "key does not start with the page's common prefix of {cpl} bytes"
                )));
            }
            let stored = match e.get(prefix_off..prefix_off + KEY_PREFIX_SIZE) {
                Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
                _ => return Err(bad(format!("element {i} out of bounds"))),
            };
            let actual = key_prefix_at(key, cpl);
            if stored != actual {
                return Err(prefix_bad(format!(
                    "stored key prefix {stored:#010x} differs from the key's {actual:#010x}"
                )));
            }
            // Key order, prefixes first: both keys start with the common prefix and both
            // stored prefixes were just checked against their keys, so unequal prefixes
            // decide the order (zero padding keeps it monotone); only equal prefixes
            // compare the keys' bytes after the common prefix.
            if let Some((p, p_prefix)) = prev {
                let ascending = match p_prefix.cmp(&stored) {
                    Ordering::Less => true,
                    Ordering::Greater => false,
                    Ordering::Equal => p.get(cpl..) < key.get(cpl..),
                };
                if !ascending {
                    return Err(Error::corrupted(
                        h.page_id.0,
                        CorruptionKind::KeyOrder,
                        format!("element {i}: key is not greater than the key before it"),
                    ));
                }
            }
            prev = Some((key, stored));
        }
        Ok(view)
    }

    /// A view over a page whose structure was already validated by
    /// [`NodeView::validate`] when it was loaded (O(1)). Accessors stay bounds-checked,
    /// so a page that was not validated yields errors, never a panic.
    pub fn prevalidated(page: &'a [u8], h: &PageHeader) -> Result<NodeView<'a>> {
        let leaf = match h.page_type {
            PageType::Leaf => true,
            PageType::Branch => false,
            other => {
                return Err(Error::corrupted(
                    h.page_id.0,
                    CorruptionKind::PageType,
                    format!("expected a branch or leaf page, found {}", other.as_str()),
                ))
            }
        };
        Ok(NodeView {
            page,
            page_id: h.page_id,
            leaf,
            count: usize_from(h.count),
            cpl: usize::from(h.common_prefix_len),
        })
    }

    fn bounds(&self, what: &str) -> Error {
        Error::corrupted(
            self.page_id.0,
            CorruptionKind::Bounds,
            format!("{what} out of bounds"),
        )
    }

    /// Offset of element `i`'s header.
    #[inline]
    fn elem_off(&self, i: usize) -> usize {
        let size = if self.leaf {
            LEAF_ELEM_SIZE
        } else {
            BRANCH_ELEM_SIZE
        };
        PAGE_HEADER_SIZE + i * size
    }

    /// (key offset, key length, stored value length) of element `i`.
    #[inline]
    fn raw_elem(&self, i: usize) -> Result<(usize, usize, usize)> {
        if i >= self.count {
            return Err(self.bounds("element index"));
        }
        let e = self.elem_off(i);
        let fields = if self.leaf {
            get_u16(self.page, e + LEAF_OFF_KEY_LEN).and_then(|klen| {
                Some((
                    get_u32(self.page, e + LEAF_OFF_DATA)?,
                    klen,
                    get_u32(self.page, e + LEAF_OFF_VAL_LEN)?,
                ))
            })
        } else {
            get_u32(self.page, e + BRANCH_OFF_KEY)
                .and_then(|off| Some((off, get_u16(self.page, e + BRANCH_OFF_KEY_LEN)?, 0)))
        };
        let (off, klen, vlen) = fields.ok_or_else(|| self.bounds("element"))?;
        Ok((usize_from(off), usize::from(klen), usize_from(vlen)))
    }

    /// The value kind byte of leaf element `i`.
    fn leaf_kind(&self, i: usize) -> Result<u8> {
        if !self.leaf || i >= self.count {
            return Err(self.bounds("leaf element"));
        }
        get_u8(self.page, self.elem_off(i) + LEAF_OFF_KIND)
            .ok_or_else(|| self.bounds("leaf element"))
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.leaf
    }

    /// The page id.
    pub fn page_id(&self) -> PageId {
        self.page_id
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The length of the prefix every key of the page shares.
    pub fn common_prefix_len(&self) -> usize {
        self.cpl
    }

    /// Where the key of element `i` lies in the page.
    pub fn key_range(&self, i: usize) -> Result<Range<usize>> {
        let (off, klen, _) = self.raw_elem(i)?;
        let range = off..off.saturating_add(klen);
        match self.page.get(range.clone()) {
            Some(_) => Ok(range),
            None => Err(self.bounds("key")),
        }
    }

    /// Key of element `i`.
    #[inline]
    pub fn key(&self, i: usize) -> Result<&'a [u8]> {
        let (off, klen, _) = self.raw_elem(i)?;
        self.page
            .get(off..off.saturating_add(klen))
            .ok_or_else(|| self.bounds("key"))
    }

    /// Child reference of branch element `i`.
    pub fn branch_child(&self, i: usize) -> Result<PageRef> {
        if self.leaf || i >= self.count {
            return Err(self.bounds("branch element"));
        }
        PageRef::decode(self.page, self.elem_off(i)).ok_or_else(|| self.bounds("child reference"))
    }

    /// Where the stored value of leaf element `i` lies in the page (the value bytes of
    /// an inline value; the stored reference of an overflow value or bucket).
    pub fn value_range(&self, i: usize) -> Result<Range<usize>> {
        if !self.leaf {
            return Err(self.bounds("leaf element"));
        }
        let (off, klen, vlen) = self.raw_elem(i)?;
        let start = off.saturating_add(klen);
        let range = start..start.saturating_add(vlen);
        match self.page.get(range.clone()) {
            Some(_) => Ok(range),
            None => Err(self.bounds("value")),
        }
    }

    /// Value of leaf element `i`.
    pub fn leaf_value(&self, i: usize) -> Result<LeafValue<'a>> {
        self.leaf_value_at(i).map(|(v, _)| v)
    }

    /// Leaf element `i` in one decode: where its key lies, its value, and where the
    /// value's stored bytes lie.
    pub fn leaf_entry(&self, i: usize) -> Result<(Range<usize>, LeafValue<'a>, Range<usize>)> {
        if !self.leaf {
            return Err(self.bounds("leaf element"));
        }
        let (off, klen, vlen) = self.raw_elem(i)?;
        let key = off..off.saturating_add(klen);
        let value = key.end..key.end.saturating_add(vlen);
        if self.page.get(key.start..value.end).is_none() {
            return Err(self.bounds("entry"));
        }
        Ok((key, self.decode_value(i, value.clone())?, value))
    }

    /// Value of leaf element `i` and where its stored bytes lie in the page.
    pub fn leaf_value_at(&self, i: usize) -> Result<(LeafValue<'a>, Range<usize>)> {
        let range = self.value_range(i)?;
        let value = self.decode_value(i, range.clone())?;
        Ok((value, range))
    }

    fn decode_value(&self, i: usize, range: Range<usize>) -> Result<LeafValue<'a>> {
        let v = self.page.get(range).ok_or_else(|| self.bounds("value"))?;
        match self.leaf_kind(i)? {
            KIND_INLINE => Ok(LeafValue::Inline(v)),
            KIND_OVERFLOW => {
                let extent = PageRef::decode(v, 0).ok_or_else(|| self.bounds("overflow ref"))?;
                let len = get_u64(v, PAGE_REF_SIZE).ok_or_else(|| self.bounds("overflow len"))?;
                Ok(LeafValue::Overflow { extent, len })
            }
            KIND_BUCKET => BucketHeader::decode(v)
                .map(LeafValue::Bucket)
                .ok_or_else(|| self.bounds("bucket header")),
            k => Err(Error::corrupted(
                self.page_id.0,
                CorruptionKind::Invalid,
                format!("invalid value kind {k}"),
            )),
        }
    }

    /// Binary search: `Ok(i)` if `key` is element `i`, else `Err(insertion point)`.
    ///
    /// The key is compared once with the page's common prefix, then the search runs over
    /// the elements' `key_prefix` fields (inside the element array) and reads a stored
    /// key only when its prefix equals the searched one.
    pub fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        if self.count == 0 {
            return Ok(Err(0));
        }
        let cpl = self.cpl;
        if cpl > 0 {
            let common = self
                .key(0)?
                .get(..cpl)
                .ok_or_else(|| self.bounds("common prefix"))?;
            // A shorter key compares as its whole self: below the prefix if it is one.
            match key.get(..cpl).unwrap_or(key).cmp(common) {
                Ordering::Less => return Ok(Err(0)),
                Ordering::Greater => return Ok(Err(self.count)),
                Ordering::Equal if key.len() < cpl => return Ok(Err(0)),
                Ordering::Equal => {}
            }
        }
        let probe = key_prefix_at(key, cpl);
        let rest = key.get(cpl..).unwrap_or(&[]);
        let (elem, prefix_off) = if self.leaf {
            (LEAF_ELEM_SIZE, LEAF_OFF_PREFIX)
        } else {
            (BRANCH_ELEM_SIZE, BRANCH_OFF_PREFIX)
        };
        // The element array, bounds-checked once; each probe reads 4 bytes of it.
        let elems = self
            .page
            .get(PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + self.count * elem)
            .ok_or_else(|| self.bounds("element array"))?;
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = mid * elem + prefix_off;
            let stored = match elems.get(at..at + KEY_PREFIX_SIZE) {
                Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
                _ => return Err(self.bounds("element")),
            };
            let ord = match stored.cmp(&probe) {
                Ordering::Equal => self.key(mid)?.get(cpl..).unwrap_or(&[]).cmp(rest),
                other => other,
            };
            match ord {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    /// For a branch: index of the child whose range holds `key` (last separator <= key,
    /// or 0 if `key` is below every separator).
    pub fn child_index(&self, key: &[u8]) -> Result<usize> {
        Ok(match self.search(key)? {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::page::verify_page;
    use crate::format::rebranch::rebranch;

    #[test]
    fn rebranch_is_the_encoding_of_the_patched_entries() {
        let r = |id: u64, crc: u32| PageRef {
            page_id: PageId(id),
            txid: TxId(1),
            checksum: crc,
            extent_pages: 1,
        };
        let keys: [&[u8]; 3] = [b"apple", b"apricot", b"avocado"];
        let old: Vec<(&[u8], PageRef)> = keys
            .iter()
            .zip([r(3, 1), r(4, 2), r(5, 3)])
            .map(|(k, c)| (*k, c))
            .collect();
        let (src, h) = encode_branch(&old, PageId(9), TxId(1), BucketId(2), 4096).expect("encode");
        let new_child = PageRef {
            page_id: PageId(11),
            txid: TxId(2),
            checksum: 77,
            extent_pages: 2,
        };
        let mut patched = old.clone();
        patched[1].1 = new_child;
        let want = encode_branch(&patched, PageId(12), TxId(2), BucketId(2), 4096).expect("encode");
        let got = rebranch(&src, &h, &[(1, new_child)], PageId(12), TxId(2)).expect("rebranch");
        assert_eq!(got, want);
        assert!(rebranch(&src, &h, &[(3, new_child)], PageId(12), TxId(2)).is_err());
        let (leaf, lh) = encode_leaf(
            &[(b"a", LeafValue::Inline(b"1"))],
            PageId(7),
            TxId(1),
            BucketId(2),
            4096,
        )
        .expect("encode");
        assert!(rebranch(&leaf, &lh, &[], PageId(12), TxId(2)).is_err());
    }

    #[test]
    fn leaf_round_trip_and_search() {
        let bh = BucketHeader {
            root: PageRef::NULL,
            sequence: 4,
            count: 2,
            bucket_id: BucketId(5),
        };
        let entries: Vec<(&[u8], LeafValue)> = vec![
            (b"a", LeafValue::Inline(b"1")),
            (b"b", LeafValue::Bucket(bh)),
            (
                b"c",
                LeafValue::Overflow {
                    extent: PageRef {
                        page_id: PageId(5),
                        txid: TxId(1),
                        checksum: 2,
                        extent_pages: 3,
                    },
                    len: 9000,
                },
            ),
        ];
        let (page, h) =
            encode_leaf(&entries, PageId(7), TxId(1), BucketId(2), 4096).expect("encode");
        let h2 = verify_page(&page, PageId(7), 4096).expect("verify");
        assert_eq!(h, h2);
        let v = NodeView::validate(&page, &h2).expect("valid");
        assert_eq!(v.len(), 3);
        for (i, (k, val)) in entries.iter().enumerate() {
            assert_eq!(v.key(i).expect("key"), *k);
            assert_eq!(v.leaf_value(i).expect("val"), *val);
        }
        assert_eq!(v.search(b"b").expect("s"), Ok(1));
        assert_eq!(v.search(b"bb").expect("s"), Err(2));
    }

    #[test]
    fn prefix_search_agrees_with_a_plain_search() {
        // Keys sharing a long prefix, keys that are prefixes of others, keys whose bytes
        // after the common prefix are zero (padding must not confuse them).
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for tail in [
            &b""[..],
            b"\0",
            b"\0\0\0\0",
            b"\0\0\0\0\0",
            b"a",
            b"ab",
            b"abcd",
            b"abcde",
            b"abce",
            b"b",
            b"\xff\xff\xff\xff\xff",
        ] {
            let mut k = b"common/".to_vec();
            k.extend_from_slice(tail);
            keys.push(k);
        }
        keys.sort();
        let entries: Vec<(&[u8], LeafValue)> = keys
            .iter()
            .map(|k| (k.as_slice(), LeafValue::Inline(b"v")))
            .collect();
        let (page, h) =
            encode_leaf(&entries, PageId(7), TxId(1), BucketId(2), 4096).expect("encode");
        assert_eq!(h.common_prefix_len, 7, "'common/' is shared");
        let v = NodeView::validate(&page, &h).expect("valid");
        let mut probes: Vec<Vec<u8>> = keys.clone();
        for k in &keys {
            let mut longer = k.clone();
            longer.push(0);
            probes.push(longer);
            probes.push(k[..k.len() - 1].to_vec());
        }
        probes.extend([
            b"a".to_vec(),
            b"common".to_vec(),
            b"commoo".to_vec(),
            b"z".to_vec(),
        ]);
        for p in &probes {
            let want = keys.binary_search_by(|k| k.as_slice().cmp(p.as_slice()));
            assert_eq!(v.search(p).expect("search"), want, "probe {p:?}");
        }
    }

    #[test]
    fn validation_rejects_wrong_prefixes() {
        let entries: Vec<(&[u8], LeafValue)> = vec![
            (b"xa1", LeafValue::Inline(b"1")),
            (b"xa2", LeafValue::Inline(b"2")),
        ];
        let (page, mut h) =
            encode_leaf(&entries, PageId(7), TxId(1), BucketId(2), 4096).expect("encode");
        assert_eq!(h.common_prefix_len, 2);
        let mut bad = page.clone();
        bad[PAGE_HEADER_SIZE + LEAF_OFF_PREFIX] ^= 1;
        let e = NodeView::validate(&bad, &h).expect_err("prefix");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::KeyPrefix,
                ..
            }
        ));
        h.common_prefix_len = 3;
        let e = NodeView::validate(&page, &h).expect_err("cpl");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::KeyPrefix,
                ..
            }
        ));
    }

    #[test]
    fn branch_round_trip_and_child_index() {
        let child = |id| PageRef {
            page_id: PageId(id),
            txid: TxId(1),
            checksum: 0,
            extent_pages: 1,
        };
        let entries: Vec<(&[u8], PageRef)> = vec![(b"b", child(2)), (b"m", child(3))];
        let (page, h) =
            encode_branch(&entries, PageId(4), TxId(1), BucketId(2), 4096).expect("encode");
        let v = NodeView::validate(&page, &h).expect("valid");
        assert_eq!(v.child_index(b"a").expect("ci"), 0);
        assert_eq!(v.child_index(b"m").expect("ci"), 1);
        assert_eq!(v.child_index(b"z").expect("ci"), 1);
        assert_eq!(v.branch_child(1).expect("c"), child(3));
    }

    #[test]
    fn validation_rejects_unordered_keys_and_bad_offsets() {
        let entries: Vec<(&[u8], LeafValue)> = vec![
            (b"b", LeafValue::Inline(b"1")),
            (b"a", LeafValue::Inline(b"2")),
        ];
        let (page, h) =
            encode_leaf(&entries, PageId(7), TxId(1), BucketId(2), 4096).expect("encode");
        let e = NodeView::validate(&page, &h).expect_err("order");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::KeyOrder,
                ..
            }
        ));

        let entries: Vec<(&[u8], LeafValue)> = vec![(b"a", LeafValue::Inline(b"1"))];
        let (mut page, h) =
            encode_leaf(&entries, PageId(7), TxId(1), BucketId(2), 4096).expect("encode");
        assert!(put_u32(&mut page, PAGE_HEADER_SIZE + LEAF_OFF_DATA, 4000));
        let e = NodeView::validate(&page, &h).expect_err("offset");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::Bounds,
                ..
            }
        ));
    }

    /// The kind of error `validate` gives `page` under `h`, and its message.
    fn rejection(page: &[u8], h: &PageHeader) -> (CorruptionKind, String) {
        match NodeView::validate(page, h) {
            Err(Error::Corrupted { kind, detail, .. }) => (kind, detail),
            other => panic!("expected a corruption error, got {other:?}"),
        }
    }

    fn leaf_of(keys: &[&[u8]]) -> (Vec<u8>, PageHeader) {
        let entries: Vec<(&[u8], LeafValue)> =
            keys.iter().map(|k| (*k, LeafValue::Inline(b"v"))).collect();
        encode_leaf(&entries, PageId(7), TxId(1), BucketId(2), 4096).expect("encode")
    }

    #[test]
    fn validation_rejects_each_bad_leaf_element_field() {
        let e0 = PAGE_HEADER_SIZE;
        // Key length 0 (the heap bounds hold, so only the length check sees it).
        let (mut page, h) = leaf_of(&[b"a", b"b"]);
        assert!(put_u16(&mut page, e0 + LEAF_OFF_KEY_LEN, 0));
        assert!(put_u32(&mut page, e0 + LEAF_OFF_VAL_LEN, 1));
        let (kind, msg) = rejection(&page, &h);
        assert_eq!(kind, CorruptionKind::Bounds);
        assert!(msg.contains("key length 0"), "{msg}");
        // Key length above the limit, inside the heap of a large extent.
        let key = vec![7u8; MAX_KEY_SIZE];
        let (mut page, h) = encode_leaf(
            &[(&key, LeafValue::Inline(b"v"))],
            PageId(10),
            TxId(1),
            BucketId(2),
            4096,
        )
        .expect("encode");
        let too_long = u16::try_from(MAX_KEY_SIZE + 1).expect("fits");
        assert!(put_u16(&mut page, e0 + LEAF_OFF_KEY_LEN, too_long));
        assert!(put_u32(&mut page, e0 + LEAF_OFF_VAL_LEN, 0));
        let (kind, msg) = rejection(&page, &h);
        assert_eq!(kind, CorruptionKind::Bounds);
        assert!(msg.contains("key length"), "{msg}");
        // Data inside the element array (below the heap).
        let (mut page, h) = leaf_of(&[b"a", b"b"]);
        let inside = u32::try_from(PAGE_HEADER_SIZE + LEAF_ELEM_SIZE).expect("fits");
        assert!(put_u32(&mut page, e0 + LEAF_OFF_DATA, inside));
        let (kind, msg) = rejection(&page, &h);
        assert_eq!(kind, CorruptionKind::Bounds);
        assert!(msg.contains("outside heap"), "{msg}");
        // Data past the payload but inside the page.
        let (mut page, h) = leaf_of(&[b"a", b"b"]);
        assert!(put_u32(
            &mut page,
            e0 + LEAF_ELEM_SIZE + LEAF_OFF_VAL_LEN,
            100
        ));
        let (kind, msg) = rejection(&page, &h);
        assert_eq!(kind, CorruptionKind::Bounds);
        assert!(msg.contains("outside heap"), "{msg}");
        // An unknown value kind, and an overflow value of the wrong stored length.
        for kind_byte in [3u8, KIND_OVERFLOW, KIND_BUCKET] {
            let (mut page, h) = leaf_of(&[b"a", b"b"]);
            assert!(put_u8(
                &mut page,
                e0 + LEAF_ELEM_SIZE + LEAF_OFF_KIND,
                kind_byte
            ));
            let (kind, msg) = rejection(&page, &h);
            assert_eq!(kind, CorruptionKind::Invalid, "{msg}");
            assert!(msg.contains("element 1: invalid value kind"), "{msg}");
        }
    }

    #[test]
    fn validation_rejects_impossible_child_references() {
        let child = PageRef {
            page_id: PageId(5),
            txid: TxId(1),
            checksum: 0,
            extent_pages: 1,
        };
        let entries: Vec<(&[u8], PageRef)> = vec![(b"b", child), (b"m", child)];
        let (page, h) =
            encode_branch(&entries, PageId(4), TxId(1), BucketId(2), 4096).expect("encode");
        NodeView::validate(&page, &h).expect("valid");
        let e1 = PAGE_HEADER_SIZE + BRANCH_ELEM_SIZE;
        let damage: [(usize, u64, bool); 4] = [
            (0, 0, true),
            (0, PageId::FIRST_DATA.0 - 1, true),
            (20, 0, false),
            (20, u64::from(MAX_EXTENT_PAGES) + 1, false),
        ];
        for (field, value, wide) in damage {
            let mut bad = page.clone();
            if wide {
                assert!(put_u64(&mut bad, e1 + field, value));
            } else {
                assert!(put_u32(
                    &mut bad,
                    e1 + field,
                    u32::try_from(value).expect("fits")
                ));
            }
            let (kind, msg) = rejection(&bad, &h);
            assert_eq!(kind, CorruptionKind::OutOfRange, "{msg}");
            assert!(msg.contains("element 1: child reference"), "{msg}");
        }
    }

    #[test]
    fn validation_rejects_a_common_prefix_the_keys_do_not_share() {
        // Longer than the first key.
        let (page, mut h) = leaf_of(&[b"xa1", b"xa2"]);
        h.common_prefix_len = 4;
        let (kind, msg) = rejection(&page, &h);
        assert_eq!(kind, CorruptionKind::KeyPrefix);
        assert!(msg.contains("longer than its first key"), "{msg}");
        // Not shared by a later key.
        let (page, mut h) = leaf_of(&[b"xa1", b"xb2"]);
        assert_eq!(h.common_prefix_len, 1);
        h.common_prefix_len = 2;
        // Element 0's stored prefix agrees with the claimed common prefix.
        let mut page = page;
        let prefix = key_prefix_at(b"xa1", 2).to_be_bytes();
        assert!(put_bytes(
            &mut page,
            PAGE_HEADER_SIZE + LEAF_OFF_PREFIX,
            &prefix
        ));
        let (kind, msg) = rejection(&page, &h);
        assert_eq!(kind, CorruptionKind::KeyPrefix);
        assert!(msg.contains("element 1: key does not start"), "{msg}");
    }

    #[test]
    fn validation_checks_key_order_whether_or_not_the_prefixes_decide_it() {
        // Equal stored prefixes: the keys' later bytes decide (out of order, then equal).
        for keys in [
            &[&b"a"[..], b"y1111b", b"y1111a", b"z"][..],
            &[b"a", b"b", b"b", b"c"],
            &[b"q", b"q"],
        ] {
            let (page, h) = leaf_of(keys);
            let (kind, msg) = rejection(&page, &h);
            assert_eq!(kind, CorruptionKind::KeyOrder, "{keys:?}: {msg}");
        }
        // Unequal stored prefixes decide, including a key that is a prefix of the next.
        let (page, h) = leaf_of(&[b"a", b"y1112", b"y1111", b"z"]);
        assert_eq!(rejection(&page, &h).0, CorruptionKind::KeyOrder);
        let (page, h) = leaf_of(&[b"a", b"y1", b"y", b"z"]);
        assert_eq!(rejection(&page, &h).0, CorruptionKind::KeyOrder);
        for keys in [
            &[&b"a"[..], b"y1111a", b"y1111b", b"z"][..],
            &[b"a", b"y", b"y\0", b"y1", b"z"],
            &[b"q"],
        ] {
            let (page, h) = leaf_of(keys);
            NodeView::validate(&page, &h).expect("sorted keys validate");
        }
    }

    #[test]
    fn large_key_spans_extent() {
        let key = vec![7u8; MAX_KEY_SIZE];
        let entries: Vec<(&[u8], LeafValue)> = vec![(&key, LeafValue::Inline(b"v"))];
        let (page, h) =
            encode_leaf(&entries, PageId(10), TxId(1), BucketId(2), 4096).expect("encode");
        assert_eq!(h.extent_pages, 9);
        let h2 = verify_page(&page, PageId(10), 4096).expect("verify");
        NodeView::validate(&page, &h2).expect("valid");
    }
}
