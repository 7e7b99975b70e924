//! bbolt's on-disk format (version 2), decoded defensively.
//!
//! This is the only module that knows bbolt's byte offsets. All integers are
//! little-endian (bbolt writes native order; every platform etcd ships on is
//! little-endian). Every decoder here bounds-checks offsets and counts against
//! the buffer it is given and returns a [`PageProblem`] instead of panicking.
//!
//! Page header (16 bytes, at the start of every page):
//!
//! | offset | size | field    |
//! |-------:|-----:|----------|
//! | 0      | 8    | id (pgid the page believes it is) |
//! | 8      | 2    | flags: 0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist |
//! | 10     | 2    | count (elements; 0xFFFF = freelist count in first u64) |
//! | 12     | 4    | overflow (extra pages after this one) |
//!
//! Meta (64 bytes at page offset 16 of pages 0 and 1):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 4 | magic 0xED0CDAED |
//! | 4  | 4 | version (2) |
//! | 8  | 4 | page size |
//! | 12 | 4 | flags |
//! | 16 | 8 | root bucket: root pgid |
//! | 24 | 8 | root bucket: sequence |
//! | 32 | 8 | freelist pgid (0xFFFF_FFFF_FFFF_FFFF = not synced) |
//! | 40 | 8 | pgid: high-water mark (next page to allocate) |
//! | 48 | 8 | txid |
//! | 56 | 8 | checksum: FNV-1a 64 over bytes 0..56 |
//!
//! Branch element (16 bytes): pos u32, ksize u32, pgid u64. Leaf element (16
//! bytes): flags u32 (0x01 = bucket), pos u32, ksize u32, vsize u32. `pos` is
//! relative to the element's own address; key bytes follow at `pos`, value bytes
//! follow the key.
//!
//! Bucket value (in a leaf element with flag 0x01): root pgid u64, sequence u64;
//! when root is 0 the bucket is inline and a leaf page (header + elements) follows.

use std::fmt;
use std::ops::Range;

use untorn::unstable::report::{FindingKind, PageKind};

/// bbolt's magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only format version bbolt writes.
pub const VERSION: u32 = 2;
/// Size of the page header.
pub const PAGE_HEADER_SIZE: usize = 16;
/// Size of a branch or leaf element header.
pub const ELEMENT_SIZE: usize = 16;
/// Size of the meta structure.
pub const META_SIZE: usize = 64;
/// Size of a bucket header (root + sequence).
pub const BUCKET_HEADER_SIZE: usize = 16;
/// Branch page flag.
pub const FLAG_BRANCH: u16 = 0x01;
/// Leaf page flag.
pub const FLAG_LEAF: u16 = 0x02;
/// Meta page flag.
pub const FLAG_META: u16 = 0x04;
/// Freelist page flag.
pub const FLAG_FREELIST: u16 = 0x10;
/// Leaf element flag: the value is a bucket header.
pub const LEAF_FLAG_BUCKET: u32 = 0x01;
/// Meta freelist value meaning "freelist not synced" (NoFreelistSync).
pub const PGID_NO_FREELIST: u64 = u64::MAX;
/// Smallest page size we accept.
pub const MIN_PAGE_SIZE: u32 = 512;
/// Largest page size we accept.
pub const MAX_PAGE_SIZE: u32 = 65536;

// One byte-helper idiom for both formats: reads return `None` out of range, writes
// return `false` (and write nothing).
pub use untorn::unstable::format::bytes::{
    get_u16, get_u32, get_u64, put_bytes, put_u16, put_u32, put_u64,
};

