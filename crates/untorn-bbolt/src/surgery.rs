//! Surgery with bbolt 1.4 semantics (`bbolt surgery ...`), for experts.
//!
//! Every operation takes `src` and `dst`: the source is copied to `dst` first
//! and only `dst` is modified, unless both name the same file (explicitly in
//! place). Writes are synced before returning. Operations that make pages
//! unreachable abandon the freelist in both metas (as bbolt does), so that bbolt
//! rebuilds it by scanning on the next open; [`freelist_rebuild`] writes it back.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::check::{check_file, CheckOptions};
use crate::error::{BoltError, Result};
use crate::file::BoltFile;
use crate::format::{
    valid_page_size, Meta, MetaProblem, Node, NodeKind, PageHeader, FLAG_BRANCH, FLAG_FREELIST,
    FLAG_LEAF, META_SIZE, PAGE_HEADER_SIZE, PGID_NO_FREELIST,
};
use untorn::unstable::report::FindingKind;

/// What a surgery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurgeryOutcome {
    /// One-line description.
    pub message: String,
    /// Whether the freelist was abandoned in both metas as a consequence.
    pub freelist_abandoned: bool,
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Copies src to dst unless they are the same file; returns the path to modify.
fn prepare<'a>(src: &Path, dst: &'a Path) -> Result<&'a Path> {
    if !same_file(src, dst) {
        std::fs::copy(src, dst).map_err(|e| {
            BoltError::io(format!("copy {} to {}", src.display(), dst.display()), e)
        })?;
        // The copy is durable under its name only once it and its directory are synced.
        std::fs::File::open(dst)
            .and_then(|f| f.sync_all())
            .and_then(|()| untorn::storage::sync_parent_directory(dst))
            .map_err(|e| BoltError::io(format!("sync {}", dst.display()), e))?;
    }
    Ok(dst)
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| BoltError::io(format!("open {} for writing", path.display()), e))?;
    f.write_all_at(bytes, offset)
        .and_then(|_| f.sync_all())
        .map_err(|e| BoltError::io(format!("write {} at {offset}", path.display()), e))
}

fn read_at(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path)
        .map_err(|e| BoltError::io(format!("open {}", path.display()), e))?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset)
        .map_err(|e| BoltError::io(format!("read {} at {offset}", path.display()), e))?;
    Ok(buf)
}

/// Reads meta `index` without validating it (page size from meta 0 for meta 1,
/// as bbolt does; `page_size` overrides).
fn raw_meta(path: &Path, index: u64, page_size: Option<u32>) -> Result<(Meta, u32)> {
    let ps = match page_size {
        Some(ps) => ps,
        None => {
            let b = read_at(path, PAGE_HEADER_SIZE as u64, META_SIZE)?;
            let m0 = Meta::decode(&b).ok_or_else(|| BoltError::Surgery("short meta 0".into()))?;
            m0.page_size
        }
    };
    if !valid_page_size(ps) {
        return Err(BoltError::Surgery(format!(
            "page size {ps} from meta 0 is invalid; give the page size explicitly"
        )));
    }
    let b = read_at(
        path,
        index * u64::from(ps) + PAGE_HEADER_SIZE as u64,
        META_SIZE,
    )?;
    let m = Meta::decode(&b).ok_or_else(|| BoltError::Surgery("short meta".into()))?;
    Ok((m, ps))
}

fn write_meta(path: &Path, index: u64, ps: u32, meta: &Meta) -> Result<()> {
    write_at(
        path,
        index * u64::from(ps) + PAGE_HEADER_SIZE as u64,
        &meta.encode_raw(),
    )
}

