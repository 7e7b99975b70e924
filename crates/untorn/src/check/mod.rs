//! The integrity checker (owned by the checker work; see docs/check.md).

mod source;

pub use source::CheckSource;