/// FNV-1a 64-bit hash (bbolt's meta checksum).
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What is wrong with a page (or a reference to it). Maps onto a [`FindingKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageProblem {
    /// The page id is at or beyond the high-water mark.
    OutOfBounds { hwm: u64 },
    /// The page lies (partly) beyond the end of the file.
    BeyondFile { file_len: u64 },
    /// The page is all zeros.
    Zeroed,
    /// The page header names another id.
    IdMismatch { header_id: u64 },
    /// Flags are not the expected page type.
    InvalidType { flags: u16, expected: &'static str },
    /// The overflow extent runs past the high-water mark or the file.
    OverflowBounds { overflow: u32 },
    /// An element header or its key/value lies outside the page.
    ElementBounds { index: usize, detail: &'static str },
    /// A meta page reference (0 or 1) used as a tree page.
    MetaReference,
    /// A storage read failed.
    Read(String),
}

impl PageProblem {
    /// The finding kind this problem is reported as.
    pub fn finding_kind(&self) -> FindingKind {
        match self {
            PageProblem::OutOfBounds { .. } | PageProblem::BeyondFile { .. } => {
                FindingKind::OutOfBounds
            }
            PageProblem::Zeroed => FindingKind::ZeroedPage,
            PageProblem::IdMismatch { .. } => FindingKind::PageIdMismatch,
            PageProblem::InvalidType { .. } | PageProblem::MetaReference => {
                FindingKind::InvalidType
            }
            PageProblem::OverflowBounds { .. } => FindingKind::OverflowBounds,
            PageProblem::ElementBounds { .. } => FindingKind::ElementBounds,
            PageProblem::Read(_) => FindingKind::ReadError,
        }
    }
}

impl fmt::Display for PageProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageProblem::OutOfBounds { hwm } => {
                write!(f, "page id at or beyond the high-water mark {hwm}")
            }
            PageProblem::BeyondFile { file_len } => {
                write!(
                    f,
                    "page lies beyond the end of the file ({file_len} bytes; below the \
                     high-water mark, that means the file is truncated)"
                )
            }
            PageProblem::Zeroed => f.write_str("page is all zeros"),
            PageProblem::IdMismatch { header_id } => {
                write!(f, "page header self-identifies as page {header_id}")
            }
            PageProblem::InvalidType { flags, expected } => {
                write!(
                    f,
                    "invalid type: flags {flags:#06x} ({}), expected {expected}",
                    flags_name(*flags)
                )
            }
            PageProblem::OverflowBounds { overflow } => {
                write!(
                    f,
                    "overflow of {overflow} pages runs past the high-water mark or the file"
                )
            }
            PageProblem::ElementBounds { index, detail } => {
                write!(f, "element {index}: {detail}")
            }
            PageProblem::MetaReference => f.write_str("tree references a meta page"),
            PageProblem::Read(e) => write!(f, "read error: {e}"),
        }
    }
}

/// Whether the page starting at `page` holds bbolt's meta magic (unverified).
pub fn has_meta_magic(page: &[u8]) -> bool {
    get_u32(page, PAGE_HEADER_SIZE) == Some(MAGIC)
}

/// What page flags make a page, in the report vocabulary.
pub fn page_kind(flags: u16) -> PageKind {
    match flags {
        FLAG_BRANCH => PageKind::Branch,
        FLAG_LEAF => PageKind::Leaf,
        FLAG_META => PageKind::Meta,
        FLAG_FREELIST => PageKind::Freelist,
        _ => PageKind::Unknown,
    }
}

/// Human name of page flags.
pub fn flags_name(flags: u16) -> &'static str {
    page_kind(flags).as_str()
}

/// A decoded page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// Id the page believes it has.
    pub id: u64,
    /// Type flags.
    pub flags: u16,
    /// Element count (raw).
    pub count: u16,
    /// Extra pages after this one.
    pub overflow: u32,
}

impl PageHeader {
    /// Decodes the header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Option<PageHeader> {
        Some(PageHeader {
            id: get_u64(buf, 0)?,
            flags: get_u16(buf, 8)?,
            count: get_u16(buf, 10)?,
            overflow: get_u32(buf, 12)?,
        })
    }

    /// Encodes the header into the start of `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> bool {
        put_u64(buf, 0, self.id)
            && put_u16(buf, 8, self.flags)
            && put_u16(buf, 10, self.count)
            && put_u32(buf, 12, self.overflow)
    }
}

