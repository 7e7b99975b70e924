//! Revision keys, `mvccpb.KeyValue` and the `meta` bucket's values.
//!
//! ## Revision keys (bucket `key`)
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0  | 8 | main revision, big-endian int64 |
//! | 8  | 1 | `'_'` (0x5f) |
//! | 9  | 8 | sub revision, big-endian int64 |
//! | 17 | 1 | optional `'t'`: the revision is a tombstone (a delete) |
//!
//! Big-endian makes bbolt's byte order the revision order. Main revisions count the
//! write transactions applied (the first write is revision 2); sub revisions number
//! the changes inside one transaction from 0.
//!
//! ## Values of bucket `key`: `mvccpb.KeyValue` (protobuf, proto3)
//!
//! | field | number | wire type |
//! |-------|-------:|-----------|
//! | key             | 1 | length-delimited (bytes) |
//! | create_revision | 2 | varint (int64) |
//! | mod_revision    | 3 | varint (int64) |
//! | version         | 4 | varint (int64) |
//! | value           | 5 | length-delimited (bytes) |
//! | lease           | 6 | varint (int64) |
//!
//! A tombstone's value holds only `key`. A put's `mod_revision` is the main revision
//! of its bucket key; `create_revision` is the main revision of the put that created
//! the key's current generation; `version` counts the puts of that generation from 1.
//!
//! ## The `meta` bucket
//!
//! `consistent_index` (8 bytes, big-endian uint64: the last applied raft index), `term`
//! (8 bytes, big-endian, etcd ≥ 3.5), `scheduledCompactRev` and `finishedCompactRev`
//! (17-byte revisions as above, sub revision 0), `confState` (JSON, etcd ≥ 3.5),
//! `storageVersion` (etcd ≥ 3.6).

use std::fmt;

use super::proto::{
    put_bytes_field, put_int_field, want_bytes, want_varint, DecodeError, Fields, WireValue,
};

/// Length of a revision key.
pub const REV_BYTES_LEN: usize = 17;
/// Length of a revision key with the tombstone mark.
pub const MARKED_REV_BYTES_LEN: usize = 18;
/// The tombstone mark (last byte of an 18-byte revision key).
pub const TOMBSTONE_MARK: u8 = b't';
/// The separator between main and sub revision.
pub const REV_SEPARATOR: u8 = b'_';

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    /// Main revision.
    pub main: i64,
    /// Sub revision.
    pub sub: i64,
}

impl Revision {
    /// A revision.
    pub fn new(main: i64, sub: i64) -> Revision {
        Revision { main, sub }
    }

    /// The 17-byte key etcd stores for this revision.
    pub fn to_bytes(self) -> [u8; REV_BYTES_LEN] {
        let mut b = [0u8; REV_BYTES_LEN];
        let (head, tail) = b.split_at_mut(8);
        head.copy_from_slice(&self.main.to_be_bytes());
        if let Some((sep, sub)) = tail.split_first_mut() {
            *sep = REV_SEPARATOR;
            sub.copy_from_slice(&self.sub.to_be_bytes());
        }
        b
    }

    /// The bucket key of this revision, with the tombstone mark when asked.
    pub fn to_key(self, tombstone: bool) -> Vec<u8> {
        let mut k = self.to_bytes().to_vec();
        if tombstone {
            k.push(TOMBSTONE_MARK);
        }
        k
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.main, self.sub)
    }
}

/// A decoded key of the `key` bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevKey {
    /// The revision.
    pub rev: Revision,
    /// Whether the key carries the tombstone mark.
    pub tombstone: bool,
}

fn be_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// Decodes a key of the `key` bucket.
pub fn decode_rev_key(key: &[u8]) -> Result<RevKey, DecodeError> {
    let tombstone = match key.len() {
        REV_BYTES_LEN => false,
        MARKED_REV_BYTES_LEN => true,
        n => return Err(DecodeError::RevKeyLength(n)),
    };
    let sep = key.get(8).copied().unwrap_or(0);
    if sep != REV_SEPARATOR {
        return Err(DecodeError::RevKeySeparator(sep));
    }
    if tombstone {
        let mark = key.get(REV_BYTES_LEN).copied().unwrap_or(0);
        if mark != TOMBSTONE_MARK {
            return Err(DecodeError::RevKeyMark(mark));
        }
    }
    let main = be_i64(key).ok_or(DecodeError::RevKeyLength(key.len()))?;
    let sub = key
        .get(9..)
        .and_then(be_i64)
        .ok_or(DecodeError::RevKeyLength(key.len()))?;
    if main < 0 || sub < 0 {
        return Err(DecodeError::NegativeRevision { main, sub });
    }
    Ok(RevKey {
        rev: Revision { main, sub },
        tombstone,
    })
}

/// Decodes a 17-byte revision value (the compaction keys of `meta`).
pub fn decode_revision_value(b: &[u8]) -> Result<Revision, DecodeError> {
    if b.len() != REV_BYTES_LEN {
        return Err(DecodeError::Size {
            len: b.len(),
            expected: REV_BYTES_LEN,
        });
    }
    Ok(decode_rev_key(b)?.rev)
}

