//! The page header, page references and whole-page verification.
//!
//! Every page (and every multi-page extent) starts with this 48-byte header; all
//! integers little-endian:
//!
//! | offset | size | field          | meaning                                             |
//! |-------:|-----:|----------------|-----------------------------------------------------|
//! | 0      | 4    | checksum       | CRC32C over bytes `[4, extent_pages * page_size)`   |
//! | 4      | 1    | page_type      | 1 meta, 2 branch, 3 leaf, 4 overflow, 5 freelist    |
//! | 5      | 1    | flags          | 0 (reserved)                                        |
//! | 6      | 2    | common_prefix_len | branch/leaf: bytes every key of the page shares; 0 otherwise |
//! | 8      | 8    | page_id        | the page's own id (offset / page_size)              |
//! | 16     | 8    | txid           | the transaction that wrote this image               |
//! | 24     | 4    | extent_pages   | pages this image occupies (>= 1)                    |
//! | 28     | 4    | count          | elements (branch/leaf), runs (freelist), 0 otherwise|
//! | 32     | 8    | payload_len    | bytes used after the header                         |
//! | 40     | 8    | tree_id        | the [`BucketId`] of the tree a branch, leaf or overflow page belongs to; 0 for meta and freelist |
//!
//! A [`PageRef`] (24 bytes) is how a parent vouches for a child:
//!
//! | offset | size | field        |
//! |-------:|-----:|--------------|
//! | 0      | 8    | page_id      |
//! | 8      | 8    | txid         |
//! | 16     | 4    | checksum     |
//! | 20     | 4    | extent_pages |

use super::bytes::{
    get_u16, get_u32, get_u64, get_u8, put_u16, put_u32, put_u64, put_u8, usize_from,
};
use super::ids::{BucketId, PageId, TxId};
use crate::error::{CorruptionKind, Error, Result};
use crate::limits::MAX_EXTENT_PAGES;

/// Size of the page header in bytes.
pub const PAGE_HEADER_SIZE: usize = 48;
/// Size of an encoded [`PageRef`].
pub const PAGE_REF_SIZE: usize = 24;
/// Smallest page size.
pub const MIN_PAGE_SIZE: usize = 4096;
/// Largest page size.
pub const MAX_PAGE_SIZE: usize = 65536;
/// Default page size.
pub const DEFAULT_PAGE_SIZE: usize = 4096;

const OFF_CHECKSUM: usize = 0;
/// The checksum covers everything after its own field.
const CHECKSUMMED_FROM: usize = 4;
const OFF_TYPE: usize = 4;
const OFF_FLAGS: usize = 5;
const OFF_COMMON_PREFIX_LEN: usize = 6;
const OFF_PAGE_ID: usize = 8;
const OFF_TXID: usize = 16;
const OFF_EXTENT: usize = 24;
const OFF_COUNT: usize = 28;
const OFF_PAYLOAD_LEN: usize = 32;
const OFF_TREE_ID: usize = 40;

/// Whether `n` is a valid page size.
pub fn is_valid_page_size(n: u64) -> bool {
    n.is_power_of_two() && n >= MIN_PAGE_SIZE as u64 && n <= MAX_PAGE_SIZE as u64
}

/// Every page size a file may have, smallest first.
pub fn page_sizes() -> impl Iterator<Item = usize> {
    std::iter::successors(Some(MIN_PAGE_SIZE), |ps| ps.checked_mul(2))
        .take_while(|ps| *ps <= MAX_PAGE_SIZE)
}

/// The type byte of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageType {
    /// Meta page (ids 0 and 1 only).
    Meta = 1,
    /// Interior node of a B+tree.
    Branch = 2,
    /// Leaf node of a B+tree.
    Leaf = 3,
    /// Extent holding one large value.
    Overflow = 4,
    /// Extent holding the list of free page runs.
    Freelist = 5,
}

impl PageType {
    /// Decodes the type byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(PageType::Meta),
            2 => Some(PageType::Branch),
            3 => Some(PageType::Leaf),
            4 => Some(PageType::Overflow),
            5 => Some(PageType::Freelist),
            _ => None,
        }
    }

    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            PageType::Meta => "meta",
            PageType::Branch => "branch",
            PageType::Leaf => "leaf",
            PageType::Overflow => "overflow",
            PageType::Freelist => "freelist",
        }
    }
}

/// A decoded page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// Stored CRC32C.
    pub checksum: u32,
    /// Page type.
    pub page_type: PageType,
    /// The page's own id.
    pub page_id: PageId,
    /// Txid that wrote the image.
    pub txid: TxId,
    /// Pages in the extent.
    pub extent_pages: u32,
    /// Element count.
    pub count: u32,
    /// Payload bytes used after the header.
    pub payload_len: u64,
    /// Branch/leaf: the length of the prefix every key of the page shares; 0 otherwise.
    pub common_prefix_len: u16,
    /// The tree (bucket) a branch, leaf or overflow page belongs to; `BucketId::NONE`
    /// for meta and freelist pages.
    pub tree_id: BucketId,
}