/// A decoded meta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Magic number.
    pub magic: u32,
    /// Format version.
    pub version: u32,
    /// Page size in bytes.
    pub page_size: u32,
    /// Flags (unused by bbolt).
    pub flags: u32,
    /// Root bucket's root page.
    pub root: u64,
    /// Root bucket's sequence.
    pub sequence: u64,
    /// Freelist page, or [`PGID_NO_FREELIST`].
    pub freelist: u64,
    /// High-water mark.
    pub pgid: u64,
    /// Transaction id.
    pub txid: u64,
    /// Stored checksum.
    pub checksum: u64,
}

/// Why a meta is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaProblem {
    /// Bad magic.
    Magic(u32),
    /// Unsupported version.
    Version(u32),
    /// Stored checksum does not match.
    Checksum { stored: u64, computed: u64 },
    /// Page size not a power of two in 512..=65536.
    PageSize(u32),
    /// Root, freelist or high-water mark impossible.
    Fields(String),
    /// The meta page could not be read.
    Unreadable(String),
}

impl fmt::Display for MetaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaProblem::Magic(m) => write!(f, "bad magic {m:#010x}"),
            MetaProblem::Version(v) => write!(f, "unsupported version {v}"),
            MetaProblem::Checksum { stored, computed } => {
                write!(
                    f,
                    "checksum {stored:#018x} does not match computed {computed:#018x}"
                )
            }
            MetaProblem::PageSize(p) => write!(f, "invalid page size {p}"),
            MetaProblem::Fields(s) => f.write_str(s),
            MetaProblem::Unreadable(s) => write!(f, "unreadable: {s}"),
        }
    }
}

impl Meta {
    /// Decodes a meta from the 64 bytes at `buf` (page offset 16).
    pub fn decode(buf: &[u8]) -> Option<Meta> {
        Some(Meta {
            magic: get_u32(buf, 0)?,
            version: get_u32(buf, 4)?,
            page_size: get_u32(buf, 8)?,
            flags: get_u32(buf, 12)?,
            root: get_u64(buf, 16)?,
            sequence: get_u64(buf, 24)?,
            freelist: get_u64(buf, 32)?,
            pgid: get_u64(buf, 40)?,
            txid: get_u64(buf, 48)?,
            checksum: get_u64(buf, 56)?,
        })
    }

    /// Encodes the meta (with the given checksum field) into 64 bytes.
    pub fn encode_raw(&self) -> [u8; META_SIZE] {
        let mut b = [0u8; META_SIZE];
        let written = put_u32(&mut b, 0, self.magic)
            && put_u32(&mut b, 4, self.version)
            && put_u32(&mut b, 8, self.page_size)
            && put_u32(&mut b, 12, self.flags)
            && put_u64(&mut b, 16, self.root)
            && put_u64(&mut b, 24, self.sequence)
            && put_u64(&mut b, 32, self.freelist)
            && put_u64(&mut b, 40, self.pgid)
            && put_u64(&mut b, 48, self.txid)
            && put_u64(&mut b, 56, self.checksum);
        // Every field lies inside the fixed-size array above.
        debug_assert!(written, "meta fields exceed the meta");
        b
    }

    /// The checksum bbolt would compute for this meta.
    pub fn compute_checksum(&self) -> u64 {
        // Everything but the checksum field itself (the last 8 bytes).
        let [checksummed @ .., _, _, _, _, _, _, _, _] = self.encode_raw();
        fnv1a64(&checksummed)
    }

    /// Sets the checksum to the computed value.
    pub fn with_checksum(mut self) -> Meta {
        self.checksum = self.compute_checksum();
        self
    }

    /// Whether the meta uses NoFreelistSync.
    pub fn no_freelist_sync(&self) -> bool {
        self.freelist == PGID_NO_FREELIST
    }

