//! etcd end to end: a real etcd 3.4 data dir, damaged with the page-cycle
//! incident, refuses to start; after salvage into the data dir etcd starts and
//! serves every surviving key with its exact value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use untorn_bbolt::{BoltFile, DumpItem, SalvageOptions};

use crate::common::*;

fn peers_scripts() -> PathBuf {
    std::env::var_os("PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/peers"
            ))
        })
}

fn on_path(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a command with a deadline; kills it when the deadline passes.
fn run_bounded(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (false, format!("killed after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An etcd process bound to 127.0.0.1 only, stopped on drop.
struct Etcd {
    child: Child,
    endpoint: String,
}

impl Etcd {
    fn start(data: &Path, cport: u16, pport: u16, log: &Path) -> Etcd {
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
            .args([
                "--initial-cluster",
                &format!("peer0={peer}"),
                "--initial-cluster-state",
                "new",
            ])
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::fs::File::options().append(true).open(log).unwrap())
            .spawn()
            .unwrap();
        Etcd {
            child,
            endpoint: ep,
        }
    }

    /// Waits until healthy (Ok) or exited (Err(status)) or the deadline (Err).
    fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Err(format!("etcd exited: {st}"));
            }
            let ok = Command::new("etcdctl")
                .args([
                    "--endpoints",
                    &self.endpoint,
                    "--dial-timeout=1s",
                    "endpoint",
                    "health",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("not healthy after {limit:?}"))
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
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

fn b64(s: &str) -> Vec<u8> {
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

fn etcd_get_all(ep: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let out = Command::new("etcdctl")
        .args([
            "--endpoints",
            ep,
            "--command-timeout=20s",
            "get",
            "",
            "--from-key",
            "-w",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "etcdctl get: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["kvs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|kv| {
                    (
                        b64(kv["key"].as_str().unwrap()),
                        b64(kv["value"].as_str().unwrap_or("")),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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
    let base = 26000 + (std::process::id() % 400) as u16 * 4;
    let (cport, pport) = (base, base + 1);
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
    let mut etcd = Etcd::start(&data, cport, pport, &log1);
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
    let mut etcd = Etcd::start(&data, cport, pport, &log2);
    if let Err(e) = etcd.wait_healthy(Duration::from_secs(15)) {
        panic!(
            "etcd did not start on the salvaged db: {e}\n{}",
            std::fs::read_to_string(&log2).unwrap_or_default()
        );
    }
    let served = etcd_get_all(&etcd.endpoint);
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
