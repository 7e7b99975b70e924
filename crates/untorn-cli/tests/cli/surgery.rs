//! `untorn surgery` on untorn files: each command on a damaged (or healthy) copy gives a
//! file that passes `check`, says what it dropped and ends with check's verdict; the
//! source's bytes never change without `--in-place`; bad arguments are refused (exit 2)
//! and leave nothing behind; a revert is never undone by the journal.

use std::path::{Path, PathBuf};

use crate::common::{flip, ok, pages_of, sample, untorn, Db};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args, 0)).unwrap()
}

/// The data file's and the journal's bytes.
fn bytes(path: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        std::fs::read(path).unwrap(),
        std::fs::read(untorn::journal_path(path)).ok(),
    )
}

/// Reachable leaves of bucket `users` (the ones holding `user…` keys), from `untorn page`.
fn user_leaves(db: &Db) -> Vec<u64> {
    pages_of(db, "leaf")
        .into_iter()
        .filter(|id| {
            let v = json(&["page", db.p(), &id.to_string(), "--json"]);
            v.to_string().contains("user0")
        })
        .collect()
}

fn keys(path: &Path) -> usize {
    ok(&["dump", s(path)], 0)
        .lines()
        .filter(|l| l.contains("\"key\""))
        .count()
}

fn out(db: &Db, name: &str) -> PathBuf {
    db.path.with_file_name(name)
}

#[test]
fn each_untorn_surgery_on_a_copy_passes_check_and_never_touches_the_source() {
    let db = sample();
    let leaves = user_leaves(&db);
    assert!(leaves.len() >= 2, "{leaves:?}");
    let total = keys(&db.path);
    // A damaged copy: one users leaf garbled (check fails).
    let damaged = out(&db, "damaged.untorn");
    std::fs::copy(&db.path, &damaged).unwrap();
    std::fs::copy(
        untorn::journal_path(&db.path),
        untorn::journal_path(&damaged),
    )
    .unwrap();
    flip(&damaged, leaves[0], 300);
    ok(&["check", s(&damaged)], 1);
    let before = bytes(&damaged);
    let healthy_before = bytes(&db.path);
    let (l0, l1) = (leaves[0].to_string(), leaves[1].to_string());
    let cases: Vec<(&str, Vec<&str>, &Path)> = vec![
        (
            "clear-page",
            vec!["surgery", "clear-page", s(&damaged), "--page", &l0],
            &damaged,
        ),
        (
            "clear-page-elements",
            vec![
                "surgery",
                "clear-page-elements",
                db.p(),
                "--page",
                &l1,
                "--from-index",
                "0",
                "--to-index",
                "2",
            ],
            &db.path,
        ),
        (
            "copy-page",
            vec![
                "surgery",
                "copy-page",
                db.p(),
                "--from-page",
                &l1,
                "--to-page",
                &l1,
            ],
            &db.path,
        ),
        (
            "revert-meta",
            vec!["surgery", "revert-meta", db.p()],
            &db.path,
        ),
        (
            "freelist rebuild",
            vec!["surgery", "freelist", "rebuild", db.p()],
            &db.path,
        ),
        (
            "meta update",
            vec!["surgery", "meta", "update", db.p(), "--fields", "txid:1000"],
            &db.path,
        ),
    ];
    for (op, args, _) in &cases {
        let dst = out(&db, &format!("{}.untorn", op.replace(' ', "-")));
        let r = json(&[&args[..], &["--output", s(&dst), "--json"]].concat());
        assert_eq!(r["op"], *op);
        assert_eq!(r["format"], "untorn");
        assert_eq!(r["check"]["ok"], true, "{op}: {r}");
        ok(&["check", s(&dst)], 0);
        assert!(r["dropped"].is_array(), "{op}: {r}");
    }
    assert!(bytes(&damaged) == before, "the damaged source is unchanged");
    assert!(
        bytes(&db.path) == healthy_before,
        "the healthy source is unchanged"
    );
    // What each says it dropped, in the user's terms.
    let cleared = out(&db, "clear-page.untorn");
    let r = json(&[
        "surgery",
        "clear-page",
        s(&damaged),
        "--page",
        &l0,
        "-o",
        s(&cleared),
        "--force",
        "--json",
    ]);
    let dropped = r["dropped"][0].as_str().unwrap();
    assert!(
        dropped.contains("bucket \"users\"") && dropped.contains("count is unknown"),
        "{dropped}"
    );
    assert!(keys(&cleared) < total);
    let fewer = out(&db, "clear-page-elements.untorn");
    assert_eq!(keys(&fewer), total - 2);
    let r = json(&[
        "surgery",
        "freelist",
        "rebuild",
        db.p(),
        "-o",
        s(&out(&db, "fl2.untorn")),
        "--json",
    ]);
    assert_eq!(r["dropped"].as_array().unwrap().len(), 0);
    let text = ok(
        &[
            "surgery",
            "freelist",
            "rebuild",
            db.p(),
            "-o",
            s(&out(&db, "fl3.untorn")),
        ],
        0,
    );
    assert!(
        text.contains("drops")
            && text.contains("nothing")
            && text.lines().last().unwrap().starts_with("check"),
        "{text}"
    );
}

