//! The doublewrite journal's writer: generation markers and commit records appended to
//! the sidecar file `<db>.journal` (layout in `format/journal.rs`), and reading one
//! record back. The recovery scan that judges a whole journal is `recovery.rs`'s.
//!
//! A commit's record is written in the order that makes its outcome unambiguous
//! (crash invariants J13–J15 in `docs/crash_safety.md`):
//!
//! 1. journal space for the whole record is allocated first (an ENOSPC fails the commit
//!    before any byte of it is written);
//! 2. aux, body and trailer are written; an error here leaves no valid header, so the
//!    record can never be replayed and the handle stays usable;
//! 3. the header sector is written last, then (`Durability::Immediate`) the journal is
//!    synced once: the commit is durable when that sync returns;
//! 4. if the header write or the sync fails, the caller poisons the handle and
//!    [`JournalWriter::revoke`] overwrites the header with a revocation sector and syncs:
//!    then the record can never be replayed. If that fails too, the outcome is unknown
//!    (`Error::CommitOutcomeUnknown`).

use std::sync::Arc;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    body_crc, decode_aux, encode_aux, DbId, Meta, PageId, PageRef, RecordHeader, RecordKind,
    Revocation, Sector, TxId, VerifiedPage, FLAG_SYNCED_COMMIT, RECORD_HEADER_SIZE,
};
use crate::format::{decode_header, Trailer};
use crate::limits::MAX_EXTENT_PAGES;
use crate::storage::Storage;

/// Bytes written per `write_at` call when appending a record.
const WRITE_BATCH_BYTES: usize = 1 << 20;
/// Journal space is allocated by writing zeros in chunks of this size, so that a
/// commit's one fdatasync does not also have to persist a file-size change or a block
/// allocation (measured: that metadata doubled the commit latency on ext4).
pub(crate) const ALLOCATION_CHUNK_BYTES: u64 = 1 << 20;
/// The most a commit grows the journal by at once (see `append`).
const GROWTH_MAX_BYTES: u64 = 16 << 20;
/// One journal sector.
pub(crate) const SECTOR_BYTES: u64 = RECORD_HEADER_SIZE as u64;

/// How a failed append left the journal.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// No header was written: the record can never be replayed; the handle stays usable.
    Clean(Error),
    /// The header was written (or may have been) and the record's durability is unknown:
    /// the caller must poison the handle and revoke the record.
    HeaderMayHaveLanded(Error),
}

/// Appends commit records to one generation of the journal.
pub(crate) struct JournalWriter {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) db_id: DbId,
    /// Where the next record starts.
    pub(crate) pos: u64,
    pub(crate) salt: u64,
    pub(crate) prev_crc: u32,
    /// Highest txid whose record is known durable.
    pub(crate) synced_through: TxId,
    /// Records since the generation started.
    pub(crate) commits: u64,
    /// Bytes of the journal file holding allocated blocks (zeros or older records).
    /// **Invariant:** `pos <= allocated`.
    pub(crate) allocated: u64,
    /// The furthest `pos` of this generation (what the next one pre-sizes for).
    pub(crate) peak_pos: u64,
    /// A generation start keeps at most this much allocated space (more is truncated).
    pub(crate) keep_bytes_max: u64,
}

impl JournalWriter {
    /// A writer for `storage` whose file is `len` bytes long (no generation started yet).
    pub(crate) fn new(
        storage: Arc<dyn Storage>,
        db_id: DbId,
        len: u64,
        keep_bytes_max: u64,
    ) -> JournalWriter {
        JournalWriter {
            storage,
            db_id,
            pos: SECTOR_BYTES,
            salt: 0,
            prev_crc: 0,
            synced_through: TxId::INITIAL,
            commits: 0,
            allocated: len,
            peak_pos: SECTOR_BYTES,
            keep_bytes_max,
        }
    }

