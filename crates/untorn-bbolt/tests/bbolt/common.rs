//! Shared helpers: the Go fixture program, the peers, dumps in one text form.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use untorn_bbolt::{BoltFile, DumpItem};

use untorn_testkit::run_peer;

pub use untorn_testkit::{bboltbench, missing, workspace_root};

static FIXTURE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Builds tests/go/fixture.go once per test run.
pub fn fixture_bin() -> Option<PathBuf> {
    FIXTURE
        .get_or_init(|| {
            let out_dir = workspace_root().join("target/untorn-bbolt-go");
            std::fs::create_dir_all(&out_dir).ok()?;
            let out = out_dir.join("fixture");
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/fixture.go");
            let gopath = std::env::var("BBOLT_GOPATH").unwrap_or("/usr/share/gocode".into());
            let status = Command::new("go")
                .args(["build", "-o"])
                .arg(&out)
                .arg(&src)
                .env("GO111MODULE", "off")
                .env("GOPATH", &gopath)
                .env("GOFLAGS", "")
                .status();
            match status {
                Ok(s) if s.success() => Some(out),
                other => {
                    missing(&format!(
                        "Go toolchain with bbolt source in GOPATH {gopath} (go build: {other:?})"
                    ));
                    None
                }
            }
        })
        .clone()
}

/// Runs the fixture program; panics on failure.
pub fn fixture(args: &[&str], db: &Path) -> String {
    let bin = fixture_bin().expect("fixture binary");
    let out = run_peer(&bin, args, db);
    assert!(
        out.status.success(),
        "fixture {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Makes a fixture file with real bbolt. None when the Go toolchain is missing.
pub fn make_db(dir: &Path, name: &str, page_size: u32, no_freelist_sync: bool) -> Option<PathBuf> {
    make_db_n(dir, name, page_size, no_freelist_sync, 3000)
}

/// Like `make_db` with `nkeys` keys in the main bucket.
pub fn make_db_n(
    dir: &Path,
    name: &str,
    page_size: u32,
    no_freelist_sync: bool,
    nkeys: usize,
) -> Option<PathBuf> {
    make_db_with(dir, name, page_size, no_freelist_sync, nkeys, 0)
}

/// Like `make_db_n`, plus a bucket `tenants` of `tenants` sub-buckets (and nothing else).
pub fn make_db_with(
    dir: &Path,
    name: &str,
    page_size: u32,
    no_freelist_sync: bool,
    nkeys: usize,
    tenants: usize,
) -> Option<PathBuf> {
    fixture_bin()?;
    let db = dir.join(name);
    let ps = page_size.to_string();
    let n = nkeys.to_string();
    let t = tenants.to_string();
    let mut args = vec!["-op", "make", "-pagesize", &ps, "-n", &n, "-tenants", &t];
    if no_freelist_sync {
        args.push("-nofreelistsync");
    }
    fixture(&args, &db);
    Some(db)
}

/// bbolt's own view: `B path seq` and `P path key value` lines.
pub fn go_dump(db: &Path) -> Vec<String> {
    fixture(&["-op", "dump"], db)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Real bbolt's Check(): Ok(()) or Err(output).
pub fn go_check(db: &Path) -> Result<(), String> {
    let bin = fixture_bin().expect("fixture binary");
    let out = run_peer(&bin, &["-op", "check"], db);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn hex_path(p: &[Vec<u8>]) -> String {
    p.iter().map(|c| hex(c)).collect::<Vec<_>>().join("/")
}

/// Our view, in the same text form as `go_dump`.
pub fn our_dump(file: &BoltFile) -> Vec<String> {
    untorn_bbolt::dump(file)
        .map(|r| match r.unwrap() {
            DumpItem::Bucket { path, sequence } => format!("B {} {sequence}", hex_path(&path)),
            DumpItem::Pair(e) => format!(
                "P {} {} {}",
                hex_path(&e.bucket),
                hex(&e.key),
                hex(&e.value)
            ),
        })
        .collect()
}
