//! Writes seed inputs for the `open_read` and `check` fuzz targets into a directory:
//! `cargo run -p untorn --example fuzz_seeds -- fuzz/seeds/open_read`.
//! Input format of `open_read`: journal length (u32 LE), data file, journal.

use std::sync::Arc;

use untorn::{Database, MemoryStorage, Storage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?;
    std::fs::create_dir_all(&dir)?;
    for (name, keys, leave_in_journal) in [
        ("small", 5u32, false),
        ("journal", 40, true),
        ("split", 400, false),
    ] {
        let data = MemoryStorage::new();
        let journal = MemoryStorage::new();
        let db = Database::builder().deterministic_ids(42).open_storage(
            Arc::new(data.clone()) as Arc<dyn Storage>,
            Arc::new(journal.clone()) as Arc<dyn Storage>,
            true,
        )?;
        db.update(|tx| -> untorn::Result<_> {
            let b = tx.create_bucket("b")?;
            for i in 0..keys {
                b.put(i.to_be_bytes(), vec![(i % 251) as u8; (i % 90) as usize])?;
            }
            b.create_bucket("n")?.put("k", vec![1u8; 2000])?;
            Ok(())
        })?;
        if !leave_in_journal {
            db.checkpoint()?;
        }
        std::mem::forget(db);
        let (d, mut j) = (data.to_vec(), journal.to_vec());
        // Keep the marker and the records; drop the pre-sized zeros after them.
        let mut end = 0;
        while let Some(h) = j
            .get(end..end + untorn::unstable::format::RECORD_HEADER_SIZE)
            .and_then(untorn::unstable::format::RecordHeader::decode)
        {
            if end > 0 && h.kind == untorn::unstable::format::RecordKind::Marker {
                break;
            }
            end += usize::try_from(h.record_len())?;
        }
        j.truncate(end);
        let mut input = u32::try_from(j.len())?.to_le_bytes().to_vec();
        input.extend_from_slice(&d);
        input.extend_from_slice(&j);
        std::fs::write(format!("{dir}/{name}"), input)?;
    }
    Ok(())
}
