//! untorn's bbolt check vs bbolt's own `tx.Check()` on the same files.
//!
//! ```text
//! cargo run --release -p untorn-bbolt --example bbolt_check_bench -- [KEYS] [DIR]
//! ```
//! KEYS (default 1200000, about 1 GiB) random 24-byte keys with 150-byte values
//! are loaded with real bbolt (`bboltbench -op load`, reused if DIR already has
//! the file). Then: both checkers on the healthy file (warm cache, best of 3),
//! and both on a copy with the page-cycle incident (`-op corruptcycle`), bbolt's
//! under `lim.sh` with a time and memory cap. Ratios are from this one run.
//! Env: PEERS_BIN (default <workspace>/target/peers), PEERS_DIR (default
//! <workspace>/../shared/peers, for lim.sh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn peers_bin() -> PathBuf {
    std::env::var_os("PEERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers"))
}

fn json_field(line: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\":");
    let i = line.find(&pat)? + pat.len();
    let rest = &line[i..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"').to_string())
}

fn ours(db: &Path) -> (Duration, untorn::unstable::report::Report) {
    let mut best = Duration::MAX;
    let mut report = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = untorn_bbolt::check(db, 100).expect("check");
        best = best.min(t.elapsed());
        report = Some(r);
    }
    (best, report.unwrap_or_default())
}

/// bbolt's check: (best in-process check ms, errors, status, whole-process wall time).
fn theirs(
    bench: &Path,
    db: &Path,
    lim: Option<&Path>,
    timeout_s: u32,
) -> (f64, String, String, Duration) {
    let mut best = f64::MAX;
    let mut errors = String::new();
    let mut status = String::new();
    let mut wall = Duration::MAX;
    let runs = if lim.is_some() { 1 } else { 3 };
    for _ in 0..runs {
        let mut cmd = match lim {
            Some(l) => {
                let mut c = Command::new("bash");
                c.arg(l).arg(timeout_s.to_string()).arg("4000").arg(bench);
                c
            }
            None => Command::new(bench),
        };
        cmd.args([
            "-op",
            "check",
            "-showerr",
            "3",
            "-timeout",
            &timeout_s.to_string(),
            "-db",
        ])
        .arg(db);
        let t = Instant::now();
        let out = cmd.output().expect("run bboltbench");
        wall = wall.min(t.elapsed());
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        match json_field(&stdout, "total_ms").and_then(|s| s.parse::<f64>().ok()) {
            Some(ms) => {
                best = best.min(ms);
                errors = json_field(&stdout, "errors").unwrap_or_default();
                status = json_field(&stdout, "status").unwrap_or_default();
            }
            None => {
                status = stderr
                    .lines()
                    .filter(|l| {
                        l.starts_with("LIM:") || l.contains("fatal") || l.contains("overflow")
                    })
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" | ");
                errors = "n/a (no result)".into();
            }
        }
    }
    (best, errors, status, wall)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let keys: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_200_000);
    let dir = PathBuf::from(
        args.get(2)
            .cloned()
            .unwrap_or_else(|| "/tmp/untorn-bbolt-bench".into()),
    );
    std::fs::create_dir_all(&dir).expect("mkdir");
    let bench = peers_bin().join("bboltbench/bboltbench");
    let lim = std::env::var_os("PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/peers"
            ))
        })
        .join("lim.sh");
    assert!(
        bench.exists(),
        "bboltbench not found at {} (PEERS_BIN)",
        bench.display()
    );
    let healthy = dir.join(format!("healthy-{keys}.db"));
    if !healthy.exists() {
        eprintln!(
            "loading {keys} keys with bbolt into {} ...",
            healthy.display()
        );
        let tmp = healthy.with_extension("loading");
        let _ = std::fs::remove_file(&tmp);
        let st = Command::new(&bench)
            .args([
                "-op",
                "load",
                "-nosync",
                "-batch",
                "10000",
                "-n",
                &keys.to_string(),
                "-db",
            ])
            .arg(&tmp)
            .status()
            .expect("load");
        assert!(st.success());
        std::fs::rename(&tmp, &healthy).expect("rename");
    }
    let size = std::fs::metadata(&healthy).map(|m| m.len()).unwrap_or(0);
    let file = untorn_bbolt::BoltFile::open(&healthy).expect("open");
    println!(
        "healthy file: {} ({:.1} MiB, {} pages in use, page size {})",
        healthy.display(),
        size as f64 / (1 << 20) as f64,
        file.hwm(),
        file.page_size()
    );
    drop(file);
    // Warm the page cache for both.
    let _ = untorn_bbolt::check(&healthy, 1);
    let (our_t, our_r) = ours(&healthy);
    let (their_ms, their_errs, their_status, their_wall) = theirs(&bench, &healthy, None, 600);
    println!(
        "healthy  untorn check: {:>9.1} ms  findings {} (pages {}, keys {})",
        our_t.as_secs_f64() * 1e3,
        our_r.findings.len(),
        our_r.pages_checked,
        our_r.keys_checked
    );
    println!(
        "healthy  bbolt  check: {:>9.1} ms  errors {their_errs} status {their_status} (process wall {:.1} ms)",
        their_ms,
        their_wall.as_secs_f64() * 1e3
    );
    println!(
        "healthy  ratio bbolt/untorn: {:.2}x (check only), {:.2}x (bbolt process wall vs untorn check)",
        their_ms / (our_t.as_secs_f64() * 1e3),
        their_wall.as_secs_f64() / our_t.as_secs_f64()
    );

    let cyclic = dir.join(format!("cyclic-{keys}.db"));
    std::fs::copy(&healthy, &cyclic).expect("copy");
    let out = Command::new(&bench)
        .args(["-op", "corruptcycle", "-db"])
        .arg(&cyclic)
        .output()
        .expect("corruptcycle");
    assert!(out.status.success(), "{out:?}");
    println!("cycle: {}", String::from_utf8_lossy(&out.stdout).trim());
    let (our_c, our_cr) = ours(&cyclic);
    let cycle = our_cr
        .findings
        .iter()
        .find(|f| f.kind == untorn::unstable::report::FindingKind::Cycle)
        .map(|f| f.to_string())
        .unwrap_or_else(|| "NO CYCLE FOUND".into());
    println!(
        "cyclic   untorn check: {:>9.1} ms  {} findings; {cycle}",
        our_c.as_secs_f64() * 1e3,
        our_cr.findings.len()
    );
    let limit_s = 30;
    let (c_ms, c_errs, c_status, c_wall) = theirs(&bench, &cyclic, Some(&lim), limit_s);
    println!(
        "cyclic   bbolt  check: {} errors {c_errs} status {c_status} (wall {:.1} s, limit {limit_s} s)",
        if c_ms == f64::MAX { "no result".to_string() } else { format!("{c_ms:.1} ms") },
        c_wall.as_secs_f64()
    );
    println!(
        "cyclic   ratio bbolt wall / untorn check: >= {:.0}x",
        c_wall.as_secs_f64() / our_c.as_secs_f64()
    );
    let _ = std::fs::remove_file(&cyclic);
}
