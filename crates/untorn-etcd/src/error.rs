//! The errors of the etcd layer.

use std::path::PathBuf;

/// Errors of the etcd layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// The bbolt layer failed (I/O, no valid meta).
    #[error(transparent)]
    Bolt(#[from] untorn_bbolt::BoltError),
    /// The file is not etcd's (and etcd was not forced).
    #[error("not an etcd backend: {0}")]
    NotEtcd(String),
    /// A file or directory of the write-ahead log could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The write-ahead log is not usable (no WAL files, file names out of sequence).
    #[error("write-ahead log {}: {reason}", dir.display())]
    Wal {
        /// The WAL directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
