use crate::common::*;

#[test]
fn clean_file_checks_with_exit_0() {
    let db = sample();
    let out = ok(&["check", db.p()], 0);
    assert!(out.starts_with("ok:"), "{out}");
}

#[test]
fn missing_file_not_a_database_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let o = untorn(&["check", missing.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(!o.stderr.is_empty());
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![7u8; 20_000]).unwrap();
    let o = untorn(&["check", junk.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an untorn"));
    assert_eq!(untorn(&["check"], None).status.code(), Some(2));
    assert_eq!(untorn(&["frobnicate"], None).status.code(), Some(2));
    let db = sample();
    assert_eq!(
        untorn(&["check", db.p(), "--max-findings", "0"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        untorn(&["get", db.p(), "only-one-arg"], None).status.code(),
        Some(2)
    );
}

#[test]
fn missing_keys_and_buckets_exit_1() {
    let db = sample();
    ok(&["get", db.p(), "users", "nobody"], 1);
    ok(&["get", db.p(), "nobucket", "k"], 1);
    ok(&["delete", db.p(), "users", "nobody"], 1);
    ok(&["keys", db.p(), "nobucket"], 1);
}

#[test]
fn get_put_delete_round_trip() {
    let db = sample();
    ok(&["put", db.p(), "a", "b", "key", "value"], 0);
    assert_eq!(ok(&["get", db.p(), "a", "b", "key"], 0), "value");
    assert_eq!(
        ok(
            &["get", db.p(), "0x7573657273", "logins", "0x00ff10", "--hex"],
            0
        ),
        "0xdeadbeef\n"
    );
    // The key `keys` prints for that binary key is the one `get` takes.
    assert_eq!(ok(&["keys", db.p(), "users", "logins"], 0), "0x00ff10\n");
    ok(&["delete", db.p(), "a", "b", "key"], 0);
    ok(&["get", db.p(), "a", "b", "key"], 1);
    let buckets = ok(&["buckets", db.p()], 0);
    assert!(buckets.lines().next().unwrap().starts_with("NAME"));
    assert!(buckets.contains("users") && buckets.contains("0xc3"));
    assert_eq!(ok(&["keys", db.p(), "users"], 0).lines().count(), 400);
    ok(&["check", db.p()], 0);
}

#[test]
fn every_command_has_help_with_an_example() {
    for c in [
        "info", "check", "stats", "pages", "page", "map", "buckets", "keys", "get", "put",
        "delete", "dump", "load", "salvage",
    ] {
        let out = ok(&[c, "--help"], 0);
        assert!(out.contains("Example"), "{c} --help has no example:\n{out}");
    }
    for sub in [
        &["surgery"][..],
        &["surgery", "revert-meta"],
        &["surgery", "copy-page"],
        &["surgery", "clear-page"],
        &["surgery", "clear-page-elements"],
        &["surgery", "freelist"],
        &["surgery", "freelist", "abandon"],
        &["surgery", "freelist", "rebuild"],
        &["surgery", "meta"],
        &["surgery", "meta", "validate"],
        &["surgery", "meta", "update"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = ok(&args, 0);
        assert!(
            out.contains("Example"),
            "{sub:?} --help has no example:\n{out}"
        );
    }
}

#[test]
fn broken_pipe_exits_quietly() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let db = sample();
    let mut child = Command::new(env!("CARGO_BIN_EXE_untorn"))
        .args(["dump", db.p()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database held open for writing by this process: the `untorn` binary (another
/// process) gets a clear "locked" error for writes and exits 2, and the file is unchanged.
#[test]
fn another_process_holding_the_write_lock_is_reported() {
    let db = crate::common::sample();
    let held = untorn::Database::create(&db.path).unwrap();
    let before = std::fs::read(&db.path).unwrap();
    let o = crate::common::untorn(&["put", db.p(), "users", "k", "v"], None);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("locked"), "{stderr}");
    assert!(std::fs::read(&db.path).unwrap() == before);
    drop(held);
    // Once released, the same command works at once, even if another test thread was
    // spawning a child (which holds a copy of `held`'s descriptor until it execs).
    let o = crate::common::untorn(&["put", db.p(), "users", "k", "v"], None);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
