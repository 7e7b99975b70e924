//! The torture runner: random workloads on a [`SimDisk`] with crash points and faults,
//! reopened and checked against the [`Model`] after every crash.
//!
//! After every reopen it asserts (numbered so failures can cite them):
//!
//! 1. **Prefix:** the recovered txid is the txid of an issued commit (or of the state
//!    before any of them), and the database equals the model after exactly that commit —
//!    so no partial commit is visible and no invented state.
//! 2. **Durability:** the recovered txid is at least the last acknowledged commit's
//!    (strict fault classes only; lost/misdirected writes and bit rot may lose commits).
//! 3. **Check:** `Database::check` reports no findings (strict classes only).
//! 4. **No wrong data:** every value, key and bucket name a read returns equals the
//!    model's. Under damaging faults a read may fail with `Error::Corrupted`, never
//!    return something else.
//! 5. **Snapshots:** a read transaction (held across later commits and checkpoints, or
//!    running on another thread) sees exactly the model of its txid.
//! 6. **No panic** anywhere (caught and reported as a failure of the seed).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use untorn::{Database, Error, ReadTx, Storage, WriteTx};

use crate::disk::{FaultConfig, SimDisk};
use crate::model::{key_name, random_op_with, BucketPath, Model, Op, Shape, ValueSpec};
use crate::prng::Prng;

/// Name of the data file on the simulated disk.
pub const DATA_FILE: &str = "data";
/// Name of the journal file on the simulated disk.
pub const JOURNAL_FILE: &str = "journal";

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
        if self.exhaustive {
            cmd.push_str(&format!(
                " --exhaustive --max-subsets {}",
                self.max_subsets_per_point
            ));
        }
        cmd
    }
}

/// One failed seed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What went wrong.
    pub message: String,
    /// The command that reproduces it.
    pub repro: String,
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Seeds without a failure.
    pub passed: u64,
    /// Seeds with a failure.
    pub failed: u64,
    /// Crash states explored (each a crash followed by a reopen and checks).
    pub crash_states: u64,
    /// Full crash/reopen cycles (workload, crash, reopen, verify).
    pub cycles: u64,
    /// Reopens where damage was detected (`Corrupted`) under data-destroying faults.
    pub corruption_detected: u64,
    /// Read snapshots verified (held across commits or on reader threads).
    pub snapshots_verified: u64,
    /// What the simulated disks did, summed over all seeds (shows each fault fired).
    pub faults_fired: FaultsFired,
    /// The failures.
    pub failures: Vec<Failure>,
}

impl Summary {
    fn absorb(&mut self, s: &SeedStats) {
        self.crash_states += s.crash_states;
        self.cycles += s.cycles;
        self.corruption_detected += s.corruption_detected;
        self.snapshots_verified += s.snapshots_verified;
        self.faults_fired.add(&s.faults_fired);
    }
}

/// Faults that actually fired, summed from [`crate::disk::DiskStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultsFired {
    /// Injected EIO (read, write, sync).
    pub eio: u64,
    /// Syncs that failed with EIO.
    pub sync_failures: u64,
    /// Injected ENOSPC.
    pub enospc: u64,
    /// Lost writes.
    pub lost_writes: u64,
    /// Misdirected writes.
    pub misdirected_writes: u64,
    /// Unsynced sectors dropped by crashes.
    pub sectors_dropped: u64,
    /// Unsynced sectors garbled by crashes.
    pub sectors_garbled: u64,
}

impl FaultsFired {
    fn add(&mut self, o: &FaultsFired) {
        self.eio += o.eio;
        self.sync_failures += o.sync_failures;
        self.enospc += o.enospc;
        self.lost_writes += o.lost_writes;
        self.misdirected_writes += o.misdirected_writes;
        self.sectors_dropped += o.sectors_dropped;
        self.sectors_garbled += o.sectors_garbled;
    }

    fn add_disk(&mut self, d: &crate::disk::DiskStats) {
        self.add(&FaultsFired {
            eio: d.eio,
            sync_failures: d.sync_failures,
            enospc: d.enospc,
            lost_writes: d.lost_writes,
            misdirected_writes: d.misdirected_writes,
            sectors_dropped: d.sectors_dropped,
            sectors_garbled: d.sectors_garbled,
        });
    }
}

/// Counters of one seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeedStats {
    /// Crash states explored.
    pub crash_states: u64,
    /// Crash/reopen cycles.
    pub cycles: u64,
    /// Reopens that detected damage.
    pub corruption_detected: u64,
    /// Read snapshots verified.
    pub snapshots_verified: u64,
    /// Hash of every mutating disk operation (equal across runs of one seed when the
    /// engine is deterministic).
    pub trace: u64,
    /// Faults that fired.
    pub faults_fired: FaultsFired,
}

/// Runs every seed of `cfg` and returns the summary (never panics on engine panics: they
/// are failures of the seed).
pub fn run(cfg: &Config) -> Summary {
    let mut summary = Summary::default();
    for seed in cfg.seed_start..cfg.seed_start.saturating_add(cfg.seeds) {
        let mut stats = SeedStats::default();
        let result = catch_unwind(AssertUnwindSafe(|| {
            if cfg.exhaustive {
                crate::exhaustive::run_seed(cfg, seed, &mut stats)
            } else {
                run_seed(cfg, seed, &mut stats)
            }
        }));
        let outcome = match result {
            Ok(r) => r,
            Err(panic) => Err(format!("panic: {}", panic_message(&panic))),
        };
        summary.absorb(&stats);
        match outcome {
            Ok(()) => {
                summary.passed += 1;
                if cfg.verbose {
                    eprintln!(
                        "seed {seed}: ok ({} crash states, {} cycles)",
                        stats.crash_states, stats.cycles
                    );
                }
            }
            Err(message) => {
                summary.failed += 1;
                let repro = cfg.repro_command(seed);
                if cfg.verbose {
                    eprintln!("seed {seed}: FAILED: {message}\n  reproduce: {repro}");
                }
                summary.failures.push(Failure {
                    seed,
                    message,
                    repro,
                });
            }
        }
    }
    summary
}

