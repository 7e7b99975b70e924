//! CI smoke run: the whole harness on a tiny data set, untorn alone. Checks that the
//! output is well-formed and the numbers are sane (every read found its key, sizes are
//! positive) — never a timing.

use std::process::Command;

use untorn_bench::data::DataSet;
use untorn_bench::harness::Results;
use untorn_bench::workload::{phase_names, Measurement, Params};

const KEYS: u64 = 3000;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_untorn-bench"))
}

fn data() -> DataSet {
    DataSet {
        seed: 3,
        key_size_bytes: 24,
        value_size_bytes: 150,
    }
}

#[test]
fn all_on_a_tiny_data_set_writes_a_sane_report() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let out = bench()
        .args(["all", "--engines", "untorn", "--keys", &KEYS.to_string()])
        .args(["--reps", "2", "--commits", "20", "--check-rounds", "1"])
        .arg("--dir")
        .arg(t.join("data"))
        .arg("--report")
        .arg(t.join("BENCHMARKS.md"))
        .arg("--svg")
        .arg(t.join("docs/benchmarks.svg"))
        .arg("--json")
        .arg(t.join("results.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let results: Results =
        serde_json::from_str(&std::fs::read_to_string(t.join("results.json")).unwrap()).unwrap();
    assert!(results.failures.is_empty(), "{:?}", results.failures);
    let p = Params::scaled(data(), KEYS);
    let phases = phase_names(&p);
    assert_eq!(results.phases, phases);
    assert_eq!(results.suite.len(), 2);
    let expected_reads: u64 = (0..KEYS).map(|i| data().value_digest(i)).sum();
    for rep in &results.suite {
        let ms: &Vec<Measurement> = rep.get("untorn").expect("untorn ran");
        let names: Vec<&str> = ms.iter().map(|m| m.phase.as_str()).collect();
        assert_eq!(names, phases.iter().map(String::as_str).collect::<Vec<_>>());
        for m in ms {
            match (m.secs, m.bytes) {
                (Some(s), None) => assert!(s.is_finite() && s > 0.0, "{m:?}"),
                (None, Some(b)) => assert!(b > 0, "{m:?}"),
                _ => panic!("a phase has a time or a size: {m:?}"),
            }
        }
        let get = |name: &str| ms.iter().find(|m| m.phase == name).unwrap();
        // Every bulk-loaded key was found with its value.
        assert_eq!(get("random-reads").checksum, expected_reads);
        assert_eq!(get("len").checksum, p.total());
        assert!(get("random-range-reads").ops >= p.scans);
        for t in &p.threads {
            let expected: u64 = (0..p.total()).map(|i| data().value_digest(i)).sum();
            assert_eq!(get(&format!("random-reads-{t}t")).checksum, expected);
        }
    }
    assert_eq!(results.latency.len(), 2);
    for l in results.latency.iter().flatten() {
        assert_eq!(l.commits, 20);
        assert!(
            l.p50_us > 0.0 && l.p99_us >= l.p50_us && l.raw_p50_us > 0.0,
            "{l:?}"
        );
    }
    assert_eq!(results.check.len(), 2);
    for c in &results.check {
        assert_eq!(c.keys_checked, KEYS);
        assert!(c.file_bytes > 0 && c.check_secs > 0.0 && c.read_secs > 0.0);
    }

    let md = std::fs::read_to_string(t.join("BENCHMARKS.md")).unwrap();
    for needle in [
        "# Benchmarks",
        "- command: `",
        "- machine: ",
        "- filesystem of the data directory",
        "## Ratios: peer / untorn",
        "## Durable single-put commit latency",
        "## untorn `check` throughput",
        "| random reads, 32 threads |",
        "| size after compaction |",
        "![ratios chart](docs/benchmarks.svg)",
    ] {
        assert!(md.contains(needle), "BENCHMARKS.md lacks {needle:?}:\n{md}");
    }
    assert!(!md.contains("Problems in this run"), "{md}");
    let svg = std::fs::read_to_string(t.join("docs/benchmarks.svg")).unwrap();
    assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());

    // `report --from` re-renders the same text from the JSON.
    let again = bench()
        .args(["report", "--from"])
        .arg(t.join("results.json"))
        .arg("--report")
        .arg(t.join("BENCHMARKS.md"))
        .arg("--svg")
        .arg(t.join("docs/benchmarks.svg"))
        .output()
        .unwrap();
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(t.join("BENCHMARKS.md")).unwrap(),
        md
    );
}

#[test]
fn phase_runs_one_phase_for_callgrind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bench()
        .args(["phase", "--engine", "untorn", "--phase", "random-reads"])
        .args(["--keys", "1000", "--dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Measurement> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].phase, "random-reads");
    assert_eq!(lines[0].ops, 1000);
    // The child cleaned up after itself.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    let bad = bench()
        .args([
            "phase", "--engine", "untorn", "--phase", "nope", "--keys", "10", "--dir",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown phase"));
}

/// ARCHITECTURE.md's invariant for this crate: peers stay out of the engine, and out of
/// the default (CI) build of the harness.
#[test]
fn the_engine_and_the_default_build_depend_on_no_peer() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let peers = ["redb", "heed", "fjall", "rusqlite", "rocksdb", "lmdb"];
    let engine = std::fs::read_to_string(root.join("../untorn/Cargo.toml")).unwrap();
    for p in peers {
        assert!(
            !engine.lines().any(|l| l.trim_start().starts_with(p)),
            "the engine depends on {p}"
        );
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("default = []"),
        "untorn-bench has default features"
    );
    for line in manifest
        .lines()
        .filter(|l| peers.iter().any(|p| l.starts_with(p)))
    {
        assert!(
            line.contains("optional = true") || line.contains("dep:"),
            "a peer dependency is not optional: {line}"
        );
    }
    // And the binary built for this test has none compiled in.
    let out = bench().arg("engines").output().unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_string()))
        .collect();
    assert_eq!(names, ["untorn"]);
}
