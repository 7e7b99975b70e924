//! SQLite through rusqlite, linked to the system libsqlite3: one `WITHOUT ROWID` table
//! (a clustered B-tree keyed by the key, the layout a key/value store wants).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension};

use crate::data::digest;
use crate::engine::{Config, Engine, ReadFn, Reader, Result, WriteFn, Writer};

pub const DESCRIPTION: &str = "SQLite (rusqlite 0.37 on Debian's libsqlite3); \
`CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID`; WAL journal, \
`synchronous=FULL` for durable commits and `OFF` for no-sync; page cache = the shared cache \
budget per connection; each reader thread has its own connection in a `BEGIN` transaction; \
compaction: `VACUUM`";

pub struct SqliteEngine {
    dir: PathBuf,
    path: PathBuf,
    cache_kib: usize,
    /// Only `write` uses it (`&mut self`); the mutex makes the engine `Sync`.
    writer: Mutex<Connection>,
    synchronous_full: bool,
    /// Idle read connections; a reader thread takes one (or opens one) and returns it.
    readers: Mutex<Vec<Connection>>,
}

fn connect(path: &Path, cache_kib: usize) -> Result<Connection> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "cache_size", -(cache_kib as i64))?;
    c.busy_timeout(std::time::Duration::from_secs(60))?;
    Ok(c)
}

impl SqliteEngine {
    pub fn open(cfg: &Config) -> Result<Self> {
        let path = cfg.dir.join("bench.sqlite");
        let cache_kib = cfg.cache_size_bytes / 1024;
        let writer = connect(&path, cache_kib)?;
        writer.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
        )?;
        Ok(SqliteEngine {
            dir: cfg.dir.clone(),
            path,
            cache_kib,
            writer: Mutex::new(writer),
            synchronous_full: true,
            readers: Mutex::new(Vec::new()),
        })
    }
}

struct SqliteWriter<'c> {
    put: rusqlite::CachedStatement<'c>,
    remove: rusqlite::CachedStatement<'c>,
}

impl Writer for SqliteWriter<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put.execute((key, value))?;
        Ok(())
    }
    fn remove(&mut self, key: &[u8]) -> Result<()> {
        self.remove.execute([key])?;
        Ok(())
    }
}

struct SqliteReader<'c> {
    get: rusqlite::CachedStatement<'c>,
    scan: rusqlite::CachedStatement<'c>,
    len: rusqlite::CachedStatement<'c>,
}

impl Reader for SqliteReader<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self
            .get
            .query_row([key], |row| Ok(digest(row.get_ref(0)?.as_blob()?)))
            .optional()?)
    }
    fn scan(&mut self, start: &[u8], n: usize) -> Result<(usize, u64)> {
        let mut rows = self.scan.query((start, n as i64))?;
        let mut count = 0;
        let mut sum = 0u64;
        while let Some(row) = rows.next()? {
            count += 1;
            sum += digest(row.get_ref(0)?.as_blob()?);
        }
        Ok((count, sum))
    }
    fn len(&mut self) -> Result<u64> {
        Ok(self.len.query_row([], |row| row.get::<_, i64>(0))? as u64)
    }
}

impl Engine for SqliteEngine {
    fn write(&mut self, durable: bool, f: &mut WriteFn<'_>) -> Result<()> {
        let writer = self.writer.get_mut().map_err(|_| "writer poisoned")?;
        if self.synchronous_full != durable {
            let mode = if durable { "FULL" } else { "OFF" };
            writer.pragma_update(None, "synchronous", mode)?;
            self.synchronous_full = durable;
        }
        let tx = writer.unchecked_transaction()?;
        {
            let mut w = SqliteWriter {
                put: tx.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?,
                remove: tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?,
            };
            f(&mut w)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn read(&self, f: &mut ReadFn<'_>) -> Result<()> {
        let idle = self
            .readers
            .lock()
            .map_err(|_| "reader pool poisoned")?
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => connect(&self.path, self.cache_kib)?,
        };
        let result = (|| -> Result<()> {
            let tx = conn.unchecked_transaction()?;
            {
                let mut r = SqliteReader {
                    get: tx.prepare_cached("SELECT value FROM kv WHERE key = ?1")?,
                    scan: tx.prepare_cached(
                        "SELECT value FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?2",
                    )?,
                    len: tx.prepare_cached("SELECT count(*) FROM kv")?,
                };
                f(&mut r)?;
            }
            tx.commit()?;
            Ok(())
        })();
        self.readers
            .lock()
            .map_err(|_| "reader pool poisoned")?
            .push(conn);
        result
    }

    fn compact(&mut self) -> Result<()> {
        // VACUUM needs no other connection inside a transaction; the idle readers are not.
        let writer = self.writer.get_mut().map_err(|_| "writer poisoned")?;
        writer.execute_batch("VACUUM")?;
        writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .optional()?;
        Ok(())
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}
