//! Benchmark (not a test): how long `check` takes on a large database compared with
//! reading the same file sequentially in the same run.
//!
//! ```text
//! cargo run --release -p untorn-cli --example native_check_bench -- [SIZE_MIB] [PATH]
//! ```
//!
//! Builds (or reuses, if PATH exists) a database of about SIZE_MIB MiB (default 1024)
//! with several buckets, small and overflow values, then times: a sequential read of the
//! file in 1 MiB chunks, `check` through the engine's read snapshot, `check` of the raw
//! data file, and the sequential read again (both reads come from the page cache after
//! the build, so the comparison is CPU + syscall cost, not disk).

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use untorn::unstable::check::{check, check_storage, CheckOptions};
use untorn::{Database, Durability, FileStorage, Storage};

fn read_sequentially(path: &PathBuf) -> (Duration, u64) {
    let t = Instant::now();
    let mut f = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut sum = 0u64;
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
        // Touch the bytes so the read is not optimised into nothing.
        sum = sum.wrapping_add(u64::from(buf[0]) + u64::from(buf[n - 1]));
    }
    std::hint::black_box(sum);
    (t.elapsed(), total)
}

fn build(path: &PathBuf, size_mib: u64) {
    let db = Database::builder()
        .durability(Durability::None)
        .checkpoint_threshold_bytes(256 << 20)
        .create(path)
        .expect("create");
    let target = size_mib << 20;
    let mut i = 0u64;
    let t = Instant::now();
    loop {
        db.update(|tx| -> untorn::Result<_> {
            for b in 0..4u64 {
                let bucket = tx.create_bucket_if_not_exists(format!("bucket{b}"))?;
                for _ in 0..2_500 {
                    i += 1;
                    let key = format!("key{:012}", i.wrapping_mul(0x9e37_79b9) % 10_000_000_000);
                    let len = if i.is_multiple_of(50) {
                        6000
                    } else {
                        100 + (i % 300) as usize
                    };
                    bucket.put(key, vec![(i % 251) as u8; len])?;
                }
            }
            Ok(())
        })
        .expect("update");
        // The size the data file will have once checkpointed.
        let info = db.info().expect("info");
        if info.high_water * info.page_size as u64 >= target {
            break;
        }
    }
    db.checkpoint().expect("checkpoint");
    drop(db);
    eprintln!("built {} keys in {:.1?}", i, t.elapsed());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let dir = tempfile_dir();
    let path = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("bench.untorn"));
    if !path.exists() {
        build(&path, size_mib);
    }
    let (read1, bytes) = read_sequentially(&path);

    let db = Database::builder()
        .read_only(true)
        .open(&path)
        .expect("open");
    let tx = db.begin_read().expect("read tx");
    let t = Instant::now();
    let report =
        check(untorn::unstable::check_source(&tx), CheckOptions::default()).expect("check");
    let snap = t.elapsed();
    assert!(report.is_ok(), "{:?}", report.findings);
    drop(tx);
    drop(db);

    let file = std::fs::File::open(&path).expect("open");
    let storage: Arc<dyn Storage> = Arc::new(FileStorage::new(file));
    let t = Instant::now();
    let raw = check_storage(storage, CheckOptions::default()).expect("check");
    let raw_t = t.elapsed();
    assert!(raw.is_ok(), "{:?}", raw.findings);

    let (read2, _) = read_sequentially(&path);
    let read = read1.min(read2);
    let mib = bytes as f64 / (1 << 20) as f64;
    println!(
        "file: {mib:.0} MiB, {} pages checked, {} keys",
        report.pages_checked, report.keys_checked
    );
    println!(
        "sequential read: {read:.2?} ({:.0} MiB/s)",
        mib / read.as_secs_f64()
    );
    println!(
        "check (engine snapshot): {snap:.2?} ({:.0} MiB/s), {:.1}x the sequential read",
        mib / snap.as_secs_f64(),
        snap.as_secs_f64() / read.as_secs_f64()
    );
    println!(
        "check (raw data file):   {raw_t:.2?} ({:.0} MiB/s), {:.1}x the sequential read",
        mib / raw_t.as_secs_f64(),
        raw_t.as_secs_f64() / read.as_secs_f64()
    );
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("untorn-check-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
