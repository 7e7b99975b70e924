//! Exhaustive crash exploration for small workloads (at most three commits and a
//! checkpoint): every crash point × every subset of the unsynced writes pending at that
//! point (all subsets up to `max_subsets_per_point`, a seeded sample beyond) × torn
//! variants of each file's last pending write. Every resulting disk is reopened and
//! checked with the same assertions as the randomized runner (prefix, durability,
//! check, no wrong data).

use std::collections::BTreeMap;

use untorn::Error;

use crate::config::{builder, open_db, open_with, Config, DATA_FILE, JOURNAL_FILE};
use crate::disk::{CrashPlan, FaultConfig, PendingInfo, SimDisk};
use crate::oracle::{
    apply_op, check_recovered_txid, engine_check, scan_snapshot, ScanError, Strictness,
};
use crate::summary::SeedStats;
use untorn::unstable::fuzzing::model::{random_op_with, Model, Op, Shape, ValueSpec};
use untorn::unstable::fuzzing::Rng;

/// One step of a small workload.
#[derive(Debug, Clone)]
enum Step {
    /// A committed transaction.
    Commit(Vec<Op>),
    /// An explicit checkpoint.
    Checkpoint,
}

/// What one execution up to a crash point acknowledged.
#[derive(Debug, Default)]
struct Execution {
    history: BTreeMap<u64, Model>,
    acked_txid: u64,
    issued_txid: u64,
    /// Commits that wrote pages straight home, and their pages (J25).
    direct_home: (u64, u64),
}

fn generate(seed: u64, shape: &Shape) -> Vec<Step> {
    let mut rng = Rng::derive(seed, 200);
    let mut model = Model::default();
    let mut tag = seed << 32;
    let commits = rng.range_inclusive(1, 3);
    let mut steps = Vec::new();
    // One commit in three is large: it also puts values larger than a page into a bucket
    // (overflow extents, several pages each), so that its images exceed the threshold
    // and it writes them straight home (J25); every crash point inside that protocol is
    // explored too.
    for _ in 0..commits {
        let large = rng.below(3) == 0;
        let n = rng.range_inclusive(1, 4);
        let mut ops = Vec::new();
        for _ in 0..n {
            let op = random_op_with(&mut rng, &model, &mut tag, shape);
            model.apply(&op);
            ops.push(op);
        }
        if large {
            let path = model.buckets.keys().next().cloned().unwrap_or_default();
            if path.is_empty() {
                let create = Op::CreateBucket {
                    path: vec![b"large".to_vec()],
                };
                model.apply(&create);
                ops.push(create);
            }
            let path = model.buckets.keys().next().cloned().unwrap_or_default();
            for i in 0..3 {
                tag += 1;
                let op = Op::Put {
                    path: path.clone(),
                    key: format!("large-{i}").into_bytes(),
                    value: ValueSpec {
                        tag,
                        len: rng.range_inclusive(4097, 12_000) as u32,
                    },
                };
                model.apply(&op);
                ops.push(op);
            }
        }
        steps.push(Step::Commit(ops));
        if rng.below(3) == 0 {
            steps.push(Step::Checkpoint);
        }
    }
    steps
}

fn execute(
    disk: &SimDisk,
    steps: &[Step],
    threshold: u64,
    crash_at_op: Option<u64>,
) -> Result<Execution, String> {
    let db = open_db(disk, threshold)
        .map_err(|e| format!("creating the database on a perfect disk: {e}"))?;
    let txid0 = db
        .begin_read()
        .map_err(|e| format!("begin_read: {e}"))?
        .txid();
    disk.set_faults(FaultConfig {
        crash_at_op,
        ..FaultConfig::default()
    });
    let mut exec = Execution {
        acked_txid: txid0,
        issued_txid: txid0,
        ..Execution::default()
    };
    exec.history.insert(txid0, Model::default());
    let mut model = Model::default();
    let unexpected = |what: &str, e: &Error| -> Result<Execution, String> {
        Err(format!("{what} failed before the crash point: {e}"))
    };
    for step in steps {
        match step {
            Step::Checkpoint => {
                if let Err(e) = db.checkpoint() {
                    if disk.is_dead() {
                        break;
                    }
                    return unexpected("checkpoint", &e);
                }
            }
            Step::Commit(ops) => {
                let wtx = match db.begin_write() {
                    Ok(w) => w,
                    Err(e) if disk.is_dead() => {
                        let _ = e;
                        break;
                    }
                    Err(e) => return unexpected("begin_write", &e),
                };
                let txid = wtx.txid();
                let mut next = model.clone();
                let mut failed = None;
                for op in ops {
                    if let Err(e) = apply_op(&wtx, op) {
                        failed = Some(e);
                        break;
                    }
                    next.apply(op);
                }
                if let Some(e) = failed {
                    if disk.is_dead() {
                        break;
                    }
                    return unexpected("an operation", &e);
                }
                exec.history.insert(txid, next.clone());
                exec.issued_txid = txid;
                match wtx.commit() {
                    Ok(()) => {
                        exec.acked_txid = txid;
                        model = next;
                    }
                    Err(e) if disk.is_dead() => {
                        let _ = e;
                        break;
                    }
                    Err(e) => return unexpected("commit", &e),
                }
            }
        }
    }
    if let Ok(info) = db.info() {
        exec.direct_home = (info.direct_home_commits, info.direct_home_pages);
    }
    drop(db);
    Ok(exec)
}

