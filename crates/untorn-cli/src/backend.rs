//! Which file format a path holds, by magic, and opening it.
//!
//! Every command matches on [`Backend`]: untorn files go through the engine, bbolt
//! files through `untorn-bbolt` (read-only: the CLI never writes a bbolt file in place
//! except through `surgery`, and writes new ones only through `salvage`).

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use untorn::{Database, FileStorage};
use untorn_bbolt::BoltFile;

/// The formats the CLI recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An untorn database.
    Native,
    /// A bbolt (etcd) database.
    Bbolt,
}

impl Format {
    /// The name used in JSON output (`"format"`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "untorn",
            Format::Bbolt => "bbolt",
        }
    }
}

/// Says which format the file at `path` holds: each format's library recognises its
/// own files (by the magic of either meta slot, at any page size).
pub fn detect(path: &Path) -> Result<Format> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let storage = FileStorage::new(file);
    let read_error = || format!("cannot read {}", path.display());
    if untorn::unstable::superblock::recognise(&storage).with_context(read_error)? {
        return Ok(Format::Native);
    }
    if untorn_bbolt::recognise(&storage).with_context(read_error)? {
        return Ok(Format::Bbolt);
    }
    bail!("{}: not an untorn (or bbolt) database", path.display())
}

/// Says on stderr that `db` (opened read-only) is held open for writing by another
/// process, and which committed snapshot this command reads: later commits are not seen.
pub fn note_if_live(db: &Database, path: &Path) {
    if let Ok(info) = db.info() {
        if info.live {
            eprintln!(
                "note: {} is open for writing in another process; reading its committed snapshot at txid {}",
                path.display(),
                info.txid
            );
        }
    }
}

/// Returns `db` after [`note_if_live`].
pub fn noted(db: Database, path: &Path) -> Database {
    note_if_live(&db, path);
    db
}

/// An open database of some format.
pub enum Backend {
    /// An untorn database opened by the engine.
    Native(Database),
    /// A bbolt database, parsed read-only (the metas are read at open; pages on demand).
    Bbolt(Box<BoltFile>),
}

impl Backend {
    /// Opens `path` read-only (a journal is replayed in memory only).
    pub fn open_read(path: &Path) -> Result<Backend> {
        match detect(path)? {
            Format::Native => Ok(Backend::Native(noted(
                Database::builder()
                    .read_only(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
                path,
            ))),
            Format::Bbolt => Ok(Backend::Bbolt(Box::new(open_bbolt(path)?))),
        }
    }

    /// Opens the untorn database at `path` for writing; `create` makes a new database
    /// if it does not exist. A bbolt file is refused.
    pub fn open_write(path: &Path, create: bool) -> Result<Database> {
        if create && !path.exists() {
            return Database::create(path)
                .with_context(|| format!("cannot create {}", path.display()));
        }
        match detect(path)? {
            Format::Native => {
                Database::open(path).with_context(|| format!("cannot open {}", path.display()))
            }
            Format::Bbolt => bbolt_read_only(path),
        }
    }
}

/// Opens a bbolt file read-only.
pub fn open_bbolt(path: &Path) -> Result<BoltFile> {
    BoltFile::open(path).with_context(|| format!("cannot open {} as a bbolt file", path.display()))
}

/// The error for a write command on a bbolt file.
pub fn bbolt_read_only<T>(path: &Path) -> Result<T> {
    bail!(
        "{} is a bbolt database; untorn does not write bbolt files in place \
         (use `untorn salvage` to write a new file, or `untorn surgery`)",
        path.display()
    )
}

/// Whether two paths name the same existing file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
