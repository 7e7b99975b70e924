//! `untorn etcd keys|get|history|revisions|check`, `untorn salvage` of etcd backends
//! (`--etcd-stale keep|drop`, `--wal`) and etcd snapshot files through every read
//! command, against a real etcd 3.4 data dir: the fixture of untorn-etcd's tests (one
//! file, both test binaries), with what `etcdctl get` served before it was stopped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use untorn_bbolt::BoltFile;

use crate::common::{ok, untorn};
use crate::etcd_peer::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json_of(args: &[&str], code: i32) -> Value {
    let out = ok(args, code);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

/// Bytes of a JSON string or `{"hex": ..}` as the CLI encodes them.
fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => {
            let h = other["hex"].as_str().unwrap();
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect()
        }
    }
}

/// `untorn etcd keys FILE --json` as what etcd would serve.
fn served_by(file: &Path) -> BTreeMap<Vec<u8>, Served> {
    json_of(&["etcd", "keys", s(file), "--json"], 0)
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                bytes(&kv["key"]),
                Served {
                    value: bytes(&kv["value"]),
                    create_revision: kv["create_revision"].as_i64().unwrap(),
                    mod_revision: kv["mod_revision"].as_i64().unwrap(),
                    version: kv["version"].as_i64().unwrap(),
                    lease: kv["lease"].as_i64().unwrap(),
                },
            )
        })
        .collect()
}

/// The read commands every bbolt file answers.
fn every_read_command(file: &Path) {
    let p = s(file);
    assert_eq!(json_of(&["info", p, "--json"], 0)["format"], "bbolt");
    let check = json_of(&["check", p, "--json"], 0);
    assert_eq!(check["ok"], true, "{check}");
    json_of(&["stats", p, "--json"], 0);
    json_of(&["pages", p, "--json"], 0);
    json_of(&["page", p, "0", "1", "2", "--json"], 0);
    let svg = file.with_extension("svg");
    ok(&["map", p, "--svg", s(&svg)], 0);
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let buckets = ok(&["buckets", p], 0);
    let names: Vec<&str> = buckets
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"key") && names.contains(&"meta"),
        "{buckets}"
    );
    assert!(ok(&["keys", p, "meta"], 0).contains("consistent_index"));
    let ci = untorn(&["get", p, "meta", "consistent_index"], None);
    assert!(ci.status.success());
    assert_eq!(ci.stdout.len(), 8);
    let dump = ok(&["dump", p], 0);
    assert!(dump.lines().count() > 2000);
}

