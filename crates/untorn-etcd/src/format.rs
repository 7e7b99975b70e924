//! etcd's values inside bbolt, decoded defensively.
//!
//! This is the only module of the crate that knows etcd's byte layouts. Every decoder
//! bounds-checks what it reads and returns a [`DecodeError`] naming the byte offset;
//! nothing here panics on file contents.
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
//! ## Other buckets
//!
//! - `meta`: `consistent_index` (8 bytes, big-endian uint64: the last applied raft
//!   index), `term` (8 bytes, big-endian, etcd ≥ 3.5), `scheduledCompactRev` and
//!   `finishedCompactRev` (17-byte revisions as above, sub revision 0), `confState`
//!   (JSON, etcd ≥ 3.5), `storageVersion` (etcd ≥ 3.6).
//! - `lease`: key = lease id (8 bytes, big-endian int64); value = `leasepb.Lease`
//!   {ID = 1 (int64), TTL = 2 (int64), RemainingTTL = 3 (int64)}.
//! - `members`: key = member id in hex; value = the member as JSON.
//!   `members_removed`: key = member id in hex; value `removed`.
//! - `cluster`: `clusterVersion` = a version string such as `3.4.0`.
//! - `auth`: `enabled` (1 byte: 1 on, 0 off), `authRevision` (8 bytes, big-endian).
//!   `authUsers`: key = user name; value = `authpb.User` {name = 1 (bytes), password
//!   = 2 (bytes), roles = 3 (repeated string), options = 4 (message)}.
//!   `authRoles`: key = role name; value = `authpb.Role` {name = 1 (bytes),
//!   keyPermission = 2 (repeated `Permission` {permType = 1 (enum), key = 2 (bytes),
//!   range_end = 3 (bytes)})}.
//! - `alarm`: key = `etcdserverpb.AlarmMember` {MemberID = 1 (uint64), Alarm = 2
//!   (enum: 1 NOSPACE, 2 CORRUPT)}; value empty.

use std::fmt;

/// Length of a revision key.
pub const REV_BYTES_LEN: usize = 17;
/// Length of a revision key with the tombstone mark.
pub const MARKED_REV_BYTES_LEN: usize = 18;
/// The tombstone mark (last byte of an 18-byte revision key).
pub const TOMBSTONE_MARK: u8 = b't';
/// The separator between main and sub revision.
pub const REV_SEPARATOR: u8 = b'_';
/// Longest varint protobuf allows.
const MAX_VARINT_LEN: usize = 10;

/// Why bytes do not decode as what etcd wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A revision key is neither 17 nor 18 bytes long.
    #[error("revision key of {0} bytes (etcd writes 17, or 18 for a tombstone)")]
    RevKeyLength(usize),
    /// Byte 8 of a revision key is not `'_'`.
    #[error("revision key byte 8 is {0:#04x}, not '_'")]
    RevKeySeparator(u8),
    /// Byte 17 of an 18-byte revision key is not `'t'`.
    #[error("revision key byte 17 is {0:#04x}, not the tombstone mark 't'")]
    RevKeyMark(u8),
    /// A revision is negative.
    #[error("negative revision {main}/{sub}")]
    NegativeRevision {
        /// Main revision as read.
        main: i64,
        /// Sub revision as read.
        sub: i64,
    },
    /// A varint runs past the end of the value or is longer than 10 bytes.
    #[error("byte {offset}: truncated or overlong varint")]
    Varint {
        /// Where the varint starts.
        offset: usize,
    },
    /// A length-delimited field runs past the end of the value.
    #[error("byte {offset}: field {field} of {len} bytes runs past the end ({available} left)")]
    Length {
        /// Where the field's bytes start.
        offset: usize,
        /// Field number.
        field: u64,
        /// Declared length.
        len: u64,
        /// Bytes left.
        available: usize,
    },
    /// A fixed-width field runs past the end of the value.
    #[error("byte {offset}: fixed-width field runs past the end")]
    Fixed {
        /// Where the field starts.
        offset: usize,
    },
    /// Field number 0, or a wire type protobuf does not have (or groups).
    #[error("byte {offset}: invalid tag (field {field}, wire type {wire_type})")]
    Tag {
        /// Where the tag starts.
        offset: usize,
        /// Field number.
        field: u64,
        /// Wire type.
        wire_type: u8,
    },
    /// A known field with the wrong wire type (etcd's decoder refuses it).
    #[error("byte {offset}: field {field} has wire type {wire_type}, expected {expected}")]
    WireType {
        /// Where the tag starts.
        offset: usize,
        /// Field number.
        field: u64,
        /// Wire type found.
        wire_type: u8,
        /// Wire type expected.
        expected: u8,
    },
    /// A fixed-size value has the wrong size.
    #[error("value of {len} bytes, expected {expected}")]
    Size {
        /// Size found.
        len: usize,
        /// Size expected.
        expected: usize,
    },
    /// Bytes that must be text are not UTF-8 or not the expected shape.
    #[error("{0}")]
    Text(String),
}

