//! Meta pages: ids 0 and 1, each a full page; open picks the newest valid one.
//!
//! | offset | size | field          | meaning                                          |
//! |-------:|-----:|----------------|--------------------------------------------------|
//! | 0      | 48   | page header    | type 1 (meta), page_id 0 or 1, txid of the commit|
//! | 48     | 8    | magic          | `UNTORNDB`                                       |
//! | 56     | 4    | format_version | 2                                                |
//! | 60     | 4    | page_size      | bytes per page, power of two 4096..=65536        |
//! | 64     | 24   | root           | [`PageRef`] of the root bucket's tree (0 = empty)|
//! | 88     | 24   | freelist       | [`PageRef`] of the freelist extent (0 = none)    |
//! | 112    | 8    | high_water     | page ids below this are part of the file         |
//! | 120    | 40   | reserved       | 0 (identity and state fields of format v2)       |
//! | 160    | 8    | next_bucket_id | the id the next bucket created gets (>= 2)       |
//!
//! The checksum in the header covers the whole page, so a torn meta write is detected.

use super::bytes::{get_u32, get_u64, put_bytes, put_u32, put_u64};
use super::ids::{BucketId, PageId, TxId};
use super::page::{
    is_valid_page_size, peek_txid, seal_page, verify_page, PageHeader, PageRef, PageType,
    PAGE_HEADER_SIZE,
};
use crate::error::{CorruptionKind, Error, Result};

/// File magic at byte 48 of both meta pages.
pub const MAGIC: &[u8; 8] = b"UNTORNDB";
/// Current format version.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of the meta body after the page header.
pub const META_BODY_SIZE: usize = 120;

const OFF_MAGIC: usize = PAGE_HEADER_SIZE;
const OFF_VERSION: usize = PAGE_HEADER_SIZE + 8;
const OFF_PAGE_SIZE: usize = PAGE_HEADER_SIZE + 12;
const OFF_ROOT: usize = PAGE_HEADER_SIZE + 16;
const OFF_FREELIST: usize = PAGE_HEADER_SIZE + 40;
const OFF_HWM: usize = PAGE_HEADER_SIZE + 64;
const OFF_NEXT_BUCKET_ID: usize = 160;

/// Bytes at the start of a file that hold everything needed to recognise it and find its
/// page size: the header, the magic and the page-size field of meta slot 0.
pub const SNIFF_BYTES: usize = 128;

/// The decoded contents of a meta page (or of a journal commit record's meta).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The commit this meta describes.
    pub txid: TxId,
    /// Page size of the file.
    pub page_size: u32,
    /// Root of the root bucket's tree.
    pub root: PageRef,
    /// The freelist extent.
    pub freelist: PageRef,
    /// Page ids below this are part of the file.
    pub high_water: PageId,
    /// The id the next bucket created gets (ids are never reused).
    pub next_bucket_id: BucketId,
}

impl Meta {
    /// The meta of a database that has never committed.
    pub fn initial(page_size: u32) -> Meta {
        Meta {
            txid: TxId::INITIAL,
            page_size,
            root: PageRef::NULL,
            freelist: PageRef::NULL,
            high_water: PageId::FIRST_DATA,
            next_bucket_id: BucketId::FIRST_USER,
        }
    }

    /// Encodes the meta into a full page for slot `slot` (0 or 1).
    pub fn encode(&self, slot: u64) -> Result<Vec<u8>> {
        debug_assert!(slot < 2, "meta slot {slot}");
        let ps = self.page_size as usize;
        let mut page = vec![0u8; ps];
        let written = put_bytes(&mut page, OFF_MAGIC, MAGIC)
            && put_u32(&mut page, OFF_VERSION, FORMAT_VERSION)
            && put_u32(&mut page, OFF_PAGE_SIZE, self.page_size)
            && self.root.encode(&mut page, OFF_ROOT)
            && self.freelist.encode(&mut page, OFF_FREELIST)
            && put_u64(&mut page, OFF_HWM, self.high_water.0)
            && put_u64(&mut page, OFF_NEXT_BUCKET_ID, self.next_bucket_id.0);
        if !written {
            return Err(Error::Internal("meta page smaller than the meta"));
        }
        let h = PageHeader {
            checksum: 0,
            page_type: PageType::Meta,
            page_id: PageId(slot),
            txid: self.txid,
            extent_pages: 1,
            count: 0,
            payload_len: META_BODY_SIZE as u64,
            common_prefix_len: 0,
            tree_id: BucketId::NONE,
        };
        seal_page(&mut page, &h)?;
        Ok(page)
    }