    /// Validates the meta as bbolt 1.3.6 does, plus field sanity against the file.
    /// A zero checksum is accepted (bbolt 1.3.6 does); see [`Meta::zero_checksum`].
    pub fn validate(&self, file_len: u64) -> Result<(), MetaProblem> {
        if self.magic != MAGIC {
            return Err(MetaProblem::Magic(self.magic));
        }
        if self.version != VERSION {
            return Err(MetaProblem::Version(self.version));
        }
        if self.checksum != 0 {
            let computed = self.compute_checksum();
            if computed != self.checksum {
                return Err(MetaProblem::Checksum {
                    stored: self.checksum,
                    computed,
                });
            }
        }
        if !valid_page_size(self.page_size) {
            return Err(MetaProblem::PageSize(self.page_size));
        }
        let ps = u64::from(self.page_size);
        let pages_in_file = file_len / ps;
        if self.pgid < 3 || self.pgid > pages_in_file {
            return Err(MetaProblem::Fields(format!(
                "high-water mark {} outside 3..={} (file has {} pages)",
                self.pgid, pages_in_file, pages_in_file
            )));
        }
        if self.root < 2 || self.root >= self.pgid {
            return Err(MetaProblem::Fields(format!(
                "root page {} outside 2..{}",
                self.root, self.pgid
            )));
        }
        if !self.no_freelist_sync() && (self.freelist < 2 || self.freelist >= self.pgid) {
            return Err(MetaProblem::Fields(format!(
                "freelist page {} outside 2..{}",
                self.freelist, self.pgid
            )));
        }
        Ok(())
    }

    /// Whether the checksum field is zero (accepted by bbolt 1.3.6, worth a warning).
    pub fn zero_checksum(&self) -> bool {
        self.checksum == 0
    }
}

/// Whether `ps` is a page size we accept.
pub fn valid_page_size(ps: u32) -> bool {
    ps.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps)
}

/// A bucket header stored as a leaf value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketHeader {
    /// Root page (0 = inline).
    pub root: u64,
    /// Sequence.
    pub sequence: u64,
}

impl BucketHeader {
    /// Decodes the first 16 bytes of a bucket value.
    pub fn decode(value: &[u8]) -> Option<BucketHeader> {
        Some(BucketHeader {
            root: get_u64(value, 0)?,
            sequence: get_u64(value, 8)?,
        })
    }
}

/// One element of a parsed node: byte ranges into the node buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Key bytes.
    pub key: Range<usize>,
    /// Value bytes (leaf only; empty for branch).
    pub value: Range<usize>,
    /// Leaf flags (0 for branch).
    pub flags: u32,
    /// Child page (branch only; 0 for leaf).
    pub pgid: u64,
}

/// What kind of tree node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Interior node.
    Branch,
    /// Leaf node.
    Leaf,
}

/// A branch or leaf node decoded from one or more pages (or an inline bucket).
#[derive(Debug, Clone)]
pub struct Node {
    /// Header as read.
    pub header: PageHeader,
    /// Branch or leaf.
    pub kind: NodeKind,
    /// Raw bytes (the whole multi-page node).
    pub buf: Vec<u8>,
    /// Elements, bounds-checked.
    pub elems: Vec<Element>,
}