    /// Grows the allocated space to at least `target` bytes by writing zeros (never
    /// shrinks it). Not synced: the next sync of the journal covers it.
    fn allocate_to(&mut self, target: u64) -> Result<()> {
        if target <= self.allocated {
            return Ok(());
        }
        let zeros = vec![0u8; WRITE_BATCH_BYTES];
        let mut at = self.allocated;
        while at < target {
            let n = usize::try_from(target - at).map_or(zeros.len(), |n| n.min(zeros.len()));
            let chunk = zeros.get(..n).ok_or(Error::Internal(
                "allocation chunk larger than the zero buffer",
            ))?;
            self.storage.write_at(at, chunk).map_err(Error::from_io)?;
            at += chunk.len() as u64;
            self.allocated = at;
        }
        Ok(())
    }

    /// Writes the generation marker of `base` at offset 0 (optionally truncating the
    /// journal to it) and syncs; then the generation's records chain to it. The marker is
    /// read back and must decode to `base` (an encoder/decoder pairing assertion).
    pub(crate) fn start_generation(&mut self, base: &Meta, truncate: bool) -> Result<()> {
        let (marker, crc) = RecordHeader::marker(base).encode();
        self.storage.write_at(0, &marker).map_err(Error::from_io)?;
        self.allocated = self.allocated.max(SECTOR_BYTES);
        if truncate || self.allocated > self.keep_bytes_max {
            self.storage.set_len(SECTOR_BYTES).map_err(Error::from_io)?;
            self.allocated = SECTOR_BYTES;
        }
        self.storage.sync().map_err(Error::from_io)?;
        let mut back = [0u8; RECORD_HEADER_SIZE];
        self.storage.read_at(0, &mut back).map_err(Error::from_io)?;
        if RecordHeader::decode(&back).and_then(|h| h.base_meta()) != Some(*base) {
            return Err(Error::Internal(
                "the generation marker read back differs from the meta it copies",
            ));
        }
        self.db_id = base.db_id;
        self.salt = base.journal_salt;
        self.pos = SECTOR_BYTES;
        self.prev_crc = crc;
        self.synced_through = base.txid;
        self.commits = 0;
        self.peak_pos = SECTOR_BYTES;
        Ok(())
    }

    /// Pre-sizes the journal off the commit path (after a generation started): room for
    /// as much as the previous generation used, plus a chunk, within `keep_bytes_max`.
    /// A full disk is not an error here (commits allocate for themselves); any other
    /// I/O error is.
    pub(crate) fn presize(&mut self, previous_peak: u64) -> Result<()> {
        let want = previous_peak
            .max(SECTOR_BYTES)
            .div_ceil(ALLOCATION_CHUNK_BYTES)
            .saturating_mul(ALLOCATION_CHUNK_BYTES)
            .saturating_add(ALLOCATION_CHUNK_BYTES)
            .min(self.keep_bytes_max.max(ALLOCATION_CHUNK_BYTES));
        match self.allocate_to(want) {
            Err(Error::NoSpace) => {
                tracing::debug!("could not pre-size the journal to {want} bytes: the disk is full");
                Ok(())
            }
            other => other,
        }
    }

