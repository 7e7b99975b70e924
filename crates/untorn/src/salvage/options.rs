//! What a page-level salvage may do: its progress callback, whether it refills lost
//! ranges, and its memory budget, split here between the passes.
//!
//! The budget covers salvage's own buffers and indexes: the scan's read windows, the
//! per-extent index and the live walk's sets (charged per entry as they grow), and the
//! candidates sorted in memory or merged from spilled runs. Not covered: the one value
//! being emitted (an overflow value is read whole, as `emit` receives it), the report
//! (its lists grow with the ranges lost and the keys possibly older) and what the
//! caller does with each item.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::format::RECORD_HEADER_SIZE;

/// The default memory budget: 256 MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;

/// Where a salvage is, for a progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalvageProgress {
    /// `"data"`, `"journal"`, `"rebuild"` or `"merge"` (only when candidates spilled to
    /// a temporary file).
    pub phase: &'static str,
    /// Bytes (scan phases), buckets (rebuild) or runs (merge) done.
    pub done: u64,
    /// Of this many.
    pub total: u64,
}

/// Options of a page-level salvage.
pub struct SalvageOptions<'a> {
    /// Called between chunks; returning `false` cancels the salvage (`Error::Cancelled`).
    pub progress: Option<&'a mut dyn FnMut(&SalvageProgress) -> bool>,
    /// Use only the pages the newest commit references (no refill from unreferenced
    /// pages): the newest state minus its damaged subtrees, which are reported lost.
    /// What `untorn dump --skip-damaged` shows.
    pub live_only: bool,
    /// Bytes of memory salvage may use (default [`DEFAULT_MEMORY_BUDGET`]). Candidates
    /// that do not fit are sorted in runs on a temporary file; a budget too small for the
    /// buffers or the per-page index is `Error::MemoryBudget`.
    pub memory_budget: u64,
    /// Where temporary files go (default: the system's temporary directory). They are
    /// removed when the salvage ends, on success and on error.
    pub temp_dir: Option<PathBuf>,
}

impl Default for SalvageOptions<'_> {
    fn default() -> Self {
        SalvageOptions {
            progress: None,
            live_only: false,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            temp_dir: None,
        }
    }
}

impl std::fmt::Debug for SalvageOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalvageOptions")
            .field("progress", &self.progress.is_some())
            .field("live_only", &self.live_only)
            .field("memory_budget", &self.memory_budget)
            .field("temp_dir", &self.temp_dir)
            .finish()
    }
}

impl SalvageOptions<'_> {
    pub(super) fn report(&mut self, phase: &'static str, done: u64, total: u64) -> Result<()> {
        if let Some(cb) = self.progress.as_mut() {
            if !cb(&SalvageProgress { phase, done, total }) {
                return Err(Error::Cancelled);
            }
        }
        Ok(())
    }
}

/// Most pages read per chunk of the data-file scan.
const CHUNK_PAGES_MAX: u64 = 256;
/// Most bytes read per chunk of the journal scan.
const JOURNAL_CHUNK_MAX: u64 = 1 << 20;
/// Bytes charged per entry of the walk's sets and lists (the entry and its share of the
/// table or vector holding it).
pub(super) const INDEX_ENTRY_BYTES: u64 = 128;
/// Bytes charged per entry of the set of pages the live walk used (16 bytes in a hash
/// table at most half full after it grows).
pub(super) const USED_ENTRY_BYTES: u64 = 40;
/// Bytes charged per candidate held in memory on top of its encoded size: the record
/// (twice: the vector holding it may double), two allocations' headers.
pub(super) const CANDIDATE_OVERHEAD_BYTES: u64 =
    2 * std::mem::size_of::<crate::format::SpillRecord>() as u64 + 32;

/// The memory budget, split between the passes.
#[derive(Debug)]
pub(super) struct Budget {
    total: u64,
    /// Pages per chunk of the data-file scan.
    pub chunk_pages: u64,
    /// Bytes per chunk of the journal scan (whole sectors).
    pub journal_chunk: u64,
    /// A buffer that holds any candidate record (a leaf entry is smaller than a page).
    pub record_max: u64,
    /// Bytes the scan buffers take.
    io: u64,
    /// Bytes charged to the index and the walk so far.
    index: u64,
}

impl Budget {
    /// The split for page size `ps`, or `Error::MemoryBudget` when the scan's buffers and
    /// a minimal sort (two run readers) do not fit.
    pub fn new(total: u64, ps: usize) -> Result<Budget> {
        let ps = ps as u64;
        let sector = RECORD_HEADER_SIZE as u64;
        let chunk_pages = (total / 16 / ps).clamp(1, CHUNK_PAGES_MAX);
        let journal_chunk = (total / 16 / sector * sector).clamp(sector, JOURNAL_CHUNK_MAX);
        let record_max = 2 * ps + 64;
        let b = Budget {
            total,
            chunk_pages,
            journal_chunk,
            record_max,
            io: chunk_pages * ps + journal_chunk + ps,
            index: 0,
        };
        let needed = b.io + b.min_sort();
        if needed > total {
            return Err(Error::MemoryBudget {
                budget: total,
                what: "the scan buffers and a minimal sort",
                needed,
            });
        }
        Ok(b)
    }

    /// Smallest memory the sort works with: a run writer and two run readers.
    fn min_sort(&self) -> u64 {
        3 * self.record_max
    }

    /// Charges `bytes` of index or walk state; `Error::MemoryBudget` when what is
    /// charged leaves less than a minimal sort.
    pub fn charge(&mut self, bytes: u64, what: &'static str) -> Result<()> {
        self.index = self.index.saturating_add(bytes);
        let needed = self
            .io
            .saturating_add(self.index)
            .saturating_add(self.min_sort());
        if needed > self.total {
            return Err(Error::MemoryBudget {
                budget: self.total,
                what,
                needed,
            });
        }
        Ok(())
    }

    /// Returns `bytes` charged before (a buffer freed).
    pub fn release(&mut self, bytes: u64) {
        self.index = self.index.saturating_sub(bytes);
    }

    /// Bytes left for candidates (in memory, or as run buffers while merging).
    pub fn sort_bytes(&self) -> u64 {
        self.total
            .saturating_sub(self.io)
            .saturating_sub(self.index)
            .max(self.min_sort())
    }
}