#[test]
fn etcd_commands_answer_what_etcd_served() {
    let Some(fx) = fixture() else { return };
    let db = db_path(&fx.data);
    let p = s(&db);
    assert_eq!(served_by(&db), fx.served);
    // --prefix, get (text and JSON), get of a deleted key, get below the compaction.
    let prefix = "/registry/leases/";
    let leased = json_of(&["etcd", "keys", p, "--prefix", prefix, "--json"], 0);
    assert_eq!(leased.as_array().unwrap().len(), fx.leased_keys.len());
    let k = key_name(4);
    let want = &fx.served[k.as_bytes()];
    let text = untorn(&["etcd", "get", p, &k], None);
    assert!(text.status.success());
    assert_eq!(text.stdout, [want.value.as_slice(), b"\n"].concat());
    let kv = json_of(&["etcd", "get", p, &k, "--json"], 0);
    assert_eq!(kv["mod_revision"].as_i64(), Some(want.mod_revision));
    ok(&["etcd", "get", p, &key_name(NKEYS - 1)], 1);
    let o = untorn(
        &[
            "etcd",
            "get",
            p,
            &k,
            "--rev",
            &(fx.compacted - 1).to_string(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("compacted"));
    // history: every revision of the key in the file, oldest first, the newest served.
    let h = json_of(&["etcd", "history", p, &k, "--json"], 0);
    let revs: Vec<i64> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kv"]["mod_revision"].as_i64().unwrap())
        .collect();
    assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");
    assert_eq!(revs.last(), Some(&want.mod_revision));
    ok(&["etcd", "history", p, "/no/such/key"], 1);
    // revisions: the range, the compaction point, no gaps.
    let r = json_of(&["etcd", "revisions", p, "--json"], 0);
    assert_eq!(r["finished_compact"].as_i64(), Some(fx.compacted));
    assert!(r["newest"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/", fx.current)));
    assert_eq!(r["gaps"].as_array().unwrap().len(), 0);
    // check: clean, exit 0.
    assert!(ok(&["etcd", "check", p], 0).starts_with("OK: "));
    let c = json_of(&["etcd", "check", p, "--json"], 0);
    assert_eq!(c["ok"], true);
    assert_eq!(c["current_revision"].as_i64(), Some(fx.current));
    assert!(c["snapshot_hash"].is_null());
    // Not an etcd file: refused, exit 2.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    let mut root = untorn_bbolt::BucketData::default();
    root.bucket_mut(&[b"x".to_vec()]);
    untorn_bbolt::write_file(&other, &root, &untorn_bbolt::WriteOptions::default()).unwrap();
    let o = untorn(&["etcd", "check", s(&other)], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--etcd"));
}

/// A copy of the fixture's data dir in `dir` whose `key` bucket leaf holding the
/// newest revision of `key` is zeroed; returns (data dir, its backend file).
fn damaged_data_dir(dir: &Path, key: &str) -> (PathBuf, PathBuf) {
    let fx = fixture().unwrap();
    let data = dir.join("data");
    copy_dir(&fx.data, &data);
    let db = db_path(&data);
    let leaf = leaf_of(&BoltFile::open(&db).unwrap(), &newest_rev_key(&db, key));
    patch(&db, leaf * 4096, &[0u8; 4096]);
    (data, db)
}

#[test]
fn salvage_keeps_or_drops_the_keys_whose_newest_revision_was_lost() {
    let Some(fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (data, db) = damaged_data_dir(dir.path(), &key_name(4));
    // check names the damage in both vocabularies.
    let c = json_of(&["check", s(&db), "--json"], 1);
    assert_eq!(c["root_causes"], 1, "{c}");
    let e = json_of(&["etcd", "check", s(&db), "--json"], 1);
    assert!(e["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "lost_data"));

    // keep (the default): the report names every key whose newest revision was lost
    // (from the raft log next to the file), and what etcd serves for it now.
    let kept = dir.path().join("kept.db");
    let r = json_of(&["salvage", s(&db), s(&kept), "--json"], 1);
    let etcd = &r["etcd"];
    assert_eq!(etcd["stale"], "keep");
    assert_eq!(etcd["wal"]["used"], true, "{etcd}");
    let affected = etcd["affected_keys"].as_array().unwrap();
    assert!(!affected.is_empty(), "{etcd}");
    let now = served_by(&kept);
    for a in affected {
        let key = bytes(&a["key"]);
        match a["now"].as_str().unwrap() {
            "older" => assert_eq!(
                now.get(&key).map(|s| s.mod_revision),
                a["now_revision"].as_i64(),
                "{a}"
            ),
            "vanished" => assert!(!now.contains_key(&key), "{a}"),
            other => panic!("{other}: {a}"),
        }
    }
    // Exactly those keys differ from what etcd served before the damage.
    let changed: Vec<&Vec<u8>> = fx
        .served
        .iter()
        .filter(|(k, v)| now.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    let named: Vec<Vec<u8>> = affected.iter().map(|a| bytes(&a["key"])).collect();
    assert_eq!(changed.len(), named.len());
    assert!(changed.iter().all(|k| named.contains(k)));
    let human = ok(&["salvage", s(&db), s(&kept), "--force"], 1);
    assert!(human.contains("--etcd-stale keep, the default"), "{human}");
    assert!(human.contains("changes of revision"), "{human}");

    // drop: those keys are removed; every other key is served exactly as before.
    let dropped = dir.path().join("dropped.db");
    let r = json_of(
        &[
            "salvage",
            s(&db),
            s(&dropped),
            "--etcd-stale",
            "drop",
            "--json",
        ],
        1,
    );
    assert_eq!(r["etcd"]["stale"], "drop");
    let affected = r["etcd"]["affected_keys"].as_array().unwrap();
    assert!(affected.iter().all(|a| a["now"] == "dropped"), "{r}");
    let mut expected = fx.served.clone();
    for a in affected {
        expected.remove(&bytes(&a["key"]));
    }
    assert_eq!(served_by(&dropped), expected);
    // etcd starts on it and serves exactly that.
    std::fs::copy(&dropped, &db).unwrap();
    let mut server = Etcd::start(&data, &dir.path().join("etcd.log"));
    server
        .wait_healthy(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("etcd on the salvaged file: {e}\n{}", server.log_text()));
    assert_eq!(server.get_all(), expected);
    server.stop();
}

#[test]
fn snapshot_files_go_through_every_read_command_and_salvage() {
    let Some(fx) = fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snapshot.db");
    std::fs::copy(&fx.snapshot, &snap).unwrap();
    every_read_command(&snap);
    assert_eq!(served_by(&snap), fx.served);
    let c = json_of(&["etcd", "check", s(&snap), "--json"], 0);
    assert_eq!(c["snapshot_hash"], "ok");
    json_of(&["etcd", "revisions", s(&snap), "--json"], 0);
    json_of(&["etcd", "history", s(&snap), &key_name(4), "--json"], 0);

    // A changed trailer: bbolt's format cannot tell, both checks can.
    let bad = dir.path().join("bad-hash.db");
    let mut b = std::fs::read(&snap).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x01;
    std::fs::write(&bad, &b).unwrap();
    let c = json_of(&["check", s(&bad), "--json"], 1);
    assert_eq!(c["findings"][0]["kind"], "snapshot_hash", "{c}");
    let e = json_of(&["etcd", "check", s(&bad), "--json"], 1);
    assert_eq!(e["snapshot_hash"], "mismatch");
    // Salvage writes a fresh trailer: etcdctl snapshot restore would accept it.
    let fixed = dir.path().join("fixed.db");
    let r = json_of(&["salvage", s(&bad), s(&fixed), "--json"], 0);
    assert!(
        r["bbolt"]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("SHA-256 trailer")),
        "{r}"
    );
    assert_eq!(
        json_of(&["etcd", "check", s(&fixed), "--json"], 0)["snapshot_hash"],
        "ok"
    );
    assert_eq!(served_by(&fixed), fx.served);

    // A damaged leaf in a snapshot file: no raft log next to it, so the lost
    // revisions are counted and the report says how to name them; with --wal the
    // data dir's log names them.
    let damaged = dir.path().join("damaged.db");
    std::fs::copy(&snap, &damaged).unwrap();
    let leaf = leaf_of(
        &BoltFile::open(&damaged).unwrap(),
        &newest_rev_key(&damaged, &key_name(4)),
    );
    patch(&damaged, leaf * 4096, &[0u8; 4096]);
    let out = dir.path().join("out.db");
    let r = json_of(&["salvage", s(&damaged), s(&out), "--json"], 1);
    assert_eq!(r["etcd"]["wal"]["used"], false);
    assert!(r["etcd"]["wal"]["summary"]
        .as_str()
        .unwrap()
        .contains("pass --wal DIR"));
    assert!(r["etcd"]["wal"]["lost"].as_array().unwrap().is_empty());
    let wal = fx.data.join("member/wal");
    let r = json_of(
        &[
            "salvage",
            s(&damaged),
            s(&out),
            "--wal",
            s(&wal),
            "--force",
            "--json",
        ],
        1,
    );
    assert_eq!(r["etcd"]["wal"]["used"], true, "{r}");
    let named: usize = r["etcd"]["wal"]["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["lost"].as_array().unwrap().len())
        .sum();
    assert!(named > 0, "{r}");
    let c = json_of(&["etcd", "check", s(&out), "--json"], 1);
    assert_eq!(c["snapshot_hash"], "ok", "{c}");
    every_read_command(&out);
}
