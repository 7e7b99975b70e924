//! An open bbolt file: page size detection, both metas, and verified page reads.
//!
//! **Invariant:** nothing here writes. Every read is bounds-checked against the
//! file length and (for tree pages) the active meta's high-water mark.

use std::fs::File;
use std::path::Path;

use untorn::{FileStorage, MemoryStorage, Storage};

use crate::error::{BoltError, Result};
use crate::format::{
    Meta, MetaProblem, Node, PageHeader, PageProblem, FLAG_FREELIST, META_SIZE, PAGE_HEADER_SIZE,
};

/// The state of one meta page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSlot {
    /// The decoded meta, if the page could be read at all.
    pub meta: Option<Meta>,
    /// Why it is invalid, if it is.
    pub problem: Option<MetaProblem>,
}

impl MetaSlot {
    /// Whether this meta is valid.
    pub fn is_valid(&self) -> bool {
        self.meta.is_some() && self.problem.is_none()
    }
}

/// Candidate page sizes tried when meta 0 does not tell us (most common first).
const CANDIDATE_PAGE_SIZES: [u32; 8] = [4096, 8192, 16384, 65536, 512, 1024, 2048, 32768];

/// The SHA-256 trailer `etcdctl snapshot save` appends to a bbolt file: the file is
/// the database followed by the 32-byte SHA-256 of the database bytes (etcd's own
/// test for it: the length modulo 512 is 32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotTrailer {
    /// Bytes of database before the trailer.
    pub data_len: u64,
    /// The stored hash.
    pub stored: [u8; 32],
}

/// The result of verifying a snapshot trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHash {
    /// The stored hash.
    pub stored: [u8; 32],
    /// The hash of the database bytes.
    pub computed: [u8; 32],
}

impl SnapshotHash {
    /// Whether the stored hash matches.
    pub fn matches(&self) -> bool {
        self.stored == self.computed
    }
}

/// Length of a snapshot trailer.
pub const SNAPSHOT_TRAILER_LEN: u64 = 32;

/// Hex of a hash.
pub fn hex32(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends the SHA-256 of the whole file at `path` to it, as `etcdctl snapshot save`
/// does, so that `etcdctl snapshot restore` accepts it. Syncs the file.
pub fn append_snapshot_trailer(path: &Path) -> Result<()> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};
    let ctx = |e| BoltError::io(format!("snapshot trailer for {}", path.display()), e);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(ctx)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(ctx)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or(&[]));
    }
    let sum: [u8; 32] = h.finalize().into();
    f.write_all(&sum).map_err(ctx)?;
    f.sync_all().map_err(ctx)
}

/// A bbolt file opened read-only.
pub struct BoltFile {
    storage: Box<dyn Storage>,
    len: u64,
    snapshot: Option<SnapshotTrailer>,
    page_size: u32,
    metas: [MetaSlot; 2],
    active: usize,
}

impl std::fmt::Debug for BoltFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoltFile")
            .field("len", &self.len)
            .field("snapshot", &self.snapshot)
            .field("page_size", &self.page_size)
            .field("metas", &self.metas)
            .field("active", &self.active)
            .finish()
    }
}

/// Whether `storage` holds a bbolt file, judged by the meta magic of page 0 or of
/// meta 1 at any page size bbolt uses (a destroyed meta 0 does not hide it).
pub fn recognise(storage: &dyn Storage) -> std::io::Result<bool> {
    let mut head = [0u8; PAGE_HEADER_SIZE + META_SIZE];
    let at = |offset: u64, buf: &mut [u8]| match storage.read_at(offset, buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    };
    if at(0, &mut head)? && crate::format::has_meta_magic(&head) {
        return Ok(true);
    }
    for ps in CANDIDATE_PAGE_SIZES {
        if at(u64::from(ps), &mut head)? && crate::format::has_meta_magic(&head) {
            return Ok(true);
        }
    }
    Ok(false)
}

