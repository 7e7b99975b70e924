//! Opening a file as etcd's backend: read strictly when it is whole, through salvage
//! (everything that verifies) when it is damaged, and recognised as etcd's by its
//! buckets unless forced.

use std::path::Path;

use untorn_bbolt::{BoltFile, SalvageOptions, SalvageReport};

use crate::db::EtcdDb;
use crate::error::EtcdError;
use crate::schema::{describe, detect, Detection};

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
