//! Where the peers are, and what happens when one is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (this crate sits in `crates/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

/// Says loudly that a peer is missing and returns `None` (the caller then skips); fails
/// the test under `CI`, where every peer must be installed.
pub fn missing(what: &str) -> Option<()> {
    if std::env::var_os("CI").is_some() {
        panic!("required peer missing under CI: {what} (scripts/test.sh installs the peers; PEERS_BIN)");
    }
    // Written to fd 2 directly, past the test harness's capture, so that a skip is
    // always visible.
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
    None
}

/// Where the installed peers live (`PEERS_BIN`, default `<workspace>/target/peers`).
pub fn peers_bin() -> PathBuf {
    std::env::var_os("PEERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/peers"))
}

/// The peers' scripts (`PEERS_DIR`, default `../shared/peers` beside the workspace).
pub fn peers_scripts() -> PathBuf {
    std::env::var_os("PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/peers"))
}

/// The `bboltbench` peer (real bbolt), if installed.
pub fn bboltbench() -> Option<PathBuf> {
    let p = peers_bin().join("bboltbench/bboltbench");
    if p.exists() {
        Some(p)
    } else {
        missing(&format!("bboltbench at {}", p.display())).map(|_| p)
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