impl BoltFile {
    /// Opens the file at `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<BoltFile> {
        let path = path.as_ref();
        let file =
            File::open(path).map_err(|e| BoltError::io(format!("open {}", path.display()), e))?;
        BoltFile::from_storage(Box::new(FileStorage::new(file)))
    }

    /// Parses a file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<BoltFile> {
        BoltFile::from_storage(Box::new(MemoryStorage::from_bytes(bytes)))
    }

    /// Parses a file behind any storage.
    pub fn from_storage(storage: Box<dyn Storage>) -> Result<BoltFile> {
        let raw_len = storage.len().map_err(|e| BoltError::io("file length", e))?;
        // An `etcdctl snapshot save` file: the database, then its SHA-256. bbolt files
        // are whole pages (multiples of 512 bytes), so 32 spare bytes mean a trailer.
        let snapshot = if raw_len % 512 == SNAPSHOT_TRAILER_LEN {
            let data_len = raw_len - SNAPSHOT_TRAILER_LEN;
            let mut stored = [0u8; 32];
            storage
                .read_at(data_len, &mut stored)
                .map_err(|e| BoltError::io("snapshot trailer", e))?;
            Some(SnapshotTrailer { data_len, stored })
        } else {
            None
        };
        let len = snapshot.as_ref().map_or(raw_len, |t| t.data_len);
        let read_meta = |page_off: u64| -> MetaSlot {
            let mut buf = [0u8; META_SIZE];
            let off = page_off.saturating_add(PAGE_HEADER_SIZE as u64);
            if off.saturating_add(META_SIZE as u64) > len {
                return MetaSlot {
                    meta: None,
                    problem: Some(MetaProblem::Unreadable(format!(
                        "file too short ({len} bytes)"
                    ))),
                };
            }
            match storage.read_at(off, &mut buf) {
                Err(e) => MetaSlot {
                    meta: None,
                    problem: Some(MetaProblem::Unreadable(e.to_string())),
                },
                Ok(()) => match Meta::decode(&buf) {
                    None => MetaSlot {
                        meta: None,
                        problem: Some(MetaProblem::Unreadable("short meta".into())),
                    },
                    Some(m) => MetaSlot {
                        meta: Some(m),
                        problem: m.validate(len).err(),
                    },
                },
            }
        };
        let meta0 = read_meta(0);
        let mut page_size = None;
        let mut meta1 = None;
        if let (true, Some(m)) = (meta0.is_valid(), meta0.meta) {
            page_size = Some(m.page_size);
            meta1 = Some(read_meta(u64::from(m.page_size)));
        } else {
            // Meta 0 is damaged: find meta 1 at a candidate page size. A hint from a
            // meta 0 with a good magic but a bad checksum is tried first.
            let mut candidates: Vec<u32> = Vec::new();
            if let Some(m) = meta0.meta {
                if crate::format::valid_page_size(m.page_size) {
                    candidates.push(m.page_size);
                }
            }
            candidates.extend(CANDIDATE_PAGE_SIZES.iter().copied());
            let mut first_problem = None;
            for ps in candidates {
                let slot = read_meta(u64::from(ps));
                match slot.meta {
                    Some(m) if slot.is_valid() && m.page_size == ps => {
                        page_size = Some(ps);
                        meta1 = Some(slot);
                        break;
                    }
                    _ => {
                        if first_problem.is_none() {
                            first_problem = Some(slot);
                        }
                    }
                }
            }
            if meta1.is_none() {
                let m1 = first_problem.unwrap_or(MetaSlot {
                    meta: None,
                    problem: Some(MetaProblem::Unreadable("no candidate".into())),
                });
                return Err(BoltError::NoValidMeta {
                    meta0: meta0
                        .problem
                        .unwrap_or(MetaProblem::Unreadable("unknown".into())),
                    meta1: m1.problem.unwrap_or(MetaProblem::PageSize(0)),
                });
            }
        }
        let (Some(page_size), Some(meta1)) = (page_size, meta1) else {
            return Err(BoltError::NoValidMeta {
                meta0: MetaProblem::Unreadable("unknown".into()),
                meta1: MetaProblem::Unreadable("unknown".into()),
            });
        };
        // A meta 1 valid by itself but disagreeing on the page size is invalid.
        let mut meta1 = meta1;
        if let (Some(m), None) = (meta1.meta, &meta1.problem) {
            if m.page_size != page_size {
                meta1.problem = Some(MetaProblem::PageSize(m.page_size));
            }
        }
        let metas = [meta0, meta1];
        let active = match (&metas[0], &metas[1]) {
            (a, b) if a.is_valid() && b.is_valid() => {
                let ta = a.meta.map(|m| m.txid).unwrap_or(0);
                let tb = b.meta.map(|m| m.txid).unwrap_or(0);
                usize::from(tb > ta)
            }
            (a, _) if a.is_valid() => 0,
            (_, b) if b.is_valid() => 1,
            (a, b) => {
                return Err(BoltError::NoValidMeta {
                    meta0: a.problem.clone().unwrap_or(MetaProblem::PageSize(0)),
                    meta1: b.problem.clone().unwrap_or(MetaProblem::PageSize(0)),
                })
            }
        };
        Ok(BoltFile {
            storage,
            len,
            snapshot,
            page_size,
            metas,
            active,
        })
    }

    /// A view of the same file that uses meta `index` (0 or 1) as the active one,
    /// if that meta is valid. Used by salvage and revert-meta.
    pub fn use_meta(mut self, index: usize) -> Result<BoltFile> {
        match self.metas.get(index) {
            Some(slot) if slot.is_valid() => {
                self.active = index;
                Ok(self)
            }
            _ => Err(BoltError::Surgery(format!("meta {index} is not valid"))),
        }
    }

    /// The SHA-256 trailer of an `etcdctl snapshot save` file, if this is one.
    pub fn snapshot_trailer(&self) -> Option<&SnapshotTrailer> {
        self.snapshot.as_ref()
    }

    /// Hashes the database bytes and compares them with the snapshot trailer
    /// (None when the file has no trailer). Reads the whole file once.
    pub fn verify_snapshot(&self) -> Result<Option<SnapshotHash>> {
        use sha2::{Digest, Sha256};
        let Some(t) = &self.snapshot else {
            return Ok(None);
        };
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        while off < t.data_len {
            let n = usize::try_from((t.data_len - off).min(buf.len() as u64)).unwrap_or(0);
            let chunk = buf.get_mut(..n).unwrap_or(&mut []);
            self.storage
                .read_at(off, chunk)
                .map_err(|e| BoltError::io("snapshot hash", e))?;
            h.update(&*chunk);
            off += n as u64;
            if n == 0 {
                break;
            }
        }
        Ok(Some(SnapshotHash {
            stored: t.stored,
            computed: h.finalize().into(),
        }))
    }

    /// Database length in bytes (the file without a snapshot trailer).
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// Both meta slots.
    pub fn metas(&self) -> &[MetaSlot; 2] {
        &self.metas
    }

    /// Index (0 or 1) of the meta in use.
    pub fn active_index(&self) -> usize {
        self.active
    }

    /// The meta in use (valid by construction).
    pub fn meta(&self) -> Meta {
        self.metas
            .get(self.active)
            .and_then(|s| s.meta)
            .unwrap_or(Meta {
                magic: 0,
                version: 0,
                page_size: self.page_size,
                flags: 0,
                root: 0,
                sequence: 0,
                freelist: 0,
                pgid: 0,
                txid: 0,
                checksum: 0,
            })
    }

    /// Whether the newest meta was unusable and the other one is in use.
    pub fn is_fallback(&self) -> bool {
        let other = self.metas.get(1 - self.active.min(1));
        match other {
            Some(slot) if !slot.is_valid() => match slot.meta {
                Some(m) => m.txid > self.meta().txid,
                None => true,
            },
            _ => false,
        }
    }

    /// High-water mark of the active meta.
    pub fn hwm(&self) -> u64 {
        self.meta().pgid
    }

    /// Number of whole pages in the file.
    pub fn pages_in_file(&self) -> u64 {
        self.len / u64::from(self.page_size)
    }

    /// Reads `npages` pages starting at `id` without any interpretation.
    pub fn read_raw(&self, id: u64, npages: u64) -> Result<Vec<u8>, PageProblem> {
        let ps = u64::from(self.page_size);
        let end_page = id
            .checked_add(npages)
            .ok_or(PageProblem::BeyondFile { file_len: self.len })?;
        let end = end_page
            .checked_mul(ps)
            .ok_or(PageProblem::BeyondFile { file_len: self.len })?;
        if end > self.len || npages == 0 {
            return Err(PageProblem::BeyondFile { file_len: self.len });
        }
        let size = usize::try_from(npages * ps)
            .map_err(|_| PageProblem::BeyondFile { file_len: self.len })?;
        let mut buf = vec![0u8; size];
        self.storage
            .read_at(id * ps, &mut buf)
            .map_err(|e| PageProblem::Read(e.to_string()))?;
        Ok(buf)
    }

    /// Reads the header of page `id` (no checks beyond the file length).
    pub fn read_header(&self, id: u64) -> Result<PageHeader, PageProblem> {
        let ps = u64::from(self.page_size);
        let off = id
            .checked_mul(ps)
            .ok_or(PageProblem::BeyondFile { file_len: self.len })?;
        if off.saturating_add(ps) > self.len {
            return Err(PageProblem::BeyondFile { file_len: self.len });
        }
        let mut buf = [0u8; PAGE_HEADER_SIZE];
        self.storage
            .read_at(off, &mut buf)
            .map_err(|e| PageProblem::Read(e.to_string()))?;
        PageHeader::decode(&buf).ok_or(PageProblem::Read("short header".into()))
    }

    /// Reads page `id` and its overflow pages as one extent, checking the id
    /// against the high-water mark and the file, the overflow against both, and
    /// whether the page is zeroed. Returns the extent and its header. A header id
    /// that differs from `id` is returned as [`PageProblem::IdMismatch`] only when
    /// `strict_id` is set.
    pub fn read_extent(
        &self,
        id: u64,
        strict_id: bool,
    ) -> Result<(PageHeader, Vec<u8>), PageProblem> {
        let hwm = self.hwm();
        if id < 2 {
            return Err(PageProblem::MetaReference);
        }
        if id >= hwm {
            return Err(PageProblem::OutOfBounds { hwm });
        }
        let first = self.read_raw(id, 1)?;
        if first.iter().all(|&b| b == 0) {
            return Err(PageProblem::Zeroed);
        }
        let header = PageHeader::decode(&first).ok_or(PageProblem::Zeroed)?;
        if strict_id && header.id != id {
            return Err(PageProblem::IdMismatch {
                header_id: header.id,
            });
        }
        if header.overflow == 0 {
            return Ok((header, first));
        }
        let last = id.saturating_add(u64::from(header.overflow));
        if last >= hwm || last >= self.pages_in_file() {
            return Err(PageProblem::OverflowBounds {
                overflow: header.overflow,
            });
        }
        let buf = self.read_raw(id, u64::from(header.overflow) + 1)?;
        Ok((header, buf))
    }

    /// Reads and parses the tree node at page `id`, strictly (the header id must
    /// match). Used by dump/get/salvage, where a misdirected page is never data.
    pub fn read_node(&self, id: u64) -> Result<Node, PageProblem> {
        let (_, buf) = self.read_extent(id, true)?;
        Node::parse(buf)
    }

    /// Reads the freelist ids of the active meta. `Ok(None)` for NoFreelistSync.
    pub fn read_freelist(&self) -> Result<Option<(u64, u32, Vec<u64>)>, String> {
        let m = self.meta();
        if m.no_freelist_sync() {
            return Ok(None);
        }
        let (header, buf) = self
            .read_extent(m.freelist, true)
            .map_err(|p| format!("freelist page {}: {p}", m.freelist))?;
        if header.flags != FLAG_FREELIST {
            return Err(format!(
                "freelist page {}: flags {:#06x} are not freelist",
                m.freelist, header.flags
            ));
        }
        let ids = crate::format::decode_freelist(&buf)
            .map_err(|e| format!("freelist page {}: {e}", m.freelist))?;
        Ok(Some((m.freelist, header.overflow, ids)))
    }
}
