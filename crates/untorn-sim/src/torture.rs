//! The torture run loop: random workloads on a [`SimDisk`] with crash points and faults,
//! reopened after every crash and judged by the [`oracle`](crate::oracle) against the
//! [`Model`] of the commits issued so far.
//!
//! Why this file is long: it is the run loop only (`Run`: workload, crash points, reopen,
//! judge); configuration, the oracle, the summary and the other runners live in their own
//! modules, and the loop's steps share one `Run` state that splitting would have to pass
//! around.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use untorn::{Database, Error, ReadTx, WriteTx};

use crate::config::{builder, open_with, run_builder, Config, DATA_FILE, JOURNAL_FILE};
use crate::disk::{FaultConfig, SimDisk};
use crate::oracle::{
    apply_op, check_recovered_txid, check_value, engine_check, scan_snapshot, show, show_path,
    with_bucket_mut, Applied, ScanError, Strictness,
};
use crate::summary::{panic_message, Failure, SeedStats, Summary};
use untorn::unstable::fuzzing::model::{key_name, random_op_with, BucketPath, Model};
use untorn::unstable::fuzzing::Rng;

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

/// Per-seed state of a randomized torture run.
struct Run<'c> {
    cfg: &'c Config,
    seed: u64,
    rng: Rng,
    disk: SimDisk,
    /// txid → model after that commit, along the line of states the database can be in.
    history: Arc<Mutex<BTreeMap<u64, Model>>>,
    /// Model of the newest acknowledged commit (the base of the next transaction).
    model: Model,
    acked_txid: u64,
    /// The newest commit known durable: `acked_txid` with `Durability::Immediate`; with
    /// `Durability::None`, the last commit before a successful checkpoint or clean close.
    durable_txid: u64,
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
            rng: Rng::derive(seed, 100),
            disk: SimDisk::new(FaultConfig {
                seed,
                ..FaultConfig::default()
            }),
            history: Arc::new(Mutex::new(BTreeMap::new())),
            model: Model::default(),
            acked_txid: 0,
            durable_txid: 0,
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
        let db = open_with(&self.disk, run_builder(&self.disk, self.cfg))
            .map_err(|e| format!("creating the database on a perfect disk failed: {e}"))?;
        let txid = db
            .begin_read()
            .map_err(|e| format!("begin_read on a new database failed: {e}"))?
            .txid();
        self.model = Model::default();
        self.bitrot_damages = 0;
        self.destroyed_at_clean = 0;
        self.acked_txid = txid;
        self.durable_txid = txid;
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
        let some = |rng: &mut Rng, on: bool, p: u32| if on && rng.below(3) != 0 { p } else { 0 };
        FaultConfig {
            seed: Rng::derive(self.seed, 1000 + cycle).next_u64(),
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
            // The outcome is unknown only when the revocation failed too: an I/O fault.
            Error::Io(_)
            | Error::Poisoned
            | Error::NoSpace
            | Error::CommitOutcomeUnknown { .. } => any_io,
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
            if let Ok(info) = current.info() {
                self.stats.direct_home_commits += info.direct_home_commits;
                self.stats.direct_home_pages += info.direct_home_pages;
            }
            // Half the cycles end like a killed process (power cut while the handle is
            // open, so no checkpoint on close), half with a close and then the cut.
            let killed = self.rng.coin();
            if killed {
                self.disk.crash();
                drop(current);
            } else {
                // A checkpoint that returns Ok makes every commit durable (what a clean
                // close does too, but a close cannot report a failure).
                if self.cfg.durability_none && current.checkpoint().is_ok() {
                    self.durable_txid = self.acked_txid;
                }
                drop(current);
                if !self.disk.is_dead() {
                    self.ops_estimate = self.ops_estimate.max(self.disk.ops());
                }
                self.disk.crash();
            }
            outcome.map_err(|e| format!("cycle {cycle}: {e}"))?;
            self.stats.crash_states += 1;
            if self.cfg.faults.bitrot && self.rng.below(3) == 0 {
                let mut rng = Rng::derive(self.seed, 2000 + cycle);
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
                seed: Rng::derive(self.seed, 3000 + cycle * 4 + round).next_u64(),
                crash_at_op: Some(crash_at),
                torn: self.cfg.faults.torn,
                reorder: self.cfg.faults.reorder && self.rng.coin(),
                ..FaultConfig::default()
            });
            match open_with(&self.disk, run_builder(&self.disk, self.cfg)) {
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
                    let unacked_damage = matches!(
                        e,
                        Error::JournalRecordDamaged { txid, .. } if txid > self.durable_txid
                    );
                    let ok = self.disk.is_dead()
                        || unacked_damage
                        || (e.is_corruption()
                            || e.needs_rollback()
                            || matches!(e, Error::NotADatabase(_)))
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
            self.durable_txid,
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
                seed: Rng::derive(self.seed, 4000 + cycle).next_u64(),
                read_eio_per_million: 100_000,
                ..FaultConfig::default()
            });
            if let Ok(db) = open_with(&self.disk, run_builder(&self.disk, self.cfg)) {
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
            let ro = builder(&self.disk, self.cfg.checkpoint_threshold_bytes)
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
        let db = match open_with(&self.disk, run_builder(&self.disk, self.cfg)) {
            Ok(db) => db,
            // A complete record that fails its checksum is allowed after crash faults only
            // if its commit was never acknowledged (a reordered crash kept its header and
            // trailer but not all of its images): then the user's way out is a rollback.
            Err(Error::JournalRecordDamaged { txid, .. })
                if txid > self.durable_txid || !strict =>
            {
                let b = run_builder(&self.disk, self.cfg)
                    .recovery(untorn::Recovery::RollbackToLastGood);
                let db = match open_with(&self.disk, b) {
                    Ok(db) => db,
                    Err(e) if !strict && self.corruption_allowed() => {
                        let _ = e;
                        self.stats.corruption_detected += 1;
                        return Ok(None);
                    }
                    Err(e) => return Err(format!("reopen with rollback failed: {e}")),
                };
                let rb = db.recovery_report().rollback;
                if !rb
                    .as_ref()
                    .is_some_and(|r| r.discarded_txids.contains(&txid))
                {
                    return Err(format!(
                        "a rollback past the damaged record of txid {txid} does not report discarding it: {rb:?}"
                    ));
                }
                self.stats.rollbacks += 1;
                db
            }
            Err(e) if !strict && e.needs_rollback() => {
                if !self.corruption_allowed() {
                    return Err(format!(
                        "reopen failed with {e} although no data-destroying fault fired since the last clean verification"
                    ));
                }
                self.stats.corruption_detected += 1;
                return Ok(None);
            }
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
        self.durable_txid = txid;
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
                if checkpointed.is_ok() {
                    self.durable_txid = self.acked_txid;
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
            // One transaction in six is large (up to four times the usual operations):
            // large commits write their pages straight home (J25).
            let most = self.cfg.max_ops_per_tx.max(1);
            let most = if self.rng.below(6) == 0 {
                most * 4
            } else {
                most
            };
            let n = self.rng.range_inclusive(1, most);
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
                    if !self.cfg.durability_none {
                        self.durable_txid = txid;
                    }
                    self.model = next;
                }
                Err(e) => {
                    if !self.explained(&e, faults) {
                        return Err(fail("commit", &e));
                    }
                    // A commit that returned an error is never visible after a reopen,
                    // unless its outcome is explicitly unknown (J13-J15).
                    // (Lost and misdirected writes can defeat a revocation: judged strictly only.)
                    if !matches!(e, Error::CommitOutcomeUnknown { .. })
                        && self.strictness() == Strictness::Strict
                    {
                        lock_history(&self.history).remove(&txid);
                        self.stats.failed_commits += 1;
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
