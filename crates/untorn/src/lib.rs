//! untorn: an embedded, transactional key/value store whose files survive power loss,
//! torn page writes, lying disks and bit rot.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod check;
pub mod error;
pub mod format;
pub mod report;
pub mod storage;

pub use error::{CorruptionKind, Error, Result};
pub use storage::{FileStorage, MemoryStorage, Storage};