/// Replaces the newer meta page (by txid) with a copy of the older one: the last
/// transaction is lost, the previous state comes back. The older meta must be valid.
pub fn revert_meta(src: &Path, dst: &Path) -> Result<SurgeryOutcome> {
    let file = BoltFile::open(src)?;
    let ps = file.page_size();
    let len = file.file_len();
    let [m0, m1] = file.metas().clone();
    let t0 = m0.meta.map(|m| m.txid).unwrap_or(0);
    let t1 = m1.meta.map(|m| m.txid).unwrap_or(0);
    let (newer, older, older_slot) = if t0 >= t1 {
        (0u64, 1u64, &m1)
    } else {
        (1, 0, &m0)
    };
    if !older_slot.is_valid() {
        return Err(BoltError::Surgery(format!(
            "meta {older} (the older) is not valid: {}",
            older_slot
                .problem
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default()
        )));
    }
    let _ = len;
    drop(file);
    let path = prepare(src, dst)?;
    copy_page_raw(path, ps, older, newer)?;
    Ok(SurgeryOutcome {
        message: format!("meta page {newer} replaced by a copy of meta page {older}"),
        freelist_abandoned: false,
    })
}

fn copy_page_raw(path: &Path, ps: u32, from: u64, to: u64) -> Result<u64> {
    let psz = u64::from(ps);
    let file_len = std::fs::metadata(path)
        .map_err(|e| BoltError::io(format!("stat {}", path.display()), e))?
        .len();
    let pages = file_len / psz;
    if from >= pages || to >= pages {
        return Err(BoltError::Surgery(format!(
            "page {from} or {to} beyond the file's {pages} pages"
        )));
    }
    let first = read_at(path, from * psz, ps as usize)?;
    let h = PageHeader::decode(&first).ok_or_else(|| BoltError::Surgery("short page".into()))?;
    let n = u64::from(h.overflow) + 1;
    if from.saturating_add(n) > pages || to.saturating_add(n) > pages {
        return Err(BoltError::Surgery(format!(
            "page {from} with {} overflow pages does not fit at {to}",
            h.overflow
        )));
    }
    let mut buf = read_at(path, from * psz, (n * psz) as usize)?;
    if !crate::format::put_u64(&mut buf, 0, to) {
        return Err(BoltError::Surgery("short page".into()));
    }
    write_at(path, to * psz, &buf)?;
    Ok(n)
}

/// Copies page `from` (with its overflow pages) over page `to`, setting the
/// copy's header id to `to`.
pub fn copy_page(src: &Path, dst: &Path, from: u64, to: u64) -> Result<SurgeryOutcome> {
    let ps = BoltFile::open(src)?.page_size();
    let path = prepare(src, dst)?;
    let n = copy_page_raw(path, ps, from, to)?;
    Ok(SurgeryOutcome {
        message: format!("copied page {from} ({n} pages) to page {to}"),
        freelist_abandoned: false,
    })
}

/// Removes every element of a branch or leaf page.
pub fn clear_page(src: &Path, dst: &Path, page: u64) -> Result<SurgeryOutcome> {
    clear_page_elements(src, dst, page, 0, None)
}

