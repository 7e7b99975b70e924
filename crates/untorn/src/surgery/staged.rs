//! The state a surgery starts from and the state it leaves: settling the copy (its
//! journal replayed and checkpointed by a normal open and clean close, so every
//! acknowledged commit is in the data file), and writing the result (a rebuilt
//! freelist, both meta slots, and a journal holding only the new generation marker).

use std::sync::Arc;

use super::error::SurgeryError;
use super::tree::{read_extent, walk};
use crate::db::Builder;
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::format::{
    decode_freelist, encode_freelist, extent_pages_for, freelist_bytes, BucketId, Meta, MetaState,
    PageId, PageRef, PageType, RecordHeader, TxId, RECORD_HEADER_SIZE,
};
use crate::freeset::FreeSet;
use crate::storage::Storage;
use crate::superblock::{self, Chosen, JournalRelation};

/// The meta a surgery starts from and the file's page size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Base {
    pub meta: Meta,
    pub page_size: usize,
}

/// Whether a choice needs the journal replayed first.
fn settled(c: &superblock::Choice) -> bool {
    c.meta.state == MetaState::Clean
        && c.rollback.is_none()
        && !c.restored_from_marker
        && matches!(
            c.journal,
            JournalRelation::Continues { .. } | JournalRelation::Missing
        )
        && c.journal_len <= RECORD_HEADER_SIZE as u64
}

fn choose(data: &dyn Storage, journal: &dyn Storage) -> std::result::Result<Base, SurgeryError> {
    match superblock::choose(data, Some(journal), false)? {
        Ok(Chosen::Base(c)) if settled(&c) => Ok(Base {
            meta: c.meta,
            page_size: c.page_size,
        }),
        Ok(Chosen::Base(_)) => Err(SurgeryError::Unsettled(Error::Internal(
            "the database is not in a clean state after a clean close",
        ))),
        Ok(Chosen::Reinitialise(why)) => Err(SurgeryError::Meta(format!(
            "the database was never completely created ({why}): there is nothing to operate on"
        ))),
        Err(e) => Err(SurgeryError::Unsettled(e)),
    }
}

/// Brings the copy to a settled state and returns its base: when the journal may hold
/// commits (state `open`, records after the marker, a marker to restore), the copy is
/// opened (recovery replays and checkpoints) and closed cleanly, exactly as an
/// application's next open would. A copy the engine refuses to open is `Unsettled`.
pub(crate) fn settle(
    data: &Arc<dyn Storage>,
    journal: &Arc<dyn Storage>,
) -> std::result::Result<Base, SurgeryError> {
    if let Ok(Chosen::Base(c)) = superblock::choose(data.as_ref(), Some(journal.as_ref()), false)? {
        if settled(&c) {
            return Ok(Base {
                meta: c.meta,
                page_size: c.page_size,
            });
        }
    }
    let db = Builder::default()
        .open_storage(Arc::clone(data), Arc::clone(journal), false)
        .map_err(SurgeryError::Unsettled)?;
    drop(db); // the clean close: a `clean` meta and a journal truncated to its marker
    choose(data.as_ref(), journal.as_ref())
}

/// What writing the result did with the freelist.
#[derive(Debug, Clone, Default)]
pub(crate) struct Written {
    pub freelist_rebuilt: bool,
    pub leaked_pages: u64,
    pub unreadable_pages: Vec<u64>,
}

