//! `salvage` of untorn files: a healthy file copies exactly; a damaged bucket is
//! copied up to the damage and the rest is reported lost.

use serde_json::Value;

use crate::common::*;

#[test]
fn healthy_untorn_file_salvages_identically() {
    let db = sample();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("copy.untorn");
    let dst = dst.to_str().unwrap();
    let out = ok(&["salvage", db.p(), dst], 0);
    assert!(out.contains("nothing lost"), "{out}");
    assert_eq!(ok(&["dump", dst], 0), ok(&["dump", db.p()], 0));
    ok(&["check", dst], 0);
}

#[test]
fn damaged_untorn_bucket_is_copied_up_to_the_damage_and_reported() {
    let db = sample();
    let before = ok(&["dump", db.p()], 0);
    let leaves = pages_of(&db, "leaf");
    let victim = leaves[leaves.len() / 2];
    flip(&db.path, victim, 300);
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("salvaged.untorn");
    let dst = dst.to_str().unwrap();
    let o = untorn(&["salvage", db.p(), dst, "--json"], None);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    ok(&["check", dst], 0);
    let got = ok(&["dump", dst], 0);
    // Everything salvaged is exactly what was there.
    let want: std::collections::BTreeSet<&str> = before.lines().collect();
    assert!(
        got.lines().all(|l| want.contains(l)),
        "salvage invented data"
    );
    if o.status.code() == Some(0) {
        // The damaged page held nothing the walk needs (e.g. an unused page).
        assert_eq!(got, before);
    } else {
        assert_eq!(o.status.code(), Some(1), "{r}");
        assert_eq!(r["ok"], false);
        let lost = &r["lost"][0];
        assert_eq!(lost["page"], victim, "{r}");
        assert!(lost["reason"].as_str().unwrap().contains("corrupted page"));
        assert!(got.lines().count() < before.lines().count());
        let recovered =
            r["keys_recovered"].as_u64().unwrap() + r["buckets_recovered"].as_u64().unwrap();
        assert_eq!(recovered as usize, got.lines().count());
    }
}
