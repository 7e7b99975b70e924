//! What a torture run is configured with: the fault classes it injects, the workload
//! shape, and how the engine is opened on the simulated disk's two files.

use std::sync::Arc;

use untorn::{Database, Storage};

use crate::disk::SimDisk;
use untorn::unstable::fuzzing::model::Shape;

/// Name of the data file on the simulated disk.
pub const DATA_FILE: &str = "data";
/// Name of the journal file on the simulated disk.
pub const JOURNAL_FILE: &str = "journal";

/// Commits whose images add up to this much write what they can straight home (J25):
/// four pages, so that the workloads' large transactions take that path and their small
/// ones the journal.
pub const DIRECT_HOME_THRESHOLD_BYTES: u64 = 4 * 4096;

/// The builder every test opens the engine with: 4 KiB pages, the threshold, large
/// commits straight home ([`DIRECT_HOME_THRESHOLD_BYTES`]), and ids and salts derived
/// from the disk's seed (so the same seed drives the same bytes).
pub fn builder(disk: &SimDisk, checkpoint_threshold_bytes: u64) -> untorn::Builder {
    Database::builder()
        .page_size(4096)
        .checkpoint_threshold_bytes(checkpoint_threshold_bytes)
        .direct_home_threshold_bytes(DIRECT_HOME_THRESHOLD_BYTES)
        .deterministic_ids(disk.faults().seed ^ 0x1d5_5eed)
}

/// Opens the engine on the disk's two files, as every test does.
pub fn open_db(disk: &SimDisk, checkpoint_threshold_bytes: u64) -> untorn::Result<Database> {
    open_with(disk, builder(disk, checkpoint_threshold_bytes))
}

/// The builder of a run of `cfg` (with its durability).
pub fn run_builder(disk: &SimDisk, cfg: &Config) -> untorn::Builder {
    let b = builder(disk, cfg.checkpoint_threshold_bytes);
    if cfg.durability_none {
        b.durability(untorn::Durability::None)
    } else {
        b
    }
}

/// Opens the engine on the disk's two files with `b` (creating the database if empty).
pub fn open_with(disk: &SimDisk, b: untorn::Builder) -> untorn::Result<Database> {
    let data: Arc<dyn Storage> = disk.file(DATA_FILE);
    let journal: Arc<dyn Storage> = disk.file(JOURNAL_FILE);
    b.open_storage(data, journal, true)
}

/// Which fault classes a run injects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultClasses {
    /// Crash at a random write or sync.
    pub crash: bool,
    /// Torn writes (any subset of one call's sectors) at a crash.
    pub torn: bool,
    /// Unsynced sectors kept or dropped independently at a crash.
    pub reorder: bool,
    /// Unsynced sectors garbled at a crash.
    pub garble: bool,
    /// Lost writes (acknowledged, never persisted).
    pub lost: bool,
    /// Misdirected writes.
    pub misdirect: bool,
    /// Bit flips and zeroed sectors at rest, between runs.
    pub bitrot: bool,
    /// EIO on read, write and sync.
    pub eio: bool,
    /// ENOSPC (capacity limit).
    pub enospc: bool,
    /// A crash during the recovery that follows a crash.
    pub recovery_crash: bool,
}

impl FaultClasses {
    /// Every class name accepted by [`FaultClasses::parse`].
    pub const NAMES: [&'static str; 10] = [
        "crash",
        "torn",
        "reorder",
        "garble",
        "lost",
        "misdirect",
        "bitrot",
        "eio",
        "enospc",
        "recovery-crash",
    ];

    fn flags(&mut self) -> [&mut bool; 10] {
        [
            &mut self.crash,
            &mut self.torn,
            &mut self.reorder,
            &mut self.garble,
            &mut self.lost,
            &mut self.misdirect,
            &mut self.bitrot,
            &mut self.eio,
            &mut self.enospc,
            &mut self.recovery_crash,
        ]
    }

