//! The storage seam: every byte untorn reads or writes goes through [`Storage`].
//!
//! Three implementations exist: [`FileStorage`] (a real file), [`MemoryStorage`] (a
//! `Vec<u8>` behind a lock, for tests and fuzzing) and the fault-injecting simulator in
//! the `untorn-sim` crate. The engine never touches `std::fs` for page I/O directly.
//!
//! What an implementation must do: the whole request, or return an error.
//! `read_at` past the end of the storage returns `ErrorKind::UnexpectedEof`; it never
//! returns a short read silently.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Random-access, syncable byte storage (a file, memory, or a simulated disk).
pub trait Storage: Send + Sync {
    /// Fills `buf` with the bytes at `offset`. Reading past the end is `UnexpectedEof`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, growing the storage if needed. Not durable until `sync`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Makes every completed write durable. An error here is final: callers must not retry.
    fn sync(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the storage holds no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Truncates or extends (with zeros) to `len` bytes. Not durable until `sync`.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the storage's directory entry durable (a file created since the last
    /// directory sync may vanish at a crash). The default does nothing: storages without
    /// a directory (memory) have nothing to sync.
    fn sync_directory_entry(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Shared and boxed storages forward to the storage they hold.
macro_rules! forward_storage {
    ($wrapper:ident) => {
        impl<S: Storage + ?Sized> Storage for $wrapper<S> {
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
                (**self).read_at(offset, buf)
            }
            fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
                (**self).write_at(offset, buf)
            }
            fn sync(&self) -> io::Result<()> {
                (**self).sync()
            }
            fn len(&self) -> io::Result<u64> {
                (**self).len()
            }
            fn set_len(&self, len: u64) -> io::Result<()> {
                (**self).set_len(len)
            }
            fn sync_directory_entry(&self) -> io::Result<()> {
                (**self).sync_directory_entry()
            }
        }
    };
}

forward_storage!(Arc);
forward_storage!(Box);

/// A real file. `sync` is `fdatasync` (`File::sync_data`); `sync_directory_entry`
/// fsyncs the parent directory when the file's path is known ([`FileStorage::with_path`]).
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    path: Option<PathBuf>,
}

impl FileStorage {
    /// Wraps an open file (its directory entry cannot be synced: the path is unknown).
    pub fn new(file: File) -> Self {
        Self { file, path: None }
    }

    /// Wraps an open file at `path`.
    pub fn with_path(file: File, path: &Path) -> Self {
        Self {
            file,
            path: Some(path.to_owned()),
        }
    }

    /// The underlying file (used for OS locks).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Storage for FileStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() != io::ErrorKind::UnexpectedEof {
                return e;
            }
            // Say what happened in the file's terms, not the reader's ("failed to fill
            // whole buffer").
            let end = offset.saturating_add(buf.len() as u64);
            let why = match self.file.metadata() {
                Ok(m) => format!(
                    "bytes {offset}..{end} lie past the end of the file ({} bytes)",
                    m.len()
                ),
                Err(_) => format!("bytes {offset}..{end} lie past the end of the file"),
            };
            io::Error::new(io::ErrorKind::UnexpectedEof, why)
        })
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_directory_entry(&self) -> io::Result<()> {
        match &self.path {
            Some(p) => sync_parent_directory(p),
            None => Ok(()),
        }
    }
}

/// A scratch file that exists only while this value does: created new (never an
/// existing file) in a directory, removed when dropped, on success and on error alike.
/// Salvage spills sorted runs to one when they do not fit its memory budget.
#[derive(Debug)]
pub struct TempFile {
    storage: FileStorage,
    path: PathBuf,
}

impl TempFile {
    /// Creates `dir/.untorn-<tag>-<pid>-<n>.tmp`, the first `n` that does not exist.
    pub fn create_in(dir: &Path, tag: &str) -> io::Result<TempFile> {
        let pid = std::process::id();
        let mut last = None;
        for n in 0..1000u32 {
            let path = dir.join(format!(".untorn-{tag}-{pid}-{n}.tmp"));
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        storage: FileStorage::with_path(file, &path),
                        path,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary file name")))
    }

    /// The file's storage.
    pub fn storage(&self) -> &FileStorage {
        &self.storage
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Fsyncs the directory holding `path`, so that a file created or renamed there is
/// durable under its name.
pub fn sync_parent_directory(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

/// An in-memory storage. Clones share the same bytes, so a test can keep a handle,
/// "crash" by dropping the database, and reopen on the same contents.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// A storage holding a copy of `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Arc::new(Mutex::new(bytes)),
        }
    }

    /// A copy of the current contents.
    pub fn to_vec(&self) -> Vec<u8> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding this lock cannot leave the bytes half-updated in a way
        // that matters more than the panic itself; keep serving them.
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn offset_to_usize(offset: u64, len: usize) -> io::Result<(usize, usize)> {
    let start = usize::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))?;
    Ok((start, end))
}

impl Storage for MemoryStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = self.lock();
        let (start, end) = offset_to_usize(offset, buf.len())?;
        match bytes.get(start..end) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end of storage",
            )),
        }
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut bytes = self.lock();
        let (start, end) = offset_to_usize(offset, buf.len())?;
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        if let Some(dst) = bytes.get_mut(start..end) {
            dst.copy_from_slice(buf);
        }
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
        self.lock().resize(len, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_storage_reads_back_and_reports_eof() {
        let s = MemoryStorage::new();
        s.write_at(10, b"abc").expect("write");
        assert_eq!(s.len().expect("len"), 13);
        let mut buf = [0u8; 3];
        s.read_at(10, &mut buf).expect("read");
        assert_eq!(&buf, b"abc");
        let err = s.read_at(12, &mut buf).expect_err("past end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        s.set_len(4).expect("truncate");
        assert_eq!(s.len().expect("len"), 4);
    }
}
