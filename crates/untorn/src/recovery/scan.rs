//! The journal scan (the first half of recovery): which records of the generation that
//! continues a base meta are accepted, and how the accepted ones end (see the header
//! of [`super`]).

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    check_ref, Meta, PageRef, RecordHeader, RecordKind, Sector, TxId, VerifiedPage,
    RECORD_HEADER_SIZE,
};
use crate::freeset::FreeSet;
use crate::journal::{self, Record, SECTOR_BYTES};
use crate::storage::Storage;
use crate::superblock::JournalRelation;

use super::DamagedRecord;

/// How the scan ended.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// Zeros, the end of the file, or a record of another generation.
    Clean,
    /// A revocation of the next commit (its `commit()` failed).
    Revoked(TxId),
    /// A torn tail of this many bytes.
    TornTail(u64),
    /// A complete record that fails its checksum, or damage proven durable.
    Damaged(DamagedRecord),
}

/// What the scan found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// Records to replay, in order, each with the meta after it.
    pub(crate) records: Vec<(Record, Meta)>,
    pub(crate) end: ScanEnd,
    /// Where the accepted records end.
    pub(crate) end_pos: u64,
    /// Damage that lost nothing (a damaged trailer of a record that verified).
    pub(crate) warnings: Vec<String>,
}

/// Later sectors of one generation, found by reading the journal past a damaged spot.
#[derive(Debug, Default)]
struct Probe {
    /// A trailer of the expected txid whose record starts at the damaged offset.
    trailer_flags: Option<u8>,
    /// (txid, synced_through) of every later valid commit header of the generation.
    later: Vec<(TxId, TxId)>,
}

/// Reads the journal from `from` to `len` in chunks and collects what [`Probe`] needs.
/// Bounded by the journal's length; reads each sector once.
fn probe(
    journal: &dyn Storage,
    from: u64,
    len: u64,
    base: &Meta,
    expected: TxId,
    damaged_at: u64,
) -> Result<Probe> {
    let mut out = Probe::default();
    let mut chunk = vec![0u8; 1 << 20];
    let mut at = from;
    while at.saturating_add(SECTOR_BYTES) <= len {
        let n = usize::try_from((len - at).min(chunk.len() as u64))
            .map_err(|_| Error::Internal("journal probe longer than its buffer"))?;
        let n = n - n % RECORD_HEADER_SIZE;
        let Some(buf) = chunk.get_mut(..n) else { break };
        if n == 0 {
            break;
        }
        journal.read_at(at, buf).map_err(Error::from_io)?;
        for (i, sector) in buf.chunks_exact(RECORD_HEADER_SIZE).enumerate() {
            let offset = at + (i * RECORD_HEADER_SIZE) as u64;
            match Sector::classify(sector) {
                Sector::Header(h)
                    if h.kind == RecordKind::Commit
                        && h.db_id == base.db_id
                        && h.salt == base.journal_salt
                        && h.txid > expected =>
                {
                    out.later.push((h.txid, h.synced_through));
                }
                Sector::Trailer(t)
                    if t.db_id == base.db_id
                        && t.salt == base.journal_salt
                        && t.txid == expected
                        && offset
                            .checked_add(SECTOR_BYTES)
                            .and_then(|end| end.checked_sub(t.record_len))
                            == Some(damaged_at) =>
                {
                    out.trailer_flags = Some(t.flags);
                }
                _ => {}
            }
        }
        at += n as u64;
    }
    Ok(out)
}

/// The marker a generation continuing `base` starts with, and its checksum (the first
/// record chains to it). A marker is a verbatim copy of its base meta, so a damaged
/// marker can be re-derived from the meta it copies.
fn marker_crc(base: &Meta) -> u32 {
    RecordHeader::marker(base).encode().1
}

