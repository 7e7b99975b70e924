//! Salvage: reading everything that verifies out of a database.
//!
//! - [`salvage_file`] / [`salvage_storage`] (page-level): every page of the data file and
//!   every record of its journals, whether or not the engine can open the file; what
//!   `untorn salvage` uses for untorn files.
//! - [`salvage_snapshot`]: a read snapshot of a database the engine opened, walked with
//!   cursors (stops a bucket at its first damaged page).

mod pages;
mod snapshot;

pub use pages::{
    recognise_file, salvage_file, salvage_storage, SalvageOptions, SalvageProgress, LOST_AND_FOUND,
};
pub use snapshot::salvage_snapshot;
