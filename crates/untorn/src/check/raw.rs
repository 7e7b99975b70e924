//! [`RawSource`]: a [`CheckSource`] over the bytes of a data file, without the engine.
//!
//! Tools use it when the engine cannot (or should not) open a file: it finds the page
//! size from a meta page, lets the superblock choose the base meta (with the journal's
//! generation marker as evidence when the journal is given, and choosing as a rollback
//! would when the choice is refused: the refusal becomes a finding) and reads pages
//! straight from storage. Commits not yet checkpointed are invisible, which is what a
//! check of the *data file* wants.

use std::io;
use std::sync::Arc;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{Meta, PageId};
use crate::report::{FindingKind, FindingSink, Report};
use crate::storage::{MemoryStorage, Storage};
use crate::superblock::{self, Choice, Chosen, Slot};

use super::options::CheckOptions;
use super::source::CheckSource;
use super::walk::check;

/// A [`CheckSource`] reading a data file directly.
pub struct RawSource {
    storage: Arc<dyn Storage>,
    choice: Choice,
    file_pages: u64,
}

/// A choice that is an error (the file cannot be checked at all), or a choice.
fn choose_for_check(storage: &dyn Storage, journal: Option<&dyn Storage>) -> Result<Choice> {
    match superblock::choose(storage, journal, true)?? {
        Chosen::Base(c) => Ok(*c),
        Chosen::Reinitialise(why) => Err(Error::corrupted(0, CorruptionKind::Meta, why)),
    }
}

impl std::fmt::Debug for RawSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSource")
            .field("page_size", &self.choice.page_size)
            .field("meta", &self.choice.meta)
            .field("active", &self.choice.slot())
            .field("file_pages", &self.file_pages)
            .finish()
    }
}

impl RawSource {
    /// Opens a data file for checking, at the meta the superblock chooses (without the
    /// journal's evidence: a damaged slot is then never proven harmless).
    /// `NotADatabase` if no meta slot carries the magic (and no untorn pages are found);
    /// `Corrupted { kind: Meta }` if one does but no base can be chosen.
    pub fn open(storage: Arc<dyn Storage>) -> Result<RawSource> {
        Self::open_with_journal(storage, None)
    }

    /// [`RawSource::open`] with the journal beside the data file as evidence for the
    /// choice of meta.
    pub fn open_with_journal(
        storage: Arc<dyn Storage>,
        journal: Option<&dyn Storage>,
    ) -> Result<RawSource> {
        let file_len = storage.len().map_err(Error::from_io)?;
        let choice = choose_for_check(storage.as_ref(), journal)?;
        Ok(RawSource {
            file_pages: file_len / choice.page_size as u64,
            storage,
            choice,
        })
    }

    /// What a strict open would have refused with, if anything (the check reports it).
    pub fn refusal(&self) -> Option<&str> {
        self.choice.rollback.as_ref().map(|r| r.refusal.as_str())
    }

    /// Why a meta slot was rejected, if it was.
    pub fn slot_error(&self, slot: u64) -> Option<&str> {
        self.choice.slot_error(Slot::from_page(slot)?)
    }

    #[cfg(test)]
    pub(crate) fn active_slot_for_tests(&self) -> u64 {
        self.choice.slot().page()
    }

    /// The storage being read.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}

impl CheckSource for RawSource {
    fn page_size(&self) -> usize {
        self.choice.page_size
    }

    fn meta(&self) -> Meta {
        self.choice.meta
    }

    fn active_slot(&self) -> Option<u64> {
        Some(self.choice.slot().page())
    }

    fn damaged_slot_note(&self, slot: u64) -> Option<String> {
        let slot = Slot::from_page(slot)?;
        self.choice.proven(slot).map(str::to_owned).or_else(|| {
            (self.choice.restored_from_marker && slot == self.choice.slot())
                .then(|| "restored from the journal's generation marker".to_owned())
        })
    }

    fn read_raw_meta(&self, slot: u64) -> io::Result<Vec<u8>> {
        let slot = Slot::from_page(slot).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "meta slot must be 0 or 1")
        })?;
        superblock::read_raw(self.storage.as_ref(), slot, self.choice.page_size)
    }

    fn read_raw(&self, page_id: PageId, extent_pages: u32) -> io::Result<Vec<u8>> {
        let ps = self.choice.page_size as u64;
        let offset = page_id.offset(self.choice.page_size);
        let len = u64::from(extent_pages).checked_mul(ps);
        let end = offset.zip(len).and_then(|(o, l)| o.checked_add(l));
        // Refuse before allocating: a damaged reference must not make us allocate more
        // than the file holds.
        match (offset, len, end) {
            (Some(o), Some(l), Some(e)) if e <= self.file_pages.saturating_mul(ps) => {
                let l = usize::try_from(l)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "extent too large"))?;
                let mut buf = vec![0u8; l];
                self.storage.read_at(o, &mut buf)?;
                Ok(buf)
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

    fn file_pages(&self) -> io::Result<u64> {
        Ok(self.file_pages)
    }
}

/// Checks a data file through [`RawSource`]. When no meta can be chosen the result is
/// still a report (two `MetaInvalid` findings), not an error; a file without the untorn
/// magic is `Error::NotADatabase`.
pub fn check_storage(storage: Arc<dyn Storage>, opts: CheckOptions) -> Result<Report> {
    check_storage_with_journal(storage, None, opts)
}

/// [`check_storage`] with the journal as evidence for the choice of meta.
pub fn check_storage_with_journal(
    storage: Arc<dyn Storage>,
    journal: Option<&dyn Storage>,
    opts: CheckOptions,
) -> Result<Report> {
    match RawSource::open_with_journal(storage, journal) {
        Ok(src) => check(&src, opts),
        Err(Error::Corrupted {
            kind: CorruptionKind::Meta | CorruptionKind::OutOfRange,
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
