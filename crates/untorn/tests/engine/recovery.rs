//! Journal recovery scenarios. Each test names the crash invariant it covers
//! (numbers from docs/crash_safety.md).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use untorn::unstable::format::{RecordHeader, RecordKind, RECORD_HEADER_SIZE};
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

/// Start offsets of the commit records of the generation at the start of a journal image.
pub fn record_offsets(j: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut salt = None;
    while let Some(h) = j
        .get(pos..pos + RECORD_HEADER_SIZE)
        .and_then(RecordHeader::decode)
    {
        if *salt.get_or_insert(h.salt) != h.salt {
            break;
        }
        if h.kind == RecordKind::Commit {
            out.push(pos as u64);
        }
        pos += h.record_len() as usize;
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
    // J4: the recovered state is home and the journal starts a new generation: a
    // second crash replays nothing.
    let (d, j) = crash(db, &d, &j);
    let db = open(&d, &j).unwrap();
    assert_eq!(db.recovery_report().commits_replayed, 0);
    assert_eq!(get(&db, "k9"), Some(b"v9".to_vec()));
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
    // The trailer of the second record is damaged too: the record is not recognisable
    // as complete, but the third record shows it had been synced.
    bytes[offs[1] as usize + RECORD_HEADER_SIZE + 200] ^= 1;
    let trailer = offs[2] as usize - RECORD_HEADER_SIZE;
    bytes[trailer + 100] ^= 1;
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
fn j21_a_complete_record_that_fails_its_checksum_is_reported_never_cut() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    put(&db, "a", "1");
    put(&db, "b", "2");
    put(&db, "c", "3");
    let (d, j) = crash(db, &data, &journal);
    let mut bytes = j.to_vec();
    let offs = record_offsets(&bytes);
    // A bit flipped at rest in the last record's images.
    let at = body_offset(&bytes, offs[2]) + 300;
    bytes[at] ^= 1;
    let j = MemoryStorage::from_bytes(bytes.clone());
    match open(&d, &j) {
        Err(Error::JournalRecordDamaged {
            txid,
            acknowledged: false,
            later_records: 0,
            ..
        }) => assert_eq!(txid, 3),
        other => panic!("expected JournalRecordDamaged, got {other:?}"),
    }
    assert_eq!(j.to_vec(), bytes, "nothing was truncated");
    // A read-only open serves the state before it and says so.
    let ro = open_with(&d, &j, Database::builder().read_only(true)).unwrap();
    let damaged = ro.recovery_report().damaged_record.expect("reported");
    assert_eq!((damaged.txid, damaged.complete), (3, true));
    assert_eq!(get(&ro, "b"), Some(b"2".to_vec()));
    assert_eq!(get(&ro, "c"), None);
    drop(ro);
    // The way out is an explicit rollback, which says what it discards.
    let db = open_with(
        &d,
        &j,
        Database::builder().recovery(untorn::Recovery::RollbackToLastGood),
    )
    .unwrap();
    let rb = db.recovery_report().rollback.expect("rollback reported");
    assert_eq!((rb.to_txid, rb.discarded_txids.clone()), (2, vec![3]));
    assert_eq!(get(&db, "b"), Some(b"2".to_vec()));
    put(&db, "d", "4");
    drop(db);
    let db = open(&d, &j).unwrap();
    assert_eq!(get(&db, "d"), Some(b"4".to_vec()));
    assert_eq!(get(&db, "c"), None);
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

/// Where the images of the record at `offset` start.
pub fn body_offset(j: &[u8], offset: u64) -> usize {
    let at = offset as usize;
    let h = RecordHeader::decode(&j[at..at + RECORD_HEADER_SIZE]).unwrap();
    at + RECORD_HEADER_SIZE + h.aux_padded_len() as usize
}

/// The slot holding the newest meta of a data file image (by the header's txid, then the
/// meta sequence).
fn newest_slot(bytes: &[u8]) -> usize {
    let field = |slot: usize, off: usize| {
        u64::from_le_bytes(
            bytes[slot * 4096 + off..slot * 4096 + off + 8]
                .try_into()
                .unwrap(),
        )
    };
    if (field(1, 16), field(1, 136)) > (field(0, 16), field(0, 136)) {
        1
    } else {
        0
    }
}

#[test]
fn j8_damaged_newest_meta_is_restored_from_the_journal_marker() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    put(&db, "a", "1");
    db.checkpoint().unwrap();
    put(&db, "b", "2");
    db.checkpoint().unwrap();
    drop(db);
    let mut bytes = data.to_vec();
    let newest = newest_slot(&bytes);
    bytes[newest * 4096 + 3000] ^= 0xff;
    let d = MemoryStorage::from_bytes(bytes);
    // The journal's generation marker carries the newest meta: nothing is lost.
    let db = open_with(&d, &journal, Database::builder().read_only(true)).unwrap();
    let fb = db.info().unwrap().meta_fallback.expect("fallback reported");
    assert!(fb.contains(&format!("slot {newest}")), "{fb}");
    assert!(db.recovery_report().meta_restored.is_some());
    assert_eq!(get(&db, "a"), Some(b"1".to_vec()));
    assert_eq!(get(&db, "b"), Some(b"2".to_vec()));
    drop(db);
    // A read-write open rewrites the slot; both verify afterwards.
    let db = open(&d, &journal).unwrap();
    assert_eq!(get(&db, "b"), Some(b"2".to_vec()));
    let report = db.check(Default::default()).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn j16_damaged_meta_without_evidence_is_refused_and_rollback_says_what_it_discards() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    put(&db, "a", "1");
    db.checkpoint().unwrap();
    put(&db, "b", "2");
    db.checkpoint().unwrap();
    drop(db);
    let mut bytes = data.to_vec();
    let newest = newest_slot(&bytes);
    bytes[newest * 4096 + 48] ^= 0x01;
    let d = MemoryStorage::from_bytes(bytes);
    // The journal is gone: nothing proves the damaged slot older.
    let err = open(&d, &MemoryStorage::new()).unwrap_err();
    match &err {
        Error::MetaDamaged { slot, .. } => assert_eq!(*slot as usize, newest),
        other => panic!("expected MetaDamaged, got {other:?}"),
    }
    let db = open_with(
        &d,
        &MemoryStorage::new(),
        Database::builder().recovery(untorn::Recovery::RollbackToLastGood),
    )
    .unwrap();
    let rb = db.recovery_report().rollback.expect("reported");
    assert_eq!(rb.damaged_slot, Some(newest as u64));
    assert!(rb.discarded_unknown_after.is_some());
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
    // Every sync fails, so the revocation cannot be made durable either: the only
    // case in which the outcome is unknown, and it says so.
    assert!(
        matches!(err, Error::CommitOutcomeUnknown { txid: 2, .. }),
        "{err:?}"
    );
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
    let at = body_offset(&bytes, offs[12]) + 100;
    bytes[at] ^= 0x10;
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
fn j11_a_small_foreign_file_is_never_reinitialised() {
    // A file of at most two pages with no journal is redone only when it is blank or
    // carries untorn's magic: another format's small file is refused and left as it was.
    let foreign: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8 + 1).collect();
    let data = MemoryStorage::from_bytes(foreign.clone());
    let err = open(&data, &MemoryStorage::new()).unwrap_err();
    assert!(matches!(err, Error::NotADatabase(_)), "{err:?}");
    assert_eq!(data.to_vec(), foreign, "the foreign file is untouched");
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
fn j11_creation_that_wrote_one_meta_slot_is_redone() {
    // A crash after slot 0 of a new database was written, before slot 1: one page, in
    // state `creating`, and no journal. Nothing was ever acknowledged.
    let page = untorn::unstable::format::Meta::initial(
        4096,
        untorn::unstable::format::DbId([5; 16]),
        0,
        9,
    )
    .encode()
    .unwrap();
    let d = MemoryStorage::from_bytes(page);
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

/// A journal storage that injects faults on demand: ENOSPC past a capacity, EIO on the
/// n-th write from now, EIO on syncs.
#[derive(Clone)]
struct Faulty {
    inner: MemoryStorage,
    capacity: Arc<std::sync::atomic::AtomicU64>,
    writes_until_eio: Arc<std::sync::atomic::AtomicU64>,
    failing_syncs: Arc<std::sync::atomic::AtomicU64>,
    /// Bytes written so far.
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl Faulty {
    fn new(inner: MemoryStorage) -> Faulty {
        use std::sync::atomic::AtomicU64;
        Faulty {
            inner,
            capacity: Arc::new(AtomicU64::new(u64::MAX)),
            writes_until_eio: Arc::new(AtomicU64::new(u64::MAX)),
            failing_syncs: Arc::new(AtomicU64::new(0)),
            written: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Storage for Faulty {
    fn read_at(&self, o: u64, b: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(o, b)
    }
    fn write_at(&self, o: u64, b: &[u8]) -> io::Result<()> {
        if o + b.len() as u64 > self.capacity.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28));
        }
        let n = self.writes_until_eio.load(Ordering::SeqCst);
        if n != u64::MAX {
            self.writes_until_eio
                .store(n.saturating_sub(1), Ordering::SeqCst);
            if n == 0 {
                self.writes_until_eio.store(u64::MAX, Ordering::SeqCst);
                return Err(io::Error::other("injected write EIO"));
            }
        }
        self.written.fetch_add(b.len() as u64, Ordering::SeqCst);
        self.inner.write_at(o, b)
    }
    fn sync(&self) -> io::Result<()> {
        let n = self.failing_syncs.load(Ordering::SeqCst);
        if n > 0 {
            self.failing_syncs.store(n - 1, Ordering::SeqCst);
            return Err(io::Error::other("injected fsync failure"));
        }
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, l: u64) -> io::Result<()> {
        if l > self.capacity.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28));
        }
        self.inner.set_len(l)
    }
}

fn open_faulty(data: &MemoryStorage, j: &Faulty) -> Database {
    Database::builder()
        .open_storage(Arc::new(data.clone()), Arc::new(j.clone()), true)
        .unwrap()
}

fn try_put(db: &Database, k: &str, v: &str) -> untorn::Result<()> {
    db.update(|tx| tx.create_bucket_if_not_exists("b")?.put(k, v))
}

#[test]
fn j13_a_failed_commit_is_never_replayed() {
    // Issue 9, case 3: ENOSPC while the journal grows. The failed commit is not visible
    // after a reopen, every acknowledged one is, and the handle stays usable.
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let j = Faulty::new(journal.clone());
    let db = open_faulty(&data, &j);
    put(&db, "before", "1");
    j.capacity
        .store(journal.len().unwrap() + 24 * 1024, Ordering::SeqCst);
    let big = "x".repeat(3000);
    let mut acked = Vec::new();
    let mut failed = None;
    for i in 0..2000 {
        let k = format!("k{i:04}");
        match try_put(&db, &k, &big) {
            Ok(()) => acked.push(k),
            Err(e) => {
                assert!(matches!(e, Error::NoSpace), "{e:?}");
                failed = Some(k);
                break;
            }
        }
    }
    let failed = failed.expect("the journal filled up");
    assert!(
        !db.is_poisoned(),
        "an error before the header leaves the handle usable"
    );
    let (d, jj) = crash(db, &data, &journal);
    let db = open(&d, &jj).unwrap();
    assert_eq!(get(&db, &failed), None, "the failed commit is not durable");
    for k in &acked {
        assert!(get(&db, k).is_some(), "{k} acknowledged");
    }
}

#[test]
fn j14_eio_before_the_header_fails_cleanly_and_the_handle_stays_usable() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let j = Faulty::new(journal.clone());
    let db = open_faulty(&data, &j);
    put(&db, "a", "1");
    // The first write of the next commit (its aux, body and trailer) fails.
    j.writes_until_eio.store(0, Ordering::SeqCst);
    let err = try_put(&db, "b", "2").unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert!(!db.is_poisoned());
    put(&db, "c", "3");
    let (d, jj) = crash(db, &data, &journal);
    let db = open(&d, &jj).unwrap();
    assert_eq!(get(&db, "b"), None);
    assert_eq!(get(&db, "c"), Some(b"3".to_vec()));
}

