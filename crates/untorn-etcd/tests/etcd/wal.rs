//! The raft log of a real etcd 3.4 data dir: read with its CRC chain, replayed against
//! the backend file revision by revision, and used to name the keys of lost revisions.

use std::path::Path;

use untorn_bbolt::{BoltFile, SalvageOptions};
use untorn_etcd::replay::{replay, Start};
use untorn_etcd::salvage::{apply, StalePolicy, WalInput};
use untorn_etcd::wal::{read_wal, wal_dir_for, WalLog};

use crate::common::*;

fn consistent_index(db: &untorn_etcd::EtcdDb) -> u64 {
    match &db.meta.consistent_index {
        Some(Ok(ci)) => *ci,
        other => panic!("consistent index {other:?}"),
    }
}

#[test]
fn the_log_replays_to_the_file_exactly() {
    let Some(fx) = fixture() else { return };
    let db_file = db_path(&fx.data);
    let dir = wal_dir_for(&db_file).expect("member/wal next to member/snap/db");
    let log = read_wal(&dir).unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert_eq!(log.start_index, 0);
    assert_eq!(log.entries.first().map(|e| e.index), Some(1));
    let opened = untorn_etcd::open(&db_file).unwrap();
    let ci = consistent_index(&opened.db);
    let r = replay(&opened.db, &log, Some(ci)).unwrap();
    assert_eq!(r.start, Start::Empty);
    assert_eq!(r.stopped, None);
    assert_eq!(r.covers(), Some((2, fx.current)));
    assert!(r.last_index <= ci);
    // Every revision of the file is a replayed change (whole KeyValues compared), and
    // the file holds every change the log says it should.
    assert!(r.missing_from(&opened.db).is_empty());
    // The lease revoke deleted its five keys in key order, in one revision (they were
    // put in the opposite order).
    let revoked = r
        .revisions
        .iter()
        .find(|x| {
            x.changes.len() == 5
                && x.changes
                    .iter()
                    .all(|c| c.put.is_none() && c.key.starts_with(b"/registry/leases/short-"))
        })
        .expect("the lease revoke's revision");
    let keys: Vec<&[u8]> = revoked.changes.iter().map(|c| c.key.as_slice()).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    // The failed compare ran the failure branch.
    assert!(r
        .revisions
        .iter()
        .any(|x| x.changes.iter().any(|c| c.key == b"/registry/txn/failed")));
    assert!(!r.revisions.iter().any(|x| x
        .changes
        .iter()
        .any(|c| c.key == b"/registry/txn/succeeded")));

    // A log that starts after a snapshot (older entries purged): the replay syncs at the
    // first revision above the compaction point and reproduces the rest.
    let late = starting_after(&log, r.revisions[5].index);
    let r2 = replay(&opened.db, &late, Some(ci)).unwrap();
    assert!(
        matches!(r2.start, Start::Synced { main, .. } if main == fx.compacted + 1),
        "{:?}",
        r2.start
    );
    assert_eq!(r2.stopped, None);
    let tail: Vec<_> = r
        .revisions
        .iter()
        .filter(|x| x.main > fx.compacted)
        .collect();
    assert_eq!(r2.revisions.iter().collect::<Vec<_>>(), tail);
}

/// `log` as if every entry up to `index` had been purged.
fn starting_after(log: &WalLog, index: u64) -> WalLog {
    let mut late = log.clone();
    late.entries.retain(|e| e.index > index);
    late.start_index = index;
    late
}

/// The fixture's backend file in `dir`, with the leaf holding the newest revision of
/// `key` zeroed.
fn zeroed_copy(dir: &Path, key: &str) -> std::path::PathBuf {
    let fx = fixture().unwrap();
    let db = dir.join("db");
    std::fs::copy(db_path(&fx.data), &db).unwrap();
    let leaf = leaf_of(&BoltFile::open(&db).unwrap(), &newest_rev_key(&db, key));
    patch(&db, leaf * 4096, &[0u8; 4096]);
    db
}

/// The keys the salvage report names from the log.
fn named(wal: WalInput, db: &Path) -> (Vec<(String, Vec<u8>)>, String) {
    let mut s = untorn_bbolt::salvage_file(BoltFile::open(db).unwrap(), &SalvageOptions::default())
        .unwrap();
    let rep = apply(None, &mut s, StalePolicy::Keep, wal);
    let names = rep
        .wal
        .lost
        .iter()
        .flat_map(|m| m.lost.iter().map(|c| (c.rev.to_string(), c.key.clone())))
        .collect();
    (names, rep.to_string())
}

#[test]
fn lost_keys_are_named_from_a_log_that_starts_late_and_not_from_a_damaged_one() {
    let Some(fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = zeroed_copy(dir.path(), &key_name(4));
    let log = read_wal(&fx.data.join("member/wal")).unwrap();
    let (full, report) = named(WalInput::Log(log.clone()), &db);
    assert!(!full.is_empty(), "{report}");
    // The same keys from a log whose first half was purged.
    let half = log.entries[log.entries.len() / 2].index;
    let (late, report) = named(WalInput::Log(starting_after(&log, half)), &db);
    assert_eq!(late, full, "{report}");
    // Without a log: counted, not named, and the report says why.
    let (none, report) = named(WalInput::Missing("no member/wal".into()), &db);
    assert!(none.is_empty());
    assert!(
        report.contains("no write-ahead log: no member/wal"),
        "{report}"
    );
    assert!(
        report.contains("cannot be named from the file alone"),
        "{report}"
    );
    // A log damaged before the lost revisions: the replay stops where the log ends and
    // says so, and names nothing it did not replay.
    let wal_copy = dir.path().join("wal");
    std::fs::create_dir(&wal_copy).unwrap();
    let file = &log.files[0];
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes.len() / 1000; // well inside the records, before the newest ones
    bytes[at] ^= 0x55;
    std::fs::write(wal_copy.join(file.file_name().unwrap()), &bytes).unwrap();
    let damaged = read_wal(&wal_copy).unwrap();
    assert!(damaged.entries.len() < log.entries.len());
    let (some, report) = named(WalInput::Log(damaged), &db);
    assert!(some.len() < full.len(), "{report}");
    assert!(report.contains("the replay stopped"), "{report}");
}
