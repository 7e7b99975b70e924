//! Raw access for tools: page formats, the meta slots, the integrity checker's sources
//! and page walks, the report vocabulary the `untorn` CLI renders, salvage, and the
//! fuzzing entry points.
//!
//! **No stability guarantee.** Everything here exists for the crates of this workspace
//! (the `untorn` CLI, `untorn-bbolt`, the fault-injection simulator, the fuzz targets)
//! and may change in any release, patch releases included. Applications use the crate
//! root: [`crate::Database`], [`crate::Database::check`] and [`crate::Database::stats`]
//! are the stable way to verify a database.

use crate::tx::ReadTx;

/// On-disk encodings: pages, metas, nodes, overflow extents, the freelist, journal
/// records, checksums (the only module that knows byte offsets).
pub mod format {
    pub use crate::format::*;
}

/// The two meta slots: choosing the newest valid one, recognising a file.
pub mod superblock {
    pub use crate::superblock::*;
}

/// The checker over any [`check::CheckSource`]: a read snapshot or the raw file.
pub mod check {
    pub use crate::check::*;
}

/// The report vocabulary shared with `untorn-bbolt` and the CLI: findings, page
/// descriptions, stats, dump items, salvage summaries.
pub mod report {
    pub use crate::report::*;
}

/// Reading everything that verifies out of a database.
pub mod salvage {
    pub use crate::salvage::*;
}

/// Surgery on untorn files (revert the meta, copy/clear pages, rebuild the freelist,
/// update the meta), on a copy the caller stages.
pub mod surgery {
    pub use crate::surgery::*;
}

/// Every bound: user limits and the bounds of every walk over file contents.
pub mod limits {
    pub use crate::limits::*;
}

/// Entry points of the fuzz targets and mutation tests, the test PRNG and the
/// reference model.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::fuzzing::*;
}

/// A read snapshot as the checker's page source (`check::check`, `check::stats`,
/// `check::page_infos`, `check::describe_page`).
pub fn check_source<'a>(tx: &'a ReadTx<'_>) -> &'a dyn check::CheckSource {
    tx.check_source()
}
