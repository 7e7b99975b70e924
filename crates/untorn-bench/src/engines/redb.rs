//! redb: one table of `&[u8] -> &[u8]`.

use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use crate::data::digest;
use crate::engine::{Config, Engine, ReadFn, Reader, Result, WriteFn, Writer};

pub const DESCRIPTION: &str = "redb 4 (crates.io); one table; `Durability::Immediate` / \
`Durability::None` per transaction; cache = the shared cache budget; compaction: \
`Database::compact`";

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

pub struct RedbEngine {
    dir: PathBuf,
    db: Database,
}

impl RedbEngine {
    pub fn open(cfg: &Config) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(cfg.cache_size_bytes)
            .create(cfg.dir.join("bench.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        Ok(RedbEngine {
            dir: cfg.dir.clone(),
            db,
        })
    }
}

struct RedbWriter<'t> {
    table: redb::Table<'t, &'static [u8], &'static [u8]>,
}

impl Writer for RedbWriter<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.table.insert(key, value)?;
        Ok(())
    }
    fn remove(&mut self, key: &[u8]) -> Result<()> {
        self.table.remove(key)?;
        Ok(())
    }
}

struct RedbReader {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Reader for RedbReader {
    fn get(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(ReadableTable::get(&self.table, key)?.map(|v| digest(v.value())))
    }
    fn scan(&mut self, start: &[u8], n: usize) -> Result<(usize, u64)> {
        let mut count = 0;
        let mut sum = 0u64;
        for item in ReadableTable::range(&self.table, start..)?.take(n) {
            let (_k, v) = item?;
            count += 1;
            sum += digest(v.value());
        }
        Ok((count, sum))
    }
    fn len(&mut self) -> Result<u64> {
        Ok(self.table.len()?)
    }
}

impl Engine for RedbEngine {
    fn write(&mut self, durable: bool, f: &mut WriteFn<'_>) -> Result<()> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        {
            let table = tx.open_table(TABLE)?;
            f(&mut RedbWriter { table })?;
        }
        tx.commit()?;
        Ok(())
    }

    fn read(&self, f: &mut ReadFn<'_>) -> Result<()> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TABLE)?;
        f(&mut RedbReader { table })
    }

    fn compact(&mut self) -> Result<()> {
        self.db.compact()?;
        Ok(())
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
