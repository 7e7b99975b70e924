//! Inspection: file info, a decoded page, and statistics.

use std::fmt;

use untorn::unstable::report::{
    MetaView, PageDescription, PageElement, PageHeaderView, PageKind, PageState, Stats,
};

use crate::file::{BoltFile, MetaSlot};
use crate::format::{
    decode_freelist, flags_name, page_kind, BucketHeader, Meta, Node, NodeKind, PageHeader,
    FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, FLAG_META, LEAF_FLAG_BUCKET, META_SIZE,
    PAGE_HEADER_SIZE,
};

/// How the freelist is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreelistInfo {
    /// Synced to a page: its id and the number of ids listed.
    Synced {
        /// Freelist page.
        page: u64,
        /// Ids listed.
        count: usize,
    },
    /// NoFreelistSync: free pages are those unreachable from the meta.
    NotSynced,
    /// Synced, but the page cannot be read.
    Unreadable(String),
}

/// `info`: both metas and which one is in use.
#[derive(Debug, Clone)]
pub struct Info {
    /// File size in bytes.
    pub file_len: u64,
    /// Page size in bytes.
    pub page_size: u32,
    /// Both meta slots.
    pub metas: [MetaSlot; 2],
    /// Index of the meta in use.
    pub active: usize,
    /// Why that meta is in use.
    pub reason: String,
    /// Active txid.
    pub txid: u64,
    /// High-water mark.
    pub hwm: u64,
    /// Freelist.
    pub freelist: FreelistInfo,
}

/// Builds the file info.
pub fn info_of(file: &BoltFile) -> Info {
    let metas = file.metas().clone();
    let active = file.active_index();
    let reason = match (metas[0].is_valid(), metas[1].is_valid()) {
        (true, true) => format!("both metas valid; meta {active} has the higher txid"),
        _ if file.is_fallback() => {
            format!("the newest meta is invalid; falling back to meta {active}")
        }
        _ => format!("meta {active} is the only valid meta"),
    };
    let meta = file.meta();
    let freelist = match file.read_freelist() {
        Ok(None) => FreelistInfo::NotSynced,
        Ok(Some((page, _, ids))) => FreelistInfo::Synced {
            page,
            count: ids.len(),
        },
        Err(e) => FreelistInfo::Unreadable(e),
    };
    Info {
        file_len: file.file_len(),
        page_size: file.page_size(),
        metas,
        active,
        reason,
        txid: meta.txid,
        hwm: meta.pgid,
        freelist,
    }
}

fn fmt_meta(f: &mut fmt::Formatter<'_>, i: usize, slot: &MetaSlot) -> fmt::Result {
    match (&slot.meta, &slot.problem) {
        (Some(m), p) => {
            writeln!(
                f,
                "meta {i}: txid {} root {} sequence {} freelist {} hwm {} page_size {} checksum {:#018x} {}",
                m.txid,
                m.root,
                m.sequence,
                if m.no_freelist_sync() { "none".to_string() } else { m.freelist.to_string() },
                m.pgid,
                m.page_size,
                m.checksum,
                match p {
                    None if m.zero_checksum() => "(valid, zero checksum: unverified)".to_string(),
                    None => "(valid)".to_string(),
                    Some(p) => format!("(INVALID: {p})"),
                }
            )
        }
        (None, Some(p)) => writeln!(f, "meta {i}: unreadable: {p}"),
        (None, None) => writeln!(f, "meta {i}: unreadable"),
    }
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file size: {} bytes", self.file_len)?;
        writeln!(f, "page size: {}", self.page_size)?;
        for (i, s) in self.metas.iter().enumerate() {
            fmt_meta(f, i, s)?;
        }
        writeln!(f, "active meta: {} ({})", self.active, self.reason)?;
        writeln!(f, "txid: {}", self.txid)?;
        writeln!(f, "high-water mark: {} pages", self.hwm)?;
        match &self.freelist {
            FreelistInfo::Synced { page, count } => {
                writeln!(f, "freelist: synced, page {page}, {count} ids")
            }
            FreelistInfo::NotSynced => writeln!(f, "freelist: not synced (NoFreelistSync)"),
            FreelistInfo::Unreadable(e) => writeln!(f, "freelist: UNREADABLE: {e}"),
        }
    }
}

/// What a single page decodes to.
#[derive(Debug, Clone)]
pub enum PageBody {
    /// A meta page.
    Meta(Meta),
    /// A branch: (key, child pgid) per element.
    Branch(Vec<(Vec<u8>, u64)>),
    /// A leaf: (flags, key, value) per element.
    Leaf(Vec<(u32, Vec<u8>, Vec<u8>)>),
    /// A freelist: ids.
    Freelist(Vec<u64>),
    /// Could not be decoded: why.
    Undecodable(String),
}