/// The message of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".into()
    }
}

/// Opens the engine on the disk's two files, as every test does.
pub fn open_db(disk: &SimDisk, checkpoint_threshold_bytes: u64) -> untorn::Result<Database> {
    let data: Arc<dyn Storage> = disk.file(DATA_FILE);
    let journal: Arc<dyn Storage> = disk.file(JOURNAL_FILE);
    Database::builder()
        .page_size(4096)
        .checkpoint_threshold_bytes(checkpoint_threshold_bytes)
        .open_storage(data, journal, true)
}

/// How strictly a verification treats engine errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// No data-destroying fault: `Corrupted` is a failure; acknowledged commits must survive.
    Strict,
    /// Data-destroying faults: `Corrupted` is allowed (detected damage); commits may be lost.
    Lenient,
}

/// Why a snapshot scan stopped.
#[derive(Debug)]
pub enum ScanError {
    /// The engine returned an error (allowed or not depending on the faults).
    Engine(Error),
    /// The engine returned data that differs from the model: always a failure.
    Wrong(String),
}

impl From<Error> for ScanError {
    fn from(e: Error) -> Self {
        ScanError::Engine(e)
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show_path(p: &[Vec<u8>]) -> String {
    let parts: Vec<String> = p.iter().map(|s| show(s)).collect();
    format!("/{}", parts.join("/"))
}

/// Compares `got` (a value the engine returned) with the model's spec.
fn check_value(path: &[Vec<u8>], key: &[u8], got: &[u8], want: ValueSpec) -> Result<(), String> {
    let want_bytes = want.bytes();
    if got == want_bytes.as_slice() {
        return Ok(());
    }
    let first_diff = got
        .iter()
        .zip(want_bytes.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want_bytes.len()));
    Err(format!(
        "WRONG DATA: {}:{} returned {} bytes (tag {:?}), model has {} bytes (tag {}); first difference at byte {first_diff}",
        show_path(path),
        show(key),
        got.len(),
        got.get(..8).map(|t| {
            let mut a = [0u8; 8];
            a.copy_from_slice(t);
            u64::from_le_bytes(a)
        }),
        want.len,
        want.tag
    ))
}

/// Verifies a read snapshot against `expected`: bucket names, every key/value (forward
/// iteration), the O(1) counts, point reads of present and absent keys, and one reverse
/// iteration. Every returned datum is compared as soon as it is returned, so a scan that
/// later stops with an engine error still proves that nothing wrong was returned before.
pub fn scan_snapshot(rtx: &ReadTx<'_>, expected: &Model) -> Result<u64, ScanError> {
    let top = rtx.buckets()?;
    let want_top = expected.child_buckets(&[]);
    if top != want_top {
        return Err(ScanError::Wrong(format!(
            "WRONG DATA: top-level buckets {:?}, model has {:?}",
            top.iter().map(|b| show(b)).collect::<Vec<_>>(),
            want_top.iter().map(|b| show(b)).collect::<Vec<_>>()
        )));
    }
    let mut keys = 0u64;
    for name in top {
        let path = vec![name.clone()];
        let bucket = rtx.bucket(&name)?.ok_or_else(|| {
            ScanError::Wrong(format!(
                "WRONG DATA: bucket {} listed but not found",
                show_path(&path)
            ))
        })?;
        keys += scan_bucket(&bucket, &path, expected)?;
    }
    Ok(keys)
}

fn scan_bucket(
    bucket: &untorn::Bucket<'_>,
    path: &BucketPath,
    expected: &Model,
) -> Result<u64, ScanError> {
    let wrong = |m: String| ScanError::Wrong(format!("WRONG DATA: {}: {m}", show_path(path)));
    let empty = BTreeMap::new();
    let want = expected.buckets.get(path).unwrap_or(&empty);
    let mut seen: Vec<Vec<u8>> = Vec::with_capacity(want.len());
    for item in bucket.iter()? {
        let (key, value) = item?;
        let Some(spec) = want.get(&key) else {
            return Err(wrong(format!(
                "iteration returned key {} not in the model",
                show(&key)
            )));
        };
        check_value(path, &key, &value, *spec).map_err(ScanError::Wrong)?;
        if seen.last().is_some_and(|prev| *prev >= key) {
            return Err(wrong(format!(
                "iteration not ascending at key {}",
                show(&key)
            )));
        }
        seen.push(key);
    }
    if seen.len() != want.len() {
        let missing: Vec<String> = want
            .keys()
            .filter(|k| !seen.contains(k))
            .take(5)
            .map(|k| show(k))
            .collect();
        return Err(wrong(format!(
            "iteration returned {} keys, model has {} (missing e.g. {missing:?})",
            seen.len(),
            want.len()
        )));
    }
    let len = bucket.len()?;
    if len != want.len() as u64 {
        return Err(wrong(format!("len() = {len}, model has {}", want.len())));
    }
    // Point reads: first, middle, last key and one absent key.
    let probes: Vec<&Vec<u8>> = [
        want.keys().next(),
        want.keys().nth(want.len() / 2),
        want.keys().next_back(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for key in probes {
        match (bucket.get(key)?, want.get(key)) {
            (Some(v), Some(spec)) => check_value(path, key, &v, *spec).map_err(ScanError::Wrong)?,
            (None, Some(_)) => {
                return Err(wrong(format!("get({}) = None, model has it", show(key))))
            }
            _ => {}
        }
    }
    if let Some(v) = bucket.get(b"absent-key")? {
        return Err(wrong(format!("get(absent-key) returned {} bytes", v.len())));
    }
    // Reverse iteration sees the same keys backwards.
    let mut back = Vec::with_capacity(seen.len());
    for item in bucket.iter()?.rev() {
        let (key, _) = item?;
        back.push(key);
    }
    back.reverse();
    if back != seen {
        return Err(wrong(
            "reverse iteration differs from forward iteration".into(),
        ));
    }
    let children = bucket.buckets()?;
    let want_children = expected.child_buckets(path);
    if children != want_children {
        return Err(wrong(format!(
            "sub-buckets {:?}, model has {:?}",
            children.iter().map(|b| show(b)).collect::<Vec<_>>(),
            want_children.iter().map(|b| show(b)).collect::<Vec<_>>()
        )));
    }
    check_cursor(bucket, path, want, &children)?;
    let mut keys = seen.len() as u64;
    for name in children {
        let mut child_path = path.clone();
        child_path.push(name.clone());
        let child = bucket
            .bucket(&name)?
            .ok_or_else(|| wrong(format!("sub-bucket {} listed but not found", show(&name))))?;
        // Recursion depth is bounded by the model's depth (the names were just checked).
        keys += scan_bucket(&child, &child_path, expected)?;
    }
    Ok(keys)
}

/// Assertions 1 and 2 on a recovered txid: an issued commit on this line (or the state
/// before them), not beyond the last issued, and (strict) not before the last acknowledged.
pub(crate) fn check_recovered_txid(
    txid: u64,
    acked_txid: u64,
    issued_txid: u64,
    history: &BTreeMap<u64, Model>,
    strictness: Strictness,
) -> Result<(), String> {
    if strictness == Strictness::Strict && txid < acked_txid {
        return Err(format!(
            "LOST COMMIT: recovered txid {txid} < last acknowledged txid {acked_txid}"
        ));
    }
    if txid > issued_txid {
        return Err(format!(
            "recovered txid {txid} > last issued txid {issued_txid}"
        ));
    }
    if !history.contains_key(&txid) {
        return Err(format!(
            "recovered txid {txid} is not the txid of any issued commit on this line"
        ));
    }
    Ok(())
}

/// A cursor walk sees every key and sub-bucket in order (values exact, sub-buckets as
/// `Entry::Bucket`), and `seek` to the middle entry lands on it.
fn check_cursor(
    bucket: &untorn::Bucket<'_>,
    path: &BucketPath,
    want: &BTreeMap<Vec<u8>, ValueSpec>,
    children: &[Vec<u8>],
) -> Result<(), ScanError> {
    let wrong =
        |m: String| ScanError::Wrong(format!("WRONG DATA: {} cursor: {m}", show_path(path)));
    let mut all: BTreeMap<&[u8], Option<ValueSpec>> =
        want.iter().map(|(k, v)| (k.as_slice(), Some(*v))).collect();
    for c in children {
        all.insert(c.as_slice(), None);
    }
    let mut cursor = bucket.cursor();
    let mut item = cursor.first()?;
    let mut expected = all.iter();
    // Bounded: one step per expected entry, plus the one that must be the end.
    for _ in 0..=all.len() {
        match (item, expected.next()) {
            (None, None) => break,
            (Some((k, entry)), Some((wk, spec))) => {
                if k.as_slice() != *wk {
                    return Err(wrong(format!(
                        "returned {}, expected {}",
                        show(&k),
                        show(wk)
                    )));
                }
                match (entry, spec) {
                    (untorn::Entry::Value(v), Some(spec)) => {
                        check_value(path, &k, &v, *spec).map_err(ScanError::Wrong)?
                    }
                    (untorn::Entry::Bucket, None) => {}
                    (untorn::Entry::Value(_), None) => {
                        return Err(wrong(format!(
                            "{} is a bucket, cursor says value",
                            show(&k)
                        )))
                    }
                    (_, Some(_)) => {
                        return Err(wrong(format!(
                            "{} is a value, cursor says bucket",
                            show(&k)
                        )))
                    }
                }
            }
            (Some((k, _)), None) => return Err(wrong(format!("extra entry {}", show(&k)))),
            (None, Some((wk, _))) => return Err(wrong(format!("ended before {}", show(wk)))),
        }
        item = cursor.next()?;
    }
    if let Some((mid, _)) = all.iter().nth(all.len() / 2) {
        match cursor.seek(mid)? {
            Some((k, _)) if k.as_slice() == *mid => {}
            other => {
                return Err(wrong(format!(
                    "seek({}) returned {:?}",
                    show(mid),
                    other.map(|(k, _)| show(&k))
                )))
            }
        }
    }
    Ok(())
}

/// Runs `f` on the bucket at `path` of a write transaction (`Ok(None)` if missing).
fn with_bucket_mut<T>(
    wtx: &WriteTx<'_>,
    path: &[Vec<u8>],
    f: impl FnOnce(&untorn::BucketMut<'_>) -> untorn::Result<T>,
) -> untorn::Result<Option<T>> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(None);
    };
    match wtx.bucket(first)? {
        None => Ok(None),
        Some(b) => descend_mut(&b, rest, f),
    }
}

fn descend_mut<T>(
    b: &untorn::BucketMut<'_>,
    rest: &[Vec<u8>],
    f: impl FnOnce(&untorn::BucketMut<'_>) -> untorn::Result<T>,
) -> untorn::Result<Option<T>> {
    match rest.split_first() {
        None => f(b).map(Some),
        Some((name, rest)) => match b.bucket(name)? {
            None => Ok(None),
            Some(child) => descend_mut(&child, rest, f),
        },
    }
}

/// What an engine call did, to compare with the model.
pub(crate) enum Applied {
    /// The engine call returned this flag (delete: existed; create: created).
    Flag(bool),
    /// Nothing to compare.
    Unit,
    /// The bucket the operation addresses does not exist in the engine.
    NoBucket,
}

/// Applies one model operation to a write transaction.
pub(crate) fn apply_op(wtx: &WriteTx<'_>, op: &Op) -> untorn::Result<Applied> {
    let flag = |r: Option<bool>| r.map_or(Applied::NoBucket, Applied::Flag);
    let unit = |r: Option<()>| r.map_or(Applied::NoBucket, |()| Applied::Unit);
    match op {
        Op::Put { path, key, value } => {
            let bytes = value.bytes();
            with_bucket_mut(wtx, path, |b| b.put(key, &bytes)).map(unit)
        }
        Op::Delete { path, key } => with_bucket_mut(wtx, path, |b| b.delete(key)).map(flag),
        Op::CreateBucket { path } => {
            let created = |r: untorn::Result<untorn::BucketMut<'_>>| match r {
                Ok(_) => Ok(true),
                Err(Error::BucketExists) => Ok(false),
                Err(e) => Err(e),
            };
            match path.split_last() {
                None => Ok(Applied::NoBucket),
                Some((name, [])) => created(wtx.create_bucket(name)).map(Applied::Flag),
                Some((name, parent)) => {
                    with_bucket_mut(wtx, parent, |b| created(b.create_bucket(name))).map(flag)
                }
            }
        }
        Op::DeleteBucket { path } => match path.split_last() {
            None => Ok(Applied::NoBucket),
            Some((name, [])) => wtx.delete_bucket(name).map(|()| Applied::Unit),
            Some((name, parent)) => {
                with_bucket_mut(wtx, parent, |b| b.delete_bucket(name)).map(unit)
            }
        },
    }
}

/// Per-seed state of a randomized torture run.
struct Run<'c> {
    cfg: &'c Config,
    seed: u64,
    rng: Prng,
    disk: SimDisk,
    /// txid → model after that commit, along the line of states the database can be in.
    history: Arc<Mutex<BTreeMap<u64, Model>>>,
    /// Model of the newest acknowledged commit (the base of the next transaction).
    model: Model,
    acked_txid: u64,
    issued_txid: u64,
    next_tag: u64,
    /// At-rest damages applied to the current disk.
    bitrot_damages: u64,
    /// [`Run::destroyed`] at the last clean verification: `Corrupted` is only excused if
    /// a data-destroying fault fired since then (otherwise it is an engine bug).
    destroyed_at_clean: u64,
    ops_estimate: u64,
    stats: SeedStats,
}

fn lock_history(
    h: &Mutex<BTreeMap<u64, Model>>,
) -> std::sync::MutexGuard<'_, BTreeMap<u64, Model>> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

impl<'c> Run<'c> {
    fn new(cfg: &'c Config, seed: u64) -> Self {
        Run {
            cfg,
            seed,
            rng: Prng::derive(seed, 100),
            disk: SimDisk::new(FaultConfig {
                seed,
                ..FaultConfig::default()
            }),
            history: Arc::new(Mutex::new(BTreeMap::new())),
            model: Model::default(),
            acked_txid: 0,
            issued_txid: 0,
            next_tag: seed << 32,
            bitrot_damages: 0,
            destroyed_at_clean: 0,
            ops_estimate: 0,
            stats: SeedStats::default(),
        }
    }