/// Scans the journal generation that continues `base` (see the module header).
pub(crate) fn scan(
    journal: &dyn Storage,
    data: &dyn Storage,
    base: &Meta,
    relation: JournalRelation,
    page_size: usize,
) -> Result<Scan> {
    let len = journal.len().map_err(Error::from_io)?;
    let mut out = Scan {
        records: Vec::new(),
        end: ScanEnd::Clean,
        end_pos: SECTOR_BYTES,
        warnings: Vec::new(),
    };
    if !matches!(
        relation,
        JournalRelation::Continues { .. } | JournalRelation::InvalidMarker
    ) {
        return Ok(out);
    }
    let mut prev_crc = marker_crc(base);
    if let JournalRelation::Continues { marker_crc } = relation {
        if marker_crc != prev_crc {
            return Err(Error::corrupted(
                0,
                CorruptionKind::Journal,
                "the generation marker's checksum differs from the meta it copies",
            ));
        }
    }
    let mut meta = *base;
    let mut pos = SECTOR_BYTES;
    // Bounded: every accepted record advances `pos` by at least two sectors.
    while let Some(expected) = meta.txid.next() {
        let damage = |detail: String, complete: bool| (detail, complete);
        let sector = journal::read_sector(journal, pos, len)?;
        let verdict: Option<(String, bool)> = match sector {
            None | Some(Sector::Zeros) => break,
            Some(Sector::Revocation(r))
                if r.db_id == base.db_id && r.salt == base.journal_salt && r.txid == expected =>
            {
                out.end = ScanEnd::Revoked(expected);
                break;
            }
            Some(Sector::Header(h))
                if h.kind == RecordKind::Commit
                    && h.db_id == base.db_id
                    && h.salt == base.journal_salt
                    && h.txid == expected =>
            {
                if h.prev_crc != prev_crc {
                    Some(damage(
                        format!(
                            "the record of txid {expected} does not chain to the one before it"
                        ),
                        false,
                    ))
                } else {
                    match journal::read_record(journal, pos, len, &h, page_size)? {
                        Ok(rec) => {
                            let next = h.commit_meta(&meta);
                            let valid = next
                                .validate(pos)
                                .and_then(|()| monotone(&meta, &next, pos));
                            match valid {
                                Ok(()) => {
                                    if !rec.trailer_ok {
                                        out.warnings.push(format!(
                                            "the trailer of the record of txid {expected} at offset {pos} is damaged; \
                                             its header, aux and images verify, so it was replayed"
                                        ));
                                    }
                                    pos += h.record_len();
                                    prev_crc = h.hdr_crc;
                                    meta = next;
                                    out.records.push((rec, next));
                                    out.end_pos = pos;
                                    continue;
                                }
                                // The record verified whole: its meta is the damage.
                                Err(e) => Some(damage(e.to_string(), true)),
                            }
                        }
                        Err(e) => {
                            // Complete if the trailer where the header says closes it.
                            let complete = journal::read_sector(
                                journal,
                                pos.saturating_add(h.record_len())
                                    .saturating_sub(SECTOR_BYTES),
                                len,
                            )?
                            .is_some_and(|s| {
                                s == Sector::Trailer(crate::format::Trailer::of(&h, h.hdr_crc))
                            });
                            let complete = complete && h.record_len() > SECTOR_BYTES;
                            if complete && !h.synced_commit() {
                                // Durability::None: the user opted into prefix semantics.
                                out.end = ScanEnd::TornTail(h.record_len().min(len - pos));
                                break;
                            }
                            Some(damage(e.to_string(), complete))
                        }
                    }
                }
            }
            // Another generation, another database, or an older record: the clean end.
            Some(Sector::Header(_)) => break,
            Some(Sector::Revocation(_) | Sector::Trailer(_) | Sector::Other) => None,
        };
        // Damage at `pos`: what is it?
        let p = probe(journal, pos + SECTOR_BYTES, len, base, expected, pos)?;
        let (detail, complete, synced) = match verdict {
            Some((d, complete)) => (d, complete, true),
            None => match p.trailer_flags {
                Some(flags) => (
                    format!("the header of the record of txid {expected} is damaged, its trailer is intact"),
                    true,
                    flags & crate::format::FLAG_SYNCED_COMMIT != 0,
                ),
                None => (String::new(), false, true),
            },
        };
        let acknowledged = p.later.iter().any(|(_, synced)| *synced >= expected);
        let later_txids: Vec<u64> = p.later.iter().map(|(t, _)| t.get()).collect();
        if complete && synced || acknowledged {
            out.end = ScanEnd::Damaged(DamagedRecord {
                txid: expected.get(),
                offset: pos,
                acknowledged,
                complete,
                later_txids,
                detail: if detail.is_empty() {
                    format!("the record of txid {expected} is damaged")
                } else {
                    detail
                },
            });
        } else {
            // A torn tail: the record (or sector) up to the end of what was written.
            let bytes = match sector {
                Some(Sector::Header(h)) => h.record_len().min(len - pos),
                _ => SECTOR_BYTES.min(len - pos),
            };
            out.end = ScanEnd::TornTail(bytes);
        }
        break;
    }
    verify_direct_extents(data, &mut out, page_size)?;
    Ok(out)
}

