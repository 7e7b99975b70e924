//! The files of a database opened by path, and everything done to them as files: the
//! journal's name beside the data file, the OS lock released at drop, the journal copy a
//! rollback keeps, a snapshot image written under a temporary name and renamed into place
//! (backup, compaction), and the read-only set of files a salvage reads.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::copy::CopyStats;
use crate::error::{Error, Result};
use crate::storage::{sync_parent_directory, FileStorage, Storage};
use crate::tx::ReadTx;

/// The journal path for a data file: `<path>.journal`.
pub fn journal_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".journal");
    PathBuf::from(s)
}

/// The OS lock of a database opened by path, released explicitly when the handle is
/// dropped. Closing the descriptor is not enough: a child process this program is
/// spawning at that moment holds a copy of it until its `exec`, and the lock (which
/// belongs to the open file description) would outlive the handle by that long.
pub(crate) struct FileLock(pub(crate) File);

impl Drop for FileLock {
    fn drop(&mut self) {
        // Unlocking a description that holds no lock is a no-op; there is nothing to
        // report if it fails (the descriptor's close releases the lock anyway).
        let _ = self.0.unlock();
    }
}

/// Copies the journal's bytes to `<journal>.rollback-<unix-seconds>` (a new file, synced,
/// its directory entry too) before a rollback reuses the journal; returns the path.
pub(crate) fn keep_journal(jpath: &Path, journal: &dyn Storage) -> Result<String> {
    use std::io::Write;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut target = PathBuf::from(format!("{}.rollback-{secs}", jpath.display()));
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{}.rollback-{secs}-{n}", jpath.display()));
        n += 1;
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(Error::from_io)?;
    let len = journal.len().map_err(Error::from_io)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(buf.len() as u64))
            .map_err(|_| Error::Internal("copy chunk larger than its buffer"))?;
        let chunk = buf
            .get_mut(..n)
            .ok_or(Error::Internal("copy chunk larger than its buffer"))?;
        journal.read_at(at, chunk).map_err(Error::from_io)?;
        out.write_all(chunk).map_err(Error::from_io)?;
        at += n as u64;
    }
    out.sync_all().map_err(Error::from_io)?;
    sync_parent_directory(&target).map_err(Error::from_io)?;
    Ok(target.display().to_string())
}

/// Writes `tx`'s snapshot to `path` (refusing to replace a file or a journal): a
/// temporary file beside it, synced, renamed into place, the directory synced.
pub(crate) fn write_image(tx: &ReadTx<'_>, path: &Path) -> Result<CopyStats> {
    use std::io::Write;
    let file_error = |p: &Path, e: std::io::Error| Error::File {
        path: p.to_path_buf(),
        source: e,
    };
    let exists = |p: &Path| {
        file_error(
            p,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a copy is never written over an existing file",
            ),
        )
    };
    let jpath = journal_path(path);
    for p in [path, jpath.as_path()] {
        if p.symlink_metadata().is_ok() {
            return Err(exists(p));
        }
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| file_error(&tmp, e))?;
    let written = (|| -> Result<CopyStats> {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let stats = tx.copy_to(&mut w)?;
        w.flush().map_err(|e| file_error(&tmp, e))?;
        let file = w
            .into_inner()
            .map_err(|e| file_error(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| file_error(&tmp, e))?;
        drop(file);
        if path.symlink_metadata().is_ok() {
            return Err(exists(path));
        }
        std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))?;
        sync_parent_directory(path).map_err(|e| file_error(path, e))?;
        Ok(stats)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The files a page-level salvage reads, all opened read-only: the data file, its journal
/// (if present) and the journal copies kept by rollbacks (`<journal>.rollback-*`), oldest
/// name first. Nothing is created, locked or written.
pub(crate) fn salvage_sources(path: &Path) -> Result<(FileStorage, Vec<(PathBuf, FileStorage)>)> {
    let open = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .open(p)
            .map(|f| FileStorage::with_path(f, p))
            .map_err(|e| Error::File {
                path: p.to_path_buf(),
                source: e,
            })
    };
    let data = open(path)?;
    let jpath = journal_path(path);
    let mut journals = Vec::new();
    if jpath.exists() {
        journals.push((jpath.clone(), open(&jpath)?));
    }
    let prefix = format!(
        "{}.rollback-",
        jpath
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    let dir = match jpath.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut copies: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    copies.sort();
    for c in copies {
        journals.push((c.clone(), open(&c)?));
    }
    Ok((data, journals))
}