/// The free runs of the base's freelist, or none if it does not verify.
fn old_free(data: &dyn Storage, base: &Base) -> Vec<(u64, u64)> {
    let r = base.meta.freelist;
    if r.is_null() {
        return Vec::new();
    }
    match read_extent(
        data,
        &r,
        BucketId::NONE,
        base.page_size,
        base.meta.high_water,
    ) {
        Ok(p) if p.header().page_type == PageType::Freelist => {
            decode_freelist(p.bytes(), p.header(), base.meta.high_water).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// What the result's freelist lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FreePlan {
    /// Rebuilt from a walk of the root when the walk meets no unreadable page; otherwise
    /// the base's freelist minus what is reachable, plus the base's freelist extent, and
    /// the rest reported as leaked.
    Derive,
    /// Nothing: every page the tree does not reach is leaked (never handed out again),
    /// whatever the base's freelist said.
    Abandon,
}

/// Writes the result: the freelist as `plan` says, then both meta slots
/// (`meta_seq + 1` and `+ 2`, state `clean`, txid `txid`), then the journal: its new
/// generation marker alone. Syncs both storages.
pub(crate) fn write_result(
    data: &dyn Storage,
    journal: &dyn Storage,
    base: &Base,
    root: PageRef,
    txid: TxId,
    plan: FreePlan,
) -> std::result::Result<Written, SurgeryError> {
    let ps = base.page_size;
    let mut high_water = base.meta.high_water;
    // Every page below the high-water mark is accounted for below: the data file must
    // hold them (a settled file does; a slot a revert keeps may claim more).
    let file_pages = data.len().map_err(Error::from_io)? / ps as u64;
    if high_water.get() > file_pages {
        return Err(SurgeryError::Damaged(format!(
            "the meta's high-water mark {high_water} is beyond the end of the data file ({} long): \
             the file is truncated",
            crate::report::count(file_pages, "page")
        )));
    }
    let w = walk(data, root, ps, high_water)?;
    let mut written = Written {
        unreadable_pages: w.unreadable.iter().map(|(p, _)| *p).collect(),
        ..Written::default()
    };
    let mut free = FreeSet::new();
    let mut add_unreached = |range: std::ops::Range<u64>| {
        for p in range.filter(|p| !w.used.contains(p)) {
            free.insert(p, 1);
        }
    };
    if plan == FreePlan::Abandon {
        let data_pages = high_water.get().saturating_sub(PageId::FIRST_DATA.get());
        let reached = u64::try_from(w.used.len()).unwrap_or(u64::MAX);
        written.leaked_pages = data_pages.saturating_sub(reached);
    } else if w.unreadable.is_empty() {
        add_unreached(PageId::FIRST_DATA.get()..high_water.get());
        written.freelist_rebuilt = true;
    } else {
        for (start, len) in old_free(data, base) {
            add_unreached(start..start.saturating_add(len));
        }
        let old = base.meta.freelist;
        if let Some(end) = old.end().filter(|e| !old.is_null() && *e <= high_water) {
            add_unreached(old.page_id.get()..end.get());
        }
        let data_pages = high_water.get().saturating_sub(PageId::FIRST_DATA.get());
        let reached = u64::try_from(w.used.len()).unwrap_or(u64::MAX);
        let accounted = reached.saturating_add(free.pages());
        written.leaked_pages = data_pages.saturating_sub(accounted);
    }
    let mut freelist = PageRef::NULL;
    if free.pages() > 0 {
        let pages = extent_pages_for(freelist_bytes(free.run_count()), ps)
            .ok_or(Error::Internal("freelist extent size"))?;
        // First fit inside the free pages; else beyond the high-water mark.
        let at = free
            .runs()
            .find(|(_, len)| *len >= u64::from(pages))
            .map(|(start, _)| start);
        let start = match at {
            Some(s) => {
                free.remove(s, u64::from(pages));
                s
            }
            None => {
                let s = high_water.get();
                high_water = PageId(s + u64::from(pages));
                s
            }
        };
        let runs: Vec<(u64, u64)> = free.runs().collect();
        let (bytes, h) = encode_freelist(&runs, PageId(start), txid, ps, pages)?;
        let off = PageId(start)
            .offset(ps)
            .ok_or(Error::Internal("freelist offset"))?;
        data.write_at(off, &bytes).map_err(Error::from_io)?;
        freelist = h.reference();
    }
    write_metas(
        data,
        journal,
        Meta {
            txid,
            root,
            freelist,
            high_water,
            ..base.meta
        },
    )?;
    Ok(written)
}

/// Writes `meta` (its `meta_seq` the base's) as `meta_seq + 1` and `+ 2` into both
/// slots, state `clean`, each with a new salt, then truncates the journal to the
/// newest one's generation marker. Syncs both.
pub(crate) fn write_metas(
    data: &dyn Storage,
    journal: &dyn Storage,
    meta: Meta,
) -> std::result::Result<Meta, SurgeryError> {
    let ps = meta.page_size as usize;
    let mut entropy = Entropy::random();
    let mut last = meta;
    for step in 1..=2u64 {
        let seq = meta
            .meta_seq
            .checked_add(step)
            .ok_or(Error::Internal("meta_seq overflow"))?;
        let m = Meta {
            meta_seq: seq,
            journal_salt: entropy.salt(seq),
            state: MetaState::Clean,
            ..meta
        };
        m.validate(m.slot())
            .map_err(|e| SurgeryError::Refused(format!("the new meta would not verify: {e}")))?;
        let off = PageId(m.slot())
            .offset(ps)
            .ok_or(Error::Internal("meta offset"))?;
        data.write_at(off, &m.encode()?).map_err(Error::from_io)?;
        last = m;
    }
    data.sync().map_err(Error::from_io)?;
    let (marker, _) = RecordHeader::marker(&last).encode();
    journal.set_len(0).map_err(Error::from_io)?;
    journal.write_at(0, &marker).map_err(Error::from_io)?;
    journal.sync().map_err(Error::from_io)?;
    Ok(last)
}

/// Writes one sealed extent at its own id.
pub(crate) fn write_extent(
    data: &dyn Storage,
    id: PageId,
    bytes: &[u8],
    page_size: usize,
) -> Result<()> {
    let off = id.offset(page_size).ok_or(Error::Internal("page offset"))?;
    data.write_at(off, bytes).map_err(Error::from_io)
}
