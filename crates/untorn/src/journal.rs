//! The doublewrite journal: commit records appended to a sidecar file, and the recovery
//! scan that reads them back.
//!
//! A commit appends one record (header sector + the images of every page it wrote) and,
//! with `Durability::Immediate`, syncs the journal once: the commit is durable when that
//! sync returns (crash invariant J1 in `docs/crash_safety.md`). A checkpoint later writes
//! the images home and only then truncates the journal (J4).
//!
//! The scan accepts records in order while each one verifies and chains to the previous
//! one (same salt, `prev_crc`, txid + 1). At the first record that does not, it decides:
//! if a later valid record of the same generation exists whose `synced_through` covers
//! the damaged txid, the damage is corruption (J6); otherwise it is a torn tail, cut off (J5).

use std::sync::Arc;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::{
    body_crc, decode_header, record_span, Meta, RecordHeader, TxId, VerifiedPage,
    RECORD_HEADER_SIZE,
};
use crate::limits::MAX_EXTENT_PAGES;
use crate::storage::Storage;

/// Bytes written per `write_at` call when appending a record.
const WRITE_BATCH_BYTES: usize = 1 << 20;
/// Journal space is allocated by writing zeros in chunks of this size, so that a
/// commit's one fdatasync does not also have to persist a file-size change or a block
/// allocation (measured: that metadata doubled the commit latency on ext4).
pub(crate) const ALLOCATION_CHUNK_BYTES: u64 = 1 << 20;

