//! Branch and leaf node pages: element layout, encoding and a validated read view.
//!
//! After the 48-byte page header come `count` fixed-size element headers, then the
//! key/value heap. All offsets are from the start of the extent.
//!
//! Branch element (32 bytes):
//!
//! | offset | size | field     |
//! |-------:|-----:|-----------|
//! | 0      | 24   | child [`PageRef`] |
//! | 24     | 4    | key_off   |
//! | 28     | 4    | key_len   |
//!
//! Separator `key[i]` is a lower bound of every key in child `i`; child `i` holds keys
//! in `[key[i], key[i+1])`.
//!
//! Leaf element (16 bytes):
//!
//! | offset | size | field     | meaning                                    |
//! |-------:|-----:|-----------|--------------------------------------------|
//! | 0      | 1    | kind      | 0 inline value, 1 overflow value, 2 bucket |
//! | 1      | 3    | reserved  | 0                                          |
//! | 4      | 4    | key_len   |                                            |
//! | 8      | 4    | val_len   | stored value bytes                         |
//! | 12     | 4    | data_off  | key at data_off, value right after it      |
//!
//! An overflow value stores 32 bytes: the extent's [`PageRef`] then the value length
//! (u64). A bucket stores its 48-byte [`BucketHeader`].

use std::ops::Range;

use super::bytes::{
    get_u32, get_u64, get_u8, put_bytes, put_u32, put_u64, put_u8, u32_from, usize_from,
};
use super::ids::{PageId, TxId};
use super::page::{
    new_extent, seal, PageHeader, PageRef, PageType, PAGE_HEADER_SIZE, PAGE_REF_SIZE,
};
use crate::error::{CorruptionKind, Error, Result};
use crate::limits::{MAX_EXTENT_PAGES, MAX_KEY_SIZE};

/// Size of a branch element header.
pub const BRANCH_ELEM_SIZE: usize = 32;
/// Size of a leaf element header.
pub const LEAF_ELEM_SIZE: usize = 16;
/// Stored size of an overflow value reference.
pub const OVERFLOW_VALUE_SIZE: usize = PAGE_REF_SIZE + 8;
/// Stored size of a bucket header.
pub const BUCKET_HEADER_SIZE: usize = 48;

const KIND_INLINE: u8 = 0;
const KIND_OVERFLOW: u8 = 1;
const KIND_BUCKET: u8 = 2;

