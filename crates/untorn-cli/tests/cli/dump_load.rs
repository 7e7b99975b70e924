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