#[test]
fn j15_a_failed_header_write_or_sync_is_revoked_and_never_replayed() {
    for fault in ["header", "sync"] {
        let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
        let j = Faulty::new(journal.clone());
        let db = open_faulty(&data, &j);
        put(&db, "a", "1");
        match fault {
            // The second write of a small commit is its header.
            "header" => j.writes_until_eio.store(1, Ordering::SeqCst),
            // The sync fails once (its writes reached the file anyway); the revocation's
            // sync succeeds.
            _ => j.failing_syncs.store(1, Ordering::SeqCst),
        }
        let err = try_put(&db, "b", "2").unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{fault}: {err:?}");
        assert!(db.is_poisoned(), "{fault}");
        let (d, jj) = crash(db, &data, &journal);
        let db = open(&d, &jj).unwrap();
        assert_eq!(
            get(&db, "b"),
            None,
            "{fault}: the failed commit was revoked"
        );
        assert_eq!(get(&db, "a"), Some(b"1".to_vec()));
        if fault == "sync" {
            assert_eq!(db.recovery_report().revoked_txid, Some(2));
        }
    }
}

#[test]
fn j19_after_a_clean_close_a_missing_journal_loses_nothing() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let db = open(&data, &journal).unwrap();
    put(&db, "a", "1");
    drop(db);
    // A clean close leaves the journal at its marker: nothing in it is needed.
    assert_eq!(journal.len().unwrap(), RECORD_HEADER_SIZE as u64);
    let db = open(&data, &MemoryStorage::new()).unwrap();
    assert_eq!(get(&db, "a"), Some(b"1".to_vec()));
    assert!(
        db.recovery_report()
            .warnings
            .iter()
            .any(|w| w.contains("closed cleanly")),
        "{:?}",
        db.recovery_report()
    );
}

