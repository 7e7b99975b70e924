//! Entry points shared by the cargo-fuzz targets and the stable mutation tests.
//! Not part of the stable API.

use std::sync::Arc;

use crate::bucket::Bucket;
use crate::error::Result;
use crate::storage::{MemoryStorage, Storage};
use crate::Database;

/// One key/value pair with its bucket path.
pub type Row = (Vec<Vec<u8>>, Vec<u8>, Vec<u8>);

/// Bound on rows collected (keeps a fuzz iteration cheap).
const MAX_ROWS: usize = 1 << 20;

/// Reads every bucket and key of an open database, depth-first with an explicit stack.
pub fn read_all(db: &Database) -> Result<Vec<Row>> {
    let tx = db.begin_read()?;
    let mut rows = Vec::new();
    let mut stack: Vec<(Vec<Vec<u8>>, Bucket<'_>)> = Vec::new();
    for name in tx.buckets()?.into_iter().rev() {
        if let Some(b) = tx.bucket(&name)? {
            stack.push((vec![name], b));
        }
    }
    while let Some((path, b)) = stack.pop() {
        for item in b.iter()? {
            let (k, v) = item?;
            rows.push((path.clone(), k, v.to_vec()));
            if rows.len() >= MAX_ROWS {
                return Ok(rows);
            }
        }
        for name in b.buckets()?.into_iter().rev() {
            if let Some(sub) = b.bucket(&name)? {
                let mut p = path.clone();
                p.push(name);
                stack.push((p, sub));
            }
        }
    }
    Ok(rows)
}

/// Opens `data` + `journal` (read-only, then read-write) and reads everything. Any
/// outcome but a panic or a hang is acceptable; returns what the read-write open read.
pub fn open_and_read(data: &[u8], journal: &[u8]) -> Option<Result<Vec<Row>>> {
    let ro = Database::builder()
        .read_only(true)
        .cache_size_bytes(1 << 20)
        .open_storage(
            Arc::new(MemoryStorage::from_bytes(data.to_vec())) as Arc<dyn Storage>,
            Arc::new(MemoryStorage::from_bytes(journal.to_vec())) as Arc<dyn Storage>,
            false,
        );
    if let Ok(db) = ro {
        let _ = read_all(&db);
    }
    let rw = Database::builder().cache_size_bytes(1 << 20).open_storage(
        Arc::new(MemoryStorage::from_bytes(data.to_vec())) as Arc<dyn Storage>,
        Arc::new(MemoryStorage::from_bytes(journal.to_vec())) as Arc<dyn Storage>,
        false,
    );
    match rw {
        Ok(db) => {
            let rows = read_all(&db);
            // A write on top must not panic either.
            let _ = db.update(|tx| tx.create_bucket_if_not_exists("fuzz")?.put("k", "v"));
            Some(rows)
        }
        Err(_) => None,
    }
}

/// A small deterministic PRNG (xorshift64) for the mutation tests, so they need no
/// dependency and every failure is reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits. (A zero seed is mapped to a fixed non-zero state.)
    pub fn next_u64(&mut self) -> u64 {
        if self.0 == 0 {
            self.0 = 0x9E37_79B9_7F4A_7C15;
        }
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % n.max(1) as u64).unwrap_or(0)
    }
}
