//! The checker's view of a file for `check`, `stats`, `pages`, `page` and `map`.
//!
//! For untorn files: through the engine when it opens the file (a read snapshot:
//! journal commits included); straight from the data file ([`RawSource`]) when the
//! engine refuses the file because it is damaged — exactly when an operator needs
//! these commands. For bbolt files: the file itself, parsed by `untorn-bbolt`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use untorn::unstable::check::{CheckSource, RawSource};
use untorn::{Database, Error, FileStorage, Storage};

use untorn_bbolt::BoltFile;

use crate::backend::{detect, open_bbolt, Format};

/// Where the pages came from.
#[derive(Debug)]
pub enum Origin {
    /// An engine read snapshot.
    Snapshot,
    /// The raw data file; the engine's open error says why.
    DataFile(Error),
    /// A bbolt file (always read as a data file; there is no engine).
    BboltFile,
}

impl Origin {
    pub fn name(&self) -> &'static str {
        match self {
            Origin::Snapshot => "snapshot",
            Origin::DataFile(_) | Origin::BboltFile => "data_file",
        }
    }

    pub fn open_error(&self) -> Option<String> {
        match self {
            Origin::Snapshot | Origin::BboltFile => None,
            Origin::DataFile(e) => Some(e.to_string()),
        }
    }
}

/// Whether an open error means "the file is damaged" (fall back to the raw file)
/// rather than "cannot use the file at all".
pub fn is_damage(e: &Error) -> bool {
    e.needs_rollback()
        || matches!(
            e,
            Error::Corrupted { .. } | Error::UnsupportedVersion(_) | Error::InvalidPageSize(_)
        )
}

/// The journal beside `path`, if it exists (evidence for the choice of meta).
pub fn journal_beside(path: &Path) -> Option<FileStorage> {
    std::fs::File::open(untorn::journal_path(path))
        .ok()
        .map(FileStorage::new)
}

/// A file as the page commands see it.
pub enum View<'a> {
    /// An untorn file: the checker's source and where its pages come from.
    Native(&'a dyn CheckSource, &'a Origin),
    /// A bbolt file.
    Bbolt(&'a BoltFile),
}

/// Runs `f` over the best available view of `path`.
pub fn with_source<T>(path: &Path, f: impl FnOnce(View<'_>) -> Result<T>) -> Result<T> {
    if detect(path)? == Format::Bbolt {
        return f(View::Bbolt(&open_bbolt(path)?));
    }
    match Database::builder().read_only(true).open(path) {
        Ok(db) => {
            crate::backend::note_if_live(&db, path);
            let tx = db
                .begin_read()
                .with_context(|| format!("cannot read {}", path.display()))?;
            f(View::Native(
                untorn::unstable::check_source(&tx),
                &Origin::Snapshot,
            ))
        }
        Err(e) if is_damage(&e) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(file));
            let journal = journal_beside(path);
            let src =
                RawSource::open_with_journal(storage, journal.as_ref().map(|j| j as &dyn Storage))
                    .with_context(|| format!("cannot read {} as a database", path.display()))?;
            f(View::Native(&src, &Origin::DataFile(e)))
        }
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
}
