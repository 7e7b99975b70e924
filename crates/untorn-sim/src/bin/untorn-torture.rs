//! `untorn-torture`: random workloads on the fault-injecting simulated disk, with crash
//! points and faults, checked against a model after every reopen.
//!
//! ```text
//! untorn-torture --seed-start 0 --seeds 100 --faults strict --ops 40 --cycles 8
//! untorn-torture --exhaustive --seeds 5 --max-subsets 1024
//! ```
//! Output ends with the number of crash states explored, then `N passed, M failed`.

use std::process::ExitCode;

use untorn_sim::config::{Config, FaultClasses};
use untorn_sim::torture::run;

/// `--at-rest`: every seed builds a quiescent database and reopens damaged copies.
fn at_rest(cfg: &Config, trials: u64) -> ExitCode {
    let (mut passed, mut failed, mut states) = (0u64, 0u64, 0u64);
    for seed in cfg.seed_start..cfg.seed_start.saturating_add(cfg.seeds) {
        match untorn_sim::at_rest::run_seed(seed, trials) {
            Ok(s) => {
                passed += 1;
                states += s.trials;
            }
            Err(e) => {
                failed += 1;
                println!("seed {seed} FAILED: {e}");
                println!(
                    "  reproduce: cargo run -p untorn-sim --bin untorn-torture -- --at-rest {trials} --seed-start {seed} --seeds 1"
                );
            }
        }
    }
    println!("{states} damaged states explored");
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

const USAGE: &str = "usage: untorn-torture [--seed-start S] [--seeds N] [--faults LIST] [--ops N]
                     [--cycles N] [--readers N] [--checkpoint-threshold BYTES]
                     [--exhaustive [--max-subsets N]] [--at-rest TRIALS] [--force-strict] [--durability-none] [--max-value-bytes N]
                     [--keys N] [--ops-per-tx N]
                     [--verbose]
  --at-rest TRIALS: per seed, damage TRIALS copies of a quiescent database at rest instead
  --faults: comma-separated crash,torn,reorder,garble,lost,misdirect,bitrot,eio,enospc,recovery-crash
            or all | strict (every class that must keep acknowledged commits) | none";

/// What to run besides the configuration.
#[derive(Default)]
struct Mode {
    /// At-rest damage trials per seed instead of the crash torture.
    at_rest_trials: Option<u64>,
}

fn parse(args: &[String], mode: &mut Mode) -> Result<Config, String> {
    let mut cfg = Config::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<&String, String> {
            it.next().ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |s: &String, name: &str| -> Result<u64, String> {
            s.parse::<u64>()
                .map_err(|_| format!("{name}: not a number: {s}"))
        };
        match flag.as_str() {
            "--seed-start" => cfg.seed_start = number(value(flag)?, flag)?,
            "--seeds" => cfg.seeds = number(value(flag)?, flag)?,
            "--faults" => cfg.faults = FaultClasses::parse(value(flag)?)?,
            "--ops" => cfg.ops = number(value(flag)?, flag)? as usize,
            "--cycles" => cfg.cycles = number(value(flag)?, flag)? as usize,
            "--readers" => cfg.readers = number(value(flag)?, flag)? as usize,
            "--checkpoint-threshold" => {
                cfg.checkpoint_threshold_bytes = number(value(flag)?, flag)?
            }
            "--max-subsets" => cfg.max_subsets_per_point = number(value(flag)?, flag)? as usize,
            "--keys" => cfg.keyspace = number(value(flag)?, flag)?.max(1),
            "--ops-per-tx" => cfg.max_ops_per_tx = number(value(flag)?, flag)?.max(1),
            "--max-value-bytes" => cfg.max_value_bytes = number(value(flag)?, flag)?,
            "--exhaustive" => cfg.exhaustive = true,
            "--at-rest" => mode.at_rest_trials = Some(number(value(flag)?, flag)?),
            "--force-strict" => cfg.force_strict = true,
            "--durability-none" => cfg.durability_none = true,
            "--verbose" | "-v" => cfg.verbose = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut mode = Mode::default();
    let cfg = match parse(&args, &mut mode) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    if let Some(trials) = mode.at_rest_trials {
        return at_rest(&cfg, trials);
    }
    let summary = run(&cfg);
    for f in &summary.failures {
        println!("seed {} FAILED: {}", f.seed, f.message);
        println!("  reproduce: {}", f.repro);
    }
    println!(
        "{} cycles, {} read snapshots verified, {} detected-corruption reopens, {:.1} s",
        summary.cycles,
        summary.snapshots_verified,
        summary.corruption_detected,
        started.elapsed().as_secs_f64()
    );
    println!("faults fired: {:?}", summary.faults_fired);
    println!(
        "straight-home commits: {} ({} pages; exhaustive mode counts each seed's fault-free run once)",
        summary.direct_home_commits, summary.direct_home_pages
    );
    println!("{} crash states explored", summary.crash_states);
    println!("{} passed, {} failed", summary.passed, summary.failed);
    if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
