//! Which file format a path holds, by magic, and opening it.
//!
//! Every command matches on [`Backend`]: untorn files go through the engine, bbolt
//! files through `untorn-bbolt` (read-only: the CLI never writes a bbolt file in place
//! except through `surgery`, and writes new ones only through `salvage`).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use untorn::format::meta::has_magic;
use untorn::Database;
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

/// bbolt's meta magic (little-endian u32 at byte 16 of page 0).
const BBOLT_MAGIC: u32 = 0xED0C_DAED;

/// Reads the first bytes of `path` and says which format it is.
pub fn detect(path: &Path) -> Result<Format> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = Vec::with_capacity(128);
    f.by_ref()
        .take(128)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if has_magic(&head) {
        return Ok(Format::Native);
    }
    if bbolt_magic(&head) {
        return Ok(Format::Bbolt);
    }
    // Slot 0 may be damaged: probe slot 1 at every page size (untorn: 4 KiB..64 KiB;
    // bbolt: 512 B..64 KiB, its meta 1 at page 1).
    let mut ps = 512u64;
    while ps <= 65536 {
        let mut b = [0u8; 64];
        if read_at(&mut f, ps, &mut b).is_ok() {
            if ps >= 4096 && has_magic(&b) {
                return Ok(Format::Native);
            }
            if bbolt_magic(&b) {
                return Ok(Format::Bbolt);
            }
        }
        ps *= 2;
    }
    bail!("{}: not an untorn (or bbolt) database", path.display())
}

/// Whether a page starting at `page` holds bbolt's meta magic.
fn bbolt_magic(page: &[u8]) -> bool {
    page.get(16..20)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        == Some(BBOLT_MAGIC)
}

fn read_at(f: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
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
            Format::Native => Ok(Backend::Native(
                Database::builder()
                    .read_only(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )),
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