#[test]
fn in_place_surgery_changes_the_source_and_leaves_no_staging_files() {
    let db = sample();
    let leaf = user_leaves(&db)[0].to_string();
    let total = keys(&db.path);
    let before = bytes(&db.path);
    let r = json(&[
        "surgery",
        "clear-page-elements",
        db.p(),
        "--page",
        &leaf,
        "--from-index",
        "1",
        "--to-index",
        "4",
        "--in-place",
        "--json",
    ]);
    assert_eq!(r["in_place"], true);
    assert_eq!(r["check"]["ok"], true, "{r}");
    assert!(bytes(&db.path) != before);
    assert_eq!(keys(&db.path), total - 3);
    ok(&["check", db.p()], 0);
    let names: Vec<String> = std::fs::read_dir(db.path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("surgery")), "{names:?}");
}

#[test]
fn untorn_surgery_refusals_exit_2_and_write_nothing() {
    let db = sample();
    let leaf = user_leaves(&db)[0].to_string();
    let before = bytes(&db.path);
    let dst = out(&db, "x.untorn");
    let refused = |args: &[&str], says: &str| {
        let o = untorn(&[args, &["-o", s(&dst)]].concat(), None);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !dst.exists() && !untorn::journal_path(&dst).exists(),
            "{args:?} left a file"
        );
    };
    refused(
        &["surgery", "clear-page", db.p(), "--page", "1"],
        "not a data page",
    );
    refused(
        &["surgery", "clear-page", db.p(), "--page", "99999"],
        "not a data page",
    );
    refused(
        &[
            "surgery",
            "clear-page-elements",
            db.p(),
            "--page",
            &leaf,
            "--from-index",
            "0",
            "--to-index",
            "9999",
        ],
        "not a non-empty range",
    );
    refused(
        &[
            "surgery",
            "clear-page-elements",
            db.p(),
            "--page",
            &leaf,
            "--from-index",
            "3",
            "--to-index",
            "3",
        ],
        "greater than --from-index",
    );
    refused(
        &[
            "surgery",
            "copy-page",
            db.p(),
            "--from-page",
            "0",
            "--to-page",
            &leaf,
        ],
        "not a data page",
    );
    refused(
        &[
            "surgery",
            "meta",
            "update",
            db.p(),
            "--fields",
            "pageSize:8192",
        ],
        "page size",
    );
    refused(
        &["surgery", "meta", "update", db.p(), "--fields", "root:1"],
        "not a data page",
    );
    refused(
        &[
            "surgery",
            "meta",
            "update",
            db.p(),
            "--fields",
            &format!("root:{leaf}"),
        ],
        "root bucket",
    );
    // A high-water mark past the file: the result would fail check.
    refused(
        &[
            "surgery",
            "meta",
            "update",
            db.p(),
            "--fields",
            "pgid:100000",
        ],
        "fails check",
    );
    assert!(bytes(&db.path) == before);
    // Forced, it is written, and the verdict says what is wrong.
    let r = json(&[
        "surgery",
        "meta",
        "update",
        db.p(),
        "--fields",
        "pgid:100000",
        "--force",
        "-o",
        s(&dst),
        "--json",
    ]);
    assert_eq!(r["check"]["ok"], false, "{r}");
    // An existing destination needs --force.
    let o = untorn(
        &["surgery", "freelist", "rebuild", db.p(), "-o", s(&dst)],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists"));
}

