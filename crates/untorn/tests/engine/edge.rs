//! Edge cases: key and value limits, many buckets, deep nesting, space reuse.

use crate::common::MemDb;
use untorn::{Database, Error, MAX_KEY_SIZE};

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
