//! Issue 9's six attack cases, through the CLI: each gives a typed refusal or a correct,
//! reported recovery, never a silent rollback or a foreign replay. (Case 3, a commit
//! failing with ENOSPC, needs a full disk: it is `j13_a_failed_commit_is_never_replayed`
//! in the engine's tests.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use untorn::unstable::format::{RecordHeader, RecordKind, RECORD_HEADER_SIZE};
use untorn::{Database, FileStorage, Storage};

use crate::common::{ok, untorn, PS};

fn file(p: &Path) -> Arc<dyn Storage> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)
        .unwrap();
    Arc::new(FileStorage::new(f))
}

/// Opens without the OS lock (so a "crashed" handle can be leaked and the CLI run).
fn open(p: &Path) -> Database {
    Database::builder()
        .open_storage(file(p), file(&untorn::journal_path(p)), true)
        .unwrap()
}

fn put(db: &Database, k: &str, v: &str) {
    db.update(|tx| tx.create_bucket_if_not_exists("b")?.put(k, v))
        .unwrap();
}

/// A database at `dir/name` with `keys` committed and not checkpointed, then a crash.
fn crashed(dir: &Path, name: &str, keys: &[&str]) -> PathBuf {
    let p = dir.join(name);
    let db = open(&p);
    for k in keys {
        put(&db, k, &format!("value of {k}"));
    }
    std::mem::forget(db);
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(args: &[&str]) -> (i32, String) {
    let o = untorn(args, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap(), text)
}

/// Commit record offsets of the journal's current generation.
fn records(j: &[u8]) -> Vec<(usize, RecordHeader)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(h) = j
        .get(pos..pos + RECORD_HEADER_SIZE)
        .and_then(RecordHeader::decode)
    {
        if h.kind == RecordKind::Commit {
            out.push((pos, h));
        }
        pos += h.record_len() as usize;
    }
    out
}

/// Flips one bit in the images of the `n`-th commit record.
fn damage_record(p: &Path, n: usize) {
    let jp = untorn::journal_path(p);
    let mut j = std::fs::read(&jp).unwrap();
    let (at, h) = records(&j)[n];
    let body = at + RECORD_HEADER_SIZE + h.aux_padded_len() as usize;
    j[body + 300] ^= 1;
    std::fs::write(&jp, j).unwrap();
}

/// The slot of the newest meta (by txid, then meta sequence).
fn newest_slot(p: &Path) -> usize {
    let b = std::fs::read(p).unwrap();
    let f = |slot: usize, off: usize| {
        u64::from_le_bytes(b[slot * PS + off..slot * PS + off + 8].try_into().unwrap())
    };
    usize::from((f(1, 16), f(1, 136)) > (f(0, 16), f(0, 136)))
}

/// Two checkpoints and a clean close; `k1` = new, `k2` = newer.
fn checkpointed_twice(dir: &Path) -> PathBuf {
    let p = dir.join("twice.untorn");
    let db = Database::create(&p).unwrap();
    put(&db, "k1", "old");
    db.checkpoint().unwrap();
    put(&db, "k1", "new");
    put(&db, "k2", "newer");
    db.checkpoint().unwrap();
    drop(db);
    p
}

#[test]
fn case1_one_damaged_byte_in_the_active_meta_is_restored_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let p = checkpointed_twice(dir.path());
    let slot = newest_slot(&p);
    let mut b = std::fs::read(&p).unwrap();
    b[slot * PS + 48] ^= 0x01; // the magic
    std::fs::write(&p, b).unwrap();
    let out = ok(&["check", s(&p)], 0);
    assert!(out.contains("restored from the journal"), "{out}");
    assert_eq!(ok(&["get", s(&p), "b", "k2"], 0), "newer");
    ok(&["put", s(&p), "b", "k3", "v3"], 0);
    assert_eq!(ok(&["get", s(&p), "b", "k2"], 0), "newer");
    assert_eq!(ok(&["check", s(&p)], 0).matches("warning").count(), 0);
}

