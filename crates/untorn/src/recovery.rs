//! Recovery at open, and the one routine that moves committed pages home.
//!
//! Recovery scans the journal ([`crate::journal::scan`]) for the commits after the meta
//! the superblock chose, keeps the newest image of every page, and — read-write — writes
//! them home and advances the meta with [`write_home`], the same routine a checkpoint
//! uses. A crash anywhere in between recovers the same way at the next open (the journal
//! is only truncated after the new meta is synced).
//!
//! **Invariant:** pages are written home in commit order and synced before the meta that
//! references them is written, into the slot that is not active (crash invariant J2).

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{Meta, PageId, TxId, VerifiedPage};
use crate::journal;
use crate::storage::Storage;
use crate::superblock::{self, Slot};

/// What recovery did when the database was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Journal commits replayed on top of the newest valid meta.
    pub commits_replayed: u64,
    /// Page images written home from the journal (the doublewrite restore).
    pub pages_restored: u64,
    /// Bytes of torn journal tail discarded.
    pub bytes_discarded: u64,
    /// Set when one meta slot was damaged and the other was used.
    pub meta_fallback: Option<String>,
}

/// The state a database opens at.
pub(crate) struct Recovered {
    /// The newest committed meta (the chosen meta, or the last replayed commit's).
    pub(crate) meta: Meta,
    /// The slot holding the newest meta on disk.
    pub(crate) active: Slot,
    /// The txid of that meta.
    pub(crate) checkpointed: TxId,
    /// Replayed images not written home (read-only opens serve them from memory).
    pub(crate) unwritten: Vec<Arc<VerifiedPage>>,
    /// The salt of the journal generation found (the next one derives from it).
    pub(crate) journal_salt: u64,
    pub(crate) report: RecoveryReport,
}

/// Replays the journal on top of `choice`. Read-only (`write == false`), the replayed
/// images stay in memory; read-write, they are written home and the meta advanced.
pub(crate) fn recover(
    data: &dyn Storage,
    journal: &dyn Storage,
    choice: &superblock::Choice,
    write: bool,
) -> Result<Recovered> {
    let scan = journal::scan(journal, choice.page_size, choice.meta.txid)?;
    let mut report = RecoveryReport {
        commits_replayed: scan.records.len() as u64,
        pages_restored: 0,
        bytes_discarded: scan.bytes_discarded,
        meta_fallback: choice.fallback(),
    };
    // The newest image of every page across the replayed records.
    let mut meta = choice.meta;
    let mut newest: HashMap<PageId, Arc<VerifiedPage>> = HashMap::new();
    for rec in scan.records {
        meta = rec.header.meta;
        for img in rec.images {
            newest.insert(img.page_id(), Arc::new(img));
        }
    }
    let mut images: Vec<Arc<VerifiedPage>> = newest.into_values().collect();
    // Commit order (see `write_home`).
    images.sort_by_key(|p| (p.header().txid, p.page_id()));
    let mut active = choice.slot;
    if !write || meta.txid == choice.meta.txid {
        return Ok(Recovered {
            meta,
            active,
            checkpointed: choice.meta.txid,
            unwritten: images,
            journal_salt: scan.salt,
            report,
        });
    }
    // The doublewrite restore: every image home, then the meta.
    active = write_home(
        data,
        choice.page_size,
        &images,
        &meta,
        active,
        choice.meta.txid,
    )?;
    report.pages_restored = images.len() as u64;
    if report.commits_replayed > 0 {
        tracing::info!(
            commits = report.commits_replayed,
            pages = report.pages_restored,
            discarded = report.bytes_discarded,
            "recovered from the journal"
        );
    }
    Ok(Recovered {
        meta,
        active,
        checkpointed: meta.txid,
        unwritten: Vec::new(),
        journal_salt: scan.salt,
        report,
    })
}

/// Writes committed `images` home, syncs, then writes `meta` (the commit they belong
/// to) into the slot after `active` and syncs again; returns the new active slot. Used by
/// recovery and by every checkpoint.
///
/// Asserts what must hold for this to be safe: the images are in commit order (a newer
/// multi-page extent lands after any older image of a page it covers), each was written
/// by a commit after the one on disk (`active_txid`) and not after `meta`, and each lies
/// in `2..meta.high_water`.
pub(crate) fn write_home(
    data: &dyn Storage,
    page_size: usize,
    images: &[Arc<VerifiedPage>],
    meta: &Meta,
    active: Slot,
    active_txid: TxId,
) -> Result<Slot> {
    let in_order = images.windows(2).all(|w| match w {
        [a, b] => (a.header().txid, a.page_id()) <= (b.header().txid, b.page_id()),
        _ => true,
    });
    if !in_order {
        return Err(Error::Internal("images written home out of commit order"));
    }
    for img in images {
        let txid = img.header().txid;
        let in_bounds = img.page_id() >= PageId::FIRST_DATA
            && img
                .reference()
                .end()
                .is_some_and(|end| end <= meta.high_water);
        if !in_bounds || txid <= active_txid || txid > meta.txid {
            return Err(Error::Internal(
                "an image written home lies outside 2..high-water or outside the commits being checkpointed",
            ));
        }
        let offset = img
            .page_id()
            .offset(page_size)
            .ok_or(Error::Internal("page offset overflows"))?;
        data.write_at(offset, img.bytes()).map_err(Error::from_io)?;
    }
    data.sync().map_err(Error::from_io)?;
    superblock::advance(data, active, active_txid, meta)
}
