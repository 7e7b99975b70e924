//! bbolt (etcd) file format: parse, check, inspect, write, salvage and surgery.
//!
//! This crate reads bbolt format version 2 files defensively (every offset, count,
//! overflow and page id is bounds-checked; no recursion over file contents; every
//! walk has a visited set and a depth bound) and reports problems in untorn's
//! shared vocabulary ([`untorn::unstable::report`]).
//!
//! ```no_run
//! let report = untorn_bbolt::check("member/snap/db", 100)?;
//! for f in &report.findings {
//!     println!("{f}");
//! }
//! # Ok::<(), untorn_bbolt::BoltError>(())
//! ```
//!
//! It is *not* a bbolt engine: it never opens a file for transactions, and its
//! writer only builds fresh files from sorted contents.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod check;
pub mod error;
pub mod file;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod inspect;
pub mod salvage;
pub mod surgery;
pub mod tree;
pub mod writer;

use std::path::Path;

pub use check::{check_file, pages_of, CheckOptions, Progress};
pub use error::{BoltError, Result};
pub use file::{recognise, BoltFile};
pub use inspect::{FreelistInfo, Info, PageBody, PageView};
pub use salvage::{
    salvage, salvage_entries, salvage_file, write_salvaged, LostAndFound, LostSubtree,
    OrphanPolicy, SalvageOptions, SalvageReport, Salvaged,
};
pub use tree::{Dump, DumpItem, Entry};
pub use untorn::unstable::report::Stats;
pub use writer::{build_image, write_file, BucketData, Value, WriteOptions, WriteStats};

/// Checks the bbolt file at `path`, keeping at most `max_findings` findings.
/// A file with no valid meta yields a report with `MetaInvalid` findings; only an
/// I/O failure to open the file is an error.
pub fn check(
    path: impl AsRef<Path>,
    max_findings: usize,
) -> Result<untorn::unstable::report::Report> {
    check_with(
        path,
        CheckOptions {
            max_findings,
            ..CheckOptions::default()
        },
    )
}

/// Like [`check()`], with all options (a subtree walk from one page, progress).
pub fn check_with(
    path: impl AsRef<Path>,
    opts: CheckOptions,
) -> Result<untorn::unstable::report::Report> {
    let max_findings = opts.max_findings;
    match BoltFile::open(path) {
        Ok(f) => Ok(check_file(&f, opts)),
        Err(BoltError::NoValidMeta { meta0, meta1 }) => {
            let mut sink = untorn::unstable::report::FindingSink::new(max_findings);
            for (i, p) in [(0u64, meta0), (1, meta1)] {
                sink.push(
                    untorn::unstable::report::FindingKind::MetaInvalid,
                    Some(i),
                    &[],
                    format!("meta {i} is invalid: {p}"),
                );
            }
            let (findings, truncated) = sink.finish();
            Ok(untorn::unstable::report::Report {
                findings,
                truncated,
                ..Default::default()
            })
        }
        Err(e) => Err(e),
    }
}

/// Both metas, which one is in use and why, page size, txid, HWM, freelist kind.
pub fn info(file: &BoltFile) -> Info {
    inspect::info_of(file)
}

/// Every page id below the HWM with its kind and state.
pub fn pages(file: &BoltFile) -> Vec<untorn::unstable::report::PageInfo> {
    check::pages_of(file)
}

/// Decodes one page (any type), with its raw bytes.
pub fn page(file: &BoltFile, id: u64) -> Result<PageView> {
    inspect::page_view(file, id)
}

/// One page in the report vocabulary both formats share (what `untorn page` shows).
pub fn describe_page(file: &BoltFile, id: u64) -> untorn::unstable::report::PageDescription {
    inspect::describe_page(file, id)
}

/// Page counts by kind and state, keys and buckets.
pub fn stats(file: &BoltFile) -> Stats {
    inspect::stats_of(file)
}

/// Names of the sub-buckets of the bucket at `path` (empty path = top level).
pub fn buckets(file: &BoltFile, path: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    Ok(tree::children(file, path)?
        .into_iter()
        .filter(|i| i.bucket)
        .map(|i| i.key)
        .collect())
}

/// Keys (not sub-buckets) of the bucket at `path`, in order.
pub fn keys(file: &BoltFile, path: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    Ok(tree::children(file, path)?
        .into_iter()
        .filter(|i| !i.bucket)
        .map(|i| i.key)
        .collect())
}

/// The value of `key` in the bucket at `path`; `Ok(None)` if absent (or a bucket).
pub fn get(file: &BoltFile, path: &[Vec<u8>], key: &[u8]) -> Result<Option<Vec<u8>>> {
    let (root, _) = tree::open_bucket(file, path)?;
    Ok(tree::lookup(file, &root, key)?
        .filter(|i| !i.bucket)
        .map(|i| i.value))
}

/// Every bucket and key of the file, in order. Stops with an error naming the
/// page at the first damaged page.
pub fn dump(file: &BoltFile) -> Dump<'_> {
    Dump::new(file)
}

/// Reads every bucket and key of an undamaged file into memory (strict: the first
/// damaged page is an error). Feed the result to [`write_file`] to rewrite a file.
pub fn read_all(file: &BoltFile) -> Result<BucketData> {
    let mut root = BucketData {
        sequence: file.meta().sequence,
        ..BucketData::default()
    };
    for item in dump(file) {
        match item? {
            DumpItem::Bucket { path, sequence } => {
                if let Some(b) = root.bucket_mut(&path) {
                    b.sequence = sequence;
                }
            }
            DumpItem::Pair(e) => {
                if let Some(b) = root.bucket_mut(&e.bucket) {
                    b.entries.insert(e.key, Value::Data(e.value));
                }
            }
        }
    }
    Ok(root)
}
