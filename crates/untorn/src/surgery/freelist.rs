//! `freelist rebuild`: a fresh freelist from a walk of the tree; `freelist abandon`: no
//! freelist at all (every page the tree does not reach is leaked, never reused).

use std::sync::Arc;

use super::error::SurgeryError;
use super::outcome::Outcome;
use super::staged::{settle, write_result, Base, FreePlan, Written};
use super::tree::walk;
use crate::error::Error;
use crate::format::TxId;
use crate::storage::Storage;

/// Walks every tree from the base meta and writes a freelist of every page below the
/// high-water mark that nothing reaches, sealed under a new meta (txid + 1). Refused
/// (nothing written) when the tree references a page that does not verify: the pages
/// below it are unknown, and listing them as free would let the next commit overwrite
/// what salvage could still read. Drops nothing.
pub fn freelist_rebuild(
    data: Arc<dyn Storage>,
    journal: Arc<dyn Storage>,
) -> std::result::Result<Outcome, SurgeryError> {
    let (base, txid, written, used) = rewrite(&data, &journal, FreePlan::Derive)?;
    let data_pages = base.meta.high_water.get().saturating_sub(2);
    Ok(outcome(
        format!(
            "freelist rebuilt by a walk: {used} of {} reachable",
            crate::report::count(data_pages, "data page")
        ),
        txid,
        written,
    ))
}

/// Drops the freelist: a new meta (txid + 1) lists no free page, so every page the tree
/// does not reach is leaked — never handed out again, so never overwritten — until
/// `freelist rebuild` (once the tree verifies) or `untorn compact` reclaims it. The
/// rung below `rebuild`: it needs neither a readable freelist nor a tree without
/// unreadable pages, and it drops no data.
pub fn freelist_abandon(
    data: Arc<dyn Storage>,
    journal: Arc<dyn Storage>,
) -> std::result::Result<Outcome, SurgeryError> {
    let (_, txid, written, _) = rewrite(&data, &journal, FreePlan::Abandon)?;
    Ok(outcome(
        format!(
            "freelist abandoned: {} that nothing reaches leaked (never reused); \
             `untorn surgery freelist rebuild` lists them again once the tree verifies, \
             `untorn compact` reclaims them",
            crate::report::count(written.leaked_pages, "page")
        ),
        txid,
        written,
    ))
}

/// Settles the copy and writes the base's tree under a new meta (txid + 1) with the
/// freelist `plan` says; a derived freelist is refused while a reachable page does not
/// verify. Returns the base, the new txid, what was written and the reachable pages.
fn rewrite(
    data: &Arc<dyn Storage>,
    journal: &Arc<dyn Storage>,
    plan: FreePlan,
) -> std::result::Result<(Base, TxId, Written, u64), SurgeryError> {
    let base = settle(data, journal)?;
    let w = walk(
        data.as_ref(),
        base.meta.root,
        base.page_size,
        base.meta.high_water,
    )?;
    if let (FreePlan::Derive, Some((page, why))) = (plan, w.unreadable.first()) {
        return Err(SurgeryError::Damaged(format!(
            "the tree references {} that do not verify (first: page {page}: {why}); \
             the pages below them are unknown, so a rebuilt freelist could hand them out: \
             clear them first (`surgery clear-page`), or abandon the freelist",
            crate::report::count(w.unreadable.len() as u64, "page")
        )));
    }
    let txid = base
        .meta
        .txid
        .next()
        .ok_or(Error::Internal("txid overflow"))?;
    let written = write_result(
        data.as_ref(),
        journal.as_ref(),
        &base,
        base.meta.root,
        txid,
        plan,
    )?;
    let used = u64::try_from(w.used.len()).unwrap_or(u64::MAX);
    Ok((base, txid, written, used))
}

fn outcome(message: String, txid: TxId, written: Written) -> Outcome {
    Outcome {
        message,
        dropped: Vec::new(),
        txid: txid.get(),
        freelist_rebuilt: written.freelist_rebuilt,
        leaked_pages: written.leaked_pages,
        unreadable_pages: written.unreadable_pages,
    }
}
