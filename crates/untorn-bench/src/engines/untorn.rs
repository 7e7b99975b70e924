//! untorn through its public API only (`Database`, `Builder`, `Durability`, `ReadTx`,
//! `WriteTx`, `Bucket(Mut)`, `Range`, `Value`), so the harness survives internal
//! re-cuts of the engine.

use std::path::{Path, PathBuf};

use untorn::{BucketMut, Database, Durability};

use crate::data::digest;
use crate::engine::{Config, Engine, ReadFn, Reader, Result, WriteFn, Writer};

pub const DESCRIPTION: &str = "one bucket; `Durability::Immediate` for durable commits, \
`Durability::None` (handle reopened, untimed) for no-sync; cache = the shared cache budget; \
compaction: `Database::compact_to` (the live data rebuilt bottom-up, leaves filled close to \
100%) into a fresh file swapped in";

const BUCKET: &str = "bench";
const FILE: &str = "bench.untorn";

pub struct UntornEngine {
    dir: PathBuf,
    cache_size_bytes: usize,
    /// `None` only transiently while the handle is reopened.
    db: Option<Database>,
    durable: bool,
}

fn open_db(path: &Path, cache_size_bytes: usize, durable: bool) -> Result<Database> {
    let durability = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    Ok(Database::builder()
        .cache_size_bytes(cache_size_bytes)
        .durability(durability)
        .create(path)?)
}

impl UntornEngine {
    pub fn open(cfg: &Config) -> Result<Self> {
        let path = cfg.dir.join(FILE);
        let db = open_db(&path, cfg.cache_size_bytes, true)?;
        db.update(|tx| tx.create_bucket_if_not_exists(BUCKET).map(|_| ()))?;
        Ok(UntornEngine {
            dir: cfg.dir.clone(),
            cache_size_bytes: cfg.cache_size_bytes,
            db: Some(db),
            durable: true,
        })
    }

    fn db(&self) -> Result<&Database> {
        self.db
            .as_ref()
            .ok_or_else(|| "untorn handle is closed".into())
    }

    /// Durability is a property of the handle, so switching it reopens the database.
    fn set_durable(&mut self, durable: bool) -> Result<()> {
        if self.durable != durable || self.db.is_none() {
            drop(self.db.take());
            self.db = Some(open_db(
                &self.dir.join(FILE),
                self.cache_size_bytes,
                durable,
            )?);
            self.durable = durable;
        }
        Ok(())
    }
}

struct UntornWriter<'t> {
    bucket: BucketMut<'t>,
}

impl Writer for UntornWriter<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.bucket.put(key, value)?)
    }
    fn remove(&mut self, key: &[u8]) -> Result<()> {
        self.bucket.delete(key)?;
        Ok(())
    }
}

struct UntornReader<'t> {
    bucket: untorn::Bucket<'t>,
}

impl Reader for UntornReader<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self.bucket.get(key)?.map(|v| digest(&v)))
    }
    fn scan(&mut self, start: &[u8], n: usize) -> Result<(usize, u64)> {
        let mut count = 0;
        let mut sum = 0u64;
        for item in self.bucket.range(start..)?.take(n) {
            let (_key, value) = item?;
            count += 1;
            sum += digest(&value);
        }
        Ok((count, sum))
    }
    fn len(&mut self) -> Result<u64> {
        Ok(self.bucket.len()?)
    }
}

impl Engine for UntornEngine {
    fn write(&mut self, durable: bool, f: &mut WriteFn<'_>) -> Result<()> {
        self.set_durable(durable)?;
        let db = self.db()?;
        let tx = db.begin_write()?;
        {
            let bucket = tx.bucket(BUCKET)?.ok_or("bucket missing")?;
            f(&mut UntornWriter { bucket })?;
        }
        tx.commit()?;
        Ok(())
    }

    fn read(&self, f: &mut ReadFn<'_>) -> Result<()> {
        let tx = self.db()?.begin_read()?;
        let bucket = tx.bucket(BUCKET)?.ok_or("bucket missing")?;
        f(&mut UntornReader { bucket })
    }

    fn compact(&mut self) -> Result<()> {
        let path = self.dir.join(FILE);
        let tmp = self.dir.join("compact.untorn");
        // `compact_to` never replaces a file: clear what an interrupted run left.
        for stale in [tmp.clone(), untorn::journal_path(&tmp)] {
            if stale.exists() {
                std::fs::remove_file(&stale)?;
            }
        }
        self.db()?.compact_to(&tmp)?;
        // Close (a clean close empties the journal), drop the old journal (the compacted
        // file is another database and needs none), then swap the file in.
        drop(self.db.take());
        let journal = untorn::journal_path(&path);
        if journal.exists() {
            std::fs::remove_file(&journal)?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        self.set_durable(true)
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