/// Derives the next generation's salt (deterministic, distinct along a chain).
pub(crate) fn next_salt(prev_salt: u64, base_txid: TxId) -> u64 {
    let mut z = prev_salt ^ base_txid.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555_AAAA_1234_5678;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends commit records.
pub(crate) struct JournalWriter {
    pub(crate) storage: Arc<dyn Storage>,
    /// Where the next record starts.
    pub(crate) pos: u64,
    pub(crate) salt: u64,
    pub(crate) prev_crc: u32,
    /// Highest txid whose record is known durable.
    pub(crate) synced_through: TxId,
    /// Records since the last reset.
    pub(crate) commits: u64,
    /// Bytes of the journal file holding allocated blocks (zeros or older records).
    /// **Invariant:** `pos <= allocated`.
    pub(crate) allocated: u64,
    /// A reset keeps at most this much allocated space (a larger journal is truncated).
    pub(crate) keep_bytes_max: u64,
}

impl JournalWriter {
    /// Appends one commit record; syncs if `sync`. On error the caller must poison the
    /// handle: the journal tail is in an unknown state.
    pub(crate) fn append(
        &mut self,
        meta: &Meta,
        images: &[Arc<VerifiedPage>],
        sync: bool,
    ) -> Result<()> {
        let mut body_len = 0u64;
        for img in images {
            // Every image of a commit was written by that commit.
            if img.header().txid != meta.txid {
                return Err(Error::Internal("journaling an image of another commit"));
            }
            body_len += img.bytes().len() as u64;
        }
        let header = RecordHeader {
            header_crc: 0,
            salt: self.salt,
            prev_crc: self.prev_crc,
            body_crc: body_crc(images.iter().map(|img| img.header())),
            body_len,
            image_count: u32::try_from(images.len())
                .map_err(|_| Error::Internal("more images in a commit than a record holds"))?,
            synced_through: self.synced_through,
            meta: *meta,
        };
        let (encoded, header_crc) = header.encode();
        // One sequential pass in large writes: header then images.
        let mut buf: Vec<u8> = Vec::with_capacity(
            WRITE_BATCH_BYTES
                .min(RECORD_HEADER_SIZE + usize::try_from(body_len).unwrap_or(WRITE_BATCH_BYTES)),
        );
        buf.extend_from_slice(&encoded);
        let mut at = self.pos;
        for img in images {
            if buf.len() + img.bytes().len() > WRITE_BATCH_BYTES && !buf.is_empty() {
                self.storage.write_at(at, &buf).map_err(Error::from_io)?;
                at += buf.len() as u64;
                buf.clear();
            }
            if img.bytes().len() >= WRITE_BATCH_BYTES {
                self.storage
                    .write_at(at, img.bytes())
                    .map_err(Error::from_io)?;
                at += img.bytes().len() as u64;
            } else {
                buf.extend_from_slice(img.bytes());
            }
        }
        if !buf.is_empty() {
            self.storage.write_at(at, &buf).map_err(Error::from_io)?;
        }
        // Allocate ahead: zeros up to the next chunk boundary, made durable by the same sync.
        let end = self.pos + record_span(body_len);
        if end > self.allocated {
            let target = end.div_ceil(ALLOCATION_CHUNK_BYTES) * ALLOCATION_CHUNK_BYTES;
            let zeros = vec![0u8; WRITE_BATCH_BYTES];
            let mut at = end;
            while at < target {
                let chunk = zeros
                    .get(..usize::try_from(target - at).map_or(zeros.len(), |n| n.min(zeros.len())))
                    .ok_or(Error::Internal(
                        "allocation chunk larger than the zero buffer",
                    ))?;
                self.storage.write_at(at, chunk).map_err(Error::from_io)?;
                at += chunk.len() as u64;
            }
            self.allocated = target;
        }
        if sync {
            self.storage.sync().map_err(Error::from_io)?;
            self.synced_through = meta.txid;
        }
        self.pos += record_span(body_len);
        self.prev_crc = header_crc;
        self.commits += 1;
        Ok(())
    }

    /// Starts a new generation after a checkpoint made every record redundant. The
    /// allocated space is reused (the new salt makes older records foreign to the scan),
    /// unless it grew beyond `keep_bytes_max`, in which case it is given back.
    ///
    /// Salts along one handle's chain of generations are distinct (each derives from the
    /// previous one and a strictly larger base txid). Across a crash that guarantee
    /// needs the journal emptied at open, which [`JournalWriter::reset_truncating`] does.
    pub(crate) fn reset(&mut self, base_txid: TxId) -> Result<()> {
        if self.allocated > self.keep_bytes_max {
            return self.reset_truncating(base_txid);
        }
        self.start_generation(base_txid);
        Ok(())
    }

    /// Starts a new generation in an emptied journal (at open, and when it grew large).
    pub(crate) fn reset_truncating(&mut self, base_txid: TxId) -> Result<()> {
        self.storage.set_len(0).map_err(Error::from_io)?;
        self.storage.sync().map_err(Error::from_io)?;
        self.allocated = 0;
        self.start_generation(base_txid);
        Ok(())
    }

    fn start_generation(&mut self, base_txid: TxId) {
        self.pos = 0;
        self.salt = next_salt(self.salt, base_txid);
        self.prev_crc = 0;
        self.synced_through = base_txid;
        self.commits = 0;
    }
}

/// One verified commit record.
pub(crate) struct Record {
    pub(crate) header: RecordHeader,
    pub(crate) images: Vec<VerifiedPage>,
}

/// What the recovery scan found.
pub(crate) struct Scan {
    /// Records with txid > the base meta's txid, in order.
    pub(crate) records: Vec<Record>,
    /// Bytes after the last valid record that were discarded as a torn tail.
    pub(crate) bytes_discarded: u64,
    /// Salt of the generation found (for choosing the next one).
    pub(crate) salt: u64,
}

fn journal_corrupt(offset: u64, detail: String) -> Error {
    Error::corrupted(offset, CorruptionKind::Journal, detail)
}

/// Reads one record at `pos` if it is complete and verifies; `None` otherwise.
fn read_record(
    storage: &dyn Storage,
    pos: u64,
    len: u64,
    page_size: usize,
) -> Result<Option<Record>> {
    let mut hbuf = [0u8; RECORD_HEADER_SIZE];
    if pos + RECORD_HEADER_SIZE as u64 > len {
        return Ok(None);
    }
    storage.read_at(pos, &mut hbuf).map_err(Error::from_io)?;
    let Some(header) = RecordHeader::decode(&hbuf) else {
        return Ok(None);
    };
    let ps = page_size as u64;
    if header.meta.page_size as usize != page_size
        || header.body_len % ps != 0
        || u64::from(header.image_count) > header.body_len / ps
        || pos + record_span(header.body_len) > len
    {
        return Ok(None);
    }
    let Ok(body_len) = usize::try_from(header.body_len) else {
        return Ok(None);
    };
    let mut body = vec![0u8; body_len];
    storage
        .read_at(pos + RECORD_HEADER_SIZE as u64, &mut body)
        .map_err(Error::from_io)?;
    // Split the body into images; each must verify as the page it claims to be.
    let mut images = Vec::with_capacity(header.image_count as usize);
    let mut off = 0usize;
    while off < body.len() {
        let Some(first) = body.get(off..) else {
            return Ok(None);
        };
        let Some(h) = decode_header(first) else {
            return Ok(None);
        };
        if h.extent_pages == 0 || h.extent_pages > MAX_EXTENT_PAGES || h.txid != header.meta.txid {
            return Ok(None);
        }
        let end = off.saturating_add(h.extent_pages as usize * page_size);
        let Some(img) = body.get(off..end) else {
            return Ok(None);
        };
        match VerifiedPage::verify(img.to_vec(), h.page_id, page_size) {
            Ok(p) => images.push(p),
            Err(_) => return Ok(None),
        }
        off = end;
    }
    if images.len() != header.image_count as usize
        || body_crc(images.iter().map(VerifiedPage::header)) != header.body_crc
    {
        return Ok(None);
    }
    Ok(Some(Record { header, images }))
}

/// Scans the journal and returns the records to replay on top of a meta at `base_txid`.
pub(crate) fn scan(storage: &dyn Storage, page_size: usize, base_txid: TxId) -> Result<Scan> {
    let len = storage.len().map_err(Error::from_io)?;
    let mut pos = 0u64;
    let mut prev: Option<RecordHeader> = None;
    let mut records = Vec::new();
    let sector = RECORD_HEADER_SIZE as u64;
    // Bounded: each iteration advances pos by at least one sector.
    while pos + sector <= len {
        let Some(rec) = read_record(storage, pos, len, page_size)? else {
            break;
        };
        let h = rec.header;
        let chains = match &prev {
            None => h.prev_crc == 0,
            Some(p) => {
                h.salt == p.salt
                    && h.prev_crc == p.header_crc
                    && Some(h.meta.txid) == p.meta.txid.next()
            }
        };
        if !chains {
            break;
        }
        pos += record_span(h.body_len);
        prev = Some(h);
        if h.meta.txid > base_txid {
            records.push(rec);
        }
    }
    let mut bytes_discarded = 0;
    if pos < len {
        // What stands at `pos`: zeros or a record of another generation is the clean
        // end of this one (the journal space is reused); anything else is a torn or
        // damaged record of this generation.
        let mut hbuf = [0u8; RECORD_HEADER_SIZE];
        let readable = pos + sector <= len && storage.read_at(pos, &mut hbuf).is_ok();
        let foreign = |h: &RecordHeader| match &prev {
            Some(p) => h.salt != p.salt,
            None => h.meta.txid <= base_txid,
        };
        bytes_discarded = match (readable, RecordHeader::decode(&hbuf)) {
            (false, _) => len - pos,
            (true, Some(h)) if foreign(&h) => 0,
            (true, Some(h)) => record_span(h.body_len).min(len - pos),
            (true, None) if hbuf.iter().all(|b| *b == 0) => 0,
            (true, None) => sector,
        };
        // A later valid header of this generation whose writer had already synced past
        // the damaged commit proves the damage is not a tail (J6).
        let damaged_txid = TxId(prev.map_or(base_txid, |p| p.meta.txid).0.saturating_add(1));
        let mut chunk_start = pos + sector;
        let mut chunk = vec![0u8; 1 << 20];
        while chunk_start + sector <= len {
            let n = usize::try_from((len - chunk_start).min(chunk.len() as u64))
                .map_err(|_| Error::Internal("journal probe longer than its buffer"))?;
            let n = n - n % RECORD_HEADER_SIZE;
            let Some(buf) = chunk.get_mut(..n) else { break };
            storage.read_at(chunk_start, buf).map_err(Error::from_io)?;
            for (i, sector_bytes) in buf.chunks_exact(RECORD_HEADER_SIZE).enumerate() {
                let Some(h) = RecordHeader::decode(sector_bytes) else {
                    continue;
                };
                let same_generation = prev.is_none_or(|p| p.salt == h.salt);
                if same_generation && h.meta.txid > damaged_txid && h.meta.txid > base_txid {
                    let probe = chunk_start + (i * RECORD_HEADER_SIZE) as u64;
                    if h.synced_through >= damaged_txid {
                        return Err(journal_corrupt(
                            pos,
                            format!(
                                "journal record for txid {damaged_txid} at offset {pos} is damaged, \
                                 but a later record (txid {} at offset {probe}) shows it had been made durable",
                                h.meta.txid
                            ),
                        ));
                    }
                }
            }
            if n == 0 {
                break;
            }
            chunk_start += n as u64;
        }
    }
    if let Some(first) = records.first() {
        if Some(first.header.meta.txid) != base_txid.next() {
            return Err(journal_corrupt(
                0,
                format!(
                    "journal continues at txid {} but the data file's meta is at txid {base_txid}: \
                     commits {}..{} are missing (the newest meta may be damaged or lost)",
                    first.header.meta.txid,
                    base_txid.0.saturating_add(1),
                    first.header.meta.txid.0.saturating_sub(1)
                ),
            ));
        }
    }
    Ok(Scan {
        records,
        bytes_discarded,
        salt: prev.map_or(0, |p| p.salt),
    })
}