/// Decodes an 8-byte big-endian unsigned integer (consistent index, term, auth revision).
pub fn decode_be_u64(b: &[u8]) -> Result<u64, DecodeError> {
    let arr: [u8; 8] = b.try_into().map_err(|_| DecodeError::Size {
        len: b.len(),
        expected: 8,
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// Encodes an 8-byte big-endian unsigned integer.
pub fn encode_be_u64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// `mvccpb.KeyValue`: one revision of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue {
    /// The user's key.
    pub key: Vec<u8>,
    /// Main revision that created the key's current generation.
    pub create_revision: i64,
    /// Main revision of this change.
    pub mod_revision: i64,
    /// Puts since the generation's creation, from 1 (0 for a tombstone).
    pub version: i64,
    /// The user's value.
    pub value: Vec<u8>,
    /// Lease id attached (0 = none).
    pub lease: i64,
}

/// Decodes an `mvccpb.KeyValue` as etcd's decoder would (unknown fields skipped, a
/// known field with the wrong wire type refused, the last occurrence of a field wins).
pub fn decode_key_value(b: &[u8]) -> Result<KeyValue, DecodeError> {
    let mut kv = KeyValue::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => kv.key = want_bytes(at, field, v)?.to_vec(),
            2 => kv.create_revision = want_varint(at, field, v)? as i64,
            3 => kv.mod_revision = want_varint(at, field, v)? as i64,
            4 => kv.version = want_varint(at, field, v)? as i64,
            5 => kv.value = want_bytes(at, field, v)?.to_vec(),
            6 => kv.lease = want_varint(at, field, v)? as i64,
            _ => {}
        }
    }
    Ok(kv)
}

/// The `key` field of a value that does not decode as a whole, when the field itself
/// was read before the damage (a garbled value often still names its key).
pub fn partial_key(b: &[u8]) -> Option<Vec<u8>> {
    let mut key = None;
    for f in Fields::new(b) {
        match f {
            Ok((_, 1, WireValue::Bytes(k))) => key = Some(k.to_vec()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    key
}

/// Encodes an `mvccpb.KeyValue` the way etcd does (fields in order, zero values omitted).
pub fn encode_key_value(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(kv.key.len() + kv.value.len() + 32);
    put_bytes_field(&mut out, 1, &kv.key);
    put_int_field(&mut out, 2, kv.create_revision);
    put_int_field(&mut out, 3, kv.mod_revision);
    put_int_field(&mut out, 4, kv.version);
    put_bytes_field(&mut out, 5, &kv.value);
    put_int_field(&mut out, 6, kv.lease);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn revision_keys_roundtrip() {
        let r = Revision::new(33, 478);
        let k = r.to_key(false);
        assert_eq!(k.len(), 17);
        assert_eq!(k[8], b'_');
        assert_eq!(
            decode_rev_key(&k).unwrap(),
            RevKey {
                rev: r,
                tombstone: false
            }
        );
        let t = r.to_key(true);
        assert!(decode_rev_key(&t).unwrap().tombstone);
        assert!(Revision::new(2, 0).to_bytes() < Revision::new(2, 1).to_bytes());
        assert!(Revision::new(2, 999).to_bytes() < Revision::new(3, 0).to_bytes());
        assert_eq!(decode_rev_key(&k[..16]), Err(DecodeError::RevKeyLength(16)));
        let mut bad = t.clone();
        bad[17] = b'x';
        assert_eq!(decode_rev_key(&bad), Err(DecodeError::RevKeyMark(b'x')));
        let mut bad = k.clone();
        bad[8] = 0;
        assert_eq!(decode_rev_key(&bad), Err(DecodeError::RevKeySeparator(0)));
        let mut neg = k;
        neg[0] = 0x80;
        assert!(matches!(
            decode_rev_key(&neg),
            Err(DecodeError::NegativeRevision { .. })
        ));
    }

    #[test]
    fn key_value_roundtrip_and_errors() {
        let kv = KeyValue {
            key: b"/registry/pods/a".to_vec(),
            create_revision: 2,
            mod_revision: 33,
            version: 4,
            value: vec![7; 300],
            lease: 0x694d_8a1b_2c3d_4e5f,
        };
        let b = encode_key_value(&kv);
        assert_eq!(decode_key_value(&b).unwrap(), kv);
        // Every truncation is an error or a shorter message, never a panic.
        for n in 0..b.len() {
            let _ = decode_key_value(&b[..n]);
        }
        assert!(decode_key_value(&b[..b.len() - 1]).is_err());
        // A tombstone's value: only the key.
        let t = encode_key_value(&KeyValue {
            key: b"k".to_vec(),
            ..KeyValue::default()
        });
        assert_eq!(t, vec![0x0a, 1, b'k']);
        // Wrong wire type on a known field.
        assert!(matches!(
            decode_key_value(&[0x10 | 2, 0]),
            Err(DecodeError::WireType { field: 2, .. })
        ));
        // Field 0 and groups are refused; unknown fields are skipped.
        assert!(decode_key_value(&[0x00, 1]).is_err());
        assert!(decode_key_value(&[0x0b]).is_err());
        assert_eq!(
            decode_key_value(&[0x38, 5, 0x0a, 1, b'x']).unwrap().key,
            b"x"
        );
        // Overlong varint.
        assert!(decode_key_value(&[
            0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1
        ])
        .is_err());
    }

    #[test]
    fn meta_values() {
        assert_eq!(decode_be_u64(&[0, 0, 0, 0, 0, 0, 0, 9]).unwrap(), 9);
        assert!(decode_be_u64(&[0; 7]).is_err());
        let r = Revision::new(120, 0);
        assert_eq!(decode_revision_value(&r.to_bytes()).unwrap(), r);
        assert!(decode_revision_value(&r.to_key(true)).is_err());
    }
}
