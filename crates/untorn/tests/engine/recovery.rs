//! Journal recovery scenarios. Each test names the crash invariant it covers
//! (numbers from docs/crash_safety.md).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use untorn::unstable::format::{record_span, RecordHeader, RECORD_HEADER_SIZE};
use untorn::{CorruptionKind, Database, Durability, Error, MemoryStorage, Storage};

fn open(data: &MemoryStorage, journal: &MemoryStorage) -> untorn::Result<Database> {
    open_with(data, journal, Database::builder())
}

fn open_with(
    data: &MemoryStorage,
    journal: &MemoryStorage,
    b: untorn::Builder,
) -> untorn::Result<Database> {
    b.open_storage(
        Arc::new(data.clone()) as Arc<dyn Storage>,
        Arc::new(journal.clone()) as Arc<dyn Storage>,
        true,
    )
}

/// Simulates a power cut right now: the bytes as they are, no clean close.
fn crash(
    db: Database,
    data: &MemoryStorage,
    journal: &MemoryStorage,
) -> (MemoryStorage, MemoryStorage) {
    let d = MemoryStorage::from_bytes(data.to_vec());
    let j = MemoryStorage::from_bytes(journal.to_vec());
    std::mem::forget(db);
    (d, j)
}

fn put(db: &Database, k: &str, v: &str) {
    db.update(|tx| tx.create_bucket_if_not_exists("b")?.put(k, v))
        .unwrap();
}

fn get(db: &Database, k: &str) -> Option<Vec<u8>> {
    db.view(|tx| -> untorn::Result<_> {
        match tx.bucket("b")? {
            Some(b) => Ok(b.get(k)?.map(|v| v.to_vec())),
            None => Ok(None),
        }
    })
    .unwrap()
}

/// Record start offsets in a journal image.
fn record_offsets(j: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(h) = j
        .get(pos..pos + RECORD_HEADER_SIZE)
        .and_then(RecordHeader::decode)
    {
        out.push(pos as u64);
        pos += record_span(h.body_len) as usize;
    }
    out
}

#[test]
fn j1_acknowledged_commits_survive_a_crash_before_checkpoint() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    for i in 0..10 {
        put(&db, &format!("k{i}"), &format!("v{i}"));
    }
    assert!(
        journal.len().unwrap() > 0,
        "commits are in the journal, not yet home"
    );
    let (d, j) = crash(db, &data, &journal);
    let db = open(&d, &j).unwrap();
    let r = db.recovery_report();
    assert_eq!(r.commits_replayed, 10);
    assert!(r.pages_restored > 0);
    for i in 0..10 {
        assert_eq!(
            get(&db, &format!("k{i}")),
            Some(format!("v{i}").into_bytes())
        );
    }
    assert_eq!(
        j.len().unwrap(),
        0,
        "J4: journal truncated after the recovered meta is synced"
    );
}

#[test]
fn j3_doublewrite_restores_torn_home_pages() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    for i in 0..200 {
        put(&db, &format!("key{i:04}"), &"x".repeat(100));
    }
    let journal_before = journal.to_vec();
    let data_before = data.to_vec();
    db.checkpoint().unwrap();
    // A crash in the middle of the checkpoint: home pages torn (half old, half garbage),
    // meta not advanced, journal not yet truncated.
    let mut home = data.to_vec();
    let ps = 4096;
    for page in 2..(home.len() / ps) {
        for b in &mut home[page * ps + ps / 2..(page + 1) * ps] {
            *b ^= 0x5a;
        }
    }
    // Meta pages as before the checkpoint (the crash came before the meta write).
    home[..2 * ps].copy_from_slice(&data_before[..2 * ps]);
    let d0 = MemoryStorage::from_bytes(home);
    std::mem::forget(db);
    let j0 = MemoryStorage::from_bytes(journal_before);
    let db = open(&d0, &j0).unwrap();
    for i in 0..200 {
        assert_eq!(get(&db, &format!("key{i:04}")).unwrap().len(), 100);
    }
    let report = db.check(Default::default()).unwrap();
    assert!(report.is_ok(), "{:#?}", report.findings);
}