    /// Appends one commit record (see the module header for the order of writes); syncs
    /// if `sync`. `freed` and `direct` are the record's aux.
    pub(crate) fn append(
        &mut self,
        meta: &Meta,
        images: &[Arc<VerifiedPage>],
        freed: &[(u64, u64)],
        direct: &[PageRef],
        sync: bool,
    ) -> std::result::Result<(), AppendError> {
        let clean = AppendError::Clean;
        let mut body_len = 0u64;
        for img in images {
            // Every image of a commit was written by that commit.
            if img.header().txid != meta.txid {
                return Err(clean(Error::Internal(
                    "journaling an image of another commit",
                )));
            }
            body_len += img.bytes().len() as u64;
        }
        let (aux, aux_len) = encode_aux(freed, direct);
        let count = |n: usize| {
            u32::try_from(n).map_err(|_| {
                AppendError::Clean(Error::Internal(
                    "more entries in a commit than a record holds",
                ))
            })
        };
        let header = RecordHeader {
            kind: RecordKind::Commit,
            flags: if sync { FLAG_SYNCED_COMMIT } else { 0 },
            txid: meta.txid,
            prev_crc: self.prev_crc,
            aux_crc: crc32c::crc32c(&aux),
            body_crc: body_crc(images.iter().map(|i| i.header())),
            image_count: count(images.len())?,
            body_len,
            aux_len: count(aux_len)?,
            freed_count: count(freed.len())?,
            direct_count: count(direct.len())?,
            synced_through: self.synced_through,
            root: meta.root,
            high_water: meta.high_water,
            next_bucket_id: meta.next_bucket_id,
            freelist: PageRef::NULL,
            meta_seq: 0,
            state: 0,
            ..RecordHeader::marker(meta)
        };
        if header.db_id != self.db_id || header.salt != self.salt {
            return Err(clean(Error::Internal(
                "a commit record for another generation than the writer's",
            )));
        }
        let (encoded, hdr_crc) = header.encode();
        let trailer = Trailer::of(&header, hdr_crc).encode();
        let record_len = header.record_len();
        let end = self.pos + record_len;
        // 1. Allocate before writing any byte of the record. Growth on the commit path
        //    (a generation outgrowing what open or the last checkpoint pre-sized) is
        //    geometric, up to GROWTH_MAX_BYTES at a time, so that it happens a handful of
        //    times per generation rather than once per chunk; a full disk falls back to
        //    just the record's space.
        if end > self.allocated {
            let step = self
                .allocated
                .clamp(ALLOCATION_CHUNK_BYTES, GROWTH_MAX_BYTES);
            let target = end
                .saturating_add(step)
                .min(self.keep_bytes_max.max(end))
                .div_ceil(ALLOCATION_CHUNK_BYTES)
                .saturating_mul(ALLOCATION_CHUNK_BYTES);
            match self.allocate_to(target) {
                Ok(()) => {}
                Err(Error::NoSpace) => self
                    .allocate_to(end.div_ceil(SECTOR_BYTES) * SECTOR_BYTES)
                    .map_err(clean)?,
                Err(e) => return Err(clean(e)),
            }
        }
        // 2. Aux, body and trailer: one sequential pass in large writes.
        let mut buf: Vec<u8> = Vec::with_capacity(
            WRITE_BATCH_BYTES.min(usize::try_from(record_len).unwrap_or(WRITE_BATCH_BYTES)),
        );
        buf.extend_from_slice(&aux);
        let mut at = self.pos + SECTOR_BYTES;
        let flush = |buf: &mut Vec<u8>, at: &mut u64| -> Result<()> {
            if !buf.is_empty() {
                self.storage.write_at(*at, buf).map_err(Error::from_io)?;
                *at += buf.len() as u64;
                buf.clear();
            }
            Ok(())
        };
        for img in images {
            if buf.len() + img.bytes().len() > WRITE_BATCH_BYTES {
                flush(&mut buf, &mut at).map_err(clean)?;
            }
            if img.bytes().len() >= WRITE_BATCH_BYTES {
                self.storage
                    .write_at(at, img.bytes())
                    .map_err(|e| clean(Error::from_io(e)))?;
                at += img.bytes().len() as u64;
            } else {
                buf.extend_from_slice(img.bytes());
            }
        }
        buf.extend_from_slice(&trailer);
        flush(&mut buf, &mut at).map_err(clean)?;
        if at != end {
            return Err(clean(Error::Internal(
                "a record's bytes do not add up to its length",
            )));
        }
        // 3. The header last, then the one sync.
        let landed = AppendError::HeaderMayHaveLanded;
        self.storage
            .write_at(self.pos, &encoded)
            .map_err(|e| landed(Error::from_io(e)))?;
        if sync {
            self.storage.sync().map_err(|e| landed(Error::from_io(e)))?;
            self.synced_through = meta.txid;
        }
        self.pos = end;
        self.peak_pos = self.peak_pos.max(end);
        self.prev_crc = hdr_crc;
        self.commits += 1;
        Ok(())
    }

