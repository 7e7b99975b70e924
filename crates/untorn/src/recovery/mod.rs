//! Recovery at open — the journal scan, the replay plan, an explicit rollback — and the
//! one routine that moves committed pages home, advances the meta and starts a journal
//! generation ([`advance`]), which recovery, session start, every checkpoint and a clean
//! close share.
//!
//! The scan (§3.7 of the format design) accepts commit records from the generation
//! marker on while each verifies on its own (`journal::read_record`), chains (database,
//! salt, `prev_crc`, txid + 1) and carries a valid meta; direct-home extents are read back
//! from the data file and verified against their references. At the first record that
//! does not, it tells apart a clean end (zeros, a revocation, another generation), a torn
//! tail (J5), a *complete* record that fails its checksum (a record whose trailer closes
//! it: reported loudly, never cut — J21) and damage a later record proves durable (J6).
//!
//! **Invariant:** pages are written home in commit order and synced before the meta that
//! references them is written into the slot not in use; the journal generation that
//! follows starts only after that meta is synced (J2, J4). Each step pairs what it
//! writes with what it reads back.

use std::collections::HashMap;
use std::sync::Arc;

use crate::entropy::Entropy;
use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    decode_freelist, encode_freelist, extent_pages_for, freelist_bytes, Meta, MetaState, PageId,
    PageRef, RecordHeader, RecordKind, TxId, VerifiedPage, RECORD_HEADER_SIZE,
};
use crate::freeset::FreeSet;
use crate::journal::{JournalWriter, Record, SECTOR_BYTES};
use crate::storage::Storage;
use crate::superblock::{self, Choice, JournalRelation};

/// What open does when recovering would need a choice only the user can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Recovery {
    /// Refuse with a typed error naming what is damaged and what a rollback would
    /// discard (`MetaDamaged`, `ForeignJournal`, `JournalMissing`,
    /// `JournalRecordDamaged`, `Corrupted { kind: Journal }`).
    #[default]
    Strict,
    /// Open at the newest intact state instead, and report exactly what was discarded
    /// ([`RecoveryReport::rollback`]). A read-write open keeps the journal's bytes as
    /// `<db>.journal.rollback-<unix-seconds>` before reusing it.
    RollbackToLastGood,
}

/// A complete journal record that fails its checksum (or damage a later record proves
/// was durable), found by the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DamagedRecord {
    /// The commit the damaged record holds.
    pub txid: u64,
    /// Its byte offset in the journal.
    pub offset: u64,
    /// Whether a later record proves the commit was durable (acknowledged).
    pub acknowledged: bool,
    /// Whether the record is complete (its trailer closes it) rather than proven durable
    /// by a later record.
    pub complete: bool,
    /// Txids of the valid records of the same generation after it.
    pub later_txids: Vec<u64>,
    /// What failed.
    pub detail: String,
}

/// What an explicit rollback gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RollbackReport {
    /// The txid the database opened at.
    pub to_txid: u64,
    /// What a strict open would have refused with.
    pub reason: String,
    /// The commits discarded (damaged, unverifiable or foreign records' txids).
    pub discarded_txids: Vec<u64>,
    /// Set when commits after this txid may have existed, count unknown (a missing
    /// journal, or a damaged meta slot nothing proves older).
    pub discarded_unknown_after: Option<u64>,
    /// A damaged meta slot that may have been newer.
    pub damaged_slot: Option<u64>,
    /// The txid that slot claims, if its magic and version survived.
    pub claimed_txid: Option<u64>,
    /// Where the journal's bytes were kept before it was reused.
    pub journal_kept_as: Option<String>,
}

