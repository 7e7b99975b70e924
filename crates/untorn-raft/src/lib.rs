//! untorn as [openraft](https://docs.rs/openraft/0.9)'s log and state-machine storage.
//!
//! (Full documentation: see the end of this file's docs; written below.)

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
