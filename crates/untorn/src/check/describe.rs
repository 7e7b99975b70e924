//! [`describe_page`]: one page of a snapshot as it is on storage, decoded as far as its
//! bytes allow, for `untorn page`. Read-only and never trusting: the header is shown as
//! read, verification is reported, and elements are decoded only from a valid layout.

use crate::format::{
    decode_freelist, decode_header, peek_extent_pages, verify_page, LeafValue, Meta, NodeView,
    PageId, PageType,
};
use crate::limits::MAX_EXTENT_PAGES;
use crate::report::{MetaView, PageDescription, PageElement, PageHeaderView, PageKind};

use super::source::CheckSource;

/// Describes page `id` of `src` (its whole extent when its header names one).
pub fn describe_page(src: &dyn CheckSource, id: u64) -> PageDescription {
    let page_size = src.page_size();
    let first = if id < 2 {
        src.read_raw_meta(id)
    } else {
        src.read_raw(PageId(id), 1)
    };
    let first = match first {
        Ok(b) => b,
        Err(e) => return PageDescription::unreadable(id, e.to_string()),
    };
    let extent = peek_extent_pages(&first).unwrap_or(1);
    let bytes = if id >= 2 && extent > 1 && extent <= MAX_EXTENT_PAGES {
        src.read_raw(PageId(id), extent).unwrap_or(first)
    } else {
        first
    };
    let mut d = PageDescription {
        id,
        read_error: None,
        header: None,
        verify: "no recognisable page header (zeroed or unknown type)".into(),
        elements: Vec::new(),
        elements_error: None,
        meta: None,
        raw: Vec::new(),
    };
    let Some(h) = decode_header(&bytes) else {
        d.raw = bytes;
        return d;
    };
    d.header = Some(PageHeaderView {
        kind: page_kind(h.page_type),
        page_id: h.page_id.get(),
        txid: Some(h.txid.get()),
        checksum: Some(h.checksum),
        flags: None,
        extent_pages: Some(h.extent_pages),
        overflow: None,
        count: h.count,
        payload_len: Some(h.payload_len),
    });
    d.verify = match verify_page(&bytes, PageId(id), page_size) {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    };
    match h.page_type {
        PageType::Branch | PageType::Leaf => match NodeView::validate(&bytes, &h) {
            Ok(view) => d.elements = (0..view.len()).map(|i| node_element(&view, i)).collect(),
            Err(e) => d.elements_error = Some(e.to_string()),
        },
        PageType::Freelist => match decode_freelist(&bytes, &h, PageId(u64::MAX)) {
            Ok(runs) => {
                d.elements = runs
                    .into_iter()
                    .map(|(start, len)| PageElement::FreeRun { start, len })
                    .collect();
            }
            Err(e) => d.elements_error = Some(e.to_string()),
        },
        PageType::Meta => match Meta::decode(&bytes, id, page_size) {
            Ok(m) => {
                d.meta = Some(MetaView {
                    txid: m.txid.get(),
                    page_size: m.page_size,
                    root: m.root.page_id.get(),
                    freelist: Some(m.freelist.page_id.get()),
                    high_water: m.high_water.get(),
                    sequence: None,
                    checksum: None,
                });
            }
            Err(e) => d.elements_error = Some(e.to_string()),
        },
        PageType::Overflow => {}
    }
    d.raw = bytes;
    d
}

/// Element `i` of a validated node.
fn node_element(view: &NodeView<'_>, i: usize) -> PageElement {
    let key = match view.key(i) {
        Ok(k) => k.to_vec(),
        Err(e) => {
            return PageElement::Error {
                key: None,
                message: e.to_string(),
            }
        }
    };
    if !view.is_leaf() {
        return match view.branch_child(i) {
            Ok(c) => PageElement::Child {
                key,
                page: c.page_id.get(),
                txid: Some(c.txid.get()),
                checksum: Some(c.checksum),
                extent_pages: Some(c.extent_pages),
            },
            Err(e) => PageElement::Error {
                key: Some(key),
                message: e.to_string(),
            },
        };
    }
    match view.leaf_value(i) {
        Ok(LeafValue::Inline(value)) => PageElement::Value {
            key,
            value: value.to_vec(),
        },
        Ok(LeafValue::Overflow { extent, len }) => PageElement::Overflow {
            key,
            page: extent.page_id.get(),
            txid: extent.txid.get(),
            extent_pages: extent.extent_pages,
            len,
        },
        Ok(LeafValue::Bucket(b)) => PageElement::Bucket {
            key,
            root: b.root.page_id.get(),
            root_txid: Some(b.root.txid.get()),
            sequence: b.sequence,
            count: Some(b.count),
            inline: None,
        },
        Err(e) => PageElement::Error {
            key: Some(key),
            message: e.to_string(),
        },
    }
}

/// What a page type is called in reports.
pub(crate) fn page_kind(t: PageType) -> PageKind {
    match t {
        PageType::Meta => PageKind::Meta,
        PageType::Branch => PageKind::Branch,
        PageType::Leaf => PageKind::Leaf,
        PageType::Overflow => PageKind::Overflow,
        PageType::Freelist => PageKind::Freelist,
    }
}
