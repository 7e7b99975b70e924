//! Hot backup (`backup_to`, `ReadTx::copy_to`) and compaction (`compact_to`): the copy is
//! a complete database that checks clean and holds exactly the snapshot it was taken
//! from, while writers keep committing; a fragmented file shrinks to its live size.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use untorn::{Database, ReadTx};

/// Everything a snapshot holds: per bucket path, its sequence and its key/value pairs.
type Contents = BTreeMap<Vec<Vec<u8>>, (u64, BTreeMap<Vec<u8>, Vec<u8>>)>;

fn contents(tx: &ReadTx<'_>) -> Contents {
    let mut out = Contents::new();
    let mut todo: Vec<(Vec<Vec<u8>>, untorn::Bucket<'_>)> = Vec::new();
    for b in tx.iter_buckets().unwrap() {
        let (name, b) = b.unwrap();
        todo.push((vec![name.to_vec()], b));
    }
    while let Some((path, b)) = todo.pop() {
        let mut pairs = BTreeMap::new();
        for kv in b.iter().unwrap() {
            let (k, v) = kv.unwrap();
            pairs.insert(k.to_vec(), v.to_vec());
        }
        assert_eq!(b.len().unwrap(), pairs.len() as u64, "count of {path:?}");
        for sub in b.iter_buckets().unwrap() {
            let (name, sub) = sub.unwrap();
            let mut p = path.clone();
            p.push(name.to_vec());
            todo.push((p, sub));
        }
        out.insert(path, (b.sequence().unwrap(), pairs));
    }
    out
}

fn value(i: u64, len: usize) -> Vec<u8> {
    let mut v = format!("value-{i:08}-").into_bytes();
    while v.len() < len {
        v.push(b'a' + (v.len() % 26) as u8);
    }
    v.truncate(len);
    v
}

/// Buckets (one nested, one empty), inline and overflow values, sequences.
fn populate(db: &Database, n: u64) {
    db.update(|tx| -> untorn::Result<()> {
        let users = tx.create_bucket_if_not_exists("users")?;
        let logins = users.create_bucket_if_not_exists("logins")?;
        let blobs = tx.create_bucket_if_not_exists("blobs")?;
        tx.create_bucket_if_not_exists("empty")?;
        for i in 0..n {
            users.put(format!("user-{i:06}"), value(i, 40 + (i % 60) as usize))?;
            if i % 7 == 0 {
                logins.put(logins.next_sequence()?.to_be_bytes(), value(i, 12))?;
            }
            if i % 97 == 0 {
                blobs.put(
                    format!("blob-{i}"),
                    value(i, 3000 + (i as usize * 37) % 20_000),
                )?;
            }
        }
        users.set_sequence(77)?;
        Ok(())
    })
    .unwrap();
}

fn assert_checks_clean(db: &Database) {
    let report = db.check(Default::default()).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn backup_is_a_complete_database_equal_to_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.untorn");
    let dst = dir.path().join("backup.untorn");
    let db = Database::create(&src).unwrap();
    populate(&db, 5_000);
    let stats = db.backup_to(&dst).unwrap();
    let (want, txid) = {
        let tx = db.begin_read().unwrap();
        (contents(&tx), tx.txid())
    };
    assert_eq!(stats.txid, txid);
    assert_eq!(
        stats.keys,
        5_000 + 5_000_u64.div_ceil(7) + 5_000_u64.div_ceil(97)
    );
    assert_eq!(stats.buckets, 4);
    assert_eq!(std::fs::metadata(&dst).unwrap().len(), stats.bytes);
    // No journal and no temporary file is left beside the copy.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("backup.untorn.")),
        "{names:?}"
    );
    // The copy opens read-only without a journal, and read-write.
    {
        let ro = Database::builder().read_only(true).open(&dst).unwrap();
        assert_eq!(contents(&ro.begin_read().unwrap()), want);
        assert_eq!(ro.begin_read().unwrap().txid(), txid);
        assert_checks_clean(&ro);
    }
    let copy = Database::open(&dst).unwrap();
    assert_eq!(contents(&copy.begin_read().unwrap()), want);
    assert_checks_clean(&copy);
    assert_ne!(
        copy.info().unwrap().database_id,
        db.info().unwrap().database_id,
        "a copy is a database of its own"
    );
    // It takes writes like any database; bucket ids and sequences went along.
    copy.update(|tx| -> untorn::Result<()> {
        let users = tx.bucket("users")?.unwrap();
        assert_eq!(users.next_sequence()?, 78);
        users.put("zzz", "new")?;
        tx.create_bucket("later")?.put("k", "v")?;
        Ok(())
    })
    .unwrap();
    assert_checks_clean(&copy);
    drop(copy);
    let copy = Database::open(&dst).unwrap();
    assert_checks_clean(&copy);
    // A second backup never replaces a file.
    let again = db.backup_to(&dst);
    assert!(
        matches!(&again, Err(untorn::Error::File { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists),
        "{again:?}"
    );
}

#[test]
fn copy_to_a_writer_gives_an_image_that_opens_on_any_storage() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    populate(&db, 800);
    let tx = db.begin_read().unwrap();
    let want = contents(&tx);
    let mut image = std::io::Cursor::new(Vec::new());
    let stats = tx.copy_to(&mut image).unwrap();
    let image = image.into_inner();
    assert_eq!(image.len() as u64, stats.bytes);
    let copy = Database::builder()
        .open_storage(
            Arc::new(untorn::MemoryStorage::from_bytes(image)),
            Arc::new(untorn::MemoryStorage::new()),
            false,
        )
        .unwrap();
    assert_eq!(contents(&copy.begin_read().unwrap()), want);
    assert_checks_clean(&copy);
}

#[test]
fn empty_database_copies_to_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let stats = db.backup_to(dir.path().join("copy")).unwrap();
    assert_eq!((stats.keys, stats.buckets, stats.pages), (0, 0, 2));
    let copy = Database::open(dir.path().join("copy")).unwrap();
    assert!(copy.begin_read().unwrap().buckets().unwrap().is_empty());
    assert_checks_clean(&copy);
    copy.update(|tx| tx.create_bucket("b")?.put("k", "v"))
        .unwrap();
    assert_checks_clean(&copy);
}

