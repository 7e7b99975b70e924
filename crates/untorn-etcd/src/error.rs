//! The errors of the etcd layer.

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
}