// ---- J25: large commits straight home --------------------------------------------------

/// The threshold the J25 tests open with: four 4 KiB pages.
const DIRECT_HOME_THRESHOLD: u64 = 16 * 1024;

fn open_direct(data: &Faulty, journal: &Faulty) -> untorn::Result<Database> {
    Database::builder()
        .page_size(4096)
        .direct_home_threshold_bytes(DIRECT_HOME_THRESHOLD)
        .open_storage(Arc::new(data.clone()), Arc::new(journal.clone()), true)
}

/// A commit of 100 keys with 2000-byte values: about 50 pages of images.
fn large_commit(db: &Database) -> untorn::Result<()> {
    db.update(|tx| {
        let b = tx.create_bucket_if_not_exists("b")?;
        for i in 0..100 {
            b.put(format!("large{i:03}"), "y".repeat(2000))?;
        }
        Ok::<_, Error>(())
    })
}

fn large_present(db: &Database) -> bool {
    let n = (0..100)
        .filter(|i| get(db, &format!("large{i:03}")) == Some("y".repeat(2000).into_bytes()))
        .count();
    assert!(
        n == 0 || n == 100,
        "a partial large commit: {n} of 100 keys"
    );
    n == 100
}

fn assert_clean(db: &Database) {
    let report = db.check(untorn::CheckOptions::default()).unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn j25_a_large_commit_writes_its_pages_once_and_recovers_from_the_data_file() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let (d, j) = (Faulty::new(data.clone()), Faulty::new(journal.clone()));
    let db = open_direct(&d, &j).unwrap();
    put(&db, "small", "1");
    assert_eq!(
        db.info().unwrap().direct_home_commits,
        0,
        "below the threshold"
    );
    let (data0, journal0) = (
        d.written.load(Ordering::SeqCst),
        j.written.load(Ordering::SeqCst),
    );
    large_commit(&db).unwrap();
    let info = db.info().unwrap();
    assert_eq!(info.direct_home_commits, 1);
    let direct_bytes = info.direct_home_pages * 4096;
    assert!(info.direct_home_pages >= 40, "{info:?}");
    // The pages went home, and the journal got the record, not the pages.
    assert!(d.written.load(Ordering::SeqCst) - data0 >= direct_bytes);
    let journaled = j.written.load(Ordering::SeqCst) - journal0;
    assert!(
        journaled < direct_bytes / 4,
        "journal grew by {journaled} bytes"
    );
    // A power cut now: recovery verifies the direct extents against the data file.
    let (cd, cj) = crash_copy(&data, &journal);
    let db2 = open(&cd, &cj).unwrap();
    assert_eq!(db2.recovery_report().commits_replayed, 2);
    assert!(large_present(&db2));
    assert_eq!(get(&db2, "small"), Some(b"1".to_vec()));
    assert_clean(&db2);
    drop(db2);
    // The checkpoint does not write them again.
    let before = d.written.load(Ordering::SeqCst);
    db.checkpoint().unwrap();
    let checkpointed = d.written.load(Ordering::SeqCst) - before;
    assert!(
        checkpointed < direct_bytes / 4,
        "the checkpoint wrote {checkpointed} bytes home"
    );
    assert!(large_present(&db));
    assert_clean(&db);
    let (cd, cj) = crash(db, &data, &journal);
    let db = open(&cd, &cj).unwrap();
    assert!(large_present(&db));
    assert_clean(&db);
}