impl PageHeader {
    /// The reference a parent holds to this page (how a parent vouches for a child).
    pub fn reference(&self) -> PageRef {
        PageRef {
            page_id: self.page_id,
            txid: self.txid,
            checksum: self.checksum,
            extent_pages: self.extent_pages,
        }
    }

    /// Whether this is the version of the page that `r` refers to (the page id is the
    /// caller's to match: it is where the page was read from).
    pub fn matches(&self, r: &PageRef) -> bool {
        self.txid == r.txid && self.checksum == r.checksum && self.extent_pages == r.extent_pages
    }
}

/// A parent's reference to a child page: id, writing txid, checksum and extent length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageRef {
    /// Child page id; 0 means "no page" (an empty tree).
    pub page_id: PageId,
    /// Txid that wrote the child.
    pub txid: TxId,
    /// The child's CRC32C.
    pub checksum: u32,
    /// Pages in the child's extent.
    pub extent_pages: u32,
}

impl PageRef {
    /// The null reference (empty tree / no freelist).
    pub const NULL: PageRef = PageRef {
        page_id: PageId(0),
        txid: TxId(0),
        checksum: 0,
        extent_pages: 0,
    };

    /// Whether this is the null reference.
    pub fn is_null(&self) -> bool {
        self.page_id == PageId(0)
    }

    /// The id after the last page of the extent, or `None` on overflow.
    pub fn end(&self) -> Option<PageId> {
        self.page_id.checked_add(u64::from(self.extent_pages))
    }

    /// Decodes from `b[off..off+24]`.
    pub fn decode(b: &[u8], off: usize) -> Option<PageRef> {
        Some(PageRef {
            page_id: PageId(get_u64(b, off)?),
            txid: TxId(get_u64(b, off.checked_add(8)?)?),
            checksum: get_u32(b, off.checked_add(16)?)?,
            extent_pages: get_u32(b, off.checked_add(20)?)?,
        })
    }

    /// Encodes into `b[off..off+24]`; `false` if it does not fit.
    #[must_use]
    pub fn encode(&self, b: &mut [u8], off: usize) -> bool {
        put_u64(b, off, self.page_id.0)
            && put_u64(b, off + 8, self.txid.0)
            && put_u32(b, off + 16, self.checksum)
            && put_u32(b, off + 20, self.extent_pages)
    }
}

/// Computes the page checksum of an encoded extent (everything but the checksum field);
/// `None` if the bytes are shorter than a page header.
pub fn page_checksum(page: &[u8]) -> Option<u32> {
    if page.len() < PAGE_HEADER_SIZE {
        return None;
    }
    page.get(CHECKSUMMED_FROM..).map(crc32c::crc32c)
}

/// Writes a header into `page` (whose length is the whole extent) and seals it with the
/// checksum. Returns the checksum. Call after the payload is in place.
pub fn seal_page(page: &mut [u8], h: &PageHeader) -> Result<u32> {
    debug_assert!(
        h.extent_pages >= 1 && h.payload_len <= page.len().saturating_sub(PAGE_HEADER_SIZE) as u64,
        "sealing a header that does not describe its buffer"
    );
    let written = put_u8(page, OFF_TYPE, h.page_type as u8)
        && put_u8(page, OFF_FLAGS, 0)
        && put_u16(page, OFF_COMMON_PREFIX_LEN, h.common_prefix_len)
        && put_u64(page, OFF_PAGE_ID, h.page_id.0)
        && put_u64(page, OFF_TXID, h.txid.0)
        && put_u32(page, OFF_EXTENT, h.extent_pages)
        && put_u32(page, OFF_COUNT, h.count)
        && put_u64(page, OFF_PAYLOAD_LEN, h.payload_len)
        && put_u64(page, OFF_TREE_ID, h.tree_id.0);
    let crc = page_checksum(page)
        .filter(|_| written)
        .ok_or(Error::Internal("page buffer shorter than its header"))?;
    if !put_u32(page, OFF_CHECKSUM, crc) {
        return Err(Error::Internal("page buffer shorter than its header"));
    }
    Ok(crc)
}

