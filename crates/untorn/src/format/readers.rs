//! The reader table (`NAME.readers`): one 4096-byte block that read-only handles in other
//! processes register in, so that the writer keeps the pages their snapshots can reach.
//! It is not part of the database (deleting it while no process has the database open
//! loses nothing); its layout is here because only `format` knows byte offsets.
//!
//! ```text
//! 0        4        8                16               24       28       32        64
//! +--------+--------+----------------+----------------+--------+--------+---------+
//! |  crc   |version |   "UTREADRS"   |    changes     | slots  |reserved| zero    |
//! +--------+--------+----------------+----------------+--------+--------+---------+
//! slot i at 64 + 32 * i (126 slots):
//! 0                8                16               24       28       32
//! +----------------+----------------+----------------+--------+--------+
//! |      pid       |   pinned txid  |     nonce      | state  |reserved|
//! +----------------+----------------+----------------+--------+--------+
//! ```
//!
//! - `crc` (u32): CRC32C over `[4, 4096)`; `version` (u32) = 1; `changes` (u64): +1 on
//!   every write of the table; `slots` (u32) = 126.
//! - A slot's `state` (u32) is 0 free or 1 in use; `pinned txid` 0 means "opening": the
//!   reader has not chosen its snapshot yet and pins every page the writer has freed.
//!   `pid` and `nonce` say who claimed it (the nonce tells two claims by one pid apart).

use super::bytes::{get_u32, get_u64, put_bytes, put_u32, put_u64};

/// Bytes of the table.
pub const READER_TABLE_BYTES: usize = 4096;
/// Slots in the table.
pub const READER_SLOTS: usize = READER_SLOTS_U32 as usize;
const READER_SLOTS_U32: u32 = 126;

const MAGIC: &[u8; 8] = b"UTREADRS";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 64;
/// Bytes [`ReaderTable::peek_changes`] needs.
pub const READER_TABLE_HEADER_BYTES: usize = 24;
const SLOT_BYTES: usize = 32;

/// One reader's registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReaderSlot {
    pub pid: u64,
    /// The snapshot txid the reader reads; 0 while it opens (pins everything).
    pub pinned_txid: u64,
    pub nonce: u64,
    pub in_use: bool,
}

/// The decoded table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderTable {
    pub changes: u64,
    pub slots: Vec<ReaderSlot>,
}

impl Default for ReaderTable {
    fn default() -> Self {
        ReaderTable {
            changes: 0,
            slots: vec![ReaderSlot::default(); READER_SLOTS],
        }
    }
}

impl ReaderTable {
    /// Decodes a table; `None` if it does not verify (torn while read, damaged, not a
    /// reader table).
    pub fn decode(b: &[u8]) -> Option<ReaderTable> {
        if b.len() != READER_TABLE_BYTES
            || crc32c::crc32c(b.get(4..)?) != get_u32(b, 0)?
            || get_u32(b, 4)? != VERSION
            || b.get(8..16)? != MAGIC
            || get_u32(b, 24)? != READER_SLOTS_U32
        {
            return None;
        }
        let mut slots = Vec::with_capacity(READER_SLOTS);
        for i in 0..READER_SLOTS {
            let at = HEADER_BYTES + i * SLOT_BYTES;
            let state = get_u32(b, at + 24)?;
            if state > 1 {
                return None;
            }
            slots.push(ReaderSlot {
                pid: get_u64(b, at)?,
                pinned_txid: get_u64(b, at + 8)?,
                nonce: get_u64(b, at + 16)?,
                in_use: state == 1,
            });
        }
        Some(ReaderTable {
            changes: get_u64(b, 16)?,
            slots,
        })
    }

    /// The `changes` counter of a table's first [`READER_TABLE_HEADER_BYTES`] bytes, read
    /// without verifying the rest (`None` if they are not a reader table's). The writer
    /// reads the whole table only when it changed.
    pub fn peek_changes(b: &[u8]) -> Option<u64> {
        (get_u32(b, 4)? == VERSION && b.get(8..16)? == MAGIC).then_some(())?;
        get_u64(b, 16)
    }

    /// Encodes the table; `None` if it holds more slots than the layout has.
    pub fn encode(&self) -> Option<Vec<u8>> {
        if self.slots.len() != READER_SLOTS {
            return None;
        }
        let mut b = vec![0u8; READER_TABLE_BYTES];
        let mut ok = put_u32(&mut b, 4, VERSION)
            && put_bytes(&mut b, 8, MAGIC)
            && put_u64(&mut b, 16, self.changes)
            && put_u32(&mut b, 24, READER_SLOTS_U32);
        for (i, s) in self.slots.iter().enumerate() {
            let at = HEADER_BYTES + i * SLOT_BYTES;
            ok = ok
                && put_u64(&mut b, at, s.pid)
                && put_u64(&mut b, at + 8, s.pinned_txid)
                && put_u64(&mut b, at + 16, s.nonce)
                && put_u32(&mut b, at + 24, u32::from(s.in_use));
        }
        let crc = crc32c::crc32c(b.get(4..)?);
        (ok && put_u32(&mut b, 0, crc)).then_some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_round_trips_and_any_flipped_byte_fails() {
        let mut t = ReaderTable {
            changes: 7,
            ..ReaderTable::default()
        };
        t.slots[3] = ReaderSlot {
            pid: 42,
            pinned_txid: 9,
            nonce: 5,
            in_use: true,
        };
        let b = t.encode().unwrap();
        assert_eq!(ReaderTable::decode(&b), Some(t));
        for at in [0, 5, 20, 64 + 3 * 32 + 8, 4095] {
            let mut m = b.clone();
            m[at] ^= 1;
            assert_eq!(ReaderTable::decode(&m), None, "flip at {at}");
        }
        assert_eq!(ReaderTable::decode(&b[..100]), None);
    }
}
