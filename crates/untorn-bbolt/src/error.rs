//! Typed errors of the bbolt toolkit.

use std::io;

use crate::format::{MetaProblem, PageProblem};

/// Errors from reading, writing or repairing a bbolt file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoltError {
    /// An I/O error on the named file or operation.
    #[error("I/O error: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Neither meta page is valid at any candidate page size.
    #[error("no valid meta page: meta 0: {meta0}; meta 1: {meta1}")]
    NoValidMeta {
        /// Why meta 0 is invalid.
        meta0: MetaProblem,
        /// Why meta 1 is invalid.
        meta1: MetaProblem,
    },
    /// A page met during a walk is damaged.
    #[error("page {page}: {problem}")]
    Page {
        /// The page.
        page: u64,
        /// What is wrong.
        problem: PageProblem,
    },
    /// A structural problem (cycle, key order, depth) met during a walk.
    #[error("page {page}: {message}")]
    Structure {
        /// The page.
        page: u64,
        /// What is wrong.
        message: String,
    },
    /// A bucket named in a path does not exist.
    #[error("bucket not found: {0}")]
    BucketNotFound(String),
    /// A key in a bucket path is a plain value, not a bucket.
    #[error("not a bucket: {0}")]
    NotABucket(String),
    /// A bucket header is invalid.
    #[error("bucket {path}: invalid bucket header: {message}")]
    BadBucket {
        /// The bucket path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The writer was given input it cannot encode.
    #[error("cannot write: {0}")]
    Write(String),
    /// A surgery request is invalid for this file.
    #[error("surgery: {0}")]
    Surgery(String),
}

impl BoltError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> BoltError {
        BoltError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T, E = BoltError> = std::result::Result<T, E>;
