//! Meta pages: ids 0 and 1, each a full page; the superblock chooses between them.
//!
//! | offset | size | field          | meaning                                                 |
//! |-------:|-----:|----------------|---------------------------------------------------------|
//! | 0      | 48   | page header    | type 1 (meta), page_id 0 or 1, txid of the commit, tree_id 0 |
//! | 48     | 8    | magic          | `UNTORNDB`                                              |
//! | 56     | 4    | format_version | 2                                                       |
//! | 60     | 4    | page_size      | bytes per page, power of two 4096..=65536               |
//! | 64     | 24   | root           | [`PageRef`] of the root bucket's tree (0 = empty)       |
//! | 88     | 24   | freelist       | [`PageRef`] of the freelist extent (0 = none)           |
//! | 112    | 8    | high_water     | page ids below this are part of the file                |
//! | 120    | 16   | db_id          | the database's identity, random, never changes          |
//! | 136    | 8    | meta_seq       | +1 on every meta write; the slot is `meta_seq % 2`      |
//! | 144    | 8    | journal_salt   | salt of the journal generation that continues this meta |
//! | 152    | 4    | state          | 0 creating, 1 open, 2 clean                             |
//! | 156    | 4    | reserved       | 0                                                       |
//! | 160    | 8    | next_bucket_id | the id the next bucket created gets (>= 2)              |
//! | 168    | …    | reserved       | 0 to the end of the page                                |
//!
//! The checksum in the header covers the whole page, so a torn meta write is detected.

use super::bytes::{get_u32, get_u64, put_bytes, put_u32, put_u64};
use super::ids::{BucketId, DbId, PageId, TxId};
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
const OFF_VERSION: usize = 56;
const OFF_PAGE_SIZE: usize = 60;
const OFF_ROOT: usize = 64;
const OFF_FREELIST: usize = 88;
const OFF_HWM: usize = 112;
const OFF_DB_ID: usize = 120;
const OFF_META_SEQ: usize = 136;
const OFF_JOURNAL_SALT: usize = 144;
const OFF_STATE: usize = 152;
const OFF_NEXT_BUCKET_ID: usize = 160;

/// Bytes at the start of a file that hold everything needed to recognise it and find its
/// page size: the header, the magic and the page-size field of meta slot 0.
pub const SNIFF_BYTES: usize = 128;

/// What a meta says about the journal beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaState {
    /// The database is being created: nothing was ever acknowledged.
    Creating,
    /// Open for writing: the journal may hold commits newer than this meta.
    Open,
    /// Closed cleanly: nothing newer than this meta exists anywhere.
    Clean,
}

impl MetaState {
    /// The stored value.
    pub fn to_u32(self) -> u32 {
        match self {
            MetaState::Creating => 0,
            MetaState::Open => 1,
            MetaState::Clean => 2,
        }
    }

    /// Decodes the stored value.
    pub fn from_u32(v: u32) -> Option<MetaState> {
        match v {
            0 => Some(MetaState::Creating),
            1 => Some(MetaState::Open),
            2 => Some(MetaState::Clean),
            _ => None,
        }
    }

    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            MetaState::Creating => "creating",
            MetaState::Open => "open",
            MetaState::Clean => "clean",
        }
    }
}

/// The decoded contents of a meta page (or of a journal generation marker, which carries
/// a verbatim copy of the meta that starts its generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The commit this meta describes.
    pub txid: TxId,
    /// Page size of the file.
    pub page_size: u32,
    /// Root of the root bucket's tree.
    pub root: PageRef,
    /// The freelist extent written by the last checkpoint.
    pub freelist: PageRef,
    /// Page ids below this are part of the file.
    pub high_water: PageId,
    /// The database's identity.
    pub db_id: DbId,
    /// Meta write counter: +1 on every write; this meta lives in slot `meta_seq % 2`.
    pub meta_seq: u64,
    /// Salt of the journal generation that continues this meta.
    pub journal_salt: u64,
    /// Whether the journal may hold newer commits.
    pub state: MetaState,
    /// The id the next bucket created gets.
    pub next_bucket_id: BucketId,
}

impl Meta {
    /// The meta of a database being created (txid 0, state `creating`), for slot `meta_seq % 2`.
    pub fn initial(page_size: u32, db_id: DbId, meta_seq: u64, journal_salt: u64) -> Meta {
        Meta {
            txid: TxId::INITIAL,
            page_size,
            root: PageRef::NULL,
            freelist: PageRef::NULL,
            high_water: PageId::FIRST_DATA,
            db_id,
            meta_seq,
            journal_salt,
            state: MetaState::Creating,
            next_bucket_id: BucketId::FIRST_USER,
        }
    }

    /// The slot (0 or 1) this meta belongs in: `meta_seq % 2`.
    pub fn slot(&self) -> u64 {
        self.meta_seq % 2
    }

