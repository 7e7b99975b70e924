//! etcd end to end: a real etcd 3.4 data dir, damaged with the page-cycle
//! incident, refuses to start; after salvage into the data dir etcd starts and
//! serves every surviving key with its exact value.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use untorn_bbolt::{BoltFile, DumpItem, SalvageOptions};

use untorn_testkit::{on_path, peers_scripts, run_bounded, Etcd};

use crate::common::*;

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while *i < b.len() && shift < 64 {
        let x = b[*i];
        *i += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

/// (key, value) of an etcd mvccpb.KeyValue.
fn kv_of(proto: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut i, mut key, mut value) = (0, Vec::new(), Vec::new());
    while i < proto.len() {
        let tag = varint(proto, &mut i);
        match tag & 7 {
            0 => {
                varint(proto, &mut i);
            }
            2 => {
                let n = varint(proto, &mut i) as usize;
                let field = proto[i..i + n].to_vec();
                i += n;
                match tag >> 3 {
                    1 => key = field,
                    5 => value = field,
                    _ => {}
                }
            }
            _ => panic!("unexpected wire type in {proto:?}"),
        }
    }
    (key, value)
}

/// etcd's live keys from a bbolt file: for each user key, the newest revision in
/// the `key` bucket, unless that revision is a tombstone.
fn live_keys(db: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let file = BoltFile::open(db).unwrap();
    let mut newest: BTreeMap<Vec<u8>, (Vec<u8>, Option<Vec<u8>>)> = BTreeMap::new();
    for item in untorn_bbolt::dump(&file) {
        let DumpItem::Pair(e) = item.unwrap() else {
            continue;
        };
        if e.bucket != vec![b"key".to_vec()] {
            continue;
        }
        let tomb = e.key.len() == 18 && e.key[17] == b't';
        let rev = e.key[..17].to_vec();
        let (k, v) = kv_of(&e.value);
        let slot = newest.entry(k).or_insert((Vec::new(), None));
        if rev >= slot.0 {
            *slot = (rev, if tomb { None } else { Some(v) });
        }
    }
    newest
        .into_iter()
        .filter_map(|(k, (_, v))| v.map(|v| (k, v)))
        .collect()
}

#[test]
fn etcd_cycle_salvage_end_to_end() {
    let t0 = Instant::now();
    let script = peers_scripts().join("etcd_make_db.sh");
    if !script.exists() {
        missing(&format!("{} (PEERS_DIR)", script.display()));
        return;
    }
    if !on_path("etcd") || !on_path("etcdctl") {
        missing("etcd/etcdctl on PATH");
        return;
    }
    let Some(bench) = bboltbench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let orig = dir.path().join("orig.db");
    let (cport, pport) = (untorn_testkit::free_port(), untorn_testkit::free_port());
    let (ok, out) = run_bounded(
        Command::new("bash")
            .arg(&script)
            .arg(&orig)
            .arg("5000")
            .env("KEEP_DATA_DIR", &data)
            .env("CLIENT_PORT", cport.to_string())
            .env("PEER_PORT", pport.to_string()),
        Duration::from_secs(40),
    );
    assert!(ok, "etcd_make_db.sh failed: {out}");
    let db = data.join("member/snap/db");
    let original = live_keys(&orig);
    assert_eq!(original.len(), 4500);

    // The page-cycle incident in the key bucket.
    let out = Command::new(&bench)
        .args(["-op", "corruptcycle", "-bucket", "key", "-db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = untorn_bbolt::check(&db, 100).unwrap();
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == untorn::unstable::report::FindingKind::Cycle),
        "{:#?}",
        r.findings
    );

    // etcd refuses to start (bbolt's freepages walk panics).
    let log1 = dir.path().join("etcd1.log");
    let mut etcd = Etcd::start(&data, &log1);
    let res = etcd.wait_healthy(Duration::from_secs(10));
    etcd.stop();
    let log = std::fs::read_to_string(&log1).unwrap_or_default();
    assert!(res.is_err(), "etcd started on a cyclic db");
    assert!(
        log.contains("multiple references") || log.contains("freepages"),
        "{log}"
    );

    // Salvage in place (library call), then etcd starts and serves the survivors.
    let report = untorn_bbolt::salvage(&db, &db, &SalvageOptions::default()).unwrap();
    assert_eq!(report.lost.len(), 1, "{report}");
    let salvaged = live_keys(&db);
    let log2 = dir.path().join("etcd2.log");
    let mut etcd = Etcd::start(&data, &log2);
    if let Err(e) = etcd.wait_healthy(Duration::from_secs(15)) {
        panic!(
            "etcd did not start on the salvaged db: {e}\n{}",
            std::fs::read_to_string(&log2).unwrap_or_default()
        );
    }
    let served: BTreeMap<Vec<u8>, Vec<u8>> = etcd
        .get_all()
        .into_iter()
        .map(|(k, s)| (k, s.value))
        .collect();
    etcd.stop();
    assert_eq!(
        served, salvaged,
        "etcd serves exactly the live keys of the salvaged file"
    );
    // No wrong data: everything served is the original value; only the keys of
    // the one lost leaf (at most one leaf's worth of revisions) are missing.
    for (k, v) in &served {
        assert_eq!(
            original.get(k),
            Some(v),
            "key {}",
            String::from_utf8_lossy(k)
        );
    }
    assert!(
        served.len() >= original.len() - 100,
        "{} of {}",
        served.len(),
        original.len()
    );
    assert!(t0.elapsed() < Duration::from_secs(90));
}