/// The bytes as they are now (a power cut), leaving the handle running.
fn crash_copy(data: &MemoryStorage, journal: &MemoryStorage) -> (MemoryStorage, MemoryStorage) {
    (
        MemoryStorage::from_bytes(data.to_vec()),
        MemoryStorage::from_bytes(journal.to_vec()),
    )
}

#[test]
fn j25_a_lost_direct_write_is_refused_and_reported_never_dropped() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let (d, j) = (Faulty::new(data.clone()), Faulty::new(journal.clone()));
    let db = open_direct(&d, &j).unwrap();
    put(&db, "small", "1");
    let high_water = db.info().unwrap().high_water;
    large_commit(&db).unwrap();
    let txid = db.info().unwrap().txid;
    assert_eq!(db.info().unwrap().direct_home_commits, 1);
    let (cd, cj) = crash(db, &data, &journal);
    // The first page past the old high-water mark is a direct page: its write was lost.
    let mut bytes = cd.to_vec();
    let at = (high_water * 4096) as usize;
    bytes[at..at + 4096].fill(0);
    let cd = MemoryStorage::from_bytes(bytes);
    match open(&cd, &cj) {
        Err(Error::JournalRecordDamaged { txid: t, .. }) => assert_eq!(t, txid),
        other => panic!("expected JournalRecordDamaged, got {other:?}"),
    }
    let ro = open_with(&cd, &cj, Database::builder().read_only(true)).unwrap();
    let damaged = ro.recovery_report().damaged_record.expect("reported");
    assert_eq!((damaged.txid, damaged.complete), (txid, true));
    assert!(
        damaged.detail.contains("direct extent"),
        "{}",
        damaged.detail
    );
    drop(ro);
    let db = open_with(
        &cd,
        &cj,
        Database::builder().recovery(untorn::Recovery::RollbackToLastGood),
    )
    .unwrap();
    let rb = db.recovery_report().rollback.expect("rollback reported");
    assert_eq!(rb.discarded_txids, vec![txid]);
    assert!(!large_present(&db));
    assert_eq!(get(&db, "small"), Some(b"1".to_vec()));
    assert_clean(&db);
}

