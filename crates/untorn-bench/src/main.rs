//! `untorn-bench`: see the crate docs and `untorn-bench --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use untorn_bench::child::{self, CommonArgs};
use untorn_bench::engine::Result;
use untorn_bench::harness::{self, Launcher, Plan, Results};
use untorn_bench::{check_speed, engines, report, svg, workload};

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
        /// The LMDB driver, crate `crates/untorn-bench/lmdb` (built by scripts/bench.sh).
        #[arg(long, default_value = "target/peers/untorn-bench-lmdb")]
        lmdb: PathBuf,
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
        Cmd::Suite { engine, common } => {
            child::suite(&engine, &common.common(), None, engines::open)
        }
        Cmd::Phase {
            engine,
            phase,
            common,
        } => child::suite(&engine, &common.common(), Some(&phase), engines::open),
        Cmd::Latency {
            engine,
            commits,
            common,
        } => child::latency(&engine, &common.common(), commits, engines::open),
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
            let s = check_speed::run(tmp.path(), &child::data_set(&c), c.keys, rounds)?;
            eprintln!(
                "  untorn check {} ({:.0} MiB/s) vs sequential read {} ({:.0} MiB/s)",
                report::fmt_secs(s.check_secs),
                s.check_mib_per_s(),
                report::fmt_secs(s.read_secs),
                s.read_mib_per_s()
            );
            child::print_json(&s)
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
            lmdb,
        } => {
            let c = common.common();
            let exe = std::env::current_exe()?;
            let compiled = engines::compiled();
            let bbolt_found = bbolt.is_file();
            let wanted: Vec<String> = if wanted.is_empty() {
                let mut v: Vec<String> = compiled.iter().map(|(n, _)| n.to_string()).collect();
                if lmdb.is_file() {
                    v.push("lmdb".into());
                }
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
                if name == "lmdb" && !compiled.iter().any(|(n, _)| *n == "lmdb") {
                    if !lmdb.is_file() {
                        return Err(format!(
                            "LMDB driver not found at {} (scripts/bench.sh builds it)",
                            lmdb.display()
                        )
                        .into());
                    }
                    let exe = lmdb.canonicalize()?;
                    let description = child::driver_engines(&exe)?
                        .into_iter()
                        .find(|(n, _)| n == "lmdb")
                        .map(|(_, d)| d)
                        .ok_or("the LMDB driver does not describe engine lmdb")?;
                    plan_engines.push((name.clone(), description, Launcher::SelfExe(exe)));
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
            // The rest in one fixed order, so reports line up run after run.
            const ORDER: [&str; 7] = [
                "untorn", "redb", "lmdb", "fjall", "sqlite", "rocksdb", "bbolt",
            ];
            plan_engines
                .sort_by_key(|(n, _, _)| ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()));
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
            let params = workload::Params::scaled(child::data_set(&c), c.keys);
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
                    "child runs failed ({}); see the report",
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
