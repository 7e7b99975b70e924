//! `untorn-bench`: see the crate docs and `untorn-bench --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use untorn_bench::data::DataSet;
use untorn_bench::engine::{Config, Result};
use untorn_bench::harness::{self, Common, Launcher, Plan, Results};
use untorn_bench::{check_speed, engines, latency, report, svg, workload};

#[derive(Parser)]
#[command(
    name = "untorn-bench",
    about = "redb's benchmark phases on untorn and its peers; writes BENCHMARKS.md",
    after_help = "Examples:\n  \
      untorn-bench all --small                      # untorn (and compiled-in peers), 100k keys\n  \
      untorn-bench all --engines untorn,redb --reps 5\n  \
      untorn-bench phase --engine untorn --phase random-reads --keys 100000   # for callgrind\n  \
      untorn-bench engines                          # what this binary was built with"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// Keys in the bulk load (every other count scales from it, like redb's at 1M).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Shorthand for --keys 100000.
    #[arg(long)]
    small: bool,
    #[arg(long, default_value_t = 24)]
    key_size: usize,
    #[arg(long, default_value_t = 150)]
    value_size: usize,
    /// PRNG seed of the data set.
    #[arg(long, default_value_t = 3)]
    seed: u64,
    /// Cache budget per engine, MiB.
    #[arg(long, default_value_t = 1024)]
    cache_mib: usize,
    /// Parent directory for the engines' databases (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl CommonArgs {
    fn common(&self) -> Common {
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

#[derive(Subcommand)]
enum Cmd {
    /// The whole comparison: every engine, rotated repetitions, then the report.
    All {
        #[command(flatten)]
        common: CommonArgs,
        /// Comma-separated engines (default: every compiled-in engine, plus bbolt when
        /// its driver is found).
        #[arg(long, value_delimiter = ',')]
        engines: Vec<String>,
        /// Repetitions (the engine order rotates by one each time).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// Durable single-put commits per latency run.
        #[arg(long, default_value_t = 2000)]
        commits: u64,
        /// Rounds of the check-throughput comparison per repetition.
        #[arg(long, default_value_t = 3)]
        check_rounds: u32,
        #[arg(long)]
        no_latency: bool,
        #[arg(long)]
        no_check: bool,
        #[arg(long, default_value = "BENCHMARKS.md")]
        report: PathBuf,
        #[arg(long, default_value = "docs/benchmarks.svg")]
        svg: PathBuf,
        /// Also write every raw measurement as JSON (re-render with `report --from`).
        #[arg(long)]
        json: Option<PathBuf>,
        /// The Go bbolt driver (built by scripts/bench.sh).
        #[arg(long, default_value = "target/peers/untorn-bench-bbolt")]
        bbolt: PathBuf,
    },
    /// Child: every phase on one engine; prints one JSON line per phase.
    Suite {
        #[arg(long)]
        engine: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// One phase on one engine (the phases before it run first to build its starting
    /// state). Point callgrind at it with --toggle-collect='*phase_<name_with_underscores>*'.
    Phase {
        #[arg(long)]
        engine: String,
        /// e.g. bulk-load, random-reads, random-range-reads, random-reads-4t, removals.
        #[arg(long)]
        phase: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Child: durable single-put commit latency against raw pwrite + fdatasync.
    Latency {
        #[arg(long)]
        engine: String,
        #[arg(long, default_value_t = 2000)]
        commits: u64,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Child: untorn `check` against a sequential read of the same file.
    CheckSpeed {
        /// Accepted for symmetry with the other children; only untorn has `check`.
        #[arg(long, default_value = "untorn")]
        engine: String,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Re-render BENCHMARKS.md and the SVG from a `--json` results file.
    Report {
        #[arg(long)]
        from: PathBuf,
        #[arg(long, default_value = "BENCHMARKS.md")]
        report: PathBuf,
        #[arg(long, default_value = "docs/benchmarks.svg")]
        svg: PathBuf,
    },
    /// Lists the engines compiled into this binary.
    Engines,
}

fn data_set(c: &Common) -> DataSet {
    DataSet {
        seed: c.seed,
        key_size_bytes: c.key_size,
        value_size_bytes: c.value_size,
    }
}

fn engine_config(c: &Common, dir: &Path) -> Config {
    Config {
        dir: dir.to_path_buf(),
        cache_size_bytes: c.cache_mib << 20,
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

fn suite(engine: &str, c: &Common, stop_after: Option<&str>) -> Result<()> {
    let tmp = harness::child_dir(&c.dir, engine)?;
    let params = workload::Params::scaled(data_set(c), c.keys);
    let mut e = engines::open(engine, &engine_config(c, tmp.path()))?;
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

/// The link from the report to the chart: relative when the chart is below the report.
fn svg_link(report_path: &Path, svg_path: &Path) -> String {
    let base = report_path.parent().unwrap_or(Path::new(""));
    svg_path
        .strip_prefix(base)
        .unwrap_or(svg_path)
        .display()
        .to_string()
}

fn write_outputs(results: &Results, report_path: &Path, svg_path: &Path) -> Result<()> {
    for p in [report_path, svg_path] {
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
    }
    std::fs::write(svg_path, svg::chart(results))?;
    let link = svg_link(report_path, svg_path);
    std::fs::write(report_path, report::markdown(results, Some(&link)))?;
    eprintln!("wrote {} and {}", report_path.display(), svg_path.display());
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Engines => {
            for (name, description) in engines::compiled() {
                println!("{name}: {description}");
            }
            Ok(())
        }
        Cmd::Suite { engine, common } => suite(&engine, &common.common(), None),
        Cmd::Phase {
            engine,
            phase,
            common,
        } => suite(&engine, &common.common(), Some(&phase)),
        Cmd::Latency {
            engine,
            commits,
            common,
        } => {
            let c = common.common();
            let tmp = harness::child_dir(&c.dir, &engine)?;
            let mut e = engines::open(&engine, &engine_config(&c, tmp.path()))?;
            let l = latency::run(&engine, e.as_mut(), &data_set(&c), commits)?;
            eprintln!(
                "{engine:>8} commit p50 {:.0} µs p99 {:.0} µs (raw fdatasync p50 {:.0} µs p99 {:.0} µs)",
                l.p50_us, l.p99_us, l.raw_p50_us, l.raw_p99_us
            );
            print_json(&l)
        }
        Cmd::CheckSpeed {
            engine,
            rounds,
            common,
        } => {
            if engine != "untorn" {
                return Err(format!("check-speed measures untorn only, not {engine}").into());
            }
            let c = common.common();
            let tmp = harness::child_dir(&c.dir, "check")?;
            let s = check_speed::run(tmp.path(), &data_set(&c), c.keys, rounds)?;
            eprintln!(
                "  untorn check {} ({:.0} MiB/s) vs sequential read {} ({:.0} MiB/s)",
                report::fmt_secs(s.check_secs),
                s.check_mib_per_s(),
                report::fmt_secs(s.read_secs),
                s.read_mib_per_s()
            );
            print_json(&s)
        }
        Cmd::Report { from, report, svg } => {
            let results: Results = serde_json::from_str(&std::fs::read_to_string(&from)?)?;
            write_outputs(&results, &report, &svg)
        }
        Cmd::All {
            common,
            engines: wanted,
            reps,
            commits,
            check_rounds,
            no_latency,
            no_check,
            report,
            svg,
            json,
            bbolt,
        } => {
            let c = common.common();
            let exe = std::env::current_exe()?;
            let compiled = engines::compiled();
            let bbolt_found = bbolt.is_file();
            let wanted: Vec<String> = if wanted.is_empty() {
                let mut v: Vec<String> = compiled.iter().map(|(n, _)| n.to_string()).collect();
                if bbolt_found {
                    v.push("bbolt".into());
                }
                v
            } else {
                wanted
            };
            if !wanted.iter().any(|w| w == "untorn") {
                return Err("--engines must include untorn (ratios are relative to it)".into());
            }
            let mut plan_engines = Vec::new();
            for name in &wanted {
                if name == "bbolt" {
                    if !bbolt_found {
                        return Err(format!(
                            "bbolt driver not found at {} (scripts/bench.sh builds it)",
                            bbolt.display()
                        )
                        .into());
                    }
                    plan_engines.push((
                        name.clone(),
                        untorn_bench::engines::BBOLT_DESCRIPTION.to_string(),
                        Launcher::Bbolt(bbolt.canonicalize()?),
                    ));
                    continue;
                }
                let Some((_, d)) = compiled.iter().find(|(n, _)| n == name) else {
                    return Err(format!(
                        "engine {name} is not compiled in (build with --features peers)"
                    )
                    .into());
                };
                plan_engines.push((name.clone(), d.to_string(), Launcher::SelfExe(exe.clone())));
            }
            // untorn first: it is the column every ratio divides by.
            plan_engines.sort_by_key(|(n, _, _)| n != "untorn");
            let plan = Plan {
                engines: plan_engines,
                reps: reps.max(1),
                commits,
                check_rounds,
                latency: !no_latency,
                check: !no_check,
            };
            let mut command = std::env::args().collect::<Vec<_>>().join(" ");
            // scripts/bench.sh says how it was invoked, which is what a reader re-runs.
            if let Ok(wrapper) = std::env::var("UNTORN_BENCH_COMMAND") {
                command = format!("{} (runs: {command})", wrapper.trim());
            }
            let params = workload::Params::scaled(data_set(&c), c.keys);
            let mut save = |results: &Results| -> Result<()> {
                if let Some(j) = &json {
                    if let Some(parent) = j.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::write(j, serde_json::to_string_pretty(results)?)?;
                }
                write_outputs(results, &report, &svg)
            };
            let results = harness::run_all(
                &plan,
                &c,
                command,
                workload::phase_names(&params),
                &mut save,
            )?;
            if results.failures.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} child run(s) failed; see the report",
                    results.failures.len()
                )
                .into())
            }
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("untorn-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