/// Decodes the header fields without verifying anything but their presence and type.
pub fn decode_header(page: &[u8]) -> Option<PageHeader> {
    Some(PageHeader {
        checksum: get_u32(page, OFF_CHECKSUM)?,
        page_type: PageType::from_u8(get_u8(page, OFF_TYPE)?)?,
        page_id: PageId(get_u64(page, OFF_PAGE_ID)?),
        txid: TxId(get_u64(page, OFF_TXID)?),
        extent_pages: get_u32(page, OFF_EXTENT)?,
        count: get_u32(page, OFF_COUNT)?,
        payload_len: get_u64(page, OFF_PAYLOAD_LEN)?,
        common_prefix_len: get_u16(page, OFF_COMMON_PREFIX_LEN)?,
        tree_id: BucketId(get_u64(page, OFF_TREE_ID)?),
    })
}

/// Reads only the extent length claimed by a page's first bytes (for tools that walk a
/// file page by page). `None` if the bytes are too short.
pub fn peek_extent_pages(page: &[u8]) -> Option<u32> {
    get_u32(page, OFF_EXTENT)
}

/// Reads only the txid field of a page's header, unverified (for reports on damaged
/// pages). `None` if the bytes are too short.
pub fn peek_txid(page: &[u8]) -> Option<TxId> {
    get_u64(page, OFF_TXID).map(TxId)
}

/// Verifies a page image read from `expected_id`: not zeroed, checksum, self id, extent
/// length, payload bound. `page.len()` must be `extent_pages * page_size` as the caller
/// believes it to be. Returns the header.
pub fn verify_page(page: &[u8], expected_id: PageId, page_size: usize) -> Result<PageHeader> {
    let corrupt = |kind, detail: String| Error::corrupted(expected_id.0, kind, detail);
    // A page shorter than its header has neither a stored nor a computable checksum.
    let (Some(stored), Some(computed)) = (get_u32(page, OFF_CHECKSUM), page_checksum(page)) else {
        return Err(corrupt(
            CorruptionKind::Bounds,
            "page shorter than its header".into(),
        ));
    };
    if page.iter().all(|&b| b == 0) {
        return Err(corrupt(CorruptionKind::Zeroed, "page is all zeros".into()));
    }
    if stored != computed {
        return Err(corrupt(
            CorruptionKind::Checksum,
            format!(
                "stored checksum {stored:#010x}, computed {computed:#010x} (torn or damaged page)"
            ),
        ));
    }
    let Some(h) = decode_header(page) else {
        // The header is present (the checksum was read), so only its type can be wrong.
        let type_byte = get_u8(page, OFF_TYPE).map_or_else(String::new, |b| b.to_string());
        return Err(corrupt(
            CorruptionKind::PageType,
            format!("unknown page type byte {type_byte}"),
        ));
    };
    if h.page_id != expected_id {
        return Err(corrupt(
            CorruptionKind::PageId,
            format!("page at id {expected_id} says it is page {}", h.page_id),
        ));
    }
    let extent_bytes = (h.extent_pages as usize).checked_mul(page_size);
    if h.extent_pages == 0 || h.extent_pages > MAX_EXTENT_PAGES || extent_bytes != Some(page.len())
    {
        return Err(corrupt(
            CorruptionKind::Bounds,
            format!(
                "extent of {} pages does not match the {} bytes read",
                h.extent_pages,
                page.len()
            ),
        ));
    }
    if h.payload_len > (page.len() - PAGE_HEADER_SIZE) as u64 {
        return Err(corrupt(
            CorruptionKind::Bounds,
            format!("payload length {} exceeds the extent", h.payload_len),
        ));
    }
    // Pages of a tree name it; pages of no tree name none and share no key prefix.
    let of_a_tree = matches!(
        h.page_type,
        PageType::Branch | PageType::Leaf | PageType::Overflow
    );
    if of_a_tree == (h.tree_id == BucketId::NONE) {
        return Err(corrupt(
            CorruptionKind::Invalid,
            format!("a {} page with tree id {}", h.page_type.as_str(), h.tree_id),
        ));
    }
    if !matches!(h.page_type, PageType::Branch | PageType::Leaf) && h.common_prefix_len != 0 {
        return Err(corrupt(
            CorruptionKind::Invalid,
            format!(
                "a {} page with a common key prefix of {} bytes",
                h.page_type.as_str(),
                h.common_prefix_len
            ),
        ));
    }
    Ok(h)
}

/// Checks a verified page against the reference its parent holds.
pub fn check_ref(h: &PageHeader, r: &PageRef) -> Result<()> {
    if !h.matches(r) {
        return Err(Error::corrupted(
            r.page_id.0,
            CorruptionKind::ParentMismatch,
            format!(
                "parent expects txid {} checksum {:#010x} extent {}, page has txid {} checksum {:#010x} extent {} (stale or lost write)",
                r.txid, r.checksum, r.extent_pages, h.txid, h.checksum, h.extent_pages
            ),
        ));
    }
    Ok(())
}

