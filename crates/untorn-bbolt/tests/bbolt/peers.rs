//! Finding and running the real peers (bbolt's Go programs), for the test binaries of
//! both `untorn-bbolt` and `untorn-cli` (the CLI's includes this file by path).
//!
//! Peers are found through env `PEERS_BIN` (default `<workspace>/target/peers`); a
//! missing peer fails under `CI` and prints a loud skip otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (both including crates sit in `crates/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

/// Says loudly that a peer is missing (the caller then skips), or fails under CI.
pub fn missing(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("required peer missing under CI: {what} (run .ci/run's peers setup; PEERS_BIN)");
    }
    // Written to fd 2 directly, past the test harness's capture, so that a skip
    // is always visible.
    use std::io::Write;
    let msg = format!(
        "\n=== SKIPPING: {what} is missing (set PEERS_BIN / run ../shared/peers/setup.sh) ===\n"
    );
    match std::fs::OpenOptions::new().append(true).open("/dev/stderr") {
        Ok(mut f) => {
            let _ = f.write_all(msg.as_bytes());
        }
        Err(_) => eprintln!("{msg}"),
    }
}

/// Where the installed peers live.
pub fn peers_bin() -> PathBuf {
    std::env::var_os("PEERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/peers"))
}

/// The `bboltbench` peer (real bbolt), if installed.
pub fn bboltbench() -> Option<PathBuf> {
    let p = peers_bin().join("bboltbench/bboltbench");
    if p.exists() {
        Some(p)
    } else {
        missing(&format!("bboltbench at {}", p.display()));
        None
    }
}

/// Runs a peer program with `args` and `-db <db>`.
pub fn run_peer(bin: &Path, args: &[&str], db: &Path) -> Output {
    Command::new(bin)
        .args(args)
        .arg("-db")
        .arg(db)
        .output()
        .unwrap()
}
