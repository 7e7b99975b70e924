//! untorn: an embedded, transactional key/value store whose files survive power loss,
//! torn page writes, lying disks and bit rot.
//!
//! ```
//! use untorn::{Database, Error};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let db = Database::create(dir.path().join("app.untorn"))?; // opens, or creates, a file
//! db.update(|tx| -> untorn::Result<()> {             // one atomic, durable commit
//!     let users = tx.create_bucket_if_not_exists("users")?;
//!     users.put("alice", "admin")?;
//!     users.put("bob", "reader")?;
//!     let logins = users.create_bucket_if_not_exists("logins")?; // nested bucket
//!     logins.put(logins.next_sequence()?.to_be_bytes(), "2026-11-21")?;
//!     Ok(())
//! })?;
//! db.view(|tx| -> untorn::Result<()> {               // a consistent snapshot
//!     let users = tx.bucket("users")?.ok_or_else(|| Error::bucket_not_found("users"))?;
//!     assert_eq!(users.get("alice")?.as_deref(), Some(&b"admin"[..]));
//!     assert_eq!(users.len()?, 2);                   // O(1), kept in the bucket header
//!     for pair in users.range("a".."c")? {           // keys and values borrow their page
//!         let (key, value) = pair?;
//!         println!("{} = {}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&value));
//!     }
//!     for sub in users.iter_buckets()? {             // nested buckets, separately
//!         let (name, bucket) = sub?;
//!         println!("{}/: {} keys", String::from_utf8_lossy(&name), bucket.len()?);
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
//! (use a consensus engine with untorn as its storage for that: `untorn-raft`).
//!
//! # The API in one page
//!
//! - [`Database::update`] runs a closure in the write transaction and commits only if
//!   it returns `Ok`; [`Database::view`] runs one in a read snapshot. The closure may
//!   return any error type with a `From<untorn::Error>` (an application's own enum,
//!   `anyhow::Error`, `Box<dyn Error>`); when it uses only untorn's, name the type on
//!   the closure: `|tx| -> untorn::Result<_> { .. }`. [`Database::begin_write`] and
//!   [`Database::begin_read`] give the transactions without a closure;
//!   [`Database::begin_read_owned`] a `'static` snapshot to move to another thread;
//!   [`WriteTx::set_durability`] lets one commit skip (or force) its sync.
//! - Buckets: [`Bucket`] (read snapshot) and [`BucketMut`] (write transaction) share the
//!   [`ReadBucket`] trait, so one helper can take either. Keys and values are
//!   `impl AsRef<[u8]>` going in, and [`Key`] / [`Value`] coming out: both borrow the
//!   cached page they were read from (no copy, no allocation per key or value) and
//!   dereference to `&[u8]`.
//! - Iterating: `iter()`, `range(lo..hi)` (bounds of any `AsRef<[u8]>` type) and
//!   `prefix(p)` yield key/value pairs, double-ended; `iter_buckets()` yields the nested
//!   buckets, opened. A [`Cursor`] is for seeking (`seek`, `first`, `last`, `next`,
//!   `prev`, and `delete` in a write transaction).
//! - [`typed::Table`] gives a top-level bucket typed keys and values (big-endian
//!   integers that sort, strings, bytes, serde types with the `serde` feature).
//! - Errors say what they are about: [`Error::BucketNotFound`] and
//!   [`Error::BucketExists`] carry the bucket's name, [`Error::IncompatibleValue`] the
//!   key, [`Error::File`] the file, [`Error::Corrupted`] the page.
//! - [`Database::check`] verifies a snapshot (the stable [`Report`] of [`Finding`]s);
//!   raw page access for tools is in [`unstable`], with no stability guarantee.
//!
//! # Files
//!
//! A database is two files: the data file you name, and its **journal**, the same path
//! with `.journal` appended ([`journal_path`]), created beside it. Commits are appended
//! to the journal and synced there; a checkpoint later copies them to their home pages
//! in the data file. A clean close (dropping the last handle) checkpoints and empties
//! the journal. **Keep the two together**: copying, moving or deleting the data file
//! without its journal can lose the latest commits, and untorn refuses a journal that
//! belongs to another database.
//!
//! # Defaults ([`Builder`])
//!
//! | setting | default | |
//! |---|---|---|
//! | [`Builder::durability`] | [`Durability::Immediate`] | `commit()` returns after one journal sync |
//! | [`Builder::page_size`] | 4096 bytes | a power of two from 4 KiB to 64 KiB; fixed at creation |
//! | [`Builder::cache_size_bytes`] | 256 MiB | verified pages kept in memory |
//! | [`Builder::checkpoint_threshold_bytes`] | 64 MiB | journal size that triggers a checkpoint after a commit; the journal file keeps up to twice this allocated |
//! | [`Builder::read_only`] | `false` | |
//!
//! # Processes and copies
//!
//! - **One process writes, any number read.** Opening read-write takes an exclusive OS
//!   lock on the data file (`flock`-style, released when the process exits, even on a
//!   crash): a second read-write opener, in this process or another, gets
//!   [`Error::Locked`]. A read-only open takes no lock a writer conflicts with, so other
//!   processes can read (check, dump, back up) a database an application holds open: it
//!   registers in the reader table beside the file (`<db>.readers`, with one lock file
//!   per slot, `<db>.readers.N`), reads the newest committed state (the journal's commits
//!   replayed in memory) and pins it — the writer does not reuse a page that snapshot can
//!   reach until the handle is dropped. The handle sees that one snapshot for its whole
//!   life ([`Info::live`] says whether a writer held the database at open); open again to
//!   see newer commits. A reader that crashes stops pinning at the writer's next
//!   checkpoint. Where the table cannot be written (a read-only directory), a read-only
//!   open takes a shared lock of the data file instead, which writers wait out with
//!   [`Error::Locked`]. Within one process, share one [`Database`] (it is `Send + Sync`):
//!   any number of threads read concurrently, one writes at a time.
//! - **Network file systems** whose locks or `fsync` do not work (some NFS and SMB
//!   setups) void both guarantees: keep the files on a local disk.
//! - **A plain `cp` of a live database is worth nothing you can count on.** While a
//!   process has it open, the journal holds the newest commits and a checkpoint may be
//!   rewriting pages of the data file as `cp` reads it, so a copy may miss recent commits
//!   or catch a checkpoint half-way. untorn never turns such a copy into wrong data
//!   (every page is verified), but the copy may not open, or may open at an older
//!   commit. A `cp` is a copy only when no process has the database open, and then it
//!   must take the data file and its journal together.
//! - **A consistent copy of a live database:** [`Database::backup_to`] (or
//!   [`ReadTx::copy_to`] into any `Write + Seek`, or `untorn backup SRC DST` while no
//!   process holds SRC for writing) copies one committed snapshot while writers keep
//!   committing. The copy is a whole database in one file: its metas say it was closed
//!   cleanly, so it needs no journal; it checks clean, holds the snapshot exactly
//!   (buckets, pairs, sequences, txid) and has a database id of its own. It is written
//!   under a temporary name, synced, renamed into place and its directory synced, so the
//!   target never holds half a copy. The copy is also dense (every tree rebuilt
//!   bottom-up, leaves filled close to 100%): [`Database::compact_to`] is the same copy,
//!   reporting the sizes before and after, for a file grown by deletes or by a
//!   long-lived reader.

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
mod check;
mod commit;
mod copy;
mod core;
mod cursor;
mod db;
mod entropy;
pub mod error;
mod files;
mod format;
mod freeset;
mod fuzzing;
mod journal;
mod limits;
mod pager;
mod range;
mod readers;
mod recovery;
mod report;
mod salvage;
pub mod storage;
mod superblock;
mod surgery;
mod tx;
pub mod typed;
pub mod unstable;
mod value;
mod words;

// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub use bucket::{Bucket, BucketIter, BucketMut, ReadBucket};
pub use check::{CheckOptions, CheckProgress};
pub use copy::CopyStats;
pub use cursor::Cursor;
pub use db::{Builder, Compaction, Database, Info};
pub use error::{CorruptionKind, Error, Result};
pub use files::journal_path;
pub use limits::{MAX_BUCKET_DEPTH, MAX_KEY_SIZE, MAX_VALUE_SIZE};
pub use range::Range;
pub use recovery::{DamagedRecord, Recovery, RecoveryReport, RollbackReport};
pub use report::{Finding, FindingKind, Report, Stats};
pub use storage::{FileStorage, MemoryStorage, Storage};
pub use tx::{Durability, OwnedReadTx, ReadTx, WriteTx};
pub use value::{Entry, Key, Value};