    fn strictness(&self) -> Strictness {
        if self.cfg.faults.destroys_data() && !self.cfg.force_strict {
            Strictness::Lenient
        } else {
            Strictness::Strict
        }
    }

    /// A fresh database on a perfect, empty disk (at the start, and after detected
    /// damage under data-destroying faults).
    fn fresh(&mut self, generation: u64) -> Result<Database, String> {
        self.stats.trace ^= self.disk.trace_hash().rotate_left(generation as u32);
        self.stats.faults_fired.add_disk(&self.disk.stats());
        self.disk = SimDisk::new(FaultConfig {
            seed: self.seed ^ generation,
            ..FaultConfig::default()
        });
        let db = open_db(&self.disk, self.cfg.checkpoint_threshold_bytes)
            .map_err(|e| format!("creating the database on a perfect disk failed: {e}"))?;
        let txid = db
            .begin_read()
            .map_err(|e| format!("begin_read on a new database failed: {e}"))?
            .txid();
        self.model = Model::default();
        self.bitrot_damages = 0;
        self.destroyed_at_clean = 0;
        self.acked_txid = txid;
        self.issued_txid = txid;
        let mut h = lock_history(&self.history);
        h.clear();
        h.insert(txid, Model::default());
        Ok(db)
    }

    fn cycle_faults(&mut self, cycle: u64) -> FaultConfig {
        let f = self.cfg.faults;
        let rng = &mut self.rng;
        let estimate = if self.ops_estimate == 0 {
            (self.cfg.ops as u64) * 4 + 16
        } else {
            self.ops_estimate + self.ops_estimate / 4 + 2
        };
        let total: u64 = [DATA_FILE, JOURNAL_FILE]
            .iter()
            .map(|n| self.disk.view_bytes(n).len() as u64)
            .sum();
        let some = |rng: &mut Prng, on: bool, p: u32| if on && rng.below(3) != 0 { p } else { 0 };
        FaultConfig {
            seed: Prng::derive(self.seed, 1000 + cycle).next_u64(),
            crash_at_op: (f.crash && rng.below(8) != 0).then(|| rng.below(estimate)),
            torn: f.torn,
            reorder: f.reorder && rng.coin(),
            garble_per_million: some(rng, f.garble, 100_000),
            lost_write_per_million: some(rng, f.lost, 20_000),
            misdirect_per_million: some(rng, f.misdirect, 20_000),
            read_eio_per_million: some(rng, f.eio, 3_000),
            write_eio_per_million: some(rng, f.eio, 3_000),
            sync_eio_per_million: some(rng, f.eio, 20_000),
            eio_at_op: (f.eio && rng.below(4) == 0).then(|| rng.below(estimate)),
            capacity_bytes: (f.enospc && rng.below(3) == 0).then(|| total + rng.below(256 * 1024)),
            fault_files: None,
        }
    }

