//! Inspection: file info, a decoded page, and statistics.

use std::fmt;

use untorn::report::{PageKind, PageState};

use crate::file::{BoltFile, MetaSlot};
use crate::format::{
    decode_freelist, flags_name, Meta, Node, NodeKind, PageHeader, FLAG_BRANCH, FLAG_FREELIST,
    FLAG_LEAF, FLAG_META, META_SIZE, PAGE_HEADER_SIZE,
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

/// `stats`: page counts by kind and state, keys and buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Page size.
    pub page_size: u32,
    /// High-water mark.
    pub hwm: u64,
    /// File size.
    pub file_len: u64,
    /// Reachable branch pages.
    pub branch_pages: u64,
    /// Reachable leaf pages.
    pub leaf_pages: u64,
    /// Reachable overflow pages (of branches and leaves).
    pub overflow_pages: u64,
    /// Freelist pages (with overflow).
    pub freelist_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Leaked pages.
    pub leaked_pages: u64,
    /// Corrupt pages.
    pub corrupt_pages: u64,
    /// Keys (not buckets).
    pub keys: u64,
    /// Buckets (not counting the root bucket).
    pub buckets: u64,
}

/// Computes the stats (one check walk).
pub fn stats_of(file: &BoltFile) -> Stats {
    let mut s = Stats {
        page_size: file.page_size(),
        hwm: file.hwm(),
        file_len: file.file_len(),
        ..Stats::default()
    };
    let (pages, keys, buckets) = crate::check::pages_and_counts(file);
    s.keys = keys;
    s.buckets = buckets;
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

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "page size {} hwm {} file {} bytes",
            self.page_size, self.hwm, self.file_len
        )?;
        writeln!(
            f,
            "pages: branch {} leaf {} overflow {} freelist {} free {} leaked {} corrupt {}",
            self.branch_pages,
            self.leaf_pages,
            self.overflow_pages,
            self.freelist_pages,
            self.free_pages,
            self.leaked_pages,
            self.corrupt_pages
        )?;
        writeln!(f, "buckets {} keys {}", self.buckets, self.keys)
    }
}
