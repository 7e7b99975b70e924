//! Group commit: concurrent `batch` callers share transactions and syncs.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use untorn::{Database, Error, MemoryStorage, Storage};

/// Memory storage whose sync takes a while, like a real disk, so callers pile up.
struct SlowSync(MemoryStorage);

impl Storage for SlowSync {
    fn read_at(&self, o: u64, b: &mut [u8]) -> io::Result<()> {
        self.0.read_at(o, b)
    }
    fn write_at(&self, o: u64, b: &[u8]) -> io::Result<()> {
        self.0.write_at(o, b)
    }
    fn sync(&self) -> io::Result<()> {
        std::thread::sleep(Duration::from_millis(2));
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, l: u64) -> io::Result<()> {
        self.0.set_len(l)
    }
}

#[test]
fn concurrent_batches_share_commits_and_report_their_own_errors() {
    let db = Database::builder()
        .open_storage(
            Arc::new(SlowSync(MemoryStorage::new())),
            Arc::new(SlowSync(MemoryStorage::new())),
            true,
        )
        .unwrap();
    db.update(|tx| tx.create_bucket("b").map(|_| ())).unwrap();
    let before = db.info().unwrap().txid;
    let threads = 8u32;
    let per_thread = 20u32;
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = &db;
            s.spawn(move || {
                for i in 0..per_thread {
                    let key = format!("t{t}-{i}");
                    db.batch(move |tx| {
                        tx.bucket("b")?
                            .ok_or_else(|| Error::bucket_not_found("b"))?
                            .put(&key, "v")
                    })
                    .unwrap();
                }
            });
        }
        // One caller whose closure fails: only it sees the error.
        let db = &db;
        s.spawn(move || {
            let r = db.batch(|tx| {
                tx.bucket("b")?
                    .ok_or_else(|| Error::bucket_not_found("b"))?
                    .put("bad", "x")?;
                Err(Error::InvalidArgument("refused".into()))
            });
            assert!(matches!(r, Err(Error::InvalidArgument(_))));
        });
    });
    let calls = u64::from(threads * per_thread);
    let commits = db.info().unwrap().txid - before;
    assert!(
        commits < calls,
        "{calls} batch calls took {commits} commits"
    );
    db.view(|tx| -> untorn::Result<_> {
        let b = tx.bucket("b")?.unwrap();
        assert_eq!(b.len()?, calls);
        assert!(
            b.get("bad")?.is_none(),
            "the failed closure's writes were rolled back"
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_failing_batch_call_runs_alone_and_the_others_still_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("b.untorn")).unwrap();
    db.update(|tx| tx.create_bucket("b").map(|_| ())).unwrap();
    let before = db.info().unwrap().txid;
    let n = 8u32;
    std::thread::scope(|s| {
        // Hold the writer lock while the calls queue up, so that one caller takes them
        // all into one batch.
        let held = db.begin_write().unwrap();
        let db = &db;
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || {
                    db.batch(move |tx| {
                        let b = tx
                            .bucket("b")?
                            .ok_or_else(|| Error::bucket_not_found("b"))?;
                        b.put(format!("k{i}"), "v")?;
                        if i == 3 {
                            return Err(Error::InvalidArgument("refused".into()));
                        }
                        Ok(())
                    })
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        held.abort();
        for (i, h) in handles.into_iter().enumerate() {
            let r = h.join().unwrap();
            assert_eq!(r.is_err(), i == 3, "call {i}: {r:?}");
        }
    });
    // The seven good calls retried together: one commit (two if a caller was late),
    // not one each.
    let commits = db.info().unwrap().txid - before;
    assert!((1..=2).contains(&commits), "{commits} commits");
    let n_keys = db.view(|tx| tx.bucket("b")?.expect("b").len()).unwrap();
    assert_eq!(n_keys, u64::from(n - 1));
}
