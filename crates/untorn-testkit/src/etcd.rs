//! A real etcd 3.4 process on 127.0.0.1 (free ports, deadlines, always stopped), and
//! what it serves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::missing;
use crate::process::{free_port, on_path, run_bounded};

/// Whether `etcd` and `etcdctl` are installed (a loud skip, or a failure under `CI`).
pub fn have_etcd() -> bool {
    if on_path("etcd") && on_path("etcdctl") {
        true
    } else {
        missing("etcd/etcdctl on PATH").is_some()
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
