//! `salvage` of untorn files (page-level): a healthy file copies exactly; a damaged leaf
//! loses only its own key range, reported as such; a file whose metas are destroyed or
//! that is truncated still gives back what verifies.

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
fn damaged_untorn_leaf_loses_only_its_key_range_and_is_reported() {
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
        assert!(
            lost["reason"].as_str().unwrap().contains("unreadable"),
            "{r}"
        );
        assert!(
            lost["lower"].is_string() || lost["upper"].is_string(),
            "{r}"
        );
        assert!(got.lines().count() < before.lines().count());
        let recovered =
            r["keys_recovered"].as_u64().unwrap() + r["buckets_recovered"].as_u64().unwrap();
        assert_eq!(recovered as usize, got.lines().count());
    }
}

#[test]
fn untorn_file_with_both_metas_zeroed_is_salvaged() {
    let db = sample();
    let before = ok(&["dump", db.p()], 0);
    let mut bytes = std::fs::read(&db.path).unwrap();
    let ps = 4096;
    bytes[..2 * ps].fill(0);
    std::fs::write(&db.path, &bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("salvaged.untorn");
    let dst = dst.to_str().unwrap();
    let o = untorn(&["salvage", db.p(), dst, "--json"], None);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["ok"], false);
    assert_eq!(r["pages_unreadable"], 2, "{r}");
    ok(&["check", dst], 0);
    // Every key is back (the metas held none), each exactly as it was.
    assert_eq!(ok(&["dump", dst], 0), before);
    // The source was only read.
    assert_eq!(std::fs::read(&db.path).unwrap(), bytes);
}

#[test]
fn truncated_untorn_file_is_salvaged_in_part() {
    let db = sample();
    let before = ok(&["dump", db.p()], 0);
    let bytes = std::fs::read(&db.path).unwrap();
    std::fs::write(&db.path, &bytes[..bytes.len() / 2]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("salvaged.untorn");
    let dst = dst.to_str().unwrap();
    let o = untorn(&["salvage", db.p(), dst], None);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains("nothing lost"), "{out}");
    ok(&["check", dst], 0);
    let want: std::collections::BTreeSet<&str> = before.lines().collect();
    let got = ok(&["dump", dst], 0);
    assert!(got.lines().count() > 0);
    for l in got.lines() {
        // A key from an unreferenced page may be older; it was written all the same.
        if !want.contains(l) {
            assert!(out.contains("POSSIBLY OLDER"), "{l} invented? {out}");
        }
    }
}

#[test]
fn surgery_meta_validate_on_an_untorn_file_names_the_bad_slot_and_writes_nothing() {
    let db = sample();
    let o = untorn(&["surgery", "meta", "validate", db.p(), "--json"], None);
    assert_eq!(o.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["format"], "untorn");
    assert_eq!(r["ok"], true);
    assert_eq!(r["metas"][0]["valid"], true);
    assert_eq!(r["metas"][1]["valid"], true);
    flip(&db.path, 1, 200);
    let before = std::fs::read(&db.path).unwrap();
    let o = untorn(&["surgery", "meta", "validate", db.p()], None);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("meta 0") && out.contains("ok: txid"), "{out}");
    assert!(out.contains("meta 1") && out.contains("INVALID"), "{out}");
    assert_eq!(std::fs::read(&db.path).unwrap(), before);
}

#[test]
fn salvage_with_a_small_memory_budget_spills_and_writes_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.untorn");
    let src = src.to_str().unwrap();
    // About 3 MB of candidates: more than fits in a 1 MiB budget.
    let mut lines = String::new();
    for i in 0..16_000 {
        lines.push_str(&format!(
            "{{\"bucket\":[\"b{}\"],\"key\":\"key{i:06}\",\"value\":\"{}\"}}\n",
            i % 3,
            format!("{i:08}").repeat(20)
        ));
    }
    let o = untorn(&["load", src], Some(lines.as_bytes()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = ok(&["dump", src], 0);
    let tmp = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for (name, memory) in [("small.untorn", "1"), ("default.untorn", "256")] {
        let dst = dir.path().join(name);
        let dst = dst.to_str().unwrap();
        let tmp_dir = tmp.path().to_str().unwrap();
        let out = ok(
            &[
                "salvage", src, dst, "--memory", memory, "--tmp", tmp_dir, "--json",
            ],
            0,
        );
        let mut r: Value = serde_json::from_str(&out).unwrap();
        r["dst"] = Value::Null;
        reports.push(r);
        assert_eq!(ok(&["dump", dst], 0), before, "--memory {memory}");
        assert!(
            std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "--memory {memory}: temporary files left in --tmp"
        );
    }
    assert_eq!(reports[0], reports[1]);
    // 1 MiB needs the temporary directory (the candidates spill), 256 MiB does not.
    let missing = dir.path().join("no-such-dir");
    let missing = missing.to_str().unwrap();
    for (memory, code) in [("1", 2), ("256", 0)] {
        let dst = dir.path().join(format!("missing-tmp-{memory}.untorn"));
        let o = untorn(
            &[
                "salvage",
                src,
                dst.to_str().unwrap(),
                "--memory",
                memory,
                "--tmp",
                missing,
            ],
            None,
        );
        assert_eq!(
            o.status.code(),
            Some(code),
            "--memory {memory}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // A zero budget is a usage error.
    let o = untorn(&["salvage", src, "x.untorn", "--memory", "0"], None);
    assert_eq!(o.status.code(), Some(2));
}
