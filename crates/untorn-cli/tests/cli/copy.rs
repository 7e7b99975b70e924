//! `untorn backup` and `untorn compact`: a new file that checks clean and dumps exactly
//! as the source; sizes reported; an existing DST, SRC as DST and bbolt files refused.

use crate::common::*;

#[test]
fn backup_and_compact_write_copies_that_dump_as_the_source() {
    let db = sample();
    let want = ok(&["dump", db.p(), "--format", "hex"], 0);
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.untorn");
    let backup = backup.to_str().unwrap();
    let out = ok(&["backup", db.p(), backup], 0);
    assert!(out.starts_with("backed up "), "{out}");
    assert!(out.contains("403 keys in 5 buckets"), "{out}");
    assert!(!std::path::Path::new(&format!("{backup}.journal")).exists());
    ok(&["check", backup], 0);
    assert_eq!(ok(&["dump", backup, "--format", "hex"], 0), want);

    let compact = dir.path().join("compact.untorn");
    let compact = compact.to_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["compact", db.p(), compact, "--json"], 0)).unwrap();
    assert_eq!(v["keys"], 403);
    assert_eq!(
        v["bytes_after"].as_u64().unwrap(),
        std::fs::metadata(compact).unwrap().len()
    );
    assert_eq!(
        v["bytes_before"].as_u64().unwrap(),
        std::fs::metadata(&db.path).unwrap().len()
    );
    assert!(
        v["bytes_after"].as_u64() < v["bytes_before"].as_u64(),
        "{v}"
    );
    ok(&["check", compact], 0);
    assert_eq!(ok(&["dump", compact, "--format", "hex"], 0), want);
    // The copy is a database like any other: it takes writes.
    ok(&["put", compact, "users", "zed", "z"], 0);
    ok(&["check", compact], 0);
}

#[test]
fn backup_refuses_an_existing_dst_the_source_itself_and_bbolt_files() {
    let db = sample();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("exists.untorn");
    std::fs::write(&dst, b"precious").unwrap();
    let o = untorn(&["backup", db.p(), dst.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("existing file"));
    assert_eq!(std::fs::read(&dst).unwrap(), b"precious");
    let o = untorn(&["compact", db.p(), db.p()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("same file"));
    let bolt = dir.path().join("bolt.db");
    crate::help_examples::bbolt_example(&bolt);
    let o = untorn(
        &[
            "backup",
            bolt.to_str().unwrap(),
            dir.path().join("x").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bbolt"));
}
