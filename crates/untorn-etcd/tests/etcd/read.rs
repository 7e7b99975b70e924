//! Reading a healthy etcd file answers what etcd serves.

use crate::common::*;
use untorn_etcd::EtcdFindingKind;

#[test]
fn keys_get_history_revisions_match_etcd() {
    let Some(fx) = fixture() else { return };
    let opened = untorn_etcd::open(db_path(&fx.data)).unwrap();
    assert!(opened.damaged.is_none());
    assert!(opened.detection.is_etcd, "{:?}", opened.detection);
    let db = &opened.db;
    assert_eq!(ours(db), fx.served);
    assert_eq!(db.current_revision(), fx.current);
    assert_eq!(db.compacted(), fx.compacted);
    // History of a key overwritten after the compaction: its kept revision at or
    // below the compaction point, then every later one.
    let k = key_name(4);
    let h = db.history(k.as_bytes());
    assert!(h.len() >= 2, "{h:?}");
    assert!(h.windows(2).all(|w| w[0].rev < w[1].rev));
    // get --rev at the compaction point and below it.
    assert!(db.get(k.as_bytes(), Some(fx.compacted)).is_ok());
    assert!(matches!(
        db.get(k.as_bytes(), Some(fx.compacted - 1)),
        Err(untorn_etcd::QueryError::Compacted { .. })
    ));
    // Deleted keys are absent; leased keys carry the lease, and the lease is there.
    assert!(db
        .get(key_name(NKEYS - 1).as_bytes(), None)
        .unwrap()
        .is_none());
    let leased = db.get(&fx.leased_keys[0], None).unwrap().unwrap();
    assert_eq!(leased.lease, fx.lease);
    assert!(matches!(db.leases.get(&fx.lease), Some(Ok(_))));
    let s = db.revisions_summary();
    assert_eq!(s.finished_compact, Some(fx.compacted));
    assert!(s.gaps.is_empty() && s.sub_gaps.is_empty(), "{s:?}");
    let r = untorn_etcd::check_db(db, 100);
    assert!(r.is_ok(), "{:#?}", r.findings);
    assert!(r.consistent_index.is_some());
    assert!(!r
        .findings
        .iter()
        .any(|f| f.kind == EtcdFindingKind::LeaseMissing));
}

#[test]
fn snapshot_file_is_read_and_its_hash_verified() {
    let Some(fx) = fixture() else { return };
    let file = untorn_bbolt::BoltFile::open(&fx.snapshot).unwrap();
    let t = file
        .snapshot_trailer()
        .expect("snapshot trailer recognised");
    assert_eq!(t.data_len % 4096, 0);
    assert!(file.verify_snapshot().unwrap().unwrap().matches());
    let opened = untorn_etcd::open(&fx.snapshot).unwrap();
    assert!(opened.snapshot.is_some());
    assert_eq!(ours(&opened.db), fx.served);
    // A flipped byte in the database part: the hash no longer matches.
    let bad = fx.snapshot.with_extension("bad");
    let mut bytes = std::fs::read(&fx.snapshot).unwrap();
    let at = bytes.len() - 32 - 100;
    bytes[at] ^= 1;
    std::fs::write(&bad, &bytes).unwrap();
    let file = untorn_bbolt::BoltFile::open(&bad).unwrap();
    assert!(!file.verify_snapshot().unwrap().unwrap().matches());
}
