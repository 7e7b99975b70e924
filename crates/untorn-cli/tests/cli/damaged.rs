//! Damaged files: check names the page; data reads fail instead of returning other bytes.

use serde_json::Value;

use crate::common::*;

#[test]
fn flipped_leaf_fails_check_and_reads_error() {
    let db = sample();
    let before = ok(&["dump", db.p()], 0);
    let leaves = pages_of(&db, "leaf");
    let victim = leaves[leaves.len() / 2];
    flip(&db.path, victim, 500);
    let out = ok(&["check", db.p()], 1);
    assert!(out.contains(&format!("checksum page {victim}")), "{out}");
    assert!(out.contains("FAILED"));
    // Reading everything now fails with a corruption error (exit 2), or - if the victim
    // held no data `dump` visits - returns exactly the old bytes.
    let o = untorn(&["dump", db.p()], None);
    if o.status.success() {
        assert_eq!(String::from_utf8_lossy(&o.stdout), before);
    } else {
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("corrupted page"));
    }
    // The damaged page is corrupt in `pages`.
    let pages: Value = serde_json::from_str(&ok(&["pages", db.p(), "--json"], 0)).unwrap();
    assert_eq!(pages[victim as usize]["state"], "corrupt");
}

#[test]
fn zeroed_meta_is_reported_and_data_still_reads() {
    let db = sample();
    let info: Value = serde_json::from_str(&ok(&["info", db.p(), "--json"], 0)).unwrap();
    let active = info["active_meta_slot"].as_u64().unwrap();
    let other = 1 - active;
    let mut b = std::fs::read(&db.path).unwrap();
    b[other as usize * PS..(other as usize + 1) * PS].fill(0);
    std::fs::write(&db.path, b).unwrap();
    // The slot not in use is damaged: reported, as a warning (nothing newer is lost and
    // the next checkpoint rewrites it), so check still exits 0.
    let v: Value = serde_json::from_str(&ok(&["check", db.p(), "--json"], 0)).unwrap();
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["kind"] == "meta_fallback" && f["page"] == other));
    ok(&["get", db.p(), "users", "user0001"], 0);
}

#[test]
fn file_the_engine_cannot_open_is_checked_from_the_data_file() {
    let db = sample();
    let mut b = std::fs::read(&db.path).unwrap();
    b[..2 * PS]
        .iter_mut()
        .skip(100)
        .step_by(PS)
        .for_each(|x| *x ^= 1);
    std::fs::write(&db.path, b).unwrap();
    // Without the journal (whose generation marker would restore the newest meta) the
    // engine cannot open the file.
    std::fs::remove_file(untorn::journal_path(&db.path)).unwrap();
    let o = untorn(&["check", db.p(), "--json"], None);
    let v: Value = serde_json::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    assert_eq!(o.status.code(), Some(1), "{v}");
    let kinds: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["meta_invalid", "meta_invalid"]);
}
