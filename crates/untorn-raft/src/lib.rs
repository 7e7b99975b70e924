//! untorn as [openraft](https://docs.rs/openraft/0.9)'s log and state-machine storage:
//! replicate an untorn-backed application over a raft cluster without a home-made
//! protocol.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use untorn_raft::kv::{KvApp, KvConfig};
//!
//! // One node's storage: dir/log.untorn, dir/sm.untorn and dir/snapshots/.
//! let (log_store, state_machine) = untorn_raft::open::<KvConfig, KvApp>(dir.path(), KvApp)?;
//! // Hand both to openraft (inside a tokio runtime):
//! // let raft = openraft::Raft::new(id, config, network, log_store, state_machine).await?;
//! # drop((log_store, state_machine));
//! # Ok(())
//! # }
//! ```
//!
//! Your application implements [`Apply`]: what a committed request does to its bucket,
//! inside the apply batch's write transaction. [`kv`] is a complete example (a replicated
//! map) and `src/bin/raft-kv` serves it on TCP.
//!
//! # When to use it
//!
//! When one machine (or one disk) is not enough: the data must survive the loss of a
//! node and stay writable while a majority is up. Every write then costs a network round
//! trip to a quorum plus one fsync on each node's log and one on its state machine. For
//! a single node use untorn directly. What this crate is *not*: a network layer (bring
//! openraft's `RaftNetwork`; `raft-kv` has a small TCP one), a client library, or a
//! consensus protocol (openraft is).
//!
//! # Versions
//!
//! openraft 0.9 (0.9.25), the current stable line, with its v2 storage API
//! (`RaftLogStorage` + `RaftStateMachine`, feature `storage-v2`) and `serde`. The
//! snapshot data type is `tokio::fs::File`: openraft 0.9 streams snapshots in chunks
//! from and into files, so no snapshot is ever held in memory whole.
//!
//! # Files of one node
//!
//! | file | what |
//! |------|------|
//! | `log.untorn` (+ journal) | the log, keyed by big-endian index; vote, committed, last purged |
//! | `sm.untorn` (+ journal) | the application's data bucket `data.<gen>`; last applied, membership, current snapshot |
//! | `snapshots/snap-*` | the current snapshot (see `snapshot.rs` for the byte layout, CRC32C-sealed) |
//!
//! The log and the state machine are two databases so that appends never wait behind an
//! apply's commit (untorn has one writer per database).
//!
//! # Guarantees
//!
//! With untorn's default `Durability::Immediate` (a commit returns after one journal
//! fsync):
//!
//! - **`append`**: returns as soon as the entries are queued (they are readable at
//!   once, as openraft requires); its `LogFlushed` callback fires **only after the untorn
//!   commit holding them returned `Ok`**, so an acknowledged entry survives kill -9 and
//!   power loss. One writer thread commits everything queued since its last commit in
//!   **one transaction and one fsync** (group commit), in the order openraft issued it.
//! - **`save_vote`, `truncate`, `purge`**: each returns after its commit is durable; a
//!   truncate or a purge is one commit, never a partial range.
//! - **`save_committed`**: lazy — it rides on the next commit and may be lost in a
//!   crash, which is harmless (openraft relearns it; the state machine records what it
//!   applied itself).
//! - **`apply`**: one write transaction per call; every entry's effect, the last applied
//!   log id and the membership are in the same commit. After a crash the state machine
//!   is exactly "every entry up to `applied`": none applied twice (an entry at or below
//!   `applied` is refused), none skipped (openraft re-applies from `applied + 1`).
//! - **Snapshot build**: one untorn read transaction (a consistent snapshot; `apply`
//!   goes on meanwhile), streamed record by record to a file, fsynced, renamed, the
//!   directory fsynced, then pointed at by a commit.
//! - **Snapshot install**: the received stream is loaded into a fresh bucket in commits
//!   of bounded size ([`StateMachineStore::with_install_chunk_bytes`]) while it is copied
//!   and its CRC32C checked; only then **one commit switches** the live bucket, the
//!   applied id, the membership and the snapshot pointer. A crash before the switch
//!   leaves the old state machine; the staging bucket and files are removed at the next
//!   open. (The snapshot file itself is made durable by an atomic rename and a directory
//!   fsync before the switch.)
//! - **Purge after an install**: openraft 0.9 issues that purge without waiting for the
//!   install; a node killed in between would restart with its log purged past its
//!   snapshot, which openraft refuses. Stores opened with [`open`] hold such a purge
//!   back until the install's switch commit is durable.
//! - **Failures**: a failed commit poisons the untorn handle; every later write fails,
//!   openraft treats the `StorageError` as fatal and stops the node. Reopen to recover
//!   (untorn replays its journal).
//!
//! These are tested by openraft's own suite (`tests/raft/suite.rs`), the adapter tests
//! (`adapter.rs`), a 3-node SIGKILL test (`cluster.rs`) and a kill -9 loop during
//! appends and snapshot installs (`crash.rs`).
//!
//! # Throughput
//!
//! Measured on the project's 2-core machine (`tests/raft/bench.rs`, release build,
//! loopback, 100-byte values, every node's log and state machine fsyncing):
//!
//! | clients | 1 node | 3 nodes |
//! |---------|--------|---------|
//! | 1 (one write at a time) | 469 writes/s | 232 writes/s |
//! | 32 concurrent | 990 writes/s | 978 writes/s |
//!
//! One client pays a quorum round trip plus the fsyncs of two nodes per write; with 32
//! clients openraft batches the queued writes into each append, so the 3-node cluster
//! keeps up with the single node. Both are bound by fsync latency: openraft 0.9 waits for
//! each append's flush before the next, and every apply batch is one more commit.

mod error;
pub mod kv;
mod log_store;
mod snapshot;
mod state_machine;

use std::path::Path;

pub use error::OpenError;
pub use log_store::LogStore;
pub use state_machine::{
    Apply, SnapshotBuilder, StateMachineStore, StateReader, INSTALL_CHUNK_BYTES_DEFAULT,
};

/// Opens (or creates) the storage of one node in `dir`: the log (`log.untorn`), the
/// state machine (`sm.untorn`) and the snapshot folder (`snapshots/`).
pub fn open<C, A>(
    dir: impl AsRef<Path>,
    app: A,
) -> Result<(LogStore<C>, StateMachineStore<C, A>), OpenError>
where
    C: openraft::RaftTypeConfig<Entry = openraft::Entry<C>, SnapshotData = tokio::fs::File>,
    A: Apply<C>,
{
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir)?;
    let sm = StateMachineStore::open(dir.join("sm.untorn"), dir.join("snapshots"), app)?;
    let log = LogStore::open_gated(&dir.join("log.untorn"), sm.gate())?;
    // New files are durable only once their directory is synced.
    std::fs::File::open(dir)?.sync_all()?;
    Ok((log, sm))
}
