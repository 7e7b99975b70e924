//! Real etcd 3.4 for the tests: free ports on 127.0.0.1, deadlines, the child always
//! killed; a fixture data dir written once per test run with puts, overwrites,
//! deletes, leases and a compaction.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::OnceLock;
use std::time::Duration;
use untorn_bbolt::{BoltFile, PageBody};

// The peers, processes with deadlines and the etcd process are the workspace's test kit.
// This file serves two test binaries (this crate's and the CLI's), each using a subset.
#[allow(unused_imports)]
pub use untorn_testkit::{
    bboltbench, have_etcd, missing, parse_get_json, run_bounded, workspace_root, Etcd, Served,
};

/// What our reader says etcd would serve.
pub fn ours(db: &untorn_etcd::EtcdDb) -> BTreeMap<Vec<u8>, Served> {
    db.range(None)
        .unwrap()
        .into_iter()
        .map(|kv| {
            (
                kv.key.clone(),
                Served {
                    value: kv.value.clone(),
                    create_revision: kv.create_revision,
                    mod_revision: kv.mod_revision,
                    version: kv.version,
                    lease: kv.lease,
                },
            )
        })
        .collect()
}

pub fn key_name(i: usize) -> String {
    format!("/registry/pods/ns-{:03}/pod-{i:06}", i % 37)
}

fn value(i: usize, tag: &str) -> String {
    // Deterministic, printable, 180 bytes.
    let mut v = format!("{tag}-{i}-");
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ tag.len() as u64;
    while v.len() < 180 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(char::from(
            b"abcdefghijklmnopqrstuvwxyz0123456789"[(x % 36) as usize],
        ));
    }
    v
}

fn txn_script(ops: impl Iterator<Item = String>) -> String {
    let mut s = String::from("\n");
    for op in ops {
        s.push_str(&op);
        s.push('\n');
    }
    s.push_str("\n\n");
    s
}

/// The fixture: a stopped etcd data dir and what etcd served before stopping.
pub struct Fixture {
    pub data: PathBuf,
    pub served: BTreeMap<Vec<u8>, Served>,
    pub compacted: i64,
    pub current: i64,
    pub lease: i64,
    pub leased_keys: Vec<Vec<u8>>,
    pub snapshot: PathBuf,
}

/// Keys put in the fixture.
pub const NKEYS: usize = 2400;

static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();