/// What recovery did when the database was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RecoveryReport {
    /// Journal commits replayed on top of the base meta.
    pub commits_replayed: u64,
    /// Page images written home from the journal (the doublewrite restore).
    pub pages_restored: u64,
    /// Bytes of torn journal tail discarded.
    pub bytes_discarded: u64,
    /// Set when one meta slot was damaged: which, why, and the evidence that it is not
    /// newer (or that nothing proves it).
    pub meta_fallback: Option<String>,
    /// Set when a damaged meta slot was restored from the journal's generation marker.
    pub meta_restored: Option<String>,
    /// A commit whose `commit()` failed and whose record was revoked.
    pub revoked_txid: Option<u64>,
    /// A complete record that fails its checksum, or damage a later record proves
    /// durable: a read-only open serves the state before it and says so here.
    pub damaged_record: Option<DamagedRecord>,
    /// Set when the open rolled back (`Recovery::RollbackToLastGood`): what it gave up.
    pub rollback: Option<RollbackReport>,
    /// Everything else worth saying (losing nothing): torn markers, a recreated journal.
    pub warnings: Vec<String>,
}

// ---- the scan: in `scan.rs` ---------------------------------------------------------

mod scan;
use scan::read_verified;
pub(crate) use scan::{scan, ScanEnd};

// ---- replay --------------------------------------------------------------------------

/// The state after replaying accepted records on top of a base meta.
pub(crate) struct Replayed {
    /// The newest meta (the base's if nothing was replayed).
    pub(crate) meta: Meta,
    /// The newest image of every page the records wrote, in commit order.
    pub(crate) images: Vec<Arc<VerifiedPage>>,
    /// Free pages of the newest state: the base's freelist, minus what each record
    /// allocated (its images and direct extents), plus what it freed.
    pub(crate) free: FreeSet,
    /// Pages the records freed (not home-safe until the next checkpoint).
    pub(crate) freed_since_checkpoint: FreeSet,
    pub(crate) commits: u64,
}

/// The free runs of `base`'s freelist extent, read from the data file and verified.
pub(crate) fn base_free(data: &dyn Storage, base: &Meta, page_size: usize) -> Result<FreeSet> {
    if base.freelist.is_null() {
        return Ok(FreeSet::new());
    }
    let page = read_verified(data, &base.freelist, page_size)??;
    Ok(FreeSet::from_runs(decode_freelist(
        page.bytes(),
        page.header(),
        base.high_water,
    )?))
}

/// Replays `records` on top of `base` in memory.
pub(crate) fn replay(
    data: &dyn Storage,
    base: &Meta,
    records: Vec<(Record, Meta)>,
    page_size: usize,
) -> Result<Replayed> {
    let mut free = base_free(data, base, page_size)?;
    let mut freed_since = FreeSet::new();
    let mut meta = *base;
    let mut newest: HashMap<PageId, Arc<VerifiedPage>> = HashMap::new();
    let commits = records.len() as u64;
    for (rec, after) in records {
        if Some(after.txid) != meta.txid.next() {
            return Err(Error::Internal("replaying records out of order"));
        }
        for img in &rec.images {
            free.remove(img.page_id().0, u64::from(img.header().extent_pages));
        }
        for r in &rec.direct {
            free.remove(r.page_id.0, u64::from(r.extent_pages));
        }
        for (s, l) in &rec.freed {
            free.insert(*s, *l);
            freed_since.insert(*s, *l);
        }
        for img in rec.images {
            newest.insert(img.page_id(), Arc::new(img));
        }
        meta = after;
    }
    let mut images: Vec<Arc<VerifiedPage>> = newest.into_values().collect();
    // Commit order (see `advance`).
    images.sort_by_key(|p| (p.header().txid, p.page_id()));
    Ok(Replayed {
        meta,
        images,
        free,
        freed_since_checkpoint: freed_since,
        commits,
    })
}

