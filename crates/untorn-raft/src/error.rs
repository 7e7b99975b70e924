//! Mapping untorn and I/O errors onto openraft's `StorageError`.

use openraft::{AnyError, ErrorSubject, ErrorVerb, NodeId, StorageError, StorageIOError};

/// Errors of opening a store (before openraft is involved).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The untorn database could not be opened or read.
    #[error("untorn: {0}")]
    Untorn(#[from] untorn::Error),
    /// A file operation on the store directory failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A stored record does not decode.
    #[error("stored record {what} does not decode: {detail}")]
    Decode {
        /// Which record.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The files are not an untorn-raft store of a known version, or disagree.
    #[error("invalid store: {0}")]
    Invalid(String),
}

/// A storage error on `subject` while doing `verb`.
pub(crate) fn storage_err<NID: NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError<NID> {
    StorageIOError::new(subject, verb, AnyError::new(&e)).into()
}

/// Errors inside blocking store code: untorn, I/O or a decoding failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Inner {
    #[error("untorn: {0}")]
    Untorn(#[from] untorn::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

impl Inner {
    pub(crate) fn into_storage<NID: NodeId>(
        self,
        subject: ErrorSubject<NID>,
        verb: ErrorVerb,
    ) -> StorageError<NID> {
        storage_err(subject, verb, self)
    }
}

impl From<Inner> for OpenError {
    fn from(e: Inner) -> Self {
        match e {
            Inner::Untorn(e) => OpenError::Untorn(e),
            Inner::Io(e) => OpenError::Io(e),
            Inner::Json(e) => OpenError::Decode {
                what: "json",
                detail: e.to_string(),
            },
            Inner::Invalid(s) => OpenError::Invalid(s),
        }
    }
}

/// Runs blocking store code on tokio's blocking pool (untorn commits fsync).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Inner> + Send + 'static,
) -> Result<T, Inner> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Inner::Invalid(format!("storage task failed: {e}"))),
    }
}