#[test]
fn case1_a_damaged_meta_nothing_proves_older_is_refused_until_an_explicit_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let p = checkpointed_twice(dir.path());
    let slot = newest_slot(&p);
    let mut b = std::fs::read(&p).unwrap();
    b[slot * PS + 48] ^= 0x01;
    std::fs::write(&p, b).unwrap();
    std::fs::remove_file(untorn::journal_path(&p)).unwrap();
    let (code, out) = run(&["check", s(&p)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("meta_invalid") && out.contains("nothing proves it older"),
        "{out}"
    );
    let (code, out) = run(&["get", s(&p), "b", "k2"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("meta slot {slot} is damaged")),
        "{out}"
    );
    let (code, out) = run(&["put", s(&p), "b", "x", "1"]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run(&["info", s(&p)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REFUSED"), "{out}");
    let out = ok(&["recover", s(&p), "--rollback"], 0);
    assert!(
        out.contains("ROLLBACK") && out.contains(&format!("damaged meta slot {slot}")),
        "{out}"
    );
    ok(&["check", s(&p)], 0);
}

#[test]
fn case1_a_zeroed_active_meta_or_a_truncated_file_is_never_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zeroed.untorn");
    let db = Database::create(&p).unwrap();
    put(&db, "k1", "v1");
    db.checkpoint().unwrap();
    drop(db);
    let slot = newest_slot(&p);
    let original = std::fs::read(&p).unwrap();
    let mut b = original.clone();
    b[slot * PS..(slot + 1) * PS].fill(0);
    std::fs::write(&p, &b).unwrap();
    assert_eq!(ok(&["get", s(&p), "b", "k1"], 0), "v1");
    // Truncated to its first page: refused, never a fresh database.
    std::fs::write(&p, &original[..PS]).unwrap();
    let (code, out) = run(&["put", s(&p), "b", "fresh", "1"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("truncated"), "{out}");
    assert_eq!(run(&["check", s(&p)]).0, 1);
    assert_eq!(
        std::fs::metadata(&p).unwrap().len(),
        PS as u64,
        "nothing written"
    );
}

#[test]
fn case2_another_databases_journal_is_refused_never_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.untorn");
    {
        let db = open(&a);
        put(&db, "a0", "A");
        db.checkpoint().unwrap();
        put(&db, "a1", "A");
        std::mem::forget(db);
    }
    let b = crashed(dir.path(), "b.untorn", &["b0", "b1"]);
    std::fs::copy(untorn::journal_path(&b), untorn::journal_path(&a)).unwrap();
    let (code, out) = run(&["get", s(&a), "b", "b0"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("belongs to another database"), "{out}");
    assert_eq!(run(&["check", s(&a)]).0, 1);
    assert_eq!(run(&["put", s(&a), "b", "x", "1"]).0, 2);
    let out = ok(&["recover", s(&a), "--rollback"], 0);
    assert!(out.contains("journal kept as"), "{out}");
    assert_eq!(ok(&["get", s(&a), "b", "a0"], 0), "A");
    assert_eq!(
        run(&["get", s(&a), "b", "b0"]).0,
        1,
        "B's pairs never appear"
    );
    ok(&["check", s(&a)], 0);
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".rollback-"))
        .collect();
    assert_eq!(kept.len(), 1, "the foreign journal is kept aside");
}

#[test]
fn case4_a_missing_or_emptied_journal_is_an_error_naming_what_may_be_lost() {
    let dir = tempfile::tempdir().unwrap();
    for how in ["deleted", "emptied"] {
        let p = crashed(dir.path(), &format!("{how}.untorn"), &["k0", "k1", "k2"]);
        let jp = untorn::journal_path(&p);
        if how == "deleted" {
            std::fs::remove_file(&jp).unwrap();
        } else {
            std::fs::File::create(&jp).unwrap();
        }
        let (code, out) = run(&["get", s(&p), "b", "k2"]);
        assert_eq!(code, 2, "{how}: {out}");
        assert!(out.contains("journal is missing or empty"), "{out}");
        assert_eq!(run(&["dump", s(&p)]).0, 2, "{how}");
        assert_eq!(run(&["check", s(&p)]).0, 1, "{how}");
        let (code, out) = run(&["info", s(&p)]);
        assert_eq!(code, 1, "{how}: {out}");
        assert!(out.contains("REFUSED"), "{out}");
        let (code, _) = run(&["put", s(&p), "b", "x", "1"]);
        assert_eq!(
            code, 2,
            "{how}: the next write does not recreate the journal"
        );
        let out = ok(&["recover", s(&p), "--rollback"], 0);
        assert!(out.contains("count unknown"), "{out}");
        ok(&["put", s(&p), "b", "x", "1"], 0);
    }
}

#[test]
fn case5_a_bit_flipped_in_the_last_record_is_reported_and_its_evidence_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = crashed(dir.path(), "last.untorn", &["k0", "k1", "k2"]);
    damage_record(&p, 2);
    let journal_before = std::fs::read(untorn::journal_path(&p)).unwrap();
    let (code, out) = run(&["info", s(&p)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("DAMAGED RECORD") && out.contains("txid 3"),
        "{out}"
    );
    let (code, out) = run(&["check", s(&p)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("journal record of txid 3"), "{out}");
    let (code, out) = run(&["put", s(&p), "b", "x", "1"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("complete but damaged"), "{out}");
    assert_eq!(
        std::fs::read(untorn::journal_path(&p)).unwrap(),
        journal_before,
        "nothing truncated until the user accepts the rollback"
    );
    let out = ok(&["recover", s(&p), "--rollback", "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rollback"]["discarded_txids"], serde_json::json!([3]));
    let kept = v["rollback"]["journal_kept_as"].as_str().unwrap();
    assert_eq!(std::fs::read(kept).unwrap(), journal_before);
    assert_eq!(ok(&["get", s(&p), "b", "k1"], 0), "value of k1");
}

#[test]
fn case6_a_damaged_record_followed_by_valid_ones_has_a_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let p = crashed(dir.path(), "middle.untorn", &["k0", "k1", "k2", "k3"]);
    damage_record(&p, 1);
    let (code, out) = run(&["info", s(&p)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("later records: txids [3, 4]"), "{out}");
    assert_eq!(run(&["check", s(&p)]).0, 1);
    let dst = dir.path().join("salvaged.untorn");
    let (code, out) = run(&["salvage", s(&p), s(&dst)]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(run(&["put", s(&p), "b", "x", "1"]).0, 2);
    let out = ok(&["recover", s(&p), "--rollback"], 0);
    assert!(out.contains("discarded txids [2, 3, 4]"), "{out}");
    assert_eq!(ok(&["get", s(&p), "b", "k0"], 0), "value of k0");
    ok(&["put", s(&p), "b", "x", "1"], 0);
    ok(&["check", s(&p)], 0);
}

#[test]
fn recover_without_rollback_replays_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let p = crashed(dir.path(), "plain.untorn", &["k0", "k1"]);
    let out = ok(&["recover", s(&p), "--json"], 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["commits_replayed"], 2);
    assert!(v["rollback"].is_null());
}
