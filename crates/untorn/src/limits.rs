//! Every bound the engine puts on user input and on what it reads from a file, in one
//! place. A walk over on-disk structures is bounded by one of these, never by the file.
//!
//! The user-facing limits ([`MAX_KEY_SIZE`], [`MAX_VALUE_SIZE`], [`MAX_BUCKET_DEPTH`])
//! are re-exported at the crate root; the walk bounds are for the engine and the checker.

use crate::error::{Error, Result};

/// Largest key (and bucket name) in bytes. A key must also fit a leaf extent, which it
/// does: an extent may span many pages.
pub const MAX_KEY_SIZE: usize = 32 * 1024;

/// Largest value in bytes: an overflow extent of at most 1 GiB, header included.
pub const MAX_VALUE_SIZE: usize = (1 << 30) - 4096;

/// Deepest bucket nesting: a top-level bucket is at depth 1, the deepest at this depth.
/// Creating a bucket below it is `Error::TooDeep`; reading or checking a file whose
/// buckets nest deeper reports the file as damaged.
pub const MAX_BUCKET_DEPTH: usize = 256;

/// Deepest B+tree, in levels below a bucket's root. With a fan-out of at least two this
/// is far beyond any real file, so a deeper walk means a cycle or damage.
pub const MAX_TREE_DEPTH: usize = 64;

/// Largest extent (a multi-page node or an overflow value), in pages: 1 GiB of 4 KiB pages.
pub const MAX_EXTENT_PAGES: u32 = 1 << 18;

/// Largest extent the checker reads, in bytes: a maximal value plus its header and a
/// margin, so that a damaged reference cannot make it allocate more.
pub const MAX_EXTENT_BYTES: u64 = (1 << 30) + (1 << 17);

/// Most node frames on the checker's stack at once (bounds memory on adversarial input).
pub const MAX_STACK_FRAMES: usize = 16 * 1024;

/// How far the high-water mark may run past the end of the data file (pages that still
/// live only in the journal) before the checker refuses it as absurd.
pub const MAX_PAGES_BEYOND_FILE: u64 = 1 << 24;

/// Most leaf steps in one cursor move (empty leaves are skipped on the way).
pub const MAX_LEAF_STEPS: usize = 1 << 40;

/// Most pages one bucket delete visits while freeing a tree.
pub const MAX_TREE_PAGES: usize = 1 << 32;

/// Most nested buckets one bucket delete frees.
pub const MAX_BUCKETS_PER_DELETE: usize = 1 << 24;

/// Checks a key (or bucket name) against the key limits: at least one byte, at most
/// [`MAX_KEY_SIZE`].
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::KeyEmpty);
    }
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::KeyTooLarge(key.len()));
    }
    Ok(())
}