#[test]
fn j25_a_failed_direct_write_fails_the_commit_and_a_failed_data_sync_poisons() {
    let (data, journal) = (MemoryStorage::new(), MemoryStorage::new());
    let (d, j) = (Faulty::new(data.clone()), Faulty::new(journal.clone()));
    let db = open_direct(&d, &j).unwrap();
    put(&db, "small", "1");
    // EIO on a direct write: nothing replayable was written, the handle stays usable.
    d.writes_until_eio.store(0, Ordering::SeqCst);
    assert!(large_commit(&db).is_err());
    assert!(!db.is_poisoned());
    assert!(!large_present(&db));
    put(&db, "after", "2");
    let (cd, cj) = crash_copy(&data, &journal);
    let db2 = open(&cd, &cj).unwrap();
    assert!(!large_present(&db2));
    assert_eq!(get(&db2, "after"), Some(b"2".to_vec()));
    assert_clean(&db2);
    drop(db2);
    // The data file's sync fails: no retry, the handle is poisoned, the commit is not
    // visible after a reopen.
    d.failing_syncs.store(1, Ordering::SeqCst);
    assert!(large_commit(&db).is_err());
    assert!(db.is_poisoned());
    let (cd, cj) = crash(db, &data, &journal);
    let db = open(&cd, &cj).unwrap();
    assert!(!large_present(&db));
    assert_eq!(get(&db, "after"), Some(b"2".to_vec()));
    assert_clean(&db);
}
