//! What the checker reads: one consistent snapshot of a database.
//!
//! The engine implements [`CheckSource`] for a registered read snapshot (so pages the
//! snapshot can reach are not reused while the check runs); tools may implement it over
//! a raw file. The checker verifies everything itself from raw bytes.

use std::io;

use crate::format::{Meta, PageId};

/// A read-only view of one snapshot of an untorn database, as raw bytes.
pub trait CheckSource {
    /// Bytes per page.
    fn page_size(&self) -> usize;
    /// The meta of the snapshot being checked (txid, root, freelist, high-water mark).
    fn meta(&self) -> Meta;
    /// Which on-disk meta slot (0 or 1) holds the newest valid meta, if either does.
    /// The snapshot's meta may be newer (from the journal).
    fn active_slot(&self) -> Option<u64>;
    /// Raw bytes of a meta slot (0 or 1) as on storage, one page.
    fn read_raw_meta(&self, slot: u64) -> io::Result<Vec<u8>>;
    /// Raw bytes of `extent_pages` pages starting at `page_id` as the snapshot sees them
    /// (journal images not yet checkpointed first, then the data file). Not verified.
    fn read_raw(&self, page_id: PageId, extent_pages: u32) -> io::Result<Vec<u8>>;
    /// Length of the data file in pages (pages beyond it may still live in the journal).
    fn file_pages(&self) -> io::Result<u64>;
    /// The snapshot's free page runs when they are not the freelist extent's: the extent
    /// is written at checkpoints only, and the commits since changed the free set. `None`:
    /// the freelist extent lists them.
    fn free_runs(&self) -> Option<Vec<(u64, u64)>> {
        None
    }
    /// Why a damaged meta slot is known not to hold anything newer than the snapshot (the
    /// superblock's evidence), if it is; a damaged slot without such a note is an error.
    fn damaged_slot_note(&self, slot: u64) -> Option<String> {
        let _ = slot;
        None
    }
}