/// The checkpoint's freelist extent (§1.5): every page of `all_free` but those it takes
/// itself, placed on home-safe pages (in `free` and not in `avoid`, the pages freed since
/// the last checkpoint) or beyond the high-water mark, so it never overlaps a page the
/// meta still on disk needs. Takes its pages out of `free`. Returns the image (`None` when
/// nothing is free) and the new high-water mark.
pub(crate) fn freelist_extent(
    free: &mut FreeSet,
    avoid: &FreeSet,
    mut all_free: FreeSet,
    txid: TxId,
    high_water: PageId,
    page_size: usize,
) -> Result<(Option<Arc<VerifiedPage>>, PageId)> {
    if all_free.pages() == 0 {
        return Ok((None, high_water));
    }
    // Taking the extent out of a run can split it in two.
    let bound = all_free.run_count() + 1;
    let pages = extent_pages_for(freelist_bytes(bound), page_size)
        .ok_or(Error::Internal("freelist larger than an extent"))?;
    let (id, high_water) = match free.allocate_avoiding(u64::from(pages), avoid) {
        Some(start) => (PageId(start), high_water),
        None => (
            high_water,
            high_water
                .checked_add(u64::from(pages))
                .ok_or(Error::Internal("page ids exhausted"))?,
        ),
    };
    if avoid.intersects(id.0, u64::from(pages)) {
        return Err(Error::Internal("the freelist extent is not home-safe"));
    }
    all_free.remove(id.0, u64::from(pages));
    let runs: Vec<(u64, u64)> = all_free.runs().collect();
    let (bytes, _) = encode_freelist(&runs, id, txid, page_size, pages)?;
    let img = VerifiedPage::verify(bytes, id, page_size)?;
    Ok((Some(Arc::new(img)), high_water))
}

// ---- the shared routine ---------------------------------------------------------------

/// Writes committed `images` home, syncs, writes `next` into the slot not in use and
/// syncs, then starts the journal generation that continues `next` (truncating the
/// journal to its marker if `truncate`). Used by recovery, session start, every
/// checkpoint and a clean close.
///
/// Asserts what must hold for this to be safe: `next` is the meta after `on_disk`
/// (`meta_seq + 1`, so the other slot; txid not lower), the images are in commit order,
/// each was written by a commit after `on_disk` and not after `next`, and each lies in
/// `2..next.high_water`.
pub(crate) fn advance(
    data: &dyn Storage,
    jw: &mut JournalWriter,
    images: &[Arc<VerifiedPage>],
    on_disk: &Meta,
    next: &Meta,
    truncate: bool,
) -> Result<()> {
    if Some(next.meta_seq) != on_disk.meta_seq.checked_add(1)
        || next.slot() == on_disk.slot()
        || next.txid < on_disk.txid
        || next.db_id != on_disk.db_id
    {
        return Err(Error::Internal(
            "a new meta must follow the one on disk, into the other slot",
        ));
    }
    next.validate(next.slot())
        .map_err(|_| Error::Internal("advancing to a meta that does not validate"))?;
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
                .is_some_and(|end| end <= next.high_water);
        if !in_bounds || txid <= on_disk.txid || txid > next.txid {
            return Err(Error::Internal(
                "an image written home lies outside 2..high-water or outside the commits being checkpointed",
            ));
        }
        let offset = img
            .page_id()
            .offset(data_page_size(next))
            .ok_or(Error::Internal("page offset overflows"))?;
        data.write_at(offset, img.bytes()).map_err(Error::from_io)?;
    }
    if !images.is_empty() {
        data.sync().map_err(Error::from_io)?;
    }
    superblock::write_meta(data, next)?;
    jw.start_generation(next, truncate)
}

fn data_page_size(m: &Meta) -> usize {
    m.page_size as usize
}

// ---- open ----------------------------------------------------------------------------

/// Keeps a journal's bytes before a rollback reuses it; returns where they went.
pub(crate) type Evidence<'a> = &'a dyn Fn(&dyn Storage) -> Result<String>;

/// How to recover.
pub(crate) struct RecoverOptions<'a> {
    pub(crate) read_only: bool,
    pub(crate) rollback: bool,
    pub(crate) evidence: Option<Evidence<'a>>,
    pub(crate) keep_bytes_max: u64,
}

/// The state a database opens at.
pub(crate) struct Recovered {
    /// The newest committed meta.
    pub(crate) meta: Meta,
    /// The meta in the active slot on disk (read-write: `meta` itself).
    pub(crate) on_disk: Meta,
    /// Replayed images not written home (read-only opens serve them from memory).
    pub(crate) unwritten: Vec<Arc<VerifiedPage>>,
    /// Free pages of `meta` (read-only: for the checker; `None` if unreadable).
    pub(crate) free: Option<FreeSet>,
    /// Pages freed since the checkpoint on disk.
    pub(crate) freed_since_checkpoint: FreeSet,
    /// The writer of the new generation (read-write only).
    pub(crate) journal: Option<JournalWriter>,
    pub(crate) report: RecoveryReport,
}

