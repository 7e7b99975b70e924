use crate::common::MemDb;
use untorn::{Database, Entry, Error};

#[test]
fn put_get_commit_reopen() {
    let m = MemDb::new();
    {
        let db = m.open_default();
        db.update(|tx| {
            let b = tx.create_bucket("b")?;
            b.put("k1", "v1")?;
            b.put("k2", vec![7u8; 5000])?;
            Ok(())
        })
        .unwrap();
        db.view(|tx| {
            let b = tx.bucket("b")?.unwrap();
            assert_eq!(b.get("k1")?.unwrap().to_vec(), b"v1");
            assert_eq!(b.get("k2")?.unwrap().to_vec(), vec![7u8; 5000]);
            assert_eq!(b.len()?, 2);
            Ok(())
        })
        .unwrap();
    }
    let db = m.open_default();
    db.view(|tx| {
        let b = tx.bucket("b")?.unwrap();
        assert_eq!(b.get("k1")?.unwrap().to_vec(), b"v1");
        assert_eq!(b.get("k2")?.unwrap().len(), 5000);
        assert!(b.get("nope")?.is_none());
        Ok(())
    })
    .unwrap();
}

#[test]
fn many_keys_split_merge_and_cursor_order() {
    let m = MemDb::new();
    let db = m.open_default();
    let n = 5000u32;
    db.update(|tx| {
        let b = tx.create_bucket("b")?;
        for i in 0..n {
            b.put(format!("key{:08}", (i * 7919) % n), format!("value{i}"))?;
        }
        Ok(())
    })
    .unwrap();
    db.view(|tx| {
        let b = tx.bucket("b")?.unwrap();
        assert_eq!(b.len()?, n as u64);
        let keys: Vec<Vec<u8>> = b
            .iter()?
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(keys.len(), n as usize);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let back: Vec<Vec<u8>> = b
            .iter()?
            .rev()
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(back.len(), n as usize);
        assert_eq!(back.first(), keys.last());
        Ok(())
    })
    .unwrap();
    db.update(|tx| {
        let b = tx.bucket("b")?.unwrap();
        for i in 0..n {
            if i % 3 != 0 {
                assert!(b.delete(format!("key{:08}", i))?);
            }
        }
        Ok(())
    })
    .unwrap();
    drop(db);
    let db = m.open_default();
    db.view(|tx| {
        let b = tx.bucket("b")?.unwrap();
        let keys: Vec<Vec<u8>> = b
            .iter()?
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        let expect: Vec<Vec<u8>> = (0..n)
            .filter(|i| i % 3 == 0)
            .map(|i| format!("key{:08}", i).into_bytes())
            .collect();
        assert_eq!(keys, expect);
        assert_eq!(b.len()?, expect.len() as u64);
        let mut c = b.cursor();
        let (k, e) = c.seek("key00000004")?.unwrap();
        assert_eq!(k, b"key00000006");
        assert!(matches!(e, Entry::Value(_)));
        let (k, _) = c.prev()?.unwrap();
        assert_eq!(k, b"key00000003");
        Ok(())
    })
    .unwrap();
}

#[test]
fn nested_buckets_and_errors() {
    let m = MemDb::new();
    let db = m.open_default();
    db.update(|tx| {
        let a = tx.create_bucket("a")?;
        let b = a.create_bucket("b")?;
        b.put("x", "1")?;
        assert!(matches!(
            a.put("b", "v"),
            Err(Error::IncompatibleValue { .. })
        ));
        assert!(matches!(tx.create_bucket("a"), Err(Error::BucketExists)));
        assert!(matches!(a.put("", "v"), Err(Error::KeyEmpty)));
        assert_eq!(b.next_sequence()?, 1);
        assert_eq!(b.next_sequence()?, 2);
        Ok(())
    })
    .unwrap();
    db.view(|tx| {
        let a = tx.bucket("a")?.unwrap();
        assert_eq!(a.buckets()?, vec![b"b".to_vec()]);
        let b = a.bucket("b")?.unwrap();
        assert_eq!(b.sequence()?, 2);
        assert_eq!(b.get("x")?.unwrap().to_vec(), b"1");
        Ok(())
    })
    .unwrap();
    db.update(|tx| tx.delete_bucket("a")).unwrap();
    db.view(|tx| {
        assert!(tx.bucket("a")?.is_none());
        assert!(tx.buckets()?.is_empty());
        Ok(())
    })
    .unwrap();
}

#[test]
fn locked_and_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let db = Database::create(&p).unwrap();
    assert!(matches!(Database::open(&p), Err(Error::Locked)));
    drop(db);
    Database::open(&p).unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![0xabu8; 10000]).unwrap();
    assert!(matches!(Database::open(&junk), Err(Error::NotADatabase(_))));
}