impl Node {
    /// Parses a node from `buf` (header at offset 0). Checks type, counts and every
    /// element's ranges. Does not check the id or key order.
    pub fn parse(buf: Vec<u8>) -> Result<Node, PageProblem> {
        let header = PageHeader::decode(&buf).ok_or(PageProblem::ElementBounds {
            index: 0,
            detail: "page shorter than its header",
        })?;
        let kind = match header.flags {
            FLAG_BRANCH => NodeKind::Branch,
            FLAG_LEAF => NodeKind::Leaf,
            flags => {
                return Err(PageProblem::InvalidType {
                    flags,
                    expected: "branch or leaf",
                })
            }
        };
        let count = usize::from(header.count);
        let table_end = count
            .checked_mul(ELEMENT_SIZE)
            .and_then(|n| n.checked_add(PAGE_HEADER_SIZE))
            .unwrap_or(usize::MAX);
        if table_end > buf.len() {
            return Err(PageProblem::ElementBounds {
                index: count,
                detail: "element table runs past the page",
            });
        }
        let mut elems = Vec::with_capacity(count);
        for i in 0..count {
            let at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
            let bad = |detail| PageProblem::ElementBounds { index: i, detail };
            let (flags, pos, ksize, vsize, pgid) = match kind {
                NodeKind::Branch => (
                    0,
                    get_u32(&buf, at).ok_or(bad("header"))?,
                    get_u32(&buf, at + 4).ok_or(bad("header"))?,
                    0,
                    get_u64(&buf, at + 8).ok_or(bad("header"))?,
                ),
                NodeKind::Leaf => (
                    get_u32(&buf, at).ok_or(bad("header"))?,
                    get_u32(&buf, at + 4).ok_or(bad("header"))?,
                    get_u32(&buf, at + 8).ok_or(bad("header"))?,
                    get_u32(&buf, at + 12).ok_or(bad("header"))?,
                    0,
                ),
            };
            let kstart = at
                .checked_add(pos as usize)
                .ok_or(bad("key offset overflows"))?;
            if kstart < table_end {
                return Err(bad("key offset points into the element table"));
            }
            let kend = kstart
                .checked_add(ksize as usize)
                .ok_or(bad("key size overflows"))?;
            let vend = kend
                .checked_add(vsize as usize)
                .ok_or(bad("value size overflows"))?;
            if vend > buf.len() {
                return Err(bad("key or value runs past the page"));
            }
            elems.push(Element {
                key: kstart..kend,
                value: kend..vend,
                flags,
                pgid,
            });
        }
        Ok(Node {
            header,
            kind,
            buf,
            elems,
        })
    }

    /// Key of element `i` (empty if out of range, which parse rules out).
    pub fn key(&self, i: usize) -> &[u8] {
        self.elems
            .get(i)
            .and_then(|e| self.buf.get(e.key.clone()))
            .unwrap_or(&[])
    }

    /// Value of element `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        self.elems
            .get(i)
            .and_then(|e| self.buf.get(e.value.clone()))
            .unwrap_or(&[])
    }

    /// Whether element `i` is a bucket.
    pub fn is_bucket(&self, i: usize) -> bool {
        self.elems
            .get(i)
            .is_some_and(|e| e.flags & LEAF_FLAG_BUCKET != 0)
    }

    /// Elements whose key or value bytes are not where bbolt puts them. bbolt writes
    /// element data contiguously in element order, starting right after the element
    /// table (`node.write`), so element `i + 1`'s key starts where element `i`'s value
    /// ends. A link that does not hold marks both its elements suspect: one of them
    /// has a damaged position or size (its key or value bytes are someone else's).
    pub fn layout_suspects(&self) -> Vec<usize> {
        let n = self.elems.len();
        let table_end = PAGE_HEADER_SIZE + n * ELEMENT_SIZE;
        let mut bad = vec![false; n];
        if let (Some(e), Some(b)) = (self.elems.first(), bad.first_mut()) {
            if e.key.start != table_end {
                *b = true;
            }
        }
        for i in 1..n {
            let (Some(prev), Some(cur)) = (self.elems.get(i - 1), self.elems.get(i)) else {
                continue;
            };
            let end = if self.kind == NodeKind::Branch {
                prev.key.end
            } else {
                prev.value.end
            };
            if cur.key.start != end {
                if let Some(b) = bad.get_mut(i - 1) {
                    *b = true;
                }
                if let Some(b) = bad.get_mut(i) {
                    *b = true;
                }
            }
        }
        (0..n)
            .filter(|&i| bad.get(i).copied().unwrap_or(false))
            .collect()
    }

    /// Elements involved in a key-order violation (each element whose key is not
    /// strictly between its neighbours' keys, and those neighbours).
    pub fn order_suspects(&self) -> Vec<usize> {
        let n = self.elems.len();
        let mut bad = vec![false; n];
        for i in 1..n {
            if self.key(i - 1) >= self.key(i) {
                if let Some(b) = bad.get_mut(i - 1) {
                    *b = true;
                }
                if let Some(b) = bad.get_mut(i) {
                    *b = true;
                }
            }
        }
        (0..n)
            .filter(|&i| bad.get(i).copied().unwrap_or(false))
            .collect()
    }

    /// Index of the first element whose key is not strictly greater than its
    /// predecessor, if any.
    pub fn first_order_violation(&self) -> Option<usize> {
        (1..self.elems.len()).find(|&i| self.key(i - 1) >= self.key(i))
    }
}