    /// Whether an engine error is explained by the faults of this cycle.
    fn explained(&self, e: &Error, faults: &FaultConfig) -> bool {
        let any_io = self.disk.is_dead()
            || faults.eio_at_op.is_some()
            || faults.read_eio_per_million > 0
            || faults.write_eio_per_million > 0
            || faults.sync_eio_per_million > 0
            || faults.capacity_bytes.is_some();
        match e {
            // ENOSPC must surface as `Error::NoSpace`, not as a generic I/O error.
            Error::Io(io)
                if io.kind() == std::io::ErrorKind::StorageFull
                    || io.raw_os_error() == Some(28) =>
            {
                false
            }
            Error::Io(_) | Error::Poisoned | Error::NoSpace => any_io,
            Error::Corrupted { .. } => self.corruption_allowed(),
            _ => false,
        }
    }

    fn run(&mut self) -> Result<(), String> {
        let mut db = Some(self.fresh(0)?);
        for cycle in 0..self.cfg.cycles as u64 {
            let current = match db.take() {
                Some(d) => d,
                None => self.fresh(cycle + 1)?,
            };
            let faults = self.cycle_faults(cycle);
            self.disk.set_faults(faults.clone());
            let outcome = self.workload(&current, &faults);
            // Half the cycles end like a killed process (power cut while the handle is
            // open, so no checkpoint on close), half with a close and then the cut.
            let killed = self.rng.coin();
            if killed {
                self.disk.crash();
                drop(current);
            } else {
                drop(current);
                if !self.disk.is_dead() {
                    self.ops_estimate = self.ops_estimate.max(self.disk.ops());
                }
                self.disk.crash();
            }
            outcome.map_err(|e| format!("cycle {cycle}: {e}"))?;
            self.stats.crash_states += 1;
            if self.cfg.faults.bitrot && self.rng.below(3) == 0 {
                let mut rng = Prng::derive(self.seed, 2000 + cycle);
                for name in [DATA_FILE, JOURNAL_FILE] {
                    let n = rng.index(3);
                    self.disk.damage_random(&mut rng, name, n);
                    self.bitrot_damages += n as u64;
                }
            }
            if self.cfg.faults.recovery_crash && self.rng.below(2) == 0 {
                self.recovery_crashes(cycle)?;
            }
            db = self
                .reopen_and_verify(cycle)
                .map_err(|e| format!("cycle {cycle}: {e}"))?;
            self.stats.cycles += 1;
        }
        Ok(())
    }