/// A commit never lowers the high-water mark or the bucket counter.
fn monotone(before: &Meta, after: &Meta, pos: u64) -> Result<()> {
    if after.high_water < before.high_water || after.next_bucket_id < before.next_bucket_id {
        return Err(Error::corrupted(
            pos,
            CorruptionKind::Journal,
            format!(
                "the record of txid {} lowers the high-water mark or the bucket counter",
                after.txid
            ),
        ));
    }
    Ok(())
}

/// Verifies every direct-home extent the accepted records list by reading it back from
/// the data file, unless a later record rewrites those pages (a replay interrupted by a
/// crash may already have written the later image there). A record whose extent fails
/// is a complete record that fails: the scan ends there.
fn verify_direct_extents(data: &dyn Storage, scan: &mut Scan, page_size: usize) -> Result<()> {
    let mut covered_later = FreeSet::new();
    let mut first_bad: Option<(usize, String)> = None;
    for (i, (rec, _)) in scan.records.iter().enumerate().rev() {
        for r in &rec.direct {
            if covered_later.intersects(r.page_id.0, u64::from(r.extent_pages)) {
                continue;
            }
            if let Err(e) = read_verified(data, r, page_size)? {
                first_bad = Some((
                    i,
                    format!("direct extent {}+{}: {e}", r.page_id, r.extent_pages),
                ));
            }
        }
        for (s, l) in rec
            .images
            .iter()
            .map(|img| (img.page_id().0, u64::from(img.header().extent_pages)))
            .chain(
                rec.direct
                    .iter()
                    .map(|r| (r.page_id.0, u64::from(r.extent_pages))),
            )
        {
            covered_later.insert(s, l);
        }
    }
    if let Some((i, detail)) = first_bad {
        let later: Vec<u64> = scan
            .records
            .iter()
            .skip(i + 1)
            .map(|(r, _)| r.header.txid.get())
            .collect();
        let Some((rec, _)) = scan.records.get(i) else {
            return Err(Error::Internal("a damaged record index outside the scan"));
        };
        let txid = rec.header.txid;
        let acknowledged = scan
            .records
            .iter()
            .skip(i + 1)
            .any(|(r, _)| r.header.synced_through >= txid);
        let damaged = DamagedRecord {
            txid: txid.get(),
            offset: rec.offset,
            acknowledged,
            complete: true,
            later_txids: later,
            detail,
        };
        scan.end_pos = rec.offset;
        scan.records.truncate(i);
        scan.end = ScanEnd::Damaged(damaged);
    }
    Ok(())
}

/// Reads the extent `r` from the data file and verifies it against `r`.
pub(super) fn read_verified(
    data: &dyn Storage,
    r: &PageRef,
    page_size: usize,
) -> Result<std::result::Result<VerifiedPage, Error>> {
    let (Some(offset), Some(len)) = (
        r.page_id.offset(page_size),
        (r.extent_pages as usize).checked_mul(page_size),
    ) else {
        return Ok(Err(Error::corrupted(
            r.page_id.0,
            CorruptionKind::OutOfRange,
            "extent beyond the address space",
        )));
    };
    let mut buf = vec![0u8; len];
    match data.read_at(offset, &mut buf) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Ok(Err(Error::corrupted(
                r.page_id.0,
                CorruptionKind::OutOfRange,
                "extent beyond the end of the data file",
            )))
        }
        Err(e) => return Err(Error::from_io(e)),
    }
    Ok(VerifiedPage::verify(buf, r.page_id, page_size)
        .and_then(|p| check_ref(p.header(), r).map(|()| p)))
}
