use crate::common::MemDb;
use untorn::{Database, Entry, Error, Key};

#[test]
fn put_get_commit_reopen() {
    let m = MemDb::new();
    {
        let db = m.open_default();
        db.update(|tx| -> untorn::Result<_> {
            let b = tx.create_bucket("b")?;
            b.put("k1", "v1")?;
            b.put("k2", vec![7u8; 5000])?;
            Ok(())
        })
        .unwrap();
        db.view(|tx| -> untorn::Result<_> {
            let b = tx.bucket("b")?.unwrap();
            assert_eq!(b.get("k1")?.unwrap().to_vec(), b"v1");
            assert_eq!(b.get("k2")?.unwrap().to_vec(), vec![7u8; 5000]);
            assert_eq!(b.len()?, 2);
            Ok(())
        })
        .unwrap();
    }
    let db = m.open_default();
    db.view(|tx| -> untorn::Result<_> {
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
    db.update(|tx| -> untorn::Result<_> {
        let b = tx.create_bucket("b")?;
        for i in 0..n {
            b.put(format!("key{:08}", (i * 7919) % n), format!("value{i}"))?;
        }
        Ok(())
    })
    .unwrap();
    db.view(|tx| -> untorn::Result<_> {
        let b = tx.bucket("b")?.unwrap();
        assert_eq!(b.len()?, n as u64);
        let keys: Vec<Vec<u8>> = b
            .iter()?
            .map(|r| r.map(|(k, _)| k.to_vec()))
            .collect::<Result<_, _>>()?;
        assert_eq!(keys.len(), n as usize);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let back: Vec<Vec<u8>> = b
            .iter()?
            .rev()
            .map(|r| r.map(|(k, _)| k.to_vec()))
            .collect::<Result<_, _>>()?;
        assert_eq!(back.len(), n as usize);
        assert_eq!(back.first(), keys.last());
        Ok(())
    })
    .unwrap();
    let stats = db.stats().unwrap();
    assert_eq!(stats.keys, u64::from(n));
    assert_eq!(stats.buckets, 1);
    assert!(stats.tree_depth_max >= 2, "5000 keys need a branch level");
    assert!(stats.leaf_pages > 10 && stats.branch_pages >= 1);
    let fill = stats.fill_factor();
    assert!(fill > 0.4 && fill <= 1.0, "fill factor {fill}");
    db.update(|tx| -> untorn::Result<_> {
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
    db.view(|tx| -> untorn::Result<_> {
        let b = tx.bucket("b")?.unwrap();
        let keys: Vec<Vec<u8>> = b
            .iter()?
            .map(|r| r.map(|(k, _)| k.to_vec()))
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
    db.update(|tx| -> untorn::Result<_> {
        let a = tx.create_bucket("a")?;
        let b = a.create_bucket("b")?;
        b.put("x", "1")?;
        assert!(matches!(
            a.put("b", "v"),
            Err(Error::IncompatibleValue { .. })
        ));
        assert!(matches!(
            tx.create_bucket("a"),
            Err(Error::BucketExists { .. })
        ));
        assert!(matches!(a.put("", "v"), Err(Error::KeyEmpty)));
        assert_eq!(b.next_sequence()?, 1);
        assert_eq!(b.next_sequence()?, 2);
        Ok(())
    })
    .unwrap();
    db.view(|tx| -> untorn::Result<_> {
        let a = tx.bucket("a")?.unwrap();
        assert_eq!(a.buckets()?, vec![b"b".to_vec()]);
        let b = a.bucket("b")?.unwrap();
        assert_eq!(b.sequence()?, 2);
        assert_eq!(b.get("x")?.unwrap().to_vec(), b"1");
        Ok(())
    })
    .unwrap();
    db.update(|tx| tx.delete_bucket("a")).unwrap();
    db.view(|tx| -> untorn::Result<_> {
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
    // That a bbolt file is named as such is tested where bbolt's magic lives:
    // untorn-bbolt's `read::the_engine_names_a_bbolt_file_as_such`.
}

#[test]
fn ranges_prefixes_and_double_ended_iteration() {
    use std::ops::Bound;
    let m = MemDb::new();
    let db = m.open_default();
    let keys: Vec<String> = (0..500).map(|i| format!("{:03}", i)).collect();
    db.update(|tx| -> untorn::Result<_> {
        let b = tx.create_bucket("r")?;
        for k in &keys {
            b.put(k, k)?;
        }
        b.create_bucket("250x")?; // a sub-bucket inside the range is skipped by ranges
        Ok(())
    })
    .unwrap();
    let collect = |r: untorn::Range<'_>| -> Vec<String> {
        r.map(|x| String::from_utf8(x.unwrap().0.to_vec()).unwrap())
            .collect()
    };
    db.view(|tx| -> untorn::Result<_> {
        let b = tx.bucket("r")?.unwrap();
        let s = |k: &str| k.as_bytes().to_vec();
        let r = collect(b.range(&b"100"[..]..&b"105"[..])?);
        assert_eq!(r, vec!["100", "101", "102", "103", "104"]);
        let r = collect(b.range(&b"100"[..]..=&b"105"[..])?);
        assert_eq!(r.len(), 6);
        let r = collect(b.range::<&[u8]>((Bound::Excluded(&b"100"[..]), Bound::Unbounded))?);
        assert_eq!(r.first().map(String::as_str), Some("101"));
        assert_eq!(r.len(), 399);
        let r = collect(b.range(&b"2495"[..]..&b"2505"[..])?);
        assert_eq!(r, vec!["250"], "sub-bucket 250x skipped");
        let r: Vec<String> = b
            .range(..&b"003"[..])?
            .rev()
            .map(|x| String::from_utf8(x.unwrap().0.to_vec()).unwrap())
            .collect();
        assert_eq!(r, vec!["002", "001", "000"]);
        let r = collect(b.prefix("42")?);
        assert_eq!(
            r,
            vec!["42", "420", "421", "422", "423", "424", "425", "426", "427", "428", "429"]
                .into_iter()
                .filter(|k| k.len() == 3)
                .collect::<Vec<_>>()
        );
        // Alternate front and back until they meet: every key exactly once.
        let mut it = b.iter()?;
        let mut seen = Vec::new();
        let mut front = true;
        loop {
            let next = if front { it.next() } else { it.next_back() };
            match next {
                Some(x) => seen.push(x?.0),
                None => break,
            }
            front = !front;
        }
        seen.sort();
        assert_eq!(seen, keys.iter().map(|k| s(k)).collect::<Vec<_>>());
        assert!(b.range(&b"zzz"[..]..)?.next().is_none());
        Ok(())
    })
    .unwrap();
}

#[test]
fn cursor_delete_in_a_write_transaction() {
    let m = MemDb::new();
    let db = m.open_default();
    db.update(|tx| -> untorn::Result<_> {
        let b = tx.create_bucket("c")?;
        for i in 0..1000u32 {
            b.put(i.to_be_bytes(), [1])?;
        }
        // Delete every odd key through the cursor while iterating.
        let mut c = b.cursor();
        let mut item = c.first()?;
        while let Some((k, _)) = item {
            if u32::from_be_bytes(k.as_slice().try_into().unwrap()) % 2 == 1 {
                c.delete()?;
            }
            item = c.next()?;
        }
        assert_eq!(b.len()?, 500);
        // A put through another handle while a cursor is open: the cursor re-seeks.
        let mut c = b.cursor();
        c.seek(10u32.to_be_bytes())?;
        b.put(11u32.to_be_bytes(), [2])?;
        let (k, _) = c.next()?.unwrap();
        assert_eq!(k, 11u32.to_be_bytes());
        Ok(())
    })
    .unwrap();
    let n = db.view(|tx| tx.bucket("c")?.unwrap().len()).unwrap();
    assert_eq!(n, 501);
}

/// Check is read-only: neither a check of a live snapshot nor one of the raw data file
/// writes a byte to the data file or the journal.
#[test]
fn check_never_writes_to_its_source() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use untorn::unstable::check::{check_storage, CheckOptions};
    use untorn::{MemoryStorage, Storage};

    /// A storage that counts the writes made through it.
    struct Counting(MemoryStorage, Arc<AtomicU64>);
    impl Storage for Counting {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.0.read_at(offset, buf)
        }
        fn write_at(&self, offset: u64, buf: &[u8]) -> std::io::Result<()> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.write_at(offset, buf)
        }
        fn sync(&self) -> std::io::Result<()> {
            self.0.sync()
        }
        fn len(&self) -> std::io::Result<u64> {
            self.0.len()
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.set_len(len)
        }
    }

    let m = MemDb::new();
    let db = m.open_default();
    db.update(|tx| -> untorn::Result<_> {
        let b = tx.create_bucket("b")?;
        for i in 0..500u32 {
            b.put(format!("k{i:04}"), vec![7u8; 100])?;
        }
        Ok(())
    })
    .unwrap();
    drop(db);
    let writes = Arc::new(AtomicU64::new(0));
    let data = Arc::new(Counting(m.data.clone(), Arc::clone(&writes)));
    let journal = Arc::new(Counting(m.journal.clone(), Arc::clone(&writes)));
    let ro = Database::builder()
        .read_only(true)
        .open_storage(data.clone(), journal, false)
        .unwrap();
    assert!(ro.check(CheckOptions::default()).unwrap().is_ok());
    assert!(check_storage(data, CheckOptions::default())
        .unwrap()
        .is_ok());
    assert_eq!(
        writes.load(Ordering::SeqCst),
        0,
        "check wrote to its source"
    );
}

#[test]
fn errors_name_the_bucket_key_and_file_they_are_about() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("named.untorn");
    let db = Database::create(&p).unwrap();
    db.update(|tx| -> untorn::Result<()> {
        let b = tx.create_bucket("users")?;
        b.put("alice", "admin")?;
        b.create_bucket("logins")?;
        let e = tx.create_bucket("users").unwrap_err();
        assert!(matches!(&e, Error::BucketExists { name } if name == b"users"));
        assert_eq!(e.to_string(), "bucket \"users\" already exists");
        let e = b.put("logins", "x").unwrap_err();
        assert!(matches!(&e, Error::IncompatibleValue { key, .. } if key == b"logins"));
        assert_eq!(e.to_string(), "key \"logins\" holds a bucket, not a value");
        let e = b.bucket("alice").unwrap_err();
        assert_eq!(e.to_string(), "key \"alice\" holds a value, not a bucket");
        let e = tx.delete_bucket([0xffu8, 1]).unwrap_err();
        assert_eq!(e.to_string(), "bucket 0xff01 not found");
        Ok(())
    })
    .unwrap();
    drop(db);
    // A directory where the data file should be: the error names the path.
    let e = Database::open(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );
    // An empty file is not a database, and the message says which file.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let e = Database::open(&empty).unwrap_err();
    assert!(matches!(e, Error::NotADatabase(_)));
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn pairs_and_sub_buckets_iterate_separately_with_any_byte_string_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("it.untorn")).unwrap();
    db.update(|tx| -> untorn::Result<()> {
        let b = tx.create_bucket("b")?;
        for k in ["a", "b", "c", "d"] {
            b.put(k, k.to_uppercase())?;
        }
        b.create_bucket("b-sub")?.put("x", "1")?;
        b.create_bucket("c-sub")?;
        // In the write transaction too.
        let subs: Vec<Key> = b
            .iter_buckets()?
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(subs, [&b"b-sub"[..], b"c-sub"]);
        Ok(())
    })
    .unwrap();
    db.view(|tx| -> untorn::Result<()> {
        let b = tx.bucket("b")?.unwrap();
        let keys: Vec<Key> = b
            .range("b".."d")?
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(keys, ["b", "c"], "pairs only: the sub-buckets are skipped");
        let keys: Vec<Key> = b
            .range(String::from("c")..)?
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(keys, ["c", "d"]);
        let mut subs = Vec::new();
        for item in b.iter_buckets()? {
            let (name, sub) = item?;
            subs.push((name.to_vec(), sub.len()?));
        }
        assert_eq!(subs, [(b"b-sub".to_vec(), 1), (b"c-sub".to_vec(), 0)]);
        let top: Vec<Key> = tx
            .iter_buckets()?
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        assert_eq!(top, ["b"]);
        Ok(())
    })
    .unwrap();
}

/// A storage that counts its syncs.
struct Counting {
    inner: untorn::MemoryStorage,
    syncs: std::sync::atomic::AtomicU64,
}

impl untorn::Storage for Counting {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_at(offset, buf)
    }
    fn sync(&self) -> std::io::Result<()> {
        self.syncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.sync()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
}

#[test]
fn a_transaction_can_skip_or_force_its_sync() {
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;
    use untorn::Durability;
    let journal = Arc::new(Counting {
        inner: untorn::MemoryStorage::new(),
        syncs: Default::default(),
    });
    let data = Arc::new(untorn::MemoryStorage::new());
    let db = Database::builder()
        .open_storage(data, journal.clone(), true)
        .unwrap();
    let commit = |d: Option<Durability>| {
        let before = journal.syncs.load(SeqCst);
        let mut tx = db.begin_write().unwrap();
        if let Some(d) = d {
            tx.set_durability(d);
        }
        tx.create_bucket_if_not_exists("b")
            .unwrap()
            .put("k", "v")
            .unwrap();
        tx.commit().unwrap();
        journal.syncs.load(SeqCst) - before
    };
    assert_eq!(commit(None), 1, "the handle's default: one sync per commit");
    assert_eq!(
        commit(Some(Durability::None)),
        0,
        "this commit skips its sync"
    );
    assert_eq!(commit(None), 1);
    drop(db);
    // A handle that does not sync by default, and one transaction that does.
    let journal2 = Arc::new(Counting {
        inner: untorn::MemoryStorage::new(),
        syncs: Default::default(),
    });
    let db = Database::builder()
        .durability(Durability::None)
        .open_storage(
            Arc::new(untorn::MemoryStorage::new()),
            journal2.clone(),
            true,
        )
        .unwrap();
    let before = journal2.syncs.load(SeqCst);
    let tx = db.begin_write().unwrap();
    tx.create_bucket("b").unwrap();
    tx.commit().unwrap();
    assert_eq!(journal2.syncs.load(SeqCst), before);
    let mut tx = db.begin_write().unwrap();
    tx.set_durability(Durability::Immediate);
    tx.create_bucket("c").unwrap();
    tx.commit().unwrap();
    assert_eq!(journal2.syncs.load(SeqCst), before + 1);
}

#[test]
fn delete_range_removes_pairs_in_bounds_and_keeps_sub_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("dr.untorn")).unwrap();
    db.update(|tx| -> untorn::Result<()> {
        let b = tx.create_bucket("b")?;
        for i in 0..100u32 {
            b.put(format!("k{i:03}"), "v")?;
        }
        b.create_bucket("k050-sub")?;
        assert_eq!(b.delete_range("k010".."k060")?, 50);
        assert_eq!(b.len()?, 50);
        assert!(b.get("k009")?.is_some() && b.get("k060")?.is_some());
        assert!(b.get("k010")?.is_none() && b.get("k059")?.is_none());
        assert!(b.bucket("k050-sub")?.is_some(), "sub-buckets stay");
        assert_eq!(b.delete_range("k090"..)?, 10);
        Ok(())
    })
    .unwrap();
    let n = db.view(|tx| tx.bucket("b")?.expect("b").len()).unwrap();
    assert_eq!(n, 40);
}

#[test]
fn keys_read_from_a_snapshot_are_slices_of_the_page_not_copies() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("k.untorn")).unwrap();
    db.update(|tx| -> untorn::Result<()> {
        let b = tx.create_bucket("b")?;
        for i in 0..1000u32 {
            b.put(format!("key{i:05}"), format!("value{i}"))?;
        }
        Ok(())
    })
    .unwrap();
    db.view(|tx| -> untorn::Result<()> {
        let b = tx.bucket("b")?.unwrap();
        let mut n = 0;
        for pair in b.iter()? {
            let (k, v) = pair?;
            // In a leaf an inline value follows its key: a key that lies right before
            // its value's bytes is the page itself, not a copy.
            assert_eq!(k.as_ptr().wrapping_add(k.len()), v.as_ptr(), "key {k:?}");
            n += 1;
        }
        assert_eq!(n, 1000);
        let mut c = b.cursor();
        let (k, _) = c.seek("key00500")?.unwrap();
        let (k2, _) = c.next()?.unwrap();
        assert_eq!(k, "key00500");
        assert_eq!(k2, "key00501");
        Ok(())
    })
    .unwrap();
}