/// Checks that a verified page belongs to the tree its parent descends (`tree`): a page of
/// another tree under this bucket is a parent mismatch naming both ids.
pub fn check_tree(h: &PageHeader, tree: BucketId) -> Result<()> {
    if h.tree_id != tree {
        return Err(Error::corrupted(
            h.page_id.0,
            CorruptionKind::ParentMismatch,
            format!(
                "page belongs to tree {} but is referenced from tree {tree} (misplaced or stale page)",
                h.tree_id
            ),
        ));
    }
    Ok(())
}

/// Pages needed for an extent whose header plus payload is `bytes` long (at least one);
/// `None` for a zero page size or a count beyond `u32`.
pub fn extent_pages_for(bytes: usize, page_size: usize) -> Option<u32> {
    if page_size == 0 {
        return None;
    }
    u32::try_from(bytes.div_ceil(page_size))
        .ok()
        .map(|n| n.max(1))
}

/// The page count and byte length of an extent for a header and `payload` bytes.
pub(super) fn extent_for(payload: usize, page_size: usize) -> Result<(u32, usize)> {
    let extent_pages = PAGE_HEADER_SIZE
        .checked_add(payload)
        .and_then(|used| extent_pages_for(used, page_size))
        .filter(|n| *n <= MAX_EXTENT_PAGES)
        .ok_or(Error::Internal("extent larger than the largest extent"))?;
    let len = usize_from(extent_pages)
        .checked_mul(page_size)
        .ok_or(Error::Internal("extent larger than the address space"))?;
    Ok((extent_pages, len))
}

/// An all-zero extent large enough for a header and `payload` bytes: its page count and
/// its bytes.
pub(super) fn new_extent(payload: usize, page_size: usize) -> Result<(u32, Vec<u8>)> {
    let extent_pages = PAGE_HEADER_SIZE
        .checked_add(payload)
        .and_then(|used| extent_pages_for(used, page_size))
        .filter(|n| *n <= MAX_EXTENT_PAGES)
        .ok_or(Error::Internal("extent larger than the largest extent"))?;
    let len = usize_from(extent_pages)
        .checked_mul(page_size)
        .ok_or(Error::Internal("extent larger than the address space"))?;
    Ok((extent_pages, vec![0u8; len]))
}

/// Seals an encoded extent whose fields were all written (`written`).
pub(super) fn seal(
    mut page: Vec<u8>,
    mut h: PageHeader,
    written: bool,
) -> Result<(Vec<u8>, PageHeader)> {
    if !written {
        return Err(Error::Internal("an encoder wrote outside its extent"));
    }
    h.checksum = seal_page(&mut page, &h)?;
    Ok((page, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(page_size: usize) -> Vec<u8> {
        let mut p = vec![0u8; page_size];
        p[PAGE_HEADER_SIZE] = 7;
        let h = PageHeader {
            checksum: 0,
            page_type: PageType::Leaf,
            page_id: PageId(9),
            txid: TxId(3),
            extent_pages: 1,
            count: 0,
            payload_len: 1,
            common_prefix_len: 0,
            tree_id: BucketId(3),
        };
        seal_page(&mut p, &h).expect("seal");
        p
    }

    #[test]
    fn sealed_page_verifies_and_detects_damage() {
        let p = sample(4096);
        let h = verify_page(&p, PageId(9), 4096).expect("valid");
        assert_eq!(h.txid, TxId(3));
        let r = PageRef {
            page_id: PageId(9),
            txid: TxId(3),
            checksum: h.checksum,
            extent_pages: 1,
        };
        check_ref(&h, &r).expect("ref matches");

        let mut flipped = p.clone();
        flipped[100] ^= 1;
        let e = verify_page(&flipped, PageId(9), 4096).expect_err("flip");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::Checksum,
                ..
            }
        ));

        let e = verify_page(&p, PageId(10), 4096).expect_err("misdirected");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::PageId,
                ..
            }
        ));

        let e = verify_page(&vec![0u8; 4096], PageId(9), 4096).expect_err("zero");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::Zeroed,
                ..
            }
        ));

        let stale = PageRef { txid: TxId(2), ..r };
        let e = check_ref(&h, &stale).expect_err("stale");
        assert!(matches!(
            e,
            Error::Corrupted {
                kind: CorruptionKind::ParentMismatch,
                ..
            }
        ));
    }

    #[test]
    fn page_ref_round_trips() {
        let r = PageRef {
            page_id: PageId(u64::MAX - 1),
            txid: TxId(5),
            checksum: 0xdead_beef,
            extent_pages: 3,
        };
        let mut b = [0u8; 30];
        assert!(r.encode(&mut b, 3));
        assert_eq!(PageRef::decode(&b, 3), Some(r));
        assert_eq!(PageRef::decode(&b, 10), None);
    }
}
