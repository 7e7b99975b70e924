//! fjall 3: one keyspace; a write transaction is an atomic `WriteBatch`.

use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use crate::data::digest;
use crate::engine::{Config, Engine, ReadFn, Reader, Result, WriteFn, Writer};

pub const DESCRIPTION: &str = "fjall 3 (crates.io); one keyspace; each transaction is an atomic \
`WriteBatch`, durable = `PersistMode::SyncAll` on commit, no-sync = buffered journal; reads on \
a `Database::snapshot`; cache = the shared cache budget; compaction: `Keyspace::major_compact`";

pub struct FjallEngine {
    dir: PathBuf,
    db: Database,
    ks: Keyspace,
}

impl FjallEngine {
    pub fn open(cfg: &Config) -> Result<Self> {
        let db = Database::builder(cfg.dir.join("fjall"))
            .cache_size(cfg.cache_size_bytes as u64)
            .open()?;
        let ks = db.keyspace("bench", KeyspaceCreateOptions::default)?;
        Ok(FjallEngine {
            dir: cfg.dir.clone(),
            db,
            ks,
        })
    }
}

struct FjallWriter<'a> {
    batch: fjall::OwnedWriteBatch,
    ks: &'a Keyspace,
}

impl Writer for FjallWriter<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.batch.insert(self.ks, key, value);
        Ok(())
    }
    fn remove(&mut self, key: &[u8]) -> Result<()> {
        self.batch.remove(self.ks, key);
        Ok(())
    }
}

struct FjallReader<'a> {
    snapshot: fjall::Snapshot,
    ks: &'a Keyspace,
}

impl Reader for FjallReader<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self.snapshot.get(self.ks, key)?.map(|v| digest(&v)))
    }
    fn scan(&mut self, start: &[u8], n: usize) -> Result<(usize, u64)> {
        let mut count = 0;
        let mut sum = 0u64;
        for guard in self.snapshot.range(self.ks, start..).take(n) {
            let (_k, v) = guard.into_inner()?;
            count += 1;
            sum += digest(&v);
        }
        Ok((count, sum))
    }
    fn len(&mut self) -> Result<u64> {
        Ok(self.snapshot.len(self.ks)? as u64)
    }
}

impl Engine for FjallEngine {
    fn write(&mut self, durable: bool, f: &mut WriteFn<'_>) -> Result<()> {
        let mode = durable.then_some(PersistMode::SyncAll);
        let mut w = FjallWriter {
            batch: self.db.batch().durability(mode),
            ks: &self.ks,
        };
        f(&mut w)?;
        w.batch.commit()?;
        Ok(())
    }

    fn read(&self, f: &mut ReadFn<'_>) -> Result<()> {
        f(&mut FjallReader {
            snapshot: self.db.snapshot(),
            ks: &self.ks,
        })
    }

    fn compact(&mut self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        self.ks.rotate_memtable_and_wait()?;
        self.ks.major_compact()?;
        Ok(())
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
