//! untorn-sim integration tests: one test binary, one module per scenario.
//!
//! Every torture test prints, for each failing seed, one command that reproduces it.
//! `UNTORN_TORTURE_MAX_VALUE_BYTES` caps value sizes (default 20000, i.e. overflow
//! extents included) — a debugging knob to tell overflow-extent bugs from others.

use untorn_sim::config::{Config, FaultClasses};
use untorn_sim::summary::Summary;
use untorn_sim::torture::run;

fn config(faults: &str, seed_start: u64, seeds: u64) -> Config {
    let max_value_bytes = std::env::var("UNTORN_TORTURE_MAX_VALUE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(Config::default().max_value_bytes);
    Config {
        seed_start,
        seeds,
        faults: FaultClasses::parse(faults).expect("fault classes"),
        ops: 40,
        cycles: 10,
        checkpoint_threshold_bytes: 48 * 1024,
        max_value_bytes,
        ..Config::default()
    }
}

fn assert_all_passed(what: &str, s: &Summary) {
    for f in &s.failures {
        eprintln!(
            "{what}: seed {} FAILED: {}\n  reproduce: {}",
            f.seed, f.message, f.repro
        );
    }
    eprintln!(
        "{what}: {} crash states, {} cycles, {} snapshots, {} detected corruption, {} straight-home commits ({} pages), {:?}; {} passed, {} failed",
        s.crash_states,
        s.cycles,
        s.snapshots_verified,
        s.corruption_detected,
        s.direct_home_commits,
        s.direct_home_pages,
        s.faults_fired,
        s.passed,
        s.failed
    );
    assert_eq!(
        s.failed, 0,
        "{what}: {} seeds failed (see the reproduce lines above)",
        s.failed
    );
    assert!(s.passed > 0 && s.cycles > 0, "{what}: nothing ran");
}

/// Strict classes: every acknowledged commit survives, the state is a prefix, reads are exact.
mod strict {
    use super::*;

    fn class(name: &str, seed_start: u64) -> Summary {
        let s = run(&config(name, seed_start, 200));
        assert_all_passed(name, &s);
        assert!(
            s.faults_fired.sectors_dropped > 0,
            "{name}: no crash ever dropped a write"
        );
        // The large transactions of the workload take the straight-home path (J25).
        assert!(
            s.direct_home_commits > 0,
            "{name}: no commit wrote its pages straight home"
        );
        s
    }

    #[test]
    fn crash() {
        class("crash", 10_000);
    }
    #[test]
    fn torn() {
        class("crash,torn", 20_000);
    }
    #[test]
    fn reorder() {
        class("crash,reorder", 30_000);
    }
    #[test]
    fn garble() {
        let s = class("crash,torn,reorder,garble", 40_000);
        assert!(s.faults_fired.sectors_garbled > 0, "no sector was garbled");
    }
    #[test]
    fn eio() {
        let s = class("crash,eio", 50_000);
        assert!(
            s.faults_fired.eio > 0 && s.faults_fired.sync_failures > 0,
            "{:?}",
            s.faults_fired
        );
    }
    #[test]
    fn enospc() {
        let s = class("crash,enospc", 60_000);
        assert!(s.faults_fired.enospc > 0, "ENOSPC never fired");
    }
    #[test]
    fn recovery_crash() {
        class("crash,torn,recovery-crash", 70_000);
    }
    /// Thousands of keys per bucket: branch pages, splits and merges under crashes.
    #[test]
    fn deep_trees() {
        let mut cfg = config("strict", 90_000, 40);
        cfg.keyspace = 20_000;
        cfg.ops = 2_000;
        cfg.max_ops_per_tx = 100;
        cfg.max_value_bytes = cfg.max_value_bytes.min(400);
        let s = run(&cfg);
        assert_all_passed("deep trees", &s);
    }

    /// `Durability::None`: a crash keeps a prefix of the commits, never a corrupt state;
    /// commits made durable by a checkpoint survive.
    #[test]
    fn durability_none() {
        let mut cfg = config("crash,torn,reorder,garble,eio,enospc", 95_000, 200);
        cfg.durability_none = true;
        let s = run(&cfg);
        assert_all_passed("durability none", &s);
    }

    #[test]
    fn all_strict_classes() {
        let s = run(&config("strict", 80_000, 1000));
        assert_all_passed("strict", &s);
    }
}

/// Data-destroying classes: commits may be lost, reads may fail with `Corrupted`, but
/// never return wrong data.
mod lenient {
    use super::*;

    fn class(name: &str, seed_start: u64) -> Summary {
        let s = run(&config(name, seed_start, 200));
        assert_all_passed(name, &s);
        // Lost, misdirected and rotten direct writes included (J25).
        assert!(
            s.direct_home_commits > 0,
            "{name}: no commit wrote its pages straight home"
        );
        s
    }

    #[test]
    fn lost_writes() {
        let s = class("crash,lost", 110_000);
        assert!(
            s.faults_fired.lost_writes > 0 && s.corruption_detected > 0,
            "{s:?}"
        );
    }
    #[test]
    fn misdirected_writes() {
        let s = class("crash,misdirect", 120_000);
        assert!(
            s.faults_fired.misdirected_writes > 0 && s.corruption_detected > 0,
            "{s:?}"
        );
    }
    #[test]
    fn bitrot_between_runs() {
        let s = class("crash,bitrot", 130_000);
        assert!(s.corruption_detected > 0, "bit rot was never detected");
    }
    #[test]
    fn everything() {
        class("all", 140_000);
    }
}

/// The runner must notice what the faults do: judged strictly, lost writes must show up
/// as lost commits or corruption in some seeds (otherwise the checks are too weak).
mod runner_detects {
    use super::*;

    #[test]
    fn lost_writes_judged_strictly_fail_some_seeds() {
        let mut cfg = config("lost", 150_000, 40);
        cfg.force_strict = true;
        let s = run(&cfg);
        assert!(
            s.failed > 0,
            "40 seeds of lost writes never caused a detectable loss"
        );
        assert!(
            s.failures.iter().all(|f| !f.message.contains("WRONG DATA")),
            "lost writes produced wrong data: {:?}",
            s.failures.iter().find(|f| f.message.contains("WRONG DATA"))
        );
    }
}

/// Reader threads verify whole snapshots while the writer commits and checkpoints.
mod readers {
    use super::*;

    #[test]
    fn concurrent_readers_see_consistent_snapshots() {
        let mut cfg = config("crash,torn", 160_000, 40);
        cfg.readers = 2;
        let s = run(&cfg);
        assert_all_passed("readers", &s);
        assert!(
            s.snapshots_verified > 100,
            "readers verified only {} snapshots",
            s.snapshots_verified
        );
    }
}

/// Group commit under crashes: each thread's surviving calls are a prefix covering
/// everything acknowledged.
mod group_commit {
    #[test]
    fn batch_calls_survive_as_per_thread_prefixes() {
        let mut acked = 0;
        for seed in 210_000..210_150 {
            acked += untorn_sim::group_commit::run_seed(seed)
                .unwrap_or_else(|e| panic!("group commit seed {seed}: {e}"));
        }
        assert!(acked > 0, "no batch call was ever acknowledged");
    }
}

/// The same seed drives the same I/O (so a failing seed reproduces).
mod determinism {
    use untorn_sim::summary::SeedStats;
    use untorn_sim::torture::run_seed;

    use super::*;

    #[test]
    fn same_seed_same_disk_operations() {
        let cfg = config("strict", 170_000, 1);
        for seed in 170_000..170_020 {
            let mut a = SeedStats::default();
            let mut b = SeedStats::default();
            let ra = run_seed(&cfg, seed, &mut a);
            let rb = run_seed(&cfg, seed, &mut b);
            assert_eq!(
                ra.is_ok(),
                rb.is_ok(),
                "seed {seed}: outcome differs between runs"
            );
            assert_eq!(
                a.trace, b.trace,
                "seed {seed}: disk operations differ between runs"
            );
            assert_eq!(a.crash_states, b.crash_states, "seed {seed}");
        }
    }
}

/// Exhaustive: every crash point × subsets of pending writes × torn variants, ≤ 3 commits.
mod exhaustive {
    use super::*;

    #[test]
    fn small_workloads_every_crash_point() {
        let mut cfg = config("strict", 180_000, 6);
        cfg.exhaustive = true;
        cfg.max_subsets_per_point = 32;
        let s = run(&cfg);
        assert_all_passed("exhaustive", &s);
        assert!(s.crash_states > 200, "only {} crash states", s.crash_states);
        // Some of the workloads hold a large commit: every crash point of J25 too.
        assert!(s.direct_home_commits > 0, "no commit went straight home");
    }

    #[test]
    fn eio_and_enospc_at_every_operation() {
        let mut states = 0;
        for seed in 185_000..185_008 {
            states += untorn_sim::exhaustive::faults_at_every_operation(seed, 48 * 1024)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        eprintln!("eio/enospc at every operation: {states} states");
        assert!(states > 100, "only {states} states");
    }

    #[test]
    fn crash_during_creation_is_recreated() {
        let states = untorn_sim::exhaustive::creation_crashes(190_000, 48 * 1024)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(states > 0);
    }
}

/// At-rest damage of a quiescent database: right value or `Corrupted`, never wrong data.
mod at_rest {
    #[test]
    fn flips_and_zeroed_sectors_never_give_wrong_data() {
        let mut total = untorn_sim::at_rest::AtRestStats::default();
        for seed in 200_000..200_012 {
            let s = untorn_sim::at_rest::run_seed(seed, 30).unwrap_or_else(|e| panic!("{e}"));
            total.add(&s);
        }
        eprintln!("at rest: {total:?}");
        assert_eq!(total.trials, 12 * 30);
        assert!(
            total.reads_corrupted + total.open_refused > 0,
            "no damage was ever detected: {total:?}"
        );
        assert!(total.reads_right > 0);
    }
}

/// A real process on a real file, SIGKILLed at random moments.
mod kill {
    /// The child's workload on the simulated disk, with a power cut keeping every write
    /// (what a SIGKILL leaves): separates engine bugs from real-file effects.
    #[test]
    fn kill_workload_on_the_simulated_disk() {
        use untorn_sim::config::{DATA_FILE, JOURNAL_FILE};
        let disk = untorn_sim::SimDisk::new(untorn_sim::FaultConfig::default());
        let open = || {
            untorn::Database::builder()
                .open_storage(disk.file(DATA_FILE), disk.file(JOURNAL_FILE), true)
                .expect("open")
        };
        let mut acked = 0;
        for round in 0..6u64 {
            let db = open();
            for _ in 0..(7 + round * 11) {
                acked += 1;
                untorn_sim::kill::commit(&db, acked).expect("commit");
            }
            // Leak the handle like a killed process (no checkpoint on drop).
            std::mem::forget(db);
            disk.shutdown();
            let db = open();
            let last = untorn_sim::kill::verify_db(&db, acked)
                .unwrap_or_else(|e| panic!("round {round} (acknowledged {acked}): {e}"));
            assert_eq!(last, acked);
        }
    }

    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use untorn::unstable::fuzzing::Rng;

    #[test]
    fn sigkill_loses_no_acknowledged_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kill.untorn");
        let mut rng = Rng::new(0x6b69_6c6c);
        let mut acked = 0u64;
        let mut killed_mid_open = 0;
        let started = Instant::now();
        let rounds = 60;
        for round in 0..rounds {
            let mut child = Command::new(env!("CARGO_BIN_EXE_untorn-kill-child"))
                .arg(&path)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn child");
            let stdout = child.stdout.take().expect("child stdout");
            let mut lines = BufReader::new(stdout).lines();
            // Kill after 0..=12 acknowledged commits (0: during open or recovery), plus a
            // random spin so the kill lands at different points inside a commit.
            let wait_for = rng.below(13);
            let mut seen = 0;
            while seen < wait_for {
                match lines.next() {
                    Some(Ok(line)) => {
                        let n: u64 = line.trim().parse().expect("commit number");
                        assert_eq!(n, acked + 1, "round {round}: child skipped a commit number");
                        acked = n;
                        seen += 1;
                    }
                    Some(Err(e)) => panic!("round {round}: reading child: {e}"),
                    None => panic!("round {round}: child exited early: {:?}", child.wait()),
                }
            }
            let spin = Instant::now();
            let spin_for = Duration::from_micros(rng.below(3000));
            while spin.elapsed() < spin_for {
                std::hint::spin_loop();
            }
            if wait_for == 0 {
                killed_mid_open += 1;
            }
            child.kill().expect("SIGKILL");
            child.wait().expect("reap child");
            // Commits the child acknowledged before dying but we had not read yet.
            for line in lines {
                let Ok(line) = line else { break };
                let n: u64 = line.trim().parse().expect("commit number");
                assert_eq!(n, acked + 1, "round {round}: child skipped a commit number");
                acked = n;
            }
            let last = untorn_sim::kill::verify(&path, acked)
                .unwrap_or_else(|e| panic!("round {round} (acknowledged {acked}): {e}"));
            // The in-flight commit may have landed; the next child continues after it.
            acked = last;
        }
        eprintln!(
            "kill: {rounds} kills ({killed_mid_open} during open), {acked} commits, {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert!(acked > 0);
    }
}

/// Minimal deterministic reproductions of findings (see the report in the branch log).
mod regressions {
    use untorn_sim::config::{open_db, DATA_FILE, JOURNAL_FILE};
    use untorn_sim::oracle::engine_check;
    use untorn_sim::{CrashPlan, FaultConfig, SimDisk};

    const THRESHOLD: u64 = 1 << 30;

    fn workload(db: &untorn::Database, commits: u64) {
        for i in 0..commits {
            db.update(|tx| {
                tx.create_bucket_if_not_exists("b")?
                    .put(i.to_be_bytes(), [7u8; 100])
            })
            .expect("commit");
        }
    }

    /// A power cut while a checkpoint writes the meta page, the sector landing as garbage:
    /// the damaged slot is the unused one and the journal still holds every commit, so a
    /// read-only open (which recovers in memory only) must check clean (a warning at most),
    /// like the read-write open does.
    #[test]
    fn garbage_in_the_unused_meta_slot_checks_clean_read_only() {
        // Count the checkpoint's operations on a perfect disk.
        let probe = SimDisk::new(FaultConfig::default());
        let db = open_db(&probe, THRESHOLD).expect("create");
        workload(&db, 3);
        probe.set_faults(FaultConfig::default());
        db.checkpoint().expect("checkpoint");
        let checkpoint_ops = probe.ops();
        drop(db);
        // The same run, with the power failing at the checkpoint's meta write: sync
        // journal, home writes, sync data, *meta write*, sync data, truncate, sync.
        let disk = SimDisk::new(FaultConfig::default());
        let db = open_db(&disk, THRESHOLD).expect("create");
        workload(&db, 3);
        disk.set_faults(FaultConfig {
            crash_at_op: Some(checkpoint_ops - 4),
            ..FaultConfig::default()
        });
        assert!(
            db.checkpoint().is_err(),
            "the checkpoint must hit the crash point"
        );
        let pending = disk.pending(DATA_FILE);
        let meta = pending.last().expect("the in-flight meta write");
        assert!(
            meta.in_flight && meta.len == 4096 && meta.offset.is_multiple_of(4096),
            "{meta:?}"
        );
        let mut plan = CrashPlan::default();
        plan.keep
            .insert(DATA_FILE.into(), vec![vec![false; meta.pieces]]);
        plan.keep.insert(JOURNAL_FILE.into(), vec![]);
        plan.garble
            .push((DATA_FILE.into(), meta.offset, 512, false));
        disk.crash_with(&plan);
        drop(db);
        let ro = untorn::Database::builder()
            .read_only(true)
            .open_storage(disk.file(DATA_FILE), disk.file(JOURNAL_FILE), false)
            .expect("read-only open");
        assert_eq!(
            engine_check(&ro).expect("check"),
            None,
            "read-only check after a torn meta write"
        );
        drop(ro);
        let rw = open_db(&disk, THRESHOLD).expect("read-write open");
        assert_eq!(engine_check(&rw).expect("check"), None, "read-write check");
    }
}

/// Identity: a journal is tied to its data file; a foreign or missing journal is a typed
/// refusal, never a replay or a quiet open, and a rollback says what it gives up.
mod identity {
    use untorn::{Error, Recovery};
    use untorn_sim::config::{builder, open_with, DATA_FILE, JOURNAL_FILE};
    use untorn_sim::{FaultConfig, SimDisk};

    fn database(seed: u64, keys: &[&str]) -> SimDisk {
        let disk = SimDisk::new(FaultConfig {
            seed,
            ..FaultConfig::default()
        });
        let db = open_with(&disk, builder(&disk, 1 << 20)).expect("create");
        db.update(|tx| tx.create_bucket("b").map(|_| ()))
            .expect("bucket");
        db.checkpoint().expect("checkpoint");
        for k in keys {
            db.update(|tx| tx.bucket("b")?.expect("bucket").put(k, *k))
                .expect("commit");
        }
        disk.crash();
        drop(db);
        disk
    }

    fn keys(disk: &SimDisk, b: untorn::Builder) -> Result<Vec<Vec<u8>>, Error> {
        let db = open_with(disk, b)?;
        let r = db.begin_read()?;
        let out = match r.bucket("b")? {
            Some(b) => b
                .iter()?
                .map(|i| i.map(|(k, _)| k.to_vec()))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(out)
    }

    #[test]
    fn a_foreign_journal_is_refused_never_replayed() {
        let a = database(1, &["a0", "a1"]);
        let b = database(2, &["b0", "b1", "b2"]);
        let foreign = b.durable_bytes(JOURNAL_FILE);
        let j = a.file(JOURNAL_FILE);
        j.set_len(0).expect("truncate");
        j.write_at(0, &foreign).expect("write");
        j.sync().expect("sync");
        let err = keys(&a, builder(&a, 1 << 20)).expect_err("refused");
        assert!(matches!(err, Error::ForeignJournal { .. }), "{err:?}");
        let got = keys(
            &a,
            builder(&a, 1 << 20).recovery(Recovery::RollbackToLastGood),
        )
        .expect("rollback");
        assert!(
            got.is_empty(),
            "only A's checkpointed state, never B's pairs: {got:?}"
        );
        assert!(!a.durable_bytes(DATA_FILE).is_empty());
    }

    #[test]
    fn a_missing_journal_is_refused_and_a_rollback_reports_what_may_be_lost() {
        let a = database(3, &["a0", "a1"]);
        let j = a.file(JOURNAL_FILE);
        j.set_len(0).expect("truncate");
        j.sync().expect("sync");
        let err = keys(&a, builder(&a, 1 << 20)).expect_err("refused");
        assert!(matches!(err, Error::JournalMissing { .. }), "{err:?}");
        let db = open_with(
            &a,
            builder(&a, 1 << 20).recovery(Recovery::RollbackToLastGood),
        )
        .expect("rollback");
        let rb = db.recovery_report().rollback.expect("reported");
        assert!(rb.discarded_unknown_after.is_some(), "{rb:?}");
    }
}