#[test]
fn revert_meta_keeps_the_journal_aside_and_its_commits_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.untorn");
    let crashed = dir.path().join("crashed.untorn");
    let db = untorn::Database::create(&live).unwrap();
    db.update(|tx| {
        tx.create_bucket("b")?.put("first", "1")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    db.checkpoint().unwrap();
    db.update(|tx| {
        tx.bucket("b")?.unwrap().put("second", "2")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    // The newer meta slot holds `second`; the older one `first`.
    db.checkpoint().unwrap();
    db.update(|tx| {
        tx.bucket("b")?.unwrap().put("journal-only", "3")?;
        Ok::<_, untorn::Error>(())
    })
    .unwrap();
    // The image a crash would leave: the last commit only in the journal.
    std::fs::copy(&live, &crashed).unwrap();
    std::fs::copy(untorn::journal_path(&live), untorn::journal_path(&crashed)).unwrap();
    drop(db);
    let reverted = dir.path().join("reverted.untorn");
    let r = json(&[
        "surgery",
        "revert-meta",
        s(&crashed),
        "-o",
        s(&reverted),
        "--json",
    ]);
    assert_eq!(r["check"]["ok"], true, "{r}");
    let kept = PathBuf::from(r["kept_journal"].as_str().unwrap());
    assert!(kept.exists() && kept.to_string_lossy().contains(".journal.rollback-"));
    assert!(r["dropped"][0].as_str().unwrap().contains("journal"), "{r}");
    for _ in 0..2 {
        ok(&["get", s(&reverted), "b", "first"], 0);
        for gone in ["second", "journal-only"] {
            let o = untorn(&["get", s(&reverted), "b", gone], None);
            assert_ne!(
                o.status.code(),
                Some(0),
                "the reverted commit of {gone} came back"
            );
        }
    }
    ok(&["check", s(&reverted)], 0);
}

/// `freelist abandon` on an untorn copy whose tree has an unreadable leaf (where
/// `freelist rebuild` refuses): a new meta with no freelist, nothing dropped, the leak
/// counted, the source untouched, and the copy still serves the other keys.
#[test]
fn freelist_abandon_works_where_rebuild_refuses_and_drops_nothing() {
    let db = sample();
    let leaves = user_leaves(&db);
    let damaged = out(&db, "damaged.untorn");
    std::fs::copy(&db.path, &damaged).unwrap();
    std::fs::copy(
        untorn::journal_path(&db.path),
        untorn::journal_path(&damaged),
    )
    .unwrap();
    flip(&damaged, leaves[0], 300);
    let before = bytes(&damaged);
    let refused = untorn(
        &[
            "surgery",
            "freelist",
            "rebuild",
            s(&damaged),
            "-o",
            s(&out(&db, "rebuilt.untorn")),
        ],
        None,
    );
    assert_eq!(refused.status.code(), Some(2));
    let dst = out(&db, "abandoned.untorn");
    let r = json(&[
        "surgery",
        "freelist",
        "abandon",
        s(&damaged),
        "-o",
        s(&dst),
        "--json",
    ]);
    assert_eq!(r["op"], "freelist abandon");
    assert_eq!(r["format"], "untorn");
    assert_eq!(r["dropped"].as_array().unwrap().len(), 0, "{r}");
    assert!(r["message"].as_str().unwrap().contains("leaked"), "{r}");
    assert!(r["check"]["verdict"].is_string(), "{r}");
    assert!(bytes(&damaged) == before, "the source is unchanged");
    // The copy opens read-write and commits; only the damaged leaf's keys are unreadable.
    ok(&["put", s(&dst), "blobs", "after-abandon", "1"], 0);
    assert_eq!(ok(&["get", s(&dst), "blobs", "after-abandon"], 0), "1");
}
