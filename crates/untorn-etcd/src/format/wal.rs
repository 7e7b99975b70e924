//! etcd's write-ahead log: record framing, the CRC chain, `walpb.Record`,
//! `walpb.Snapshot` and `raftpb.Entry`.
//!
//! A data dir's `member/wal/` holds files named `{seq:016x}-{index:016x}.wal` (`seq`
//! counts the files, `index` is the raft index the file starts after). Each file is
//! preallocated (64 MB) and holds frames back to back:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 8 | length field, little-endian: bits 0..56 the record's length; when bit 63 is set, bits 56..59 the padding after the record |
//! | 8 | length | the record, a `walpb.Record` (protobuf) |
//! | 8 + length | padding | zeros, so that every frame starts 8-byte aligned |
//!
//! A length field of zero ends the records (the rest of the file is preallocated zeros).
//!
//! `walpb.Record`: type = 1 (int64), crc = 2 (uint32, varint), data = 3 (bytes). Types: 1
//! metadata (`etcdserverpb.Metadata`), 2 entry (`raftpb.Entry`), 3 state
//! (`raftpb.HardState`), 4 crc, 5 snapshot (`walpb.Snapshot`: index = 1, term = 2, both
//! uint64).
//!
//! **The CRC chain.** Each record's `crc` is the CRC-32C (Castagnoli) of its data
//! appended to the running CRC of every record before it, across files: `crc_n =
//! crc32c_append(crc_{n-1}, data_n)`. A crc record (type 4, first in every file) carries
//! the running CRC at the file boundary and is not itself chained; the first file's is
//! 0.
//!
//! `raftpb.Entry`: Type = 1 (enum: 0 normal, 1 conf change, 2 conf change v2), Term = 2,
//! Index = 3 (uint64 varints), Data = 4 (bytes; for a normal entry an
//! `etcdserverpb.InternalRaftRequest`, see [`super::request`]). An entry with an index
//! already in the log replaces that entry and every one after it (a new leader's log
//! wins).

use super::proto::{want_bytes, want_varint, DecodeError, Fields};

/// Bytes of a frame's length field.
pub const FRAME_LEN_BYTES: usize = 8;
/// Frames start at multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// Bits of the length field that hold the record's length.
const LEN_MASK: u64 = (1 << 56) - 1;
/// Set when the frame has padding.
const PADDED: u64 = 1 << 63;

/// Record type: `etcdserverpb.Metadata` (node and cluster id).
pub const RECORD_METADATA: i64 = 1;
/// Record type: a `raftpb.Entry`.
pub const RECORD_ENTRY: i64 = 2;
/// Record type: a `raftpb.HardState`.
pub const RECORD_STATE: i64 = 3;
/// Record type: the running CRC at a file boundary.
pub const RECORD_CRC: i64 = 4;
/// Record type: a `walpb.Snapshot` (the raft index and term the log continues from).
pub const RECORD_SNAPSHOT: i64 = 5;

/// One frame: where its record lies in the file and where the next frame starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the record's bytes.
    pub start: usize,
    /// Offset after the record's bytes (before the padding).
    pub end: usize,
    /// Offset of the next frame.
    pub next: usize,
}

/// Reads the frame at `at` of a WAL file's bytes: `Ok(None)` at the end of the records
/// (a zero length field, or fewer than 8 bytes left), an error when the frame runs past
/// the end of the file or is malformed.
pub fn read_frame(buf: &[u8], at: usize) -> Result<Option<Frame>, DecodeError> {
    let Some(field) = at
        .checked_add(FRAME_LEN_BYTES)
        .and_then(|end| buf.get(at..end))
    else {
        return Ok(None);
    };
    let field: [u8; FRAME_LEN_BYTES] = field
        .try_into()
        .map_err(|_| DecodeError::Fixed { offset: at })?;
    let raw = u64::from_le_bytes(field);
    if raw == 0 {
        return Ok(None);
    }
    let len = raw & LEN_MASK;
    let pad = if raw & PADDED != 0 {
        (raw >> 56) & 0x7
    } else {
        0
    };
    let start = at + FRAME_LEN_BYTES;
    let available = buf.len().saturating_sub(start);
    let too_long = || DecodeError::Length {
        offset: start,
        field: 0,
        len,
        available,
    };
    let end = usize::try_from(len)
        .ok()
        .and_then(|n| start.checked_add(n))
        .filter(|&e| e <= buf.len())
        .ok_or_else(too_long)?;
    let next = usize::try_from(pad)
        .ok()
        .and_then(|p| end.checked_add(p))
        .ok_or_else(too_long)?;
    if next % FRAME_ALIGN != 0 {
        return Err(DecodeError::Text(format!(
            "byte {at}: frame of {len} bytes with {pad} bytes of padding ends unaligned at {next}"
        )));
    }
    Ok(Some(Frame { start, end, next }))
}

/// A decoded `walpb.Record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Record type (`RECORD_*`).
    pub kind: i64,
    /// The stored CRC.
    pub crc: u32,
    /// The payload.
    pub data: &'a [u8],
}

/// Decodes a `walpb.Record`.
pub fn decode_record(b: &[u8]) -> Result<Record<'_>, DecodeError> {
    let mut r = Record {
        kind: 0,
        crc: 0,
        data: &[],
    };
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => r.kind = want_varint(at, field, v)? as i64,
            // A uint32 varint: protobuf keeps the low 32 bits.
            2 => r.crc = (want_varint(at, field, v)? & 0xffff_ffff) as u32,
            3 => r.data = want_bytes(at, field, v)?,
            _ => {}
        }
    }
    Ok(r)
}

