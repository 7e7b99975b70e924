//! The `untorn` binary on a database this process holds open and keeps committing to
//! (issue 11): reading commands work and read one committed snapshot; writing ones are
//! refused with `locked`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::common::untorn;

const KEYS: u32 = 100;

/// Catches: a read-only open refused while another process writes (the old shared lock),
/// a dump or backup mixing two commits (keys of one transaction with different rounds), a
/// check that reports the writer's progress as damage, and the note naming the snapshot.
#[test]
fn check_and_dump_of_a_database_another_process_commits_to_read_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.untorn");
    let ps = p.to_str().unwrap();
    let db = untorn::Database::builder()
        .checkpoint_threshold_bytes(128 << 10)
        .create(&p)
        .unwrap();
    let write = |round: u32| {
        db.update(|tx| -> untorn::Result<_> {
            let b = tx.create_bucket_if_not_exists("b")?;
            for i in 0..KEYS {
                b.put(format!("k{i:03}"), format!("{round:06}"))?;
            }
            Ok(())
        })
        .unwrap();
    };
    write(0);
    let stop = AtomicBool::new(false);
    let rounds = AtomicU32::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut round = 1;
            while !stop.load(Ordering::Relaxed) {
                write(round);
                rounds.store(round, Ordering::Relaxed);
                round += 1;
            }
        });
        for attempt in 0..6 {
            let o = untorn(&["dump", ps], None);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(0), "{stderr}");
            assert!(
                stderr.contains("open for writing in another process")
                    && stderr.contains("snapshot at txid"),
                "{stderr}"
            );
            let mut values = BTreeSet::new();
            let mut keys = 0;
            for line in String::from_utf8(o.stdout).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                if let Some(value) = v.get("value") {
                    keys += 1;
                    values.insert(value.to_string());
                }
            }
            assert_eq!(keys, KEYS, "attempt {attempt}");
            assert_eq!(values.len(), 1, "one snapshot: {values:?}");

            let o = untorn(&["check", ps], None);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let o = untorn(&["get", ps, "b", "k007"], None);
            assert_eq!(o.status.code(), Some(0));
            assert_eq!(o.stdout.len(), 6, "{:?}", o.stdout);
            let o = untorn(&["info", ps], None);
            assert_eq!(o.status.code(), Some(0));
        }
        // A backup of the live database is one snapshot too.
        let copy = dir.path().join("copy.untorn");
        let o = untorn(&["backup", ps, copy.to_str().unwrap()], None);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // Writing commands are still refused.
        let o = untorn(&["put", ps, "b", "x", "y"], None);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("locked"));
        stop.store(true, Ordering::Relaxed);
        let copied = untorn::Database::open(&copy).unwrap();
        let values: BTreeSet<Vec<u8>> = copied
            .view(|tx| -> untorn::Result<_> {
                let b = tx.bucket("b")?.unwrap();
                b.iter()?.map(|e| e.map(|(_, v)| v.to_vec())).collect()
            })
            .unwrap();
        assert_eq!(values.len(), 1, "{values:?}");
    });
    assert!(
        rounds.load(Ordering::Relaxed) > 0,
        "the writer committed meanwhile"
    );
}
