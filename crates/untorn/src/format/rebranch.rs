//! Re-encoding an unchanged branch page for a new commit: its entries copied as they are,
//! the replaced children's references patched into their elements, one CRC.

use super::bytes::usize_from;
use super::ids::{PageId, TxId};
use super::node::BRANCH_ELEM_SIZE;
use super::page::{seal, PageHeader, PageRef, PageType, PAGE_HEADER_SIZE};
use crate::error::{Error, Result};

/// Re-encodes the verified branch page `src` (with header `h`) as page `page_id` of
/// commit `txid`, its keys unchanged and the children at the given indexes replaced: a
/// copy of the page's entries, the new child references patched into their elements,
/// and one CRC (the seal). The element layout, the common prefix and every key prefix
/// are the source's, which a reader validated when it loaded the page.
pub fn rebranch(
    src: &[u8],
    h: &PageHeader,
    children: &[(usize, PageRef)],
    page_id: PageId,
    txid: TxId,
) -> Result<(Vec<u8>, PageHeader)> {
    if h.page_type != PageType::Branch {
        return Err(Error::Internal("rebranch of a page that is not a branch"));
    }
    let count = usize_from(h.count);
    let body_end = usize::try_from(h.payload_len)
        .ok()
        .and_then(|n| n.checked_add(PAGE_HEADER_SIZE))
        .filter(|end| *end <= src.len())
        .ok_or(Error::Internal(
            "rebranch of a page shorter than its payload",
        ))?;
    let mut page = Vec::with_capacity(src.len());
    page.extend_from_slice(src.get(..body_end).unwrap_or(&[]));
    page.resize(src.len(), 0);
    let mut written = page.len() == src.len();
    for (i, child) in children {
        if *i >= count {
            return Err(Error::Internal("rebranch of a child index past the page"));
        }
        written &= child.encode(&mut page, PAGE_HEADER_SIZE + i * BRANCH_ELEM_SIZE);
    }
    let header = PageHeader {
        checksum: 0,
        page_id,
        txid,
        ..*h
    };
    seal(page, header, written)
}