/// A decoded page, for `untorn page`.
#[derive(Debug, Clone)]
pub struct PageView {
    /// The page id asked for.
    pub id: u64,
    /// Header as read.
    pub header: PageHeader,
    /// Decoded body.
    pub body: PageBody,
    /// Raw bytes of the page and its overflow pages (for a hex dump).
    pub raw: Vec<u8>,
}

/// Reads and decodes one page, whatever it holds. Overflow is followed only when
/// it stays inside the file.
pub fn page_view(file: &BoltFile, id: u64) -> crate::Result<PageView> {
    let first = file
        .read_raw(id, 1)
        .map_err(|problem| crate::BoltError::Page { page: id, problem })?;
    let header = PageHeader::decode(&first).ok_or(crate::BoltError::Page {
        page: id,
        problem: crate::format::PageProblem::Zeroed,
    })?;
    let raw = if header.overflow > 0
        && id.saturating_add(u64::from(header.overflow)) < file.pages_in_file()
    {
        file.read_raw(id, u64::from(header.overflow) + 1)
            .unwrap_or(first)
    } else {
        first
    };
    let body = match header.flags {
        FLAG_META => match raw
            .get(PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE)
            .and_then(Meta::decode)
        {
            Some(m) => PageBody::Meta(m),
            None => PageBody::Undecodable("short meta".into()),
        },
        FLAG_FREELIST => match decode_freelist(&raw) {
            Ok(ids) => PageBody::Freelist(ids),
            Err(e) => PageBody::Undecodable(e),
        },
        FLAG_BRANCH | FLAG_LEAF => match Node::parse(raw.clone()) {
            Ok(n) => match n.kind {
                NodeKind::Branch => PageBody::Branch(
                    (0..n.elems.len())
                        .map(|i| {
                            (
                                n.key(i).to_vec(),
                                n.elems.get(i).map(|e| e.pgid).unwrap_or(0),
                            )
                        })
                        .collect(),
                ),
                NodeKind::Leaf => PageBody::Leaf(
                    (0..n.elems.len())
                        .map(|i| {
                            (
                                n.elems.get(i).map(|e| e.flags).unwrap_or(0),
                                n.key(i).to_vec(),
                                n.value(i).to_vec(),
                            )
                        })
                        .collect(),
                ),
            },
            Err(p) => PageBody::Undecodable(p.to_string()),
        },
        f => PageBody::Undecodable(format!("unknown flags {f:#06x}")),
    };
    Ok(PageView {
        id,
        header,
        body,
        raw,
    })
}

fn hex(b: &[u8], max: usize) -> String {
    let mut s: String = b.iter().take(max).map(|x| format!("{x:02x}")).collect();
    if b.len() > max {
        s.push_str(&format!("..({} bytes)", b.len()));
    }
    s
}

impl fmt::Display for PageView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "page {}: header id {} flags {:#06x} ({}) count {} overflow {}",
            self.id,
            self.header.id,
            self.header.flags,
            flags_name(self.header.flags),
            self.header.count,
            self.header.overflow
        )?;
        if self.header.id != self.id {
            write!(f, " [SELF-IDENTIFIES AS {}]", self.header.id)?;
        }
        writeln!(f)?;
        match &self.body {
            PageBody::Meta(m) => writeln!(f, "{m:?}"),
            PageBody::Branch(es) => {
                for (i, (k, p)) in es.iter().enumerate() {
                    writeln!(f, "  [{i}] key {} -> page {p}", hex(k, 32))?;
                }
                Ok(())
            }
            PageBody::Leaf(es) => {
                for (i, (fl, k, v)) in es.iter().enumerate() {
                    let b = if fl & 1 != 0 { " (bucket)" } else { "" };
                    writeln!(f, "  [{i}] key {} value {}{b}", hex(k, 32), hex(v, 32))?;
                }
                Ok(())
            }
            PageBody::Freelist(ids) => writeln!(f, "  {} free ids: {:?}", ids.len(), ids),
            PageBody::Undecodable(e) => writeln!(f, "  undecodable: {e}"),
        }
    }
}