#[test]
fn backup_under_concurrent_writes_is_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Database::builder()
            .durability(untorn::Durability::None)
            .checkpoint_threshold_bytes(256 << 10)
            .create(dir.path().join("db"))
            .unwrap(),
    );
    populate(&db, 3_000);
    let stop = Arc::new(AtomicBool::new(false));
    // Commit i writes key i, rewrites a hot range, deletes a key and sets `last` to i:
    // a consistent snapshot at `last` = n holds exactly keys 0..=n.
    let writer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) || i < 50 {
                db.update(|tx| -> untorn::Result<()> {
                    let b = tx.create_bucket_if_not_exists("log")?;
                    b.put(i.to_be_bytes(), value(i, 100))?;
                    b.put("last", i.to_be_bytes())?;
                    let users = tx.bucket("users")?.unwrap();
                    for j in 0..20 {
                        users.put(
                            format!("user-{:06}", (i * 20 + j) % 3_000),
                            format!("commit-{i:08}"),
                        )?;
                    }
                    Ok(())
                })
                .unwrap();
                i += 1;
            }
            i
        })
    };
    for round in 0..4 {
        while db.begin_read().unwrap().bucket("log").unwrap().is_none() {
            std::thread::yield_now();
        }
        let dst = dir.path().join(format!("backup-{round}"));
        let stats = db.backup_to(&dst).unwrap();
        let copy = Database::builder().read_only(true).open(&dst).unwrap();
        assert_checks_clean(&copy);
        let tx = copy.begin_read().unwrap();
        assert_eq!(tx.txid(), stats.txid);
        let log = tx.bucket("log").unwrap().unwrap();
        let last = u64::from_be_bytes(log.get("last").unwrap().unwrap()[..].try_into().unwrap());
        assert_eq!(log.len().unwrap(), last + 2, "keys 0..={last} and `last`");
        for i in 0..=last {
            assert_eq!(
                log.get(i.to_be_bytes()).unwrap().as_deref(),
                Some(&value(i, 100)[..])
            );
        }
        // Commit `last`'s rewrites are all there, and no later commit's.
        let users = tx.bucket("users").unwrap().unwrap();
        assert_eq!(users.len().unwrap(), 3_000);
        for j in 0..20 {
            let k = format!("user-{:06}", (last * 20 + j) % 3_000);
            let want = format!("commit-{last:08}");
            assert_eq!(users.get(&k).unwrap().as_deref(), Some(want.as_bytes()));
        }
        for kv in users.iter().unwrap() {
            let (_, v) = kv.unwrap();
            if let Some(n) = v.strip_prefix(b"commit-") {
                let n: u64 = std::str::from_utf8(n).unwrap().parse().unwrap();
                assert!(n <= last, "a value of commit {n} in a snapshot at {last}");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let commits = writer.join().unwrap();
    assert!(commits >= 50);
    assert_checks_clean(&db);
}

#[test]
fn compact_keeps_contents_and_shrinks_a_fragmented_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("frag");
    let db = Database::create(&src).unwrap();
    // Random-order inserts leave half-full leaves; a long-lived reader while every
    // value is rewritten grows the file; deleting most keys leaves it mostly free.
    let n = 40_000u64;
    let order: Vec<u64> = (0..n).map(|i| (i * 7_919) % n).collect();
    for chunk in order.chunks(2_000) {
        db.update(|tx| -> untorn::Result<()> {
            let b = tx.create_bucket_if_not_exists("kv")?;
            for &i in chunk {
                b.put(format!("key-{i:08}"), value(i, 50))?;
            }
            Ok(())
        })
        .unwrap();
    }
    {
        let _pin = db.begin_read().unwrap();
        for chunk in order.chunks(4_000) {
            db.update(|tx| -> untorn::Result<()> {
                let b = tx.bucket("kv")?.unwrap();
                for &i in chunk {
                    b.put(format!("key-{i:08}"), value(i + 1, 50))?;
                }
                Ok(())
            })
            .unwrap();
        }
    }
    db.update(|tx| -> untorn::Result<()> {
        let b = tx.bucket("kv")?.unwrap();
        for i in 0..n {
            if i % 10 != 0 {
                b.delete(format!("key-{i:08}"))?;
            }
        }
        Ok(())
    })
    .unwrap();
    db.checkpoint().unwrap();
    let want = contents(&db.begin_read().unwrap());
    let live_bytes: u64 = want
        .values()
        .flat_map(|(_, kv)| kv.iter())
        .map(|(k, v)| (k.len() + v.len() + 16) as u64)
        .sum();
    let dst = dir.path().join("compact");
    let c = db.compact_to(&dst).unwrap();
    assert_eq!(c.bytes_before, std::fs::metadata(&src).unwrap().len());
    assert_eq!(c.bytes_after, std::fs::metadata(&dst).unwrap().len());
    assert!(
        c.bytes_after * 10 < c.bytes_before,
        "{} -> {} bytes",
        c.bytes_before,
        c.bytes_after
    );
    // About the live size: leaves filled close to 100%, a few pages of branches.
    assert!(
        c.copy.leaf_fill() > 0.95,
        "leaf fill {}",
        c.copy.leaf_fill()
    );
    assert!(
        c.bytes_after < live_bytes * 11 / 10 + 16 * 4096,
        "{} bytes for {live_bytes} live",
        c.bytes_after
    );
    let copy = Database::open(&dst).unwrap();
    assert_eq!(contents(&copy.begin_read().unwrap()), want);
    assert_checks_clean(&copy);
    let stats = copy.stats().unwrap();
    eprintln!(
        "fragmented {} bytes (live {live_bytes}) -> compacted {} bytes, leaf fill {:.3}; {stats:?}",
        c.bytes_before,
        c.bytes_after,
        c.copy.leaf_fill()
    );
}

#[test]
fn large_keys_and_deep_trees_copy_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    db.update(|tx| -> untorn::Result<()> {
        let b = tx.create_bucket("big")?;
        // Keys larger than a page make multi-page leaves and branches.
        for i in 0..40u64 {
            let mut k = vec![b'k'; 5_000 + i as usize * 300];
            k.extend_from_slice(&i.to_be_bytes());
            b.put(&k, value(i, 10))?;
        }
        // Many small keys make a tree of three levels or more.
        let s = tx.create_bucket("small")?;
        for i in 0..60_000u64 {
            s.put(i.to_be_bytes(), b"")?;
        }
        // Deep nesting.
        let mut cur = tx.create_bucket("nest")?;
        for d in 0..40 {
            cur.put("depth", [d as u8])?;
            cur = cur.create_bucket(format!("level-{d}"))?;
        }
        Ok(())
    })
    .unwrap();
    let want = contents(&db.begin_read().unwrap());
    db.backup_to(dir.path().join("copy")).unwrap();
    let copy = Database::open(dir.path().join("copy")).unwrap();
    assert_eq!(contents(&copy.begin_read().unwrap()), want);
    assert_checks_clean(&copy);
}

#[test]
fn copy_of_a_read_only_handle_includes_commits_only_in_the_journal() {
    let mem = crate::common::MemDb::new();
    let db = mem.open_default();
    populate(&db, 500);
    db.checkpoint().unwrap();
    for i in 0..5u64 {
        db.update(|tx| tx.bucket("users")?.unwrap().put(format!("late-{i}"), "j"))
            .unwrap();
    }
    let want = contents(&db.begin_read().unwrap());
    assert!(db.info().unwrap().journal_commits >= 5);
    // No clean close: the last commits exist only in the journal.
    std::mem::forget(db);
    let ro = mem.open(Database::builder().read_only(true)).unwrap();
    let mut image = std::io::Cursor::new(Vec::new());
    ro.begin_read().unwrap().copy_to(&mut image).unwrap();
    let copy = Database::builder()
        .open_storage(
            Arc::new(untorn::MemoryStorage::from_bytes(image.into_inner())),
            Arc::new(untorn::MemoryStorage::new()),
            false,
        )
        .unwrap();
    assert_eq!(contents(&copy.begin_read().unwrap()), want);
    assert_checks_clean(&copy);
}
