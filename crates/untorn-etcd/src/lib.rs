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

pub mod backend;
pub mod check;
pub mod db;
pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod replay;
pub mod salvage;
pub mod schema;
pub mod wal;

pub use backend::{open, open_with, Opened};
pub use check::{check_db, check_file, EtcdCheckReport, EtcdFinding, EtcdFindingKind};
pub use db::{EtcdDb, QueryError, RevRecord, RevisionsSummary};
pub use error::EtcdError;
pub use format::{KeyValue, Revision};
pub use schema::{describe, detect, show_key, Detection};
