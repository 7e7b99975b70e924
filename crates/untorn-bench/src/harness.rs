//! The parent process of `untorn-bench all`: re-executes itself once per (repetition,
//! engine) for the phase suite and for commit latency, each child in a fresh directory,
//! with the engine order rotated every repetition; then the report is computed from what
//! the children printed (one JSON object per line on stdout).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::check_speed::CheckSpeed;
use crate::engine::Result;
use crate::latency::Latency;
use crate::machine::Machine;
use crate::workload::Measurement;

/// Options shared by the parent and every child (passed down as flags).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Common {
    pub keys: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub seed: u64,
    pub cache_mib: usize,
    pub dir: PathBuf,
}

impl Common {
    pub fn child_args(&self) -> Vec<String> {
        vec![
            "--keys".into(),
            self.keys.to_string(),
            "--key-size".into(),
            self.key_size.to_string(),
            "--value-size".into(),
            self.value_size.to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--cache-mib".into(),
            self.cache_mib.to_string(),
            "--dir".into(),
            self.dir.display().to_string(),
        ]
    }
}

/// Everything one `all` run measured; also written as JSON with `--json`, and read back
/// by `untorn-bench report` to re-render without re-running.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub command: String,
    pub common: Common,
    pub machine: Machine,
    /// Engine name → configuration summary, in column order (untorn first).
    pub engines: Vec<(String, String)>,
    pub phases: Vec<String>,
    /// `suite[rep][engine]` = that child's measurements.
    pub suite: Vec<BTreeMap<String, Vec<Measurement>>>,
    /// `latency[rep]` = one row per engine.
    pub latency: Vec<Vec<Latency>>,
    pub commits: u64,
    pub check: Vec<CheckSpeed>,
    /// Children that failed: (repetition, engine, what).
    pub failures: Vec<(usize, String, String)>,
}

/// How to start the child for one engine.
pub enum Launcher {
    /// This binary, re-executed.
    SelfExe(PathBuf),
    /// The Go bbolt driver (`bbolt/main.go`), which speaks the same protocol.
    Bbolt(PathBuf),
}

impl Launcher {
    fn command(&self, what: &str, engine: &str, common: &Common, extra: &[String]) -> Command {
        match self {
            Launcher::SelfExe(exe) => {
                let mut c = Command::new(exe);
                c.arg(what).arg("--engine").arg(engine);
                c.args(common.child_args()).args(extra);
                c
            }
            Launcher::Bbolt(exe) => {
                let mut c = Command::new(exe);
                c.arg(format!("-op={what}"));
                for pair in common.child_args().chunks(2) {
                    if let [flag, value] = pair {
                        c.arg(format!("-{}={value}", flag.trim_start_matches('-')));
                    }
                }
                for pair in extra.chunks(2) {
                    if let [flag, value] = pair {
                        c.arg(format!("-{}={value}", flag.trim_start_matches('-')));
                    }
                }
                c
            }
        }
    }
}

/// Runs one child and returns the JSON lines it printed, parsed as `T`.
pub fn run_child<T: for<'de> Deserialize<'de>>(mut cmd: Command) -> Result<Vec<T>> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no child stdout")?;
    let mut out = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.trim_start().starts_with('{') {
            out.push(serde_json::from_str(&line).map_err(|e| format!("child line {line:?}: {e}"))?);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("child {cmd:?} failed: {status}").into());
    }
    Ok(out)
}

/// The plan of an `all` run.
pub struct Plan {
    pub engines: Vec<(String, String, Launcher)>,
    pub reps: usize,
    pub commits: u64,
    pub check_rounds: u32,
    pub latency: bool,
    pub check: bool,
}

fn rotated<T>(items: &[T], by: usize) -> impl Iterator<Item = &T> {
    let n = items.len().max(1);
    (0..items.len()).map(move |i| &items[(i + by) % n])
}

/// Runs the plan; `after_rep` sees the results so far after every repetition (the caller
/// writes them out, so an interrupted run still leaves a report).
pub fn run_all(
    plan: &Plan,
    common: &Common,
    command: String,
    phases: Vec<String>,
    after_rep: &mut dyn FnMut(&Results) -> Result<()>,
) -> Result<Results> {
    let mut results = Results {
        command,
        common: common.clone(),
        machine: crate::machine::describe(&common.dir),
        engines: plan
            .engines
            .iter()
            .map(|(n, d, _)| (n.clone(), d.clone()))
            .collect(),
        phases,
        suite: Vec::new(),
        latency: Vec::new(),
        commits: plan.commits,
        check: Vec::new(),
        failures: Vec::new(),
    };
    for rep in 0..plan.reps {
        let mut suite = BTreeMap::new();
        for (name, _, launcher) in rotated(&plan.engines, rep) {
            eprintln!("== repetition {}/{}: {name} suite", rep + 1, plan.reps);
            match run_child::<Measurement>(launcher.command("suite", name, common, &[])) {
                Ok(m) => {
                    suite.insert(name.clone(), m);
                }
                Err(e) => {
                    eprintln!("untorn-bench: {name}: {e}");
                    results.failures.push((rep, name.clone(), e.to_string()));
                }
            }
        }
        results.suite.push(suite);
        let mut lat = Vec::new();
        if plan.latency {
            for (name, _, launcher) in rotated(&plan.engines, rep) {
                eprintln!(
                    "== repetition {}/{}: {name} commit latency",
                    rep + 1,
                    plan.reps
                );
                let extra = ["--commits".to_string(), plan.commits.to_string()];
                match run_child::<Latency>(launcher.command("latency", name, common, &extra)) {
                    Ok(mut l) => lat.append(&mut l),
                    Err(e) => {
                        eprintln!("untorn-bench: {name}: {e}");
                        results.failures.push((rep, name.clone(), e.to_string()));
                    }
                }
            }
        }
        results.latency.push(lat);
        if plan.check {
            if let Some((_, _, launcher)) = plan.engines.iter().find(|(n, _, _)| n == "untorn") {
                eprintln!(
                    "== repetition {}/{}: untorn check throughput",
                    rep + 1,
                    plan.reps
                );
                let extra = ["--rounds".to_string(), plan.check_rounds.to_string()];
                match run_child::<CheckSpeed>(launcher.command(
                    "check-speed",
                    "untorn",
                    common,
                    &extra,
                )) {
                    Ok(mut c) => results.check.append(&mut c),
                    Err(e) => results.failures.push((rep, "untorn".into(), e.to_string())),
                }
            }
        }
        after_rep(&results)?;
    }
    Ok(results)
}

/// A fresh directory for one child, removed when dropped.
pub fn child_dir(parent: &Path, engine: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(parent)?;
    Ok(tempfile::Builder::new()
        .prefix(&format!("untorn-bench-{engine}-"))
        .tempdir_in(parent)?)
}
