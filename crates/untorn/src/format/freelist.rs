//! The freelist extent: sorted, disjoint, non-adjacent runs of free page ids.
//!
//! After the page header (type 5, `count` = number of runs) come `count` runs of
//! 16 bytes each: `start` (u64) and `len` (u64, >= 1). The list includes pages that were
//! pending release when it was written: at open no reader exists, so they are free.

use super::bytes::{get_u64, put_u64, u32_from, usize_from};
use super::ids::{PageId, TxId};
use super::page::{seal_page, PageHeader, PageType, PAGE_HEADER_SIZE};
use crate::error::{CorruptionKind, Error, Result};

/// Bytes per run.
pub const RUN_SIZE: usize = 16;

/// Encoded size of a freelist with `runs` runs (header included).
pub fn freelist_bytes(runs: usize) -> usize {
    PAGE_HEADER_SIZE + runs * RUN_SIZE
}

/// Encodes runs (must be sorted, disjoint) into an extent of `extent_pages` pages.
pub fn encode_freelist(
    runs: &[(u64, u64)],
    page_id: PageId,
    txid: TxId,
    page_size: usize,
    extent_pages: u32,
) -> Result<(Vec<u8>, PageHeader)> {
    let mut page = vec![0u8; usize_from(extent_pages) * page_size];
    let mut written = true;
    for (i, (start, len)) in runs.iter().enumerate() {
        let off = PAGE_HEADER_SIZE + i * RUN_SIZE;
        written &= put_u64(&mut page, off, *start) && put_u64(&mut page, off + 8, *len);
    }
    if !written {
        return Err(Error::Internal("freelist runs exceed the freelist extent"));
    }
    let mut h = PageHeader {
        checksum: 0,
        page_type: PageType::Freelist,
        page_id,
        txid,
        extent_pages,
        count: u32_from(runs.len()).ok_or(Error::Internal("freelist run count"))?,
        payload_len: (runs.len() * RUN_SIZE) as u64,
        common_prefix_len: 0,
        tree_id: super::ids::BucketId::NONE,
    };
    h.checksum = seal_page(&mut page, &h)?;
    Ok((page, h))
}

/// Decodes and validates the runs of a verified freelist extent: every run inside
/// `2..high_water`, sorted, disjoint. Cost O(runs).
pub fn decode_freelist(page: &[u8], h: &PageHeader, high_water: PageId) -> Result<Vec<(u64, u64)>> {
    let bad = |kind, detail: String| Error::corrupted(h.page_id.0, kind, detail);
    if h.page_type != PageType::Freelist {
        return Err(bad(
            CorruptionKind::PageType,
            format!("expected the freelist, found {}", h.page_type.as_str()),
        ));
    }
    let runs = freelist_runs_unchecked(page, h).map_err(|m| bad(CorruptionKind::Bounds, m))?;
    let mut prev_end = PageId::FIRST_DATA.0;
    for (i, &(start, len)) in runs.iter().enumerate() {
        let end = start.checked_add(len).filter(|e| *e <= high_water.0);
        match end {
            Some(end) if len > 0 && start >= prev_end => prev_end = end,
            _ => {
                return Err(bad(
                    CorruptionKind::Invalid,
                    format!(
                    "run {i} ({start}+{len}) overlaps, is unsorted or lies outside 2..{high_water}"
                ),
                ))
            }
        }
    }
    Ok(runs)
}

/// The runs of a verified freelist extent as stored, without validating them (the
/// checker classifies bad runs itself). Errors only if the count does not match the
/// payload or runs lie outside the extent.
pub fn freelist_runs_unchecked(
    page: &[u8],
    h: &PageHeader,
) -> std::result::Result<Vec<(u64, u64)>, String> {
    let count = usize_from(h.count);
    if (count as u64).saturating_mul(RUN_SIZE as u64) != h.payload_len {
        return Err(format!(
            "{count} runs do not match the payload of {} bytes",
            h.payload_len
        ));
    }
    let mut runs = Vec::with_capacity(count.min(page.len() / RUN_SIZE));
    for i in 0..count {
        let off = PAGE_HEADER_SIZE + i * RUN_SIZE;
        match (get_u64(page, off), get_u64(page, off + 8)) {
            (Some(start), Some(len)) => runs.push((start, len)),
            _ => return Err(format!("run {i} lies outside the extent")),
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::page::verify_page;

    #[test]
    fn freelist_round_trip_and_rejects_overlap() {
        let runs = vec![(2, 3), (10, 1)];
        let (page, h) = encode_freelist(&runs, PageId(4), TxId(9), 4096, 1).expect("encode");
        let v = verify_page(&page, PageId(4), 4096).expect("verify");
        assert_eq!(v, h);
        assert_eq!(
            decode_freelist(&page, &h, PageId(20)).expect("decode"),
            runs
        );
        assert!(
            decode_freelist(&page, &h, PageId(10)).is_err(),
            "beyond hwm"
        );
        let (page, h) =
            encode_freelist(&[(2, 3), (4, 1)], PageId(4), TxId(9), 4096, 1).expect("encode");
        assert!(decode_freelist(&page, &h, PageId(20)).is_err(), "overlap");
    }
}
