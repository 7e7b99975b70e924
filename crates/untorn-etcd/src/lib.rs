//! etcd's schema over bbolt files: revisions, `mvccpb.KeyValue` values, the meta
//! bucket, leases, members and auth — read, checked and salvaged in etcd's terms.
//!
//! ```no_run
//! let opened = untorn_etcd::open("member/snap/db")?;
//! let db = &opened.db;
//! if let Some(kv) = db.get(b"/registry/pods/ns-023/pod-001478", None)? {
//!     println!("mod_revision {} value {} bytes", kv.mod_revision, kv.value.len());
//! }
//! let report = untorn_etcd::check_db(db, 100);
//! for f in &report.findings {
//!     println!("{f}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! It is *not* an etcd server or client: it reads the backend file (a data dir's
//! `member/snap/db` or an `etcdctl snapshot save` file) without the raft log, and
//! answers what `etcdctl get` would from that file alone. The bbolt crate it builds on
//! stays etcd-agnostic; everything etcd-specific lives here.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod check;
pub mod db;
pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod salvage;
pub mod schema;

use std::path::Path;

pub use check::{check_db, EtcdCheckReport, EtcdFinding, EtcdFindingKind};
pub use db::{EtcdDb, QueryError, RevRecord, RevisionsSummary};
pub use error::EtcdError;
pub use format::{KeyValue, Revision};
pub use schema::{describe, detect, show_key, Detection};

use untorn_bbolt::{BoltFile, SalvageOptions, SalvageReport};

/// A file opened as etcd's backend.
#[derive(Debug)]
pub struct Opened {
    /// The etcd contents.
    pub db: EtcdDb,
    /// Whether the top-level buckets look like etcd's.
    pub detection: Detection,
    /// When the strict read failed: what salvage could verify instead (the contents
    /// are then everything that verifies, and this says what could not be read).
    pub damaged: Option<SalvageReport>,
    /// The file's snapshot trailer, when it is an `etcdctl snapshot save` file.
    pub snapshot: Option<untorn_bbolt::file::SnapshotTrailer>,
}

/// Opens `path` as etcd's backend, refusing files that do not look like etcd's.
pub fn open(path: impl AsRef<Path>) -> Result<Opened, EtcdError> {
    open_with(path, false)
}

/// Opens `path` as etcd's backend; `force` reads it as etcd even when the bucket
/// names do not say so. A damaged file is read through salvage (everything that
/// verifies), and [`Opened::damaged`] says what could not be read.
pub fn open_with(path: impl AsRef<Path>, force: bool) -> Result<Opened, EtcdError> {
    let path = path.as_ref();
    let file = BoltFile::open(path)?;
    let snapshot = file.snapshot_trailer().cloned();
    let (root, damaged) = match untorn_bbolt::read_all(&file) {
        Ok(root) => (root, None),
        Err(_) => {
            let s = untorn_bbolt::salvage_file(file, &SalvageOptions::default())?;
            (s.data, Some(s.report))
        }
    };
    let detection = detect(&root);
    if !detection.is_etcd && !force {
        return Err(EtcdError::NotEtcd(describe(&detection)));
    }
    Ok(Opened {
        db: EtcdDb::from_buckets(&root),
        detection,
        damaged,
        snapshot,
    })
}
