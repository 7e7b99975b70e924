//! Read-only handles beside a writer (issue 11): a second handle on the same path (its own
//! open file descriptions, so the OS locks treat it as another process) or a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use untorn::unstable::format::readers::{ReaderTable, READER_TABLE_BYTES};
use untorn::{Database, Error};

const KEYS: u32 = 200;

/// One transaction: every key of bucket `b` gets the value `round` (so a snapshot holds
/// one round in every key).
fn write_round(db: &Database, round: u32) {
    db.update(|tx| -> untorn::Result<_> {
        let b = tx.create_bucket_if_not_exists("b")?;
        for i in 0..KEYS {
            b.put(format!("k{i:04}"), format!("{round:08}").repeat(8))?;
        }
        Ok(())
    })
    .unwrap();
}

/// The rounds the snapshot of `db` holds, per key (one entry when it is one snapshot).
fn rounds_seen(db: &Database) -> untorn::Result<Vec<String>> {
    db.view(|tx| -> untorn::Result<_> {
        let b = tx.bucket("b")?.expect("bucket b");
        let mut seen: Vec<String> = Vec::new();
        let mut n = 0;
        for e in b.iter()? {
            let (_, v) = e?;
            n += 1;
            let v = String::from_utf8(v.to_vec()).unwrap();
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        assert_eq!(n, KEYS);
        Ok(seen)
    })
}

fn writer(p: &Path) -> Database {
    Database::builder()
        .checkpoint_threshold_bytes(256 << 10)
        .create(p)
        .unwrap()
}

fn table(p: &Path) -> ReaderTable {
    let mut s = p.as_os_str().to_owned();
    s.push(".readers");
    let bytes = std::fs::read(s).unwrap();
    assert_eq!(bytes.len(), READER_TABLE_BYTES);
    ReaderTable::decode(&bytes).expect("the reader table verifies")
}

fn slots_in_use(p: &Path) -> Vec<u64> {
    table(p)
        .slots
        .iter()
        .filter(|s| s.in_use)
        .map(|s| s.pinned_txid)
        .collect()
}

/// Catches: a read-only open refused while a writer holds the database (the old shared
/// lock), a reader that is not pinned (the writer's checkpoints overwrite the home pages
/// of the snapshot: reads fail verification), and a second writer let in.
#[test]
fn a_reader_beside_a_writer_keeps_its_snapshot_while_the_writer_reuses_pages() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let w = writer(&p);
    write_round(&w, 1);
    // Round 1 home, so the reader reads its pages from the data file, not the journal.
    w.checkpoint().unwrap();
    let r = Database::builder().read_only(true).open(&p).unwrap();
    let info = r.info().unwrap();
    assert!(info.live && info.read_only);
    assert_eq!(slots_in_use(&p), vec![info.txid]);
    assert!(matches!(Database::open(&p), Err(Error::Locked)));
    let hw_start = w.info().unwrap().high_water;
    for round in 2..80 {
        write_round(&w, round);
    }
    w.checkpoint().unwrap();
    assert_eq!(
        rounds_seen(&r).unwrap(),
        vec![format!("{:08}", 1).repeat(8)]
    );
    let report = r.check(Default::default()).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    // The writer kept the snapshot's pages: it grew instead of reusing them.
    let hw_pinned = w.info().unwrap().high_water;
    assert!(hw_pinned > hw_start);

    // Once the reader is gone, the writer reuses pages again and the table is empty.
    drop(r);
    assert!(slots_in_use(&p).is_empty());
    for round in 80..160 {
        write_round(&w, round);
    }
    let hw_after = w.info().unwrap().high_water;
    assert!(
        hw_after - hw_pinned < hw_pinned - hw_start,
        "pages are reused without readers: {hw_start} -> {hw_pinned} -> {hw_after}"
    );
}

/// Catches: a reader that registers after it read the journal (the writer may reuse, in
/// between, pages its snapshot reaches), a snapshot mixed from two commits, and a read-only
/// open that fails while the writer checkpoints under it.
#[test]
fn readers_opening_while_the_writer_commits_and_checkpoints_see_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let w = writer(&p);
    write_round(&w, 0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut round = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                write_round(&w, round);
                round += 1;
            }
        });
        for _ in 0..30 {
            let r = Database::builder().read_only(true).open(&p).unwrap();
            let seen = rounds_seen(&r).unwrap();
            assert_eq!(seen.len(), 1, "one snapshot: {seen:?}");
            let report = r.check(Default::default()).unwrap();
            assert!(report.findings.is_empty(), "{:#?}", report.findings);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// The child side of `a_killed_readers_slot_is_reclaimed`: opens the database named by
/// `UNTORN_LIVE_CHILD_DB` read-only, says so, and waits to be killed.
#[test]
#[ignore = "run as a child process by a_killed_readers_slot_is_reclaimed"]
fn child_reader_waits_to_be_killed() {
    let Ok(p) = std::env::var("UNTORN_LIVE_CHILD_DB") else {
        return;
    };
    let r = Database::builder().read_only(true).open(p).unwrap();
    println!("ready {}", r.info().unwrap().txid);
    let mut line = String::new();
    // Blocks until the parent kills this process (or closes stdin).
    let _ = std::io::stdin().read_line(&mut line);
}

/// Catches: a crashed reader's slot pinning pages forever (the writer never reclaims a
/// slot whose lock file is free), and a writer that ignores a reader of another process.
#[test]
fn a_killed_readers_slot_is_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("db");
    let w = writer(&p);
    write_round(&w, 1);
    w.checkpoint().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "live::child_reader_waits_to_be_killed",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("UNTORN_LIVE_CHILD_DB", &p)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the child exited");
        // The test harness may print the test's name on the same line.
        if let Some(at) = line.find("ready ") {
            line.drain(..at + "ready ".len());
            break;
        }
    }
    let pinned: u64 = line.trim().parse().unwrap();
    assert_eq!(slots_in_use(&p), vec![pinned]);
    // Another process's reader: the writer keeps its pages.
    let hw_start = w.info().unwrap().high_water;
    for round in 2..40 {
        write_round(&w, round);
    }
    // Every round replaces at least 3 pages (200 values of 64 bytes); none of them may
    // reuse a page the child's snapshot reaches, so the file grows by at least that.
    let hw_pinned = w.info().unwrap().high_water;
    assert!(
        hw_pinned - hw_start >= 38 * 3,
        "the writer reused pages a reader of another process pins: {hw_start} -> {hw_pinned}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The slot is still marked in use; its lock file is free. The next checkpoint clears it.
    assert_eq!(slots_in_use(&p), vec![pinned]);
    w.checkpoint().unwrap();
    write_round(&w, 40);
    w.checkpoint().unwrap();
    assert!(slots_in_use(&p).is_empty());
    for round in 41..80 {
        write_round(&w, round);
    }
    let hw_after = w.info().unwrap().high_water;
    assert!(
        hw_after - hw_pinned < hw_pinned - hw_start,
        "{hw_start} -> {hw_pinned} -> {hw_after}"
    );
}
