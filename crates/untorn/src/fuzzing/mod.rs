//! What the fuzz targets, the mutation tests and the simulator share: the entry points
//! the fuzz targets drive, the one test PRNG (`Rng`), the one set of byte mutators
//! (`mutate`) and the reference model (`model`). Not part of the stable API.

use std::sync::Arc;

pub mod model;
mod mutate;
pub mod recovery;
mod rng;

pub use mutate::mutate;
pub use rng::Rng;

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
            rows.push((path.clone(), k.to_vec(), v.to_vec()));
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