    /// Parses a comma-separated list of class names, or `all`, `strict`, `none`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut out = FaultClasses::default();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "all" => out = FaultClasses::all(),
                "strict" => out = FaultClasses::strict(),
                "none" => {}
                _ => {
                    let i = Self::NAMES.iter().position(|n| *n == word).ok_or_else(|| {
                        format!(
                            "unknown fault class {word:?}; expected one of {} or all/strict/none",
                            Self::NAMES.join(",")
                        )
                    })?;
                    if let Some(f) = out.flags().into_iter().nth(i) {
                        *f = true;
                    }
                }
            }
        }
        Ok(out)
    }

    /// The comma-separated names of the enabled classes (`none` if empty).
    pub fn to_arg(&self) -> String {
        let mut copy = *self;
        let names: Vec<&str> = copy
            .flags()
            .into_iter()
            .zip(Self::NAMES)
            .filter(|(f, _)| **f)
            .map(|(_, n)| n)
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(",")
        }
    }

    /// Every class that must not lose an acknowledged commit.
    pub fn strict() -> Self {
        FaultClasses {
            crash: true,
            torn: true,
            reorder: true,
            garble: true,
            eio: true,
            enospc: true,
            recovery_crash: true,
            ..FaultClasses::default()
        }
    }

    /// Every class.
    pub fn all() -> Self {
        FaultClasses {
            lost: true,
            misdirect: true,
            bitrot: true,
            ..FaultClasses::strict()
        }
    }

    /// Whether the classes may destroy the only copy of data (then acknowledged commits
    /// may be lost and reads may fail with `Corrupted`, but still never return wrong data).
    pub fn destroys_data(&self) -> bool {
        self.lost || self.misdirect || self.bitrot
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// First seed.
    pub seed_start: u64,
    /// Number of seeds.
    pub seeds: u64,
    /// Fault classes.
    pub faults: FaultClasses,
    /// Operations (puts, deletes, bucket operations) per crash cycle.
    pub ops: usize,
    /// Crash/reopen cycles per seed.
    pub cycles: usize,
    /// Concurrent reader threads during the workload (runs with readers are not
    /// bit-reproducible: readers pin pages and so change what the writer allocates).
    pub readers: usize,
    /// Exhaustive mode: enumerate crash points × subsets of pending writes × torn variants.
    pub exhaustive: bool,
    /// Cap on surviving-write subsets per crash point in exhaustive mode (sampled beyond).
    pub max_subsets_per_point: usize,
    /// Journal size that triggers an automatic checkpoint (small, so checkpoints happen often).
    pub checkpoint_threshold_bytes: u64,
    /// Print one line per seed.
    pub verbose: bool,
    /// Judge data-destroying faults by the strict rules (to test that the runner does
    /// detect the lost commits and corruption those faults cause).
    pub force_strict: bool,
    /// Largest value a put writes (values above a page go to overflow extents).
    pub max_value_bytes: u64,
    /// Distinct keys per bucket (large values of this grow trees with branch pages).
    pub keyspace: u64,
    /// Most operations in one write transaction.
    pub max_ops_per_tx: u64,
    /// Commit with `Durability::None`: a commit is durable only once a checkpoint or a
    /// clean close made it so, and a crash keeps some prefix of the commits.
    pub durability_none: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed_start: 0,
            seeds: 1,
            faults: FaultClasses::strict(),
            ops: 40,
            cycles: 8,
            readers: 0,
            exhaustive: false,
            max_subsets_per_point: 1024,
            checkpoint_threshold_bytes: 64 * 1024,
            verbose: false,
            force_strict: false,
            max_value_bytes: Shape::default().max_value_bytes,
            keyspace: Shape::default().keyspace,
            max_ops_per_tx: 6,
            durability_none: false,
        }
    }
}

impl Config {
    /// The workload shape.
    pub fn shape(&self) -> Shape {
        Shape {
            max_value_bytes: self.max_value_bytes,
            keyspace: self.keyspace,
        }
    }

    /// One command that reproduces `seed` with this configuration.
    pub fn repro_command(&self, seed: u64) -> String {
        let mut cmd = format!(
            "cargo run -p untorn-sim --bin untorn-torture -- --seed-start {seed} --seeds 1 --faults {} --ops {} --cycles {} --checkpoint-threshold {}",
            self.faults.to_arg(),
            self.ops,
            self.cycles,
            self.checkpoint_threshold_bytes
        );
        if self.force_strict {
            cmd.push_str(" --force-strict");
        }
        let d = Config::default();
        if self.max_value_bytes != d.max_value_bytes {
            cmd.push_str(&format!(" --max-value-bytes {}", self.max_value_bytes));
        }
        if self.keyspace != d.keyspace {
            cmd.push_str(&format!(" --keys {}", self.keyspace));
        }
        if self.max_ops_per_tx != d.max_ops_per_tx {
            cmd.push_str(&format!(" --ops-per-tx {}", self.max_ops_per_tx));
        }
        if self.readers > 0 {
            cmd.push_str(&format!(" --readers {}", self.readers));
        }
        if self.durability_none {
            cmd.push_str(" --durability-none");
        }
        if self.exhaustive {
            cmd.push_str(&format!(
                " --exhaustive --max-subsets {}",
                self.max_subsets_per_point
            ));
        }
        cmd
    }
}
