//! The scan: every page of the data file and every image of every journal record is
//! verified on its own (checksum, self id, extent, node structure), and each verified
//! branch, leaf and overflow extent is indexed by (page id, txid, checksum). Only this
//! index (a few dozen bytes per extent, charged to the memory budget) is kept; page
//! contents are read again from the source when a later pass needs them.

use super::options::{Budget, SalvageOptions, INDEX_ENTRY_BYTES};

/// Bytes of one index entry.
const LOC_BYTES: u64 = std::mem::size_of::<Loc>() as u64;
use crate::error::{Error, Result};
use crate::format::{
    decode_header, page_sizes, peek_extent_pages, verify_page, BucketId, DbId, Meta, NodeView,
    PageHeader, PageId, PageRef, PageType, RecordHeader, RecordKind, TxId, RECORD_HEADER_SIZE,
};
use crate::limits::MAX_EXTENT_PAGES;
use crate::report::{Lost, SalvageSummary};
use crate::storage::Storage;

/// A `u64` length or count as `usize` (a typed error where it does not fit).
pub(super) fn us(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::Internal("length larger than the address space"))
}

/// Where a verified extent lies: source 0 is the data file, `i >= 1` journal `i - 1`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Loc {
    pub src: usize,
    pub offset: u64,
    pub h: PageHeader,
}

/// A root a commit names.
#[derive(Debug, Clone, Copy)]
pub(super) struct Commit {
    pub txid: TxId,
    pub root: PageRef,
    pub next_bucket_id: BucketId,
    pub what: &'static str,
}

/// The index of verified extents and the commits found.
pub(super) struct Scan<'s> {
    pub sources: Vec<&'s dyn Storage>,
    pub ps: usize,
    /// Verified branch, leaf and overflow extents, in the order found until
    /// [`Scan::sort_index`], then by page id (each page's versions in the order found).
    pub versions: Vec<Loc>,
    pub commits: Vec<Commit>,
    pub summary: SalvageSummary,
    pub budget: Budget,
}

impl Scan<'_> {
    /// The extent at `loc`, read again from its source.
    pub fn read(&self, loc: &Loc) -> Result<Vec<u8>> {
        let n = (loc.h.extent_pages as usize)
            .checked_mul(self.ps)
            .ok_or(Error::Internal("extent larger than the address space"))?;
        let mut buf = vec![0u8; n];
        let src = self
            .sources
            .get(loc.src)
            .ok_or(Error::Internal("salvage source index out of range"))?;
        src.read_at(loc.offset, &mut buf).map_err(Error::from_io)?;
        Ok(buf)
    }

    fn add(&mut self, loc: Loc) -> Result<()> {
        if !matches!(
            loc.h.page_type,
            PageType::Branch | PageType::Leaf | PageType::Overflow
        ) {
            return Ok(());
        }
        if self.versions.len() == self.versions.capacity() {
            // Growing allocates the new vector while the old one still exists.
            let cap = self.versions.capacity();
            let new_cap = (2 * cap).max(64);
            self.budget
                .charge(LOC_BYTES * new_cap as u64, "the index of verified pages")?;
            self.versions.reserve_exact(new_cap - cap);
            self.budget.release(LOC_BYTES * cap as u64);
        }
        self.versions.push(loc);
        Ok(())
    }

    /// Sorts the index by page id and drops repeated copies of one version (same txid
    /// and checksum): the first copy found stays.
    pub fn sort_index(&mut self) {
        self.versions.sort_by_key(|l| l.h.page_id);
        let mut kept: Vec<Loc> = Vec::new();
        let mut out = 0;
        for i in 0..self.versions.len() {
            let Some(&l) = self.versions.get(i) else {
                break;
            };
            if kept.first().is_some_and(|k| k.h.page_id != l.h.page_id) {
                kept.clear();
            }
            if kept
                .iter()
                .any(|k| k.h.txid == l.h.txid && k.h.checksum == l.h.checksum)
            {
                continue;
            }
            kept.push(l);
            if let Some(slot) = self.versions.get_mut(out) {
                *slot = l;
            }
            out += 1;
        }
        self.versions.truncate(out);
    }

    /// The versions of page `id` found (after [`Scan::sort_index`]).
    fn versions_of(&self, id: u64) -> &[Loc] {
        let start = self.versions.partition_point(|l| l.h.page_id.get() < id);
        let end = self.versions.partition_point(|l| l.h.page_id.get() <= id);
        self.versions.get(start..end).unwrap_or(&[])
    }

    /// The verified extent `r` names exactly, in tree `tree`.
    pub fn resolve(&self, r: &PageRef, tree: BucketId) -> Option<Loc> {
        self.versions_of(r.page_id.get())
            .iter()
            .find(|l| l.h.matches(r) && l.h.tree_id == tree)
            .copied()
    }
}

