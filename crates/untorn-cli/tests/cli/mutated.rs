//! Every command on mutated files of both formats: the binary never panics, never hangs,
//! and exits 0, 1 or 2. (The library fuzz targets cover the parsers; this covers the
//! CLI's own handling of whatever they return.)

use untorn::unstable::fuzzing::{mutate, Rng};

use crate::common::{sample, untorn};

/// The bbolt file of the `--help` examples (bucket "keys", 3,000 keys).
fn bbolt_sample(path: &std::path::Path) {
    crate::help_examples::bbolt_example(path);
}

/// One to five damages of the kinds `untorn::unstable::fuzzing::mutate` does.
fn damaged(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    for _ in 0..1 + rng.index(5) {
        mutate(rng, &mut b, 4096);
    }
    b
}

#[test]
fn mutated_files_of_both_formats_never_crash_the_binary() {
    let native = sample();
    let dir = tempfile::tempdir().unwrap();
    let bolt = dir.path().join("base.bolt");
    bbolt_sample(&bolt);
    let bases = [
        std::fs::read(&native.path).unwrap(),
        std::fs::read(&bolt).unwrap(),
    ];
    let f = dir.path().join("f");
    let fs = f.to_str().unwrap();
    let svg = dir.path().join("o.svg");
    let out = dir.path().join("salvaged");
    let mut rng = Rng::new(0x5eed_1234_abcd_0001);
    let mut runs = 0;
    for base in &bases {
        for _ in 0..12 {
            std::fs::write(&f, damaged(&mut rng, base)).unwrap();
            let _ = std::fs::remove_file(&out);
            let commands: Vec<Vec<&str>> = vec![
                vec!["check", fs, "--json"],
                vec!["info", fs],
                vec!["stats", fs],
                vec!["pages", fs],
                vec!["page", fs, "2", "3", "--hex"],
                vec!["map", fs, "--svg", svg.to_str().unwrap()],
                vec!["buckets", fs],
                vec!["dump", fs],
                vec!["salvage", fs, out.to_str().unwrap()],
            ];
            for cmd in commands {
                let o = untorn(&cmd, None);
                runs += 1;
                let stderr = String::from_utf8_lossy(&o.stderr);
                assert!(!stderr.contains("panicked"), "{cmd:?} panicked: {stderr}");
                assert!(
                    matches!(o.status.code(), Some(0..=2)),
                    "{cmd:?} exited {:?}: {stderr}",
                    o.status.code()
                );
            }
        }
    }
    assert_eq!(runs, 2 * 12 * 9);
}
