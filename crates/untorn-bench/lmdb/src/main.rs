//! `untorn-bench-lmdb`: the LMDB column of untorn-bench — LMDB through heed, one unnamed
//! database in an environment directory. A separate crate outside the workspace because
//! heed's environment API is `unsafe` and the workspace forbids `unsafe_code`; it runs the
//! same phases through `untorn_bench::child` and speaks the same JSON lines, started by
//! `untorn-bench all --lmdb PATH`. Built by scripts/bench.sh:
//!
//! ```text
//! cargo build --release --manifest-path crates/untorn-bench/lmdb/Cargo.toml
//! ```

use std::ops::Bound;
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CompactionOption, EnvFlags, EnvOpenOptions, FlagSetMode};

use untorn_bench::data::digest;
use untorn_bench::engine::{Config, Engine, ReadFn, Reader, Result, WriteFn, Writer};

pub const DESCRIPTION: &str = "LMDB (heed 0.22, bundled liblmdb, crates.io); map size 16 GiB; \
no-sync = `MDB_NOSYNC` toggled around the no-sync phase; reads through the OS page cache \
(mmap, no own cache); compaction: `mdb_env_copy2(MDB_CP_COMPACT)` into a new file swapped in";

const MAP_SIZE_BYTES: usize = 16 << 30;

type Db = heed::Database<Bytes, Bytes>;

pub struct LmdbEngine {
    dir: PathBuf,
    env: Option<heed::Env>,
    db: Db,
    nosync: bool,
}

fn open_env(dir: &Path) -> Result<(heed::Env, Db)> {
    // SAFETY: heed requires that the environment is not opened twice in one process and
    // that the file is not modified by other means while open; this process opens it
    // once, and the directory is private to it.
    let env = unsafe {
        EnvOpenOptions::new()
            .map_size(MAP_SIZE_BYTES)
            .max_readers(256)
            .open(dir)?
    };
    let mut tx = env.write_txn()?;
    let db: Db = env.create_database(&mut tx, None)?;
    tx.commit()?;
    Ok((env, db))
}

impl LmdbEngine {
    pub fn open(cfg: &Config) -> Result<Self> {
        let (env, db) = open_env(&cfg.dir)?;
        Ok(LmdbEngine {
            dir: cfg.dir.clone(),
            env: Some(env),
            db,
            nosync: false,
        })
    }

    fn env(&self) -> Result<&heed::Env> {
        self.env
            .as_ref()
            .ok_or_else(|| "LMDB environment closed".into())
    }
}

struct LmdbWriter<'a, 'e> {
    db: Db,
    tx: &'a mut heed::RwTxn<'e>,
}

impl Writer for LmdbWriter<'_, '_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.db.put(self.tx, key, value)?)
    }
    fn remove(&mut self, key: &[u8]) -> Result<()> {
        self.db.delete(self.tx, key)?;
        Ok(())
    }
}

struct LmdbReader<'a, 'e> {
    db: Db,
    tx: &'a heed::RoTxn<'e>,
}

impl Reader for LmdbReader<'_, '_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self.db.get(self.tx, key)?.map(digest))
    }
    fn scan(&mut self, start: &[u8], n: usize) -> Result<(usize, u64)> {
        let range = (Bound::Included(start), Bound::Unbounded);
        let mut count = 0;
        let mut sum = 0u64;
        for item in self.db.range(self.tx, &range)?.take(n) {
            let (_k, v) = item?;
            count += 1;
            sum += digest(v);
        }
        Ok((count, sum))
    }
    fn len(&mut self) -> Result<u64> {
        Ok(self.db.len(self.tx)?)
    }
}

impl Engine for LmdbEngine {
    fn write(&mut self, durable: bool, f: &mut WriteFn<'_>) -> Result<()> {
        if self.nosync == durable {
            let mode = if durable {
                FlagSetMode::Disable
            } else {
                FlagSetMode::Enable
            };
            // SAFETY: no transaction is open while the flag changes (this is the only
            // writer and it is between transactions).
            unsafe { self.env()?.set_flags(EnvFlags::NO_SYNC, mode)? };
            self.nosync = !durable;
        }
        let db = self.db;
        let env = self.env()?;
        let mut tx = env.write_txn()?;
        f(&mut LmdbWriter { db, tx: &mut tx })?;
        tx.commit()?;
        Ok(())
    }

    fn read(&self, f: &mut ReadFn<'_>) -> Result<()> {
        let tx = self.env()?.read_txn()?;
        f(&mut LmdbReader {
            db: self.db,
            tx: &tx,
        })
    }

    fn compact(&mut self) -> Result<()> {
        let env = self.env.take().ok_or("LMDB environment closed")?;
        let copy = self.dir.join("compact.mdb");
        let mut file = std::fs::File::create(&copy)?;
        env.copy_to_file(&mut file, CompactionOption::Enabled)?;
        file.sync_all()?;
        drop(file);
        env.prepare_for_closing().wait();
        std::fs::rename(&copy, self.dir.join("data.mdb"))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let (env, db) = open_env(&self.dir)?;
        self.env = Some(env);
        self.db = db;
        self.nosync = false;
        Ok(())
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

fn open(name: &str, cfg: &Config) -> Result<Box<dyn Engine>> {
    if name != "lmdb" {
        return Err(format!("this driver runs lmdb only, not {name}").into());
    }
    std::fs::create_dir_all(&cfg.dir)?;
    Ok(Box::new(LmdbEngine::open(cfg)?))
}

fn main() -> std::process::ExitCode {
    untorn_bench::child::driver_main("lmdb", DESCRIPTION, open)
}