    /// Overwrites the header of the record of `txid` that would start at `self.pos` with
    /// a revocation sector, and syncs: after this returns `Ok` the record can never be
    /// replayed.
    pub(crate) fn revoke(&self, txid: TxId) -> Result<()> {
        let r = Revocation {
            db_id: self.db_id,
            salt: self.salt,
            txid,
        };
        self.storage
            .write_at(self.pos, &r.encode())
            .map_err(Error::from_io)?;
        self.storage.sync().map_err(Error::from_io)
    }
}

/// One commit record read back and verified on its own (not yet judged against the
/// chain or the data file).
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) offset: u64,
    pub(crate) header: RecordHeader,
    pub(crate) freed: Vec<(u64, u64)>,
    pub(crate) direct: Vec<PageRef>,
    pub(crate) images: Vec<VerifiedPage>,
    /// Whether the trailer closes the header (the rest verified either way).
    pub(crate) trailer_ok: bool,
}

/// Reads one sector at `pos`; `None` past the end of the journal.
pub(crate) fn read_sector(storage: &dyn Storage, pos: u64, len: u64) -> Result<Option<Sector>> {
    if pos.checked_add(SECTOR_BYTES).is_none_or(|end| end > len) {
        return Ok(None);
    }
    let mut b = [0u8; RECORD_HEADER_SIZE];
    storage.read_at(pos, &mut b).map_err(Error::from_io)?;
    Ok(Some(Sector::classify(&b)))
}

/// Why a record headed by a valid header failed.
fn bad(offset: u64, detail: impl Into<String>) -> Error {
    Error::corrupted(offset, CorruptionKind::Journal, detail)
}