    /// Decodes and verifies a meta page read from `slot` assuming `page_size`.
    pub fn decode(page: &[u8], slot: u64, page_size: usize) -> Result<Meta> {
        let meta_err = |detail: String| Error::corrupted(slot, CorruptionKind::Meta, detail);
        if !has_magic(page) {
            return Err(meta_err("magic is not UNTORNDB".into()));
        }
        let h = verify_page(page, PageId(slot), page_size)?;
        if h.page_type != PageType::Meta {
            return Err(meta_err(format!("page type is {}", h.page_type.as_str())));
        }
        let Some(fields) = MetaFields::decode(page) else {
            return Err(meta_err("meta page shorter than the meta".into()));
        };
        if fields.version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion(fields.version));
        }
        let ps = fields.page_size;
        if ps as usize != page_size || !is_valid_page_size(u64::from(ps)) {
            return Err(meta_err(format!(
                "page size field {ps} does not match {page_size}"
            )));
        }
        let meta = Meta {
            txid: h.txid,
            page_size: ps,
            root: fields.root,
            freelist: fields.freelist,
            high_water: fields.high_water,
            next_bucket_id: fields.next_bucket_id,
        };
        meta.validate(slot)?;
        Ok(meta)
    }

    /// Checks the fields are mutually consistent.
    pub fn validate(&self, at: u64) -> Result<()> {
        let meta_err = |detail: String| Error::corrupted(at, CorruptionKind::Meta, detail);
        if self.high_water < PageId::FIRST_DATA {
            return Err(meta_err(format!(
                "high-water mark {} below 2",
                self.high_water
            )));
        }
        if self.next_bucket_id < BucketId::FIRST_USER {
            return Err(meta_err(format!(
                "next bucket id {} below {}",
                self.next_bucket_id,
                BucketId::FIRST_USER
            )));
        }
        for (name, r) in [("root", self.root), ("freelist", self.freelist)] {
            let outside = r.page_id < PageId::FIRST_DATA
                || r.extent_pages == 0
                || r.end().is_none_or(|e| e > self.high_water);
            if !r.is_null() && outside {
                return Err(meta_err(format!(
                    "{name} reference to page {} (+{}) outside 2..{}",
                    r.page_id, r.extent_pages, self.high_water
                )));
            }
        }
        Ok(())
    }
}

/// The meta body's fields, decoded without judging them.
struct MetaFields {
    version: u32,
    page_size: u32,
    root: PageRef,
    freelist: PageRef,
    high_water: PageId,
    next_bucket_id: BucketId,
}

impl MetaFields {
    fn decode(page: &[u8]) -> Option<MetaFields> {
        Some(MetaFields {
            version: get_u32(page, OFF_VERSION)?,
            page_size: get_u32(page, OFF_PAGE_SIZE)?,
            root: PageRef::decode(page, OFF_ROOT)?,
            freelist: PageRef::decode(page, OFF_FREELIST)?,
            high_water: PageId(get_u64(page, OFF_HWM)?),
            next_bucket_id: BucketId(get_u64(page, OFF_NEXT_BUCKET_ID)?),
        })
    }
}

/// Reads the page-size field of a would-be meta page without verifying it, if the magic
/// is present (used to find the page size before the checksum can be checked).
pub fn sniff_page_size(first_bytes: &[u8]) -> Option<u32> {
    if !has_magic(first_bytes) {
        return None;
    }
    get_u32(first_bytes, OFF_PAGE_SIZE)
}

/// Whether the bytes carry the untorn magic at the meta offset.
pub fn has_magic(first_bytes: &[u8]) -> bool {
    first_bytes.get(OFF_MAGIC..OFF_MAGIC + MAGIC.len()) == Some(MAGIC.as_slice())
}

/// The txid a damaged meta page claims, but only if its magic and version are intact:
/// the txid of a slot that is garbage (e.g. a sector garbled by a crash) means nothing.
pub fn claimed_txid(page: &[u8]) -> Option<TxId> {
    if has_magic(page) && get_u32(page, OFF_VERSION) == Some(FORMAT_VERSION) {
        peek_txid(page)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trip_and_rejects_damage() {
        let m = Meta {
            txid: TxId(42),
            page_size: 8192,
            root: PageRef {
                page_id: PageId(5),
                txid: TxId(40),
                checksum: 1,
                extent_pages: 1,
            },
            freelist: PageRef::NULL,
            high_water: PageId(10),
            next_bucket_id: BucketId(7),
        };
        let page = m.encode(1).expect("encode");
        assert_eq!(Meta::decode(&page, 1, 8192).expect("decode"), m);
        assert_eq!(sniff_page_size(&page), Some(8192));
        let mut torn = page.clone();
        torn[5000] ^= 0xff;
        assert!(Meta::decode(&torn, 1, 8192).is_err());
        assert!(Meta::decode(&page, 0, 8192).is_err(), "slot mismatch");
        let bad = Meta {
            high_water: PageId(4),
            ..m
        };
        assert!(
            Meta::decode(&bad.encode(0).expect("encode"), 0, 8192).is_err(),
            "root beyond hwm"
        );
    }
}
