//! Meta surgery: `revert-meta` and `meta update`.
//!
//! **Revert and the journal.** The meta choice (`superblock::choose`) and the journal
//! must agree after a revert, or the next open would replay what was reverted (records
//! chained to the newer meta) or refuse the file. A revert therefore gives up the
//! journal with the newer state: both slots are rewritten to the kept state (under a
//! txid above every txid the slots knew, so later commits never reuse a dropped commit's
//! txid), and the journal is truncated to the new generation's marker. The caller keeps
//! the old journal's bytes aside (`<journal>.rollback-<unix-seconds>`, as a rollback
//! does) before handing the journal to [`revert_meta`].

use std::sync::Arc;

use super::error::SurgeryError;
use super::outcome::{Dropped, Outcome};
use super::staged::{settle, write_metas, write_result, Base, FreePlan};
use super::tree::walk;
use crate::check::{check_storage_with_journal, CheckOptions};
use crate::error::Error;
use crate::format::meta::claimed_txid;
use crate::format::{
    peek_extent_pages, BucketId, Meta, PageId, PageRef, PageType, TxId, VerifiedPage,
    RECORD_HEADER_SIZE,
};
use crate::limits::MAX_EXTENT_PAGES;
use crate::storage::Storage;
use crate::superblock::{read_raw, validate_slots, Slot};

type Res<T> = std::result::Result<T, SurgeryError>;

/// Makes the older meta slot (or the only one that verifies) the file's state. Both
/// slots are rewritten to it (txid above every txid either slot knew), its tree is
/// walked and the freelist rebuilt when the walk is complete, and the journal is reset
/// to the new generation: the commits after the kept meta are dropped, never replayed.
pub fn revert_meta(data: Arc<dyn Storage>, journal: Arc<dyn Storage>) -> Res<Outcome> {
    let (ps, [s0, s1]) = validate_slots(data.as_ref())?;
    let (kept, other_slot, through, max_seq) = match (s0, s1) {
        (Ok(a), Ok(b)) => {
            if a.db_id != b.db_id {
                return Err(SurgeryError::Meta(format!(
                    "the meta slots belong to different databases ({} and {})",
                    a.db_id, b.db_id
                )));
            }
            let (newer, older) = if (b.txid, b.meta_seq) > (a.txid, a.meta_seq) {
                (b, a)
            } else {
                (a, b)
            };
            (older, newer.slot(), Some(newer.txid.get()), newer.meta_seq)
        }
        (Ok(v), Err(_)) | (Err(_), Ok(v)) => {
            let damaged = if v.slot() == 0 { Slot::One } else { Slot::Zero };
            let claimed = read_raw(data.as_ref(), damaged, ps)
                .ok()
                .and_then(|p| claimed_txid(&p))
                .map(TxId::get);
            (v, damaged.page(), claimed, v.meta_seq.saturating_add(1))
        }
        (Err(a), Err(b)) => {
            return Err(SurgeryError::Meta(format!(
            "neither meta slot verifies (slot 0: {a}; slot 1: {b}): there is no meta to revert to \
                 (`untorn salvage` rebuilds a file from its pages)"
        )))
        }
    };
    let journal_len = journal.len().map_err(Error::from_io)?;
    let newest = through.unwrap_or(0).max(kept.txid.get());
    let txid = TxId(newest)
        .next()
        .ok_or(Error::Internal("txid overflow"))?;
    let base = Base {
        meta: Meta {
            meta_seq: max_seq,
            ..kept
        },
        page_size: ps,
    };
    let written = write_result(
        data.as_ref(),
        journal.as_ref(),
        &base,
        kept.root,
        txid,
        FreePlan::Derive,
    )?;
    Ok(Outcome {
        message: format!(
            "meta slot {} (txid {}) is the file's state; slot {other_slot} and the journal no longer count",
            kept.slot(),
            kept.txid
        ),
        dropped: vec![Dropped::Commits {
            kept_txid: kept.txid.get(),
            through_txid: through,
            journal: journal_len > RECORD_HEADER_SIZE as u64,
        }],
        txid: txid.get(),
        freelist_rebuilt: written.freelist_rebuilt,
        leaked_pages: written.leaked_pages,
        unreadable_pages: written.unreadable_pages,
    })
}

/// The meta fields `meta update` sets (bbolt's names: `root`, `freelist`, `pgid`, plus
/// `txid`). A page id becomes a reference vouching for the page as it is now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaUpdate {
    /// The root bucket's tree root (0: empty).
    pub root: Option<u64>,
    /// The freelist extent (0: none).
    pub freelist: Option<u64>,
    /// The high-water mark (bbolt's `pgid`).
    pub high_water: Option<u64>,
    /// The txid the meta describes.
    pub txid: Option<u64>,
}

