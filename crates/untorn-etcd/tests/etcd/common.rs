//! Real etcd 3.4 for the tests: free ports on 127.0.0.1, deadlines, the child always
//! killed; a fixture data dir written once per test run with puts, overwrites,
//! deletes, leases and a compaction.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use untorn_bbolt::{BoltFile, PageBody};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

/// Skips (or fails under CI) when a peer is missing.
pub fn missing(what: &str) -> Option<()> {
    if std::env::var_os("CI").is_some() {
        panic!("required peer missing under CI: {what} (scripts/test.sh installs the peers)");
    }
    use std::io::Write;
    let msg = format!("\n=== SKIPPING: {what} is missing (run ../shared/peers/setup.sh) ===\n");
    match std::fs::OpenOptions::new().append(true).open("/dev/stderr") {
        Ok(mut f) => {
            let _ = f.write_all(msg.as_bytes());
        }
        Err(_) => eprintln!("{msg}"),
    }
    None
}

pub fn peers_bin() -> PathBuf {
    std::env::var_os("PEERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/peers"))
}

pub fn bboltbench() -> Option<PathBuf> {
    let p = peers_bin().join("bboltbench/bboltbench");
    if p.exists() {
        Some(p)
    } else {
        missing(&format!("bboltbench at {}", p.display())).map(|_| p)
    }
}

fn on_path(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn have_etcd() -> bool {
    if on_path("etcd") && on_path("etcdctl") {
        true
    } else {
        missing("etcd/etcdctl on PATH").is_some()
    }
}

/// Ports handed out in this process (so parallel tests never pick the same one).
static PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A free TCP port on 127.0.0.1 (bound, released, remembered).
pub fn free_port() -> u16 {
    let mut used = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if !used.contains(&p) {
            used.push(p);
            return p;
        }
    }
    panic!("no free port");
}

/// Runs a command with a deadline (output read as it comes); kills it when the
/// deadline passes.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> (bool, String) {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = t1.join().unwrap_or_default();
    let err = t2.join().unwrap_or_default();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    match status {
        Some(st) => (st.success(), text),
        None => (false, format!("killed after {limit:?}: {text}")),
    }
}

/// An etcd process bound to 127.0.0.1 only, stopped (and killed if need be) on drop.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
}

impl Etcd {
    pub fn start(data: &Path, log: &Path) -> Etcd {
        let (cport, pport) = (free_port(), free_port());
        let ep = format!("http://127.0.0.1:{cport}");
        let peer = format!("http://127.0.0.1:{pport}");
        let child = Command::new("etcd")
            .args(["--name", "peer0", "--data-dir"])
            .arg(data)
            .args(["--listen-client-urls", &ep, "--advertise-client-urls", &ep])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("peer0={peer}")])
            .args(["--initial-cluster-state", "new", "--max-txn-ops", "1000"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::fs::File::options().append(true).open(log).unwrap())
            .spawn()
            .unwrap();
        Etcd {
            child,
            endpoint: ep,
            log: log.to_path_buf(),
        }
    }

    /// Waits until healthy (Ok) or exited or the deadline (Err).
    pub fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Err(format!("etcd exited: {st}"));
            }
            let (ok, _) = run_bounded(
                Command::new("etcdctl").args([
                    "--endpoints",
                    &self.endpoint,
                    "--dial-timeout=1s",
                    "--command-timeout=2s",
                    "endpoint",
                    "health",
                ]),
                Duration::from_secs(5),
            );
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("not healthy after {limit:?}"))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// etcdctl against this server; panics on failure.
    pub fn ctl(&self, args: &[&str]) -> String {
        let (ok, out) = run_bounded(
            Command::new("etcdctl")
                .args(["--endpoints", &self.endpoint, "--command-timeout=20s"])
                .args(args),
            Duration::from_secs(30),
        );
        assert!(ok, "etcdctl {args:?}: {out}");
        out
    }

    /// etcdctl txn with the given stdin; the transaction must succeed (its compares
    /// hold).
    pub fn txn(&self, script: &str) {
        self.txn_as(script, "SUCCESS");
    }

    /// etcdctl txn with the given stdin; etcdctl's first line must be `expect`
    /// (`SUCCESS`: the compares held, `FAILURE`: the failure branch ran).
    pub fn txn_as(&self, script: &str, expect: &str) {
        use std::io::Write;
        let mut child = Command::new("etcdctl")
            .args([
                "--endpoints",
                &self.endpoint,
                "--command-timeout=60s",
                "txn",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && s.starts_with(expect),
            "txn: expected {expect}: {s} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every live key as etcd serves it (`get "" --from-key`).
    pub fn get_all(&self) -> BTreeMap<Vec<u8>, Served> {
        let out = self.ctl(&["get", "", "--from-key", "-w", "json"]);
        parse_get_json(&out)
    }

    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What etcd serves for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
}

pub fn b64(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = alphabet.iter().position(|&a| a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

pub fn parse_get_json(out: &str) -> BTreeMap<Vec<u8>, Served> {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    let num = |x: &serde_json::Value| x.as_i64().unwrap_or(0);
    v["kvs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    (
                        b64(kv["key"].as_str().unwrap()),
                        Served {
                            value: b64(kv["value"].as_str().unwrap_or("")),
                            create_revision: num(&kv["create_revision"]),
                            mod_revision: num(&kv["mod_revision"]),
                            version: num(&kv["version"]),
                            lease: num(&kv["lease"]),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

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
