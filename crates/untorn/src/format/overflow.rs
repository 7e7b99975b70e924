//! Overflow extents: one large value per extent, right after the page header.
//!
//! | offset | size        | field                                   |
//! |-------:|------------:|-----------------------------------------|
//! | 0      | 48          | page header (type 4, `payload_len` = value length, `tree_id` = the bucket holding the value) |
//! | 48     | payload_len | the value                               |
//!
//! The leaf holding the value stores the extent's [`PageRef`](super::PageRef) and the
//! value's length; the two lengths must agree.

use std::ops::Range;

use super::bytes::put_bytes;
use super::ids::{BucketId, PageId, TxId};
use super::page::{new_extent, seal, PageHeader, PageType, PAGE_HEADER_SIZE};
use crate::error::{CorruptionKind, Error, Result};

/// Encodes an overflow extent holding `value` for the bucket `tree`.
pub fn encode_overflow(
    value: &[u8],
    page_id: PageId,
    txid: TxId,
    tree: BucketId,
    page_size: usize,
) -> Result<(Vec<u8>, PageHeader)> {
    let (extent_pages, mut page) = new_extent(value.len(), page_size)?;
    let written = put_bytes(&mut page, PAGE_HEADER_SIZE, value);
    let h = PageHeader {
        checksum: 0,
        page_type: PageType::Overflow,
        page_id,
        txid,
        extent_pages,
        count: 0,
        payload_len: value.len() as u64,
        common_prefix_len: 0,
        tree_id: tree,
    };
    seal(page, h, written)
}

/// Where the value of a verified overflow extent lies in it, checked against the
/// length the leaf expects.
pub fn overflow_value_range(
    page: &[u8],
    h: &PageHeader,
    expected_len: u64,
) -> Result<Range<usize>> {
    if h.page_type != PageType::Overflow {
        return Err(Error::corrupted(
            h.page_id.0,
            CorruptionKind::PageType,
            format!(
                "expected an overflow extent, found {}",
                h.page_type.as_str()
            ),
        ));
    }
    if h.payload_len != expected_len {
        return Err(Error::corrupted(
            h.page_id.0,
            CorruptionKind::Bounds,
            format!(
                "overflow holds {} bytes, leaf says {}",
                h.payload_len, expected_len
            ),
        ));
    }
    usize::try_from(h.payload_len)
        .ok()
        .and_then(|n| n.checked_add(PAGE_HEADER_SIZE))
        .map(|end| PAGE_HEADER_SIZE..end)
        .filter(|r| page.get(r.clone()).is_some())
        .ok_or_else(|| {
            Error::corrupted(
                h.page_id.0,
                CorruptionKind::Bounds,
                "overflow payload outside extent",
            )
        })
}

/// The value bytes of a verified overflow extent, checked against the expected length.
pub fn overflow_value<'a>(page: &'a [u8], h: &PageHeader, expected_len: u64) -> Result<&'a [u8]> {
    let range = overflow_value_range(page, h, expected_len)?;
    page.get(range).ok_or_else(|| {
        Error::corrupted(
            h.page_id.0,
            CorruptionKind::Bounds,
            "overflow payload outside extent",
        )
    })
}