/// Decodes the ids of a freelist page held in `buf` (whole multi-page extent).
pub fn decode_freelist(buf: &[u8]) -> Result<Vec<u64>, String> {
    let header = PageHeader::decode(buf).ok_or("freelist page shorter than its header")?;
    if header.flags != FLAG_FREELIST {
        return Err(format!(
            "page has flags {:#06x} ({}), not freelist",
            header.flags,
            flags_name(header.flags)
        ));
    }
    let (start, count) = if header.count == 0xFFFF {
        let c = get_u64(buf, PAGE_HEADER_SIZE).ok_or("freelist count runs past the page")?;
        (PAGE_HEADER_SIZE + 8, c)
    } else {
        (PAGE_HEADER_SIZE, u64::from(header.count))
    };
    let avail = (buf.len().saturating_sub(start) / 8) as u64;
    if count > avail {
        return Err(format!(
            "freelist count {count} exceeds the {avail} ids its extent can hold"
        ));
    }
    let mut ids = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        ids.push(get_u64(buf, start + i * 8).ok_or("freelist id runs past the page")?);
    }
    Ok(ids)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn meta_roundtrip_and_checksum() {
        let m = Meta {
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            flags: 0,
            root: 3,
            sequence: 0,
            freelist: 2,
            pgid: 4,
            txid: 1,
            checksum: 0,
        }
        .with_checksum();
        let raw = m.encode_raw();
        let back = Meta::decode(&raw).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.validate(4 * 4096), Ok(()));
        let mut bad = raw;
        bad[17] ^= 1;
        assert!(matches!(
            Meta::decode(&bad).unwrap().validate(4 * 4096),
            Err(MetaProblem::Checksum { .. })
        ));
        // Zero checksum accepted, as bbolt 1.3.6 does.
        let zero = Meta { checksum: 0, ..m };
        assert_eq!(zero.validate(4 * 4096), Ok(()));
        assert!(zero.zero_checksum());
        // High-water mark beyond the file is refused.
        assert!(m.validate(3 * 4096).is_err());
    }

    #[test]
    fn node_parse_rejects_out_of_page_elements() {
        let mut page = vec![0u8; 64];
        PageHeader {
            id: 5,
            flags: FLAG_LEAF,
            count: 1,
            overflow: 0,
        }
        .encode(&mut page);
        // pos 16 from the element (offset 32), key 4 bytes, value 40 bytes: 32+44 > 64.
        assert!(put_u32(&mut page, 20, 16));
        assert!(put_u32(&mut page, 24, 4));
        assert!(put_u32(&mut page, 28, 40));
        assert!(matches!(
            Node::parse(page.clone()),
            Err(PageProblem::ElementBounds { .. })
        ));
        assert!(put_u32(&mut page, 28, 8));
        let n = Node::parse(page.clone()).unwrap();
        assert_eq!(n.key(0).len(), 4);
        assert_eq!(n.value(0).len(), 8);
        // An element table larger than the page.
        assert!(put_u16(&mut page, 10, 9));
        assert!(Node::parse(page).is_err());
    }

    #[test]
    fn freelist_big_count() {
        let mut page = vec![0u8; 4096];
        PageHeader {
            id: 2,
            flags: FLAG_FREELIST,
            count: 0xFFFF,
            overflow: 0,
        }
        .encode(&mut page);
        assert!(put_u64(&mut page, 16, 2));
        assert!(put_u64(&mut page, 24, 7));
        assert!(put_u64(&mut page, 32, 9));
        assert_eq!(decode_freelist(&page).unwrap(), vec![7, 9]);
        assert!(put_u64(&mut page, 16, 1 << 40));
        assert!(decode_freelist(&page).is_err());
    }
}