#[test]
fn j5_torn_tail_is_discarded() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    put(&db, "a", "1");
    put(&db, "b", "2");
    let (d, j) = crash(db, &data, &journal);
    let offs = record_offsets(&j.to_vec());
    assert_eq!(offs.len(), 2);
    // The last record's body is half written: a crash before its sync returned.
    let mut bytes = j.to_vec();
    let last = offs[1] as usize;
    bytes.truncate(last + RECORD_HEADER_SIZE + 100);
    let j = MemoryStorage::from_bytes(bytes);
    let db = open(&d, &j).unwrap();
    assert_eq!(get(&db, "a"), Some(b"1".to_vec()));
    assert_eq!(get(&db, "b"), None, "the torn commit is not visible");
    assert!(db.recovery_report().bytes_discarded > 0);
}

#[test]
fn j6_damaged_record_followed_by_valid_ones_is_corruption() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    put(&db, "a", "1");
    put(&db, "b", "2");
    put(&db, "c", "3");
    let (d, j) = crash(db, &data, &journal);
    let mut bytes = j.to_vec();
    let offs = record_offsets(&bytes);
    bytes[offs[1] as usize + RECORD_HEADER_SIZE + 200] ^= 1;
    let j = MemoryStorage::from_bytes(bytes);
    match open(&d, &j) {
        Err(Error::Corrupted {
            kind: CorruptionKind::Journal,
            ..
        }) => {}
        other => panic!("expected journal corruption, got {other:?}"),
    }
}

#[test]
fn j7_recovery_is_idempotent_when_it_crashes() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    for i in 0..50 {
        put(&db, &format!("k{i}"), "v");
    }
    let (d, j) = crash(db, &data, &journal);
    let journal_before = j.to_vec();
    // First recovery runs to the point of writing home pages and the meta...
    let db = open(&d, &j).unwrap();
    std::mem::forget(db);
    // ...and "crashes" before the journal truncation became durable.
    let j2 = MemoryStorage::from_bytes(journal_before);
    let db = open(&d, &j2).unwrap();
    for i in 0..50 {
        assert_eq!(get(&db, &format!("k{i}")), Some(b"v".to_vec()));
    }
    assert_eq!(
        db.recovery_report().commits_replayed,
        0,
        "records already home are skipped"
    );
}

#[test]
fn j8_damaged_newest_meta_falls_back_and_says_so() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    put(&db, "a", "1");
    db.checkpoint().unwrap();
    put(&db, "b", "2");
    db.checkpoint().unwrap();
    drop(db);
    // Find the newest meta slot and tear it.
    let mut bytes = data.to_vec();
    let txid = |slot: usize| {
        u64::from_le_bytes(
            bytes[slot * 4096 + 16..slot * 4096 + 24]
                .try_into()
                .unwrap(),
        )
    };
    let newest = if txid(0) > txid(1) { 0 } else { 1 };
    bytes[newest * 4096 + 3000] ^= 0xff;
    let d = MemoryStorage::from_bytes(bytes);
    // The older meta's tree is intact (copy-on-write), but commits after it are gone
    // because the journal was truncated at the checkpoint: the database opens at the
    // older commit and reports the fallback.
    let db = open_with(&d, &journal, Database::builder().read_only(true)).unwrap();
    let fb = db.info().unwrap().meta_fallback.expect("fallback reported");
    assert!(fb.contains(&format!("slot {newest}")), "{fb}");
    assert_eq!(get(&db, "a"), Some(b"1".to_vec()));
}

#[test]
fn j9_failed_sync_poisons_and_reopen_recovers() {
    #[derive(Clone)]
    struct FailingSync {
        inner: MemoryStorage,
        fail: Arc<AtomicBool>,
    }
    impl Storage for FailingSync {
        fn read_at(&self, o: u64, b: &mut [u8]) -> io::Result<()> {
            self.inner.read_at(o, b)
        }
        fn write_at(&self, o: u64, b: &[u8]) -> io::Result<()> {
            self.inner.write_at(o, b)
        }
        fn sync(&self) -> io::Result<()> {
            if self.fail.load(Ordering::SeqCst) {
                Err(io::Error::other("injected fsync failure"))
            } else {
                Ok(())
            }
        }
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn set_len(&self, l: u64) -> io::Result<()> {
            self.inner.set_len(l)
        }
    }
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let fail = Arc::new(AtomicBool::new(false));
    let js = FailingSync {
        inner: journal.clone(),
        fail: Arc::clone(&fail),
    };
    let db = Database::builder()
        .open_storage(Arc::new(data.clone()), Arc::new(js), true)
        .unwrap();
    put(&db, "a", "1");
    fail.store(true, Ordering::SeqCst);
    let err = db
        .update(|tx| tx.bucket("b")?.unwrap().put("b", "2"))
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert!(db.is_poisoned());
    assert!(matches!(db.begin_write().err(), Some(Error::Poisoned)));
    assert_eq!(get(&db, "a"), Some(b"1".to_vec()), "reads continue");
    std::mem::forget(db);
    let db = open(&data, &journal).unwrap();
    assert_eq!(get(&db, "a"), Some(b"1".to_vec()));
    put(&db, "c", "3");
}

