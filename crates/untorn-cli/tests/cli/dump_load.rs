use crate::common::*;

#[test]
fn dump_load_dump_is_identical_in_both_formats() {
    let db = sample();
    for format in ["text", "hex"] {
        let first = untorn(&["dump", db.p(), "--format", format], None);
        assert!(first.status.success());
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy.untorn");
        let copy = copy.to_str().unwrap();
        let o = untorn(&["load", copy], Some(&first.stdout));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let second = untorn(&["dump", copy, "--format", format], None);
        assert_eq!(
            String::from_utf8_lossy(&first.stdout),
            String::from_utf8_lossy(&second.stdout)
        );
        ok(&["check", copy], 0);
    }
}

#[test]
fn dump_is_lossless_for_binary_data_and_keeps_sequences() {
    let db = sample();
    let text = ok(&["dump", db.p()], 0);
    assert!(
        text.contains(r#"{"bucket":["users","logins"],"sequence":7}"#),
        "{text}"
    );
    assert!(text.contains(r#""key":{"hex":"00ff10"},"value":{"hex":"deadbeef"}"#));
    assert!(text.contains(r#"{"bucket":["empty"],"sequence":0}"#));
    assert!(text.contains(r#"{"bucket":[{"hex":"c3"}],"key":"k","value":"""#));
    let hex = ok(&["dump", db.p(), "--format", "hex"], 0);
    assert!(hex.lines().all(|l| !l.contains(r#""key":""#)));
    for line in text.lines() {
        let _: serde_json::Value = serde_json::from_str(line).unwrap();
    }
}

#[test]
fn load_rejects_bad_lines_with_the_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.untorn");
    let o = untorn(
        &["load", p.to_str().unwrap()],
        Some(
            b"{\"bucket\":[\"a\"],\"key\":\"k\",\"value\":\"v\"}\n{\"bucket\":[],\"key\":\"k\"}\n",
        ),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2"));
}

#[test]
fn dump_bucket_writes_only_that_bucket_and_what_is_nested_in_it() {
    let db = sample();
    let all = ok(&["dump", db.p()], 0);
    let users = ok(&["dump", db.p(), "--bucket", "users"], 0);
    let want: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("{\"bucket\":[\"users\""))
        .collect();
    assert_eq!(users.lines().collect::<Vec<_>>(), want);
    let logins = ok(&["dump", db.p(), "--bucket", "users", "logins"], 0);
    assert_eq!(logins.lines().count(), 2, "{logins}");
    assert!(logins.lines().all(|l| l.contains("[\"users\",\"logins\"]")));
    let o = untorn(&["dump", db.p(), "--bucket", "nope"], None);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bucket nope not found"));
}

#[test]
fn dump_skip_damaged_continues_past_a_damaged_leaf_and_names_it() {
    let db = sample();
    let before = ok(&["dump", db.p()], 0);
    let leaves = pages_of(&db, "leaf");
    let victim = leaves[leaves.len() / 2];
    flip(&db.path, victim, 300);
    let o = untorn(&["dump", db.p(), "--skip-damaged"], None);
    let got = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("page {victim}")), "{err}");
    assert!(err.contains("1 damaged range skipped"), "{err}");
    let want: std::collections::BTreeSet<&str> = before.lines().collect();
    assert!(got.lines().all(|l| want.contains(l)), "dump invented data");
    // Only the damaged leaf's keys are missing: keys after it are still dumped.
    let missing = before.lines().count() - got.lines().count();
    assert!(missing > 0 && missing < 100, "{missing} lines missing");
    assert_eq!(got.lines().last(), before.lines().last());
    // The same on one bucket.
    let o = untorn(
        &["dump", db.p(), "--skip-damaged", "--bucket", "blobs"],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
}
