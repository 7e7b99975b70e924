//! The interface every benchmarked engine implements: write transactions, read
//! snapshots, compaction. Kept object-safe and coarse (one virtual call per operation,
//! far below the cost of a lookup) so the workload code is written once.

use std::path::{Path, PathBuf};

/// Errors of the harness and the engines behind it.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of the harness.
pub type Result<T> = std::result::Result<T, Error>;

/// Engine-wide settings, the same for every engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// Each engine gets its own empty directory.
    pub dir: PathBuf,
    /// Page/block cache budget for engines that have one (LMDB uses the OS page cache).
    pub cache_size_bytes: usize,
}

/// Inside a write transaction.
pub trait Writer {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;
    fn remove(&mut self, key: &[u8]) -> Result<()>;
}

/// Inside a read snapshot.
#[allow(clippy::len_without_is_empty)] // the phases only ever need the count
pub trait Reader {
    /// Looks `key` up and returns [`crate::data::digest`] of its value.
    fn get(&mut self, key: &[u8]) -> Result<Option<u64>>;
    /// Reads up to `n` entries in key order from the first key `>= start`; returns how
    /// many it read and the sum of their value digests.
    fn scan(&mut self, start: &[u8], n: usize) -> Result<(usize, u64)>;
    /// Number of keys.
    fn len(&mut self) -> Result<u64>;
}

/// One closure run inside a write transaction.
pub type WriteFn<'a> = dyn FnMut(&mut dyn Writer) -> Result<()> + 'a;
/// One closure run inside a read snapshot.
pub type ReadFn<'a> = dyn FnMut(&mut dyn Reader) -> Result<()> + 'a;

/// A database under test, open in `Config::dir`.
pub trait Engine: Sync {
    /// Runs `f` in one write transaction and commits it: durably (synced before return)
    /// when `durable`, otherwise with the engine's no-sync mode.
    fn write(&mut self, durable: bool, f: &mut WriteFn<'_>) -> Result<()>;
    /// Runs `f` on one read snapshot. Called from many threads at once.
    fn read(&self, f: &mut ReadFn<'_>) -> Result<()>;
    /// The engine's own compaction (or the closest equivalent, see each engine's doc).
    fn compact(&mut self) -> Result<()>;
    /// The directory whose files make up the database.
    fn dir(&self) -> &Path;
}

/// Total apparent size of the files under `dir` (what `du --apparent-size` reports).
pub fn dir_size_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    // Bounded by the files the engine created; no symlinks are followed.
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}