    /// Opens with a crash point inside recovery (and sometimes read EIO), once or twice.
    fn recovery_crashes(&mut self, cycle: u64) -> Result<(), String> {
        let rounds = 1 + self.rng.below(2);
        for round in 0..rounds {
            let crash_at = self.rng.below(24);
            self.disk.set_faults(FaultConfig {
                seed: Prng::derive(self.seed, 3000 + cycle * 4 + round).next_u64(),
                crash_at_op: Some(crash_at),
                torn: self.cfg.faults.torn,
                reorder: self.cfg.faults.reorder && self.rng.coin(),
                ..FaultConfig::default()
            });
            match open_db(&self.disk, self.cfg.checkpoint_threshold_bytes) {
                Ok(db) => {
                    // Recovery finished before the crash point; what it sees must
                    // already be a valid state.
                    let txid = db.begin_read().map(|r| r.txid());
                    if let Ok(txid) = txid {
                        self.check_txid(txid)?;
                    }
                    drop(db);
                }
                Err(e) => {
                    let ok = self.disk.is_dead()
                        || matches!(e, Error::Corrupted { .. } | Error::NotADatabase(_))
                            && self.corruption_allowed();
                    if !ok {
                        return Err(format!(
                            "cycle {cycle}: open with a crash point at op {crash_at} failed before reaching it: {e}"
                        ));
                    }
                }
            }
            self.disk.crash();
            self.stats.crash_states += 1;
        }
        Ok(())
    }

