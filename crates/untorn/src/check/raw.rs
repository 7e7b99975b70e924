//! [`RawSource`]: a [`CheckSource`] over the bytes of a data file, without the engine.
//!
//! Tools use it when the engine cannot (or should not) open a file: it finds the page
//! size from a meta page, picks the newest valid meta slot and reads pages straight from
//! storage. It does not see a journal: commits not yet checkpointed are invisible, which
//! is what a check of the *data file* wants.

use std::io;
use std::sync::Arc;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::meta::{has_magic, sniff_page_size};
use crate::format::{is_valid_page_size, Meta, MAX_PAGE_SIZE, MIN_PAGE_SIZE};
use crate::report::{FindingKind, FindingSink, Report};
use crate::storage::{MemoryStorage, Storage};

use super::options::CheckOptions;
use super::source::CheckSource;
use super::walk::check;

/// A [`CheckSource`] reading a data file directly.
pub struct RawSource {
    storage: Arc<dyn Storage>,
    page_size: usize,
    meta: Meta,
    active: Option<u64>,
    file_pages: u64,
    /// Why each slot that did not decode was rejected.
    slot_errors: [Option<String>; 2],
}

impl std::fmt::Debug for RawSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSource")
            .field("page_size", &self.page_size)
            .field("meta", &self.meta)
            .field("active", &self.active)
            .field("file_pages", &self.file_pages)
            .finish()
    }
}

/// Bytes read to sniff a meta page (header, magic and page-size field).
const SNIFF_BYTES: usize = 128;

fn read_exact(storage: &dyn Storage, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    storage.read_at(offset, &mut buf)?;
    Ok(buf)
}

/// Finds the page size: from slot 0's field, else by probing slot 1 at each size.
fn find_page_size(storage: &dyn Storage, file_len: u64) -> Option<usize> {
    let first = read_exact(storage, 0, SNIFF_BYTES).ok()?;
    if let Some(ps) = sniff_page_size(&first).filter(|&p| is_valid_page_size(u64::from(p))) {
        return usize::try_from(ps).ok();
    }
    let mut ps = MIN_PAGE_SIZE;
    while ps <= MAX_PAGE_SIZE {
        if (ps + SNIFF_BYTES) as u64 <= file_len {
            if let Ok(b) = read_exact(storage, ps as u64, SNIFF_BYTES) {
                if sniff_page_size(&b).and_then(|p| usize::try_from(p).ok()) == Some(ps) {
                    return Some(ps);
                }
            }
        }
        ps *= 2;
    }
    None
}

impl RawSource {
    /// Opens a data file for checking. `NotADatabase` if neither meta slot carries the
    /// magic; `Corrupted { kind: Meta }` if it does but neither slot is valid.
    pub fn open(storage: Arc<dyn Storage>) -> Result<RawSource> {
        let file_len = storage.len().map_err(Error::from_io)?;
        if file_len < SNIFF_BYTES as u64 {
            return Err(Error::NotADatabase(format!(
                "file of {file_len} bytes is too short"
            )));
        }
        let head = read_exact(storage.as_ref(), 0, SNIFF_BYTES).map_err(Error::from_io)?;
        let page_size = match find_page_size(storage.as_ref(), file_len) {
            Some(ps) => ps,
            None if has_magic(&head) => {
                return Err(Error::corrupted(
                    0,
                    CorruptionKind::Meta,
                    "no meta slot names a valid page size",
                ))
            }
            None => {
                return Err(Error::NotADatabase(
                    "no untorn magic in either meta slot".into(),
                ))
            }
        };
        let file_pages = file_len / page_size as u64;
        let mut metas: [Option<Meta>; 2] = [None, None];
        let mut slot_errors: [Option<String>; 2] = [None, None];
        for slot in 0..2u64 {
            let decoded = read_exact(storage.as_ref(), slot * page_size as u64, page_size)
                .map_err(Error::from_io)
                .and_then(|b| Meta::decode(&b, slot, page_size));
            let i = usize::from(slot != 0);
            match decoded {
                Ok(m) => {
                    if let Some(s) = metas.get_mut(i) {
                        *s = Some(m);
                    }
                }
                Err(e) => {
                    if let Some(s) = slot_errors.get_mut(i) {
                        *s = Some(e.to_string());
                    }
                }
            }
        }
        let (active, meta) = match metas {
            [Some(a), Some(b)] => {
                if b.txid > a.txid {
                    (1, b)
                } else {
                    (0, a)
                }
            }
            [Some(a), None] => (0, a),
            [None, Some(b)] => (1, b),
            [None, None] => {
                return Err(Error::corrupted(
                    0,
                    CorruptionKind::Meta,
                    format!(
                        "neither meta slot is valid: slot 0: {}; slot 1: {}",
                        slot_errors[0].as_deref().unwrap_or("?"),
                        slot_errors[1].as_deref().unwrap_or("?")
                    ),
                ))
            }
        };
        Ok(RawSource {
            storage,
            page_size,
            meta,
            active: Some(active),
            file_pages,
            slot_errors,
        })
    }

