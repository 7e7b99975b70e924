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

use super::bytes::{get_u32, get_u64, get_u8, put_bytes, put_u32, put_u64, put_u8, u32_of, usz};
use super::page::{
    seal_page, PageHeader, PageRef, PageType, MAX_EXTENT_PAGES, PAGE_HEADER_SIZE, PAGE_REF_SIZE,
};
use crate::error::{CorruptionKind, Error, Result};

/// Size of a branch element header.
pub const BRANCH_ELEM_SIZE: usize = 32;
/// Size of a leaf element header.
pub const LEAF_ELEM_SIZE: usize = 16;
/// Stored size of an overflow value reference.
pub const OVERFLOW_VALUE_SIZE: usize = PAGE_REF_SIZE + 8;
/// Stored size of a bucket header.
pub const BUCKET_HEADER_SIZE: usize = 48;
/// Largest key.
pub const MAX_KEY_SIZE: usize = 32 * 1024;

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
        self.root.encode(&mut b, 0);
        put_u64(&mut b, 24, self.sequence);
        put_u64(&mut b, 32, self.count);
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

fn extent_for(bytes: usize, page_size: usize) -> u32 {
    u32_of(bytes.div_ceil(page_size).max(1))
}

/// Encodes a leaf extent. `entries` must be sorted and non-empty keys.
pub fn encode_leaf(
    entries: &[(&[u8], LeafValue<'_>)],
    page_id: u64,
    txid: u64,
    page_size: usize,
) -> (Vec<u8>, PageHeader) {
    let body: usize = entries
        .iter()
        .map(|(k, v)| leaf_entry_size(k.len(), v.stored_len()))
        .sum();
    let used = PAGE_HEADER_SIZE + body;
    let extent_pages = extent_for(used, page_size);
    let mut page = vec![0u8; usz(extent_pages) * page_size];
    let mut data_off = PAGE_HEADER_SIZE + entries.len() * LEAF_ELEM_SIZE;
    for (i, (k, v)) in entries.iter().enumerate() {
        let e = PAGE_HEADER_SIZE + i * LEAF_ELEM_SIZE;
        let (kind, vlen) = match v {
            LeafValue::Inline(b) => (KIND_INLINE, b.len()),
            LeafValue::Overflow { .. } => (KIND_OVERFLOW, OVERFLOW_VALUE_SIZE),
            LeafValue::Bucket(_) => (KIND_BUCKET, BUCKET_HEADER_SIZE),
        };
        put_u8(&mut page, e, kind);
        put_u32(&mut page, e + 4, u32_of(k.len()));
        put_u32(&mut page, e + 8, u32_of(vlen));
        put_u32(&mut page, e + 12, u32_of(data_off));
        put_bytes(&mut page, data_off, k);
        let voff = data_off + k.len();
        match v {
            LeafValue::Inline(b) => put_bytes(&mut page, voff, b),
            LeafValue::Overflow { extent, len } => {
                extent.encode(&mut page, voff);
                put_u64(&mut page, voff + PAGE_REF_SIZE, *len);
            }
            LeafValue::Bucket(h) => put_bytes(&mut page, voff, &h.encode()),
        }
        data_off = voff + vlen;
    }
    let mut h = PageHeader {
        checksum: 0,
        page_type: PageType::Leaf,
        page_id,
        txid,
        extent_pages,
        count: u32_of(entries.len()),
        payload_len: body as u64,
    };
    h.checksum = seal_page(&mut page, &h);
    (page, h)
}

/// Encodes a branch extent. `entries` are (separator key, child) in key order.
pub fn encode_branch(
    entries: &[(&[u8], PageRef)],
    page_id: u64,
    txid: u64,
    page_size: usize,
) -> (Vec<u8>, PageHeader) {
    let body: usize = entries
        .iter()
        .map(|(k, _)| branch_entry_size(k.len()))
        .sum();
    let used = PAGE_HEADER_SIZE + body;
    let extent_pages = extent_for(used, page_size);
    let mut page = vec![0u8; usz(extent_pages) * page_size];
    let mut data_off = PAGE_HEADER_SIZE + entries.len() * BRANCH_ELEM_SIZE;
    for (i, (k, child)) in entries.iter().enumerate() {
        let e = PAGE_HEADER_SIZE + i * BRANCH_ELEM_SIZE;
        child.encode(&mut page, e);
        put_u32(&mut page, e + 24, u32_of(data_off));
        put_u32(&mut page, e + 28, u32_of(k.len()));
        put_bytes(&mut page, data_off, k);
        data_off += k.len();
    }
    let mut h = PageHeader {
        checksum: 0,
        page_type: PageType::Branch,
        page_id,
        txid,
        extent_pages,
        count: u32_of(entries.len()),
        payload_len: body as u64,
    };
    h.checksum = seal_page(&mut page, &h);
    (page, h)
}

/// A read view over a verified branch or leaf page whose elements were validated by
/// [`NodeView::validate`]. Accessors still never panic; an impossible offset is `Bounds`.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    page: &'a [u8],
    page_id: u64,
    leaf: bool,
    count: usize,
}

impl<'a> NodeView<'a> {
    /// Validates element bounds, key sizes, key order and value kinds of a page whose
    /// header already verified, and returns a view. Cost O(page).
    pub fn validate(page: &'a [u8], h: &PageHeader) -> Result<NodeView<'a>> {
        let view = NodeView::prevalidated(page, h)?;
        let leaf = view.leaf;
        let bad = |detail: String| Error::corrupted(h.page_id, CorruptionKind::Bounds, detail);
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
        let heap_end =
            PAGE_HEADER_SIZE.saturating_add(usize::try_from(h.payload_len).unwrap_or(usize::MAX));
        if heap_start > heap_end || heap_end > page.len() {
            return Err(bad(format!(
                "{} elements do not fit in a payload of {} bytes",
                h.count, h.payload_len
            )));
        }
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
                let kind = get_u8(page, PAGE_HEADER_SIZE + i * LEAF_ELEM_SIZE).unwrap_or(255);
                let ok = match kind {
                    KIND_INLINE => true,
                    KIND_OVERFLOW => vlen == OVERFLOW_VALUE_SIZE,
                    KIND_BUCKET => vlen == BUCKET_HEADER_SIZE,
                    _ => false,
                };
                if !ok {
                    return Err(Error::corrupted(
                        h.page_id,
                        CorruptionKind::Invalid,
                        format!("element {i}: invalid value kind {kind} with length {vlen}"),
                    ));
                }
            } else {
                let child = view.branch_child(i)?;
                if child.page_id < 2
                    || child.extent_pages == 0
                    || child.extent_pages > MAX_EXTENT_PAGES
                {
                    return Err(Error::corrupted(
                        h.page_id,
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
                        h.page_id,
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
                    h.page_id,
                    CorruptionKind::PageType,
                    format!("expected a branch or leaf page, found {}", other.as_str()),
                ))
            }
        };
        Ok(NodeView {
            page,
            page_id: h.page_id,
            leaf,
            count: usz(h.count),
        })
    }

    fn bounds(&self, what: &str) -> Error {
        Error::corrupted(
            self.page_id,
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
            Ok((usz(off), usz(klen), usz(vlen)))
        } else {
            let e = PAGE_HEADER_SIZE + i * BRANCH_ELEM_SIZE;
            let off = get_u32(self.page, e + 24).ok_or_else(|| self.bounds("element"))?;
            let klen = get_u32(self.page, e + 28).ok_or_else(|| self.bounds("element"))?;
            Ok((usz(off), usz(klen), 0))
        }
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.leaf
    }

    /// The page id.
    pub fn page_id(&self) -> u64 {
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

    /// Value of leaf element `i`.
    pub fn leaf_value(&self, i: usize) -> Result<LeafValue<'a>> {
        if !self.leaf {
            return Err(self.bounds("leaf element"));
        }
        let (off, klen, vlen) = self.raw_elem(i)?;
        let voff = off.saturating_add(klen);
        let v = self
            .page
            .get(voff..voff.saturating_add(vlen))
            .ok_or_else(|| self.bounds("value"))?;
        let kind = get_u8(self.page, PAGE_HEADER_SIZE + i * LEAF_ELEM_SIZE).unwrap_or(255);
        match kind {
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
                self.page_id,
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

/// Encodes an overflow extent holding `value`.
pub fn encode_overflow(
    value: &[u8],
    page_id: u64,
    txid: u64,
    page_size: usize,
) -> (Vec<u8>, PageHeader) {
    let extent_pages = extent_for(PAGE_HEADER_SIZE + value.len(), page_size);
    let mut page = vec![0u8; usz(extent_pages) * page_size];
    put_bytes(&mut page, PAGE_HEADER_SIZE, value);
    let mut h = PageHeader {
        checksum: 0,
        page_type: PageType::Overflow,
        page_id,
        txid,
        extent_pages,
        count: 0,
        payload_len: value.len() as u64,
    };
    h.checksum = seal_page(&mut page, &h);
    (page, h)
}

/// The value bytes of a verified overflow extent, checked against the expected length.
pub fn overflow_value<'a>(page: &'a [u8], h: &PageHeader, expected_len: u64) -> Result<&'a [u8]> {
    if h.page_type != PageType::Overflow {
        return Err(Error::corrupted(
            h.page_id,
            CorruptionKind::PageType,
            format!(
                "expected an overflow extent, found {}",
                h.page_type.as_str()
            ),
        ));
    }
    if h.payload_len != expected_len {
        return Err(Error::corrupted(
            h.page_id,
            CorruptionKind::Bounds,
            format!(
                "overflow holds {} bytes, leaf says {}",
                h.payload_len, expected_len
            ),
        ));
    }
    let end = usize::try_from(h.payload_len)
        .ok()
        .and_then(|n| n.checked_add(PAGE_HEADER_SIZE));
    end.and_then(|e| page.get(PAGE_HEADER_SIZE..e))
        .ok_or_else(|| {
            Error::corrupted(
                h.page_id,
                CorruptionKind::Bounds,
                "overflow payload outside extent",
            )
        })
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
                        page_id: 5,
                        txid: 1,
                        checksum: 2,
                        extent_pages: 3,
                    },
                    len: 9000,
                },
            ),
        ];
        let (page, h) = encode_leaf(&entries, 7, 1, 4096);
        let h2 = verify_page(&page, 7, 4096).expect("verify");
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
            page_id: id,
            txid: 1,
            checksum: 0,
            extent_pages: 1,
        };
        let entries: Vec<(&[u8], PageRef)> = vec![(b"b", child(2)), (b"m", child(3))];
        let (page, h) = encode_branch(&entries, 4, 1, 4096);
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
        let (page, h) = encode_leaf(&entries, 7, 1, 4096);
        let e = NodeView::validate(&page, &h).expect_err("order");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::KeyOrder,
                ..
            }
        ));

        let entries: Vec<(&[u8], LeafValue)> = vec![(b"a", LeafValue::Inline(b"1"))];
        let (mut page, h) = encode_leaf(&entries, 7, 1, 4096);
        put_u32(&mut page, PAGE_HEADER_SIZE + 12, 4000);
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
        let (page, h) = encode_leaf(&entries, 10, 1, 4096);
        assert_eq!(h.extent_pages, 9);
        let h2 = verify_page(&page, 10, 4096).expect("verify");
        NodeView::validate(&page, &h2).expect("valid");
    }
}