/// Page size: meta 0's, else meta 1's at each size, else a journal header's, else the
/// size at which most of the first pages verify.
pub(super) fn detect_page_size(data: &dyn Storage, journals: &[&dyn Storage]) -> Result<usize> {
    let len = data.len().map_err(Error::from_io)?;
    let mut first = vec![0u8; crate::format::meta::SNIFF_BYTES];
    if len >= first.len() as u64 && data.read_at(0, &mut first).is_ok() {
        if let Some(ps) = crate::format::meta::sniff_page_size(&first) {
            let mut page = vec![0u8; ps as usize];
            if data.read_at(0, &mut page).is_ok() && Meta::decode(&page, 0, ps as usize).is_ok() {
                return Ok(ps as usize);
            }
        }
    }
    for ps in page_sizes() {
        let mut page = vec![0u8; ps];
        if len >= 2 * ps as u64
            && data.read_at(ps as u64, &mut page).is_ok()
            && Meta::decode(&page, 1, ps).is_ok()
        {
            return Ok(ps);
        }
    }
    for j in journals {
        let mut sector = [0u8; RECORD_HEADER_SIZE];
        if j.read_at(0, &mut sector).is_ok() {
            if let Some(h) = RecordHeader::decode(&sector) {
                if crate::format::is_valid_page_size(u64::from(h.page_size)) {
                    return Ok(h.page_size as usize);
                }
            }
        }
    }
    let mut best = (0u64, 0usize);
    for ps in page_sizes() {
        let mut page = vec![0u8; ps];
        let mut verified = 0;
        for id in 2..66u64 {
            let Some(off) = PageId(id).offset(ps) else {
                break;
            };
            if off + ps as u64 > len || data.read_at(off, &mut page).is_err() {
                break;
            }
            if peek_extent_pages(&page) == Some(1) && verify_page(&page, PageId(id), ps).is_ok() {
                verified += 1;
            }
        }
        if verified > best.0 {
            best = (verified, ps);
        }
    }
    if best.0 == 0 {
        return Err(Error::NotADatabase(
            "no meta and no page verifies at any page size".into(),
        ));
    }
    Ok(best.1)
}

pub(super) fn scan_data(scan: &mut Scan<'_>, opts: &mut SalvageOptions<'_>) -> Result<Vec<Meta>> {
    let ps = scan.ps;
    let data = *scan
        .sources
        .first()
        .ok_or(Error::Internal("salvage without a data file"))?;
    let len = data.len().map_err(Error::from_io)?;
    let total = len / ps as u64;
    let mut metas = Vec::new();
    for slot in 0..2u64 {
        let mut page = vec![0u8; ps];
        let ok = slot < total
            && data.read_at(slot * ps as u64, &mut page).is_ok()
            && match Meta::decode(&page, slot, ps) {
                Ok(m) => {
                    metas.push(m);
                    true
                }
                Err(_) => false,
            };
        scan.summary.pages_scanned += u64::from(slot < total);
        if !ok {
            scan.summary.pages_unreadable += u64::from(slot < total);
            scan.summary.lost.push(Lost {
                page: Some(slot),
                reason: format!(
                    "meta slot {slot} does not verify: a commit only it recorded is lost"
                ),
                ..Lost::default()
            });
        }
    }
    let chunk_pages = scan.budget.chunk_pages;
    let mut window = vec![0u8; us(chunk_pages)? * ps];
    let mut win_start = 0u64;
    let mut win_len = 0u64;
    let mut id = 2u64;
    while id < total {
        if id < win_start || id >= win_start + win_len {
            opts.report("data", id * ps as u64, len)?;
            win_start = id;
            win_len = chunk_pages.min(total - id);
            let bytes = us(win_len)? * ps;
            let buf = window
                .get_mut(..bytes)
                .ok_or(Error::Internal("scan window shorter than a chunk"))?;
            data.read_at(id * ps as u64, buf).map_err(Error::from_io)?;
        }
        let at = us(id - win_start)? * ps;
        let page = window
            .get(at..at + ps)
            .ok_or(Error::Internal("page outside the scan window"))?;
        let extent = peek_extent_pages(page).unwrap_or(0);
        let verified = if extent == 1 {
            verify_page(page, PageId(id), ps).ok()
        } else if extent > 1 && extent <= MAX_EXTENT_PAGES && id + u64::from(extent) <= total {
            let mut buf = vec![0u8; extent as usize * ps];
            data.read_at(id * ps as u64, &mut buf)
                .map_err(Error::from_io)?;
            verify_page(&buf, PageId(id), ps)
                .ok()
                .filter(|h| node_ok(&buf, h))
        } else {
            None
        };
        let verified = verified.filter(|h| extent > 1 || node_ok(page, h));
        match verified {
            Some(h) => {
                scan.summary.pages_scanned += u64::from(h.extent_pages);
                scan.add(Loc {
                    src: 0,
                    offset: id * ps as u64,
                    h,
                })?;
                id += u64::from(h.extent_pages);
            }
            None => {
                scan.summary.pages_scanned += 1;
                scan.summary.pages_unreadable += 1;
                id += 1;
            }
        }
    }
    Ok(metas)
}