/// One page in the report vocabulary both formats share ([`PageDescription`]): the
/// header as read, whether it passes the same strict reading dump, get and salvage
/// use (header id, type, element bounds), and its decoded contents.
pub fn describe_page(file: &BoltFile, id: u64) -> PageDescription {
    let view = match page_view(file, id) {
        Ok(v) => v,
        Err(e) => return PageDescription::unreadable(id, e.to_string()),
    };
    let h = view.header;
    let verify = match h.flags {
        FLAG_BRANCH | FLAG_LEAF => file.read_node(id).err().map(|p| p.to_string()),
        FLAG_META => usize::try_from(id)
            .ok()
            .and_then(|i| file.metas().get(i))
            .map_or(Some("not a meta slot".to_owned()), |slot| {
                slot.problem.as_ref().map(ToString::to_string)
            }),
        _ if h.id != id => Some(format!("page header names page {}", h.id)),
        _ => None,
    };
    let mut d = PageDescription {
        id,
        read_error: None,
        header: Some(PageHeaderView {
            kind: page_kind(h.flags),
            page_id: h.id,
            txid: None,
            checksum: None,
            flags: Some(h.flags),
            extent_pages: None,
            overflow: Some(h.overflow),
            count: u32::from(h.count),
            payload_len: None,
        }),
        verify: verify.unwrap_or_else(|| "ok".to_owned()),
        elements: Vec::new(),
        elements_error: None,
        meta: None,
        raw: Vec::new(),
    };
    match view.body {
        PageBody::Meta(m) => {
            d.meta = Some(MetaView {
                txid: m.txid,
                page_size: m.page_size,
                root: m.root,
                freelist: (!m.no_freelist_sync()).then_some(m.freelist),
                high_water: m.pgid,
                sequence: Some(m.sequence),
                checksum: Some(m.checksum),
            });
        }
        PageBody::Branch(es) => {
            d.elements = es
                .into_iter()
                .map(|(key, page)| PageElement::Child {
                    key,
                    page,
                    txid: None,
                    checksum: None,
                    extent_pages: None,
                })
                .collect();
        }
        PageBody::Leaf(es) => {
            d.elements = es
                .into_iter()
                .map(|(flags, key, value)| {
                    if flags & LEAF_FLAG_BUCKET == 0 {
                        return PageElement::Value { key, value };
                    }
                    match BucketHeader::decode(&value) {
                        Some(b) => PageElement::Bucket {
                            key,
                            root: b.root,
                            root_txid: None,
                            sequence: b.sequence,
                            count: None,
                            inline: Some(b.root == 0),
                        },
                        None => PageElement::Error {
                            key: Some(key),
                            message: "bucket value shorter than its header".into(),
                        },
                    }
                })
                .collect();
        }
        PageBody::Freelist(ids) => d.elements = free_runs(&ids),
        PageBody::Undecodable(e) => d.elements_error = Some(e),
    }
    d.raw = view.raw;
    d
}

/// Runs of consecutive ids, as untorn's freelist holds them.
fn free_runs(ids: &[u64]) -> Vec<PageElement> {
    let mut runs = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    for &p in ids {
        run = match run {
            Some((start, len)) if start.checked_add(len) == Some(p) => Some((start, len + 1)),
            Some((start, len)) => {
                runs.push(PageElement::FreeRun { start, len });
                Some((p, 1))
            }
            None => Some((p, 1)),
        };
    }
    if let Some((start, len)) = run {
        runs.push(PageElement::FreeRun { start, len });
    }
    runs
}

/// `stats`: page counts by kind and state, keys, buckets and the trees' shape, in the
/// one [`Stats`] shape both formats report (one check walk; `findings` counts its
/// findings).
pub fn stats_of(file: &BoltFile) -> Stats {
    let (pages, walk, findings) = crate::check::walk_for_stats(file);
    let page_size = file.page_size();
    let mut s = Stats {
        page_size: page_size as usize,
        txid: file.meta().txid,
        high_water: file.hwm(),
        file_pages: file.file_len() / u64::from(page_size.max(1)),
        meta_pages: 2,
        keys: walk.keys_checked,
        buckets: walk.buckets_checked,
        tree_depth_max: walk.shape.tree_depth_max,
        key_bytes: walk.shape.key_bytes,
        value_bytes: walk.shape.value_bytes,
        node_bytes_used: walk.shape.node_bytes_used,
        node_bytes_available: walk.shape.node_bytes_available,
        findings,
        ..Stats::default()
    };
    for p in pages {
        match p.state {
            PageState::Free => s.free_pages += 1,
            PageState::Leaked => s.leaked_pages += 1,
            PageState::Corrupt => s.corrupt_pages += 1,
            PageState::Reachable => match p.kind {
                PageKind::Branch => s.branch_pages += 1,
                PageKind::Leaf => s.leaf_pages += 1,
                PageKind::Overflow => s.overflow_pages += 1,
                PageKind::Freelist => s.freelist_pages += 1,
                _ => {}
            },
            _ => {}
        }
    }
    s
}