/// Removes elements `start..end` (`end` None = to the last) of a branch or leaf
/// page. As in bbolt, the freelist is abandoned when a branch page changes or the
/// page's overflow changes (pages become unreachable).
pub fn clear_page_elements(
    src: &Path,
    dst: &Path,
    page: u64,
    start: usize,
    end: Option<usize>,
) -> Result<SurgeryOutcome> {
    let file = BoltFile::open(src)?;
    let ps = file.page_size();
    let (header, buf) = file.read_extent(page, false).or_else(|_| {
        // Outside the HWM checks (expert tool): read the page and its overflow raw.
        let h = file
            .read_header(page)
            .map_err(|p| BoltError::Page { page, problem: p })?;
        file.read_raw(page, u64::from(h.overflow) + 1)
            .map(|b| (h, b))
            .map_err(|p| BoltError::Page { page, problem: p })
    })?;
    drop(file);
    let node = Node::parse(buf)
        .map_err(|p| BoltError::Surgery(format!("can't clear elements in page {page}: {p}")))?;
    let count = node.elems.len();
    if count == 0 {
        return Ok(SurgeryOutcome {
            message: format!("page {page} has no elements; nothing changed"),
            freelist_abandoned: false,
        });
    }
    let end_idx = end.unwrap_or(count);
    if start >= count {
        return Err(BoltError::Surgery(format!(
            "the start index ({start}) is out of range [0, {count})"
        )));
    }
    if end_idx > count {
        return Err(BoltError::Surgery(format!(
            "the end index ({end_idx}) is out of range [0, {count}]"
        )));
    }
    if start >= end_idx {
        return Err(BoltError::Surgery(format!(
            "the start index ({start}) must be smaller than the end index ({end_idx})"
        )));
    }
    let flags = if node.kind == NodeKind::Branch {
        FLAG_BRANCH
    } else {
        FLAG_LEAF
    };
    let kept: Vec<(&[u8], &[u8], u32, u64)> = (0..count)
        .filter(|i| *i < start || *i >= end_idx)
        .map(|i| {
            let e = node.elems.get(i);
            (
                node.key(i),
                node.value(i),
                e.map(|e| e.flags).unwrap_or(0),
                e.map(|e| e.pgid).unwrap_or(0),
            )
        })
        .collect();
    let mut encoded = crate::writer::encode_node(header.id, flags, &kept)?;
    let psz = ps as usize;
    let pages = encoded.len().div_ceil(psz).max(1);
    let overflow = (pages - 1) as u32;
    encoded.resize(pages * psz, 0);
    if !crate::format::put_u32(&mut encoded, 12, overflow) {
        return Err(BoltError::Surgery(
            "encoded node shorter than its header".into(),
        ));
    }
    let path = prepare(src, dst)?;
    write_at(path, page * u64::from(ps), &encoded)?;
    let abandon = overflow != header.overflow || node.kind == NodeKind::Branch;
    if abandon {
        abandon_in_place(path, ps)?;
    }
    Ok(SurgeryOutcome {
        message: format!(
            "removed elements {start}..{end_idx} of {count} from page {page}{}",
            if abandon {
                "; freelist abandoned in both metas"
            } else {
                ""
            }
        ),
        freelist_abandoned: abandon,
    })
}

fn abandon_in_place(path: &Path, ps: u32) -> Result<()> {
    for i in 0..2u64 {
        let (mut m, _) = raw_meta(path, i, Some(ps))?;
        m.freelist = PGID_NO_FREELIST;
        write_meta(path, i, ps, &m.with_checksum())?;
    }
    Ok(())
}

/// Sets the freelist of both metas to "not synced"; bbolt then rebuilds it by
/// scanning on open.
pub fn freelist_abandon(src: &Path, dst: &Path) -> Result<SurgeryOutcome> {
    let ps = BoltFile::open(src)?.page_size();
    let path = prepare(src, dst)?;
    abandon_in_place(path, ps)?;
    Ok(SurgeryOutcome {
        message: "the freelist was abandoned in both meta pages".into(),
        freelist_abandoned: true,
    })
}

/// Writes a freelist for a file whose freelist was abandoned: free pages are the
/// pages below the high-water mark that the tree does not reach. The freelist is
/// appended at the high-water mark and a new meta (txid + 1) is written to the
/// other meta slot, like a bbolt commit. Refuses when a freelist is present or
/// the tree does not check clean (cycle, double reference, bad page).
pub fn freelist_rebuild(src: &Path, dst: &Path) -> Result<SurgeryOutcome> {
    let file = BoltFile::open(src)?;
    let meta = file.meta();
    if !meta.no_freelist_sync() {
        return Err(BoltError::Surgery(
            "the freelist is already present (abandon it first)".into(),
        ));
    }
    let report = check_file(
        &file,
        CheckOptions {
            max_findings: 10,
            ..CheckOptions::default()
        },
    );
    if let Some(f) = report
        .findings
        .iter()
        .find(|f| !matches!(f.kind, FindingKind::MetaFallback | FindingKind::MetaInvalid))
    {
        return Err(BoltError::Surgery(format!(
            "the tree does not check clean; repair it first: {f}"
        )));
    }
    let free: Vec<u64> = crate::check::pages_of(&file)
        .into_iter()
        .filter(|p| p.state == untorn::unstable::report::PageState::Free && p.id >= 2)
        .map(|p| p.id)
        .collect();
    let ps = file.page_size();
    let psz = ps as usize;
    let hwm = meta.pgid;
    let active = file.active_index() as u64;
    drop(file);
    let big = free.len() >= 0xFFFF;
    let size = PAGE_HEADER_SIZE + if big { 8 } else { 0 } + free.len() * 8;
    let pages = size.div_ceil(psz).max(1);
    let mut buf = vec![0u8; pages * psz];
    PageHeader {
        id: hwm,
        flags: FLAG_FREELIST,
        count: if big { 0xFFFF } else { free.len() as u16 },
        overflow: (pages - 1) as u32,
    }
    .encode(&mut buf);
    let mut off = PAGE_HEADER_SIZE;
    let mut written = true;
    if big {
        written &= crate::format::put_u64(&mut buf, off, free.len() as u64);
        off += 8;
    }
    for id in &free {
        written &= crate::format::put_u64(&mut buf, off, *id);
        off += 8;
    }
    if !written {
        return Err(BoltError::Surgery(
            "freelist ids exceed the freelist pages".into(),
        ));
    }
    let path = prepare(src, dst)?;
    write_at(path, hwm * u64::from(ps), &buf)?;
    let new_meta = Meta {
        freelist: hwm,
        pgid: hwm + pages as u64,
        txid: meta.txid + 1,
        ..meta
    }
    .with_checksum();
    let slot = 1 - active;
    write_meta(path, slot, ps, &new_meta)?;
    Ok(SurgeryOutcome {
        message: format!(
            "freelist of {} pages written at page {hwm}; meta {slot} is now txid {}",
            free.len(),
            new_meta.txid
        ),
        freelist_abandoned: false,
    })
}

