//! Journal commit records (the doublewrite journal, a sidecar file `<db>.journal`).
//!
//! The journal is a sequence of records, each starting on a 512-byte boundary:
//! a one-sector header followed by the body, the concatenated page images of the
//! commit (each a whole extent, `body_len` a multiple of the page size).
//!
//! Record header (512 bytes):
//!
//! | offset | size | field            | meaning                                              |
//! |-------:|-----:|------------------|------------------------------------------------------|
//! | 0      | 4    | header_crc       | CRC32C over bytes `[4, 512)` of the header           |
//! | 4      | 4    | version          | 2                                                    |
//! | 8      | 8    | magic            | `UTJOURNL`                                           |
//! | 16     | 8    | salt             | journal generation; new random value at every reset  |
//! | 24     | 8    | txid             | the commit                                           |
//! | 32     | 4    | prev_crc         | header_crc of the previous record (0 for the first)  |
//! | 36     | 4    | body_crc         | CRC32C over the images' (checksum, extent_pages) pairs, in order (see [`body_crc`]) |
//! | 40     | 8    | body_len         | bytes of page images                                 |
//! | 48     | 4    | image_count      | number of page images in the body                    |
//! | 52     | 4    | page_size        | must equal the database's                            |
//! | 56     | 8    | synced_through   | highest txid whose record was synced before this one was written |
//! | 64     | 24   | meta.root        | [`PageRef`]                                          |
//! | 88     | 24   | meta.freelist    | [`PageRef`]                                          |
//! | 112    | 8    | meta.high_water  |                                                      |
//! | 120    | 8    | meta.next_bucket_id |                                                   |
//! | 128    | 384  | reserved         | 0                                                    |

use super::bytes::{get_u32, get_u64, put_bytes, put_u32, put_u64};
use super::ids::{BucketId, PageId, TxId};
use super::meta::Meta;
use super::page::PageRef;

/// Size of a record header; records start at multiples of this.
pub const RECORD_HEADER_SIZE: usize = 512;
/// Journal record magic.
pub const JOURNAL_MAGIC: &[u8; 8] = b"UTJOURNL";
/// Journal format version.
pub const JOURNAL_VERSION: u32 = 2;

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Stored header checksum (what the next record chains to).
    pub header_crc: u32,
    /// Journal generation.
    pub salt: u64,
    /// Checksum of the previous record's header (0 for the first in a generation).
    pub prev_crc: u32,
    /// Checksum of the body.
    pub body_crc: u32,
    /// Body length in bytes.
    pub body_len: u64,
    /// Page images in the body.
    pub image_count: u32,
    /// Highest txid known durable when this record was written.
    pub synced_through: TxId,
    /// The commit's meta (txid included).
    pub meta: Meta,
}

impl RecordHeader {
    /// Encodes and seals the header (`header_crc` is ignored): the sealed bytes and
    /// their checksum, which the next record chains to.
    pub fn encode(&self) -> ([u8; RECORD_HEADER_SIZE], u32) {
        let mut b = [0u8; RECORD_HEADER_SIZE];
        let written = put_u32(&mut b, 4, JOURNAL_VERSION)
            && put_bytes(&mut b, 8, JOURNAL_MAGIC)
            && put_u64(&mut b, 16, self.salt)
            && put_u64(&mut b, 24, self.meta.txid.0)
            && put_u32(&mut b, 32, self.prev_crc)
            && put_u32(&mut b, 36, self.body_crc)
            && put_u64(&mut b, 40, self.body_len)
            && put_u32(&mut b, 48, self.image_count)
            && put_u32(&mut b, 52, self.meta.page_size)
            && put_u64(&mut b, 56, self.synced_through.0)
            && self.meta.root.encode(&mut b, 64)
            && self.meta.freelist.encode(&mut b, 88)
            && put_u64(&mut b, 112, self.meta.high_water.0)
            && put_u64(&mut b, 120, self.meta.next_bucket_id.0);
        let [_, _, _, _, checksummed @ ..] = &b;
        let crc = crc32c::crc32c(checksummed);
        let sealed = put_u32(&mut b, 0, crc);
        // Every field lies inside the fixed-size header above.
        debug_assert!(written && sealed, "record header fields exceed the header");
        (b, crc)
    }

    /// Decodes a header, returning `None` unless magic, version and checksum are right.
    pub fn decode(b: &[u8]) -> Option<RecordHeader> {
        let b = b.get(..RECORD_HEADER_SIZE)?;
        if b.get(8..16)? != JOURNAL_MAGIC.as_slice() || get_u32(b, 4)? != JOURNAL_VERSION {
            return None;
        }
        let header_crc = get_u32(b, 0)?;
        if crc32c::crc32c(b.get(4..)?) != header_crc {
            return None;
        }
        Some(RecordHeader {
            header_crc,
            salt: get_u64(b, 16)?,
            prev_crc: get_u32(b, 32)?,
            body_crc: get_u32(b, 36)?,
            body_len: get_u64(b, 40)?,
            image_count: get_u32(b, 48)?,
            synced_through: TxId(get_u64(b, 56)?),
            meta: Meta {
                txid: TxId(get_u64(b, 24)?),
                page_size: get_u32(b, 52)?,
                root: PageRef::decode(b, 64)?,
                freelist: PageRef::decode(b, 88)?,
                high_water: PageId(get_u64(b, 112)?),
                next_bucket_id: BucketId(get_u64(b, 120)?),
            },
        })
    }
}

/// The record's `body_crc`: a CRC32C over each image's page checksum and extent length
/// (both u32 little-endian), in body order. Every image is verified by its own page
/// checksum when the record is read back, so the record's check only has to bind those
/// images to this header (a body mixing images of two writes of the same txid fails
/// it); checksumming the image bytes a second time would buy nothing.
pub fn body_crc<'a>(images: impl IntoIterator<Item = &'a super::page::PageHeader>) -> u32 {
    images.into_iter().fold(0u32, |crc, h| {
        let mut pair = [0u8; 8];
        let written = put_u32(&mut pair, 0, h.checksum) && put_u32(&mut pair, 4, h.extent_pages);
        debug_assert!(written, "two u32s fit eight bytes");
        crc32c::crc32c_append(crc, &pair)
    })
}

/// Bytes a record with `body_len` body bytes occupies (header + body, 512-aligned).
pub fn record_span(body_len: u64) -> u64 {
    (RECORD_HEADER_SIZE as u64 + body_len).div_ceil(RECORD_HEADER_SIZE as u64)
        * RECORD_HEADER_SIZE as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejects_flip() {
        let h = RecordHeader {
            header_crc: 0,
            salt: 77,
            prev_crc: 5,
            body_crc: 6,
            body_len: 8192,
            image_count: 2,
            synced_through: TxId(3),
            meta: Meta {
                txid: TxId(4),
                page_size: 4096,
                root: PageRef {
                    page_id: PageId(2),
                    txid: TxId(4),
                    checksum: 1,
                    extent_pages: 1,
                },
                freelist: PageRef::NULL,
                high_water: PageId(3),
                next_bucket_id: BucketId(9),
            },
        };
        let (enc, crc) = h.encode();
        let dec = RecordHeader::decode(&enc).expect("decode");
        assert_eq!(dec.header_crc, crc);
        assert_eq!(dec.meta, h.meta);
        assert_eq!(dec.salt, 77);
        let mut bad = enc;
        bad[200] ^= 1;
        assert!(RecordHeader::decode(&bad).is_none());
        assert_eq!(record_span(8192), 512 + 8192);
        assert_eq!(record_span(100), 1024);
    }
}
