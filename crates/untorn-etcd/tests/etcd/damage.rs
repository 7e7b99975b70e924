//! Damage inside etcd's `key` bucket on a real etcd 3.4 data dir: what etcd does
//! before, what `untorn etcd check` says, what salvage reports in etcd's terms, and
//! that etcd starts on the salvaged file, serves every other key exactly, accepts a
//! write and restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use untorn_bbolt::{BoltFile, PageBody};
use untorn_etcd::salvage::{EtcdSalvageOptions, EtcdSalvageReport, Fallback};
use untorn_etcd::Revision;

use crate::common::*;

/// What happened in one scenario (for the closing summary).
struct Outcome {
    before: String,
    /// Root causes `untorn check` reports.
    headlines: usize,
    check: Vec<String>,
    report: EtcdSalvageReport,
    changed: BTreeSet<Vec<u8>>,
}

/// Runs one scenario: copy the fixture, damage, etcd before, check, salvage, etcd
/// after (serves every other key exactly, takes a write, restarts).
fn scenario(name: &str, damage: impl FnOnce(&Path)) -> Option<Outcome> {
    let fx = fixture()?;
    let dir = workspace_root()
        .join("target/untorn-etcd-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    copy_dir(&fx.data, &data);
    let db = db_path(&data);
    damage(&db);

    // etcd before.
    let before = {
        let mut etcd = Etcd::start(&data, &dir.join("before.log"));
        match etcd.wait_healthy(Duration::from_secs(8)) {
            Err(e) => {
                let log = etcd.log_text();
                let why = log
                    .lines()
                    .find(|l| l.contains("panic") || l.contains("fatal") || l.contains("Fatal"))
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect::<String>();
                format!("refuses to start ({e}): {why}")
            }
            Ok(()) => {
                let (ok, out) = run_bounded(
                    Command::new("etcdctl").args([
                        "--endpoints",
                        &etcd.endpoint,
                        "--command-timeout=10s",
                        "get",
                        "",
                        "--from-key",
                        "-w",
                        "json",
                    ]),
                    Duration::from_secs(15),
                );
                if !ok {
                    format!(
                        "starts, but a full read fails: {}",
                        out.chars().take(200).collect::<String>()
                    )
                } else {
                    let served = parse_get_json(&out);
                    let stale = fx
                        .served
                        .iter()
                        .filter(|(k, v)| served.get(*k) != Some(v))
                        .count()
                        + served
                            .keys()
                            .filter(|k| !fx.served.contains_key(*k))
                            .count();
                    format!(
                        "starts and serves {} keys, {stale} of them wrong or missing",
                        served.len()
                    )
                }
            }
        }
    };

    // untorn check: one headline per damaged page.
    let bbolt_check = untorn_bbolt::check(&db, 100_000).unwrap();
    let headlines = bbolt_check.root_causes().len();
    // untorn etcd check.
    let r = untorn_etcd::check_file(&db, false, 50).unwrap();
    let check: Vec<String> = r.findings.iter().map(|f| f.to_string()).collect();

    // Salvage, into the data dir.
    let out = dir.join("salvaged.db");
    let (bolt, report) =
        untorn_etcd::salvage::salvage(&db, &out, &EtcdSalvageOptions::default()).unwrap();
    std::fs::rename(&out, &db).unwrap();
    let salvaged = untorn_etcd::open(&db).unwrap();
    assert!(salvaged.damaged.is_none());
    let rc = untorn_etcd::check_db(&salvaged.db, 50);
    assert!(
        rc.findings.iter().all(|f| f.kind.is_warning()
            || f.kind == untorn_etcd::EtcdFindingKind::RevisionGap
            || f.kind == untorn_etcd::EtcdFindingKind::SubRevisionGap
            || f.kind == untorn_etcd::EtcdFindingKind::VersionSequence),
        "{:#?}",
        rc.findings
    );

    // etcd after: starts, serves every key the report does not name exactly as before.
    let mut etcd = Etcd::start(&data, &dir.join("after.log"));
    etcd.wait_healthy(Duration::from_secs(20))
        .unwrap_or_else(|e| {
            panic!(
                "{name}: etcd on the salvaged file: {e}\n{}",
                etcd.log_text()
            )
        });
    let served = etcd.get_all();
    assert_eq!(
        served,
        ours(&salvaged.db),
        "{name}: etcd serves what the file says"
    );
    let changed: BTreeSet<Vec<u8>> = fx
        .served
        .iter()
        .filter(|(k, v)| served.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(
            served
                .keys()
                .filter(|k| !fx.served.contains_key(*k))
                .cloned(),
        )
        .collect();
    let named: BTreeSet<Vec<u8>> = report.affected.iter().map(|a| a.key.clone()).collect();
    // Every key the report names changed, and what it says etcd serves is what it serves.
    for a in &report.affected {
        let now = served.get(&a.key);
        match &a.now {
            Fallback::Older(r) | Fallback::Resurrected(r) => {
                assert_eq!(now.map(|s| s.mod_revision), Some(r.main), "{name}: {a:?}")
            }
            Fallback::Vanished | Fallback::Dropped(_) => assert!(now.is_none(), "{a:?}"),
        }
    }
    // The raft log next to the file names every lost change: the keys the report names
    // are exactly the keys etcd now serves differently from what it served before.
    assert!(report.wal.used, "{name}: {}", report.wal.summary);
    assert_eq!(report.wal.stopped, None, "{name}: {report}");
    let unnamed = changed.difference(&named).count();
    assert_eq!(
        changed, named,
        "{name}: changed keys vs the report\n{report}"
    );
    // A write, a restart, the write is there.
    etcd.ctl(&["put", "/untorn/after-salvage", name]);
    etcd.stop();
    let mut etcd = Etcd::start(&data, &dir.join("restart.log"));
    etcd.wait_healthy(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{name}: restart: {e}\n{}", etcd.log_text()));
    let got = etcd.ctl(&["get", "/untorn/after-salvage", "--print-value-only"]);
    assert_eq!(got.trim(), name);
    etcd.stop();
    eprintln!(
        "=== {name}\nbefore: {before}\nuntorn check: {} finding(s), {headlines} headline(s)\nuntorn etcd check: {}\nsalvage (bbolt): {}\nsalvage (etcd):\n{report}changed keys: {} (named {}, unnamed {unnamed})\n",
        bbolt_check.findings.len(),
        check.iter().take(4).cloned().collect::<Vec<_>>().join("\n       "),
        bolt.lost.len(),
        changed.len(),
        named.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Some(Outcome {
        before,
        headlines,
        check,
        report,
        changed,
    })
}

/// The page-cycle incident with bboltbench, under the key bucket root's last child
/// (where the newest revisions are).
fn bench(db: &Path, how: &str) {
    let Some(bench) = bboltbench() else { return };
    let file = BoltFile::open(db).unwrap();
    let PageBody::Branch(children) = untorn_bbolt::page(&file, key_root(&file)).unwrap().body
    else {
        panic!("key bucket root is not a branch")
    };
    let child = (children.len() - 1).to_string();
    drop(file);
    let out = Command::new(bench)
        .args([
            "-op",
            "corruptcycle",
            "-bucket",
            "key",
            "-how",
            how,
            "-child",
            &child,
            "-db",
        ])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn cycle_in_key_bucket() {
    // Without bboltbench there is no damage to study: skip (never a run on an intact file).
    if bboltbench().is_none() {
        return;
    }
    let Some(o) = scenario("cycle", |db| bench(db, "pgid")) else {
        return;
    };
    assert!(o.before.starts_with("refuses"), "{}", o.before);
    assert!(
        o.check.iter().any(|c| c.starts_with("lost_data")),
        "{:?}",
        o.check
    );
    assert_eq!(o.headlines, 1);
    // The orphaned leaf still holds the revisions: nothing is lost.
    assert!(o.report.wal.lost.is_empty(), "{}", o.report);
    assert!(o.changed.is_empty(), "{:?}", o.changed);
}

#[test]
fn misdirected_copy_in_key_bucket() {
    // Without bboltbench there is no damage to study: skip (never a run on an intact file).
    if bboltbench().is_none() {
        return;
    }
    let Some(o) = scenario("copy", |db| bench(db, "copy")) else {
        return;
    };
    assert!(o.before.starts_with("refuses"), "{}", o.before);
    assert!(!o.report.lost_ranges.is_empty());
    assert!(
        o.check.iter().any(|c| c.starts_with("lost_data")),
        "{:?}",
        o.check
    );
    // Over a hundred findings, one headline: the copied page.
    assert_eq!(o.headlines, 1);
    // No copy of the overwritten leaf survives; the raft log names its keys, all of one
    // main revision.
    assert_eq!(o.report.wal.lost.len(), 1, "{}", o.report);
    assert!(!o.changed.is_empty());
    assert!(o.report.lost_ranges.iter().all(|l| l.exact), "{}", o.report);
}

#[test]
fn zeroed_leaf_in_key_bucket() {
    let Some(o) = scenario("zeroed", |db| {
        let rk = newest_rev_key(db, &key_name(4));
        let file = BoltFile::open(db).unwrap();
        let leaf = leaf_of(&file, &rk);
        patch(db, leaf * 4096, &[0u8; 4096]);
    }) else {
        return;
    };
    assert!(o.before.starts_with("refuses"), "{}", o.before);
    assert_eq!(o.report.lost_ranges.len(), 1, "{}", o.report);
    assert!(o.report.revisions_lost() > 0);
    assert_eq!(o.headlines, 1);
    // Some revisions came back from older copies in free pages; the raft log names the
    // rest, and the count of the lost range is exact.
    assert!(!o.report.restored.is_empty(), "{}", o.report);
    assert!(!o.report.wal.lost.is_empty(), "{}", o.report);
    assert!(o.report.lost_ranges[0].exact, "{}", o.report);
    assert!(!o.changed.is_empty());
}

#[test]
fn garbled_value_in_key_bucket() {
    let k = key_name(8);
    let Some(o) = scenario("garbled", |db| {
        let rk = newest_rev_key(db, &k);
        let file = BoltFile::open(db).unwrap();
        let leaf = leaf_of(&file, &rk);
        let page = file.read_raw(leaf, 1).unwrap();
        let at = page
            .windows(rk.len())
            .position(|w| w == rk.as_slice())
            .unwrap();
        // The value follows its key. One bit of its mod_revision varint flips: the value
        // still decodes, bbolt cannot tell, etcd serves a wrong mod_revision.
        let v = at + rk.len();
        let PageBody::Leaf(elems) = untorn_bbolt::page(&file, leaf).unwrap().body else {
            panic!("not a leaf")
        };
        let (_, _, val) = elems.iter().find(|(_, k, _)| *k == rk).unwrap();
        let kv = untorn_etcd::format::decode_key_value(val).unwrap();
        let prefix = untorn_etcd::format::encode_key_value(&untorn_etcd::KeyValue {
            key: kv.key.clone(),
            create_revision: kv.create_revision,
            ..Default::default()
        });
        let off = v + prefix.len() + 1; // past the mod_revision tag
        assert_eq!(page[off - 1], 0x18);
        patch(db, leaf * 4096 + off as u64, &[page[off] ^ 0x01]);
    }) else {
        return;
    };
    assert!(
        o.check.iter().any(|c| c.contains("mod_revision_mismatch")),
        "{:?}",
        o.check
    );
    assert_eq!(o.report.dropped.len(), 1, "{}", o.report);
    let names: Vec<&[u8]> = o.report.affected.iter().map(|a| a.key.as_slice()).collect();
    assert_eq!(names, vec![k.as_bytes()], "{}", o.report);
    // The raft log confirms which put the garbled value was.
    let from_log: Vec<&[u8]> = o
        .report
        .wal
        .lost
        .iter()
        .flat_map(|m| m.lost.iter().map(|c| c.key.as_slice()))
        .collect();
    assert_eq!(from_log, vec![k.as_bytes()], "{}", o.report);
    assert_eq!(o.changed, BTreeSet::from([k.into_bytes()]));
}

#[test]
fn swapped_separators_in_key_bucket() {
    let Some(o) = scenario("swapped", |db| {
        let file = BoltFile::open(db).unwrap();
        let root = key_root(&file);
        let page = file.read_raw(root, 1).unwrap();
        eprintln!("swapping separators 1 and 2 of the key bucket's root page {root}");
        let PageBody::Branch(children) = untorn_bbolt::page(&file, root).unwrap().body else {
            panic!("key bucket root is not a branch")
        };
        assert!(children.len() >= 3, "{children:?}");
        let (a, b) = (&children[1].0, &children[2].0);
        let pa = page
            .windows(a.len())
            .position(|w| w == a.as_slice())
            .unwrap();
        let pb = page
            .windows(b.len())
            .position(|w| w == b.as_slice())
            .unwrap();
        patch(db, root * 4096 + pa as u64, b);
        patch(db, root * 4096 + pb as u64, a);
    }) else {
        return;
    };
    // Every key survives.
    assert!(o.changed.is_empty(), "{:?}", o.changed);
    assert!(
        o.check
            .iter()
            .any(|c| c.contains("separators out of order")),
        "{:?}",
        o.check
    );
    assert!(o.report.affected.is_empty());
}

#[allow(dead_code)]
fn unused(_: BTreeMap<u8, u8>, _: PathBuf, _: Revision) {}
