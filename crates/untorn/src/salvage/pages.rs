//! Page-level salvage: reads every page of a data file and every commit record of its
//! journals, keeps each extent that verifies on its own, and rebuilds buckets and keys
//! from them, whether or not the engine can open the file.
//!
//! The passes live beside this file, one noun each: `scan` (1, 2), `rebuild` (3, 4),
//! `candidates` (newest txid per key, spilled to a temporary file beyond the memory
//! budget), `emit` (5); `options` holds the budget and its split.
//!
//! 1. **Scan.** Every page id of the data file (metas included) and every image of every
//!    commit record whose header verifies (journal and rollback copies, this database's
//!    id only) is verified on its own: checksum, self id, extent, node structure. Each
//!    verified branch, leaf and overflow extent is indexed by (page id, txid, checksum).
//! 2. **Newest commit.** The newest of the meta slots that verify, the journal's
//!    generation markers and its commit headers (a commit's root is in its header).
//! 3. **Live walk.** From that commit's root, every bucket's tree is walked through the
//!    index, each reference resolved only by the exact version it names (parents vouch
//!    for children, so a stale page never stands in for a lost one). A reference that
//!    does not resolve makes its key range in that bucket *lost*.
//! 4. **Refill.** Verified leaves the live walk did not use (free pages, older versions,
//!    journal images of older commits) are attributed to their bucket by `tree_id` and
//!    used only inside the lost ranges of their bucket (or for a bucket the walk never
//!    reached); the newest txid wins per key, and every such key is reported as possibly
//!    older than its last committed value. Pages of uncommitted transactions (txid newer
//!    than the newest commit) and of buckets created after it are never used.
//! 5. **Names.** A bucket's name, parent and sequence come from the bucket entry that
//!    carries its `bucket_id`; a bucket whose entry is lost is recovered as
//!    `lost+found/bucket-<id>` (its sub-buckets keep their names below it).
//!
//! Every walk is bounded (explicit stacks, visited sets, the tree height and nesting
//! limits); nothing is written to any source.
//!
//! Memory is bounded by [`SalvageOptions::memory_budget`], not by the file size: only the
//! index (about 72 bytes per verified extent) stays in memory; page contents are
//! read again from the source when the walk, the refill and the emission need them, and
//! the entries found are resolved to one per key in sorted runs spilled to a temporary
//! file when they do not fit (overflow values are read at emission).

use std::path::Path;

use super::candidates::Candidates;
use super::emit::{emit_all, Places};
use super::options::{Budget, SalvageOptions, INDEX_ENTRY_BYTES};
use super::rebuild::rebuild;
use super::scan::{detect_page_size, scan_data, scan_journal, Commit, Scan};
use crate::error::{Error, Result};
use crate::report::{DumpItem, SalvageSummary};
use crate::storage::Storage;

/// Whether the file at `path` holds untorn pages even though neither meta slot says so
/// (both destroyed): a journal header or pages that verify at some page size.
pub fn recognise_file(path: &Path) -> Result<bool> {
    let (data, journals) = crate::files::salvage_sources(path)?;
    let js: Vec<&dyn Storage> = journals.iter().map(|(_, s)| s as &dyn Storage).collect();
    match detect_page_size(&data, &js) {
        Ok(_) => Ok(true),
        Err(Error::NotADatabase(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Salvages the database at `path` page by page (its journal and rollback copies
/// included), passing buckets and pairs to `emit` (buckets in path order, each followed
/// by its pairs in key order; a parent before its children), and reports what could not be recovered. Nothing is
/// written to the source.
pub fn salvage_file<E: From<Error>>(
    path: &Path,
    opts: SalvageOptions<'_>,
    emit: impl FnMut(DumpItem) -> std::result::Result<(), E>,
) -> std::result::Result<SalvageSummary, E> {
    let (data, journals) = crate::files::salvage_sources(path)?;
    let journal_path = crate::files::journal_path(path);
    let live = journals
        .iter()
        .find(|(p, _)| *p == journal_path)
        .map(|(_, s)| s as &dyn Storage);
    let copies: Vec<&dyn Storage> = journals
        .iter()
        .filter(|(p, _)| *p != journal_path)
        .map(|(_, s)| s as &dyn Storage)
        .collect();
    salvage_storage(&data, live, &copies, opts, emit)
}

/// [`salvage_file`] over storages: the data file, its journal and journal copies kept by
/// rollbacks. A rollback copy's commits were discarded on purpose (and their txids may
/// be reused since): its images only refill lost ranges, its commits are never taken as
/// the newest.
pub fn salvage_storage<E: From<Error>>(
    data: &dyn Storage,
    journal: Option<&dyn Storage>,
    rollback_copies: &[&dyn Storage],
    mut opts: SalvageOptions<'_>,
    mut emit: impl FnMut(DumpItem) -> std::result::Result<(), E>,
) -> std::result::Result<SalvageSummary, E> {
    let journals: Vec<&dyn Storage> = journal
        .into_iter()
        .chain(rollback_copies.iter().copied())
        .collect();
    let ps = detect_page_size(data, &journals)?;
    let mut sources: Vec<&dyn Storage> = vec![data];
    sources.extend(journals.iter().copied());
    let live_journal = usize::from(journal.is_some());
    let budget = Budget::new(opts.memory_budget, ps)?;
    let record_max = budget.record_max;
    let mut scan = Scan {
        sources,
        ps,
        versions: Vec::new(),
        commits: Vec::new(),
        summary: SalvageSummary::default(),
        budget,
    };
    let metas = scan_data(&mut scan, &mut opts)?;
    // The database's identity: the metas', else the one most journal headers carry.
    let db_id = metas.first().map(|m| m.db_id);
    for m in &metas {
        scan.commits.push(Commit {
            txid: m.txid,
            root: m.root,
            next_bucket_id: m.next_bucket_id,
            what: "a meta slot",
        });
    }
    for src in 1..scan.sources.len() {
        let commits = scan.commits.len();
        scan_journal(&mut scan, src, db_id, &mut opts)?;
        if src > live_journal {
            scan.commits.truncate(commits);
        }
    }
    scan.sort_index();
    let mut cands = Candidates::new(opts.temp_dir.clone(), record_max);
    let trees = rebuild(&mut scan, &mut cands, &mut opts)?;
    let mut places = Places::default();
    let mut place_bytes = 0u64;
    let winners = cands.finish(scan.budget.sort_bytes(), &mut opts, |rec| {
        let held = places.see(rec.tree, &rec.key, &rec.value, rec.older);
        if held > 0 {
            place_bytes += held + INDEX_ENTRY_BYTES;
        }
        Ok(())
    })?;
    scan.budget
        .charge(place_bytes, "the names of the buckets")?;
    let mut summary = std::mem::take(&mut scan.summary);
    emit_all(&scan, &trees, &places, &winners, &mut summary, &mut emit)?;
    Ok(summary)
}
