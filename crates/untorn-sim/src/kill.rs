//! The real-process kill test's shared pieces: the child's commit loop (run by the
//! `untorn-kill-child` binary on a real file) and the parent's verification.
//!
//! Commit `i` (from 1) puts key `i` (8 bytes, big-endian) with [`value`]`(i)` into bucket
//! `kill` and sets `last` to `i`, in one transaction. The child prints `i` to stdout
//! (flushed) only after `commit` returned.

use std::io::Write;
use std::path::Path;

use untorn::Database;

use untorn::unstable::fuzzing::Rng;

/// The bucket all commits go to.
pub const BUCKET: &[u8] = b"kill";
/// The key that records the newest commit number.
pub const LAST_KEY: &[u8] = b"last";

/// The value of commit `i`: mostly small, every seventh larger than a page (overflow).
pub fn value(i: u64) -> Vec<u8> {
    let len = if i.is_multiple_of(7) {
        6000
    } else {
        16 + (i % 200) as usize
    };
    let mut v = vec![0u8; len];
    Rng::derive(i, 0x6b69_6c6c).fill(&mut v);
    v
}

fn last_of(db: &Database) -> Result<u64, String> {
    db.view(|tx| -> untorn::Result<_> {
        let Some(b) = tx.bucket(BUCKET)? else {
            return Ok(None);
        };
        Ok(b.get(LAST_KEY)?.map(|v| {
            let mut a = [0u8; 8];
            let n = v.len().min(8);
            a[..n].copy_from_slice(&v[..n]);
            u64::from_be_bytes(a)
        }))
    })
    .map(|o: Option<u64>| o.unwrap_or(0))
    .map_err(|e| format!("reading last: {e}"))
}

/// Commit number `i`.
pub fn commit(db: &Database, i: u64) -> Result<(), String> {
    db.update(|tx| -> untorn::Result<()> {
        let b = tx.create_bucket_if_not_exists(BUCKET)?;
        b.put(i.to_be_bytes(), value(i))?;
        b.put(LAST_KEY, i.to_be_bytes())?;
        Ok(())
    })
    .map_err(|e| format!("commit {i}: {e}"))
}

/// The child: open (creating) the database at `path`, then commit forever, printing
/// each acknowledged commit number.
pub fn child_main(path: &Path) -> Result<(), String> {
    let db = Database::create(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let start = last_of(&db)?;
    let stdout = std::io::stdout();
    for i in start + 1.. {
        commit(&db, i)?;
        // Checkpoint now and then, so kills also land inside checkpoints.
        if i.is_multiple_of(5) {
            db.checkpoint()
                .map_err(|e| format!("checkpoint after {i}: {e}"))?;
        }
        let mut out = stdout.lock();
        writeln!(out, "{i}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}

/// The parent's check after a kill: every commit up to `acked` present with its exact
/// value, `last` in `acked..=acked + 1` (the commit in flight may or may not have
/// landed), every key up to `last` present and nothing beyond it. Returns `last`.
pub fn verify(path: &Path, acked: u64) -> Result<u64, String> {
    let db = Database::open(path).map_err(|e| format!("reopen after kill: {e}"))?;
    verify_db(&db, acked)
}

/// [`verify`] on an open database.
pub fn verify_db(db: &Database, acked: u64) -> Result<u64, String> {
    let last = last_of(db)?;
    if last < acked || last > acked + 1 {
        return Err(format!(
            "last commit in the file is {last}, acknowledged {acked}"
        ));
    }
    db.view(|tx| -> untorn::Result<_> {
        let Some(b) = tx.bucket(BUCKET)? else {
            return Ok(if last == 0 {
                Ok(())
            } else {
                Err("bucket kill missing".to_owned())
            });
        };
        for i in 1..=last {
            match b.get(i.to_be_bytes())? {
                Some(v) if v.as_ref() == value(i).as_slice() => {}
                Some(v) => return Ok(Err(format!("commit {i}: WRONG DATA ({} bytes)", v.len()))),
                None => {
                    return Ok(Err(format!(
                        "commit {i} missing (acknowledged {acked}, last {last})"
                    )))
                }
            }
        }
        // Nothing beyond the last commit: the bucket holds exactly keys 1..=last and `last`.
        let n = b.len()?;
        if n != last + 1 {
            return Ok(Err(format!(
                "bucket holds {n} pairs, expected {}",
                last + 1
            )));
        }
        Ok(Ok(()))
    })
    .map_err(|e| format!("reading after kill: {e}"))??;
    match crate::oracle::engine_check(db) {
        Ok(None) => {}
        Ok(Some(findings)) => return Err(format!("check after kill: {findings}")),
        Err(e) => return Err(format!("check after kill failed: {e}")),
    }
    Ok(last)
}
