//! The integrity checker: one read-only, linear pass over a snapshot that verifies every
//! page, reference, key bound, bucket header, the freelist and both metas, and reports
//! what it finds as [`Report`](crate::report::Report) findings (see `docs/check.md`).
//!
//! **Invariant:** check never writes. It reads only through [`CheckSource`].
//! **Invariant:** the walk is iterative (explicit stack), uses a per-page flag map sized
//! by the (bounded) high-water mark, and bounds tree depth, bucket nesting, stack size
//! and extent sizes; damaged input yields findings, never a panic or a loop.

mod describe;
mod flags;
mod freelist;
mod metas;
mod options;
mod pages;
mod raw;
mod source;
mod tree;
mod walk;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod tests;

pub use crate::report::Stats;
pub use describe::describe_page;
pub use flags::PageFlags;
pub use options::{CheckOptions, CheckProgress};
pub use raw::{check_storage, check_storage_with_journal, fuzz_entry, RawSource};
pub use source::CheckSource;
pub use walk::{check, check_with_pages, page_infos, stats};
