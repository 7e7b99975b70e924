//! Salvage: reading everything that verifies out of a database.
//!
//! - [`salvage_file`] / [`salvage_storage`] (page-level): every page of the data file and
//!   every record of its journals, whether or not the engine can open the file; what
//!   `untorn salvage` uses for untorn files. Its passes: `scan`, `rebuild`, `candidates`,
//!   `emit` (`pages` describes them); `options` holds its options and memory budget.
//! - [`salvage_snapshot`]: a read snapshot of a database the engine opened, walked with
//!   cursors (stops a bucket at its first damaged page).

mod candidates;
mod emit;
mod options;
mod pages;
mod rebuild;
mod scan;
mod snapshot;

pub use emit::LOST_AND_FOUND;
pub use options::{SalvageOptions, SalvageProgress, DEFAULT_MEMORY_BUDGET};
pub use pages::{recognise_file, salvage_file, salvage_storage};
pub use snapshot::salvage_snapshot;
