//! Readers on several threads while a writer commits: each reader sees exactly one
//! snapshot for its whole life and never blocks the writer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::MemDb;
use untorn::{Database, Error};

const KEYS: u32 = 200;

fn write_round(db: &Database, round: u64) {
    db.update(|tx| -> untorn::Result<_> {
        let b = tx.create_bucket_if_not_exists("b")?;
        for k in 0..KEYS {
            // Every key carries the round; values are sized to fill several pages.
            b.put(
                format!("key{k:04}"),
                format!("{round:020}-{}", "x".repeat((k % 50) as usize)),
            )?;
        }
        b.set_sequence(round)?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn readers_see_one_snapshot_while_writer_commits() {
    let m = MemDb::new();
    let db = m
        .open(Database::builder().checkpoint_threshold_bytes(512 * 1024))
        .unwrap();
    write_round(&db, 0);
    let stop = AtomicBool::new(false);
    let snapshots = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let tx = db.begin_read().unwrap();
                    let b = tx.bucket("b").unwrap().unwrap();
                    let round = b.sequence().unwrap();
                    // Read every key, twice, with a pause in between: all must carry the
                    // snapshot's round although the writer keeps committing.
                    for pass in 0..2 {
                        let mut n = 0;
                        for item in b.iter().unwrap() {
                            let (_, v) = item.unwrap();
                            assert_eq!(&v[..20], format!("{round:020}").as_bytes(), "pass {pass}");
                            n += 1;
                        }
                        assert_eq!(n, KEYS);
                        std::thread::yield_now();
                    }
                    snapshots.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let start = Instant::now();
        let mut round = 1;
        while round < 300 || start.elapsed() < Duration::from_millis(300) {
            write_round(&db, round);
            round += 1;
            if start.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(snapshots.load(Ordering::Relaxed) > 0);
    // Reopen after a crash (no clean close): the newest round is there.
    let d2 = m.data.to_vec();
    let j2 = m.journal.to_vec();
    std::mem::forget(db);
    let m2 = MemDb {
        data: untorn::MemoryStorage::from_bytes(d2),
        journal: untorn::MemoryStorage::from_bytes(j2),
    };
    let db = m2.open_default();
    let seq = db
        .view(|tx| tx.bucket("b")?.expect("b").sequence())
        .unwrap();
    assert!(seq >= 299, "last committed round survives, got {seq}");
}

#[test]
fn second_writer_waits_and_read_only_refuses_writes() {
    let m = MemDb::new();
    let db = m.open_default();
    let tx = db.begin_write().unwrap();
    tx.create_bucket("a").unwrap();
    let started = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            started.store(true, Ordering::SeqCst);
            // Blocks until the first writer commits.
            let tx2 = db.begin_write().unwrap();
            assert!(
                tx2.bucket("a").unwrap().is_some(),
                "second writer sees the first commit"
            );
            tx2.abort();
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        assert!(!h.is_finished(), "second writer must wait");
        tx.commit().unwrap();
        h.join().unwrap();
    });
    drop(db);
    let ro = m.open(Database::builder().read_only(true)).unwrap();
    assert!(matches!(ro.begin_write(), Err(Error::ReadOnly)));
    assert!(ro.view(|tx| tx.bucket("a").map(|b| b.is_some())).unwrap());
}
