//! The engines compiled into this binary: untorn always, each peer behind its cargo
//! feature. Two peers run as separate driver programs instead: LMDB (`crates/untorn-bench/lmdb`:
//! heed's API is `unsafe`, which the workspace forbids) and bbolt (`bbolt/main.go`).

use crate::engine::{Config, Engine, Result};

#[cfg(feature = "fjall")]
mod fjall;
#[cfg(feature = "redb")]
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;
#[cfg(feature = "sqlite")]
mod sqlite;
mod untorn;

/// Name and configuration summary of every engine compiled in, untorn first.
pub fn compiled() -> Vec<(&'static str, &'static str)> {
    // `mut` is unused when no peer feature is on.
    #[allow(unused_mut)]
    let mut v = vec![("untorn", untorn::DESCRIPTION)];
    #[cfg(feature = "redb")]
    v.push(("redb", redb::DESCRIPTION));
    #[cfg(feature = "fjall")]
    v.push(("fjall", fjall::DESCRIPTION));
    #[cfg(feature = "sqlite")]
    v.push(("sqlite", sqlite::DESCRIPTION));
    #[cfg(feature = "rocksdb")]
    v.push(("rocksdb", rocksdb::DESCRIPTION));
    v
}

/// Opens (creating) engine `name` in `cfg.dir`.
pub fn open(name: &str, cfg: &Config) -> Result<Box<dyn Engine>> {
    std::fs::create_dir_all(&cfg.dir)?;
    match name {
        "untorn" => Ok(Box::new(untorn::UntornEngine::open(cfg)?)),
        #[cfg(feature = "redb")]
        "redb" => Ok(Box::new(redb::RedbEngine::open(cfg)?)),
        #[cfg(feature = "fjall")]
        "fjall" => Ok(Box::new(fjall::FjallEngine::open(cfg)?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Box::new(sqlite::SqliteEngine::open(cfg)?)),
        #[cfg(feature = "rocksdb")]
        "rocksdb" => Ok(Box::new(rocksdb::RocksdbEngine::open(cfg)?)),
        other => Err(format!(
            "engine {other:?} is not compiled in (have: {}; peers need --features peers)",
            compiled()
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into()),
    }
}

/// bbolt runs out of process, as the Go driver `crates/untorn-bench/bbolt/main.go`.
pub const BBOLT_DESCRIPTION: &str = "bbolt 1.3.6 (Debian's golang-github-coreos-bbolt-dev) \
through the Go driver `crates/untorn-bench/bbolt`; same phases and data; no-sync = `DB.NoSync`; \
`FreelistType` map, `NoFreelistSync` (etcd's settings); **bulk load in durable transactions of 10,000 keys**, not one (bbolt splits leaves only at commit, so one transaction of random keys into an empty tree is quadratic: 100,000 keys took 47 s); compaction: `bolt.Compact` (what `bbolt compact` runs, FillPercent 1.0) in one transaction into a fresh file swapped in";