/// A bucket's header, stored as the value of its name in the parent bucket.
///
/// | offset | size | field    |
/// |-------:|-----:|----------|
/// | 0      | 24   | root [`PageRef`] (null = empty bucket) |
/// | 24     | 8    | sequence |
/// | 32     | 8    | count (key/value pairs directly in this bucket) |
/// | 40     | 8    | reserved |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketHeader {
    /// Root of the bucket's B+tree.
    pub root: PageRef,
    /// Value of `next_sequence`'s counter.
    pub sequence: u64,
    /// Number of key/value pairs (not sub-buckets) directly in the bucket.
    pub count: u64,
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
        })
    }

    /// Encodes into 48 bytes.
    pub fn encode(&self) -> [u8; BUCKET_HEADER_SIZE] {
        let mut b = [0u8; BUCKET_HEADER_SIZE];
        let written = self.root.encode(&mut b, 0)
            && put_u64(&mut b, 24, self.sequence)
            && put_u64(&mut b, 32, self.count);
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

/// Encodes a leaf extent. `entries` should be sorted, non-empty keys: the encoder
/// writes what it is given (tests build damaged pages with it); the engine asserts its
/// nodes are sound before it encodes them, and verifies every image after.
pub fn encode_leaf(
    entries: &[(&[u8], LeafValue<'_>)],
    page_id: PageId,
    txid: TxId,
    page_size: usize,
) -> Result<(Vec<u8>, PageHeader)> {
    let body: usize = entries
        .iter()
        .map(|(k, v)| leaf_entry_size(k.len(), v.stored_len()))
        .sum();
    let (extent_pages, mut page) = new_extent(body, page_size)?;
    let mut written = true;
    let mut data_off = PAGE_HEADER_SIZE + entries.len() * LEAF_ELEM_SIZE;
    for (i, (k, v)) in entries.iter().enumerate() {
        let e = PAGE_HEADER_SIZE + i * LEAF_ELEM_SIZE;
        let (kind, vlen) = match v {
            LeafValue::Inline(b) => (KIND_INLINE, b.len()),
            LeafValue::Overflow { .. } => (KIND_OVERFLOW, OVERFLOW_VALUE_SIZE),
            LeafValue::Bucket(_) => (KIND_BUCKET, BUCKET_HEADER_SIZE),
        };
        let (Some(klen), Some(vlen32), Some(off)) =
            (u32_from(k.len()), u32_from(vlen), u32_from(data_off))
        else {
            return Err(Error::Internal("leaf entry larger than a u32 offset"));
        };
        written &= put_u8(&mut page, e, kind)
            && put_u32(&mut page, e + 4, klen)
            && put_u32(&mut page, e + 8, vlen32)
            && put_u32(&mut page, e + 12, off)
            && put_bytes(&mut page, data_off, k);
        let voff = data_off + k.len();
        written &= match v {
            LeafValue::Inline(b) => put_bytes(&mut page, voff, b),
            LeafValue::Overflow { extent, len } => {
                extent.encode(&mut page, voff) && put_u64(&mut page, voff + PAGE_REF_SIZE, *len)
            }
            LeafValue::Bucket(h) => put_bytes(&mut page, voff, &h.encode()),
        };
        data_off = voff + vlen;
    }
    let h = PageHeader {
        checksum: 0,
        page_type: PageType::Leaf,
        page_id,
        txid,
        extent_pages,
        count: u32_from(entries.len()).ok_or(Error::Internal("leaf entry count"))?,
        payload_len: body as u64,
    };
    seal(page, h, written)
}

/// Encodes a branch extent. `entries` are (separator key, child) in key order.
pub fn encode_branch(
    entries: &[(&[u8], PageRef)],
    page_id: PageId,
    txid: TxId,
    page_size: usize,
) -> Result<(Vec<u8>, PageHeader)> {
    let body: usize = entries
        .iter()
        .map(|(k, _)| branch_entry_size(k.len()))
        .sum();
    let (extent_pages, mut page) = new_extent(body, page_size)?;
    let mut written = true;
    let mut data_off = PAGE_HEADER_SIZE + entries.len() * BRANCH_ELEM_SIZE;
    for (i, (k, child)) in entries.iter().enumerate() {
        let e = PAGE_HEADER_SIZE + i * BRANCH_ELEM_SIZE;
        let (Some(off), Some(klen)) = (u32_from(data_off), u32_from(k.len())) else {
            return Err(Error::Internal("branch entry larger than a u32 offset"));
        };
        written &= child.encode(&mut page, e)
            && put_u32(&mut page, e + 24, off)
            && put_u32(&mut page, e + 28, klen)
            && put_bytes(&mut page, data_off, k);
        data_off += k.len();
    }
    let h = PageHeader {
        checksum: 0,
        page_type: PageType::Branch,
        page_id,
        txid,
        extent_pages,
        count: u32_from(entries.len()).ok_or(Error::Internal("branch entry count"))?,
        payload_len: body as u64,
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
}

impl<'a> NodeView<'a> {
    /// Validates element bounds, key sizes, key order and value kinds of a page whose
    /// header already verified, and returns a view. Cost O(page).
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
        let mut prev: Option<&[u8]> = None;
        for i in 0..view.count {
            let (koff, klen, vlen) = view.raw_elem(i)?;
            if klen == 0 || klen > MAX_KEY_SIZE {
                return Err(bad(format!("element {i}: key length {klen} out of range")));
            }
            let end = koff.checked_add(klen).and_then(|e| e.checked_add(vlen));
            if koff < heap_start || end.is_none_or(|e| e > heap_end) {
                return Err(bad(format!(
                    "element {i}: data at offset {koff} (+{klen}+{vlen}) outside heap {heap_start}..{heap_end}"
                )));
            }
            if leaf {
                let kind = view.leaf_kind(i)?;
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
                let child = view.branch_child(i)?;
                if child.page_id < PageId::FIRST_DATA
                    || child.extent_pages == 0
                    || child.extent_pages > MAX_EXTENT_PAGES
                {
                    return Err(Error::corrupted(
                        h.page_id.0,
                        CorruptionKind::OutOfRange,
                        format!(
                            "element {i}: child reference to page {} with extent {} is impossible",
                            child.page_id, child.extent_pages
                        ),
                    ));
                }
            }
            let key = view.key(i)?;
            if let Some(p) = prev {
                if p >= key {
                    return Err(Error::corrupted(
                        h.page_id.0,
                        CorruptionKind::KeyOrder,
                        format!("element {i}: key is not greater than the key before it"),
                    ));
                }
            }
            prev = Some(key);
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
        })
    }

    fn bounds(&self, what: &str) -> Error {
        Error::corrupted(
            self.page_id.0,
            CorruptionKind::Bounds,
            format!("{what} out of bounds"),
        )
    }

    /// (key offset, key length, stored value length) of element `i`.
    fn raw_elem(&self, i: usize) -> Result<(usize, usize, usize)> {
        if i >= self.count {
            return Err(self.bounds("element index"));
        }
        if self.leaf {
            let e = PAGE_HEADER_SIZE + i * LEAF_ELEM_SIZE;
            let klen = get_u32(self.page, e + 4).ok_or_else(|| self.bounds("element"))?;
            let vlen = get_u32(self.page, e + 8).ok_or_else(|| self.bounds("element"))?;
            let off = get_u32(self.page, e + 12).ok_or_else(|| self.bounds("element"))?;
            Ok((usize_from(off), usize_from(klen), usize_from(vlen)))
        } else {
            let e = PAGE_HEADER_SIZE + i * BRANCH_ELEM_SIZE;
            let off = get_u32(self.page, e + 24).ok_or_else(|| self.bounds("element"))?;
            let klen = get_u32(self.page, e + 28).ok_or_else(|| self.bounds("element"))?;
            Ok((usize_from(off), usize_from(klen), 0))
        }
    }

    /// The value kind byte of leaf element `i`.
    fn leaf_kind(&self, i: usize) -> Result<u8> {
        if !self.leaf || i >= self.count {
            return Err(self.bounds("leaf element"));
        }
        get_u8(self.page, PAGE_HEADER_SIZE + i * LEAF_ELEM_SIZE)
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

    /// Key of element `i`.
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
        PageRef::decode(self.page, PAGE_HEADER_SIZE + i * BRANCH_ELEM_SIZE)
            .ok_or_else(|| self.bounds("child reference"))
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
        let v = self
            .page
            .get(self.value_range(i)?)
            .ok_or_else(|| self.bounds("value"))?;
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
    pub fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid)?.cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Ok(mid)),
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

    #[test]
    fn leaf_round_trip_and_search() {
        let bh = BucketHeader {
            root: PageRef::NULL,
            sequence: 4,
            count: 2,
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
        let (page, h) = encode_leaf(&entries, PageId(7), TxId(1), 4096).expect("encode");
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
    fn branch_round_trip_and_child_index() {
        let child = |id| PageRef {
            page_id: PageId(id),
            txid: TxId(1),
            checksum: 0,
            extent_pages: 1,
        };
        let entries: Vec<(&[u8], PageRef)> = vec![(b"b", child(2)), (b"m", child(3))];
        let (page, h) = encode_branch(&entries, PageId(4), TxId(1), 4096).expect("encode");
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
        let (page, h) = encode_leaf(&entries, PageId(7), TxId(1), 4096).expect("encode");
        let e = NodeView::validate(&page, &h).expect_err("order");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::KeyOrder,
                ..
            }
        ));

        let entries: Vec<(&[u8], LeafValue)> = vec![(b"a", LeafValue::Inline(b"1"))];
        let (mut page, h) = encode_leaf(&entries, PageId(7), TxId(1), 4096).expect("encode");
        assert!(put_u32(&mut page, PAGE_HEADER_SIZE + 12, 4000));
        let e = NodeView::validate(&page, &h).expect_err("offset");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::Bounds,
                ..
            }
        ));
    }

    #[test]
    fn large_key_spans_extent() {
        let key = vec![7u8; MAX_KEY_SIZE];
        let entries: Vec<(&[u8], LeafValue)> = vec![(&key, LeafValue::Inline(b"v"))];
        let (page, h) = encode_leaf(&entries, PageId(10), TxId(1), 4096).expect("encode");
        assert_eq!(h.extent_pages, 9);
        let h2 = verify_page(&page, PageId(10), 4096).expect("verify");
        NodeView::validate(&page, &h2).expect("valid");
    }
}
