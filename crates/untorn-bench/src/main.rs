//! untorn benchmarks. Numbers are printed as one JSON object per line; quote ratios
//! between lines measured in the same run (this machine is shared and noisy).
//!
//! ```text
//! untorn-bench bulk   [--keys N] [--key-size B] [--value-size B] [--dir D]
//!     N random keys in ONE write transaction, commit, then N random point reads.
//! untorn-bench commit [--commits N] [--dir D]
//!     Durability::Immediate single-put commits vs raw `write + fdatasync` of one page
//!     on the same disk: median and p99 latency.
//! ```

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use untorn::Database;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            let n = chunk.len();
            chunk.copy_from_slice(v.get(..n).unwrap_or(&[]));
        }
    }
}

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

fn dir_arg(args: &[String]) -> Option<PathBuf> {
    args.iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn bulk(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let n = arg(args, "--keys", 1_000_000)?;
    let key_size = arg(args, "--key-size", 24)? as usize;
    let value_size = arg(args, "--value-size", 150)? as usize;
    let tmp = tempfile::tempdir_in(dir_arg(args).unwrap_or_else(std::env::temp_dir))?;
    let path = tmp.path().join("bulk.untorn");
    let db = Database::create(&path)?;
    let mut rng = Rng(42);
    let mut keys: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let mut k = vec![0u8; key_size];
            rng.fill(&mut k);
            k
        })
        .collect();
    let mut value = vec![0u8; value_size];
    rng.fill(&mut value);

    let t = Instant::now();
    let tx = db.begin_write()?;
    {
        let b = tx.create_bucket("bench")?;
        for k in &keys {
            b.put(k, &value)?;
        }
    }
    let put_s = t.elapsed().as_secs_f64();
    let tc = Instant::now();
    tx.commit()?;
    let commit_s = tc.elapsed().as_secs_f64();
    let insert_s = t.elapsed().as_secs_f64();
    let info = db.info()?;

    // Random reads in a different order.
    for i in (1..keys.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    let tr = Instant::now();
    let mut found = 0u64;
    db.view(|tx| {
        let b = tx.bucket("bench")?.ok_or(untorn::Error::BucketNotFound)?;
        for k in &keys {
            if let Some(v) = b.get(k)? {
                found += u64::from(v.len() == value_size);
            }
        }
        Ok(())
    })?;
    let read_s = tr.elapsed().as_secs_f64();
    if found != n {
        return Err(format!("read back {found} of {n} keys").into());
    }
    println!(
        "{{\"bench\":\"bulk\",\"keys\":{n},\"key_size\":{key_size},\"value_size\":{value_size},\
         \"insert_s\":{insert_s:.3},\"put_s\":{put_s:.3},\"commit_s\":{commit_s:.3},\
         \"read_s\":{read_s:.3},\"read_us_per_key\":{:.3},\"file_bytes\":{},\"high_water_pages\":{}}}",
        read_s * 1e6 / n as f64,
        info.file_size_bytes,
        info.high_water
    );
    Ok(())
}

fn commit_latency(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let n = arg(args, "--commits", 2000)?;
    let tmp = tempfile::tempdir_in(dir_arg(args).unwrap_or_else(std::env::temp_dir))?;
    // Raw baseline: one 4 KiB page write + fdatasync, same directory.
    let raw = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(tmp.path().join("raw"))?;
    let page = vec![0xa5u8; 4096];
    let db = Database::create(tmp.path().join("commit.untorn"))?;
    db.update(|tx| tx.create_bucket("c").map(|_| ()))?;
    // Interleaved, so both series see the same background noise. The first `n` commits
    // ("cold") include allocating journal space; the next `n` ("warm") run after the
    // journal has been through checkpoints and reuses its space, as a long-running
    // process does.
    let mut raw_lat = Vec::with_capacity(n as usize);
    let mut lat = Vec::with_capacity(n as usize);
    let mut cold: Vec<Duration> = Vec::new();
    let mut cold_raw: Vec<Duration> = Vec::new();
    for i in 0..2 * n {
        if i == n {
            cold = std::mem::take(&mut lat);
            cold_raw = std::mem::take(&mut raw_lat);
            db.checkpoint()?;
        }
        let t = Instant::now();
        raw.write_all_at(&page, (i % 256) * 4096)?;
        raw.sync_data()?;
        raw_lat.push(t.elapsed());
        let t = Instant::now();
        db.update(|tx| {
            tx.bucket("c")?
                .ok_or(untorn::Error::BucketNotFound)?
                .put(i.to_be_bytes(), [7u8; 100])
        })?;
        lat.push(t.elapsed());
    }
    cold.sort();
    cold_raw.sort();
    println!(
        "{{\"bench\":\"commit-cold\",\"commits\":{n},\"raw_fdatasync_median_us\":{:.1},\"raw_fdatasync_p99_us\":{:.1},\
         \"commit_median_us\":{:.1},\"commit_p99_us\":{:.1}}}",
        percentile(&cold_raw, 0.5),
        percentile(&cold_raw, 0.99),
        percentile(&cold, 0.5),
        percentile(&cold, 0.99)
    );
    raw_lat.sort();
    lat.sort();
    let (rm, r99) = (percentile(&raw_lat, 0.5), percentile(&raw_lat, 0.99));
    let (cm, c99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    println!(
        "{{\"bench\":\"commit-warm\",\"commits\":{n},\"raw_fdatasync_median_us\":{rm:.1},\"raw_fdatasync_p99_us\":{r99:.1},\
         \"commit_median_us\":{cm:.1},\"commit_p99_us\":{c99:.1},\"median_ratio\":{:.2},\"p99_ratio\":{:.2}}}",
        cm / rm.max(1e-9),
        c99 / r99.max(1e-9)
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bulk") => bulk(&args),
        Some("commit") => commit_latency(&args),
        _ => {
            eprintln!("usage: untorn-bench bulk [--keys N] [--key-size B] [--value-size B] [--dir D]\n       untorn-bench commit [--commits N] [--dir D]");
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("untorn-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