/// An etcd revision: main (transaction) and sub (change inside it).
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

/// Decodes a lease bucket key (8 bytes, big-endian int64).
pub fn decode_lease_key(b: &[u8]) -> Result<i64, DecodeError> {
    let arr: [u8; 8] = b.try_into().map_err(|_| DecodeError::Size {
        len: b.len(),
        expected: 8,
    })?;
    Ok(i64::from_be_bytes(arr))
}

// ---------------------------------------------------------------------------------
// Protobuf wire format.

/// Wire type: varint.
const WT_VARINT: u8 = 0;
/// Wire type: 64-bit fixed.
const WT_FIXED64: u8 = 1;
/// Wire type: length-delimited.
const WT_LEN: u8 = 2;
/// Wire type: 32-bit fixed.
const WT_FIXED32: u8 = 5;

/// One field of a protobuf message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireValue<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl WireValue<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            WireValue::Varint(_) => WT_VARINT,
            WireValue::Fixed64(_) => WT_FIXED64,
            WireValue::Bytes(_) => WT_LEN,
            WireValue::Fixed32(_) => WT_FIXED32,
        }
    }
}

fn read_varint(b: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let start = *pos;
    let mut v: u64 = 0;
    for i in 0..MAX_VARINT_LEN {
        let byte = *b
            .get(start + i)
            .ok_or(DecodeError::Varint { offset: start })?;
        // Bits past 64 are dropped, as Go's protobuf decoders do.
        v |= u64::from(byte & 0x7f)
            .checked_shl(7 * i as u32)
            .unwrap_or(0);
        if byte & 0x80 == 0 {
            *pos = start + i + 1;
            return Ok(v);
        }
    }
    Err(DecodeError::Varint { offset: start })
}

/// Iterator over the fields of one protobuf message: (offset of the tag, field
/// number, value). Stops at the first malformed field with its error.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    /// Fields of `buf`.
    pub fn new(buf: &'a [u8]) -> Fields<'a> {
        Fields {
            buf,
            pos: 0,
            failed: false,
        }
    }

    fn field(&mut self) -> Result<(usize, u64, WireValue<'a>), DecodeError> {
        let at = self.pos;
        let tag = read_varint(self.buf, &mut self.pos)?;
        let field = tag >> 3;
        let wire_type = (tag & 7) as u8;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(DecodeError::Tag {
                offset: at,
                field,
                wire_type,
            });
        }
        let value = match wire_type {
            WT_VARINT => WireValue::Varint(read_varint(self.buf, &mut self.pos)?),
            WT_FIXED64 => {
                let b = self
                    .pos
                    .checked_add(8)
                    .and_then(|end| self.buf.get(self.pos..end))
                    .ok_or(DecodeError::Fixed { offset: self.pos })?;
                self.pos += 8;
                WireValue::Fixed64(u64::from_le_bytes(
                    b.try_into()
                        .map_err(|_| DecodeError::Fixed { offset: at })?,
                ))
            }
            WT_FIXED32 => {
                let b = self
                    .pos
                    .checked_add(4)
                    .and_then(|end| self.buf.get(self.pos..end))
                    .ok_or(DecodeError::Fixed { offset: self.pos })?;
                self.pos += 4;
                WireValue::Fixed32(u32::from_le_bytes(
                    b.try_into()
                        .map_err(|_| DecodeError::Fixed { offset: at })?,
                ))
            }
            WT_LEN => {
                let len = read_varint(self.buf, &mut self.pos)?;
                let available = self.buf.len().saturating_sub(self.pos);
                let bytes = usize::try_from(len)
                    .ok()
                    .and_then(|n| self.pos.checked_add(n))
                    .and_then(|end| self.buf.get(self.pos..end))
                    .ok_or(DecodeError::Length {
                        offset: self.pos,
                        field,
                        len,
                        available,
                    })?;
                self.pos += bytes.len();
                WireValue::Bytes(bytes)
            }
            _ => {
                return Err(DecodeError::Tag {
                    offset: at,
                    field,
                    wire_type,
                })
            }
        };
        Ok((at, field, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(usize, u64, WireValue<'a>), DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = self.field();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

fn want_varint(at: usize, field: u64, v: WireValue<'_>) -> Result<u64, DecodeError> {
    match v {
        WireValue::Varint(x) => Ok(x),
        other => Err(DecodeError::WireType {
            offset: at,
            field,
            wire_type: other.wire_type(),
            expected: WT_VARINT,
        }),
    }
}

fn want_bytes<'a>(at: usize, field: u64, v: WireValue<'a>) -> Result<&'a [u8], DecodeError> {
    match v {
        WireValue::Bytes(b) => Ok(b),
        other => Err(DecodeError::WireType {
            offset: at,
            field,
            wire_type: other.wire_type(),
            expected: WT_LEN,
        }),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u64, wire_type: u8) {
    put_varint(out, (field << 3) | u64::from(wire_type));
}

fn put_int_field(out: &mut Vec<u8>, field: u64, v: i64) {
    if v != 0 {
        put_tag(out, field, WT_VARINT);
        put_varint(out, v as u64);
    }
}

fn put_bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    if !b.is_empty() {
        put_tag(out, field, WT_LEN);
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
}

// ---------------------------------------------------------------------------------
// Messages.

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

/// `leasepb.Lease`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lease {
    /// Lease id.
    pub id: i64,
    /// Granted TTL in seconds.
    pub ttl: i64,
    /// Remaining TTL in seconds when checkpointed (0 = not checkpointed).
    pub remaining_ttl: i64,
}

/// Decodes a `leasepb.Lease`.
pub fn decode_lease(b: &[u8]) -> Result<Lease, DecodeError> {
    let mut l = Lease::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => l.id = want_varint(at, field, v)? as i64,
            2 => l.ttl = want_varint(at, field, v)? as i64,
            3 => l.remaining_ttl = want_varint(at, field, v)? as i64,
            _ => {}
        }
    }
    Ok(l)
}

