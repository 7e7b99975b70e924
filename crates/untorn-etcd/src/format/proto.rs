//! The protobuf wire format, read defensively: [`Fields`] walks one message's fields
//! (every varint bounded to 10 bytes, every length checked against what is left), and
//! the small writers the encoders use. [`DecodeError`] is the error of every etcd
//! decoder of this crate: it names the byte offset of what did not decode.
//!
//! Wire types: 0 varint, 1 fixed 64-bit (little-endian), 2 length-delimited, 5 fixed
//! 32-bit (little-endian); a tag is the varint `field << 3 | wire type`. Groups (3, 4)
//! are refused, as etcd's generated decoders never meet them.

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

/// Wire type: varint.
pub(super) const WT_VARINT: u8 = 0;
/// Wire type: 64-bit fixed.
pub(super) const WT_FIXED64: u8 = 1;
/// Wire type: length-delimited.
pub(super) const WT_LEN: u8 = 2;
/// Wire type: 32-bit fixed.
pub(super) const WT_FIXED32: u8 = 5;

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

pub(super) fn read_varint(b: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
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

pub(super) fn want_varint(at: usize, field: u64, v: WireValue<'_>) -> Result<u64, DecodeError> {
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

pub(super) fn want_bytes<'a>(
    at: usize,
    field: u64,
    v: WireValue<'a>,
) -> Result<&'a [u8], DecodeError> {
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

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn put_tag(out: &mut Vec<u8>, field: u64, wire_type: u8) {
    put_varint(out, (field << 3) | u64::from(wire_type));
}

pub(super) fn put_int_field(out: &mut Vec<u8>, field: u64, v: i64) {
    if v != 0 {
        put_tag(out, field, WT_VARINT);
        put_varint(out, v as u64);
    }
}

pub(super) fn put_bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    if !b.is_empty() {
        put_tag(out, field, WT_LEN);
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
}