/// Builds the fixture once per test run (about 10 s): 2,400 keys in 24 transactions,
/// 600 overwritten in 12 more, a lease with 30 keys, 200 deleted, a revoked lease with 5
/// keys, transactions with compares (one takes its failure branch), a prefix delete, a
/// compaction in the middle, then 300 more overwrites after it; an `etcdctl snapshot
/// save` file.
pub fn fixture() -> Option<&'static Fixture> {
    FIXTURE
        .get_or_init(|| {
            if !have_etcd() {
                return None;
            }
            let root = workspace_root().join("target/untorn-etcd-tests");
            // Leftovers of earlier runs whose process is gone.
            if let Ok(rd) = std::fs::read_dir(&root) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let pid = name.rsplit('-').next().unwrap_or("");
                    if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
            let dir = root.join(format!("fixture-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let data = dir.join("data");
            let mut etcd = Etcd::start(&data, &dir.join("fixture.log"));
            etcd.wait_healthy(Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("fixture etcd: {e}\n{}", etcd.log_text()));
            for batch in 0..24 {
                etcd.txn(&txn_script(
                    (batch * 100..(batch + 1) * 100)
                        .map(|i| format!("put {} {}", key_name(i), value(i, "v1"))),
                ));
            }
            for batch in 0..12 {
                etcd.txn(&txn_script((batch * 50..(batch + 1) * 50).map(|i| {
                    format!("put {} {}", key_name(i * 4), value(i * 4, "v2"))
                })));
            }
            let out = etcd.ctl(&["lease", "grant", "3600"]);
            let lease_hex = out.split_whitespace().nth(1).unwrap().to_string();
            let lease = i64::from_str_radix(&lease_hex, 16).unwrap();
            let mut leased_keys = Vec::new();
            for i in 0..30 {
                let k = format!("/registry/leases/l-{i:03}");
                etcd.ctl(&[
                    "put",
                    &k,
                    &value(i, "lease"),
                    &format!("--lease={lease_hex}"),
                ]);
                leased_keys.push(k.into_bytes());
            }
            etcd.txn(&txn_script(
                (NKEYS - 200..NKEYS).map(|i| format!("del {}", key_name(i))),
            ));
            // What a replay of the raft log must reproduce besides puts and deletes: a
            // lease revoke (its keys deleted in key order, one revision), transactions
            // that take their failure branch or delete and put, a prefix delete.
            let out = etcd.ctl(&["lease", "grant", "3600"]);
            let short = out.split_whitespace().nth(1).unwrap().to_string();
            for i in (0..5).rev() {
                etcd.ctl(&[
                    "put",
                    &format!("/registry/leases/short-{i}"),
                    "x",
                    &format!("--lease={short}"),
                ]);
            }
            etcd.ctl(&["lease", "revoke", &short]);
            etcd.txn_as(
                &format!(
                    "mod(\"{}\") = \"1\"\n\nput /registry/txn/succeeded s\n\nput /registry/txn/failed f\n\n",
                    key_name(1)
                ),
                "FAILURE",
            );
            etcd.txn(&format!(
                "version(\"{}\") > \"0\"\n\ndel {}\nput /registry/txn/deleted-2 yes\n\n\n",
                key_name(2),
                key_name(2)
            ));
            etcd.txn(&txn_script(
                ["a", "b", "c"]
                    .iter()
                    .map(|k| format!("put /registry/tmp/{k} t")),
            ));
            etcd.ctl(&["del", "--prefix", "/registry/tmp/"]);
            let status = etcd.ctl(&["endpoint", "status", "-w", "json"]);
            let v: serde_json::Value = serde_json::from_str(&status).unwrap();
            let rev = v[0]["Status"]["header"]["revision"].as_i64().unwrap();
            let compacted = rev - 20;
            etcd.ctl(&["compact", &compacted.to_string(), "--physical"]);
            for batch in 0..6 {
                etcd.txn(&txn_script((batch * 50..(batch + 1) * 50).map(|i| {
                    format!("put {} {}", key_name(i * 3 + 1), value(i * 3 + 1, "v3"))
                })));
            }
            let snapshot = dir.join("snapshot.db");
            etcd.ctl(&["snapshot", "save", snapshot.to_str().unwrap()]);
            let served = etcd.get_all();
            let status = etcd.ctl(&["endpoint", "status", "-w", "json"]);
            let v: serde_json::Value = serde_json::from_str(&status).unwrap();
            let current = v[0]["Status"]["header"]["revision"].as_i64().unwrap();
            etcd.stop();
            Some(Fixture {
                data,
                served,
                compacted,
                current,
                lease,
                leased_keys,
                snapshot,
            })
        })
        .as_ref()
}

/// Copies a data dir (the fixture's) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    let (ok, out) = run_bounded(
        Command::new("cp").arg("-a").arg(from).arg(to),
        Duration::from_secs(30),
    );
    assert!(ok, "cp: {out}");
}

pub fn db_path(data: &Path) -> PathBuf {
    data.join("member/snap/db")
}

// ---- Finding pages of the `key` bucket and damaging them ---------------------------

/// Writes `bytes` at `offset` of `path` and syncs.
pub fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
    f.sync_all().unwrap();
}

/// The key bucket's root page.
pub fn key_root(file: &BoltFile) -> u64 {
    let PageBody::Leaf(elems) = untorn_bbolt::page(file, file.meta().root).unwrap().body else {
        panic!("root is not a leaf")
    };
    let (_, _, v) = elems.iter().find(|(_, k, _)| k == b"key").unwrap();
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

/// The leaf of the key bucket holding bucket key `rk`, by descent.
pub fn leaf_of(file: &BoltFile, rk: &[u8]) -> u64 {
    let mut id = key_root(file);
    loop {
        match untorn_bbolt::page(file, id).unwrap().body {
            PageBody::Branch(children) => {
                id = children
                    .iter()
                    .take_while(|(k, _)| k.as_slice() <= rk)
                    .last()
                    .unwrap_or(&children[0])
                    .1;
            }
            PageBody::Leaf(_) => return id,
            other => panic!("unexpected page {other:?}"),
        }
    }
}

/// The newest revision key of a user key in the fixture's file.
pub fn newest_rev_key(db: &Path, key: &str) -> Vec<u8> {
    let opened = untorn_etcd::open(db).unwrap();
    let h = opened.db.history(key.as_bytes());
    let r = h.last().unwrap();
    r.rev.to_key(r.tombstone)
}