#[test]
fn j10_durability_none_recovers_a_prefix() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open_with(
        &data,
        &journal,
        Database::builder().durability(Durability::None),
    )
    .unwrap();
    for i in 0..20 {
        put(&db, &format!("k{i:02}"), "v");
    }
    let (d, j) = crash(db, &data, &journal);
    // Lose the last 3 records as an unsynced cache would, and garble a middle one that
    // was never synced either.
    let mut bytes = j.to_vec();
    let offs = record_offsets(&bytes);
    bytes.truncate(offs[17] as usize);
    bytes[offs[12] as usize + 700] ^= 0x10;
    let db = open(&d, &MemoryStorage::from_bytes(bytes)).unwrap();
    for i in 0..20 {
        let present = get(&db, &format!("k{i:02}")).is_some();
        assert_eq!(
            present,
            i < 12,
            "prefix up to the first damaged unsynced record; k{i}"
        );
    }
}

#[test]
fn j11_interrupted_initialisation_is_redone() {
    let data = MemoryStorage::from_bytes(vec![0u8; 3000]);
    let journal = MemoryStorage::new();
    let db = open(&data, &journal).unwrap();
    put(&db, "a", "1");
    assert_eq!(get(&db, "a"), Some(b"1".to_vec()));
}

#[test]
fn j12_reused_journal_space_never_replays_an_older_generation() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    // A generation of many records, made redundant by a checkpoint...
    for i in 0..40 {
        put(&db, &format!("old{i:02}"), &"o".repeat(500));
    }
    db.checkpoint().unwrap();
    let allocated = journal.len().unwrap();
    assert!(allocated > 0, "the journal keeps its allocated space");
    // ...then one short record at the start of the same space, then a crash.
    db.update(|tx| tx.bucket("b")?.unwrap().delete("old00").map(|_| ()))
        .unwrap();
    put(&db, "new", "1");
    assert_eq!(journal.len().unwrap(), allocated, "space reused, not grown");
    let (d, j) = crash(db, &data, &journal);
    let db = open(&d, &j).unwrap();
    let r = db.recovery_report();
    assert_eq!(r.commits_replayed, 2, "only the new generation's records");
    assert_eq!(
        r.bytes_discarded, 0,
        "older records are the clean end, not a torn tail"
    );
    assert_eq!(get(&db, "old00"), None);
    assert_eq!(get(&db, "old01").map(|v| v.len()), Some(500));
    assert_eq!(get(&db, "new"), Some(b"1".to_vec()));
    assert!(db.check(Default::default()).unwrap().is_ok());
}

#[test]
fn j11_creation_that_wrote_one_meta_slot_is_completed() {
    // A crash after slot 0 was written, before slot 1: the file is one page long.
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    drop(open(&data, &journal).unwrap());
    let one_page = data.to_vec()[..4096].to_vec();
    let d = MemoryStorage::from_bytes(one_page);
    let db = open(&d, &MemoryStorage::new()).unwrap();
    put(&db, "a", "1");
    let report = db.check(Default::default()).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert!(d.len().unwrap() >= 2 * 4096);
}

#[test]
fn both_metas_destroyed_is_corruption_not_a_foreign_file() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    for i in 0..100 {
        put(&db, &format!("k{i:03}"), "v");
    }
    drop(db);
    let mut bytes = data.to_vec();
    bytes[..2 * 4096].fill(0xAB);
    let err = open(&MemoryStorage::from_bytes(bytes), &MemoryStorage::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupted {
                kind: CorruptionKind::Meta,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("salvage"), "{err}");
}