/// A reference to page `id` as it is on disk, which must verify and be of `kinds`.
fn reference_to(
    data: &dyn Storage,
    id: u64,
    page_size: usize,
    kinds: &[PageType],
    field: &'static str,
) -> Res<PageRef> {
    if id == 0 {
        return Ok(PageRef::NULL);
    }
    let file_pages = data.len().map_err(Error::from_io)? / page_size as u64;
    if id < PageId::FIRST_DATA.get() || id >= file_pages {
        return Err(SurgeryError::PageOutOfRange {
            page: id,
            high_water: file_pages,
        });
    }
    let mut head = vec![0u8; page_size];
    let off = PageId(id)
        .offset(page_size)
        .ok_or(Error::Internal("page offset"))?;
    let unreadable = |why: String| SurgeryError::Unreadable { page: id, why };
    data.read_at(off, &mut head)
        .map_err(|e| unreadable(format!("cannot read it: {e}")))?;
    // The extent must lie inside the file: its length bounds what is read.
    let pages = peek_extent_pages(&head)
        .filter(|n| {
            *n >= 1 && *n <= MAX_EXTENT_PAGES && id.saturating_add(u64::from(*n)) <= file_pages
        })
        .ok_or_else(|| {
            unreadable("its header names no extent length that fits in the file".into())
        })?;
    let mut bytes = vec![
        0u8;
        usize::try_from(pages)
            .unwrap_or(usize::MAX)
            .saturating_mul(page_size)
    ];
    data.read_at(off, &mut bytes)
        .map_err(|e| unreadable(format!("cannot read it: {e}")))?;
    let v = VerifiedPage::verify(bytes, PageId(id), page_size)
        .map_err(|e| unreadable(e.to_string()))?;
    let t = v.header().page_type;
    if !kinds.contains(&t) {
        return Err(SurgeryError::WrongPageKind {
            page: id,
            found: t.as_str().into(),
            expected: if field == "root" {
                "a branch or leaf page of the root bucket"
            } else {
                "a freelist page"
            },
            op: "meta update",
        });
    }
    if field == "root" && v.header().tree_id != BucketId::ROOT {
        return Err(SurgeryError::WrongPageKind {
            page: id,
            found: format!("{} page of tree {}", t.as_str(), v.header().tree_id),
            expected: "a branch or leaf page of the root bucket (tree 1)",
            op: "meta update",
        });
    }
    Ok(v.reference())
}

/// Sets meta fields, re-sealed into both slots with a new generation marker. Refused
/// when the new meta would not verify; refused (unless `force`) when the result fails
/// check — the caller then discards the copy. The base is the settled state, or, when
/// the engine cannot open the copy (a damaged slot), the newest slot that verifies (the
/// journal is then dropped, and the outcome says so).
pub fn meta_update(
    data: Arc<dyn Storage>,
    journal: Arc<dyn Storage>,
    update: &MetaUpdate,
    force: bool,
) -> Res<Outcome> {
    let mut dropped = Vec::new();
    let base = match settle(&data, &journal) {
        Ok(b) => b,
        Err(SurgeryError::Unsettled(_)) => {
            let (ps, slots) = validate_slots(data.as_ref())?;
            let newest = slots
                .iter()
                .filter_map(|s| s.as_ref().ok())
                .max_by_key(|m| (m.txid, m.meta_seq))
                .copied()
                .ok_or_else(|| {
                    SurgeryError::Meta(
                        "neither meta slot verifies: there is no meta to update".into(),
                    )
                })?;
            if journal.len().map_err(Error::from_io)? > RECORD_HEADER_SIZE as u64 {
                dropped.push(Dropped::Commits {
                    kept_txid: newest.txid.get(),
                    through_txid: None,
                    journal: true,
                });
            }
            let max_seq = slots
                .iter()
                .filter_map(|s| s.as_ref().ok())
                .map(|m| m.meta_seq)
                .max()
                .unwrap_or(newest.meta_seq);
            Base {
                meta: Meta {
                    meta_seq: max_seq,
                    ..newest
                },
                page_size: ps,
            }
        }
        Err(e) => return Err(e),
    };
    let ps = base.page_size;
    let mut meta = base.meta;
    if let Some(hw) = update.high_water {
        meta.high_water = PageId(hw);
    }
    if let Some(t) = update.txid {
        meta.txid = TxId(t);
    }
    if let Some(id) = update.root {
        let r = reference_to(
            data.as_ref(),
            id,
            ps,
            &[PageType::Branch, PageType::Leaf],
            "root",
        )?;
        if r != base.meta.root && !base.meta.root.is_null() {
            let w = walk(data.as_ref(), base.meta.root, ps, base.meta.high_water)?;
            dropped.push(Dropped::Subtree {
                bucket: Vec::new(),
                page: base.meta.root.page_id.get(),
                from: None,
                to: None,
                keys: w.unreadable.is_empty().then(|| w.values.values().sum()),
            });
        }
        meta.root = r;
    }
    if let Some(id) = update.freelist {
        meta.freelist = reference_to(data.as_ref(), id, ps, &[PageType::Freelist], "freelist")?;
    }
    meta.validate(meta.slot())
        .map_err(|e| SurgeryError::Meta(format!("the updated meta would not verify: {e}")))?;
    let written = write_metas(data.as_ref(), journal.as_ref(), meta)?;
    let report = check_storage_with_journal(
        Arc::clone(&data),
        Some(journal.as_ref()),
        CheckOptions::default(),
    )?;
    if !force && !report.is_ok() {
        let errors: Vec<String> = report
            .findings
            .iter()
            .filter(|f| !f.kind.is_warning())
            .take(3)
            .map(ToString::to_string)
            .collect();
        return Err(SurgeryError::Refused(format!(
            "the updated file fails check: {}",
            errors.join("; ")
        )));
    }
    let _ = written;
    Ok(Outcome {
        message: format!(
            "meta updated: root page {}, freelist page {}, high-water mark {}, txid {}",
            meta.root.page_id, meta.freelist.page_id, meta.high_water, meta.txid
        ),
        dropped,
        txid: meta.txid.get(),
        freelist_rebuilt: false,
        leaked_pages: 0,
        unreadable_pages: Vec::new(),
    })
}
