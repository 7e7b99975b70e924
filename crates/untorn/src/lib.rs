//! untorn: an embedded, transactional key/value store whose files survive power loss,
//! torn page writes, lying disks and bit rot.
//!
//! ```
//! # fn main() -> untorn::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("example.untorn");
//! use untorn::Database;
//!
//! let db = Database::create(&path)?;               // opens, or creates, a file
//! db.update(|tx| {                                 // one atomic, durable commit
//!     let users = tx.create_bucket_if_not_exists("users")?;
//!     users.put("alice", "admin")?;
//!     users.put("bob", "reader")?;
//!     let logins = users.create_bucket_if_not_exists("logins")?; // nested bucket
//!     logins.put(logins.next_sequence()?.to_be_bytes(), "2026-11-21")?;
//!     Ok(())
//! })?;
//! db.view(|tx| {                                   // a consistent snapshot
//!     let users = tx.bucket("users")?.expect("created above");
//!     assert_eq!(users.get("alice")?.as_deref(), Some(&b"admin"[..]));
//!     assert_eq!(users.len()?, 2);                 // O(1), kept in the bucket header
//!     for item in users.range(&b"a"[..]..&b"c"[..])? {
//!         let (key, value) = item?;
//!         println!("{} = {}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&value));
//!     }
//!     Ok(())
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! Every page carries a CRC32C, its own id and the txid that wrote it; every reference
//! to a page carries the child's txid and checksum, so a torn, misdirected, stale or
//! rotten page is reported as [`Error::Corrupted`], never returned as data. Commits go
//! through a doublewrite journal (one sync per commit); recovery on open replays it.
//!
//! What untorn is *not*: a SQL database, a networked server, or a replicated store
//! (use a consensus engine with untorn as its storage for that).

// The engine's own lints (the workspace's, in Cargo.toml, forbid `unsafe`): file
// contents never reach an unwrap, an index or a truncating cast.
#![deny(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]
// Unit tests may index and unwrap: a panic there is a failed test, not a crash on input.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

mod btree;
mod bucket;
pub mod check;
mod commit;
mod core;
mod cursor;
mod db;
mod entropy;
pub mod error;
pub mod format;
mod freeset;
#[doc(hidden)]
pub mod fuzzing;
mod journal;
pub mod limits;
mod pager;
mod range;
mod recovery;
pub mod report;
pub mod salvage;
pub mod storage;
pub mod superblock;
mod tx;
mod value;

pub use bucket::{Bucket, BucketMut};
pub use cursor::Cursor;
pub use db::{journal_path, Builder, Database, Durability, Info};
pub use error::{CorruptionKind, Error, Result};
pub use format::{PageId, TxId};
pub use limits::{MAX_BUCKET_DEPTH, MAX_KEY_SIZE, MAX_VALUE_SIZE};
pub use range::Range;
pub use recovery::{DamagedRecord, Recovery, RecoveryReport, RollbackReport};
pub use storage::{FileStorage, MemoryStorage, Storage};
pub use tx::{ReadTx, WriteTx};
pub use value::{Entry, Value};
