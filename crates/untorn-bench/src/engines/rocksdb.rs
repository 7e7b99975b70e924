//! RocksDB (the `rocksdb` crate linked to Debian's librocksdb): a transaction is an
//! atomic `WriteBatch`; reads on a snapshot.

use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, Direction, IteratorMode, Options, ReadOptions, WriteBatch,
    WriteOptions, DB,
};

use crate::data::digest;
use crate::engine::{Config, Engine, ReadFn, Reader, Result, WriteFn, Writer};

pub const DESCRIPTION: &str = "RocksDB 7.8 (Debian's librocksdb, via the rocksdb 0.20 crate, \
linked dynamically); each transaction is an atomic `WriteBatch` written with \
`WriteOptions::set_sync(durable)`; LRU block cache = the shared cache budget, bloom filter \
10 bits/key; reads on a snapshot (`get_pinned`); len() counts with an iterator (RocksDB keeps \
no exact count); compaction: `compact_range(None, None)`";

pub struct RocksdbEngine {
    dir: PathBuf,
    db: DB,
}

impl RocksdbEngine {
    pub fn open(cfg: &Config) -> Result<Self> {
        let cache = Cache::new_lru_cache(cfg.cache_size_bytes)?;
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_block_based_table_factory(&table);
        opts.increase_parallelism(
            std::thread::available_parallelism().map_or(1, |n| n.get()) as i32
        );
        let db = DB::open(&opts, cfg.dir.join("rocksdb"))?;
        Ok(RocksdbEngine {
            dir: cfg.dir.clone(),
            db,
        })
    }
}

struct RocksWriter {
    batch: WriteBatch,
}

impl Writer for RocksWriter {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.batch.put(key, value);
        Ok(())
    }
    fn remove(&mut self, key: &[u8]) -> Result<()> {
        self.batch.delete(key);
        Ok(())
    }
}

struct RocksReader<'a> {
    db: &'a DB,
    snapshot: rocksdb::Snapshot<'a>,
    get_opts: ReadOptions,
}

impl Reader for RocksReader<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self
            .db
            .get_pinned_opt(key, &self.get_opts)?
            .map(|v| digest(&v)))
    }
    fn scan(&mut self, start: &[u8], n: usize) -> Result<(usize, u64)> {
        let mut count = 0;
        let mut sum = 0u64;
        let iter = self
            .snapshot
            .iterator(IteratorMode::From(start, Direction::Forward));
        for item in iter.take(n) {
            let (_k, v) = item?;
            count += 1;
            sum += digest(&v);
        }
        Ok((count, sum))
    }
    fn len(&mut self) -> Result<u64> {
        let mut n = 0u64;
        for item in self.snapshot.iterator(IteratorMode::Start) {
            item?;
            n += 1;
        }
        Ok(n)
    }
}

impl Engine for RocksdbEngine {
    fn write(&mut self, durable: bool, f: &mut WriteFn<'_>) -> Result<()> {
        let mut w = RocksWriter {
            batch: WriteBatch::default(),
        };
        f(&mut w)?;
        let mut opts = WriteOptions::default();
        opts.set_sync(durable);
        self.db.write_opt(w.batch, &opts)?;
        Ok(())
    }

    fn read(&self, f: &mut ReadFn<'_>) -> Result<()> {
        let snapshot = self.db.snapshot();
        let mut get_opts = ReadOptions::default();
        get_opts.set_snapshot(&snapshot);
        f(&mut RocksReader {
            db: &self.db,
            snapshot,
            get_opts,
        })
    }

    fn compact(&mut self) -> Result<()> {
        self.db.flush()?;
        self.db.compact_range::<&[u8], &[u8]>(None, None);
        Ok(())
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
