//! Salvage's spill records: the candidates for a key that page-level salvage sorts in
//! runs on a temporary file when they do not fit its memory budget. Never part of a
//! database file; written and read back by one salvage, then deleted.
//!
//! A record is a `u32` body length followed by the body (little-endian):
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0      | 8    | tree id (the bucket the key belongs to) |
//! | 8      | 8    | rank (the higher wins among candidates for one key) |
//! | 16     | 8    | txid of the page the candidate comes from |
//! | 24     | 1    | flags: bit 0 = older (from an unreferenced page); bits 1-2 = value kind (0 inline, 1 overflow, 2 bucket) |
//! | 25     | 4    | key length `k` |
//! | 29     | k    | key |
//! | 29+k   | …    | value: inline = its bytes (the rest of the body); overflow = [`PageRef`] (24) + value length (8); bucket = [`BucketHeader`] (48) |

use super::bytes::{get_u32, get_u64, get_u8, put_bytes, put_u32, put_u64, put_u8};
use super::node::{BucketHeader, BUCKET_HEADER_SIZE};
use super::page::{PageRef, PAGE_REF_SIZE};

/// Bytes of a record's length prefix.
pub const SPILL_LEN_SIZE: usize = 4;
/// Bytes of a record body before its key.
const FIXED: usize = 29;

/// A candidate's value as salvage found it in a leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpillValue {
    /// Value bytes.
    Inline(Vec<u8>),
    /// A value in an overflow extent (read when the record is emitted).
    Overflow(PageRef, u64),
    /// A sub-bucket's header.
    Bucket(BucketHeader),
}

/// One candidate for the value of `key` in tree `tree`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpillRecord {
    /// The tree (bucket id) the key belongs to.
    pub tree: u64,
    /// The key.
    pub key: Vec<u8>,
    /// Among candidates for one key, the highest rank wins.
    pub rank: u64,
    /// Txid of the page the candidate comes from.
    pub txid: u64,
    /// From a page the newest commit does not reference.
    pub older: bool,
    /// The value.
    pub value: SpillValue,
}

impl SpillRecord {
    /// Bytes the record takes encoded, length prefix included.
    pub fn encoded_len(&self) -> usize {
        SPILL_LEN_SIZE + FIXED + self.key.len() + self.value_len()
    }

    fn value_len(&self) -> usize {
        match &self.value {
            SpillValue::Inline(v) => v.len(),
            SpillValue::Overflow(..) => PAGE_REF_SIZE + 8,
            SpillValue::Bucket(_) => BUCKET_HEADER_SIZE,
        }
    }

    /// Appends the record (length prefix and body) to `out`; `false` (and nothing
    /// appended) when its body is longer than a `u32` can say.
    #[must_use]
    pub fn encode(&self, out: &mut Vec<u8>) -> bool {
        let body = FIXED + self.key.len() + self.value_len();
        let (Ok(body_len), Ok(key_len)) = (u32::try_from(body), u32::try_from(self.key.len()))
        else {
            return false;
        };
        let mut b = vec![0u8; SPILL_LEN_SIZE + body];
        let kind: u8 = match &self.value {
            SpillValue::Inline(_) => 0,
            SpillValue::Overflow(..) => 1,
            SpillValue::Bucket(_) => 2,
        };
        let at = SPILL_LEN_SIZE;
        let v = at + FIXED + self.key.len();
        let written = put_u32(&mut b, 0, body_len)
            && put_u64(&mut b, at, self.tree)
            && put_u64(&mut b, at + 8, self.rank)
            && put_u64(&mut b, at + 16, self.txid)
            && put_u8(&mut b, at + 24, u8::from(self.older) | (kind << 1))
            && put_u32(&mut b, at + 25, key_len)
            && put_bytes(&mut b, at + FIXED, &self.key)
            && match &self.value {
                SpillValue::Inline(bytes) => put_bytes(&mut b, v, bytes),
                SpillValue::Overflow(r, len) => {
                    r.encode(&mut b, v) && put_u64(&mut b, v + PAGE_REF_SIZE, *len)
                }
                SpillValue::Bucket(h) => put_bytes(&mut b, v, &h.encode()),
            };
        if written {
            out.extend_from_slice(&b);
        }
        written
    }

    /// The body length a record's length prefix (its first [`SPILL_LEN_SIZE`] bytes)
    /// announces.
    pub fn body_len(prefix: &[u8]) -> Option<usize> {
        usize::try_from(get_u32(prefix, 0)?).ok()
    }

    /// Decodes a record body (without its length prefix).
    pub fn decode_body(b: &[u8]) -> Option<SpillRecord> {
        let flags = get_u8(b, 24)?;
        let key_len = usize::try_from(get_u32(b, 25)?).ok()?;
        let v = FIXED.checked_add(key_len)?;
        let rest = b.get(v..)?;
        let value = match flags >> 1 {
            0 => SpillValue::Inline(rest.to_vec()),
            1 => SpillValue::Overflow(PageRef::decode(rest, 0)?, get_u64(rest, PAGE_REF_SIZE)?),
            2 => SpillValue::Bucket(BucketHeader::decode(rest)?),
            _ => return None,
        };
        Some(SpillRecord {
            tree: get_u64(b, 0)?,
            rank: get_u64(b, 8)?,
            txid: get_u64(b, 16)?,
            older: flags & 1 == 1,
            key: b.get(FIXED..v)?.to_vec(),
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BucketId, PageId, TxId};

    #[test]
    fn spill_records_round_trip() {
        let r = PageRef {
            page_id: PageId(9),
            txid: TxId(4),
            checksum: 77,
            extent_pages: 2,
        };
        for value in [
            SpillValue::Inline(b"value".to_vec()),
            SpillValue::Inline(Vec::new()),
            SpillValue::Overflow(r, 12345),
            SpillValue::Bucket(BucketHeader {
                root: r,
                sequence: 3,
                count: 2,
                bucket_id: BucketId(5),
            }),
        ] {
            let rec = SpillRecord {
                tree: 7,
                key: b"key".to_vec(),
                rank: 1 << 63 | 5,
                txid: 42,
                older: true,
                value,
            };
            let mut out = Vec::new();
            assert!(rec.encode(&mut out));
            assert_eq!(out.len(), rec.encoded_len());
            let n = SpillRecord::body_len(&out).unwrap();
            assert_eq!(n + SPILL_LEN_SIZE, out.len());
            assert_eq!(SpillRecord::decode_body(&out[SPILL_LEN_SIZE..]), Some(rec));
        }
    }
}