/// Reopens a crashed fork and checks the prefix/durability/check/no-wrong-data rules.
fn verify(
    disk: &SimDisk,
    plan: &CrashPlan,
    exec: &Execution,
    threshold: u64,
) -> Result<(), String> {
    let fork = disk.fork();
    fork.crash_with(plan);
    verify_crashed(&fork, exec, threshold)
}

/// Every crash point inside the recovery of `plan`'s state (each followed by a power
/// cut, torn on odd points), then a clean reopen. Returns the crash states explored.
fn verify_recovery_crashes(
    disk: &SimDisk,
    plan: &CrashPlan,
    exec: &Execution,
    threshold: u64,
) -> Result<u64, String> {
    // How many mutating operations does an undisturbed recovery do?
    let probe = disk.fork();
    probe.crash_with(plan);
    probe.set_faults(FaultConfig::default());
    let reopened = open_db(&probe, threshold).map_err(|e| format!("reopen failed: {e}"))?;
    // The operations of the open (recovery and session start), not of the close after it.
    let recovery_ops = probe.ops();
    drop(reopened);
    let mut states = 0;
    for r in 0..recovery_ops {
        let fork = disk.fork();
        fork.crash_with(plan);
        fork.set_faults(FaultConfig {
            seed: r,
            crash_at_op: Some(r),
            torn: r % 2 == 1,
            ..FaultConfig::default()
        });
        if open_db(&fork, threshold).is_ok() {
            return Err(if fork.is_dead() {
                format!(
                    "open returned Ok although recovery's operation {r} of {recovery_ops} failed (power cut): an I/O error was swallowed"
                )
            } else {
                format!("recovery finished before its crash point {r} of {recovery_ops}")
            });
        }
        fork.crash();
        verify_crashed(&fork, exec, threshold).map_err(|e| {
            format!("after a crash at op {r} of {recovery_ops} inside recovery: {e}")
        })?;
        states += 1;
    }
    Ok(states)
}

fn verify_crashed(fork: &SimDisk, exec: &Execution, threshold: u64) -> Result<(), String> {
    fork.set_faults(FaultConfig::default());
    let db = match open_db(fork, threshold) {
        Ok(db) => db,
        // A torn variant can keep a record's header and trailer but not all its images:
        // allowed only for a commit never acknowledged, whose way out is a rollback.
        Err(Error::JournalRecordDamaged { txid, .. }) if txid > exec.acked_txid => open_with(
            fork,
            builder(fork, threshold).recovery(untorn::Recovery::RollbackToLastGood),
        )
        .map_err(|e| format!("reopen with rollback failed: {e}"))?,
        Err(e) => return Err(format!("reopen failed: {e}")),
    };
    let rtx = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
    let txid = rtx.txid();
    check_recovered_txid(
        txid,
        exec.acked_txid,
        exec.issued_txid,
        &exec.history,
        Strictness::Strict,
    )?;
    let expected = exec
        .history
        .get(&txid)
        .ok_or_else(|| format!("recovered txid {txid} is not an issued commit"))?;
    match scan_snapshot(&rtx, expected) {
        Ok(_) => {}
        Err(ScanError::Wrong(m)) => return Err(format!("at txid {txid}: {m}")),
        Err(ScanError::Engine(e)) => return Err(format!("at txid {txid}: read failed: {e}")),
    }
    drop(rtx);
    match engine_check(&db) {
        Ok(None) => Ok(()),
        Ok(Some(f)) => Err(format!("check at txid {txid} not clean: {f}")),
        Err(e) => Err(format!("check at txid {txid} failed: {e}")),
    }
}

fn all_pending(disk: &SimDisk) -> Vec<(&'static str, PendingInfo)> {
    let mut out = Vec::new();
    for name in [DATA_FILE, JOURNAL_FILE] {
        for p in disk.pending(name) {
            out.push((name, p));
        }
    }
    out
}

