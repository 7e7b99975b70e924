//! Edge cases: key and value limits, many buckets, deep nesting, space reuse.

use crate::common::MemDb;
use untorn::{Database, Error, Storage, MAX_KEY_SIZE};

#[test]
fn max_key_size_and_multi_page_nodes() {
    let m = MemDb::new();
    let db = m.open_default();
    db.update(|tx| -> untorn::Result<_> {
        let b = tx.create_bucket("k")?;
        for i in 0..20u8 {
            let mut key = vec![i; MAX_KEY_SIZE];
            key[0] = i;
            b.put(&key, [i])?;
        }
        assert!(matches!(
            b.put(vec![1u8; MAX_KEY_SIZE + 1], "v"),
            Err(Error::KeyTooLarge(_))
        ));
        Ok(())
    })
    .unwrap();
    drop(db);
    let db = m.open_default();
    db.view(|tx| -> untorn::Result<_> {
        let b = tx.bucket("k")?.unwrap();
        assert_eq!(b.len()?, 20);
        for i in 0..20u8 {
            assert_eq!(b.get(vec![i; MAX_KEY_SIZE])?.unwrap().to_vec(), vec![i]);
        }
        Ok(())
    })
    .unwrap();
    db.update(|tx| -> untorn::Result<_> {
        let b = tx.bucket("k")?.unwrap();
        for i in (0..20u8).step_by(2) {
            assert!(b.delete(vec![i; MAX_KEY_SIZE])?);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(db.view(|tx| tx.bucket("k")?.unwrap().len()).unwrap(), 10);
}

#[test]
fn huge_value_on_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.untorn");
    let len = 256 << 20;
    let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    {
        let db = Database::create(&p).unwrap();
        db.update(|tx| tx.create_bucket("v")?.put("big", &value))
            .unwrap();
    }
    let db = Database::open(&p).unwrap();
    let got = db
        .view(|tx| -> untorn::Result<_> {
            Ok(tx.bucket("v")?.unwrap().get("big")?.unwrap().to_vec())
        })
        .unwrap();
    assert!(got == value, "256 MiB value reads back exactly");
    // Overwrite with a small value: the extent is freed and reused.
    db.update(|tx| tx.bucket("v")?.unwrap().put("big", "small"))
        .unwrap();
    db.update(|tx| tx.bucket("v")?.unwrap().put("big2", &value[..10 << 20]))
        .unwrap();
    let hwm_pages = db.info().unwrap().high_water;
    assert!(
        hwm_pages < (300 << 20) / 4096,
        "freed extent reused, hwm {hwm_pages}"
    );
}

#[test]
fn ten_thousand_buckets_and_deep_nesting() {
    let m = MemDb::new();
    let db = m.open_default();
    db.update(|tx| {
        for i in 0..10_000u32 {
            tx.create_bucket(format!("bucket{i:05}"))?
                .put("k", i.to_be_bytes())?;
        }
        let mut b = tx.create_bucket("deep")?;
        for d in 0..64 {
            b = b.create_bucket(format!("level{d}"))?;
        }
        b.put("bottom", "here")
    })
    .unwrap();
    drop(db);
    let db = m.open_default();
    db.view(|tx| -> untorn::Result<_> {
        let names = tx.buckets()?;
        assert_eq!(names.len(), 10_001);
        let b = tx.bucket("bucket04242")?.unwrap();
        assert_eq!(b.get("k")?.unwrap().to_vec(), 4242u32.to_be_bytes());
        let mut b = tx.bucket("deep")?.unwrap();
        for d in 0..64 {
            b = b.bucket(format!("level{d}"))?.unwrap();
        }
        assert_eq!(b.get("bottom")?.unwrap().to_vec(), b"here");
        Ok(())
    })
    .unwrap();
}

#[test]
fn delete_everything_then_reuse_space() {
    let m = MemDb::new();
    let db = m
        .open(Database::builder().checkpoint_threshold_bytes(1 << 20))
        .unwrap();
    let fill = |db: &Database, tag: u8| {
        db.update(|tx| -> untorn::Result<_> {
            let b = tx.create_bucket_if_not_exists("b")?;
            for i in 0..3000u32 {
                b.put(i.to_be_bytes(), vec![tag; 100])?;
            }
            Ok(())
        })
        .unwrap()
    };
    fill(&db, 1);
    let hwm_full = db.info().unwrap().high_water;
    // Steady update workload: overwrite everything many times, in small commits too.
    for round in 0..30u8 {
        fill(&db, round);
        db.update(|tx| tx.bucket("b")?.unwrap().put(0u32.to_be_bytes(), [round]))
            .unwrap();
    }
    let hwm_steady = db.info().unwrap().high_water;
    assert!(
        hwm_steady <= hwm_full * 4,
        "file does not grow without bound: {hwm_full} -> {hwm_steady}"
    );
    db.update(|tx| tx.delete_bucket("b")).unwrap();
    db.update(|tx| tx.create_bucket("other").map(|_| ()))
        .unwrap();
    fill(&db, 9);
    let hwm_after = db.info().unwrap().high_water;
    assert!(
        hwm_after <= hwm_steady,
        "space of the deleted bucket is reused: {hwm_steady} -> {hwm_after}"
    );
    drop(db);
    let db = m.open_default();
    assert_eq!(db.view(|tx| tx.bucket("b")?.unwrap().len()).unwrap(), 3000);
}

/// The data file's size after `commits` small commits made while one reader holds the
/// snapshot before them, and a checkpoint.
fn size_under_a_held_reader(commits: usize) -> u64 {
    let m = MemDb::new();
    let db = m.open_default();
    db.update(|tx| {
        let b = tx.create_bucket("b")?;
        for i in 0..200 {
            b.put(format!("k{i:04}"), [7u8; 100])?;
        }
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    let reader = db.begin_read().unwrap();
    for i in 0..commits {
        db.update(|tx| {
            tx.bucket("b")?
                .unwrap()
                .put(format!("k{:04}", i % 200), [i as u8; 100])
        })
        .unwrap();
    }
    db.checkpoint().unwrap();
    let size = m.data.len().unwrap();
    drop(reader);
    size
}

#[test]
fn file_growth_under_a_long_lived_reader_is_linear_in_the_work() {
    // A held reader pins every page freed after its snapshot, so each commit needs new
    // pages: the file must grow by what the commits wrote, not by a freelist rewritten
    // (and pinned) at every commit, which made the growth quadratic.
    let n = size_under_a_held_reader(400);
    let n4 = size_under_a_held_reader(1600);
    eprintln!("data file after 400 commits: {n} bytes; after 1600: {n4} bytes");
    assert!(
        n4 < 5 * n,
        "4x the commits grew the file {:.1}x ({n} -> {n4} bytes)",
        n4 as f64 / n as f64
    );
}

/// Counts journal writes of zeros (space allocation) made inside commits.
#[derive(Clone)]
struct CountingJournal {
    inner: untorn::MemoryStorage,
    zero_fills: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Storage for CountingJournal {
    fn read_at(&self, o: u64, b: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_at(o, b)
    }
    fn write_at(&self, o: u64, b: &[u8]) -> std::io::Result<()> {
        if b.len() >= 8192 && b.iter().all(|x| *x == 0) {
            self.zero_fills
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.write_at(o, b)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.inner.sync()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, l: u64) -> std::io::Result<()> {
        self.inner.set_len(l)
    }
}

#[test]
fn journal_growth_stays_off_most_commits() {
    // Issue 10's p99 problem: 43 of 2,000 commits wrote 1 MiB of zeros inside the commit.
    // Growth on the commit path is geometric now: a handful of commits per generation.
    use std::sync::atomic::{AtomicU64, Ordering};
    let fills = std::sync::Arc::new(AtomicU64::new(0));
    let journal = CountingJournal {
        inner: untorn::MemoryStorage::new(),
        zero_fills: std::sync::Arc::clone(&fills),
    };
    let db = Database::builder()
        .open_storage(
            std::sync::Arc::new(untorn::MemoryStorage::new()),
            std::sync::Arc::new(journal),
            true,
        )
        .unwrap();
    db.update(|tx| {
        let b = tx.create_bucket("b")?;
        for i in 0..10_000u32 {
            b.put(i.to_be_bytes(), [1u8; 100])?;
        }
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    let mut growing = 0;
    for i in 0..1000u32 {
        let before = fills.load(Ordering::SeqCst);
        db.update(|tx| {
            let b = tx.bucket("b")?.unwrap();
            for k in 0..10u32 {
                b.put(
                    ((i * 7919 + k * 104_729) % 10_000).to_be_bytes(),
                    [2u8; 100],
                )?;
            }
            Ok::<_, untorn::Error>(())
        })
        .unwrap();
        growing += u64::from(fills.load(Ordering::SeqCst) > before);
    }
    assert!(
        growing <= 10,
        "{growing} of 1000 commits allocated journal space (p99 needs at most 10)"
    );
}