/// Reads the rest of the commit record whose verified header `h` is at `pos` and verifies
/// it on its own: trailer, aux, body checksums, every image (it verifies as the page it
/// claims, written by this commit, wholly inside `2..high_water`, not overlapping another
/// image of the record) and the aux runs and extents (inside `2..high_water`).
/// `Ok(Err(why))` when the record does not verify; `Err` only for I/O errors.
pub(crate) fn read_record(
    storage: &dyn Storage,
    pos: u64,
    len: u64,
    h: &RecordHeader,
    page_size: usize,
) -> Result<std::result::Result<Record, Error>> {
    let ps = page_size as u64;
    let record_len = h.record_len();
    let fits = pos.checked_add(record_len).is_some_and(|end| end <= len);
    if h.kind != RecordKind::Commit
        || h.page_size as usize != page_size
        || !h.body_len.is_multiple_of(ps)
        || u64::from(h.image_count) > h.body_len / ps
        || !fits
    {
        return Ok(Err(bad(
            pos,
            format!(
                "record of txid {} has impossible lengths or runs past the end of the journal",
                h.txid
            ),
        )));
    }
    let (Ok(aux_pad), Ok(body_len), Ok(aux_len)) = (
        usize::try_from(h.aux_padded_len()),
        usize::try_from(h.body_len),
        usize::try_from(h.aux_len),
    ) else {
        return Ok(Err(bad(pos, "record larger than the address space")));
    };
    // The trailer should close exactly this header. A record whose header, aux and
    // images all verify is whole even if its trailer is damaged (the header binds the
    // rest by their checksums); the trailer matters where the header cannot be trusted.
    let mut tbuf = [0u8; RECORD_HEADER_SIZE];
    storage
        .read_at(pos + record_len - SECTOR_BYTES, &mut tbuf)
        .map_err(Error::from_io)?;
    let trailer_ok = Trailer::decode(&tbuf) == Some(Trailer::of(h, h.hdr_crc));
    let mut rest = vec![0u8; aux_pad + body_len];
    storage
        .read_at(pos + SECTOR_BYTES, &mut rest)
        .map_err(Error::from_io)?;
    let (aux_padded, body) = rest.split_at(aux_pad);
    let aux = aux_padded.get(..aux_len).unwrap_or(&[]);
    if aux.len() != aux_len || crc32c::crc32c(aux_padded) != h.aux_crc {
        return Ok(Err(bad(
            pos,
            format!("record of txid {}: aux checksum mismatch", h.txid),
        )));
    }
    let Some((freed, direct)) = decode_aux(aux, h.freed_count, h.direct_count) else {
        return Ok(Err(bad(
            pos,
            format!(
                "record of txid {}: aux counts do not match its length",
                h.txid
            ),
        )));
    };
    let in_bounds = |start: u64, n: u64| {
        n > 0
            && start >= PageId::FIRST_DATA.0
            && start.checked_add(n).is_some_and(|e| e <= h.high_water.0)
    };
    if let Some((s, n)) = freed.iter().find(|(s, n)| !in_bounds(*s, *n)) {
        return Ok(Err(bad(
            pos,
            format!(
                "record of txid {}: freed run {s}+{n} outside 2..{}",
                h.txid, h.high_water
            ),
        )));
    }
    if let Some(r) = direct
        .iter()
        .find(|r| !in_bounds(r.page_id.0, u64::from(r.extent_pages)) || r.txid != h.txid)
    {
        return Ok(Err(bad(
            pos,
            format!(
                "record of txid {}: direct extent {}+{} (txid {}) outside 2..{} or of another commit",
                h.txid, r.page_id, r.extent_pages, r.txid, h.high_water
            ),
        )));
    }
    // Split the body into images; each must verify as the page it claims to be.
    let mut images = Vec::with_capacity(h.image_count as usize);
    let mut off = 0usize;
    while off < body.len() {
        let Some(hdr) = body.get(off..).and_then(decode_header) else {
            return Ok(Err(bad(
                pos,
                format!("record of txid {}: an image header is unreadable", h.txid),
            )));
        };
        if hdr.extent_pages == 0
            || hdr.extent_pages > MAX_EXTENT_PAGES
            || hdr.txid != h.txid
            || !in_bounds(hdr.page_id.0, u64::from(hdr.extent_pages))
        {
            return Ok(Err(bad(
                pos,
                format!(
                    "record of txid {}: image of page {} (+{}, txid {}) is of another commit or outside 2..{}",
                    h.txid, hdr.page_id, hdr.extent_pages, hdr.txid, h.high_water
                ),
            )));
        }
        let end = off.saturating_add(hdr.extent_pages as usize * page_size);
        let Some(img) = body.get(off..end) else {
            return Ok(Err(bad(
                pos,
                format!("record of txid {}: an image runs past the body", h.txid),
            )));
        };
        match VerifiedPage::verify(img.to_vec(), hdr.page_id, page_size) {
            Ok(p) => images.push(p),
            Err(e) => return Ok(Err(bad(pos, format!("record of txid {}: {e}", h.txid)))),
        }
        off = end;
    }
    if images.len() != h.image_count as usize
        || body_crc(images.iter().map(|i| i.header())) != h.body_crc
    {
        return Ok(Err(bad(
            pos,
            format!("record of txid {}: body checksum mismatch", h.txid),
        )));
    }
    // No two extents of one commit overlap.
    let mut extents: Vec<(u64, u64)> = images
        .iter()
        .map(|i| (i.page_id().0, u64::from(i.header().extent_pages)))
        .chain(
            direct
                .iter()
                .map(|r| (r.page_id.0, u64::from(r.extent_pages))),
        )
        .collect();
    extents.sort_unstable();
    if extents
        .windows(2)
        .any(|w| matches!(w, [a, b] if a.0.saturating_add(a.1) > b.0))
    {
        return Ok(Err(bad(
            pos,
            format!("record of txid {}: two extents overlap", h.txid),
        )));
    }
    Ok(Ok(Record {
        offset: pos,
        header: *h,
        freed,
        direct,
        images,
        trailer_ok,
    }))
}