/// Encodes a `leasepb.Lease`.
pub fn encode_lease(l: &Lease) -> Vec<u8> {
    let mut out = Vec::new();
    put_int_field(&mut out, 1, l.id);
    put_int_field(&mut out, 2, l.ttl);
    put_int_field(&mut out, 3, l.remaining_ttl);
    out
}

/// `authpb.User` (the password hash is not kept, only whether there is one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthUser {
    /// User name.
    pub name: Vec<u8>,
    /// Whether a password hash is stored.
    pub has_password: bool,
    /// Roles granted.
    pub roles: Vec<Vec<u8>>,
}

/// Decodes an `authpb.User`.
pub fn decode_auth_user(b: &[u8]) -> Result<AuthUser, DecodeError> {
    let mut u = AuthUser::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => u.name = want_bytes(at, field, v)?.to_vec(),
            2 => u.has_password = !want_bytes(at, field, v)?.is_empty(),
            3 => u.roles.push(want_bytes(at, field, v)?.to_vec()),
            4 => {
                want_bytes(at, field, v)?;
            }
            _ => {}
        }
    }
    Ok(u)
}

/// One permission of an `authpb.Role`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permission {
    /// 0 read, 1 write, 2 readwrite.
    pub perm_type: u64,
    /// Key (or range start).
    pub key: Vec<u8>,
    /// Range end (empty = the single key).
    pub range_end: Vec<u8>,
}

/// `authpb.Role`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRole {
    /// Role name.
    pub name: Vec<u8>,
    /// Key permissions.
    pub permissions: Vec<Permission>,
}

/// Decodes an `authpb.Role`.
pub fn decode_auth_role(b: &[u8]) -> Result<AuthRole, DecodeError> {
    let mut r = AuthRole::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => r.name = want_bytes(at, field, v)?.to_vec(),
            2 => {
                let inner = want_bytes(at, field, v)?;
                let mut p = Permission::default();
                for g in Fields::new(inner) {
                    let (at2, f2, v2) = g?;
                    match f2 {
                        1 => p.perm_type = want_varint(at2, f2, v2)?,
                        2 => p.key = want_bytes(at2, f2, v2)?.to_vec(),
                        3 => p.range_end = want_bytes(at2, f2, v2)?.to_vec(),
                        _ => {}
                    }
                }
                r.permissions.push(p);
            }
            _ => {}
        }
    }
    Ok(r)
}