    /// Encodes the meta into a full page for its slot (`meta_seq % 2`).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let ps = self.page_size as usize;
        let mut page = vec![0u8; ps];
        let written = put_bytes(&mut page, OFF_MAGIC, MAGIC)
            && put_u32(&mut page, OFF_VERSION, FORMAT_VERSION)
            && put_u32(&mut page, OFF_PAGE_SIZE, self.page_size)
            && self.root.encode(&mut page, OFF_ROOT)
            && self.freelist.encode(&mut page, OFF_FREELIST)
            && put_u64(&mut page, OFF_HWM, self.high_water.0)
            && put_bytes(&mut page, OFF_DB_ID, &self.db_id.0)
            && put_u64(&mut page, OFF_META_SEQ, self.meta_seq)
            && put_u64(&mut page, OFF_JOURNAL_SALT, self.journal_salt)
            && put_u32(&mut page, OFF_STATE, self.state.to_u32())
            && put_u64(&mut page, OFF_NEXT_BUCKET_ID, self.next_bucket_id.0);
        if !written {
            return Err(Error::Internal("meta page smaller than the meta"));
        }
        let h = PageHeader {
            checksum: 0,
            page_type: PageType::Meta,
            page_id: PageId(self.slot()),
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
        let Some(state) = MetaState::from_u32(fields.state) else {
            return Err(meta_err(format!("state {} is not 0, 1 or 2", fields.state)));
        };
        let meta = Meta {
            txid: h.txid,
            page_size: ps,
            root: fields.root,
            freelist: fields.freelist,
            high_water: fields.high_water,
            db_id: fields.db_id,
            meta_seq: fields.meta_seq,
            journal_salt: fields.journal_salt,
            state,
            next_bucket_id: fields.next_bucket_id,
        };
        if meta.slot() != slot {
            return Err(meta_err(format!(
                "meta_seq {} belongs in slot {}, found in slot {slot} (misdirected write?)",
                meta.meta_seq,
                meta.slot()
            )));
        }
        meta.validate(slot)?;
        Ok(meta)
    }

    /// Checks the fields are mutually consistent (the same rules for a meta page, a
    /// generation marker's base meta and a commit record's meta).
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
                "next bucket id {} below 2",
                self.next_bucket_id
            )));
        }
        if self.db_id.is_zero() {
            return Err(meta_err("database id is all zeros".into()));
        }
        if !is_valid_page_size(u64::from(self.page_size)) {
            return Err(meta_err(format!("page size {} is invalid", self.page_size)));
        }
        for (name, r) in [("root", self.root), ("freelist", self.freelist)] {
            let outside = r.page_id < PageId::FIRST_DATA
                || r.extent_pages == 0
                || r.end().is_none_or(|e| e > self.high_water)
                || r.txid > self.txid;
            if !r.is_null() && outside {
                return Err(meta_err(format!(
                    "{name} reference to page {} (+{}, txid {}) outside 2..{} or newer than txid {}",
                    r.page_id, r.extent_pages, r.txid, self.high_water, self.txid
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
    db_id: DbId,
    meta_seq: u64,
    journal_salt: u64,
    state: u32,
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
            db_id: get_db_id(page, OFF_DB_ID)?,
            meta_seq: get_u64(page, OFF_META_SEQ)?,
            journal_salt: get_u64(page, OFF_JOURNAL_SALT)?,
            state: get_u32(page, OFF_STATE)?,
            next_bucket_id: BucketId(get_u64(page, OFF_NEXT_BUCKET_ID)?),
        })
    }
}

/// The 16-byte database id at `off`.
pub(super) fn get_db_id(b: &[u8], off: usize) -> Option<DbId> {
    let bytes: [u8; 16] = b.get(off..off.checked_add(16)?)?.try_into().ok()?;
    Some(DbId(bytes))
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

/// The database id a damaged meta page claims, if its magic and version are intact.
pub fn claimed_db_id(page: &[u8]) -> Option<DbId> {
    if has_magic(page) && get_u32(page, OFF_VERSION) == Some(FORMAT_VERSION) {
        get_db_id(page, OFF_DB_ID).filter(|id| !id.is_zero())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Meta {
        Meta {
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
            db_id: DbId([7; 16]),
            meta_seq: 9,
            journal_salt: 0x1234,
            state: MetaState::Open,
            next_bucket_id: BucketId(3),
        }
    }

    #[test]
    fn meta_round_trip_and_rejects_damage() {
        let m = sample();
        let page = m.encode().expect("encode");
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
            Meta::decode(&bad.encode().expect("encode"), 1, 8192).is_err(),
            "root beyond hwm"
        );
        for bad in [
            Meta {
                db_id: DbId::ZERO,
                ..m
            },
            Meta {
                next_bucket_id: BucketId(1),
                ..m
            },
        ] {
            assert!(bad.validate(0).is_err(), "{bad:?}");
        }
        assert_eq!(claimed_db_id(&torn), Some(DbId([7; 16])));
        assert_eq!(claimed_txid(&torn), Some(TxId(42)));
    }

    #[test]
    fn a_version_1_meta_is_refused_by_its_version() {
        let m = sample();
        let mut page = m.encode().expect("encode");
        assert!(put_u32(&mut page, OFF_VERSION, 1));
        let h = super::super::page::decode_header(&page).expect("header");
        seal_page(&mut page, &h).expect("reseal");
        assert!(matches!(
            Meta::decode(&page, 1, 8192),
            Err(Error::UnsupportedVersion(1))
        ));
    }
}