    /// Lost and misdirected writes plus at-rest damages on the current disk so far.
    fn destroyed(&self) -> u64 {
        let d = self.disk.stats();
        d.lost_writes + d.misdirected_writes + self.bitrot_damages
    }

    /// Whether a `Corrupted` error is excused: lenient faults, and one of them fired since
    /// the state was last verified clean.
    fn corruption_allowed(&self) -> bool {
        self.strictness() == Strictness::Lenient && self.destroyed() > self.destroyed_at_clean
    }

    fn check_txid(&self, txid: u64) -> Result<(), String> {
        check_recovered_txid(
            txid,
            self.acked_txid,
            self.issued_txid,
            &lock_history(&self.history),
            self.strictness(),
        )
    }

    fn reopen_and_verify(&mut self, cycle: u64) -> Result<Option<Database>, String> {
        let strict = self.strictness() == Strictness::Strict;
        // With EIO, sometimes open under read errors first: it must fail or be right,
        // never quietly cut the journal at a read error.
        if self.cfg.faults.eio && self.rng.below(3) == 0 {
            self.disk.set_faults(FaultConfig {
                seed: Prng::derive(self.seed, 4000 + cycle).next_u64(),
                read_eio_per_million: 100_000,
                ..FaultConfig::default()
            });
            if let Ok(db) = open_db(&self.disk, self.cfg.checkpoint_threshold_bytes) {
                self.disk.set_faults(FaultConfig::default());
                let r = self.verify_open(&db, strict);
                drop(db);
                r?;
                self.stats.crash_states += 1;
            }
        }
        self.disk.set_faults(FaultConfig {
            seed: self.seed,
            ..FaultConfig::default()
        });
        // Sometimes a read-only open first: it recovers in memory only (no writes), and
        // must show the state the read-write open then recovers.
        if strict && self.rng.below(4) == 0 {
            let ops_before = self.disk.ops();
            let ro = Database::builder()
                .page_size(4096)
                .read_only(true)
                .open_storage(
                    self.disk.file(DATA_FILE),
                    self.disk.file(JOURNAL_FILE),
                    false,
                )
                .map_err(|e| format!("read-only reopen after crash failed: {e}"))?;
            let r = self.verify_open(&ro, strict);
            drop(ro);
            r.map_err(|e| format!("read-only reopen: {e}"))?;
            if self.disk.ops() != ops_before {
                return Err(format!(
                    "a read-only open wrote to the disk ({} operations)",
                    self.disk.ops() - ops_before
                ));
            }
        }
        let db = match open_db(&self.disk, self.cfg.checkpoint_threshold_bytes) {
            Ok(db) => db,
            // Both meta pages destroyed reads as `NotADatabase` (see the crate report:
            // the engine could say `Corrupted { kind: Meta }` when the file is otherwise
            // clearly untorn's).
            Err(e @ (Error::Corrupted { .. } | Error::NotADatabase(_))) if !strict => {
                if !self.corruption_allowed() {
                    return Err(format!(
                        "reopen failed with {e} although no data-destroying fault fired since the last clean verification"
                    ));
                }
                self.stats.corruption_detected += 1;
                return Ok(None);
            }
            Err(e) => return Err(format!("reopen after crash failed: {e}")),
        };
        match self.verify_open(&db, strict) {
            Ok(true) => {}
            Ok(false) => {
                self.stats.corruption_detected += 1;
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        Ok(Some(db))
    }

    /// Asserts 1–4 on a freshly opened database and rebases the model on its state.
    /// `Ok(false)`: damage detected under lenient faults (the caller starts over).
    fn verify_open(&mut self, db: &Database, strict: bool) -> Result<bool, String> {
        let rtx = db
            .begin_read()
            .map_err(|e| format!("begin_read after reopen: {e}"))?;
        let txid = rtx.txid();
        self.check_txid(txid)?;
        let expected = lock_history(&self.history)
            .get(&txid)
            .cloned()
            .unwrap_or_default();
        match scan_snapshot(&rtx, &expected) {
            Ok(_) => {}
            Err(ScanError::Wrong(m)) => return Err(format!("after reopen at txid {txid}: {m}")),
            Err(ScanError::Engine(e)) => {
                if strict || !e.is_corruption() {
                    return Err(format!("after reopen at txid {txid}: read failed: {e}"));
                }
                if !self.corruption_allowed() {
                    return Err(format!(
                        "after reopen at txid {txid}: {e}, although no data-destroying fault fired since the last clean verification"
                    ));
                }
                return Ok(false);
            }
        }
        drop(rtx);
        match engine_check(db) {
            Ok(None) => {}
            Ok(Some(findings)) if strict || !self.corruption_allowed() => {
                return Err(format!(
                    "check after reopen at txid {txid} is not clean: {findings}"
                ))
            }
            Ok(Some(_)) => return Ok(false),
            Err(e) if strict || !e.is_corruption() || !self.corruption_allowed() => {
                return Err(format!("check after reopen at txid {txid} failed: {e}"))
            }
            Err(_) => return Ok(false),
        }
        // Rebase: the database is now exactly the model of `txid`.
        self.destroyed_at_clean = self.destroyed();
        self.model = expected;
        self.acked_txid = txid;
        self.issued_txid = txid;
        let mut h = lock_history(&self.history);
        h.split_off(&(txid + 1));
        if strict {
            // Strict runs can never go back before an acknowledged state.
            *h = h.split_off(&txid);
        }
        Ok(true)
    }

    fn workload(&mut self, db: &Database, faults: &FaultConfig) -> Result<(), String> {
        if self.cfg.readers == 0 {
            return self.writer(db, faults);
        }
        let stop = AtomicBool::new(false);
        let verified = AtomicU64::new(0);
        let failure: Mutex<Option<String>> = Mutex::new(None);
        let history = Arc::clone(&self.history);
        let lenient = self.strictness() == Strictness::Lenient;
        let result = std::thread::scope(|s| {
            for _ in 0..self.cfg.readers {
                s.spawn(|| {
                    reader_loop(db, &history, &stop, &verified, &failure, lenient);
                });
            }
            let r = self.writer(db, faults);
            stop.store(true, Ordering::SeqCst);
            r
        });
        self.stats.snapshots_verified += verified.load(Ordering::SeqCst);
        if let Some(f) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(format!("reader thread: {f}"));
        }
        result
    }

    fn writer(&mut self, db: &Database, faults: &FaultConfig) -> Result<(), String> {
        let mut held: Vec<(ReadTx<'_>, Model)> = Vec::new();
        let mut done = 0usize;
        let fail = |what: &str, e: &Error| format!("unexpected error from {what}: {e}");
        while done < self.cfg.ops {
            if self.rng.below(10) == 0 {
                let sync_failures = self.disk.stats().sync_failures;
                let checkpointed = db.checkpoint();
                if self.disk.stats().sync_failures > sync_failures {
                    self.assert_poisoned(db, "a checkpoint")?;
                }
                if let Err(e) = checkpointed {
                    if !self.explained(&e, faults) {
                        return Err(fail("checkpoint", &e));
                    }
                    if self.disk.is_dead() || db.is_poisoned() {
                        break;
                    }
                }
            }
            if held.len() < 2 && self.rng.below(6) == 0 {
                match db.begin_read() {
                    Ok(r) => {
                        if r.txid() != self.acked_txid {
                            return Err(format!(
                                "begin_read txid {} != last committed txid {}",
                                r.txid(),
                                self.acked_txid
                            ));
                        }
                        held.push((r, self.model.clone()));
                    }
                    Err(e) if self.explained(&e, faults) => {}
                    Err(e) => return Err(fail("begin_read", &e)),
                }
            }
            if !held.is_empty() && self.rng.below(5) == 0 {
                let i = self.rng.index(held.len());
                let (r, m) = held.swap_remove(i);
                self.verify_held(&r, &m, faults)?;
            }
            let wtx = match db.begin_write() {
                Ok(w) => w,
                Err(e) if self.explained(&e, faults) => break,
                Err(e) => return Err(fail("begin_write", &e)),
            };
            let txid = wtx.txid();
            if txid <= self.issued_txid {
                return Err(format!(
                    "write transaction txid {txid} not above the last issued {}",
                    self.issued_txid
                ));
            }
            let mut next = self.model.clone();
            let n = self.rng.range_inclusive(1, self.cfg.max_ops_per_tx.max(1));
            let mut error = None;
            for _ in 0..n {
                let op =
                    random_op_with(&mut self.rng, &next, &mut self.next_tag, &self.cfg.shape());
                done += 1;
                match apply_op(&wtx, &op) {
                    Ok(applied) => {
                        let want = next.apply(&op);
                        match (applied, want) {
                            (Applied::NoBucket, _) => {
                                return Err(format!(
                                    "{op:?}: engine has no such bucket, model does"
                                ))
                            }
                            (Applied::Flag(got), Some(want)) if got != want => {
                                return Err(format!("{op:?}: engine returned {got}, model {want}"))
                            }
                            _ => {}
                        }
                    }
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            if error.is_none() {
                // Read-your-writes inside the transaction.
                if let Err(e) = self.check_in_tx(&wtx, &next) {
                    match e {
                        ScanError::Wrong(m) => return Err(format!("inside write tx {txid}: {m}")),
                        ScanError::Engine(e) => error = Some(e),
                    }
                }
            }
            if let Some(e) = error {
                drop(wtx);
                if !self.explained(&e, faults) {
                    return Err(fail("a write transaction", &e));
                }
                if self.disk.is_dead() || db.is_poisoned() {
                    break;
                }
                continue;
            }
            if self.rng.below(12) == 0 {
                wtx.abort();
                continue;
            }
            lock_history(&self.history).insert(txid, next.clone());
            self.issued_txid = txid;
            let sync_failures = self.disk.stats().sync_failures;
            let committed = wtx.commit();
            if self.disk.stats().sync_failures > sync_failures {
                self.assert_poisoned(db, "a commit")?;
            }
            match committed {
                Ok(()) => {
                    self.acked_txid = txid;
                    self.model = next;
                }
                Err(e) => {
                    if !self.explained(&e, faults) {
                        return Err(fail("commit", &e));
                    }
                    break;
                }
            }
        }
        for (r, m) in held {
            self.verify_held(&r, &m, faults)?;
        }
        Ok(())
    }

    /// A failed fsync poisons the handle: no retry, writes refused until reopened.
    fn assert_poisoned(&self, db: &Database, during: &str) -> Result<(), String> {
        if !db.is_poisoned() {
            return Err(format!(
                "a sync failed during {during} but the handle is not poisoned"
            ));
        }
        match db.begin_write().map(|w| w.commit()) {
            Err(Error::Poisoned) | Ok(Err(Error::Poisoned)) => Ok(()),
            Err(e) | Ok(Err(e)) if self.disk.is_dead() => {
                let _ = e;
                Ok(())
            }
            other => Err(format!(
                "a sync failed during {during}; a later write should fail with Poisoned, got {:?}",
                other.map(|r| r.map_err(|e| e.to_string()))
            )),
        }
    }

    fn verify_held(
        &mut self,
        r: &ReadTx<'_>,
        m: &Model,
        faults: &FaultConfig,
    ) -> Result<(), String> {
        match scan_snapshot(r, m) {
            Ok(_) => {
                self.stats.snapshots_verified += 1;
                Ok(())
            }
            Err(ScanError::Wrong(msg)) => Err(format!(
                "read snapshot at txid {} held across later commits: {msg}",
                r.txid()
            )),
            Err(ScanError::Engine(e)) if self.explained(&e, faults) => Ok(()),
            Err(ScanError::Engine(e)) => Err(format!(
                "read snapshot at txid {} held across later commits: read failed: {e}",
                r.txid()
            )),
        }
    }

    /// Point reads through the write transaction of a few keys it touched.
    fn check_in_tx(&mut self, wtx: &WriteTx<'_>, next: &Model) -> Result<(), ScanError> {
        let paths: Vec<&BucketPath> = next.buckets.keys().collect();
        for _ in 0..3 {
            let Some(path) = paths.get(self.rng.index(paths.len())) else {
                return Ok(());
            };
            let key = key_name(self.rng.below(self.cfg.keyspace));
            let got = with_bucket_mut(wtx, path, |b| b.get(&key).map(|v| v.map(|v| v.to_vec())))?;
            match (got, next.get(path, &key)) {
                (None, _) => {
                    return Err(ScanError::Wrong(format!(
                        "bucket {} missing inside the transaction",
                        show_path(path)
                    )))
                }
                (Some(Some(v)), Some(spec)) => {
                    check_value(path, &key, &v, spec).map_err(ScanError::Wrong)?
                }
                (Some(None), None) => {}
                (Some(got), want) => {
                    return Err(ScanError::Wrong(format!(
                        "{}:{} inside the transaction: engine has {:?} bytes, model {:?}",
                        show_path(path),
                        show(&key),
                        got.map(|v| v.len()),
                        want.map(|w| w.len)
                    )))
                }
            }
        }
        Ok(())
    }
}

fn reader_loop(
    db: &Database,
    history: &Mutex<BTreeMap<u64, Model>>,
    stop: &AtomicBool,
    verified: &AtomicU64,
    failure: &Mutex<Option<String>>,
    lenient: bool,
) {
    let record = |m: String| {
        let mut f = failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(m);
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let rtx = match db.begin_read() {
            Ok(r) => r,
            // Errors here are the writer's faults (crash point, EIO); the writer judges them.
            Err(_) => return,
        };
        let txid = rtx.txid();
        let Some(expected) = lock_history(history).get(&txid).cloned() else {
            record(format!("reader saw txid {txid}, which no commit issued"));
            return;
        };
        match scan_snapshot(&rtx, &expected) {
            Ok(_) => {
                verified.fetch_add(1, Ordering::SeqCst);
            }
            Err(ScanError::Wrong(m)) => {
                record(format!("snapshot at txid {txid}: {m}"));
                return;
            }
            Err(ScanError::Engine(Error::Corrupted { .. })) if !lenient => {
                record(format!(
                    "snapshot at txid {txid}: Corrupted without damaging faults"
                ));
                return;
            }
            Err(ScanError::Engine(_)) => return,
        }
    }
}

/// `Database::check` after a reopen, as a finding summary: `Ok(None)` when clean
/// (warnings allowed). Also cross-checks `Database::info` against the snapshot.
pub fn engine_check(db: &Database) -> untorn::Result<Option<String>> {
    let report = db.check(Default::default())?;
    let info = db.info()?;
    if info.txid != report.txid {
        return Ok(Some(format!(
            "info().txid {} != checked snapshot txid {}",
            info.txid, report.txid
        )));
    }
    if report.is_ok() {
        return Ok(None);
    }
    let shown: Vec<String> = report
        .findings
        .iter()
        .filter(|f| !f.kind.is_warning())
        .take(5)
        .map(|f| format!("{} page {:?}: {}", f.kind.as_str(), f.page, f.message))
        .collect();
    Ok(Some(format!(
        "{} findings, e.g. {}",
        report.findings.len(),
        shown.join("; ")
    )))
}

/// Runs one seed of the randomized torture.
pub fn run_seed(cfg: &Config, seed: u64, stats: &mut SeedStats) -> Result<(), String> {
    let mut run = Run::new(cfg, seed);
    let r = run.run();
    if cfg.verbose {
        eprintln!(
            "seed {seed}: final model {} buckets, {} keys; disk {} data + {} journal bytes",
            run.model.buckets.len(),
            run.model.key_count(),
            run.disk.view_bytes(DATA_FILE).len(),
            run.disk.view_bytes(JOURNAL_FILE).len()
        );
    }
    run.stats.trace ^= run.disk.trace_hash();
    run.stats.faults_fired.add_disk(&run.disk.stats());
    *stats = run.stats;
    r
}