/// A plan keeping whole pending operations by `mask` bit (in `all_pending` order).
fn mask_plan(pending: &[(&'static str, PendingInfo)], mask: &[bool]) -> CrashPlan {
    let mut plan = CrashPlan::default();
    for ((name, p), keep) in pending.iter().zip(mask) {
        plan.keep
            .entry((*name).to_owned())
            .or_default()
            .push(vec![*keep; p.pieces]);
    }
    plan
}

/// Runs the exhaustive exploration for one seed.
pub fn run_seed(cfg: &Config, seed: u64, stats: &mut SeedStats) -> Result<(), String> {
    let steps = generate(seed, &cfg.shape());
    let threshold = cfg.checkpoint_threshold_bytes;
    // Dry run on a perfect disk to count the mutating operations after creation.
    let dry = SimDisk::new(FaultConfig::default());
    let dry_exec = execute(&dry, &steps, threshold, None)?;
    stats.direct_home_commits += dry_exec.direct_home.0;
    stats.direct_home_pages += dry_exec.direct_home.1;
    let total_ops = dry.ops();
    let cap = cfg.max_subsets_per_point.max(2);
    let mut rng = Rng::derive(seed, 300);
    for crash_at in 0..=total_ops {
        let disk = SimDisk::new(FaultConfig::default());
        let exec = execute(&disk, &steps, threshold, Some(crash_at))
            .map_err(|e| format!("crash point {crash_at}: {e}"))?;
        let pending = all_pending(&disk);
        let k = pending.len();
        let masks: Vec<Vec<bool>> = if k < 63 && (1u64 << k) <= cap as u64 {
            (0..(1u64 << k))
                .map(|m| (0..k).map(|i| m >> i & 1 == 1).collect())
                .collect()
        } else {
            let mut v: Vec<Vec<bool>> = vec![vec![false; k], vec![true; k]];
            while v.len() < cap {
                v.push((0..k).map(|_| rng.coin()).collect());
            }
            v
        };
        for mask in &masks {
            let plan = mask_plan(&pending, mask);
            let describe = |p: &CrashPlan| {
                format!(
                    "crash point {crash_at} of {total_ops}, surviving pieces {:?}",
                    p.keep
                )
            };
            verify(&disk, &plan, &exec, threshold)
                .map_err(|e| format!("{}: {e}", describe(&plan)))?;
            stats.crash_states += 1;
            // Crashes inside the recovery of the all-kept and the none-kept states.
            if mask.iter().all(|k| *k) || mask.iter().all(|k| !*k) {
                stats.crash_states += verify_recovery_crashes(&disk, &plan, &exec, threshold)
                    .map_err(|e| format!("{}: {e}", describe(&plan)))?;
            }
            // Torn variants of each file's last pending write, when it is kept.
            for name in [DATA_FILE, JOURNAL_FILE] {
                let Some(ops) = plan.keep.get(name) else {
                    continue;
                };
                let Some(last) = ops.len().checked_sub(1) else {
                    continue;
                };
                let pieces = ops.get(last).map_or(0, Vec::len);
                if pieces < 2 || !ops.get(last).is_some_and(|p| p.iter().all(|k| *k)) {
                    continue;
                }
                let mut variants: Vec<Vec<bool>> = [1, pieces / 2, pieces - 1]
                    .iter()
                    .map(|&j| (0..pieces).map(|i| i < j).collect())
                    .collect();
                variants.push((0..pieces).map(|_| rng.coin()).collect());
                variants.push((0..pieces).map(|i| i + 1 == pieces).collect());
                variants.sort();
                variants.dedup();
                for v in variants {
                    let mut torn = plan.clone();
                    if let Some(slot) = torn.keep.get_mut(name).and_then(|o| o.get_mut(last)) {
                        *slot = v;
                    }
                    verify(&disk, &torn, &exec, threshold).map_err(|e| {
                        format!("{} (torn last {name} write): {e}", describe(&torn))
                    })?;
                    stats.crash_states += 1;
                }
            }
        }
        stats.cycles += 1;
    }
    Ok(())
}

/// Crash points inside database creation: every crash point of `open_storage(create)` ×
/// ordered-prefix survival, then reopen with `create_if_empty`. Returns the number of
/// crash states explored, or the first failure (a file that can neither be opened nor
/// re-created is the bbolt "crash during file initialisation" incident).
pub fn creation_crashes(seed: u64, threshold: u64) -> Result<u64, String> {
    let dry = SimDisk::new(FaultConfig::default());
    let created =
        open_db(&dry, threshold).map_err(|e| format!("creating on a perfect disk: {e}"))?;
    // Every operation of creation (the close after it is another protocol).
    let total = dry.ops();
    drop(created);
    let mut states = 0;
    for crash_at in 0..total {
        for variant in 0..4u64 {
            let disk = SimDisk::new(FaultConfig {
                seed: seed ^ (crash_at << 8) ^ variant,
                crash_at_op: Some(crash_at),
                torn: variant % 2 == 1,
                reorder: variant >= 2,
                ..FaultConfig::default()
            });
            if open_db(&disk, threshold).is_ok() {
                return Err(format!(
                    "creation succeeded past its crash point {crash_at}"
                ));
            }
            disk.crash();
            let db = open_db(&disk, threshold).map_err(|e| {
                format!("crash at op {crash_at} of {total} during creation (variant {variant}) left a file that cannot be opened or re-created: {e}")
            })?;
            let rtx = db.begin_read().map_err(|e| format!("begin_read: {e}"))?;
            match scan_snapshot(&rtx, &Model::default()) {
                Ok(_) => {}
                Err(ScanError::Wrong(m)) => return Err(m),
                Err(ScanError::Engine(e)) => return Err(format!("read failed: {e}")),
            }
            drop(rtx);
            match engine_check(&db) {
                Ok(None) => {}
                Ok(Some(f)) => {
                    return Err(format!(
                        "crash at op {crash_at} during creation: check: {f}"
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "crash at op {crash_at} during creation: check failed: {e}"
                    ))
                }
            }
            states += 1;
        }
    }
    Ok(states)
}

/// EIO and then ENOSPC injected at every mutating operation of a small workload (its
/// commits, checkpoints and close), each followed by a crash and a reopen: a commit that
/// returned an error is never visible (unless it returned `CommitOutcomeUnknown`, which
/// only a failed revocation allows), every acknowledged commit is, and a failure before a
/// record's header leaves the handle usable for the next commit. Returns the states
/// explored.
pub fn faults_at_every_operation(seed: u64, threshold: u64) -> Result<u64, String> {
    let steps = generate(seed, &Shape::default());
    let dry = SimDisk::new(FaultConfig {
        seed,
        ..FaultConfig::default()
    });
    execute(&dry, &steps, threshold, None)?;
    let total = dry.ops();
    let mut states = 0;
    for k in 0..total {
        for enospc in [false, true] {
            let disk = SimDisk::new(FaultConfig {
                seed,
                ..FaultConfig::default()
            });
            let db = open_db(&disk, threshold).map_err(|e| format!("create: {e}"))?;
            let txid0 = db.begin_read().map_err(|e| format!("{e}"))?.txid();
            let used: u64 = [DATA_FILE, JOURNAL_FILE]
                .iter()
                .map(|n| disk.view_bytes(n).len() as u64)
                .sum();
            disk.set_faults(FaultConfig {
                seed: seed ^ k,
                eio_at_op: (!enospc).then_some(k),
                capacity_bytes: enospc.then_some(used + k * 4096),
                ..FaultConfig::default()
            });
            let mut exec = Execution {
                acked_txid: txid0,
                issued_txid: txid0,
                ..Execution::default()
            };
            exec.history.insert(txid0, Model::default());
            let mut model = Model::default();
            let what = if enospc { "ENOSPC" } else { "EIO" };
            for step in &steps {
                if db.is_poisoned() {
                    break;
                }
                match step {
                    Step::Checkpoint => {
                        let _ = db.checkpoint();
                    }
                    Step::Commit(ops) => {
                        let Ok(wtx) = db.begin_write() else { break };
                        let txid = wtx.txid();
                        let mut next = model.clone();
                        let mut failed = false;
                        for op in ops {
                            if apply_op(&wtx, op).is_err() {
                                failed = true;
                                break;
                            }
                            next.apply(op);
                        }
                        if failed {
                            continue;
                        }
                        exec.history.insert(txid, next.clone());
                        exec.issued_txid = txid;
                        match wtx.commit() {
                            Ok(()) => {
                                exec.acked_txid = txid;
                                model = next;
                            }
                            Err(Error::CommitOutcomeUnknown { .. }) => break,
                            Err(e) => {
                                exec.history.remove(&txid);
                                if !matches!(e, Error::Io(_) | Error::NoSpace | Error::Poisoned) {
                                    return Err(format!(
                                        "{what} at op {k}: commit failed with an unexpected error: {e}"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            drop(db);
            disk.crash();
            verify_crashed(&disk, &exec, threshold)
                .map_err(|e| format!("{what} at op {k} of {total}: {e}"))?;
            states += 1;
        }
    }
    Ok(states)
}