/// Validates both metas (read-only): for each, Ok or the problem.
pub fn meta_validate(path: &Path) -> Result<[std::result::Result<Meta, MetaProblem>; 2]> {
    let len = std::fs::metadata(path)
        .map_err(|e| BoltError::io(format!("stat {}", path.display()), e))?
        .len();
    let (m0, ps) = raw_meta(path, 0, None).or_else(|_| {
        // Meta 0 unreadable: fall back to detection through a full open.
        BoltFile::open(path).map(|f| (f.meta(), f.page_size()))
    })?;
    let (m1, _) = raw_meta(path, 1, Some(ps))?;
    let v = |m: Meta| m.validate(len).map(|_| m);
    Ok([v(m0), v(m1)])
}

/// Fields `meta update` may set (bbolt's set: pageSize, root, freelist, pgid).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaUpdate {
    /// New page size.
    pub page_size: Option<u32>,
    /// New root bucket page (the root bucket's sequence becomes 0, as in bbolt).
    pub root: Option<u64>,
    /// New freelist page (0xFFFF_FFFF_FFFF_FFFF = not synced).
    pub freelist: Option<u64>,
    /// New high-water mark.
    pub pgid: Option<u64>,
}

/// Updates fields of meta `index` (0 or 1), restores magic and version, and
/// recomputes the checksum.
pub fn meta_update(
    src: &Path,
    dst: &Path,
    index: u64,
    update: &MetaUpdate,
) -> Result<SurgeryOutcome> {
    if index > 1 {
        return Err(BoltError::Surgery(format!("invalid meta page id: {index}")));
    }
    let path = prepare(src, dst)?;
    // Meta 0 sits at offset 0 whatever the page size; meta 1's offset comes from
    // meta 0's page size (as in bbolt), or from detection when that is damaged.
    let ps = if index == 0 {
        crate::format::MIN_PAGE_SIZE
    } else {
        match raw_meta(path, 0, None) {
            Ok((_, ps)) => ps,
            Err(_) => BoltFile::open(path)?.page_size(),
        }
    };
    let (mut m, _) = raw_meta(path, index, Some(ps))?;
    if let Some(v) = update.page_size {
        m.page_size = v;
    }
    if let Some(v) = update.root {
        m.root = v;
        m.sequence = 0;
    }
    if let Some(v) = update.freelist {
        m.freelist = v;
    }
    if let Some(v) = update.pgid {
        m.pgid = v;
    }
    m.magic = crate::format::MAGIC;
    m.version = crate::format::VERSION;
    write_meta(path, index, ps, &m.with_checksum())?;
    Ok(SurgeryOutcome {
        message: format!("meta page {index} updated"),
        freelist_abandoned: update.freelist == Some(PGID_NO_FREELIST),
    })
}
