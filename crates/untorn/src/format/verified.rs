//! [`VerifiedPage`]: a page image (a whole extent) that passed verification. It is the
//! only form in which the pager, the journal and the B+tree hold pages, so every page
//! they use was checked once, right after it was read or encoded.

use std::ops::Range;
use std::sync::Arc;

use super::ids::PageId;
use super::node::NodeView;
use super::page::{verify_page, PageHeader, PageRef, PageType};
use crate::error::Result;

/// A verified page image: checksum, self id, extent length and payload bound hold, and
/// a branch or leaf also passed [`NodeView::validate`]. [`VerifiedPage::verify`] makes
/// one from bytes read from storage or the journal; inside the crate,
/// `VerifiedPage::sealed` wraps an image the engine's own encoder just sealed.
#[derive(Debug)]
pub struct VerifiedPage {
    bytes: Box<[u8]>,
    header: PageHeader,
}

impl VerifiedPage {
    /// Verifies an image that claims to be page `id` (read from disk or the journal, or
    /// just encoded) and wraps it.
    pub fn verify(bytes: Vec<u8>, id: PageId, page_size: usize) -> Result<VerifiedPage> {
        let header = verify_page(&bytes, id, page_size)?;
        if matches!(header.page_type, PageType::Branch | PageType::Leaf) {
            NodeView::validate(&bytes, &header)?;
        }
        Ok(VerifiedPage {
            bytes: bytes.into_boxed_slice(),
            header,
        })
    }

    /// Wraps an image that this crate's encoder just built and sealed with `header`,
    /// for page `id`. The encoder computes every derived field (checksum, common prefix,
    /// key prefixes) itself, and the commit path asserts the allocation, so release
    /// builds trust the image (one CRC per page: the seal). Debug builds verify it
    /// exactly as a reader would, so every test run re-checks the encoders.
    pub(crate) fn sealed(
        bytes: Vec<u8>,
        header: PageHeader,
        id: PageId,
        page_size: usize,
    ) -> Result<VerifiedPage> {
        if header.page_id != id || bytes.len() != header.extent_pages as usize * page_size {
            return Err(crate::error::Error::Internal(
                "a sealed image does not match its header",
            ));
        }
        #[cfg(debug_assertions)]
        {
            let reverified = VerifiedPage::verify(bytes.clone(), id, page_size);
            debug_assert!(
                matches!(&reverified, Ok(p) if p.header == header),
                "the encoder built an image a reader rejects: {:?}",
                reverified.err()
            );
        }
        Ok(VerifiedPage {
            bytes: bytes.into_boxed_slice(),
            header,
        })
    }

    /// The whole extent.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The decoded header.
    pub fn header(&self) -> &PageHeader {
        &self.header
    }

    /// The page's own id.
    pub fn page_id(&self) -> PageId {
        self.header.page_id
    }

    /// The reference a parent holds to this page.
    pub fn reference(&self) -> PageRef {
        self.header.reference()
    }

    /// A node view (the structure was validated when the page was verified).
    pub fn node(&self) -> Result<NodeView<'_>> {
        NodeView::prevalidated(&self.bytes, &self.header)
    }
}

/// A byte range of a shared verified page, checked against the page when it was made:
/// how a value read from a page is handed out without copying it.
#[derive(Debug, Clone)]
pub struct PageSlice {
    page: Arc<VerifiedPage>,
    range: Range<usize>,
}

impl PageSlice {
    /// The bytes `range` of `page`; `None` if the range does not lie inside it.
    pub fn new(page: Arc<VerifiedPage>, range: Range<usize>) -> Option<PageSlice> {
        page.bytes().get(range.clone())?;
        Some(PageSlice { page, range })
    }

    /// `sub`, a slice of `page`'s bytes (a key or value a view of it returned), as a
    /// `PageSlice`; `None` if `sub` does not lie inside the page.
    pub fn of_subslice(page: Arc<VerifiedPage>, sub: &[u8]) -> Option<PageSlice> {
        let base = page.bytes().as_ptr().addr();
        let start = sub.as_ptr().addr().checked_sub(base)?;
        let range = start..start.checked_add(sub.len())?;
        PageSlice::new(page, range)
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // The range was checked against this very page, whose bytes never change.
        self.page
            .bytes()
            .get(self.range.clone())
            .expect("a PageSlice's range lies inside its page")
    }
}
