//! The checker's view of a file for `check`, `stats`, `pages`, `page` and `map`.
//!
//! Through the engine when it opens the file (a read snapshot: journal commits
//! included); straight from the data file ([`RawSource`]) when the engine refuses the
//! file because it is damaged — exactly when an operator needs these commands.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use untorn::check::{CheckSource, RawSource};
use untorn::{Database, Error, FileStorage, Storage};

use crate::backend::{bbolt_unsupported, detect, Format};

/// Where the pages came from.
#[derive(Debug)]
pub enum Origin {
    /// An engine read snapshot.
    Snapshot,
    /// The raw data file; the engine's open error says why.
    DataFile(Error),
}

impl Origin {
    pub fn name(&self) -> &'static str {
        match self {
            Origin::Snapshot => "snapshot",
            Origin::DataFile(_) => "data_file",
        }
    }

    pub fn open_error(&self) -> Option<String> {
        match self {
            Origin::Snapshot => None,
            Origin::DataFile(e) => Some(e.to_string()),
        }
    }
}

/// Whether an open error means "the file is damaged" (fall back to the raw file)
/// rather than "cannot use the file at all".
pub fn is_damage(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupted { .. } | Error::UnsupportedVersion(_) | Error::InvalidPageSize(_)
    )
}

/// Runs `f` over the best available [`CheckSource`] for `path`.
pub fn with_source<T>(
    path: &Path,
    f: impl FnOnce(&dyn CheckSource, &Origin) -> Result<T>,
) -> Result<T> {
    match detect(path)? {
        Format::Native => {}
        Format::Bbolt => return bbolt_unsupported(path),
    }
    match Database::builder().read_only(true).open(path) {
        Ok(db) => {
            let tx = db
                .begin_read()
                .with_context(|| format!("cannot read {}", path.display()))?;
            f(tx.check_source(), &Origin::Snapshot)
        }
        Err(e) if is_damage(&e) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(file));
            let src = RawSource::open(storage)
                .with_context(|| format!("cannot read {} as a database", path.display()))?;
            f(&src, &Origin::DataFile(e))
        }
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
}
