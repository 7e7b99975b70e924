//! What a surgery refuses, typed.

use crate::error::Error;

/// Why a surgery did not run. Nothing was written when one of these is returned by an
/// argument check; an engine error after writing began leaves the (copied) storages to
/// be discarded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SurgeryError {
    /// The page id is a meta slot or at or beyond the high-water mark.
    #[error("page {page} is not a data page of this file (data pages are 2..{high_water})")]
    PageOutOfRange {
        /// The page asked for.
        page: u64,
        /// The base meta's high-water mark.
        high_water: u64,
    },
    /// No verified page of the tree references the page: nothing vouches for it.
    #[error("page {page} is not referenced by any readable page of the tree (it is free, leaked or below a damaged page)")]
    NotReachable {
        /// The page asked for.
        page: u64,
    },
    /// The page is of a kind the operation does not apply to.
    #[error("page {page} is a {found} page; {op} needs {expected}")]
    WrongPageKind {
        /// The page.
        page: u64,
        /// Its kind as read (or as its parent says).
        found: String,
        /// What the operation needs.
        expected: &'static str,
        /// The operation.
        op: &'static str,
    },
    /// The page does not verify, and the operation needs its contents.
    #[error("page {page} does not verify: {why}")]
    Unreadable {
        /// The page.
        page: u64,
        /// Why.
        why: String,
    },
    /// The element range is empty or beyond the page's elements.
    #[error(
        "elements [{from}, {to}) are not a non-empty range inside page {page}'s {count} elements"
    )]
    ElementsOutOfRange {
        /// The page.
        page: u64,
        /// First element to remove.
        from: usize,
        /// One past the last.
        to: usize,
        /// Elements on the page.
        count: usize,
    },
    /// Copying would change the extent the parent reserved for the destination.
    #[error("page {src} is an extent of {src_pages} pages but the parent of page {dst} reserves {dst_pages}: copy-page keeps extent sizes")]
    ExtentMismatch {
        /// Source page.
        src: u64,
        /// Its extent length.
        src_pages: u32,
        /// Destination page.
        dst: u64,
        /// The destination's extent length.
        dst_pages: u32,
    },
    /// The meta slots do not allow the operation (which slot, why).
    #[error("{0}")]
    Meta(String),
    /// The database cannot be brought to a settled state (its journal replayed) first.
    #[error("the database cannot be opened to replay its journal before surgery: {0} (try `untorn surgery revert-meta` or `untorn recover --rollback` on a copy)")]
    Unsettled(Error),
    /// The requested change would give a file that fails check (the reasons), and it was
    /// not forced.
    #[error("refused: {0} (use --force to write it anyway)")]
    Refused(String),
    /// The tree is damaged in a way the operation cannot work around (says where).
    #[error("{0}")]
    Damaged(String),
    /// An engine error (I/O, or an internal invariant).
    #[error(transparent)]
    Engine(#[from] Error),
}
