//! Running the binary and building test databases.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PS: usize = 4096;

/// Runs `untorn args...` with optional stdin.
pub fn untorn(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_untorn"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn untorn");
    let mut input = child.stdin.take().unwrap();
    if let Some(b) = stdin {
        input.write_all(b).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// Runs and asserts the exit code; returns stdout.
pub fn ok(args: &[&str], code: i32) -> String {
    let o = untorn(args, None);
    assert_eq!(
        o.status.code(),
        Some(code),
        "untorn {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

pub struct Db {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Db {
    pub fn p(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// A database with a few buckets (one nested), binary keys, a large value.
pub fn sample() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.untorn");
    let mut lines = String::new();
    for i in 0..400 {
        lines.push_str(&format!(
            "{{\"bucket\":[\"users\"],\"key\":\"user{i:04}\",\"value\":\"value of user {i}\"}}\n"
        ));
    }
    lines.push_str("{\"bucket\":[\"users\",\"logins\"],\"sequence\":7}\n");
    lines.push_str("{\"bucket\":[\"users\",\"logins\"],\"key\":{\"hex\":\"00ff10\"},\"value\":{\"hex\":\"deadbeef\"}}\n");
    lines.push_str(&format!(
        "{{\"bucket\":[\"blobs\"],\"key\":\"big\",\"value\":\"{}\"}}\n",
        "x".repeat(20_000)
    ));
    lines.push_str("{\"bucket\":[\"empty\"],\"sequence\":0}\n");
    lines.push_str("{\"bucket\":[{\"hex\":\"c3\"}],\"key\":\"k\",\"value\":\"\"}\n");
    let o = untorn(
        &["load", path.to_str().unwrap(), "--batch", "100"],
        Some(lines.as_bytes()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Db { _dir: dir, path }
}

/// Page ids of the given type and state, from `untorn pages --json`.
pub fn pages_of(db: &Db, kind: &str) -> Vec<u64> {
    let out = ok(&["pages", db.p(), "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == kind && p["state"] == "reachable")
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

pub fn flip(path: &Path, page: u64, byte: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[page as usize * PS + byte] ^= 0x20;
    std::fs::write(path, b).unwrap();
}