/// Whether a verified extent's node structure verifies too (overflow and freelist
/// extents have none to check here).
pub(super) fn node_ok(page: &[u8], h: &PageHeader) -> bool {
    match h.page_type {
        PageType::Branch | PageType::Leaf => NodeView::validate(page, h).is_ok(),
        _ => true,
    }
}

pub(super) fn scan_journal(
    scan: &mut Scan<'_>,
    src: usize,
    db_id: Option<DbId>,
    opts: &mut SalvageOptions<'_>,
) -> Result<()> {
    let ps = scan.ps;
    let j = *scan
        .sources
        .get(src)
        .ok_or(Error::Internal("salvage source index out of range"))?;
    let len = j.len().map_err(Error::from_io)?;
    let sector = RECORD_HEADER_SIZE as u64;
    let mut headers = Vec::new();
    let journal_chunk = scan.budget.journal_chunk;
    let mut buf = vec![0u8; us(journal_chunk)?];
    let mut at = 0u64;
    while at + sector <= len {
        opts.report("journal", at, len)?;
        let n = (len - at).min(journal_chunk);
        let n = n - n % sector;
        let chunk = buf
            .get_mut(..us(n)?)
            .ok_or(Error::Internal("journal chunk larger than its buffer"))?;
        j.read_at(at, chunk).map_err(Error::from_io)?;
        for (i, s) in chunk.chunks_exact(RECORD_HEADER_SIZE).enumerate() {
            if let Some(h) = RecordHeader::decode(s) {
                headers.push((at + i as u64 * sector, h));
                scan.budget
                    .charge(INDEX_ENTRY_BYTES, "the journal's record headers")?;
            }
        }
        at += n;
    }
    for (pos, h) in headers {
        if db_id.is_some_and(|d| d != h.db_id) || h.page_size as usize != ps {
            continue;
        }
        scan.commits.push(Commit {
            txid: h.txid,
            root: h.root,
            next_bucket_id: h.next_bucket_id,
            what: match h.kind {
                RecordKind::Marker => "a journal generation marker",
                RecordKind::Commit => "a journal commit record",
            },
        });
        if h.kind != RecordKind::Commit {
            continue;
        }
        let Some(body) = pos
            .checked_add(sector)
            .and_then(|p| p.checked_add(h.aux_padded_len()))
        else {
            continue;
        };
        let end = body.saturating_add(h.body_len).min(len);
        let mut off = body;
        for _ in 0..h.image_count {
            let mut first = vec![0u8; ps];
            if off + ps as u64 > end || j.read_at(off, &mut first).is_err() {
                break;
            }
            let Some(claimed) = decode_header(&first) else {
                break;
            };
            let e = claimed.extent_pages;
            let Some(bytes) = u64::from(e).checked_mul(ps as u64) else {
                break;
            };
            if e == 0 || e > MAX_EXTENT_PAGES || off + bytes > end {
                break;
            }
            let mut img = vec![0u8; us(bytes)?];
            if j.read_at(off, &mut img).is_err() {
                break;
            }
            scan.summary.pages_scanned += u64::from(e);
            match verify_page(&img, claimed.page_id, ps) {
                Ok(v) if v.txid == h.txid && node_ok(&img, &v) => scan.add(Loc {
                    src,
                    offset: off,
                    h: v,
                })?,
                _ => scan.summary.pages_unreadable += u64::from(e),
            }
            off += bytes;
        }
    }
    Ok(())
}