    /// Why a meta slot was rejected, if it was.
    pub fn slot_error(&self, slot: u64) -> Option<&str> {
        self.slot_errors
            .get(usize::try_from(slot).ok()?)
            .and_then(|s| s.as_deref())
    }

    #[cfg(test)]
    pub(crate) fn active_slot_for_tests(&self) -> u64 {
        self.active.unwrap_or(0)
    }

    /// The storage being read.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}

impl CheckSource for RawSource {
    fn page_size(&self) -> usize {
        self.page_size
    }

    fn meta(&self) -> Meta {
        self.meta
    }

    fn active_slot(&self) -> Option<u64> {
        self.active
    }

    fn read_raw_meta(&self, slot: u64) -> io::Result<Vec<u8>> {
        if slot > 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "meta slot must be 0 or 1",
            ));
        }
        read_exact(
            self.storage.as_ref(),
            slot * self.page_size as u64,
            self.page_size,
        )
    }

    fn read_raw(&self, page_id: u64, extent_pages: u32) -> io::Result<Vec<u8>> {
        let ps = self.page_size as u64;
        let offset = page_id.checked_mul(ps);
        let len = u64::from(extent_pages).checked_mul(ps);
        let end = offset.zip(len).and_then(|(o, l)| o.checked_add(l));
        // Refuse before allocating: a damaged reference must not make us allocate more
        // than the file holds.
        match (offset, len, end) {
            (Some(o), Some(l), Some(e)) if e <= self.file_pages.saturating_mul(ps) => {
                let l = usize::try_from(l)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "extent too large"))?;
                read_exact(self.storage.as_ref(), o, l)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "pages {page_id}+{extent_pages} lie beyond the end of the file ({} pages)",
                    self.file_pages
                ),
            )),
        }
    }

    fn file_pages(&self) -> u64 {
        self.file_pages
    }
}

/// Checks a data file through [`RawSource`]. When neither meta slot is valid the result
/// is still a report (two `MetaInvalid` findings), not an error; a file without the
/// untorn magic is `Error::NotADatabase`.
pub fn check_storage(storage: Arc<dyn Storage>, opts: CheckOptions) -> Result<Report> {
    match RawSource::open(storage) {
        Ok(src) => check(&src, opts),
        Err(Error::Corrupted {
            kind: CorruptionKind::Meta,
            detail,
            ..
        }) => {
            let mut sink = FindingSink::new(opts.max_findings);
            for slot in 0..2u64 {
                sink.push(
                    FindingKind::MetaInvalid,
                    Some(slot),
                    &[slot],
                    format!("no usable meta: {detail}"),
                );
            }
            let (findings, truncated) = sink.finish();
            Ok(Report {
                findings,
                truncated,
                ..Report::default()
            })
        }
        Err(e) => Err(e),
    }
}

/// The fuzz entry point (also run by a stable test): checks, lists pages and gathers
/// stats of an arbitrary file image. Must never panic or hang.
#[doc(hidden)]
pub fn fuzz_entry(image: &[u8]) {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::from_bytes(image.to_vec()));
    let _ = check_storage(storage.clone(), CheckOptions::default());
    if let Ok(src) = RawSource::open(storage) {
        let _ = super::walk::page_infos(&src);
        let _ = super::walk::stats(&src);
        let opts = CheckOptions {
            max_findings: 3,
            from_page: Some(2),
            progress: None,
        };
        let _ = check(&src, opts);
    }
}