/// Txids of this database's commit headers anywhere in the journal (for reporting what
/// a discarded journal held).
fn commit_txids(journal: &dyn Storage, base: &Meta) -> Result<Vec<u64>> {
    let len = journal.len().map_err(Error::from_io)?;
    let mut out = Vec::new();
    let mut pos = 0;
    let mut buf = vec![0u8; 1 << 20];
    while pos + SECTOR_BYTES <= len {
        let n = usize::try_from((len - pos).min(buf.len() as u64)).unwrap_or(0);
        let n = n - n % RECORD_HEADER_SIZE;
        let Some(b) = buf.get_mut(..n) else { break };
        if n == 0 {
            break;
        }
        journal.read_at(pos, b).map_err(Error::from_io)?;
        for s in b.chunks_exact(RECORD_HEADER_SIZE) {
            if let Some(h) = RecordHeader::decode(s) {
                if h.kind == RecordKind::Commit && h.db_id == base.db_id && h.txid > base.txid {
                    out.push(h.txid.get());
                }
            }
        }
        pos += n as u64;
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Recovers the database at `choice`: scans and replays the journal, applies the
/// recovery policy, and — read-write — restores a meta slot from the marker, writes the
/// replayed pages home, advances the meta (state `open`, a new salt) and starts the new
/// journal generation (§3.2, §3.7, §3.8).
pub(crate) fn recover(
    data: &dyn Storage,
    journal: &Arc<dyn Storage>,
    choice: &Choice,
    opts: &RecoverOptions<'_>,
    entropy: &mut Entropy,
) -> Result<Recovered> {
    let page_size = choice.page_size;
    let base = choice.meta;
    if let Some(t) = &choice.truncated {
        return Err(Error::corrupted(
            base.high_water.get().saturating_sub(1),
            CorruptionKind::OutOfRange,
            t.clone(),
        ));
    }
    let mut report = RecoveryReport {
        meta_fallback: choice.fallback(),
        warnings: choice.warnings.clone(),
        ..RecoveryReport::default()
    };
    if choice.restored_from_marker {
        report.meta_restored = choice.warnings.first().cloned();
    }
    let mut discard_journal = false;
    let mut rollback: Option<RollbackReport> = None;
    if let Some(rb) = &choice.rollback {
        discard_journal = rb.discards_journal;
        rollback = Some(RollbackReport {
            to_txid: base.txid.get(),
            reason: rb.refusal.clone(),
            discarded_txids: if rb.discards_journal {
                commit_txids(journal.as_ref(), &base)?
            } else {
                Vec::new()
            },
            discarded_unknown_after: rb.unknown_after.map(TxId::get),
            damaged_slot: rb.damaged_slot,
            claimed_txid: rb.claimed_txid,
            journal_kept_as: None,
        });
    }
    let relation = if discard_journal {
        JournalRelation::Ignored
    } else {
        choice.journal
    };
    let scan = scan(journal.as_ref(), data, &base, relation, page_size)?;
    if relation == JournalRelation::InvalidMarker {
        report.warnings.push(if scan.records.is_empty() {
            "the journal's generation marker is torn or damaged and no record of its generation follows: \
             a crash while it was written; nothing newer existed"
                .to_owned()
        } else {
            format!(
                "the journal's generation marker is damaged; it was re-derived from the meta it copies and {} chained to it",
                crate::words::count(scan.records.len() as u64, "record")
            )
        });
    }
    report.warnings.extend(scan.warnings.iter().cloned());
    let mut records = scan.records;
    match scan.end {
        ScanEnd::Clean => {}
        ScanEnd::Revoked(t) => {
            report.revoked_txid = Some(t.get());
            report.warnings.push(format!(
                "commit txid {t} was revoked: its commit() returned an error, so it is not replayed"
            ));
        }
        ScanEnd::TornTail(bytes) => {
            report.bytes_discarded = bytes;
            report
                .warnings
                .push(format!("{bytes} bytes of torn journal tail discarded (a commit that was never acknowledged)"));
        }
        ScanEnd::Damaged(d) => {
            let refusal = if d.complete {
                Error::JournalRecordDamaged {
                    txid: d.txid,
                    offset: d.offset,
                    acknowledged: d.acknowledged,
                    later_records: d.later_txids.len() as u64,
                }
            } else {
                Error::corrupted(
                    d.offset,
                    CorruptionKind::Journal,
                    format!(
                        "journal record for txid {} at offset {} is damaged, but a later record shows it had been made durable; \
                         `untorn recover FILE --rollback` opens at txid {} and discards txids {:?}",
                        d.txid,
                        d.offset,
                        d.txid.saturating_sub(1),
                        std::iter::once(d.txid).chain(d.later_txids.iter().copied()).collect::<Vec<_>>()
                    ),
                )
            };
            tracing::error!("{refusal}");
            if opts.rollback {
                discard_journal = true;
                let mut discarded = vec![d.txid];
                discarded.extend(d.later_txids.iter().copied());
                let to = records.last().map_or(base.txid, |(_, m)| m.txid).get();
                match rollback.as_mut() {
                    Some(r) => {
                        r.discarded_txids.extend(discarded);
                        r.to_txid = to;
                    }
                    None => {
                        rollback = Some(RollbackReport {
                            to_txid: to,
                            reason: refusal.to_string(),
                            discarded_txids: discarded,
                            discarded_unknown_after: None,
                            damaged_slot: None,
                            claimed_txid: None,
                            journal_kept_as: None,
                        })
                    }
                }
                report.damaged_record = Some(d);
            } else if opts.read_only {
                report.warnings.push(format!(
                    "{refusal} — this read-only open serves the state before it (txid {})",
                    d.txid.saturating_sub(1)
                ));
                report.damaged_record = Some(d);
            } else {
                return Err(refusal);
            }
        }
    }
    if let Some(r) = rollback.as_mut() {
        r.discarded_txids.sort_unstable();
        r.discarded_txids.dedup();
    }
    report.commits_replayed = records.len() as u64;
    let replayed_any = !records.is_empty();
    let replayed = match replay(data, &base, std::mem::take(&mut records), page_size) {
        Ok(r) => r,
        // Read-only, the checker still wants to look at a database whose freelist is
        // damaged; everything else needs it.
        Err(e @ Error::Corrupted { .. }) if opts.read_only && !replayed_any => {
            report
                .warnings
                .push(format!("the freelist cannot be read: {e}"));
            Replayed {
                meta: base,
                images: Vec::new(),
                free: FreeSet::new(),
                freed_since_checkpoint: FreeSet::new(),
                commits: 0,
            }
        }
        Err(e) => return Err(e),
    };
    if opts.read_only {
        if let Some(r) = rollback.as_mut() {
            r.to_txid = replayed.meta.txid.get();
        }
        report.rollback = rollback;
        return Ok(Recovered {
            meta: replayed.meta,
            on_disk: base,
            unwritten: replayed.images,
            free: Some(replayed.free),
            freed_since_checkpoint: replayed.freed_since_checkpoint,
            journal: None,
            report,
        });
    }

    // Read-write: keep the evidence, restore, write home, advance, start a generation.
    let journal_len = journal.len().map_err(Error::from_io)?;
    if discard_journal && journal_len > 0 {
        if let Some(r) = rollback.as_mut() {
            r.journal_kept_as = match opts.evidence {
                Some(keep) => Some(keep(journal.as_ref())?),
                None => None,
            };
        }
    }
    if choice.restored_from_marker {
        superblock::write_meta(data, &base)?;
    }
    let mut jw = JournalWriter::new(
        Arc::clone(journal),
        base.db_id,
        journal_len,
        opts.keep_bytes_max,
    );
    let marker_is_base = matches!(
        choice.journal,
        JournalRelation::Continues { .. } | JournalRelation::Retired
    ) && !discard_journal;
    if !marker_is_base {
        // Evidence for the slot about to be written: a marker of the base (J17).
        jw.start_generation(&base, discard_journal)?;
    }
    let Replayed {
        meta,
        images,
        mut free,
        freed_since_checkpoint,
        commits,
    } = replayed;
    let mut next = meta;
    let mut images = images;
    let mut freed_since = FreeSet::new();
    if commits > 0 {
        // The replayed state gets its own freelist extent; the base's becomes free.
        let mut all_free = free.clone();
        if !base.freelist.is_null() {
            all_free.insert(
                base.freelist.page_id.0,
                u64::from(base.freelist.extent_pages),
            );
        }
        let (img, high_water) = freelist_extent(
            &mut free,
            &freed_since_checkpoint,
            all_free,
            meta.txid,
            meta.high_water,
            page_size,
        )?;
        next.freelist = img.as_ref().map_or(PageRef::NULL, |i| i.reference());
        next.high_water = high_water;
        images.extend(img);
        images.sort_by_key(|p| (p.header().txid, p.page_id()));
        if !base.freelist.is_null() {
            let (s, l) = (
                base.freelist.page_id.0,
                u64::from(base.freelist.extent_pages),
            );
            free.insert(s, l);
            freed_since.insert(s, l);
        }
    }
    next.meta_seq = base
        .meta_seq
        .checked_add(1)
        .ok_or(Error::Internal("meta sequence exhausted"))?;
    next.journal_salt = entropy.salt(next.meta_seq);
    next.state = MetaState::Open;
    advance(data, &mut jw, &images, &base, &next, discard_journal)?;
    jw.presize(scan.end_pos.max(journal_len.min(opts.keep_bytes_max)))?;
    report.pages_restored = images.len() as u64;
    if commits > 0 {
        tracing::info!(
            commits,
            pages = report.pages_restored,
            discarded = report.bytes_discarded,
            "recovered from the journal"
        );
    }
    if let Some(r) = rollback.as_mut() {
        r.to_txid = next.txid.get();
        tracing::warn!(
            "rolled back to txid {}: discarded {:?}{}; journal kept as {:?}",
            r.to_txid,
            r.discarded_txids,
            r.discarded_unknown_after
                .map(|t| format!(" and every commit after txid {t}, count unknown"))
                .unwrap_or_default(),
            r.journal_kept_as
        );
    }
    report.rollback = rollback;
    Ok(Recovered {
        meta: next,
        on_disk: next,
        unwritten: Vec::new(),
        free: Some(free),
        freed_since_checkpoint: freed_since,
        journal: Some(jw),
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::scan::Scan;
    use super::*;
    use crate::format::{encode_overflow, BucketId};
    use crate::storage::MemoryStorage;
    use crate::superblock::Chosen;

    /// A crashed database with two commits in its journal, and the record of a third
    /// built by hand: it wrote one extent straight home (a direct extent) and nothing
    /// through the journal. Returns (data, journal, the direct extent's reference).
    fn with_direct_extent() -> (MemoryStorage, MemoryStorage, PageRef) {
        let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
        let db = crate::Database::builder()
            .deterministic_ids(5)
            .open_storage(Arc::new(data.clone()), Arc::new(journal.clone()), true)
            .unwrap();
        for k in ["a", "b"] {
            db.update(|tx| tx.create_bucket_if_not_exists("b")?.put(k, "v"))
                .unwrap();
        }
        std::mem::forget(db);
        let Chosen::Base(choice) = superblock::choose(&data, Some(&journal), false)
            .unwrap()
            .unwrap()
        else {
            panic!("a base")
        };
        let s = scan(&journal, &data, &choice.meta, choice.journal, 4096).unwrap();
        let (last, meta) = s.records.last().unwrap();
        // The direct extent: a sealed overflow extent at the high-water mark, written home.
        let txid = meta.txid.next().unwrap();
        let id = meta.high_water;
        let (bytes, h) = encode_overflow(&[7u8; 100], id, txid, BucketId(2), 4096).unwrap();
        data.write_at(id.offset(4096).unwrap(), &bytes).unwrap();
        let next = Meta {
            txid,
            high_water: id.checked_add(1).unwrap(),
            ..*meta
        };
        let mut jw = JournalWriter::new(Arc::new(journal.clone()), meta.db_id, 0, 1 << 30);
        jw.allocated = journal.len().unwrap();
        jw.salt = choice.meta.journal_salt;
        jw.pos = s.end_pos;
        jw.prev_crc = last.header.hdr_crc;
        jw.synced_through = meta.txid;
        jw.append(&next, &[], &[], &[h.reference()], true).unwrap();
        (data, journal, h.reference())
    }

    fn recover_strict(data: &MemoryStorage, journal: &MemoryStorage) -> Result<Scan> {
        let Ok(Ok(Chosen::Base(choice))) = superblock::choose(data, Some(journal), false) else {
            panic!("a base")
        };
        scan(journal, data, &choice.meta, choice.journal, 4096)
    }

    #[test]
    fn j24_direct_extents_are_verified_against_the_data_file() {
        let (data, journal, r) = with_direct_extent();
        let s = recover_strict(&data, &journal).unwrap();
        assert_eq!(s.records.len(), 3, "{:?}", s.end);
        assert_eq!(s.records.last().unwrap().0.direct, vec![r]);
        assert!(matches!(s.end, ScanEnd::Clean));
        // Replayed, the direct extent is allocated: not in the free set.
        let base = superblock::choose(&data, Some(&journal), false)
            .unwrap()
            .unwrap();
        let Chosen::Base(choice) = base else { panic!() };
        let replayed = replay(&data, &choice.meta, s.records, 4096).unwrap();
        assert!(!replayed.free.intersects(r.page_id.0, 1));
        // The extent damaged at home: the record is complete but fails (never replayed
        // as if its extent were there).
        let mut b = data.to_vec();
        let at = usize::try_from(r.page_id.offset(4096).unwrap()).unwrap() + 200;
        b[at] ^= 1;
        let damaged = MemoryStorage::from_bytes(b);
        let s = recover_strict(&damaged, &journal).unwrap();
        assert_eq!(s.records.len(), 2);
        match s.end {
            ScanEnd::Damaged(d) => assert!(d.complete && d.txid == 3, "{d:?}"),
            other => panic!("expected a damaged record, got {other:?}"),
        }
    }

    #[test]
    fn j24_replay_refuses_image_ids_outside_the_records_high_water_mark() {
        let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
        let db = crate::Database::builder()
            .deterministic_ids(6)
            .open_storage(Arc::new(data.clone()), Arc::new(journal.clone()), true)
            .unwrap();
        db.update(|tx| tx.create_bucket_if_not_exists("b")?.put("k", "v"))
            .unwrap();
        std::mem::forget(db);
        let Ok(Ok(Chosen::Base(choice))) = superblock::choose(&data, Some(&journal), false) else {
            panic!("a base")
        };
        let s = scan(&journal, &data, &choice.meta, choice.journal, 4096).unwrap();
        let (rec, meta) = s.records.first().unwrap();
        // Rewrite the record with a high-water mark below its images (headers re-sealed,
        // so only the bound catches it).
        let mut h = rec.header;
        h.high_water = crate::format::PageId(2);
        let (enc, crc) = h.encode();
        let trailer = crate::format::Trailer::of(&h, crc).encode();
        let j = MemoryStorage::from_bytes(journal.to_vec());
        j.write_at(rec.offset, &enc).unwrap();
        j.write_at(rec.offset + h.record_len() - SECTOR_BYTES, &trailer)
            .unwrap();
        let _ = meta;
        let s = scan(&j, &data, &choice.meta, choice.journal, 4096).unwrap();
        assert!(s.records.is_empty());
        assert!(
            matches!(s.end, ScanEnd::Damaged(ref d) if d.complete),
            "{:?}",
            s.end
        );
    }
}
