//! The child side of the protocol: what one engine process runs (`suite`, `phase`,
//! `latency`), shared by `untorn-bench` and by external engine drivers such as
//! `untorn-bench-lmdb` (a separate crate, because heed's API needs `unsafe`, which the
//! workspace forbids).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::data::DataSet;
use crate::engine::{Config, Engine, Result};
use crate::harness::{self, Common};
use crate::{latency, report, workload};

/// Opens engine `name` in a directory.
pub type OpenFn = fn(&str, &Config) -> Result<Box<dyn Engine>>;

#[derive(Args, Clone)]
pub struct CommonArgs {
    /// Keys in the bulk load (every other count scales from it, like redb's at 1M).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Shorthand for --keys 100000.
    #[arg(long)]
    pub small: bool,
    #[arg(long, default_value_t = 24)]
    pub key_size: usize,
    #[arg(long, default_value_t = 150)]
    pub value_size: usize,
    /// PRNG seed of the data set.
    #[arg(long, default_value_t = 3)]
    pub seed: u64,
    /// Cache budget per engine, MiB.
    #[arg(long, default_value_t = 1024)]
    pub cache_mib: usize,
    /// Parent directory for the engines' databases (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl CommonArgs {
    pub fn common(&self) -> Common {
        Common {
            keys: if self.small { 100_000 } else { self.keys },
            key_size: self.key_size,
            value_size: self.value_size,
            seed: self.seed,
            cache_mib: self.cache_mib,
            dir: self.dir.clone().unwrap_or_else(std::env::temp_dir),
        }
    }
}

pub fn data_set(c: &Common) -> DataSet {
    DataSet {
        seed: c.seed,
        key_size_bytes: c.key_size,
        value_size_bytes: c.value_size,
    }
}

pub fn engine_config(c: &Common, dir: &Path) -> Config {
    Config {
        dir: dir.to_path_buf(),
        cache_size_bytes: c.cache_mib << 20,
    }
}

pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// Every phase (or, with `stop_after`, up to that one) on `engine`, one JSON line each.
pub fn suite(engine: &str, c: &Common, stop_after: Option<&str>, open: OpenFn) -> Result<()> {
    let tmp = harness::child_dir(&c.dir, engine)?;
    let params = workload::Params::scaled(data_set(c), c.keys);
    let mut e = open(engine, &engine_config(c, tmp.path()))?;
    let mut emit = |m: workload::Measurement| {
        if stop_after.is_none_or(|s| s == m.phase) {
            eprintln!(
                "{engine:>8} {:<24} {}",
                m.phase,
                match (m.secs, m.bytes) {
                    (Some(s), _) => report::fmt_secs(s),
                    (_, Some(b)) => report::fmt_bytes(b as f64),
                    _ => String::new(),
                }
            );
            let _ = print_json(&m);
        }
    };
    workload::run(engine, e.as_mut(), &params, stop_after, &mut emit)?;
    drop(e);
    Ok(())
}

/// Durable single-put commit latency of `engine`, one JSON line.
pub fn latency(engine: &str, c: &Common, commits: u64, open: OpenFn) -> Result<()> {
    let tmp = harness::child_dir(&c.dir, engine)?;
    let mut e = open(engine, &engine_config(c, tmp.path()))?;
    let l = latency::run(engine, e.as_mut(), &data_set(c), commits)?;
    eprintln!(
        "{engine:>8} commit p50 {:.0} µs p99 {:.0} µs (raw fdatasync p50 {:.0} µs p99 {:.0} µs)",
        l.p50_us, l.p99_us, l.raw_p50_us, l.raw_p99_us
    );
    print_json(&l)
}

#[derive(Parser)]
#[command(about = "An external engine driver of untorn-bench (started by `untorn-bench all`)")]
struct DriverCli {
    #[command(subcommand)]
    cmd: DriverCmd,
}

#[derive(Subcommand)]
enum DriverCmd {
    /// Every phase; one JSON line per phase.
    Suite {
        #[arg(long)]
        engine: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// The phases up to PHASE; prints PHASE.
    Phase {
        #[arg(long)]
        engine: String,
        #[arg(long)]
        phase: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Durable single-put commit latency.
    Latency {
        #[arg(long)]
        engine: String,
        #[arg(long, default_value_t = 2000)]
        commits: u64,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// `name: description` of the engine.
    Engines,
}

/// `main` of an external driver for engine `name`.
pub fn driver_main(name: &str, description: &str, open: OpenFn) -> ExitCode {
    let result = match DriverCli::parse().cmd {
        DriverCmd::Engines => {
            println!("{name}: {description}");
            Ok(())
        }
        DriverCmd::Suite { engine, common } => suite(&engine, &common.common(), None, open),
        DriverCmd::Phase {
            engine,
            phase,
            common,
        } => suite(&engine, &common.common(), Some(&phase), open),
        DriverCmd::Latency {
            engine,
            commits,
            common,
        } => latency(&engine, &common.common(), commits, open),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name} driver: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `name: description` lines an external driver prints for `engines`.
pub fn driver_engines(exe: &Path) -> Result<Vec<(String, String)>> {
    let out = std::process::Command::new(exe).arg("engines").output()?;
    if !out.status.success() {
        return Err(format!("{} engines: {}", exe.display(), out.status).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect())
}
