use serde_json::Value;

use crate::common::*;

/// Asserts `check --json` matches the schema in docs/check.md.
pub fn assert_report_schema(v: &Value) {
    assert!(v["format"] == "untorn" || v["format"] == "bbolt", "{v}");
    assert!(v["ok"].is_boolean());
    assert!(v["truncated"].is_boolean());
    for k in [
        "pages_checked",
        "keys_checked",
        "buckets_checked",
        "high_water_mark",
        "txid",
    ] {
        assert!(v[k].is_u64(), "{k} in {v}");
    }
    assert!(v["source"] == "snapshot" || v["source"] == "data_file");
    assert!(v["open_error"].is_null() || v["open_error"].is_string());
    let findings = v["findings"].as_array().unwrap();
    let roots = findings
        .iter()
        .filter(|f| f["root_cause"].is_null())
        .count();
    assert_eq!(v["root_causes"].as_u64(), Some(roots as u64), "{v}");
    for (i, f) in findings.iter().enumerate() {
        assert_eq!(f["id"].as_u64(), Some(i as u64));
        // A consequence names an earlier finding that is a root cause.
        if let Some(c) = f["root_cause"].as_u64() {
            assert!((c as usize) < i, "{f}");
            assert!(findings[c as usize]["root_cause"].is_null(), "{f}");
        } else {
            assert!(f["root_cause"].is_null(), "{f}");
        }
        assert!(f["kind"].is_string());
        assert!(f["page"].is_null() || f["page"].is_u64());
        assert!(f["path"].as_array().unwrap().iter().all(Value::is_u64));
        assert!(f["message"].is_string());
        assert!(f["warning"].is_boolean());
    }
}

#[test]
fn check_json_clean_and_damaged() {
    let db = sample();
    let v: Value = serde_json::from_str(&ok(&["check", db.p(), "--json"], 0)).unwrap();
    assert_report_schema(&v);
    assert_eq!(v["ok"], true);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    assert_eq!(v["keys_checked"], 403);
    assert_eq!(v["source"], "snapshot");

    let leaf = pages_of(&db, "leaf")[1];
    flip(&db.path, leaf, 300);
    let v: Value = serde_json::from_str(&ok(&["check", db.p(), "--json"], 1)).unwrap();
    assert_report_schema(&v);
    assert_eq!(v["ok"], false);
    let f = &v["findings"][0];
    assert_eq!(f["kind"], "checksum");
    assert_eq!(f["page"], leaf);
    assert_eq!(f["path"].as_array().unwrap().last().unwrap(), leaf);
}

#[test]
fn reporting_commands_speak_json() {
    let db = sample();
    for args in [
        vec!["info", db.p(), "--json"],
        vec!["stats", db.p(), "--json"],
        vec!["pages", db.p(), "--json"],
        vec!["page", db.p(), "0", "2", "--json"],
        vec!["buckets", db.p(), "--json"],
        vec!["keys", db.p(), "users", "--json"],
        vec!["get", db.p(), "users", "user0001", "--json"],
    ] {
        let out = ok(&args, 0);
        let _: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"));
    }
    let stats: Value = serde_json::from_str(&ok(&["stats", db.p(), "--json"], 0)).unwrap();
    assert_eq!(stats["keys"], 403);
    assert_eq!(stats["leaked_pages"], 0);
    assert!(stats["overflow_pages"].as_u64().unwrap() >= 5);
    let page: Value =
        serde_json::from_str(&ok(&["page", db.p(), "0", "--json", "--hex"], 0)).unwrap();
    assert_eq!(page[0]["type"], "meta");
    assert_eq!(page[0]["verify"], "ok");
    assert_eq!(page[0]["hex"].as_str().unwrap().len(), 2 * PS);
}

#[test]
fn check_max_findings_truncates() {
    let db = sample();
    for leaf in pages_of(&db, "leaf") {
        flip(&db.path, leaf, 100);
    }
    let v: Value =
        serde_json::from_str(&ok(&["check", db.p(), "--json", "--max-findings", "1"], 1)).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 1);
    assert_eq!(v["truncated"], true);
}