/// `etcdserverpb.AlarmMember` (a key of the `alarm` bucket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlarmMember {
    /// Member id.
    pub member_id: u64,
    /// 1 NOSPACE, 2 CORRUPT.
    pub alarm: u64,
}

/// Decodes an `etcdserverpb.AlarmMember`.
pub fn decode_alarm(b: &[u8]) -> Result<AlarmMember, DecodeError> {
    let mut a = AlarmMember::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => a.member_id = want_varint(at, field, v)?,
            2 => a.alarm = want_varint(at, field, v)?,
            _ => {}
        }
    }
    Ok(a)
}

/// A member record: its id from the key (hex) and the JSON value as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member id.
    pub id: u64,
    /// The stored JSON.
    pub json: String,
    /// The `"name"` field, when present.
    pub name: Option<String>,
}

/// Decodes a `members` entry: a hex id and a JSON object naming the same id.
pub fn decode_member(key: &[u8], value: &[u8]) -> Result<Member, DecodeError> {
    let id = decode_member_id(key)?;
    let json = std::str::from_utf8(value)
        .map_err(|e| DecodeError::Text(format!("member value is not UTF-8: {e}")))?
        .to_string();
    let trimmed = json.trim();
    if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
        return Err(DecodeError::Text(
            "member value is not a JSON object".into(),
        ));
    }
    if let Some(stored) = json_number_field(trimmed, "id") {
        if stored != id {
            return Err(DecodeError::Text(format!(
                "member key {id:x} holds the record of member {stored:x}"
            )));
        }
    }
    let name = json_string_field(trimmed, "name");
    Ok(Member { id, json, name })
}

/// Decodes a member id key (hex text).
pub fn decode_member_id(key: &[u8]) -> Result<u64, DecodeError> {
    let s =
        std::str::from_utf8(key).map_err(|_| DecodeError::Text("member key is not text".into()))?;
    if s.is_empty() || s.len() > 16 {
        return Err(DecodeError::Text(format!(
            "member key {s:?} is not a 64-bit hex id"
        )));
    }
    u64::from_str_radix(s, 16)
        .map_err(|_| DecodeError::Text(format!("member key {s:?} is not a hex id")))
}

/// The unsigned number after `"name":` in a flat JSON object, if any.
fn json_number_field(json: &str, name: &str) -> Option<u64> {
    let pat = format!("\"{name}\":");
    let at = json.find(&pat)? + pat.len();
    let rest = json.get(at..)?.trim_start();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The string after `"name":` in a flat JSON object, if any (no escapes decoded).
fn json_string_field(json: &str, name: &str) -> Option<String> {
    let pat = format!("\"{name}\":\"");
    let at = json.find(&pat)? + pat.len();
    let rest = json.get(at..)?;
    let end = rest.find('"')?;
    rest.get(..end).map(str::to_string)
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
    fn lease_and_member() {
        let l = Lease {
            id: 7587869183544918294,
            ttl: 600,
            remaining_ttl: 0,
        };
        assert_eq!(decode_lease(&encode_lease(&l)).unwrap(), l);
        assert_eq!(decode_lease_key(&l.id.to_be_bytes()).unwrap(), l.id);
        let m = decode_member(
            b"886b03c4ae679a15",
            br#"{"id":9829954754940738069,"peerURLs":["http://127.0.0.1:24800"],"name":"peer0"}"#,
        )
        .unwrap();
        assert_eq!(m.id, 0x886b03c4ae679a15);
        assert_eq!(m.name.as_deref(), Some("peer0"));
        assert!(decode_member(b"886b03c4ae679a16", br#"{"id":9829954754940738069}"#).is_err());
        assert!(decode_member(b"zz", b"{}").is_err());
    }

    #[test]
    fn decoders_survive_mutations() {
        // Deterministic mutations of real-shaped values (the fuzz target's stable twin).
        let kv = encode_key_value(&KeyValue {
            key: b"/registry/pods/ns-1/p".to_vec(),
            create_revision: 300,
            mod_revision: 70_000,
            version: 3,
            value: vec![0x42; 200],
            lease: 77,
        });
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut m = kv.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() % m.len() as u64) as usize;
                m[i] = next() as u8;
            }
            let cut = (next() % (m.len() as u64 + 1)) as usize;
            crate::fuzzing::run_decoders(&m[..cut]);
            crate::fuzzing::run_decoders(&m);
        }
        for n in 0..64 {
            let b: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            crate::fuzzing::run_decoders(&b);
        }
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