/// The running CRC after `data`: CRC-32C of `data` appended to `crc`.
pub fn chain_crc(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// `walpb.Snapshot`: the raft position a log continues from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalSnapshot {
    /// Raft index.
    pub index: u64,
    /// Raft term.
    pub term: u64,
}

/// Decodes a `walpb.Snapshot`.
pub fn decode_wal_snapshot(b: &[u8]) -> Result<WalSnapshot, DecodeError> {
    let mut s = WalSnapshot::default();
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => s.index = want_varint(at, field, v)?,
            2 => s.term = want_varint(at, field, v)?,
            _ => {}
        }
    }
    Ok(s)
}

/// What a raft entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An application request (`etcdserverpb.InternalRaftRequest`), or empty (a new
    /// leader's first entry).
    Normal,
    /// A membership change.
    ConfChange,
    /// A membership change (v2 form).
    ConfChangeV2,
    /// A type this decoder does not know.
    Unknown(u64),
}

/// A decoded `raftpb.Entry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Raft term.
    pub term: u64,
    /// Raft index.
    pub index: u64,
    /// What it carries.
    pub kind: EntryKind,
    /// The payload.
    pub data: &'a [u8],
}

/// Decodes a `raftpb.Entry`.
pub fn decode_entry(b: &[u8]) -> Result<Entry<'_>, DecodeError> {
    let mut e = Entry {
        term: 0,
        index: 0,
        kind: EntryKind::Normal,
        data: &[],
    };
    for f in Fields::new(b) {
        let (at, field, v) = f?;
        match field {
            1 => {
                e.kind = match want_varint(at, field, v)? {
                    0 => EntryKind::Normal,
                    1 => EntryKind::ConfChange,
                    2 => EntryKind::ConfChangeV2,
                    n => EntryKind::Unknown(n),
                }
            }
            2 => e.term = want_varint(at, field, v)?,
            3 => e.index = want_varint(at, field, v)?,
            4 => e.data = want_bytes(at, field, v)?,
            _ => {}
        }
    }
    Ok(e)
}

/// Parses a WAL file name `{seq:016x}-{index:016x}.wal` into (seq, index).
pub fn parse_wal_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (seq, index) = stem.split_once('-')?;
    if seq.len() != 16 || index.len() != 16 {
        return None;
    }
    Some((
        u64::from_str_radix(seq, 16).ok()?,
        u64::from_str_radix(index, 16).ok()?,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::proto::{put_bytes_field, put_int_field};
    use super::*;

    /// Frames `record` as etcd's encoder does.
    fn frame(record: &[u8]) -> Vec<u8> {
        let pad = (8 - record.len() % 8) % 8;
        let mut field = record.len() as u64;
        if pad != 0 {
            field |= (0x80 | pad as u64) << 56;
        }
        let mut out = field.to_le_bytes().to_vec();
        out.extend_from_slice(record);
        out.extend(std::iter::repeat_n(0u8, pad));
        out
    }

    fn record(kind: i64, crc: u32, data: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        put_int_field(&mut r, 1, kind);
        put_int_field(&mut r, 2, i64::from(crc));
        put_bytes_field(&mut r, 3, data);
        r
    }

    #[test]
    fn frames_records_and_entries_roundtrip() {
        let mut entry = Vec::new();
        put_int_field(&mut entry, 2, 3);
        put_int_field(&mut entry, 3, 42);
        put_bytes_field(&mut entry, 4, b"request");
        let crc = chain_crc(0, &entry);
        let mut file = frame(&record(RECORD_CRC, 0, &[]));
        file.extend(frame(&record(RECORD_ENTRY, crc, &entry)));
        file.extend([0u8; 64]);
        let f0 = read_frame(&file, 0).unwrap().unwrap();
        let r0 = decode_record(&file[f0.start..f0.end]).unwrap();
        assert_eq!(r0.kind, RECORD_CRC);
        let f1 = read_frame(&file, f0.next).unwrap().unwrap();
        assert_eq!(f1.next % 8, 0);
        let r1 = decode_record(&file[f1.start..f1.end]).unwrap();
        assert_eq!((r1.kind, r1.crc), (RECORD_ENTRY, crc));
        let e = decode_entry(r1.data).unwrap();
        assert_eq!((e.term, e.index, e.kind), (3, 42, EntryKind::Normal));
        assert_eq!(e.data, b"request");
        assert_eq!(read_frame(&file, f1.next).unwrap(), None);
        // A frame running past the end of the file is an error, never a panic.
        for cut in 0..file.len() {
            let _ = read_frame(&file[..cut], f0.next);
        }
        assert!(read_frame(&file[..f1.end - 1], f0.next).is_err());
        // The chain continues across records.
        assert_eq!(
            chain_crc(chain_crc(0, b"ab"), b"cd"),
            crc32c::crc32c(b"abcd")
        );
    }

    #[test]
    fn wal_names() {
        assert_eq!(
            parse_wal_name("0000000000000001-00000000000003e8.wal"),
            Some((1, 1000))
        );
        assert_eq!(parse_wal_name("0-0.wal"), None);
        assert_eq!(
            parse_wal_name("0000000000000001-00000000000003e8.tmp"),
            None
        );
    }
}
